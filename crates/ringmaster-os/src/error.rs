//! The one error type of the OS layer.
use std::path::PathBuf;

use crate::authz::Refusal;

/// Errors of the OS layer. Messages name the pid, file or port concerned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An OS call failed; `what` says which.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Another ringmaster holds the state directory's lock.
    #[error("another ringmaster (pid {pid}) is running with state directory {}", dir.display())]
    AlreadyRunning { pid: u32, dir: PathBuf },
    /// A PID file is a symlink; it is never followed.
    #[error("PID file {} is a symbolic link; refusing to follow it", .0.display())]
    PidFileSymlink(PathBuf),
    /// A PID file exists but does not parse.
    #[error("PID file {} is not a valid ringmaster PID file: {reason}", path.display())]
    PidFileGarbage { path: PathBuf, reason: String },
    /// One or more holders of a port may not be stopped; nothing was touched.
    #[error("{}", refusals.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("; "))]
    Refused { port: u16, refusals: Vec<Refusal> },
    /// The port was still held after its holders were stopped.
    #[error("port {port} is still held after stopping its holders: {}", holders.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", "))]
    PortStillHeld {
        port: u16,
        holders: Vec<crate::process::ProcessBrief>,
    },
    /// The socket table shows a listener on the port, but no process we can see
    /// holds it (another user's, or outside our pid namespace).
    #[error("port {port} is held by a process that cannot be inspected (another user's, or outside this namespace)")]
    PortHeldUnseen { port: u16 },
    /// Something this platform cannot do.
    #[error("not supported on this platform: {0}")]
    Unsupported(&'static str),
}

/// Result with the OS layer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an `io::Error` with a description of what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}
