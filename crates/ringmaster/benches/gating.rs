//! Gating latency: from the dependency's first healthy HTTP response to the
//! dependent's spawn (its `Spawned` event reaching a subscriber), over many
//! fresh orchestrators. The dependency's health endpoint is served by this bench
//! (503 until a moment, then 200), so the first healthy response is timed where
//! it is written. Run: `cargo build --release -p ringmaster-tests --bin
//! fake-service && cargo bench -p ringmaster --bench gating`.
mod common;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use common::*;
use ringmaster::config::{Config, ServiceConfigBuilder};
use ringmaster::messages::EventKind;
use ringmaster::{Options, Orchestrator};

#[derive(Default)]
struct Health {
    ready_at: Option<Instant>,
    first_ok: Option<Instant>,
}

/// Serves `GET` on `port`: 503 before `ready_at`, 200 after (recording the first).
fn serve(state: Arc<Mutex<Health>>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let state = state.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let ok = state
                        .lock()
                        .expect("lock")
                        .ready_at
                        .is_some_and(|t| Instant::now() >= t);
                    let resp: &[u8] = if ok {
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
                    } else {
                        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
                    };
                    if s.write_all(resp).is_err() {
                        return;
                    }
                    if ok {
                        let now = Instant::now();
                        let mut st = state.lock().expect("lock");
                        if st.first_ok.is_none() {
                            st.first_ok = Some(now);
                        }
                    }
                }
            });
        }
    });
    port
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let state = Arc::new(Mutex::new(Health::default()));
    let port = serve(state.clone());
    let mut latencies = Vec::new();
    actix_rt::System::new().block_on(async move {
        for _ in 0..runs {
            let dir = tempfile::tempdir().expect("temp dir");
            let config = Config::builder(dir.path())
                .state_dir(dir.path().join("state"))
                .service(
                    ServiceConfigBuilder::new("dep", fake(""))
                        .health_http(format!("http://127.0.0.1:{port}/health")),
                )
                .service(ServiceConfigBuilder::new("app", fake("")).depends_on("dep"))
                .build()
                .expect("valid");
            {
                let mut st = state.lock().expect("lock");
                st.ready_at = Some(Instant::now() + Duration::from_millis(120));
                st.first_ok = None;
            }
            let orch = Orchestrator::start(config, Options::default()).expect("starts");
            let events = Events::default();
            orch.subscribe(Recorder(events.clone()).start().recipient());
            orch.up(None).await.expect("up");
            // The subscriber may still be handling the event.
            let mut spawned = None;
            for _ in 0..100 {
                spawned = events.first("app", |e| matches!(e.kind, EventKind::Spawned { .. }));
                if spawned.is_some() {
                    break;
                }
                actix_rt::time::sleep(Duration::from_millis(1)).await;
            }
            let first_ok = state
                .lock()
                .expect("lock")
                .first_ok
                .expect("a healthy response");
            let spawned = spawned.expect("app spawned");
            latencies.push(spawned.saturating_duration_since(first_ok));
            let report = orch
                .shutdown(Duration::from_secs(10))
                .await
                .expect("shutdown");
            assert!(report.clean(), "{report:?}");
        }
        println!("gating latency over {runs} runs (first healthy response → dependent spawned):");
        println!(
            "  min {}  p50 {}  p95 {}  max {}",
            ms(percentile(&latencies, 0.0)),
            ms(percentile(&latencies, 50.0)),
            ms(percentile(&latencies, 95.0)),
            ms(percentile(&latencies, 100.0)),
        );
    });
}
