//! Child processes in tests: waiting for a server's port, and running a command to its end
//! with its output, each bounded by a deadline.

use std::io::Read;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Output};
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
