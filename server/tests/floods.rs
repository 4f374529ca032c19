//! HTTP/2 floods written by hand, frame by frame, over a plain TCP connection: the attacks
//! a gRPC client library would never send. Each test floods one connection while a
//! well-behaved client (the `etcd-client` crate, on connections of its own) keeps putting
//! and getting, and checks what the server did to the flooding connection and that the
//! memory it holds for it stays bounded.
//!
//! The memory bound is checked with a counting allocator: this test binary's heap is the
//! test server's heap too, so `live_bytes` is what the server holds (plus the little the
//! clients hold).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use etcdlite_server::{Config, ConnectionLimits, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[path = "common/raw_h2.rs"]
mod raw_h2;
use raw_h2::*;

/// The system allocator, counting the bytes allocated and not yet freed.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
/// The most `LIVE` has been since [`start_peak`].
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(size: usize) {
    let now = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is passed to `System` unchanged; the counter is only arithmetic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, layout, new_size) };
        if !q.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes on this process's heap now.
fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Bytes on the heap now; from now on [`peak_growth`] counts from them.
fn start_peak() -> usize {
    let now = live_bytes();
    PEAK.store(now, Ordering::Relaxed);
    now
}

/// The most the heap has grown past `start` (from [`start_peak`]) since then.
fn peak_growth(start: usize) -> usize {
    PEAK.load(Ordering::Relaxed).saturating_sub(start)
}

const MIB: usize = 1 << 20;

/// Waits at most ten seconds for `what`.
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("{what} took over 10 s"))
}

/// Runs `attack` while a well-behaved client does rounds of a put and a get on its own
/// connection, each answered within ten seconds; returns what the attack returned.
async fn served_during<T: Send + 'static>(
    server: &TestServer,
    attack: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    let mut client =
        within("connect", etcd_client::Client::connect([server.endpoint()], None)).await.unwrap();
    within("a put before the attack", client.put("calm", "0", None)).await.unwrap();
    let attack = tokio::spawn(attack);
    for round in 0..20 {
        let value = round.to_string();
        within("a put during the attack", client.put("calm", value.as_str(), None)).await.unwrap();
        let got = within("a get during the attack", client.get("calm", None)).await.unwrap();
        assert_eq!(got.kvs()[0].value(), value.as_bytes());
        if attack.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let outcome = within("the attack to end", attack).await.unwrap();
    within("a put after the attack", client.put("calm", "after", None)).await.unwrap();
    outcome
}

/// What became of a write the flooding client tried.
#[derive(Debug, PartialEq, Eq)]
enum Sent {
    /// The server read all of it.
    All,
    /// The server stopped reading: the write did not finish within two seconds.
    Stalled,
    /// The server closed the connection.
    Closed,
}

/// A raw HTTP/2 client connection that has sent its preface and first SETTINGS.
struct Raw {
    tcp: TcpStream,
}

impl Raw {
    async fn open(server: &TestServer, first: &[(u16, u32)]) -> Raw {
        let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
        tcp.write_all(PREFACE).await.unwrap();
        tcp.write_all(&settings(first)).await.unwrap();
        Raw { tcp }
    }

    async fn send(&mut self, bytes: &[u8]) -> Sent {
        match tokio::time::timeout(Duration::from_secs(2), self.tcp.write_all(bytes)).await {
            Ok(Ok(())) => Sent::All,
            Ok(Err(_)) => Sent::Closed,
            Err(_) => Sent::Stalled,
        }
    }

    /// Sends `chunk` up to `times` times, stopping once the server stops reading or closes
    /// the connection; returns how many were sent whole and why it stopped.
    async fn flood(&mut self, times: usize, mut chunk: impl FnMut(usize) -> Vec<u8>) -> (usize, Sent) {
        for i in 0..times {
            match self.send(&chunk(i)).await {
                Sent::All => {}
                stop => return (i, stop),
            }
        }
        (times, Sent::All)
    }

    /// Reads the server's frames until it closes the connection (or ten seconds pass with
    /// it still open): what it said.
    async fn outcome(mut self) -> Outcome {
        self.read_until(|_| false).await
    }

    /// Reads the server's frames until `enough` says so, the server closes the connection,
    /// or ten seconds pass: what it said.
    async fn read_until(&mut self, enough: impl Fn(&Outcome) -> bool) -> Outcome {
        let mut outcome = Outcome::default();
        let mut bytes = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let read = async {
            loop {
                match self.tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => return true,
                    Ok(n) => bytes.extend_from_slice(&buf[..n]),
                }
                outcome.frames(&mut bytes);
                if enough(&outcome) {
                    return false;
                }
            }
        };
        outcome.closed = tokio::time::timeout(Duration::from_secs(10), read).await.unwrap_or(false);
        outcome
    }
}

/// What the server sent a flooding connection.
#[derive(Debug, Default)]
struct Outcome {
    goaway: Option<u32>,
    resets: usize,
    settings_acks: usize,
    pongs: usize,
    /// Calls answered with headers alone (trailers-only: a failed call), or ended by
    /// trailers after their answer.
    refused: usize,
    /// Answers begun (response headers, their message to follow).
    started: usize,
    /// The streams of those calls.
    refused_streams: Vec<u32>,
    /// The server closed the connection.
    closed: bool,
}

impl Outcome {
    /// Takes the whole frames off the front of `bytes`.
    fn frames(&mut self, bytes: &mut Vec<u8>) {
        loop {
            if bytes.len() < 9 {
                return;
            }
            let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
            if bytes.len() < 9 + len {
                return;
            }
            let (kind, flags) = (bytes[3], bytes[4]);
            let payload = &bytes[9..9 + len];
            match kind {
                GOAWAY if len >= 8 => {
                    self.goaway = Some(u32::from_be_bytes(payload[4..8].try_into().unwrap()))
                }
                RST_STREAM => self.resets += 1,
                HEADERS if flags & END_STREAM != 0 => {
                    self.refused += 1;
                    self.refused_streams
                        .push(u32::from_be_bytes(bytes[5..9].try_into().unwrap()) & 0x7fff_ffff);
                }
                HEADERS => self.started += 1,
                SETTINGS if flags & 0x1 != 0 => self.settings_acks += 1,
                PING if flags & 0x1 != 0 => self.pongs += 1,
                _ => {}
            }
            bytes.drain(..9 + len);
        }
    }
}

#[tokio::test]
async fn rapid_reset_streams_end_the_connection_with_enhance_your_calm() {
    const STREAMS: u32 = 20_000;
    let server = TestServer::start().unwrap();
    let mut raw = Raw::open(&server, &[]).await;
    let before = live_bytes();
    let (raw, (batches, sent)) = served_during(&server, async move {
        // A hundred streams per write.
        let sent =
            raw.flood(STREAMS as usize / 100, |batch| reset_streams(200 * batch as u32 + 1, 100)).await;
        (raw, sent)
    })
    .await;
    let grown = live_bytes().saturating_sub(before);
    let outcome = raw.outcome().await;
    eprintln!("rapid reset: {batches} batches of 100 then {sent:?}, {outcome:?}, heap +{grown} bytes");
    assert_eq!(outcome.goaway, Some(ENHANCE_YOUR_CALM), "{outcome:?}");
    assert!(outcome.closed, "{outcome:?}");
    assert!(grown < 64 * MIB, "the heap grew by {grown} bytes");
}

#[tokio::test]
async fn a_settings_flood_nobody_acknowledges_is_not_read_past_what_the_socket_holds() {
    const FRAMES: usize = 1_000_000;
    let server = TestServer::start().unwrap();
    let mut raw = Raw::open(&server, &[]).await;
    let before = live_bytes();
    let (raw, (batches, sent)) = served_during(&server, async move {
        let chunk = settings_frames(1000);
        let sent = raw.flood(FRAMES / 1000, |_| chunk.clone()).await;
        (raw, sent)
    })
    .await;
    let grown = live_bytes().saturating_sub(before);
    drop(raw);
    eprintln!("settings flood: {batches} batches of 1000 then {sent:?}, heap +{grown} bytes");
    // The server answers each SETTINGS with an ACK before it reads on; a client that
    // reads none of them is stopped by its own full socket.
    assert_eq!(sent, Sent::Stalled, "all {FRAMES} SETTINGS frames were read");
    assert!(grown < 64 * MIB, "the heap grew by {grown} bytes");
}

#[tokio::test]
async fn a_ping_flood_is_cut_off_by_the_ping_policy() {
    const PINGS: usize = 100_000;
    let server = TestServer::start().unwrap();
    let mut raw = Raw::open(&server, &[]).await;
    let (raw, (batches, sent)) = served_during(&server, async move {
        let chunk = pings(100);
        let sent = raw.flood(PINGS / 100, |_| chunk.clone()).await;
        (raw, sent)
    })
    .await;
    let outcome = raw.outcome().await;
    eprintln!("ping flood: {batches} batches of 100 then {sent:?}, {outcome:?}");
    assert!(outcome.closed, "{outcome:?}");
    // The fourth ping (the third early one) is the last answered, as by etcd.
    assert!(outcome.pongs <= 4, "{outcome:?}");
    assert_eq!(outcome.goaway, Some(ENHANCE_YOUR_CALM), "{outcome:?}");
}

#[tokio::test]
async fn an_endless_continuation_is_cut_off_and_its_headers_not_kept() {
    const FRAMES: usize = 100_000;
    let server = TestServer::start().unwrap();
    let mut raw = Raw::open(&server, &[]).await;
    let before = live_bytes();
    let (raw, (frames, sent), grown) = served_during(&server, async move {
        let mut sent = raw.send(&unfinished_headers()).await;
        let mut frames = 0;
        if sent == Sent::All {
            let pad = header_pad();
            (frames, sent) = raw.flood(FRAMES, |_| frame(CONTINUATION, 0, 1, &pad)).await;
        }
        let grown = live_bytes().saturating_sub(before);
        (raw, (frames, sent), grown)
    })
    .await;
    let outcome = raw.outcome().await;
    eprintln!(
        "continuation flood: {frames} CONTINUATION frames then {sent:?}, {outcome:?}, heap +{grown} bytes"
    );
    assert!(frames < FRAMES, "{FRAMES} CONTINUATION frames of 11 KiB each were read");
    assert_eq!(outcome.goaway, Some(ENHANCE_YOUR_CALM), "{outcome:?}");
    assert!(outcome.closed, "{outcome:?}");
    assert!(grown < 64 * MIB, "the heap grew by {grown} bytes");
}

#[tokio::test]
async fn answers_a_client_never_grants_window_for_are_capped_per_connection() {
    const STREAMS: u32 = 200;
    const BUDGET: usize = 16 * MIB;
    let limits = ConnectionLimits { max_unsent_response_bytes: BUDGET, ..ConnectionLimits::default() };
    let config = Config { connections: limits, ..Config::default() };
    let server = TestServer::builder().config(config).start().unwrap();
    // 4 MiB under big/: each Range answer is that large.
    for i in 0..4 {
        server.store().put(format!("big/{i}"), vec![b'x'; MIB], None).unwrap();
    }
    // The client gives no stream any window, and never sends a WINDOW_UPDATE.
    let mut raw = Raw::open(&server, &[(SETTINGS_INITIAL_WINDOW_SIZE, 0)]).await;
    let before = live_bytes();
    let (mut raw, (streams, sent)) = served_during(&server, async move {
        let sent = raw.flood(STREAMS as usize, |i| range_calls(2 * i as u32 + 1, 1, b"big/")).await;
        (raw, sent)
    })
    .await;
    // Every call is answered: a few held back by the window, the rest refused at once.
    let outcome = raw.read_until(|o| o.refused + 4 >= STREAMS as usize).await;
    let grown = live_bytes().saturating_sub(before);
    eprintln!("zero window: {streams} streams then {sent:?}, {outcome:?}, heap +{grown} bytes");
    assert_eq!(sent, Sent::All);
    assert!(outcome.refused >= STREAMS as usize - BUDGET / (4 * MIB), "{outcome:?}");
    assert!(
        grown < BUDGET + 32 * MIB,
        "the heap grew by {grown} bytes for {STREAMS} streams of 4 MiB answers"
    );
}

/// A server whose connections may each hold `per_connection` bytes of answers their clients
/// have not taken, and all of them together `total`, with `values` keys of 1 MiB under
/// `big/`: a Range of them answers that many MiB.
fn server_holding(per_connection: usize, total: usize, values: usize) -> TestServer {
    let limits = ConnectionLimits {
        max_unsent_response_bytes: per_connection,
        max_unsent_response_bytes_total: total,
        ..ConnectionLimits::default()
    };
    let config = Config { connections: limits, ..Config::default() };
    let server = TestServer::builder().config(config).start().unwrap();
    for i in 0..values {
        server.store().put(format!("big/{i}"), vec![b'x'; MIB], None).unwrap();
    }
    server
}

#[tokio::test]
async fn answers_a_client_grants_a_byte_of_window_each_are_capped_per_connection() {
    const STREAMS: u32 = 200;
    const BUDGET: usize = 16 * MIB;
    let server = server_holding(BUDGET, usize::MAX, 4);
    // Each stream may take one byte; the connection as much as it likes. The server hands
    // an answer on as soon as its stream has any window at all, so without a count that
    // lasts until the bytes are written, each answer left the budget at once.
    let mut raw = Raw::open(&server, &[(SETTINGS_INITIAL_WINDOW_SIZE, 1)]).await;
    assert_eq!(raw.send(&window_update(0, 1 << 30)).await, Sent::All);
    let start = start_peak();
    let (mut raw, sent) = served_during(&server, async move {
        let sent = raw.send(&range_calls(1, STREAMS, b"big/")).await;
        (raw, sent)
    })
    .await;
    assert_eq!(sent, Sent::All);
    let outcome = raw.read_until(|o| o.refused + o.started >= STREAMS as usize).await;
    let peak = peak_growth(start);
    eprintln!("a byte of window: {outcome:?}, heap peak +{peak} bytes");
    assert!(outcome.refused >= STREAMS as usize - BUDGET / (4 * MIB), "{outcome:?}");
    assert!(peak < BUDGET + 48 * MIB, "the heap grew by {peak} bytes for {STREAMS} streams of 4 MiB answers");
}

#[tokio::test]
async fn answers_a_client_never_reads_are_capped_per_connection() {
    const STREAMS: u32 = 200;
    const BUDGET: usize = 16 * MIB;
    let server = server_holding(BUDGET, usize::MAX, 4);
    // Windows as large as HTTP/2 allows, and the socket never read: the answers pile up
    // behind the socket's buffers, where no window holds them back.
    let mut raw = Raw::open(&server, &[(SETTINGS_INITIAL_WINDOW_SIZE, (1 << 31) - 1)]).await;
    assert_eq!(raw.send(&window_update(0, (1 << 31) - 1 - 65_535)).await, Sent::All);
    let start = start_peak();
    let (mut raw, sent) = served_during(&server, async move {
        let sent = raw.send(&range_calls(1, STREAMS, b"big/")).await;
        // The server has a second to answer what it will before anything is read.
        tokio::time::sleep(Duration::from_secs(1)).await;
        (raw, sent)
    })
    .await;
    assert_eq!(sent, Sent::All);
    let peak = peak_growth(start);
    // Read now, every call ends: answered, or refused while the others waited.
    let outcome = raw.read_until(|o| o.refused >= STREAMS as usize).await;
    eprintln!("unread socket: {outcome:?}, heap peak +{peak} bytes");
    assert_eq!(outcome.refused, STREAMS as usize, "{outcome:?}");
    assert!(peak < BUDGET + 48 * MIB, "the heap grew by {peak} bytes for {STREAMS} streams of 4 MiB answers");
}

#[tokio::test]
async fn answers_held_on_many_connections_are_capped_for_the_server() {
    const CONNECTIONS: usize = 16;
    const CALLS: u32 = 8;
    const TOTAL: usize = 24 * MIB;
    // Each connection could hold all its answers; the server cannot hold all of theirs.
    let server = server_holding(64 * MIB, TOTAL, 1);
    let mut raws = Vec::new();
    for _ in 0..CONNECTIONS {
        raws.push(Raw::open(&server, &[(SETTINGS_INITIAL_WINDOW_SIZE, 0)]).await);
    }
    let start = start_peak();
    let (raws, outcomes) = served_during(&server, async move {
        let mut outcomes = Vec::new();
        for raw in &mut raws {
            assert_eq!(raw.send(&range_calls(1, CALLS, b"big/")).await, Sent::All);
            outcomes.push(raw.read_until(|o| o.refused + o.started >= CALLS as usize).await);
        }
        (raws, outcomes)
    })
    .await;
    let peak = peak_growth(start);
    let held: usize = outcomes.iter().map(|o| o.started).sum();
    let refused: usize = outcomes.iter().map(|o| o.refused).sum();
    eprintln!("{CONNECTIONS} connections: {held} answers held, {refused} refused, heap peak +{peak} bytes");
    assert_eq!(held + refused, CONNECTIONS * CALLS as usize, "{outcomes:?}");
    // Each answer is a little over 1 MiB.
    assert!(held < TOTAL / MIB, "{held} answers of 1 MiB held");
    assert!(peak < TOTAL + 48 * MIB, "the heap grew by {peak} bytes");
    // A new connection's small answer is still served (the well-behaved client's gets
    // were), and a large one is not.
    let mut client = etcd_client::Client::connect([server.endpoint()], None).await.unwrap();
    let refused = client.get("big/", Some(etcd_client::GetOptions::new().with_prefix())).await.unwrap_err();
    assert!(refused.to_string().contains("etcdserver: too many requests"), "{refused}");
    drop(raws);
    // Once those connections are gone, so are their answers.
    within("the answers to be freed", async {
        while client.get("big/", Some(etcd_client::GetOptions::new().with_prefix())).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_write_on_a_connection_over_its_answer_budget_is_applied_and_not_refused() {
    use etcdlite::GetOptions;
    use etcdlite_server::pb::etcdserverpb::PutRequest;
    use prost::Message;
    const STREAMS: u32 = 20;
    const PUTS: u32 = 10;
    let limits = ConnectionLimits { max_unsent_response_bytes: 4 * MIB, ..ConnectionLimits::default() };
    let config = Config { connections: limits, ..Config::default() };
    let server = TestServer::builder().config(config).start().unwrap();
    for i in 0..4 {
        server.store().put(format!("big/{i}"), vec![b'x'; MIB], None).unwrap();
    }
    let mut raw = Raw::open(&server, &[(SETTINGS_INITIAL_WINDOW_SIZE, 0)]).await;
    assert_eq!(raw.flood(STREAMS as usize, |i| range_calls(2 * i as u32 + 1, 1, b"big/")).await.1, Sent::All);
    let outcome = raw.read_until(|o| o.refused + 1 >= STREAMS as usize).await;
    assert!(outcome.refused + 1 >= STREAMS as usize, "the budget was not reached: {outcome:?}");

    // Puts on the same connection, over its budget: each is applied, so none may be
    // answered "too many requests" (their answers wait for window like any other).
    let first_put = 2 * STREAMS + 1;
    for n in 0..PUTS {
        let put =
            PutRequest { key: format!("w/{n}").into_bytes(), value: b"v".to_vec(), ..Default::default() };
        let mut call = frame(HEADERS, END_HEADERS, first_put + 2 * n, &grpc_headers("/etcdserverpb.KV/Put"));
        call.extend(frame(DATA, END_STREAM, first_put + 2 * n, &grpc_message(&put.encode_to_vec())));
        assert_eq!(raw.send(&call).await, Sent::All);
    }
    within("the puts are applied", async {
        while server.store().get("w/", Some(GetOptions::new().with_prefix())).unwrap().count()
            < i64::from(PUTS)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // A Range after them is refused, and is the only call refused meanwhile.
    let sentinel = first_put + 2 * PUTS;
    assert_eq!(raw.send(&range_calls(sentinel, 1, b"big/")).await, Sent::All);
    let outcome = raw.read_until(|o| o.refused_streams.contains(&sentinel)).await;
    assert_eq!(outcome.refused_streams, vec![sentinel], "{outcome:?}");
}

#[tokio::test]
async fn a_declared_length_is_not_allocated_before_its_bytes_come() {
    const STREAMS: u32 = 200;
    let server = TestServer::start().unwrap();
    let mut raw = Raw::open(&server, &[]).await;
    let before = live_bytes();
    let (raw, (streams, sent), grown) = served_during(&server, async move {
        // Each call declares a message of 2 MiB (under the server's limit), then sends ten
        // bytes of it and nothing more.
        let declared = u32::try_from(2 * MIB).unwrap();
        let sent = raw.flood(STREAMS as usize, |i| declared_calls(2 * i as u32 + 1, 1, declared)).await;
        // Give the server time to take in what it will.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let grown = live_bytes().saturating_sub(before);
        (raw, sent, grown)
    })
    .await;
    drop(raw);
    eprintln!("declared lengths: {streams} streams then {sent:?}, heap +{grown} bytes");
    assert!(grown < 64 * MIB, "the heap grew by {grown} bytes for {STREAMS} calls of 15 bytes each");
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_its_bytes_come() {
    let server = TestServer::start().unwrap();
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(connection);
    let mut client = within("a stream", client.ready()).await.unwrap();
    let request = http::Request::post(format!("{}/etcdserverpb.KV/Put", server.endpoint()))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (answer, mut send) = client.send_request(request, false).unwrap();
    // A message of 4 GiB - 1 declared, ten bytes of it sent, and the stream left open.
    let mut start = vec![0];
    start.extend_from_slice(&u32::MAX.to_be_bytes());
    start.extend_from_slice(&[0x0a; 10]);
    send.send_data(bytes::Bytes::from(start), false).unwrap();
    let answer = within("the refusal", answer).await.unwrap();
    let header = |name| answer.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(header("grpc-status").as_deref(), Some("8"));
    let message = header("grpc-message").unwrap_or_default().replace("%20", " ");
    assert_eq!(message, "grpc: received message larger than max (4294967295 vs. 2097152)");
    driver.abort();
}
