//! The previous run's orphans: an orchestrator running in a child process is
//! killed with SIGKILL (it cannot clean up), its services live on holding their
//! ports; a new orchestrator on the same state directory stops every one of them
//! (PID files, tags — a setsid daemon included) and its own services become ready
//! on the same ports. Through the real binary: `fault_manager_killed_cli.rs`.
//!
//! The child orchestrator is this test binary run again with
//! `RINGMASTER_TEST_CHILD` set, executing only `orchestrator_child_mode`.
#![cfg(target_os = "linux")]

mod actors_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use actors_support::*;
use ringmaster::config::Config;
use ringmaster::{Options, Orchestrator, ServiceState};
use ringmaster_os::process::{members, snapshot};
use ringmaster_os::{project_id, Tag};
use ringmaster_tests::{free_port, kill_pid, pid_alive, port_answers, PidGuard};

const CHILD_ENV: &str = "RINGMASTER_TEST_CHILD";

fn the_config(dir: &Path, api: u16, web: u16) -> Config {
    config(
        dir,
        vec![
            svc("api", &format!("--listen {api} --http --children 1"))
                .port(api)
                .health_http(format!("http://127.0.0.1:{api}/health")),
            svc("web", &format!("--listen {web} --daemon"))
                .port(web)
                .health_tcp(web)
                .depends_on("api"),
        ],
    )
}

/// Runs only in the child process: start, print `READY`, then wait to be killed.
#[test]
fn orchestrator_child_mode() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.split(';');
    let dir = parts.next().expect("dir").to_owned();
    let api: u16 = parts.next().and_then(|p| p.parse().ok()).expect("api port");
    let web: u16 = parts.next().and_then(|p| p.parse().ok()).expect("web port");
    actix_rt::System::new().block_on(async move {
        let orch = Orchestrator::start(the_config(Path::new(&dir), api, web), Options::default())
            .expect("child orchestrator starts");
        orch.up(None).await.expect("child up");
        // libtest has printed `test orchestrator_child_mode ... ` without a newline.
        println!("\nCHILD-READY");
        std::future::pending::<()>().await;
    });
}

/// Pids carrying `service`'s tag in `state_dir`'s project, as the OS shows them.
fn tagged(state_dir: &Path, service: &str) -> Vec<u32> {
    let tag = Tag::new(project_id(state_dir), service);
    let table = snapshot().expect("process table");
    members(&table, None, None, Some(&tag))
        .iter()
        .map(|p| p.pid)
        .collect()
}

#[actix_rt::test]
async fn a_killed_runs_orphans_are_cleaned_up_by_the_next_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (api, web) = (free_port(), free_port());
    let guard = PidGuard::new();

    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .args([
            "--exact",
            "orchestrator_child_mode",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, format!("{};{api};{web}", dir.path().display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("child orchestrator spawns");
    guard.add(child.id());
    let out = child.stdout.take().expect("piped");
    let ready = std::thread::spawn(move || {
        BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.trim_end().ends_with("CHILD-READY"))
    });
    let ready = actix_rt::time::timeout(
        LONG,
        actix_rt::task::spawn_blocking(move || ready.join().unwrap_or(false)),
    )
    .await
    .expect("the child orchestrator answers in time")
    .expect("reader thread");
    assert!(ready, "the child orchestrator never became ready");

    let state_dir = dir.path().join("state");
    let old_api = tagged(&state_dir, "api");
    let old_web = tagged(&state_dir, "web");
    old_api.iter().chain(&old_web).for_each(|p| guard.add(*p));
    assert!(old_api.len() >= 2, "api root and child: {old_api:?}");
    assert!(old_web.len() >= 2, "web root and daemon: {old_web:?}");

    // The orchestrator dies without a chance to clean up.
    kill_pid(child.id());
    let _ = child.wait();
    for p in old_api.iter().chain(&old_web) {
        assert!(pid_alive(*p), "orphan {p} should still run");
    }
    assert!(
        port_answers(api) && port_answers(web),
        "orphans still hold the ports"
    );
    assert!(
        state_dir.join("api.pid").exists(),
        "the killed run's PID file is left"
    );

    // The next start on the same state directory.
    let orch = Orchestrator::start(the_config(dir.path(), api, web), Options::default())
        .expect("the lock of a dead owner does not block");
    actix_rt::time::timeout(LONG, orch.up(None))
        .await
        .expect("in time")
        .expect("the new services become ready on the same ports");
    for p in old_api.iter().chain(&old_web) {
        assert!(!pid_alive(*p), "orphan {p} survived the next start");
    }
    let status = orch.status().await.expect("status");
    assert!(
        status.iter().all(|s| s.state == ServiceState::Ready),
        "{status:?}"
    );
    for s in &status {
        let pid = s.pid.expect("pid");
        guard.add(pid);
        assert!(!old_api.contains(&pid) && !old_web.contains(&pid));
    }
    let new_holders: Vec<u32> = ringmaster_os::listeners(api)
        .expect("listeners")
        .iter()
        .map(|l| l.pid)
        .collect();
    assert!(!new_holders.is_empty());
    assert!(
        new_holders.iter().all(|p| !old_api.contains(p)),
        "{new_holders:?}"
    );
    tagged(&state_dir, "web").iter().for_each(|p| guard.add(*p));

    let report = actix_rt::time::timeout(LONG, orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("in time")
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    assert!(tagged(&state_dir, "api").is_empty() && tagged(&state_dir, "web").is_empty());
    assert!(port_free(api) && port_free(web));
}
