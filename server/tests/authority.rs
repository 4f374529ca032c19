//! The HTTP/2 `:authority` of a gRPC call, sent byte by byte over loopback: etcdctl 3.4
//! sends its endpoint URL (`http://127.0.0.1:2379`) there, which grpc-go (and so etcd)
//! accepts and h2 alone would refuse with RST_STREAM PROTOCOL_ERROR. The client is
//! `common/h2_client.rs`, since no Rust HTTP/2 client sends such an authority.

#[path = "common/h2_client.rs"]
mod h2_client;
#[allow(dead_code, reason = "h2_client's frame builders; the floods' are unused here")]
#[path = "common/raw_h2.rs"]
mod raw_h2;

use std::time::Duration;

use etcdlite_server::pb::etcdserverpb::{RangeRequest, RangeResponse};
use etcdlite_server::TestServer;
use h2_client::{Answer, RawH2};
use prost::Message;

/// A Range of `key` on `connection` with `authority` and `extra` fields, answered within 10 s.
async fn range(connection: &mut RawH2, authority: &[u8], key: &[u8], extra: &[(&[u8], &[u8])]) -> Answer {
    let message = RangeRequest { key: key.to_vec(), ..Default::default() }.encode_to_vec();
    let call = connection.unary("/etcdserverpb.KV/Range", authority, &message, extra);
    tokio::time::timeout(Duration::from_secs(10), call).await.expect("an answer within 10 s")
}

fn value_of(answer: &Answer) -> Vec<u8> {
    match answer {
        Answer::Status(status, message) if status == "0" => {
            RangeResponse::decode(message.as_slice()).unwrap().kvs[0].value.clone()
        }
        other => panic!("expected a served Range, got {other:?}"),
    }
}

#[tokio::test]
async fn a_url_as_authority_is_served_as_etcd_serves_it() {
    let server = TestServer::start().unwrap();
    server.store().put("k", "v", None).unwrap();
    let mut connection = RawH2::connect(server.addr()).await;
    let url = format!("http://{}", server.addr());
    let answer = range(&mut connection, url.as_bytes(), b"k", &[]).await;
    assert_eq!(value_of(&answer), b"v");
}

#[tokio::test]
async fn valid_and_url_authorities_mixed_on_one_connection_keep_the_header_tables_in_step() {
    let server = TestServer::start().unwrap();
    for i in 0..8 {
        server.store().put(format!("k{i}"), format!("v{i}"), None).unwrap();
    }
    let mut connection = RawH2::connect(server.addr()).await;
    let host = server.addr().to_string();
    let url = format!("http://{host}");
    // Valid first (h2 reads the client's blocks as sent), then URLs (blocks encoded again),
    // then valid again. Each request adds a 1,500-byte field of a new name to the client's
    // 4,096-byte table, so entries are evicted as the calls go on, and the repeated fields
    // are sent as references into that table.
    let authorities = [&host, &host, &url, &url, &host, &url, &host, &host];
    for (i, authority) in authorities.iter().enumerate() {
        let (name, pad) = (format!("x-pad-{i}"), vec![b'a' + i as u8; 1_500]);
        let key = format!("k{i}");
        let answer =
            range(&mut connection, authority.as_bytes(), key.as_bytes(), &[(name.as_bytes(), &pad)]).await;
        assert_eq!(value_of(&answer), format!("v{i}").as_bytes(), "call {i} with authority {authority}");
    }
}

#[tokio::test]
async fn an_authority_with_a_control_character_is_still_refused() {
    let server = TestServer::start().unwrap();
    server.store().put("k", "v", None).unwrap();
    let mut connection = RawH2::connect(server.addr()).await;
    // grpc-go's framer refuses it too (no control characters in a field value).
    let answer = range(&mut connection, b"http://127.0.0.1\n:2379", b"k", &[]).await;
    assert_eq!(answer, Answer::Reset(0x1), "PROTOCOL_ERROR");
    // The connection goes on.
    let answer = range(&mut connection, server.addr().to_string().as_bytes(), b"k", &[]).await;
    assert_eq!(value_of(&answer), b"v");
}

#[tokio::test]
async fn an_authority_with_bytes_that_are_not_utf8_is_served_as_etcd_serves_it() {
    let server = TestServer::start().unwrap();
    server.store().put("k", "v", None).unwrap();
    let mut connection = RawH2::connect(server.addr()).await;
    // etcd 3.5.1 and 3.4.23 answer each of these Range calls (checked on the wire): grpc-go's
    // framer lets bytes of 0x80 and up through, UTF-8 or not, and keeps the value as metadata.
    let authorities: [&[u8]; 5] =
        [b"127.0.0.1:2379\xff", b"h\xc3\x28:1", "h\u{e9}llo:1".as_bytes(), b"\x80", b"http://h\xff:1"];
    for authority in authorities {
        let answer = range(&mut connection, authority, b"k", &[]).await;
        assert_eq!(value_of(&answer), b"v", "authority {authority:?}");
    }
    // The connection goes on, with a valid authority too.
    let answer = range(&mut connection, server.addr().to_string().as_bytes(), b"k", &[]).await;
    assert_eq!(value_of(&answer), b"v");
}
