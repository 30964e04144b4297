//! A shutdown while a service is still being prepared (its leftovers being
//! stopped) cancels the preparation: the install step is not spawned after the
//! cascade, so nothing of the service runs once the shutdown answered.
#![cfg(unix)]

mod actors_support;

use std::time::Duration;

use actors_support::*;
use ringmaster::{Options, Orchestrator};
use ringmaster_os::{project_id, Tag, TAG_ENV};
use ringmaster_tests::{fake_service, pid_alive, PidGuard, Svc};

#[actix_rt::test]
async fn shutdown_during_preparation_spawns_no_install_step_afterwards() {
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("install.pid");
    let config = config(
        dir.path(),
        vec![svc("slow", "")
            // The install step records its pid, then stays.
            .install(
                format!("echo $$ > '{}'; exec sleep 60", marker.display()),
                None::<&str>,
            )
            .stop_timeout(Duration::from_secs(2))],
    );
    let state_dir = config.settings.state_dir.clone();
    std::fs::create_dir_all(&state_dir).expect("state dir");
    let guard = PidGuard::new();

    // A leftover of an earlier run (it carries the service's tag) that ignores
    // TERM: stopping it keeps the preparation busy for the stop timeout.
    let tag = Tag::new(project_id(&state_dir), "slow");
    let leftover = Svc::start(
        std::process::Command::new(fake_service())
            .args(["--ignore-term", "--print-pids"])
            .env(TAG_ENV, tag.env_value()),
        &guard,
    );
    leftover.expect("pid root");

    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let up = {
        let orch = orch.clone();
        actix_rt::spawn(async move { orch.up(None).await })
    };
    // The preparation has begun: the leftover got its TERM, which it ignores.
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    let up = timed(up).await.expect("the up task ends");
    assert!(up.is_err(), "up cannot succeed: {up:?}");

    // The leftover is gone (killed after its grace by the preparation or by the
    // cascade); the preparation is over by then but for its last steps.
    // (Our child, but the orchestrator in this process may reap it: asked by pid.)
    let leftover_pid = leftover.pid();
    until("the leftover is gone", LONG, || !pid_alive(leftover_pid)).await;
    // Give a late install step ample time to show up (its first act is to write
    // its pid), then check that none did.
    actix_rt::time::sleep(Duration::from_secs(3)).await;
    if let Ok(text) = std::fs::read_to_string(&marker) {
        if let Ok(pid) = text.trim().parse::<u32>() {
            guard.add(pid);
            panic!(
                "the install step ran after the shutdown (pid {pid}, alive: {})",
                pid_alive(pid)
            );
        }
        panic!("the install step ran after the shutdown");
    }
    assert!(report.clean(), "{report:?}");
}
