//! A service's `stop.signal` reaches every process ringmaster stops for it, not
//! only its own: an allowed holder of its port, cleared before its start, gets the
//! service's stop signal too (here INT, which the holder obeys while it ignores TERM).
#![cfg(unix)]

mod actors_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use actors_support::*;
use ringmaster::{Options, Orchestrator, ServiceState};
use ringmaster_os::Signal;
use ringmaster_tests::{fake_service, free_port, pid_alive, port_answers, wait_for, PidGuard};

/// Starts fake-service on `port`, ignoring TERM, under a shell of the test that
/// writes fake-service's exit status to `status_file` when it ends (130: killed by
/// INT, 137: by KILL). Returns the holder's pid (the shell's child).
#[allow(clippy::zombie_processes)]
fn holder(port: u16, status_file: &std::path::Path, guard: &PidGuard) -> u32 {
    let out_file = status_file.with_extension("out");
    // In the foreground: a non-interactive shell starts `&` jobs with INT ignored.
    let script = r#""$0" --listen "$1" --ignore-term --print-pids > "$3"; echo $? > "$2""#;
    let shell = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .arg(fake_service())
        .arg(port.to_string())
        .arg(status_file)
        .arg(&out_file)
        .env_remove(ringmaster_os::TAG_ENV)
        .stdout(Stdio::null())
        .spawn()
        .expect("the holder's shell starts");
    guard.add(shell.id());
    wait_for("the holder listens", LONG, || port_answers(port));
    let out = std::fs::read_to_string(&out_file).expect("the holder's output");
    let pid: u32 = out
        .lines()
        .find_map(|l| l.strip_prefix("pid root "))
        .and_then(|p| p.trim().parse().ok())
        .expect("the holder printed its pid");
    guard.add(pid);
    pid
}

#[actix_rt::test]
async fn an_allowed_port_holder_gets_the_services_stop_signal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = free_port();
    let guard = PidGuard::new();
    let status_file = dir.path().join("holder.status");
    let old = holder(p, &status_file, &guard);
    // The stop timeout is longer than the test waits for `up`: a TERM, which the
    // holder ignores, would only end in a kill after a minute.
    let config = config(
        dir.path(),
        vec![svc("api", &format!("--listen {p}"))
            .port(p)
            .allow(["fake-service"])
            .stop_signal(Signal::Int)
            .stop_timeout(Duration::from_secs(60))
            .health_tcp(p)],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    timed(orch.up(None))
        .await
        .expect("up after clearing the port");
    until("the holder's exit status", LONG, || status_file.exists()).await;
    let status = std::fs::read_to_string(&status_file).expect("status file");
    assert_eq!(
        status.trim(),
        "130",
        "the holder must end on SIGINT (130), not be killed (137)"
    );
    assert!(!pid_alive(old));

    guard_running(&orch, &guard).await;
    let status = orch.status().await.expect("status");
    assert_eq!(status[0].state, ServiceState::Ready);
    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
}
