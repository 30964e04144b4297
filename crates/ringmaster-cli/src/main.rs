//! `ringmaster`: the command-line tool. A thin layer over the `ringmaster` library
//! and the `ringmaster-os` layer: clap parses ([`cli`]), one module per command
//! does the work ([`cmd`]), the control socket connects `status`/`down`/`restart`/
//! `logs` to a running `up` ([`control`]), and [`output`] decides colours, live
//! lines and tables. Exit codes: 0 success, 1 failed, 2 usage or configuration,
//! 3 refused ([`exit`]). The reference is `docs/cli.md`.
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

mod cleanup;
mod cli;
mod cmd;
mod control;
mod exit;
mod logfiles;
mod metrics;
mod output;
mod platform;
mod stderr_log;
mod writer;

use cli::{Cli, Command, LogFormat};
use cmd::up::{Mode, Passthrough};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runs_services = match &cli.command {
        Command::Up(args) => !args.detach,
        Command::Serve(_) => true,
        _ => false,
    };
    platform::prepare(!runs_services);
    init_logging(&cli, runs_services);
    let style = output::Style::detect();
    let result = match &cli.command {
        Command::Up(args) => cmd::up::run(args, style, Mode::Foreground, &passthrough(&cli)),
        Command::Serve(args) => cmd::up::run(args, style, Mode::Detached, &passthrough(&cli)),
        Command::Down(args) => cmd::down::run(args, &style),
        Command::Status(args) => cmd::status::run(args, &style),
        Command::Top(args) => cmd::top::run(args, &style),
        Command::Restart(args) => cmd::restart::run(args),
        Command::Stop(args) => cmd::restart::stop(args),
        Command::Start(args) => cmd::restart::start(args),
        Command::Reload(args) => cmd::change::reload(args, &style),
        Command::Add(args) => cmd::change::add(args, &style),
        Command::Remove(args) => cmd::change::remove(args, &style),
        Command::Scale(args) => cmd::change::scale(args, &style),
        Command::Logs(args) => cmd::logs::run(args, &style),
        Command::Ports(args) => cmd::ports::run(args, &style),
        Command::KillPort(args) => cmd::kill_port::run(args, &style),
        Command::Validate(args) => cmd::validate::run(args),
    };
    if runs_services {
        stderr_log::flush(std::time::Duration::from_secs(2));
    }
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            if !failure.message.is_empty() {
                eprintln!("{}", failure.message);
            }
            ExitCode::from(failure.code)
        }
    }
}

/// Log levels: warnings by default, `-v` info, `-vv` debug, `-vvv` trace, `-q`
/// errors only; `RUST_LOG` wins when set. Logs go to stderr, as text or JSON; for
/// a command that runs services, through [`stderr_log`], which never blocks.
fn init_logging(cli: &Cli, runs_services: bool) {
    let level = if cli.quiet {
        "error"
    } else {
        match cli.verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref(), level);
    let builder = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .with_ansi(output::Style::detect_stderr());
    let _ = match (cli.log_format, runs_services) {
        (LogFormat::Text, false) => builder
            .with_writer(std::io::stderr)
            .finish()
            .with(filter)
            .try_init(),
        (LogFormat::Json, false) => builder
            .with_writer(std::io::stderr)
            .json()
            .finish()
            .with(filter)
            .try_init(),
        (LogFormat::Text, true) => builder
            .with_writer(stderr_log::NonBlockingStderr)
            .finish()
            .with(filter)
            .try_init(),
        (LogFormat::Json, true) => builder
            .with_writer(stderr_log::NonBlockingStderr)
            .json()
            .finish()
            .with(filter)
            .try_init(),
    };
}

/// The filter of ringmaster's own log lines: `RUST_LOG` when it is set and
/// parses (comma-separated `target=level` directives and a bare default level,
/// as `tracing_subscriber::filter::Targets` reads them), else `level` for all.
/// A filter without regular expressions: the regex engine behind `EnvFilter` was
/// about 0.6 MB of the binary's code (docs/benchmarks.md).
fn log_filter(rust_log: Option<&str>, level: &str) -> Targets {
    let everything = || Targets::new().with_default(level.parse().unwrap_or(LevelFilter::WARN));
    match rust_log.map(str::trim).filter(|v| !v.is_empty()) {
        None => everything(),
        Some(directives) => directives.parse().unwrap_or_else(|e| {
            eprintln!(
                "RUST_LOG={directives:?} is not a filter ringmaster reads ({e}); using {level}"
            );
            everything()
        }),
    }
}

/// The global flags, for the detached instance.
fn passthrough(cli: &Cli) -> Passthrough {
    let mut args = Vec::new();
    for _ in 0..cli.verbose {
        args.push("-v".to_string());
    }
    if cli.quiet {
        args.push("-q".to_string());
    }
    if cli.log_format == LogFormat::Json {
        args.push("--log-format".to_string());
        args.push("json".to_string());
    }
    Passthrough { args }
}

#[cfg(test)]
mod tests {
    use super::log_filter;
    use tracing_subscriber::filter::LevelFilter;

    #[test]
    fn rust_log_directives_win_and_an_unreadable_or_empty_one_falls_back_to_the_level() {
        let f = log_filter(Some("warn,ringmaster=debug"), "error");
        assert!(f.would_enable("ringmaster", &tracing::Level::DEBUG));
        assert!(!f.would_enable("ringmaster", &tracing::Level::TRACE));
        assert!(!f.would_enable("awc", &tracing::Level::INFO));
        assert!(f.would_enable("awc", &tracing::Level::WARN));
        for unset in [None, Some(""), Some("  "), Some("[span{x=1}]=debug")] {
            let f = log_filter(unset, "info");
            assert!(
                f.would_enable("ringmaster", &tracing::Level::INFO),
                "{unset:?}"
            );
            assert!(
                !f.would_enable("ringmaster", &tracing::Level::DEBUG),
                "{unset:?}"
            );
        }
        assert_eq!(
            log_filter(None, "trace").default_level(),
            Some(LevelFilter::TRACE)
        );
    }
}
