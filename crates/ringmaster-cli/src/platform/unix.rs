//! Unix: SIGINT, SIGTERM and SIGHUP (a reload, or the terminal went away);
//! `setsid` for the detached instance; what a process inherited is not handed on.
use std::os::unix::process::CommandExt;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// What a SIGHUP means when the controlling terminal it came with is gone: the
/// terminal was closed, and `up` stops as for SIGTERM.
pub const HANGUP: &str = "SIGHUP (the terminal was closed)";

/// True when this process has a controlling terminal that can be opened.
fn has_terminal() -> bool {
    std::fs::File::open("/dev/tty").is_ok()
}

/// Delivers the name of each SIGINT, SIGTERM or SIGHUP received (`"SIGINT"`, ...).
/// A SIGHUP is `"SIGHUP"` (a reload), or [`HANGUP`] when the process had a
/// controlling terminal and cannot open it any more (the terminal closed).
/// Must be called inside the runtime; installs the handlers at once.
pub fn signals() -> std::io::Result<mpsc::UnboundedReceiver<&'static str>> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let had_terminal = has_terminal();
    let (tx, rx) = mpsc::unbounded_channel();
    actix_rt::spawn(async move {
        loop {
            let name = tokio::select! {
                Some(()) = int.recv() => "SIGINT",
                Some(()) = term.recv() => "SIGTERM",
                Some(()) = hup.recv() => {
                    if had_terminal && !has_terminal() {
                        HANGUP
                    } else {
                        "SIGHUP"
                    }
                }
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

/// Start-up preparation, before any thread: every file descriptor above 2 that we
/// inherited is marked close-on-exec, so neither the detached instance nor any
/// service holds it (a pipe the caller waits on, such as `{ ringmaster up -d 7>&1; } | cat`,
/// would otherwise stay open while they run). With `default_sigpipe`, a write to a
/// closed pipe ends the process quietly, as for other Unix tools (`ringmaster ports |
/// head`), instead of a failed print; the foreground `up` keeps SIGPIPE ignored, so
/// a closed output never skips its shutdown cascade.
pub fn prepare(default_sigpipe: bool) {
    let dir = if cfg!(target_os = "linux") {
        "/proc/self/fd"
    } else {
        "/dev/fd"
    };
    // Listed first, changed after: the listing's own descriptor is closed by then.
    let fds: Vec<i32> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|fd| *fd > 2)
                .collect()
        })
        .unwrap_or_default();
    for fd in fds {
        // SAFETY: fcntl on a descriptor number only reads and sets its flags; one
        // that is no longer open fails with EBADF and is skipped.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
    if default_sigpipe {
        // SAFETY: restoring the default disposition of SIGPIPE before any thread runs.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    limit_malloc_arenas();
}

/// glibc gives each thread that allocates an arena of its own, up to 8 per core,
/// and keeps what was freed in it for that thread: the short-lived threads of the
/// blocking pool and of the scans left about 3 MB resident in a running `up` of
/// two services (docs/benchmarks.md, "Memory of the running up"). Two arenas are
/// plenty for a program that allocates little.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    // SAFETY: mallopt only sets an allocator parameter; called before any thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

/// Set by SIGTERM, SIGHUP, SIGINT or SIGQUIT once [`watch_quit`] ran.
static QUIT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_quit(_: libc::c_int) {
    QUIT.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// From now on SIGTERM, SIGHUP (the terminal closed), SIGINT and SIGQUIT (sent
/// with `kill`: in raw mode the keys do not send them) only set a flag that
/// [`quit_asked`] reads: a full-screen view (`top`) then ends its loop and puts
/// the terminal back, instead of dying in raw mode.
pub fn watch_quit() {
    for sig in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT, libc::SIGQUIT] {
        // SAFETY: the handler only stores into an atomic, which is
        // async-signal-safe.
        unsafe {
            libc::signal(sig, on_quit as *const () as libc::sighandler_t);
        }
    }
}

/// A termination signal came since [`watch_quit`].
pub fn quit_asked() -> bool {
    QUIT.load(std::sync::atomic::Ordering::SeqCst)
}
