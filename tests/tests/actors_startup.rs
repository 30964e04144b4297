//! Before a service spawns, with real processes: the install step (run only when
//! its marker is missing; a failure fails the service with its exit code and last
//! lines), a stale PID file (removed, its pid never signalled), a log-line probe,
//! one orchestrator per state directory, `Up` stopping again what it started when
//! another service fails, and the forced sweep.
#![cfg(unix)]

mod actors_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use actors_support::*;
use ringmaster::config::ServiceConfigBuilder;
use ringmaster::{Error, Options, Orchestrator, ServiceState};
use ringmaster_os::{project_id, PidRecord, Tag};
use ringmaster_tests::{fake_service, free_port, pid_alive, port_answers, PidGuard};

#[actix_rt::test]
async fn up_stops_again_what_it_started_when_another_service_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = free_port();
    let config = config(
        dir.path(),
        vec![
            svc("good", &format!("--listen {good}"))
                .port(good)
                .health_tcp(good),
            // Its install fails after `good` is long ready.
            svc("bad", "").install(
                "sleep 1; echo fetching; echo 'E: no such package' >&2; exit 7",
                None::<&str>,
            ),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    let res = timed(orch.up(None)).await;
    let reason = match res {
        Err(Error::ServiceFailed { service, reason }) => {
            assert_eq!(service, "bad");
            reason
        }
        other => panic!("up must fail with bad's install, got {other:?}"),
    };
    assert!(reason.contains("exit code 7"), "{reason}");
    assert!(
        reason.contains("E: no such package"),
        "the last lines: {reason}"
    );
    let good_pid = match seen.of("good", is_spawned)[0].event.kind {
        ringmaster::messages::EventKind::Spawned { pid } => pid.expect("pid"),
        _ => unreachable!("filtered on Spawned"),
    };
    guard.add(good_pid);
    assert!(
        !seen.of("good", is_stopped).is_empty(),
        "good was stopped again"
    );
    assert!(!pid_alive(good_pid));
    assert!(port_free(good));
    let status = orch.status().await.expect("status");
    assert_eq!(status[0].state, ServiceState::Failed, "{status:?}");
    assert_eq!(status[1].state, ServiceState::Stopped, "{status:?}");
    assert!(seen.first("bad", is_spawned).is_none());
    timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
}

#[actix_rt::test]
async fn install_runs_only_while_its_marker_is_missing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let make = || {
        config(
            dir.path(),
            vec![
                svc("app", "").install("echo installing; mkdir node_modules", Some("node_modules"))
            ],
        )
    };
    for round in 0..2 {
        let orch = Orchestrator::start(make(), Options::default()).expect("starts");
        let seen = record(&orch, None);
        let guard = PidGuard::new();
        timed(orch.up(None)).await.expect("up");
        guard.add(orch.status().await.expect("status")[0].pid.expect("pid"));
        let installed = seen.lines().iter().any(|l| l.line == "installing");
        assert_eq!(installed, round == 0, "round {round}");
        assert!(dir.path().join("node_modules").is_dir());
        let report = timed(orch.shutdown(Duration::from_secs(10)))
            .await
            .expect("shutdown");
        assert!(report.clean(), "{report:?}");
    }
}

// The stranger is killed by the guard and reaped by the orchestrator (a subreaper
// reaping by pid), not waited on.
#[allow(clippy::zombie_processes)]
#[actix_rt::test]
async fn a_stale_pid_file_is_removed_and_its_pid_left_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let guard = PidGuard::new();
    // A stranger that happens to have the pid the file names.
    let stranger = Command::new(fake_service())
        .stdout(Stdio::null())
        .spawn()
        .expect("stranger starts");
    guard.add(stranger.id());
    let config = config(dir.path(), vec![svc("api", "")]);
    let state_dir = config.settings.state_dir.clone();
    std::fs::create_dir_all(&state_dir).expect("state dir");
    let pid_file = config.services["api"].pid_file.clone();
    let record = PidRecord {
        pid: stranger.id(),
        start_time: 1, // not the stranger's: the file is stale
        exe: None,
        service: "api".into(),
        tag: Tag::new(project_id(&state_dir), "api").env_value(),
        owner_pid: 1,
    };
    ringmaster_os::write_pid_file(&pid_file, &record).expect("PID file written");

    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    timed(orch.up(None)).await.expect("up");
    // The PID file names the spawned root (`root_pid`; `pid` is the program it runs).
    let pid = orch.status().await.expect("status")[0]
        .root_pid
        .expect("the root runs");
    guard.add(pid);
    assert!(
        pid_alive(stranger.id()),
        "a stale PID file's pid is never signalled"
    );
    // The new PID file names the new process (it is written right after the spawn).
    until("the new PID file", LONG, || {
        matches!(
            ringmaster_os::read_pid_file(&pid_file),
            Ok(ringmaster_os::PidFileState::Live(r, _)) if r.pid == pid
        )
    })
    .await;
    timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(pid_alive(stranger.id()));
    assert!(!pid_file.exists());
}

#[actix_rt::test]
async fn a_log_line_makes_a_service_ready() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(
        dir.path(),
        vec![
            ServiceConfigBuilder::new(
                "worker",
                "echo booting; sleep 0.4; echo 'worker ready: 4 threads'; exec sleep 60",
            )
            .health_log("ready: \\d+ threads"),
            svc("after", "").depends_on("worker"),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up");
    for s in orch.status().await.expect("status") {
        guard.add(s.pid.expect("pid"));
    }
    // Ready because of the line: not before it arrived (the line reaches the
    // subscribers at the moment it reaches the log probe).
    let line = seen
        .line_at("worker", |l| l.starts_with("worker ready"))
        .expect("the line was seen");
    let booting = seen
        .line_at("worker", |l| l == "booting")
        .expect("booting seen");
    let ready = seen.first("worker", is_ready).expect("ready");
    assert!(ready >= line, "ready before its line: {:?}", seen.events());
    assert!(ready >= booting);
    assert!(seen.first("after", is_spawned).expect("after spawned") >= line);
    assert!(seen.index("worker", is_ready) < seen.index("after", is_spawned));
    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
}

#[actix_rt::test]
async fn one_orchestrator_per_state_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = Orchestrator::start(config(dir.path(), vec![svc("a", "")]), Options::default())
        .expect("the first takes the lock");
    match Orchestrator::start(config(dir.path(), vec![svc("a", "")]), Options::default()) {
        Err(Error::Os(ringmaster_os::Error::AlreadyRunning { pid, .. })) => {
            assert_eq!(pid, std::process::id())
        }
        Err(e) => panic!("expected AlreadyRunning, got {e}"),
        Ok(_) => panic!("a second orchestrator on the same state directory must be refused"),
    }
    timed(first.shutdown(Duration::from_secs(5)))
        .await
        .expect("shutdown");
    Orchestrator::start(config(dir.path(), vec![svc("a", "")]), Options::default())
        .expect("free again after the shutdown");
}

#[actix_rt::test]
async fn the_sweep_stops_every_tagged_process_and_frees_the_ports() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (free_port(), free_port());
    let config = config(
        dir.path(),
        vec![
            svc("a", &format!("--listen {a} --children 2"))
                .port(a)
                .health_tcp(a),
            svc("b", &format!("--listen {b} --daemon"))
                .port(b)
                .health_tcp(b),
        ],
    );
    let state_dir = config.settings.state_dir.clone();
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up");
    let tagged = |svc: &str| {
        let tag = Tag::new(project_id(&state_dir), svc);
        let table = ringmaster_os::process::snapshot().expect("table");
        ringmaster_os::process::members(&table, None, None, Some(&tag))
            .iter()
            .map(|p| p.pid)
            .collect::<Vec<u32>>()
    };
    let before: Vec<u32> = tagged("a").into_iter().chain(tagged("b")).collect();
    before.iter().for_each(|p| guard.add(*p));
    assert!(
        before.len() >= 5,
        "roots, two children, a daemon: {before:?}"
    );

    let report = timed(orch.sweep()).await.expect("sweep");
    for p in &before {
        assert!(!pid_alive(*p), "pid {p} survived the sweep");
        assert!(
            report.stopped.iter().any(|s| s.pid == *p),
            "{p} not reported: {report:?}"
        );
    }
    assert!(
        report.refused.is_empty() && report.ports_still_held.is_empty(),
        "{report:?}"
    );
    assert!(!port_answers(a) && !port_answers(b));
    timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown after a sweep");
}
