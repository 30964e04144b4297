//! What the OS shows of a run, read from /proc and the ports: the tree of processes
//! the bench launched (the bench is a child subreaper, so a daemon that double-forks
//! and a service whose manager died stay in it), which of them are services, their
//! memory and CPU, and a blocking GET that only reads the status line.
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A process: pid and start time (clock ticks since boot), which together name it
/// even if the pid is reused.
pub type Proc = (u32, u64);

/// One line of the process table.
#[derive(Clone, Debug)]
pub struct Entry {
    pub pid: u32,
    pub ppid: u32,
    pub start: u64,
    pub zombie: bool,
}

/// Makes this process the reaper of every orphan among its descendants, so that
/// the tree of a run stays below it whatever forks and dies on the way.
pub fn become_subreaper() {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) only changes who adopts orphans.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0, "PR_SET_CHILD_SUBREAPER");
}

/// Reaps every exited child (launched tools and adopted orphans) without blocking.
pub fn reap() {
    loop {
        // SAFETY: waitpid with WNOHANG on any child of this process.
        let pid = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
        if pid <= 0 {
            break;
        }
    }
}

fn entry(pid: u32) -> Option<Entry> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) ... starttime(19).
    Some(Entry {
        pid,
        ppid: fields.get(1)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
        zombie: fields.first() == Some(&"Z") || fields.first() == Some(&"X"),
    })
}

/// Every live process below this one (children, their children, ... and orphans
/// adopted on the way).
pub fn tree() -> Vec<Entry> {
    let me = std::process::id();
    let table: Vec<Entry> = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter_map(entry)
                .collect()
        })
        .unwrap_or_default();
    let mut kids: BTreeMap<u32, Vec<&Entry>> = BTreeMap::new();
    for e in &table {
        kids.entry(e.ppid).or_default().push(e);
    }
    let mut out = Vec::new();
    let mut todo = vec![me];
    while let Some(pid) = todo.pop() {
        for e in kids.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            todo.push(e.pid);
            if !e.zombie {
                out.push((*e).clone());
            }
        }
    }
    out
}

/// The command line of `pid`, arguments joined by spaces; empty when it is gone.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .split('\0')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// True while the process is there and not a zombie.
pub fn alive(p: Proc) -> bool {
    entry(p.0).is_some_and(|e| e.start == p.1 && !e.zombie)
}

/// The processes of a run, split as they were seen: a service process is one whose
/// command line runs a service (it names one of the run's ports and is not the
/// gate: `wait-on … && …`, or `concurrently`'s own command line, which holds both
/// commands), or a descendant of one; every other process below the bench is the
/// manager's (its daemon, its control commands, its shells, the gate).
#[derive(Default)]
pub struct Census {
    needles: Vec<String>,
    /// Every service process ever seen in this run.
    pub services: BTreeSet<Proc>,
}

impl Census {
    pub fn new(ports: [u16; 2]) -> Census {
        Census {
            needles: ports.iter().map(|p| format!("--port {p}")).collect(),
            services: BTreeSet::new(),
        }
    }

    /// True when `cmd` runs a service (not the gate or the manager that holds it).
    pub fn runs_service(&self, cmd: &str) -> bool {
        self.needles.iter().any(|n| cmd.contains(n.as_str()))
            && !cmd.contains("wait-on")
            && !cmd.contains("concurrently")
    }

    /// One scan: adds the service processes it sees; returns the live tree with,
    /// for each process, whether it is a service's and its command line.
    pub fn scan(&mut self) -> Vec<(Entry, bool, String)> {
        let tree = tree();
        let mut out = Vec::with_capacity(tree.len());
        let mut service_pids: BTreeSet<u32> = self.services.iter().map(|p| p.0).collect();
        // `tree()` lists a parent before its children, so one pass settles all.
        for e in &tree {
            let cmd = cmdline(e.pid);
            let service = self.services.contains(&(e.pid, e.start))
                || self.runs_service(&cmd)
                || service_pids.contains(&e.ppid);
            if service {
                service_pids.insert(e.pid);
                self.services.insert((e.pid, e.start));
            }
            out.push((e.clone(), service, cmd));
        }
        out
    }

    /// The service processes still alive.
    pub fn alive_services(&self) -> Vec<Proc> {
        self.services
            .iter()
            .copied()
            .filter(|p| alive(*p))
            .collect()
    }
}

/// The manager's processes now: the tree minus the service processes.
pub fn manager_procs(census: &mut Census) -> Vec<Proc> {
    census
        .scan()
        .into_iter()
        .filter(|(_, service, _)| !service)
        .map(|(e, _, _)| (e.pid, e.start))
        .collect()
}

/// Resident memory of a process in KiB (VmRSS), 0 when gone.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time used so far by a process, all its live threads, in nanoseconds
/// (the first field of each /proc/PID/task/TID/schedstat: time on a CPU), 0 when
/// it is gone or is another process now.
pub fn cpu_ns(p: Proc) -> u64 {
    if !alive(p) {
        return 0;
    }
    std::fs::read_dir(format!("/proc/{}/task", p.0))
        .map(|tasks| {
            tasks
                .filter_map(|t| {
                    let path = t.ok()?.path().join("schedstat");
                    let text = std::fs::read_to_string(path).ok()?;
                    text.split_whitespace().next()?.parse::<u64>().ok()
                })
                .sum()
        })
        .unwrap_or(0)
}

/// True when nothing accepts connections on 127.0.0.1:`port` (refused).
pub fn port_free(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    matches!(
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

/// `GET path` on 127.0.0.1:`port`; the status code, or None when nothing answers
/// (refused, reset, or no status line within `wait`).
pub fn get_status(port: u16, path: &str, wait: Duration) -> Option<u16> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(wait)).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Sends `sig` to `pid` (a process this bench launched or adopted).
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a pid from this bench's own tree.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Sends `sig` to the process group `pgid` (a tool launched as its own job, as a
/// shell runs it: Ctrl-C in a terminal signals the whole foreground group).
pub fn signal_group(pgid: u32, sig: i32) {
    // SAFETY: kill(2) on a process group this bench created.
    unsafe {
        libc::kill(-(pgid as libc::pid_t), sig);
    }
}

/// Kills, by pid, every process still below the bench, until none is left; the
/// pids it killed. Run between runs, so that nothing leaks into the next.
pub fn kill_tree() -> Vec<u32> {
    let mut killed = BTreeSet::new();
    for _ in 0..100 {
        reap();
        let left = tree();
        if left.is_empty() {
            break;
        }
        for e in left {
            if alive((e.pid, e.start)) {
                signal(e.pid, libc::SIGKILL);
                killed.insert(e.pid);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reap();
    killed.into_iter().collect()
}
