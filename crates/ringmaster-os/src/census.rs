//! What each service is made of right now: its live members, the ports each one
//! holds, and its *main process* — the pid a user expects to see (the program
//! behind `sh -c`, `cmd /C` or `npm run`, the holder of the service's port).
//! One scan of the process table and one of the listening sockets serve every
//! service of a [`census`]. The same scan gives what each member costs (CPU time,
//! resident memory) and the sums per service; [`census_brief`] leaves them out.
//!
//! # The main process
//! [`main_process`] picks, among a service's live members:
//! 1. the pid a daemon wrote to its own PID file (`hint`), when it names a member;
//! 2. else, when the service has a port, the member holding it that is highest in
//!    the tree (uvicorn `--reload`: the reloader, not the worker that shares its
//!    socket);
//! 3. else the first process below the wrappers: from the spawned root (or, once
//!    the root is gone, the oldest member) down through shells and script runners
//!    ([`is_wrapper`]) to the first process that is none.
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::process::{self, ProcessInfo, Usage};
use crate::tag::Tag;
use crate::Result;

/// Names of programs that only run another one: shells, script runners and
/// launchers. A process whose name (its first word, as `npm run dev` renames
/// itself) or `argv[0]` basename is one of these is looked through.
pub const WRAPPERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ash", "ksh", "cmd", "cmd.exe", "npm", "npm.cmd", "npx", "pnpm",
    "yarn", "env", "nohup", "timeout", "setsid",
];

/// One service to look at.
#[derive(Clone, Debug, Default)]
pub struct CensusTarget {
    /// The spawned root, while it runs (`None` once it exited).
    pub root: Option<u32>,
    /// The root's process group (Unix).
    pub pgid: Option<u32>,
    /// The service's tag: every process carrying it is a member.
    pub tag: Option<Tag>,
    /// Members known by identity (pid, start time), with their descendants: a
    /// daemon whose environment no longer shows the tag.
    pub also: Vec<(u32, u64)>,
    /// The service's port, if it owns one.
    pub port: Option<u16>,
    /// A pid the service itself named (a daemon's own PID file).
    pub hint: Option<u32>,
}

/// One live member of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub pid: u32,
    /// Its start time ([`ProcessInfo::start_time`]): with the pid, its identity.
    #[serde(default)]
    pub start_time: u64,
    pub name: String,
    /// The ports it listens on (sorted, no duplicates).
    #[serde(default)]
    pub ports: Vec<u16>,
    /// What it costs ([`census`]; `None` from [`census_brief`], or when it could
    /// not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// What a [`census`] found for one [`CensusTarget`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceCensus {
    /// Live members, sorted by pid.
    pub members: Vec<Member>,
    /// See [`main_process`]; `None` when no member is alive.
    pub main_pid: Option<u32>,
    /// CPU time its live members used so far, summed; `None` when no member's
    /// usage was read (none alive, or [`census_brief`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Duration>,
    /// Resident memory of its live members, summed, in bytes (same conditions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
}

/// Looks at every target with one scan of the process table and, when any target
/// has a live member, one read of the listening sockets: members, their ports,
/// the main process, and what each member and each service costs. Blocking.
pub fn census(targets: &[CensusTarget]) -> Result<Vec<ServiceCensus>> {
    look(targets, true)
}

/// [`census`] without the costs (`usage`, `cpu`, `rss_bytes` stay `None`), for
/// callers that want only the members or the main pid. Barely cheaper on Linux
/// (the same `stat` files; no read of `/proc/uptime`); elsewhere the sysinfo
/// refresh asks for no CPU time or memory. Blocking.
pub fn census_brief(targets: &[CensusTarget]) -> Result<Vec<ServiceCensus>> {
    look(targets, false)
}

fn look(targets: &[CensusTarget], with_usage: bool) -> Result<Vec<ServiceCensus>> {
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let table = if with_usage {
        process::snapshot_usage()?
    } else {
        process::snapshot_brief()?
    };
    let tree = process::Tree::new(&table);
    let found: Vec<Vec<&ProcessInfo>> = targets
        .iter()
        .map(|t| {
            tree.members_with(t.root, t.pgid, t.tag.as_ref(), &t.also)
                .into_values()
                .collect()
        })
        .collect();
    let mut ports: HashMap<u32, Vec<u16>> = HashMap::new();
    // On Linux the socket table is cheap (netlink, then one fd scan). Elsewhere it
    // comes from the `listeners` crate, which took seconds under Wine on a busy
    // machine: it is read only when a running service has a port, whose holder
    // may be its main process (members' `ports` stay empty otherwise).
    let running = targets.iter().zip(&found).filter(|(_, m)| !m.is_empty());
    let read_ports = if cfg!(target_os = "linux") {
        running.count() > 0
    } else {
        running.filter(|(t, _)| t.port.is_some()).count() > 0
    };
    if read_ports {
        // A failed socket read only leaves the ports out: the members still count.
        let pids: Vec<u32> = found.iter().flatten().map(|p| p.pid).collect();
        for (pid, port) in crate::ports::listening_pids(&pids).unwrap_or_default() {
            ports.entry(pid).or_default().push(port);
        }
        for list in ports.values_mut() {
            list.sort_unstable();
            list.dedup();
        }
    }
    Ok(targets
        .iter()
        .zip(found)
        .map(|(t, members)| {
            let holders: Vec<u32> = match t.port {
                Some(port) => members
                    .iter()
                    .filter(|p| ports.get(&p.pid).is_some_and(|l| l.contains(&port)))
                    .map(|p| p.pid)
                    .collect(),
                None => Vec::new(),
            };
            // Wrapper detection wants argv (`node /usr/bin/npm`), which the brief
            // scan does not read: it is read only for the few processes the walk
            // below the wrappers looks at.
            let mut wrapper = |p: &ProcessInfo| match process::argv(p.pid) {
                Some(argv) => is_wrapper(&ProcessInfo { argv, ..p.clone() }),
                None => is_wrapper(p),
            };
            let usages: Vec<&Usage> = members.iter().filter_map(|p| p.usage.as_ref()).collect();
            let summed = !usages.is_empty();
            ServiceCensus {
                main_pid: pick_main(&members, t.root, &holders, t.hint, &mut wrapper),
                members: members
                    .iter()
                    .map(|p| Member {
                        pid: p.pid,
                        start_time: p.start_time,
                        name: p.name.clone(),
                        ports: ports.get(&p.pid).cloned().unwrap_or_default(),
                        usage: p.usage,
                    })
                    .collect(),
                cpu: summed.then(|| usages.iter().map(|u| u.cpu).sum()),
                rss_bytes: summed.then(|| usages.iter().map(|u| u.rss_bytes).sum()),
            }
        })
        .collect())
}

/// True for a shell, script runner or launcher ([`WRAPPERS`]).
pub fn is_wrapper(p: &ProcessInfo) -> bool {
    let first_word = p.name.split_whitespace().next().unwrap_or("");
    let argv0 = p.argv0_basename();
    let argv0_word = argv0
        .as_deref()
        .and_then(|a| a.split_whitespace().next())
        .unwrap_or("");
    // `node /usr/lib/node_modules/npm/bin/npm-cli.js run dev` before npm renames itself.
    let runs_npm = p.argv.get(1).is_some_and(|a| {
        let base = a.rsplit(['/', '\\']).next().unwrap_or(a);
        matches!(base, "npm-cli.js" | "npx-cli.js" | "npm" | "npx")
    });
    runs_npm
        || WRAPPERS
            .iter()
            .any(|w| w.eq_ignore_ascii_case(first_word) || w.eq_ignore_ascii_case(argv0_word))
}

/// The main process among `members` (live members of one service), as the module
/// doc describes. `root` is the spawned root while it runs, `holders` the members
/// holding the service's port, `hint` a pid the service named itself.
pub fn main_process(
    members: &[&ProcessInfo],
    root: Option<u32>,
    holders: &[u32],
    hint: Option<u32>,
) -> Option<u32> {
    pick_main(members, root, holders, hint, &mut |p| is_wrapper(p))
}

/// [`main_process`], with `wrapper` telling whether a process is a wrapper.
fn pick_main(
    members: &[&ProcessInfo],
    root: Option<u32>,
    holders: &[u32],
    hint: Option<u32>,
    wrapper: &mut dyn FnMut(&ProcessInfo) -> bool,
) -> Option<u32> {
    let by_pid: BTreeMap<u32, &ProcessInfo> = members.iter().map(|p| (p.pid, *p)).collect();
    if let Some(h) = hint.filter(|h| by_pid.contains_key(h)) {
        return Some(h);
    }
    let ancestor_holds = |p: &ProcessInfo| {
        let mut cur = p.ppid;
        let mut steps = 0;
        while let Some(pid) = cur {
            if holders.contains(&pid) {
                return true;
            }
            steps += 1;
            if steps > by_pid.len() {
                break;
            }
            cur = by_pid.get(&pid).and_then(|q| q.ppid);
        }
        false
    };
    let top_holder = holders
        .iter()
        .filter_map(|h| by_pid.get(h))
        .filter(|p| !ancestor_holds(p))
        .min_by_key(|p| (p.start_time, p.pid));
    if let Some(p) = top_holder {
        return Some(p.pid);
    }
    let start = root
        .and_then(|r| by_pid.get(&r))
        .or_else(|| {
            by_pid
                .values()
                .filter(|p| p.ppid.is_none_or(|pp| !by_pid.contains_key(&pp)))
                .min_by_key(|p| (p.start_time, p.pid))
        })
        .or_else(|| by_pid.values().min_by_key(|p| (p.start_time, p.pid)))?;
    let mut cur = *start;
    for _ in 0..by_pid.len() {
        if !wrapper(cur) {
            break;
        }
        let Some(child) = by_pid
            .values()
            .filter(|p| p.ppid == Some(cur.pid))
            .min_by_key(|p| (p.start_time, p.pid))
        else {
            break;
        };
        cur = child;
    }
    Some(cur.pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, ppid: u32, start: u64, name: &str, argv: &[&str]) -> ProcessInfo {
        ProcessInfo {
            pid,
            ppid: Some(ppid),
            start_time: start,
            name: name.into(),
            argv: argv.iter().map(|a| a.to_string()).collect(),
            ..ProcessInfo::default()
        }
    }

    #[test]
    fn the_program_behind_a_shell_is_main() {
        let t = [
            p(10, 1, 1, "sh", &["/bin/sh", "-c", "python3 -m http.server"]),
            p(11, 10, 2, "python3", &["python3", "-m", "http.server"]),
        ];
        let refs: Vec<&ProcessInfo> = t.iter().collect();
        assert_eq!(main_process(&refs, Some(10), &[], None), Some(11));
    }

    #[test]
    fn an_npm_chain_is_looked_through_down_to_the_server() {
        let t = [
            p(10, 1, 1, "sh", &["/bin/sh", "-c", "npm run dev"]),
            p(11, 10, 2, "npm run dev", &["npm run dev"]),
            p(12, 11, 3, "sh", &["sh", "-c", "next dev"]),
            p(
                13,
                12,
                4,
                "node",
                &["node", "/app/node_modules/.bin/next", "dev"],
            ),
            p(14, 13, 5, "next-server (v1", &["next-server (v16.4.6)"]),
        ];
        let refs: Vec<&ProcessInfo> = t.iter().collect();
        assert_eq!(main_process(&refs, Some(10), &[], None), Some(13));
        // With the port known, its holder wins.
        assert_eq!(main_process(&refs, Some(10), &[14], None), Some(14));
    }

    #[test]
    fn npm_before_it_renames_itself_is_a_wrapper() {
        let npm = p(
            11,
            10,
            2,
            "node",
            &[
                "node",
                "/usr/lib/node_modules/npm/bin/npm-cli.js",
                "run",
                "dev",
            ],
        );
        assert!(is_wrapper(&npm));
        assert!(!is_wrapper(&p(12, 11, 3, "node", &["node", "server.js"])));
    }

    #[test]
    fn of_a_reloader_and_worker_sharing_the_port_the_reloader_is_main() {
        let t = [
            p(10, 1, 1, "sh", &["/bin/sh", "-c", "uvicorn --reload"]),
            p(11, 10, 2, "python3", &["python3", "uvicorn"]),
            p(12, 11, 3, "python3", &["python3", "-c", "spawn worker"]),
        ];
        let refs: Vec<&ProcessInfo> = t.iter().collect();
        assert_eq!(main_process(&refs, Some(10), &[11, 12], None), Some(11));
        assert_eq!(main_process(&refs, Some(10), &[12, 11], None), Some(11));
    }

    #[test]
    fn without_its_root_the_oldest_member_is_main_unless_the_daemon_named_one() {
        // A daemon: the launcher is gone; the master (oldest) and its workers live.
        let t = [
            p(20, 1, 5, "nginx", &["nginx: master process"]),
            p(21, 20, 6, "nginx", &["nginx: worker process"]),
            p(22, 20, 6, "nginx", &["nginx: worker process"]),
        ];
        let refs: Vec<&ProcessInfo> = t.iter().collect();
        assert_eq!(main_process(&refs, None, &[], None), Some(20));
        assert_eq!(main_process(&refs, None, &[], Some(22)), Some(22));
        // A hint that is not a member is ignored.
        assert_eq!(main_process(&refs, None, &[], Some(999)), Some(20));
        assert_eq!(main_process(&[], None, &[], None), None);
    }

    #[test]
    fn a_wrapper_without_children_is_itself_main() {
        let t = [p(10, 1, 1, "sh", &["/bin/sh", "-c", "sleep 1; true"])];
        let refs: Vec<&ProcessInfo> = t.iter().collect();
        assert_eq!(main_process(&refs, Some(10), &[], None), Some(10));
    }
}
