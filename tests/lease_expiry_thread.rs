//! The expiry thread a store runs when its clock moves on its own (as `SystemClock` does):
//! due leases are revoked without anyone calling into the store, and dropping the store
//! stops the thread. The clock here jumps on command but, like `SystemClock`, tells the
//! store nothing, so only the thread can notice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use etcdlite::{Clock, Options, PutOptions, Store};
use parking_lot::Mutex;

struct SilentClock {
    start: Instant,
    offset: Mutex<Duration>,
}

impl Clock for SilentClock {
    fn now(&self) -> Instant {
        self.start + *self.offset.lock()
    }
}

#[test]
fn the_expiry_thread_revokes_due_leases_and_stops_with_the_store() {
    let clock = Arc::new(SilentClock { start: Instant::now(), offset: Mutex::new(Duration::ZERO) });
    let store = Store::open(Options::memory().clock(clock.clone())).unwrap();
    let lease = store.lease_grant(60, None).unwrap().id();
    store.put("k", "v", Some(PutOptions::new().with_lease(lease))).unwrap();
    *clock.offset.lock() += Duration::from_secs(60);
    // The thread checks every 500 ms; give it up to 20 checks.
    let mut waited = 0;
    while store.get("k", None).unwrap().count() == 1 && waited < 200 {
        std::thread::sleep(Duration::from_millis(50));
        waited += 1;
    }
    assert_eq!(store.get("k", None).unwrap().count(), 0, "the expiry thread revoked the lease");
    assert_eq!(store.lease_time_to_live(lease, None).unwrap().ttl(), -1);
    // Dropping joins the thread; the clock is then the test's alone again.
    drop(store);
    assert_eq!(Arc::strong_count(&clock), 1);
}
