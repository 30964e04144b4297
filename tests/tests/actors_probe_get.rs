//! The HTTP readiness probe uses GET, never HEAD: FastAPI answers `HEAD /health`
//! with 405, and a probe that used HEAD would never see such a service ready.
//! Runs on Windows too (under Wine: `.ci/wine/test.sh`).

mod actors_support;

use std::io::{Read, Write};
use std::time::Duration;

use actors_support::*;
use ringmaster::{Options, Orchestrator, ServiceState};
use ringmaster_tests::{free_port, PidGuard};

/// The status line of one raw HTTP request to 127.0.0.1:`port`.
fn status_line(port: u16, method: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(
        format!("{method} /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .expect("write");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

#[actix_rt::test]
async fn a_service_that_refuses_head_becomes_ready() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let config = config(
        dir.path(),
        vec![svc("api", &format!("--listen {port} --head-405"))
            .port(port)
            .health_http(format!("http://127.0.0.1:{port}/health"))],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("orchestrator starts");
    let guard = PidGuard::new();

    timed(orch.up(None))
        .await
        .expect("up succeeds with a GET probe");
    guard_running(&orch, &guard).await;

    // The service really is FastAPI-like: HEAD is refused, GET answers.
    assert!(
        status_line(port, "HEAD").contains(" 405 "),
        "HEAD must be refused"
    );
    assert!(
        status_line(port, "GET").contains(" 200 "),
        "GET must answer"
    );
    let status = orch.status().await.expect("status");
    assert_eq!(status[0].state, ServiceState::Ready, "{status:?}");
    assert_eq!(status[0].health.as_deref(), Some("ok"), "{status:?}");

    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
}
