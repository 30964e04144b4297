//! While a shutdown runs, the Supervisor still answers: `status` shows the service
//! being stopped as `stopping` (not only once the cascade is over), `up` and
//! `restart` are refused, and a second shutdown gets the first one's report.
//! The service ignores the graceful step (TERM on Unix; on Windows CTRL_BREAK,
//! which it swallows, and `taskkill` without `/F`, which a console program ignores
//! anyway), so it is killed once its
//! stop timeout ran out, well within the deadline, and is gone from the OS's
//! process table. Runs on Windows too (under Wine: `.ci/wine/test.sh`).

mod actors_support;

use std::time::{Duration, Instant};

use actors_support::*;
use ringmaster::messages::Shutdown;
use ringmaster::{Options, Orchestrator, ServiceState};
use ringmaster_tests::{pid_alive, PidGuard};

/// The stop timeout of the service that ignores TERM: the cascade lasts at least
/// this long (then it kills).
const SLOW_STOP: Duration = Duration::from_secs(8);
/// How much later than its stop timeout the process may still be seen running
/// (generous: Wine starts the kill's `taskkill` slowly; this bounds a stop that
/// would not kill at all, it measures no speed).
const KILL_MARGIN: Duration = Duration::from_secs(15);

#[actix_rt::test]
async fn status_during_a_slow_stop_shows_stopping() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(
        dir.path(),
        // Ready once it printed its pid, which it does after it ignores TERM.
        vec![svc("slow", "--ignore-term --print-pids")
            .stop_timeout(SLOW_STOP)
            .health_log("^pid root ")],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    timed(orch.up(None)).await.expect("up");
    guard_running(&orch, &guard).await;
    let root = orch.status().await.expect("status")[0]
        .root_pid
        .expect("a running service has a root");
    guard.add(root);
    // The process that ignores TERM (the shell above it, if any, does not; on
    // Windows `cmd.exe` waits for it).
    let pid = seen
        .lines()
        .iter()
        .find_map(|l| l.line.strip_prefix("pid root "))
        .and_then(|p| p.trim().parse::<u32>().ok())
        .expect("it printed its pid before it was ready");
    guard.add(pid);

    let deadline = Duration::from_secs(20);
    let asked = Instant::now();
    let first = actix_rt::spawn(orch.supervisor().send(Shutdown { deadline }));
    until_async(
        "status to show `stopping` during the shutdown",
        LONG,
        || {
            let orch = orch.clone();
            async move {
                let status = actix_rt::time::timeout(Duration::from_secs(1), orch.status()).await;
                matches!(status, Ok(Ok(s)) if s[0].state == ServiceState::Stopping)
            }
        },
    )
    .await;
    // The process ignores TERM, so the cascade waits out the stop timeout: it
    // is still running now.
    assert!(!first.is_finished(), "the shutdown is still running");
    assert!(pid_alive(pid), "the service still runs (it ignores TERM)");

    let up = actix_rt::time::timeout(Duration::from_secs(5), orch.up(None))
        .await
        .expect("up is answered during the shutdown");
    assert!(up.is_err(), "up is refused during the shutdown: {up:?}");
    let restart = actix_rt::time::timeout(Duration::from_secs(5), orch.restart("slow"))
        .await
        .expect("restart is answered during the shutdown");
    assert!(restart.is_err(), "restart is refused: {restart:?}");
    let second = actix_rt::spawn(orch.supervisor().send(Shutdown { deadline }));

    let report = actix_rt::time::timeout(LONG, first)
        .await
        .expect("shutdown in time")
        .expect("the task ran")
        .expect("the supervisor answered");
    assert!(report.clean(), "{report:?}");
    assert!(!report.deadline_hit, "{report:?}");
    assert_eq!(report.services.len(), 1);
    let killed: Vec<u32> = report.services[0]
        .report
        .killed
        .iter()
        .map(|p| p.pid)
        .collect();
    assert!(
        killed.contains(&pid),
        "killed after its stop timeout: {report:?}"
    );
    // Gone with the OS once the shutdown answered, the root as well, and not
    // long after the stop timeout ran out.
    assert!(!pid_alive(pid), "pid {pid} still runs");
    assert!(!pid_alive(root), "the root, pid {root}, still runs");
    assert!(
        asked.elapsed() < SLOW_STOP + KILL_MARGIN,
        "still running {:?} after the shutdown was asked for",
        asked.elapsed()
    );
    let again = actix_rt::time::timeout(LONG, second)
        .await
        .expect("the second shutdown answers")
        .expect("the task ran")
        .expect("the supervisor answered");
    assert_eq!(again.services.len(), 1, "the same report: {again:?}");
    assert_eq!(
        again.services[0].report.killed,
        report.services[0].report.killed
    );
    let status = orch.status().await.expect("status");
    assert_eq!(status[0].state, ServiceState::Stopped);
}
