//! A dependency that ends before its dependent is checked: `started` stays met
//! once the dependency was spawned in this run, even when it has exited since; a
//! dependency that exited and is not restarted can never become `ready`, so its
//! dependent does not wait forever: it is not started, and `Up` answers with an
//! error naming both.
#![cfg(unix)]

mod actors_support;

use std::time::Duration;

use actors_support::*;
use ringmaster::config::{Condition, RestartPolicy};
use ringmaster::{Error, Options, Orchestrator, ServiceState};
use ringmaster_tests::{free_port, pid_alive, PidGuard};

#[actix_rt::test]
async fn started_is_met_by_a_dependency_that_already_exited() {
    let dir = tempfile::tempdir().expect("temp dir");
    let w = free_port();
    let config = config(
        dir.path(),
        vec![
            // Runs and exits with 0 at once; never restarted.
            svc("job", "--exit-after 0 --exit-code 0").restart(RestartPolicy::Never),
            // Prepares more slowly than job runs: job has exited by the time web
            // could launch.
            svc("web", &format!("--listen {w}"))
                .port(w)
                .health_tcp(w)
                .install("sleep 2", None::<&str>)
                .depends_on_condition("job", Condition::Started),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();

    up_or_clean_up(&orch)
        .await
        .expect("up answers and succeeds");

    let status = orch.status().await.expect("status");
    let st = |n: &str| status.iter().find(|s| s.name == n).expect("listed").clone();
    assert_eq!(st("web").state, ServiceState::Ready, "{status:?}");
    let web_pid = st("web").pid.expect("web runs");
    guard.add(web_pid);
    assert_eq!(st("job").state, ServiceState::Stopped, "{status:?}");
    assert_eq!(st("job").last_exit, Some(0), "{status:?}");
    // job exited before web was spawned.
    let exited = seen.index("job", is_exited).expect("job exited");
    let spawned = seen.index("web", is_spawned).expect("web spawned");
    assert!(exited < spawned, "{:?}", seen.events());

    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    assert!(!pid_alive(web_pid));
    assert!(port_free(w));
}

#[actix_rt::test]
async fn ready_cannot_be_met_by_a_dependency_that_exited_for_good() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (never_bound, w, other) = (free_port(), free_port(), free_port());
    let config = config(
        dir.path(),
        vec![
            // Its probe never passes (nothing listens there): it exits with 0
            // without ever being ready, and is not restarted.
            svc("job", "--exit-after 300 --exit-code 0")
                .health_tcp(never_bound)
                .restart(RestartPolicy::Never),
            // Depends on job being ready (the list form).
            svc("web", &format!("--listen {w}"))
                .port(w)
                .health_tcp(w)
                .depends_on("job"),
            // Started by the same request, with no dependency: stopped again when
            // the request fails.
            svc("other", &format!("--listen {other}"))
                .port(other)
                .health_tcp(other),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);

    let err = up_or_clean_up(&orch)
        .await
        .expect_err("up fails: web can never start");
    match &err {
        Error::ServiceFailed { service, reason } => {
            assert_eq!(service, "web", "{err}");
            assert!(reason.contains("`job`"), "{err}");
        }
        other => panic!("unexpected error: {other}"),
    }
    let status = orch.status().await.expect("status");
    let st = |n: &str| status.iter().find(|s| s.name == n).expect("listed").clone();
    assert_eq!(st("job").state, ServiceState::Stopped, "{status:?}");
    assert_eq!(st("job").last_exit, Some(0), "{status:?}");
    let web = st("web");
    assert_eq!(web.state, ServiceState::Stopped, "{status:?}");
    assert!(
        web.reason.as_deref().is_some_and(|r| r.contains("`job`")),
        "{web:?}"
    );
    assert!(seen.first("web", is_spawned).is_none());
    // What the failed request started is stopped again.
    until_async("other stopped again", LONG, || async {
        orch.status()
            .await
            .expect("status")
            .iter()
            .any(|s| s.name == "other" && s.state == ServiceState::Stopped)
    })
    .await;
    for s in seen.of("other", is_spawned) {
        if let ringmaster::messages::EventKind::Spawned { pid: Some(pid) } = s.event.kind {
            assert!(!pid_alive(pid), "other (pid {pid}) still alive");
        }
    }
    assert!(port_free(other));

    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
}

/// `Up` of everything; when it does not answer within [`LONG`], shuts down (so
/// that what did start is stopped) and panics.
async fn up_or_clean_up(orch: &Orchestrator) -> Result<(), Error> {
    match actix_rt::time::timeout(LONG, orch.up(None)).await {
        Ok(answer) => answer,
        Err(_) => {
            let _ = timed(orch.shutdown(Duration::from_secs(20))).await;
            panic!("up did not answer within {LONG:?}");
        }
    }
}
