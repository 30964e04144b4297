//! What an earlier run of a service left behind: the process its PID file names
//! (only when that process is alive, is the recorded one, and carries this
//! service's tag — or, with no readable tag, its timer-slack marker) and every
//! process carrying the tag. One routine for the library
//! (before a service starts) and the CLI (`down` without a running instance), so
//! both apply the same rules.
use std::path::Path;
use std::time::Duration;

use crate::pidfile::{read_pid_file, remove_pid_file, PidFileState};
use crate::stop::{stop, Signal, StopReport, StopTarget};
use crate::tag::Tag;
use crate::Result;

/// What the PID file said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PidFileFinding {
    /// No PID file.
    Missing,
    /// A live process of this service: stopped with its tree (and its group, when
    /// it leads one).
    Ours { pid: u32, name: String },
    /// A live process that does not carry this service's tag (another project or
    /// service shares the path, or the file names a process that was never ours):
    /// left alone, and so is the file. `tag` is the tag the process carries, or
    /// `no tag`.
    Foreign { pid: u32, name: String, tag: String },
    /// Stale (dead, or the pid now means another process): the file was removed
    /// and its pid was not signalled.
    Stale(String),
    /// The file could not be read (a symlink, garbage): left alone.
    Unreadable(String),
}

/// The result of [`stop_leftovers`].
#[derive(Clone, Debug)]
pub struct Leftovers {
    pub pid_file: PidFileFinding,
    /// The stop of the PID file's process (when ours) and of every tag carrier.
    pub report: StopReport,
}

/// Stops what an earlier run of the service tagged `tag` left: the PID file's
/// process when it is live and ours, and every process carrying `tag`, with
/// `signal` and `grace` (then kill). The PID file is removed once its process is
/// gone. Blocking.
pub fn stop_leftovers(
    pid_file: &Path,
    tag: &Tag,
    signal: Signal,
    grace: Duration,
) -> Result<Leftovers> {
    let mut target = StopTarget {
        root: None,
        pgid: None,
        tag: Some(tag.clone()),
        also: Vec::new(),
    };
    let finding = match read_pid_file(pid_file) {
        // The live process must carry the tag itself: what the file records is only
        // a claim (a file that names a stranger with our tag must not get it killed).
        //
        // A daemon that wrote its process title over its environment (nginx, redis,
        // postgres) shows no tag; it still carries the service's timer-slack
        // marker, set at spawn and inherited through fork, exec and setsid. With
        // the identity the file records (pid, start time, exe), that is ours.
        Ok(PidFileState::Live(record, info))
            if record.tag == tag.env_value()
                && (info.tag.as_ref() == Some(tag)
                    || (info.tag.is_none()
                        && crate::process::timer_slack(record.pid)
                            == Some(tag.slack_marker()))) =>
        {
            target.root = Some(record.pid);
            target.pgid = info.pgid.filter(|&g| g == record.pid);
            PidFileFinding::Ours {
                pid: record.pid,
                name: info.name,
            }
        }
        Ok(PidFileState::Live(record, info)) => PidFileFinding::Foreign {
            pid: record.pid,
            name: info.name,
            tag: info
                .tag
                .map(|t| t.env_value())
                .unwrap_or_else(|| "no tag".to_string()),
        },
        Ok(PidFileState::Stale(reason)) => PidFileFinding::Stale(reason),
        Ok(PidFileState::Missing) => PidFileFinding::Missing,
        Err(e) => PidFileFinding::Unreadable(e.to_string()),
    };
    let report = stop(&target, signal, grace)?;
    if target.root.is_some() && report.survivors.is_empty() {
        // Best effort: a file that cannot be removed is read as stale next time.
        let _ = remove_pid_file(pid_file);
    }
    Ok(Leftovers {
        pid_file: finding,
        report,
    })
}
