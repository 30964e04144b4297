//! ringmaster examples: the shared parts of the demo services (the API's stats
//! type, a tiny blocking HTTP client, platform helpers).
//!
//! The binaries and examples in this crate:
//! - `demo-api` (`demo_api.rs`): an actix-web API shaped like `uvicorn --reload`: a
//!   reloader process binds the port and runs a worker child that shares the socket.
//! - `demo-frontend` (`demo_frontend.rs`): shaped like `next dev`: a launcher that
//!   refuses to start without the API, and runs its server through `sh -c`; the
//!   server renames itself `demo-frontend-server` and renders the API's data.
//! - `examples/bot.rs`: an actix bot that embeds the orchestrator and answers chat
//!   commands read from stdin.
//! - `examples/custom_service.rs`: a new kind of service written as a plugin actor.
//! - `dashboard/ringmaster.toml` runs the demo stack; `fastapi-nextjs/` is the real
//!   stack ringmaster is built for.

pub mod http;
pub mod os;

use serde::{Deserialize, Serialize};

/// What `demo-api` answers on `GET /api/stats`: live data that changes with every
/// request, and the pids of the processes that answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiStats {
    /// Always `"demo-api"`.
    pub service: String,
    /// The worker process that served the request.
    pub worker_pid: u32,
    /// The reloader (the worker's parent), when there is one.
    pub reloader_pid: Option<u32>,
    /// The port the API listens on.
    pub port: u16,
    /// Milliseconds since the worker started.
    pub uptime_ms: u64,
    /// How many times `/api/stats` was answered, this one included.
    pub requests: u64,
    /// Wall-clock time of the answer, Unix milliseconds.
    pub unix_ms: u64,
}

/// Wall-clock time in Unix milliseconds (0 if the clock is before 1970).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
