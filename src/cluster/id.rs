//! Member and cluster ids as etcd derives them, and peer URLs as etcd reads them.
//!
//! A member's id is the first eight bytes (big-endian) of a SHA-1 over its peer URLs, sorted
//! and joined, then the cluster token and, for a member added at run time, the Unix second
//! it was added (etcd's `computeMemberId`). A cluster's id hashes its first members' ids the
//! same way (etcd's `genID`). So a member started with etcd's flags has etcd's ids.

use sha1::{Digest, Sha1};

use crate::error::{Error, Result};

/// etcd's default `--initial-cluster-token`.
pub const DEFAULT_CLUSTER_TOKEN: &str = "etcd-cluster";

/// The id etcd gives a member with `peer_urls` in the cluster named by `token`: the
/// bootstrap members get no `added_at`; a member added by MemberAdd is derived with an
/// empty token and the Unix second of the add.
///
/// ```
/// use etcdlite::cluster::{member_id, DEFAULT_CLUSTER_TOKEN};
///
/// // etcd 3.5's member id when started with its defaults (`http://localhost:2380`).
/// let id = member_id(&["http://localhost:2380".to_owned()], DEFAULT_CLUSTER_TOKEN, None);
/// assert_eq!(id, 0x8e9e05c52164694d);
/// ```
pub fn member_id(peer_urls: &[String], token: &str, added_at: Option<u64>) -> u64 {
    let mut sorted: Vec<&str> = peer_urls.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let mut hash = Sha1::new();
    for url in sorted {
        hash.update(url.as_bytes());
    }
    hash.update(token.as_bytes());
    if let Some(seconds) = added_at {
        hash.update(seconds.to_string().as_bytes());
    }
    first_eight(&hash.finalize())
}

/// The id etcd gives a new cluster of `member_ids`.
///
/// ```
/// use etcdlite::cluster::cluster_id;
///
/// assert_eq!(cluster_id(&[0x8e9e05c52164694d]), 0xcdf818194e3a8c32);
/// ```
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut sorted = member_ids.to_vec();
    sorted.sort_unstable();
    let mut hash = Sha1::new();
    for id in sorted {
        hash.update(id.to_be_bytes());
    }
    first_eight(&hash.finalize())
}

fn first_eight(digest: &[u8]) -> u64 {
    u64::from_be_bytes(digest[..8].try_into().expect("a SHA-1 digest has 20 bytes"))
}

/// Peer URLs as etcd reads them (`types.NewURLs`): each trimmed, with its scheme in lower
/// case; `http://` and `https://` ones must be `host:port` with no path; `unix://` and
/// `unixs://` take anything. Sorted, as etcd keeps them. An empty list, or any URL that
/// fails, is [`Error::InvalidPeerUrls`]; [`parse_urls`] says why.
pub fn parse_peer_urls(urls: &[String]) -> Result<Vec<String>> {
    parse_urls(urls).map_err(|_| Error::InvalidPeerUrls)
}

/// [`parse_peer_urls`] with etcd's reason for a refusal (the text its flags print).
pub fn parse_urls(urls: &[String]) -> std::result::Result<Vec<String>, String> {
    if urls.is_empty() {
        return Err("no valid URLs given".to_owned());
    }
    let mut parsed = urls.iter().map(|url| parse_url(url)).collect::<std::result::Result<Vec<_>, _>>()?;
    parsed.sort();
    Ok(parsed)
}

fn parse_url(url: &str) -> std::result::Result<String, String> {
    let url = url.trim();
    let bad_scheme = || format!("URL scheme must be http, https, unix, or unixs: {url}");
    let (scheme, rest) = url.split_once("://").ok_or_else(bad_scheme)?;
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "http" | "https" => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, tail) = rest.split_at(end);
            let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
            if !has_port(host_port) {
                return Err(format!(r#"URL address does not have the form "host:port": {url}"#));
            }
            if tail.starts_with('/') {
                return Err(format!("URL must not contain a path: {url}"));
            }
        }
        "unix" | "unixs" => {}
        _ => return Err(bad_scheme()),
    }
    Ok(format!("{scheme}://{rest}"))
}

/// Whether `host_port` splits as Go's `net.SplitHostPort` splits it: a host (an IPv6 one in
/// brackets) and a port after the last colon.
fn has_port(host_port: &str) -> bool {
    match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']').is_some_and(|(_, rest)| rest.starts_with(':')),
        None => host_port.matches(':').count() == 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(list: &[&str]) -> Vec<String> {
        list.iter().map(|u| u.to_string()).collect()
    }

    // Ids read from real etcd's headers (`etcdctl member list -w json`): etcd 3.5.1 and
    // 3.4.23 started with only --data-dir and loopback client URLs (defaults
    // `--initial-cluster default=http://localhost:2380`, token `etcd-cluster`) answer
    // member 10276657743932975437 and cluster 14841639068965178418.
    #[test]
    fn default_ids_are_those_of_an_etcd_started_with_its_defaults() {
        let member = member_id(&urls(&["http://localhost:2380"]), DEFAULT_CLUSTER_TOKEN, None);
        assert_eq!(member, 10276657743932975437);
        assert_eq!(cluster_id(&[member]), 14841639068965178418);
    }

    // Both etcds started with `--name n1 --initial-advertise-peer-urls http://127.0.0.1:2380
    // --initial-cluster n1=http://127.0.0.1:2380` (default token) answer member
    // 13195394291058371180 in cluster 2037210783374497686.
    #[test]
    fn ids_follow_the_advertised_peer_urls() {
        let member = member_id(&urls(&["http://127.0.0.1:2380"]), DEFAULT_CLUSTER_TOKEN, None);
        assert_eq!(member, 13195394291058371180);
        assert_eq!(cluster_id(&[member]), 2037210783374497686);
    }

    #[test]
    fn peer_url_order_and_token_matter_as_in_etcd() {
        let a = member_id(&urls(&["http://b:2", "http://a:1"]), "t", None);
        assert_eq!(a, member_id(&urls(&["http://a:1", "http://b:2"]), "t", None));
        assert_ne!(a, member_id(&urls(&["http://a:1", "http://b:2"]), "u", None));
        // An added member's id is the URLs, no token, then the second as decimal text.
        let added = member_id(&urls(&["http://a:1"]), "", Some(1_700_000_000));
        assert_eq!(added, member_id(&urls(&["http://a:1"]), "1700000000", None));
        assert_eq!(cluster_id(&[2, 1]), cluster_id(&[1, 2]));
    }

    #[test]
    fn peer_urls_are_read_as_etcd_reads_them() {
        assert_eq!(parse_urls(&urls(&[" HTTP://b:2", "http://a:1"])).unwrap(), ["http://a:1", "http://b:2"]);
        assert_eq!(parse_urls(&urls(&["http://[::1]:2380"])).unwrap(), ["http://[::1]:2380"]);
        assert_eq!(parse_urls(&urls(&["unix://anything/at/all"])).unwrap(), ["unix://anything/at/all"]);
        assert_eq!(parse_urls(&[]).unwrap_err(), "no valid URLs given");
        assert_eq!(
            parse_urls(&urls(&["foo"])).unwrap_err(),
            "URL scheme must be http, https, unix, or unixs: foo"
        );
        assert_eq!(
            parse_urls(&urls(&["http://a"])).unwrap_err(),
            r#"URL address does not have the form "host:port": http://a"#
        );
        assert_eq!(
            parse_urls(&urls(&["http://a:1/"])).unwrap_err(),
            "URL must not contain a path: http://a:1/"
        );
        assert_eq!(parse_peer_urls(&urls(&["ftp://a:1"])), Err(Error::InvalidPeerUrls));
    }
}
