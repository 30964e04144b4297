//! Semantic checks shared by the file loader and the builder: names, commands,
//! ports, probes, dependencies (unknown, duplicate, cycles), and the start order.
//! Where an error points is asked from a locator, so the same checks give
//! `file:line:col` for a file and `<builder>` for a configuration built in code.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use super::{Config, ConfigError, Probe, ServiceConfig, REPLICA_MARK};

/// The part of the configuration an error points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Spot {
    /// The service's name (its table header).
    Name,
    Command,
    Port,
    /// The n-th entry of `depends_on`.
    Dependency(usize),
    /// The probe kind inside `health`.
    HealthProbe,
    HealthInterval,
    HealthTimeout,
    HealthFailures,
    HealthStartInterval,
    InstallCommand,
    ReadyTimeout,
    /// `stop.command`.
    StopCommand,
    /// The `install` table.
    Install,
    PidFile,
    Replicas,
    MinReady,
    ReplicaPorts,
    /// A key of `[settings]`.
    Setting(&'static str),
}

/// Where an error is: file, 1-based line and column (0 and 0 when unknown).
pub(crate) type Place = (PathBuf, usize, usize);

/// Answers where a part of a service (or a setting, with an empty service name) is.
pub(crate) type Locate<'a> = dyn Fn(&str, Spot) -> Place + 'a;

/// Runs every semantic check and returns all errors found. Dependencies on
/// `external` names (services provided elsewhere, such as plugins) are accepted.
pub(crate) fn validate(
    config: &Config,
    external: &BTreeSet<String>,
    locate: &Locate<'_>,
) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut err = |service: &str, spot: Spot, message: String| {
        let (file, line, col) = locate(service, spot);
        errors.push(ConfigError {
            file,
            line,
            col,
            message,
        });
    };

    let s = &config.settings;
    if s.shutdown_timeout.is_zero() {
        err(
            "",
            Spot::Setting("shutdown_timeout"),
            "settings: shutdown_timeout must be greater than 0".into(),
        );
    }
    if s.health_interval.is_zero() {
        err(
            "",
            Spot::Setting("health_interval"),
            "settings: health_interval must be greater than 0".into(),
        );
    }
    if s.log_max_bytes == 0 {
        err(
            "",
            Spot::Setting("log_max_bytes"),
            "settings: log_max_bytes must be at least 1".into(),
        );
    }

    for (name, svc) in &config.services {
        check_service(name, svc, &mut err);
        let default_pid_file = s.state_dir.join(format!("{name}.pid"));
        check_replicas(name, svc, &default_pid_file, &mut err);
    }

    // Dependencies: unknown, listed twice.
    for (name, svc) in &config.services {
        let mut seen = BTreeSet::new();
        for (i, dep) in svc.depends_on.iter().enumerate() {
            if !seen.insert(dep.service.as_str()) {
                err(
                    name,
                    Spot::Dependency(i),
                    format!("service `{name}` lists dependency `{}` twice", dep.service),
                );
            } else if !config.services.contains_key(&dep.service)
                && !external.contains(&dep.service)
            {
                err(
                    name,
                    Spot::Dependency(i),
                    format!(
                        "service `{name}` depends on unknown service `{}`{}",
                        dep.service,
                        did_you_mean(&dep.service, config.services.keys().chain(external))
                    ),
                );
            }
        }
    }

    for (from, index, cycle) in find_cycles(&config.services) {
        let message = if cycle.len() == 2 {
            format!(
                "service `{from}` depends on itself (dependency cycle: {})",
                cycle.join(" -> ")
            )
        } else {
            format!("dependency cycle: {}", cycle.join(" -> "))
        };
        err(&from, Spot::Dependency(index), message);
    }

    // Two services on one port: the error goes to the later one in the file.
    let mut by_port: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    for (name, svc) in &config.services {
        if let Some(port) = svc.port.filter(|p| *p != 0) {
            by_port.entry(port).or_default().push(name);
        }
    }
    // A replica_ports range that holds another service's port: a replica could
    // be given it.
    for (name, svc) in &config.services {
        let Some((first, last)) = svc.replica_ports else {
            continue;
        };
        if svc.replicas.is_none() || svc.port.is_none() {
            continue; // an error of its own already (`check_replicas`)
        }
        let clash = by_port
            .iter()
            .find(|(p, owners)| (first..=last).contains(*p) && !owners.contains(&name.as_str()));
        if let Some((port, owners)) = clash {
            err(
                name,
                Spot::ReplicaPorts,
                format!(
                    "service `{name}`: replica_ports \"{first}-{last}\" holds port {port}, which `{}` uses",
                    owners[0]
                ),
            );
        }
    }
    for (port, names) in by_port.into_iter().filter(|(_, n)| n.len() > 1) {
        let mut placed: Vec<((usize, usize), &str)> = names
            .into_iter()
            .map(|n| {
                let (_, line, col) = locate(n, Spot::Port);
                ((line, col), n)
            })
            .collect();
        placed.sort_by_key(|(place, _)| *place);
        let first = placed[0].1;
        for (_, name) in &placed[1..] {
            err(
                name,
                Spot::Port,
                format!("port {port} is used by both `{first}` and `{name}`"),
            );
        }
    }
    errors
}

/// Checks on one service alone.
fn check_service(name: &str, svc: &ServiceConfig, err: &mut impl FnMut(&str, Spot, String)) {
    if !is_service_name(name) {
        err(
            name,
            Spot::Name,
            format!("invalid service name `{name}` (expected letters, digits, `-`, `_` and `.`, not starting with `.` or `-`)"),
        );
    }
    if svc.command.trim().is_empty() {
        err(
            name,
            Spot::Command,
            format!("service `{name}` has an empty command"),
        );
    }
    if svc.ready_timeout.is_zero() {
        err(
            name,
            Spot::ReadyTimeout,
            format!("service `{name}`: ready_timeout must be greater than 0"),
        );
    }
    if svc.port == Some(0) {
        err(
            name,
            Spot::Port,
            format!("service `{name}`: port 0 is out of range (1-65535)"),
        );
    }
    if let Some(health) = &svc.health {
        match &health.probe {
            Probe::Http { url } => {
                // The probe's client (awc) is built without TLS: an https URL could
                // never succeed, so the service would never be ready.
                let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
                if scheme.as_deref() == Some("https") {
                    err(
                        name,
                        Spot::HealthProbe,
                        format!("service `{name}`: health url \"{url}\": https is not supported: ringmaster's HTTP probe has no TLS; use http:// on loopback, or a tcp/exec probe"),
                    );
                } else if url
                    .strip_prefix("http://")
                    .is_none_or(|r| r.is_empty() || r.starts_with('/'))
                {
                    err(
                        name,
                        Spot::HealthProbe,
                        format!("service `{name}`: health url \"{url}\" is not an http:// URL with a host"),
                    );
                }
            }
            Probe::Tcp { port } if *port == 0 => {
                err(
                    name,
                    Spot::HealthProbe,
                    format!("service `{name}`: tcp probe port 0 is out of range (1-65535)"),
                );
            }
            Probe::Tcp { .. } => {}
            Probe::Exec { command } if command.trim().is_empty() => {
                err(
                    name,
                    Spot::HealthProbe,
                    format!("service `{name}`: the exec probe's command is empty"),
                );
            }
            Probe::Exec { .. } => {}
            Probe::Notify if !cfg!(target_os = "linux") => {
                err(
                    name,
                    Spot::HealthProbe,
                    format!("service `{name}`: the notify probe (sd_notify) is available on Linux only; use an http, tcp, exec or log probe"),
                );
            }
            Probe::Notify => {}
            Probe::Log { regex } => {
                if let Err(e) = regex_lite::Regex::new(regex) {
                    let text = e.to_string();
                    let last = text.lines().last().unwrap_or_default();
                    let first = last.strip_prefix("error: ").unwrap_or(last);
                    err(
                        name,
                        Spot::HealthProbe,
                        format!("service `{name}`: invalid log regex \"{regex}\": {first}"),
                    );
                }
            }
        }
        if health.interval.is_zero() {
            err(
                name,
                Spot::HealthInterval,
                format!("service `{name}`: health interval must be greater than 0"),
            );
        }
        if health.timeout.is_zero() {
            err(
                name,
                Spot::HealthTimeout,
                format!("service `{name}`: health timeout must be greater than 0"),
            );
        }
        if health.failures == 0 {
            err(
                name,
                Spot::HealthFailures,
                format!("service `{name}`: health failures must be at least 1"),
            );
        }
        if health.start_interval.is_zero() {
            err(
                name,
                Spot::HealthStartInterval,
                format!("service `{name}`: health start_interval must be greater than 0"),
            );
        }
    }
    if let Some(install) = &svc.install {
        if install.command.trim().is_empty() {
            err(
                name,
                Spot::InstallCommand,
                format!("service `{name}` has an empty install command"),
            );
        }
    }
    if svc
        .stop
        .command
        .as_ref()
        .is_some_and(|c| c.trim().is_empty())
    {
        err(
            name,
            Spot::StopCommand,
            format!("service `{name}` has an empty stop command"),
        );
    }
}

/// Checks on `replicas`, `min_ready` and `replica_ports`, and what a replicated
/// service needs of its other keys. (`PORT` in `env` and `${PORT}` in `port` are
/// checked where they are read: `parse.rs`, `builder.rs`.)
fn check_replicas(
    name: &str,
    svc: &ServiceConfig,
    default_pid_file: &std::path::Path,
    err: &mut impl FnMut(&str, Spot, String),
) {
    if let Some((first, last)) = svc.replica_ports {
        let range = format!("replica_ports \"{first}-{last}\"");
        if svc.replicas.is_none() || svc.port.is_none() {
            err(
                name,
                Spot::ReplicaPorts,
                format!("service `{name}`: replica_ports applies only to a service with `replicas` and a `port`"),
            );
        } else if first == 0 {
            err(
                name,
                Spot::ReplicaPorts,
                format!("service `{name}`: {range}: port 0 is out of range (1-65535)"),
            );
        } else if first > last {
            err(
                name,
                Spot::ReplicaPorts,
                format!("service `{name}`: {range}: the first port is above the last"),
            );
        } else if let Some(port) = svc.port.filter(|p| (first..=last).contains(p)) {
            err(
                name,
                Spot::ReplicaPorts,
                format!("service `{name}`: {range} contains the service's own port {port}, where ringmaster listens"),
            );
        } else if let Some(n) = svc.replicas.filter(|n| u32::from(last - first) + 1 < *n) {
            err(
                name,
                Spot::ReplicaPorts,
                format!(
                    "service `{name}`: {range} holds {} port(s), fewer than replicas ({n})",
                    u32::from(last - first) + 1
                ),
            );
        }
    }
    let Some(replicas) = svc.replicas else {
        return;
    };
    if replicas == 0 {
        err(
            name,
            Spot::Replicas,
            format!("service `{name}`: replicas must be at least 1"),
        );
    } else if !(1..=replicas).contains(&svc.min_ready) {
        err(
            name,
            Spot::MinReady,
            format!("service `{name}`: min_ready must be between 1 and replicas ({replicas})"),
        );
    }
    let pid_file = svc.pid_file.to_string_lossy();
    if svc.pid_file != default_pid_file && !pid_file.contains(REPLICA_MARK) {
        err(
            name,
            Spot::PidFile,
            format!("service `{name}`: each replica needs a PID file of its own: put `${{REPLICA}}` in `pid_file`"),
        );
    }
    if svc
        .install
        .as_ref()
        .is_some_and(|i| i.unless_exists.is_none())
    {
        err(
            name,
            Spot::Install,
            format!("service `{name}`: each replica runs the install step when it is prepared; give `unless_exists` so that it runs once"),
        );
    }
    if let (Some(port), Some(Probe::Http { url })) =
        (svc.port, svc.health.as_ref().map(|h| &h.probe))
    {
        if loopback_url_port(url) == Some(port) {
            err(
                name,
                Spot::HealthProbe,
                format!("service `{name}`: health url \"{url}\" goes to port {port}, where ringmaster listens, not to a replica: write `${{PORT}}` (each replica's own port) for the port"),
            );
        }
    }
}

/// The port of an `http://` URL to a loopback host (`127.x.y.z`, `localhost`,
/// `[::1]`, `0.0.0.0`; 80 when none is written). `None` for another host.
fn loopback_url_port(url: &str) -> Option<u16> {
    let rest = url
        .get(..7)?
        .eq_ignore_ascii_case("http://")
        .then(|| &url[7..])?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    let host = host.to_ascii_lowercase();
    let loopback = host == "localhost"
        || host == "::1"
        || host == "0.0.0.0"
        || host.strip_prefix("127.").is_some_and(|r| {
            r.split('.').count() == 3 && r.split('.').all(|p| p.parse::<u8>().is_ok())
        });
    if !loopback {
        return None;
    }
    match port {
        None | Some("") => Some(80),
        Some(p) => p.parse().ok(),
    }
}

/// Service names become file names (PID files, logs) and tag values.
pub(crate) fn is_service_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `" (did you mean `api`?)"` when a known name is one edit or so away.
fn did_you_mean<'a>(wanted: &str, known: impl Iterator<Item = &'a String>) -> String {
    known
        .map(|k| (edit_distance(wanted, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) && *d < k.len())
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Every dependency cycle once: (the service whose `depends_on` entry closes it,
/// that entry's index, the cycle as `[a, b, a]`). Searched from names in order.
pub(crate) fn find_cycles(
    services: &BTreeMap<String, ServiceConfig>,
) -> Vec<(String, usize, Vec<String>)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Color {
        White,
        Gray,
        Black,
    }
    struct Search<'a> {
        services: &'a BTreeMap<String, ServiceConfig>,
        color: HashMap<&'a str, Color>,
        stack: Vec<&'a str>,
        found: Vec<(String, usize, Vec<String>)>,
        seen: BTreeSet<Vec<String>>,
    }
    impl<'a> Search<'a> {
        fn visit(&mut self, node: &'a str) {
            self.color.insert(node, Color::Gray);
            self.stack.push(node);
            let services = self.services;
            if let Some(svc) = services.get(node) {
                for (i, dep) in svc.depends_on.iter().enumerate() {
                    let Some((dep_name, _)) = services.get_key_value(&dep.service) else {
                        continue;
                    };
                    match self
                        .color
                        .get(dep_name.as_str())
                        .copied()
                        .unwrap_or(Color::White)
                    {
                        Color::White => self.visit(dep_name),
                        Color::Gray => {
                            let start = self
                                .stack
                                .iter()
                                .position(|n| *n == dep_name.as_str())
                                .unwrap_or(0);
                            let mut cycle: Vec<String> =
                                self.stack[start..].iter().map(|s| s.to_string()).collect();
                            let mut key = cycle.clone();
                            key.sort();
                            cycle.push(dep_name.clone());
                            if self.seen.insert(key) {
                                self.found.push((node.to_string(), i, cycle));
                            }
                        }
                        Color::Black => {}
                    }
                }
            }
            self.stack.pop();
            self.color.insert(node, Color::Black);
        }
    }
    let mut search = Search {
        services,
        color: HashMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
        seen: BTreeSet::new(),
    };
    for name in services.keys() {
        if search
            .color
            .get(name.as_str())
            .copied()
            .unwrap_or(Color::White)
            == Color::White
        {
            search.visit(name);
        }
    }
    search.found
}

/// Topological order, dependencies first, ties by name (Kahn's algorithm with an
/// ordered ready set). Services caught in a cycle (only possible in a model not
/// made by the loader or builder) come last, by name. Unknown dependencies are ignored.
pub(crate) fn start_order(services: &BTreeMap<String, ServiceConfig>) -> Vec<String> {
    let mut pending: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dependents: HashMap<&str, Vec<&str>> = HashMap::new();
    for (name, svc) in services {
        let deps: BTreeSet<&str> = svc
            .depends_on
            .iter()
            .map(|d| d.service.as_str())
            .filter(|d| services.contains_key(*d))
            .collect();
        pending.insert(name, deps.len());
        for d in deps {
            dependents.entry(d).or_default().push(name);
        }
    }
    let mut ready: BTreeSet<&str> = pending
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(k, _)| *k)
        .collect();
    let mut order = Vec::with_capacity(services.len());
    while let Some(next) = ready.pop_first() {
        order.push(next.to_string());
        pending.remove(next);
        for dependent in dependents.get(next).into_iter().flatten() {
            if let Some(n) = pending.get_mut(dependent) {
                *n -= 1;
                if *n == 0 {
                    ready.insert(dependent);
                }
            }
        }
    }
    order.extend(pending.keys().map(|k| k.to_string()));
    order
}
