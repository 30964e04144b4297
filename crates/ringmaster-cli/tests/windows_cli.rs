//! Windows: the `ringmaster` binary itself, driven like a user drives it:
//! `validate` on a broken file; `up -d` on a two-service stack of `cmd /C` chains
//! gated by a `log` probe and checked by an `exec` probe; `status --json` and `logs`
//! through the control transport (loopback TCP with a token file); a second `up`
//! refused; `down`; and, after the background instance was killed, its services
//! gone with their job objects and `down` removing the stale PID files without a
//! signal; `reload` of an edited file (one service restarted, one added, one
//! untouched) and `remove`; replicas rolled by `restart` and added by `scale`.
//! What is left is checked in the process table, never in
//! ringmaster's own files.
//!
//! Run on Linux under Wine with `.ci/wine/test.sh`. Ports are left out: under Wine
//! the TCP table names no owning pid, so port-to-pid cannot be checked there.
#![cfg(windows)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ringmaster_os::process::{self, ProcessInfo};
use ringmaster_os::project_id;

/// Generous: Wine starts processes much slower than Windows does.
const TIMEOUT: Duration = Duration::from_secs(60);

const STACK: &str = r#"
[services.api]
command = "echo api up && ping -n 600 127.0.0.1"
health = { log = "^api up" }
stop = { timeout = "1s" }

[services.web]
command = "ping -n 600 127.0.0.1"
depends_on = ["api"]
health = { exec = "exit 0", interval = "1s" }
stop = { timeout = "1s" }
"#;

/// A fresh folder of this test's own with `ringmaster.toml` in it.
struct Stack {
    dir: PathBuf,
    config: PathBuf,
    project: String,
}

impl Stack {
    fn new(name: &str, text: &str) -> Stack {
        let dir = std::env::temp_dir().join(format!("rm-wine-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a test folder");
        let config = dir.join("ringmaster.toml");
        std::fs::write(&config, text).expect("the config is written");
        let project = project_id(&dir.join(".ringmaster"));
        Stack {
            dir,
            config,
            project,
        }
    }

    /// Runs `ringmaster ARGS --file CONFIG`, with no terminal and no colour. Panics
    /// when it has not exited within [`TIMEOUT`], or when its output pipes stay
    /// open after it exited (held by a process it started).
    fn run(&self, args: &[&str]) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringmaster"))
            .args(args)
            .arg("--file")
            .arg(&self.config)
            .current_dir(&self.dir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ringmaster runs");
        let (tx, rx) = mpsc::channel();
        let pipes: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("piped")),
            Box::new(child.stderr.take().expect("piped")),
        ];
        for (i, mut pipe) in pipes.into_iter().enumerate() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                let _ = tx.send((i, bytes));
            });
        }
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for ringmaster") {
                break status;
            }
            if start.elapsed() > TIMEOUT {
                let _ = child.kill();
                panic!("ringmaster {args:?} did not exit within {TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut out = Output {
            status,
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
        for _ in 0..2 {
            let (i, bytes) = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| {
                panic!("ringmaster {args:?} exited, but a process it started still holds its output")
            });
            *(if i == 0 {
                &mut out.stdout
            } else {
                &mut out.stderr
            }) = bytes;
        }
        eprintln!(
            "ringmaster {args:?} -> {:?}\n--- stdout\n{}--- stderr\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Every live process that carries this stack's tag.
    fn tagged(&self) -> Vec<ProcessInfo> {
        process::snapshot()
            .expect("the process table can be read")
            .into_iter()
            .filter(|p| !p.zombie && p.tag.as_ref().is_some_and(|t| t.project == self.project))
            .collect()
    }
}

impl Drop for Stack {
    /// Whatever a failed test left: the tagged processes and any background
    /// ringmaster of this folder, by pid.
    fn drop(&mut self) {
        let config = self.config.to_string_lossy().to_string();
        let table = process::snapshot().unwrap_or_default();
        for p in table.iter().filter(|p| {
            p.tag.as_ref().is_some_and(|t| t.project == self.project)
                || p.argv.iter().any(|a| a == &config)
        }) {
            let _ = Command::new("taskkill")
                .args(["/F", "/PID", &p.pid.to_string()])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Polls `cond` every 50 ms; panics naming `what` after [`TIMEOUT`].
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < TIMEOUT,
            "timed out after {TIMEOUT:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn names(procs: &[ProcessInfo]) -> String {
    procs
        .iter()
        .map(|p| format!("{} {} ({:?})", p.pid, p.name, p.tag))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The pid in `… runs in the background (pid N, …`.
fn background_pid(out: &Output) -> u32 {
    let text = text(out);
    let rest = text
        .split("in the background (pid ")
        .nth(1)
        .unwrap_or_else(|| panic!("`up -d` names its pid: {text}"));
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().expect("a pid")
}

/// `up -d`, then both services ready in `status --json`, each with a live root
/// (cmd.exe) and main pid (its ping.exe), both carrying the tag. Returns the background
/// instance's pid and the tagged processes.
fn up_and_ready(stack: &Stack) -> (u32, Vec<ProcessInfo>) {
    let up = stack.run(&["up", "-d"]);
    assert_eq!(up.status.code(), Some(0), "up -d: {}", text(&up));
    let serve = background_pid(&up);

    let status = stack.run(&["status", "--json"]);
    assert_eq!(status.status.code(), Some(0));
    let services: serde_json::Value =
        serde_json::from_slice(&status.stdout).expect("status --json is JSON");
    let services = services.as_array().expect("an array of services");
    assert_eq!(services.len(), 2, "{services:?}");
    for s in services {
        assert_eq!(s["state"], "ready", "{s}");
        // `root_pid` is the spawned `cmd /C`; `pid` the program it runs.
        for (field, name) in [("root_pid", "cmd.exe"), ("pid", "ping.exe")] {
            let pid = s[field].as_u64().expect("a ready service has both pids") as u32;
            let p = process::process(pid)
                .expect("the process table can be read")
                .unwrap_or_else(|| panic!("{s} is alive"));
            assert!(p.name.eq_ignore_ascii_case(name), "{s}: {}", p.name);
            assert_eq!(
                p.tag.as_ref().map(|t| t.project.as_str()),
                Some(stack.project.as_str())
            );
        }
    }
    let mut tagged = Vec::new();
    wait_for("cmd.exe and ping.exe of both services, tagged", || {
        tagged = stack.tagged();
        tagged
            .iter()
            .filter(|p| p.name.eq_ignore_ascii_case("ping.exe"))
            .count()
            == 2
    });
    (serve, tagged)
}

fn assert_all_gone(stack: &Stack, before: &[ProcessInfo], serve: u32) {
    wait_for("no tagged process and no background ringmaster", || {
        stack.tagged().is_empty() && process::process(serve).ok().flatten().is_none()
    });
    // And none of those seen before is still the same process.
    let table = process::snapshot().expect("the process table can be read");
    let left: Vec<ProcessInfo> = table
        .into_iter()
        .filter(|p| {
            !p.zombie
                && before
                    .iter()
                    .any(|b| b.pid == p.pid && b.start_time == p.start_time)
        })
        .collect();
    assert!(left.is_empty(), "still alive: {}", names(&left));
}

#[test]
fn validate_names_every_error_with_file_line_and_column() {
    let stack = Stack::new(
        "validate",
        "[services.api]\ncommand = \"\"\nport = 70000\ndepends_on = [\"nope\"]\n",
    );
    let out = stack.run(&["validate"]);
    assert_eq!(out.status.code(), Some(2));
    let text = text(&out);
    let file = stack.config.display().to_string();
    for (line_col, what) in [
        (":2:11:", "empty command"),
        (":3:8:", "out of range"),
        (":4:15:", "unknown service `nope`"),
    ] {
        let expected = format!("{file}{line_col}");
        assert!(
            text.lines()
                .any(|l| l.starts_with(&expected) && l.contains(what)),
            "no `{expected} … {what}` in:\n{text}"
        );
    }
    assert!(stack.tagged().is_empty(), "validate starts nothing");

    let clean = Stack::new("validate-clean", STACK);
    assert_eq!(clean.run(&["validate"]).status.code(), Some(0));
}

#[test]
fn up_detached_status_logs_then_down_leaves_nothing() {
    let stack = Stack::new("updown", STACK);
    let (serve, tagged) = up_and_ready(&stack);

    // One instance per state folder: a second `up` names the running one.
    let again = stack.run(&["up", "-d"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again).contains(&serve.to_string()),
        "the refusal names pid {serve}: {}",
        text(&again)
    );

    // The api's output reached its log through the running instance.
    let logs = stack.run(&["logs", "api", "-n", "20"]);
    assert_eq!(logs.status.code(), Some(0));
    assert!(text(&logs).contains("api up"), "{}", text(&logs));

    let down = stack.run(&["down"]);
    assert_eq!(down.status.code(), Some(0), "down: {}", text(&down));
    assert!(
        text(&down).contains("every port is free"),
        "{}",
        text(&down)
    );
    assert_all_gone(&stack, &tagged, serve);

    let status = stack.run(&["status"]);
    assert_eq!(status.status.code(), Some(1), "nothing runs any more");
}

#[test]
fn down_after_the_background_instance_was_killed_leaves_nothing() {
    let stack = Stack::new("killed", STACK);
    let (serve, tagged) = up_and_ready(&stack);

    let kill = Command::new("taskkill")
        .args(["/F", "/PID", &serve.to_string()])
        .output()
        .expect("taskkill runs");
    assert!(kill.status.success(), "taskkill: {kill:?}");
    wait_for("the background ringmaster gone", || {
        process::process(serve).ok().flatten().is_none()
    });

    // Each service runs in a job object that kills its processes when closed, and
    // the killed instance held the jobs' only handles.
    wait_for("the services gone with the instance's job objects", || {
        stack.tagged().is_empty()
    });

    // What is left is the PID files; their pids are dead, so none is signalled.
    let down = stack.run(&["down"]);
    assert_eq!(down.status.code(), Some(0), "down: {}", text(&down));
    let report = text(&down);
    assert_eq!(
        report.matches("its pid was not signalled").count(),
        2,
        "both PID files found stale: {report}"
    );
    assert_all_gone(&stack, &tagged, serve);
    for service in ["api", "web"] {
        let pid_file = stack.dir.join(".ringmaster").join(format!("{service}.pid"));
        assert!(!pid_file.exists(), "{} is removed", pid_file.display());
    }
}

/// The pid of `name` in `status --json` (the program its `cmd /C` runs).
fn pid_of(stack: &Stack, name: &str) -> Option<u32> {
    let status = stack.run(&["status", "--json"]);
    let services: serde_json::Value =
        serde_json::from_slice(&status.stdout).expect("status --json is JSON");
    services.as_array()?.iter().find(|s| s["name"] == name)?["pid"]
        .as_u64()
        .map(|p| p as u32)
}

#[test]
fn reload_restarts_what_changed_adds_and_removes() {
    let stack = Stack::new("reload", STACK);
    let (serve, tagged) = up_and_ready(&stack);
    let (api, web) = (
        pid_of(&stack, "api").expect("api runs"),
        pid_of(&stack, "web").expect("web runs"),
    );
    // web's command changes; a third service joins; api stays as it is.
    let edited = STACK.replace(
        "command = \"ping -n 600 127.0.0.1\"\ndepends_on",
        "command = \"ping -n 601 127.0.0.1\"\ndepends_on",
    ) + "\n[services.extra]\ncommand = \"ping -n 602 127.0.0.1\"\nstart_window = \"0\"\nstop = { timeout = \"1s\" }\n";
    assert_ne!(edited, STACK);
    std::fs::write(&stack.config, &edited).expect("the edited config");
    let out = stack.run(&["reload"]);
    assert_eq!(out.status.code(), Some(0), "reload: {}", text(&out));
    let said = text(&out);
    for line in [
        "api    unchanged",
        "web    restarted (command changed)",
        "extra  added",
    ] {
        assert!(said.contains(line), "`{line}` in:\n{said}");
    }
    assert_eq!(pid_of(&stack, "api"), Some(api), "api untouched");
    let new_web = pid_of(&stack, "web").expect("web runs");
    assert_ne!(new_web, web, "web runs a new process");
    wait_for("the old web gone", || {
        process::process(web).ok().flatten().is_none()
    });
    let extra = pid_of(&stack, "extra").expect("extra runs");

    let out = stack.run(&["remove", "extra"]);
    assert_eq!(out.status.code(), Some(0), "remove: {}", text(&out));
    wait_for("extra gone", || {
        process::process(extra).ok().flatten().is_none()
    });
    let down = stack.run(&["down"]);
    assert_eq!(down.status.code(), Some(0), "down: {}", text(&down));
    assert_all_gone(&stack, &tagged, serve);
}

#[test]
fn replicas_run_roll_and_scale_as_cmd_chains() {
    // Without a port the replicas are workers (nothing listens: the balancer's
    // forwarding is covered by its unit tests, which run here too).
    let stack = Stack::new(
        "replicas",
        "[services.work]\ncommand = \"ping -n 600 127.0.0.1\"\nreplicas = 2\n\
         start_window = \"0\"\nstop = { timeout = \"1s\" }\n",
    );
    let up = stack.run(&["up", "-d"]);
    assert_eq!(up.status.code(), Some(0), "up -d: {}", text(&up));
    let serve = background_pid(&up);
    let first: Vec<u32> = ["work#0", "work#1"]
        .iter()
        .map(|n| pid_of(&stack, n).unwrap_or_else(|| panic!("{n} runs")))
        .collect();
    let tagged = stack.tagged();

    // A rolling restart: new members, the old ones gone.
    let out = stack.run(&["restart", "work"]);
    assert_eq!(out.status.code(), Some(0), "restart: {}", text(&out));
    for pid in &first {
        wait_for("a replaced member gone", || {
            process::process(*pid).ok().flatten().is_none()
        });
    }
    let out = stack.run(&["scale", "work", "3"]);
    assert_eq!(out.status.code(), Some(0), "scale: {}", text(&out));
    wait_for("three members, tagged", || {
        stack
            .tagged()
            .iter()
            .filter(|p| p.name.eq_ignore_ascii_case("ping.exe"))
            .count()
            == 3
    });
    let down = stack.run(&["down"]);
    assert_eq!(down.status.code(), Some(0), "down: {}", text(&down));
    assert_all_gone(&stack, &tagged, serve);
}
