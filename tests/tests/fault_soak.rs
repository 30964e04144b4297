//! A bounded soak: 20 services with 1 s health checks under `ringmaster up -d`,
//! while a chaos loop SIGKILLs random members (roots and children) and flips
//! health endpoints to 500 and back. Afterwards: every crash was handled within
//! policy (every service is `ready` again, none `failed`, at least one restart per
//! killed root), ringmaster's open descriptors and resident memory stayed within
//! a small bound of what they were once everything was first ready, no child of
//! ringmaster stayed a zombie, and `down` leaves no process and every port free.
//!
//! It runs for `RINGMASTER_SOAK_SECS` seconds of chaos (default 60: `cargo test
//! --workspace`, and so CI, runs a minute of it); `just soak SECONDS` runs it for
//! another duration and prints the figures (see docs/reliability.md).
#![cfg(target_os = "linux")]

mod cli_support;
mod fault_support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cli_support::*;
use fault_support::{fd_count, rss_kib, zombie_children, ZombieWatch};
use ringmaster_tests::{fake_service, free_port, kill_pid, pid_alive, wait_for};

const SERVICES: usize = 20;

/// A small deterministic generator (xorshift), seeded per run and printed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The soak's duration.
fn soak_secs() -> u64 {
    std::env::var("RINGMASTER_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

/// Service `i`'s name.
fn name(i: usize) -> String {
    format!("s{i:02}")
}

/// Min and max of what was sampled.
#[derive(Debug, Clone, Copy)]
struct Range {
    min: u64,
    max: u64,
}
impl Range {
    fn new(v: u64) -> Range {
        Range { min: v, max: v }
    }
    fn add(&mut self, v: u64) {
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }
}

#[test]
fn twenty_services_under_chaos_stay_within_policy_and_bounds() {
    let secs = soak_secs();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    let mut rng = Rng(seed);
    let fake = fake_service();
    let p = Project::new();
    let ports: Vec<u16> = (0..SERVICES).map(|_| free_port()).collect();
    let health: Vec<PathBuf> = (0..SERVICES)
        .map(|i| p.write(&format!("health{i}"), "200"))
        .collect();
    let mut toml =
        String::from("[settings]\nshutdown_timeout = \"20s\"\nhealth_interval = \"1s\"\n");
    for i in 0..SERVICES {
        // Every fifth service depends on the one before it.
        let depends = if i % 5 == 4 {
            format!("depends_on = [\"{}\"]\n", name(i - 1))
        } else {
            String::new()
        };
        toml.push_str(&format!(
            r#"
[services.{n}]
command = "exec {fake} --listen {port} --health-file {file} --children 1"
port = {port}
allow = ["fake-service"]
health = {{ http = "http://127.0.0.1:{port}/health", interval = "1s", timeout = "500ms", failures = 2 }}
restart = {{ policy = "on-failure", max_attempts = 1000, backoff = "50ms" }}
stop = {{ timeout = "3s" }}
{depends}"#,
            n = name(i),
            fake = fake.display(),
            port = ports[i],
            file = health[i].display(),
        ));
    }
    p.write("ringmaster.toml", &toml);
    let names: Vec<String> = (0..SERVICES).map(name).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();

    let instance = p.up_detached();
    let zombies = ZombieWatch::start(instance);
    p.wait_ready(&names);
    p.guard_tagged();
    let fds_start = fd_count(instance).expect("ringmaster's fds") as u64;
    let rss_start = rss_kib(instance).expect("ringmaster's RSS");
    let (mut fds, mut rss) = (Range::new(fds_start), Range::new(rss_start));

    // The chaos: every 100-400 ms, kill a member or flip a health endpoint; a flip
    // to 500 is undone 2.5-4 s later.
    let mut root_kills = [0u32; SERVICES];
    let (mut child_kills, mut flips) = (0u32, 0u32);
    let mut unflip: Vec<(Instant, usize)> = Vec::new();
    let started = Instant::now();
    let mut next_sample = Instant::now();
    while started.elapsed() < Duration::from_secs(secs) {
        let now = Instant::now();
        unflip.retain(|(at, i)| {
            if *at <= now {
                std::fs::write(&health[*i], "200").expect("heal");
                false
            } else {
                true
            }
        });
        if now >= next_sample {
            if let (Some(f), Some(r)) = (fd_count(instance), rss_kib(instance)) {
                fds.add(f as u64);
                rss.add(r);
            }
            next_sample = now + Duration::from_millis(500);
        }
        let i = rng.below(SERVICES);
        match rng.below(10) {
            // Kill the service's root (its status pid), unless its health is
            // flipped (an unhealthy restart may be under way: one restart for two
            // causes).
            0..=3 if !unflip.iter().any(|(_, j)| *j == i) => {
                let status = p.status().unwrap_or_default();
                if let Some(pid) = status
                    .iter()
                    .find(|s| s["name"] == names[i] && s["state"] == "ready")
                    .and_then(|s| s["pid"].as_u64())
                {
                    // A root already killed and not yet noticed is not killed twice.
                    if pid_alive(pid as u32) {
                        kill_pid(pid as u32);
                        root_kills[i] += 1;
                    }
                }
            }
            // Kill any other member (the idle child).
            4..=6 => {
                let status = p.status().unwrap_or_default();
                let root = status
                    .iter()
                    .find(|s| s["name"] == names[i])
                    .and_then(|s| s["pid"].as_u64())
                    .map(|p| p as u32);
                let project = ringmaster_os::project_id(&p.state_dir());
                let child = ringmaster_os::process::snapshot()
                    .unwrap_or_default()
                    .into_iter()
                    .find(|x| {
                        !x.zombie
                            && Some(x.pid) != root
                            && x.tag
                                .as_ref()
                                .is_some_and(|t| t.project == project && t.service == names[i])
                    });
                if let Some(c) = child {
                    kill_pid(c.pid);
                    child_kills += 1;
                }
            }
            // Make the health endpoint fail for a while.
            _ => {
                if !unflip.iter().any(|(_, j)| *j == i) {
                    std::fs::write(&health[i], "500").expect("flip");
                    flips += 1;
                    let back = Duration::from_millis(2500 + rng.below(1500) as u64);
                    unflip.push((Instant::now() + back, i));
                }
            }
        }
        p.guard_tagged();
        std::thread::sleep(Duration::from_millis(100 + rng.below(300) as u64));
    }
    for (_, i) in unflip.drain(..) {
        std::fs::write(&health[i], "200").expect("heal");
    }
    let chaos = started.elapsed();

    // Every crash handled within policy: all ready again, none failed.
    // Restart backoffs have grown meanwhile (they double, up to 30 s): wait longer.
    let settle = Instant::now();
    let mut status = Vec::new();
    wait_for(
        "every service ready again",
        Duration::from_secs(120),
        || {
            status = p.status().unwrap_or_default();
            names.iter().all(|n| {
                status
                    .iter()
                    .any(|s| s["name"] == *n && s["state"] == "ready")
            })
        },
    );
    let settled = settle.elapsed();
    p.guard_tagged();
    let mut restarts = 0u64;
    for (i, n) in names.iter().enumerate() {
        let s = fault_support::entry(&status, n);
        let r = s["restarts"].as_u64().expect("restarts");
        assert!(
            r >= u64::from(root_kills[i]),
            "{n}: {} root kills but {r} restarts: {s}",
            root_kills[i]
        );
        restarts += r;
    }
    if let (Some(f), Some(r)) = (fd_count(instance), rss_kib(instance)) {
        fds.add(f as u64);
        rss.add(r);
    }
    let total_root_kills: u32 = root_kills.iter().sum();
    let lingering = zombies.lingering(Duration::from_secs(1));
    println!(
        "soak: {secs} s of chaos (seed {seed}), {SERVICES} services: {total_root_kills} roots and \
         {child_kills} children SIGKILLed, {flips} health flips, {restarts} restarts; all ready \
         again {:.1} s after the chaos; ringmaster fds {}..{} (start {fds_start}), RSS {}..{} KiB \
         (start {rss_start}); {} zombies seen, none older than 1 s: {}",
        settled.as_secs_f64(),
        fds.min,
        fds.max,
        rss.min,
        rss.max,
        zombies.count(),
        lingering.is_empty()
    );
    assert!(chaos >= Duration::from_secs(secs));
    assert!(total_root_kills > 0 && flips > 0, "the chaos did something");
    assert!(
        fds.max <= fds_start + 16,
        "ringmaster's fds grew: {fds:?} from {fds_start}"
    );
    assert!(
        rss.max <= rss_start + 32 * 1024,
        "ringmaster's RSS grew: {rss:?} KiB from {rss_start}"
    );
    assert!(
        lingering.is_empty(),
        "zombies not reaped within 1 s: {lingering:?}"
    );
    assert!(zombie_children(instance).is_empty());

    let tagged = p.guard_tagged();
    let down = p.rm().arg("down").output().expect("down");
    assert_eq!(down.status.code(), Some(0), "{}", text(&down.stdout));
    wait_gone(instance);
    for pid in tagged {
        assert!(!pid_alive(pid), "pid {pid} outlived down");
    }
    wait_for("no tagged process", LONG, || p.tagged_pids().is_empty());
    for port in ports {
        assert!(holders(port).is_empty(), "port {port} still held");
    }
}
