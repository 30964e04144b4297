//! PID files against real processes: a live record is `Live`; a record whose pid
//! is dead or now belongs to another process is `Stale`, removed, and that process
//! is left alive; symlinks are refused both ways with their target untouched;
//! garbage is an error and the file is kept; the state dir is private.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command};

use ringmaster_os::pidfile::{ensure_state_dir, read_pid_file, remove_pid_file, write_pid_file};
use ringmaster_os::process::process;
use ringmaster_os::{Error, PidFileState, PidRecord, Tag};
use ringmaster_tests::{fake_service, pid_alive, PidGuard};

fn idle(guard: &PidGuard) -> Child {
    let child = Command::new(fake_service())
        .spawn()
        .expect("fake-service starts");
    guard.add(child.id());
    child
}

fn record_of(pid: u32) -> PidRecord {
    let info = process(pid).expect("read").expect("the process exists");
    PidRecord::new(&info, "api", &Tag::new("rm-00000000000000aa", "api"))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn a_live_record_reads_back_live() {
    let guard = PidGuard::new();
    let mut child = idle(&guard);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("api.pid");
    let record = record_of(child.id());
    assert_eq!(record.owner_pid, std::process::id());
    write_pid_file(&path, &record).expect("write");
    assert_eq!(mode(&path), 0o600);
    match read_pid_file(&path).expect("read") {
        PidFileState::Live(r, info) => {
            assert_eq!(r, record);
            assert_eq!(info.pid, child.id());
            assert_eq!(info.start_time, record.start_time);
        }
        other => panic!("expected Live, got {other:?}"),
    }
    assert!(path.exists());
    remove_pid_file(&path).expect("remove");
    assert!(!path.exists());
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_reused_pid_is_stale_the_file_removed_and_the_process_left_alive() {
    let guard = PidGuard::new();
    let mut stranger = idle(&guard);
    let pid = stranger.id();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("api.pid");

    // The recorded process started at another time: the pid was reused.
    let mut record = record_of(pid);
    record.start_time += 1;
    write_pid_file(&path, &record).expect("write");
    match read_pid_file(&path).expect("read") {
        PidFileState::Stale(reason) => {
            assert!(reason.contains(&pid.to_string()), "{reason}");
            assert!(reason.contains("another process"), "{reason}");
        }
        other => panic!("expected Stale, got {other:?}"),
    }
    assert!(!path.exists(), "a stale file is removed");
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(pid_alive(pid), "the unrelated process is never signalled");
    assert_eq!(stranger.try_wait().expect("try_wait"), None);

    // Same start time but another exe: also another process.
    let mut record = record_of(pid);
    record.exe = Some("/usr/bin/some-other-program".into());
    write_pid_file(&path, &record).expect("write");
    assert!(matches!(
        read_pid_file(&path).expect("read"),
        PidFileState::Stale(_)
    ));
    assert!(!path.exists());
    assert!(pid_alive(pid));

    let _ = stranger.kill();
    let _ = stranger.wait();
}

#[test]
fn a_dead_pid_is_stale() {
    let guard = PidGuard::new();
    let mut child = idle(&guard);
    let record = record_of(child.id());
    child.kill().expect("kill our child");
    child.wait().expect("reap our child");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("api.pid");
    write_pid_file(&path, &record).expect("write");
    match read_pid_file(&path).expect("read") {
        PidFileState::Stale(reason) => assert!(reason.contains("no longer running"), "{reason}"),
        other => panic!("expected Stale, got {other:?}"),
    }
    assert!(!path.exists());
    assert_eq!(read_pid_file(&path).expect("read"), PidFileState::Missing);
}

#[test]
fn a_symlinked_pid_file_is_refused_and_its_target_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("precious.txt");
    std::fs::write(&target, "do not touch\n").expect("write target");
    let link = dir.path().join("api.pid");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");

    let record = record_of(std::process::id());
    match write_pid_file(&link, &record) {
        Err(Error::PidFileSymlink(p)) => assert_eq!(p, link),
        other => panic!("expected PidFileSymlink on write, got {other:?}"),
    }
    match read_pid_file(&link) {
        Err(Error::PidFileSymlink(p)) => assert_eq!(p, link),
        other => panic!("expected PidFileSymlink on read, got {other:?}"),
    }
    assert!(matches!(
        remove_pid_file(&link),
        Err(Error::PidFileSymlink(_))
    ));

    assert_eq!(
        std::fs::read_to_string(&target).expect("target"),
        "do not touch\n"
    );
    let meta = std::fs::symlink_metadata(&link).expect("link is still there");
    assert!(meta.file_type().is_symlink());

    // A link to a valid PID file is refused as well: it is never followed.
    let real = dir.path().join("real.pid");
    write_pid_file(&real, &record).expect("write real");
    let link2 = dir.path().join("other.pid");
    std::os::unix::fs::symlink(&real, &link2).expect("symlink");
    assert!(matches!(
        read_pid_file(&link2),
        Err(Error::PidFileSymlink(_))
    ));
    // A dangling link too.
    let dangling = dir.path().join("dangling.pid");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).expect("symlink");
    assert!(matches!(
        read_pid_file(&dangling),
        Err(Error::PidFileSymlink(_))
    ));
    assert!(matches!(
        write_pid_file(&dangling, &record),
        Err(Error::PidFileSymlink(_))
    ));
    assert!(!dir.path().join("nowhere").exists());
}

#[test]
fn garbage_is_an_error_and_the_file_is_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, content) in [
        ("number.pid", "12345\n"),
        ("empty.pid", ""),
        ("partial.pid", "{\"pid\": 12"),
        ("wrong.pid", "{\"pid\": \"x\"}"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        match read_pid_file(&path) {
            Err(e @ Error::PidFileGarbage { .. }) => {
                assert!(e.to_string().contains(name), "{e}");
            }
            other => panic!("expected PidFileGarbage for {name}, got {other:?}"),
        }
        assert_eq!(std::fs::read_to_string(&path).expect("kept"), content);
    }
}

#[test]
fn the_state_dir_is_created_private() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("a").join(".ringmaster");
    ensure_state_dir(&state).expect("create");
    assert!(state.is_dir());
    assert_eq!(mode(&state), 0o700);
    // Idempotent.
    ensure_state_dir(&state).expect("again");
    assert_eq!(mode(&state), 0o700);
}
