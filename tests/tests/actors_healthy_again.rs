//! A service that goes unhealthy and recovers without a restart (policy `never`)
//! reports it: `Unhealthy`, then `Healthy`, and its status is `ready` again with
//! the same process.
//! Runs on Windows too (under Wine: `.ci/wine/test.sh`).

mod actors_support;

use std::time::Duration;

use actors_support::*;
use ringmaster::config::RestartPolicy;
use ringmaster::messages::EventKind;
use ringmaster::{Options, Orchestrator, ServiceState};
use ringmaster_tests::PidGuard;

/// The exec probe: it fails while the file `down` exists in the service's folder.
#[cfg(unix)]
const PASSES_UNLESS_DOWN: &str = "[ ! -e down ]";
#[cfg(windows)]
const PASSES_UNLESS_DOWN: &str = "if exist down (exit 1) else (exit 0)";

fn is_unhealthy(k: &EventKind) -> bool {
    matches!(k, EventKind::Unhealthy { .. })
}

fn is_healthy(k: &EventKind) -> bool {
    matches!(k, EventKind::Healthy)
}

#[actix_rt::test]
async fn recovery_from_unhealthy_is_an_event() {
    let dir = tempfile::tempdir().expect("temp dir");
    let down = dir.path().join("down");
    let config = config(
        dir.path(),
        vec![svc("app", "")
            .health_exec(PASSES_UNLESS_DOWN)
            .health_interval(Duration::from_millis(100))
            .health_failures(1)
            .restart(RestartPolicy::Never)],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up");
    let pid = guard_running(&orch, &guard).await[0];
    let root = orch.status().await.expect("status")[0].root_pid;
    assert!(root.is_some(), "a running service has a root");

    std::fs::write(&down, "").expect("make the probe fail");
    until("app is reported unhealthy", LONG, || {
        !seen.of("app", is_unhealthy).is_empty()
    })
    .await;
    let status = orch.status().await.expect("status");
    assert_eq!(status[0].state, ServiceState::Unhealthy);
    assert!(
        seen.of("app", is_healthy).is_empty(),
        "no Healthy before the probe passes again"
    );

    std::fs::remove_file(&down).expect("let the probe pass again");
    until("app is reported healthy again", LONG, || {
        !seen.of("app", is_healthy).is_empty()
    })
    .await;
    let status = orch.status().await.expect("status");
    assert_eq!(status[0].state, ServiceState::Ready);
    // The same process tree: its root (the shell) is the one it started with.
    // On Windows the shown pid may change on its own, from `cmd.exe` to the
    // program it runs once that is found, so only the root is compared there.
    assert_eq!(status[0].root_pid, root, "recovered, not restarted");
    if cfg!(unix) {
        assert_eq!(status[0].pid, Some(pid), "recovered, not restarted");
    }
    assert_eq!(status[0].restarts, 0);
    assert!(seen.index("app", is_unhealthy) < seen.index("app", is_healthy));
    assert_eq!(
        seen.of("app", is_ready).len(),
        1,
        "Ready once, at the start"
    );
    assert!(
        seen.of("app", is_spawned).len() == 1,
        "one spawn: no restart"
    );

    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
}
