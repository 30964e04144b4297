//! `ringmaster down`: ask the running `up` to run its shutdown cascade and print
//! its report; with none running, clean up what a crashed one left (PID files,
//! tagged processes, authorized port holders). Exit 0 only when every service's
//! processes are gone and every configured port is free. Once no instance runs, the
//! detached instance's `ringmaster.log` is rotated when it has grown past
//! `settings.log_max_bytes`.
use std::time::{Duration, Instant};

use ringmaster::messages::ShutdownReport;
use ringmaster::Config;
use ringmaster_os::InstanceLock;

use crate::cleanup;
use crate::cli::ConfigArg;
use crate::control::client::{Client, ClientError};
use crate::exit::{load_config, CmdResult, Failure, OK};
use crate::output::{shutdown_report, Style};

/// Runs the command.
pub fn run(args: &ConfigArg, style: &Style) -> CmdResult {
    let config = load_config(&args.file)?;
    let state_dir = config.settings.state_dir.clone();
    let client = Client::new(&state_dir).with_timeout(Some(
        config
            .settings
            .shutdown_timeout
            .saturating_add(Duration::from_secs(30)),
    ));
    let mut result = client.post_json::<ShutdownReport>("/shutdown");
    if let Err(ClientError::NoInstance(_)) = &result {
        if let Some(pid) = InstanceLock::owner(&state_dir) {
            // It holds the lock: it may still be binding its socket. Give it a moment.
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) && !client.is_running() {
                std::thread::sleep(Duration::from_millis(100));
            }
            result = client.post_json::<ShutdownReport>("/shutdown");
            if let Err(ClientError::NoInstance(_)) = &result {
                return Err(Failure::failed(format!(
                    "ringmaster pid {pid} holds {} but does not answer on its control socket",
                    state_dir.display()
                )));
            }
        }
    }
    let leftovers = match result {
        Ok(report) => {
            print!("{}", shutdown_report(style, &report));
            // The instance exits after answering; wait until it let go of its lock.
            let start = Instant::now();
            while InstanceLock::owner(&state_dir).is_some()
                && start.elapsed() < Duration::from_secs(15)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Some(pid) = InstanceLock::owner(&state_dir) {
                eprintln!("ringmaster pid {pid} is still running after its shutdown");
            }
            cleanup::verify(&config, None)
        }
        Err(ClientError::NoInstance(_)) => {
            crate::control::remove(&state_dir);
            println!("no ringmaster is running; cleaning up what is left");
            let done = cleanup::sweep(&config, None, false);
            for action in &done.actions {
                println!("  {action}");
            }
            done.leftovers
        }
        Err(e) => return Err(Failure::failed(format!("down: {e}"))),
    };
    rotate_detached_log(&config);
    if leftovers.is_empty() {
        println!("all gone; every port is free");
        Ok(OK)
    } else {
        Err(Failure::failed(format!(
            "still there:\n  {}",
            leftovers.join("\n  ")
        )))
    }
}

/// Renames `<state_dir>/ringmaster.log` (the output of `up -d`) to
/// `ringmaster.log.1` when it is larger than `settings.log_max_bytes`, so the next
/// `up -d` starts a new file. Only while no instance holds the state directory:
/// a running one writes to the file.
fn rotate_detached_log(config: &Config) {
    let state_dir = &config.settings.state_dir;
    if InstanceLock::owner(state_dir).is_some() {
        return;
    }
    let path = state_dir.join(crate::cmd::up::DETACHED_LOG);
    match ringmaster::logs::rotate_if_larger(&path, config.settings.log_max_bytes, 1) {
        Ok(true) => tracing::info!("rotated {} to {}.1", path.display(), path.display()),
        Ok(false) => {}
        Err(e) => tracing::warn!("cannot rotate {}: {e}", path.display()),
    }
}
