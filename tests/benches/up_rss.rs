//! The resident memory of a running `ringmaster up`: a foreground `up` of a
//! two-service stack (`api`, an HTTP fake-service with a worker sharing its
//! socket and an HTTP probe; `web`, a fake-service with two children and a TCP
//! probe, started once `api` is ready), read from `/proc/PID/status` once both are
//! ready and three `status` calls were answered: `VmRSS`, and of it `RssAnon`
//! (heap, stacks) and `RssFile` (program text and data paged in, shared libraries).
//! `ROUNDS` rounds (default 5); the binary is `RINGMASTER` (default: the one built
//! beside this bench).
//!
//! Linux only (`/proc`). Run: `cargo build --release -p ringmaster-cli -p
//! ringmaster-tests --bins && cargo bench -p ringmaster-tests --bench up_rss`.
#[cfg(target_os = "linux")]
mod bench {
    use std::path::PathBuf;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use ringmaster_tests::procfs::status_kb;
    use ringmaster_tests::{built_path, env_or, free_port, two_services, wait_for};

    pub fn main() {
        let bin = std::env::var_os("RINGMASTER")
            .map(PathBuf::from)
            .unwrap_or_else(|| built_path("ringmaster"));
        assert!(bin.exists(), "{} is not built", bin.display());
        let rounds = env_or("ROUNDS", 5);
        println!("{}", bin.display());
        println!("| round | VmRSS | RssAnon | RssFile | threads |");
        println!("|---:|---:|---:|---:|---:|");
        for round in 1..=rounds {
            let dir = tempfile::tempdir().expect("temp dir");
            std::fs::write(
                dir.path().join("ringmaster.toml"),
                two_services(free_port(), free_port()),
            )
            .expect("config");
            let mut up = Command::new(&bin)
                .arg("up")
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("up starts");
            let status = || {
                Command::new(&bin)
                    .args(["status", "--json"])
                    .current_dir(dir.path())
                    .output()
                    .ok()
                    .filter(|o| o.status.success())
                    .map(|o| {
                        String::from_utf8_lossy(&o.stdout)
                            .matches("\"ready\"")
                            .count()
                    })
            };
            wait_for("both ready", Duration::from_secs(30), || {
                status() == Some(2)
            });
            for _ in 0..3 {
                status();
            }
            std::thread::sleep(Duration::from_secs(1));
            let kb = |field| status_kb(up.id(), field);
            println!(
                "| {round} | {} kB | {} kB | {} kB | {} |",
                kb("VmRSS:"),
                kb("RssAnon:"),
                kb("RssFile:"),
                kb("Threads:")
            );
            // SAFETY: SIGINT to the child we started: its Ctrl-C, the cascade.
            unsafe { libc::kill(up.id() as libc::pid_t, libc::SIGINT) };
            let _ = up.wait();
        }
    }
}

fn main() {
    #[cfg(target_os = "linux")]
    bench::main();
}
