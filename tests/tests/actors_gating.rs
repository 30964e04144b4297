//! Gated start-up with real processes: a dependent spawns only after its
//! dependency's first healthy probe, `Up` answers once everything is ready, and
//! the shutdown that follows leaves no process, port, PID file or lock behind.
#![cfg(unix)]

mod actors_support;

use std::time::Duration;

use actors_support::*;
use ringmaster::messages::EventKind;
use ringmaster::{Options, Orchestrator, ServiceState};
use ringmaster_tests::{free_port, pid_alive, port_answers, PidGuard};

#[actix_rt::test]
async fn dependent_spawns_only_after_the_dependencys_first_healthy_probe() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (api_port, web_port) = (free_port(), free_port());
    let config = config(
        dir.path(),
        vec![
            svc(
                "api",
                &format!("--ready-after 300 --listen {api_port} --http"),
            )
            .port(api_port)
            .health_http(format!("http://127.0.0.1:{api_port}/health")),
            svc("web", &format!("--listen {web_port} --http"))
                .port(web_port)
                .depends_on("api")
                .health_http(format!("http://127.0.0.1:{web_port}/")),
        ],
    );
    let state_dir = config.settings.state_dir.clone();
    let orch = Orchestrator::start(config, Options::default()).expect("orchestrator starts");
    let seen = record(&orch, Some(("web", api_port)));
    let guard = PidGuard::new();

    timed(orch.up(None)).await.expect("up succeeds");

    // Up answered: both ready, both answer on their ports.
    assert!(port_answers(api_port) && port_answers(web_port));
    let status = orch.status().await.expect("status");
    for s in &status {
        assert_eq!(s.state, ServiceState::Ready, "{s:?}");
        assert_eq!(s.health.as_deref(), Some("ok"), "{s:?}");
        guard.add(s.pid.expect("a running service has a pid"));
    }

    // Order: api spawned → api ready → web spawned → web ready.
    let i = |svc: &str, f: fn(&EventKind) -> bool| seen.index(svc, f).expect("event seen");
    assert!(i("api", is_spawned) < i("api", is_ready));
    assert!(i("api", is_ready) < i("web", is_spawned));
    assert!(i("web", is_spawned) < i("web", is_ready));

    // The moment web spawned, api already answered on its port.
    assert_eq!(
        seen.port_at_spawn.lock().expect("lock").clone(),
        vec![("web".to_owned(), true)]
    );
    // api binds its port 300 ms after its spawn, so web cannot have started
    // earlier: the OS's start times (clock ticks of 10 ms) show it.
    #[cfg(target_os = "linux")]
    {
        let pid = |name: &str| {
            status
                .iter()
                .find(|s| s.name == name)
                .and_then(|s| s.pid)
                .expect("pid")
        };
        let a = start_ticks(pid("api")).expect("api's start time");
        let w = start_ticks(pid("web")).expect("web's start time");
        assert!(
            w >= a + 29,
            "web started {} ticks after api",
            w as i64 - a as i64
        );
    }

    // PID files exist while running (each is written on a blocking thread just
    // after its spawn, so it may land a moment after `Up` answered).
    until("both PID files written", LONG, || {
        state_dir.join("api.pid").exists() && state_dir.join("web.pid").exists()
    })
    .await;

    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown answers");
    assert!(report.clean(), "{report:?}");
    assert!(!report.deadline_hit);
    for s in &status {
        let pid = s.pid.expect("pid");
        assert!(!pid_alive(pid), "{} (pid {pid}) still alive", s.name);
    }
    assert!(port_free(api_port) && port_free(web_port));
    assert!(!state_dir.join("api.pid").exists() && !state_dir.join("web.pid").exists());
    // The lock is released: another instance may take it now.
    ringmaster_os::InstanceLock::acquire(&state_dir).expect("lock released after shutdown");
}

#[actix_rt::test]
async fn independent_services_start_in_parallel_and_up_only_starts_what_is_needed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b, c) = (free_port(), free_port(), free_port());
    let config = config(
        dir.path(),
        vec![
            svc("a", &format!("--ready-after 400 --listen {a}"))
                .port(a)
                .health_tcp(a),
            svc("b", &format!("--ready-after 400 --listen {b}"))
                .port(b)
                .health_tcp(b),
            svc("c", &format!("--listen {c}"))
                .port(c)
                .health_tcp(c)
                .depends_on("b"),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("orchestrator starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();

    // Only `c`: it needs `b`, not `a`.
    timed(orch.up(Some(vec!["c".into()]))).await.expect("up c");
    let status = orch.status().await.expect("status");
    let st = |n: &str| status.iter().find(|s| s.name == n).expect("listed").clone();
    assert_eq!(st("a").state, ServiceState::Stopped);
    assert_eq!(st("b").state, ServiceState::Ready);
    assert_eq!(st("c").state, ServiceState::Ready);
    assert!(seen.first("a", is_spawned).is_none());
    for n in ["b", "c"] {
        guard.add(st(n).pid.expect("pid"));
    }

    // Now everything: only `a` is left to start (it binds after 400 ms); the
    // running `b` and `c` are not started again.
    let started = std::time::Instant::now();
    timed(orch.up(None)).await.expect("up all");
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(seen.of("b", is_spawned).len(), 1);
    assert_eq!(seen.of("c", is_spawned).len(), 1);
    let status = orch.status().await.expect("status");
    assert!(
        status.iter().all(|s| s.state == ServiceState::Ready),
        "{status:?}"
    );
    guard.add(status[0].pid.expect("pid"));

    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    assert!(port_free(a) && port_free(b) && port_free(c));
}

#[actix_rt::test]
async fn independent_services_are_launched_together() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let services = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            svc(&format!("s{i}"), &format!("--ready-after 500 --listen {p}"))
                .port(*p)
                .health_tcp(*p)
        })
        .collect();
    let orch = Orchestrator::start(config(dir.path(), services), Options::default())
        .expect("orchestrator starts");
    let seen = record(&orch, None);
    let started = std::time::Instant::now();
    timed(orch.up(None)).await.expect("up");
    // Sequential start would take 3 × 500 ms.
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "three independent 500 ms services took {:?}",
        started.elapsed()
    );
    let spawns: Vec<_> = (0..3)
        .map(|i| seen.first(&format!("s{i}"), is_spawned).expect("spawned"))
        .collect();
    let first = *spawns.iter().min().expect("three");
    let last = *spawns.iter().max().expect("three");
    assert!(last.duration_since(first) < Duration::from_millis(400));
    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
}

#[actix_rt::test]
async fn a_dependent_on_a_completed_job_starts_after_it_exits_zero() {
    use ringmaster::config::{Condition, RestartPolicy};
    let dir = tempfile::tempdir().expect("temp dir");
    let api = free_port();
    let config = config(
        dir.path(),
        vec![
            svc("migrate", "--exit-after 300 --exit-code 0").restart(RestartPolicy::Never),
            svc("api", &format!("--listen {api}"))
                .port(api)
                .health_tcp(api)
                .depends_on_condition("migrate", Condition::Completed),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up");
    let status = orch.status().await.expect("status");
    guard.add(status[1].pid.expect("api runs"));
    assert_eq!(status[0].state, ServiceState::Stopped);
    assert_eq!(status[0].last_exit, Some(0));
    assert_eq!(status[1].state, ServiceState::Ready);
    assert!(seen.index("migrate", is_exited) < seen.index("api", is_spawned));
    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
}
