//! `ringmaster restart SERVICE`: stop and start one service of the running instance.
use crate::cli::RestartArgs;
use crate::cmd::up::check_services;
use crate::control::client::{Client, ClientError};
use crate::exit::{load_config, CmdResult, Failure, OK};

/// Runs the command.
pub fn run(args: &RestartArgs) -> CmdResult {
    let config = load_config(&args.config.file)?;
    // A restart includes the service's stop timeout and its start-up: no read timeout.
    let client = Client::new(&config.settings.state_dir).with_timeout(None);
    let path = format!("/restart/{}", args.service);
    // The instance knows its services (a service added at runtime is in no file).
    client.request("POST", &path).map_err(|e| match e {
        ClientError::Status { status: 404, body } => Failure::usage(format!("restart: {body}")),
        ClientError::NoInstance(_) if !config.services.contains_key(&args.service) => {
            match check_services(&config, std::slice::from_ref(&args.service)) {
                Err(f) => f,
                Ok(()) => Failure::failed(format!("restart {}: {e}", args.service)),
            }
        }
        e => Failure::failed(format!("restart {}: {e}", args.service)),
    })?;
    println!("{} restarted", args.service);
    Ok(OK)
}
