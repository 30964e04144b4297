//! Windows: `cmd /C`, a job object holding the whole tree, no subreaper and
//! nothing to reap. The job is created with kill-on-close: when the child wrapper
//! is dropped (after a stop, once the root has exited, or when ringmaster itself
//! dies and the OS closes its handles) every process still in the job is killed.
//!
//! The root starts a console process group of its own (`CREATE_NEW_PROCESS_GROUP`),
//! which the graceful stop sends CTRL_BREAK to (`stop/console.rs`). It shares our
//! console when we have one; otherwise it gets a hidden console of its own
//! (`CREATE_NO_WINDOW`) instead of a new visible window, and the stop attaches to
//! that one for the call. Being in its own group also keeps the user's Ctrl-C
//! from reaching the service directly: ringmaster gets it and stops the services
//! in dependency order (Ctrl-Break still reaches every process on the console).
use process_wrap::tokio::{CommandWrap, CreationFlags, JobObject, KillOnDrop};
use tokio::process::Command;
use windows::Win32::System::Threading::{CREATE_NEW_PROCESS_GROUP, CREATE_NO_WINDOW};

use crate::Result;

pub(super) const SHELL: &str = "cmd.exe";

/// `cmd /C` gets the command line as it is: std's quoting does not fit cmd.
pub(super) fn shell_args(cmd: &mut Command, command: &str) {
    cmd.arg("/C").raw_arg(command);
}

pub(super) fn isolate(wrap: &mut CommandWrap) {
    // KillOnDrop makes process-wrap create the job with JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE.
    wrap.wrap(JobObject).wrap(KillOnDrop);
    let flags = if crate::stop::has_console() {
        CREATE_NEW_PROCESS_GROUP
    } else {
        CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW
    };
    wrap.wrap(CreationFlags(flags));
}

/// No timer-slack marker on Windows: its job object holds every descendant.
pub(super) fn mark(_wrap: &mut CommandWrap, _slack: u64) {}

/// No launcher: the job object is set up by the wrapper.
pub(super) fn launcher() -> Option<&'static std::path::Path> {
    None
}

/// Never called without a launcher.
pub(super) fn with_thread_slack<T>(_slack: u64, f: impl FnOnce() -> T) -> T {
    f()
}

/// The root leads a console process group of its own, named by its pid.
pub(super) fn group_of_spawned(pid: u32) -> Option<u32> {
    Some(pid)
}

pub(super) fn become_subreaper() -> Result<bool> {
    Ok(false)
}

pub(super) fn reap(_pid: u32) -> bool {
    false
}
