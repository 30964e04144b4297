//! Stop latency of a 3-level chain (db ← api ← web), each a fake-service that
//! listens on a port, answers HTTP and exits at once on SIGTERM: the shutdown
//! cascade's wall time (stop, wait until gone, port checked free, level by
//! level), and how much of it the three `stop()` calls themselves took.
//! Run: `cargo build --release -p ringmaster-tests --bin fake-service && cargo
//! bench -p ringmaster --bench stop_chain`.
mod common;

use std::time::{Duration, Instant};

use common::*;
use ringmaster::config::{Config, ServiceConfigBuilder};
use ringmaster::{Options, Orchestrator};

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    actix_rt::System::new().block_on(async move {
        let mut totals = Vec::new();
        let mut beyond = Vec::new();
        for _ in 0..runs {
            let dir = tempfile::tempdir().expect("temp dir");
            let (a, b, c) = (free_port(), free_port(), free_port());
            let svc = |name: &str, port: u16| {
                ServiceConfigBuilder::new(name, fake(&format!("--listen {port} --http")))
                    .port(port)
                    .health_http(format!("http://127.0.0.1:{port}/"))
            };
            let config = Config::builder(dir.path())
                .state_dir(dir.path().join("state"))
                .service(svc("db", a))
                .service(svc("api", b).depends_on("db"))
                .service(svc("web", c).depends_on("api"))
                .build()
                .expect("valid");
            let orch = Orchestrator::start(config, Options::default()).expect("starts");
            orch.up(None).await.expect("up");
            let started = Instant::now();
            let report = orch
                .shutdown(Duration::from_secs(10))
                .await
                .expect("shutdown");
            let total = started.elapsed();
            assert!(report.clean(), "{report:?}");
            assert!(report.services.iter().all(|s| s.graceful()));
            // Each level's stop() covers signal → every member gone; what is left
            // is the orchestrator's own work (messages, port checks).
            let stops: Duration = report.services.iter().map(|s| s.report.elapsed).sum();
            totals.push(total);
            beyond.push(total.saturating_sub(stops));
        }
        println!("3-level chain shutdown over {runs} runs:");
        println!(
            "  cascade wall time:       p50 {}  p95 {}  max {}",
            ms(percentile(&totals, 50.0)),
            ms(percentile(&totals, 95.0)),
            ms(percentile(&totals, 100.0))
        );
        println!(
            "  beyond the three stop() calls: p50 {}  p95 {}  max {}",
            ms(percentile(&beyond, 50.0)),
            ms(percentile(&beyond, 95.0)),
            ms(percentile(&beyond, 100.0))
        );
    });
}
