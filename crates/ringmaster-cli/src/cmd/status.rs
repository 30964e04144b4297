//! `ringmaster status [--json]`: per service state, pid, port, CPU, memory, health,
//! restarts and uptime, from the running instance; exit 1 when none runs.
use ringmaster::ServiceStatus;

use crate::cli::StatusArgs;
use crate::control::client::Client;
use crate::exit::{load_config, CmdResult, Failure, OK};
use crate::output::{now_ms, status_table, Style};

/// Runs the command.
pub fn run(args: &StatusArgs, style: &Style) -> CmdResult {
    let config = load_config(&args.config.file)?;
    let client = Client::new(&config.settings.state_dir);
    let list: Vec<ServiceStatus> = client
        .get_json("/status")
        .map_err(|e| Failure::failed(e.to_string()))?;
    if args.json {
        let text = serde_json::to_string_pretty(&list)
            .map_err(|e| Failure::failed(format!("cannot write JSON: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", status_table(style, &list, now_ms()));
    }
    Ok(OK)
}
