//! An actix bot that embeds ringmaster, the way a Discord bot runs its dashboard's
//! services: it starts them on start-up, answers chat commands, and stops them
//! when it closes.
//!
//! Chat commands are read from stdin, one per line, and answered on stdout:
//! `status`, `restart SERVICE`, `logs SERVICE`, `add NAME PORT COMMAND...` (a
//! helper registered at runtime: started once its port accepts connections, its
//! processes and port stopped with the stack), `remove NAME`, `help`, `quit`. On `quit`, end of
//! input, Ctrl-C or SIGTERM the bot runs the shutdown cascade with a 15 s deadline;
//! when no report arrived by then it falls back to the forced sweep of every
//! configured port and tag. Then it stops its actix System.
//!
//! ```sh
//! cargo run -p ringmaster-examples --example bot -- examples/dashboard/ringmaster.toml
//! ```
use std::collections::{HashMap, VecDeque};
use std::io::BufRead;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use actix::prelude::*;
use ringmaster::messages::{LogLine, ServiceEvent};
use ringmaster::{Config, Options, Orchestrator};
use tokio::sync::mpsc;

/// The cascade's deadline when the bot closes.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(15);
/// How long past the deadline the bot waits for the cascade's report before it
/// falls back to the sweep.
const REPORT_MARGIN: Duration = Duration::from_secs(2);
/// Lines kept per service for `logs SERVICE`.
const LOG_LINES: usize = 200;
/// Lines shown by `logs SERVICE`.
const LOG_SHOWN: usize = 20;

/// Keeps the last lines of every service's output (a log subscription).
#[derive(Default)]
struct LogBook {
    lines: HashMap<String, VecDeque<String>>,
}

impl Actor for LogBook {
    type Context = Context<Self>;
}

impl Handler<LogLine> for LogBook {
    type Result = ();
    fn handle(&mut self, msg: LogLine, _: &mut Context<Self>) {
        let lines = self.lines.entry(msg.service).or_default();
        if lines.len() == LOG_LINES {
            lines.pop_front();
        }
        lines.push_back(msg.line);
    }
}

/// Bot → LogBook: the last `n` lines of `service`.
#[derive(Message)]
#[rtype(result = "Vec<String>")]
struct LastLines {
    service: String,
    n: usize,
}

impl Handler<LastLines> for LogBook {
    type Result = MessageResult<LastLines>;
    fn handle(&mut self, msg: LastLines, _: &mut Context<Self>) -> Self::Result {
        let lines = self.lines.get(&msg.service);
        let all: Vec<String> = lines
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default();
        MessageResult(all[all.len().saturating_sub(msg.n)..].to_vec())
    }
}

/// Posts service events to the chat (an event subscription).
struct Notifier;

impl Actor for Notifier {
    type Context = Context<Self>;
}

impl Handler<ServiceEvent> for Notifier {
    type Result = ();
    fn handle(&mut self, ev: ServiceEvent, _: &mut Context<Self>) {
        // `ServiceEvent` prints as `ringmaster up` does: `api: starting (pid 4121)`.
        println!("[event] {ev}");
    }
}

/// The bot: turns one chat command into the lines of its answer.
struct ChatBot {
    orch: Orchestrator,
    logs: Addr<LogBook>,
    /// The configuration the stack came from: where a helper's paths resolve.
    config: Config,
}

impl Actor for ChatBot {
    type Context = Context<Self>;
}

/// Chat → bot: one command line; the answer is a list of lines.
#[derive(Message)]
#[rtype(result = "Vec<String>")]
struct Command(String);

impl Handler<Command> for ChatBot {
    type Result = ResponseFuture<Vec<String>>;

    fn handle(&mut self, Command(line): Command, _: &mut Context<Self>) -> Self::Result {
        let orch = self.orch.clone();
        let logs = self.logs.clone();
        let config = self.config.clone();
        let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        Box::pin(async move {
            match words
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice()
            {
                ["status"] => match orch.status().await {
                    // `ServiceStatus` prints the cells of `ringmaster status`.
                    Ok(all) => all.iter().map(|s| s.to_string()).collect(),
                    Err(e) => vec![format!("status failed: {e}")],
                },
                ["restart", name] => {
                    let started = Instant::now();
                    match orch.restart(name).await {
                        Ok(()) => vec![format!(
                            "restarted {name} in {} ms",
                            started.elapsed().as_millis()
                        )],
                        Err(e) => vec![format!("restart {name} failed: {e}")],
                    }
                }
                ["logs", name] => {
                    let service = name.to_string();
                    let lines = logs
                        .send(LastLines {
                            service: service.clone(),
                            n: LOG_SHOWN,
                        })
                        .await
                        .unwrap_or_default();
                    let mut out = vec![format!("last {} lines of {service}:", lines.len())];
                    out.extend(lines.into_iter().map(|l| format!("  {l}")));
                    out
                }
                ["add", name, port, command @ ..] if !command.is_empty() => {
                    let Ok(port) = port.parse::<u16>() else {
                        return vec![format!("add {name}: `{port}` is no port")];
                    };
                    let started = Instant::now();
                    match helper(&config, name, port, &command.join(" ")) {
                        Err(e) => vec![format!("add {name} failed: {e}")],
                        Ok(service) => match orch.add_service(service).await {
                            Ok(report) if report.failed.is_none() => vec![format!(
                                "added {name}: ready in {} ms",
                                started.elapsed().as_millis()
                            )],
                            Ok(report) => vec![format!("add {name} failed: {report}")],
                            Err(e) => vec![format!("add {name} failed: {e}")],
                        },
                    }
                }
                ["remove", name] => match orch.remove_service(name).await {
                    Ok(_) => vec![format!("removed {name}")],
                    Err(e) => vec![format!("remove {name} failed: {e}")],
                },
                [] => vec![],
                _ => vec![
                    "commands: status | restart SERVICE | logs SERVICE | add NAME PORT COMMAND... \
                     | remove NAME | help | quit"
                        .to_string(),
                ],
            }
        })
    }
}

/// A helper service built in code: `command` on `port`, ready once the port
/// accepts connections, with the stack's state directory and folder.
fn helper(
    config: &Config,
    name: &str,
    port: u16,
    command: &str,
) -> Result<ringmaster::config::ServiceConfig, ringmaster::config::ConfigErrors> {
    let built = Config::builder(&config.base_dir)
        .state_dir(&config.settings.state_dir)
        .service(
            ringmaster::config::ServiceConfigBuilder::new(name, command)
                .port(port)
                .health_tcp(port),
        )
        .build()?;
    Ok(built.services[name].clone())
}

/// Why the bot closes.
enum Close {
    Quit,
    EndOfInput,
    Interrupted,
}

/// Reads stdin lines on a plain thread (blocking reads never run on an arbiter).
fn chat_lines() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Runs the cascade with its deadline; falls back to the sweep when no report came.
async fn close(orch: &Orchestrator) -> bool {
    println!(
        "bot: shutting down (deadline {} s)",
        SHUTDOWN_DEADLINE.as_secs()
    );
    let cascade = orch.shutdown(SHUTDOWN_DEADLINE);
    match tokio::time::timeout(SHUTDOWN_DEADLINE + REPORT_MARGIN, cascade).await {
        Ok(Ok(report)) => {
            // The report as `ringmaster up` prints it.
            print!("{report}");
            println!(
                "bot: shutdown {} in {} ms",
                if report.clean() { "clean" } else { "NOT clean" },
                report.elapsed.as_millis()
            );
            if report.clean() {
                return true;
            }
        }
        Ok(Err(e)) => println!("bot: shutdown failed: {e}"),
        Err(_) => println!("bot: no shutdown report after the deadline"),
    }
    println!("bot: sweeping every configured port and tag");
    match orch.sweep().await {
        Ok(sweep) => {
            for p in &sweep.stopped {
                println!("bot: swept {p}");
            }
            for r in &sweep.refused {
                println!("bot: refused: {r}");
            }
            sweep.ports_still_held.is_empty() && sweep.refused.is_empty()
        }
        Err(e) => {
            println!("bot: sweep failed: {e}");
            false
        }
    }
}

async fn run(config_path: String) -> ExitCode {
    let config = match Config::load(&config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bot: {e}");
            return ExitCode::from(2);
        }
    };
    let orch = match Orchestrator::start(config.clone(), Options::default()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bot: cannot start the orchestrator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let logs = LogBook::default().start();
    orch.subscribe_logs(logs.clone().recipient());
    orch.subscribe(Notifier.start().recipient());

    // One listener for the whole run, so that no signal is missed between waits.
    let interrupt = interrupted();
    tokio::pin!(interrupt);

    println!("bot: starting the services of {config_path}");
    let started = Instant::now();
    tokio::select! {
        res = orch.up(None) => match res {
            Ok(()) => println!("bot: every service is ready ({} ms)", started.elapsed().as_millis()),
            Err(e) => {
                println!("bot: start-up failed: {e}");
                close(&orch).await;
                return ExitCode::FAILURE;
            }
        },
        _ = &mut interrupt => {
            close(&orch).await;
            return ExitCode::FAILURE;
        }
    }

    let bot = ChatBot {
        orch: orch.clone(),
        logs,
        config: config.clone(),
    }
    .start();
    let mut chat = chat_lines();
    let why = loop {
        tokio::select! {
            line = chat.recv() => match line {
                None => break Close::EndOfInput,
                Some(line) if line.trim() == "quit" => break Close::Quit,
                Some(line) => match bot.send(Command(line)).await {
                    Ok(answer) => {
                        for l in answer {
                            println!("{l}");
                        }
                    }
                    Err(e) => println!("bot: {e}"),
                },
            },
            _ = &mut interrupt => break Close::Interrupted,
        }
    };
    match why {
        Close::Quit => println!("bot: quit"),
        Close::EndOfInput => println!("bot: end of input"),
        Close::Interrupted => println!("bot: interrupted"),
    }
    if close(&orch).await {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Ctrl-C, or (Unix) SIGTERM.
async fn interrupted() {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = ringmaster_examples::os::terminate_requested() => {}
    }
}

fn main() -> ExitCode {
    let config_path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/dashboard/ringmaster.toml".to_string());
    let system = System::new();
    let code = system.block_on(run(config_path));
    // Everything was stopped by the cascade (or the sweep) before this point:
    // futures still pending when the System stops would be dropped.
    System::current().stop();
    code
}
