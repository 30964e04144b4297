//! `ringmaster validate`: every configuration error with `file:line:col` (exit 2),
//! or `ok: N services` (exit 0).
use crate::cli::ConfigArg;
use crate::exit::{config_failure, CmdResult, OK};

/// Runs the command.
pub fn run(args: &ConfigArg) -> CmdResult {
    let config = ringmaster::Config::load(&args.file).map_err(config_failure)?;
    let n = config.services.len();
    println!("ok: {n} service{}", if n == 1 { "" } else { "s" });
    Ok(OK)
}
