//! Windows: a `cmd /C` service that handles CTRL_BREAK and exits is stopped by it,
//! through [`ringmaster_os::stop`], before its grace runs out; and what Wine does
//! instead. Run on Linux under Wine with `.ci/wine/test.sh`.
//!
//! The service is this test binary run again by `cmd /C` as [`helper_process`]:
//! it installs a console control handler that writes the event's name to a file
//! and exits.
//!
//! Under Wine 8 (the only Windows this project's CI has) the event cannot be
//! delivered. Run from a terminal, the test shares a console with the helper and
//! `GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, group)` fails with
//! ERROR_INVALID_HANDLE; run by cargo with pipes (as in CI), it has no console
//! and `AttachConsole` to the helper's fails with ERROR_ACCESS_DENIED. Either way
//! the service never hears it and is killed when the grace runs out. The test asserts that
//! there, so a Wine that starts delivering it fails the test and the docs get
//! updated; on Windows it asserts the handler ran and nothing was killed. The
//! order of the console calls is tested on every OS by the unit tests of
//! `src/stop/console.rs`.
#![cfg(windows)]

use std::path::Path;
use std::time::{Duration, Instant};

use ringmaster_os::{spawn, stop, Signal, SpawnSpec, StopTarget, Tag};
use windows::core::s;
use windows::Win32::System::Console::{SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_C_EVENT};
use windows::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};

/// Set (to the file to write) only in the helper's environment.
const HELPER_ENV: &str = "RINGMASTER_TEST_CTRL_HELPER";
/// The grace of the stop: long enough for the helper to hear the event on a slow
/// machine, short enough that Wine's run (which waits it out) stays quick.
const GRACE: Duration = Duration::from_secs(5);
/// Generous: Wine starts processes much slower than Windows does.
const TIMEOUT: Duration = Duration::from_secs(60);

fn under_wine() -> bool {
    // SAFETY: looks up an export of the already-loaded ntdll by name.
    unsafe {
        GetModuleHandleA(s!("ntdll.dll"))
            .is_ok_and(|ntdll| GetProcAddress(ntdll, s!("wine_get_version")).is_some())
    }
}

/// Not a test of its own: the body of the helper process, which the tests below
/// start as `cmd /C <this binary> --exact helper_process`. Run by the harness
/// without the variable, it returns at once.
#[test]
fn helper_process() {
    let Some(out) = std::env::var_os(HELPER_ENV) else {
        return;
    };
    static OUT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let out = OUT.get_or_init(|| out.into());

    unsafe extern "system" fn on_ctrl(event: u32) -> windows::core::BOOL {
        let name = match event {
            CTRL_BREAK_EVENT => "CTRL_BREAK",
            CTRL_C_EVENT => "CTRL_C",
            _ => "other",
        };
        if let Some(out) = OUT.get() {
            let _ = std::fs::write(out, name);
        }
        std::process::exit(0);
    }
    // SAFETY: installs a handler function that lives as long as the process.
    unsafe { SetConsoleCtrlHandler(Some(on_ctrl), true) }.expect("a console handler");
    std::fs::write(out.with_extension("ready"), "").expect("the ready file");
    loop {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for_file(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < TIMEOUT,
            "the helper did not start within {TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn a_cmd_service_handling_ctrl_break_stops_on_it() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let heard = dir.path().join("heard");
    let exe = std::env::current_exe().expect("this test's path");
    let tag = Tag::new(
        format!("rm-wine-break-{}", std::process::id()),
        "helper".to_string(),
    );
    let spawned = spawn(&SpawnSpec {
        command: format!(
            "\"{}\" --exact helper_process --nocapture --test-threads=1",
            exe.display()
        ),
        workdir: None,
        env: vec![(HELPER_ENV.to_string(), heard.display().to_string())],
        tag: tag.clone(),
    })
    .expect("cmd /C spawns");
    assert_eq!(
        spawned.pgid,
        Some(spawned.pid),
        "the root leads its own console process group"
    );
    wait_for_file(&heard.with_extension("ready"));

    let target = StopTarget {
        root: Some(spawned.pid),
        pgid: spawned.pgid,
        tag: Some(tag),
        also: Vec::new(),
    };
    let report = tokio::task::spawn_blocking(move || stop(&target, Signal::Term, GRACE))
        .await
        .expect("the stop thread")
        .expect("the stop runs");
    let mut child = spawned.child;
    let _ = child.start_kill();
    let killed: Vec<&str> = report.killed.iter().map(|p| p.name.as_str()).collect();
    eprintln!(
        "stop: {:?} from the first signal to gone (grace {GRACE:?}); killed {killed:?}",
        report.elapsed
    );
    assert!(report.clean(), "nothing survives: {report:?}");
    let heard = std::fs::read_to_string(&heard).ok();
    if under_wine() {
        assert_eq!(
            heard, None,
            "Wine delivered a console event: update this test and docs/architecture.md"
        );
        assert!(
            !report.killed.is_empty(),
            "under Wine the grace runs out and the service is killed: {report:?}"
        );
    } else {
        assert_eq!(heard.as_deref(), Some("CTRL_BREAK"), "{report:?}");
        assert!(
            report.killed.is_empty(),
            "the service ended on CTRL_BREAK, nobody was killed: {report:?}"
        );
    }
}
