//! Windows: there are no signals. A graceful stop asks each process tree to close
//! with `taskkill /T` (console programs without a window usually ignore it, so the
//! grace then runs out); the kill is `taskkill /T /F` plus a terminate per pid.
//! Process groups do not exist; the job object is terminated by its owner.
use std::process::{Command, Stdio};

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate};

use super::Signal;
use crate::process::is_same_alive;

/// Asks (or, for [`Signal::Kill`], forces) each (pid, start time) that is still
/// that process, with its tree, to end.
pub(super) fn send(pids: &[(u32, u64)], signal: Signal) {
    let live: Vec<u32> = pids
        .iter()
        .filter(|(pid, start)| *pid > 4 && is_same_alive(*pid, *start))
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

/// No process groups on Windows.
pub(super) fn send_group(_pgid: u32, _signal: Signal) {}
