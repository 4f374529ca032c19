//! Faults a server injects on command, so that tests can drive a client's retry paths:
//! slow calls, Unavailable answers, watch streams cut off, keep-alives left unanswered, a
//! watch cancelled as compacted. None is active unless a test turns it on (see
//! [`TestServer::faults`](crate::TestServer::faults)).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

/// The message of an injected Unavailable answer.
pub const INJECTED_UNAVAILABLE: &str = "etcdlite: injected fault: unavailable";
/// The message that ends a watch stream cut off by [`Faults::drop_watch_streams`].
pub const INJECTED_WATCH_DROP: &str = "etcdlite: injected fault: watch stream dropped";

/// The faults a server injects. Every setting takes effect on the next call.
pub struct Faults {
    latency_micros: AtomicU64,
    /// The share of calls answered Unavailable, in millionths.
    unavailable_ppm: AtomicU32,
    ignore_keep_alives: AtomicBool,
    compact_next_watch: AtomicBool,
    /// Bumped to cut every open watch stream.
    watch_drops: watch::Sender<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency_micros: AtomicU64::new(0),
            unavailable_ppm: AtomicU32::new(0),
            ignore_keep_alives: AtomicBool::new(false),
            compact_next_watch: AtomicBool::new(false),
            watch_drops: watch::Sender::new(0),
        }
    }
}

impl Faults {
    /// Delays every gRPC call by `latency` before it is served (zero: no delay).
    pub fn set_latency(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_micros.store(micros, Ordering::SeqCst);
    }

    /// The delay added to every gRPC call.
    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_micros.load(Ordering::SeqCst))
    }

    /// Answers this share of gRPC calls (0.0 to 1.0; outside, clamped) with Unavailable
    /// `etcdlite: injected fault: unavailable` instead of serving them, as a cluster
    /// without a leader or a member going away answers.
    pub fn set_unavailable_rate(&self, rate: f64) {
        let ppm = (rate.clamp(0.0, 1.0) * 1_000_000.0).round() as u32;
        self.unavailable_ppm.store(ppm, Ordering::SeqCst);
    }

    /// True when this call is to be answered Unavailable.
    pub(crate) fn unavailable_now(&self) -> bool {
        let ppm = self.unavailable_ppm.load(Ordering::SeqCst);
        ppm > 0 && fastrand::u32(0..1_000_000) < ppm
    }

    /// Ends every watch stream open now with Unavailable `etcdlite: injected fault: watch
    /// stream dropped` (its watches gone), as a member that restarts or loses its leader
    /// ends them; streams opened later are not affected.
    pub fn drop_watch_streams(&self) {
        self.watch_drops.send_modify(|drops| *drops += 1);
    }

    /// Resolves when [`drop_watch_streams`](Faults::drop_watch_streams) is next called.
    pub(crate) fn watch_dropped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut drops = self.watch_drops.subscribe();
        async move {
            // Only a call after this subscription counts; the sender lives as long as the
            // node, so an error means the server is going away, which ends streams anyway.
            if drops.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// While on, keep-alive requests are read but not answered, and the lease is not
    /// renewed (a keep-alive stream that stalls, until the lease expires).
    pub fn ignore_keep_alives(&self, ignore: bool) {
        self.ignore_keep_alives.store(ignore, Ordering::SeqCst);
    }

    /// True while keep-alives are ignored.
    pub fn keep_alives_ignored(&self) -> bool {
        self.ignore_keep_alives.load(Ordering::SeqCst)
    }

    /// Answers the next watch created (on any stream) as if its start revision had been
    /// compacted: `created`, then cancelled with `compact_revision` set to the current
    /// revision, the answer a client must resync from.
    pub fn compact_next_watch(&self) {
        self.compact_next_watch.store(true, Ordering::SeqCst);
    }

    /// True, once, after [`compact_next_watch`](Faults::compact_next_watch).
    pub(crate) fn take_compact_next_watch(&self) -> bool {
        self.compact_next_watch.swap(false, Ordering::SeqCst)
    }

    /// Turns every fault off.
    pub fn clear(&self) {
        self.set_latency(Duration::ZERO);
        self.set_unavailable_rate(0.0);
        self.ignore_keep_alives(false);
        self.compact_next_watch.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_clamped_and_all_or_nothing_at_the_ends() {
        let faults = Faults::default();
        assert!(!faults.unavailable_now());
        faults.set_unavailable_rate(7.0);
        assert!((0..100).all(|_| faults.unavailable_now()));
        faults.clear();
        assert!((0..100).all(|_| !faults.unavailable_now()));
        faults.set_latency(Duration::MAX);
        assert!(faults.latency() >= Duration::from_secs(1 << 40));
    }

    #[test]
    fn compact_next_watch_fires_once() {
        let faults = Faults::default();
        faults.compact_next_watch();
        assert!(faults.take_compact_next_watch());
        assert!(!faults.take_compact_next_watch());
    }
}
