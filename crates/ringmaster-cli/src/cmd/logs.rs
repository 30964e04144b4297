//! `ringmaster logs [SERVICE] [-f] [-n N]`: the services' output, prefixed with
//! their names. From the running instance (`GET /logs`), or, when none runs,
//! from the log files in the state directory (following them by polling).
use std::time::Duration;

use ringmaster::messages::LogLine;

use crate::cli::LogsArgs;
use crate::control::client::{Client, ClientError};
use crate::exit::{load_config, CmdResult, Failure, OK};
use crate::logfiles;
use crate::output::{Prefixer, Style};

/// Runs the command.
pub fn run(args: &LogsArgs, style: &Style) -> CmdResult {
    let config = load_config(&args.file)?;
    let all: Vec<String> = config.services.keys().cloned().collect();
    let names = match &args.service {
        // A replica (`api#1`) is asked for by its name; its service's file knows it.
        Some(name)
            if ringmaster::config::replica_of(name)
                .is_some_and(|(group, _)| config.services.contains_key(group)) =>
        {
            vec![name.clone()]
        }
        Some(name) => {
            let names = vec![name.clone()];
            crate::cmd::up::check_services(&config, &names)?;
            names
        }
        None => all.clone(),
    };
    let prefix = Prefixer::new(*style, all);
    let client = Client::new(&config.settings.state_dir).with_timeout(if args.follow {
        None
    } else {
        Some(Duration::from_secs(30))
    });
    let mut path = format!("/logs?n={}&follow={}", args.lines, args.follow);
    if let Some(name) = &args.service {
        path.push_str(&format!(
            "&service={}",
            crate::control::client::encode(name)
        ));
    }
    match client.request("GET", &path) {
        Ok(response) => {
            for line in response.lines() {
                let line = line.map_err(|e| Failure::failed(format!("control socket: {e}")))?;
                match serde_json::from_str::<LogLine>(&line) {
                    Ok(l) => println!("{}", prefix.line(&l.service, &l.line)),
                    Err(_) => println!("{line}"),
                }
            }
            Ok(OK)
        }
        Err(ClientError::NoInstance(_)) => {
            from_files(&config.settings.state_dir, &names, args, &prefix)
        }
        Err(e) => Err(Failure::failed(e.to_string())),
    }
}

fn from_files(
    state_dir: &std::path::Path,
    names: &[String],
    args: &LogsArgs,
    prefix: &Prefixer,
) -> CmdResult {
    let dir = logfiles::dir(state_dir);
    // A replicated service wrote its replicas' files (`api#0.log`, ...).
    let mut names = names.to_vec();
    if let Ok(files) = std::fs::read_dir(&dir) {
        let mut replicas: Vec<String> = files
            .filter_map(|f| f.ok()?.file_name().into_string().ok())
            .filter_map(|f| f.strip_suffix(".log").map(str::to_owned))
            .filter(|n| {
                ringmaster::config::replica_of(n).is_some_and(|(g, _)| names.iter().any(|m| m == g))
            })
            .collect();
        replicas.sort();
        names.extend(replicas);
    }
    let names = &names[..];
    let existing: Vec<&String> = names
        .iter()
        .filter(|n| logfiles::path(&dir, n).exists())
        .collect();
    if existing.is_empty() {
        if !args.follow {
            return Err(Failure::failed(format!(
                "no ringmaster is running and there are no log files in {}",
                dir.display()
            )));
        }
        // Like `tail -F`: the files appear once a run starts the services.
        eprintln!(
            "no ringmaster is running and there are no log files in {} yet; waiting for them (Ctrl-C to stop)",
            dir.display()
        );
    }
    let mut offsets = Vec::new();
    for name in names {
        for line in logfiles::tail(&dir, name, args.lines) {
            println!("{}", prefix.line(name, &line));
        }
        let len = std::fs::metadata(logfiles::path(&dir, name))
            .map(|m| m.len())
            .unwrap_or(0);
        offsets.push(len);
    }
    if !args.follow {
        return Ok(OK);
    }
    loop {
        std::thread::sleep(Duration::from_millis(200));
        for (name, offset) in names.iter().zip(offsets.iter_mut()) {
            let (lines, next) = logfiles::read_new(&logfiles::path(&dir, name), *offset);
            *offset = next;
            for line in lines {
                println!("{}", prefix.line(name, &line));
            }
        }
    }
}
