//! How fast the end of a service is noticed, from a `kill -9` to its `Exited`
//! event reaching a subscriber, for three shapes of service:
//! - `exec`: the program is the root (the baseline: the exit comes with SIGCHLD);
//! - `shell`: a `sh -c` root killed under its live program (the root's own exit is
//!   waited on; the program left behind is stopped with TERM before the event);
//! - `daemon`: a launcher that exited 0 long ago; the daemon itself is killed (its
//!   members are looked at every 50 ms).
//!
//! Run: `cargo build --release -p ringmaster-tests --bin fake-service && cargo
//! bench -p ringmaster --bench exit_notice` (`BENCH_RUNS`, default 20 per shape).
mod common;

use std::time::{Duration, Instant};

use actix::prelude::*;
use common::*;
use ringmaster::config::{Config, RestartPolicy, ServiceConfigBuilder};
use ringmaster::messages::EventKind;
use ringmaster::{Options, Orchestrator};

#[cfg(unix)]
fn kill9(pid: u32) {
    // SAFETY: a plain kill(2) on a pid this bench read from the status of its own service.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
}

#[cfg(not(unix))]
fn kill9(_pid: u32) {
    unreachable!("the exit-notice bench runs on Unix only");
}

async fn one(shape: &str) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let command = match shape {
        "exec" => format!("exec {}", fake("")),
        "shell" => format!("{}; true", fake("")),
        _ => format!("setsid -f {} > /dev/null 2>&1", fake("")),
    };
    let config = Config::builder(dir.path())
        .state_dir(dir.path().join("state"))
        .service(ServiceConfigBuilder::new("svc", command).restart(RestartPolicy::Never))
        .build()
        .expect("valid");
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let events = Events::default();
    orch.subscribe(Recorder(events.clone()).start().recipient());
    orch.up(None).await.expect("up");
    let target = loop {
        let s = orch.status().await.expect("status").remove(0);
        let ready = match shape {
            "shell" => s.root_pid.filter(|r| Some(*r) != s.pid),
            "daemon" => s.pid.filter(|_| s.daemonized),
            _ => s.pid,
        };
        if let Some(pid) = ready {
            break pid;
        }
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    };
    let killed = Instant::now();
    kill9(target);
    let exited = loop {
        if let Some(t) = events.first("svc", |e| matches!(e.kind, EventKind::Exited { .. })) {
            break t;
        }
        actix_rt::time::sleep(Duration::from_millis(1)).await;
    };
    let report = orch
        .shutdown(Duration::from_secs(10))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    exited.saturating_duration_since(killed)
}

fn main() {
    if cfg!(not(unix)) {
        println!("the exit-notice benchmark runs on Unix only");
        return;
    }
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    actix_rt::System::new().block_on(async move {
        println!("kill -9 → Exited event, {runs} runs each:");
        for shape in ["exec", "shell", "daemon"] {
            let mut lat = Vec::new();
            for _ in 0..runs {
                lat.push(one(shape).await);
            }
            println!(
                "  {shape:<6} min {}  p50 {}  p95 {}  max {}",
                ms(percentile(&lat, 0.0)),
                ms(percentile(&lat, 50.0)),
                ms(percentile(&lat, 95.0)),
                ms(percentile(&lat, 100.0)),
            );
        }
    });
}
