//! Unix transport of the control socket: `<state_dir>/control.sock`, mode 0600. A
//! socket file nobody answers on (left by a crashed run) is removed and replaced.
use std::io;
use std::os::unix::fs::PermissionsExt;
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
    let path = state_dir.join(SOCKET_FILE);
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
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
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
    let path = state_dir.join(SOCKET_FILE);
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
    let stream = UnixStream::connect(state_dir.join(SOCKET_FILE))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok((Box::new(stream), None))
}

impl super::client::Stream for UnixStream {
    fn set_read_timeout_dyn(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(timeout)
    }
}
