//! macOS and Windows: the process table through sysinfo. Start times are seconds
//! since the epoch. Process group and session come from `getpgid`/`getsid` on
//! Unix and are absent on Windows; the uid is numeric on Unix only (Windows has
//! SIDs), the user name is looked up on both. What a process costs (CPU time,
//! resident memory, run time) comes from the same refresh when asked for.
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, UpdateKind, Users};

use super::{Detail, ProcessInfo, Usage};
use crate::tag::{Tag, TAG_ENV};
use crate::{Error, Result};

fn refresh_kind(detail: Detail) -> ProcessRefreshKind {
    let kind = ProcessRefreshKind::nothing()
        .without_tasks()
        .with_environ(UpdateKind::Always);
    match detail {
        Detail::Full => kind
            .with_exe(UpdateKind::Always)
            .with_cmd(UpdateKind::Always)
            .with_user(UpdateKind::Always),
        Detail::Brief => kind,
        Detail::Usage => kind.with_cpu().with_memory(),
    }
}

fn system(pids: ProcessesToUpdate<'_>, detail: Detail) -> Result<sysinfo::System> {
    let mut sys = sysinfo::System::new().map_err(|e| {
        Error::io(
            "reading the process table",
            std::io::Error::other(e.to_string()),
        )
    })?;
    sys.refresh_processes_specifics(pids, true, refresh_kind(detail));
    Ok(sys)
}

/// User names by user id (the sysinfo `Uid`, numeric or SID), looked up once.
fn user_name(uid: &sysinfo::Uid) -> Option<String> {
    static NAMES: OnceLock<Mutex<HashMap<sysinfo::Uid, Option<String>>>> = OnceLock::new();
    let names = NAMES.get_or_init(Default::default);
    if let Ok(names) = names.lock() {
        if let Some(name) = names.get(uid) {
            return name.clone();
        }
    }
    let name = Users::new_with_refreshed_list()
        .ok()
        .and_then(|users| users.get_user_by_id(uid).map(|u| u.name().to_string()));
    if let Ok(mut names) = names.lock() {
        names.insert(uid.clone(), name.clone());
    }
    name
}

#[cfg(unix)]
fn group_and_session(pid: u32) -> (Option<u32>, Option<u32>) {
    let pid = pid as libc::pid_t;
    // SAFETY: getpgid/getsid only read the process table; -1 means no answer.
    let (pgid, sid) = unsafe { (libc::getpgid(pid), libc::getsid(pid)) };
    (
        (pgid >= 0).then_some(pgid as u32),
        (sid >= 0).then_some(sid as u32),
    )
}

#[cfg(not(unix))]
fn group_and_session(_pid: u32) -> (Option<u32>, Option<u32>) {
    (None, None)
}

#[cfg(unix)]
fn numeric_uid(uid: &sysinfo::Uid) -> Option<u32> {
    Some(**uid)
}

#[cfg(not(unix))]
fn numeric_uid(_uid: &sysinfo::Uid) -> Option<u32> {
    None
}

fn info(p: &sysinfo::Process, detail: Detail) -> ProcessInfo {
    let pid = p.pid().as_u32();
    let zombie = matches!(p.status(), ProcessStatus::Zombie | ProcessStatus::Dead);
    let prefix = format!("{TAG_ENV}=");
    let tag = p.environ().iter().find_map(|entry| {
        entry
            .to_str()
            .and_then(|e| e.strip_prefix(prefix.as_str()))
            .and_then(Tag::parse)
    });
    let (pgid, sid) = group_and_session(pid);
    let full = detail == Detail::Full;
    let uid = if full { p.user_id() } else { None };
    ProcessInfo {
        pid,
        ppid: p.parent().map(|pp| pp.as_u32()),
        pgid,
        sid,
        start_time: p.start_time(),
        name: p.name().to_string_lossy().into_owned(),
        exe: if full {
            p.exe()
                // Before its image is loaded sysinfo reports an empty path: unknown, not "".
                .filter(|e| !e.as_os_str().is_empty())
                .map(|e| e.to_path_buf())
        } else {
            None
        },
        argv: if full {
            p.cmd()
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        } else {
            Vec::new()
        },
        uid: uid.and_then(numeric_uid),
        user: uid.and_then(user_name),
        tag: if zombie { None } else { tag },
        zombie,
        usage: (detail == Detail::Usage && !zombie).then(|| Usage {
            cpu: std::time::Duration::from_millis(p.accumulated_cpu_time()),
            rss_bytes: p.memory(),
            age: std::time::Duration::from_secs(p.run_time()),
        }),
    }
}

pub(super) fn scan(detail: Detail) -> Result<Vec<ProcessInfo>> {
    let sys = system(ProcessesToUpdate::All, detail)?;
    Ok(sys.processes().values().map(|p| info(p, detail)).collect())
}

pub(super) fn children() -> Result<Vec<u32>> {
    let me = Pid::from_u32(std::process::id());
    let mut sys = sysinfo::System::new().map_err(|e| {
        Error::io(
            "reading the process table",
            std::io::Error::other(e.to_string()),
        )
    })?;
    // Parents only: no environment, exe or command line.
    sys.refresh_processes_specifics(
        ProcessesToUpdate::All,
        true,
        ProcessRefreshKind::nothing().without_tasks(),
    );
    Ok(sys
        .processes()
        .values()
        .filter(|p| p.parent() == Some(me))
        .map(|p| p.pid().as_u32())
        .collect())
}

pub(super) fn process(pid: u32) -> Result<Option<ProcessInfo>> {
    if pid == 0 {
        return Ok(None);
    }
    let sys = system(ProcessesToUpdate::Some(&[Pid::from_u32(pid)]), Detail::Full)?;
    Ok(sys
        .process(Pid::from_u32(pid))
        .map(|p| info(p, Detail::Full)))
}

pub(super) fn liveness(pid: u32) -> Option<(u64, bool)> {
    if pid == 0 {
        return None;
    }
    let mut sys = sysinfo::System::new().ok()?;
    sys.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[Pid::from_u32(pid)]),
        true,
        ProcessRefreshKind::nothing().without_tasks(),
    );
    sys.process(Pid::from_u32(pid)).map(|p| {
        (
            p.start_time(),
            matches!(p.status(), ProcessStatus::Zombie | ProcessStatus::Dead),
        )
    })
}

pub(super) fn parent(pid: u32) -> Option<u32> {
    let mut sys = sysinfo::System::new().ok()?;
    sys.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[Pid::from_u32(pid)]),
        true,
        ProcessRefreshKind::nothing().without_tasks(),
    );
    sys.process(Pid::from_u32(pid))
        .and_then(|p| p.parent())
        .map(|p| p.as_u32())
}

pub(super) fn argv(_pid: u32) -> Option<Vec<String>> {
    None
}

pub(super) fn timer_slack(_pid: u32) -> Option<u64> {
    None
}
