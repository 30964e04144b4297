//! Whether a process may be stopped. Nothing is killed unless it is provably ours:
//! it carries our tag, or it holds a service's port and matches that service's
//! allow list (process name, exe file name or `argv[0]` basename); and in every case
//! it runs as our user, is not PID 1, not ringmaster itself, not an ancestor, and is
//! a real process: not pid 0 (what a socket table gives when it does not know the
//! owner) and, on Windows, not pid 4 (System).
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::process::ProcessInfo;
use crate::Result;

/// Who may be stopped.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Our project id: processes tagged with it are ours.
    pub project: Option<String>,
    /// Names allowed when holding the port (name, exe file name, `argv[0]` basename).
    /// A name matches when equal, or when the process name starts with it followed
    /// by a space or `(` (`next-server (v16.0.1)` matches `next-server`). An exe
    /// file name also matches without its `.exe` suffix (`node.exe` matches `node`).
    pub allow: Vec<String>,
    /// For messages: the service whose port this is.
    pub service: Option<String>,
    /// For messages: the port.
    pub port: Option<u16>,
    /// Our uid (Unix); a process of another user is never ours.
    pub uid: Option<u32>,
    /// Our user name, where the platform has no numeric uid (Windows): a process
    /// whose user name is known and differs is never ours. Unused when `uid` is set.
    pub user: Option<String>,
    /// Ourselves and our ancestors: never stopped.
    pub protected: Vec<u32>,
}

impl Policy {
    /// A policy for the current process: fills `uid` (the effective uid on Unix)
    /// and `protected` (ourselves and our ancestors). `service` and `port` start
    /// empty: set them (or use [`Policy::with_service`], [`Policy::with_port`]) for
    /// refusals that name them.
    pub fn current(project: Option<String>, allow: Vec<String>) -> Result<Policy> {
        Ok(Policy {
            project,
            allow,
            service: None,
            port: None,
            uid: current_uid(),
            user: current_user_without_uid(),
            protected: crate::process::self_and_ancestors(),
        })
    }

    /// The same policy, naming `service` in refusals.
    pub fn with_service(mut self, service: impl Into<String>) -> Policy {
        self.service = Some(service.into());
        self
    }

    /// The same policy, naming `port` in refusals.
    pub fn with_port(mut self, port: u16) -> Policy {
        self.port = Some(port);
        self
    }
}

#[cfg(unix)]
fn current_uid() -> Option<u32> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    Some(unsafe { libc::geteuid() })
}

#[cfg(not(unix))]
fn current_uid() -> Option<u32> {
    None
}

/// Where there is no uid: our own user name as the process table reports it
/// (empty names, as Wine gives, count as unknown).
fn current_user_without_uid() -> Option<String> {
    if current_uid().is_some() {
        return None;
    }
    crate::process::process(std::process::id())
        .ok()
        .flatten()
        .and_then(|p| p.user)
        .filter(|u| !u.is_empty())
}

/// The user name of `uid`, when the user database knows it.
#[cfg(unix)]
fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

#[cfg(not(unix))]
fn user_name(_uid: u32) -> Option<String> {
    None
}

/// Why a process was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefusalReason {
    /// Neither tagged with our project nor matching the allow list.
    NotInAllowList,
    /// Runs as another user (or its user could not be read).
    OtherUser,
    /// It is PID 1.
    Pid1,
    /// It is the running ringmaster.
    Ourselves,
    /// It is an ancestor of the running ringmaster.
    Ancestor,
    /// Pid 0: no process. A socket table gives it when it does not know who owns
    /// the socket (Windows for connections in TIME_WAIT, Wine for every socket).
    /// On Unix, signalling pid 0 would signal our own process group.
    UnknownOwner,
    /// Pid 4 on Windows: the kernel (`System`), which holds the ports that http.sys
    /// serves (80, 443, 5985) and SMB's (445, 139).
    System,
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
    /// user postgres), which is not in api's allow list"; for pid 0 there is nothing
    /// to name: "port 8000 is held by a process that the socket table does not name
    /// (pid 0), which is never stopped".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.reason == RefusalReason::UnknownOwner {
            return match self.port {
                Some(port) => write!(
                    f,
                    "port {port} is held by a process that the socket table does not name \
                     (pid {}), which is never stopped",
                    self.pid
                ),
                None => write!(
                    f,
                    "refusing to stop pid {}, which names no process (an unknown owner)",
                    self.pid
                ),
            };
        }
        match self.port {
            Some(port) => write!(f, "port {port} is held by pid {}", self.pid)?,
            None => write!(f, "refusing to stop pid {}", self.pid)?,
        }
        let exe = self
            .exe
            .as_ref()
            .map(|e| e.display().to_string())
            .unwrap_or_else(|| "exe unknown".to_string());
        let user = self.user.as_deref().unwrap_or("unknown");
        write!(f, " ({}, {exe}, user {user}), which ", self.name)?;
        match self.reason {
            RefusalReason::NotInAllowList => match &self.service {
                Some(service) => write!(f, "is not in {service}'s allow list"),
                None => write!(f, "is not in the allow list"),
            },
            RefusalReason::OtherUser => write!(f, "runs as another user"),
            RefusalReason::Pid1 => write!(f, "is PID 1"),
            RefusalReason::Ourselves => write!(f, "is ringmaster itself"),
            RefusalReason::Ancestor => write!(f, "is an ancestor of ringmaster"),
            RefusalReason::System => write!(f, "is the Windows kernel (System)"),
            RefusalReason::UnknownOwner => Ok(()),
        }
    }
}

/// `Ok(())` when `process` may be stopped under `policy`.
///
/// Refused, whatever the tag or allow list say: pid 0, PID 1, pid 4 on Windows
/// (System), ourselves, one of our ancestors, a process of another user (or whose
/// user cannot be read while ours is known). Otherwise allowed when it carries the
/// tag of `policy.project`, or its name, exe file name or `argv[0]` basename
/// matches `policy.allow`.
pub fn may_stop(process: &ProcessInfo, policy: &Policy) -> Result<(), Refusal> {
    let refuse = |reason| Err(refusal(process, policy, reason));
    if process.pid == 0 {
        return refuse(RefusalReason::UnknownOwner);
    }
    if process.pid == WINDOWS_SYSTEM_PID && cfg!(windows) {
        return refuse(RefusalReason::System);
    }
    if process.pid == 1 {
        return refuse(RefusalReason::Pid1);
    }
    if process.pid == std::process::id() {
        return refuse(RefusalReason::Ourselves);
    }
    if policy.protected.contains(&process.pid) {
        return refuse(RefusalReason::Ancestor);
    }
    if let Some(ours) = policy.uid {
        if process.uid != Some(ours) {
            return refuse(RefusalReason::OtherUser);
        }
    } else if let Some(ours) = &policy.user {
        // No uids (Windows): compare user names where the process's is known.
        let theirs = process.user.as_deref().filter(|u| !u.is_empty());
        if theirs.is_some_and(|t| !t.eq_ignore_ascii_case(ours)) {
            return refuse(RefusalReason::OtherUser);
        }
    }
    let tagged = match (&process.tag, &policy.project) {
        (Some(tag), Some(project)) => &tag.project == project,
        _ => false,
    };
    if tagged || matches_allow_list(process, &policy.allow) {
        return Ok(());
    }
    refuse(RefusalReason::NotInAllowList)
}

/// The pid of the Windows kernel (`System`); an ordinary pid elsewhere.
const WINDOWS_SYSTEM_PID: u32 = 4;

/// The refusal of a listening socket whose owner the socket table does not name
/// (pid 0): there is no process to read, so only the port and service are known.
pub fn unknown_owner(policy: &Policy) -> Refusal {
    Refusal {
        pid: 0,
        name: String::new(),
        exe: None,
        user: None,
        port: policy.port,
        service: policy.service.clone(),
        reason: RefusalReason::UnknownOwner,
    }
}

/// True when the process name, exe file name or `argv[0]` basename matches an entry.
pub fn matches_allow_list(process: &ProcessInfo, allow: &[String]) -> bool {
    let candidates = [
        Some(process.name.clone()),
        process.exe_name(),
        process.argv0_basename(),
    ];
    allow.iter().filter(|a| !a.is_empty()).any(|entry| {
        candidates
            .iter()
            .flatten()
            .any(|candidate| name_matches(candidate, entry))
    })
}

/// Process and file names are case-insensitive on Windows (`PING.EXE` is `ping`).
const CASE_INSENSITIVE_NAMES: bool = cfg!(windows);

/// `candidate` is `entry`, `entry.exe`, or `entry` followed by a space or `(`
/// (ignoring case where the platform's names ignore it).
fn name_matches(candidate: &str, entry: &str) -> bool {
    if CASE_INSENSITIVE_NAMES {
        return name_matches_exact(&candidate.to_lowercase(), &entry.to_lowercase());
    }
    name_matches_exact(candidate, entry)
}

fn name_matches_exact(candidate: &str, entry: &str) -> bool {
    if candidate == entry {
        return true;
    }
    if let Some(rest) = candidate.strip_prefix(entry) {
        if rest.starts_with(' ') || rest.starts_with('(') || rest.eq_ignore_ascii_case(".exe") {
            return true;
        }
    }
    false
}

/// The refusal of `process` for `reason`, with its user name resolved when the
/// process info does not carry one.
fn refusal(process: &ProcessInfo, policy: &Policy, reason: RefusalReason) -> Refusal {
    Refusal {
        pid: process.pid,
        name: process.name.clone(),
        exe: process.exe.clone(),
        user: process
            .user
            .clone()
            .or_else(|| process.uid.and_then(user_name))
            .or_else(|| process.uid.map(|u| u.to_string())),
        port: policy.port,
        service: policy.service.clone(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tag::Tag;

    fn info(pid: u32, name: &str, exe: Option<&str>, argv0: Option<&str>) -> ProcessInfo {
        ProcessInfo {
            pid,
            ppid: Some(1),
            pgid: Some(pid),
            sid: Some(pid),
            start_time: 12345,
            name: name.to_string(),
            exe: exe.map(PathBuf::from),
            argv: argv0.map(|a| vec![a.to_string()]).unwrap_or_default(),
            uid: Some(1000),
            user: Some("alice".to_string()),
            tag: None,
            zombie: false,
            usage: None,
        }
    }

    fn policy(allow: &[&str]) -> Policy {
        Policy {
            project: Some("rm-0123456789abcdef".to_string()),
            allow: allow.iter().map(|s| s.to_string()).collect(),
            service: Some("api".to_string()),
            port: Some(8000),
            uid: Some(1000),
            user: None,
            protected: vec![std::process::id(), 777],
        }
    }

    #[test]
    fn without_uids_another_user_name_is_refused() {
        let mut pol = policy(&["node"]);
        pol.uid = None;
        pol.user = Some("alice".to_string());
        let mut p = info(4242, "node", Some("/usr/bin/node"), None);
        p.uid = None;
        p.user = Some("bob".to_string());
        assert_eq!(
            may_stop(&p, &pol).map_err(|r| r.reason),
            Err(RefusalReason::OtherUser)
        );
        p.user = Some("ALICE".to_string());
        assert!(may_stop(&p, &pol).is_ok());
    }

    #[test]
    fn name_rules() {
        assert!(name_matches("node", "node"));
        assert!(name_matches("next-server (v16.0.1)", "next-server"));
        assert!(name_matches("next-server(v16)", "next-server"));
        assert!(name_matches("node.exe", "node"));
        assert!(name_matches("NODE.EXE", "NODE"));
        assert!(!name_matches("nodejs", "node"));
        assert!(!name_matches("next-server-x", "next-server"));
        assert!(!name_matches("node", "next-server"));
    }

    #[test]
    fn allowed_by_name_exe_or_argv0() {
        let p = policy(&["uvicorn"]);
        // The allow list matches the exe file name.
        let by_exe = info(4000, "python3", Some("/usr/bin/uvicorn"), None);
        assert_eq!(may_stop(&by_exe, &p), Ok(()));
        // The allow list matches argv[0]'s basename.
        let by_argv0 = info(
            4001,
            "python3",
            Some("/usr/bin/python3.12"),
            Some("/venv/bin/uvicorn"),
        );
        assert_eq!(may_stop(&by_argv0, &p), Ok(()));
        // A renamed process matches its new name.
        let next = info(
            4002,
            "next-server (v16.0.1)",
            Some("/usr/bin/node"),
            Some("next-server (v16.0.1)"),
        );
        assert_eq!(may_stop(&next, &policy(&["next-server"])), Ok(()));
        let next_truncated = info(4003, "next-server (v1", Some("/usr/bin/node"), None);
        assert_eq!(may_stop(&next_truncated, &policy(&["next-server"])), Ok(()));
    }

    #[test]
    fn allowed_by_tag_of_our_project_only() {
        let p = policy(&[]);
        let mut tagged = info(4100, "sleep", Some("/usr/bin/sleep"), None);
        tagged.tag = Some(Tag {
            project: "rm-0123456789abcdef".to_string(),
            service: "api".to_string(),
        });
        assert_eq!(may_stop(&tagged, &p), Ok(()));
        tagged.tag = Some(Tag {
            project: "rm-ffffffffffffffff".to_string(),
            service: "api".to_string(),
        });
        assert_eq!(
            may_stop(&tagged, &p).map_err(|r| r.reason),
            Err(RefusalReason::NotInAllowList)
        );
    }

    #[test]
    fn refusal_names_pid_name_exe_user() {
        let p = policy(&["uvicorn"]);
        let mut pg = info(
            4121,
            "postgres",
            Some("/usr/lib/postgresql/15/bin/postgres"),
            None,
        );
        pg.user = Some("postgres".to_string());
        pg.uid = Some(1000);
        let refusal = may_stop(&pg, &p).expect_err("postgres is not allowed");
        assert_eq!(refusal.reason, RefusalReason::NotInAllowList);
        assert_eq!(
            refusal.to_string(),
            "port 8000 is held by pid 4121 (postgres, /usr/lib/postgresql/15/bin/postgres, \
             user postgres), which is not in api's allow list"
        );
    }

    #[test]
    fn protected_processes_are_refused_even_when_allowed() {
        let p = policy(&["init", "systemd", "me", "parent", "other"]);
        let init = info(1, "systemd", Some("/usr/lib/systemd/systemd"), None);
        let r = may_stop(&init, &p).expect_err("pid 1");
        assert_eq!(r.reason, RefusalReason::Pid1);
        assert!(r.to_string().ends_with("which is PID 1"), "{r}");

        let me = info(std::process::id(), "me", None, None);
        let r = may_stop(&me, &p).expect_err("ourselves");
        assert_eq!(r.reason, RefusalReason::Ourselves);
        assert!(r.to_string().ends_with("which is ringmaster itself"), "{r}");

        let parent = info(777, "parent", None, None);
        let r = may_stop(&parent, &p).expect_err("ancestor");
        assert_eq!(r.reason, RefusalReason::Ancestor);
        assert!(
            r.to_string()
                .ends_with("which is an ancestor of ringmaster"),
            "{r}"
        );

        let mut other = info(4200, "other", Some("/usr/bin/other"), None);
        other.uid = Some(0);
        other.user = Some("root".to_string());
        other.tag = Some(Tag {
            project: "rm-0123456789abcdef".to_string(),
            service: "api".to_string(),
        });
        let r = may_stop(&other, &p).expect_err("other user");
        assert_eq!(r.reason, RefusalReason::OtherUser);
        assert_eq!(
            r.to_string(),
            "port 8000 is held by pid 4200 (other, /usr/bin/other, user root), which runs as another user"
        );

        let mut unknown_uid = info(4201, "other", None, None);
        unknown_uid.uid = None;
        unknown_uid.user = None;
        let r = may_stop(&unknown_uid, &p).expect_err("unknown user");
        assert_eq!(r.reason, RefusalReason::OtherUser);
        assert!(
            r.to_string().contains("(other, exe unknown, user unknown)"),
            "{r}"
        );
    }

    #[test]
    fn pid_0_is_refused_even_when_tagged_and_allowed() {
        let p = policy(&["idle"]);
        let mut zero = info(0, "idle", None, None);
        zero.tag = Some(Tag {
            project: "rm-0123456789abcdef".to_string(),
            service: "api".to_string(),
        });
        let r = may_stop(&zero, &p).expect_err("pid 0");
        assert_eq!(r.reason, RefusalReason::UnknownOwner);
        assert_eq!(
            r.to_string(),
            "port 8000 is held by a process that the socket table does not name (pid 0), \
             which is never stopped"
        );
        assert_eq!(unknown_owner(&p).to_string(), r.to_string());
        let mut without_port = p.clone();
        without_port.port = None;
        assert_eq!(
            unknown_owner(&without_port).to_string(),
            "refusing to stop pid 0, which names no process (an unknown owner)"
        );
    }

    /// Pid 4 is System on Windows only; elsewhere it is judged like any pid.
    #[test]
    fn pid_4_is_refused_on_windows_only() {
        let mut p = policy(&["System"]);
        p.uid = None;
        p.user = Some("alice".to_string());
        let mut system = info(4, "System", None, None);
        system.uid = None;
        system.user = None;
        let verdict = may_stop(&system, &p).map_err(|r| r.reason);
        if cfg!(windows) {
            assert_eq!(verdict, Err(RefusalReason::System));
        } else {
            assert_eq!(verdict, Ok(()));
        }
    }

    #[test]
    fn refusal_without_port_or_service() {
        let mut p = policy(&[]);
        p.port = None;
        p.service = None;
        let x = info(4300, "x", Some("/bin/x"), None);
        assert_eq!(
            may_stop(&x, &p).expect_err("not allowed").to_string(),
            "refusing to stop pid 4300 (x, /bin/x, user alice), which is not in the allow list"
        );
    }
}
