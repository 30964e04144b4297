//! `ringmaster validate`: every configuration error with `file:line:col` (exit 2),
//! or `ok: N services` (exit 0).
use crate::cli::ConfigArg;
use crate::exit::{load_config, CmdResult, OK};

/// Runs the command.
pub fn run(args: &ConfigArg) -> CmdResult {
    let config = load_config(&args.file)?;
    let n = config.services.len();
    println!("ok: {n} service{}", if n == 1 { "" } else { "s" });
    Ok(OK)
}
