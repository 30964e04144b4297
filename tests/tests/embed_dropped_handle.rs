//! A bot that forgets its orchestrator: `embed-bot` (tests/embed_bot.rs), a
//! separate process embedding the library, starts `web` (python3 http.server on a
//! free port) and `worker` (a shell with two sleeps), then returns an error from
//! `main`, or panics, without calling `shutdown`. Dropping the last handle stops
//! the services: once the bot has exited, the OS shows no process carrying their
//! tags, every pid seen before is gone, and the port can be bound again. The bot
//! says so with a warning.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ringmaster_os::process::{members, snapshot};
use ringmaster_os::{project_id, Tag};
use ringmaster_tests::{bin_path, free_port, pid_alive, port_answers, wait_for, PidGuard};

const LONG: Duration = Duration::from_secs(60);

/// Pids carrying `service`'s tag in `state_dir`'s project, as the OS shows them.
fn tagged(state_dir: &Path, service: &str) -> Vec<u32> {
    let tag = Tag::new(project_id(state_dir), service);
    let table = snapshot().expect("process table");
    members(&table, None, None, Some(&tag))
        .iter()
        .filter(|p| !p.zombie)
        .map(|p| p.pid)
        .collect()
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Runs the bot in `mode` and checks that nothing of its services outlives it.
/// Returns its stderr.
fn nothing_left_after(mode: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let guard = PidGuard::new();
    let mut bot = Command::new(bin_path("embed-bot"))
        .args([mode, &dir.path().display().to_string(), &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the bot starts");
    guard.add(bot.id());
    let stdout = bot.stdout.take().expect("piped");
    let mut stderr = bot.stderr.take().expect("piped");
    let err_text = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + LONG;
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("{mode}: the bot never printed UP-READY: {out:?}"));
        if line == "UP-READY" {
            break;
        }
        out.push(line);
    }
    // What runs now, as the OS shows it: python3 behind its shell, the worker's
    // shell and both sleeps. The bot exits on its own right after this line; what
    // is read here may already be going.
    let state_dir = dir.path().join("state");
    let web = tagged(&state_dir, "web");
    let worker = tagged(&state_dir, "worker");
    web.iter().chain(&worker).for_each(|p| guard.add(*p));

    let mut status = None;
    wait_for(&format!("{mode}: the bot to exit"), LONG, || {
        status = bot.try_wait().expect("try_wait");
        status.is_some()
    });
    let status = status.expect("exited");
    let stderr = err_text.join().expect("stderr reader");
    assert!(
        !status.success(),
        "{mode}: the bot failed, so its exit is not 0: {status:?}\n{stderr}"
    );
    assert!(
        out.iter().any(|l| l.starts_with("web: ready"))
            && out.iter().any(|l| l.starts_with("worker: ready")),
        "{mode}: both were ready: {out:?}"
    );
    // Gone when the bot's process is gone: no waiting here.
    let left_web = tagged(&state_dir, "web");
    let left_worker = tagged(&state_dir, "worker");
    assert!(
        left_web.is_empty() && left_worker.is_empty(),
        "{mode}: left running: web {left_web:?}, worker {left_worker:?}\n{stderr}"
    );
    for pid in web.iter().chain(&worker) {
        assert!(!pid_alive(*pid), "{mode}: pid {pid} outlived the bot");
    }
    assert!(
        port_free(port) && !port_answers(port),
        "{mode}: port {port} is still held\n{stderr}"
    );
    assert!(
        stderr.contains("dropped without shutdown"),
        "{mode}: a warning says why it stopped them: {stderr}"
    );
    stderr
}

#[test]
fn a_bot_that_returns_an_error_after_up_leaves_nothing_running() {
    let stderr = nothing_left_after("error");
    assert!(stderr.contains("the bot gave up after up"), "{stderr}");
}

#[test]
fn a_bot_that_panics_after_up_leaves_nothing_running() {
    let stderr = nothing_left_after("panic");
    assert!(stderr.contains("the bot panicked after up"), "{stderr}");
}

#[test]
fn a_bot_that_shuts_down_gets_no_warning() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let guard = PidGuard::new();
    let bot = Command::new(bin_path("embed-bot"))
        .args([
            "shutdown",
            &dir.path().display().to_string(),
            &port.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the bot starts");
    guard.add(bot.id());
    let out = bot.wait_with_output().expect("the bot runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The report's Display: the verdict, then one line per service.
    assert!(stdout.contains("\nstopped in "), "{stdout}");
    assert!(stdout.contains("  web     stopped gracefully"), "{stdout}");
    assert!(!stderr.contains("dropped without shutdown"), "{stderr}");
    let state_dir = dir.path().join("state");
    assert!(tagged(&state_dir, "web").is_empty() && tagged(&state_dir, "worker").is_empty());
    assert!(port_free(port));
}
