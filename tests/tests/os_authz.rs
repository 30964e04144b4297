//! Who may be stopped, decided on real processes: PID 1, ourselves and our
//! ancestors never; another user's process never; a process of ours when it
//! carries our tag or matches the allow list by name, renamed name, exe or `argv[0]`.
#![cfg(unix)]

use std::process::{Child, Command};

use ringmaster_os::authz::RefusalReason;
use ringmaster_os::process::process;
use ringmaster_os::{may_stop, Policy, ProcessInfo, Tag, TAG_ENV};
use ringmaster_tests::{fake_service, PidGuard, Svc};

/// Starts fake-service with `args` and waits until it printed `listening`, so
/// that a rename or exec has taken effect.
fn start(cmd: &mut Command, guard: &PidGuard) -> Child {
    let svc = Svc::start(cmd.args(["--listen", "0"]), guard);
    svc.port();
    svc.child
}

fn info(pid: u32) -> ProcessInfo {
    process(pid)
        .expect("reading a process")
        .unwrap_or_else(|| panic!("pid {pid} exists"))
}

fn policy(allow: &[&str]) -> Policy {
    Policy::current(
        Some("rm-00000000000000aa".to_string()),
        allow.iter().map(|s| s.to_string()).collect(),
    )
    .expect("a policy for this process")
    .with_service("api")
    .with_port(8000)
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_current_policy_knows_our_uid_and_ancestors() {
    let p = policy(&[]);
    // SAFETY: geteuid has no preconditions.
    assert_eq!(p.uid, Some(unsafe { libc::geteuid() }));
    assert!(p.protected.contains(&std::process::id()));
    assert!(p.protected.contains(&std::os::unix::process::parent_id()));
}

#[test]
fn pid_1_ourselves_and_our_parent_are_always_refused() {
    // Every name they could match is allowed, and they carry "our" tag: still no.
    let me = info(std::process::id());
    let parent = info(std::os::unix::process::parent_id());
    let init = info(1);
    let names: Vec<String> = [&me, &parent, &init]
        .iter()
        .flat_map(|p| [Some(p.name.clone()), p.exe_name(), p.argv0_basename()])
        .flatten()
        .collect();
    let mut p = policy(&[]);
    p.allow = names;

    let r = may_stop(&init, &p).expect_err("PID 1 is refused");
    assert_eq!(r.reason, RefusalReason::Pid1);
    assert!(r.to_string().contains("held by pid 1 ("), "{r}");
    assert!(r.to_string().ends_with("which is PID 1"), "{r}");

    let r = may_stop(&me, &p).expect_err("we are refused");
    assert_eq!(r.reason, RefusalReason::Ourselves);
    assert!(r.to_string().ends_with("which is ringmaster itself"), "{r}");

    if parent.pid != 1 {
        let r = may_stop(&parent, &p).expect_err("our parent is refused");
        assert_eq!(r.reason, RefusalReason::Ancestor);
        assert!(
            r.to_string()
                .ends_with("which is an ancestor of ringmaster"),
            "{r}"
        );
    }
}

#[test]
fn a_process_outside_the_allow_list_is_refused_by_pid_name_exe_and_user() {
    let guard = PidGuard::new();
    let mut child = start(&mut Command::new(fake_service()), &guard);
    let holder = info(child.id());
    let r = may_stop(&holder, &policy(&["postgres", "fake"])).expect_err("not allowed");
    assert_eq!(r.reason, RefusalReason::NotInAllowList);
    assert_eq!(r.pid, child.id());
    let exe = holder.exe.clone().expect("our child's exe is readable");
    let user = holder.user.clone().expect("our user has a name");
    assert_eq!(
        r.to_string(),
        format!(
            "port 8000 is held by pid {} (fake-service, {}, user {user}), which is not in api's allow list",
            child.id(),
            exe.display()
        )
    );
    stop(&mut child);
}

#[test]
fn allowed_by_name_exe_and_argv0() {
    let guard = PidGuard::new();
    // Started under another argv[0]: name and exe stay fake-service.
    let mut cmd = Command::new(fake_service());
    std::os::unix::process::CommandExt::arg0(&mut cmd, "/opt/venv/bin/uvicorn");
    let mut child = start(&mut cmd, &guard);
    let holder = info(child.id());
    assert_eq!(holder.argv0_basename().as_deref(), Some("uvicorn"));
    assert_eq!(may_stop(&holder, &policy(&["uvicorn"])), Ok(()));
    assert_eq!(may_stop(&holder, &policy(&["fake-service"])), Ok(()));
    assert!(may_stop(&holder, &policy(&["python"])).is_err());
    stop(&mut child);
}

#[cfg(target_os = "linux")]
#[test]
fn allowed_by_renamed_name() {
    let guard = PidGuard::new();
    let mut cmd = Command::new(fake_service());
    cmd.args(["--rename", "next-server (v16.0.1)"]);
    let mut child = start(&mut cmd, &guard);
    let holder = info(child.id());
    assert!(holder.name.starts_with("next-server "), "{}", holder.name);
    assert_eq!(holder.exe_name().as_deref(), Some("fake-service"));
    assert_eq!(may_stop(&holder, &policy(&["node", "next-server"])), Ok(()));
    assert!(may_stop(&holder, &policy(&["node", "next"])).is_err());
    stop(&mut child);
}

#[test]
fn allowed_by_our_tag_only() {
    let guard = PidGuard::new();
    let tag = Tag::new("rm-00000000000000aa", "api");
    let mut cmd = Command::new(fake_service());
    cmd.env(TAG_ENV, tag.env_value());
    let mut child = start(&mut cmd, &guard);
    let holder = info(child.id());
    assert_eq!(holder.tag.as_ref(), Some(&tag));
    assert_eq!(may_stop(&holder, &policy(&[])), Ok(()));

    let mut other_project = policy(&[]);
    other_project.project = Some("rm-00000000000000bb".to_string());
    let r = may_stop(&holder, &other_project).expect_err("another project's tag");
    assert_eq!(r.reason, RefusalReason::NotInAllowList);
    stop(&mut child);
}

#[test]
fn another_users_process_is_refused_even_when_allowed() {
    let guard = PidGuard::new();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut child = None;
    let holder = if root {
        // As root we can start a process as `nobody` ourselves. A system binary,
        // not fake-service: `nobody` may not reach our build folder (under a 0700
        // home, for one). `spawn` returns once the exec succeeded.
        let mut cmd = Command::new("sleep");
        cmd.arg("300");
        std::os::unix::process::CommandExt::uid(&mut cmd, 65534);
        let c = cmd.spawn().expect("sleep starts as nobody");
        guard.add(c.id());
        let i = info(c.id());
        assert_eq!(i.uid, Some(65534), "{i:?}");
        child = Some(c);
        i
    } else {
        // Otherwise: any process of another user (PID 1 aside), never signalled.
        let table = ringmaster_os::process::snapshot().expect("snapshot");
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        match table
            .into_iter()
            .find(|p| p.pid != 1 && !p.zombie && p.uid.is_some_and(|u| u != me))
        {
            Some(p) => p,
            None => {
                eprintln!("skipped: no process of another user is visible");
                return;
            }
        }
    };
    let mut allow: Vec<String> = vec![holder.name.clone()];
    allow.extend(holder.exe_name());
    let mut p = policy(&[]);
    p.allow = allow;
    let r = may_stop(&holder, &p).expect_err("another user");
    assert_eq!(r.reason, RefusalReason::OtherUser);
    assert!(r.to_string().ends_with("which runs as another user"), "{r}");
    if root {
        assert!(r.to_string().contains("user nobody"), "{r}");
    }
    if let Some(mut c) = child {
        stop(&mut c);
    }
}
