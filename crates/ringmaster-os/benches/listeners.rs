//! Benchmark (not a timed test): who holds a port, in-process, against `lsof` and
//! `ss` run as commands, on a machine with ~500 extra idle processes.
//!
//! Run with `cargo bench -p ringmaster-os --bench listeners`. It spawns
//! `BENCH_PROCS` (default 500) `sleep 600` children, binds one loopback listener,
//! then takes the median of `listeners(port)` over 50 runs and of `lsof -ti :PORT`
//! and `ss -ltnp 'sport = :PORT'` over 20 runs each, the three interleaved so that
//! a busy moment weighs on all alike. It reports wall time, and CPU time (user +
//! system, all threads; for the commands, the reaped child's), which a busy machine
//! disturbs much less. Every child is killed by pid at the end. Linux only
//! (elsewhere it says so and exits).

#[cfg(target_os = "linux")]
fn main() {
    bench::run();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("the listeners benchmark runs on Linux only");
}

#[cfg(target_os = "linux")]
mod common;

#[cfg(target_os = "linux")]
mod bench {
    use super::common::{cpu_time, Children};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    const IN_PROCESS_RUNS: usize = 50;
    const COMMAND_RUNS: usize = 20;

    /// One measurement: wall time and CPU time.
    #[derive(Clone, Copy)]
    struct Sample {
        wall: Duration,
        cpu: Duration,
    }

    /// Medians of a series of samples.
    struct Medians {
        wall: Duration,
        cpu: Duration,
    }

    fn medians(samples: &[Sample]) -> Medians {
        let median = |mut v: Vec<Duration>| {
            v.sort_unstable();
            v[v.len() / 2]
        };
        Medians {
            wall: median(samples.iter().map(|s| s.wall).collect()),
            cpu: median(samples.iter().map(|s| s.cpu).collect()),
        }
    }

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    /// One run of `program`, checking its stdout names `pid`; `None` when the
    /// program cannot be run here.
    fn time_command(program: &str, args: &[&str], pid: u32) -> Option<Sample> {
        let cpu_before = cpu_time(libc::RUSAGE_CHILDREN);
        let start = Instant::now();
        let out = Command::new(program)
            .args(args)
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let wall = start.elapsed();
        let cpu = cpu_time(libc::RUSAGE_CHILDREN).saturating_sub(cpu_before);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&pid.to_string()),
            "{program} {args:?} did not name pid {pid}: {text}"
        );
        Some(Sample { wall, cpu })
    }

    /// One in-process lookup, checking it finds `pid`.
    fn time_in_process(port: u16, pid: u32) -> Sample {
        let cpu_before = cpu_time(libc::RUSAGE_SELF);
        let start = Instant::now();
        let found = ringmaster_os::listeners(port).expect("listeners");
        let wall = start.elapsed();
        let cpu = cpu_time(libc::RUSAGE_SELF).saturating_sub(cpu_before);
        assert!(
            found.iter().any(|l| l.pid == pid),
            "listeners missed pid {pid}: {found:?}"
        );
        Sample { wall, cpu }
    }

    fn report(what: &str, runs: usize, m: &Medians, ours: &Medians) {
        println!(
            "{what}: median wall {:.3} ms, CPU {:.3} ms over {runs} runs; in-process is {:.1}x faster (wall), {:.1}x less CPU",
            ms(m.wall),
            ms(m.cpu),
            m.wall.as_secs_f64() / ours.wall.as_secs_f64(),
            m.cpu.as_secs_f64() / ours.cpu.as_secs_f64().max(1e-6),
        );
    }

    pub fn run() {
        let procs: usize = std::env::var("BENCH_PROCS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(500);
        let mut children = Children(Vec::with_capacity(procs));
        for _ in 0..procs {
            let child = Command::new("sleep")
                .arg("600")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawning `sleep 600`");
            children.0.push(child);
        }
        let total = std::fs::read_dir("/proc")
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                    .count()
            })
            .unwrap_or(0);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let me = std::process::id();

        // Warm-up, then the three methods interleaved.
        let port_arg = format!(":{port}");
        let filter = format!("sport = :{port}");
        let lsof_args = ["-ti", port_arg.as_str()];
        let ss_args = ["-ltnp", filter.as_str()];
        time_in_process(port, me);
        let has_lsof = time_command("lsof", &lsof_args, me).is_some();
        let has_ss = time_command("ss", &ss_args, me).is_some();
        let per_round = IN_PROCESS_RUNS.div_ceil(COMMAND_RUNS);
        let (mut ours, mut lsof, mut ss) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..COMMAND_RUNS {
            for _ in 0..per_round {
                if ours.len() < IN_PROCESS_RUNS {
                    ours.push(time_in_process(port, me));
                }
            }
            if has_lsof {
                lsof.extend(time_command("lsof", &lsof_args, me));
            }
            if has_ss {
                ss.extend(time_command("ss", &ss_args, me));
            }
        }
        let ours = medians(&ours);

        println!("processes on the machine: {total} ({procs} idle `sleep 600` children)");
        println!(
            "listeners({port}) in-process: median wall {:.3} ms, CPU {:.3} ms over {IN_PROCESS_RUNS} runs",
            ms(ours.wall),
            ms(ours.cpu)
        );
        if has_lsof && !lsof.is_empty() {
            report(
                &format!("lsof -ti :{port}"),
                COMMAND_RUNS,
                &medians(&lsof),
                &ours,
            );
        } else {
            println!("lsof: not installed, not measured");
        }
        if has_ss && !ss.is_empty() {
            report(
                &format!("ss -ltnp 'sport = :{port}'"),
                COMMAND_RUNS,
                &medians(&ss),
                &ours,
            );
        } else {
            println!("ss: not installed, not measured");
        }
        println!("target: in-process wall time at most 1/10 of lsof's");
        drop(listener);
        drop(children);
    }
}
