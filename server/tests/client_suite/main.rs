//! One behaviour suite, written once against `etcdlite::client::Client`, run in every place
//! the client runs: in-process over a memory, RocksDB and sled store; over the network to
//! a `TestServer`; to a real etcd started for each scenario; and to a three-member etcd
//! cluster with one member killed in the middle of each scenario. Every scenario asserts
//! what etcd does (revisions, values, errors by code and exact message), so passing
//! everywhere means answering alike everywhere.
//!
//! Where the suite controls time (a `ManualClock` in-process and in the `TestServer`),
//! lease expiry is driven by the clock; against etcd, the scenario waits for it, bounded.

mod auth;
mod coordination;
mod harness;
mod kv;
mod lease;
mod maintenance;
mod txn;
mod watch;

use std::future::Future;

use etcdlite::client::{Code, Error};
use harness::{Place, Target};

/// Runs `scenario` in a fresh `place`.
async fn run<F, Fut>(place: Place, scenario: F)
where
    F: FnOnce(Target) -> Fut,
    Fut: Future<Output = ()>,
{
    scenario(Target::start(place).await).await;
}

/// The status of a failed call: its code and message.
#[track_caller]
fn status<T: std::fmt::Debug>(result: Result<T, Error>) -> (Code, String) {
    match result {
        Err(Error::GRpcStatus(status)) => (status.code(), status.message().to_owned()),
        other => panic!("expected an etcd error status, got {other:?}"),
    }
}

/// Declares, for every place, one test per scenario: `<place>::<scenario>`.
macro_rules! suite {
    ($($module:ident :: $scenario:ident),* $(,)?) => {
        suite!(@place memory, Memory, $($module::$scenario),*);
        #[cfg(feature = "rocksdb")]
        suite!(@place rocksdb, RocksDb, $($module::$scenario),*);
        #[cfg(feature = "sled")]
        suite!(@place sled, Sled, $($module::$scenario),*);
        suite!(@place test_server, TestServer, $($module::$scenario),*);
        suite!(@place etcd, Etcd, $($module::$scenario),*);
        suite!(@place etcd_cluster, EtcdCluster, $($module::$scenario),*);
    };
    (@place $place:ident, $variant:ident, $($module:ident :: $scenario:ident),*) => {
        mod $place {
            $(
                #[tokio::test]
                async fn $scenario() {
                    crate::run(crate::Place::$variant, crate::$module::$scenario).await;
                }
            )*
        }
    };
}

suite!(
    auth::users_roles_and_permissions_are_enforced,
    auth::txns_leases_and_watches_are_checked,
    auth::credentials_are_checked,
    kv::put_and_get_report_revisions_and_versions,
    kv::ranges_take_prefixes_limits_sorts_and_filters,
    kv::deletes_report_what_they_removed,
    kv::bad_requests_fail_as_etcd_fails_them,
    kv::compaction_keeps_the_latest_values_only,
    txn::compare_and_swap_takes_one_branch,
    txn::nested_txns_and_every_compare_target,
    txn::txns_etcd_refuses,
    watch::history_then_live_events_in_order,
    watch::cancel_ends_a_watch,
    watch::a_watch_from_a_compacted_revision_is_cancelled,
    watch::streams_carry_many_watches_with_filters,
    watch::progress_is_reported_on_request,
    watch::failed_creates_are_answered_in_band,
    lease::grant_attach_inspect_and_revoke,
    lease::keepers_renew_and_their_stream_answers,
    lease::leases_expire_with_their_keys,
    lease::chosen_ids_and_their_errors,
    maintenance::status_and_members_name_one_leader,
    maintenance::alarms_are_listed_raised_and_cleared,
    maintenance::hash_kv_is_etcds_hash,
    maintenance::snapshots_end_with_their_sha256,
    maintenance::defragment_and_hash_answer,
    coordination::a_lock_excludes_under_contention_and_counts_exactly,
    coordination::try_lock_fails_at_once_and_leaves_nothing_behind,
    coordination::a_dead_holders_lock_passes_to_the_next_waiter,
    coordination::an_election_hands_over_and_observe_sees_every_leader,
    coordination::a_distributed_lock_passes_on_when_its_holder_dies,
    coordination::registered_instances_vanish_within_their_ttl,
    coordination::config_values_round_trip_and_prefix_watches_keep_order,
    coordination::stm_transfers_keep_the_total_at_every_serializable_level,
    coordination::recipes_queue_barrier_and_semaphore,
);
