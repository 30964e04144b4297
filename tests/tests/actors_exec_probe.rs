//! An `exec` health probe runs as its service does: in the service's workdir,
//! with the service's environment (its `env_file` and `env` table) and its tag, so
//! a process the probe leaves running is one of the service's and stops with it.
#![cfg(unix)]

mod actors_support;

use std::time::Duration;

use actors_support::*;
use ringmaster::{Options, Orchestrator, ServiceState};
use ringmaster_os::Tag;
use ringmaster_tests::{fake_service, pid_alive, PidGuard};

#[actix_rt::test]
async fn an_exec_probe_gets_the_services_env_workdir_and_tag() {
    let dir = tempfile::tempdir().expect("temp dir");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("workdir");
    std::fs::write(work.join("marker"), "").expect("marker in the workdir");
    let env_file = dir.path().join("app.env");
    std::fs::write(&env_file, "FROM_FILE=env-file\n").expect("env file");
    // Fails unless both variables are set and it runs in the workdir; then leaves
    // a fake-service running in the background (once), which prints its pid.
    let probe = format!(
        r#"[ "$FROM_TABLE" = env-table ] && [ "$FROM_FILE" = env-file ] && [ -f marker ] || exit 1
[ -e probe.out ] || '{}' --print-pids > probe.out &"#,
        fake_service().display()
    );
    let config = config(
        dir.path(),
        vec![svc("app", "")
            .workdir(&work)
            .env_file(&env_file)
            .env("FROM_TABLE", "env-table")
            .health_exec(probe)
            .health_interval(Duration::from_secs(60))],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up");
    guard_running(&orch, &guard).await;
    let status = orch.status().await.expect("status");
    assert_eq!(status[0].state, ServiceState::Ready);

    let out = work.join("probe.out");
    let mut left = None;
    until(
        "the probe's background process printed its pid",
        LONG,
        || {
            left = std::fs::read_to_string(&out).ok().and_then(|o| {
                o.lines()
                    .find_map(|l| l.strip_prefix("pid root "))
                    .and_then(|p| p.trim().parse::<u32>().ok())
            });
            left.is_some()
        },
    )
    .await;
    let left = left.expect("a pid");
    guard.add(left);
    let info = ringmaster_os::process::process(left)
        .expect("process table")
        .expect("the probe's process runs");
    assert_eq!(
        info.tag,
        Some(Tag::new(orch.project(), "app")),
        "the probe's process carries the service's tag"
    );

    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    assert!(
        !pid_alive(left),
        "what the probe left running stops with the service"
    );
}
