//! Unix: the listener is passed by fd number (its close-on-exec flag cleared in the
//! child only), renaming is `prctl(PR_SET_NAME)` on Linux, the shell is `sh -c`.
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

pub const SHARES_LISTENER: bool = true;

pub fn pass_listener(listener: &TcpListener, cmd: &mut Command) -> io::Result<String> {
    let fd: RawFd = listener.as_raw_fd();
    // SAFETY: the closure runs in the forked child before exec and calls only
    // fcntl, which is async-signal-safe; the fd stays open in the parent.
    unsafe {
        cmd.pre_exec(move || {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(fd.to_string())
}

pub fn inherited_listener(token: &str) -> io::Result<TcpListener> {
    let fd: RawFd = token.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not an fd number: {token}"),
        )
    })?;
    // SAFETY: check that the fd is open before taking ownership of it; the parent
    // passed it to this process for exactly this purpose.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd is open and nothing else in this process owns it.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    // Fails when the fd is not a socket.
    listener.local_addr()?;
    Ok(listener)
}

pub fn rename_current_process(name: &str) {
    #[cfg(target_os = "linux")]
    if let Ok(name) = std::ffi::CString::new(name) {
        // SAFETY: PR_SET_NAME reads a NUL-terminated string that outlives the call.
        unsafe {
            libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = name;
}

pub fn parent_pid() -> Option<u32> {
    Some(std::os::unix::process::parent_id())
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

pub fn through_shell(program: &Path, args: &[String]) -> Command {
    let mut line = quote(&program.to_string_lossy());
    for a in args {
        line.push(' ');
        line.push_str(&quote(a));
    }
    // A command followed by another one: the shell cannot exec it in its own
    // place, so it stays in the chain and waits, as `npm`'s `sh -c` does.
    line.push_str("; exit $?");
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(line);
    cmd
}

pub async fn terminate_requested() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            term.recv().await;
        }
        Err(_) => std::future::pending::<()>().await,
    }
}
