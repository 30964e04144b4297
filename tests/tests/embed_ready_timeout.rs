//! `up` never waits in silence: a service not ready within its `ready_timeout` of
//! its launch is stopped and fails with its last probe result in the reason; an
//! overall deadline (`up_within`) answers with what is not ready and stops what
//! it started; a service that became ready in time is not touched by its
//! deadline; the key reads from the TOML file with its default and checks.
mod actors_support;

use std::path::Path;
use std::time::{Duration, Instant};

use actors_support::*;
use ringmaster::config::{Config, ServiceConfigBuilder};
use ringmaster::{Error, Options, Orchestrator, ServiceState};
use ringmaster_os::process::{members, snapshot};
use ringmaster_os::{project_id, Tag};
use ringmaster_tests::{free_port, PidGuard};

/// Pids carrying `service`'s tag in `state_dir`'s project, as the OS shows them.
fn tagged(state_dir: &Path, service: &str) -> Vec<u32> {
    let tag = Tag::new(project_id(state_dir), service);
    let table = snapshot().expect("process table");
    members(&table, None, None, Some(&tag))
        .iter()
        .filter(|p| !p.zombie)
        .map(|p| p.pid)
        .collect()
}

#[actix_rt::test]
async fn a_service_not_ready_in_time_fails_with_its_last_probe() {
    let dir = tempfile::tempdir().expect("temp dir");
    let guard = PidGuard::new();
    let never = free_port();
    // `slow` runs but nothing ever listens on the port its probe checks; `web`
    // waits for it.
    let config = config(
        dir.path(),
        vec![
            svc("slow", "--children 1")
                .health_tcp(never)
                .ready_timeout(Duration::from_millis(1500)),
            svc("web", "--listen 0").depends_on("slow"),
        ],
    );
    let state_dir = config.settings.state_dir.clone();
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let began = Instant::now();
    let up = {
        let orch = orch.clone();
        actix_rt::spawn(async move { orch.up(None).await })
    };
    // While it waits, its processes run (kept for the guard).
    until_async("slow spawned", LONG, || {
        let running = !seen.of("slow", is_spawned).is_empty();
        async move { running }
    })
    .await;
    // The root and its child (spawned by the root a moment after its own start).
    until("slow's root and child", LONG, || {
        tagged(&state_dir, "slow").len() >= 2
    })
    .await;
    let running = tagged(&state_dir, "slow");
    running.iter().for_each(|p| guard.add(*p));
    assert!(running.len() >= 2, "root and child: {running:?}");

    let result = timed(up).await.expect("the up task");
    let took = began.elapsed();
    match &result {
        Err(Error::ServiceFailed { service, reason }) => {
            assert_eq!(service, "slow");
            assert!(
                reason.starts_with("not ready within 1.5s of its start (last probe: failing: ")
                    && reason.contains(&never.to_string()),
                "{reason}"
            );
        }
        other => panic!("up fails for slow: {other:?}"),
    }
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    // Stopped: nothing of it is left, and what depends on it never started.
    assert!(tagged(&state_dir, "slow").is_empty());
    #[cfg(unix)]
    assert!(running.iter().all(|p| !ringmaster_tests::pid_alive(*p)));
    assert!(seen.of("web", is_spawned).is_empty());
    let status = timed(orch.status()).await.expect("status");
    let slow = status.iter().find(|s| s.name == "slow").expect("listed");
    assert_eq!(slow.state, ServiceState::Failed, "{slow:?}");
    assert!(slow
        .reason
        .as_deref()
        .is_some_and(|r| r.contains("last probe")));
    // No restart followed: it failed for good.
    assert_eq!(seen.of("slow", is_spawned).len(), 1);

    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report}");
}

#[actix_rt::test]
async fn up_within_names_what_is_not_ready_and_stops_what_it_started() {
    let dir = tempfile::tempdir().expect("temp dir");
    let guard = PidGuard::new();
    let never = free_port();
    // `fast` is ready at once; `slow` never is (its own deadline is the default).
    let config = config(
        dir.path(),
        vec![svc("fast", "--listen 0"), svc("slow", "").health_tcp(never)],
    );
    let state_dir = config.settings.state_dir.clone();
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let began = Instant::now();
    let up = {
        let orch = orch.clone();
        actix_rt::spawn(async move { orch.up_within(None, Duration::from_millis(1500)).await })
    };
    until_async("both spawned", LONG, || {
        let both = !seen.of("slow", is_spawned).is_empty() && !seen.of("fast", is_ready).is_empty();
        async move { both }
    })
    .await;
    let running: Vec<u32> = ["fast", "slow"]
        .iter()
        .flat_map(|s| tagged(&state_dir, s))
        .collect();
    running.iter().for_each(|p| guard.add(*p));

    let result = timed(up).await.expect("the up task");
    assert!(began.elapsed() >= Duration::from_millis(1500));
    match &result {
        Err(e @ Error::NotReady(_)) => {
            let text = e.to_string();
            assert!(
                text.starts_with("not ready within 1.5s: `slow` starting, last probe: failing: ")
                    || text
                        .starts_with("not ready within 1.5s: `slow` starting, no probe result yet"),
                "{text}"
            );
            assert!(!text.contains("`fast`"), "fast was ready: {text}");
        }
        other => panic!("up_within fails at its deadline: {other:?}"),
    }
    // What it started is stopped again, the ready one too.
    assert!(tagged(&state_dir, "fast").is_empty() && tagged(&state_dir, "slow").is_empty());
    let status = timed(orch.status()).await.expect("status");
    for s in &status {
        assert_eq!(s.state, ServiceState::Stopped, "{s:?}");
        assert_eq!(
            s.reason.as_deref(),
            Some("stopped again: up's deadline passed")
        );
    }
    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report}");
}

#[actix_rt::test]
async fn a_service_ready_in_time_outlives_its_deadline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let guard = PidGuard::new();
    let port = free_port();
    let deadline = Duration::from_millis(800);
    let config = config(
        dir.path(),
        vec![svc("web", &format!("--listen {port} --ready-after 300"))
            .health_tcp(port)
            .ready_timeout(deadline)],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    timed(orch.up(None))
        .await
        .expect("ready within its deadline");
    guard_running(&orch, &guard).await;
    // Past the deadline it is still ready: the timer was cancelled at ready.
    actix_rt::time::sleep(deadline * 2).await;
    let status = timed(orch.status()).await.expect("status");
    assert_eq!(status[0].state, ServiceState::Ready, "{:?}", status[0]);
    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report}");
}

#[test]
fn ready_timeout_reads_from_the_file_with_a_default_and_a_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("ringmaster.toml");
    let text = "[services.web]\ncommand = \"true\"\nready_timeout = \"750ms\"\n\n[services.api]\ncommand = \"true\"\n";
    let config = Config::parse(text, &file).expect("valid");
    assert_eq!(
        config.services["web"].ready_timeout,
        Duration::from_millis(750)
    );
    assert_eq!(
        config.services["api"].ready_timeout,
        Duration::from_secs(300)
    );
    assert_eq!(
        ringmaster::config::defaults::READY_TIMEOUT,
        Duration::from_secs(300)
    );

    let zero = "[services.web]\ncommand = \"true\"\nready_timeout = \"0s\"\n";
    let err = Config::parse(zero, &file).expect_err("0 is refused");
    let err = err.to_string();
    assert!(
        err.contains("ringmaster.toml:3:17")
            && err.contains("service `web`: ready_timeout must be greater than 0"),
        "{err}"
    );
    let bad = "[services.web]\ncommand = \"true\"\nready_timeout = \"soon\"\n";
    let err = Config::parse(bad, &file)
        .expect_err("not a duration")
        .to_string();
    assert!(
        err.contains("ready_timeout") && err.contains(":3:"),
        "{err}"
    );

    // The builder checks the same.
    let err = Config::builder(dir.path())
        .service(ServiceConfigBuilder::new("web", "true").ready_timeout(Duration::ZERO))
        .build()
        .expect_err("0 is refused")
        .to_string();
    assert!(
        err.contains("ready_timeout must be greater than 0"),
        "{err}"
    );
}
