//! Process identity, spawning and membership with real processes: what `spawn`
//! gives a service (tag, own session and group, env, workdir), zombies, renamed
//! processes, and re-parented grandchildren seen and reaped with the subreaper on.
//!
//! The child subreaper is process-wide: tests here turn it on (this binary only).
//! Tests that make or reap zombies of this process hold `ZOMBIES`, so one test's
//! `reap_adopted` cannot take another's child.
// They read /proc to check what the OS shows, so they run on Linux.
#![cfg(target_os = "linux")]

mod os_support;

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use os_support::{spec, Service};
use ringmaster_os::process::{self, descendants, members};
use ringmaster_os::spawn::{become_subreaper, reap_adopted};
use ringmaster_os::stop::{stop, Signal};
use ringmaster_os::tag::TAG_ENV;
use ringmaster_tests::{fake_service, kill_pid, pid_alive, wait_for, PidGuard};

const LONG: Duration = Duration::from_secs(20);

static ZOMBIES: Mutex<()> = Mutex::new(());

fn environ(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .collect()
}

#[test]
fn spawn_sets_the_tag_env_and_workdir_in_an_own_session_and_group() {
    let guard = PidGuard::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut s = spec(
        format!("exec {} --print-pids", fake_service().display()),
        "tagged",
    );
    s.workdir = Some(dir.path().to_path_buf());
    s.env = vec![("FAKE_SETTING".into(), "on".into())];
    let mut svc = Service::start(s, &guard);
    let root = svc.value_of("pid root");
    assert_eq!(root, svc.spawned.pid, "`exec` makes the service the root");

    let env = environ(root);
    let expected = format!("{TAG_ENV}={}", svc.tag.env_value());
    assert!(env.contains(&expected), "{expected} in {env:?}");
    assert!(env.contains(&"FAKE_SETTING=on".to_string()));
    let cwd = std::fs::read_link(format!("/proc/{root}/cwd")).expect("cwd link");
    assert_eq!(
        cwd,
        dir.path().canonicalize().expect("canonical temp dir"),
        "workdir"
    );

    let info = process::process(root).expect("scan").expect("root exists");
    assert_eq!(info.tag.as_ref(), Some(&svc.tag));
    assert_eq!(info.pgid, Some(root), "leads its own process group");
    assert_eq!(info.sid, Some(root), "leads its own session");
    assert_eq!(svc.spawned.pgid, Some(root));
    let me = process::process(std::process::id())
        .expect("scan")
        .expect("we exist");
    assert_ne!(info.pgid, me.pgid, "not in our group");
    assert_ne!(info.sid, me.sid, "not in our session");

    let report = stop(&svc.target(), Signal::Term, Duration::from_secs(10)).expect("stop");
    assert!(report.clean() && !pid_alive(root), "{report:?}");
}

#[test]
fn a_zombie_is_not_reported_as_alive() {
    let _zombies = ZOMBIES.lock().unwrap_or_else(|e| e.into_inner());
    let guard = PidGuard::new();
    let mut child = Command::new(fake_service())
        .args(["--exit-after", "300", "--exit-code", "4"])
        .stdout(Stdio::null())
        .spawn()
        .expect("starts");
    let pid = child.id();
    guard.add(pid);
    let info = process::process(pid).expect("scan").expect("running");
    assert!(!info.zombie);
    assert!(process::is_same_alive(pid, info.start_time));
    assert!(
        !process::is_same_alive(pid, info.start_time + 1),
        "another start time is another process"
    );

    // We do not wait for it: once it exits it is a zombie until we do.
    wait_for("the child to become a zombie", LONG, || {
        process::liveness(pid).is_some_and(|(_, zombie)| zombie)
    });
    assert!(!process::is_same_alive(pid, info.start_time));
    assert!(!pid_alive(pid), "the test helper agrees");
    let table = process::snapshot().expect("snapshot");
    let row = table
        .iter()
        .find(|p| p.pid == pid)
        .expect("zombies are listed");
    assert!(row.zombie, "flagged as zombie");
    assert!(
        members(&table, Some(pid), None, None).is_empty(),
        "a zombie is never a member"
    );
    let status = child.wait().expect("reaped by its owner");
    assert_eq!(status.code(), Some(4));
}

#[test]
fn a_renamed_process_keeps_its_exe_and_argv() {
    let guard = PidGuard::new();
    let mut child = Command::new(fake_service())
        .args(["--rename", "next-server"])
        .stdout(Stdio::null())
        .spawn()
        .expect("starts");
    guard.add(child.id());
    let pid = child.id();
    wait_for("the rename", LONG, || {
        process::process(pid)
            .ok()
            .flatten()
            .is_some_and(|p| p.name == "next-server")
    });
    let info = process::process(pid).expect("scan").expect("alive");
    assert_eq!(info.exe_name().as_deref(), Some("fake-service"));
    assert_eq!(info.argv0_basename().as_deref(), Some("fake-service"));
    assert_eq!(info.argv.get(1).map(String::as_str), Some("--rename"));
    assert_eq!(info.uid, Some(own_uid()));
    assert!(info.user.is_some(), "the user name is known");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn self_and_ancestors_walks_up_to_pid_1() {
    let chain = process::self_and_ancestors();
    assert_eq!(chain.first(), Some(&std::process::id()));
    let me = process::process(std::process::id())
        .expect("scan")
        .expect("we exist");
    if let Some(parent) = me.ppid {
        assert_eq!(chain.get(1), Some(&parent));
    }
    assert_eq!(chain.last(), Some(&1), "{chain:?}");
}

#[test]
fn with_the_subreaper_on_reparented_grandchildren_are_members_and_get_reaped() {
    assert!(
        become_subreaper().expect("prctl works"),
        "Linux has a subreaper"
    );
    let guard = PidGuard::new();
    let mut svc = Service::start(
        spec(
            format!(
                "exec {} --children 1 --depth 1 --print-pids",
                fake_service().display()
            ),
            "orphans",
        ),
        &guard,
    );
    let root = svc.value_of("pid root");
    let a = svc.value_of("pid child");
    let b = svc.value_of("pid child");
    guard.add(a);
    guard.add(b);
    let pa = process::process(a).expect("scan").expect("alive");
    let (child, grandchild) = if pa.ppid == Some(root) {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(
        process::process(grandchild)
            .expect("scan")
            .expect("alive")
            .ppid,
        Some(child)
    );

    // The middle process dies: its child is re-parented to us, the subreaper.
    kill_pid(child);
    let me = std::process::id();
    wait_for("the grandchild to be re-parented to us", LONG, || {
        process::process(grandchild)
            .ok()
            .flatten()
            .is_some_and(|p| p.ppid == Some(me))
    });
    let table = process::snapshot().expect("snapshot");
    assert!(
        !descendants(&table, root)
            .iter()
            .any(|p| p.pid == grandchild),
        "no longer under the root"
    );
    let t = svc.target();
    let found: Vec<u32> = members(&table, t.root, t.pgid, t.tag.as_ref())
        .iter()
        .map(|p| p.pid)
        .collect();
    assert!(found.contains(&grandchild), "still a member: {found:?}");

    let report = stop(&t, Signal::Term, Duration::from_secs(10)).expect("stop");
    assert!(report.clean(), "{report:?}");
    assert!(report.signalled.iter().any(|p| p.pid == grandchild));
    // Reaped by pid during the stop: not even a zombie is left.
    wait_for("the grandchild to be reaped", LONG, || {
        process::liveness(grandchild).is_none()
    });
}

#[test]
fn reap_adopted_reaps_orphans_but_never_an_excluded_child() {
    let _zombies = ZOMBIES.lock().unwrap_or_else(|e| e.into_inner());
    assert!(
        become_subreaper().expect("prctl works"),
        "Linux has a subreaper"
    );
    let guard = PidGuard::new();
    let me = std::process::id();

    // Our own child, which someone else (here: this test) waits on.
    let mut own = Command::new(fake_service())
        .args(["--exit-after", "0", "--exit-code", "3"])
        .stdout(Stdio::null())
        .spawn()
        .expect("starts");
    guard.add(own.id());
    wait_for("our child to exit", LONG, || {
        process::liveness(own.id()).is_some_and(|(_, z)| z)
    });

    // An orphan: a child of a process that is killed, re-parented to us.
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let mut parent = Command::new(fake_service())
        .args(["--children", "1"])
        .stdout(out.reopen().expect("reopen"))
        .spawn()
        .expect("starts");
    guard.add(parent.id());
    let mut orphan = 0;
    wait_for("the child's pid", LONG, || {
        let text = std::fs::read_to_string(out.path()).unwrap_or_default();
        orphan = text
            .lines()
            .find_map(|l| l.strip_prefix("pid child "))
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0);
        orphan != 0
    });
    guard.add(orphan);
    let _ = parent.kill();
    let _ = parent.wait();
    wait_for("the orphan to be re-parented to us", LONG, || {
        process::process(orphan)
            .ok()
            .flatten()
            .is_some_and(|p| p.ppid == Some(me))
    });
    kill_pid(orphan);
    wait_for("the orphan to become a zombie", LONG, || {
        process::liveness(orphan).is_some_and(|(_, z)| z)
    });

    let reaped = reap_adopted(&[own.id()]);
    assert!(reaped.contains(&orphan), "{reaped:?}");
    assert!(!reaped.contains(&own.id()), "{reaped:?}");
    assert!(process::liveness(orphan).is_none(), "the orphan is gone");
    let status = own.wait().expect("our child's status was not taken");
    assert_eq!(status.code(), Some(3));
}

fn own_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("own status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .expect("a Uid line")
}
