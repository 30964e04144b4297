//! A service stuck in `starting` says why: before the first successful probe, its
//! status carries what the failing probe said (`failing: ...`), without any
//! verdict (no `Unhealthy`, no `Ready` before the probe succeeds); once the probe
//! succeeds it reads `ok`.
//! Runs on Windows too (under Wine: `.ci/wine/test.sh`).

mod actors_support;

use std::time::{Duration, Instant};

use actors_support::*;
use ringmaster::messages::EventKind;
use ringmaster::{Options, Orchestrator, ServiceState};
use ringmaster_tests::{free_port, PidGuard};

/// How long the service waits before it binds its port: the test must see the
/// failing probe in a status within that time. Longer on Windows: under Wine,
/// where starting the `cmd /C` chain alone takes hundreds of milliseconds, a run
/// with 3 s once saw no failing status before the port opened.
const BIND_AFTER_MS: u64 = if cfg!(windows) { 10_000 } else { 3_000 };

#[actix_rt::test]
async fn a_failing_probe_shows_in_status_while_starting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/health");
    let config = config(
        dir.path(),
        // Nobody listens on `port` for its first seconds: the probe is refused.
        vec![svc(
            "api",
            &format!("--ready-after {BIND_AFTER_MS} --listen {port} --http"),
        )
        .port(port)
        .health_http(url.clone())],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("orchestrator starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();

    let up = actix_rt::spawn({
        let orch = orch.clone();
        async move { orch.up(None).await }
    });

    // While it starts: state starting, health naming the failing probe.
    let began = Instant::now();
    let failing = loop {
        assert!(
            began.elapsed() < LONG,
            "timed out waiting for health `failing: ...` while starting"
        );
        let status = orch.status().await.expect("status");
        let api = &status[0];
        if let Some(pid) = api.pid {
            guard.add(pid);
        }
        assert_ne!(api.state, ServiceState::Unhealthy, "{api:?}");
        if let Some(health) = api.health.as_deref().filter(|h| h.starts_with("failing:")) {
            assert_eq!(api.state, ServiceState::Starting, "{api:?}");
            assert!(
                seen.of("api", is_ready).is_empty(),
                "no Ready before the probe succeeds: {:?}",
                seen.events()
            );
            assert!(api.health_latency_ms.is_some(), "{api:?}");
            break health.to_owned();
        }
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        failing.contains(&url),
        "the detail names the probe: {failing}"
    );
    // The port really is not answering yet (it opens seconds after the spawn).
    assert!(port_free(port) || !seen.of("api", is_ready).is_empty());

    timed(up)
        .await
        .expect("the up task finishes")
        .expect("up succeeds once the probe does");
    guard_running(&orch, &guard).await;
    let status = orch.status().await.expect("status");
    assert_eq!(status[0].state, ServiceState::Ready, "{status:?}");
    assert_eq!(status[0].health.as_deref(), Some("ok"), "{status:?}");
    assert!(
        seen.of("api", |k| matches!(k, EventKind::Unhealthy { .. }))
            .is_empty(),
        "failures before the first success are no verdict: {:?}",
        seen.events()
    );
    assert_eq!(seen.of("api", is_ready).len(), 1, "{:?}", seen.events());

    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
}
