//! What the end of a service's root process means (`RootWatch`): the wait is on
//! the root itself, not its group; then nothing left (the service ended), a
//! failure under live members (they are stopped first), or a clean exit under
//! live members (the service daemonized: its members are followed until the last
//! is gone). Also how members are found when their tag cannot be read
//! (`live_members`, `Claims`).
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix::prelude::*;
use ringmaster_os::{CensusTarget, ChildWrapper, ProcessInfo, StopTarget, Tag};

use super::{OwnChild, ServiceActor, DRAIN_GRACE};
use crate::janitor::{blocking, blocking_now};
use crate::logs::LogWriter;

/// How often the processes of a daemonized service are checked (each known pid:
/// one cheap look), so that its end is noticed within this.
pub const DAEMON_POLL: Duration = Duration::from_millis(50);
/// How often the process table is scanned again for new members of a daemonized
/// service (a master that forks new workers).
pub const DAEMON_RESCAN: Duration = Duration::from_secs(1);

/// The wait task → its ServiceActor: the root process of run `run` ended, and
/// the service with it (what of it still ran was stopped). Carries the spawned
/// wrapper, dropped only now (on Windows it holds the job).
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct ChildExited {
    pub(super) run: u64,
    pub(super) code: Option<i32>,
    pub(super) detail: String,
    pub(super) _wrapper: Option<Box<dyn ChildWrapper>>,
}

/// The wait task → its ServiceActor: the root of run `run` exited with 0 while
/// processes of the service live on: it daemonized. `main` is the daemon's main
/// process. The wrapper is kept for as long as the service lives.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct RootDaemonized {
    pub(super) run: u64,
    pub(super) main: Option<u32>,
    /// The PID file holds the daemon's own plain pid: it is left as it is.
    pub(super) daemon_file: bool,
    pub(super) members: usize,
    pub(super) wrapper: Box<dyn ChildWrapper>,
}

/// The daemon's watch task → its ServiceActor: the last process of the
/// daemonized run `run` is gone.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct DaemonGone {
    pub(super) run: u64,
}

/// What the task waiting on a service's root needs: it waits for the root itself
/// (not its group), then decides what the root's end means for the service.
pub(super) struct RootWatch {
    pub(super) run: u64,
    /// The root's pid, whose start time the task reads first: orphans adopted
    /// since then may be its daemon.
    pub(super) root: u32,
    pub(super) name: String,
    pub(super) pgid: Option<u32>,
    pub(super) tag: Tag,
    pub(super) port: Option<u16>,
    pub(super) pid_file: PathBuf,
    pub(super) follow_daemon: bool,
    pub(super) signal: ringmaster_os::Signal,
    pub(super) timeout: Duration,
    pub(super) logs: LogWriter,
    pub(super) addr: Addr<ServiceActor>,
    /// The actor's current run: the daemon's watch ends once it moved on.
    pub(super) live_run: Arc<AtomicU64>,
}

impl RootWatch {
    /// Waits for the root, then:
    /// - nothing of the service lives on: its end (after its pipes were drained);
    /// - it exited with 0 and processes of the service live on (and
    ///   `follow_daemon`): it daemonized — [`RootDaemonized`], and its members are
    ///   followed until the last is gone;
    /// - otherwise (a failure, or `follow_daemon` off) with members alive: a
    ///   failure stops them first, then reports the end; a clean exit without
    ///   `follow_daemon` leaves them to the stack's stop.
    pub(super) async fn run(
        self,
        mut wrapper: Box<dyn ChildWrapper>,
        guard: OwnChild,
        pumps: Vec<actix_rt::task::JoinHandle<()>>,
    ) {
        let root = self.root;
        let root_start = blocking_now(move || ringmaster_os::process::liveness(root))
            .await
            .ok()
            .flatten()
            .map(|(start, _)| start);
        let (code, detail) = match ringmaster_os::wait_root(&mut wrapper).await {
            Ok(status) => (status.code(), status.to_string()),
            Err(e) => (None, format!("waiting for it failed: {e}")),
        };
        drop(guard);
        if self.live_run.load(Ordering::SeqCst) != self.run {
            // A stop is under way (or done): the root ended by it, and what is
            // left is the stop's to handle and report. The wrapper goes once the
            // whole group (the job, on Windows) is gone, as the stop expects.
            let _ = wrapper.wait().await;
            return;
        }
        let (pgid, tag, since) = (self.pgid, self.tag.clone(), root_start);
        let left = blocking_now(move || live_members(pgid, &tag, &[], since))
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default();
        if !left.is_empty() && self.live_run.load(Ordering::SeqCst) == self.run {
            if code == Some(0) && self.follow_daemon {
                return self.daemonized(wrapper, left, root_start).await;
            }
            let names = left
                .iter()
                .map(|p| format!("{} ({})", p.pid, p.name))
                .collect::<Vec<_>>()
                .join(", ");
            if code == Some(0) {
                tracing::info!(service = %self.name,
                    "the launched process exited with 0; left running until the stack stops (follow_daemon = false): {names}");
            } else {
                tracing::warn!(service = %self.name,
                    "the launched process exited ({detail}) while {} process(es) of the service live on; stopping them: {names}",
                    left.len());
                let target = StopTarget {
                    root: None,
                    pgid: self.pgid,
                    tag: Some(self.tag.clone()),
                    also: left.iter().map(|p| (p.pid, p.start_time)).collect(),
                };
                let (signal, timeout) = (self.signal, self.timeout);
                match ringmaster_os::stop_async(target, signal, timeout).await {
                    Ok(report) if !report.clean() => tracing::warn!(service = %self.name,
                        "still alive after the stop: {}",
                        report.survivors.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")),
                    Err(e) => {
                        tracing::warn!(service = %self.name, "stopping what was left: {e}")
                    }
                    _ => {}
                }
            }
        }
        let _ = tokio::time::timeout(DRAIN_GRACE, futures::future::join_all(pumps)).await;
        self.logs.flush().await;
        self.addr.do_send(ChildExited {
            run: self.run,
            code,
            detail,
            _wrapper: Some(wrapper),
        });
    }

    /// The root exited with 0 and `left` live on: tells the actor, then follows
    /// the members until the last one is gone.
    async fn daemonized(
        self,
        wrapper: Box<dyn ChildWrapper>,
        left: Vec<ProcessInfo>,
        root_start: Option<u64>,
    ) {
        let key = self.tag.env_value();
        Claims::hold(&key, &left);
        let target = CensusTarget {
            root: None,
            pgid: None,
            tag: Some(self.tag.clone()),
            also: left.iter().map(|p| (p.pid, p.start_time)).collect(),
            port: self.port,
            hint: None,
        };
        let pid_file = self.pid_file.clone();
        let (main, daemon_file) = blocking_now(move || {
            let hint = ringmaster_os::read_plain_pid(&pid_file);
            let main = ringmaster_os::census_brief(&[CensusTarget { hint, ..target }])
                .ok()
                .and_then(|c| c.into_iter().next())
                .and_then(|c| c.main_pid);
            (main, hint.is_some())
        })
        .await
        .unwrap_or((None, false));
        self.addr.do_send(RootDaemonized {
            run: self.run,
            main,
            daemon_file,
            members: left.len(),
            wrapper,
        });
        let live_run = self.live_run.clone();
        let mut known: Vec<(u32, u64)> = left.iter().map(|p| (p.pid, p.start_time)).collect();
        let mut scanned = Instant::now();
        loop {
            tokio::time::sleep(DAEMON_POLL).await;
            if live_run.load(Ordering::SeqCst) != self.run {
                return;
            }
            let all_gone = known
                .iter()
                .all(|&(pid, start)| !ringmaster_os::process::is_same_alive(pid, start));
            if !all_gone && scanned.elapsed() < DAEMON_RESCAN {
                continue;
            }
            // Orphans are claimed only once every known member is gone (a
            // double fork whose middle process exited after the launcher), so
            // that another service's fresh daemon is not taken on a routine rescan.
            let (tag, since) = (self.tag.clone(), root_start.filter(|_| all_gone));
            let was = known.clone();
            let Ok(Ok(now)) = blocking(move || live_members(None, &tag, &was, since)).await else {
                continue;
            };
            scanned = Instant::now();
            if now.is_empty() {
                if live_run.load(Ordering::SeqCst) == self.run {
                    tracing::info!(service = %self.name, "the daemon's last process is gone");
                    self.logs.flush().await;
                    self.addr.do_send(DaemonGone { run: self.run });
                }
                return;
            }
            Claims::hold(&key, &now);
            known = now.iter().map(|p| (p.pid, p.start_time)).collect();
        }
    }
}

/// The live processes of a service: its group (when known), every process
/// carrying its tag, the processes already `known` as its members (pid and start
/// time: a process that wrote over its environment after it was found stays a
/// member), the orphans it claimed, and their descendants — less our own
/// children that carry its tag without being the service (its exec probes, and
/// their descendants). Blocking.
///
/// A daemon often cannot be told by its tag: nginx, redis and postgres overwrite
/// their environment with their process title, so `/proc/PID/environ` no longer
/// holds it. What links such a daemon to its service is the subreaper: when the
/// launcher exits, its orphans are re-parented to us. With `claim_since` (the
/// root's start time) every orphan of ours that started since then, carries no
/// readable tag but this service's timer-slack marker ([`Tag::slack_marker`]),
/// and that no other service claimed, is claimed for this one ([`Claims`]).
fn live_members(
    pgid: Option<u32>,
    tag: &Tag,
    known: &[(u32, u64)],
    claim_since: Option<u64>,
) -> ringmaster_os::Result<Vec<ProcessInfo>> {
    use ringmaster_os::process::{descendants, members, snapshot_brief};
    let table = snapshot_brief()?;
    let own: HashSet<u32> = OwnChild::all().into_iter().collect();
    let mut probes = own.clone();
    for &pid in &own {
        probes.extend(descendants(&table, pid).iter().map(|p| p.pid));
    }
    let key = tag.env_value();
    let mut found: BTreeMap<u32, &ProcessInfo> = members(&table, None, pgid, Some(tag))
        .into_iter()
        .map(|p| (p.pid, p))
        .collect();
    let marker = tag.slack_marker();
    let claimed = Claims::of(
        &key,
        &table,
        claim_since.map(|since| {
            let me = std::process::id();
            table
                .iter()
                .filter(|p| p.ppid == Some(me) && !p.zombie && p.start_time >= since)
                // Only orphans whose tag cannot be read (a tagged one says whose
                // it is) and that carry this service's timer-slack marker: an
                // orphan of anything else this process runs (a bot's own
                // children) is never taken.
                .filter(|p| p.tag.is_none() && !own.contains(&p.pid))
                .filter(|p| ringmaster_os::process::timer_slack(p.pid) == Some(marker))
                .map(|p| (p.pid, p.start_time))
                .collect::<Vec<_>>()
        }),
    );
    let held = claimed.into_iter().filter_map(|pid| {
        table
            .iter()
            .find(|p| p.pid == pid)
            .map(|p| (p.pid, p.start_time))
    });
    for (pid, start) in known.iter().copied().chain(held) {
        let same = |p: &&ProcessInfo| p.pid == pid && p.start_time == start && !p.zombie;
        if let Some(p) = table.iter().find(same) {
            found.insert(p.pid, p);
            for d in descendants(&table, pid) {
                if !d.zombie {
                    found.insert(d.pid, d);
                }
            }
        }
    }
    Ok(found
        .into_values()
        .filter(|p| !probes.contains(&p.pid))
        .cloned()
        .collect())
}

/// Orphans adopted by us (the subreaper) that a service claimed when its launcher
/// exited: pid → (start time, the service's tag value).
pub(crate) struct Claims;

impl Claims {
    /// The processes (pid, start time) the service tagged `key` claimed.
    pub(crate) fn held(key: &str) -> Vec<(u32, u64)> {
        Self::map()
            .lock()
            .map(|m| {
                m.iter()
                    .filter(|(_, (_, k))| k == key)
                    .map(|(pid, (start, _))| (*pid, *start))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn map() -> &'static Mutex<HashMap<u32, (u64, String)>> {
        static CLAIMS: OnceLock<Mutex<HashMap<u32, (u64, String)>>> = OnceLock::new();
        CLAIMS.get_or_init(Default::default)
    }

    /// Forgets the claims of `key` whose process is gone from `table`, claims the
    /// unclaimed `candidates` for `key`, and returns the pids `key` holds.
    fn of(key: &str, table: &[ProcessInfo], candidates: Option<Vec<(u32, u64)>>) -> Vec<u32> {
        let Ok(mut map) = Self::map().lock() else {
            return Vec::new();
        };
        map.retain(|pid, (start, _)| {
            table
                .iter()
                .any(|p| p.pid == *pid && p.start_time == *start && !p.zombie)
        });
        for (pid, start) in candidates.unwrap_or_default() {
            map.entry(pid).or_insert_with(|| (start, key.to_owned()));
        }
        map.iter()
            .filter(|(_, (_, k))| k == key)
            .map(|(pid, _)| *pid)
            .collect()
    }

    /// Records `found` as members of `key` by identity: a daemon that writes over
    /// its environment later stays known (to the status, the stop, the watch).
    fn hold(key: &str, found: &[ProcessInfo]) {
        if let Ok(mut map) = Self::map().lock() {
            for p in found {
                map.insert(p.pid, (p.start_time, key.to_owned()));
            }
        }
    }

    /// Forgets every claim of `key` (the service was stopped).
    pub(super) fn release(key: &str) {
        if let Ok(mut map) = Self::map().lock() {
            map.retain(|_, (_, k)| k != key);
        }
    }
}
