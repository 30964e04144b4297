//! Spawning a service's command through the platform shell (`sh -c` / `cmd /C`),
//! in its own session and process group (on Windows a job object and a console
//! process group), with the tag in its environment and stdout/stderr piped. On
//! Linux, the child subreaper.
//! Platform code: `spawn/unix.rs`, `spawn/windows.rs`.
//!
//! The child is not killed when its wrapper is dropped: services are stopped
//! explicitly with [`crate::stop()`]. On Windows the job object goes with the
//! wrapper: killing it (`child.start_kill()`) terminates the whole job.
use std::path::PathBuf;
use std::process::Stdio;

pub use process_wrap::tokio::ChildWrapper;
use process_wrap::tokio::CommandWrap;
use tokio::process::{ChildStderr, ChildStdout};

use crate::tag::{Tag, TAG_ENV};
use crate::{Error, Result};

#[cfg_attr(unix, path = "spawn/unix.rs")]
#[cfg_attr(windows, path = "spawn/windows.rs")]
mod sys;

/// What to spawn.
#[derive(Clone, Debug)]
pub struct SpawnSpec {
    /// Run by the platform shell.
    pub command: String,
    pub workdir: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    pub tag: Tag,
}

/// A spawned service root. `pgid` is its process group (on Windows, the console
/// process group it leads, named by its pid).
#[derive(Debug)]
pub struct Spawned {
    pub child: Box<dyn ChildWrapper>,
    pub pid: u32,
    pub pgid: Option<u32>,
    pub stdout: Option<ChildStdout>,
    pub stderr: Option<ChildStderr>,
}

/// Spawns `spec`. Must be called inside a tokio runtime (actix-rt is one).
/// The command runs as `sh -c COMMAND` (Unix) or `cmd /C COMMAND` (Windows),
/// stdin is null, stdout and stderr are piped, `env` is added to our environment
/// and [`TAG_ENV`] is set last (it cannot be overridden by `env`). A
/// `NOTIFY_SOCKET` of our own (ringmaster run by systemd) is not passed on: a
/// service speaking sd_notify would tell systemd it is ready, or name its main
/// pid. The service gets one only from `env` (its own notify probe's).
pub fn spawn(spec: &SpawnSpec) -> Result<Spawned> {
    let launcher = sys::launcher();
    let program = launcher.map_or(std::ffi::OsStr::new(sys::SHELL), |l| l.as_os_str());
    let mut wrap = CommandWrap::with_new(program, |cmd| {
        if launcher.is_some() {
            cmd.arg(sys::SHELL);
        }
        sys::shell_args(cmd, &spec.command);
        if let Some(dir) = &spec.workdir {
            cmd.current_dir(dir);
        }
        cmd.env_remove("NOTIFY_SOCKET");
        cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
        cmd.env(TAG_ENV, spec.tag.env_value());
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(false);
    });
    let spawned = if launcher.is_some() {
        // The launcher makes the session; the slack comes from this thread.
        sys::with_thread_slack(spec.tag.slack_marker(), || wrap.spawn())
    } else {
        sys::isolate(&mut wrap);
        sys::mark(&mut wrap, spec.tag.slack_marker());
        wrap.spawn()
    };
    let mut child = spawned.map_err(|e| {
        let dir = spec
            .workdir
            .as_ref()
            .map(|d| format!(" in {}", d.display()))
            .unwrap_or_default();
        Error::io(format!("spawning `{}`{dir}", spec.command), e)
    })?;
    let Some(pid) = child.id() else {
        // Only a child that was already reaped has no pid; it cannot be ours to run.
        return Err(Error::io(
            format!("spawning `{}`", spec.command),
            std::io::Error::other("the process exited before its pid could be read"),
        ));
    };
    let stdout = child.stdout().take();
    let stderr = child.stderr().take();
    Ok(Spawned {
        child,
        pid,
        pgid: sys::group_of_spawned(pid),
        stdout,
        stderr,
    })
}

/// The program [`spawn`] runs first, which execs the shell at once (on Linux,
/// `setsid(1)` when installed; see `spawn/unix.rs`): a root that was just
/// spawned may still show it as its exe.
pub fn launcher() -> Option<&'static std::path::Path> {
    sys::launcher()
}

/// Waits for the spawned root process itself to exit — not for its whole process
/// group or job, which is what the wrapper's own `wait` does (`waitpid(-pgid)` on
/// Unix, the job's completion port on Windows): a shell killed under a live child
/// is seen at once. The wrapper must be kept afterwards for as long as the
/// service's other processes may live: on Windows dropping it closes the job,
/// which kills every process still in it.
pub async fn wait_root(
    child: &mut Box<dyn ChildWrapper>,
) -> std::io::Result<std::process::ExitStatus> {
    // SAFETY: waiting on the native child only records its exit status; the group
    // and job wrappers above it keep their handles, and we never call their own
    // `wait` after this.
    match unsafe { child.try_inner_child_mut() } {
        Some(native) => native.wait().await,
        None => child.wait().await,
    }
}

/// Linux: makes this process a child subreaper, so re-parented descendants stay
/// visible and can be reaped. Returns `Ok(false)` on platforms without one.
pub fn become_subreaper() -> Result<bool> {
    sys::become_subreaper()
}

/// Reaps exited processes that were re-parented to us (subreaper), by pid and
/// never with `waitpid(-1)`: pids in `exclude` (children tokio waits on) are left
/// alone. Returns the reaped pids. Cheap enough to run every second: it lists only
/// our own children ([`crate::process::children`]) and calls
/// `waitpid(pid, WNOHANG)` on each one not excluded, which reaps it only when it
/// has exited. Does nothing (and returns nothing) on Windows.
pub fn reap_adopted(exclude: &[u32]) -> Vec<u32> {
    let Ok(children) = crate::process::children() else {
        return Vec::new();
    };
    children
        .into_iter()
        .filter(|pid| !exclude.contains(pid))
        .filter(|&pid| sys::reap(pid))
        .collect()
}

/// Reaps `pid` if it is an exited child of ours (`waitpid(pid, WNOHANG)`, never
/// `-1`). True when it was reaped. Only for pids nobody else waits on.
pub(crate) fn reap_pid(pid: u32) -> bool {
    sys::reap(pid)
}
