//! The opt-in Prometheus endpoint (`[settings] metrics = "127.0.0.1:9464"`):
//! `GET /metrics` in the text exposition format. Binds exactly the configured
//! address and nothing else. Per service: up, ready, restarts, the last health
//! probe's latency, and over the service's members (its process tree, group and
//! tagged processes): process count, resident memory and accumulated CPU time (a
//! counter; Prometheus' `rate()` makes it a usage). All of it comes from the
//! instance's status, whose one census of the process table serves every service.
use std::fmt::Write as _;
use std::net::SocketAddr;

use actix_web::web;
use actix_web::{App, HttpResponse, HttpServer};
use ringmaster::{Orchestrator, ServiceState, ServiceStatus};

struct State {
    orch: Orchestrator,
}

/// Starts the endpoint on `addr`; the returned server must be spawned.
pub fn start(addr: SocketAddr, orch: Orchestrator) -> std::io::Result<actix_web::dev::Server> {
    let state = web::Data::new(State { orch });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/metrics", web::get().to(metrics))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .bind(addr)?;
    Ok(server.run())
}

async fn metrics(state: web::Data<State>) -> HttpResponse {
    match state.orch.status().await {
        Ok(statuses) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(render(&statuses)),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}

/// The exposition text. Memory and CPU time are 0 for a service with no live
/// process (not running, or a plugin).
pub fn render(statuses: &[ServiceStatus]) -> String {
    let mut out = String::new();
    let mut family =
        |name: &str, kind: &str, help: &str, value: &dyn Fn(usize) -> Option<String>| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (i, s) in statuses.iter().enumerate() {
                if let Some(v) = value(i) {
                    let _ = writeln!(out, "{name}{{service=\"{}\"}} {v}", escape(&s.name));
                }
            }
        };
    let own = |i: usize| statuses[i].balancer.is_none();
    let running = |s: &ServiceStatus| {
        matches!(
            s.state,
            ServiceState::Starting | ServiceState::Ready | ServiceState::Unhealthy
        )
    };
    family(
        "ringmaster_service_up",
        "gauge",
        "1 when the service is running (starting, ready or unhealthy).",
        &|i| Some(u8::from(running(&statuses[i])).to_string()),
    );
    family(
        "ringmaster_service_ready",
        "gauge",
        "1 when the service is ready.",
        &|i| Some(u8::from(statuses[i].state == ServiceState::Ready).to_string()),
    );
    family(
        "ringmaster_service_restarts_total",
        "counter",
        "Restarts of the service since ringmaster started.",
        &|i| Some(statuses[i].restarts.to_string()),
    );
    family(
        "ringmaster_service_health_latency_seconds",
        "gauge",
        "Duration of the last health probe.",
        &|i| {
            statuses[i]
                .health_latency_ms
                .map(|ms| format!("{}", ms as f64 / 1000.0))
        },
    );
    family(
        "ringmaster_service_processes",
        "gauge",
        "Live processes of the service (tree, group and tagged).",
        &|i| Some(statuses[i].members.len().to_string()),
    );
    family(
        "ringmaster_service_resident_memory_bytes",
        "gauge",
        "Sum of the resident memory of the service's processes.",
        // A replicated service's own row sums its replicas': left out, so that a
        // sum over services counts each process once.
        &|i| own(i).then(|| statuses[i].rss_bytes.unwrap_or(0).to_string()),
    );
    family(
        "ringmaster_service_cpu_seconds_total",
        "counter",
        "CPU time used by the service's live processes.",
        &|i| own(i).then(|| format!("{}", statuses[i].cpu_seconds.unwrap_or(0.0))),
    );
    let balancer = |i: usize| statuses[i].balancer.as_ref();
    family(
        "ringmaster_service_connections",
        "gauge",
        "Connections in flight: through a replicated service's balancer, or to one replica.",
        &|i| {
            balancer(i)
                .map(|b| b.active)
                .or(statuses[i].connections)
                .map(|n| n.to_string())
        },
    );
    family(
        "ringmaster_service_connections_accepted_total",
        "counter",
        "Connections a replicated service's balancer accepted.",
        &|i| balancer(i).map(|b| b.accepted.to_string()),
    );
    family(
        "ringmaster_service_connections_refused_total",
        "counter",
        "Connections a replicated service's balancer closed for want of a ready replica.",
        &|i| balancer(i).map(|b| b.refused.to_string()),
    );
    family(
        "ringmaster_service_replicas_ready",
        "gauge",
        "Replicas of a replicated service that take connections now.",
        &|i| balancer(i).map(|b| b.ready.to_string()),
    );
    out
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family() {
        let s = ServiceStatus {
            name: "api".into(),
            state: ServiceState::Ready,
            reason: None,
            pid: Some(42),
            root_pid: Some(41),
            daemonized: false,
            members: (0..3)
                .map(|pid| ringmaster::MemberStatus {
                    pid,
                    name: "python3".into(),
                    ports: Vec::new(),
                })
                .collect(),
            cpu_percent: Some(12.5),
            rss_bytes: Some(1024),
            cpu_seconds: Some(1.5),
            port: Some(8000),
            restarts: 2,
            last_exit: None,
            since_ms: 0,
            health: Some("ok".into()),
            health_latency_ms: Some(12),
            status_text: None,
            plugin: false,
            balancer: None,
            connections: Some(4),
        };
        let text = render(&[s]);
        assert!(text.contains("ringmaster_service_up{service=\"api\"} 1\n"));
        assert!(text.contains("ringmaster_service_ready{service=\"api\"} 1\n"));
        assert!(text.contains("ringmaster_service_restarts_total{service=\"api\"} 2\n"));
        assert!(text.contains("ringmaster_service_health_latency_seconds{service=\"api\"} 0.012\n"));
        assert!(text.contains("ringmaster_service_processes{service=\"api\"} 3\n"));
        assert!(text.contains("ringmaster_service_resident_memory_bytes{service=\"api\"} 1024\n"));
        assert!(text.contains("ringmaster_service_cpu_seconds_total{service=\"api\"} 1.5\n"));
        assert!(text.contains("ringmaster_service_connections{service=\"api\"} 4\n"));
    }
}
