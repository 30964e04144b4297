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
    /// [`crate::Orchestrator::up_within`]: not every service was ready by the
    /// deadline; the text names each one that was not, with its state and last
    /// probe result.
    #[error("{0}")]
    NotReady(String),
    /// [`crate::Orchestrator::start`] was called outside a running actix System.
    #[error("no actix System runs on this thread: start the orchestrator inside one (`actix::System::new().block_on(...)` or `#[actix_rt::main]`)")]
    NoSystem,
    /// A change to the running stack ([`crate::Orchestrator::apply`],
    /// `add_service`, `remove_service`) that cannot be made: a name taken, an
    /// unknown dependency, a service still needed by another, a shutdown under
    /// way. Nothing was changed.
    #[error("{0}")]
    Rejected(String),
    /// A request that came during the shutdown cascade (or after it): refused.
    #[error("the orchestrator is shutting down")]
    ShuttingDown,
    #[error("the supervisor is gone")]
    SupervisorGone,
    #[error("{0}")]
    Other(String),
}

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
