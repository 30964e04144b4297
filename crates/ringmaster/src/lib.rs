//! ringmaster: actor-based process orchestration for a bot that must also run its
//! dashboard's services.
//!
//! # Usage
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! let config = ringmaster::Config::load("ringmaster.toml")?;
//! let orch = ringmaster::Orchestrator::start(config, ringmaster::Options::default())?;
//! orch.up(None).await?;                         // every service ready, in order
//! let report = orch.shutdown(Duration::from_secs(15)).await;  // the cascade
//! # Ok(()) }
//! ```
//!
//! # Theory of operation
//! - [`config`]: `ringmaster.toml` (or a [`config::ConfigBuilder`]) becomes a validated
//!   [`Config`]; every error carries `file:line:col`.
//! - [`supervisor::Supervisor`] owns the dependency graph and runs start-up gating
//!   and the shutdown cascade. It talks to one actor per service.
//! - [`service::ServiceActor`] runs one process service: install step, PID file,
//!   spawn, output to log files and `tracing`, exits, restarts with backoff, stop.
//!   A plugin is any actor that handles [`messages::Start`] and [`messages::Stop`]
//!   and reports [`messages::ServiceEvent`]s ([`plugin`]).
//! - [`janitor::PortJanitor`] clears a service's port before start and checks it
//!   after stop; [`health::HealthChecker`] probes readiness and liveness.
//! - [`messages`] lists every message with who sends it to whom.
//! - [`status`]: the serializable status of every service.

pub mod config;
pub mod error;
pub mod health;
pub mod janitor;
pub mod logs;
pub mod messages;
pub mod orchestrator;
pub mod plugin;
pub mod service;
pub mod status;
pub mod supervisor;

pub use config::Config;
pub use error::{Error, Result};
pub use orchestrator::{Options, Orchestrator};
pub use status::{ServiceState, ServiceStatus};
