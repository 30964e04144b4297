//! `ringmaster ports [PORT...] [--json]`: who listens, with pid, name, exe and user.
use serde::Serialize;

use crate::cli::PortsArgs;
use crate::exit::{CmdResult, Failure, OK};
use crate::output::{table, Style};

/// One row of `ports --json`.
#[derive(Debug, Serialize)]
pub struct PortRow {
    pub port: u16,
    pub addr: String,
    pub pid: u32,
    pub name: Option<String>,
    pub exe: Option<String>,
    pub user: Option<String>,
    pub command: Option<String>,
}

/// Runs the command.
pub fn run(args: &PortsArgs, style: &Style) -> CmdResult {
    let mut found = Vec::new();
    if args.ports.is_empty() {
        found = ringmaster_os::all_listeners()
            .map_err(|e| Failure::failed(format!("cannot list listening sockets: {e}")))?;
    } else {
        for &port in &args.ports {
            let mut l = ringmaster_os::listeners(port)
                .map_err(|e| Failure::failed(format!("cannot list holders of port {port}: {e}")))?;
            found.append(&mut l);
        }
    }
    let mut rows: Vec<PortRow> = found
        .into_iter()
        .map(|l| PortRow {
            port: l.port,
            addr: l.addr.to_string(),
            pid: l.pid,
            name: l.process.as_ref().map(|p| p.name.clone()),
            exe: l
                .process
                .as_ref()
                .and_then(|p| p.exe.as_ref().map(|e| e.display().to_string())),
            user: l
                .process
                .as_ref()
                .and_then(|p| p.user.clone().or_else(|| p.uid.map(|u| u.to_string()))),
            command: l
                .process
                .as_ref()
                .filter(|p| !p.argv.is_empty())
                .map(|p| p.argv.join(" ")),
        })
        .collect();
    rows.sort_by(|a, b| (a.port, &a.addr, a.pid).cmp(&(b.port, &b.addr, b.pid)));
    rows.dedup_by(|a, b| a.port == b.port && a.addr == b.addr && a.pid == b.pid);

    if args.json {
        let text = serde_json::to_string_pretty(&rows)
            .map_err(|e| Failure::failed(format!("cannot write JSON: {e}")))?;
        println!("{text}");
        return Ok(OK);
    }
    let dash = || "-".to_string();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.port.to_string(),
                r.addr.clone(),
                r.pid.to_string(),
                r.name.clone().unwrap_or_else(dash),
                r.user.clone().unwrap_or_else(dash),
                r.exe.clone().unwrap_or_else(dash),
            ]
        })
        .collect();
    if !cells.is_empty() {
        print!(
            "{}",
            table(
                style,
                &["PORT", "ADDR", "PID", "NAME", "USER", "EXE"],
                &cells
            )
        );
    }
    for port in &args.ports {
        if !rows.iter().any(|r| r.port == *port) {
            println!("port {port}: nobody listens");
        }
    }
    if args.ports.is_empty() && cells.is_empty() {
        println!("no listening sockets found");
    }
    Ok(OK)
}
