//! The command line, as clap derive types: every command, option and its help text
//! with an example. Exit codes are documented in `docs/cli.md`.
use std::path::PathBuf;

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The default configuration file.
pub const DEFAULT_CONFIG: &str = "ringmaster.toml";

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the operation failed (startup failed, something is left running, no instance runs)
  2  usage or configuration error
  3  kill-port refused: a holder of the port is not allowed (nothing was touched)";

/// ringmaster: start a set of local services in dependency order, watch them, and
/// stop them leaving no process behind and every port free.
#[derive(Debug, Parser)]
#[command(name = "ringmaster", version, about = "Start local services in dependency order, watch them, and stop them leaving no process behind and every port free.", after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Format of ringmaster's own log lines on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

/// Format of log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `-f FILE`, shared by the commands that read a configuration.
#[derive(Clone, Debug, Args)]
pub struct ConfigArg {
    /// The configuration file.
    #[arg(short = 'f', long = "file", value_name = "FILE", default_value = DEFAULT_CONFIG)]
    pub file: PathBuf,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the services in dependency order and stay in the foreground.
    #[command(after_help = "\
Examples:
  ringmaster up                       start every service, Ctrl-C stops them all
  ringmaster up frontend              start frontend and what it depends on
  ringmaster up -d -f dev.toml        start in the background, return once all are ready

Exit: 0 after a clean stop (or, with -d, once every service is ready); 1 when startup
failed (what was started is stopped again) or another instance runs; 2 config error.")]
    Up(UpArgs),
    /// Stop a running `up`; with none running, clean up what a crashed one left.
    #[command(after_help = "\
Example:
  ringmaster down -f ringmaster.toml

Exit: 0 when every service's processes are gone and every port is free; 1 otherwise,
naming what is left.")]
    Down(ConfigArg),
    /// Show each service's state, pid, port, CPU, memory, health, restarts and uptime.
    #[command(after_help = "\
Examples:
  ringmaster status
  ringmaster status --json | jq '.[] | select(.state != \"ready\")'

Exit: 0; 1 when no instance runs.")]
    Status(StatusArgs),
    /// A live full-screen view: state, CPU, memory and output of every service.
    #[command(after_help = "\
Examples:
  ringmaster top                      follow the running instance (q quits)
  ringmaster top --once               print one frame as text and exit

Keys: up/down or j/k select, Home/End jump, r restarts the selected service,
s stops it (or starts it when it is stopped or failed), / filters by name
(Enter keeps, Esc clears), q or Ctrl-C quits.

Exit: 0; 1 when no instance runs; 2 when stdout is not a terminal (without --once).")]
    Top(TopArgs),
    /// Stop and start one service of the running instance.
    #[command(after_help = "\
Example:
  ringmaster restart api

Exit: 0 once it is running again; 1 when it failed or no instance runs.")]
    Restart(RestartArgs),
    /// Stop one service of the running instance (and what depends on it); it stays stopped.
    #[command(after_help = "\
Example:
  ringmaster stop worker              stop worker (and its dependents) until `start worker`

It is not restarted by its restart policy, and `up`'s other services run on.
Exit: 0 once it is stopped; 1 when no instance runs; 2 for an unknown service.")]
    Stop(RestartArgs),
    /// Start one stopped service of the running instance again (with what it needs).
    #[command(after_help = "\
Example:
  ringmaster start worker

What it depends on starts first when it does not run; the dependents that `stop`
stopped with it start again after it.
Exit: 0 once it is ready; 1 when it failed or no instance runs; 2 for an unknown service.")]
    Start(RestartArgs),
    /// Apply a changed configuration to the running instance (also: SIGHUP to `up`).
    #[command(after_help = "\
Examples:
  ringmaster reload                   apply ./ringmaster.toml to the running instance
  ringmaster reload -f dev.toml
  ringmaster reload --dry-run         what it would do, changing nothing

Added services start, removed ones stop (what depends on them first), changed ones
restart (or take the change in place when only health, restart or stop changed),
unchanged ones are left alone. A reload that comes while `up` is still starting
waits until the start is over.

Exit: 0 once what it started is ready; 1 when a service it started failed, or no
instance runs; 2 when the file is invalid or the change cannot be made (nothing
changed).")]
    Reload(ReloadArgs),
    /// Add one service to the running instance (not written to the file).
    #[command(after_help = "\
Examples:
  ringmaster add worker --command 'python worker.py' --depends-on api
  ringmaster add cache --json '{\"command\": \"redis-server --port 6380\", \"port\": 6380}'

The service takes the keys of a [services.NAME] table; `--json` gives any of them,
the flags the common ones. A later `reload` leaves it alone; `remove` stops it.

Exit: 0 once it is ready; 1 when it failed or no instance runs; 2 when it is
invalid or cannot be added (nothing changed).")]
    Add(AddArgs),
    /// Stop one service of the running instance and forget it.
    #[command(after_help = "\
Example:
  ringmaster remove worker

Exit: 0 once it is stopped; 1 when no instance runs; 2 when another service
depends on it or there is no such service (nothing changed).")]
    Remove(RemoveArgs),
    /// Run N replicas of a service that has `replicas` (its balancer keeps its port).
    #[command(after_help = "\
Examples:
  ringmaster scale api 4              start two more replicas of a 2-replica api
  ringmaster scale api 1              drain and stop all but api#0

New replicas start under the lowest free numbers and take connections once ready;
surplus ones (the highest numbers) stop taking new connections, finish those in
flight (up to their stop timeout), then stop. What depends on the service is not
touched. A later `reload` sets the count the file gives.

Exit: 0 once the new replicas are ready; 1 when one failed, or no instance runs;
2 when the service has no `replicas`, is unknown, or N is below its min_ready.")]
    Scale(ScaleArgs),
    /// Show the output of the services (from the running instance, or the log files).
    #[command(after_help = "\
Examples:
  ringmaster logs                     the last 100 lines of every service
  ringmaster logs api -f -n 20        the last 20 lines of api, then follow

Exit: 0; 1 when there is nothing to show.")]
    Logs(LogsArgs),
    /// List who listens on which port: pid, name, exe, user.
    #[command(after_help = "\
Examples:
  ringmaster ports                    every listening socket
  ringmaster ports 3000 8000 --json

Exit: 0.")]
    Ports(PortsArgs),
    /// Stop the process trees holding a port; only authorized holders.
    #[command(after_help = "\
Examples:
  ringmaster kill-port 3000 --dry-run
  ringmaster kill-port 8000 --allow python --allow uvicorn --grace 5s

By default only processes tagged with this project (the state directory of
./ringmaster.toml, else ./.ringmaster) are allowed. Also never: another user's
processes, PID 1, ringmaster itself or its ancestors.

Exit: 0 when the port is free; 1 when it is still held; 3 when a holder is not
allowed (nothing was touched).")]
    KillPort(KillPortArgs),
    /// Check a configuration; report every error with file:line:col.
    #[command(after_help = "\
Example:
  ringmaster validate -f ringmaster.toml

Exit: 0 when valid (prints `ok: N services`); 2 with the errors.")]
    Validate(ConfigArg),
    /// Internal: the detached instance behind `up -d`.
    #[command(name = "__serve", hide = true)]
    Serve(UpArgs),
}

/// `up`.
#[derive(Clone, Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Detach: run in the background, return once every service is ready.
    #[arg(short, long)]
    pub detach: bool,
    /// With -d: give up waiting after DUR (exit 1, naming who is not ready and why);
    /// the instance keeps running, `ringmaster down` stops it. Default: wait.
    #[arg(long, value_name = "DUR", requires = "detach", value_parser = crate::output::parse_duration)]
    pub wait_timeout: Option<Duration>,
    /// Start only these services (and what they depend on).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// `status`.
#[derive(Clone, Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print the status as JSON (schema in docs/cli.md).
    #[arg(long)]
    pub json: bool,
}

/// `top`.
#[derive(Clone, Debug, Args)]
pub struct TopArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print one frame as plain text and exit (for scripts; no terminal needed).
    #[arg(long)]
    pub once: bool,
}

/// `restart`.
#[derive(Clone, Debug, Args)]
pub struct RestartArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The service.
    pub service: String,
}

/// `reload`.
#[derive(Clone, Debug, Args)]
pub struct ReloadArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only say what would change: restart, add, remove or update what; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `add`.
#[derive(Clone, Debug, Args)]
pub struct AddArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Its name.
    pub name: String,
    /// The command (the `command` key).
    #[arg(long, value_name = "CMD")]
    pub command: Option<String>,
    /// Its port (the `port` key).
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// A service it depends on (condition `ready`); repeatable.
    #[arg(long = "depends-on", value_name = "SERVICE")]
    pub depends_on: Vec<String>,
    /// Any keys of a [services.NAME] table, as a JSON object; the flags win.
    #[arg(long, value_name = "JSON")]
    pub json: Option<String>,
}

/// `remove`.
#[derive(Clone, Debug, Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The service to stop and forget.
    pub name: String,
}

/// `scale`.
#[derive(Clone, Debug, Args)]
pub struct ScaleArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The replicated service.
    pub name: String,
    /// How many replicas it runs from now on (at least 1, and at least its min_ready).
    #[arg(value_parser = clap::value_parser!(u32).range(1..))]
    pub replicas: u32,
}

/// `logs`.
#[derive(Clone, Debug, Args)]
pub struct LogsArgs {
    /// The configuration file (here without `-f`, which means follow).
    #[arg(long = "file", value_name = "FILE", default_value = DEFAULT_CONFIG)]
    pub file: PathBuf,
    /// Only this service.
    pub service: Option<String>,
    /// Keep printing new lines as they come.
    #[arg(short, long)]
    pub follow: bool,
    /// How many past lines to show per service.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 100)]
    pub lines: usize,
}

/// `ports`.
#[derive(Clone, Debug, Args)]
pub struct PortsArgs {
    /// Only these ports.
    #[arg(value_name = "PORT")]
    pub ports: Vec<u16>,
    /// Print JSON (schema in docs/cli.md).
    #[arg(long)]
    pub json: bool,
}

/// `kill-port`.
#[derive(Clone, Debug, Args)]
pub struct KillPortArgs {
    /// The port to free.
    pub port: u16,
    /// Also allow holders with this process name, exe file name or the basename of its first argument.
    #[arg(long, value_name = "NAME")]
    pub allow: Vec<String>,
    /// How long to wait after the stop signal before killing.
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = crate::output::parse_duration)]
    pub grace: std::time::Duration,
    /// Only show who would be stopped, or who is refused.
    #[arg(long)]
    pub dry_run: bool,
}
