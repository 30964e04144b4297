//! A service is its processes, not its first pid: a root that dies under a live
//! child is noticed and what is left of the service is stopped; a child that dies
//! under a live shell is never shown as the service's pid; a launcher that exits 0
//! and leaves a daemon behind keeps the service running until the daemon's last
//! process is gone — also when the daemon wrote its title over its environment
//! (as nginx and redis do), so that its tag cannot be read; `follow_daemon = false`
//! makes such an exit a completed one-shot job. Everything is checked against the
//! OS afterwards: who is alive, who holds the port.
#![cfg(target_os = "linux")]

mod actors_support;

use std::time::Duration;

use actors_support::*;
use ringmaster::config::{Condition, RestartPolicy, ServiceConfigBuilder};
use ringmaster::messages::EventKind;
use ringmaster::{Options, Orchestrator, ServiceState, ServiceStatus};
use ringmaster_os::process::{members, snapshot};
use ringmaster_os::{project_id, Tag};
use ringmaster_tests::{comm, free_port, kill_pid, pid_alive, port_answers, PidGuard};

async fn status_of(orch: &Orchestrator, name: &str) -> ServiceStatus {
    timed(orch.status())
        .await
        .expect("status")
        .into_iter()
        .find(|s| s.name == name)
        .expect("the service is in the status")
}

/// Every live process carrying the tag of `service` in the state dir `dir/state`.
fn tagged(dir: &std::path::Path, service: &str) -> Vec<u32> {
    let tag = Tag::new(project_id(&dir.join("state")), service);
    let table = snapshot().expect("a process table");
    members(&table, None, None, Some(&tag))
        .iter()
        .map(|p| p.pid)
        .collect()
}

#[actix_rt::test]
async fn a_shell_root_killed_under_a_live_child_is_noticed_and_the_child_is_stopped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = free_port();
    // `; echo` keeps the shell from exec'ing the program: the root is `sh`.
    let command = format!("{}; echo after", fake(&format!("--listen {p} --http")));
    let config = config(
        dir.path(),
        vec![ServiceConfigBuilder::new("api", command)
            .port(p)
            .health_http(format!("http://127.0.0.1:{p}/"))
            .restart(RestartPolicy::OnFailure)
            .backoff(Duration::from_millis(100))
            .stop_timeout(Duration::from_secs(5))],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("ready");

    let s = status_of(&orch, "api").await;
    let root = s.root_pid.expect("the shell root runs");
    let main = s.pid.expect("a main pid");
    guard.add(root);
    guard.add(main);
    assert_eq!(comm(root), "sh", "{s:?}");
    assert_ne!(main, root, "the pid shown is the program behind the shell");
    assert_eq!(comm(main), "fake-service");
    assert!(
        s.members
            .iter()
            .any(|m| m.pid == main && m.ports.contains(&p)),
        "members list the port holder with its port: {s:?}"
    );

    kill_pid(root);
    until("the root's exit is reported", LONG, || {
        !seen.of("api", is_exited).is_empty()
    })
    .await;
    let exit = seen.of("api", is_exited)[0].event.kind.clone();
    assert_eq!(exit, EventKind::Exited { code: None }, "killed by a signal");
    // What was left of the service (the program) was stopped, not adopted.
    until("the orphaned program is gone", LONG, || !pid_alive(main)).await;
    until("api restarted and ready", LONG, || {
        seen.of("api", is_ready).len() >= 2
    })
    .await;
    let again = status_of(&orch, "api").await;
    assert_eq!(again.state, ServiceState::Ready);
    assert_eq!(again.restarts, 1);
    let new_main = again.pid.expect("a new main pid");
    guard.add(new_main);
    assert_ne!(new_main, main);
    assert!(pid_alive(new_main) && port_answers(p));

    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    assert!(tagged(dir.path(), "api").is_empty());
    assert!(!port_answers(p));
}

#[actix_rt::test]
async fn a_child_killed_under_a_live_shell_is_never_shown_and_its_probe_restarts_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = free_port();
    // The shell outlives the program: it sleeps on after it.
    let command = format!("{}; sleep 600", fake(&format!("--listen {p} --http")));
    let config = config(
        dir.path(),
        vec![ServiceConfigBuilder::new("api", command)
            .port(p)
            .health_http(format!("http://127.0.0.1:{p}/"))
            .health_interval(Duration::from_millis(200))
            .health_failures(2)
            .restart(RestartPolicy::OnFailure)
            .backoff(Duration::from_millis(100))
            .stop_timeout(Duration::from_secs(5))],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("ready");
    let s = status_of(&orch, "api").await;
    let (root, main) = (s.root_pid.expect("root"), s.pid.expect("main"));
    guard.add(root);
    guard.add(main);
    assert_ne!(root, main);

    kill_pid(main);
    until("the program is gone", LONG, || !pid_alive(main)).await;
    // From now on the dead pid is never the one shown.
    let s = status_of(&orch, "api").await;
    assert_ne!(
        s.pid,
        Some(main),
        "a dead pid shown as the service's: {s:?}"
    );
    assert!(s.members.iter().all(|m| m.pid != main));
    until("api restarted by its probe", LONG, || {
        seen.of("api", is_ready).len() >= 2
    })
    .await;
    assert!(
        !seen
            .of("api", |k| matches!(k, EventKind::Unhealthy { .. }))
            .is_empty(),
        "the probe found it unhealthy: {:?}",
        seen.events()
    );
    let s = status_of(&orch, "api").await;
    assert!(s.pid.is_some_and(pid_alive) && port_answers(p), "{s:?}");
    assert!(
        !pid_alive(root),
        "the old shell was stopped with the restart"
    );

    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    assert!(tagged(dir.path(), "api").is_empty());
}

/// A launcher that starts `fake-service ARGS` in a new session and exits 0 at once.
fn daemonizing(args: &str) -> String {
    format!("setsid -f {} > /dev/null 2>&1", fake(args))
}

async fn daemon_case(wipe_env: bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (p, w) = (free_port(), free_port());
    let wipe = if wipe_env { " --wipe-env" } else { "" };
    let config = config(
        dir.path(),
        vec![
            ServiceConfigBuilder::new("db", daemonizing(&format!("--listen {p} --http{wipe}")))
                .port(p)
                .health_http(format!("http://127.0.0.1:{p}/"))
                .restart(RestartPolicy::OnFailure)
                .backoff(Duration::from_millis(100))
                .stop_timeout(Duration::from_secs(5)),
            svc("web", &format!("--listen {w}"))
                .port(w)
                .health_tcp(w)
                .depends_on("db"),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    timed(orch.up(None))
        .await
        .expect("the daemon's dependent starts: the service did not complete");

    until("db daemonized", LONG, || {
        !seen
            .of("db", |k| matches!(k, EventKind::Daemonized { .. }))
            .is_empty()
    })
    .await;
    let daemonized = seen.of("db", |k| matches!(k, EventKind::Daemonized { .. }));
    assert_eq!(daemonized.len(), 1, "said once: {:?}", seen.events());
    let EventKind::Daemonized { pid: Some(daemon) } = daemonized[0].event.kind else {
        panic!("the daemon's pid is named: {:?}", daemonized[0]);
    };
    guard.add(daemon);
    assert_eq!(comm(daemon), "fake-service");
    assert!(seen.of("db", is_exited).is_empty(), "{:?}", seen.events());
    let s = status_of(&orch, "db").await;
    assert_eq!(s.state, ServiceState::Ready);
    assert!(s.daemonized, "{s:?}");
    assert_eq!(s.pid, Some(daemon), "{s:?}");
    assert_eq!(s.root_pid, None, "the launcher is gone: {s:?}");
    assert!(s
        .members
        .iter()
        .any(|m| m.pid == daemon && m.ports == vec![p]));
    if wipe_env {
        assert!(
            tagged(dir.path(), "db").is_empty(),
            "the daemon's tag cannot be read: this case tests the other link"
        );
    }

    // The daemon dies: noticed, handled by the restart policy.
    kill_pid(daemon);
    until("the daemon's end is reported", LONG, || {
        !seen.of("db", is_exited).is_empty()
    })
    .await;
    assert_eq!(
        seen.of("db", is_exited)[0].event.kind,
        EventKind::Exited { code: None }
    );
    until("db daemonized again and ready", LONG, || {
        seen.of("db", |k| matches!(k, EventKind::Daemonized { .. }))
            .len()
            == 2
            && seen.of("db", is_ready).len() >= 2
    })
    .await;
    let s = status_of(&orch, "db").await;
    let new_daemon = s.pid.expect("a new daemon");
    guard.add(new_daemon);
    assert_ne!(new_daemon, daemon);
    assert_eq!(s.restarts, 1);
    assert!(port_answers(p));

    // The cascade stops the daemon too: nothing left, the port free.
    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    let db = report.services.iter().find(|r| r.name == "db").expect("db");
    assert!(
        db.report.signalled.iter().any(|b| b.pid == new_daemon),
        "the daemon was stopped by the cascade: {db:?}"
    );
    assert!(!pid_alive(new_daemon));
    assert!(!port_answers(p) && !port_answers(w));
    assert!(tagged(dir.path(), "db").is_empty());
}

#[actix_rt::test]
async fn a_launcher_that_daemonizes_keeps_the_service_running_until_the_daemon_is_gone() {
    daemon_case(false).await;
}

#[actix_rt::test]
async fn a_daemon_that_wrote_over_its_environment_is_still_followed() {
    daemon_case(true).await;
}

#[actix_rt::test]
async fn follow_daemon_off_makes_a_clean_exit_complete_and_leaves_the_helper_to_the_stop() {
    let dir = tempfile::tempdir().expect("temp dir");
    let w = free_port();
    let config = config(
        dir.path(),
        vec![
            ServiceConfigBuilder::new("job", "sleep 600 > /dev/null 2>&1 & exit 0")
                .restart(RestartPolicy::Never)
                .follow_daemon(false),
            svc("web", &format!("--listen {w}"))
                .port(w)
                .health_tcp(w)
                .depends_on_condition("job", Condition::Completed),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    timed(orch.up(None)).await.expect("the job completed");
    assert_eq!(
        seen.of("job", is_exited)[0].event.kind,
        EventKind::Exited { code: Some(0) }
    );
    assert!(seen
        .of("job", |k| matches!(k, EventKind::Daemonized { .. }))
        .is_empty());
    let helper = tagged(dir.path(), "job");
    assert_eq!(helper.len(), 1, "the helper runs on: {helper:?}");
    let guard = PidGuard::new();
    guard.add(helper[0]);
    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    assert!(!pid_alive(helper[0]), "the stack's stop took the helper");
}

#[actix_rt::test]
async fn a_root_that_fails_while_its_children_live_stops_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(
        dir.path(),
        vec![ServiceConfigBuilder::new(
            "job",
            "sleep 600 > /dev/null 2>&1 & sleep 600 > /dev/null 2>&1 & sleep 0.3; exit 3",
        )
        // Ready at the spawn: the exit comes after `up`, not as a failed start.
        .start_window(Duration::ZERO)
        .restart(RestartPolicy::Never)],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    timed(orch.up(None)).await.expect("ready (no probe)");
    let children = tagged(dir.path(), "job");
    let guard = PidGuard::new();
    children.iter().for_each(|p| guard.add(*p));
    until("the exit is reported", LONG, || {
        !seen.of("job", is_exited).is_empty()
    })
    .await;
    assert_eq!(
        seen.of("job", is_exited)[0].event.kind,
        EventKind::Exited { code: Some(3) }
    );
    // Reported only once what was left is stopped.
    for pid in children {
        assert!(
            !pid_alive(pid),
            "{pid} ({}) outlived the failure",
            comm(pid)
        );
    }
    let s = status_of(&orch, "job").await;
    assert_eq!(s.pid, None, "{s:?}");
    assert!(s.members.is_empty());
    timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
}

/// The embedding program's own orphans are re-parented to it too (it is the
/// subreaper); one that appears while a service's launcher runs is not the
/// service's daemon and is never claimed, listed or stopped.
#[actix_rt::test]
async fn an_orphan_of_the_embedding_program_is_never_taken_for_a_daemon() {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = free_port();
    let launcher = format!(
        "sleep 1; setsid -f {} > /dev/null 2>&1",
        fake(&format!("--listen {p} --http --wipe-env"))
    );
    let config = config(
        dir.path(),
        vec![ServiceConfigBuilder::new("db", launcher)
            .port(p)
            .health_http(format!("http://127.0.0.1:{p}/"))
            .stop_timeout(Duration::from_secs(5))],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    let starting = orch.clone();
    let up = actix_rt::spawn(async move { starting.up(None).await });
    until("the launcher runs", LONG, || {
        !seen.of("db", is_spawned).is_empty()
    })
    .await;
    // While the launcher sleeps, the program starts a daemon of its own.
    let pid_file = dir.path().join("own.pid");
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "setsid -f sh -c 'echo $$ > {}; exec sleep 600' > /dev/null 2>&1",
            pid_file.display()
        ))
        .status()
        .expect("the program's own daemon starts");
    let mut own = None;
    until("the program's daemon wrote its pid", LONG, || {
        own = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok());
        own.is_some()
    })
    .await;
    let own = own.expect("pid");
    guard.add(own);
    timed(up).await.expect("joined").expect("db ready");
    until("db daemonized", LONG, || {
        !seen
            .of("db", |k| matches!(k, EventKind::Daemonized { .. }))
            .is_empty()
    })
    .await;
    assert!(
        seen.of("db", |k| matches!(k, EventKind::Daemonized { .. }))[0].at
            > seen.of("db", is_spawned)[0].at
    );
    let s = status_of(&orch, "db").await;
    s.members.iter().for_each(|m| guard.add(m.pid));
    assert!(s.daemonized, "{s:?}");
    assert!(
        s.members.iter().all(|m| m.pid != own),
        "the program's own daemon is not db's: {s:?}"
    );
    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    assert!(
        pid_alive(own),
        "the program's own daemon was stopped with db"
    );
    assert!(!port_answers(p));
    kill_pid(own);
}
