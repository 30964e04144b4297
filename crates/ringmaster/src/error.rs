//! The one error type of the ringmaster library.
use crate::config::ConfigErrors;

/// Errors of the library. The CLI decides how to print them and which exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    #[error(transparent)]
    Os(#[from] ringmaster_os::Error),
    #[error("unknown service `{0}`")]
    UnknownService(String),
    #[error("service `{service}` failed: {reason}")]
    ServiceFailed { service: String, reason: String },
    #[error("the supervisor is gone")]
    SupervisorGone,
    #[error("{0}")]
    Other(String),
}

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
