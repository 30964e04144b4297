//! Unix: signals through kill(2) and killpg(2). A pid is signalled only if it
//! still has the start time it was found with, so a reused pid is left alone.
use std::collections::HashSet;

use nix::sys::signal::{self, Signal as NixSignal};
use nix::unistd::Pid;

use super::Signal;
use crate::process::{is_same_alive, Tree};

fn nix_signal(signal: Signal) -> NixSignal {
    match signal {
        // BREAK is Windows' CTRL_BREAK; on Unix it means TERM.
        Signal::Term | Signal::Break => NixSignal::SIGTERM,
        Signal::Int => NixSignal::SIGINT,
        Signal::Hup => NixSignal::SIGHUP,
        Signal::Quit => NixSignal::SIGQUIT,
        Signal::Kill => NixSignal::SIGKILL,
        Signal::Usr1 => NixSignal::SIGUSR1,
        Signal::Usr2 => NixSignal::SIGUSR2,
    }
}

fn raw(pid: u32) -> Option<Pid> {
    i32::try_from(pid)
        .ok()
        .filter(|p| *p > 1)
        .map(Pid::from_raw)
}

/// Sends `signal` to each (pid, start time) that is still that process.
pub(super) fn send(pids: &[(u32, u64)], signal: Signal) {
    for &(pid, start_time) in pids {
        if let Some(target) = raw(pid) {
            if is_same_alive(pid, start_time) {
                if let Err(e) = signal::kill(target, nix_signal(signal)) {
                    tracing::debug!(pid, %signal, error = %e, "signal not delivered");
                }
            }
        }
    }
}

/// Whether group `pgid` may be signalled: it holds a live process (else its id
/// could belong to someone else) and no protected one.
pub(super) fn group_addressable(tree: &Tree, pgid: u32, protected: &HashSet<u32>) -> bool {
    let group = tree.group(pgid);
    group.iter().any(|p| !p.zombie) && !group.iter().any(|p| protected.contains(&p.pid))
}

/// Sends `signal` to process group `pgid`.
pub(super) fn send_group(pgid: u32, signal: Signal) {
    if let Some(group) = raw(pgid) {
        if let Err(e) = signal::killpg(group, nix_signal(signal)) {
            tracing::debug!(pgid, %signal, error = %e, "group signal not delivered");
        }
    }
}
