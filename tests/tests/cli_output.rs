//! Output rules: no escape codes when stdout is not a terminal; colour on a
//! terminal (a pseudo-terminal here) unless `NO_COLOR` is set; `up`'s live lines on
//! a terminal; log levels from `-v`/`-q`/`RUST_LOG`, and `--log-format json`.
#![cfg(target_os = "linux")]

mod cli_support;

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command as StdCommand, Stdio};

use cli_support::*;
use ringmaster_tests::{bin_path, free_port};

/// Runs `ringmaster ARGS` in `dir` with stdout and stderr on a pseudo-terminal;
/// returns what it wrote and its exit code.
fn on_terminal(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (String, Option<i32>) {
    // SAFETY: posix_openpt/grantpt/unlockpt/ptsname_r on a fresh master fd, checked.
    let (master, slave_path) = unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(fd >= 0, "posix_openpt");
        assert_eq!(libc::grantpt(fd), 0);
        assert_eq!(libc::unlockpt(fd), 0);
        let mut buf = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(fd, buf.as_mut_ptr(), buf.len()), 0);
        let name = std::ffi::CStr::from_ptr(buf.as_ptr())
            .to_string_lossy()
            .into_owned();
        (OwnedFd::from_raw_fd(fd), name)
    };
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&slave_path)
        .expect("open the pty slave");
    let mut cmd = StdCommand::new(bin_path("ringmaster"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(slave.try_clone().expect("clone slave"))
        .stderr(slave);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn on a pty");
    drop(cmd);
    // Read while it runs (a full pty buffer would block it); EIO once the slave
    // side is closed.
    let mut master = std::fs::File::from(master);
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        out
    });
    let status = child.wait().expect("wait");
    let out = reader.join().expect("the pty reader");
    (String::from_utf8_lossy(&out).into_owned(), status.code())
}

#[test]
fn colour_on_a_terminal_none_under_no_color_or_a_pipe() {
    let p = Project::new();
    let port = free_port();
    let _holder = foreign_holder(&p.guard, port, &[]);
    let port = port.to_string();

    let (tty, code) = on_terminal(p.path(), &["ports", &port], &[]);
    assert_eq!(code, Some(0), "{tty}");
    assert!(
        tty.contains("PORT") && has_escape(&tty),
        "colour on a terminal: {tty:?}"
    );

    let (tty, _) = on_terminal(p.path(), &["ports", &port], &[("NO_COLOR", "1")]);
    assert!(
        tty.contains("PORT") && !has_escape(&tty),
        "NO_COLOR: {tty:?}"
    );

    let piped = p.rm().args(["ports", &port]).output().expect("ports");
    assert!(!has_escape(&text(&piped.stdout)));
    let err = p
        .rm()
        .args(["kill-port", &port])
        .output()
        .expect("kill-port");
    assert_eq!(err.status.code(), Some(3));
    assert!(!has_escape(&text(&err.stderr)) && !has_escape(&text(&err.stdout)));
}

#[test]
fn up_draws_live_lines_on_a_terminal() {
    let (api, web) = (free_port(), free_port());
    let p = Project::with_config(&two_services(api, web));
    // A foreground up on a pty; stopped by `down` from here once both are ready.
    let dir = p.path().to_path_buf();
    let runner = std::thread::spawn(move || on_terminal(&dir, &["up"], &[]));
    p.wait_ready(&["api", "web"]);
    if let Some(pid) = p.instance_pid() {
        p.guard.add(pid);
    }
    p.guard_tagged();
    p.rm().arg("down").assert().code(0);
    let (tty, code) = runner.join().expect("the pty runner");
    assert_eq!(code, Some(0), "{tty}");
    assert!(
        tty.contains("\x1b[2A\x1b[J"),
        "the live block is redrawn in place: {tty:?}"
    );
    assert!(tty.contains("✓"), "ready marks: {tty:?}");
    assert!(tty.contains("api |"), "prefixed output: {tty:?}");
    assert!(tty.contains("stopped gracefully"), "{tty:?}");
}

#[test]
fn log_levels_and_json_logs() {
    let p = Project::with_config(&two_services(free_port(), free_port()));
    // Default: warnings only; the configuration line is info.
    let quiet = p.rm().arg("validate").output().expect("validate");
    assert_eq!(text(&quiet.stderr), "");
    let verbose = p
        .rm()
        .args(["-v", "validate"])
        .output()
        .expect("validate -v");
    assert!(text(&verbose.stderr).contains("configuration loaded"));
    let env = p
        .rm()
        .arg("validate")
        .env("RUST_LOG", "info")
        .output()
        .expect("RUST_LOG=info");
    assert!(text(&env.stderr).contains("configuration loaded"));
    let q = p
        .rm()
        .args(["-q", "validate"])
        .env("RUST_LOG", "")
        .output()
        .expect("validate -q");
    assert_eq!(text(&q.stderr), "");

    let json = p
        .rm()
        .args(["-v", "--log-format", "json", "validate"])
        .output()
        .expect("json logs");
    let stderr = text(&json.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("configuration loaded"))
        .unwrap_or_else(|| panic!("{stderr}"));
    let v: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["fields"]["message"], "configuration loaded");
    assert_eq!(v["fields"]["services"], 2);
    assert_eq!(
        text(&json.stdout),
        "ok: 2 services\n",
        "stdout stays the result"
    );
}
