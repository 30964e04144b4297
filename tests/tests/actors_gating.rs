//! Gated start-up with real processes: a dependent spawns only after its
//! dependency's first healthy probe, `Up` answers once everything is ready, and
//! the shutdown that follows stops the dependent before its dependency and leaves
//! no process, port, PID file or lock behind. Runs on Windows too (under Wine:
//! `.ci/wine/test.sh`), where every service is a `cmd /C` chain; there a chain
//! three `cmd /C` deep is stopped as one.

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
    let pid = |name: &str| {
        status
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.pid)
            .expect("pid")
    };
    // api binds its port 300 ms after its spawn, so web cannot have started
    // earlier: the OS's start times (clock ticks of 10 ms) show it.
    #[cfg(target_os = "linux")]
    {
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

    // The cascade, as the OS sees it: api (the dependency) never ends while web
    // (its dependent) still runs. Under Wine each stop waits out the 5 s stop
    // timeout (Wine delivers no CTRL_BREAK), so they end apart.
    let gone = watch_gone(&[pid("api"), pid("web")], LONG * 2);
    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown answers");
    let gone = gone.join().expect("the watch thread ends");
    assert!(report.clean(), "{report:?}");
    assert!(!report.deadline_hit);
    match gone[..] {
        [Some(api), Some(web)] => assert!(
            web <= api,
            "api ended (pass {api}) while web still ran (ended in pass {web})"
        ),
        _ => panic!("both end with the shutdown: {gone:?}"),
    }
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

// Unix only: it measures the parallel launch by wall time, which says nothing
// under Wine, where starting a process alone takes hundreds of milliseconds.
#[cfg(unix)]
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

/// Windows: a service whose command is a chain of `cmd /C` three deep (below the
/// `cmd /C` every service runs in) is stopped as one: once its stop answered, no
/// process of the chain is left in the OS's process table, and its port is free.
#[cfg(windows)]
#[actix_rt::test]
async fn a_cmd_chain_three_deep_is_stopped_as_one() {
    use ringmaster::config::ServiceConfigBuilder;
    use ringmaster_os::process::{self, ProcessInfo};

    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let command = format!("cmd /C cmd /C cmd /C {}", fake(&format!("--listen {port}")));
    let config = config(
        dir.path(),
        vec![ServiceConfigBuilder::new("chain", command)
            .stop_timeout(Duration::from_secs(5))
            .port(port)
            .health_tcp(port)],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("orchestrator starts");
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up succeeds");
    let status = orch.status().await.expect("status");
    let root = status[0].root_pid.expect("a running service has a root");

    // The chain as the OS shows it: four cmd.exe, each the parent of the next,
    // and fake-service (which answers on the port, so it runs) below the last.
    let table = process::snapshot().expect("the process table can be read");
    let mut chain: Vec<ProcessInfo> = table.iter().filter(|p| p.pid == root).cloned().collect();
    chain.extend(process::descendants(&table, root).into_iter().cloned());
    chain.iter().for_each(|p| guard.add(p.pid));
    let names = |procs: &[ProcessInfo]| {
        procs
            .iter()
            .map(|p| format!("{} {} (parent {:?})", p.pid, p.name, p.ppid))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let is_conhost = |p: &ProcessInfo| p.name.eq_ignore_ascii_case("conhost.exe");
    let mut link = root;
    for depth in 0..5 {
        let p = chain
            .iter()
            .find(|p| p.pid == link)
            .unwrap_or_else(|| panic!("level {depth} of the chain: {}", names(&chain)));
        let want = if depth < 4 {
            "cmd.exe"
        } else {
            "fake-service.exe"
        };
        assert!(
            p.name.eq_ignore_ascii_case(want),
            "level {depth} is {} ({}), not {want}: {}",
            p.pid,
            p.name,
            names(&chain)
        );
        if depth < 4 {
            link = chain
                .iter()
                .find(|c| c.ppid == Some(p.pid) && !is_conhost(c))
                .unwrap_or_else(|| panic!("a child of {}: {}", p.pid, names(&chain)))
                .pid;
        }
    }
    // Besides the chain, at most the conhost.exe of the root's hidden console (a
    // service gets one when ringmaster has no console, as in this test run).
    let (consoles, programs): (Vec<ProcessInfo>, Vec<ProcessInfo>) =
        chain.iter().cloned().partition(is_conhost);
    assert_eq!(programs.len(), 5, "{}", names(&chain));
    assert!(
        consoles.len() <= 1 && consoles.iter().all(|c| c.ppid == Some(root)),
        "{}",
        names(&chain)
    );

    timed(orch.stop_service("chain"))
        .await
        .expect("stop answers");
    let table = process::snapshot().expect("the process table can be read");
    let left: Vec<ProcessInfo> = table
        .into_iter()
        .filter(|p| !p.zombie)
        .filter(|p| {
            chain
                .iter()
                .any(|c| c.pid == p.pid && c.start_time == p.start_time)
        })
        .collect();
    assert!(left.is_empty(), "still running: {}", names(&left));
    assert!(port_free(port));
    let status = orch.status().await.expect("status");
    assert_eq!(status[0].state, ServiceState::Stopped, "{status:?}");

    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown answers");
    assert!(report.clean(), "{report:?}");
}
