//! Kill-port: stop the authorized holders' whole process trees, wait until the
//! port is free, and refuse (touching nothing) when any holder is not authorized.
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::authz::Policy;
use crate::process::ProcessBrief;
use crate::stop::{Signal, StopReport};
use crate::Result;

/// What clearing a port did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClearReport {
    pub port: u16,
    /// The holders found (empty when the port was already free).
    pub holders: Vec<ProcessBrief>,
    /// One report per holder tree stopped.
    pub stops: Vec<StopReport>,
}

/// Clears `port`: checks every holder against `policy` first (any refusal →
/// [`crate::Error::Refused`], nothing touched); then stops each holder's process
/// tree (the holder, its descendants, and its process group when the group leader
/// is itself authorized) with `signal` and `grace`, and waits until the port is free
/// ([`crate::Error::PortStillHeld`] otherwise). `dry_run` only checks.
pub fn clear_port(
    port: u16,
    policy: &Policy,
    signal: Signal,
    grace: Duration,
    dry_run: bool,
) -> Result<ClearReport> {
    todo!()
}
