//! Helpers shared by the end-to-end tests: where the built binaries are, polling
//! waits instead of fixed sleeps, free loopback ports, a started process whose
//! output lines can be awaited, and a guard that kills (by pid) every process a
//! test started, even when the test fails.
use std::cell::RefCell;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// Runs the built `ringmaster ARGS` in `dir` (for the benches); its wall time.
/// Panics when it fails.
pub fn run_ringmaster(dir: &Path, args: &[&str]) -> Duration {
    let started = Instant::now();
    let out = Command::new(built_path("ringmaster"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("ringmaster runs");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "ringmaster {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// Where a binary of this workspace (`ringmaster`, `fake-service`, `demo-api`,
/// ...) is built, whether it is there or not. Test binaries live in
/// `target/<profile>/deps`; the binaries one folder up.
pub fn built_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its own path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binaries live in target/<profile>/deps");
    dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// Path of a binary built in this workspace's target directory; panics when it
/// is not built (see [`built_path`]).
pub fn bin_path(name: &str) -> PathBuf {
    let path = built_path(name);
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
    // The kernel may hand the same ephemeral port out again once it is released:
    // never return one this process returned before, so that two ports a test
    // takes in a row are different.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("binding 127.0.0.1:0 works");
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// True when `port` on 127.0.0.1 accepts a connection.
pub fn port_answers(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// How long [`Svc::expect`] waits for a line.
const LINE_TIMEOUT: Duration = Duration::from_secs(20);

/// A running process (usually fake-service) and its stdout lines, read on a
/// thread so that a test can wait for a line with a timeout.
pub struct Svc {
    /// The process itself (our child).
    pub child: Child,
    lines: Receiver<String>,
    /// Lines read but not yet asked for.
    seen: RefCell<Vec<String>>,
}

impl Svc {
    /// Starts `cmd` with its stdout piped; `guard` kills it when the test ends.
    pub fn start(cmd: &mut Command, guard: &PidGuard) -> Svc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .expect("fake-service starts");
        guard.add(child.id());
        let out = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Svc {
            child,
            lines,
            seen: Default::default(),
        }
    }

    /// Starts fake-service with `args`.
    pub fn with(args: &[&str], guard: &PidGuard) -> Svc {
        Svc::start(Command::new(fake_service()).args(args), guard)
    }

    /// The rest of the first line starting with `prefix` (e.g. `listening `),
    /// taken; lines skipped on the way are kept for later calls.
    pub fn expect(&self, prefix: &str) -> String {
        let mut seen = self.seen.borrow_mut();
        loop {
            if let Some(i) = seen.iter().position(|l| l.starts_with(prefix)) {
                let line = seen.remove(i);
                return line[prefix.len()..].trim().to_string();
            }
            let line = self
                .lines
                .recv_timeout(LINE_TIMEOUT)
                .unwrap_or_else(|_| panic!("fake-service never printed `{prefix}...`"));
            seen.push(line);
        }
    }

    /// The port from the `listening <port>` line.
    pub fn port(&self) -> u16 {
        self.expect("listening ").parse().expect("a port number")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True once the process has exited (reaps it: it is our child).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Kills the process and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// True when `pid` exists (Windows: the process table lists it, through the OS
/// layer's own lookup).
#[cfg(not(unix))]
pub fn pid_alive(pid: u32) -> bool {
    ringmaster_os::process::liveness(pid).is_some_and(|(_, zombie)| !zombie)
}

/// Sends SIGKILL to `pid` (only ever pids a test started itself).
#[cfg(unix)]
pub fn kill_pid(pid: u32) {
    // SAFETY: plain kill(2) on a pid the test started.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

/// Terminates `pid` with `taskkill /F` (only ever pids a test started itself),
/// and waits for taskkill.
#[cfg(not(unix))]
pub fn kill_pid(pid: u32) {
    let _ = Command::new("taskkill")
        .args(["/F", "/PID", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The name the OS shows for `pid` (Linux: `/proc/PID/comm`, which a process may
/// rename); empty when it is gone or elsewhere.
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The full path of `program` on PATH, if any (for tests of real servers that
/// say they were skipped when the server is not installed).
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Kills, by pid, every pid registered with it when dropped: a test registers what
/// it starts, so nothing outlives the test even when an assertion fails. Windows
/// reuses pids soon: there a pid is killed only while it is still the process
/// that was registered (same start time).
#[derive(Default)]
pub struct PidGuard {
    /// Each pid and, on Windows, its start time when it was registered.
    pids: std::sync::Mutex<Vec<(u32, Option<u64>)>>,
}

impl PidGuard {
    /// An empty guard.
    pub fn new() -> Self {
        Self::default()
    }
    /// Kill `pid` when the guard drops.
    pub fn add(&self, pid: u32) {
        #[cfg(unix)]
        let start = None;
        #[cfg(not(unix))]
        let start = ringmaster_os::process::liveness(pid).map(|(start, _)| start);
        self.pids.lock().expect("pid guard lock").push((pid, start));
    }
}

impl Drop for PidGuard {
    fn drop(&mut self) {
        for (pid, start) in self.pids.lock().map(|p| p.clone()).unwrap_or_default() {
            let same = match start {
                Some(start) => ringmaster_os::process::is_same_alive(pid, start),
                None => cfg!(unix) && pid_alive(pid),
            };
            if same {
                kill_pid(pid);
            }
        }
    }
}

/// Panics unless each of `names` is built (see [`built_path`]), saying that
/// `build` builds them (for the benches, which run release binaries).
pub fn expect_built(names: &[&str], build: &str) {
    for name in names {
        let path = built_path(name);
        assert!(path.exists(), "{} is not built: {build}", path.display());
    }
}

/// The numeric environment variable `name`, or `default` (the benches' knobs).
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A two-service configuration, for the tests and the benches: `api` (HTTP, with
/// a worker sharing its socket, like `uvicorn --reload`; an HTTP probe) and `web`
/// (two children, a TCP probe, depends on api).
pub fn two_services(api: u16, web: u16) -> String {
    let fake = fake_service();
    let fake = fake.display();
    format!(
        r#"[settings]
shutdown_timeout = "20s"

[services.api]
command = "{fake} --listen {api} --http --share"
port = {api}
allow = ["fake-service"]
health = {{ http = "http://127.0.0.1:{api}/health" }}
stop = {{ timeout = "5s" }}

[services.web]
command = "{fake} --listen {web} --http --children 2"
port = {web}
allow = ["fake-service"]
depends_on = ["api"]
health = {{ tcp = {web} }}
stop = {{ timeout = "5s" }}
"#
    )
}

/// What `/proc` says of one process (Linux), for the benches.
#[cfg(target_os = "linux")]
pub mod procfs {
    use std::time::Duration;

    /// CPU time (user + system, all its threads) `pid` used so far.
    pub fn cpu_time(pid: u32) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the process runs");
        // After the command name in parentheses: state is field 3, utime 14, stime 15.
        let rest = &stat[stat.rfind(')').expect("a stat line") + 1..];
        let fields: Vec<u64> = rest
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Duration::from_millis((fields[11] + fields[12]) * 1000 / hz)
    }

    /// The `field` line of `/proc/PID/status` (`VmRSS:`, `RssAnon:`, ...), in kB;
    /// 0 when absent.
    pub fn status_kb(pid: u32, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process runs");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}
