//! A service that never started, left `waiting` because its dependency failed,
//! has nothing to stop: once the shutdown is done it shows `stopped` all the
//! same. And a `Shutdown` that comes after the shutdown is done gets its report
//! again, not an empty one.
//! Runs on Windows too (under Wine: `.ci/wine/test.sh`).

mod actors_support;

use std::time::Duration;

use actors_support::*;
use ringmaster::config::RestartPolicy;
use ringmaster::{Options, Orchestrator, ServiceState};
use ringmaster_tests::free_port;

#[actix_rt::test]
async fn a_service_that_never_started_is_stopped_and_a_late_shutdown_gets_the_report() {
    let dir = tempfile::tempdir().expect("temp dir");
    // db is probed on a port it never listens on, so it is never ready; it
    // exits with 1 and is not restarted: it fails.
    let p = free_port();
    let config = config(
        dir.path(),
        vec![
            svc("db", "--exit-after 300 --exit-code 1")
                .health_tcp(p)
                .restart(RestartPolicy::Never),
            svc("web", "").depends_on("db"),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);

    // web was never started: its restart starts db, which fails; web is left
    // waiting for it.
    let restart = timed(orch.restart("web")).await;
    assert!(restart.is_err(), "db fails: {restart:?}");
    let status = orch.status().await.expect("status");
    let st = |s: &[ringmaster::ServiceStatus], n: &str| {
        s.iter().find(|s| s.name == n).expect("listed").clone()
    };
    assert_eq!(st(&status, "db").state, ServiceState::Failed, "{status:?}");
    assert_eq!(
        st(&status, "web").state,
        ServiceState::Waiting,
        "{status:?}"
    );
    assert!(seen.of("web", is_spawned).is_empty(), "{:?}", seen.events());

    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    let status = orch.status().await.expect("status");
    assert_eq!(
        st(&status, "web").state,
        ServiceState::Stopped,
        "{status:?}"
    );
    assert_eq!(st(&status, "db").state, ServiceState::Failed, "{status:?}");

    // Later: the same report again.
    let again = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("a second shutdown");
    let names = |r: &ringmaster::messages::ShutdownReport| {
        r.services
            .iter()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>()
    };
    assert!(!report.services.is_empty(), "db was stopped: {report:?}");
    assert_eq!(names(&again), names(&report), "{again:?}");
    assert_eq!(again.elapsed, report.elapsed);
    assert_eq!(again.clean(), report.clean());
}
