//! Benchmark (not a test): stop a 100-process tree that honours SIGTERM, and
//! measure (a) the wall time of `stop()` and (b) the gap between the last process
//! of the tree exiting and `stop()` returning (target: at most 50 ms).
//!
//! Run: `cargo bench -p ringmaster-os --bench stop_tree` (Unix).
//!
//! The tree is this program re-executed in `--node N` mode: a node spawns children
//! that share the remaining count, so the tree is exactly N processes, several
//! levels deep. Each node's SIGTERM handler writes the CLOCK_MONOTONIC time to a
//! shared file (O_APPEND, one 8-byte record per process) and calls `_exit`; the
//! last record is "the last process exited" (it is taken just before the kernel
//! tears the process down, so the gap is measured generously).

#[cfg(unix)]
fn main() {
    bench::main();
}

#[cfg(not(unix))]
fn main() {
    println!("stop_tree: this benchmark runs on Unix only");
}

#[cfg(unix)]
mod bench {
    use std::ffi::CString;
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicI32, Ordering};
    use std::time::{Duration, Instant};

    use ringmaster_os::process::{members, snapshot_brief};
    use ringmaster_os::spawn::{spawn, SpawnSpec};
    use ringmaster_os::stop::{stop, Signal, StopTarget};
    use ringmaster_os::tag::Tag;

    const TREE: usize = 100;
    const ROUNDS: usize = 7;
    const FANOUT: usize = 4;
    const EXIT_LOG_ENV: &str = "STOP_TREE_EXIT_LOG";

    /// The exit log's file descriptor, for the signal handler.
    static EXIT_FD: AtomicI32 = AtomicI32::new(-1);

    fn monotonic_ns() -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime fills the timespec we pass.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }

    extern "C" fn on_term(_: libc::c_int) {
        let now = monotonic_ns().to_le_bytes();
        let fd = EXIT_FD.load(Ordering::Relaxed);
        // SAFETY: write and _exit are async-signal-safe.
        unsafe {
            if fd >= 0 {
                libc::write(fd, now.as_ptr() as *const libc::c_void, now.len());
            }
            libc::_exit(0);
        }
    }

    /// A node of the tree: `count` processes including itself.
    fn node(count: usize) -> ! {
        if let Ok(path) = std::env::var(EXIT_LOG_ENV) {
            let path = CString::new(path).expect("the log path has no NUL");
            // SAFETY: opens the exit log for appending.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_APPEND) };
            EXIT_FD.store(fd, Ordering::Relaxed);
        }
        // SAFETY: installs a handler that only calls async-signal-safe functions.
        unsafe {
            libc::signal(
                libc::SIGTERM,
                on_term as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
        let exe = std::env::current_exe().expect("own exe");
        let mut rest = count.saturating_sub(1);
        let mut kids = Vec::new();
        let shares = rest.min(FANOUT);
        for i in 0..shares {
            let share = rest / (shares - i);
            rest -= share;
            let kid = Command::new(&exe)
                .args(["--node", &share.to_string()])
                .stdin(Stdio::null())
                .spawn()
                .expect("spawning a node");
            kids.push(kid);
        }
        for mut kid in kids {
            std::thread::spawn(move || {
                let _ = kid.wait();
            });
        }
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }

    struct Round {
        wall: Duration,
        gap: Duration,
        killed: usize,
        survivors: usize,
    }

    fn round(rt: &tokio::runtime::Runtime, i: usize, log: &Path) -> Round {
        std::fs::write(log, b"").expect("truncating the exit log");
        let exe = std::env::current_exe().expect("own exe");
        let tag = Tag::new(
            format!("rm-bench{}", std::process::id()),
            format!("tree{i}"),
        );
        let spec = SpawnSpec {
            command: format!("exec '{}' --node {TREE}", exe.display()),
            workdir: None,
            env: vec![(EXIT_LOG_ENV.into(), log.display().to_string())],
            tag: tag.clone(),
        };
        let spawned = rt.block_on(async { spawn(&spec) }).expect("spawn");
        let target = StopTarget {
            root: Some(spawned.pid),
            pgid: spawned.pgid,
            tag: Some(tag),
            also: Vec::new(),
        };
        let ready = Instant::now();
        loop {
            let table = snapshot_brief().expect("scan");
            let n = members(&table, target.root, target.pgid, target.tag.as_ref()).len();
            if n == TREE {
                break;
            }
            assert!(
                ready.elapsed() < Duration::from_secs(60),
                "only {n} of {TREE} processes started"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Let every node install its handler before it is signalled.
        std::thread::sleep(Duration::from_millis(300));

        let start = Instant::now();
        let report = stop(&target, Signal::Term, Duration::from_secs(10)).expect("stop");
        let returned = monotonic_ns();
        let wall = start.elapsed();

        let raw = std::fs::read(log).expect("reading the exit log");
        let exits: Vec<u64> = raw
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        let last = exits.iter().copied().max().unwrap_or(returned);
        assert_eq!(
            exits.len(),
            TREE,
            "every process of the tree logged its exit: {report:?}"
        );
        drop(spawned);
        Round {
            wall,
            gap: Duration::from_nanos(returned.saturating_sub(last)),
            killed: report.killed.len(),
            survivors: report.survivors.len(),
        }
    }

    fn stats(label: &str, mut v: Vec<Duration>) {
        v.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{label:<40} min {:7.2} ms   median {:7.2} ms   max {:7.2} ms",
            ms(v[0]),
            ms(v[v.len() / 2]),
            ms(v[v.len() - 1])
        );
    }

    pub fn main() {
        let args: Vec<String> = std::env::args().collect();
        if args.get(1).map(String::as_str) == Some("--node") {
            let n = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1);
            node(n);
        }
        // `cargo bench` passes `--bench`; nothing else is expected.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("exits");
        let mut rounds = Vec::new();
        for i in 0..ROUNDS {
            rounds.push(round(&rt, i, &log));
        }
        println!("stop_tree: stopping a {TREE}-process tree that honours SIGTERM, {ROUNDS} rounds");
        stats(
            "(a) stop() wall time",
            rounds.iter().map(|r| r.wall).collect(),
        );
        stats(
            "(b) last exit -> stop() returned",
            rounds.iter().map(|r| r.gap).collect(),
        );
        let killed: usize = rounds.iter().map(|r| r.killed).sum();
        let survivors: usize = rounds.iter().map(|r| r.survivors).sum();
        println!("killed after grace: {killed}, survivors: {survivors} (both should be 0)");
    }
}
