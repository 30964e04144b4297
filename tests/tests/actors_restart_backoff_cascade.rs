//! A dependent waiting out its restart backoff is stopped with its dependency
//! when that one is restarted: its pending restart is cancelled, not merely
//! forgotten. Left to fire, the old timer would start the dependent again before
//! the backoff of its next crash is over. Runs on Windows too (under Wine:
//! `.ci/wine/test.sh`): a crash is the exit code `cmd /C` passes on.

mod actors_support;

use std::time::Duration;

use actors_support::*;
use ringmaster::config::RestartPolicy;
use ringmaster::{Options, Orchestrator};
use ringmaster_tests::{free_port, PidGuard};

/// The dependent's restart backoff (its first attempt waits this long).
const BACKOFF: Duration = Duration::from_secs(8);
/// How long after the dependent's first crash its dependency is restarted.
const RESTART_AFTER: Duration = Duration::from_secs(3);

#[actix_rt::test]
async fn a_restart_of_the_dependency_cancels_the_dependents_pending_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let x = free_port();
    let config = config(
        dir.path(),
        vec![
            // A short stop timeout: under Wine every stop waits it out (Wine
            // delivers no CTRL_BREAK), and x's restart must be over
            // well before the first crash's backoff would have run out.
            svc("x", &format!("--listen {x}"))
                .port(x)
                .health_tcp(x)
                .stop_timeout(Duration::from_secs(1)),
            // No probe: ready once it ran through its (short) start window;
            // crashes shortly after that, after each start.
            svc("d", "--exit-after 300 --exit-code 1")
                .start_window(Duration::from_millis(100))
                .depends_on("x")
                .restart(RestartPolicy::OnFailure)
                .max_attempts(10)
                .backoff(BACKOFF),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    let up = actix_rt::time::timeout(LONG, orch.up(None)).await;
    if !matches!(up, Ok(Ok(()))) {
        let _ = timed(orch.shutdown(Duration::from_secs(20))).await;
        panic!("up: {up:?}");
    }
    if let Some(pid) = orch.status().await.expect("status")[0].pid {
        guard.add(pid);
    }

    // d crashes and waits out its backoff; meanwhile x is restarted, which stops
    // d (in backoff) and starts it again once x is ready.
    until("d's first crash", LONG, || {
        !seen.of("d", is_exited).is_empty()
    })
    .await;
    actix_rt::time::sleep(RESTART_AFTER).await;
    let restart = actix_rt::time::timeout(LONG, orch.restart("x")).await;
    if !matches!(restart, Ok(Ok(()))) {
        let _ = timed(orch.shutdown(Duration::from_secs(20))).await;
        panic!("restart x: {restart:?}");
    }
    until("d's crash after the restart", LONG, || {
        seen.of("d", is_exited).len() >= 2
    })
    .await;
    let second_crash = seen.of("d", is_exited)[1].at;
    // Its next start comes from the backoff of this crash, not from the timer
    // of the first one.
    until("d's start after its second crash", BACKOFF + LONG, || {
        seen.of("d", is_spawned).iter().any(|s| s.at > second_crash)
    })
    .await;
    let next_start = seen
        .of("d", is_spawned)
        .into_iter()
        .find(|s| s.at > second_crash)
        .expect("seen above")
        .at;

    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    assert!(port_free(x));
    let gap = next_start.duration_since(second_crash);
    // Generous: the timer waits at least BACKOFF; a stale timer would fire
    // about BACKOFF - RESTART_AFTER after this crash.
    assert!(
        gap >= BACKOFF - Duration::from_secs(1),
        "d started {gap:?} after its crash, before its backoff of {BACKOFF:?} was over: {:?}",
        seen.events()
    );
}
