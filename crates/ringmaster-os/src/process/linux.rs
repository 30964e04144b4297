//! Linux: the process table read straight from /proc. `stat` gives pid, ppid,
//! group, session, start time (clock ticks since boot), comm and the zombie state,
//! and what the process costs (CPU time in clock ticks, resident pages), so a
//! scan with usage reads no file more than one without (besides `/proc/uptime`,
//! once per scan, for the ages); `status` the real uid; `exe` and `cmdline` the program; `environ` the tag (an
//! environ we may not read, e.g. another user's, means no tag). Our own children
//! come from our threads' `task/TID/children` lists, without a scan.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::{Detail, ProcessInfo, Usage};
use crate::tag::{Tag, TAG_ENV};
use crate::{Error, Result};

/// The fields of /proc/PID/stat we use.
struct Stat {
    ppid: u32,
    pgrp: u32,
    session: u32,
    start_time: u64,
    comm: String,
    zombie: bool,
    /// utime + stime, in clock ticks.
    cpu_ticks: u64,
    /// Resident set size, in pages.
    rss_pages: u64,
}

fn read_stat(pid: u32) -> Option<Stat> {
    let raw = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&raw)
}

/// Parses `pid (comm) state ppid pgrp session ... starttime ...`. The comm may
/// hold spaces and parentheses, so it ends at the last `)`.
fn parse_stat(raw: &[u8]) -> Option<Stat> {
    let open = raw.iter().position(|b| *b == b'(')?;
    let close = raw.iter().rposition(|b| *b == b')')?;
    let comm = String::from_utf8_lossy(raw.get(open + 1..close)?).into_owned();
    let rest = std::str::from_utf8(raw.get(close + 1..)?).ok()?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // fields[0] is field 3 of proc_pid_stat(5): state; field N is fields[N - 3]:
    // utime 14, stime 15, starttime 22, rss 24.
    let state = fields.first()?;
    let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some(Stat {
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        session: fields.get(3)?.parse().ok()?,
        start_time: number(19)?,
        comm,
        zombie: matches!(*state, "Z" | "X" | "x"),
        cpu_ticks: number(11).unwrap_or(0) + number(12).unwrap_or(0),
        // A negative rss (never seen) counts as none.
        rss_pages: number(21).unwrap_or(0),
    })
}

/// Clock ticks per second and the page size, looked up once.
fn units() -> (u64, u64) {
    static UNITS: OnceLock<(u64, u64)> = OnceLock::new();
    *UNITS.get_or_init(|| {
        // SAFETY: sysconf only reads a constant of the system; -1 means unknown.
        let (tick, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        (
            u64::try_from(tick).ok().filter(|t| *t > 0).unwrap_or(100),
            u64::try_from(page).ok().filter(|p| *p > 0).unwrap_or(4096),
        )
    })
}

/// The time since boot, from `/proc/uptime` (what `starttime` counts from).
fn uptime() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    let secs: f64 = text.split_ascii_whitespace().next()?.parse().ok()?;
    Duration::try_from_secs_f64(secs).ok()
}

/// What a process costs, from its `stat`; `uptime` is the time since boot.
fn usage_of(stat: &Stat, uptime: Duration) -> Usage {
    let (tick, page) = units();
    let ticks = |n: u64| Duration::from_nanos(n.saturating_mul(1_000_000_000 / tick));
    Usage {
        cpu: ticks(stat.cpu_ticks),
        rss_bytes: stat.rss_pages.saturating_mul(page),
        age: uptime.saturating_sub(ticks(stat.start_time)),
    }
}

/// The tag in /proc/PID/environ; `None` when absent or unreadable.
fn read_tag(pid: u32) -> Option<Tag> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{TAG_ENV}=");
    raw.split(|b| *b == 0)
        .find_map(|entry| entry.strip_prefix(prefix.as_bytes()))
        .and_then(|value| std::str::from_utf8(value).ok())
        .and_then(Tag::parse)
}

/// The real uid from /proc/PID/status.
fn read_uid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_ascii_whitespace().next())
        .and_then(|uid| uid.parse().ok())
}

fn read_argv(pid: u32) -> Vec<String> {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return Vec::new();
    };
    let raw = raw.strip_suffix(&[0]).unwrap_or(&raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

fn read_exe(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// User names by uid, looked up once per uid for the life of the process.
fn user_name(uid: u32) -> Option<String> {
    static NAMES: OnceLock<Mutex<HashMap<u32, Option<String>>>> = OnceLock::new();
    let names = NAMES.get_or_init(Default::default);
    if let Ok(names) = names.lock() {
        if let Some(name) = names.get(&uid) {
            return name.clone();
        }
    }
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name);
    if let Ok(mut names) = names.lock() {
        names.insert(uid, name.clone());
    }
    name
}

/// One process; `uptime` (the time since boot) is given with [`Detail::Usage`].
fn read_process(pid: u32, detail: Detail, uptime: Option<Duration>) -> Option<ProcessInfo> {
    let stat = read_stat(pid)?;
    let full = detail == Detail::Full;
    let uid = if full { read_uid(pid) } else { None };
    let usage = match (detail, uptime) {
        (Detail::Usage, Some(up)) if !stat.zombie => Some(usage_of(&stat, up)),
        _ => None,
    };
    Some(ProcessInfo {
        pid,
        ppid: (stat.ppid != 0).then_some(stat.ppid),
        pgid: Some(stat.pgrp),
        sid: Some(stat.session),
        start_time: stat.start_time,
        name: stat.comm,
        exe: if full { read_exe(pid) } else { None },
        argv: if full { read_argv(pid) } else { Vec::new() },
        uid,
        user: uid.and_then(user_name),
        tag: if stat.zombie { None } else { read_tag(pid) },
        zombie: stat.zombie,
        usage,
    })
}

/// Every process in /proc (thread-group leaders only; threads are not listed).
/// A process that exits during the scan is skipped.
pub(super) fn scan(detail: Detail) -> Result<Vec<ProcessInfo>> {
    let uptime = if detail == Detail::Usage {
        uptime()
    } else {
        None
    };
    let pids = numeric_entries("/proc")?;
    let mut table = crate::batches::in_batches(
        &pids,
        || (),
        |_, batch, out| {
            out.extend(
                batch
                    .iter()
                    .filter_map(|&pid| read_process(pid, detail, uptime)),
            )
        },
    );
    table.sort_unstable_by_key(|p| p.pid);
    Ok(table)
}

/// The pids of the numeric entries of a /proc directory (`/proc`, `/proc/self/task`).
fn numeric_entries(dir: &str) -> Result<Vec<u32>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(format!("reading {dir}"), e))?;
    Ok(entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect())
}

/// Whether this kernel has `/proc/PID/task/TID/children` (CONFIG_PROC_CHILDREN,
/// Linux 3.5+); looked at once.
fn has_children_lists() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        let me = std::process::id();
        std::path::Path::new(&format!("/proc/{me}/task/{me}/children")).exists()
    })
}

/// The children of every thread of this process, from their `children` lists. A
/// thread that ends meanwhile is skipped (its children went to another thread).
fn children_of_our_threads() -> Result<Vec<u32>> {
    let mut out = Vec::new();
    for tid in numeric_entries("/proc/self/task")? {
        let Ok(list) = std::fs::read_to_string(format!("/proc/self/task/{tid}/children")) else {
            continue;
        };
        out.extend(
            list.split_ascii_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

pub(super) fn children() -> Result<Vec<u32>> {
    if has_children_lists() {
        children_of_our_threads()
    } else {
        Ok(children_by_stat(std::process::id()))
    }
}

/// The children of `parent` found by reading every process's `stat` (ppid).
fn children_by_stat(parent: u32) -> Vec<u32> {
    numeric_entries("/proc")
        .unwrap_or_default()
        .into_iter()
        .filter(|&pid| read_stat(pid).is_some_and(|s| s.ppid == parent))
        .collect()
}

pub(super) fn process(pid: u32) -> Result<Option<ProcessInfo>> {
    if pid == 0 {
        return Ok(None);
    }
    Ok(read_process(pid, Detail::Full, None))
}

pub(super) fn liveness(pid: u32) -> Option<(u64, bool)> {
    if pid == 0 {
        return None;
    }
    read_stat(pid).map(|s| (s.start_time, s.zombie))
}

pub(super) fn parent(pid: u32) -> Option<u32> {
    read_stat(pid).map(|s| s.ppid)
}

pub(super) fn argv(pid: u32) -> Option<Vec<String>> {
    let argv = read_argv(pid);
    (!argv.is_empty()).then_some(argv)
}

pub(super) fn timer_slack(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/timerslack_ns"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_a_tricky_comm() {
        let raw =
            b"4121 (a) b (c)) S 1 4121 4121 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        let s = parse_stat(raw).expect("parses");
        assert_eq!(s.comm, "a) b (c)");
        assert_eq!((s.ppid, s.pgrp, s.session), (1, 4121, 4121));
        assert_eq!(s.start_time, 987654);
        assert!(!s.zombie);
        // utime 1 + stime 2 ticks; rss 10 pages.
        assert_eq!((s.cpu_ticks, s.rss_pages), (3, 10));
        let z = b"7 (x) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0";
        assert!(parse_stat(z).expect("parses").zombie);
    }

    /// A child of this test that has exited: a zombie until waited on.
    fn exited_child() -> std::process::Child {
        let child = std::process::Command::new("/bin/sh")
            .args(["-c", "exit 0"])
            .spawn()
            .expect("sh starts");
        let pid = child.id();
        let start = std::time::Instant::now();
        while !liveness(pid).is_some_and(|(_, zombie)| zombie) {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "the child never exited"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child
    }

    #[test]
    fn children_lists_running_and_unreaped_children_until_they_are_waited_on() {
        assert!(
            has_children_lists(),
            "this kernel lists children per thread"
        );
        let mut live = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 30"])
            .spawn()
            .expect("sh starts");
        let mut exited = exited_child();
        let (l, z) = (live.id(), exited.id());
        let found = children().expect("children");
        assert!(
            found.contains(&l) && found.contains(&z),
            "{l}, {z} in {found:?}"
        );
        // The fallback (every process's stat) finds them too, and only ours.
        let by_stat = children_by_stat(std::process::id());
        assert!(by_stat.contains(&l) && by_stat.contains(&z), "{by_stat:?}");
        assert!(!children_by_stat(1).contains(&l));
        exited.wait().expect("reap it");
        let _ = live.kill();
        live.wait().expect("reap it");
        let found = children().expect("children");
        assert!(!found.contains(&l) && !found.contains(&z), "{found:?}");
    }

    #[test]
    fn a_usage_scan_reads_what_we_cost_and_a_brief_one_does_not() {
        let busy = std::time::Instant::now();
        while busy.elapsed() < Duration::from_millis(50) {
            std::hint::black_box(busy.elapsed());
        }
        let held = std::hint::black_box(vec![1u8; 8 << 20]);
        let me = std::process::id();
        let table = scan(Detail::Usage).expect("scan");
        let u = table
            .iter()
            .find(|p| p.pid == me)
            .and_then(|p| p.usage)
            .expect("our usage");
        assert!(u.cpu > Duration::ZERO, "{u:?}");
        assert!(u.rss_bytes >= 8 << 20, "{u:?}");
        assert!(
            u.age > Duration::ZERO && u.age < Duration::from_secs(3600),
            "{u:?}"
        );
        drop(held);
        let brief = scan(Detail::Brief).expect("scan");
        assert!(brief.iter().all(|p| p.usage.is_none()));
    }

    #[test]
    fn reads_ourselves() {
        let me = process(std::process::id())
            .expect("scan")
            .expect("we exist");
        assert_eq!(me.pid, std::process::id());
        assert!(!me.zombie);
        assert!(me.exe.is_some());
        assert!(!me.argv.is_empty());
        assert_eq!(me.uid, Some(nix::unistd::getuid().as_raw()));
        assert_eq!(me.pgid, Some(nix::unistd::getpgrp().as_raw() as u32));
    }
}
