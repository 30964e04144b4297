//! The `notify` readiness probe (sd_notify) with real processes: the service gets
//! a `NOTIFY_SOCKET` of its own; `READY=1` from one of its processes makes it
//! ready and starts its dependents; `STATUS=` shows in its status and `MAINPID=`
//! is the pid shown; a message from a process that is not the service's is
//! ignored (and the status says so); a service that never sends `READY=1` stays
//! `starting` with the reason; a service that drops its privileges still reaches
//! the socket. Real servers speaking the protocol: `notify_real.rs`.
#![cfg(target_os = "linux")]

mod actors_support;

use std::time::Duration;

use actors_support::*;
use ringmaster::messages::EventKind;
use ringmaster::{Options, Orchestrator, ServiceState, ServiceStatus};
use ringmaster_tests::{fake_service, free_port, wait_for};

async fn status_of(orch: &Orchestrator, name: &str) -> ServiceStatus {
    orch.status()
        .await
        .expect("status")
        .into_iter()
        .find(|s| s.name == name)
        .expect("the service")
}

/// The value of `key` in the environment of `pid`.
fn environ_value(pid: u32, key: &str) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    raw.split(|b| *b == 0).find_map(|kv| {
        let kv = String::from_utf8_lossy(kv);
        kv.strip_prefix(&format!("{key}=")).map(str::to_owned)
    })
}

/// The pid in the first `pid <role> <pid>` line of `service`.
fn pid_line(seen: &Recording, service: &str, role: &str) -> Option<u32> {
    let prefix = format!("pid {role} ");
    seen.lines()
        .iter()
        .filter(|l| l.service == service)
        .find_map(|l| l.line.strip_prefix(&prefix)?.trim().parse().ok())
}

#[actix_rt::test]
async fn ready_status_and_main_pid_come_from_the_service() {
    let dir = tempfile::tempdir().expect("temp dir");
    let web = free_port();
    let config = config(
        dir.path(),
        vec![
            svc(
                "api",
                "--children 1 --notify-status loading --notify-after 300 --notify-mainpid",
            )
            .health_notify(),
            dependent("web", "api", web),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("orchestrator starts");
    let seen = record(&orch, None);
    timed(orch.up(None)).await.expect("up succeeds");

    let i = |svc: &str, f: fn(&EventKind) -> bool| seen.index(svc, f).expect("event seen");
    assert!(i("api", is_ready) < i("web", is_spawned));
    // READY=1 was sent after `notified` was printed... or just before: the line
    // is printed after the send, so it may arrive after Ready. It must arrive.
    until("api's `notified` line", LONG, || {
        seen.lines()
            .iter()
            .any(|l| l.service == "api" && l.line.starts_with("notified "))
    })
    .await;

    let api = status_of(&orch, "api").await;
    assert_eq!(api.state, ServiceState::Ready, "{api:?}");
    assert_eq!(api.health.as_deref(), Some("ok"), "{api:?}");
    assert_eq!(api.status_text.as_deref(), Some("loading"), "{api:?}");
    let child = pid_line(&seen, "api", "child").expect("the child's pid line");
    assert_eq!(api.pid, Some(child), "MAINPID names the shown pid: {api:?}");
    assert!(
        api.members.iter().any(|m| m.pid == child),
        "the main pid is a member: {api:?}"
    );
    let row = api.cells(ringmaster::text::now_ms());
    let health = ringmaster::status::STATUS_COLUMNS
        .iter()
        .position(|c| *c == "HEALTH")
        .expect("a HEALTH column");
    assert_eq!(row[health], "ok (loading)");

    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
}

// The sender is reaped by the orchestrator (a subreaper here) once api's stop
// took it, not waited on.
#[allow(clippy::zombie_processes)]
#[actix_rt::test]
async fn a_foreign_ready_is_ignored_and_a_silent_service_stays_starting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let web = free_port();
    let config = config(
        dir.path(),
        vec![
            svc("api", "--print-pids").health_notify(),
            dependent("web", "api", web),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("orchestrator starts");
    let seen = record(&orch, None);
    let up = up_in_background(&orch);
    until("api's root pid line", LONG, || {
        pid_line(&seen, "api", "root").is_some()
    })
    .await;
    let root = pid_line(&seen, "api", "root").expect("root pid");
    let socket = environ_value(root, "NOTIFY_SOCKET").expect("api got a NOTIFY_SOCKET");
    assert!(socket.starts_with("@ringmaster/"), "{socket}");
    let tag = environ_value(root, ringmaster_os::TAG_ENV).expect("api's tag");

    // Silent: starting, and the status says what it waits for.
    until_async("api's status to name its socket", LONG, || {
        let orch = orch.clone();
        let socket = socket.clone();
        async move {
            let s = status_of(&orch, "api").await;
            s.state == ServiceState::Starting
                && s.health
                    == Some(format!(
                        "failing: no READY=1 yet on its NOTIFY_SOCKET ({socket})"
                    ))
        }
    })
    .await;

    // READY=1 from this test process, which is not one of api's: ignored.
    send(&socket, "READY=1\nSTATUS=forged");
    let me = std::process::id();
    until_async("api's status to report the ignored message", LONG, || {
        let orch = orch.clone();
        async move {
            status_of(&orch, "api").await.health.is_some_and(|h| {
                h.contains(&format!(
                    "ignored a message from pid {me}, which is not one of its processes"
                ))
            })
        }
    })
    .await;
    let api = status_of(&orch, "api").await;
    assert_eq!(api.state, ServiceState::Starting, "{api:?}");
    assert_eq!(api.status_text, None, "{api:?}");
    assert!(seen.first("web", is_spawned).is_none());

    // READY=1 from a process carrying api's tag (a process of the service, as
    // the tag defines it): api is ready and web starts.
    // It lives on after the send (a sender that is gone cannot be checked), and
    // is not waited for here: this thread runs the orchestrator.
    let mut sender = std::process::Command::new(fake_service())
        .args(["--notify-after", "0", "--exit-after", "5000"])
        .env("NOTIFY_SOCKET", &socket)
        .env(ringmaster_os::TAG_ENV, &tag)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the sender runs");
    timed(up).await.expect("joined").expect("up succeeds");
    let i = |svc: &str, f: fn(&EventKind) -> bool| seen.index(svc, f).expect("event seen");
    assert!(i("api", is_ready) < i("web", is_spawned));

    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    // It carries api's tag, so the stop took it too (and the orchestrator, a
    // subreaper here, reaped it).
    let pid = sender.id();
    if ringmaster_tests::pid_alive(pid) {
        let _ = sender.kill();
        panic!("the process carrying api's tag outlived api's stop");
    }
}

#[actix_rt::test]
async fn a_service_that_drops_its_privileges_still_notifies() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: dropping privileges needs root");
        return;
    }
    let Some(setpriv) = ringmaster_tests::which("setpriv") else {
        eprintln!("skipped: no setpriv");
        return;
    };
    // A copy of fake-service that `nobody` may run (the build's own folder may
    // not be open to it).
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    let exe = bin.join("fake-service");
    std::fs::copy(fake_service(), &exe).expect("copy fake-service");
    use std::os::unix::fs::PermissionsExt;
    for p in [dir.path(), bin.as_path(), exe.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let config = config(
        dir.path(),
        vec![ringmaster::config::ServiceConfigBuilder::new(
            "api",
            format!(
                "'{}' --reuid=65534 --regid=65534 --clear-groups '{}' --print-pids --notify-after 200",
                setpriv.display(),
                exe.display()
            ),
        )
        .health_notify()],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("orchestrator starts");
    let seen = record(&orch, None);
    timed(orch.up(None)).await.expect("up succeeds");
    let root = pid_line(&seen, "api", "root");
    let root = match root {
        Some(p) => p,
        None => {
            until("api's root pid line", LONG, || {
                pid_line(&seen, "api", "root").is_some()
            })
            .await;
            pid_line(&seen, "api", "root").expect("pid")
        }
    };
    let uid = std::fs::read_to_string(format!("/proc/{root}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Uid:")
                    .map(|r| r.split_whitespace().next().unwrap_or("").to_owned())
            })
        });
    assert_eq!(uid.as_deref(), Some("65534"), "it runs as nobody");
    assert_eq!(status_of(&orch, "api").await.state, ServiceState::Ready);
    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    wait_for(
        "nobody's process to be gone",
        Duration::from_secs(10),
        || !ringmaster_tests::pid_alive(root),
    );
}

/// Sends `msg` to the abstract socket `@name`.
fn send(socket: &str, msg: &str) {
    use std::os::linux::net::SocketAddrExt;
    let name = socket.strip_prefix('@').expect("an abstract socket");
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("addr");
    let tx = std::os::unix::net::UnixDatagram::unbound().expect("socket");
    tx.send_to_addr(msg.as_bytes(), &addr).expect("send");
}
