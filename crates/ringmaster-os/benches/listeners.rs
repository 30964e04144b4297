//! Benchmark (not a timed test): who holds a port, in-process, against `lsof` and
//! `ss` run as commands, on a machine with ~500 extra idle processes.
//!
//! Run with `cargo bench -p ringmaster-os --bench listeners`. It spawns
//! `BENCH_PROCS` (default 500) `sleep 600` children, binds one loopback listener,
//! then takes the median wall time of `listeners(port)` over 50 runs and of
//! `lsof -ti :PORT` and `ss -ltnp 'sport = :PORT'` over 20 runs each. Every child
//! is killed by pid at the end. Linux only (elsewhere it says so and exits).

#[cfg(target_os = "linux")]
fn main() {
    bench::run();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("the listeners benchmark runs on Linux only");
}

#[cfg(target_os = "linux")]
mod bench {
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    const IN_PROCESS_RUNS: usize = 50;
    const COMMAND_RUNS: usize = 20;

    /// Kills (by pid) and reaps every child when dropped, even on a panic.
    struct Children(Vec<Child>);

    impl Drop for Children {
        fn drop(&mut self) {
            for c in &mut self.0 {
                let _ = c.kill();
            }
            for c in &mut self.0 {
                let _ = c.wait();
            }
        }
    }

    fn median(mut samples: Vec<Duration>) -> Duration {
        samples.sort_unstable();
        samples[samples.len() / 2]
    }

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    /// Median wall time of `cmd` over `runs`, checking each run's stdout names `pid`.
    fn time_command(program: &str, args: &[&str], pid: u32, runs: usize) -> Option<Duration> {
        let mut samples = Vec::with_capacity(runs);
        for _ in 0..runs + 1 {
            let start = Instant::now();
            let out = Command::new(program)
                .args(args)
                .stderr(Stdio::null())
                .output();
            let elapsed = start.elapsed();
            let out = match out {
                Ok(o) => o,
                Err(e) => {
                    println!("{program}: not run ({e})");
                    return None;
                }
            };
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains(&pid.to_string()),
                "{program} {args:?} did not name pid {pid}: {text}"
            );
            samples.push(elapsed);
        }
        samples.remove(0); // the first run warms caches
        Some(median(samples))
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

        let mut samples = Vec::with_capacity(IN_PROCESS_RUNS);
        for _ in 0..IN_PROCESS_RUNS + 1 {
            let start = Instant::now();
            let found = ringmaster_os::listeners(port).expect("listeners");
            samples.push(start.elapsed());
            assert!(
                found.iter().any(|l| l.pid == me),
                "listeners missed us: {found:?}"
            );
        }
        samples.remove(0);
        let in_process = median(samples);

        let port_arg = format!(":{port}");
        let filter = format!("sport = :{port}");
        let lsof = time_command("lsof", &["-ti", &port_arg], me, COMMAND_RUNS);
        let ss = time_command("ss", &["-ltnp", &filter], me, COMMAND_RUNS);

        println!("processes on the machine: {total} ({procs} idle `sleep 600` children)");
        println!(
            "listeners({port}) in-process: median {:.3} ms over {IN_PROCESS_RUNS} runs",
            ms(in_process)
        );
        if let Some(l) = lsof {
            println!(
                "lsof -ti :{port}: median {:.3} ms over {COMMAND_RUNS} runs (in-process is {:.1}x faster; target >= 10x)",
                ms(l),
                l.as_secs_f64() / in_process.as_secs_f64()
            );
        }
        if let Some(s) = ss {
            println!(
                "ss -ltnp 'sport = :{port}': median {:.3} ms over {COMMAND_RUNS} runs (in-process is {:.1}x faster)",
                ms(s),
                s.as_secs_f64() / in_process.as_secs_f64()
            );
        }
        drop(listener);
        drop(children);
    }
}
