//! Windows: PID files record a live process's identity and are found stale (and
//! removed, nobody signalled) once it is gone or the pid means someone else; the
//! instance lock refuses a second process, names the owner, and does not block
//! once its owner died. The second process is this test binary run again with
//! [`ROLE_ENV`] set; its output goes to a file the test polls (no pipe is read, so
//! nothing can block on one), and every wait on it is bounded by [`TIMEOUT`].
//! Run on Linux under Wine with `.ci/wine/test.sh`.
#![cfg(windows)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ringmaster_os::lock::LOCK_FILE;
use ringmaster_os::process::{self, ProcessInfo};
use ringmaster_os::{
    read_pid_file, remove_pid_file, write_pid_file, Error, InstanceLock, PidFileState, PidRecord,
    Tag,
};

/// Set on the re-run test binary: what the helper process does (`try` or `hold`).
const ROLE_ENV: &str = "RINGMASTER_WINE_LOCK_ROLE";
/// Set on the re-run test binary: the state directory to lock.
const DIR_ENV: &str = "RINGMASTER_WINE_LOCK_DIR";
/// Generous: Wine starts processes much slower than Windows does.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Kills (by its handle) a process this test started, when the test ends.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        // Reaped when it is gone; never waited on without a bound.
        let start = Instant::now();
        while !matches!(self.0.try_wait(), Ok(Some(_)) | Err(_)) && start.elapsed() < TIMEOUT {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Waits (polling, at most [`TIMEOUT`]) until `child` exits; panics naming `what`
/// otherwise (its guard then kills it).
fn wait_exit(child: &mut ChildGuard, what: &str) -> ExitStatus {
    let mut status = None;
    wait_for(what, || {
        status = child.0.try_wait().expect("the child can be polled");
        status.is_some()
    });
    status.expect("wait_for returned, so the child exited")
}

/// Polls `cond` every 20 ms; panics naming `what` after [`TIMEOUT`].
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < TIMEOUT,
            "timed out after {TIMEOUT:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `ping` idles for a minute: a live process that is not this one.
fn spawn_idle() -> ChildGuard {
    let child = Command::new("ping")
        .args(["-n", "60", "127.0.0.1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ping starts");
    ChildGuard(child)
}

/// The info of `pid` once its exe can be read. Until the new process's loader
/// has run, sysinfo reports its exe as an empty path (`Some("")`), and a record
/// taken then would read as stale later (see windows_process.rs,
/// `a_process_whose_image_is_not_loaded_yet_has_no_empty_exe`).
fn exe_known(pid: u32) -> ProcessInfo {
    let mut info = None;
    wait_for("the child's exe to be readable", || {
        info = process::process(pid)
            .expect("the process table can be read")
            .filter(|i| i.exe.as_ref().is_some_and(|e| !e.as_os_str().is_empty()));
        info.is_some()
    });
    info.expect("wait_for returned, so the info is there")
}

fn tag() -> Tag {
    Tag::new("rm-0123456789abcdef", "api")
}

#[test]
fn a_live_process_reads_live_and_is_stale_once_it_is_gone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("api.pid");
    let mut idle = spawn_idle();
    let pid = idle.0.id();
    let info = exe_known(pid);
    assert!(
        info.exe
            .as_ref()
            .and_then(|e| e.file_name())
            .is_some_and(|n| n.eq_ignore_ascii_case("ping.exe")),
        "exe of {pid}: {:?}",
        info.exe
    );
    let record = PidRecord::new(&info, "api", &tag());
    assert_eq!(record.owner_pid, std::process::id());
    write_pid_file(&path, &record).expect("the PID file is written");

    match read_pid_file(&path).expect("the PID file is read") {
        PidFileState::Live(back, live) => {
            assert_eq!(back, record);
            assert_eq!(live.pid, pid);
            assert_eq!(live.start_time, info.start_time);
        }
        other => panic!("expected Live, got {other:?}"),
    }
    assert!(path.exists(), "a live PID file stays");

    idle.0.kill().expect("the child can be killed");
    idle.0.wait().expect("the child is waited on");
    wait_for("the killed child to leave the process table", || {
        process::liveness(pid).is_none()
    });
    match read_pid_file(&path).expect("the PID file is read") {
        PidFileState::Stale(reason) => {
            assert!(reason.contains(&pid.to_string()), "{reason}");
            assert!(reason.contains("no longer running"), "{reason}");
        }
        other => panic!("expected Stale, got {other:?}"),
    }
    assert!(!path.exists(), "a stale PID file is removed");
    assert_eq!(
        read_pid_file(&path).expect("a missing file reads"),
        PidFileState::Missing
    );
}

#[test]
fn a_pid_that_means_another_process_is_stale_and_left_running() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("api.pid");
    let idle = spawn_idle();
    let pid = idle.0.id();
    let info = exe_known(pid);

    // Same pid, another start time: the pid was reused.
    let mut record = PidRecord::new(&info, "api", &tag());
    record.start_time = info.start_time.saturating_sub(3600);
    write_pid_file(&path, &record).expect("the PID file is written");
    match read_pid_file(&path).expect("the PID file is read") {
        PidFileState::Stale(reason) => assert!(reason.contains("another process"), "{reason}"),
        other => panic!("expected Stale, got {other:?}"),
    }
    assert!(!path.exists(), "a stale PID file is removed");

    // Same pid and start time, another exe.
    let mut record = PidRecord::new(&info, "api", &tag());
    record.exe = Some(PathBuf::from(r"C:\windows\system32\notepad.exe"));
    write_pid_file(&path, &record).expect("the PID file is written");
    match read_pid_file(&path).expect("the PID file is read") {
        PidFileState::Stale(reason) => assert!(reason.contains("now runs"), "{reason}"),
        other => panic!("expected Stale, got {other:?}"),
    }
    assert!(!path.exists(), "a stale PID file is removed");

    // Nobody was signalled: the child still runs, the same process.
    assert!(
        process::is_same_alive(pid, info.start_time),
        "the recorded pid was left alone"
    );
}

#[test]
fn a_rewrite_replaces_the_file_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("api.pid");
    let me = process::process(std::process::id())
        .expect("the process table can be read")
        .expect("this process is in the table");
    let first = PidRecord::new(&me, "api", &tag());
    write_pid_file(&path, &first).expect("the PID file is written");
    let mut second = first.clone();
    second.service = "worker".to_string();
    write_pid_file(&path, &second).expect("the PID file is rewritten");
    match read_pid_file(&path).expect("the PID file is read") {
        PidFileState::Live(back, _) => assert_eq!(back, second),
        other => panic!("expected Live, got {other:?}"),
    }
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("the temp dir lists")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(names, vec!["api.pid".to_string()]);
    remove_pid_file(&path).expect("the PID file is removed");
    assert!(!path.exists());
}

/// Not verified under Wine 8: there, renaming over a file that another handle
/// holds open fails with "Access denied" (os error 5), even though std opens files
/// with delete sharing, so `write_pid_file` fails while anyone reads the file.
/// Windows 10 and later on NTFS rename with POSIX semantics, which allows it; an
/// editor or scanner that opens without delete sharing blocks it there too.
#[test]
#[ignore = "Wine 8 refuses a rename over a file open elsewhere (os error 5)"]
fn a_rewrite_works_while_a_reader_holds_the_file_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("api.pid");
    let me = process::process(std::process::id())
        .expect("the process table can be read")
        .expect("this process is in the table");
    let first = PidRecord::new(&me, "api", &tag());
    write_pid_file(&path, &first).expect("the PID file is written");
    let mut second = first.clone();
    second.service = "worker".to_string();
    let reader = std::fs::File::open(&path).expect("the PID file opens");
    write_pid_file(&path, &second).expect("the PID file is rewritten while open");
    drop(reader);
    match read_pid_file(&path).expect("the PID file is read") {
        PidFileState::Live(back, _) => assert_eq!(back, second),
        other => panic!("expected Live, got {other:?}"),
    }
}

/// A helper process (this test binary run again, see [`lock_helper`]) and the file
/// its stdout and stderr go to.
struct Helper {
    child: ChildGuard,
    out: PathBuf,
}

/// Runs this test binary again as a helper process with `role` on the state
/// directory `dir`; its output goes to a file in `out_dir`. A `hold` helper gets a
/// stdin pipe that only it reads (the test never writes to it), so it ends when
/// this process does, even one killed by a timeout.
fn spawn_helper(role: &str, dir: &Path, out_dir: &Path) -> Helper {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let out = out_dir.join(format!("helper-{role}.out"));
    let file = std::fs::File::create(&out).expect("the helper's output file is created");
    let err = file.try_clone().expect("the output file handle is cloned");
    let stdin = if role == "hold" {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let child = Command::new(exe)
        .args(["--exact", "lock_helper", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(ROLE_ENV, role)
        .env(DIR_ENV, dir)
        .stdin(stdin)
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("the test binary starts again");
    Helper {
        child: ChildGuard(child),
        out,
    }
}

/// The complete lines the helper has written so far.
fn helper_lines(helper: &Helper) -> Vec<String> {
    let text = std::fs::read_to_string(&helper.out).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete.lines().map(str::to_owned).collect()
}

/// The pid that follows the word `key` in the helper's output (the test harness
/// prints `test lock_helper ... ` on the same line, before it). Polls the output
/// file for at most [`TIMEOUT`].
fn read_value(helper: &mut Helper, key: &str) -> u32 {
    let find = |lines: &[String]| {
        lines.iter().find_map(|line| {
            let mut words = line.split_whitespace();
            words.by_ref().any(|w| w == key).then(|| {
                let value = words.next().unwrap_or_default();
                value
                    .parse()
                    .unwrap_or_else(|_| panic!("{key} {value:?} is not a pid: {line:?}"))
            })
        })
    };
    let deadline = Instant::now() + TIMEOUT;
    loop {
        // Whether it had exited is read before its output, so an exit is only
        // reported once everything it wrote has been looked at.
        let exited = helper.child.0.try_wait().expect("the helper can be polled");
        let lines = helper_lines(helper);
        if let Some(value) = find(&lines) {
            return value;
        }
        if let Some(status) = exited {
            panic!("the helper ended ({status:?}) before printing {key:?}: {lines:?}");
        }
        assert!(
            Instant::now() < deadline,
            "the helper printed no {key:?} within {TIMEOUT:?}: {lines:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_second_process_is_refused_and_told_our_pid() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let lock = InstanceLock::acquire(&state).expect("the lock is taken");
    assert_eq!(lock.path(), state.join(LOCK_FILE));
    let mut helper = spawn_helper("try", &state, dir.path());
    let me = std::process::id();
    assert_eq!(read_value(&mut helper, "refused-by"), me);
    assert_eq!(read_value(&mut helper, "owner"), me);
    let status = wait_exit(&mut helper.child, "the helper to exit");
    assert!(
        status.success(),
        "helper: {status:?}: {:?}",
        helper_lines(&helper)
    );
    drop(lock);
    assert_eq!(InstanceLock::owner(&state), None, "released on drop");
}

#[test]
fn a_lock_held_elsewhere_names_its_owner_and_is_free_once_the_owner_died() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let mut helper = spawn_helper("hold", &state, dir.path());
    let owner = read_value(&mut helper, "locked");
    assert_eq!(owner, helper.child.0.id());
    assert_eq!(InstanceLock::owner(&state), Some(owner));
    match InstanceLock::acquire(&state) {
        Err(Error::AlreadyRunning { pid, dir }) => {
            assert_eq!(pid, owner);
            assert_eq!(dir, state);
        }
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }

    // The owner dies without unlocking; its files stay behind, naming it.
    helper.child.0.kill().expect("the helper can be killed");
    wait_exit(&mut helper.child, "the killed helper to exit");
    assert!(state.join(LOCK_FILE).exists(), "the lock file stays");
    wait_for("the OS to release the dead owner's lock", || {
        InstanceLock::owner(&state).is_none()
    });
    let lock = InstanceLock::acquire(&state).expect("a dead owner's lock does not block");
    let me = std::process::id();
    assert_eq!(InstanceLock::owner(&state), Some(me));
    let side = state.join(format!("{LOCK_FILE}.pid"));
    let text = std::fs::read_to_string(&side).expect("the side file names the owner");
    assert_eq!(text.trim(), me.to_string());
    drop(lock);
}

/// Not a test of its own: the helper process of the lock tests, run by
/// [`spawn_helper`] with [`ROLE_ENV`] set. `try`: tries to take the lock and
/// prints who refused it and who owns it. `hold`: takes the lock, prints
/// `locked PID`, and keeps it until stdin closes (the test process ended) or it
/// is killed.
#[test]
#[ignore = "run by the lock tests in a second process"]
fn lock_helper() {
    let role = std::env::var(ROLE_ENV).expect("run by spawn_helper with the role set");
    let dir = PathBuf::from(std::env::var_os(DIR_ENV).expect("run with the state dir set"));
    match role.as_str() {
        "try" => {
            match InstanceLock::acquire(&dir) {
                Err(Error::AlreadyRunning { pid, .. }) => println!("refused-by {pid}"),
                other => panic!("expected AlreadyRunning, got {other:?}"),
            }
            let owner = InstanceLock::owner(&dir).expect("the lock has an owner");
            println!("owner {owner}");
        }
        "hold" => {
            let _lock = InstanceLock::acquire(&dir).expect("the lock is free");
            println!("locked {}", std::process::id());
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        }
        other => panic!("unknown role {other:?}"),
    }
}
