//! What a test pays for a `TestServer`: starting one and dropping it (the target:
//! a median under 10 ms), and starting one until an `etcd-client` put has its answer.
//!
//! Flat sampling over many short samples puts one iteration in each sample where a
//! start-up takes over 0.3 ms (two where it is faster), so that the samples are the
//! distribution of single start-ups, whose 99th percentile can be read off
//! `target/criterion/test_server/<name>/new/sample.json`. (Criterion warns that it cannot
//! complete the samples in the target time: one iteration a sample is the point.)

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use etcdlite_server::TestServer;

fn test_server(c: &mut Criterion) {
    let mut group = c.benchmark_group("test_server");
    group.sampling_mode(SamplingMode::Flat).sample_size(1000).measurement_time(Duration::from_millis(300));

    group.bench_function("start_and_drop", |b| {
        b.iter(|| drop(TestServer::start().expect("start")));
    });

    // The client's runtime has worker threads, so that its connections see the server's
    // goodbye while the drop waits for them, as a multi-thread test's would.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    group.bench_function("start_to_first_put", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let server = TestServer::start().expect("start");
                let client = runtime.block_on(async {
                    let mut client = etcd_client::Client::connect([server.endpoint()], None).await.unwrap();
                    client.put("k", "v", None).await.unwrap();
                    client
                });
                elapsed += started.elapsed();
                // Stopping is not part of the time to a first answer.
                drop(client);
                drop(server);
            }
            elapsed
        });
    });
    group.finish();
}

criterion_group!(benches, test_server);
criterion_main!(benches);
