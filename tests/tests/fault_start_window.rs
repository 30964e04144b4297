//! The start window (`start_window`, default 1 s): a service without a health probe
//! is ready only once it has run through its window. An exit inside it is a failed
//! start (the restart policy applies, with backoff; then the service fails and `up`
//! fails naming it and its last exit), or, with status 0, a job that completed.
//! Dependents that need it ready wait for the end of the window. Real processes;
//! what is left is checked with the OS.
#![cfg(unix)]

mod actors_support;

use std::time::Duration;

use actors_support::*;
use ringmaster::config::{Condition, RestartPolicy, ServiceConfigBuilder};
use ringmaster::messages::EventKind;
use ringmaster::{Error, Options, Orchestrator, ServiceState};
use ringmaster_tests::{pid_alive, PidGuard};

/// A service that exits with 1 at once, restarted on failure twice, quickly.
fn crasher(name: &str) -> ServiceConfigBuilder {
    ServiceConfigBuilder::new(name, "echo 'config not found' >&2; exit 1")
        .restart(RestartPolicy::OnFailure)
        .max_attempts(2)
        .backoff(Duration::from_millis(100))
}

/// Live processes carrying a tag of `orch`'s project.
fn tagged(project: &str) -> Vec<u32> {
    ringmaster_os::process::snapshot()
        .expect("a process snapshot")
        .into_iter()
        .filter(|p| !p.zombie && p.tag.as_ref().is_some_and(|t| t.project == project))
        .map(|p| p.pid)
        .collect()
}

#[actix_rt::test]
async fn a_crash_inside_the_start_window_is_a_failed_start_and_up_names_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(
        dir.path(),
        vec![
            crasher("crash"),
            svc("web", "--children 1").depends_on("crash"),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let err = timed(orch.up(None))
        .await
        .expect_err("a crash loop is no successful start");
    match &err {
        Error::ServiceFailed { service, reason } => {
            assert_eq!(service, "crash", "{err}");
            assert!(
                reason.contains("exited with code 1 within its start window (1s)"),
                "names the last exit: {reason}"
            );
            assert!(reason.contains("gave up after 2 restart(s)"), "{reason}");
        }
        other => panic!("expected ServiceFailed, got {other}"),
    }
    // Three starts (the first and two restarts), never ready; the dependent never
    // started.
    assert_eq!(seen.of("crash", is_spawned).len(), 3);
    assert!(seen.of("crash", is_ready).is_empty(), "never ready");
    assert_eq!(seen.of("crash", is_exited).len(), 3);
    assert!(
        seen.of("web", is_spawned).is_empty(),
        "the dependent never started"
    );
    let status = orch.status().await.expect("status");
    let crash = status.iter().find(|s| s.name == "crash").expect("crash");
    assert_eq!(crash.state, ServiceState::Failed);
    assert_eq!((crash.restarts, crash.last_exit), (2, Some(1)));
    assert!(tagged(orch.project()).is_empty(), "nothing is left");
    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
}

#[actix_rt::test]
async fn a_probe_less_service_that_survives_its_window_is_ready_and_its_dependent_starts_after() {
    let dir = tempfile::tempdir().expect("temp dir");
    let guard = PidGuard::new();
    let window = Duration::from_millis(700);
    let config = config(
        dir.path(),
        vec![
            svc("base", "--children 1").start_window(window),
            // `started` is met at the spawn, `ready` only after the window.
            svc("early", "").depends_on_condition("base", Condition::Started),
            svc("web", "").depends_on("base"),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    timed(orch.up(None)).await.expect("up");
    let pids = guard_running(&orch, &guard).await;
    let spawned = seen.first("base", is_spawned).expect("base spawned");
    let ready = seen.first("base", is_ready).expect("base ready");
    // Both instants are when the recorder got the events: the window's timer was
    // armed a little before the recorder saw `Spawned`, so allow for that.
    assert!(
        ready.duration_since(spawned) >= window.mul_f64(0.9),
        "ready only after its window: {:?}",
        ready.duration_since(spawned)
    );
    let early = seen.first("early", is_spawned).expect("early spawned");
    assert!(early < ready, "`started` does not wait for the window");
    let web = seen.first("web", is_spawned).expect("web spawned");
    assert!(web >= ready, "`ready` waits for the window");
    for s in orch.status().await.expect("status") {
        assert_eq!(s.state, ServiceState::Ready, "{s:?}");
    }
    for pid in &pids {
        assert!(pid_alive(*pid));
    }
    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    assert!(tagged(orch.project()).is_empty());
}

#[actix_rt::test]
async fn a_job_that_exits_0_inside_its_window_completed_and_its_dependent_starts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let guard = PidGuard::new();
    let config = config(
        dir.path(),
        vec![
            svc("install", "--exit-after 0").restart(RestartPolicy::Never),
            svc("app", "").depends_on_condition("install", Condition::Completed),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    timed(orch.up(None))
        .await
        .expect("a job that completed is no failed start");
    let status = orch.status().await.expect("status");
    let install = status
        .iter()
        .find(|s| s.name == "install")
        .expect("install");
    assert_eq!(install.state, ServiceState::Stopped, "{install:?}");
    assert_eq!(install.last_exit, Some(0));
    assert!(
        install
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("completed")),
        "{install:?}"
    );
    assert!(seen.of("install", is_failed).is_empty());
    assert!(
        seen.of("install", is_ready).is_empty(),
        "it never was ready"
    );
    let app = status.iter().find(|s| s.name == "app").expect("app");
    assert_eq!(app.state, ServiceState::Ready);
    guard.add(app.pid.expect("app runs"));
    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    assert!(tagged(orch.project()).is_empty());
}

#[actix_rt::test]
async fn a_zero_window_is_ready_when_spawned_and_a_crash_after_the_window_restarts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let window = Duration::from_millis(300);
    let config = config(
        dir.path(),
        vec![
            svc("now", "").start_window(Duration::ZERO),
            // Runs past its window, then crashes: a crash after ready, restarted.
            svc("late", "--exit-after 1500 --exit-code 2")
                .start_window(window)
                .restart(RestartPolicy::OnFailure)
                .backoff(Duration::from_millis(50)),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    timed(orch.up(None)).await.expect("up");
    // Ready at the spawn: the Supervisor decides both in one step, so `Ready`
    // comes right after `Spawned` in the event order.
    let spawned = seen.index("now", is_spawned).expect("spawned");
    let ready = seen.index("now", is_ready).expect("ready");
    let between: Vec<_> = seen.events()[spawned + 1..ready]
        .iter()
        .filter(|s| s.event.name == "now")
        .map(|s| s.event.kind.clone())
        .collect();
    assert!(between.is_empty(), "{between:?}");
    until("late's crash and restart", LONG, || {
        seen.of("late", is_ready).len() >= 2
    })
    .await;
    let exit = seen
        .of("late", is_exited)
        .first()
        .map(|s| s.event.kind.clone());
    assert_eq!(exit, Some(EventKind::Exited { code: Some(2) }));
    assert!(seen.of("late", is_failed).is_empty());
    let status = orch.status().await.expect("status");
    let late = status.iter().find(|s| s.name == "late").expect("late");
    assert!(late.restarts >= 1, "{late:?}");
    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    assert!(tagged(orch.project()).is_empty());
}
