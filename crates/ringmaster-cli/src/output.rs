//! Human output: whether to use colour and live lines (a terminal, and no
//! `NO_COLOR`), one colour per service, tables, durations, and the shutdown report.
use std::io::IsTerminal;
use std::time::Duration;

use ringmaster::messages::ShutdownReport;
use ringmaster::text::{Paint, Tone};
use ringmaster::ServiceStatus;

/// How to write to stdout.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    /// ANSI colours (stdout is a terminal and `NO_COLOR` is unset or empty).
    pub color: bool,
    /// Live redrawn lines (stdout is a terminal).
    pub live: bool,
}

impl Style {
    /// Decides from stdout and the environment.
    pub fn detect() -> Style {
        let tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: tty && !no_color,
            live: tty,
        }
    }

    /// Whether stderr takes colour (a terminal, and no `NO_COLOR`).
    pub fn detect_stderr() -> bool {
        std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
    }

    /// Plain output: no colour, no live lines.
    pub fn plain() -> Style {
        Style {
            color: false,
            live: false,
        }
    }

    /// `text` in colour `code` (an SGR parameter such as `"32"`), or plain.
    pub fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// The library's text in the CLI's colours.
impl Paint for Style {
    fn paint(&self, tone: Tone, text: &str) -> String {
        let code = match tone {
            Tone::Good => "32",
            Tone::Warning => "33",
            Tone::Bad => "31",
            Tone::Header => "1",
        };
        Style::paint(self, code, text)
    }
}

/// Colours given to services in turn (cyan, yellow, green, magenta, blue, and the bright ones).
const SERVICE_COLORS: [&str; 10] = ["36", "33", "32", "35", "34", "96", "93", "92", "95", "94"];

/// The colour of the `index`-th service.
pub fn service_color(index: usize) -> &'static str {
    SERVICE_COLORS[index % SERVICE_COLORS.len()]
}

/// The SGR colour of a state name.
pub fn state_color(state: &str) -> &'static str {
    match state {
        "ready" => "32",
        "starting" | "waiting" | "stopping" => "33",
        "failed" | "unhealthy" => "31",
        _ => "2",
    }
}

/// Parses a duration as the configuration does (`"500ms"`, `"5s"`, `"1m30s"`,
/// [`ringmaster::config::parse_duration`]); on the command line a plain number
/// also means seconds (`--grace 2`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        if let Ok(secs) = t.parse::<f64>() {
            return Duration::try_from_secs_f64(secs)
                .ok()
                .filter(|d| *d <= ringmaster::config::MAX_DURATION)
                .ok_or_else(|| {
                    format!("invalid duration \"{text}\": it is too long (at most a year)")
                });
        }
    }
    ringmaster::config::parse_duration(t)
}

/// A short human duration (the library's, so that the CLI and a bot print the same).
pub use ringmaster::text::human_duration;

/// Milliseconds since the Unix epoch, now.
pub use ringmaster::text::now_ms;

/// A table with left-aligned columns separated by two spaces; the header is bold
/// when colour is on.
pub fn table(style: &Style, header: &[&str], rows: &[Vec<String>]) -> String {
    ringmaster::text::table(style, header, rows)
}

/// The `status` table: service, state, pid, port, CPU, memory, health, restarts,
/// uptime — the library's [`ringmaster::StatusTable`], which a bot prints too.
pub fn status_table(style: &Style, statuses: &[ServiceStatus], now_ms: u64) -> String {
    ringmaster::StatusTable(statuses).render(style, now_ms)
}

/// The `status --json` state name of a service (`ready`, `failed`, ...).
pub fn state_name(s: &ServiceStatus) -> String {
    s.state.to_string()
}

/// The shutdown report, one line per service — the library's
/// [`ShutdownReport::render`], which its `Display` prints without colour.
pub fn shutdown_report(style: &Style, report: &ShutdownReport) -> String {
    report.render(style)
}

/// Prefixes service output with the service's name, padded to the longest name,
/// in the service's colour.
#[derive(Clone, Debug)]
pub struct Prefixer {
    style: Style,
    names: Vec<String>,
    width: usize,
}

impl Prefixer {
    /// For these services (their order fixes their colours).
    pub fn new(style: Style, names: Vec<String>) -> Prefixer {
        let width = ringmaster::text::widest(names.iter().map(String::as_str));
        Prefixer {
            style,
            names,
            width,
        }
    }

    /// `name | line`, coloured.
    pub fn line(&self, name: &str, line: &str) -> String {
        let index = self
            .names
            .iter()
            .position(|n| n == name)
            .unwrap_or(self.names.len());
        let label = format!("{name:width$} |", width = self.width);
        format!("{} {line}", self.style.paint(service_color(index), &label))
    }

    /// A line from ringmaster itself, aligned with the services' lines.
    pub fn own(&self, line: &str) -> String {
        let width = self.width.max("ringmaster".len());
        let label = format!("{:width$} |", "ringmaster");
        format!("{} {line}", self.style.paint("1", &label))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn durations_print() {
        assert_eq!(human_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(human_duration(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(human_duration(Duration::from_secs(312)), "5m12s");
        assert_eq!(human_duration(Duration::from_secs(3 * 3600 + 240)), "3h04m");
    }

    #[test]
    fn a_starting_service_shows_its_failing_probe() {
        let s = ServiceStatus {
            name: "api".into(),
            state: ringmaster::ServiceState::Starting,
            pid: Some(4121),
            root_pid: Some(4120),
            cpu_percent: Some(3.24),
            rss_bytes: Some(13_002_342),
            cpu_seconds: Some(1.5),
            port: Some(8000),
            since_ms: 1_000,
            health: Some("failing: GET http://127.0.0.1:8000/health: connection refused".into()),
            health_latency_ms: Some(1),
            ..ServiceStatus::default()
        };
        let t = status_table(&Style::plain(), &[s], 3_500);
        let mut lines = t.lines();
        let header = lines.next().expect("a header");
        let row = lines.next().expect("a row");
        let col = header.find("HEALTH").expect("a HEALTH column");
        assert_eq!(
            &row[col..],
            "failing: GET http://127.0.0.1:8000/health: connection refused  0         2.5s",
            "{t}"
        );
        let cpu = header.find("CPU").expect("a CPU column");
        assert_eq!(&row[cpu..col], "3.2%  12.4M  ", "{t}");
    }

    #[test]
    fn a_service_with_no_figures_shows_dashes_for_cpu_and_memory() {
        let s = ServiceStatus {
            name: "web".into(),
            state: ringmaster::ServiceState::Stopped,
            since_ms: 1_000,
            ..ServiceStatus::default()
        };
        let t = status_table(&Style::plain(), &[s], 3_500);
        assert_eq!(
            t.lines().collect::<Vec<_>>(),
            [
                "SERVICE  STATE    PID  PORT  CPU  MEM  HEALTH  RESTARTS  UPTIME",
                "web      stopped  -    -     -    -    -       0         -",
            ],
            "{t}"
        );
    }

    #[test]
    fn a_plugin_that_did_not_answer_is_named() {
        use ringmaster::messages::ServiceStopReport;
        let report = ShutdownReport {
            services: vec![ServiceStopReport {
                name: "cache".into(),
                report: ringmaster_os::StopReport::default(),
                port_free: Some(true),
                deadline_cut: false,
                no_answer: Some(
                    "plugin `cache` did not answer Stop within 15s; it may still be running".into(),
                ),
                port_stopped: Vec::new(),
                port_refused: Vec::new(),
                stop_error: None,
                stop_command: None,
                plugin: true,
            }],
            elapsed: Duration::from_secs(15),
            deadline_hit: false,
        };
        assert_eq!(
            shutdown_report(&Style::plain(), &report),
            "stopped with leftovers in 15.0s\n  cache  plugin `cache` did not answer Stop within 15s; it may still be running; port free\n"
        );
    }

    #[test]
    fn a_failed_stop_and_the_holders_of_a_port_are_named() {
        use ringmaster::messages::ServiceStopReport;
        use ringmaster_os::authz::RefusalReason;
        use ringmaster_os::{ProcessBrief, Refusal};
        let refusal = Refusal {
            pid: 4242,
            name: "python".into(),
            exe: Some("/usr/bin/python3".into()),
            user: Some("bob".into()),
            port: Some(8000),
            service: Some("web".into()),
            reason: RefusalReason::NotInAllowList,
        };
        let report = ShutdownReport {
            services: vec![
                ServiceStopReport {
                    name: "web".into(),
                    port_free: Some(false),
                    port_refused: vec![refusal],
                    ..Default::default()
                },
                ServiceStopReport {
                    name: "api".into(),
                    port_free: Some(true),
                    port_stopped: vec![ProcessBrief {
                        pid: 4243,
                        name: "node".into(),
                    }],
                    ..Default::default()
                },
                ServiceStopReport {
                    name: "db".into(),
                    stop_error: Some("the stop failed: cannot read /proc".into()),
                    ..Default::default()
                },
            ],
            elapsed: Duration::from_millis(40),
            deadline_hit: false,
        };
        assert!(!report.clean());
        assert!(!report.services[2].graceful());
        assert_eq!(
            shutdown_report(&Style::plain(), &report),
            "stopped with leftovers in 40ms\n\
             \x20 web  was not running; port held by 4242 (python, /usr/bin/python3, user bob), not ours: left alone\n\
             \x20 api  was not running; port freed by stopping 4243 (node)\n\
             \x20 db   the stop failed: cannot read /proc\n"
        );
        // Only the error makes it not clean.
        let mut fine = report.clone();
        fine.services.truncate(0);
        fine.services.push(ServiceStopReport {
            name: "db".into(),
            ..Default::default()
        });
        assert!(fine.clean());
        fine.services[0].stop_error = Some("x".into());
        assert!(!fine.clean());
    }

    #[test]
    fn what_a_stop_command_did_is_named() {
        use ringmaster::messages::{ServiceStopReport, StopCommandOutcome, StopCommandReport};
        use ringmaster_os::ProcessBrief;
        let command = |command: &str, outcome, stopped_service| StopCommandReport {
            command: command.into(),
            outcome,
            elapsed: Duration::from_millis(48),
            stopped_service,
        };
        let report = ShutdownReport {
            services: vec![
                ServiceStopReport {
                    name: "redis".into(),
                    port_free: Some(true),
                    stop_command: Some(command(
                        "redis-cli shutdown",
                        StopCommandOutcome::Exited { code: Some(0) },
                        true,
                    )),
                    ..Default::default()
                },
                ServiceStopReport {
                    name: "stuck".into(),
                    report: ringmaster_os::StopReport {
                        elapsed: Duration::from_millis(2100),
                        signalled: vec![ProcessBrief {
                            pid: 41,
                            name: "sh".into(),
                        }],
                        killed: vec![ProcessBrief {
                            pid: 41,
                            name: "sh".into(),
                        }],
                        survivors: Vec::new(),
                    },
                    stop_command: Some(command(
                        "sleep 600",
                        StopCommandOutcome::TimedOut {
                            after: Duration::from_secs(2),
                        },
                        false,
                    )),
                    ..Default::default()
                },
            ],
            elapsed: Duration::from_millis(4300),
            deadline_hit: false,
        };
        assert!(report.clean());
        assert_eq!(
            shutdown_report(&Style::plain(), &report),
            "stopped in 4.3s\n\
             \x20 redis  stopped by its stop command in 48ms; port free\n\
             \x20 stuck  needed kill: 41 (sh) in 2.1s (after stop command `sleep 600` timed out after 2.0s and was killed)\n"
        );
    }

    #[test]
    fn plain_style_has_no_escapes() {
        let t = table(
            &Style::plain(),
            &["A", "BB"],
            &[vec!["x".into(), "y".into()]],
        );
        assert!(!t.contains('\x1b'));
        assert_eq!(t, "A  BB\nx  y\n");
    }
}
