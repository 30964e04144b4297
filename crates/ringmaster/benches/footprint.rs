//! The orchestrator's own footprint while it supervises 50 services (each a
//! fake-service answering HTTP) with an HTTP health check every second: this
//! process's resident memory (VmRSS, and the peak VmHWM) and its CPU time
//! (utime + stime from /proc/self/stat) over a measured window after start-up.
//! Linux only. Run: `cargo build --release -p ringmaster-tests --bin
//! fake-service && cargo bench -p ringmaster --bench footprint` (window:
//! `BENCH_SECONDS`, default 30).
#[cfg(target_os = "linux")]
mod common;

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("footprint: Linux only (/proc/self)");
}

#[cfg(target_os = "linux")]
fn main() {
    imp::main();
}

#[cfg(target_os = "linux")]
mod imp {

    use std::time::{Duration, Instant};

    use crate::common::*;
    use ringmaster::config::{Config, ServiceConfigBuilder};
    use ringmaster::{Options, Orchestrator, ServiceState};

    fn status_kb(key: &str) -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(key))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }

    /// utime + stime of this process, in clock ticks.
    fn cpu_ticks() -> u64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        n(11) + n(12)
    }

    pub fn main() {
        let services: usize = std::env::var("BENCH_SERVICES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(50);
        let seconds: u64 = std::env::var("BENCH_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(30);
        // SAFETY: sysconf only reads a configuration value.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        actix_rt::System::new().block_on(async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut b = Config::builder(dir.path()).state_dir(dir.path().join("state"));
        for i in 0..services {
            let p = free_port();
            b = b.service(
                ServiceConfigBuilder::new(format!("s{i:02}"), fake(&format!("--listen {p} --http")))
                    .port(p)
                    .health_http(format!("http://127.0.0.1:{p}/health"))
                    .health_interval(Duration::from_secs(1)),
            );
        }
        let config = b.build().expect("valid");
        let rss_before = status_kb("VmRSS:");
        let options = Options {
            subreaper: std::env::var("BENCH_SUBREAPER").map_or(true, |v| v != "0"),
            ..Options::default()
        };
        let orch = Orchestrator::start(config, options).expect("starts");
        let up = Instant::now();
        orch.up(None).await.expect("up");
        let up_took = up.elapsed();
        let (rss_up, threads_up) = (status_kb("VmRSS:"), status_kb("Threads:"));
        // Let the start-up's blocking threads finish and go idle.
        actix_rt::time::sleep(Duration::from_secs(12)).await;
        let threads = status_kb("Threads:");
        let (t0, c0) = (Instant::now(), cpu_ticks());
        let mut rss_max = 0;
        while t0.elapsed() < Duration::from_secs(seconds) {
            actix_rt::time::sleep(Duration::from_millis(500)).await;
            rss_max = rss_max.max(status_kb("VmRSS:"));
        }
        let (wall, cpu) = (t0.elapsed(), cpu_ticks() - c0);
        let status = orch.status().await.expect("status");
        let ready = status.iter().filter(|s| s.state == ServiceState::Ready).count();
        let probes_ok = status.iter().filter(|s| s.health.as_deref() == Some("ok")).count();
        let rss_end = status_kb("VmRSS:");
        let hwm = status_kb("VmHWM:");
        let report = orch.shutdown(Duration::from_secs(20)).await.expect("shutdown");
        assert!(report.clean(), "{report:?}");
        let cpu_pct = cpu as f64 / hz / wall.as_secs_f64() * 100.0;
        println!("{services} services, HTTP health check every 1 s, measured over {:.0} s:", wall.as_secs_f64());
        println!("  up took {}; {ready} ready, {probes_ok} with a healthy last probe", ms(up_took));
        println!("  right after up: RSS {rss_up} KiB, {threads_up} threads; in the window: {threads} threads");
        println!("  RSS before start {rss_before} KiB, during the window max {rss_max} KiB, at end {rss_end} KiB, peak (VmHWM) {hwm} KiB");
        println!("  CPU {cpu_pct:.2} % of one core ({cpu} ticks at {hz} Hz)");
    });
    }
}
