//! What asking "does a port accept connections yet?" costs, the question the
//! HealthChecker asks every few milliseconds while a service starts: CPU time
//! (user + system) per question for a closed loopback port, by a refused
//! `connect` and by [`ringmaster_os::ports::listening`] (Linux: one exact
//! `sock_diag` lookup); and what waking up every 5 ms costs a thread that does
//! nothing else; and what spawning a root costs (`ringmaster_os::spawn` beside a
//! bare `posix_spawn`). Run: `cargo bench -p ringmaster-os --bench knock`.
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

/// This process's CPU time so far, all its threads, those that ended too:
/// `CLOCK_PROCESS_CPUTIME_ID`, from the scheduler's own accounting (`getrusage`
/// counts in clock ticks and over-charges a thread that wakes on a timer; a sum
/// over `/proc/self/task` loses the threads that ended). Zero on Windows.
fn cpu_time() -> Duration {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the timespec we pass.
        if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) } == 0 {
            return Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
        }
    }
    Duration::ZERO
}

/// CPU per call of `f`, over `n` calls.
fn per_call(n: u32, mut f: impl FnMut()) -> Duration {
    let before = cpu_time();
    for _ in 0..n {
        f();
    }
    (cpu_time() - before) / n
}

fn main() {
    let closed: SocketAddr = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let n = 20_000;
    let connect = per_call(n, || {
        let _ = std::net::TcpStream::connect_timeout(&closed, Duration::from_millis(2));
    });
    let lookup = per_call(n, || {
        let _ = ringmaster_os::ports::listening(closed);
    });
    println!("CPU per question about a closed loopback port ({n} questions):");
    println!(
        "  refused connect:          {:.1} µs",
        connect.as_secs_f64() * 1e6
    );
    println!(
        "  ports::listening lookup:  {:.1} µs",
        lookup.as_secs_f64() * 1e6
    );

    // What spawning a service's root costs (`sh -c 'exit 0'`: fork, the child's
    // setsid and timer slack, exec), against a bare posix_spawn of the same.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let spawns = 200;
    let mut ours = Vec::new();
    let mut bare = Vec::new();
    rt.block_on(async {
        let tag = ringmaster_os::Tag::new("bench", "knock");
        for _ in 0..spawns {
            let spec = ringmaster_os::SpawnSpec {
                command: "exit 0".into(),
                workdir: None,
                env: Vec::new(),
                tag: tag.clone(),
            };
            let t = Instant::now();
            let mut s = ringmaster_os::spawn(&spec).expect("spawn");
            ours.push(t.elapsed());
            let _ = ringmaster_os::wait_root(&mut s.child).await;
            let t = Instant::now();
            let mut c = std::process::Command::new("/bin/sh")
                .args(["-c", "exit 0"])
                .spawn()
                .expect("spawn");
            bare.push(t.elapsed());
            let _ = c.wait();
        }
    });
    let show = |v: &mut Vec<Duration>| {
        v.sort();
        format!(
            "p50 {:.0} µs, p95 {:.0} µs",
            v[v.len() / 2].as_secs_f64() * 1e6,
            v[v.len() * 95 / 100].as_secs_f64() * 1e6
        )
    };
    println!("spawn of `sh -c 'exit 0'` ({spawns} each, wall time of the call):");
    println!("  ringmaster_os::spawn:            {}", show(&mut ours));
    println!("  std Command (posix_spawn):       {}", show(&mut bare));

    let ticks = 1000;
    let period = Duration::from_millis(5);
    let began = Instant::now();
    let before = cpu_time();
    for _ in 0..ticks {
        std::thread::sleep(period);
        let _ = ringmaster_os::ports::listening(closed);
    }
    let used = cpu_time() - before;
    let pct = used.as_secs_f64() / began.elapsed().as_secs_f64() * 100.0;
    println!(
        "a thread asking every 5 ms for {:.1} s: {:.2} % of one core ({:.1} µs per tick)",
        began.elapsed().as_secs_f64(),
        pct,
        used.as_secs_f64() * 1e6 / ticks as f64
    );
}
