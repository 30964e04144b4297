//! The PortJanitor with real holders: a foreign process (no tag of ours, not in
//! the allow list) on a service's port is refused — the service fails with the
//! refusal naming the holder, its dependents never start, and the holder lives
//! on; an allowed holder is stopped and the service starts on the freed port.
//! Through the real binary: `up -d` against a foreign holder exits 1 naming it,
//! the holder still alone on the port and alive, nothing of the project left
//! running (the other services started meanwhile are stopped again).
#![cfg(unix)]

mod actors_support;
mod cli_support;

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

#[test]
fn up_against_a_foreign_holder_exits_1_naming_it_and_leaves_it_alone() {
    use cli_support::{foreign_holder, holders, text, Project};
    let (base, p) = (free_port(), free_port());
    let fake = fake_service();
    let fake = fake.display();
    let project = Project::with_config(&format!(
        r#"[services.base]
command = "{fake} --listen {base}"
port = {base}
allow = ["fake-service"]
health = {{ tcp = {base} }}
stop = {{ timeout = "5s" }}

[services.api]
command = "{fake} --listen {p} --http"
port = {p}
allow = ["nothing-of-this-name"]
depends_on = ["base"]
health = {{ http = "http://127.0.0.1:{p}/" }}
stop = {{ timeout = "5s" }}
"#
    ));
    let stranger = foreign_holder(&project.guard, p, &[]);
    let up = project.rm().args(["up", "-d"]).output().expect("up -d");
    let (out, err) = (text(&up.stdout), text(&up.stderr));
    assert_eq!(up.status.code(), Some(1), "{out}{err}");
    assert!(
        format!("{out}{err}").contains(&stranger.to_string()),
        "names the holder {stranger}: {out}{err}"
    );
    if let Some(pid) = project.instance_pid() {
        project.guard.add(pid);
        cli_support::wait_gone(pid);
    }
    assert!(pid_alive(stranger), "the foreign holder was touched");
    assert_eq!(
        holders(p),
        vec![stranger],
        "the stranger alone holds the port"
    );
    wait_for("nothing of the project left", LONG, || {
        project.tagged_pids().is_empty()
    });
    assert!(holders(base).is_empty(), "base was stopped again");
}
