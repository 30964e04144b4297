//! Hangs on TERM, with real processes: dependents stop before their
//! dependencies, a member that ignores TERM is killed after the service's stop
//! timeout, the whole cascade keeps its deadline, and the report names who needed
//! the kill. In the library; several hangs at once through the real binary are in
//! `fault_hang_on_term_cli.rs`.
#![cfg(unix)]

mod actors_support;

use std::time::{Duration, Instant};

use actors_support::*;
use ringmaster::{Options, Orchestrator};
use ringmaster_tests::{free_port, pid_alive, PidGuard};

/// The pids a fake-service printed as `pid <role> <pid>`.
fn printed_pids(seen: &Recording, service: &str, role: &str) -> Vec<u32> {
    seen.lines()
        .iter()
        .filter(|l| l.service == service)
        .filter_map(|l| {
            let mut w = l.line.split_whitespace();
            (w.next() == Some("pid") && w.next() == Some(role))
                .then(|| w.next().and_then(|p| p.parse().ok()))
                .flatten()
        })
        .collect()
}

#[actix_rt::test]
async fn dependents_stop_before_their_dependencies() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (db, api, web, side) = (free_port(), free_port(), free_port(), free_port());
    let config = config(
        dir.path(),
        vec![
            svc("db", &format!("--listen {db}")).port(db).health_tcp(db),
            svc("api", &format!("--listen {api} --http"))
                .port(api)
                .depends_on("db")
                .health_http(format!("http://127.0.0.1:{api}/health")),
            svc("web", &format!("--listen {web} --http --children 2"))
                .port(web)
                .depends_on("api")
                .health_http(format!("http://127.0.0.1:{web}/")),
            svc("side", &format!("--listen {side}"))
                .port(side)
                .health_tcp(side),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up");
    until("web's children printed", LONG, || {
        printed_pids(&seen, "web", "child").len() == 2
    })
    .await;
    let mut pids: Vec<u32> = printed_pids(&seen, "web", "child");
    for s in orch.status().await.expect("status") {
        pids.push(s.pid.expect("pid"));
    }
    pids.iter().for_each(|p| guard.add(*p));

    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    let stopped = |n: &str| {
        seen.index(n, is_stopped)
            .unwrap_or_else(|| panic!("{n} stopped"))
    };
    assert!(stopped("web") < stopped("api"), "web must stop before api");
    assert!(stopped("api") < stopped("db"), "api must stop before db");
    // `side` depends on nothing: it stops with the first level, before `api`.
    assert!(stopped("side") < stopped("api"));
    for p in pids {
        assert!(!pid_alive(p), "pid {p} survived the shutdown");
    }
    for p in [db, api, web, side] {
        assert!(port_free(p), "port {p} still answers");
    }
    for s in &report.services {
        assert_eq!(s.port_free, Some(true), "{s:?}");
        assert!(s.graceful(), "{s:?}");
    }
}

#[actix_rt::test]
async fn a_member_ignoring_term_is_killed_after_the_stop_timeout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let config = config(
        dir.path(),
        vec![svc(
            "stubborn",
            &format!("--listen {port} --children 1 --children-ignore-term"),
        )
        .port(port)
        .health_tcp(port)
        .stop_timeout(Duration::from_millis(800))],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up");
    until("the child printed", LONG, || {
        printed_pids(&seen, "stubborn", "child").len() == 1
    })
    .await;
    let child = printed_pids(&seen, "stubborn", "child")[0];
    guard.add(child);
    let root = orch.status().await.expect("status")[0].pid.expect("pid");
    guard.add(root);

    let started = Instant::now();
    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    let took = started.elapsed();
    assert!(!pid_alive(child) && !pid_alive(root));
    assert!(port_free(port));
    let s = &report.services[0];
    assert!(
        s.report.killed.iter().any(|p| p.pid == child),
        "the TERM-ignoring child must be reported as killed: {s:?}"
    );
    assert!(!s.graceful() && report.clean(), "{report:?}");
    assert!(
        took >= Duration::from_millis(800),
        "the kill came before the stop timeout: {took:?}"
    );
    assert!(took < Duration::from_secs(8), "the stop took {took:?}");
    assert!(!report.deadline_hit);
}

#[actix_rt::test]
async fn the_cascade_keeps_its_deadline_and_names_who_needed_the_kill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (free_port(), free_port());
    let config = config(
        dir.path(),
        vec![
            // Both ignore TERM and would get 30 s each; the deadline is 1.5 s.
            svc("base", &format!("--listen {a} --ignore-term"))
                .port(a)
                .health_tcp(a)
                .stop_timeout(Duration::from_secs(30)),
            svc("top", &format!("--listen {b} --ignore-term"))
                .port(b)
                .health_tcp(b)
                .depends_on("base")
                .stop_timeout(Duration::from_secs(30)),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let _seen = record(&orch, None);
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up");
    let pids = guard_running(&orch, &guard).await;

    let deadline = Duration::from_millis(1500);
    let started = Instant::now();
    let report = timed(orch.shutdown(deadline)).await.expect("shutdown");
    let took = started.elapsed();
    assert!(report.deadline_hit, "{report:?}");
    // The deadline plus the kill's own short wait, not 2 × 30 s.
    assert!(
        took < deadline + Duration::from_secs(3),
        "shutdown took {took:?}"
    );
    for p in &pids {
        assert!(!pid_alive(*p), "pid {p} survived");
    }
    assert!(port_free(a) && port_free(b));
    for s in &report.services {
        assert!(
            !s.report.killed.is_empty(),
            "{} needed the kill: {s:?}",
            s.name
        );
    }
    assert!(report.clean());
}
