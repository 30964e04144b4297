//! Windows: what the process table (sysinfo) shows about this process and a child:
//! name, exe, argv, parent, start time, user, no process group; one-pid lookups
//! agree with the full scan, and a gone pid reads as gone. Run on Linux under
//! Wine with `.ci/wine/test.sh`.
#![cfg(windows)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ringmaster_os::process;

/// Generous: Wine starts processes much slower than Windows does.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Kills (by its handle) a process this test started, when the test ends.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn this_process_is_in_the_table_with_its_identity() {
    let me = std::process::id();
    let table = process::snapshot().expect("the process table can be read");
    let info = table
        .iter()
        .find(|p| p.pid == me)
        .expect("this process is in the snapshot");
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let exe_name = exe
        .file_name()
        .expect("an exe has a file name")
        .to_string_lossy()
        .into_owned();
    assert!(
        info.name.eq_ignore_ascii_case(&exe_name),
        "name {:?}",
        info.name
    );
    assert!(
        info.exe_name()
            .is_some_and(|n| n.eq_ignore_ascii_case(&exe_name)),
        "exe {:?}",
        info.exe
    );
    assert!(
        info.argv0_basename()
            .is_some_and(|n| n.eq_ignore_ascii_case(&exe_name)),
        "argv {:?}",
        info.argv
    );
    assert_eq!(info.pgid, None, "no process groups on Windows");
    assert_eq!(info.sid, None, "no sessions on Windows");
    assert_eq!(info.uid, None, "Windows has SIDs, not numeric uids");
    assert!(!info.zombie);
    assert!(info.start_time > 0);

    // One-pid lookups agree with the scan.
    let single = process::process(me)
        .expect("the process table can be read")
        .expect("this process is found by pid");
    assert_eq!(single.pid, me);
    assert_eq!(single.start_time, info.start_time);
    assert_eq!(single.exe, info.exe);
    assert_eq!(single.ppid, info.ppid);
    assert_eq!(process::liveness(me), Some((info.start_time, false)));
    assert!(process::is_same_alive(me, info.start_time));
    assert!(!process::is_same_alive(me, info.start_time + 1));

    // Our ancestors: ourselves first, then our parent.
    let chain = process::self_and_ancestors();
    assert_eq!(chain.first(), Some(&me));
    if let Some(parent) = info.ppid {
        assert_eq!(chain.get(1), Some(&parent), "{chain:?}");
    }
}

#[test]
fn a_child_is_ours_and_reads_as_gone_once_it_exits() {
    let mut child = ChildGuard(
        Command::new("ping")
            .args(["-n", "60", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ping starts"),
    );
    let pid = child.0.id();
    let info = process::process(pid)
        .expect("the process table can be read")
        .expect("the child is found by pid");
    assert_eq!(info.ppid, Some(std::process::id()));
    assert!(info.name.eq_ignore_ascii_case("ping.exe"), "{}", info.name);
    assert_eq!(
        info.argv
            .iter()
            .skip(1)
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["-n", "60", "127.0.0.1"]
    );
    assert!(info.tag.is_none(), "no tag without ringmaster_os::spawn");
    let table = process::snapshot_brief().expect("the process table can be read");
    let mine: Vec<u32> = process::descendants(&table, std::process::id())
        .iter()
        .map(|p| p.pid)
        .collect();
    assert!(mine.contains(&pid), "descendants: {mine:?}");

    child.0.kill().expect("the child can be killed");
    child.0.wait().expect("the child is waited on");
    let start = Instant::now();
    while process::liveness(pid).is_some_and(|(start_time, _)| start_time == info.start_time) {
        assert!(start.elapsed() < TIMEOUT, "pid {pid} still reads as alive");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!process::is_same_alive(pid, info.start_time));
    assert_eq!(process::process(0).expect("pid 0 reads"), None);
}

/// A process whose loader has not run yet (here: created suspended; likewise any
/// process looked at right after it was created) has no readable exe: sysinfo turns
/// the failed `GetModuleFileNameExW` into an empty path, which `process/other.rs`
/// reports as `None`, so a PID file written then does not later read as stale.
#[test]
fn a_process_whose_image_is_not_loaded_yet_has_no_empty_exe() {
    use std::os::windows::process::CommandExt;
    /// CREATE_SUSPENDED: the main thread, and with it the loader, does not run.
    const CREATE_SUSPENDED: u32 = 0x0000_0004;
    let child = ChildGuard(
        Command::new("ping")
            .args(["-n", "60", "127.0.0.1"])
            .creation_flags(CREATE_SUSPENDED)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ping starts suspended"),
    );
    let info = process::process(child.0.id())
        .expect("the process table can be read")
        .expect("the suspended child is in the table");
    assert!(
        info.exe.as_ref().is_none_or(|e| !e.as_os_str().is_empty()),
        "exe of a process that is not running yet: {:?}",
        info.exe
    );
}
