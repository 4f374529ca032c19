//! One put at a time and who has its event: the bookkeeping of a watch fan-out test, shared
//! by `etcdlite-load watch` and `server/benches/watch_fanout.rs` (each includes this file).

use std::time::{Duration, Instant};

/// What the writer's puts and the watchers share: the put under way and who has its event.
pub struct Rounds {
    /// Watchers in all: a round is complete when every one has the event.
    watchers: usize,
    round: parking_lot::Mutex<Round>,
    /// Told when the round under way is complete.
    complete: tokio::sync::Notify,
}

/// One put and its deliveries.
struct Round {
    /// The put's sequence number (`u64::MAX` between rounds: every event is then late).
    seq: u64,
    /// When the put was sent.
    sent: Instant,
    /// Watchers that have the event.
    received: usize,
    /// Every watcher's latency of every round, for the report.
    latencies: Vec<Duration>,
}

impl Rounds {
    pub fn new(watchers: usize) -> Rounds {
        let round = Round { seq: u64::MAX, sent: Instant::now(), received: 0, latencies: Vec::new() };
        Rounds { watchers, round: parking_lot::Mutex::new(round), complete: tokio::sync::Notify::new() }
    }

    /// Starts the round of put `seq`, sent now.
    pub fn start(&self, seq: u64) {
        let mut round = self.round.lock();
        round.seq = seq;
        round.received = 0;
        round.sent = Instant::now();
    }

    /// A watcher got the event of put `seq` at `at`; an event of an earlier round (already
    /// counted as lost) is ignored.
    pub fn arrived(&self, seq: u64, at: Instant) {
        let mut round = self.round.lock();
        if round.seq != seq {
            return;
        }
        let latency = at.saturating_duration_since(round.sent);
        round.latencies.push(latency);
        round.received += 1;
        if round.received == self.watchers {
            self.complete.notify_one();
        }
    }

    /// Waits until every watcher has the event of the round under way or `give_up` comes,
    /// then ends the round; the watchers that had it.
    pub async fn finish(&self, give_up: tokio::time::Instant) -> usize {
        let all_in = async {
            // A wake-up left over from a round that ended by timing out is not this one's.
            while self.round.lock().received < self.watchers {
                self.complete.notified().await;
            }
        };
        let _ = tokio::time::timeout_at(give_up, all_in).await;
        let mut round = self.round.lock();
        round.seq = u64::MAX;
        round.received
    }

    /// Every latency recorded so far, taken out.
    pub fn take_latencies(&self) -> Vec<Duration> {
        std::mem::take(&mut self.round.lock().latencies)
    }
}

#[cfg(test)]
mod tests {
    // No imports: a bench that includes this file compiles it with cfg(test) but without
    // its #[test] functions, where they would be unused.
    #[test]
    fn rounds_count_only_the_events_of_the_put_under_way() {
        use std::time::{Duration, Instant};
        let rounds = super::Rounds::new(2);
        rounds.arrived(0, Instant::now()); // before any round: late
        rounds.start(0);
        rounds.arrived(0, Instant::now());
        rounds.arrived(7, Instant::now()); // another put's event
        assert_eq!(rounds.round.lock().received, 1);
        rounds.arrived(0, Instant::now());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let give_up = runtime.block_on(async { tokio::time::Instant::now() + Duration::from_secs(60) });
        assert_eq!(runtime.block_on(rounds.finish(give_up)), 2);
        rounds.arrived(0, Instant::now()); // after the round ended
        assert_eq!(rounds.take_latencies().len(), 2);
        // A round that times out reports who had the event.
        rounds.start(1);
        rounds.arrived(1, Instant::now());
        assert_eq!(runtime.block_on(rounds.finish(tokio::time::Instant::now())), 1);
    }
}
