//! Unix: `sh -c`, a new session and process group (the pgid is the child's pid),
//! reaping by pid, and on Linux the child subreaper. On Linux the session comes
//! from `setsid(1)` when installed ([`launcher`]), so that the spawn is a
//! `posix_spawn`.
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

/// Linux: util-linux's `setsid(1)`, when it is installed: the root is spawned as
/// `setsid /bin/sh -c COMMAND`, which calls `setsid()` and execs the shell (same
/// pid, never a fork: the spawned process does not lead a group). With nothing
/// to run in the child between fork and exec, the standard library spawns with
/// `posix_spawn` (a vfork) instead of a fork of this whole process, whose page
/// tables are copied: measured in `benches/knock.rs`, 0.2 ms against 0.7 ms in a
/// small process, and 0.6 ms against 3.4 ms inside a running orchestrator on a
/// virtual machine (docs/benchmarks.md). Elsewhere, and without `setsid(1)`, the
/// session is made in the child (`pre_exec`).
#[cfg(target_os = "linux")]
pub(super) fn launcher() -> Option<&'static std::path::Path> {
    static FOUND: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            ["/usr/bin/setsid", "/bin/setsid"]
                .iter()
                .map(std::path::PathBuf::from)
                .find(|p| p.is_file())
        })
        .as_deref()
}

#[cfg(not(target_os = "linux"))]
pub(super) fn launcher() -> Option<&'static std::path::Path> {
    None
}

/// Linux: runs `f` (the spawn) with this thread's timer slack set to `slack`,
/// which the spawned process inherits from the thread that spawns it (a
/// `posix_spawn` runs no code of ours in the child to set it there), then puts
/// the thread's own slack back.
#[cfg(target_os = "linux")]
pub(super) fn with_thread_slack<T>(slack: u64, f: impl FnOnce() -> T) -> T {
    // SAFETY: PR_GET/SET_TIMERSLACK read or set this thread's slack, an integer.
    let before = unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0) };
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, slack as libc::c_ulong, 0, 0, 0) };
    let out = f();
    if before > 0 {
        // SAFETY: as above.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, before as libc::c_ulong, 0, 0, 0) };
    }
    out
}

#[cfg(not(target_os = "linux"))]
pub(super) fn with_thread_slack<T>(_slack: u64, f: impl FnOnce() -> T) -> T {
    f()
}

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
