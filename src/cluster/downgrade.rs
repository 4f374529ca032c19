//! etcd 3.5's cluster downgrade (Maintenance `Downgrade`) as a cluster of one answers it.
//!
//! Invariant: at most one downgrade is under way, and its target is the minor version just
//! below the cluster version (etcd's `AllowedDowngradeVersion`). Nothing else changes while
//! it is: as in a one-member etcd, whose member never runs the target version, the
//! downgrade stays under way until cancelled. Like the membership, the state lives as long
//! as the store.

use crate::error::{Error, Result};

/// What a Downgrade call does (etcd's `DowngradeRequest.DowngradeAction`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DowngradeAction {
    /// Checks that the cluster could be downgraded to the version.
    #[default]
    Validate = 0,
    /// Starts a downgrade to the version.
    Enable = 1,
    /// Cancels the downgrade under way.
    Cancel = 2,
}

impl DowngradeAction {
    /// The action with etcd's number `number`, if it is one.
    pub fn from_i32(number: i32) -> Option<DowngradeAction> {
        match number {
            0 => Some(DowngradeAction::Validate),
            1 => Some(DowngradeAction::Enable),
            2 => Some(DowngradeAction::Cancel),
            _ => None,
        }
    }
}

/// A cluster version: the major and minor of a member version (etcd keeps no patch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClusterVersion {
    major: i64,
    minor: i64,
}

impl ClusterVersion {
    /// The cluster version of a server reporting `version` (`3.5.1` → 3.5), if it is a
    /// version.
    pub(crate) fn of_server(version: &str) -> Option<ClusterVersion> {
        semver(version)
    }

    /// A Downgrade request's target, as etcd's `convertToClusterVersion` reads it: a
    /// semantic version (`3.4.2`, `3.4.0-rc.1`) or `major.minor`; anything else is
    /// [`Error::WrongDowngradeVersionFormat`].
    pub(crate) fn of_target(version: &str) -> Result<ClusterVersion> {
        semver(version).or_else(|| semver(&format!("{version}.0"))).ok_or(Error::WrongDowngradeVersionFormat)
    }

    /// Whether a server of this version has etcd's Downgrade call, which etcd 3.5 added
    /// (etcd 3.4's Maintenance service has no such method).
    pub(crate) fn has_downgrade(self) -> bool {
        (self.major, self.minor) >= (3, 5)
    }

    /// The one version this one may be downgraded to: the minor version below.
    fn allowed_target(self) -> ClusterVersion {
        ClusterVersion { major: self.major, minor: self.minor - 1 }
    }
}

impl std::fmt::Display for ClusterVersion {
    /// As etcd answers it: with a zero patch (`3.5.0`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.0", self.major, self.minor)
    }
}

/// The major and minor of `text` read as go-semver reads a version: `major.minor.patch`,
/// each a decimal integer (a sign allowed, as Go's `ParseInt` allows it), then optionally
/// `-prerelease` and `+metadata`, each dot-separated identifiers of `[0-9A-Za-z-]`.
fn semver(text: &str) -> Option<ClusterVersion> {
    let (rest, metadata) = split_off(text, '+');
    let (core, prerelease) = split_off(rest, '-');
    if !identifiers(prerelease) || !identifiers(metadata) {
        return None;
    }
    let mut parts = core.splitn(3, '.');
    let mut number = || parts.next().and_then(go_int);
    let (major, minor, _patch) = (number()?, number()?, number()?);
    Some(ClusterVersion { major, minor })
}

/// `text` cut at the first `delimiter`: before it, and after it (empty when absent).
fn split_off(text: &str, delimiter: char) -> (&str, &str) {
    text.split_once(delimiter).unwrap_or((text, ""))
}

/// True for an empty part, or dot-separated identifiers of `[0-9A-Za-z-]`.
fn identifiers(part: &str) -> bool {
    part.is_empty()
        || part
            .split('.')
            .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// A decimal integer as Go's `strconv.ParseInt(s, 10, 64)` reads it.
fn go_int(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The downgrade under way, if any (etcd's `DowngradeInfo`).
#[derive(Debug, Default)]
pub(crate) struct Downgrade {
    target: Option<ClusterVersion>,
}

impl Downgrade {
    /// Runs `action` on a cluster at version `cluster` (None when the server's version is
    /// not one: [`Error::ClusterVersionUnavailable`]); answers the cluster version, as
    /// etcd's `downgradeValidate`, `downgradeEnable` and `downgradeCancel` do.
    pub(crate) fn apply(
        &mut self,
        action: DowngradeAction,
        version: &str,
        cluster: Option<ClusterVersion>,
    ) -> Result<String> {
        match action {
            DowngradeAction::Validate => self.validate(version, cluster),
            DowngradeAction::Enable => {
                let answer = self.validate(version, cluster)?;
                self.target = Some(ClusterVersion::of_target(version)?);
                Ok(answer)
            }
            DowngradeAction::Cancel => {
                let cluster = cluster.ok_or(Error::ClusterVersionUnavailable)?;
                self.target.take().ok_or(Error::NoInflightDowngrade)?;
                Ok(cluster.to_string())
            }
        }
    }

    /// etcd's checks, in its order: the target's form, the cluster version, the target
    /// against the one allowed, and no downgrade under way.
    fn validate(&self, version: &str, cluster: Option<ClusterVersion>) -> Result<String> {
        let target = ClusterVersion::of_target(version)?;
        let cluster = cluster.ok_or(Error::ClusterVersionUnavailable)?;
        if target != cluster.allowed_target() {
            return Err(Error::InvalidDowngradeTargetVersion);
        }
        if self.target.is_some() {
            return Err(Error::DowngradeInProcess);
        }
        Ok(cluster.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The forms etcd 3.5.1 accepts and refuses (checked with its Downgrade VALIDATE).
    #[test]
    fn only_a_server_of_3_5_or_later_has_downgrade() {
        let has = |v: &str| ClusterVersion::of_server(v).unwrap().has_downgrade();
        for without in ["3.4.23", "3.4.0", "3.0.0", "2.3.8"] {
            assert!(!has(without), "{without}");
        }
        for with in ["3.5.0", "3.5.1", "3.6.0-rc.1", "4.0.0"] {
            assert!(has(with), "{with}");
        }
    }

    #[test]
    fn targets_are_read_as_etcd_reads_them() {
        let v34 = Ok(ClusterVersion { major: 3, minor: 4 });
        for ok in ["3.4", "3.4.0", "3.4.9", "3.4.0-rc.1", "3.4.0+build.5"] {
            assert_eq!(ClusterVersion::of_target(ok), v34, "{ok}");
        }
        for bad in ["x", "v3.4", "3.4.0.1", "3.4.x", "3.4.0-a_b", "", "3..4"] {
            assert_eq!(ClusterVersion::of_target(bad), Err(Error::WrongDowngradeVersionFormat), "{bad}");
        }
        assert_eq!(ClusterVersion::of_server("3.5.1").map(|v| v.to_string()).as_deref(), Some("3.5.0"));
    }

    #[test]
    fn a_downgrade_is_validated_enabled_and_cancelled_once() {
        let cluster = ClusterVersion::of_server("3.5.0");
        let mut downgrade = Downgrade::default();
        let validate = DowngradeAction::Validate;
        assert_eq!(downgrade.apply(validate, "3.4", cluster).as_deref(), Ok("3.5.0"));
        assert_eq!(downgrade.apply(validate, "3.3", cluster), Err(Error::InvalidDowngradeTargetVersion));
        assert_eq!(downgrade.apply(validate, "3.5", cluster), Err(Error::InvalidDowngradeTargetVersion));
        assert_eq!(downgrade.apply(DowngradeAction::Cancel, "", cluster), Err(Error::NoInflightDowngrade));
        assert_eq!(downgrade.apply(DowngradeAction::Enable, "3.4", cluster).as_deref(), Ok("3.5.0"));
        assert_eq!(downgrade.apply(validate, "3.4", cluster), Err(Error::DowngradeInProcess));
        assert_eq!(downgrade.apply(DowngradeAction::Enable, "3.4", cluster), Err(Error::DowngradeInProcess));
        assert_eq!(downgrade.apply(DowngradeAction::Cancel, "", cluster).as_deref(), Ok("3.5.0"));
        assert_eq!(downgrade.apply(DowngradeAction::Cancel, "", cluster), Err(Error::NoInflightDowngrade));
        assert_eq!(downgrade.apply(validate, "3.4", None), Err(Error::ClusterVersionUnavailable));
    }
}
