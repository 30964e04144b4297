//! `ringmaster restart SERVICE`: stop and start one service of the running instance.
use crate::cli::RestartArgs;
use crate::cmd::up::check_services;
use crate::control::client::Client;
use crate::exit::{load_config, CmdResult, Failure, OK};

/// Runs the command.
pub fn run(args: &RestartArgs) -> CmdResult {
    let config = load_config(&args.config.file)?;
    check_services(&config, std::slice::from_ref(&args.service))?;
    // A restart includes the service's stop timeout and its start-up: no read timeout.
    let client = Client::new(&config.settings.state_dir).with_timeout(None);
    let path = format!("/restart/{}", args.service);
    client
        .request("POST", &path)
        .map_err(|e| Failure::failed(format!("restart {}: {e}", args.service)))?;
    println!("{} restarted", args.service);
    Ok(OK)
}
