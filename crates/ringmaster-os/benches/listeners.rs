//! Benchmark (not a timed test): who holds a port, in-process, against `lsof` and
//! `ss` run as commands, on a machine with ~500 extra idle processes.
//!
//! Run with `cargo bench -p ringmaster-os --bench listeners`. It spawns
//! `BENCH_PROCS` (default 500) `sleep 600` children, binds one loopback listener,
//! then takes the median wall time of `listeners(port)` over 50 runs and of
//! `lsof -ti :PORT` and `ss -ltnp 'sport = :PORT'` over 20 runs each, the three
//! interleaved so that a busy moment weighs on all alike. Every child is killed by
//! pid at the end. Linux only (elsewhere it says so and exits).

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

    /// The wall time of one run of `program`, checking its stdout names `pid`;
    /// `None` when the program cannot be run here.
    fn time_command(program: &str, args: &[&str], pid: u32) -> Option<Duration> {
        let start = Instant::now();
        let out = Command::new(program)
            .args(args)
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let elapsed = start.elapsed();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&pid.to_string()),
            "{program} {args:?} did not name pid {pid}: {text}"
        );
        Some(elapsed)
    }

    /// The wall time of one in-process lookup, checking it finds `pid`.
    fn time_in_process(port: u16, pid: u32) -> Duration {
        let start = Instant::now();
        let found = ringmaster_os::listeners(port).expect("listeners");
        let elapsed = start.elapsed();
        assert!(
            found.iter().any(|l| l.pid == pid),
            "listeners missed pid {pid}: {found:?}"
        );
        elapsed
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

        // Warm-up, then the three methods interleaved, so that a busy moment on
        // the machine weighs on all of them alike.
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
        let in_process = median(ours);
        let lsof = (!lsof.is_empty()).then(|| median(lsof));
        let ss = (!ss.is_empty()).then(|| median(ss));

        println!("processes on the machine: {total} ({procs} idle `sleep 600` children)");
        println!(
            "listeners({port}) in-process: median {:.3} ms over {IN_PROCESS_RUNS} runs",
            ms(in_process)
        );
        if !has_lsof {
            println!("lsof: not installed, not measured");
        }
        if !has_ss {
            println!("ss: not installed, not measured");
        }
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
