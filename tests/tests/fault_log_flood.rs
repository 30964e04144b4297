//! 200 000 lines as fast as a process can write them, then a crash: once `status`
//! says the service failed with its exit code, every line is in its log files (the
//! current one and its rotations, read oldest first), each exactly once and in
//! order, and nothing of the service runs.
#![cfg(unix)]

mod cli_support;
mod fault_support;

use cli_support::*;
use ringmaster_tests::{fake_service, pid_alive, wait_for};

const LINES: u64 = 200_000;

#[test]
fn two_hundred_thousand_lines_then_a_crash_are_all_in_the_log_in_order() {
    // About 2.3 MB of output against 1 MiB files: the log rotates twice on the way,
    // and the three rotated files kept hold the rest.
    let p = Project::with_config(&format!(
        r#"[settings]
log_max_bytes = 1048576

[services.flood]
command = "{} --lines {LINES} --exit-after 1000 --exit-code 9"
health = {{ log = "^line 1$" }}
restart = {{ policy = "never" }}
stop = {{ timeout = "5s" }}
"#,
        fake_service().display()
    ));
    let instance = p.up_detached();
    let mut status = Vec::new();
    wait_for("flood failed", LONG * 2, || {
        status = p.status().unwrap_or_default();
        status
            .iter()
            .any(|s| s["name"] == "flood" && s["state"] == "failed")
    });
    let flood = fault_support::entry(&status, "flood");
    assert_eq!(flood["last_exit"], 9, "{flood}");
    assert!(p.tagged_pids().is_empty(), "nothing of flood runs");

    let logs = p.state_dir().join("logs");
    let mut files: Vec<std::path::PathBuf> = (1..=3)
        .rev()
        .map(|i| logs.join(format!("flood.log.{i}")))
        .filter(|f| f.exists())
        .collect();
    files.push(logs.join("flood.log"));
    assert!(files.len() >= 3, "the log rotated: {files:?}");
    let mut expected = 1u64;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read a log file");
        for line in text.lines() {
            assert_eq!(
                line,
                format!("line {expected}"),
                "{}: line {expected} missing, out of order or repeated",
                file.display()
            );
            expected += 1;
        }
    }
    assert_eq!(expected - 1, LINES, "every line is in the log");

    p.rm().arg("down").assert().code(0);
    wait_gone(instance);
    assert!(!pid_alive(instance));
}
