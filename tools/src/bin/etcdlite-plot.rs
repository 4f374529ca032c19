//! Draws one line chart as SVG from measured points: the figures of BENCHMARKS.md.
//!
//! The input is JSON lines, one point each: `{"series": "etcd 3.5.1", "x": 100, "y": 60513}`.
//! Points of one series are joined in the order of their x; each series gets its own colour
//! and a legend entry, in the order the series first appear. `scripts/bench` writes the
//! points and calls this for every figure.
//!
//! ```text
//! etcdlite-plot --title "Watch fan-out" --x-label watchers --y-label "events/s" \
//!     --log-x --out docs/bench/watch-fanout.svg fanout.jsonl
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use plotters::prelude::*;
use serde::Deserialize;

/// Draws a line chart of JSON-lines points to an SVG file.
#[derive(Parser, Debug)]
#[command(name = "etcdlite-plot")]
struct Args {
    /// The chart's title.
    #[arg(long)]
    title: String,
    /// The x axis's label.
    #[arg(long)]
    x_label: String,
    /// The y axis's label.
    #[arg(long)]
    y_label: String,
    /// A logarithmic x axis (every x must be above 0).
    #[arg(long)]
    log_x: bool,
    /// A logarithmic y axis (every y must be above 0).
    #[arg(long)]
    log_y: bool,
    /// The SVG file to write.
    #[arg(long)]
    out: PathBuf,
    /// Width and height in pixels.
    #[arg(long, default_value = "800x480", value_parser = parse_size)]
    size: (u32, u32),
    /// The JSON-lines file of points.
    input: PathBuf,
}

/// One measured point.
#[derive(Deserialize, Debug, PartialEq)]
struct Point {
    series: String,
    x: f64,
    y: f64,
}

/// Series in the order they first appear, each with its points sorted by x.
#[derive(Debug, PartialEq)]
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s.split_once('x').ok_or("expected WIDTHxHEIGHT, e.g. 800x480")?;
    let parse = |v: &str| v.trim().parse::<u32>().map_err(|e| format!("{v:?}: {e}"));
    Ok((parse(w)?, parse(h)?))
}

/// Reads the points of `text`, grouped by series; empty lines are skipped.
fn read_series(text: &str) -> Result<Vec<Series>, String> {
    let mut order: Vec<String> = Vec::new();
    let mut by_name: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let point: Point = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        if !point.x.is_finite() || !point.y.is_finite() {
            return Err(format!("line {}: x and y must be finite numbers", n + 1));
        }
        if !by_name.contains_key(&point.series) {
            order.push(point.series.clone());
        }
        by_name.entry(point.series).or_default().push((point.x, point.y));
    }
    if order.is_empty() {
        return Err("no points".into());
    }
    Ok(order
        .into_iter()
        .map(|name| {
            let mut points = by_name.remove(&name).unwrap_or_default();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series { name, points }
        })
        .collect())
}

/// Maps a value onto its axis: its base-10 logarithm on a logarithmic axis.
fn to_axis(v: f64, log: bool) -> Result<f64, String> {
    match log {
        true if v <= 0.0 => Err(format!("{v} cannot be drawn on a logarithmic axis")),
        true => Ok(v.log10()),
        false => Ok(v),
    }
}

/// The axis range covering `values` (already mapped), with a margin; never empty. A
/// logarithmic axis runs between whole powers of ten, so that both ends have a label; a
/// linear one starts at 0 when asked and every value is positive.
fn axis_range(values: impl Iterator<Item = f64>, log: bool, from_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if log {
        return (lo.floor() - 0.15, hi.ceil().max(lo.floor() + 1.0) + 0.15);
    }
    if from_zero {
        lo = lo.min(0.0);
    }
    if hi <= lo {
        lo -= 1.0;
        hi += 1.0;
    }
    let margin = (hi - lo) * 0.05;
    (if from_zero && lo >= 0.0 { lo } else { lo - margin }, hi + margin)
}

/// A tick's label: the value itself (read back from the logarithm on a logarithmic axis),
/// large ones shortened with k or M. On a logarithmic axis only powers of ten are labelled.
fn label(v: f64, log: bool) -> String {
    if log && (v - v.round()).abs() > 1e-9 {
        return String::new();
    }
    let v = if log { 10f64.powf(v.round()) } else { v };
    let (scaled, suffix) = match v.abs() {
        m if m >= 1e6 => (v / 1e6, "M"),
        m if m >= 1e4 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let digits = format!("{scaled:.3}");
    format!("{}{suffix}", digits.trim_end_matches('0').trim_end_matches('.'))
}

fn draw(args: &Args, series: &[Series]) -> Result<(), Box<dyn std::error::Error>> {
    let mapped: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .map(|s| {
            let points = s
                .points
                .iter()
                .map(|&(x, y)| Ok((to_axis(x, args.log_x)?, to_axis(y, args.log_y)?)))
                .collect::<Result<Vec<_>, String>>()?;
            Ok((s.name.as_str(), points))
        })
        .collect::<Result<_, String>>()?;
    let all = || mapped.iter().flat_map(|(_, p)| p.iter());
    let (x0, x1) = axis_range(all().map(|p| p.0), args.log_x, false);
    let (y0, y1) = axis_range(all().map(|p| p.1), args.log_y, true);

    let root = SVGBackend::new(&args.out, args.size).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&args.title, ("sans-serif", 22))
        .margin(12)
        .margin_right(36)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .x_desc(&args.x_label)
        .y_desc(&args.y_label)
        .x_labels(if args.log_x { 40 } else { 10 })
        .y_labels(if args.log_y { 40 } else { 10 })
        .x_label_formatter(&|v| label(*v, args.log_x))
        .y_label_formatter(&|v| label(*v, args.log_y))
        .draw()?;
    for (i, (name, points)) in mapped.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = std::fs::read_to_string(&args.input)
        .map_err(|e| format!("{}: {e}", args.input.display()))
        .and_then(|text| read_series(&text).map_err(|e| format!("{}: {e}", args.input.display())))
        .and_then(|series| draw(&args, &series).map_err(|e| format!("{}: {e}", args.out.display())));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("etcdlite-plot: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_group_by_series_in_first_seen_order_and_sort_by_x() {
        let text = r#"{"series":"b","x":10,"y":1}

{"series":"a","x":2,"y":5}
{"series":"b","x":1,"y":3}
"#;
        let series = read_series(text).unwrap();
        assert_eq!(
            series,
            vec![
                Series { name: "b".into(), points: vec![(1.0, 3.0), (10.0, 1.0)] },
                Series { name: "a".into(), points: vec![(2.0, 5.0)] },
            ]
        );
    }

    #[test]
    fn bad_lines_are_refused_with_their_number() {
        let err = read_series("{\"series\":\"a\",\"x\":1,\"y\":1}\nnot json\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        assert_eq!(read_series("\n\n").unwrap_err(), "no points");
        assert!(to_axis(0.0, true).is_err());
        assert_eq!(to_axis(0.0, false), Ok(0.0));
    }

    #[test]
    fn labels_read_back_logarithms_and_shorten_large_numbers() {
        assert_eq!(label(2.0, true), "100");
        assert_eq!(label(4.0, true), "10k");
        assert_eq!(label(6.0, true), "1M");
        assert_eq!(label(2.2, true), "");
        assert_eq!(label(1_500_000.0, false), "1.5M");
        assert_eq!(label(0.25, false), "0.25");
        assert_eq!(label(12.0, false), "12");
    }

    #[test]
    fn ranges_start_at_zero_for_linear_values_and_are_never_empty() {
        let (lo, hi) = axis_range([5.0, 10.0].into_iter(), false, true);
        assert_eq!(lo, 0.0);
        assert!(hi > 10.0);
        let (lo, hi) = axis_range([3.0].into_iter(), true, true);
        assert!(lo < 3.0 && hi > 3.0);
    }

    #[test]
    fn a_chart_is_written_as_svg() {
        let dir = std::env::temp_dir().join(format!("etcdlite-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("chart.svg");
        let args = Args {
            title: "t".into(),
            x_label: "clients".into(),
            y_label: "puts/s".into(),
            log_x: true,
            log_y: false,
            out: out.clone(),
            size: (400, 300),
            input: dir.join("unused.jsonl"),
        };
        let series =
            read_series("{\"series\":\"etcd\",\"x\":1,\"y\":2}\n{\"series\":\"etcd\",\"x\":64,\"y\":9}\n")
                .unwrap();
        draw(&args, &series).unwrap();
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        assert!(svg.contains("etcd") && svg.contains("puts/s"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
