//! Where lease deadlines get the time from.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// A callback a store registers with its clock, to look for expired leases.
pub type Wake = dyn Fn() + Send + Sync;

/// The furthest a [`ManualClock`] moves from its creation, and the furthest ahead a
/// deadline is set: about 10,000 years, which every `Instant` holds.
pub(crate) const FAR_FUTURE: Duration = Duration::from_secs(10_000 * 365 * 24 * 60 * 60);

/// `at + by`, or [`FAR_FUTURE`] after `at` when `by` is longer (a `Duration` such as
/// `Duration::MAX` would overflow an `Instant`).
pub(crate) fn later(at: Instant, by: Duration) -> Instant {
    at + by.min(FAR_FUTURE)
}

/// The time source of lease deadlines.
///
/// [`SystemClock`] is the default. [`ManualClock`] moves only when told to, so tests can
/// make a lease expire exactly when they want, without sleeping.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Instant;

    /// Registers `wake`, to be called every time the clock jumps forward, and returns true;
    /// a store then expires leases from inside those calls. A clock that moves on its own
    /// returns false (the default), and the store checks for expired leases on a background
    /// thread instead.
    fn on_advance(&self, wake: Weak<Wake>) -> bool {
        let _ = wake;
        false
    }
}

/// The real, monotonic clock. Stores using it expire leases from a background thread that
/// checks every 500 ms, as etcd does.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when [`advance`](ManualClock::advance) is called. Every store
/// opened with it expires its due leases inside `advance`, before it returns: no sleeping,
/// no background thread, no race.
///
/// Clones share one time line.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use etcdlite::{ManualClock, Options, PutOptions, Store};
///
/// let clock = ManualClock::new();
/// let store = Store::open(Options::memory().clock(Arc::new(clock.clone())))?;
/// let lease = store.lease_grant(5, None)?.id();
/// store.put("session", "alive", Some(PutOptions::new().with_lease(lease)))?;
///
/// clock.advance(Duration::from_secs(4));
/// assert_eq!(store.get("session", None)?.count(), 1);
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(store.get("session", None)?.count(), 0);
/// # Ok::<(), etcdlite::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct ManualClock {
    shared: Arc<Shared>,
}

struct Shared {
    start: Instant,
    elapsed: Mutex<Duration>,
    wakes: Mutex<Vec<Weak<Wake>>>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared { start: Instant::now(), elapsed: Mutex::new(Duration::ZERO), wakes: Mutex::new(Vec::new()) }
    }
}

impl ManualClock {
    /// A clock standing still at the moment of its creation.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves time forward by `by`, then lets every store on this clock expire the leases
    /// that are now due. The clock stops about 10,000 years after its creation: an advance
    /// past that (`Duration::MAX`, say) takes it there.
    pub fn advance(&self, by: Duration) {
        {
            let mut elapsed = self.shared.elapsed.lock();
            *elapsed = elapsed.saturating_add(by).min(FAR_FUTURE);
        }
        let wakes: Vec<_> = {
            let mut wakes = self.shared.wakes.lock();
            wakes.retain(|w| w.strong_count() > 0);
            wakes.iter().filter_map(Weak::upgrade).collect()
        };
        for wake in wakes {
            wake();
        }
    }

    /// How far the clock has been advanced since it was created.
    pub fn elapsed(&self) -> Duration {
        *self.shared.elapsed.lock()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.shared.start + *self.shared.elapsed.lock()
    }

    fn on_advance(&self, wake: Weak<Wake>) -> bool {
        self.shared.wakes.lock().push(wake);
        true
    }
}

impl std::fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManualClock").field("elapsed", &self.elapsed()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn an_advance_too_large_for_an_instant_stops_the_clock_far_ahead() {
        let clock = ManualClock::new();
        let start = clock.now();
        clock.advance(Duration::MAX);
        clock.advance(Duration::MAX);
        assert_eq!(clock.elapsed(), FAR_FUTURE);
        assert_eq!(clock.now(), start + FAR_FUTURE);
        assert_eq!(later(clock.now(), Duration::MAX), start + FAR_FUTURE + FAR_FUTURE);
    }

    #[test]
    fn manual_time_moves_only_when_advanced_and_wakes_live_subscribers() {
        let clock = ManualClock::new();
        let t0 = clock.now();
        assert_eq!(clock.now(), t0);
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let wake: Arc<Wake> = Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        assert!(clock.clone().on_advance(Arc::downgrade(&wake)));
        clock.advance(Duration::from_secs(3));
        assert_eq!(clock.now() - t0, Duration::from_secs(3));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        drop(wake);
        clock.advance(Duration::from_secs(1));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(clock.elapsed(), Duration::from_secs(4));
    }

    #[test]
    fn the_system_clock_asks_for_a_polling_thread() {
        let wake: Arc<Wake> = Arc::new(|| {});
        assert!(!SystemClock.on_advance(Arc::downgrade(&wake)));
    }
}
