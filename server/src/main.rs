//! `etcdlite`: an etcd v3 server (gRPC and JSON gateway) on one in-process store.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use etcdlite::{Options, Store};
use etcdlite_server::{AutoCompaction, Config, Server, DEFAULT_ETCD_VERSION};

/// mimalloc rather than the system allocator: a request allocates and frees dozens of small
/// buffers across the gRPC stack, and glibc's malloc spent about 14 % of the server's
/// instructions on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Engine {
    Memory,
    Rocksdb,
    Sled,
}

/// An etcd v3 server on one in-process etcdlite store. Flags are etcd's where they apply.
#[derive(Debug, Parser)]
#[command(name = "etcdlite", version)]
struct Args {
    /// Human-readable name for this member.
    #[arg(long, default_value = "default")]
    name: String,
    /// Directory for the data; without it the store lives in memory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Storage engine: memory (the default without --data-dir), rocksdb or sled (the
    /// default with --data-dir is the first one this build has).
    #[arg(long, value_enum)]
    engine: Option<Engine>,
    /// Comma-separated URLs to serve gRPC and the JSON gateway on.
    #[arg(long, default_value = "http://127.0.0.1:2379", value_delimiter = ',')]
    listen_client_urls: Vec<String>,
    /// Comma-separated client URLs this member advertises (default: the listen URLs).
    #[arg(long, value_delimiter = ',')]
    advertise_client_urls: Vec<String>,
    /// Largest write request accepted, in bytes.
    #[arg(long, default_value_t = etcdlite_server::DEFAULT_MAX_REQUEST_BYTES)]
    max_request_bytes: usize,
    /// Space quota in bytes; 0 means etcd's default of 2 GiB.
    #[arg(long, default_value_t = 0)]
    quota_backend_bytes: u64,
    /// Auto-compaction mode: periodic or revision.
    #[arg(long, default_value = "periodic")]
    auto_compaction_mode: String,
    /// Auto-compaction retention: a duration (1h, 30m, or hours as a number) for periodic,
    /// a number of revisions for revision; 0 turns it off.
    #[arg(long, default_value = "0")]
    auto_compaction_retention: String,
    /// fsync every write before acknowledging it (persistent engines).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    sync: bool,
    /// The etcd version the Status call reports.
    #[arg(long, default_value = DEFAULT_ETCD_VERSION)]
    etcd_version: String,
}

fn parse_url(url: &str) -> Result<Vec<SocketAddr>, String> {
    let host_port = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("unsupported URL {url:?}: only http:// client URLs are served"))?
        .trim_end_matches('/');
    host_port.to_socket_addrs().map(|a| a.collect()).map_err(|e| format!("bad URL {url:?}: {e}"))
}

fn store_options(args: &Args) -> Result<Options, String> {
    let engine = match (args.engine, &args.data_dir) {
        (Some(engine), _) => engine,
        (None, None) => Engine::Memory,
        (None, Some(_)) if cfg!(feature = "rocksdb") => Engine::Rocksdb,
        (None, Some(_)) if cfg!(feature = "sled") => Engine::Sled,
        (None, Some(_)) => {
            return Err("--data-dir needs a persistent engine: build with --features rocksdb or sled".into())
        }
    };
    let dir = || args.data_dir.clone().ok_or_else(|| format!("--engine {engine:?} needs --data-dir"));
    let options = match engine {
        Engine::Memory => Options::memory(),
        #[cfg(feature = "rocksdb")]
        Engine::Rocksdb => Options::rocksdb(dir()?),
        #[cfg(feature = "sled")]
        Engine::Sled => Options::sled(dir()?),
        #[allow(unreachable_patterns)]
        other => {
            let _ = dir;
            return Err(format!("this build has no {other:?} engine: rebuild with --features {other:?}")
                .to_lowercase());
        }
    };
    // The memory engine has nothing to sync: waiting for a no-op sync would only slow it.
    let sync = args.sync && engine != Engine::Memory;
    Ok(options.sync(sync).max_request_bytes(args.max_request_bytes))
}

fn config(args: &Args) -> Result<Config, String> {
    let mut listen = Vec::new();
    for url in &args.listen_client_urls {
        listen.extend(parse_url(url)?);
    }
    Ok(Config {
        name: args.name.clone(),
        listen,
        advertise_client_urls: args.advertise_client_urls.clone(),
        max_request_bytes: args.max_request_bytes,
        quota_bytes: if args.quota_backend_bytes == 0 {
            etcdlite_server::DEFAULT_QUOTA_BYTES
        } else {
            args.quota_backend_bytes
        },
        etcd_version: args.etcd_version.clone(),
        auto_compaction: AutoCompaction::parse(&args.auto_compaction_mode, &args.auto_compaction_retention)?,
        ..Config::default()
    })
}

async fn shutdown_signal() {
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let options = store_options(&args)?;
    let config = config(&args)?;
    let store = Arc::new(Store::open(options).map_err(|e| format!("opening the store: {e}"))?);
    let server = Server::bind(config, store.clone()).await.map_err(|e| format!("binding: {e}"))?;
    for addr in server.local_addrs() {
        tracing::info!(%addr, name = %args.name, data_dir = ?args.data_dir, "serving etcd v3 gRPC and JSON gateway");
    }
    server.serve(shutdown_signal()).await.map_err(|e| format!("serving: {e}"))?;
    drop(store);
    tracing::info!("stopped");
    Ok(())
}
