//! `ringmaster reload`, `add`, `remove` and `scale`: change the running instance's stack
//! through its control socket and print what the change did to each service.
use ringmaster::change::ApplyReport;

use crate::cli::{AddArgs, ReloadArgs, RemoveArgs, ScaleArgs};
use crate::control::client::{encode, Client, ClientError};
use crate::exit::{load_config, CmdResult, Failure, FAILED, OK, USAGE};
use crate::output::Style;

/// `reload`: the file is checked here first (every error at `file:line:col`,
/// exit 2), then read again by the instance, which applies it (or, with
/// `--dry-run`, says what it would do).
pub fn reload(args: &ReloadArgs, style: &Style) -> CmdResult {
    let config = load_config(&args.config.file)?;
    let file = &args.config.file;
    let file = std::path::absolute(file).unwrap_or_else(|_| file.clone());
    let body = serde_json::json!({ "file": file, "dry_run": args.dry_run });
    send(&config, "POST", "/reload", Some(&body), "reload", style)
}

/// `add NAME`: one service as JSON (`--json`, with the flags on top).
pub fn add(args: &AddArgs, style: &Style) -> CmdResult {
    let config = load_config(&args.config.file)?;
    let mut object = match &args.json {
        Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(_) => return Err(Failure::usage("--json: not a JSON object")),
            Err(e) => return Err(Failure::usage(format!("--json: {e}"))),
        },
        None => serde_json::Map::new(),
    };
    object.insert("name".into(), args.name.clone().into());
    if let Some(c) = &args.command {
        object.insert("command".into(), c.clone().into());
    }
    if let Some(p) = args.port {
        object.insert("port".into(), p.into());
    }
    if !args.depends_on.is_empty() {
        object.insert("depends_on".into(), args.depends_on.clone().into());
    }
    if !object.contains_key("command") {
        return Err(Failure::usage(format!(
            "add {}: give its command (--command, or `command` in --json)",
            args.name
        )));
    }
    let body = serde_json::Value::Object(object);
    send(&config, "POST", "/services", Some(&body), "add", style)
}

/// `remove NAME`.
pub fn remove(args: &RemoveArgs, style: &Style) -> CmdResult {
    let config = load_config(&args.config.file)?;
    let path = format!("/services/{}", encode(&args.name));
    send(&config, "DELETE", &path, None, "remove", style)
}

/// `scale NAME N`.
pub fn scale(args: &ScaleArgs, style: &Style) -> CmdResult {
    let config = load_config(&args.config.file)?;
    let path = format!("/services/{}/scale", encode(&args.name));
    let body = serde_json::json!({ "replicas": args.replicas });
    send(&config, "POST", &path, Some(&body), "scale", style)
}

/// Sends the change and prints its report. Exit 0 when applied and what it
/// started is ready; 1 when something it started failed, or no instance runs
/// (or it is shutting down); 2 when the change is invalid or cannot be made.
fn send(
    config: &ringmaster::Config,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
    what: &str,
    style: &Style,
) -> CmdResult {
    // A change includes stops and starts: no read timeout.
    let client = Client::new(&config.settings.state_dir).with_timeout(None);
    let response = client.request_with(method, path, body);
    let report: ApplyReport = match response.and_then(|r| r.json()) {
        Ok(report) => report,
        Err(ClientError::Status { status, body }) => {
            let code = match status {
                404 | 409 | 422 => USAGE,
                _ => FAILED,
            };
            return Err(Failure::code(code, format!("{what}: {body}")));
        }
        Err(e) => return Err(Failure::failed(format!("{what}: {e}"))),
    };
    print!("{}", report.render(style));
    match report.failed {
        None => Ok(OK),
        Some(_) => Err(Failure::failed("")),
    }
}
