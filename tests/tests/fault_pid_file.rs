//! `ringmaster down` with no instance running never stops a process that is not
//! provably ours through a PID file: a live process named by a service's PID file
//! but carrying another project's tag (two projects sharing a `pid_file` path) is
//! left alone with a warning naming its pid and the file, and a stale PID file
//! (the pid now belongs to another process) is removed without signalling it.
//! `up` is as careful: a PID file naming an unrelated live process (its identity
//! matches, but it carries no tag of ours) or a reused pid is never signalled; the
//! service starts, its own record replaces the file, and the stranger outlives
//! `down` too.
#![cfg(unix)]

mod cli_support;

use std::path::PathBuf;
use std::process::Command;

use cli_support::*;
use ringmaster_os::{write_pid_file, PidRecord, Tag, TAG_ENV};
use ringmaster_tests::{fake_service, pid_alive, wait_for, PidGuard, Svc};

/// A project with one service `api` whose PID file is `shared.pid` in the project
/// folder (a path another project could use too).
fn project() -> (Project, PathBuf) {
    let fake = fake_service();
    let p = Project::with_config(&format!(
        r#"[services.api]
command = "{} --print-pids"
pid_file = "shared.pid"
stop = {{ timeout = "5s" }}
"#,
        fake.display()
    ));
    let pid_file = p.path().join("shared.pid");
    (p, pid_file)
}

/// Starts fake-service with `tag` in its environment (when given); returns it once
/// the OS shows it running the fake-service program (with that tag).
fn live_process(guard: &PidGuard, tag: Option<&Tag>) -> (Svc, ringmaster_os::ProcessInfo) {
    let mut cmd = Command::new(fake_service());
    cmd.arg("--print-pids").env_remove(TAG_ENV);
    if let Some(tag) = tag {
        cmd.env(TAG_ENV, tag.env_value());
    }
    let svc = Svc::start(&mut cmd, guard);
    svc.expect("pid root ");
    let pid = svc.pid();
    let mut info = None;
    wait_for(&format!("pid {pid} visible with its tag"), LONG, || {
        info = ringmaster_os::process::process(pid)
            .ok()
            .flatten()
            .filter(|i| i.tag.as_ref() == tag);
        info.is_some()
    });
    (svc, info.expect("set by wait_for"))
}

#[test]
fn down_leaves_a_live_pid_file_process_of_another_project_alone() {
    let (p, pid_file) = project();
    let other = Tag::new("rm-0000000000000000", "api");
    assert_ne!(
        other.project,
        ringmaster_os::project_id(&p.state_dir()),
        "the other project differs from this one"
    );
    let (_svc, info) = live_process(&p.guard, Some(&other));
    let pid = info.pid;
    write_pid_file(&pid_file, &PidRecord::new(&info, "api", &other)).expect("write the PID file");

    let down = p.rm().arg("down").output().expect("down");
    let (out, err) = (text(&down.stdout), text(&down.stderr));
    assert_eq!(down.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("no ringmaster is running"), "{out}");
    assert!(pid_alive(pid), "the other project's pid {pid} was stopped");
    assert!(
        pid_file.exists(),
        "the other project's PID file was removed"
    );
    assert!(
        err.contains(&pid.to_string()) && err.contains(&pid_file.display().to_string()),
        "a warning names the pid and the file: {err}"
    );
    assert!(!out.contains("stopped"), "nothing was stopped: {out}");
    // Still alive after a second down; the guard kills it when the test ends.
    p.rm().arg("down").assert().code(0);
    assert!(pid_alive(pid));
}

#[test]
fn down_removes_a_stale_pid_file_without_signalling_its_pid() {
    let (p, pid_file) = project();
    // A live process that is not the one recorded: the start time differs, as when
    // the pid was reused by another program.
    let (_svc, info) = live_process(&p.guard, None);
    let pid = info.pid;
    let ours = Tag::new(ringmaster_os::project_id(&p.state_dir()), "api");
    let mut record = PidRecord::new(&info, "api", &ours);
    record.start_time = info.start_time.wrapping_add(1);
    write_pid_file(&pid_file, &record).expect("write the PID file");

    let down = p.rm().arg("down").output().expect("down");
    let (out, err) = (text(&down.stdout), text(&down.stderr));
    assert_eq!(down.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("stale PID file"), "{out}");
    assert!(!pid_file.exists(), "the stale PID file was removed");
    assert!(pid_alive(pid), "the stale file's pid {pid} was signalled");
}

#[test]
fn up_and_down_leave_the_unrelated_process_a_pid_file_names_alone() {
    let (p, pid_file) = project();
    // Two strangers: one whose identity the file records exactly (no tag of ours),
    // one whose pid it records with another start time (a reused pid).
    let (_exact, exact) = live_process(&p.guard, None);
    let (_reused, reused) = live_process(&p.guard, None);
    let ours = Tag::new(ringmaster_os::project_id(&p.state_dir()), "api");
    write_pid_file(&pid_file, &PidRecord::new(&exact, "api", &ours)).expect("write the PID file");

    let instance = p.up_detached();
    let status = p.wait_ready(&["api"]);
    // The PID file names the spawned root (`root_pid`; `pid` is the program).
    let api = status[0]["root_pid"].as_u64().expect("api runs") as u32;
    assert_ne!(api, exact.pid);
    assert!(
        pid_alive(exact.pid),
        "the stranger {} was stopped by up",
        exact.pid
    );
    let now = ringmaster_os::read_pid_file(&pid_file).expect("read the PID file");
    match now {
        ringmaster_os::PidFileState::Live(record, _) => assert_eq!(record.pid, api),
        other => panic!("the PID file names the new process: {other:?}"),
    }
    p.rm().arg("down").assert().code(0);
    wait_gone(instance);
    assert!(
        pid_alive(exact.pid),
        "the stranger {} was stopped by down",
        exact.pid
    );
    assert!(!pid_alive(api));

    // The reused pid: the record's start time is not the live process's.
    let mut record = PidRecord::new(&reused, "api", &ours);
    record.start_time = reused.start_time.wrapping_add(1);
    write_pid_file(&pid_file, &record).expect("write the PID file");
    let instance = p.up_detached();
    p.wait_ready(&["api"]);
    assert!(
        pid_alive(reused.pid),
        "the reused pid {} was signalled",
        reused.pid
    );
    p.rm().arg("down").assert().code(0);
    wait_gone(instance);
    assert!(pid_alive(reused.pid) && pid_alive(exact.pid));
    assert!(p.tagged_pids().is_empty());
}
