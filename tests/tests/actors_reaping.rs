//! The orchestrator is a child subreaper: an orphan re-parented to it (here a
//! service's double-forked daemon) is reaped by its periodic pass once it dies,
//! while the service runs on, so no zombie of it is left.
#![cfg(target_os = "linux")]

mod actors_support;

use std::time::Duration;

use actors_support::*;
use ringmaster::{Options, Orchestrator};
use ringmaster_tests::{kill_pid, PidGuard};

#[actix_rt::test]
async fn a_dead_adopted_orphan_is_reaped_while_its_service_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(dir.path(), vec![svc("app", "--daemon")]);
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up");
    let root = guard_running(&orch, &guard).await[0];
    let mut daemon = None;
    until("the daemon's pid", LONG, || {
        daemon = seen
            .lines()
            .iter()
            .find_map(|l| l.line.strip_prefix("pid daemon "))
            .and_then(|p| p.trim().parse::<u32>().ok());
        daemon.is_some()
    })
    .await;
    let daemon = daemon.expect("pid");
    guard.add(daemon);
    let me = std::process::id();
    until("the daemon to be adopted by us", LONG, || {
        ringmaster_os::process::process(daemon)
            .ok()
            .flatten()
            .is_some_and(|p| p.ppid == Some(me))
    })
    .await;

    kill_pid(daemon);
    // Nothing of the service exited or stopped: only the periodic pass reaps it.
    until(
        "the dead daemon to be reaped (no zombie left)",
        LONG,
        || ringmaster_os::process::liveness(daemon).is_none(),
    )
    .await;
    assert!(
        ringmaster_os::process::liveness(root).is_some_and(|(_, zombie)| !zombie),
        "the service runs on"
    );

    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
}
