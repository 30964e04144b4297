//! Shared by the fault tests (`fault_*.rs`): what the OS shows about a running
//! ringmaster — its children that are zombies (sampled on a thread for the whole
//! test, so a zombie that lingers is caught even when it is reaped later), its open
//! descriptors and resident memory — and waits on `status --json`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The direct children of `pid` (every thread's `/proc/PID/task/TID/children`).
pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The state letter of `pid` (`R`, `S`, `Z`, ...) from `/proc/PID/stat`.
pub fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The children of `pid` that are zombies right now.
pub fn zombie_children(pid: u32) -> Vec<u32> {
    children(pid)
        .into_iter()
        .filter(|c| state(*c) == Some('Z'))
        .collect()
}

/// How many descriptors `pid` has open (`/proc/PID/fd`).
pub fn fd_count(pid: u32) -> Option<usize> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|d| d.count())
}

/// The resident set size of `pid` in KiB (`VmRSS` in `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A thread that samples the zombie children of a process every 10 ms and keeps,
/// per zombie pid, when it was first and last seen as a zombie.
pub struct ZombieWatch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<BTreeMap<u32, (Instant, Instant)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ZombieWatch {
    /// Starts sampling the children of `parent`.
    pub fn start(parent: u32) -> ZombieWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Arc<Mutex<BTreeMap<u32, (Instant, Instant)>>> = Default::default();
        let thread = {
            let (stop, seen) = (stop.clone(), seen.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    for z in zombie_children(parent) {
                        let mut seen = seen.lock().expect("zombie watch lock");
                        seen.entry(z).or_insert((now, now)).1 = now;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        ZombieWatch {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// Every zombie seen for longer than `limit` (first to last sighting), with
    /// how long.
    pub fn lingering(&self, limit: Duration) -> Vec<(u32, Duration)> {
        self.seen
            .lock()
            .expect("zombie watch lock")
            .iter()
            .map(|(pid, (first, last))| (*pid, last.duration_since(*first)))
            .filter(|(_, d)| *d > limit)
            .collect()
    }

    /// How many distinct zombies were seen at all (each reaped in time or not).
    pub fn count(&self) -> usize {
        self.seen.lock().expect("zombie watch lock").len()
    }
}

impl Drop for ZombieWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The entry of `name` in a `status --json` array.
pub fn entry<'a>(status: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    status
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {status:?}"))
}

/// The pid of `name` in a `status --json` array, when it has one.
pub fn pid_in(status: &[serde_json::Value], name: &str) -> Option<u32> {
    entry(status, name)["pid"].as_u64().map(|p| p as u32)
}
