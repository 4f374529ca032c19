//! Where the suite runs: the places an `etcdlite::client::Client` can run, each set up
//! fresh for one scenario and torn down after it.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcdlite::client::{Client, ConnectOptions};
use etcdlite::{ManualClock, Options, Store};
use etcdlite_server::TestServer;

#[path = "../common/etcd.rs"]
mod etcd;
use etcd::EtcdMember;

/// The longest one call of a scenario may take before the scenario fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// `fut`, or a panic naming `what` if it takes longer than [`WAIT`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: no answer within {WAIT:?}"),
    }
}

/// The places the suite runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// `Client::embedded` over a memory store on a manual clock.
    Memory,
    /// `Client::embedded` over RocksDB, synced, on a manual clock (feature `rocksdb`).
    #[cfg(feature = "rocksdb")]
    RocksDb,
    /// `Client::embedded` over sled, synced, on a manual clock (feature `sled`).
    #[cfg(feature = "sled")]
    Sled,
    /// `Client::connect` to a `TestServer` on a manual clock.
    TestServer,
    /// `Client::connect` to a real etcd, started for the scenario.
    Etcd,
    /// `Client::connect` to a three-member etcd cluster; one member is killed at the
    /// scenario's [`midpoint`](Target::midpoint).
    EtcdCluster,
}

/// One place, set up for one scenario: a client of it, and what the scenario may do to it.
pub struct Target {
    pub place: Place,
    client: Option<Client>,
    /// The endpoints a network client connects to (none in-process).
    endpoints: Vec<String>,
    clock: Option<ManualClock>,
    /// Keeps a persistent engine's directory until the scenario ends.
    _dir: Option<tempfile::TempDir>,
    _server: Option<TestServer>,
    etcd: Vec<EtcdMember>,
}

impl Target {
    /// Sets `place` up.
    pub async fn start(place: Place) -> Target {
        let clock = ManualClock::new();
        // bcrypt at its cheapest cost where the suite sets the store up (etcd keeps its 10).
        let manual = |options: Options, clock| Options::clock(options.with_bcrypt_cost(4), clock);
        let mut target = Target {
            place,
            client: None,
            endpoints: Vec::new(),
            clock: None,
            _dir: None,
            _server: None,
            etcd: Vec::new(),
        };
        target.client = Some(match place {
            Place::Memory => embed(manual(Options::memory(), Arc::new(clock.clone()))).await,
            #[cfg(feature = "rocksdb")]
            Place::RocksDb => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let options = Options::rocksdb(dir.path().join("db"));
                target._dir = Some(dir);
                embed(manual(options, Arc::new(clock.clone()))).await
            }
            #[cfg(feature = "sled")]
            Place::Sled => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let options = Options::sled(dir.path().join("db"));
                target._dir = Some(dir);
                embed(manual(options, Arc::new(clock.clone()))).await
            }
            Place::TestServer => {
                let server = TestServer::builder()
                    .options(Options::memory().with_bcrypt_cost(4))
                    .clock(clock.clone())
                    .start()
                    .expect("start a TestServer");
                target.endpoints = vec![server.endpoint()];
                let client = connect(&[server.endpoint()]).await;
                target._server = Some(server);
                client
            }
            Place::Etcd => {
                target.etcd = etcd_cluster(1).await;
                target.endpoints = endpoints(&target.etcd);
                connect(&target.endpoints).await
            }
            Place::EtcdCluster => {
                target.etcd = etcd_cluster(3).await;
                // A follower first: the client's calls go there until it is killed.
                let leader = leader_position(&target.etcd).await;
                target.etcd.swap(0, (leader + 1) % 3);
                target.endpoints = endpoints(&target.etcd);
                connect(&target.endpoints).await
            }
        });
        if !target.is_etcd() {
            target.clock = Some(clock);
        }
        target
    }

    /// A client of the place (clones share it).
    pub fn client(&self) -> Client {
        self.client.clone().expect("set by start")
    }

    /// Another client of the same place, whose calls are `user`'s (authenticated with
    /// `password` as it connects).
    pub async fn client_as(&self, user: &str, password: &str) -> Result<Client, etcdlite::client::Error> {
        let options = ConnectOptions::new().with_user(user, password);
        match self.client().store() {
            Some(store) => Client::embedded(store.clone(), Some(options)).await,
            None => {
                let options = options.with_connect_timeout(Duration::from_secs(5)).with_timeout(WAIT);
                within("connect as a user", Client::connect(&self.endpoints, Some(options))).await
            }
        }
    }

    /// The manual clock leases follow, where the suite controls time.
    pub fn clock(&self) -> Option<&ManualClock> {
        self.clock.as_ref()
    }

    /// True where the place is a real etcd.
    pub fn is_etcd(&self) -> bool {
        matches!(self.place, Place::Etcd | Place::EtcdCluster)
    }

    /// Waits until `done` holds: at once after advancing the manual clock by `advance`
    /// where there is one, otherwise polling, as real time passes, for at most [`WAIT`].
    pub async fn after_time<F, Fut>(&self, advance: Duration, mut done: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        if let Some(clock) = &self.clock {
            clock.advance(advance);
            assert!(done().await, "not done once the clock moved on by {advance:?}");
            return;
        }
        let deadline = Instant::now() + WAIT + advance;
        while !done().await {
            assert!(Instant::now() < deadline, "not done {:?} after the time passed", WAIT);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The middle of a scenario: on the three-member cluster, the member the client's calls
    /// go to (a follower, so the cluster keeps its leader) is killed here, and the scenario
    /// carries on with the other two. Elsewhere nothing happens.
    pub async fn midpoint(&mut self) {
        if self.place == Place::EtcdCluster && self.etcd.len() == 3 {
            let mut member = self.etcd.remove(0);
            member.kill();
            // The client's next call goes to the stopped member's broken connection; it is
            // a read, which the client sends again to the next member, so the scenario's
            // writes go where a live member answers (a write on a broken connection is
            // not sent again: it may have been applied).
            let mut c = self.client();
            within("a read after a member stopped", c.get("midpoint", None))
                .await
                .expect("the client carries on");
        }
    }
}

async fn embed(options: Options) -> Client {
    let store = Store::open(options).expect("open the store");
    Client::embedded(store, None).await.expect("an embedded client")
}

async fn connect(endpoints: &[String]) -> Client {
    let options = ConnectOptions::new().with_connect_timeout(Duration::from_secs(5)).with_timeout(WAIT);
    within("connect", Client::connect(endpoints, Some(options))).await.expect("connect")
}

fn endpoints(etcd: &[EtcdMember]) -> Vec<String> {
    etcd.iter().map(|e| e.endpoint()).collect()
}

/// Which of `members` leads their cluster.
async fn leader_position(members: &[EtcdMember]) -> usize {
    for (i, member) in members.iter().enumerate() {
        let mut c = connect(&[member.endpoint()]).await;
        let status = within("status", c.status()).await.expect("status");
        if status.header().map(|h| h.member_id()) == Some(status.leader()) {
            return i;
        }
    }
    panic!("no member of the cluster leads it");
}

/// Starts an etcd cluster of `members`, returning once every member answers. A cluster
/// that does not come up (a port taken between choosing it and etcd binding it, or a
/// machine too busy for its first election) is stopped and started again on new ports.
async fn etcd_cluster(members: usize) -> Vec<EtcdMember> {
    const TRIES: usize = 3;
    for attempt in 1..=TRIES {
        let started = EtcdMember::cluster(members, &[]);
        let mut ready = true;
        for member in &started {
            ready = ready && member.answers_within(WAIT).await;
        }
        if ready {
            return started;
        }
        eprintln!("an etcd cluster of {members} was not ready after {WAIT:?} (try {attempt} of {TRIES})");
    }
    panic!("no etcd cluster of {members} came up in {TRIES} tries");
}
