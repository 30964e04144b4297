//! The OS layer of ringmaster: spawn a service's command in its own process group
//! (a job object on Windows), find every process that belongs to a service, stop
//! them all, find who holds a port, decide who may be stopped, and keep PID files
//! and the instance lock honest. Plain functions and types; no actors.
//!
//! # Where things live
//! - [`tag`]: the environment tag every spawned process inherits.
//! - [`process`]: process identity, one-scan snapshots, service membership
//!   (platform code in `process/linux.rs`, reading /proc, and
//!   `process/other.rs`, sysinfo for macOS and Windows).
//! - [`mod@spawn`]: spawning through the platform shell; the Linux child subreaper.
//! - [`mod@stop`]: signal a service's members, wait for all of them, escalate to kill;
//!   wait for them to go without a signal (after a stop command).
//! - [`ports`]: every process holding a LISTEN socket on a port
//!   (platform code in `ports/{linux,other}.rs`).
//! - [`mod@census`]: a service's live members, their ports, its main process and
//!   what it costs (CPU time, resident memory), for every service in one scan.
//! - [`authz`]: whether a process may be stopped, and the refusal when not.
//! - [`pidfile`]: PID files that record identity; stale files are never signalled.
//! - [`lock`]: one ringmaster per state directory.
//! - [`killport`]: stop the authorized holders of a port, refuse the rest.
//! - [`leftovers`]: what an earlier run of a service left (PID file and tag).

pub mod authz;
#[cfg(target_os = "linux")]
mod batches;
pub mod census;
pub mod error;
pub mod killport;
pub mod leftovers;
pub mod lock;
pub mod pidfile;
pub mod ports;
pub mod process;
pub mod spawn;
pub mod stop;
pub mod tag;

pub use authz::{may_stop, Policy, Refusal};
pub use census::{census, census_brief, CensusTarget, Member, ServiceCensus};
pub use error::{Error, Result};
pub use killport::{clear_port, ClearReport};
pub use leftovers::{stop_leftovers, Leftovers, PidFileFinding};
pub use lock::InstanceLock;
pub use pidfile::{
    read_pid_file, read_plain_pid, remove_pid_file, write_pid_file, PidFileState, PidRecord,
};
pub use ports::{all_listeners, listeners, Listener};
pub use process::{ProcessBrief, ProcessInfo, Usage};
pub use spawn::{
    become_subreaper, reap_adopted, spawn, wait_root, ChildWrapper, SpawnSpec, Spawned,
};
pub use stop::{alive_members, stop, stop_async, wait_gone, Signal, StopReport, StopTarget};
pub use tag::{project_id, Tag, TAG_ENV};
