//! Unix transport of the control socket: `<state_dir>/control.sock`, mode 0600. A
//! socket file nobody answers on (left by a crashed run) is removed and replaced.
//!
//! A socket's path must fit in `sockaddr_un` (108 bytes on Linux, 104 on macOS).
//! When `<state_dir>/control.sock` does not, the socket goes to a short folder of
//! this user's instead: `/tmp/ringmaster-UID/`, mode 0700, as `<project id>.sock`;
//! the project id is derived from the state directory, so every ringmaster finds
//! the same path.
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The socket's file name inside the state directory.
pub const SOCKET_FILE: &str = "control.sock";

/// A bound control endpoint, ready to be attached to an `HttpServer`.
#[derive(Debug)]
pub struct Listening {
    listener: UnixListener,
    path: PathBuf,
    /// The token clients must send; none on Unix (the file mode guards the socket).
    pub token: Option<String>,
}

impl Listening {
    /// The bound listener.
    pub fn into_std(self) -> UnixListener {
        self.listener
    }

    /// Where it listens, for messages.
    pub fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// Binds the control socket in `state_dir` (which must exist). A live socket
/// (someone answers) is an error; a stale one is removed first.
pub fn listen(state_dir: &Path) -> io::Result<Listening> {
    let path = socket_path(state_dir, true)?;
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        if UnixStream::connect(&path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is in use by another process", path.display()),
            ));
        }
        tracing::info!(path = %path.display(), "removing a stale control socket");
        std::fs::remove_file(&path)?;
    }
    // Bound under a temporary name and renamed once it is 0600: no client can reach
    // it while it still has the umask's mode (the state directory may be an existing
    // folder that others can enter).
    let mut temp_name = path.clone().into_os_string();
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = PathBuf::from(temp_name);
    let _ = std::fs::remove_file(&temp);
    let listener = UnixListener::bind(&temp)?;
    let placed = std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&temp, &path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    Ok(Listening {
        listener,
        path,
        token: None,
    })
}

/// Attaches a [`Listening`] to an `HttpServer` (a macro, so that the server's
/// generic parameters need not be named): `attach!(server, listening)`.
macro_rules! attach {
    ($server:expr, $listening:expr) => {
        $server.listen_uds($listening.into_std())
    };
}
pub(crate) use attach;

/// Removes the socket file (on exit).
pub fn remove(state_dir: &Path) {
    let Ok(path) = socket_path(state_dir, false) else {
        return;
    };
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        use std::os::unix::fs::FileTypeExt;
        if meta.file_type().is_socket() {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// A connected stream and the token to send (none on Unix).
pub type Connection = (Box<dyn super::client::Stream>, Option<String>);

/// Connects to the control socket of `state_dir`. `NotFound` / `ConnectionRefused`
/// mean no instance answers there.
pub fn connect(state_dir: &Path, timeout: Duration) -> io::Result<Connection> {
    let stream = UnixStream::connect(socket_path(state_dir, false)?)?;
    stream.set_write_timeout(Some(timeout))?;
    Ok((Box::new(stream), None))
}

/// The longest socket path used as is: `sockaddr_un` holds 104 bytes (macOS) to
/// 108 (Linux) with the terminating NUL, and the socket is first bound under its
/// name plus `.<pid>.tmp` (up to 15 bytes more).
const MAX_SOCKET_PATH: usize = 88;

/// Where the control socket of `state_dir` lives: `<state_dir>/control.sock` when
/// that path is short enough, else `<project id>.sock` in [`short_dir`] (created
/// when `create`; a missing one then means no instance, `NotFound`).
fn socket_path(state_dir: &Path, create: bool) -> io::Result<PathBuf> {
    let path = state_dir.join(SOCKET_FILE);
    if path.as_os_str().len() <= MAX_SOCKET_PATH {
        return Ok(path);
    }
    let id = ringmaster_os::project_id(state_dir);
    let dir = short_dir(create)?;
    let short = dir.join(format!("{id}.sock"));
    if short.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "no socket path short enough for {}: {} is too long too",
                state_dir.display(),
                short.display()
            ),
        ));
    }
    Ok(short)
}

/// This user's folder for control sockets whose usual path is too long:
/// `/tmp/ringmaster-UID`. It
/// must be a real folder (not a symlink) of ours with mode 0700; one that is not is
/// refused, so another user cannot plant it in a shared `/tmp`.
fn short_dir(create: bool) -> io::Result<PathBuf> {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    // Always /tmp, never `$XDG_RUNTIME_DIR`: every ringmaster of this user must find
    // the same path, whatever environment it was started from (a cron job has none).
    let dir = PathBuf::from(format!("/tmp/ringmaster-{uid}"));
    if create {
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    let meta = std::fs::symlink_metadata(&dir)?;
    if !meta.file_type().is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} must be a folder of uid {uid} with mode 0700 (not a symlink); \
                 it holds control sockets whose path in the state directory is too long",
                dir.display()
            ),
        ));
    }
    Ok(dir)
}

impl super::client::Stream for UnixStream {
    fn set_read_timeout_dyn(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(timeout)
    }
}
