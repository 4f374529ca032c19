//! etcd's bootstrap flags (`--initial-cluster`, `--initial-advertise-peer-urls`) read as a
//! new etcd member reads them, for a cluster that can only be this one member.
//!
//! etcd derives a member's id from the peer URLs `--initial-cluster` gives its name, so a
//! member started with etcd's flags gets etcd's ids ([`etcdlite::cluster::Identity`]).

use std::collections::BTreeMap;

use etcdlite::cluster::parse_urls;

/// etcd's default `--initial-advertise-peer-urls`.
pub const DEFAULT_PEER_URL: &str = "http://localhost:2380";

/// etcd's default `--name`.
pub const DEFAULT_NAME: &str = "default";

/// etcd's default `--initial-cluster`.
pub const DEFAULT_INITIAL_CLUSTER: &str = "default=http://localhost:2380";

/// The peer URLs of member `name`, from `initial_cluster` (`name=url,name=url,...`) and its
/// `advertise_peer_urls`, checked as etcd checks them when it bootstraps a new cluster:
/// the name must be in the initial cluster, with exactly the URLs it advertises (compared
/// as written; etcd also resolves host names). As in etcd, a `--name` other than
/// `default` with the default `--initial-cluster` means `name=<advertised peer URLs>`.
/// Unlike etcd, an initial cluster of other members too is refused: etcdlite is one.
///
/// ```
/// use etcdlite_server::bootstrap::peer_urls;
///
/// let urls = ["http://127.0.0.1:2380".to_owned()];
/// assert_eq!(peer_urls("n1", "n1=http://127.0.0.1:2380", &urls).unwrap(), urls);
/// assert!(peer_urls("n2", "n1=http://127.0.0.1:2380", &urls).is_err());
/// ```
pub fn peer_urls(
    name: &str,
    initial_cluster: &str,
    advertise_peer_urls: &[String],
) -> Result<Vec<String>, String> {
    let advertised = advertised_peer_urls(advertise_peer_urls)?;
    let derived;
    let initial_cluster = if name != DEFAULT_NAME && initial_cluster == DEFAULT_INITIAL_CLUSTER {
        derived = advertised.iter().map(|url| format!("{name}={url}")).collect::<Vec<_>>().join(",");
        derived.as_str()
    } else {
        initial_cluster
    };
    let members = members(initial_cluster)?;
    let Some(urls) = members.get(name) else {
        return Err(format!("couldn't find local name {name:?} in the initial cluster configuration"));
    };
    let missing = |from: &[String], of: &[String]| -> Vec<String> {
        from.iter().filter(|url| !of.contains(url)).cloned().collect()
    };
    let not_advertised = missing(urls, &advertised);
    if !not_advertised.is_empty() {
        let named: Vec<String> = not_advertised.iter().map(|url| format!("{name}={url}")).collect();
        return Err(format!(
            "--initial-cluster has {} but missing from --initial-advertise-peer-urls={}",
            named.join(","),
            advertised.join(",")
        ));
    }
    let not_in_cluster = missing(&advertised, urls);
    if !not_in_cluster.is_empty() {
        let named: Vec<String> = advertised.iter().map(|url| format!("{name}={url}")).collect();
        return Err(format!(
            "--initial-advertise-peer-urls has {} but missing from --initial-cluster={}",
            not_in_cluster.join(","),
            named.join(",")
        ));
    }
    if members.len() > 1 {
        let names: Vec<&str> = members.keys().map(String::as_str).collect();
        return Err(format!(
            "--initial-cluster names {} members ({}): etcdlite is a cluster of one member, so it can \
             only name this one ({name})",
            members.len(),
            names.join(", ")
        ));
    }
    Ok(urls.clone())
}

/// `--initial-advertise-peer-urls` as etcd reads the flag: each URL trimmed, its scheme in
/// lower case, the list sorted ([`parse_urls`]); a URL etcd refuses is refused with the
/// flag's name and etcd's reason. [`Server::bind`](crate::Server::bind) reads
/// [`Config::peer_urls`](crate::Config::peer_urls) this way too, so URLs set from code give
/// the ids and the error the flag gives.
///
/// ```
/// use etcdlite_server::bootstrap::advertised_peer_urls;
///
/// let urls = [" HTTP://127.0.0.1:2380".to_owned()];
/// assert_eq!(advertised_peer_urls(&urls).unwrap(), ["http://127.0.0.1:2380"]);
/// assert!(advertised_peer_urls(&["foo".to_owned()]).is_err());
/// ```
pub fn advertised_peer_urls(urls: &[String]) -> Result<Vec<String>, String> {
    parse_urls(urls).map_err(|e| format!("--initial-advertise-peer-urls: {e}"))
}

/// `name=url,name=url,...` as etcd's `types.NewURLsMap` reads it: empty entries skipped, a
/// name given twice gathering its URLs, each member's URLs read and sorted.
fn members(initial_cluster: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut raw: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in initial_cluster.split(',').filter(|entry| !entry.is_empty()) {
        let (name, url) = entry.split_once('=').unwrap_or((entry, ""));
        raw.entry(name.to_owned()).or_default().push(url.to_owned());
    }
    raw.into_iter()
        .map(|(name, urls)| {
            let urls = parse_urls(&urls).map_err(|e| format!("error setting up initial cluster: {e}"))?;
            Ok((name, urls))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(list: &[&str]) -> Vec<String> {
        list.iter().map(|u| u.to_string()).collect()
    }

    #[test]
    fn etcds_defaults_name_the_default_member() {
        let peer = urls(&[DEFAULT_PEER_URL]);
        assert_eq!(peer_urls(DEFAULT_NAME, DEFAULT_INITIAL_CLUSTER, &peer).unwrap(), peer);
    }

    #[test]
    fn a_name_alone_makes_the_initial_cluster_from_the_advertised_urls() {
        let peer = urls(&["http://127.0.0.1:2380"]);
        assert_eq!(peer_urls("n1", DEFAULT_INITIAL_CLUSTER, &peer).unwrap(), peer);
        // With the default name, the default initial cluster is taken as written.
        assert!(peer_urls(DEFAULT_NAME, DEFAULT_INITIAL_CLUSTER, &peer).is_err());
    }

    #[test]
    fn several_urls_of_one_member_are_sorted() {
        let advertised = urls(&["http://127.0.0.1:2381", "http://127.0.0.1:2380"]);
        let cluster = "n1=http://127.0.0.1:2381,n1=http://127.0.0.1:2380";
        assert_eq!(
            peer_urls("n1", cluster, &advertised).unwrap(),
            urls(&["http://127.0.0.1:2380", "http://127.0.0.1:2381"])
        );
    }

    // The messages are etcd 3.5.1's (read from its log when it refused to start).
    #[test]
    fn bad_bootstraps_are_refused_with_etcds_words() {
        let peer = urls(&["http://127.0.0.1:2380"]);
        assert_eq!(
            peer_urls("x", "y=http://127.0.0.1:2380", &peer).unwrap_err(),
            r#"couldn't find local name "x" in the initial cluster configuration"#
        );
        assert_eq!(
            peer_urls("x", "x=http://127.0.0.1:2380", &urls(&["http://127.0.0.1:2381"])).unwrap_err(),
            "--initial-cluster has x=http://127.0.0.1:2380 but missing from \
             --initial-advertise-peer-urls=http://127.0.0.1:2381"
        );
        assert_eq!(
            peer_urls(
                "x",
                "x=http://127.0.0.1:2380",
                &urls(&["http://127.0.0.1:2380", "http://127.0.0.1:2381"])
            )
            .unwrap_err(),
            "--initial-advertise-peer-urls has http://127.0.0.1:2381 but missing from \
             --initial-cluster=x=http://127.0.0.1:2380,x=http://127.0.0.1:2381"
        );
        assert_eq!(
            peer_urls("x", "x=foo", &peer).unwrap_err(),
            "error setting up initial cluster: URL scheme must be http, https, unix, or unixs: foo"
        );
    }

    #[test]
    fn a_cluster_of_more_than_one_member_is_refused() {
        let peer = urls(&["http://127.0.0.1:2380"]);
        let error = peer_urls("a", "a=http://127.0.0.1:2380,b=http://127.0.0.1:2480", &peer).unwrap_err();
        assert!(error.starts_with("--initial-cluster names 2 members (a, b)"), "{error}");
    }
}
