//! Real servers that speak sd_notify, under the `notify` probe: Debian's
//! `redis-server --supervised systemd`, and PostgreSQL (built with systemd
//! support) started as root through `setpriv`, which drops to the `postgres`
//! user before the server runs. Each is ready when it sends `READY=1`, its
//! dependent starts after that, and the stop leaves no process and the port free.
//!
//! Needs Debian's `redis-server` and `postgresql` (`.ci/run` installs them), and
//! root for postgres; a test whose server is missing says so and passes without
//! running.
#![cfg(target_os = "linux")]

mod actors_support;

use std::path::PathBuf;
use std::time::Duration;

use actors_support::*;
use ringmaster::config::ServiceConfigBuilder;
use ringmaster::messages::EventKind;
use ringmaster::{Options, Orchestrator, ServiceState};
use ringmaster_tests::{free_port, pid_alive, which};

/// Starts `server` (a notify service on `port`) and `app` depending on it; checks
/// that app spawned after the server's ready, and returns the server's status
/// text, then stops everything and checks that nothing is left.
async fn run_with_dependent(
    dir: &std::path::Path,
    server: ServiceConfigBuilder,
    port: u16,
) -> Option<String> {
    let app = free_port();
    let config = config(
        dir,
        vec![
            server
                .port(port)
                .health_notify()
                .stop_timeout(Duration::from_secs(10)),
            dependent("app", "server", app),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("orchestrator starts");
    let seen = record(&orch, None);
    timed(orch.up(None)).await.expect("up succeeds");
    let i = |svc: &str, f: fn(&EventKind) -> bool| seen.index(svc, f).expect("event seen");
    assert!(i("server", is_ready) < i("app", is_spawned));
    let status = orch.status().await.expect("status");
    let s = status.iter().find(|s| s.name == "server").expect("server");
    assert_eq!(s.state, ServiceState::Ready, "{s:?}");
    assert_eq!(s.health.as_deref(), Some("ok"), "{s:?}");
    let holder = s
        .members
        .iter()
        .find(|m| m.ports.contains(&port))
        .unwrap_or_else(|| panic!("a member holds port {port}: {s:?}"));
    assert_eq!(s.pid, Some(holder.pid), "{s:?}");
    let members: Vec<u32> = s.members.iter().map(|m| m.pid).collect();
    let text = s.status_text.clone();

    let report = timed(orch.shutdown(Duration::from_secs(30)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    for pid in members {
        assert!(!pid_alive(pid), "pid {pid} of the server is left");
    }
    assert!(port_free(port) && port_free(app));
    text
}

#[actix_rt::test]
async fn redis_supervised_by_systemd_protocol_is_ready_on_its_ready() {
    let Some(redis) = which("redis-server") else {
        eprintln!("skipped: redis-server is not installed");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let server = ServiceConfigBuilder::new(
        "server",
        format!(
            "'{}' --supervised systemd --port {port} --bind 127.0.0.1 --save '' --appendonly no --dir '{}'",
            redis.display(),
            dir.path().display()
        ),
    );
    let text = run_with_dependent(dir.path(), server, port).await;
    // Redis says what it does while it starts, then that it is ready.
    assert_eq!(text.as_deref(), Some("Ready to accept connections"));
}

/// Debian's PostgreSQL server binary, newest version first.
fn postgres() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin/postgres")))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop()
}

#[actix_rt::test]
async fn postgres_dropping_to_its_own_user_is_ready_on_its_ready() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: starting postgres as its own user needs root");
        return;
    }
    let (Some(postgres), Some(setpriv)) = (postgres(), which("setpriv")) else {
        eprintln!("skipped: postgresql or setpriv is not installed");
        return;
    };
    let uid = std::process::Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .ok()
        .filter(|o| o.status.success());
    if uid.is_none() {
        eprintln!("skipped: there is no postgres user");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let chown = std::process::Command::new("chown")
        .arg("postgres:postgres")
        .arg(dir.path())
        .status()
        .expect("chown runs");
    assert!(chown.success());
    let as_postgres = format!(
        "'{}' --reuid=postgres --regid=postgres --init-groups",
        setpriv.display()
    );
    let initdb = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{as_postgres} '{}' -D '{}' -A trust -U postgres >/dev/null",
            postgres.with_file_name("initdb").display(),
            data.display()
        ))
        .status()
        .expect("initdb runs");
    assert!(initdb.success(), "initdb failed");
    let port = free_port();
    let server = ServiceConfigBuilder::new(
        "server",
        format!(
            "{as_postgres} '{}' -D '{}' -p {port} -k '{}' -c listen_addresses=127.0.0.1",
            postgres.display(),
            data.display(),
            dir.path().display()
        ),
    )
    // INT: postgres's fast shutdown.
    .stop_signal(ringmaster_os::Signal::Int);
    let text = run_with_dependent(dir.path(), server, port).await;
    // Postgres sends READY=1 alone.
    assert_eq!(text, None);
}
