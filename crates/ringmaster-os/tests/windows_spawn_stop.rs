//! Windows: a `cmd /C` chain spawned through [`ringmaster_os::spawn`] runs in a job
//! object with the tag in its environment; the process table shows the tree with
//! the tag; [`ringmaster_os::stop`] and the job (the child wrapper's `start_kill`)
//! each leave no member behind. Run on Linux under Wine with `.ci/wine/test.sh`.
#![cfg(windows)]

use std::time::{Duration, Instant};

use ringmaster_os::authz::RefusalReason;
use ringmaster_os::process::{self, ProcessInfo};
use ringmaster_os::{
    may_stop, spawn, stop, Policy, Signal, SpawnSpec, Spawned, StopTarget, Tag, TAG_ENV,
};
use tokio::io::AsyncReadExt;

/// Generous: Wine starts processes much slower than Windows does.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A tag no other test (or run) shares.
fn unique_tag(service: &str) -> Tag {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Tag::new(
        format!("rm-wine-{}-{n}", std::process::id()),
        service.to_string(),
    )
}

fn spec(command: &str, tag: &Tag) -> SpawnSpec {
    SpawnSpec {
        command: command.to_string(),
        workdir: None,
        env: Vec::new(),
        tag: tag.clone(),
    }
}

/// Polls `cond` every 20 ms; panics naming `what` after [`TIMEOUT`].
fn wait_for<T>(what: &str, mut cond: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = cond() {
            return value;
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "timed out after {TIMEOUT:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Terminates the job of a spawned tree when the test ends, even when it fails:
/// the job holds only processes this test started.
struct JobGuard(Spawned);

impl Drop for JobGuard {
    fn drop(&mut self) {
        let _ = self.0.child.start_kill();
    }
}

/// `pid` and its descendants in a fresh full snapshot.
fn tree(root: u32) -> Vec<ProcessInfo> {
    let table = process::snapshot().expect("the process table can be read");
    let mut out: Vec<ProcessInfo> = table.iter().filter(|p| p.pid == root).cloned().collect();
    out.extend(process::descendants(&table, root).into_iter().cloned());
    out
}

fn names(procs: &[ProcessInfo]) -> String {
    procs
        .iter()
        .map(|p| {
            format!(
                "{} {} (parent {:?}, tag {:?})",
                p.pid, p.name, p.ppid, p.tag
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Spawns `cmd /C "ping -n 60 127.0.0.1 > nul"` and waits until the process table
/// shows cmd.exe with a PING.EXE child. Returns the guard and the tree.
fn spawn_ping_chain(tag: &Tag) -> (JobGuard, Vec<ProcessInfo>) {
    let spawned = spawn(&spec("ping -n 60 127.0.0.1 > nul", tag)).expect("cmd /C spawns");
    let root = spawned.pid;
    let guard = JobGuard(spawned);
    let members = wait_for("cmd.exe with a PING.EXE child", || {
        let members = tree(root);
        let has_ping = members
            .iter()
            .any(|p| p.ppid == Some(root) && p.name.eq_ignore_ascii_case("ping.exe"));
        has_ping.then_some(members)
    });
    (guard, members)
}

/// Every process of `before` that is still the same process (pid and start time),
/// and every process still carrying `tag`, in a fresh snapshot.
fn still_there(before: &[ProcessInfo], tag: &Tag) -> Vec<ProcessInfo> {
    let table = process::snapshot().expect("the process table can be read");
    table
        .into_iter()
        .filter(|p| !p.zombie)
        .filter(|p| {
            p.tag.as_ref() == Some(tag)
                || before
                    .iter()
                    .any(|b| b.pid == p.pid && b.start_time == p.start_time)
        })
        .collect()
}

#[tokio::test]
async fn the_chain_is_a_tree_that_carries_the_tag() {
    let tag = unique_tag("chain");
    let (guard, members) = spawn_ping_chain(&tag);
    let root = guard.0.pid;

    let cmd = members
        .iter()
        .find(|p| p.pid == root)
        .expect("the root is in the table");
    assert!(
        cmd.name.eq_ignore_ascii_case("cmd.exe"),
        "root is {}",
        names(&members)
    );
    assert_eq!(cmd.ppid, Some(std::process::id()), "cmd.exe is our child");
    let ping = members
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case("ping.exe"))
        .expect("ping is in the tree");
    assert_eq!(ping.ppid, Some(root));
    assert!(
        ping.exe
            .as_ref()
            .and_then(|e| e.file_name())
            .is_some_and(|n| n.eq_ignore_ascii_case("ping.exe")),
        "ping's exe: {:?}",
        ping.exe
    );
    assert!(
        ping.argv.iter().any(|a| a == "127.0.0.1"),
        "ping's argv: {:?}",
        ping.argv
    );
    // The tag is read from each process's environment block.
    for p in &members {
        assert_eq!(
            p.tag.as_ref(),
            Some(&tag),
            "tag of {} ({}); tree: {}",
            p.pid,
            p.name,
            names(&members)
        );
    }
    // Membership by tag alone (no root) finds the same processes.
    let table = process::snapshot_brief().expect("the process table can be read");
    let by_tag: Vec<u32> = process::members(&table, None, None, Some(&tag))
        .iter()
        .map(|p| p.pid)
        .collect();
    let mut expected: Vec<u32> = members.iter().map(|p| p.pid).collect();
    expected.sort_unstable();
    assert_eq!(by_tag, expected);

    // The tag makes them ours to stop; another project's tag does not, and this
    // process never is.
    let ours = Policy::current(Some(tag.project.clone()), Vec::new()).expect("a policy");
    let theirs =
        Policy::current(Some("rm-someone-else".to_string()), Vec::new()).expect("a policy");
    for p in &members {
        assert_eq!(may_stop(p, &ours), Ok(()), "{} ({})", p.pid, p.name);
        let refusal = may_stop(p, &theirs).expect_err("another project's process");
        assert_eq!(refusal.reason, RefusalReason::NotInAllowList, "{refusal}");
    }
    let by_name = Policy::current(None, vec!["ping".to_string()]).expect("a policy");
    assert_eq!(may_stop(ping, &by_name), Ok(()), "ping.exe matches `ping`");
    let me = process::process(std::process::id())
        .expect("the process table can be read")
        .expect("this process is in the table");
    let refusal = may_stop(&me, &ours).expect_err("never ourselves");
    assert_eq!(refusal.reason, RefusalReason::Ourselves, "{refusal}");
}

#[tokio::test]
async fn stop_by_root_and_tag_leaves_no_member_and_spares_others() {
    let tag = unique_tag("stop");
    let (guard, members) = spawn_ping_chain(&tag);
    let root = guard.0.pid;
    let other_tag = unique_tag("bystander");
    let (_other_guard, bystanders) = spawn_ping_chain(&other_tag);
    let target = StopTarget {
        root: Some(root),
        pgid: None,
        tag: Some(tag.clone()),
        also: Vec::new(),
    };
    let report =
        tokio::task::spawn_blocking(move || stop(&target, Signal::Term, Duration::from_secs(2)))
            .await
            .expect("the stop task runs")
            .expect("stop reads the process table");
    assert!(report.clean(), "survivors: {:?}", report.survivors);
    let mut signalled: Vec<u32> = report.signalled.iter().map(|p| p.pid).collect();
    signalled.sort_unstable();
    let mut expected: Vec<u32> = members.iter().map(|p| p.pid).collect();
    expected.sort_unstable();
    assert_eq!(signalled, expected, "report: {report:?}");
    // Console programs have no window to close, so `taskkill /T` without /F
    // usually leaves them running and the kill after the grace ends them; either
    // way, nobody outside the target is killed.
    assert!(
        report.killed.iter().all(|k| expected.contains(&k.pid)),
        "report: {report:?}"
    );
    let left = still_there(&members, &tag);
    assert!(left.is_empty(), "still running: {}", names(&left));
    // The other tree, with another tag, was not touched.
    let alive = still_there(&bystanders, &other_tag);
    assert_eq!(
        alive.len(),
        bystanders.len(),
        "bystanders before: {}; after: {}",
        names(&bystanders),
        names(&alive)
    );
}

#[tokio::test]
async fn stop_with_kill_by_tag_alone_leaves_no_member() {
    let tag = unique_tag("kill");
    let (guard, members) = spawn_ping_chain(&tag);
    let target = StopTarget {
        root: None,
        pgid: None,
        tag: Some(tag.clone()),
        also: Vec::new(),
    };
    let report =
        tokio::task::spawn_blocking(move || stop(&target, Signal::Kill, Duration::from_secs(2)))
            .await
            .expect("the stop task runs")
            .expect("stop reads the process table");
    assert!(report.clean(), "survivors: {:?}", report.survivors);
    assert_eq!(report.signalled.len(), members.len(), "report: {report:?}");
    let left = still_there(&members, &tag);
    assert!(left.is_empty(), "still running: {}", names(&left));
    drop(guard);
}

#[tokio::test]
async fn killing_the_job_ends_the_whole_tree() {
    let tag = unique_tag("job");
    let (mut guard, members) = spawn_ping_chain(&tag);
    guard
        .0
        .child
        .start_kill()
        .expect("the job can be terminated");
    let status = tokio::time::timeout(TIMEOUT, guard.0.child.wait())
        .await
        .expect("cmd.exe exits once the job is terminated")
        .expect("waiting on cmd.exe works");
    assert!(
        !status.success(),
        "terminated, not a clean exit: {status:?}"
    );
    wait_for("every member of the job to be gone", || {
        still_there(&members, &tag).is_empty().then_some(())
    });
}

#[tokio::test]
async fn dropping_the_child_wrapper_kills_the_job() {
    // The job is created with kill-on-close: what the owner (the service actor, or
    // ringmaster as a whole when it dies) lets go of does not outlive it.
    let tag = unique_tag("drop");
    let spawned = spawn(&spec("ping -n 60 127.0.0.1 > nul", &tag)).expect("cmd /C spawns");
    let root = spawned.pid;
    let members = wait_for("cmd.exe with a PING.EXE child", || {
        let members = tree(root);
        let has_ping = members
            .iter()
            .any(|p| p.ppid == Some(root) && p.name.eq_ignore_ascii_case("ping.exe"));
        has_ping.then_some(members)
    });
    drop(spawned);
    wait_for("every member of the job to be gone", || {
        still_there(&members, &tag).is_empty().then_some(())
    });
}

#[tokio::test]
async fn output_env_and_workdir_reach_the_command() {
    let tag = unique_tag("echo");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut spec = spec(
        &format!("echo tag=%{TAG_ENV}% extra=%RM_EXTRA% & cd & echo oops 1>&2"),
        &tag,
    );
    spec.workdir = Some(dir.path().to_path_buf());
    spec.env = vec![
        ("RM_EXTRA".to_string(), "yes".to_string()),
        (TAG_ENV.to_string(), "overridden/not".to_string()),
    ];
    let mut spawned = spawn(&spec).expect("cmd /C spawns");
    let mut stdout = spawned.stdout.take().expect("stdout is piped");
    let mut stderr = spawned.stderr.take().expect("stderr is piped");
    let mut out = String::new();
    let mut err = String::new();
    tokio::time::timeout(TIMEOUT, async {
        stdout.read_to_string(&mut out).await.expect("read stdout");
        stderr.read_to_string(&mut err).await.expect("read stderr");
    })
    .await
    .expect("the command ends");
    let status = tokio::time::timeout(TIMEOUT, spawned.child.wait())
        .await
        .expect("cmd.exe exits")
        .expect("waiting on cmd.exe works");
    assert!(status.success(), "{status:?}");
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(
        lines.first().copied(),
        Some(format!("tag={} extra=yes", tag.env_value()).as_str()),
        "stdout: {out:?}"
    );
    let cwd = lines.get(1).copied().unwrap_or_default();
    let want = dir
        .path()
        .file_name()
        .expect("a temp dir has a name")
        .to_string_lossy()
        .into_owned();
    assert!(
        cwd.to_ascii_lowercase()
            .ends_with(&want.to_ascii_lowercase()),
        "cd printed {cwd:?}, expected a path ending in {want:?}"
    );
    assert_eq!(err.trim(), "oops", "stderr: {err:?}");
}
