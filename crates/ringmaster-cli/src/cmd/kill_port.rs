//! `ringmaster kill-port PORT`: stop the holders' process trees, authorized ones
//! only. Any holder that is not allowed → exit 3 and nothing is touched. By default
//! only processes tagged with this project are allowed; `--allow NAME` adds names.
use std::path::{Path, PathBuf};

use ringmaster_os::{clear_port, Error as OsError, Policy, Signal};

use crate::cli::{KillPortArgs, DEFAULT_CONFIG};
use crate::exit::{CmdResult, Failure, FAILED, OK, REFUSED};
use crate::output::{human_duration, Style};

/// The project whose tagged processes are ours here: the state directory of
/// `./ringmaster.toml` when it loads, else `./.ringmaster`.
pub fn default_project() -> String {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let file = cwd.join(DEFAULT_CONFIG);
    let state_dir = if file.exists() {
        match ringmaster::Config::load(&file) {
            Ok(c) => c.settings.state_dir,
            Err(e) => {
                tracing::warn!(
                    "{} does not load ({e}); using ./.ringmaster as the project",
                    file.display()
                );
                cwd.join(ringmaster::config::defaults::STATE_DIR)
            }
        }
    } else {
        cwd.join(ringmaster::config::defaults::STATE_DIR)
    };
    ringmaster_os::project_id(Path::new(&state_dir))
}

/// Runs the command.
pub fn run(args: &KillPortArgs, style: &Style) -> CmdResult {
    let project = default_project();
    let mut policy = Policy::current(Some(project), args.allow.clone())
        .map_err(|e| Failure::failed(format!("cannot build the kill policy: {e}")))?;
    policy.port = Some(args.port);
    match clear_port(args.port, &policy, Signal::Term, args.grace, args.dry_run) {
        Ok(report) => {
            if report.holders.is_empty() {
                println!("port {} is free", args.port);
            } else if args.dry_run {
                for h in &report.holders {
                    println!("would stop {h} and its process tree");
                }
            } else {
                for stop in &report.stops {
                    let killed = if stop.killed.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; killed after the grace: {}",
                            stop.killed
                                .iter()
                                .map(|p| p.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    println!(
                        "stopped {} in {}{killed}",
                        stop.signalled
                            .iter()
                            .map(|p| p.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                        human_duration(stop.elapsed)
                    );
                }
                println!("port {} is {}", args.port, style.paint("32", "free"));
            }
            Ok(OK)
        }
        Err(OsError::Refused { refusals, .. }) => {
            let mut msg = String::new();
            for r in &refusals {
                msg.push_str(&format!("refused: {r}\n"));
            }
            msg.push_str(&format!(
                "nothing was touched; port {} is still held (use --allow NAME to allow a holder)",
                args.port
            ));
            Err(Failure::code(REFUSED, msg))
        }
        Err(e @ OsError::PortStillHeld { .. }) => Err(Failure::code(FAILED, e.to_string())),
        Err(e) => Err(Failure::failed(format!("kill-port {}: {e}", args.port))),
    }
}
