//! `<state_dir>/ringmaster.log`, the output of `up -d`, does not grow forever:
//! once no instance runs, `down` renames it to `ringmaster.log.1` when it is larger
//! than `settings.log_max_bytes`, so the next `up -d` starts a new file; a file
//! under the limit is left as it is.
#![cfg(unix)]

mod cli_support;

use std::path::PathBuf;

use cli_support::*;
use ringmaster_tests::{fake_service, free_port};

const MAX: u64 = 4000;

/// A project whose one service answers HTTP on `port`, with a small log limit.
fn project(port: u16) -> Project {
    let fake = fake_service();
    Project::with_config(&format!(
        r#"[settings]
log_max_bytes = {MAX}

[services.api]
command = "{} --listen {port} --http"
port = {port}
allow = ["fake-service"]
health = {{ tcp = {port} }}
stop = {{ timeout = "5s" }}
"#,
        fake.display()
    ))
}

/// Fills `ringmaster.log` with more than the limit of old lines; returns its path.
fn big_old_log(p: &Project) -> PathBuf {
    ringmaster_os::pidfile::ensure_state_dir(&p.state_dir()).expect("the state dir");
    let log = p.state_dir().join("ringmaster.log");
    let old: String = (0..600).map(|i| format!("old line {i}\n")).collect();
    assert!(old.len() as u64 > MAX);
    std::fs::write(&log, old).expect("write ringmaster.log");
    log
}

fn rotated(log: &std::path::Path) -> PathBuf {
    log.with_file_name("ringmaster.log.1")
}

#[test]
fn down_rotates_the_detached_log_once_the_instance_is_gone() {
    let port = free_port();
    let p = project(port);
    let log = big_old_log(&p);

    p.up_detached();
    p.wait_ready(&["api"]);
    assert!(log.exists(), "up -d writes to {}", log.display());
    let down = p.rm().arg("down").output().expect("down");
    assert_eq!(down.status.code(), Some(0), "{}", text(&down.stderr));
    wait_port_free(port);

    let old = std::fs::read_to_string(rotated(&log)).expect("ringmaster.log.1");
    assert!(old.starts_with("old line 0\n"), "{old}");
    assert!(
        std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) <= MAX,
        "ringmaster.log starts over"
    );

    // A second run writes a new, small file: down leaves it, and .1 keeps the old lines.
    p.up_detached();
    p.wait_ready(&["api"]);
    p.rm().arg("down").assert().code(0);
    assert!(log.exists(), "the small ringmaster.log stays");
    let old = std::fs::read_to_string(rotated(&log)).expect("ringmaster.log.1");
    assert!(old.starts_with("old line 0\n"), "{old}");
}

#[test]
fn down_without_an_instance_rotates_what_a_crashed_one_wrote() {
    let p = project(free_port());
    let log = big_old_log(&p);
    p.rm().arg("down").assert().code(0);
    assert!(!log.exists());
    let old = std::fs::read_to_string(rotated(&log)).expect("ringmaster.log.1");
    assert!(old.starts_with("old line 0\n"), "{old}");
}
