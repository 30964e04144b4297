//! Stop commands (`stop = { command = "...", timeout = "..." }`): the command runs
//! first, with the service's environment, workdir and tag; a service it ends is not
//! signalled; one that fails or hangs is reported and the signals still follow,
//! within the stop timeout and the shutdown deadline. Real processes; what is left
//! is checked with the OS (tagged processes, pids, ports), not only the report.
//! With redis-server installed, a real `redis-cli shutdown`.
#![cfg(unix)]

mod actors_support;

use std::path::Path;
use std::time::{Duration, Instant};

use actors_support::*;
use ringmaster::config::{Config, RestartPolicy, ServiceConfigBuilder};
use ringmaster::messages::{ServiceStopReport, ShutdownReport, StopCommandOutcome};
use ringmaster::{Options, Orchestrator, ServiceState};
use ringmaster_tests::{free_port, pid_alive, port_answers, which, PidGuard};

/// Every live process carrying a tag of the project of `state_dir`.
fn tagged(state_dir: &Path) -> Vec<u32> {
    let project = ringmaster_os::project_id(state_dir);
    ringmaster_os::process::snapshot()
        .expect("a process snapshot")
        .into_iter()
        .filter(|p| !p.zombie && p.tag.as_ref().is_some_and(|t| t.project == project))
        .map(|p| p.pid)
        .collect()
}

/// The report of `name` in `report`.
fn entry<'a>(report: &'a ShutdownReport, name: &str) -> &'a ServiceStopReport {
    report
        .services
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("{name} in {report:#?}"))
}

fn build(dir: &Path, deadline: Duration, services: Vec<ServiceConfigBuilder>) -> Config {
    let mut b = Config::builder(dir)
        .state_dir(dir.join("state"))
        .shutdown_timeout(deadline);
    for s in services {
        b = b.service(s);
    }
    b.build().expect("a valid test configuration")
}

/// A service that listens on `port` (fake-service under a shell) until the file
/// `stop.flag` appears in its workdir, then ends its server and exits: it stops
/// only when asked its own way.
fn flag_service(port: u16) -> String {
    format!(
        "{} & while [ ! -e stop.flag ]; do sleep 0.02; done; kill $!; wait",
        fake(&format!("--listen {port}"))
    )
}

#[actix_rt::test]
async fn a_stop_command_that_ends_the_service_is_all_it_takes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).expect("workdir");
    let p = free_port();
    let guard = PidGuard::new();
    // The command writes what it sees, then asks the service to stop.
    let stop =
        r#"printf '%s|%s|%s' "$GREETING" "$(pwd)" "$RINGMASTER_TAG" > seen.txt && touch stop.flag"#;
    let config = build(
        dir.path(),
        Duration::from_secs(20),
        vec![ServiceConfigBuilder::new("api", flag_service(p))
            .workdir(&work)
            .env("GREETING", "hello from the service's env")
            .health_tcp(p)
            .port(p)
            .stop_command(stop)
            .stop_timeout(Duration::from_secs(10))],
    );
    let state_dir = config.settings.state_dir.clone();
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    timed(orch.up(None)).await.expect("up");
    guard_running(&orch, &guard).await;
    for pid in tagged(&state_dir) {
        guard.add(pid);
    }
    assert!(port_answers(p));

    let started = Instant::now();
    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    let took = started.elapsed();
    let api = entry(&report, "api");
    let cmd = api.stop_command.as_ref().expect("the stop command ran");
    assert_eq!(
        cmd.outcome,
        StopCommandOutcome::Exited { code: Some(0) },
        "{report:#?}"
    );
    assert!(cmd.stopped_service, "{report:#?}");
    assert!(
        api.report.signalled.is_empty() && api.report.killed.is_empty(),
        "nothing signalled: the command ended the service: {report:#?}"
    );
    assert!(report.clean() && api.port_free == Some(true), "{report:#?}");
    assert!(
        took < Duration::from_secs(8),
        "no grace waited out: {took:?}"
    );

    let seen = std::fs::read_to_string(work.join("seen.txt")).expect("the command ran");
    let tag = format!("{}/api", ringmaster_os::project_id(&state_dir));
    assert_eq!(
        seen,
        format!("hello from the service's env|{}|{tag}", work.display()),
        "the command sees the service's env, workdir and tag"
    );
    assert!(
        tagged(&state_dir).is_empty(),
        "no process of the project is left"
    );
    assert!(!port_answers(p));
}

#[actix_rt::test]
async fn a_failing_stop_command_is_reported_and_the_signal_follows() {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = free_port();
    let guard = PidGuard::new();
    let config = build(
        dir.path(),
        Duration::from_secs(20),
        vec![svc("api", &format!("--listen {p} --children 2"))
            .health_tcp(p)
            .port(p)
            .stop_command("echo 'cannot reach the server' >&2; exit 3")
            .stop_timeout(Duration::from_secs(10))],
    );
    let state_dir = config.settings.state_dir.clone();
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    timed(orch.up(None)).await.expect("up");
    guard_running(&orch, &guard).await;
    let members = tagged(&state_dir);
    assert!(members.len() >= 3, "root and two children: {members:?}");
    members.iter().for_each(|&pid| guard.add(pid));

    let started = Instant::now();
    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    let api = entry(&report, "api");
    let cmd = api.stop_command.as_ref().expect("the stop command ran");
    assert_eq!(
        cmd.outcome,
        StopCommandOutcome::Exited { code: Some(3) },
        "{report:#?}"
    );
    assert!(!cmd.stopped_service && !cmd.succeeded());
    assert!(
        cmd.to_string().contains("exited with code 3"),
        "the report names the failure: {cmd}"
    );
    // The signal followed at once: TERM ended everything, no kill needed.
    assert!(!api.report.signalled.is_empty(), "{report:#?}");
    assert!(api.report.killed.is_empty(), "{report:#?}");
    assert!(report.clean(), "{report:#?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "a failed command does not hold the signal back"
    );
    for pid in members {
        assert!(!pid_alive(pid), "{pid} is gone");
    }
    assert!(tagged(&state_dir).is_empty());
    assert!(!port_answers(p));
}

#[actix_rt::test]
async fn a_hanging_stop_command_is_killed_and_the_signals_follow_within_the_deadline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = free_port();
    let guard = PidGuard::new();
    let cmd_pid_file = dir.path().join("cmd.pid");
    // The command hangs (and records its pid); the service ignores TERM, so only
    // the kill ends it.
    let stop = format!("echo $$ > '{}'; exec sleep 600", cmd_pid_file.display());
    let timeout = Duration::from_secs(2);
    let deadline = Duration::from_secs(3);
    let config = build(
        dir.path(),
        deadline,
        vec![svc("api", &format!("--listen {p} --ignore-term"))
            .health_tcp(p)
            .port(p)
            .stop_command(stop)
            .stop_timeout(timeout)],
    );
    let state_dir = config.settings.state_dir.clone();
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    timed(orch.up(None)).await.expect("up");
    guard_running(&orch, &guard).await;
    let members = tagged(&state_dir);
    members.iter().for_each(|&pid| guard.add(pid));

    let started = Instant::now();
    let report = timed(orch.shutdown(deadline)).await.expect("shutdown");
    let took = started.elapsed();
    let api = entry(&report, "api");
    let cmd = api.stop_command.as_ref().expect("the stop command ran");
    assert_eq!(
        cmd.outcome,
        StopCommandOutcome::TimedOut { after: timeout },
        "{report:#?}"
    );
    assert!(cmd.to_string().contains("timed out after 2.0s"), "{cmd}");
    // The command had its stop timeout; the signal what was left of the deadline
    // (1 s); then the kill.
    assert!(!api.report.signalled.is_empty(), "{report:#?}");
    assert!(
        !api.report.killed.is_empty(),
        "TERM is ignored: {report:#?}"
    );
    assert!(report.clean(), "nothing survived: {report:#?}");
    assert!(took >= timeout, "the command had its time: {took:?}");
    assert!(
        took < deadline + Duration::from_secs(2),
        "the whole stop keeps the deadline (the kill takes effect at once): {took:?}"
    );

    let cmd_pid: u32 = std::fs::read_to_string(&cmd_pid_file)
        .expect("the command recorded its pid")
        .trim()
        .parse()
        .expect("a pid");
    guard.add(cmd_pid);
    assert!(!pid_alive(cmd_pid), "the hung command was killed");
    for pid in members {
        assert!(!pid_alive(pid), "{pid} is gone");
    }
    assert!(tagged(&state_dir).is_empty());
    assert!(!port_answers(p));
}

#[actix_rt::test]
async fn a_service_that_is_not_running_gets_no_stop_command() {
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("ran");
    let config = build(
        dir.path(),
        Duration::from_secs(20),
        vec![svc("job", "--exit-after 10")
            .restart(RestartPolicy::Never)
            .start_window(Duration::ZERO)
            .stop_command(format!("touch '{}'", marker.display()))],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    timed(orch.up(None)).await.expect("up");
    until_async("the job to complete", LONG, || async {
        orch.status().await.expect("status")[0].state == ServiceState::Stopped
    })
    .await;
    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    let job = entry(&report, "job");
    assert!(job.stop_command.is_none(), "{report:#?}");
    assert!(!marker.exists(), "the command did not run");
}

/// With redis-server and redis-cli installed: `redis-cli shutdown` stops it, no
/// signal needed, its port is free and nothing of it is left.
#[actix_rt::test]
async fn redis_stops_by_redis_cli_shutdown() {
    let (Some(server), Some(_)) = (which("redis-server"), which("redis-cli")) else {
        eprintln!(
            "SKIPPED redis_stops_by_redis_cli_shutdown: redis-server or redis-cli is not installed"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let p = free_port();
    let guard = PidGuard::new();
    let config = build(
        dir.path(),
        Duration::from_secs(20),
        vec![ServiceConfigBuilder::new(
            "redis",
            format!(
                "'{}' --port {p} --bind 127.0.0.1 --save '' --appendonly no --dir '{}'",
                server.display(),
                dir.path().display()
            ),
        )
        .port(p)
        .health_exec(format!("redis-cli -p {p} ping | grep -q PONG"))
        .stop_command(format!("redis-cli -p {p} shutdown nosave"))
        .stop_timeout(Duration::from_secs(10))],
    );
    let state_dir = config.settings.state_dir.clone();
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    timed(orch.up(None)).await.expect("redis is ready");
    guard_running(&orch, &guard).await;
    let members = tagged(&state_dir);
    members.iter().for_each(|&pid| guard.add(pid));
    assert!(port_answers(p));

    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    let redis = entry(&report, "redis");
    let cmd = redis.stop_command.as_ref().expect("the stop command ran");
    assert!(cmd.succeeded() && cmd.stopped_service, "{report:#?}");
    assert!(
        redis.report.signalled.is_empty() && redis.report.killed.is_empty(),
        "redis-cli shutdown stopped it, no signal: {report:#?}"
    );
    assert!(
        report.clean() && redis.port_free == Some(true),
        "{report:#?}"
    );
    for pid in members {
        assert!(!pid_alive(pid), "{pid} is gone");
    }
    assert!(tagged(&state_dir).is_empty());
    assert!(!port_answers(p));
    // Redis said why it went (its log lines reached the service's output).
    until("redis's goodbye in its output", LONG, || {
        seen.lines()
            .iter()
            .any(|l| l.service == "redis" && l.line.contains("ready to exit"))
    })
    .await;
}

/// With nginx installed: `nginx -s quit` only asks (it returns before nginx is
/// gone); ringmaster waits for the master and its workers to go, and signals
/// nothing.
#[actix_rt::test]
async fn nginx_stops_by_nginx_s_quit_and_is_waited_for() {
    let Some(nginx) = which("nginx").or_else(|| {
        let sbin = Path::new("/usr/sbin/nginx");
        sbin.is_file().then(|| sbin.to_path_buf())
    }) else {
        eprintln!("SKIPPED nginx_stops_by_nginx_s_quit_and_is_waited_for: nginx is not installed");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let p = free_port();
    let guard = PidGuard::new();
    std::fs::create_dir_all(root.join("tmp")).expect("nginx temp dir");
    let conf = format!(
        "daemon off;\nworker_processes 2;\npid {root}/nginx.pid;\nerror_log {root}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {root}/tmp/body;\n  proxy_temp_path {root}/tmp/proxy;\n  \
         fastcgi_temp_path {root}/tmp/fastcgi;\n  uwsgi_temp_path {root}/tmp/uwsgi;\n  scgi_temp_path {root}/tmp/scgi;\n  \
         server {{ listen 127.0.0.1:{p}; location / {{ return 200 \"ok\"; }} }}\n}}\n",
        root = root.display()
    );
    std::fs::write(root.join("nginx.conf"), conf).expect("nginx.conf");
    let base = format!(
        "'{}' -p '{}' -c nginx.conf -e error.log",
        nginx.display(),
        root.display()
    );
    let config = build(
        root,
        Duration::from_secs(20),
        vec![ServiceConfigBuilder::new("nginx", base.clone())
            .workdir(root)
            .port(p)
            .health_http(format!("http://127.0.0.1:{p}/"))
            .stop_command(format!("{base} -s quit"))
            .stop_timeout(Duration::from_secs(10))],
    );
    let state_dir = config.settings.state_dir.clone();
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    timed(orch.up(None)).await.expect("nginx is ready");
    let root = guard_running(&orch, &guard).await[0];
    // nginx rewrites the memory its environment was in (to set its process
    // titles), so /proc shows no tag for it: its processes are found as the
    // service's tree and process group (the root leads its group).
    let members = group_members(root);
    members.iter().for_each(|&pid| guard.add(pid));
    assert!(members.len() >= 3, "master and two workers: {members:?}");

    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    let entry = entry(&report, "nginx");
    let cmd = entry.stop_command.as_ref().expect("the stop command ran");
    assert!(cmd.succeeded() && cmd.stopped_service, "{report:#?}");
    assert!(
        entry.report.signalled.is_empty() && entry.report.killed.is_empty(),
        "nginx -s quit stopped it, no signal from ringmaster: {report:#?}"
    );
    assert!(
        report.clean() && entry.port_free == Some(true),
        "{report:#?}"
    );
    for pid in members {
        assert!(!pid_alive(pid), "{pid} is gone");
    }
    assert!(group_members(root).is_empty());
    assert!(tagged(&state_dir).is_empty());
    assert!(!port_answers(p));
}

/// The live processes in the tree of `root` and in its process group.
fn group_members(root: u32) -> Vec<u32> {
    let table = ringmaster_os::process::snapshot().expect("a process snapshot");
    ringmaster_os::process::members(&table, Some(root), Some(root), None)
        .into_iter()
        .map(|p| p.pid)
        .collect()
}
