//! The opt-in Prometheus endpoint (`[settings] metrics`): per service up, ready,
//! restarts, health latency, process count, memory and CPU of its members.
#![cfg(unix)]

mod cli_support;

use std::io::{Read, Write};
use std::net::TcpStream;

use cli_support::*;
use ringmaster_tests::{free_port, port_answers};

fn get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

fn value(text: &str, metric: &str, service: &str) -> f64 {
    let key = format!("{metric}{{service=\"{service}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .unwrap_or_else(|| panic!("{key} in:\n{text}"))
        .parse()
        .expect("a number")
}

#[test]
fn metrics_endpoint_reports_each_service() {
    let (api, web, metrics) = (free_port(), free_port(), free_port());
    let config = two_services(api, web).replace(
        "[settings]\n",
        &format!("[settings]\nmetrics = \"127.0.0.1:{metrics}\"\n"),
    );
    let p = Project::with_config(&config);
    p.up_detached();
    p.wait_ready(&["api", "web"]);
    p.guard_tagged();
    let text = get(metrics, "/metrics");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("# TYPE ringmaster_service_up gauge"),
        "{text}"
    );
    for s in ["api", "web"] {
        assert_eq!(value(&text, "ringmaster_service_up", s), 1.0);
        assert_eq!(value(&text, "ringmaster_service_ready", s), 1.0);
        assert_eq!(value(&text, "ringmaster_service_restarts_total", s), 0.0);
        assert!(value(&text, "ringmaster_service_resident_memory_bytes", s) > 0.0);
        assert!(value(&text, "ringmaster_service_cpu_seconds_total", s) >= 0.0);
    }
    // api: the shell, fake-service and its socket-sharing worker (the shell may
    // exec directly); web: fake-service and its two children.
    assert!(
        value(&text, "ringmaster_service_processes", "api") >= 2.0,
        "{text}"
    );
    assert!(
        value(&text, "ringmaster_service_processes", "web") >= 3.0,
        "{text}"
    );
    assert!(get(metrics, "/other").starts_with("HTTP/1.1 404"));

    p.rm().arg("down").assert().code(0);
    ringmaster_tests::wait_for("the metrics endpoint to close", LONG, || {
        !port_answers(metrics)
    });
}
