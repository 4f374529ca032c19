//! CORS as etcd 3.5 answers it (`--cors`): every HTTP answer carries three
//! `Access-Control-Allow-*` headers when any origin is allowed (the default, `*`), or when
//! the request's `Origin` is one of the listed ones (compared as text, exactly); none
//! otherwise. An `OPTIONS` request, to any path, is answered `200` with an empty body
//! whatever its origin, before anything else looks at it.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use axum::http::{header, HeaderMap, HeaderValue};

/// The methods and headers etcd allows an allowed origin.
const ALLOW_METHODS: &str = "POST, GET, OPTIONS, PUT, DELETE";
const ALLOW_HEADERS: &str = "accept, content-type, authorization";

/// The origins CORS allows: any (`*`, etcd's default) or the ones listed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Cors {
    /// Every origin: the headers go on every answer, with `Access-Control-Allow-Origin: *`.
    #[default]
    Any,
    /// These origins (as etcd writes them: `http://example.com:8080`), each answered with
    /// its own name; a request from another origin, or with none, gets no CORS headers.
    Origins(BTreeSet<String>),
}

impl FromStr for Cors {
    type Err = String;

    /// `--cors` as etcd 3.5 reads it: `*`, or comma-separated origin URLs (`http` or
    /// `https` with a host and port and no path, or `unix`/`unixs`), spaces around each
    /// dropped and the scheme lowercased. A bad one is refused with etcd's message.
    fn from_str(flag: &str) -> Result<Cors, String> {
        if flag == "*" {
            return Ok(Cors::Any);
        }
        flag.split(',').map(origin).collect::<Result<BTreeSet<_>, _>>().map(Cors::Origins)
    }
}

impl fmt::Display for Cors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cors::Any => f.write_str("*"),
            Cors::Origins(origins) => f.write_str(&origins.iter().cloned().collect::<Vec<_>>().join(",")),
        }
    }
}

/// One origin of `--cors`, checked as etcd checks a URL (`types.NewURLs`), as etcd keeps
/// it (Go's URL text: the scheme lowercased, the rest as given).
fn origin(text: &str) -> Result<String, String> {
    let text = text.trim();
    let scheme_end = text.find(':').filter(|&end| {
        let scheme = &text[..end];
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    let (scheme, rest) = match scheme_end {
        Some(end) => (text[..end].to_ascii_lowercase(), &text[end + 1..]),
        None => (String::new(), text),
    };
    match scheme.as_str() {
        "http" | "https" => {
            let authority_and_path = rest.strip_prefix("//").unwrap_or("");
            let end = authority_and_path.find(['/', '?', '#']).unwrap_or(authority_and_path.len());
            if !is_host_port(&authority_and_path[..end]) || !rest.starts_with("//") {
                return Err(format!("URL address does not have the form \"host:port\": {text}"));
            }
            let path_end = authority_and_path.find(['?', '#']).unwrap_or(authority_and_path.len());
            if end < path_end {
                return Err(format!("URL must not contain a path: {text}"));
            }
        }
        "unix" | "unixs" => {}
        _ => return Err(format!("URL scheme must be http, https, unix, or unixs: {text}")),
    }
    Ok(format!("{scheme}:{rest}"))
}

/// Whether `authority` splits into a host and a port as Go's `net.SplitHostPort` splits
/// one (`host:port`, `[v6]:port`; the port may be empty).
fn is_host_port(authority: &str) -> bool {
    // Go's URL host excludes any user information.
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    match host_port.strip_prefix('[') {
        Some(rest) => {
            rest.split_once("]:").is_some_and(|(host, port)| !host.contains(']') && !port.contains(':'))
        }
        None => host_port.matches(':').count() == 1 && !host_port.contains(['[', ']']),
    }
}

impl Cors {
    /// The `Access-Control-Allow-Origin` an answer to a request with `headers` gets, if any.
    fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        match self {
            Cors::Any => Some(HeaderValue::from_static("*")),
            Cors::Origins(origins) => {
                let origin = headers.get(header::ORIGIN)?;
                origins.contains(origin.to_str().ok()?).then(|| origin.clone())
            }
        }
    }

    /// Adds etcd's CORS headers to `answer` (the answer to a request with `request`
    /// headers), if its origin is allowed.
    pub fn apply(&self, request: &HeaderMap, answer: &mut HeaderMap) {
        let Some(origin) = self.allowed_origin(request) else { return };
        answer.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
        answer.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        answer.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(list: &[&str]) -> Cors {
        Cors::Origins(list.iter().map(|o| o.to_string()).collect())
    }

    #[test]
    fn the_flag_is_read_as_etcd_reads_it() {
        assert_eq!("*".parse(), Ok(Cors::Any));
        assert_eq!(
            " http://A.Example:80 , HTTPS://b:1,http://A.Example:80".parse(),
            Ok(origins(&["http://A.Example:80", "https://b:1"]))
        );
        assert_eq!(
            "http://[::1]:2379,unix://sock".parse(),
            Ok(origins(&["http://[::1]:2379", "unix://sock"]))
        );
        for (flag, error) in [
            ("http://a.example", r#"URL address does not have the form "host:port": http://a.example"#),
            ("", "URL scheme must be http, https, unix, or unixs: "),
            ("*,http://a:1", "URL scheme must be http, https, unix, or unixs: *"),
            (" *", "URL scheme must be http, https, unix, or unixs: *"),
            ("http://a.example:80/", "URL must not contain a path: http://a.example:80/"),
            ("ftp://a:1", "URL scheme must be http, https, unix, or unixs: ftp://a:1"),
            ("http://::1:80", r#"URL address does not have the form "host:port": http://::1:80"#),
        ] {
            assert_eq!(flag.parse::<Cors>(), Err(error.to_owned()), "{flag:?}");
        }
        assert_eq!(origins(&["https://b:1", "http://a:80"]).to_string(), "http://a:80,https://b:1");
    }

    #[test]
    fn only_an_allowed_origin_gets_the_headers() {
        let request = |origin: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(origin) = origin {
                headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
            }
            headers
        };
        let answer = |cors: &Cors, origin: Option<&str>| {
            let mut headers = HeaderMap::new();
            cors.apply(&request(origin), &mut headers);
            headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(answer(&Cors::Any, None).as_deref(), Some("*"));
        assert_eq!(answer(&Cors::Any, Some("http://x:1")).as_deref(), Some("*"));
        let listed = origins(&["http://A.Example:80"]);
        assert_eq!(answer(&listed, Some("http://A.Example:80")).as_deref(), Some("http://A.Example:80"));
        assert_eq!(answer(&listed, Some("http://a.example:80")), None);
        assert_eq!(answer(&listed, None), None);
        let mut headers = HeaderMap::new();
        listed.apply(&request(Some("http://A.Example:80")), &mut headers);
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_METHODS], "POST, GET, OPTIONS, PUT, DELETE");
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_HEADERS], "accept, content-type, authorization");
    }
}
