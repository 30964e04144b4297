//! Shared by the CLI tests (`cli_*.rs`): a project folder in a `TempDir` with a
//! `ringmaster.toml` that runs the fake-service program on free ports, the
//! `ringmaster` command run inside it, and reads of what the OS shows (who holds
//! a port, who carries the project's tag).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::Duration;

use assert_cmd::Command;
// Not every test file that includes this module uses it.
#[allow(unused_imports)]
pub use ringmaster_tests::two_services;
use ringmaster_tests::{bin_path, fake_service, port_answers, wait_for, PidGuard};
use serde_json::Value;

/// Generous: tests must not depend on a fast machine.
pub const LONG: Duration = Duration::from_secs(30);

/// A project folder with a configuration; kills (by pid) what it saw when dropped.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub guard: PidGuard,
}

impl Project {
    /// An empty project folder.
    pub fn new() -> Project {
        Project {
            dir: tempfile::tempdir().expect("a temp dir"),
            guard: PidGuard::new(),
        }
    }

    /// A project with `toml` as its `ringmaster.toml`.
    pub fn with_config(toml: &str) -> Project {
        let p = Project::new();
        p.write("ringmaster.toml", toml);
        p
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The state directory (the default `.ringmaster`).
    pub fn state_dir(&self) -> PathBuf {
        self.path().join(".ringmaster")
    }

    /// Writes a file in the project folder.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).expect("write a project file");
        path
    }

    /// `ringmaster ARGS` in the project folder (no terminal: output is piped).
    pub fn rm(&self) -> Command {
        let mut cmd = Command::new(bin_path("ringmaster"));
        cmd.current_dir(self.path())
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .timeout(Duration::from_secs(120));
        cmd
    }

    /// Starts `ringmaster up ARGS` in the foreground as a child, its output going to
    /// `up.out` in the project folder (read it with [`Project::up_output`]).
    pub fn spawn_up(&self, args: &[&str]) -> Child {
        let out = std::fs::File::create(self.path().join("up.out")).expect("create up.out");
        let err = out.try_clone().expect("clone up.out");
        let child = StdCommand::new(bin_path("ringmaster"))
            .arg("up")
            .args(args)
            .current_dir(self.path())
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn ringmaster up");
        self.guard.add(child.id());
        child
    }

    /// Runs `ringmaster up -d` (it must exit 0) and registers the detached
    /// instance with the guard; returns the instance's pid.
    pub fn up_detached(&self) -> u32 {
        self.rm().args(["up", "-d"]).assert().code(0);
        let pid = self.instance_pid().expect("instance");
        self.guard.add(pid);
        pid
    }

    /// What the foreground `up` wrote so far.
    pub fn up_output(&self) -> String {
        std::fs::read_to_string(self.path().join("up.out")).unwrap_or_default()
    }

    /// `status --json`, or `None` when it fails (no instance).
    pub fn status(&self) -> Option<Vec<Value>> {
        let out = self.rm().args(["status", "--json"]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Waits until `status --json` shows every service in `names` as `ready`;
    /// returns the status.
    pub fn wait_ready(&self, names: &[&str]) -> Vec<Value> {
        let mut last = Vec::new();
        wait_for(
            "every service ready in `status --json`",
            LONG,
            || match self.status() {
                Some(list) => {
                    let ready = names.iter().all(|n| {
                        list.iter()
                            .any(|s| s["name"] == *n && s["state"] == "ready")
                    });
                    last = list;
                    ready
                }
                None => false,
            },
        );
        last
    }

    /// Runs `ringmaster ARGS` with no instance running: it must say so and exit 1.
    pub fn expect_no_instance(&self, args: &[&str]) {
        let out = self.rm().args(args).output().expect("ringmaster runs");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("no ringmaster is running"), "{args:?}: {err}");
    }

    /// The pid of the running instance (from the lock).
    pub fn instance_pid(&self) -> Option<u32> {
        ringmaster_os::InstanceLock::owner(&self.state_dir())
    }

    /// Every live process carrying this project's tag (the OS's view).
    pub fn tagged_pids(&self) -> Vec<u32> {
        let project = ringmaster_os::project_id(&self.state_dir());
        ringmaster_os::process::snapshot()
            .expect("a process snapshot")
            .into_iter()
            .filter(|p| !p.zombie && p.tag.as_ref().is_some_and(|t| t.project == project))
            .map(|p| p.pid)
            .collect()
    }

    /// Registers every tagged process with the guard (so a failing test leaves none).
    pub fn guard_tagged(&self) -> Vec<u32> {
        let pids = self.tagged_pids();
        for &p in &pids {
            self.guard.add(p);
        }
        pids
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        // Stop what a failed test may have left: the instance, then tagged processes.
        if let Some(pid) = self.instance_pid() {
            self.guard.add(pid);
        }
        for pid in self.tagged_pids() {
            self.guard.add(pid);
        }
    }
}

/// The pid `status --json` shows for `name` (panics when there is none).
pub fn pid_of(status: &[Value], name: &str) -> u32 {
    status
        .iter()
        .find(|s| s["name"] == name)
        .and_then(|s| s["pid"].as_u64())
        .unwrap_or_else(|| panic!("a pid for {name} in {status:?}")) as u32
}

/// Pids of the processes listening on `port` (the OS's view).
pub fn holders(port: u16) -> Vec<u32> {
    let mut pids: Vec<u32> = ringmaster_os::listeners(port)
        .expect("listeners of a port")
        .into_iter()
        .map(|l| l.pid)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Waits until nobody listens on `port`.
pub fn wait_port_free(port: u16) {
    wait_for(&format!("port {port} to be free"), LONG, || {
        holders(port).is_empty() && !port_answers(port)
    });
}

/// Waits until `pid` is gone.
#[cfg(unix)]
pub fn wait_gone(pid: u32) {
    wait_for(&format!("pid {pid} to be gone"), LONG, || {
        !ringmaster_tests::pid_alive(pid)
    });
}

/// Starts the fake service directly (not through ringmaster: untagged, foreign to
/// the project) listening on `port`; returns its pid once the port answers. A
/// thread waits on it, so it is reaped whenever it ends.
pub fn foreign_holder(guard: &PidGuard, port: u16, extra: &[&str]) -> u32 {
    let mut child = StdCommand::new(fake_service())
        .args(["--listen", &port.to_string()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn fake-service");
    let pid = child.id();
    guard.add(pid);
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    wait_for(&format!("fake-service on port {port}"), LONG, || {
        port_answers(port)
    });
    pid
}

/// True when `text` contains an ANSI escape sequence.
pub fn has_escape(text: &str) -> bool {
    text.contains('\x1b')
}

/// Text of a captured stream.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Starts `ringmaster up ARGS` in the foreground as a child whose stdout is a pipe
/// (`child.stdout`, for the caller to read or to hold unread) and whose stderr goes
/// to `up.err` in the project folder.
pub fn spawn_up_piped(p: &Project, args: &[&str]) -> Child {
    let err = std::fs::File::create(p.path().join("up.err")).expect("create up.err");
    let child = StdCommand::new(bin_path("ringmaster"))
        .arg("up")
        .args(args)
        .current_dir(p.path())
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .expect("spawn ringmaster up");
    p.guard.add(child.id());
    child
}

/// Sends `sig` to `pid` (a process the test started).
#[cfg(unix)]
pub fn send_unix_signal(pid: u32, sig: i32) {
    // SAFETY: plain kill(2) on a pid this test started.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Waits (up to [`LONG`]) until `child` exits; its status.
pub fn wait_child_exit(child: &mut Child) -> std::process::ExitStatus {
    let mut status = None;
    ringmaster_tests::wait_for("ringmaster up to exit", LONG, || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    status.expect("exited")
}
