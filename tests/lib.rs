//! Helpers shared by the end-to-end tests: where the built binaries are, polling
//! waits instead of fixed sleeps, free loopback ports, and a guard that kills (by
//! pid) every process a test started, even when the test fails.
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Path of a binary built in this workspace's target directory (`ringmaster`,
/// `fake-service`, `demo-api`, ...). Test binaries live in `target/<profile>/deps`;
/// the binaries one folder up.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its own path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binaries live in target/<profile>/deps");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is not built; run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

/// The fake-service program the tests drive.
pub fn fake_service() -> PathBuf {
    bin_path("fake-service")
}

/// Checks `cond` every 20 ms until it is true; panics with `what` after `timeout`.
/// Timeouts are generous: tests must not depend on the machine being fast.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback port that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0 works")
}

/// True when `port` on 127.0.0.1 accepts a connection.
pub fn port_answers(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// True when `pid` exists and is not a zombie.
#[cfg(unix)]
pub fn pid_alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let exists = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
    if !exists {
        return false;
    }
    #[cfg(target_os = "linux")]
    {
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                return !rest.trim_start().starts_with('Z');
            }
        }
    }
    true
}

/// Sends SIGKILL to `pid` (only ever pids a test started itself).
#[cfg(unix)]
pub fn kill_pid(pid: u32) {
    // SAFETY: plain kill(2) on a pid the test started.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

/// Kills, by pid, every pid registered with it when dropped: a test registers what
/// it starts, so nothing outlives the test even when an assertion fails.
#[derive(Default)]
pub struct PidGuard {
    pids: std::sync::Mutex<Vec<u32>>,
}

impl PidGuard {
    /// An empty guard.
    pub fn new() -> Self {
        Self::default()
    }
    /// Kill `pid` when the guard drops.
    pub fn add(&self, pid: u32) {
        self.pids.lock().expect("pid guard lock").push(pid);
    }
}

impl Drop for PidGuard {
    fn drop(&mut self) {
        #[cfg(unix)]
        for pid in self.pids.lock().map(|p| p.clone()).unwrap_or_default() {
            if pid_alive(pid) {
                kill_pid(pid);
            }
        }
    }
}
