//! Platform helpers of the demo services, one implementation per platform
//! (`unix.rs`, `windows.rs`); callers never see a `cfg`.
//!
//! - Sharing a listening socket with a worker child, as `uvicorn --reload` does.
//! - Renaming the current process, as Next.js renames its server `next-server`.
//! - Running a program through the platform shell so that the shell stays in the
//!   chain (`npm` → `sh -c` → server).
//! - Waiting for a termination request (SIGTERM on Unix).
use std::io;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

#[cfg_attr(unix, path = "unix.rs")]
#[cfg_attr(windows, path = "windows.rs")]
mod imp;

/// True when [`pass_listener`] works here (Unix); elsewhere the demo API serves
/// in its own process.
pub const SHARES_LISTENER: bool = imp::SHARES_LISTENER;

/// Lets the child `cmd` will spawn inherit `listener`; returns the token the child
/// gives to [`inherited_listener`] (on Unix, the fd number).
pub fn pass_listener(listener: &TcpListener, cmd: &mut Command) -> io::Result<String> {
    imp::pass_listener(listener, cmd)
}

/// The listener a parent passed with [`pass_listener`].
pub fn inherited_listener(token: &str) -> io::Result<TcpListener> {
    imp::inherited_listener(token)
}

/// Renames the current process (Linux: its `comm`, at most 15 bytes are kept, as
/// `ps`, `top` and `/proc/PID/comm` show it; the exe does not change). A no-op where
/// that is not possible. Call it before starting threads.
pub fn rename_current_process(name: &str) {
    imp::rename_current_process(name)
}

/// The parent's pid, where the platform tells it.
pub fn parent_pid() -> Option<u32> {
    imp::parent_pid()
}

/// A command that runs `program args...` through the platform shell (`sh -c`,
/// `cmd /C`) in a way that keeps the shell process alive between its parent and
/// `program`, as `npm run dev` does.
pub fn through_shell(program: &Path, args: &[String]) -> Command {
    imp::through_shell(program, args)
}

/// Resolves when the process is asked to terminate by something other than
/// Ctrl-C (Unix: SIGTERM); never resolves where there is no such request.
pub async fn terminate_requested() {
    imp::terminate_requested().await
}
