//! Child processes in tests: the `etcdlite` binary on a loopback port, and running a command
//! to its end with its output, each bounded by a deadline.

use std::fs::OpenOptions;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Debian's etcdctl (3.4), which the tests run unless `$ETCDCTL` names another.
const DEFAULT_ETCDCTL: &str = "/usr/bin/etcdctl";

/// The etcdctl to run: `$ETCDCTL`, else Debian's. None (after saying so) when neither exists.
pub fn etcdctl_binary() -> Option<PathBuf> {
    let path =
        std::env::var_os("ETCDCTL").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(DEFAULT_ETCDCTL));
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: etcdctl not found at {} (install Debian's etcd-client, or set ETCDCTL)",
            path.display()
        );
        None
    }
}

/// Waits for `child` (spawned with piped stdout and stderr) to exit and returns its output;
/// kills it and panics, naming `what`, past `deadline`.
pub fn output_within(mut child: Child, what: &str, deadline: Duration) -> Output {
    let stdout = read_all_in_background(child.stdout.take().expect("piped stdout"));
    let stderr = read_all_in_background(child.stderr.take().expect("piped stderr"));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {deadline:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

/// Reads `from` to its end on a thread of its own.
pub fn read_all_in_background(mut from: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = from.read_to_end(&mut buf);
        buf
    })
}

/// The `etcdlite` binary as a child serving on a loopback port of the kernel's choosing, its
/// stderr appended to a log file; killed with SIGKILL when dropped or [`kill`](Self::kill)ed. The binary is this
/// build's, or `$ETCDLITE_BIN`: a copy that a long run keeps while other builds sharing the
/// target dir replace this build's.
pub struct EtcdLiteChild {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl EtcdLiteChild {
    /// Starts `etcdlite --listen-client-urls <scheme>://127.0.0.1:0` with `args`, and waits
    /// (at most `deadline`, else panics) until its log names the port it serves on. Port 0
    /// lets the kernel pick the port at the server's own bind: a port picked beforehand may
    /// be taken by another process before the server binds it, and a client could then
    /// reach that other server. If it exits first, answers what it logged.
    pub fn start(
        scheme: &str,
        args: &[&str],
        log: &Path,
        deadline: Duration,
    ) -> Result<EtcdLiteChild, String> {
        let stderr = OpenOptions::new().create(true).append(true).open(log).expect("the log file");
        let logged_before = stderr.metadata().expect("the log's length").len();
        let binary =
            std::env::var_os("ETCDLITE_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_etcdlite").into());
        let mut child = Command::new(binary)
            .arg("--listen-client-urls")
            .arg(format!("{scheme}://127.0.0.1:0"))
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn etcdlite");
        let start = Instant::now();
        while start.elapsed() < deadline {
            let logged = log_since(log, logged_before);
            if let Some(port) = served_port(&logged, scheme) {
                return Ok(EtcdLiteChild { child, port, log: log.to_owned() });
            }
            if let Some(status) = child.try_wait().expect("try_wait") {
                return Err(format!("etcdlite exited ({status}):\n{}", log_since(log, logged_before)));
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("etcdlite did not serve within {deadline:?}:\n{}", log_since(log, logged_before));
    }

    /// The loopback port it serves on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its process id.
    #[allow(dead_code, reason = "not every test that includes this file looks at the process")]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The end of its log.
    pub fn log(&self) -> String {
        log_tail(&self.log)
    }

    /// Stops it at once with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EtcdLiteChild {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The port of the first `<scheme>://127.0.0.1:<port>` a server's log says it serves on.
fn served_port(log: &str, scheme: &str) -> Option<u16> {
    let prefix = format!("{scheme}://127.0.0.1:");
    let line = log.lines().find(|line| line.contains("serving etcd v3") && line.contains(&prefix))?;
    let after = &line[line.find(&prefix)? + prefix.len()..];
    let digits = after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len());
    after[..digits].parse().ok()
}

/// The last 64 KiB of the file at `path` (empty if it cannot be read): all of a test
/// server's log, the end of one restarted many times.
fn log_tail(path: &Path) -> String {
    const TAIL: u64 = 64 * 1024;
    let length = std::fs::metadata(path).map_or(0, |m| m.len());
    log_since(path, length.saturating_sub(TAIL))
}

/// The file at `path` from byte `offset` on (empty if it cannot be read).
fn log_since(path: &Path, offset: u64) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let from = usize::try_from(offset).map_or(text.len(), |offset| offset.min(text.len()));
    String::from_utf8_lossy(&text[from..]).into_owned()
}
