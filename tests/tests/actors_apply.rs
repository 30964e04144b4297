//! A stack that changes while it runs (`Orchestrator::apply`, `add_service`,
//! `remove_service`), checked against the OS: a removed service's processes are
//! gone and its port is free; a changed one runs under a new pid, its dependent
//! too; an unchanged one keeps its pid, its probe and its restart count; a
//! refused change leaves every process as it was.
#![cfg(unix)]

mod actors_support;

use std::time::Duration;

use actors_support::*;
use ringmaster::change::Action;
use ringmaster::config::{Config, RestartPolicy, ServiceConfigBuilder};
use ringmaster::messages::EventKind;
use ringmaster::{Error, Options, Orchestrator, ServiceState, ServiceStatus};
use ringmaster_tests::{free_port, pid_alive, port_answers, PidGuard};

fn find<'a>(list: &'a [ServiceStatus], name: &str) -> &'a ServiceStatus {
    list.iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("`{name}` listed: {list:?}"))
}

fn action(report: &ringmaster::change::ApplyReport, name: &str) -> Action {
    report
        .services
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("`{name}` in the report: {report:?}"))
        .action
}

/// Every pid of the service's members (the census), registered with `guard`.
fn members(s: &ServiceStatus, guard: &PidGuard) -> Vec<u32> {
    let pids: Vec<u32> = s.members.iter().map(|m| m.pid).collect();
    pids.iter().for_each(|p| guard.add(*p));
    pids
}

struct Ports {
    keep: u16,
    gone: u16,
    change: u16,
    dep: u16,
    new: u16,
}

fn stack(dir: &std::path::Path, p: &Ports, second: bool) -> Config {
    let keep = svc("keep", &format!("--listen {} --http", p.keep))
        .port(p.keep)
        .health_http(format!("http://127.0.0.1:{}/health", p.keep))
        .health_interval(Duration::from_millis(200));
    let change_args = if second {
        format!("--listen {} --print-pids", p.change)
    } else {
        format!("--listen {}", p.change)
    };
    let change = svc("change", &change_args)
        .port(p.change)
        .health_tcp(p.change);
    let dep = dependent("dep", "change", p.dep);
    let mut services = vec![keep, change, dep];
    if second {
        services.push(dependent("new", "keep", p.new));
    } else {
        services.push(
            svc("gone", &format!("--listen {} --children 2", p.gone))
                .port(p.gone)
                .health_tcp(p.gone),
        );
    }
    config(dir, services)
}

#[actix_rt::test]
async fn apply_adds_removes_restarts_and_leaves_the_rest_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = Ports {
        keep: free_port(),
        gone: free_port(),
        change: free_port(),
        dep: free_port(),
        new: free_port(),
    };
    let orch =
        Orchestrator::start(stack(dir.path(), &p, false), Options::default()).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up");
    until_async("gone's children", LONG, || async {
        let s = orch.status().await.expect("status");
        find(&s, "gone").members.len() >= 3
    })
    .await;
    let before = orch.status().await.expect("status");
    let gone_pids = members(find(&before, "gone"), &guard);
    let keep_pid = find(&before, "keep").pid.expect("keep runs");
    let keep_ticks = start_ticks(keep_pid);
    let change_pid = find(&before, "change").pid.expect("change runs");
    let dep_pid = find(&before, "dep").pid.expect("dep runs");
    members(find(&before, "keep"), &guard);
    members(find(&before, "change"), &guard);
    members(find(&before, "dep"), &guard);
    // What it would do, first: the same report, and nothing changes.
    let preview = timed(orch.preview(stack(dir.path(), &p, true)))
        .await
        .expect("preview");
    assert!(preview.preview, "{preview}");
    assert_eq!(action(&preview, "dep"), Action::Restarted, "{preview}");
    assert_eq!(action(&preview, "gone"), Action::Removed, "{preview}");
    let unchanged = orch.status().await.expect("status");
    for n in ["keep", "gone", "change", "dep"] {
        assert_eq!(find(&unchanged, n).pid, find(&before, n).pid, "{n}");
    }
    let events_before = seen.events().len();

    let result = actix_rt::time::timeout(LONG, orch.apply(stack(dir.path(), &p, true))).await;
    let after = orch.status().await.expect("status");
    after
        .iter()
        .filter_map(|s| s.pid)
        .for_each(|p| guard.add(p));
    let report = match result {
        Ok(Ok(report)) => report,
        other => {
            let _ = timed(orch.shutdown(Duration::from_secs(20))).await;
            panic!("apply: {other:?}");
        }
    };
    assert_eq!(report.failed, None, "{report}");
    assert_eq!(action(&report, "keep"), Action::Unchanged, "{report}");
    assert_eq!(action(&report, "gone"), Action::Removed, "{report}");
    assert_eq!(action(&report, "change"), Action::Restarted, "{report}");
    assert_eq!(action(&report, "dep"), Action::Restarted, "{report}");
    assert_eq!(action(&report, "new"), Action::Added, "{report}");
    let change_line = report.services.iter().find(|s| s.name == "change").unwrap();
    assert_eq!(change_line.keys, vec!["command".to_string()], "{report}");
    let dep_line = report.services.iter().find(|s| s.name == "dep").unwrap();
    assert!(
        dep_line
            .because
            .as_deref()
            .is_some_and(|b| b.contains("`change`")),
        "{report}"
    );

    // Removed: its whole tree is gone, its port free, it is no service any more.
    for pid in &gone_pids {
        assert!(!pid_alive(*pid), "gone's pid {pid} still alive");
    }
    assert!(port_free(p.gone), "gone's port is free");
    assert!(after.iter().all(|s| s.name != "gone"), "{after:?}");
    // Changed: new pids, the old ones gone; the dependent was restarted after it.
    let new_change = find(&after, "change").pid.expect("change runs");
    let new_dep = find(&after, "dep").pid.expect("dep runs");
    assert_ne!(new_change, change_pid);
    assert_ne!(new_dep, dep_pid);
    assert!(!pid_alive(change_pid) && !pid_alive(dep_pid));
    // Added: ready, answering on its port.
    assert_eq!(find(&after, "new").state, ServiceState::Ready, "{after:?}");
    assert!(port_answers(p.new));
    // Unchanged: same process, never stopped, probe still on its schedule.
    assert_eq!(find(&after, "keep").pid, Some(keep_pid));
    assert_eq!(start_ticks(keep_pid), keep_ticks);
    assert_eq!(find(&after, "keep").restarts, 0);
    assert_eq!(find(&after, "keep").state, ServiceState::Ready);
    let keep_events: Vec<_> = seen.events()[events_before..]
        .iter()
        .filter(|s| s.event.name == "keep")
        .cloned()
        .collect();
    assert!(keep_events.is_empty(), "keep was touched: {keep_events:?}");
    // A launch (or a new watch) would have cleared what its probe said last.
    assert_eq!(
        find(&after, "keep").health.as_deref(),
        Some("ok"),
        "{after:?}"
    );
    assert!(
        find(&after, "keep").health_latency_ms.is_some(),
        "{after:?}"
    );
    // The events say what changed, in order: dep stopped before change.
    assert!(!seen.of("gone", |k| *k == EventKind::Removed).is_empty());
    assert!(!seen.of("new", |k| *k == EventKind::Added).is_empty());
    assert!(!seen
        .of("change", |k| matches!(
            k,
            EventKind::Reconfigured { restart: true, .. }
        ))
        .is_empty());
    let stops: Vec<String> = seen.events()[events_before..]
        .iter()
        .filter(|s| is_stopped(&s.event.kind))
        .map(|s| s.event.name.clone())
        .collect();
    let pos = |n: &str| {
        stops
            .iter()
            .position(|s| s == n)
            .unwrap_or_else(|| panic!("`{n}` stopped: {stops:?}"))
    };
    assert!(pos("dep") < pos("change"), "dependent first: {stops:?}");

    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report}");
    for port in [p.keep, p.change, p.dep, p.new] {
        assert!(port_free(port));
    }
}

#[actix_rt::test]
async fn a_change_that_cannot_be_made_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (db, api) = (free_port(), free_port());
    let cfg = config(
        dir.path(),
        vec![
            svc("db", &format!("--listen {db}")).port(db).health_tcp(db),
            dependent("api", "db", api),
        ],
    );
    let orch = Orchestrator::start(cfg, Options::default()).expect("starts");
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up");
    let pids = guard_running(&orch, &guard).await;

    // db is still named by api's depends_on.
    let err = timed(orch.remove_service("db")).await.expect_err("refused");
    assert!(
        matches!(&err, Error::Rejected(t) if t.contains("`api` depends on `db`")),
        "{err}"
    );
    // A name that is taken; a port that is another service's; an unknown dependency.
    let taken = svc("api", "--listen 0");
    let other_port = svc("x", "--listen 0").port(db);
    let unknown = svc("y", "--listen 0").depends_on("nowhere");
    for (what, b) in [("taken", taken), ("port", other_port), ("unknown", unknown)] {
        let one = Config::builder(dir.path())
            .state_dir(dir.path().join("state"))
            .external("db")
            .external("nowhere")
            .service(b)
            .build()
            .expect("valid alone");
        let def = one.services.values().next().expect("one").clone();
        let err = timed(orch.add_service(def)).await.expect_err(what);
        assert!(matches!(err, Error::Rejected(_)), "{what}: {err}");
    }
    // A configuration that removes db while api still needs it: the library
    // refuses it as a whole (a file would not even load).
    let mut without_db = config(
        dir.path(),
        vec![
            svc("db", &format!("--listen {db}")).port(db).health_tcp(db),
            dependent("api", "db", api),
        ],
    );
    without_db.services.remove("db");
    let err = timed(orch.apply(without_db)).await.expect_err("refused");
    assert!(
        matches!(&err, Error::Rejected(t) if t.contains("which this change removes")),
        "{err}"
    );

    let now = guard_running(&orch, &guard).await;
    assert_eq!(pids, now, "nothing was restarted");
    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report}");
}

#[actix_rt::test]
async fn a_bot_adds_a_helper_and_removes_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (api, helper) = (free_port(), free_port());
    let cfg = config(
        dir.path(),
        vec![svc("api", &format!("--listen {api}"))
            .port(api)
            .health_tcp(api)],
    );
    let orch = Orchestrator::start(cfg, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up");
    let api_pid = guard_running(&orch, &guard).await;

    let one = Config::builder(dir.path())
        .state_dir(dir.path().join("state"))
        .external("api")
        .service(dependent("helper", "api", helper).env("ROLE", "helper"))
        .build()
        .expect("valid");
    let report = timed(orch.add_service(one.services["helper"].clone()))
        .await
        .expect("added");
    assert_eq!(action(&report, "helper"), Action::Added, "{report}");
    let status = orch.status().await.expect("status");
    let helper_members = members(find(&status, "helper"), &guard);
    assert_eq!(find(&status, "helper").state, ServiceState::Ready);
    assert!(port_answers(helper));
    assert!(!seen.of("helper", is_ready).is_empty());

    let report = timed(orch.remove_service("helper")).await.expect("removed");
    assert_eq!(action(&report, "helper"), Action::Removed, "{report}");
    for pid in &helper_members {
        assert!(!pid_alive(*pid), "helper's pid {pid} still alive");
    }
    assert!(port_free(helper));
    let status = orch.status().await.expect("status");
    assert!(status.iter().all(|s| s.name != "helper"), "{status:?}");
    assert_eq!(guard_running(&orch, &guard).await, api_pid, "api untouched");
    // A file reload leaves a service added on its own alone.
    let again = timed(orch.add_service(one.services["helper"].clone()))
        .await
        .expect("added again");
    assert_eq!(again.failed, None);
    let same = config(
        dir.path(),
        vec![svc("api", &format!("--listen {api}"))
            .port(api)
            .health_tcp(api)],
    );
    let report = timed(orch.apply(same)).await.expect("applied");
    assert!(report.is_noop(), "{report}");
    let status = orch.status().await.expect("status");
    assert_eq!(find(&status, "helper").state, ServiceState::Ready);
    status
        .iter()
        .filter_map(|s| s.pid)
        .for_each(|p| guard.add(p));

    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report}");
    assert!(port_free(api) && port_free(helper));
}

#[actix_rt::test]
async fn a_new_probe_takes_over_a_running_service_without_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (port, closed) = (free_port(), free_port());
    let base = |probe_port: u16| {
        svc("api", &format!("--listen {port}"))
            .port(port)
            .health_tcp(probe_port)
            .health_interval(Duration::from_millis(100))
            .health_failures(2)
            .restart(RestartPolicy::Never)
    };
    let orch = Orchestrator::start(config(dir.path(), vec![base(port)]), Options::default())
        .expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up");
    let pid = guard_running(&orch, &guard).await;

    // The new probe knocks on a port nothing listens on: the running service
    // turns unhealthy by it (its failures count at once), and is not restarted.
    let report = timed(orch.apply(config(dir.path(), vec![base(closed)])))
        .await
        .expect("applied");
    assert_eq!(action(&report, "api"), Action::Updated, "{report}");
    until("unhealthy by the new probe", LONG, || {
        !seen
            .of("api", |k| matches!(k, EventKind::Unhealthy { .. }))
            .is_empty()
    })
    .await;
    let status = orch.status().await.expect("status");
    assert_eq!(find(&status, "api").state, ServiceState::Unhealthy);
    assert_eq!(status.iter().filter_map(|s| s.pid).collect::<Vec<_>>(), pid);
    assert!(seen.of("api", is_spawned).len() == 1, "never respawned");

    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report}");
}

#[actix_rt::test]
async fn changes_wait_for_the_start_and_follow_one_another() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (slow, other, extra) = (free_port(), free_port(), free_port());
    let slow_svc = || {
        svc("slow", &format!("--listen {slow} --ready-after 3000"))
            .port(slow)
            .health_tcp(slow)
    };
    let other_svc = |args: &str| {
        svc("other", &format!("--listen {other} {args}"))
            .port(other)
            .health_tcp(other)
    };
    let first = config(dir.path(), vec![slow_svc(), other_svc("")]);
    let orch = Orchestrator::start(first, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    let up = up_in_background(&orch);
    until("slow spawned", LONG, || {
        !seen.of("slow", is_spawned).is_empty()
    })
    .await;

    // Two changes sent while `up` is still starting slow: both wait for the
    // start; the second is compared with what the first made.
    let add_extra = config(
        dir.path(),
        vec![
            slow_svc(),
            other_svc(""),
            svc("extra", &format!("--listen {extra}"))
                .port(extra)
                .health_tcp(extra),
        ],
    );
    let change_other = config(
        dir.path(),
        vec![
            slow_svc(),
            other_svc("--print-pids"),
            svc("extra", &format!("--listen {extra}"))
                .port(extra)
                .health_tcp(extra),
        ],
    );
    let (o1, o2) = (orch.clone(), orch.clone());
    let a = actix_rt::spawn(async move { o1.apply(add_extra).await });
    actix_rt::time::sleep(Duration::from_millis(20)).await;
    let b = actix_rt::spawn(async move { o2.apply(change_other).await });
    // Both were sent while slow was still starting (3 s is far longer than this).
    let now = orch.status_brief().await.expect("status");
    assert_ne!(find(&now, "slow").state, ServiceState::Ready, "{now:?}");
    let up_result = timed(up).await.expect("joined");
    let ra = timed(a).await.expect("joined");
    let rb = timed(b).await.expect("joined");
    let status = orch.status().await.expect("status");
    status
        .iter()
        .filter_map(|s| s.pid)
        .for_each(|p| guard.add(p));
    let shutdown = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    up_result.expect("up");
    let ra = ra.expect("first change");
    let rb = rb.expect("second change");
    assert_eq!(action(&ra, "extra"), Action::Added, "{ra}");
    assert_eq!(action(&rb, "extra"), Action::Unchanged, "{rb}");
    assert_eq!(action(&rb, "other"), Action::Restarted, "{rb}");
    // The start was over before the first change touched anything.
    let slow_ready = seen.index("slow", is_ready).expect("slow ready");
    let added = seen
        .index("extra", |k| *k == EventKind::Added)
        .expect("extra added");
    let reconfigured = seen
        .index("other", |k| matches!(k, EventKind::Reconfigured { .. }))
        .expect("other reconfigured");
    assert!(
        slow_ready < added && added < reconfigured,
        "{:?}",
        seen.events()
    );
    assert!(shutdown.clean(), "{shutdown}");
}

#[actix_rt::test]
async fn a_change_during_a_shutdown_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let slow_stop =
        ServiceConfigBuilder::new("api", fake(&format!("--listen {port} --ignore-term")))
            .port(port)
            .health_tcp(port)
            .stop_timeout(Duration::from_millis(800));
    let orch = Orchestrator::start(config(dir.path(), vec![slow_stop]), Options::default())
        .expect("starts");
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up");
    guard_running(&orch, &guard).await;
    let o = orch.clone();
    let down = actix_rt::spawn(async move { o.shutdown(Duration::from_secs(20)).await });
    // Stopping, or already stopped: a change is refused either way.
    until_async("the shutdown to begin", LONG, || async {
        orch.status_brief()
            .await
            .is_ok_and(|s| s[0].state != ServiceState::Ready)
    })
    .await;
    let err = timed(orch.remove_service("api"))
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::ShuttingDown), "{err}");
    let report = timed(down).await.expect("joined").expect("shutdown");
    assert!(port_free(port), "{report}");
}

#[actix_rt::test]
async fn a_restart_waiting_for_a_service_that_is_removed_answers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    // Ready while the marker exists: the restart below (marker gone) waits.
    let marker = dir.path().join("ok");
    std::fs::write(&marker, "").expect("marker");
    let slow = svc("slow", &format!("--listen {port}"))
        .port(port)
        .health_exec(format!("test -f '{}'", marker.display()));
    let orch =
        Orchestrator::start(config(dir.path(), vec![slow]), Options::default()).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up");
    guard_running(&orch, &guard).await;
    std::fs::remove_file(&marker).expect("marker removed");
    let o = orch.clone();
    let restart = actix_rt::spawn(async move { o.restart("slow").await });
    until("slow spawned again", LONG, || {
        seen.of("slow", is_spawned).len() == 2
    })
    .await;
    let status = orch.status().await.expect("status");
    status
        .iter()
        .filter_map(|s| s.pid)
        .for_each(|p| guard.add(p));
    let report = timed(orch.remove_service("slow")).await.expect("removed");
    assert_eq!(action(&report, "slow"), Action::Removed, "{report}");
    let answer = timed(restart).await.expect("joined");
    let err = answer.expect_err("the restart cannot end ready");
    assert!(err.to_string().contains("was removed"), "{err}");
    assert!(port_free(port));
    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report}");
}

/// A plugin that is ready at once and counts its stops.
struct Counter(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl actix::Actor for Counter {
    type Context = actix::Context<Self>;
}

impl actix::Handler<ringmaster::messages::Start> for Counter {
    type Result = ();
    fn handle(&mut self, start: ringmaster::messages::Start, _: &mut actix::Context<Self>) {
        start.events.report(EventKind::Spawned { pid: None });
        start.events.report(EventKind::Ready);
    }
}

impl actix::Handler<ringmaster::messages::Stop> for Counter {
    type Result = actix::MessageResult<ringmaster::messages::Stop>;
    fn handle(
        &mut self,
        _: ringmaster::messages::Stop,
        _: &mut actix::Context<Self>,
    ) -> Self::Result {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        actix::MessageResult(ringmaster::StopReport::default())
    }
}

#[actix_rt::test]
async fn a_plugin_joins_at_runtime_and_a_process_service_waits_for_it() {
    use actix::Actor;
    let dir = tempfile::tempdir().expect("temp dir");
    let (api, web) = (free_port(), free_port());
    let orch = Orchestrator::start(
        config(
            dir.path(),
            vec![svc("api", &format!("--listen {api}"))
                .port(api)
                .health_tcp(api)],
        ),
        Options::default(),
    )
    .expect("starts");
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up");
    guard_running(&orch, &guard).await;
    let stops = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let addr = Counter(stops.clone()).start();
    let plugin = ringmaster::plugin::PluginService::from_addr("cache", &addr).depends_on("api");
    let report = timed(orch.add_service(plugin)).await.expect("plugin added");
    assert_eq!(action(&report, "cache"), Action::Added, "{report}");
    // A process service added after it may depend on it.
    let one = Config::builder(dir.path())
        .state_dir(dir.path().join("state"))
        .external("cache")
        .service(dependent("web", "cache", web))
        .build()
        .expect("valid");
    timed(orch.add_service(one.services["web"].clone()))
        .await
        .expect("web added");
    let status = orch.status().await.expect("status");
    status
        .iter()
        .filter_map(|s| s.pid)
        .for_each(|p| guard.add(p));
    assert_eq!(find(&status, "cache").state, ServiceState::Ready);
    assert!(find(&status, "cache").plugin);
    assert_eq!(find(&status, "web").state, ServiceState::Ready);
    // Not while web depends on it; then web, then the plugin.
    assert!(timed(orch.remove_service("cache")).await.is_err());
    timed(orch.remove_service("web"))
        .await
        .expect("web removed");
    assert!(port_free(web));
    timed(orch.remove_service("cache"))
        .await
        .expect("cache removed");
    assert_eq!(
        stops.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "Stop once"
    );
    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report}");
    assert_eq!(stops.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[actix_rt::test]
async fn a_new_dependency_on_a_service_the_change_restarts_restarts_it_after() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (free_port(), free_port());
    let sa = || svc("a", &format!("--listen {a}")).port(a).health_tcp(a);
    let sb = |args: &str| {
        svc("b", &format!("--listen {b} {args}"))
            .port(b)
            .health_tcp(b)
    };
    let orch = Orchestrator::start(config(dir.path(), vec![sa(), sb("")]), Options::default())
        .expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up");
    let before = guard_running(&orch, &guard).await;
    let mark = seen.events().len();
    // a gains a dependency on b (in place alone), and b's command changes.
    let report = timed(orch.apply(config(
        dir.path(),
        vec![sa().depends_on("b"), sb("--print-pids")],
    )))
    .await
    .expect("applied");
    let after = guard_running(&orch, &guard).await;
    assert_eq!(action(&report, "b"), Action::Restarted, "{report}");
    assert_eq!(action(&report, "a"), Action::Restarted, "{report}");
    assert_ne!(before, after, "both run under new pids");
    let events = seen.events()[mark..].to_vec();
    let at = |name: &str, pred: fn(&EventKind) -> bool| {
        events
            .iter()
            .position(|s| s.event.name == name && pred(&s.event.kind))
            .unwrap_or_else(|| panic!("{name}: {events:?}"))
    };
    assert!(at("b", is_ready) < at("a", is_spawned), "{events:?}");
    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report}");
}

#[actix_rt::test]
async fn a_change_to_a_job_that_completed_leaves_its_dependents_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let api = free_port();
    let job = |text: &str| {
        ServiceConfigBuilder::new("migrate", format!("echo {text}")).restart(RestartPolicy::Never)
    };
    let api_svc = || {
        svc("api", &format!("--listen {api}"))
            .port(api)
            .health_tcp(api)
            .depends_on_condition("migrate", ringmaster::config::Condition::Completed)
    };
    let orch = Orchestrator::start(
        config(dir.path(), vec![job("one"), api_svc()]),
        Options::default(),
    )
    .expect("starts");
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up");
    let status = orch.status().await.expect("status");
    let api_pid = find(&status, "api").pid.expect("api runs");
    guard.add(api_pid);
    let report = timed(orch.apply(config(dir.path(), vec![job("two"), api_svc()])))
        .await
        .expect("applied");
    assert_eq!(action(&report, "migrate"), Action::Updated, "{report}");
    assert_eq!(action(&report, "api"), Action::Unchanged, "{report}");
    let status = orch.status().await.expect("status");
    assert_eq!(find(&status, "api").pid, Some(api_pid), "api untouched");
    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report}");
}

#[actix_rt::test]
async fn a_probe_removed_from_an_unhealthy_service_leaves_it_ready() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let marker = dir.path().join("ok");
    std::fs::write(&marker, "").expect("marker");
    let base = || {
        svc("api", &format!("--listen {port}"))
            .port(port)
            .restart(RestartPolicy::Never)
    };
    let probed = base()
        .health_exec(format!("test -f '{}'", marker.display()))
        .health_interval(Duration::from_millis(100))
        .health_failures(1);
    let orch =
        Orchestrator::start(config(dir.path(), vec![probed]), Options::default()).expect("starts");
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up");
    let pid = guard_running(&orch, &guard).await;
    std::fs::remove_file(&marker).expect("marker removed");
    until_async("unhealthy", LONG, || async {
        orch.status_brief()
            .await
            .is_ok_and(|s| s[0].state == ServiceState::Unhealthy)
    })
    .await;
    let report = timed(orch.apply(config(dir.path(), vec![base()])))
        .await
        .expect("applied");
    assert_eq!(action(&report, "api"), Action::Updated, "{report}");
    let status = orch.status().await.expect("status");
    assert_eq!(
        find(&status, "api").state,
        ServiceState::Ready,
        "{status:?}"
    );
    assert_eq!(status.iter().filter_map(|s| s.pid).collect::<Vec<_>>(), pid);
    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report}");
}
