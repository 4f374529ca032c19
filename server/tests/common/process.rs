//! Child processes in tests: the `etcdlite` binary on a free loopback port, waiting for a
//! server's port, and running a command to its end with its output, each bounded by a deadline.

use std::fs::OpenOptions;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
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

/// Polls `port` until it accepts (true) or `child` exits (false, after printing `log()`);
/// panics past `deadline`.
pub fn wait_until_listening(
    child: &mut Child,
    port: u16,
    deadline: Duration,
    log: impl Fn() -> String,
) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            eprintln!("etcdlite exited early ({status}):\n{}", log());
            return false;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("etcdlite did not listen on port {port} within {deadline:?}:\n{}", log());
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

/// The `etcdlite` binary as a child serving on a loopback port, its stderr appended to a log
/// file; killed with SIGKILL when dropped or [`kill`](Self::kill)ed. The binary is this
/// build's, or `$ETCDLITE_BIN`: a copy that a long run keeps while other builds sharing the
/// target dir replace this build's.
pub struct EtcdLiteChild {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl EtcdLiteChild {
    /// Starts `etcdlite --listen-client-urls <scheme>://127.0.0.1:<port>` with `args`, on a
    /// port that was free a moment before, and waits (at most `deadline`) until it listens.
    /// If it exits first because another process took the port meanwhile, it tries again on
    /// another port, three times in all. If it exits for any other reason (a store that does
    /// not open must not get a second chance), or three times, answers what it logged.
    pub fn start(
        scheme: &str,
        args: &[&str],
        log: &Path,
        deadline: Duration,
    ) -> Result<EtcdLiteChild, String> {
        let mut logged = String::new();
        for _ in 0..3 {
            let port =
                TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("an address").port();
            let stderr = OpenOptions::new().create(true).append(true).open(log).expect("the log file");
            let logged_before = stderr.metadata().expect("the log's length").len();
            let binary =
                std::env::var_os("ETCDLITE_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_etcdlite").into());
            let child = Command::new(binary)
                .arg("--listen-client-urls")
                .arg(format!("{scheme}://127.0.0.1:{port}"))
                .args(args)
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .expect("spawn etcdlite");
            let mut server = EtcdLiteChild { child, port, log: log.to_owned() };
            let log_path = log.to_owned();
            if wait_until_listening(&mut server.child, port, deadline, move || log_tail(&log_path)) {
                return Ok(server);
            }
            logged = log_since(log, logged_before);
            if !logged.contains("Address already in use") {
                break;
            }
        }
        Err(logged)
    }

    /// The loopback port it serves on.
    pub fn port(&self) -> u16 {
        self.port
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
