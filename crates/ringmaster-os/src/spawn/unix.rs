//! Unix: `sh -c`, a new session and process group (the pgid is the child's pid),
//! reaping by pid, and on Linux the child subreaper.
use process_wrap::tokio::{CommandWrap, ProcessSession};
use tokio::process::Command;

use crate::Result;

pub(super) const SHELL: &str = "/bin/sh";

pub(super) fn shell_args(cmd: &mut Command, command: &str) {
    cmd.arg("-c").arg(command);
}

/// Own session and process group: `setsid` before exec.
pub(super) fn isolate(wrap: &mut CommandWrap) {
    wrap.wrap(ProcessSession);
}

/// Linux: the child starts with `slack` as its timer slack ([`crate::Tag::slack_marker`]),
/// which its descendants inherit whatever they do to their environment.
#[cfg(target_os = "linux")]
pub(super) fn mark(wrap: &mut CommandWrap, slack: u64) {
    let slack = slack as libc::c_ulong;
    // SAFETY: prctl(PR_SET_TIMERSLACK) is async-signal-safe, allocates nothing and
    // touches no memory of ours; a failure only leaves the default slack.
    unsafe {
        wrap.command_mut().pre_exec(move || {
            libc::prctl(libc::PR_SET_TIMERSLACK, slack, 0, 0, 0);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn mark(_wrap: &mut CommandWrap, _slack: u64) {}

/// After `setsid` the child leads its group: pgid == pid.
pub(super) fn group_of_spawned(pid: u32) -> Option<u32> {
    Some(pid)
}

#[cfg(target_os = "linux")]
pub(super) fn become_subreaper() -> Result<bool> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and touches no memory.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        return Err(crate::Error::io(
            "prctl(PR_SET_CHILD_SUBREAPER)",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(true)
}

#[cfg(not(target_os = "linux"))]
pub(super) fn become_subreaper() -> Result<bool> {
    Ok(false)
}

/// `waitpid(pid, WNOHANG)`: true when `pid` was an exited child of ours and is reaped now.
pub(super) fn reap(pid: u32) -> bool {
    let Ok(raw) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    let mut status = 0;
    // SAFETY: waits on one positive pid only, never -1 or a group.
    unsafe { libc::waitpid(raw, &mut status, libc::WNOHANG) == raw }
}
