//! Windows: Ctrl-C and Ctrl-Break; a detached process in its own group, with a
//! hidden console of its own, for the detached instance.
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

/// Makes `cmd` start detached from our console, in a new process group, holding
/// none of our standard handles. It gets a console of its own without a window
/// (`CREATE_NO_WINDOW`, not `DETACHED_PROCESS`, which would leave it none): its
/// services share that console, so its graceful stop can send them CTRL_BREAK
/// (ringmaster-os `stop/console.rs`); the user's Ctrl-C never reaches it, and
/// closing the user's terminal does not end it.
pub fn detach(cmd: &mut std::process::Command) {
    const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
    const CREATE_NO_WINDOW: u32 = 0x0800_0000;
    cmd.creation_flags(CREATE_NO_WINDOW | CREATE_NEW_PROCESS_GROUP);
    keep_std_handles_from_children();
}

/// Marks our stdin, stdout and stderr handles not inheritable. A child is created
/// with every inheritable handle of ours, not only the ones given as its stdio, so
/// the detached instance would otherwise hold the caller's stdout pipe for as long
/// as it runs, and a caller reading that pipe to its end (`$(ringmaster up -d)`,
/// `Command::output`) would wait for ever. Children given `Stdio::inherit()` still
/// get our console: std duplicates those handles as inheritable for them.
fn keep_std_handles_from_children() {
    use std::os::windows::io::AsRawHandle;

    const HANDLE_FLAG_INHERIT: u32 = 0x0000_0001;
    #[link(name = "kernel32")]
    extern "system" {
        fn SetHandleInformation(handle: *mut std::ffi::c_void, mask: u32, flags: u32) -> i32;
    }
    let handles = [
        std::io::stdin().as_raw_handle(),
        std::io::stdout().as_raw_handle(),
        std::io::stderr().as_raw_handle(),
    ];
    for handle in handles.into_iter().filter(|h| !h.is_null()) {
        // SAFETY: a handle of our own standard streams (or a pseudo value the call
        // rejects); clearing its inherit flag changes nothing else about it.
        unsafe { SetHandleInformation(handle, HANDLE_FLAG_INHERIT, 0) };
    }
}

/// Start-up preparation: nothing to do on Windows (the detached instance is kept
/// from our handles by [`detach`]; there is no SIGPIPE).
pub fn prepare(_default_sigpipe: bool) {}

/// Windows: the console's close events end the process as they do today (the
/// console itself goes with it); nothing to watch.
pub fn watch_quit() {}

/// Never set on Windows (see [`watch_quit`]).
pub fn quit_asked() -> bool {
    false
}
