//! The coordinator's retries against a server that fails calls: with a TestServer
//! answering half its calls Unavailable, config and registry calls still succeed (retried
//! with back-off), while a semantic error is answered at once, never retried.

use std::time::Duration;

use etcdlite::coord::{Coordinator, CoordinatorConfig, Error, RetryPolicy, ServiceInfo};
use etcdlite_server::TestServer;

fn patient() -> RetryPolicy {
    // Half the calls fail: 20 tries make a run of failures vanishingly unlikely.
    RetryPolicy::new().with_max_attempts(20).with_initial_delay(Duration::from_millis(1))
}

#[tokio::test]
async fn transient_failures_are_retried_and_semantic_ones_are_not() {
    let server = TestServer::start().unwrap();
    let config = CoordinatorConfig::endpoints([server.endpoint()]).with_retry(patient());
    let coordinator = Coordinator::connect(config).await.unwrap();
    server.faults().set_unavailable_rate(0.5);

    let center = coordinator.config();
    for i in 0..20u32 {
        center.set(&format!("cfg/{i}"), &i).await.expect("retried until it lands");
    }
    for i in 0..20u32 {
        assert_eq!(center.get::<u32>(&format!("cfg/{i}")).await.unwrap(), Some(i));
    }
    let registry = coordinator.registry();
    registry.register(ServiceInfo::new("a", "svc", "127.0.0.1", 1), Duration::from_secs(30)).await.unwrap();
    assert_eq!(registry.discover("svc").await.unwrap().len(), 1);

    // A value that is not a u32 is the caller's problem, not the network's.
    let decode = center.get::<String>("cfg/1").await.unwrap_err();
    assert!(matches!(decode, Error::Decode { .. }), "{decode:?}");
    server.faults().clear();

    // With retries off, the failures show.
    let strict =
        CoordinatorConfig::endpoints([server.endpoint()]).with_retry(RetryPolicy::new().with_max_attempts(1));
    let strict = Coordinator::connect(strict).await.unwrap();
    server.faults().set_unavailable_rate(1.0);
    let refused = strict.config().get::<u32>("cfg/1").await.unwrap_err();
    assert_eq!(refused.status().map(|s| s.code()), Some(etcdlite::Code::Unavailable), "{refused:?}");
    server.faults().clear();
}
