//! What `ringmaster top` costs the instance it watches: the instance's CPU time
//! (utime + stime of `/proc/PID/stat`, all its threads) over `SECS` seconds
//! (default 20) with no `top` open, then with one `ringmaster top` open in a tmux
//! pane (120×30), alternating, `ROUNDS` times (default 2). Also `top`'s own CPU.
//!
//! The stack: `ticker`, which prints a line every 100 ms and is the first row, so
//! `top` follows its output (the selected service's log stream is the busiest a
//! quiet stack makes); `api`, an HTTP server with a worker sharing its socket and
//! an HTTP probe; `web`, a server with two children and a TCP probe. Each second
//! `top` asks `GET /status`, which costs the instance one census of the process
//! table (and the members' CPU and memory).
//!
//! Linux only (`/proc`), needs tmux. Run:
//! `cargo build --release -p ringmaster-cli -p ringmaster-tests --bins &&
//! cargo bench -p ringmaster-tests --bench top`.
#[cfg(target_os = "linux")]
mod bench {
    use std::path::Path;
    use std::process::Command;
    use std::time::{Duration, Instant};

    use ringmaster_tests::procfs::cpu_time as cpu;
    use ringmaster_tests::{
        built_path, env_or, expect_built, free_port, run_ringmaster, two_services, wait_for,
    };

    /// `ticker`, a loop printing a line every 100 ms, first (the row `top` follows),
    /// then [`two_services`].
    fn config(api: u16, web: u16) -> String {
        two_services(api, web).replacen(
            "[services.api]",
            "[services.ticker]\ncommand = \"while true; do echo tick; sleep 0.1; done\"\n\n[services.api]",
            1,
        )
    }

    /// A tmux server of the bench's own running `ringmaster top` in `dir`.
    struct Top {
        socket: String,
    }

    impl Top {
        fn open(dir: &Path) -> Top {
            let top = Top {
                socket: format!("ringmaster-bench-top-{}", std::process::id()),
            };
            let command = format!("exec '{}' top", built_path("ringmaster").display());
            let ok = top
                .tmux(&["new-session", "-d", "-x", "120", "-y", "30", "-c"])
                .arg(dir)
                .arg(command)
                .status()
                .expect("tmux runs")
                .success();
            assert!(ok, "tmux new-session failed");
            top
        }

        fn tmux(&self, args: &[&str]) -> Command {
            let mut cmd = Command::new("tmux");
            cmd.args(["-L", &self.socket, "-f", "/dev/null"])
                .args(args)
                .env_remove("TMUX");
            cmd
        }

        /// The pid of `ringmaster top` (the pane's process: `exec`).
        fn pid(&self) -> u32 {
            let out = self
                .tmux(&["display-message", "-p", "#{pane_pid}"])
                .output()
                .expect("tmux runs");
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("a pane pid")
        }

        fn screen(&self) -> String {
            let out = self
                .tmux(&["capture-pane", "-p"])
                .output()
                .expect("tmux runs");
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    }

    impl Drop for Top {
        fn drop(&mut self) {
            let _ = self.tmux(&["kill-server"]).status();
        }
    }

    pub fn main() {
        expect_built(
            &["ringmaster", "fake-service"],
            "cargo build --release -p ringmaster-cli -p ringmaster-tests --bins",
        );
        assert!(
            Command::new("tmux")
                .arg("-V")
                .output()
                .is_ok_and(|o| o.status.success()),
            "tmux is not installed"
        );
        let secs = env_or("SECS", 20);
        let rounds = env_or("ROUNDS", 2);
        let window = Duration::from_secs(secs);
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("ringmaster.toml"),
            config(free_port(), free_port()),
        )
        .expect("config");
        run_ringmaster(dir.path(), &["up", "-d"]);
        let pid = ringmaster_os::InstanceLock::owner(&dir.path().join(".ringmaster"))
            .expect("the instance's pid");
        // Settle after the start-up.
        std::thread::sleep(Duration::from_secs(2));

        let share = |d: Duration| d.as_secs_f64() / window.as_secs_f64() * 100.0;
        let mut none = Vec::new();
        let mut with = Vec::new();
        let mut own = Vec::new();
        for round in 1..=rounds {
            let before = cpu(pid);
            std::thread::sleep(window);
            let idle = cpu(pid) - before;
            none.push(idle);
            println!(
                "round {round}: no top:  instance {:>5} ms CPU in {secs} s ({:.2} % of a core)",
                idle.as_millis(),
                share(idle)
            );

            let top = Top::open(dir.path());
            wait_for("top to show the stack", Duration::from_secs(10), || {
                top.screen().contains("tick")
            });
            let top_pid = top.pid();
            let (before, top_before) = (cpu(pid), cpu(top_pid));
            let started = Instant::now();
            std::thread::sleep(window);
            let (busy, top_used) = (cpu(pid) - before, cpu(top_pid) - top_before);
            assert!(started.elapsed() < window + Duration::from_secs(1));
            drop(top);
            with.push(busy);
            own.push(top_used);
            println!(
                "round {round}: one top: instance {:>5} ms CPU in {secs} s ({:.2} % of a core); top itself {} ms ({:.2} %)",
                busy.as_millis(),
                share(busy),
                top_used.as_millis(),
                share(top_used)
            );
        }
        run_ringmaster(dir.path(), &["down"]);
        let mean = |v: &[Duration]| v.iter().sum::<Duration>() / v.len().max(1) as u32;
        let (n, w, o) = (mean(&none), mean(&with), mean(&own));
        println!(
            "\n| instance CPU over {secs} s (mean of {rounds}) | ms | % of a core |\n|---|---:|---:|\n\
             | no `top` | {} | {:.2} |\n| one `top` open | {} | {:.2} |\n| added by `top` | {} | {:.2} |\n\
             | `top` itself | {} | {:.2} |",
            n.as_millis(),
            share(n),
            w.as_millis(),
            share(w),
            w.saturating_sub(n).as_millis(),
            share(w.saturating_sub(n)),
            o.as_millis(),
            share(o)
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    #[cfg(target_os = "linux")]
    bench::main();
    #[cfg(not(target_os = "linux"))]
    eprintln!("the top bench reads /proc: Linux only");
}
