//! Whether a process may be stopped. Nothing is killed unless it is provably ours:
//! it carries our tag, or it holds a service's port and matches that service's
//! allow list (process name, exe file name or argv[0] basename); and in every case
//! it runs as our user, is not PID 1, not ringmaster itself, not an ancestor.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::process::ProcessInfo;
use crate::Result;

/// Who may be stopped.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Our project id: processes tagged with it are ours.
    pub project: Option<String>,
    /// Names allowed when holding the port (name, exe file name, argv[0] basename).
    /// A name matches when equal, or when the process name starts with it followed
    /// by a space (`next-server (v16.0.1)` matches `next-server`).
    pub allow: Vec<String>,
    /// For messages: the service whose port this is.
    pub service: Option<String>,
    /// For messages: the port.
    pub port: Option<u16>,
    /// Our uid (Unix); a process of another user is never ours.
    pub uid: Option<u32>,
    /// Ourselves and our ancestors: never stopped.
    pub protected: Vec<u32>,
}

impl Policy {
    /// A policy for the current process: fills `uid` and `protected`.
    pub fn current(project: Option<String>, allow: Vec<String>) -> Result<Policy> {
        todo!()
    }
}

/// Why a process was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefusalReason {
    NotInAllowList,
    OtherUser,
    Pid1,
    Ourselves,
    Ancestor,
}

/// A refusal: names the pid, name, exe and user of the process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub pid: u32,
    pub name: String,
    pub exe: Option<PathBuf>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub service: Option<String>,
    pub reason: RefusalReason,
}

impl std::fmt::Display for Refusal {
    /// e.g. "port 8000 is held by pid 4121 (postgres, /usr/lib/postgresql/15/bin/postgres,
    /// user postgres), which is not in api's allow list"
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        todo!()
    }
}

/// `Ok(())` when `process` may be stopped under `policy`.
pub fn may_stop(process: &ProcessInfo, policy: &Policy) -> Result<(), Refusal> {
    todo!()
}
