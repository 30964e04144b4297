//! Service output with real processes: every line of a service that writes fast
//! and exits at once reaches its log file (rotated by size, nothing lost) and the
//! log subscribers before its exit is reported.
#![cfg(unix)]

mod actors_support;

use std::time::Duration;

use actors_support::*;
use ringmaster::config::{Config, RestartPolicy, ServiceConfigBuilder};
use ringmaster::messages::{EventKind, Stream};
use ringmaster::{Options, Orchestrator};

#[actix_rt::test]
async fn every_line_of_a_fast_writer_is_kept_and_rotated() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script =
        "i=0; while [ $i -lt 5000 ]; do echo \"line $i\"; i=$((i+1)); done; echo bye >&2; exit 0";
    let config = Config::builder(dir.path())
        .state_dir(dir.path().join("state"))
        .log_max_bytes(20_000)
        .service(ServiceConfigBuilder::new("chatty", script).restart(RestartPolicy::Never))
        .build()
        .expect("valid");
    let state_dir = config.settings.state_dir.clone();
    let orch = Orchestrator::start(config, Options::default()).expect("starts");
    let seen = record(&orch, None);
    actix_rt::time::timeout(LONG, orch.up(None))
        .await
        .expect("in time")
        .expect("up");
    until("chatty exited", LONG, || {
        !seen.of("chatty", is_exited).is_empty()
    })
    .await;
    assert_eq!(
        seen.of("chatty", is_exited)[0].event.kind,
        EventKind::Exited { code: Some(0) }
    );

    // The files hold every line, in order, across rotations, at the moment the
    // exit is known.
    let base = ringmaster::logs::log_path(&state_dir, "chatty");
    let mut text = String::new();
    for i in (1..=ringmaster::logs::KEEP).rev() {
        let p = base.with_extension(format!("log.{i}"));
        if let Ok(t) = std::fs::read_to_string(&p) {
            assert!(t.len() <= 20_000, "{} is {} bytes", p.display(), t.len());
            text.push_str(&t);
        }
    }
    assert!(
        base.with_extension("log.2").exists(),
        "rotated at least twice"
    );
    text.push_str(&std::fs::read_to_string(&base).expect("current log"));
    let lines: Vec<&str> = text.lines().collect();
    let stdout: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("line "))
        .collect();
    assert_eq!(stdout.len(), 5000, "every stdout line is in the log files");
    for (i, l) in stdout.iter().enumerate() {
        assert_eq!(*l, format!("line {i}"));
    }
    assert!(lines.contains(&"bye"), "the stderr line too");

    // Subscribers got them all too, with their stream, before the exit event.
    let got = seen.lines();
    assert_eq!(
        got.iter().filter(|l| l.stream == Stream::Stdout).count(),
        5000
    );
    assert!(got
        .iter()
        .any(|l| l.stream == Stream::Stderr && l.line == "bye"));

    // A one-shot that exited 0 is stopped (completed), not failed.
    let status = orch.status().await.expect("status");
    assert_eq!(
        status[0].state,
        ringmaster::ServiceState::Stopped,
        "{status:?}"
    );
    assert_eq!(status[0].last_exit, Some(0));
    let report = actix_rt::time::timeout(LONG, orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("in time")
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
}
