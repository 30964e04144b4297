//! Shared by the OS layer's benches (Linux): children killed and reaped at the
//! end, and CPU time from `getrusage`.
#![allow(dead_code)]

use std::process::Child;
use std::time::Duration;

/// Kills (by pid) and reaps every child when dropped, even on a panic.
pub struct Children(pub Vec<Child>);

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

/// User + system CPU time of ourselves (`RUSAGE_SELF`, every thread) or of our
/// reaped children (`RUSAGE_CHILDREN`).
pub fn cpu_time(who: libc::c_int) -> Duration {
    // SAFETY: rusage is plain data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a live, writable rusage.
    unsafe { libc::getrusage(who, &mut usage) };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
