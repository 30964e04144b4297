//! Health flapping against `failures`, with a real HTTP server whose answers a file
//! decides, request by request (fake-service `--health-file`): answers that fail
//! at most twice in a row — 500, a hang past the probe's timeout, a connection
//! reset, a 200 whose body trickles past the timeout — never make a ready service
//! `unhealthy` with `failures = 3`; each kind of failure alone, three times in a
//! row, does (not before the third), and a 200 afterwards makes it `ready` again,
//! the same process throughout.
#![cfg(unix)]

mod actors_support;

use std::time::{Duration, Instant};

use actors_support::*;
use ringmaster::config::RestartPolicy;
use ringmaster::messages::EventKind;
use ringmaster::{Options, Orchestrator, ServiceState};
use ringmaster_tests::{free_port, pid_alive, PidGuard};

fn is_unhealthy(k: &EventKind) -> bool {
    matches!(k, EventKind::Unhealthy { .. })
}
fn is_healthy(k: &EventKind) -> bool {
    matches!(k, EventKind::Healthy)
}

/// The requests the service answered (`health <k> <mode>`): (k, mode, arrival).
fn requests(seen: &Recording) -> Vec<(u64, String, Instant)> {
    let lines = seen.lines();
    let times = seen.line_times.lock().expect("lines lock").clone();
    lines
        .iter()
        .zip(times)
        .filter(|(l, _)| l.service == "app")
        .filter_map(|(l, at)| {
            let mut w = l.line.split_whitespace();
            (w.next() == Some("health")).then_some(())?;
            let k = w.next()?.parse().ok()?;
            Some((k, w.next()?.to_string(), at))
        })
        .collect()
}

#[actix_rt::test]
async fn flapping_under_failures_is_tolerated_and_each_kind_of_failure_counts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("health");
    std::fs::write(&file, "200").expect("write the health file");
    let port = free_port();
    let config = config(
        dir.path(),
        vec![svc(
            "app",
            &format!("--listen {port} --health-file '{}'", file.display()),
        )
        .port(port)
        .health_http(format!("http://127.0.0.1:{port}/health"))
        .health_interval(Duration::from_millis(100))
        .health_timeout(Duration::from_millis(400))
        .health_failures(3)
        .restart(RestartPolicy::Never)],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up");
    let pid = guard_running(&orch, &guard).await[0];

    // Flapping: never more than two failures in a row, every kind of failure.
    let from = requests(&seen).len();
    std::fs::write(&file, "500,200,hang,200,reset,200,slow,200,500,500,200").expect("flap");
    until("two full cycles of flapping answers", LONG * 2, || {
        requests(&seen).len() >= from + 24
    })
    .await;
    let flapped: Vec<String> = requests(&seen)[from..]
        .iter()
        .map(|r| r.1.clone())
        .collect();
    for kind in ["500", "hang", "reset", "slow"] {
        assert!(
            flapped.iter().any(|m| m == kind),
            "{kind} was served: {flapped:?}"
        );
    }
    assert!(
        seen.of("app", is_unhealthy).is_empty(),
        "two failures in a row made it unhealthy: {flapped:?} {:?}",
        seen.events()
    );
    let status = orch.status().await.expect("status");
    assert_eq!(status[0].state, ServiceState::Ready);
    assert_eq!(status[0].pid, Some(pid));

    // Each kind alone, three times in a row, makes it unhealthy; 200 heals it.
    for (round, kind) in ["500", "hang", "reset", "slow"].into_iter().enumerate() {
        let from = requests(&seen).len();
        std::fs::write(&file, kind).expect("fail");
        until(&format!("unhealthy after {kind}"), LONG, || {
            seen.of("app", is_unhealthy).len() > round
        })
        .await;
        let unhealthy_at = seen.of("app", is_unhealthy)[round].at;
        until(&format!("two {kind} answers recorded"), LONG, || {
            requests(&seen)[from..]
                .iter()
                .filter(|r| r.1 == kind)
                .count()
                >= 2
        })
        .await;
        let second = requests(&seen)[from..]
            .iter()
            .filter(|r| r.1 == kind)
            .nth(1)
            .map(|r| r.2)
            .expect("a second failing answer");
        assert!(
            second < unhealthy_at,
            "{kind}: unhealthy before the third failure in a row"
        );
        let status = orch.status().await.expect("status");
        assert_eq!(
            status[0].state,
            ServiceState::Unhealthy,
            "{kind}: {status:?}"
        );

        std::fs::write(&file, "200").expect("heal");
        until(&format!("healthy again after {kind}"), LONG, || {
            seen.of("app", is_healthy).len() > round
        })
        .await;
        let status = orch.status().await.expect("status");
        assert_eq!(status[0].state, ServiceState::Ready);
        assert_eq!(status[0].pid, Some(pid), "recovered, not restarted");
        assert_eq!(status[0].restarts, 0);
    }
    assert!(pid_alive(pid));
    assert_eq!(seen.of("app", is_spawned).len(), 1, "one spawn: no restart");

    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    assert!(!pid_alive(pid) && port_free(port));
}
