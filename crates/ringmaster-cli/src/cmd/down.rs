//! `ringmaster down`: ask the running `up` to run its shutdown cascade and print
//! its report; with none running, clean up what a crashed one left (PID files,
//! tagged processes, authorized port holders). Exit 0 only when every service's
//! processes are gone and every configured port is free.
use std::time::{Duration, Instant};

use ringmaster::messages::ShutdownReport;
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
        config.settings.shutdown_timeout + Duration::from_secs(30),
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
            cleanup::verify(&config)
        }
        Err(ClientError::NoInstance(_)) => {
            crate::control::remove(&state_dir);
            println!("no ringmaster is running; cleaning up what is left");
            let done = cleanup::sweep(&config, false);
            for action in &done.actions {
                println!("  {action}");
            }
            done.leftovers
        }
        Err(e) => return Err(Failure::failed(format!("down: {e}"))),
    };
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
