//! Auto-compaction, as etcd's `--auto-compaction-mode` and `--auto-compaction-retention`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use etcdlite::{Error, Store};
use tokio::task::JoinHandle;

/// How often revision mode looks (etcd: every 5 minutes).
const REVISION_CHECK: Duration = Duration::from_secs(5 * 60);

/// What to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AutoCompaction {
    /// `periodic`: keep the history of the last `retention`. The revision is sampled every
    /// tenth of it, and each time history is compacted to the revision sampled `retention`
    /// ago.
    Periodic(Duration),
    /// `revision`: keep the last `n` revisions (checked every 5 minutes).
    Revision(i64),
}

impl AutoCompaction {
    /// Parses etcd's flag pair: mode `periodic` with a retention like `1h`, `30m`, `10s`,
    /// or a bare number of hours; mode `revision` with a number of revisions. A retention
    /// of 0 turns auto-compaction off.
    pub fn parse(mode: &str, retention: &str) -> Result<Option<AutoCompaction>, String> {
        match mode {
            "periodic" => {
                let period = parse_duration(retention)?;
                Ok((!period.is_zero()).then_some(AutoCompaction::Periodic(period)))
            }
            "revision" => {
                let n: i64 =
                    retention.parse().map_err(|_| format!("invalid revision retention {retention:?}"))?;
                if n < 0 {
                    return Err(format!("invalid revision retention {retention:?}"));
                }
                Ok((n > 0).then_some(AutoCompaction::Revision(n)))
            }
            other => Err(format!("unknown auto-compaction mode {other:?} (use periodic or revision)")),
        }
    }
}

/// A Go-style duration (`1h30m`, `90s`, `500ms`) or a bare number of hours, as etcd reads
/// the periodic retention.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid periodic retention {text:?}");
    if let Ok(hours) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(hours * 3600.0).map_err(|_| bad());
    }
    crate::duration::parse_go_duration(text).map_err(|_| bad())
}

/// Runs auto-compaction of `store` on the async runtime until aborted.
pub fn spawn(store: Arc<Store>, mode: AutoCompaction) -> JoinHandle<()> {
    tokio::spawn(async move {
        match mode {
            AutoCompaction::Revision(keep) => {
                let mut tick = tokio::time::interval(REVISION_CHECK);
                loop {
                    tick.tick().await;
                    compact(&store, store.current_revision() - keep).await;
                }
            }
            AutoCompaction::Periodic(retention) => {
                let step = (retention / 10).max(Duration::from_secs(1));
                let window = (retention.as_secs_f64() / step.as_secs_f64()).ceil() as usize;
                let mut samples = VecDeque::with_capacity(window + 1);
                let mut tick = tokio::time::interval(step);
                loop {
                    tick.tick().await;
                    samples.push_back(store.current_revision());
                    if samples.len() > window {
                        let target = samples.pop_front().expect("a full window");
                        compact(&store, target).await;
                    }
                }
            }
        }
    })
}

/// Compacts to `revision` if that moves the compaction point; quietly skips when it does not.
async fn compact(store: &Arc<Store>, revision: i64) {
    if revision <= store.compacted_revision() {
        return;
    }
    match store.compact_async(revision, None).await {
        Ok(_) => tracing::info!(revision, "auto-compacted"),
        Err(Error::Compacted) => {}
        Err(e) => tracing::warn!(revision, error = %e, "auto-compaction failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_as_etcds() {
        assert_eq!(
            AutoCompaction::parse("periodic", "1h"),
            Ok(Some(AutoCompaction::Periodic(Duration::from_secs(3600))))
        );
        assert_eq!(
            AutoCompaction::parse("periodic", "2"),
            Ok(Some(AutoCompaction::Periodic(Duration::from_secs(7200))))
        );
        assert_eq!(
            AutoCompaction::parse("periodic", "1m30s"),
            Ok(Some(AutoCompaction::Periodic(Duration::from_secs(90))))
        );
        assert_eq!(AutoCompaction::parse("periodic", "0"), Ok(None));
        assert_eq!(AutoCompaction::parse("revision", "1000"), Ok(Some(AutoCompaction::Revision(1000))));
        assert!(AutoCompaction::parse("revision", "-1").is_err());
        assert!(AutoCompaction::parse("periodic", "1x").is_err());
        assert!(AutoCompaction::parse("daily", "1").is_err());
    }

    #[tokio::test]
    async fn revision_mode_keeps_the_last_n_revisions() {
        let store = Arc::new(Store::open(etcdlite::Options::memory()).unwrap());
        for i in 0..20 {
            store.put("k", format!("{i}"), None).unwrap();
        }
        let task = spawn(store.clone(), AutoCompaction::Revision(5));
        // The first check runs at once; give the blocking compaction time to finish.
        for _ in 0..100 {
            if store.compacted_revision() == 21 - 5 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(store.compacted_revision(), 21 - 5);
        task.abort();
    }
}
