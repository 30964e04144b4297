//! Benchmark (not a timed test): what one census costs — the scan that gives
//! `status` every running service's members, ports, main pid, memory and CPU
//! time — on a machine with ~500 extra processes, 10 services of 50 tagged
//! processes each.
//!
//! Run with `cargo bench -p ringmaster-os --bench census`. It spawns `BENCH_PROCS`
//! (default 500) `sleep 600` children, each carrying the tag of one of 10
//! services, then takes the median of `BENCH_RUNS` (default 50) runs of: `census`
//! over the 10 services, the same without what each process costs
//! (`census_brief`), and one bare scan of the process table with and without it
//! (`snapshot_usage`, `snapshot_brief`), and the full scan (`snapshot`: exe,
//! command line, uid), which the metrics endpoint used to take on top of the
//! census before it read memory and CPU through sysinfo. The five take turns within each run, in
//! an order that rotates, so that a busy moment of the machine does not land on
//! one of them. Wall time and CPU time (user + system, all threads). Every child
//! is killed by pid at the end. Linux only (elsewhere it says so and exits).

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

    use ringmaster_os::process::{snapshot, snapshot_brief, snapshot_usage};
    use ringmaster_os::{census, census_brief, CensusTarget, Tag, TAG_ENV};

    const SERVICES: usize = 10;

    fn median(mut v: Vec<Duration>) -> f64 {
        v.sort_unstable();
        v[v.len() / 2].as_secs_f64() * 1000.0
    }

    /// Median wall and CPU time of each of `jobs` over `runs` runs, the jobs
    /// taking turns within a run (first job rotating).
    fn time(runs: usize, jobs: &mut [&mut dyn FnMut()]) -> Vec<(f64, f64)> {
        let n = jobs.len();
        let mut walls = vec![Vec::new(); n];
        let mut cpus = vec![Vec::new(); n];
        for run in 0..runs {
            for k in 0..n {
                let j = (run + k) % n;
                let (c0, t0) = (cpu_time(libc::RUSAGE_SELF), Instant::now());
                (jobs[j])();
                walls[j].push(t0.elapsed());
                cpus[j].push(cpu_time(libc::RUSAGE_SELF).saturating_sub(c0));
            }
        }
        walls
            .into_iter()
            .zip(cpus)
            .map(|(w, c)| (median(w), median(c)))
            .collect()
    }

    fn env(name: &str, default: usize) -> usize {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    pub fn run() {
        let procs = env("BENCH_PROCS", 500);
        let runs = env("BENCH_RUNS", 50).max(1);
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
            assert!(c.rss_bytes.is_some_and(|r| r > 0), "{c:?}");
        }
        let figures = time(
            runs,
            &mut [
                &mut || {
                    census(&targets).expect("census");
                },
                &mut || {
                    census_brief(&targets).expect("census");
                },
                &mut || {
                    snapshot_usage().expect("scan");
                },
                &mut || {
                    snapshot_brief().expect("scan");
                },
                &mut || {
                    snapshot().expect("scan");
                },
            ],
        );
        println!(
            "census of {SERVICES} services ({} members each) among {total} processes, median of {runs}:",
            procs / SERVICES
        );
        let names = [
            "census (with usage)        ",
            "census_brief (no usage)    ",
            "table scan, snapshot_usage ",
            "table scan, snapshot_brief ",
            "table scan, snapshot (full)",
        ];
        for (name, (wall, cpu)) in names.iter().zip(figures) {
            println!("  {name} wall {wall:.2} ms  cpu {cpu:.2} ms");
        }
        drop(children);
    }
}
