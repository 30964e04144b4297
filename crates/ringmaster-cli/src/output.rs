//! Human output: whether to use colour and live lines (a terminal, and no
//! `NO_COLOR`), one colour per service, tables, durations, and the shutdown report.
use std::io::IsTerminal;
use std::time::Duration;

use ringmaster::messages::ShutdownReport;
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

/// A short human duration: `850ms`, `12.3s`, `5m12s`, `3h04m`, `2d03h`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    if s < 60 {
        return format!("{:.1}s", d.as_secs_f64());
    }
    if s < 3600 {
        return format!("{}m{:02}s", s / 60, s % 60);
    }
    if s < 86400 {
        return format!("{}h{:02}m", s / 3600, (s % 3600) / 60);
    }
    format!("{}d{:02}h", s / 86400, (s % 86400) / 3600)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A table with left-aligned columns separated by two spaces; the header is bold
/// when colour is on.
pub fn table(style: &Style, header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| -> String {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i].saturating_sub(cell.chars().count()) + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = String::new();
    let head = line(header.iter().map(|h| h.to_string()).collect());
    out.push_str(&style.paint("1", &head));
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.clone()));
        out.push('\n');
    }
    out
}

/// The `status` table: service, state, pid, port, health, restarts, uptime.
pub fn status_table(style: &Style, statuses: &[ServiceStatus], now_ms: u64) -> String {
    let rows: Vec<Vec<String>> = statuses
        .iter()
        .map(|s| {
            let state = state_name(s);
            let mut state_cell = state.clone();
            if let Some(reason) = &s.reason {
                state_cell = format!("{state} ({reason})");
            }
            let running = matches!(
                s.state,
                ringmaster::ServiceState::Starting
                    | ringmaster::ServiceState::Ready
                    | ringmaster::ServiceState::Unhealthy
            );
            vec![
                s.name.clone(),
                state_cell,
                s.pid.map_or("-".into(), |p| p.to_string()),
                s.port.map_or("-".into(), |p| p.to_string()),
                s.health.clone().unwrap_or_else(|| "-".into()),
                s.restarts.to_string(),
                if running && s.since_ms > 0 {
                    human_duration(Duration::from_millis(now_ms.saturating_sub(s.since_ms)))
                } else {
                    "-".into()
                },
            ]
        })
        .collect();
    table(
        style,
        &[
            "SERVICE", "STATE", "PID", "PORT", "HEALTH", "RESTARTS", "UPTIME",
        ],
        &rows,
    )
}

/// The `status --json` state name of a service (`ready`, `failed`, ...).
pub fn state_name(s: &ServiceStatus) -> String {
    serde_json::to_value(s.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{:?}", s.state).to_lowercase())
}

/// The shutdown report, one line per service: stopped gracefully, needed kill
/// (naming who), survivors, a plugin that did not answer, a stop that failed, and
/// whether its port is free (naming who was stopped on it, or who holds it and
/// was left alone).
pub fn shutdown_report(style: &Style, report: &ShutdownReport) -> String {
    let mut out = String::new();
    let width = report
        .services
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0);
    let verdict = if report.clean() {
        style.paint("32", "stopped")
    } else {
        style.paint("31", "stopped with leftovers")
    };
    out.push_str(&format!(
        "{verdict} in {}{}\n",
        human_duration(report.elapsed),
        if report.deadline_hit {
            " (deadline passed: what was left was killed)"
        } else {
            ""
        }
    ));
    for s in &report.services {
        let r = &s.report;
        let list = |v: &[ringmaster_os::ProcessBrief]| {
            v.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut what = if let Some(no_answer) = &s.no_answer {
            style.paint("31", no_answer)
        } else if let Some(error) = &s.stop_error {
            style.paint("31", error)
        } else if !r.survivors.is_empty() {
            style.paint("31", &format!("still alive: {}", list(&r.survivors)))
        } else if !r.killed.is_empty() {
            style.paint("33", &format!("needed kill: {}", list(&r.killed)))
        } else if r.signalled.is_empty() {
            match &s.stop_command {
                Some(c) if c.stopped_service => {
                    format!(
                        "stopped by its stop command in {}",
                        human_duration(c.elapsed)
                    )
                }
                _ => "was not running".to_string(),
            }
        } else {
            format!(
                "stopped gracefully ({} process{})",
                r.signalled.len(),
                if r.signalled.len() == 1 { "" } else { "es" }
            )
        };
        if !r.signalled.is_empty() {
            what.push_str(&format!(" in {}", human_duration(r.elapsed)));
        }
        if let Some(c) = s.stop_command.as_ref().filter(|c| !c.stopped_service) {
            // The command did not end the service: say why the signals came.
            let text = format!(" (after {c})");
            what.push_str(&if c.succeeded() {
                text
            } else {
                style.paint("33", &text)
            });
        }
        let freed = if s.port_stopped.is_empty() {
            String::new()
        } else {
            format!(" by stopping {}", list(&s.port_stopped))
        };
        match s.port_free {
            Some(true) if freed.is_empty() => what.push_str("; port free"),
            Some(true) => what.push_str(&format!("; port freed{freed}")),
            Some(false) => {
                let held = if s.port_refused.is_empty() {
                    "port still held".to_string()
                } else {
                    let holders = s
                        .port_refused
                        .iter()
                        .map(holder)
                        .collect::<Vec<_>>()
                        .join(", ");
                    format!("port held by {holders}, not ours: left alone")
                };
                what.push_str(&format!("; {}", style.paint("31", &held)));
                if !freed.is_empty() {
                    what.push_str(&format!(" (after stopping{freed})"));
                }
            }
            None => {}
        }
        out.push_str(&format!("  {:width$}  {what}\n", s.name));
    }
    out
}

/// A holder of a port that may not be stopped: `4242 (python, /usr/bin/python3, user bob)`.
fn holder(r: &ringmaster_os::Refusal) -> String {
    let mut parts = vec![r.name.clone()];
    if let Some(exe) = &r.exe {
        parts.push(exe.display().to_string());
    }
    if let Some(user) = &r.user {
        parts.push(format!("user {user}"));
    }
    format!("{} ({})", r.pid, parts.join(", "))
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
        let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
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
            reason: None,
            pid: Some(4121),
            port: Some(8000),
            restarts: 0,
            last_exit: None,
            since_ms: 1_000,
            health: Some("failing: GET http://127.0.0.1:8000/health: connection refused".into()),
            health_latency_ms: Some(1),
            plugin: false,
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
