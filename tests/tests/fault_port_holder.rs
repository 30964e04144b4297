//! The PortJanitor with real holders: a foreign process (no tag of ours, not in
//! the allow list) on a service's port is refused — the service fails with the
//! refusal naming the holder, its dependents never start, and the holder lives
//! on; an allowed holder is stopped and the service starts on the freed port.
//! Through the real binary: `fault_port_holder_cli.rs`.
#![cfg(unix)]

mod actors_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use actors_support::*;
use ringmaster::{Error, Options, Orchestrator, ServiceState};
use ringmaster_tests::{fake_service, free_port, pid_alive, port_answers, wait_for, PidGuard};

/// Starts fake-service on `port` as a plain process of the test (no tag). It is
/// not waited on: the guard kills it by pid, and the orchestrator, a child
/// subreaper, reaps it by pid.
#[allow(clippy::zombie_processes)]
fn holder(port: u16, guard: &PidGuard) -> u32 {
    let child = Command::new(fake_service())
        .args(["--listen", &port.to_string()])
        .env_remove(ringmaster_os::TAG_ENV)
        .stdout(Stdio::null())
        .spawn()
        .expect("fake-service starts");
    guard.add(child.id());
    wait_for("the holder listens", LONG, || port_answers(port));
    child.id()
}

#[actix_rt::test]
async fn a_foreign_holder_is_refused_and_left_alive() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (p, w) = (free_port(), free_port());
    let guard = PidGuard::new();
    let foreign = holder(p, &guard);
    let config = config(
        dir.path(),
        vec![
            svc("api", &format!("--listen {p}"))
                .port(p)
                .allow(["python"])
                .health_tcp(p),
            svc("web", &format!("--listen {w}"))
                .port(w)
                .health_tcp(w)
                .depends_on("api"),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let res = timed(orch.up(None)).await;
    let reason = match res {
        Err(Error::ServiceFailed { service, reason }) => {
            assert_eq!(service, "api");
            reason
        }
        other => panic!("up must fail with api's refusal, got {other:?}"),
    };
    assert!(reason.contains(&format!("pid {foreign}")), "{reason}");
    assert!(reason.contains(&format!("port {p}")), "{reason}");
    assert!(reason.contains("allow list"), "{reason}");

    // The holder still runs and still holds the port; nothing of ours spawned.
    assert!(pid_alive(foreign));
    assert!(port_answers(p));
    assert!(seen.first("api", is_spawned).is_none());
    assert!(seen.first("web", is_spawned).is_none());
    let status = orch.status().await.expect("status");
    assert_eq!(status[0].state, ServiceState::Failed);
    assert_eq!(status[0].reason.as_deref(), Some(reason.as_str()));
    assert_ne!(status[1].state, ServiceState::Ready);
    assert_eq!(status[1].pid, None);

    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(
        pid_alive(foreign),
        "shutdown must not touch the foreign holder"
    );
    assert!(
        report.services.is_empty(),
        "nothing was started: {report:?}"
    );
}

#[actix_rt::test]
async fn an_allowed_holder_is_stopped_and_the_service_takes_its_port() {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = free_port();
    let guard = PidGuard::new();
    let old = holder(p, &guard);
    let config = config(
        dir.path(),
        vec![svc("api", &format!("--listen {p} --http"))
            .port(p)
            .allow(["fake-service"])
            .health_http(format!("http://127.0.0.1:{p}/"))],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    timed(orch.up(None))
        .await
        .expect("up after clearing the port");
    assert!(!pid_alive(old), "the allowed holder was stopped");
    let status = orch.status().await.expect("status");
    let pid = status[0].pid.expect("pid");
    guard.add(pid);
    assert_eq!(status[0].state, ServiceState::Ready);
    assert!(port_answers(p));
    let holders = ringmaster_os::listeners(p).expect("listeners");
    assert!(holders.iter().all(|l| l.pid != old));
    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    assert!(port_free(p));
}
