//! `Restart` of a service that never ran, whose dependencies never ran either:
//! what it depends on is started too (as `Up` of it would), and the request
//! answers once it is ready. A one-shot job that already completed is not run
//! again by a restart of what depends on it.
#![cfg(unix)]

mod actors_support;

use std::time::Duration;

use actors_support::*;
use ringmaster::config::{Condition, RestartPolicy};
use ringmaster::{Options, Orchestrator, ServiceState};
use ringmaster_tests::{free_port, pid_alive, PidGuard};

#[actix_rt::test]
async fn restart_starts_the_dependencies_that_were_never_needed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b, c) = (free_port(), free_port(), free_port());
    let config = config(
        dir.path(),
        vec![
            svc("a", &format!("--listen {a}")).port(a).health_tcp(a),
            svc("b", &format!("--listen {b}"))
                .port(b)
                .health_tcp(b)
                .depends_on("c"),
            svc("c", &format!("--listen {c}")).port(c).health_tcp(c),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();

    timed(orch.up(Some(vec!["a".into()]))).await.expect("up a");
    let status = orch.status().await.expect("status");
    let st = |s: &[ringmaster::ServiceStatus], n: &str| {
        s.iter().find(|s| s.name == n).expect("listed").clone()
    };
    assert_eq!(st(&status, "b").state, ServiceState::Stopped, "{status:?}");
    assert_eq!(st(&status, "c").state, ServiceState::Stopped, "{status:?}");
    guard.add(st(&status, "a").pid.expect("a runs"));

    let result = actix_rt::time::timeout(LONG, orch.restart("b")).await;
    if result.is_err() {
        // A hang: stop what did start before failing.
        let _ = timed(orch.shutdown(Duration::from_secs(20))).await;
    }
    result
        .expect("restart b answers in time")
        .expect("restart b succeeds");

    let status = orch.status().await.expect("status");
    for n in ["a", "b", "c"] {
        assert_eq!(st(&status, n).state, ServiceState::Ready, "{status:?}");
    }
    // c was ready before b spawned.
    let c_ready = seen.index("c", is_ready).expect("c ready");
    let b_spawned = seen.index("b", is_spawned).expect("b spawned");
    assert!(c_ready < b_spawned, "{:?}", seen.events());
    let pids: Vec<u32> = status.iter().filter_map(|s| s.pid).collect();

    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    for pid in pids {
        assert!(!pid_alive(pid), "pid {pid} still alive");
    }
    assert!(port_free(a) && port_free(b) && port_free(c));
}

#[actix_rt::test]
async fn restart_does_not_run_a_completed_job_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (db, api) = (free_port(), free_port());
    let runs = dir.path().join("migrate-runs");
    let migrate = ringmaster::config::ServiceConfigBuilder::new(
        "migrate",
        format!("echo ran >> '{}'", runs.display()),
    )
    .restart(RestartPolicy::Never);
    let config = config(
        dir.path(),
        vec![
            migrate,
            svc("db", &format!("--listen {db}")).port(db).health_tcp(db),
            svc("api", &format!("--listen {api}"))
                .port(api)
                .health_tcp(api)
                .depends_on("db")
                .depends_on_condition("migrate", Condition::Completed),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    timed(orch.up(None)).await.expect("up");
    let ran = || {
        std::fs::read_to_string(&runs)
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert_eq!(ran(), 1, "migrate ran once");

    // Restarting db stops and starts api (its dependent) again; migrate stays done.
    let result = actix_rt::time::timeout(LONG, orch.restart("db")).await;
    let status = orch.status().await.expect("status");
    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    result
        .expect("restart db answers in time")
        .expect("restart db succeeds");
    let api_state = status.iter().find(|s| s.name == "api").expect("listed");
    assert_eq!(api_state.state, ServiceState::Ready, "{status:?}");
    assert_eq!(ran(), 1, "migrate was not run again: {status:?}");
    assert!(report.clean(), "{report:?}");
    assert!(port_free(db) && port_free(api));
}
