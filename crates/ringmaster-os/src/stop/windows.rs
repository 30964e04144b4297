//! Windows: there are no signals. A graceful stop sends CTRL_BREAK to the
//! service's console process group (`stop/console.rs` says when and how), and
//! asks each process tree to close with `taskkill /T` (WM_CLOSE, for windowed
//! programs; a console program that ignored CTRL_BREAK ignores it too, and the
//! grace runs out). The kill is `taskkill /T /F` plus a terminate per pid, and the
//! job object is terminated by its owner.
use std::collections::HashSet;
use std::process::{Command, Stdio};

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate};
use windows::Win32::System::Console::{
    AttachConsole, FreeConsole, GenerateConsoleCtrlEvent, GetConsoleProcessList, CTRL_BREAK_EVENT,
};

use super::console::{self, is_windows_kernel, Console, Delivery};
use super::Signal;
use crate::process::{is_same_alive, Tree};

/// Asks (or, for [`Signal::Kill`], forces) each (pid, start time) that is still
/// that process, with its tree, to end.
pub(super) fn send(pids: &[(u32, u64)], signal: Signal) {
    let live: Vec<u32> = pids
        .iter()
        .filter(|(pid, start)| !is_windows_kernel(*pid) && is_same_alive(*pid, *start))
        .map(|(pid, _)| *pid)
        .collect();
    if live.is_empty() {
        return;
    }
    let mut cmd = Command::new("taskkill");
    cmd.arg("/T");
    if signal == Signal::Kill {
        cmd.arg("/F");
    }
    for pid in &live {
        cmd.arg("/PID").arg(pid.to_string());
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Not waited for: every stop of the process runs on one thread (`engine.rs`),
    // which goes on polling while taskkill works; the stop waits for the processes.
    if let Err(e) = cmd.spawn() {
        tracing::debug!(error = %e, "taskkill could not run");
    }
    if signal == Signal::Kill {
        terminate(pids);
    }
}

/// Terminates each pid that is still the same process, through sysinfo.
fn terminate(pids: &[(u32, u64)]) {
    let Ok(mut sys) = sysinfo::System::new() else {
        return;
    };
    let wanted: Vec<Pid> = pids.iter().map(|(pid, _)| Pid::from_u32(*pid)).collect();
    sys.refresh_processes_specifics(
        ProcessesToUpdate::Some(&wanted),
        true,
        ProcessRefreshKind::nothing().without_tasks(),
    );
    for &(pid, start) in pids {
        if let Some(p) = sys.process(Pid::from_u32(pid)) {
            if p.start_time() == start {
                p.kill();
            }
        }
    }
}

/// Whether group `pgid` may get CTRL_BREAK. Windows lists no process groups; the
/// only group a stop names is a service root's own (`spawn/windows.rs`), which
/// holds only that service's processes. It is addressed while its root is alive:
/// the root's pid cannot be reused while its owner holds its handle, which it
/// does until the stop ends.
/// (Protected pids are never a service root; the caller leaves them out too.)
pub(super) fn group_addressable(tree: &Tree, pgid: u32, _protected: &HashSet<u32>) -> bool {
    tree.get(pgid).is_some_and(|p| !p.zombie)
}

/// Sends CTRL_BREAK to console process group `pgid` for every graceful signal;
/// nothing for `Kill` (the kill is `taskkill /F`, the terminates and the job).
pub(super) fn send_group(pgid: u32, signal: Signal) {
    if signal == Signal::Kill {
        return;
    }
    match console::send_break(&mut RealConsole, pgid) {
        Delivery::Sent | Delivery::SentAttached => {}
        other => tracing::debug!(pgid, ?other, "CTRL_BREAK not delivered"),
    }
}

/// Whether this process has a console.
pub(crate) fn has_console() -> bool {
    RealConsole.attached().is_some()
}

/// The console calls themselves.
struct RealConsole;

impl Console for RealConsole {
    fn attached(&mut self) -> Option<Vec<u32>> {
        let mut pids = vec![0u32; 64];
        loop {
            // SAFETY: writes at most `pids.len()` pids into the buffer.
            let n = unsafe { GetConsoleProcessList(&mut pids) } as usize;
            if n == 0 {
                return None;
            }
            if n <= pids.len() {
                pids.truncate(n);
                return Some(pids);
            }
            pids.resize(n + 16, 0);
        }
    }

    fn attach(&mut self, pid: u32) -> std::io::Result<()> {
        // SAFETY: plain call; fails when we already have a console or pid has none.
        unsafe { AttachConsole(pid) }.map_err(std::io::Error::other)
    }

    fn detach(&mut self) -> std::io::Result<()> {
        // SAFETY: plain call; detaches only the console attached just before.
        unsafe { FreeConsole() }.map_err(std::io::Error::other)
    }

    fn ctrl_break(&mut self, group: u32) -> std::io::Result<()> {
        // SAFETY: plain call; `group` was checked to be a service root's group.
        unsafe { GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, group) }.map_err(std::io::Error::other)
    }
}
