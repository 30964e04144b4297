//! The instance lock between real processes: a second ringmaster on the same state
//! dir is refused with the owner's pid; the lock of a SIGKILLed owner is taken over.
//!
//! The owner is another process: this test binary re-executed with
//! `--exact hold_lock_helper`, and `HOLD_LOCK_DIR` naming the state dir. In that
//! mode the helper takes the lock, prints `locked <pid>`, and waits to be killed.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ringmaster_os::lock::LOCK_FILE;
use ringmaster_os::{Error, InstanceLock};
use ringmaster_tests::{pid_alive, wait_for, PidGuard};

const HOLD_ENV: &str = "HOLD_LOCK_DIR";
const TIMEOUT: Duration = Duration::from_secs(20);

/// Helper mode (only with `HOLD_LOCK_DIR` set): take the lock and hold it.
/// In a normal run it checks that the helper mode is off and returns.
#[test]
fn hold_lock_helper() {
    let Some(dir) = std::env::var_os(HOLD_ENV) else {
        return;
    };
    let _lock = InstanceLock::acquire(Path::new(&dir)).expect("the helper takes the lock");
    println!("locked {}", std::process::id());
    std::thread::sleep(Duration::from_secs(120));
}

/// Starts a helper process that holds the lock on `dir`; returns it once locked.
fn spawn_owner(dir: &Path, guard: &PidGuard) -> Child {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .args([
            "--exact",
            "hold_lock_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLD_ENV, dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the helper starts");
    guard.add(child.id());
    let out = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            // The harness may print `test hold_lock_helper ... ` on the same line.
            if let Some((_, pid)) = line.split_once("locked ") {
                let _ = tx.send(pid.trim().parse::<u32>().ok());
            }
        }
    });
    let pid = rx
        .recv_timeout(TIMEOUT)
        .expect("the helper reported the lock")
        .expect("a pid");
    assert_eq!(pid, child.id());
    child
}

#[test]
fn a_second_lock_names_the_running_owner() {
    let guard = PidGuard::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let mut owner = spawn_owner(&state, &guard);

    match InstanceLock::acquire(&state) {
        Err(e @ Error::AlreadyRunning { .. }) => {
            let Error::AlreadyRunning { pid, dir } = &e else {
                unreachable!()
            };
            assert_eq!(*pid, owner.id());
            assert_eq!(dir, &state);
            assert!(
                e.to_string().contains(&format!("pid {}", owner.id())),
                "{e}"
            );
        }
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }
    assert_eq!(InstanceLock::owner(&state), Some(owner.id()));
    let text = std::fs::read_to_string(state.join(LOCK_FILE)).expect("lock file");
    assert_eq!(text.trim(), owner.id().to_string());
    assert!(pid_alive(owner.id()), "asking never disturbs the owner");

    let _ = owner.kill();
    let _ = owner.wait();
}

#[test]
fn the_lock_of_a_killed_owner_is_taken_over() {
    let guard = PidGuard::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let mut owner = spawn_owner(&state, &guard);
    let dead = owner.id();
    owner.kill().expect("SIGKILL the owner");
    owner.wait().expect("reap it");
    wait_for("the dead owner's lock to be released", TIMEOUT, || {
        InstanceLock::owner(&state).is_none()
    });
    // Its pid is still written in the file, but the lock is free.
    let text = std::fs::read_to_string(state.join(LOCK_FILE)).expect("lock file");
    assert_eq!(text.trim(), dead.to_string());

    let lock = InstanceLock::acquire(&state).expect("taking over a dead owner's lock");
    let text = std::fs::read_to_string(lock.path()).expect("lock file");
    assert_eq!(text.trim(), std::process::id().to_string());
    assert_eq!(InstanceLock::owner(&state), Some(std::process::id()));
}

#[test]
fn acquiring_creates_a_private_state_dir() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("nested").join(".ringmaster");
    let lock = InstanceLock::acquire(&state).expect("lock");
    let mode = std::fs::metadata(&state).expect("dir").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    assert_eq!(lock.path(), state.join(LOCK_FILE));
    drop(lock);
    assert_eq!(InstanceLock::owner(&state), None);
}
