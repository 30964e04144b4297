//! Windows: Ctrl-C and Ctrl-Break; a detached process in its own group, without a
//! console, for the detached instance.
use std::os::windows::process::CommandExt;

use tokio::signal::windows::{ctrl_break, ctrl_c};
use tokio::sync::mpsc;

/// Delivers the name of each Ctrl-C or Ctrl-Break received.
pub fn signals() -> std::io::Result<mpsc::UnboundedReceiver<&'static str>> {
    let mut c = ctrl_c()?;
    let mut brk = ctrl_break()?;
    let (tx, rx) = mpsc::unbounded_channel();
    actix_rt::spawn(async move {
        loop {
            let name = tokio::select! {
                Some(()) = c.recv() => "Ctrl-C",
                Some(()) = brk.recv() => "Ctrl-Break",
                else => break,
            };
            if tx.send(name).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// Makes `cmd` start detached from the console, in a new process group.
pub fn detach(cmd: &mut std::process::Command) {
    const DETACHED_PROCESS: u32 = 0x0000_0008;
    const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
    cmd.creation_flags(DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP);
}
