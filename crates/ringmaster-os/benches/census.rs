//! Benchmark (not a timed test): what one census costs — the scan that gives
//! `status` every running service's members, ports and main pid — on a machine
//! with ~500 extra processes, 10 services of 50 tagged processes each.
//!
//! Run with `cargo bench -p ringmaster-os --bench census`. It spawns `BENCH_PROCS`
//! (default 500) `sleep 600` children, each carrying the tag of one of 10
//! services, then takes the median of `census` over the 10 services (50 runs),
//! and, for comparison, of one bare scan of the process table (`snapshot_brief`).
//! Wall time and CPU time (user + system, all threads). Every child is killed by
//! pid at the end. Linux only (elsewhere it says so and exits).

#[cfg(target_os = "linux")]
fn main() {
    bench::run();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("the census benchmark runs on Linux only");
}

#[cfg(target_os = "linux")]
mod common;

#[cfg(target_os = "linux")]
mod bench {
    use super::common::{cpu_time, Children};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use ringmaster_os::{census, CensusTarget, Tag, TAG_ENV};

    const RUNS: usize = 50;
    const SERVICES: usize = 10;

    fn median(mut v: Vec<Duration>) -> f64 {
        v.sort_unstable();
        v[v.len() / 2].as_secs_f64() * 1000.0
    }

    fn time(mut f: impl FnMut()) -> (f64, f64) {
        let (mut walls, mut cpus) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let (c0, t0) = (cpu_time(libc::RUSAGE_SELF), Instant::now());
            f();
            walls.push(t0.elapsed());
            cpus.push(cpu_time(libc::RUSAGE_SELF).saturating_sub(c0));
        }
        (median(walls), median(cpus))
    }

    pub fn run() {
        let procs: usize = std::env::var("BENCH_PROCS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(500);
        let tags: Vec<Tag> = (0..SERVICES)
            .map(|i| Tag::new("rm-census-bench", format!("svc{i}")))
            .collect();
        let mut children = Children(Vec::new());
        for i in 0..procs {
            let child = Command::new("sleep")
                .arg("600")
                .env(TAG_ENV, tags[i % SERVICES].env_value())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn sleep");
            children.0.push(child);
        }
        let total = std::fs::read_dir("/proc")
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                    .count()
            })
            .unwrap_or(0);
        let targets: Vec<CensusTarget> = tags
            .iter()
            .map(|t| CensusTarget {
                tag: Some(t.clone()),
                ..CensusTarget::default()
            })
            .collect();
        let found = census(&targets).expect("census");
        for c in &found {
            assert_eq!(c.members.len(), procs / SERVICES, "{c:?}");
        }
        let (cw, cc) = time(|| {
            census(&targets).expect("census");
        });
        let (sw, sc) = time(|| {
            ringmaster_os::process::snapshot_brief().expect("scan");
        });
        println!(
            "census of {SERVICES} services ({} members each) among {total} processes, median of {RUNS}:",
            procs / SERVICES
        );
        println!("  census          wall {cw:.2} ms  cpu {cc:.2} ms");
        println!("  bare table scan wall {sw:.2} ms  cpu {sc:.2} ms");
        drop(children);
    }
}
