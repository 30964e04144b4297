//! ringmaster: actor-based process orchestration for a bot that must also run its
//! dashboard's services.
//!
//! # Usage
//! Inside an actix System (the bot's own, or `#[actix_rt::main]`):
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! let config = ringmaster::Config::load("ringmaster.toml")?;
//! let orch = ringmaster::Orchestrator::start(config, ringmaster::Options::default())?;
//! orch.up_within(None, Duration::from_secs(120)).await?;  // every service ready, in dependency order
//! for s in orch.status().await? {
//!     println!("{s}");                        // api: ready, pid 4121, port 8000, health ok, ...
//! }
//! let report = orch.shutdown(Duration::from_secs(15)).await?;  // the cascade, finished
//! print!("{report}");                         // as `ringmaster up` prints it
//! # Ok(()) }
//! ```
//! docs/embedding.md opens with a complete bot `main` (`examples/embedding.rs`).
//! The last [`Orchestrator`] handle dropped without `shutdown` (an early return, a
//! panic) stops what it started; a bot killed with SIGKILL leaves its services to
//! the next start, which stops them before launching them again.
//! A configuration can also be built in code ([`config::ConfigBuilder`]), services
//! that are actors of your own join with [`Orchestrator::start_with`] and
//! [`plugin::PluginService`], and [`Orchestrator::subscribe`] /
//! [`Orchestrator::subscribe_logs`] deliver every [`messages::ServiceEvent`] and
//! output line. The library installs no signal handler and never prints: a bot
//! decides when to shut down, and output goes to `tracing` and the log files.
//!
//! # Theory of operation
//! Four kinds of actors run on the arbiter that called [`Orchestrator::start`];
//! every blocking OS call (process scans, stops, port clearing, PID files) runs on
//! tokio's blocking pool, never on that arbiter, and reaping adopted orphans (when
//! ringmaster is a subreaper, Linux) runs once a second, and after each exit and
//! stop, on a thread of its own (a one-thread `SyncArbiter`).
//!
//! - [`supervisor::Supervisor`] owns the dependency graph. On [`messages::Up`] it
//!   marks the needed services (the named ones and what they depend on) `waiting`
//!   and *prepares* each at once, in parallel: its actor stops what an earlier run
//!   left behind (the process its PID file names when that is live and ours, and
//!   every process carrying the service's tag) and runs the `install` step, then
//!   the PortJanitor clears its port. A prepared service is launched the moment
//!   each dependency reached its condition (`ready`, `started`, `completed`):
//!   `Watch` to the HealthChecker, then [`messages::Start`]. `Up` answers when all
//!   are ready, or with the first failure, after stopping again what it started.
//!   Restarts (policy, attempts, doubling backoff capped at 30 s, reset after 60 s
//!   ready) and the failure cascade (dependents of a failed service are stopped and
//!   wait again) are the Supervisor's too, so they work the same for plugins.
//! - [`service::ServiceActor`], one per process service: prepare, spawn through
//!   `ringmaster_os::spawn` (own session and process group, tag in the
//!   environment), PID file with identity, stdout/stderr to [`logs`] (a `tracing`
//!   event per line with field `service`, a per-service file rotated by size,
//!   [`messages::LogLine`] to subscribers and log probes), `Exited` once the pipes
//!   are drained, and [`messages::Stop`]: the service's stop command first, when it
//!   has one; then signal every member (descendants, group, tag), wait until all
//!   are gone, kill after the grace.
//! - [`health::HealthChecker`] probes from the moment of launch on a fast schedule
//!   that backs off (10 ms, ×1.5, up to 500 ms) until the first success (`Ready`),
//!   then every `interval`; `failures` failures in a row make a service
//!   `unhealthy`, which restarts it unless its policy is `never`. Failures before
//!   the first success are no verdict, but the status shows the last one
//!   (`failing: ...`) while the service is `starting`. Probes: HTTP GET
//!   (awc, one client per actor), TCP connect, exec (exit 0), log line regex.
//! - [`janitor::PortJanitor`] clears a port before a start and checks it after a
//!   stop. It stops only what carries our tag or matches the service's `allow`
//!   list (and runs as our user, and is not us or an ancestor); anything else is a
//!   refusal naming pid, name, exe and user, which fails the service.
//!
//! [`messages::Shutdown`] stops services in reverse dependency order (a service
//! nothing depends on first; each level in parallel), each within its stop timeout
//! cut to what is left of the one deadline, everything left killed at once past
//! it; then ports are checked, PID files are gone and the instance lock is
//! released. It completes before it answers, so the caller may stop the System
//! right after. It is not atomic: the Supervisor keeps handling messages while the
//! cascade runs ([`messages::GetStatus`] shows the services `stopping`), but it is
//! shutting down — [`messages::Up`] and [`messages::Restart`] are refused, nothing
//! restarts or fails meanwhile, and a second `Shutdown` gets the first one's
//! report. [`Orchestrator::sweep`] is the forced fallback: every configured tag
//! and port, authorized processes only, without going through the Supervisor's
//! mailbox (no message; it works while a shutdown runs or hangs).
//!
//! # Where things live
//! - [`config`]: `ringmaster.toml` (or a [`config::ConfigBuilder`]) becomes a validated
//!   [`Config`]; every error carries `file:line:col`.
//! - [`orchestrator`]: the handle ([`Orchestrator`], [`Options`]).
//! - [`change`]: a stack that changes while it runs ([`Orchestrator::apply`],
//!   [`Orchestrator::add_service`], [`Orchestrator::remove_service`]) and the
//!   report of a change.
//! - [`supervisor`], [`service`], [`health`], [`janitor`]: the actors above;
//!   [`logs`]: service output; [`plugin`]: services that are your own actors.
//! - [`messages`] lists every message with who sends it to whom.
//! - [`status`]: the serializable status of every service.
//! - [`text`]: the human text of reports, events and status (their `Display`),
//!   which the CLI prints too.

pub mod balancer;
pub mod change;
pub mod config;
pub mod error;
pub mod health;
pub mod janitor;
pub mod logs;
pub mod messages;
#[cfg(target_os = "linux")]
pub mod notify;
pub mod orchestrator;
pub mod plugin;
pub mod service;
pub mod status;
pub mod supervisor;
pub mod text;

pub use config::Config;
pub use error::{Error, Result};
pub use orchestrator::{Options, Orchestrator};
/// The stop signal of a service ([`config::StopConfig`],
/// [`config::ServiceConfigBuilder::stop_signal`]), so that builder users need not
/// depend on `ringmaster-os`.
pub use ringmaster_os::Signal;
/// What a [`messages::Stop`] answers (a plugin's `Stop` handler returns one) and
/// what the reports list: re-exported so that a bot or plugin needs no direct
/// dependency on `ringmaster-os`.
pub use ringmaster_os::{ProcessBrief, Refusal, StopReport};
pub use status::{MemberStatus, ServiceState, ServiceStatus, StatusTable};

/// Every code block of docs/embedding.md, compiled (and run where it is not
/// `no_run`) as a doc test, so that the guide cannot drift from the code.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/embedding.md")]
mod embedding_guide {}

/// Every code block of docs/plugins.md, compiled as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/plugins.md")]
mod plugins_guide {}
