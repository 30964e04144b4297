//! Kill-port: stop the authorized holders' whole process trees, wait until the
//! port is free, and refuse (touching nothing) when any holder is not authorized.
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::authz::{self, may_stop, Policy, Refusal};
use crate::ports::{listeners, port_is_free, Listener};
use crate::process::{self, ProcessBrief, ProcessInfo};
use crate::stop::{stop, Signal, StopReport, StopTarget};
use crate::{Error, Result};

/// How long to wait for the socket to disappear once the holders' trees were
/// stopped (they are gone by then; the kernel closes their sockets on exit).
const PORT_RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// What clearing a port did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClearReport {
    pub port: u16,
    /// The holders found (empty when the port was already free).
    pub holders: Vec<ProcessBrief>,
    /// One report per holder tree stopped.
    pub stops: Vec<StopReport>,
}

/// Clears `port`: checks every holder against `policy` first (any refusal →
/// [`crate::Error::Refused`], nothing touched); then stops each holder's process
/// tree (the holder, its descendants, and its process group when the group leader
/// is itself authorized) with `signal` and `grace`, and waits until the port is free
/// ([`crate::Error::PortStillHeld`] otherwise). `dry_run` only checks.
///
/// A holder that is a descendant of another holder (a worker sharing its
/// reloader's socket) is stopped with that holder's tree. A listening socket that
/// no visible process holds is [`crate::Error::PortHeldUnseen`]; one whose owner
/// the socket table does not name (pid 0) is refused. Blocking: call it off actor
/// threads.
pub fn clear_port(
    port: u16,
    policy: &Policy,
    signal: Signal,
    grace: Duration,
    dry_run: bool,
) -> Result<ClearReport> {
    let mut policy = policy.clone();
    policy.port = Some(port);

    let Holders {
        processes: holders,
        unknown_owner,
    } = holders(port)?;
    if holders.is_empty() && !unknown_owner {
        return if port_is_free(port)? {
            Ok(ClearReport {
                port,
                ..ClearReport::default()
            })
        } else {
            Err(Error::PortHeldUnseen { port })
        };
    }
    let refusals = refusals(&holders, unknown_owner, &policy);
    if !refusals.is_empty() {
        return Err(Error::Refused { port, refusals });
    }
    let mut report = ClearReport {
        port,
        holders: holders.iter().map(ProcessInfo::brief).collect(),
        stops: Vec::new(),
    };
    if dry_run {
        return Ok(report);
    }

    let table = process::snapshot_brief()?;
    for holder in &holders {
        let inside_another = holders.iter().any(|other| {
            other.pid != holder.pid
                && process::descendants(&table, other.pid)
                    .iter()
                    .any(|d| d.pid == holder.pid)
        });
        if inside_another || !process::is_same_alive(holder.pid, holder.start_time) {
            continue;
        }
        let target = StopTarget {
            root: Some(holder.pid),
            pgid: authorized_group(holder, &policy),
            tag: None,
            also: Vec::new(),
        };
        tracing::debug!(port, pid = holder.pid, name = %holder.name, pgid = ?target.pgid, "stopping port holder");
        report.stops.push(stop(&target, signal, grace)?);
    }

    let freed = process::poll_until(PORT_RELEASE_TIMEOUT, Duration::from_millis(20), || {
        port_is_free(port).unwrap_or(false)
    });
    if !freed {
        let left: Vec<ProcessBrief> = holders_briefs(port)?;
        return Err(if left.is_empty() {
            Error::PortHeldUnseen { port }
        } else {
            Error::PortStillHeld {
                port,
                holders: left,
            }
        });
    }
    Ok(report)
}

/// Who holds a port, as far as the socket table and the process table tell.
#[derive(Debug, Default)]
pub(crate) struct Holders {
    /// The distinct live processes holding it, read once each.
    pub(crate) processes: Vec<ProcessInfo>,
    /// Some socket on it has an owner the socket table does not name (pid 0).
    pub(crate) unknown_owner: bool,
}

fn holders(port: u16) -> Result<Holders> {
    holders_of(listeners(port)?, process::process)
}

/// The holders behind `listeners`, reading with `read` each pid whose process the
/// listener does not carry. Pid 0 is never read: it marks an unknown owner.
pub(crate) fn holders_of(
    listeners: Vec<Listener>,
    read: impl Fn(u32) -> Result<Option<ProcessInfo>>,
) -> Result<Holders> {
    let mut found = Holders::default();
    for listener in listeners {
        if listener.pid == 0 {
            found.unknown_owner = true;
            continue;
        }
        if found.processes.iter().any(|h| h.pid == listener.pid) {
            continue;
        }
        let info = match listener.process {
            Some(info) => Some(info),
            None => read(listener.pid)?,
        };
        if let Some(info) = info.filter(|i| !i.zombie) {
            found.processes.push(info);
        }
    }
    Ok(found)
}

/// Why the holders of a port may not be stopped under `policy` (empty: they all
/// may): one refusal per process [`may_stop`] refuses, and one for an unknown
/// owner, whom nothing can stop (stopping the others would not free the port).
pub(crate) fn refusals(
    processes: &[ProcessInfo],
    unknown_owner: bool,
    policy: &Policy,
) -> Vec<Refusal> {
    let unknown = unknown_owner.then(|| authz::unknown_owner(policy));
    unknown
        .into_iter()
        .chain(processes.iter().filter_map(|h| may_stop(h, policy).err()))
        .collect()
}

fn holders_briefs(port: u16) -> Result<Vec<ProcessBrief>> {
    Ok(holders(port)?
        .processes
        .iter()
        .map(ProcessInfo::brief)
        .collect())
}

/// The holder's process group, when its leader is alive and itself authorized (so
/// a holder started in our own group, or in a stranger's, never takes the group
/// down with it).
fn authorized_group(holder: &ProcessInfo, policy: &Policy) -> Option<u32> {
    let pgid = holder.pgid.filter(|&g| g > 1)?;
    let leader = process::process(pgid)
        .ok()
        .flatten()
        .filter(|p| !p.zombie)?;
    may_stop(&leader, policy).ok().map(|()| pgid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::RefusalReason;

    fn listener(pid: u32) -> Listener {
        Listener {
            port: 8000,
            addr: "0.0.0.0".parse().unwrap(),
            pid,
            process: None,
        }
    }

    /// Pid 0 is what a socket table gives for an owner it does not know: it is
    /// never read as a process, and refuses the port even beside a holder that
    /// may be stopped. (The recorded Windows tables in `ports/other.rs` test the
    /// same on the rows the `listeners` crate gives.)
    #[test]
    fn pid_0_is_an_unknown_owner_that_is_never_read_and_refuses_the_port() {
        let me = crate::process::process(std::process::id())
            .expect("reads")
            .expect("we exist");
        let found = holders_of(vec![listener(0), listener(me.pid)], |pid| {
            assert_ne!(pid, 0, "pid 0 was read as a process");
            Ok((pid == me.pid).then(|| me.clone()))
        })
        .expect("holders");
        assert!(found.unknown_owner);
        assert_eq!(found.processes, vec![me.clone()]);

        let policy = Policy {
            project: None,
            allow: vec![me.name.clone()],
            service: Some("api".to_string()),
            port: Some(8000),
            uid: me.uid,
            user: None,
            protected: Vec::new(),
        };
        // Without the unknown owner, only the usual rules speak (here: we are ourselves).
        let reasons = |unknown| -> Vec<RefusalReason> {
            refusals(&found.processes, unknown, &policy)
                .into_iter()
                .map(|r| r.reason)
                .collect()
        };
        assert_eq!(reasons(false), vec![RefusalReason::Ourselves]);
        assert_eq!(
            reasons(true),
            vec![RefusalReason::UnknownOwner, RefusalReason::Ourselves]
        );
    }
}
