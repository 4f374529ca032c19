//! What the inbound header-block reader costs a put. BENCHMARKS.md has the command and
//! numbers.
//!
//! One connection to a [`TestServer`] (memory engine), spoken by `tests/common/h2_client.rs`
//! on a tokio current_thread runtime over loopback; each iteration is one unary Put of a
//! 256-byte value to one of 1,000 keys, waited for. The two cases differ only in the
//! `:authority` of every call:
//!
//! - `valid_authority` (`127.0.0.1:PORT`): the reader HPACK-decodes each block to follow
//!   the client's table and hands it on unchanged.
//! - `url_authority` (`http://127.0.0.1:PORT`, as etcdctl 3.4 sends it): every block is
//!   encoded again with the authority replaced.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use etcdlite_server::pb::etcdserverpb::PutRequest;
use etcdlite_server::TestServer;
use prost::Message;

#[path = "../tests/common/h2_client.rs"]
mod h2_client;
#[allow(dead_code, reason = "h2_client's frame builders; the floods' are unused here")]
#[path = "../tests/common/raw_h2.rs"]
mod raw_h2;
use h2_client::{Answer, RawH2};

const KEYS: u64 = 1_000;

fn puts(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let server = TestServer::start().unwrap();
    let value = vec![b'v'; 256];
    let mut group = c.benchmark_group("put_one_connection");
    for (name, authority) in [
        ("valid_authority", server.addr().to_string()),
        ("url_authority", format!("http://{}", server.addr())),
    ] {
        let mut connection = rt.block_on(RawH2::connect(server.addr()));
        let mut i = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                let put = PutRequest {
                    key: format!("bench/{}", i % KEYS).into_bytes(),
                    value: value.clone(),
                    ..Default::default()
                }
                .encode_to_vec();
                let call = connection.unary("/etcdserverpb.KV/Put", authority.as_bytes(), &put, &[]);
                let answer = rt.block_on(call);
                assert!(matches!(answer, Answer::Status(ref status, _) if status == "0"), "{answer:?}");
                black_box(answer)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, puts);
criterion_main!(benches);
