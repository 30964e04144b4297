//! Crashes, with real processes: a crashing service is restarted with growing
//! backoff until it runs out of attempts and fails; its dependents are stopped
//! and wait again; dependents that never started keep waiting through the
//! restarts; an unhealthy service is stopped and started again. In the library;
//! the same faults through the real binary are in `fault_crash_cli.rs`.
#![cfg(unix)]

mod actors_support;

use std::time::Duration;

use actors_support::*;
use ringmaster::config::RestartPolicy;
use ringmaster::messages::EventKind;
use ringmaster::{Error, Options, Orchestrator, ServiceState};
use ringmaster_tests::{free_port, pid_alive, PidGuard};

#[actix_rt::test]
async fn a_crashing_service_backs_off_then_fails_and_its_dependents_wait_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (p, w) = (free_port(), free_port());
    let config = config(
        dir.path(),
        vec![
            svc(
                "crashy",
                &format!("--listen {p} --http --exit-after 600 --exit-code 3"),
            )
            .port(p)
            .health_http(format!("http://127.0.0.1:{p}/"))
            .restart(RestartPolicy::OnFailure)
            .max_attempts(3)
            .backoff(Duration::from_millis(200)),
            svc("web", &format!("--listen {w}"))
                .port(w)
                .health_tcp(w)
                .depends_on("crashy"),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    timed(orch.up(None))
        .await
        .expect("both ready before the first crash");
    let web_pid = orch.status().await.expect("status")[1]
        .pid
        .expect("web runs");
    guard.add(web_pid);

    until("crashy failed", LONG, || {
        !seen.of("crashy", is_failed).is_empty()
    })
    .await;

    let spawns = seen.of("crashy", is_spawned);
    let exits = seen.of("crashy", is_exited);
    assert_eq!(
        spawns.len(),
        4,
        "one start and three restarts: {:?}",
        seen.events()
    );
    assert_eq!(exits.len(), 4);
    for e in &exits {
        assert_eq!(e.event.kind, EventKind::Exited { code: Some(3) });
    }
    // The gap between an exit and the next spawn is the backoff: 200, 400, 800 ms.
    let gaps: Vec<Duration> = (0..3)
        .map(|k| spawns[k + 1].at.duration_since(exits[k].at))
        .collect();
    for (k, gap) in gaps.iter().enumerate() {
        let backoff = Duration::from_millis(200 << k);
        assert!(
            *gap >= backoff,
            "restart {} came after {gap:?} < {backoff:?}",
            k + 1
        );
    }
    assert!(
        gaps[0] < gaps[1] && gaps[1] < gaps[2],
        "gaps must grow: {gaps:?}"
    );

    let status = orch.status().await.expect("status");
    let crashy = &status[0];
    assert_eq!(crashy.state, ServiceState::Failed, "{crashy:?}");
    assert_eq!(crashy.restarts, 3);
    assert_eq!(crashy.last_exit, Some(3));
    assert!(
        crashy.reason.as_deref().unwrap_or("").contains("gave up"),
        "{crashy:?}"
    );

    // web was stopped (for real) and waits again, saying why.
    until("web stopped", LONG, || {
        !seen.of("web", is_stopped).is_empty()
    })
    .await;
    let status = orch.status().await.expect("status");
    let web = &status[1];
    assert_eq!(web.state, ServiceState::Waiting, "{web:?}");
    assert!(
        web.reason.as_deref().unwrap_or("").contains("crashy"),
        "{web:?}"
    );
    assert_eq!(web.pid, None);
    assert!(!pid_alive(web_pid));
    assert!(port_free(w) && port_free(p));

    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
}

#[actix_rt::test]
async fn dependents_keep_waiting_through_restarts_and_up_reports_the_failure() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (p, w) = (free_port(), free_port());
    let config = config(
        dir.path(),
        vec![
            // Never ready: it never binds its port, and exits after 150 ms.
            svc("never", "--exit-after 150 --exit-code 1")
                .port(p)
                .health_tcp(p)
                .max_attempts(2)
                .backoff(Duration::from_millis(100)),
            svc("web", &format!("--listen {w}"))
                .port(w)
                .health_tcp(w)
                .depends_on("never"),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let up = orch.clone();
    let answer = actix_rt::spawn(async move { up.up(None).await });

    // During the restarts web waits (it does not fail).
    until("the first restart", LONG, || {
        seen.of("never", is_spawned).len() >= 2
    })
    .await;
    let status = orch.status().await.expect("status");
    assert_eq!(status[1].state, ServiceState::Waiting, "{status:?}");
    assert!(
        status[1].reason.as_deref().unwrap_or("").contains("never"),
        "{status:?}"
    );

    let res = timed(answer).await.expect("the up task ran");
    match res {
        Err(Error::ServiceFailed { service, reason }) => {
            assert_eq!(service, "never");
            assert!(reason.contains("exited with code 1"), "{reason}");
        }
        other => panic!("up must fail with the service's failure, got {other:?}"),
    }
    assert!(
        seen.first("web", is_spawned).is_none(),
        "web must never spawn"
    );
    assert!(
        seen.first("web", is_failed).is_none(),
        "web must not fail itself"
    );
    let status = orch.status().await.expect("status");
    assert_eq!(status[0].state, ServiceState::Failed);
    assert_eq!(status[0].restarts, 2);
    assert_ne!(status[1].state, ServiceState::Failed);
    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
}

#[actix_rt::test]
async fn an_unhealthy_service_is_restarted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let flag = dir.path().join("healthy");
    std::fs::write(&flag, "").expect("flag written");
    let config = config(
        dir.path(),
        vec![svc("flaky", "")
            .health_exec(format!("test -f '{}'", flag.display()))
            .health_interval(Duration::from_millis(100))
            .health_failures(2)
            .backoff(Duration::from_millis(100))],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up");
    let first = orch.status().await.expect("status")[0].pid.expect("pid");
    guard.add(first);

    std::fs::remove_file(&flag).expect("flag removed");
    until("unhealthy", LONG, || {
        !seen
            .of("flaky", |k| matches!(k, EventKind::Unhealthy { .. }))
            .is_empty()
    })
    .await;
    std::fs::write(&flag, "").expect("flag written again");
    until("ready again", LONG, || {
        seen.of("flaky", is_ready).len() >= 2
    })
    .await;

    let status = orch.status().await.expect("status");
    let second = status[0].pid.expect("pid");
    guard.add(second);
    assert_ne!(first, second, "a new process");
    assert!(!pid_alive(first), "the unhealthy process was stopped");
    assert!(pid_alive(second));
    assert_eq!(status[0].state, ServiceState::Ready);
    assert_eq!(status[0].restarts, 1);
    let i = |f: fn(&EventKind) -> bool| seen.index("flaky", f).expect("seen");
    assert!(i(|k| matches!(k, EventKind::Unhealthy { .. })) < i(is_stopped));
    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
}

#[actix_rt::test]
async fn restart_stops_dependents_first_and_starts_them_after() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (free_port(), free_port());
    let config = config(
        dir.path(),
        vec![
            svc("api", &format!("--listen {a} --http"))
                .port(a)
                .health_http(format!("http://127.0.0.1:{a}/")),
            svc("web", &format!("--listen {b}"))
                .port(b)
                .health_tcp(b)
                .depends_on("api"),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up");
    let before = guard_running(&orch, &guard).await;

    timed(orch.restart("api")).await.expect("restart");
    let after = orch.status().await.expect("status");
    assert!(
        after.iter().all(|s| s.state == ServiceState::Ready),
        "{after:?}"
    );
    for (old, new) in before.iter().zip(&after) {
        let new_pid = new.pid.expect("pid");
        guard.add(new_pid);
        assert_ne!(*old, new_pid, "{} was restarted", new.name);
        assert!(!pid_alive(*old));
    }
    assert!(seen.index("web", is_stopped) < seen.index("api", is_stopped));
    let api_ready_again = seen.of("api", is_ready)[1].at;
    let web_spawned_again = seen.of("web", is_spawned)[1].at;
    assert!(web_spawned_again >= api_ready_again);
    assert_eq!(after[0].restarts, 1);
    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
}
