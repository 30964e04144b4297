//! The control socket: how `status`, `down`, `restart`, `reload`, `add`, `remove` and `logs` talk to a running
//! `up`. HTTP/1.1 served by actix-web ([`server`]) and spoken by a minimal blocking
//! client ([`client`]). The transport is platform code in one place: a Unix socket
//! `<state_dir>/control.sock` with mode 0600 (`unix.rs`), or on Windows loopback TCP
//! on an ephemeral port with a random token kept in `<state_dir>/control.token`
//! (`windows.rs`).
//!
//! Endpoints:
//! - `GET /status`: the [`ringmaster::ServiceStatus`] list (the `status --json` form).
//! - `GET /startup`: [`Startup`]: `starting`, `ready` or `failed` with the reason.
//! - `POST /restart/{name}`: stop and start one service.
//! - `POST /reload` (`{"file": path}` or empty): apply a changed file; replies with
//!   the [`ringmaster::change::ApplyReport`] once what it started is ready.
//! - `POST /services` (one service as JSON: `name` and the keys of a
//!   `[services.NAME]` table) and `DELETE /services/{name}`: add or remove one
//!   service; the same report.
//! - `POST /shutdown`: run the cascade; replies with the
//!   [`ringmaster::messages::ShutdownReport`] once it is done.
//! - `GET /logs?service=&n=&follow=`: the last `n` lines of each service's log
//!   file, then (with `follow=true`) new lines as they come; one JSON
//!   [`ringmaster::messages::LogLine`] per line.
use serde::{Deserialize, Serialize};

pub mod client;
pub mod server;

#[cfg_attr(unix, path = "unix.rs")]
#[cfg_attr(windows, path = "windows.rs")]
mod transport;

pub(crate) use transport::attach;
pub use transport::{connect, listen, remove, Listening};

/// Where the instance is in its startup (`GET /startup`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Startup {
    /// `starting`, `ready`, `failed` or `stopping`.
    pub state: String,
    /// Why startup failed.
    pub reason: Option<String>,
    /// The pid of the running `ringmaster up`.
    pub pid: u32,
}
