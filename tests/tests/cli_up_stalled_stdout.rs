//! A foreground `up` whose stdout nobody reads (`ringmaster up | reader-that-stopped`):
//! the pipe fills, yet the instance keeps answering `status`, SIGTERM still runs the
//! cascade, and every service process is gone afterwards. When the reader resumes,
//! a note says how many lines were not shown. The same for its log lines on a
//! stderr nobody reads (`ringmaster up -vv 2>&1 | …`).
#![cfg(unix)]

mod cli_support;

use std::io::Read;
use std::sync::{Arc, Mutex};

use cli_support::*;
use ringmaster_tests::{fake_service, free_port, pid_alive, wait_for};

/// `api` listens on a port; `chatty` prints a few thousand lines a second.
fn config(api: u16) -> String {
    let fake = fake_service();
    format!(
        r#"[settings]
shutdown_timeout = "20s"
log_max_bytes = 1073741824

[services.api]
command = "{fake} --listen {api} --http"
port = {api}
allow = ["fake-service"]
health = {{ tcp = {api} }}
stop = {{ timeout = "5s" }}

[services.chatty]
command = "while :; do seq 1 100 | sed 's/^/chatty line, padded to about a hundred bytes so that the pipe fills up soon enough: /'; sleep 0.02; done"
stop = {{ timeout = "5s" }}
"#,
        fake = fake.display()
    )
}

/// Bytes in chatty's log files (current and rotated).
fn chatty_logged(p: &Project) -> u64 {
    let dir = p.state_dir().join("logs");
    ["chatty.log", "chatty.log.1"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

#[test]
fn a_stalled_stdout_does_not_freeze_up() {
    let api = free_port();
    let p = Project::with_config(&config(api));
    let mut up = spawn_up_piped(&p, &[]);
    // Held open and never read (until later): the pipe fills.
    let mut stdout = up.stdout.take().expect("piped stdout");

    p.wait_ready(&["api", "chatty"]);
    // Far more output than a pipe buffer holds has been produced since.
    wait_for("chatty to log 2 MB", LONG, || chatty_logged(&p) > 2_000_000);
    // The instance still answers through the control socket while stdout is stuck.
    let status = p.status().expect("status answers while stdout is stalled");
    assert!(
        status
            .iter()
            .any(|s| s["name"] == "chatty" && s["state"] == "ready"),
        "{status:?}"
    );

    // The reader resumes: what was dropped for the screen is announced.
    let seen = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = seen.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().expect("sink").extend_from_slice(&buf[..n]);
        }
    });
    wait_for("the `lines not shown` note", LONG, || {
        text(&seen.lock().expect("seen")).contains("lines not shown")
    });

    let mut members = p.guard_tagged();
    members.extend(holders(api));
    assert!(!members.is_empty());

    send_unix_signal(up.id(), libc::SIGTERM);
    let code = wait_child_exit(&mut up);
    let err = std::fs::read_to_string(p.path().join("up.err")).unwrap_or_default();
    assert_eq!(code.code(), Some(0), "up exits 0 after a clean stop: {err}");
    reader.join().expect("reader thread");
    for pid in members {
        assert!(!pid_alive(pid), "pid {pid} survived the stop");
    }
    assert!(p.tagged_pids().is_empty(), "no tagged process is left");
    wait_port_free(api);
    let out = text(&seen.lock().expect("seen"));
    assert!(out.contains("SIGTERM: stopping"), "{}", tail(&out));
    assert!(out.contains("stopped"), "the report: {}", tail(&out));
}

/// A stall with SIGTERM while nobody reads: the instance must exit, and a reader
/// that resumes only after the signal still gets ringmaster's own lines and the
/// whole shutdown report (only service output is ever dropped).
#[test]
fn sigterm_stops_up_while_nobody_reads_its_stdout() {
    let api = free_port();
    let p = Project::with_config(&config(api));
    let mut up = spawn_up_piped(&p, &[]);
    let mut stdout = up.stdout.take().expect("piped stdout");

    p.wait_ready(&["api", "chatty"]);
    wait_for("chatty to log 2 MB", LONG, || chatty_logged(&p) > 2_000_000);
    let mut members = p.guard_tagged();
    members.extend(holders(api));

    send_unix_signal(up.id(), libc::SIGTERM);
    let mut out = Vec::new();
    let reader = std::thread::spawn(move || {
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let code = wait_child_exit(&mut up);
    let err = std::fs::read_to_string(p.path().join("up.err")).unwrap_or_default();
    assert_eq!(code.code(), Some(0), "{err}");
    for pid in members {
        assert!(!pid_alive(pid), "pid {pid} survived the stop");
    }
    assert!(p.tagged_pids().is_empty(), "no tagged process is left");
    wait_port_free(api);

    let out = text(&reader.join().expect("reader thread"));
    assert!(out.contains("SIGTERM: stopping"), "{}", tail(&out));
    assert!(
        out.lines().any(|l| l.starts_with("stopped in ")),
        "the report's first line: {}",
        tail(&out)
    );
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("api ") && l.contains("port free")),
        "the report's line for api: {}",
        tail(&out)
    );
}

/// `up -vv` logs every service line on stderr; nobody reads it.
#[test]
fn sigterm_stops_up_while_nobody_reads_its_log_lines_on_stderr() {
    let api = free_port();
    let p = Project::with_config(&config(api));
    let mut up = std::process::Command::new(ringmaster_tests::bin_path("ringmaster"))
        .args(["up", "-vv"])
        .current_dir(p.path())
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ringmaster up -vv");
    p.guard.add(up.id());
    let _unread = up.stderr.take().expect("piped stderr");

    p.wait_ready(&["api", "chatty"]);
    wait_for("chatty to log 2 MB", LONG, || chatty_logged(&p) > 2_000_000);
    p.status().expect("status answers while stderr is stalled");
    let mut members = p.guard_tagged();
    members.extend(holders(api));

    send_unix_signal(up.id(), libc::SIGTERM);
    let code = wait_child_exit(&mut up);
    assert_eq!(code.code(), Some(0), "up exits 0 after a clean stop");
    for pid in members {
        assert!(!pid_alive(pid), "pid {pid} survived the stop");
    }
    assert!(p.tagged_pids().is_empty(), "no tagged process is left");
    wait_port_free(api);
}

fn tail(out: &str) -> String {
    let lines: Vec<&str> = out.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
