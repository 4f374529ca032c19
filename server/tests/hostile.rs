//! Clients that do not play by the rules: silent connections, too many connections, a
//! serving future dropped half-way. Each time, a well-behaved client is still served.

use std::sync::Arc;
use std::time::Duration;

use etcdlite::{Options, Store};
use etcdlite_server::{Config, ConnectionLimits, Server, TestServer};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

#[allow(dead_code, reason = "only the etcdlite child is used here")]
#[path = "common/process.rs"]
mod process;

#[allow(dead_code, reason = "only the frame builders of a ping flood are used here")]
#[path = "common/raw_h2.rs"]
mod raw_h2;

/// Waits at most ten seconds for `what`.
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("{what} took over 10 s"))
}

/// True once the peer has closed `stream` (a read returns end of file or an error).
async fn closed_by_peer(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return true,
            Ok(_) => continue,
        }
    }
}

async fn put_works(endpoint: &str) {
    let mut client = within("connect", etcd_client::Client::connect([endpoint], None)).await.unwrap();
    within("put", client.put("k", "v", None)).await.unwrap();
}

fn server_with(limits: ConnectionLimits) -> TestServer {
    let config = Config { connections: limits, ..Config::default() };
    TestServer::builder().config(config).start().unwrap()
}

#[tokio::test]
async fn a_connection_that_never_speaks_is_closed_and_others_are_served_meanwhile() {
    let limits =
        ConnectionLimits { handshake_timeout: Duration::from_millis(300), ..ConnectionLimits::default() };
    let server = server_with(limits);
    let mut silent = TcpStream::connect(server.addr()).await.unwrap();
    put_works(&server.endpoint()).await;
    assert!(within("the silent connection to close", closed_by_peer(&mut silent)).await);
    put_works(&server.endpoint()).await;
}

#[tokio::test]
async fn a_tls_handshake_that_never_comes_is_cut_off() {
    let limits =
        ConnectionLimits { handshake_timeout: Duration::from_millis(300), ..ConnectionLimits::default() };
    let config = Config { connections: limits, ..Config::default() };
    let server = TestServer::builder().config(config).auto_tls().start().unwrap();
    let mut silent = TcpStream::connect(server.addr()).await.unwrap();
    assert!(within("the silent TLS connection to close", closed_by_peer(&mut silent)).await);
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once_and_those_under_it_go_on() {
    let limits = ConnectionLimits { max_connections: 2, ..ConnectionLimits::default() };
    let server = server_with(limits);
    let mut first = etcd_client::Client::connect([server.endpoint()], None).await.unwrap();
    // (etcd-client may connect lazily: a call makes sure this connection holds its place.)
    within("a put on the first connection", first.put("k", "v", None)).await.unwrap();
    let mut held = TcpStream::connect(server.addr()).await.unwrap();
    // The second connection holds the last place: it sends the HTTP/2 preface.
    tokio::io::AsyncWriteExt::write_all(&mut held, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    let mut over = TcpStream::connect(server.addr()).await.unwrap();
    assert!(within("the connection over the cap to close", closed_by_peer(&mut over)).await);
    within("a put on the first connection", first.put("k", "v", None)).await.unwrap();
    // Once a place is free, a new connection is served.
    drop(held);
    let mut served = false;
    for _ in 0..100 {
        let connect = etcd_client::Client::connect([server.endpoint()], None);
        if let Ok(Ok(mut client)) = tokio::time::timeout(Duration::from_secs(2), connect).await {
            if client.put("k", "w", None).await.is_ok() {
                served = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "a connection was served once the cap had room again");
}

/// A limit of this process from /proc/self/limits (`Max open files`, ...): soft, hard.
fn process_limit(name: &str) -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with(name))?;
    let mut numbers = line[name.len()..].split_whitespace().map(|n| n.parse().unwrap_or(u64::MAX));
    Some((numbers.next()?, numbers.next()?))
}

/// The resident memory of process `pid`, in bytes (VmRSS of /proc/PID/status).
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[tokio::test]
async fn ten_thousand_idle_http2_connections_do_not_stop_a_client_from_being_served() {
    use tokio::io::AsyncWriteExt;

    // The server runs as a process of its own, so that each holds one side of each
    // connection: 10,000 descriptors each, under the usual limit of 20,000 (a CI machine
    // whose limit is lower gets as many as fit, and says so).
    let soft = process_limit("Max open files").map_or(1024, |(soft, _)| soft);
    let idle_count = 10_000.min(usize::try_from(soft.saturating_sub(256)).unwrap_or(10_000));
    if idle_count < 10_000 {
        eprintln!("only {idle_count} idle connections: the open-file limit is {soft}");
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server =
        process::EtcdLiteChild::start("http", &["--max-connections", "10100"], &log, Duration::from_secs(20))
            .unwrap_or_else(|log| panic!("etcdlite did not start; its log:\n{log}"));
    let endpoint = format!("http://127.0.0.1:{}", server.port());
    put_works(&endpoint).await;
    let before = resident_bytes(server.pid());
    // Each says it speaks HTTP/2 (the preface and an empty SETTINGS), so the server holds
    // an HTTP/2 connection for it, then says nothing more.
    let hello = [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".as_slice(), &[0, 0, 0, 4, 0, 0, 0, 0, 0]].concat();
    let mut idle = Vec::with_capacity(idle_count);
    // In batches of 500, each answered (the server's SETTINGS) before the next: a client
    // that connects faster than the server accepts overflows the listen queue, and the
    // kernel then drops SYNs (each retried a second later) before the server sees them.
    while idle.len() < idle_count {
        let batch = (idle_count - idle.len()).min(500);
        let mut fresh = Vec::with_capacity(batch);
        for _ in 0..batch {
            let mut tcp = TcpStream::connect(("127.0.0.1", server.port())).await.unwrap();
            tcp.write_all(&hello).await.unwrap();
            fresh.push(tcp);
        }
        for tcp in &mut fresh {
            let mut settings = [0u8; 9];
            within("the server's SETTINGS", tcp.read_exact(&mut settings)).await.unwrap();
            assert_eq!(settings[3], 4, "the server's first frame is its SETTINGS");
        }
        idle.append(&mut fresh);
    }
    put_works(&endpoint).await;
    let held = resident_bytes(server.pid()).saturating_sub(before);
    eprintln!(
        "{idle_count} idle HTTP/2 connections: the server's resident memory grew by {} KiB",
        held / 1024
    );
    // A few dozen KiB each (hyper's connection state and buffers), far from a leak's growth.
    assert!(held < 64 * 1024 * idle_count as u64, "{held} bytes for {idle_count} idle connections");
    drop(idle);
    put_works(&endpoint).await;
}

#[tokio::test]
async fn dropping_the_serve_future_stops_the_server() {
    let store = Arc::new(Store::open(Options::memory()).unwrap());
    let config = Config { listen: vec!["127.0.0.1:0".parse().unwrap()], ..Config::default() };
    let server = Server::bind(config, store).await.unwrap();
    let endpoint = format!("http://{}", server.local_addrs()[0]);
    let serving = tokio::spawn(server.serve(std::future::pending()));
    let mut client =
        within("connect", etcd_client::Client::connect([endpoint.as_str()], None)).await.unwrap();
    let mut watch = within("watch", client.watch("k", None)).await.unwrap();
    assert!(within("created", watch.message()).await.unwrap().unwrap().created());

    serving.abort();
    assert!(serving.await.unwrap_err().is_cancelled());
    // The open watch ends with etcd's "server stopped", and nothing new is served.
    let end = within("the watch to end", watch.message()).await;
    match end {
        Err(etcd_client::Error::GRpcStatus(status)) => {
            assert_eq!(status.code(), tonic::Code::Unavailable);
            assert_eq!(status.message(), "etcdserver: server stopped");
        }
        other => panic!("expected the watch to end with server stopped, got {other:?}"),
    }
    let connect = etcd_client::Client::connect([endpoint.as_str()], None);
    let refused = match tokio::time::timeout(Duration::from_secs(2), connect).await {
        Ok(Ok(mut client)) => tokio::time::timeout(Duration::from_secs(2), client.put("k", "v", None))
            .await
            .map_or(true, |put| put.is_err()),
        _ => true,
    };
    assert!(refused, "a dropped server still served a put");
}

#[tokio::test]
async fn snapshots_nobody_reads_are_capped_and_stall_nothing_else() {
    use etcdlite_server::pb::etcdserverpb::maintenance_client::MaintenanceClient;
    use etcdlite_server::pb::etcdserverpb::SnapshotRequest;

    let options = Options::memory().max_concurrent_snapshots(4);
    let server = TestServer::builder().options(options).start().unwrap();
    // 12 MiB: more than a connection's flow-control windows, so an unread stream stays open.
    for i in 0..12 {
        server.store().put(format!("big/{i}"), vec![b'x'; 1 << 20], None).unwrap();
    }
    let mut unread = Vec::new();
    for _ in 0..4 {
        // A connection each, so that no stream's window is another's.
        let channel =
            tonic::transport::Channel::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
        let mut client = MaintenanceClient::new(channel).max_decoding_message_size(64 << 20);
        let stream = within("a snapshot", client.snapshot(SnapshotRequest {})).await.unwrap().into_inner();
        unread.push((client, stream));
    }
    let channel = tonic::transport::Channel::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let mut over = MaintenanceClient::new(channel.clone());
    let refused = match within("one snapshot too many", over.snapshot(SnapshotRequest {})).await {
        Ok(response) => within("its answer", response.into_inner().message()).await.unwrap_err(),
        Err(status) => status,
    };
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert_eq!(refused.message(), "etcdserver: too many requests");
    // Everything else goes on: writes, and leases.
    put_works(&server.endpoint()).await;
    let mut client = etcd_client::Client::connect([server.endpoint()], None).await.unwrap();
    let lease = within("a lease grant", client.lease_grant(60, None)).await.unwrap();
    assert_eq!(lease.ttl(), 60);
    // A place freed is a snapshot served, whole.
    drop(unread.pop());
    let mut read = false;
    for _ in 0..100 {
        let response = within("a snapshot", over.snapshot(SnapshotRequest {})).await;
        if let Ok(response) = response {
            let mut stream = response.into_inner();
            let mut bytes = 0;
            match async {
                while let Some(chunk) = stream.message().await? {
                    bytes += chunk.blob.len();
                }
                Ok::<_, tonic::Status>(())
            }
            .await
            {
                Ok(()) => {
                    assert!(bytes > 12 << 20, "{bytes} bytes");
                    read = true;
                    break;
                }
                Err(status) => assert_eq!(status.code(), tonic::Code::ResourceExhausted),
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(read, "a snapshot was served once a place was free");
}

#[tokio::test]
async fn a_client_that_creates_watches_and_never_reads_is_not_read_from_either() {
    use etcdlite_server::pb::etcdserverpb::watch_client::WatchClient;
    use etcdlite_server::pb::etcdserverpb::{watch_request::RequestUnion, WatchCreateRequest, WatchRequest};

    const CREATES: usize = 20_000;
    let server = TestServer::start().unwrap();
    // HTTP/2's smallest windows: 64 KiB of answers is all the server may send unread.
    let channel = tonic::transport::Endpoint::from_shared(server.endpoint())
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let create = WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key: b"k".to_vec(),
            ..Default::default()
        })),
    };
    let requests = futures::stream::iter(std::iter::repeat_n(create, CREATES));
    let mut client = WatchClient::new(channel);
    // The answers are never read.
    let _answers = within("the watch call", client.watch(requests)).await.unwrap();
    // The server stops reading once the answers back up; give it time to get there.
    let mut watches = usize::MAX;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = server.store().watch_counts().watches;
        if now == watches && now > 0 {
            break;
        }
        watches = now;
    }
    assert!(watches < CREATES / 4, "{watches} watches created for a client that reads nothing");
    put_works(&server.endpoint()).await;
}

#[tokio::test]
async fn a_stream_holds_at_most_its_cap_of_watches() {
    let options = Options::memory().max_watches_per_stream(3);
    let server = TestServer::builder().options(options).start().unwrap();
    let mut client = etcd_client::Client::connect([server.endpoint()], None).await.unwrap();
    let mut stream = within("watch", client.watch("a", None)).await.unwrap();
    assert!(within("created", stream.message()).await.unwrap().unwrap().created());
    for key in ["b", "c"] {
        stream.watch(key, None).await.unwrap();
        assert!(within("created", stream.message()).await.unwrap().unwrap().created());
    }
    stream.watch("d", None).await.unwrap();
    let refused = within("refused", stream.message()).await.unwrap().unwrap();
    assert!(refused.created() && refused.canceled(), "{refused:?}");
    assert_eq!(refused.cancel_reason(), "etcdserver: too many requests");
    assert_eq!(server.store().watch_counts().watches, 3);
}

#[tokio::test]
async fn a_watch_id_cancelled_and_created_again_keeps_the_new_watchs_fragment_setting() {
    use etcd_client::WatchOptions;

    // Responses over 512 KiB + 1 KiB are split for a watch that asks for it.
    let config = Config { max_request_bytes: 1024, ..Config::default() };
    let server = TestServer::builder().config(config).start().unwrap();
    let mut client = etcd_client::Client::connect([server.endpoint()], None).await.unwrap();
    let plain = WatchOptions::new().with_prefix().with_watch_id(7);
    let mut stream = within("watch", client.watch("f/", Some(plain))).await.unwrap();
    assert!(within("created", stream.message()).await.unwrap().unwrap().created());
    // Cancel and create again at once, so the old watch's cancel is still on its way out
    // when the new watch is made.
    stream.cancel(7).await.unwrap();
    stream
        .watch("f/", Some(WatchOptions::new().with_prefix().with_watch_id(7).with_fragment()))
        .await
        .unwrap();
    let canceled = within("canceled", stream.message()).await.unwrap().unwrap();
    assert!(canceled.canceled());
    assert!(within("created again", stream.message()).await.unwrap().unwrap().created());
    let big = vec![b'v'; 300 * 1024];
    // A txn this large is over the server's request limit: write it to the store directly.
    let ops: Vec<_> = (0..3).map(|i| etcdlite::TxnOp::put(format!("f/{i}"), big.clone(), None)).collect();
    server.store().txn(etcdlite::Txn::new().and_then(ops)).unwrap();
    let first = within("the first part", stream.message()).await.unwrap().unwrap();
    // (etcd-client shows no fragment flag: a part holds fewer than the txn's 3 events.)
    assert!(first.events().len() < 3, "the new watch asked for fragments, got the 3 events whole");
}

/// Sends `pings` HTTP/2 pings on a fresh connection to `server`, `gap` apart, each waiting
/// for its answer; returns how many were answered before the connection ended.
async fn pings_answered(server: &TestServer, pings: usize, gap: Duration) -> usize {
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let (_client, mut connection) = h2::client::handshake(tcp).await.unwrap();
    let mut ping_pong = connection.ping_pong().expect("the connection's pinger");
    let driver = tokio::spawn(connection);
    let mut answered = 0;
    for _ in 0..pings {
        match within("a pong", ping_pong.ping(h2::Ping::opaque())).await {
            Ok(_) => answered += 1,
            Err(_) => break,
        }
        tokio::time::sleep(gap).await;
    }
    driver.abort();
    answered
}

#[tokio::test]
async fn a_client_that_pings_too_often_is_disconnected_and_one_that_keeps_to_the_minimum_is_not() {
    let limits =
        ConnectionLimits { keepalive_min_time: Duration::from_millis(200), ..ConnectionLimits::default() };
    let server = server_with(limits);
    // The first ping is free; the third early one after it is answered, and the connection
    // ends. h2's client can lose that fourth answer to the GOAWAY and close right behind
    // it (it drops a pong its caller has not yet taken when the connection ends), so three
    // or four are seen here; the exact frames are checked on the wire in
    // `a_client_that_pings_too_often_gets_grpc_gos_goaway_too_many_pings_then_the_connection_ends`.
    let answered = pings_answered(&server, 10, Duration::ZERO).await;
    assert!(matches!(answered, 3 | 4), "{answered} pings answered");
    assert_eq!(pings_answered(&server, 4, Duration::from_millis(250)).await, 4);
    put_works(&server.endpoint()).await;
}

// etcd 3.5.1 and 3.4.23 (`--grpc-keepalive-min-time 5s`), sent two Range calls on streams 1
// and 3 and then six pings at once, answer the first four pings, send GOAWAY last-stream-id
// 3, ENHANCE_YOUR_CALM, debug data `too_many_pings`, and close the connection.
#[tokio::test]
async fn a_client_that_pings_too_often_gets_grpc_gos_goaway_too_many_pings_then_the_connection_ends() {
    use raw_h2::*;
    use tokio::io::AsyncWriteExt;

    let limits =
        ConnectionLimits { keepalive_min_time: Duration::from_secs(5), ..ConnectionLimits::default() };
    let server = server_with(limits);
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    let mut bytes = PREFACE.to_vec();
    bytes.extend(settings(&[]));
    bytes.extend(range_calls(1, 2, b"k"));
    // The first ping is free, the next three are strikes: the fourth ends the connection.
    // Nothing follows it, so the server reads all that was sent and closes cleanly.
    for opaque in 0..4u8 {
        bytes.extend(frame(PING, 0, 0, &[opaque; 8]));
    }
    tcp.write_all(&bytes).await.unwrap();

    let mut received = Vec::new();
    within("the server to close the connection", tcp.read_to_end(&mut received)).await.unwrap();
    // The server's frames, from the acknowledgements of the pings on (calls answered before
    // the end come first, or not at all).
    let mut frames = Vec::new();
    let mut rest = received.as_slice();
    while rest.len() >= 9 {
        let length = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        let (kind, flags, payload) = (rest[3], rest[4], rest[9..9 + length].to_vec());
        rest = &rest[9 + length..];
        if kind == GOAWAY || (kind == PING && flags & 0x1 != 0) {
            frames.push((kind, payload));
        }
    }
    assert!(rest.is_empty(), "the connection ends between frames");
    let mut expected: Vec<(u8, Vec<u8>)> = (0..4u8).map(|opaque| (PING, vec![opaque; 8])).collect();
    let mut goaway = 3u32.to_be_bytes().to_vec();
    goaway.extend(ENHANCE_YOUR_CALM.to_be_bytes());
    goaway.extend(b"too_many_pings");
    expected.push((GOAWAY, goaway));
    assert_eq!(frames, expected);
    put_works(&server.endpoint()).await;
}

/// Sends one gRPC call to `path` whose request body is exactly `body` (framing included),
/// over a raw HTTP/2 connection; returns its `grpc-status` and `grpc-message`, from the
/// headers or the trailers.
async fn raw_call(server: &TestServer, path: &str, body: &[u8]) -> (String, String) {
    raw_call_in_pieces(server, path, &[body]).await
}

/// [`raw_call`] with the body sent in `pieces`, a DATA frame each, then an empty one ending
/// the stream.
async fn raw_call_in_pieces(server: &TestServer, path: &str, pieces: &[&[u8]]) -> (String, String) {
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::post(format!("{}{path}", server.endpoint()))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (answer, mut send) = client.send_request(request, false).unwrap();
    for piece in pieces {
        send.send_data(bytes::Bytes::copy_from_slice(piece), false).unwrap();
    }
    send.send_data(bytes::Bytes::new(), true).unwrap();
    let answer = within("the answer", answer).await.unwrap();
    let status = |headers: &http::HeaderMap| {
        let text = |name| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        text("grpc-status").map(|code| (code, text("grpc-message").unwrap_or_default()))
    };
    if let Some(found) = status(answer.headers()) {
        driver.abort();
        return found;
    }
    let mut body = answer.into_body();
    while let Some(chunk) = within("the body", body.data()).await {
        chunk.unwrap();
    }
    let trailers = within("the trailers", body.trailers()).await.unwrap().expect("trailers");
    driver.abort();
    status(&trailers).expect("a grpc-status")
}

/// `message` framed as gRPC does: uncompressed, its length, then its bytes.
fn framed(message: &[u8]) -> Vec<u8> {
    let mut frame = vec![0];
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(message);
    frame
}

#[tokio::test]
async fn malformed_grpc_requests_fail_cleanly_and_change_nothing() {
    use etcdlite_server::pb::etcdserverpb::PutRequest;
    use prost::Message;

    let server = TestServer::start().unwrap();
    let put = PutRequest { key: b"k".to_vec(), value: b"v".to_vec(), ..Default::default() }.encode_to_vec();
    // Not protobuf: a field tag of wire type 7 (no such type).
    let (code, _) = raw_call(&server, "/etcdserverpb.KV/Put", &framed(&[0x0f, 0x01])).await;
    assert_eq!(code, "13", "invalid protobuf is Internal");
    // A frame that announces more bytes than the request holds.
    let mut truncated = framed(&put);
    truncated.truncate(truncated.len() - 2);
    let (code, _) = raw_call(&server, "/etcdserverpb.KV/Put", &truncated).await;
    assert_eq!(code, "13", "a truncated request is Internal");
    // A frame header alone, cut short.
    let (code, _) = raw_call(&server, "/etcdserverpb.KV/Put", &[0, 0, 0]).await;
    assert_eq!(code, "13", "a cut frame header is Internal");
    // Compressed, though no compression was agreed.
    let mut compressed = framed(&put);
    compressed[0] = 1;
    let (code, _) = raw_call(&server, "/etcdserverpb.KV/Put", &compressed).await;
    assert_eq!(code, "13", "an unagreed compressed request is Internal");
    // Unknown fields are skipped, as protobuf says: the put is applied.
    let mut unknown = put.clone();
    unknown.extend_from_slice(&[0xf8, 0x07, 0x01]); // field 127, varint 1
    let (code, message) = raw_call(&server, "/etcdserverpb.KV/Put", &framed(&unknown)).await;
    assert_eq!((code.as_str(), message.as_str()), ("0", ""));
    // Nothing but that put changed the store.
    assert_eq!(server.store().current_revision(), 2);
    put_works(&server.endpoint()).await;
}

#[tokio::test]
async fn a_downgrade_with_an_unknown_action_or_a_malformed_version_gets_etcds_errors() {
    use etcdlite_server::pb::etcdserverpb::maintenance_client::MaintenanceClient;
    use etcdlite_server::pb::etcdserverpb::DowngradeRequest;
    use tonic::transport::Channel;

    async fn refused(client: &mut MaintenanceClient<Channel>, action: i32, version: &str) -> tonic::Status {
        let request = DowngradeRequest { action, version: version.to_owned() };
        within("a downgrade", client.downgrade(request)).await.unwrap_err()
    }
    let server = TestServer::builder().start().unwrap();
    let channel = Channel::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let mut client = MaintenanceClient::new(channel);
    // etcd 3.5's `ErrUnknownMethod`, which its gRPC layer does not map: code Unknown.
    let unknown = refused(&mut client, 7, "3.4").await;
    assert_eq!((unknown.code(), unknown.message()), (tonic::Code::Unknown, "etcdserver: unknown method"));
    for version in ["v3.4", "3.4.0.1", "3.4.0-a_b", "", "\u{0}3.4"] {
        let malformed = refused(&mut client, 0, version).await;
        assert_eq!(
            (malformed.code(), malformed.message()),
            (tonic::Code::InvalidArgument, "etcdserver: wrong downgrade target version format"),
            "{version:?}"
        );
    }
    // None of them started a downgrade.
    let cancel = refused(&mut client, 2, "").await;
    assert_eq!(cancel.message(), "etcdserver: no inflight downgrade job");
}

#[tokio::test]
async fn a_server_presenting_itself_as_etcd_3_4_answers_downgrade_as_an_unknown_method() {
    use etcdlite_server::pb::etcdserverpb::maintenance_client::MaintenanceClient;
    use etcdlite_server::pb::etcdserverpb::{DowngradeRequest, StatusRequest};
    use tonic::transport::Channel;

    // Auth on and no token: etcd 3.4's grpc-go refuses the unknown method before auth.
    let config = Config { etcd_version: "3.4.23".to_owned(), ..Config::default() };
    let server = TestServer::builder().config(config).auth("root-password").start().unwrap();
    let channel = Channel::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let mut client = MaintenanceClient::new(channel);
    // What etcd 3.4.23 answers, for every action and version.
    for (action, version) in [(0, "3.3"), (1, "3.3"), (2, ""), (7, "x")] {
        let request = DowngradeRequest { action, version: version.to_owned() };
        let refused = within("a downgrade", client.downgrade(request)).await.unwrap_err();
        assert_eq!(
            (refused.code(), refused.message()),
            (tonic::Code::Unimplemented, "unknown method Downgrade for service etcdserverpb.Maintenance"),
            "action {action}"
        );
    }
    // The rest of the service is there, behind auth as before.
    let status = within("a status", client.status(StatusRequest {})).await.unwrap_err();
    assert_eq!(status.message(), "etcdserver: user name is empty");
    assert_eq!(server.store().cluster().version(), "3.4.23");
}

#[tokio::test]
async fn a_server_presenting_itself_as_etcd_3_5_serves_downgrade() {
    use etcdlite_server::pb::etcdserverpb::maintenance_client::MaintenanceClient;
    use etcdlite_server::pb::etcdserverpb::DowngradeRequest;
    use tonic::transport::Channel;

    let config = Config { etcd_version: "3.5.1".to_owned(), ..Config::default() };
    let server = TestServer::builder().config(config).start().unwrap();
    let channel = Channel::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let mut client = MaintenanceClient::new(channel);
    let request = DowngradeRequest { action: 0, version: "3.4".to_owned() };
    let answer = within("a downgrade", client.downgrade(request)).await.unwrap().into_inner();
    assert_eq!(answer.version, "3.5.0");
}

#[tokio::test]
async fn calls_of_methods_and_services_the_server_lacks_get_grpc_gos_answers() {
    let server = TestServer::start().unwrap();
    let empty = framed(&[]);
    let cases = [
        ("/etcdserverpb.KV/Nope", "unknown method Nope for service etcdserverpb.KV"),
        ("/etcdserverpb.KV/", "unknown method  for service etcdserverpb.KV"),
        ("/etcdserverpb.Nope/Range", "unknown service etcdserverpb.Nope"),
        // grpc-go splits at the last slash: the service is `etcdserverpb.KV/Range`.
        ("/etcdserverpb.KV/Range/x", "unknown service etcdserverpb.KV/Range"),
        ("/nothing", "malformed method name: \"/nothing\""),
    ];
    for (path, expected) in cases {
        let (code, message) = raw_call(&server, path, &empty).await;
        let message = percent_decoded(&message);
        assert_eq!((code.as_str(), message.as_str()), ("12", expected), "{path}");
    }
    put_works(&server.endpoint()).await;
}

/// `text` with its `%XX` escapes (as gRPC writes a grpc-message) decoded.
fn percent_decoded(text: &str) -> String {
    let mut bytes = Vec::new();
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        match (b, tail.get(..2).and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok())) {
            (b'%', Some(decoded)) => {
                bytes.push(decoded);
                rest = &tail[2..];
            }
            _ => {
                bytes.push(b);
                rest = tail;
            }
        }
    }
    String::from_utf8(bytes).unwrap()
}

#[tokio::test]
async fn a_request_sent_a_byte_per_data_frame_is_served_and_one_cut_short_is_refused() {
    use etcdlite_server::pb::etcdserverpb::PutRequest;
    use prost::Message;

    let server = TestServer::start().unwrap();
    let put = PutRequest { key: b"k".to_vec(), value: b"v".to_vec(), ..Default::default() }.encode_to_vec();
    let whole = framed(&put);
    for cut in [whole.len(), whole.len() - 1, 3] {
        // The message (or its first `cut` bytes), one DATA frame per byte.
        let bytes: Vec<&[u8]> = whole[..cut].chunks(1).collect();
        let (code, _) = raw_call_in_pieces(&server, "/etcdserverpb.KV/Put", &bytes).await;
        let expected = if cut == whole.len() { "0" } else { "13" };
        assert_eq!(code, expected, "{cut} of {} bytes sent", whole.len());
    }
    // The whole put was applied once; the cut ones changed nothing.
    assert_eq!(server.store().current_revision(), 2);
}
