//! ringmaster at N services: N fake-services, each an HTTP server on a port of its
//! own, probed by an HTTP GET every second, with fan-out dependencies (service `s{i}`
//! depends on `s{(i-1)/10}`: one root, ten below it, a hundred below those, ...).
//! For each N of `BENCH_SCALE` (default `10,100,500`), `BENCH_ROUNDS` times (default
//! 3):
//! - `up -d` until every service is ready (the command's wall time; it polls the
//!   instance every 50 ms);
//! - the instance's RSS (`VmRSS`) and CPU (utime + stime, all threads) over
//!   `BENCH_WINDOW` seconds (default 10) once `up -d` returned and 3 s passed;
//! - `status --json`: the command's wall time, 10 times, median and max;
//! - `down`: the command's wall time (the whole cascade, then the check that every
//!   process is gone and every port free), and the cascade's own duration as the
//!   instance reports it;
//! - then, from the OS: no process of the stack left and every port free.
//!
//! Linux only (`/proc`). Run: `cargo build --release -p ringmaster-cli -p
//! ringmaster-tests --bins && BENCH_SCALE=500 cargo bench -p ringmaster-tests --bench
//! scale` (`just bench-scale 500`).
#[cfg(target_os = "linux")]
mod bench {
    use std::net::TcpListener;
    use std::path::Path;
    use std::process::Command;
    use std::time::{Duration, Instant};

    use ringmaster_tests::procfs::{cpu_time as cpu, status_kb};
    use ringmaster_tests::{
        built_path, env_or, expect_built, pid_alive, port_answers, run_ringmaster, wait_for,
    };

    /// `n` distinct free loopback ports: all bound at once, then released.
    fn free_ports(n: usize) -> Vec<u16> {
        let held: Vec<TcpListener> = (0..n)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
            .collect();
        held.iter()
            .map(|l| l.local_addr().expect("bound").port())
            .collect()
    }

    fn config(ports: &[u16]) -> String {
        let fake = built_path("fake-service");
        let fake = fake.display();
        let mut text = String::from("[settings]\nshutdown_timeout = \"60s\"\n");
        for (i, port) in ports.iter().enumerate() {
            text.push_str(&format!(
                "\n[services.s{i}]\ncommand = \"'{fake}' --listen {port} --http\"\nport = {port}\n\
                 allow = [\"fake-service\"]\n\
                 health = {{ http = \"http://127.0.0.1:{port}/health\", interval = \"1s\" }}\n\
                 stop = {{ timeout = \"5s\" }}\n"
            ));
            if i > 0 {
                text.push_str(&format!("depends_on = [\"s{}\"]\n", (i - 1) / 10));
            }
        }
        text
    }

    /// The pids of processes whose command line names `dir` or one of the stack's
    /// fake-services (all run with this bench's own `--listen` ports).
    fn fake_services_left(ports: &[u16]) -> Vec<u32> {
        let fake = built_path("fake-service");
        let fake = fake.to_string_lossy().into_owned();
        let mut left = Vec::new();
        for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if args.first().map(String::as_str) != Some(fake.as_str()) {
                continue;
            }
            let port = args
                .iter()
                .position(|a| a == "--listen")
                .and_then(|i| args.get(i + 1))
                .and_then(|p| p.parse::<u16>().ok());
            if port.is_some_and(|p| ports.contains(&p)) {
                left.push(pid);
            }
        }
        left
    }

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    /// One round at `n` services.
    struct Round {
        up: Duration,
        rss: u64,
        cpu_share: f64,
        status: Vec<f64>,
        down: Duration,
        cascade: Option<f64>,
    }

    /// The cascade's duration from the first line of `down`'s report, `stopped in
    /// 412ms` or `stopped in 1.2s`, in milliseconds.
    fn cascade_of(report: &str) -> Option<f64> {
        let first = report.lines().next()?;
        let took = first.split(" in ").nth(1)?.split_whitespace().next()?;
        if let Some(v) = took.strip_suffix("ms") {
            v.parse().ok()
        } else {
            took.strip_suffix('s')?
                .parse::<f64>()
                .ok()
                .map(|s| s * 1000.0)
        }
    }

    fn round(dir: &Path, n: usize, window: Duration) -> Round {
        let ports = free_ports(n);
        std::fs::write(dir.join("ringmaster.toml"), config(&ports)).expect("config");
        let up = run_ringmaster(dir, &["up", "-d"]);
        let pid = ringmaster_os::InstanceLock::owner(&dir.join(".ringmaster"))
            .expect("the instance runs");
        std::thread::sleep(Duration::from_secs(3));
        let cpu_before = cpu(pid);
        let started = Instant::now();
        std::thread::sleep(window);
        let cpu_share = (cpu(pid) - cpu_before).as_secs_f64() / started.elapsed().as_secs_f64();
        let rss = status_kb(pid, "VmRSS:") * 1024;
        let status = (0..10)
            .map(|_| ms(run_ringmaster(dir, &["status", "--json"])))
            .collect();
        let started = Instant::now();
        let out = Command::new(built_path("ringmaster"))
            .arg("down")
            .current_dir(dir)
            .output()
            .expect("ringmaster runs");
        let down = started.elapsed();
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "down failed:\n{report}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let left = fake_services_left(&ports);
        assert!(left.is_empty(), "processes left after down: {left:?}");
        // It lets go of its lock just before it exits.
        wait_for("the instance to exit", Duration::from_secs(5), || {
            !pid_alive(pid)
        });
        let held: Vec<u16> = ports.iter().copied().filter(|p| port_answers(*p)).collect();
        assert!(
            held.is_empty(),
            "ports still answering after down: {held:?}"
        );
        Round {
            up,
            rss,
            cpu_share,
            status,
            down,
            cascade: cascade_of(&report),
        }
    }

    pub fn main() {
        expect_built(
            &["ringmaster", "fake-service"],
            "cargo build --release -p ringmaster-cli -p ringmaster-tests --bins",
        );
        let sizes: Vec<usize> = std::env::var("BENCH_SCALE")
            .unwrap_or_else(|_| "10,100,500".into())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        let rounds = env_or("BENCH_ROUNDS", 3);
        let window = Duration::from_secs(env_or("BENCH_WINDOW", 10));
        println!(
            "| N | round | up -d to all ready | RSS | CPU (% of a core) | per 10 services | \
             status --json median / max | down | of which the cascade |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for &n in &sizes {
            for r in 1..=rounds {
                let dir = tempfile::tempdir().expect("temp dir");
                let round = round(dir.path(), n, window);
                let status_max = round.status.iter().copied().fold(0.0, f64::max);
                println!(
                    "| {n} | {r} | {:.2} s | {:.1} MB | {:.1} % | {:.2} % | {:.0} / {:.0} ms | {:.2} s | {} |",
                    round.up.as_secs_f64(),
                    round.rss as f64 / 1e6,
                    round.cpu_share * 100.0,
                    round.cpu_share * 100.0 * 10.0 / n as f64,
                    median(round.status.clone()),
                    status_max,
                    round.down.as_secs_f64(),
                    round
                        .cascade
                        .map_or("?".into(), |c| format!("{:.2} s", c / 1000.0)),
                );
            }
        }
    }
}

fn main() {
    #[cfg(target_os = "linux")]
    bench::main();
}
