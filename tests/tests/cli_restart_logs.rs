//! `ringmaster restart` and `logs`: a restart gives the service a new process
//! (the old one is gone) and it is ready again; `logs` shows prefixed lines from
//! the running instance, follows new ones with `-f`, and reads the log files when
//! no instance runs.
#![cfg(unix)]

mod cli_support;

use std::process::{Command as StdCommand, Stdio};

use cli_support::*;
use ringmaster_tests::{bin_path, free_port, pid_alive, wait_for};

#[test]
fn restart_and_logs() {
    let (api, web) = (free_port(), free_port());
    let p = Project::with_config(&two_services(api, web));
    // Without an instance: restart fails with 1, an unknown service is a usage error.
    p.rm().args(["restart", "api"]).assert().code(1);
    p.rm().args(["restart", "nope"]).assert().code(2);

    p.up_detached();
    let before = p.wait_ready(&["api", "web"]);
    p.guard_tagged();
    let old = pid_of(&before, "api");

    // logs from the instance: prefixed with the service's name, no escape codes.
    let out = p
        .rm()
        .args(["logs", "api", "-n", "10"])
        .output()
        .expect("logs");
    let logs = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(logs.contains(&format!("api | listening {api}")), "{logs}");
    assert!(!logs.contains("web |"), "only api: {logs}");
    assert!(!has_escape(&logs));
    let all = text(&p.rm().arg("logs").output().expect("logs").stdout);
    assert!(
        all.contains("web | listening") && all.contains("api | listening"),
        "{all}"
    );
    p.rm().args(["logs", "nope"]).assert().code(2);

    // Follow api's output while it restarts.
    let follow_out = p.path().join("follow.out");
    let mut follow = StdCommand::new(bin_path("ringmaster"))
        .args(["logs", "api", "-f", "-n", "0"])
        .current_dir(p.path())
        .stdout(std::fs::File::create(&follow_out).expect("follow.out"))
        .stderr(Stdio::null())
        .spawn()
        .expect("logs -f");
    p.guard.add(follow.id());

    let out = p.rm().args(["restart", "api"]).output().expect("restart");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let after = p.wait_ready(&["api", "web"]);
    let new = pid_of(&after, "api");
    assert_ne!(old, new, "a new process");
    wait_gone(old);
    assert!(pid_alive(new));
    p.guard_tagged();
    wait_for("the restarted api's output in `logs -f`", LONG, || {
        std::fs::read_to_string(&follow_out)
            .unwrap_or_default()
            .contains(&format!("api | listening {api}"))
    });
    let _ = follow.kill();
    let _ = follow.wait();

    p.rm().arg("down").assert().code(0);
    wait_port_free(api);

    // No instance: from the log files; api's file has both runs' lines.
    let out = p
        .rm()
        .args(["logs", "api"])
        .output()
        .expect("logs from files");
    let logs = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        logs.matches(&format!("api | listening {api}")).count(),
        2,
        "both runs: {logs}"
    );
    let last = text(
        &p.rm()
            .args(["logs", "api", "-n", "1"])
            .output()
            .expect("logs")
            .stdout,
    );
    assert_eq!(last.lines().count(), 1, "{last}");

    // Nothing at all: no instance and no files.
    let empty = Project::with_config(&two_services(free_port(), free_port()));
    empty.rm().arg("logs").assert().code(1);
}
