//! Stopping a service with real processes: a three-deep `sh -c` chain whose leaf
//! renames itself and holds a port, a double-forked setsid daemon found only by
//! its tag, and a leader that exits on TERM while its child ignores TERM. Every
//! check asks the OS (/proc, a TCP connect), not the stop report alone.
//!
//! Through the real binary, one service does all of it at once: its leader exits on
//! TERM while its child ignores TERM, and it double-forks a setsid daemon; `down`
//! stops every one of them and frees the port.
//!
//! This binary does not make itself a child subreaper: orphans go to PID 1 here,
//! which is what a bot that opts out of the subreaper sees.
// They read /proc to check what the OS shows, so they run on Linux.
#![cfg(target_os = "linux")]

mod cli_support;
mod os_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use os_support::{spec, Service};
use ringmaster_os::process::{self, members};
use ringmaster_os::stop::{stop, Signal};
use ringmaster_tests::{comm, fake_service, pid_alive, port_answers, wait_for, PidGuard};

const LONG: Duration = Duration::from_secs(20);

#[test]
fn a_three_deep_shell_chain_with_a_renamed_leaf_is_stopped_and_its_port_freed() {
    let guard = PidGuard::new();
    let fake = fake_service();
    // `; true` keeps each shell from exec'ing its command: root sh -> sh -> leaf.
    let command = format!(
        "sh -c '{} --rename leafsvc --listen 0 --children 1 --print-pids; true'; true",
        fake.display()
    );
    let mut svc = Service::start(spec(&command, "chain"), &guard);
    let leaf = svc.value_of("pid root");
    guard.add(leaf);
    let port = svc.value_of("listening") as u16;
    let child = svc.value_of("pid child");
    guard.add(child);

    // A bystander with no tag, in its own group: it must survive.
    let mut bystander = Command::new(&fake)
        .stdout(Stdio::null())
        .spawn()
        .expect("bystander starts");
    guard.add(bystander.id());

    wait_for("the leaf to rename itself", LONG, || {
        comm(leaf) == "leafsvc"
    });
    assert!(port_answers(port), "the leaf listens on {port}");
    let leaf_info = process::process(leaf).expect("scan").expect("leaf exists");
    let middle = leaf_info.ppid.expect("the leaf has a parent");
    let middle_info = process::process(middle)
        .expect("scan")
        .expect("middle exists");
    assert_ne!(middle, svc.spawned.pid, "the chain is three deep");
    assert_eq!(
        middle_info.ppid,
        Some(svc.spawned.pid),
        "the chain is three deep"
    );
    assert_eq!(leaf_info.name, "leafsvc");
    assert_eq!(leaf_info.exe_name().as_deref(), Some("fake-service"));

    let before: Vec<u32> = svc.members_now().iter().map(|p| p.pid).collect();
    for pid in [svc.spawned.pid, middle, leaf, child] {
        assert!(before.contains(&pid), "{pid} is a member: {before:?}");
    }

    let report = stop(&svc.target(), Signal::Term, Duration::from_secs(10)).expect("stop runs");
    assert!(report.clean(), "survivors: {:?}", report.survivors);
    assert!(
        report.killed.is_empty(),
        "all honour TERM: {:?}",
        report.killed
    );
    for pid in &before {
        assert!(!pid_alive(*pid), "member {pid} is still alive after stop");
        assert!(
            report.signalled.iter().any(|b| b.pid == *pid),
            "member {pid} was signalled"
        );
    }
    assert!(!port_answers(port), "port {port} is free after stop");
    assert!(svc.members_now().is_empty(), "no member left");
    assert!(pid_alive(bystander.id()), "the bystander was not touched");
    let _ = bystander.kill();
    let _ = bystander.wait();
}

#[test]
fn a_double_forked_setsid_daemon_is_found_by_its_tag_and_stopped() {
    let guard = PidGuard::new();
    let command = format!("{} --daemon --print-pids", fake_service().display());
    let mut svc = Service::start(spec(&command, "daemon"), &guard);
    let daemon = svc.value_of("pid daemon");
    guard.add(daemon);
    let root = svc.value_of("pid root");
    guard.add(root);

    let info = process::process(daemon)
        .expect("scan")
        .expect("daemon exists");
    assert_ne!(
        info.sid, svc.spawned.pgid,
        "the daemon left the service's session"
    );
    assert_ne!(info.pgid, svc.spawned.pgid, "the daemon left the group");
    assert_ne!(info.ppid, Some(root), "the daemon is not the root's child");
    assert_eq!(info.tag.as_ref(), Some(&svc.tag), "the daemon kept the tag");

    let table = process::snapshot().expect("snapshot");
    let t = svc.target();
    let untagged: Vec<u32> = members(&table, t.root, t.pgid, None)
        .iter()
        .map(|p| p.pid)
        .collect();
    assert!(
        !untagged.contains(&daemon),
        "tree and group alone miss the daemon"
    );
    let tagged: Vec<u32> = members(&table, t.root, t.pgid, t.tag.as_ref())
        .iter()
        .map(|p| p.pid)
        .collect();
    assert!(tagged.contains(&daemon), "the tag finds the daemon");

    let report = stop(&t, Signal::Term, Duration::from_secs(10)).expect("stop runs");
    assert!(report.clean(), "survivors: {:?}", report.survivors);
    assert!(report.signalled.iter().any(|b| b.pid == daemon));
    assert!(!pid_alive(daemon), "the daemon is gone");
    assert!(!pid_alive(root), "the root is gone");
}

#[test]
fn a_child_that_ignores_term_is_killed_after_the_grace_when_its_leader_exits() {
    let guard = PidGuard::new();
    let command = format!(
        "{} --children 1 --children-ignore-term --print-pids",
        fake_service().display()
    );
    let mut svc = Service::start(spec(&command, "stubborn"), &guard);
    let root = svc.value_of("pid root");
    guard.add(root);
    let child = svc.value_of("pid child");
    guard.add(child);
    wait_for("the child to ignore TERM", LONG, || {
        std::fs::read_to_string(format!("/proc/{child}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("SigIgn:"))
                    .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            })
            .is_some_and(|mask| mask & (1 << (libc_sigterm() - 1)) != 0)
    });

    let grace = Duration::from_millis(500);
    let report = stop(&svc.target(), Signal::Term, grace).expect("stop runs");
    assert!(!pid_alive(root), "the leader exited on TERM");
    assert!(!pid_alive(child), "the child was not left behind");
    assert!(report.clean(), "survivors: {:?}", report.survivors);
    assert!(
        report.killed.iter().any(|b| b.pid == child),
        "the child needed the kill: {report:?}"
    );
    assert!(
        !report.killed.iter().any(|b| b.pid == root),
        "the leader did not need the kill: {report:?}"
    );
    assert!(
        report.elapsed >= grace,
        "the kill came after the grace: {report:?}"
    );
}

/// SIGTERM's number (15 on every Unix this runs on).
fn libc_sigterm() -> u32 {
    15
}

/// The pid a service printed as `pid <role> <pid>` in its log file.
fn logged_pid(p: &cli_support::Project, service: &str, role: &str) -> Option<u32> {
    let log =
        std::fs::read_to_string(p.state_dir().join("logs").join(format!("{service}.log"))).ok()?;
    let prefix = format!("pid {role} ");
    log.lines()
        .find_map(|l| l.split_once(&prefix).map(|(_, p)| p.trim().to_string()))
        .and_then(|p| p.parse().ok())
}

#[test]
fn down_stops_a_leader_that_exits_on_term_its_stubborn_child_and_its_setsid_daemon() {
    use cli_support::{holders, Project};
    let port = ringmaster_tests::free_port();
    let p = Project::with_config(&format!(
        r#"[services.tree]
command = "{} --listen {port} --children 1 --children-ignore-term --daemon --print-pids"
port = {port}
allow = ["fake-service"]
health = {{ tcp = {port} }}
stop = {{ timeout = "1s" }}
"#,
        fake_service().display()
    ));
    let instance = p.up_detached();
    p.wait_ready(&["tree"]);
    let mut pids = (None, None, None);
    wait_for("the root, child and daemon pids in the log", LONG, || {
        pids = (
            logged_pid(&p, "tree", "root"),
            logged_pid(&p, "tree", "child"),
            logged_pid(&p, "tree", "daemon"),
        );
        pids.0.is_some() && pids.1.is_some() && pids.2.is_some()
    });
    let (root, child, daemon) = (pids.0.unwrap(), pids.1.unwrap(), pids.2.unwrap());
    let tagged = p.guard_tagged();
    for pid in [root, child, daemon] {
        assert!(tagged.contains(&pid), "{pid} carries the tag: {tagged:?}");
    }
    let d = process::process(daemon)
        .expect("scan")
        .expect("daemon runs");
    let r = process::process(root).expect("scan").expect("root runs");
    assert_ne!(d.sid, r.sid, "the daemon left the service's session");

    let started = std::time::Instant::now();
    let down = p.rm().arg("down").output().expect("down");
    let took = started.elapsed();
    let out = cli_support::text(&down.stdout);
    assert_eq!(
        down.status.code(),
        Some(0),
        "{out}{}",
        cli_support::text(&down.stderr)
    );
    for pid in [root, child, daemon] {
        assert!(!pid_alive(pid), "pid {pid} survived down: {out}");
    }
    assert!(
        took >= Duration::from_secs(1),
        "the stubborn child needed the kill after the 1 s stop timeout: {took:?}"
    );
    assert!(holders(port).is_empty() && !port_answers(port));
    cli_support::wait_gone(instance);
    assert!(p.tagged_pids().is_empty());
}
