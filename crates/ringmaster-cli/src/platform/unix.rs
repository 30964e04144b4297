//! Unix: SIGINT, SIGTERM and SIGHUP (the terminal went away); `setsid` for the
//! detached instance.
use std::os::unix::process::CommandExt;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// Delivers the name of each SIGINT, SIGTERM or SIGHUP received (`"SIGINT"`, ...).
/// Must be called inside the runtime; installs the handlers at once.
pub fn signals() -> std::io::Result<mpsc::UnboundedReceiver<&'static str>> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let (tx, rx) = mpsc::unbounded_channel();
    actix_rt::spawn(async move {
        loop {
            let name = tokio::select! {
                Some(()) = int.recv() => "SIGINT",
                Some(()) = term.recv() => "SIGTERM",
                Some(()) = hup.recv() => "SIGHUP",
                else => break,
            };
            if tx.send(name).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// Makes `cmd` start in a new session, so it survives the terminal and does not
/// get the terminal's Ctrl-C.
pub fn detach(cmd: &mut std::process::Command) {
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
