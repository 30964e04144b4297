//! `ringmaster restart SERVICE`, `stop SERVICE` and `start SERVICE`: one service of
//! the running instance, through its control socket.
use crate::cli::RestartArgs;
use crate::cmd::up::check_services;
use crate::control::client::{encode, Client, ClientError};
use crate::exit::{load_config, CmdResult, Failure, OK};

/// Runs the command.
pub fn run(args: &RestartArgs) -> CmdResult {
    ask(args, "restart", "restarted")
}

/// `stop SERVICE`.
pub fn stop(args: &RestartArgs) -> CmdResult {
    ask(args, "stop", "stopped")
}

/// `start SERVICE`.
pub fn start(args: &RestartArgs) -> CmdResult {
    ask(args, "start", "started")
}

/// `POST /{verb}/{service}` to the running instance; says `{service} {done}`.
fn ask(args: &RestartArgs, verb: &str, done: &str) -> CmdResult {
    let config = load_config(&args.config.file)?;
    // A stop or start includes stop timeouts and start-ups: no read timeout.
    let client = Client::new(&config.settings.state_dir).with_timeout(None);
    let path = format!("/{verb}/{}", encode(&args.service));
    // The instance knows its services (a service added at runtime is in no file).
    client.request("POST", &path).map_err(|e| match e {
        ClientError::Status { status: 404, body } => Failure::usage(format!("{verb}: {body}")),
        ClientError::NoInstance(_) if !config.services.contains_key(&args.service) => {
            match check_services(&config, std::slice::from_ref(&args.service)) {
                Err(f) => f,
                Ok(()) => Failure::failed(format!("{verb} {}: {e}", args.service)),
            }
        }
        e => Failure::failed(format!("{verb} {}: {e}", args.service)),
    })?;
    println!("{} {done}", args.service);
    Ok(OK)
}
