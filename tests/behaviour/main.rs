//! The behaviour suite: every case is written once, in the modules below, and run against
//! every engine by `suite!`. Persistent engines also reopen their data from disk; the
//! memory engine "reopens" by building a new store over the same engine instance, which
//! runs the same restore path.

mod auth;
mod compaction;
mod concurrency;
mod engine;
mod harness;
mod kv;
mod lease;
mod maintenance;
mod persistence;
mod txn;
mod watch;

/// Instantiates each listed case once per engine: `memory::case`, `rocksdb::case`,
/// `sled::case`, and on the persistent engines again with sync on: `rocksdb_synced::case`,
/// `sled_synced::case`.
macro_rules! suite {
    ($($module:ident :: $case:ident),* $(,)?) => {
        mod memory {
            $( #[test] fn $case() { crate::$module::$case(&crate::harness::Harness::memory()); } )*
        }
        #[cfg(feature = "rocksdb")]
        mod rocksdb {
            $( #[test] fn $case() { crate::$module::$case(&crate::harness::Harness::rocksdb()); } )*
        }
        #[cfg(feature = "sled")]
        mod sled {
            $( #[test] fn $case() { crate::$module::$case(&crate::harness::Harness::sled()); } )*
        }
        #[cfg(feature = "rocksdb")]
        mod rocksdb_synced {
            $( #[test] fn $case() { crate::$module::$case(&crate::harness::Harness::rocksdb_synced()); } )*
        }
        #[cfg(feature = "sled")]
        mod sled_synced {
            $( #[test] fn $case() { crate::$module::$case(&crate::harness::Harness::sled_synced()); } )*
        }
    };
}

suite!(
    auth::auth_state_survives_reopening,
    auth::auth_state_survives_a_snapshot_restore,
    auth::auth_changes_follow_etcds_rules,
    auth::authentication_checks_passwords_and_auth_state,
    auth::simple_tokens_expire_on_the_stores_clock,
    auth::kv_requests_are_checked_as_etcd_checks_them,
    auth::a_permission_change_applies_to_the_next_request,
    auth::leases_are_checked_as_etcd_checks_them,
    auth::administration_needs_the_root_role,
    engine::engine_scans_respect_bounds_in_both_directions,
    engine::engine_scans_stop_when_the_visitor_breaks,
    engine::engine_keyspaces_are_independent_and_batches_span_them,
    engine::engine_snapshots_do_not_see_later_writes,
    engine::engine_stats_grow_with_data,
    engine::engine_data_survives_reopening,
    kv::an_empty_store_is_at_revision_1,
    kv::the_first_put_creates_the_key_at_revision_2,
    kv::later_puts_keep_create_revision_and_bump_version,
    kv::put_prev_kv_returns_the_previous_key_value,
    kv::async_writes_apply_as_blocking_ones_and_are_visible_once_resolved,
    kv::ignore_value_and_ignore_lease_keep_the_current_ones,
    kv::ignore_flags_on_a_missing_key_fail_and_change_nothing,
    kv::ignore_flags_refuse_a_value_or_a_lease,
    kv::a_put_with_an_unknown_lease_fails_and_writes_nothing,
    kv::empty_keys_are_refused,
    kv::range_end_follows_etcds_conventions,
    kv::limit_cuts_kvs_but_not_count,
    kv::count_only_returns_the_count_alone,
    kv::keys_only_drops_values_and_keeps_the_rest,
    kv::every_sort_target_and_order,
    kv::sorting_with_a_limit_sorts_before_truncating,
    kv::sort_order_none_with_a_limit_sorts_only_the_first_limit_plus_one_keys,
    kv::mod_and_create_revision_filters_do_not_change_count,
    kv::reads_at_past_revisions_see_history,
    kv::delete_reports_what_it_removed_in_key_order,
    kv::a_delete_that_matches_nothing_keeps_the_revision,
    kv::a_key_put_after_a_delete_starts_a_new_generation,
    kv::oversized_writes_are_refused_and_change_nothing,
    txn::compare_and_swap_takes_the_matching_branch,
    txn::compares_read_each_target,
    txn::a_missing_key_compares_as_zeros_except_for_value,
    txn::range_compares_must_hold_for_every_key,
    txn::a_txn_is_one_revision_and_its_reads_see_its_writes,
    txn::a_txn_that_writes_nothing_keeps_the_revision,
    txn::nested_txns_decide_from_the_state_before_the_outer_txn,
    txn::duplicate_writes_are_refused_before_anything_runs,
    txn::too_many_ops_are_refused,
    txn::only_the_chosen_branch_is_checked,
    txn::a_negative_revision_in_a_txn_range_reads_as_compacted,
    compaction::compaction_refuses_future_and_compacted_revisions,
    compaction::reads_below_the_compacted_revision_fail,
    compaction::compaction_keeps_the_latest_revision_of_each_key,
    compaction::physical_compaction_removes_superseded_records_and_old_tombstones,
    compaction::compaction_keeps_version_and_create_revision,
    compaction::a_compaction_interrupted_by_a_failure_finishes_on_reopen,
    compaction::compaction_at_a_txn_that_deleted_and_recreated_a_key_keeps_the_new_key,
    concurrency::concurrent_writers_get_gapless_strictly_increasing_revisions,
    concurrency::every_concurrent_read_sees_one_revision,
    concurrency::concurrent_compare_and_swap_transfers_keep_the_total,
    concurrency::compaction_during_reads_of_the_past_never_serves_wrong_data,
    lease::grants_raise_short_ttls_refuse_huge_ones_and_take_no_revision,
    lease::a_chosen_id_is_used_once,
    lease::revoke_deletes_every_attached_key_in_one_revision,
    lease::puts_with_unknown_or_revoked_leases_fail_and_write_nothing,
    lease::keys_move_between_leases_and_deletes_detach_them,
    lease::a_lease_expires_exactly_when_the_clock_reaches_its_ttl,
    lease::keep_alive_renews_to_the_full_ttl,
    lease::time_to_live_rounds_down_and_lists_keys,
    lease::leases_are_listed_soonest_to_expire_first,
    lease::leases_survive_reopening_with_their_full_ttl,
    lease::a_revoke_that_fails_to_write_changes_nothing,
    lease::expiry_among_concurrent_writers_keeps_revisions_gapless,
    maintenance::hash_kv_equals_etcds_hash_on_every_engine_and_after_reopening,
    maintenance::hash_kv_refuses_future_and_compacted_revisions,
    maintenance::hash_kv_of_a_past_revision_ignores_later_writes,
    maintenance::store_hash_follows_every_keyspace_and_survives_reopening,
    maintenance::a_restored_snapshot_keeps_revisions_history_compaction_and_leases,
    maintenance::restoring_into_a_store_that_holds_data_is_refused_and_changes_nothing,
    maintenance::a_truncated_or_damaged_snapshot_is_refused_and_loads_nothing,
    maintenance::a_half_restored_engine_is_refused_by_open,
    maintenance::a_snapshot_taken_during_writes_is_one_revision,
    maintenance::defragment_changes_neither_data_nor_revision,
    maintenance::db_size_grows_with_data_and_in_use_is_at_most_total,
    persistence::reopening_gives_back_keys_history_and_revisions,
    persistence::a_failed_write_changes_nothing,
    persistence::a_corrupt_record_is_reported_not_served,
    persistence::another_schema_version_is_refused,
    persistence::the_store_is_send_and_sync,
    watch::store_watch_takes_the_created_response_and_gives_the_first_id,
    watch::a_new_watch_sends_created_first_at_the_current_revision,
    watch::auto_watch_ids_start_at_0_increment_and_skip_ids_in_use,
    watch::a_chosen_watch_id_is_used_and_a_duplicate_is_refused_without_a_response,
    watch::a_watch_on_an_empty_range_is_refused,
    watch::an_empty_key_watches_the_nul_key_and_with_a_nul_range_end_every_key,
    watch::a_watch_from_a_negative_start_revision_is_refused_as_compacted,
    watch::a_watch_from_now_sees_only_later_events,
    watch::key_range_prefix_and_from_key_watches_see_only_their_keys,
    watch::watched_put_events_carry_the_full_key_value_and_delete_events_only_key_and_revision,
    watch::a_txns_watch_events_arrive_in_one_response_in_op_order,
    watch::deleting_a_prefix_sends_one_watch_response_with_every_delete_in_key_order,
    watch::lease_revoke_and_expiry_send_watch_delete_events,
    watch::watch_prev_kv_is_set_for_updates_and_deletes_but_not_creations,
    watch::watch_prev_kv_is_left_out_when_the_previous_revision_is_compacted,
    watch::a_watch_event_keeps_its_prev_kv_when_compaction_comes_before_the_read,
    watch::watch_events_read_after_the_store_drops_keep_their_prev_kv,
    watch::watch_filters_no_put_and_no_delete_send_no_response_for_filtered_events,
    watch::watch_filters_apply_to_history_too,
    watch::a_watch_from_a_past_revision_replays_history_then_continues_live,
    watch::a_watch_catching_up_under_concurrent_writes_misses_and_repeats_nothing,
    watch::a_watch_from_a_future_revision_delivers_only_events_from_it_on,
    watch::history_written_before_a_reopen_can_be_watched,
    watch::watch_from_compacted_revision_is_cancelled,
    watch::watch_from_exactly_the_compacted_revision_sees_its_events_including_a_delete,
    watch::a_synced_watcher_is_never_cancelled_by_compaction,
    watch::watches_from_the_past_racing_writes_and_compaction_are_complete_or_cancelled,
    watch::cancelling_a_watch_sends_a_canceled_response_and_stops_its_events,
    watch::cancelling_an_unknown_watch_id_sends_nothing,
    watch::a_watch_progress_request_is_answered_once_after_every_earlier_event,
    watch::a_progress_request_on_a_stream_without_watches_gets_no_answer,
    watch::a_watch_progress_request_is_dropped_until_a_future_start_revision_is_reached,
    watch::periodic_progress_carries_the_watch_id_and_skips_ticks_with_events,
    watch::a_slow_watch_reader_blocks_no_writer_and_catches_up_without_gap_or_repeat,
    watch::a_slow_watcher_whose_history_is_compacted_is_cancelled,
    watch::a_watch_replaying_long_history_into_a_one_response_stream_gets_every_event,
    watch::a_watch_reader_racing_writers_on_a_small_stream_misses_and_repeats_nothing,
    watch::periodic_watch_progress_is_not_sent_to_a_watcher_that_fell_behind,
    watch::cancelling_a_watch_that_fell_behind_ends_its_catch_up,
    watch::dropping_the_stream_cancels_its_watches,
    watch::dropping_the_store_ends_its_watch_streams,
    watch::an_async_watch_reader_is_woken_by_each_event,
    watch::an_async_watch_reader_sees_the_stream_end_when_the_store_drops,
);
