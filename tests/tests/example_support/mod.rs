//! Shared by the example tests (`example_demo.rs`, `example_bot.rs`): the demo
//! binaries (built on demand when a narrower `cargo test -p` did not build them),
//! the dashboard configuration copied for a test (the demo binaries run directly,
//! state in a temporary folder, the ports from `API_PORT`/`WEB_PORT` or written
//! in), output capture, and a guard that kills the process groups a test started.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringmaster_examples::http;

/// The workspace root (the folder of the workspace Cargo.toml).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the workspace root")
        .to_path_buf()
}

/// Path of a binary or example (`"demo-api"`, `"examples/bot"`) of the examples
/// crate. `cargo test --workspace` builds them; `cargo test -p ringmaster-tests`
/// does not, so they are built here when missing.
pub fn example_bin(name: &str) -> PathBuf {
    let path = ringmaster_tests::built_path(name);
    if !path.exists() {
        build_examples();
    }
    assert!(path.exists(), "{} is not built", path.display());
    path
}

fn build_examples() {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if *built {
        return;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "ringmaster-examples", "--bins", "--examples"])
        .current_dir(workspace_root())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the examples failed");
    *built = true;
}

/// The text `examples/dashboard/ringmaster.toml` becomes for a test: the demo
/// binaries run directly (not through `cargo run`), with the test's folder as
/// workdir. Written into the test's folder, its `state_dir` (relative to the file)
/// is there too. The ports stay `${API_PORT:-8000}` and `${WEB_PORT:-3000}`: give
/// every ringmaster process that loads it [`dashboard_env`]. Every rewrite must
/// apply, so a change of the example configuration shows up here.
pub fn dashboard_config_for_env() -> String {
    let path = workspace_root().join("examples/dashboard/ringmaster.toml");
    let text = std::fs::read_to_string(&path).expect("the dashboard config is readable");
    let api = example_bin("demo-api");
    let web = example_bin("demo-frontend");
    rewrite(
        &path,
        text,
        [
            (
                "cargo run -p ringmaster-examples --bin demo-api --".to_string(),
                format!("'{}'", api.display()),
            ),
            (
                "cargo run -p ringmaster-examples --bin demo-frontend --".to_string(),
                format!("'{}'", web.display()),
            ),
            (
                "workdir = \"../..\"".to_string(),
                "workdir = \".\"".to_string(),
            ),
        ],
    )
}

/// The environment that puts the dashboard of [`dashboard_config_for_env`] on
/// these ports (for `Command::envs`).
pub fn dashboard_env(api_port: u16, web_port: u16) -> [(&'static str, String); 2] {
    [
        ("API_PORT", api_port.to_string()),
        ("WEB_PORT", web_port.to_string()),
    ]
}

/// [`dashboard_config_for_env`] with the ports written in: for a process that
/// loads the configuration itself with an environment the test does not set
/// (such as the bot). The variables are gone, so an `API_PORT` or `WEB_PORT` in
/// the test's own environment cannot move them.
pub fn dashboard_config(api_port: u16, web_port: u16) -> String {
    let path = workspace_root().join("examples/dashboard/ringmaster.toml");
    rewrite(
        &path,
        dashboard_config_for_env(),
        [
            ("${API_PORT:-8000}".to_string(), api_port.to_string()),
            ("${WEB_PORT:-3000}".to_string(), web_port.to_string()),
        ],
    )
}

/// Applies each `(from, to)` to `text` (read from `path`), failing when `from`
/// is not there.
fn rewrite<const N: usize>(
    path: &Path,
    mut text: String,
    rewrites: [(String, String); N],
) -> String {
    for (from, to) in rewrites {
        assert!(
            text.contains(&from),
            "{} no longer contains `{from}`: update the example tests",
            path.display()
        );
        text = text.replace(&from, &to);
    }
    text
}

/// Two different free loopback ports.
pub fn two_free_ports() -> (u16, u16) {
    loop {
        let a = ringmaster_tests::free_port();
        let b = ringmaster_tests::free_port();
        if a != b {
            return (a, b);
        }
    }
}

/// True when nothing listens on `port` and it can be bound again.
pub fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
        && ringmaster_os::ports::port_is_free(port).unwrap_or(false)
}

/// `GET http://127.0.0.1:port/path`: status and body, or None when nothing answers.
pub fn get(port: u16, path: &str) -> Option<http::Response> {
    http::get(
        &format!("http://127.0.0.1:{port}{path}"),
        Duration::from_secs(10),
    )
    .ok()
}

/// The pid in the frontend page's "Served by ... (pid N)".
pub fn page_server_pid(page: &str) -> Option<u32> {
    let rest = page
        .split("<code>demo-frontend-server</code> (pid ")
        .nth(1)?;
    rest.split(')').next()?.parse().ok()
}

/// The lines a child process printed, collected by reader threads.
#[derive(Clone, Default)]
pub struct Output {
    lines: Arc<Mutex<Vec<String>>>,
}

impl Output {
    /// Collects `stream` line by line on a thread.
    pub fn collect(&self, stream: impl Read + Send + 'static, prefix: &'static str) {
        let lines = self.lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                eprintln!("{prefix}{line}");
                lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
    }
    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    /// How many lines so far (a mark for [`Output::since`]).
    pub fn len(&self) -> usize {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
    /// The lines after `mark`.
    pub fn since(&self, mark: usize) -> Vec<String> {
        self.lines().into_iter().skip(mark).collect()
    }
    /// Everything, one line after the other.
    pub fn text(&self) -> String {
        self.lines().join("\n")
    }
}

/// Runs `cmd` to its end within `timeout`, capturing its output: (exit code, stdout, stderr).
pub fn run(cmd: &mut Command, timeout: Duration) -> (Option<i32>, String, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let out = Output::default();
    let err = Output::default();
    out.collect(child.stdout.take().expect("piped stdout"), "  | ");
    err.collect(child.stderr.take().expect("piped stderr"), "  ! ");
    let status = wait_exit(&mut child, timeout);
    // The reader threads finish once the pipes close; give them a moment.
    std::thread::sleep(Duration::from_millis(50));
    (status, out.text(), err.text())
}

/// Waits for `child` to exit within `timeout` (panics otherwise: register it with
/// a guard so that it is killed then); returns its exit code.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<i32> {
    let mut status = None;
    let mut error = None;
    ringmaster_tests::wait_for("a process to exit", timeout, || match child.try_wait() {
        Ok(Some(s)) => {
            status = Some(s);
            true
        }
        Ok(None) => false,
        Err(e) => {
            error = Some(e);
            true
        }
    });
    if let Some(e) = error {
        panic!("waiting for pid {}: {e}", child.id());
    }
    status.and_then(|s| s.code())
}

/// Kills (SIGKILL), when dropped, the process groups registered with it: each is a
/// group the test itself started with `process_group(0)`, named by its leader's pid.
#[derive(Default)]
pub struct GroupGuard {
    groups: Mutex<Vec<u32>>,
}

impl GroupGuard {
    /// Kill group `pgid` when the guard drops.
    pub fn add(&self, pgid: u32) {
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(pgid);
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        for pgid in self.groups.lock().map(|g| g.clone()).unwrap_or_default() {
            // SAFETY: kill(2) on a process group this test created.
            unsafe {
                libc::kill(-(pgid as libc::pid_t), libc::SIGKILL);
            }
        }
    }
}
