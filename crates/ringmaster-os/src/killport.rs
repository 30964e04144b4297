//! Kill-port: stop the authorized holders' whole process trees, wait until the
//! port is free, and refuse (touching nothing) when any holder is not authorized.
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::authz::{may_stop, Policy, Refusal};
use crate::ports::{listeners, port_is_free};
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
/// no visible process holds is [`crate::Error::PortHeldUnseen`]. Blocking: call it
/// off actor threads.
pub fn clear_port(
    port: u16,
    policy: &Policy,
    signal: Signal,
    grace: Duration,
    dry_run: bool,
) -> Result<ClearReport> {
    let mut policy = policy.clone();
    policy.port = Some(port);

    let holders = holders(port)?;
    if holders.is_empty() {
        return if port_is_free(port)? {
            Ok(ClearReport {
                port,
                ..ClearReport::default()
            })
        } else {
            Err(Error::PortHeldUnseen { port })
        };
    }
    let refusals: Vec<Refusal> = holders
        .iter()
        .filter_map(|h| may_stop(h, &policy).err())
        .collect();
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

/// The distinct live processes holding `port`, read once each.
fn holders(port: u16) -> Result<Vec<ProcessInfo>> {
    let mut found: Vec<ProcessInfo> = Vec::new();
    for listener in listeners(port)? {
        if found.iter().any(|h| h.pid == listener.pid) {
            continue;
        }
        let info = match listener.process {
            Some(info) => Some(info),
            None => process::process(listener.pid)?,
        };
        if let Some(info) = info.filter(|i| !i.zombie) {
            found.push(info);
        }
    }
    Ok(found)
}

fn holders_briefs(port: u16) -> Result<Vec<ProcessBrief>> {
    Ok(holders(port)?.iter().map(ProcessInfo::brief).collect())
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
