//! Windows: `cmd /C`, a job object holding the whole tree (terminated when the
//! owner kills the child wrapper), no subreaper and nothing to reap.
use process_wrap::tokio::{CommandWrap, JobObject};
use tokio::process::Command;

use crate::Result;

pub(super) const SHELL: &str = "cmd.exe";

/// `cmd /C` gets the command line as it is: std's quoting does not fit cmd.
pub(super) fn shell_args(cmd: &mut Command, command: &str) {
    cmd.arg("/C").raw_arg(command);
}

pub(super) fn isolate(wrap: &mut CommandWrap) {
    wrap.wrap(JobObject);
}

pub(super) fn group_of_spawned(_pid: u32) -> Option<u32> {
    None
}

pub(super) fn become_subreaper() -> Result<bool> {
    Ok(false)
}

pub(super) fn reap(_pid: u32) -> bool {
    false
}
