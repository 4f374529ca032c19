//! Model test for leases: random puts (with and without leases), deletes, grants,
//! keep-alives, revokes, time-to-live queries, clock advances and reopens, each answer
//! checked against a small reference model of etcd's lease rules (etcd-semantics.md
//! section 4), and the whole keyspace and revision checked after every step.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use etcdlite::engine::MemoryEngine;
use etcdlite::{
    Error, GetOptions, LeaseGrantOptions, LeaseTimeToLiveOptions, ManualClock, Options, PutOptions, Store,
};
use proptest::prelude::*;
use proptest::sample::select;

const KEYS: &[&str] = &["a", "b", "c", "d", "e"];
/// Ids tests may choose; the store picks others.
const CHOSEN_IDS: &[i64] = &[1, 2, 3];

#[derive(Clone, Debug)]
enum Op {
    /// TTL asked for, and an id chosen from `CHOSEN_IDS` or none.
    Grant {
        ttl: i64,
        id: Option<i64>,
    },
    /// `lease` picks among the ids seen so far (and 0 or an unknown id now and then).
    Revoke {
        lease: usize,
    },
    KeepAlive {
        lease: usize,
    },
    TimeToLive {
        lease: usize,
    },
    Put {
        key: &'static str,
        value: u8,
        lease: usize,
        leased: bool,
    },
    Delete {
        key: &'static str,
    },
    Advance {
        millis: u64,
    },
    Leases,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => ((-1i64..12), prop::option::weighted(0.3, select(CHOSEN_IDS))).prop_map(|(ttl, id)| Op::Grant { ttl, id }),
        1 => any::<usize>().prop_map(|lease| Op::Revoke { lease }),
        2 => any::<usize>().prop_map(|lease| Op::KeepAlive { lease }),
        1 => any::<usize>().prop_map(|lease| Op::TimeToLive { lease }),
        5 => (select(KEYS), any::<u8>(), any::<usize>(), prop::bool::weighted(0.7))
            .prop_map(|(key, value, lease, leased)| Op::Put { key, value, lease, leased }),
        1 => select(KEYS).prop_map(|key| Op::Delete { key }),
        3 => prop_oneof![(0u64..3000), (1u64..=6).prop_map(|s| s * 1000)].prop_map(|millis| Op::Advance { millis }),
        1 => Just(Op::Leases),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Clone, Debug)]
struct Lease {
    ttl: i64,
    /// Milliseconds on the model's clock.
    expiry: u64,
}

#[derive(Default)]
struct Model {
    now: u64,
    revision: i64,
    leases: BTreeMap<i64, Lease>,
    /// key -> (value, lease)
    keys: BTreeMap<String, (Vec<u8>, i64)>,
    /// Every id granted so far, live or not, in order.
    seen: Vec<i64>,
}

impl Model {
    fn pick(&self, i: usize) -> i64 {
        // One pick in eight is 0 or an id nobody granted.
        match i % 8 {
            0 => 0,
            1 => 424_242,
            _ if self.seen.is_empty() => 0,
            _ => self.seen[(i / 8) % self.seen.len()],
        }
    }

    /// Removes lease `id` and its keys; one revision if it had any.
    fn revoke(&mut self, id: i64) {
        self.leases.remove(&id);
        let before = self.keys.len();
        self.keys.retain(|_, (_, lease)| *lease != id);
        if self.keys.len() != before {
            self.revision += 1;
        }
    }

    fn advance(&mut self, millis: u64) {
        self.now += millis;
        let mut due: Vec<(u64, i64)> =
            self.leases.iter().filter(|(_, l)| l.expiry <= self.now).map(|(&id, l)| (l.expiry, id)).collect();
        due.sort();
        for (_, id) in due {
            self.revoke(id);
        }
    }

    fn ids_by_expiry(&self) -> Vec<i64> {
        let mut ids: Vec<(u64, i64)> = self.leases.iter().map(|(&id, l)| (l.expiry, id)).collect();
        ids.sort();
        ids.into_iter().map(|(_, id)| id).collect()
    }
}

fn check_state(store: &Store, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(store.current_revision(), model.revision);
    let all = store.get("", Some(GetOptions::new().with_all_keys())).unwrap();
    let got: Vec<(String, Vec<u8>, i64)> = all
        .kvs
        .iter()
        .map(|kv| (String::from_utf8(kv.key.clone()).unwrap(), kv.value.clone(), kv.lease))
        .collect();
    let want: Vec<(String, Vec<u8>, i64)> =
        model.keys.iter().map(|(k, (v, l))| (k.clone(), v.clone(), *l)).collect();
    prop_assert_eq!(got, want);
    Ok(())
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let engine = Arc::new(MemoryEngine::new());
    let clock = ManualClock::new();
    let open = || Store::open(Options::engine(engine.clone()).clock(Arc::new(clock.clone()))).unwrap();
    let mut store = open();
    let mut model = Model { revision: 1, ..Model::default() };
    for op in ops {
        match *op {
            Op::Grant { ttl, id } => {
                let options = id.map(|id| LeaseGrantOptions::new().with_id(id));
                let got = store.lease_grant(ttl, options);
                match id.filter(|id| model.leases.contains_key(id)) {
                    Some(_) => prop_assert_eq!(got.unwrap_err(), Error::LeaseExists),
                    None => {
                        let resp = got.unwrap();
                        let granted = ttl.max(2);
                        prop_assert_eq!(resp.ttl(), granted);
                        prop_assert!(resp.id() > 0);
                        prop_assert!(!model.leases.contains_key(&resp.id()));
                        let expiry = model.now + granted as u64 * 1000;
                        model.leases.insert(resp.id(), Lease { ttl: granted, expiry });
                        model.seen.push(resp.id());
                    }
                }
            }
            Op::Revoke { lease } => {
                let id = model.pick(lease);
                let got = store.lease_revoke(id);
                if model.leases.contains_key(&id) {
                    model.revoke(id);
                    prop_assert_eq!(got.unwrap().header().revision(), model.revision);
                } else {
                    prop_assert_eq!(got.unwrap_err(), Error::LeaseNotFound);
                }
            }
            Op::KeepAlive { lease } => {
                let id = model.pick(lease);
                let got = store.lease_keep_alive(id);
                let now = model.now;
                match model.leases.get_mut(&id) {
                    Some(l) => {
                        l.expiry = now + l.ttl as u64 * 1000;
                        let resp = got.unwrap();
                        prop_assert_eq!((resp.id(), resp.ttl()), (id, l.ttl));
                    }
                    None => prop_assert_eq!(got.unwrap_err(), Error::LeaseNotFound),
                }
            }
            Op::TimeToLive { lease } => {
                let id = model.pick(lease);
                let resp =
                    store.lease_time_to_live(id, Some(LeaseTimeToLiveOptions::new().with_keys())).unwrap();
                let want = match model.leases.get(&id) {
                    Some(l) => {
                        let keys: Vec<Vec<u8>> = model
                            .keys
                            .iter()
                            .filter(|(_, (_, lease))| *lease == id)
                            .map(|(k, _)| k.as_bytes().to_vec())
                            .collect();
                        (((l.expiry - model.now) / 1000) as i64, l.ttl, keys)
                    }
                    None => (-1, 0, Vec::new()),
                };
                prop_assert_eq!((resp.ttl(), resp.granted_ttl(), resp.keys().to_vec()), want);
            }
            Op::Put { key, value, lease, leased } => {
                let id = if leased { model.pick(lease) } else { 0 };
                let got = store.put(key, vec![value], Some(PutOptions::new().with_lease(id)));
                if id != 0 && !model.leases.contains_key(&id) {
                    prop_assert_eq!(got.unwrap_err(), Error::LeaseNotFound);
                } else {
                    model.revision += 1;
                    prop_assert_eq!(got.unwrap().header().revision(), model.revision);
                    model.keys.insert(key.to_string(), (vec![value], id));
                }
            }
            Op::Delete { key } => {
                let resp = store.delete(key, None).unwrap();
                if model.keys.remove(key).is_some() {
                    model.revision += 1;
                }
                prop_assert_eq!(resp.header().revision(), model.revision);
            }
            Op::Advance { millis } => {
                clock.advance(Duration::from_millis(millis));
                model.advance(millis);
            }
            Op::Leases => {
                let got: Vec<i64> = store.lease_leases().unwrap().leases().iter().map(|l| l.id()).collect();
                prop_assert_eq!(got, model.ids_by_expiry());
            }
            Op::Reopen => {
                drop(store);
                store = open();
                // Every lease is due its full TTL from now again.
                let now = model.now;
                for l in model.leases.values_mut() {
                    l.expiry = now + l.ttl as u64 * 1000;
                }
            }
        }
        check_state(&store, &model)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn leases_behave_as_the_model_does(ops in prop::collection::vec(op(), 1..80)) {
        run(&ops)?;
    }
}
