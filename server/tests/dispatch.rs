//! How requests find their service on the one port: gRPC calls by service name
//! (`grpc.health.v1.Health` included), a service the server does not have answered
//! Unimplemented as grpc-go answers it, a request too large to decode failing with etcd's
//! error (in the headers of a unary call, in the trailers of a stream), and no limit on the
//! streams one connection carries.

use etcdlite_server::pb::etcdserverpb::{PutRequest, PutResponse};
use etcdlite_server::TestServer;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

fn start() -> TestServer {
    TestServer::start().unwrap()
}

async fn channel(server: &TestServer) -> Channel {
    Channel::from_shared(server.endpoint()).unwrap().connect().await.unwrap()
}

/// A unary call of a put to `path`, whatever service it names.
async fn put_at(channel: Channel, path: &'static str) -> Result<PutResponse, tonic::Status> {
    put_value_at(channel, path, b"v".to_vec()).await
}

async fn put_value_at(
    channel: Channel,
    path: &'static str,
    value: Vec<u8>,
) -> Result<PutResponse, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let request = PutRequest { key: b"k".to_vec(), value, ..Default::default() };
    let codec = tonic_prost::ProstCodec::<PutRequest, PutResponse>::default();
    grpc.unary(tonic::Request::new(request), path.parse().unwrap(), codec).await.map(|r| r.into_inner())
}

#[tokio::test]
async fn the_health_service_reports_serving() {
    let server = start();
    let mut health = HealthClient::new(channel(&server).await);
    let answer = health.check(HealthCheckRequest { service: String::new() }).await.unwrap();
    assert_eq!(answer.into_inner().status(), ServingStatus::Serving);
}

#[tokio::test]
async fn health_turns_not_serving_while_an_alarm_is_raised_and_back_when_it_is_cleared() {
    use etcd_client::{AlarmAction, AlarmOptions, AlarmType};

    let server = start();
    let mut health = HealthClient::new(channel(&server).await);
    let check = HealthCheckRequest { service: String::new() };
    let mut watch = health.watch(check.clone()).await.unwrap().into_inner();
    assert_eq!(watch.message().await.unwrap().unwrap().status(), ServingStatus::Serving);

    let mut client = etcd_client::Client::connect([server.endpoint()], None).await.unwrap();
    client.alarm(AlarmAction::Activate, AlarmType::Nospace, None).await.unwrap();
    assert_eq!(health.check(check.clone()).await.unwrap().into_inner().status(), ServingStatus::NotServing);
    assert_eq!(watch.message().await.unwrap().unwrap().status(), ServingStatus::NotServing);

    let everything = AlarmOptions::new();
    client.alarm(AlarmAction::Deactivate, AlarmType::Nospace, Some(everything)).await.unwrap();
    assert_eq!(health.check(check.clone()).await.unwrap().into_inner().status(), ServingStatus::Serving);
    assert_eq!(watch.message().await.unwrap().unwrap().status(), ServingStatus::Serving);

    // Only the server's own name ("") is known, as in etcd (grpc-go's answer).
    let unknown = health.check(HealthCheckRequest { service: "etcdserverpb.KV".into() }).await.unwrap_err();
    assert_eq!((unknown.code(), unknown.message()), (tonic::Code::NotFound, "unknown service"));
}

#[tokio::test]
async fn health_turns_not_serving_once_a_failed_sync_stops_the_store() {
    use etcdlite::engine::{FaultyEngine, MemoryEngine};

    let engine = std::sync::Arc::new(FaultyEngine::new(std::sync::Arc::new(MemoryEngine::new())));
    let options = etcdlite::Options::engine(engine.clone());
    let server = TestServer::builder().options(options).start().unwrap();
    let mut health = HealthClient::new(channel(&server).await);
    let check = HealthCheckRequest { service: String::new() };
    assert_eq!(health.check(check.clone()).await.unwrap().into_inner().status(), ServingStatus::Serving);
    engine.fail_syncs(true);
    assert!(server.store().put("k", "v", None).is_err());
    assert_eq!(health.check(check).await.unwrap().into_inner().status(), ServingStatus::NotServing);
}

#[tokio::test]
async fn calls_reach_their_service_and_unknown_ones_are_unimplemented() {
    let server = start();
    let channel = channel(&server).await;

    let put = put_at(channel.clone(), "/etcdserverpb.KV/Put").await.unwrap();
    assert_eq!(put.header.unwrap().revision, 2);

    let unknown = put_at(channel.clone(), "/etcdserverpb.Nope/Put").await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::Unimplemented);
    assert_eq!(unknown.message(), "unknown service etcdserverpb.Nope");
    let unknown = put_at(channel.clone(), "/etcdserverpb.KV/Nope").await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::Unimplemented);

    // Neither changed anything.
    let again = put_at(channel, "/etcdserverpb.KV/Put").await.unwrap();
    assert_eq!(again.header.unwrap().revision, 3);
}

#[tokio::test]
async fn a_watch_request_too_large_to_decode_ends_the_stream_with_etcds_error() {
    let server = start();
    let mut client = etcd_client::Client::connect([server.endpoint()], None).await.unwrap();
    let huge_key = vec![b'k'; 3_000_000];
    let mut stream = client.watch(huge_key, None).await.unwrap();
    match stream.message().await {
        Err(etcd_client::Error::GRpcStatus(status)) => {
            assert_eq!(status.code(), tonic::Code::ResourceExhausted);
            assert_eq!(status.message(), "grpc: received message larger than max (3000010 vs. 2097152)");
        }
        other => panic!("expected etcd's size error, got {other:?}"),
    }
    // The store is still there.
    assert_eq!(client.put("k", "v", None).await.unwrap().header().unwrap().revision(), 2);
}

#[tokio::test]
async fn a_unary_request_too_large_to_decode_fails_with_etcds_error() {
    let server = start();
    let channel = channel(&server).await;
    let huge =
        put_value_at(channel.clone(), "/etcdserverpb.KV/Put", vec![b'v'; 3_000_000]).await.unwrap_err();
    assert_eq!(huge.code(), tonic::Code::ResourceExhausted);
    assert_eq!(huge.message(), "grpc: received message larger than max (3000008 vs. 2097152)");
    let put = put_at(channel, "/etcdserverpb.KV/Put").await.unwrap();
    assert_eq!(put.header.unwrap().revision, 2);
}

#[tokio::test]
async fn one_connection_carries_hundreds_of_open_streams() {
    const WATCHES: usize = 300;
    let server = start();
    // etcd-client, like clientv3, makes every call on one connection.
    let mut client = etcd_client::Client::connect([server.endpoint()], None).await.unwrap();
    let opened = async {
        let mut streams = Vec::with_capacity(WATCHES);
        for _ in 0..WATCHES {
            streams.push(client.watch("k", None).await.unwrap());
        }
        streams
    };
    let limit = std::time::Duration::from_secs(30);
    let mut streams = tokio::time::timeout(limit, opened).await.expect("every watch opens");
    // etcd-client returns once the create is sent: wait until every watch is confirmed,
    // or a create still in flight could land after the put and rightly miss it.
    let confirmed = async {
        for stream in &mut streams {
            let answer = stream.message().await.unwrap().expect("the stream stays open");
            assert!(answer.created());
        }
    };
    tokio::time::timeout(limit, confirmed).await.expect("every watch is created");
    client.put("k", "v", None).await.unwrap();
    let events = async {
        for stream in &mut streams {
            let answer = stream.message().await.unwrap().expect("the stream stays open");
            assert_eq!(answer.events()[0].kv().unwrap().value(), b"v");
        }
    };
    tokio::time::timeout(limit, events).await.expect("every watch sees the put");
}
