//! Loading `ringmaster.toml`: TOML with spans (`toml::de::DeTable`), raw serde
//! structs that refuse unknown keys (`deny_unknown_fields`), then conversion into
//! the model with defaults, paths, `${VAR}` expansion and `env_file`, then the
//! semantic checks of [`super::validate`]. Every error carries `file:line:col`.
//!
//! To report every error at once, each table is deserialized one key at a time (a
//! one-entry table per key, into a raw struct whose fields are all optional) and
//! the parts are merged: a bad key costs only itself.
use std::collections::{BTreeMap, BTreeSet, HashMap};

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ringmaster_os::Signal;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::expand::{expand, parse_env_file, replica_mark, PORT_MARK, REPLICA_MARK};
use super::raw::*;
use super::validate::{validate, Spot};
use super::{
    defaults, parse_duration, Condition, Config, ConfigError, ConfigErrors, Dependency,
    HealthConfig, InstallConfig, Probe, RestartConfig, RestartPolicy, ServiceConfig, Settings,
    StopConfig,
};

/// The text being loaded, for turning byte offsets into `line:col`.
pub(crate) struct Source<'a> {
    path: &'a Path,
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    pub(crate) fn new(path: &'a Path, text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source {
            path,
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_starts.partition_point(|s| *s <= offset);
        let start = self.line_starts[line - 1];
        (line, self.text[start..offset].chars().count() + 1)
    }

    pub(super) fn error(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        let (line, col) = self.line_col(span.start);
        ConfigError {
            file: self.path.to_path_buf(),
            line,
            col,
            message: message.into(),
        }
    }
}

/// Where each checked part of a service is in the file.
#[derive(Debug, Default)]
struct ServiceSpans {
    name: Range<usize>,
    command: Option<Range<usize>>,
    port: Option<Range<usize>>,
    dependencies: Vec<Range<usize>>,
    health: Option<Range<usize>>,
    health_probe: Option<Range<usize>>,
    health_interval: Option<Range<usize>>,
    health_timeout: Option<Range<usize>>,
    health_failures: Option<Range<usize>>,
    health_start_interval: Option<Range<usize>>,
    install: Option<Range<usize>>,
    install_command: Option<Range<usize>>,
    ready_timeout: Option<Range<usize>>,
    stop: Option<Range<usize>>,
    stop_command: Option<Range<usize>>,
    pid_file: Option<Range<usize>>,
    replicas: Option<Range<usize>>,
    min_ready: Option<Range<usize>>,
    replica_ports: Option<Range<usize>>,
}

/// Makes `path` absolute and removes `.` and `..` components (lexically).
pub(crate) fn absolute(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for part in abs.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `path` resolved against `base` when relative.
pub(crate) fn resolve(base: &Path, path: impl AsRef<Path>) -> PathBuf {
    absolute(&base.join(path))
}

/// Why an env file gave no variables.
pub(crate) enum EnvFileFailure {
    /// It cannot be read: the message names the file.
    Unreadable(String),
    /// Errors inside it, pointing into it.
    Invalid(Vec<ConfigError>),
}

/// Reads an env file; its errors point into it.
pub(crate) fn read_env_file(path: &Path) -> Result<Vec<(String, String)>, EnvFileFailure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        EnvFileFailure::Unreadable(format!("cannot read env_file {}: {e}", path.display()))
    })?;
    parse_env_file(&text).map_err(|errs| {
        EnvFileFailure::Invalid(
            errs.into_iter()
                .map(|e| ConfigError {
                    file: path.to_path_buf(),
                    line: e.line,
                    col: e.col,
                    message: format!("env_file: {}", e.message),
                })
                .collect(),
        )
    })
}

/// Parses and validates `text` read from `path`.
pub(crate) fn parse(
    text: &str,
    path: &Path,
    external: &BTreeSet<String>,
) -> Result<Config, ConfigErrors> {
    parse_with(text, path, external, None)
}

/// [`parse`], with `settings` in force instead of the text's `[settings]`
/// (which it then must not have): services read as if they stood in the file
/// those settings came from ([`Config::service_from_json`]).
pub(crate) fn parse_with(
    text: &str,
    path: &Path,
    external: &BTreeSet<String>,
    settings: Option<&Settings>,
) -> Result<Config, ConfigErrors> {
    let file = absolute(path);
    if text.len() > super::MAX_CONFIG_BYTES {
        return Err(ConfigErrors(vec![super::too_large(
            &file,
            text.len() as u64,
        )]));
    }
    let base_dir = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| absolute(Path::new(".")));
    let src = Source::new(&file, text);

    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        let mut errors: Vec<ConfigError> = syntax
            .iter()
            .map(|e| {
                src.error(
                    e.span().unwrap_or(0..0),
                    format!("TOML syntax: {}", e.message()),
                )
            })
            .collect();
        errors.sort_by_key(|e| (e.line, e.col));
        errors.dedup();
        return Err(ConfigErrors(errors));
    }

    let mut errors = Vec::new();
    let mut settings_value = None;
    let mut services_value = None;
    for (key, value) in root.get_ref().iter() {
        match key.get_ref().as_ref() {
            "settings" => settings_value = Some(value),
            "services" => services_value = Some(value),
            other => errors.push(src.error(
                key.span(),
                format!(
                    "unknown key `{other}` at the top level; expected `settings` or `services`"
                ),
            )),
        }
    }

    let (settings, setting_spans) = match settings {
        Some(given) => (given.clone(), HashMap::new()),
        None => {
            let raw_settings = settings_value
                .and_then(|v| collect::<RawSettings>(v, "settings", &src, &mut errors))
                .unwrap_or_default();
            convert_settings(raw_settings, &base_dir, &src, &mut errors)
        }
    };

    let mut services = BTreeMap::new();
    let mut spans: HashMap<String, ServiceSpans> = HashMap::new();
    if let Some(value) = services_value {
        if let DeValue::Table(table) = value.get_ref() {
            for (key, svc_value) in table.iter() {
                let name = key.get_ref().to_string();
                let ctx = format!("service `{name}`");
                let raw = collect::<RawService>(svc_value, &ctx, &src, &mut errors);
                let (svc, svc_spans) = convert_service(
                    &name,
                    key.span(),
                    // Not a table (reported): no further errors about its keys.
                    raw.unwrap_or_else(|| RawService {
                        bad_keys: vec!["command".into()],
                        ..Default::default()
                    }),
                    &settings,
                    &base_dir,
                    &src,
                    &mut errors,
                );
                services.insert(name.clone(), svc);
                spans.insert(name, svc_spans);
            }
        } else {
            errors.push(src.error(
                value.span(),
                format!(
                    "`services`: expected a table of services, found {}",
                    kind_of(value.get_ref())
                ),
            ));
        }
    }

    let config = Config {
        path: Some(file.clone()),
        base_dir,
        settings,
        services,
    };

    let locate = |service: &str, spot: Spot| {
        let span = match spot {
            Spot::Setting(key) => setting_spans.get(key).cloned(),
            _ => spans.get(service).map(|s| {
                let found = match spot {
                    Spot::Name => None,
                    Spot::Command => s.command.clone(),
                    Spot::Port => s.port.clone(),
                    Spot::Dependency(i) => s.dependencies.get(i).cloned(),
                    Spot::HealthProbe => s.health_probe.clone().or_else(|| s.health.clone()),
                    Spot::HealthInterval => s.health_interval.clone().or_else(|| s.health.clone()),
                    Spot::HealthTimeout => s.health_timeout.clone().or_else(|| s.health.clone()),
                    Spot::HealthFailures => s.health_failures.clone().or_else(|| s.health.clone()),
                    Spot::HealthStartInterval => {
                        s.health_start_interval.clone().or_else(|| s.health.clone())
                    }
                    Spot::InstallCommand => s.install_command.clone().or_else(|| s.install.clone()),
                    Spot::ReadyTimeout => s.ready_timeout.clone(),
                    Spot::StopCommand => s.stop_command.clone().or_else(|| s.stop.clone()),
                    Spot::Install => s.install.clone(),
                    Spot::PidFile => s.pid_file.clone(),
                    Spot::Replicas => s.replicas.clone(),
                    Spot::MinReady => s.min_ready.clone(),
                    Spot::ReplicaPorts => s.replica_ports.clone(),
                    Spot::Setting(_) => None,
                };
                found.unwrap_or_else(|| s.name.clone())
            }),
        };
        match span {
            Some(span) => {
                let (line, col) = src.line_col(span.start);
                (file.clone(), line, col)
            }
            None => (file.clone(), 1, 1),
        }
    };
    errors.extend(validate(&config, external, &locate));

    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors::sorted(errors))
    }
}

/// `var` from `pairs` (the last entry wins), else from the process environment.
fn lookup_in(pairs: &[(String, String)], var: &str) -> Option<String> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == var)
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var(var).ok())
}

fn duration_of(
    value: &Spanned<String>,
    what: &str,
    src: &Source<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<Duration> {
    match parse_duration(value.get_ref()) {
        Ok(d) => Some(d),
        Err(e) => {
            errors.push(src.error(value.span(), format!("{what}: {e}")));
            None
        }
    }
}

/// Expands one field of a service, reporting its errors (`None` after an error).
type ExpandField<'a> = dyn Fn(&Spanned<String>, &mut Vec<ConfigError>) -> Option<String> + 'a;

/// A port from an integer, or from a string once expanded (by `expand`, which
/// reports its own errors). Port 0 passes here: the semantic checks refuse it.
fn port_of(
    value: &Spanned<PortValue>,
    what: &str,
    expand: &ExpandField<'_>,
    src: &Source<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<u16> {
    let out_of_range =
        |shown: &str, from: &str| format!("{what}: port {shown} is out of range (1-65535){from}");
    let message = match value.get_ref() {
        PortValue::Number(n) => match u16::try_from(*n) {
            Ok(p) => return Some(p),
            Err(_) => out_of_range(&n.to_string(), ""),
        },
        PortValue::Text(raw) => {
            let text = expand(&Spanned::new(value.span(), raw.clone()), errors)?;
            let from = if text == *raw {
                String::new()
            } else {
                format!(" (from \"{raw}\")")
            };
            let trimmed = text.trim();
            match trimmed.parse::<i64>() {
                Ok(n) => match u16::try_from(n) {
                    Ok(p) => return Some(p),
                    Err(_) => out_of_range(&n.to_string(), &from),
                },
                Err(_) if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) => {
                    out_of_range(trimmed, &from)
                }
                Err(_) if from.is_empty() => format!(
                    "{what}: port \"{raw}\" is not a number (expected an integer 1-65535)"
                ),
                Err(_) => format!(
                    "{what}: port \"{raw}\" is \"{text}\", not a number (expected an integer 1-65535)"
                ),
            }
        }
    };
    errors.push(src.error(value.span(), message));
    None
}

/// `"FIRST-LAST"` (blanks allowed around each number) as two ports. Whether the
/// range is usable (not empty, not 0, large enough) is for the semantic checks.
fn port_range(text: &str) -> Result<(u16, u16), String> {
    let shape = || {
        format!("replica_ports \"{text}\" is not a range of ports (expected \"FIRST-LAST\", such as \"9100-9199\")")
    };
    let (first, last) = text.split_once('-').ok_or_else(shape)?;
    let number = |part: &str| -> Result<u16, String> {
        let part = part.trim();
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(shape());
        }
        part.parse::<u16>()
            .map_err(|_| format!("replica_ports \"{text}\": port {part} is out of range (1-65535)"))
    };
    Ok((number(first)?, number(last)?))
}

fn u32_of(
    value: &Spanned<i64>,
    what: &str,
    src: &Source<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<u32> {
    let n = *value.get_ref();
    match u32::try_from(n) {
        Ok(v) => Some(v),
        Err(_) => {
            errors.push(src.error(
                value.span(),
                format!("{what}: {n} is out of range (0-{})", u32::MAX),
            ));
            None
        }
    }
}

fn convert_settings(
    raw: RawSettings,
    base_dir: &Path,
    src: &Source<'_>,
    errors: &mut Vec<ConfigError>,
) -> (Settings, HashMap<&'static str, Range<usize>>) {
    let mut spans = HashMap::new();
    let state_dir = match &raw.state_dir {
        Some(v) => resolve(base_dir, v.get_ref()),
        None => resolve(base_dir, defaults::STATE_DIR),
    };
    let mut duration = |value: &Option<Spanned<String>>,
                        key: &'static str,
                        default: Duration,
                        errors: &mut Vec<ConfigError>| match value {
        Some(v) => {
            spans.insert(key, v.span());
            duration_of(v, &format!("settings: {key}"), src, errors).unwrap_or(default)
        }
        None => default,
    };
    let shutdown_timeout = duration(
        &raw.shutdown_timeout,
        "shutdown_timeout",
        defaults::SHUTDOWN_TIMEOUT,
        errors,
    );
    let health_interval = duration(
        &raw.health_interval,
        "health_interval",
        defaults::HEALTH_INTERVAL,
        errors,
    );
    let start_window = duration(
        &raw.start_window,
        "start_window",
        defaults::START_WINDOW,
        errors,
    );
    let metrics = raw.metrics.as_ref().and_then(|v| match v.get_ref().parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            errors.push(src.error(
                v.span(),
                format!("settings: metrics \"{}\" is not a socket address (expected e.g. \"127.0.0.1:9464\")", v.get_ref()),
            ));
            None
        }
    });
    let log_max_bytes = match &raw.log_max_bytes {
        Some(v) => {
            spans.insert("log_max_bytes", v.span());
            match u64::try_from(*v.get_ref()) {
                Ok(n) => n,
                Err(_) => {
                    errors.push(src.error(
                        v.span(),
                        format!("settings: log_max_bytes {} must be at least 1", v.get_ref()),
                    ));
                    defaults::LOG_MAX_BYTES
                }
            }
        }
        None => defaults::LOG_MAX_BYTES,
    };
    (
        Settings {
            state_dir,
            shutdown_timeout,
            health_interval,
            metrics,
            log_max_bytes,
            start_window,
        },
        spans,
    )
}

#[allow(clippy::too_many_arguments)]
fn convert_service(
    name: &str,
    name_span: Range<usize>,
    raw: RawService,
    settings: &Settings,
    base_dir: &Path,
    src: &Source<'_>,
    errors: &mut Vec<ConfigError>,
) -> (ServiceConfig, ServiceSpans) {
    let ctx = format!("service `{name}`");
    let mut spans = ServiceSpans {
        name: name_span.clone(),
        ..Default::default()
    };

    // The environment the service will see, built first because it feeds `${VAR}`
    // in every other field: `env_file`, then the `env` table over it.
    let mut env: Vec<(String, String)> = Vec::new();
    if let Some(v) = &raw.env_file {
        let path = resolve(base_dir, v.get_ref());
        match read_env_file(&path) {
            Ok(pairs) => env = pairs,
            Err(EnvFileFailure::Invalid(errs)) => errors.extend(errs),
            Err(EnvFileFailure::Unreadable(message)) => {
                errors.push(src.error(v.span(), format!("{ctx}: {message}")))
            }
        }
    }
    let file_env = env.clone();
    // With `replicas`, `${REPLICA}` (and with a `port`, `${PORT}`) are each
    // member's own: marks, filled in by `ServiceConfig::replica`, never looked up.
    let has_key = |key: &str| raw.bad_keys.iter().any(|k| k == key);
    let replicated = raw.replicas.is_some() || has_key("replicas");
    let with_port = raw.port.is_some() || has_key("port");
    let mark = |var: &str| replica_mark(var, replicated, with_port).map(str::to_string);
    let port_is_ours = "`PORT` is set by ringmaster to each replica's own port";
    if replicated && with_port && file_env.iter().any(|(k, _)| k == "PORT") {
        if let Some(v) = &raw.env_file {
            errors.push(src.error(
                v.span(),
                format!("{ctx}: {port_is_ours}; remove it from the env_file"),
            ));
        }
    }
    let expand_at = |v: &Spanned<String>,
                     what: &str,
                     lookup: &dyn Fn(&str) -> Option<String>,
                     errors: &mut Vec<ConfigError>|
     -> Option<String> {
        match expand(v.get_ref(), lookup) {
            Ok(s) => Some(s),
            Err(e) => {
                errors.push(src.error(v.span(), format!("{ctx}: {what}: {e}")));
                None
            }
        }
    };

    // `env` values expand from the env_file, then the process environment; never
    // from the `env` table itself (so there is no order among its entries and no cycle).
    let env_value_lookup = |var: &str| mark(var).or_else(|| lookup_in(&file_env, var));
    // Names whose `env` value did not expand (reported): they expand to nothing
    // below, so that one mistake is one error.
    let mut unexpanded: Vec<String> = Vec::new();
    for (key, value) in raw.env.iter().flatten() {
        let k = key.get_ref();
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            errors.push(src.error(
                key.span(),
                format!("{ctx}: invalid environment variable name `{k}`"),
            ));
            continue;
        }
        if replicated && with_port && k == "PORT" {
            errors.push(src.error(
                key.span(),
                format!("{ctx}: {port_is_ours}; remove it from `env`"),
            ));
        }
        let value = Spanned::new(value.span(), value.get_ref().0.clone());
        env.retain(|(existing, _)| existing != k);
        match expand_at(&value, &format!("env {k}"), &env_value_lookup, errors) {
            Some(v) => env.push((k.clone(), v)),
            None => unexpanded.push(k.clone()),
        }
    }

    // Every other field sees what the service sees: the `env` table, then the
    // env_file (both in `env` now), then the process environment.
    let lookup = |var: &str| -> Option<String> {
        if let Some(m) = mark(var) {
            return Some(m);
        }
        if unexpanded.iter().any(|k| k == var) {
            return Some(String::new());
        }
        lookup_in(&env, var)
    };
    let expanded = |v: &Spanned<String>, what: &str, errors: &mut Vec<ConfigError>| {
        expand_at(v, what, &lookup, errors)
    };

    let command = match &raw.command {
        Some(v) => {
            spans.command = Some(v.span());
            expanded(v, "command", errors).unwrap_or_else(|| "<invalid>".into())
        }
        None if raw.bad_keys.iter().any(|k| k == "command") => "<invalid>".into(),
        None => {
            errors.push(src.error(name_span.clone(), format!("{ctx} has no `command`")));
            // Not empty, so the "empty command" check does not report it twice.
            "<missing>".into()
        }
    };

    let workdir = match &raw.workdir {
        Some(v) => match expanded(v, "workdir", errors) {
            Some(dir) => resolve(base_dir, dir),
            None => base_dir.to_path_buf(),
        },
        None => base_dir.to_path_buf(),
    };

    let port = raw.port.as_ref().and_then(|v| {
        spans.port = Some(v.span());
        let expand_port = |v: &Spanned<String>, e: &mut Vec<ConfigError>| {
            let text = expanded(v, "port", e)?;
            for (var, m) in [("PORT", PORT_MARK), ("REPLICA", REPLICA_MARK)] {
                if text.contains(m) {
                    e.push(src.error(
                        v.span(),
                        format!("{ctx}: `${{{var}}}` cannot be used in `port` (with `replicas`, it is each replica's own; `port` is where ringmaster listens)"),
                    ));
                    return None;
                }
            }
            Some(text)
        };
        port_of(v, &ctx, &expand_port, src, errors)
    });

    let allow = raw
        .allow
        .iter()
        .flatten()
        .map(|v| v.get_ref().clone())
        .collect();

    let mut depends_on = Vec::new();
    match raw.depends_on.as_ref().map(|v| v.get_ref()) {
        Some(RawDepends::List(names)) => {
            for n in names {
                spans.dependencies.push(n.span());
                depends_on.push(Dependency {
                    service: n.get_ref().clone(),
                    condition: Condition::Ready,
                });
            }
        }
        Some(RawDepends::Table(entries)) => {
            for (n, cond) in entries {
                let condition = match cond.get_ref().as_str() {
                    "ready" => Condition::Ready,
                    "started" => Condition::Started,
                    "completed" => Condition::Completed,
                    other => {
                        errors.push(src.error(
                            cond.span(),
                            format!("{ctx}: unknown condition \"{other}\" for dependency `{}`; expected \"ready\", \"started\" or \"completed\"", n.get_ref()),
                        ));
                        Condition::Ready
                    }
                };
                spans.dependencies.push(n.span());
                depends_on.push(Dependency {
                    service: n.get_ref().clone(),
                    condition,
                });
            }
        }
        None => {}
    }

    let health = raw.health.as_ref().and_then(|h| {
        spans.health = Some(h.span());
        let hctx = format!("{ctx} health");
        let raw = h.get_ref();
        let kinds: Vec<(&str, Range<usize>)> = [
            ("http", raw.http.as_ref().map(Spanned::span)),
            ("tcp", raw.tcp.as_ref().map(Spanned::span)),
            ("exec", raw.exec.as_ref().map(Spanned::span)),
            ("log", raw.log.as_ref().map(Spanned::span)),
            ("notify", raw.notify.as_ref().map(Spanned::span)),
        ]
        .into_iter()
        .filter_map(|(k, s)| s.map(|s| (k, s)))
        .collect();
        let interval = raw.interval.as_ref().and_then(|v| {
            spans.health_interval = Some(v.span());
            duration_of(v, &format!("{hctx} interval"), src, errors)
        });
        let timeout = raw.timeout.as_ref().and_then(|v| {
            spans.health_timeout = Some(v.span());
            duration_of(v, &format!("{hctx} timeout"), src, errors)
        });
        let failures = raw.failures.as_ref().and_then(|v| {
            spans.health_failures = Some(v.span());
            u32_of(v, &format!("{hctx} failures"), src, errors)
        });
        let start_interval = raw.start_interval.as_ref().and_then(|v| {
            spans.health_start_interval = Some(v.span());
            duration_of(v, &format!("{hctx} start_interval"), src, errors)
        });
        if kinds.len() > 1 {
            let names: Vec<&str> = kinds.iter().map(|(k, _)| *k).collect();
            errors.push(src.error(
                kinds[1].1.clone(),
                format!(
                    "{hctx}: more than one probe kind ({}); choose one of http, tcp, exec, log or notify",
                    names.join(", ")
                ),
            ));
            return None;
        }
        let Some((_, probe_span)) = kinds.first() else {
            if !raw.bad_keys.is_empty() {
                // A bad key (such as an unknown probe kind) was already reported.
                return None;
            }
            errors.push(src.error(
                h.span(),
                format!("{hctx}: no probe kind; expected one of http, tcp, exec, log or notify"),
            ));
            return None;
        };
        spans.health_probe = Some(probe_span.clone());
        let probe = if let Some(v) = &raw.http {
            Probe::Http {
                url: expanded(v, "health http", errors)?,
            }
        } else if let Some(v) = &raw.tcp {
            // `tcp = "${PORT}"` with `replicas`: each replica's own port, kept as
            // the service's port (which `ServiceConfig::replica` turns into the
            // member's). Without a valid `port` (reported) there is nothing to say.
            let expand_tcp = |v: &Spanned<String>, e: &mut Vec<ConfigError>| {
                let text = expanded(v, "health tcp", e)?;
                if text.trim() == PORT_MARK {
                    return port.map(|p| p.to_string());
                }
                let message = if text.contains(REPLICA_MARK) {
                    "`${REPLICA}` cannot be used in a port"
                } else if text.contains(PORT_MARK) {
                    "`${PORT}` can only be the whole value (`tcp = \"${PORT}\"`: each replica's own port)"
                } else {
                    return Some(text);
                };
                e.push(src.error(v.span(), format!("{hctx} tcp: {message}")));
                None
            };
            Probe::Tcp {
                port: port_of(v, &format!("{hctx} tcp"), &expand_tcp, src, errors)?,
            }
        } else if let Some(v) = &raw.exec {
            Probe::Exec {
                command: expanded(v, "health exec", errors)?,
            }
        } else if let Some(v) = &raw.log {
            Probe::Log {
                regex: v.get_ref().clone(),
            }
        } else if let Some(v) = &raw.notify {
            if !*v.get_ref() {
                errors.push(src.error(
                    v.span(),
                    format!("{hctx}: notify = false is no probe; leave it out, or choose one of http, tcp, exec or log"),
                ));
                return None;
            }
            Probe::Notify
        } else {
            return None;
        };
        Some(HealthConfig {
            probe,
            interval: interval.unwrap_or(settings.health_interval),
            timeout: timeout.unwrap_or(defaults::HEALTH_TIMEOUT),
            failures: failures.unwrap_or(defaults::HEALTH_FAILURES),
            start_interval: start_interval.unwrap_or(defaults::HEALTH_START_INTERVAL),
        })
    });

    let mut restart = RestartConfig {
        policy: RestartPolicy::OnFailure,
        max_attempts: defaults::MAX_ATTEMPTS,
        backoff: defaults::BACKOFF,
    };
    if let Some(r) = raw.restart.as_ref().map(Spanned::get_ref) {
        let rctx = format!("{ctx} restart");
        if let Some(v) = &r.policy {
            match v.get_ref().as_str() {
                "never" => restart.policy = RestartPolicy::Never,
                "on-failure" => restart.policy = RestartPolicy::OnFailure,
                "always" => restart.policy = RestartPolicy::Always,
                other => errors.push(src.error(
                    v.span(),
                    format!("{rctx}: unknown policy \"{other}\"; expected \"never\", \"on-failure\" or \"always\""),
                )),
            }
        }
        if let Some(n) = r
            .max_attempts
            .as_ref()
            .and_then(|v| u32_of(v, &format!("{rctx} max_attempts"), src, errors))
        {
            restart.max_attempts = n;
        }
        if let Some(d) = r
            .backoff
            .as_ref()
            .and_then(|v| duration_of(v, &format!("{rctx} backoff"), src, errors))
        {
            restart.backoff = d;
        }
    }

    let mut stop = StopConfig {
        signal: Signal::Term,
        timeout: defaults::STOP_TIMEOUT,
        command: None,
    };
    if let Some(s) = raw.stop.as_ref().map(Spanned::get_ref) {
        spans.stop = raw.stop.as_ref().map(Spanned::span);
        if let Some(v) = &s.command {
            spans.stop_command = Some(v.span());
            stop.command =
                Some(expanded(v, "stop command", errors).unwrap_or_else(|| "<invalid>".into()));
        }
        if let Some(v) = &s.signal {
            match v.get_ref().parse::<Signal>() {
                Ok(sig) => stop.signal = sig,
                Err(e) => errors.push(src.error(v.span(), format!("{ctx} stop: {e}"))),
            }
        }
        if let Some(d) = s
            .timeout
            .as_ref()
            .and_then(|v| duration_of(v, &format!("{ctx} stop timeout"), src, errors))
        {
            stop.timeout = d;
        }
    }

    let mut ready_timeout = defaults::READY_TIMEOUT;
    if let Some(v) = &raw.ready_timeout {
        spans.ready_timeout = Some(v.span());
        if let Some(d) = duration_of(v, &format!("{ctx} ready_timeout"), src, errors) {
            ready_timeout = d;
        }
    }
    let start_window = match &raw.start_window {
        Some(v) => {
            let window = duration_of(v, &format!("{ctx} start_window"), src, errors);
            if health.is_some() {
                errors.push(src.error(
                    v.span(),
                    format!("{ctx}: start_window applies only to a service without a health probe (the probe decides when it is ready)"),
                ));
            }
            window.unwrap_or(settings.start_window)
        }
        None => settings.start_window,
    };

    let default_pid_file = settings.state_dir.join(format!("{name}.pid"));
    let pid_file = match &raw.pid_file {
        Some(v) => {
            spans.pid_file = Some(v.span());
            match expanded(v, "pid_file", errors) {
                Some(file) => resolve(base_dir, file),
                None => default_pid_file,
            }
        }
        None => default_pid_file,
    };

    let replicas = raw.replicas.as_ref().map(|v| {
        spans.replicas = Some(v.span());
        match u32::try_from(*v.get_ref()) {
            Ok(n) => n,
            // 0 or less: reported by the semantic checks, as for the builder.
            Err(_) if *v.get_ref() < 0 => 0,
            Err(_) => {
                errors.push(src.error(
                    v.span(),
                    format!(
                        "{ctx}: replicas {} is out of range (1-{})",
                        v.get_ref(),
                        u32::MAX
                    ),
                ));
                u32::MAX
            }
        }
    });
    let mut min_ready = 1;
    if let Some(v) = &raw.min_ready {
        spans.min_ready = Some(v.span());
        if !replicated {
            errors.push(src.error(
                v.span(),
                format!("{ctx}: min_ready applies only to a service with `replicas`"),
            ));
        } else {
            // Out of 1..=replicas (also below 0 or beyond u32): the semantic checks say so.
            min_ready =
                u32::try_from(*v.get_ref()).unwrap_or(if *v.get_ref() < 0 { 0 } else { u32::MAX });
        }
    }
    let replica_ports = raw.replica_ports.as_ref().and_then(|v| {
        spans.replica_ports = Some(v.span());
        match port_range(v.get_ref()) {
            Ok(range) => Some(range),
            Err(message) => {
                errors.push(src.error(v.span(), format!("{ctx}: {message}")));
                None
            }
        }
    });

    let install = raw.install.as_ref().map(|i| {
        spans.install = Some(i.span());
        let raw = i.get_ref();
        let command = match &raw.command {
            Some(v) => {
                spans.install_command = Some(v.span());
                expanded(v, "install command", errors).unwrap_or_else(|| "<invalid>".into())
            }
            None if raw.bad_keys.iter().any(|k| k == "command") => "<invalid>".into(),
            None => {
                errors.push(src.error(i.span(), format!("{ctx} install: no `command`")));
                "<missing>".into()
            }
        };
        InstallConfig {
            command,
            unless_exists: raw
                .unless_exists
                .as_ref()
                .map(|v| resolve(&workdir, v.get_ref())),
        }
    });

    (
        ServiceConfig {
            name: name.to_string(),
            command,
            workdir,
            env,
            port,
            allow,
            depends_on,
            health,
            restart,
            stop,
            ready_timeout,
            start_window,
            pid_file,
            install,
            follow_daemon: raw.follow_daemon.as_ref().is_none_or(|v| *v.get_ref()),
            replicas,
            min_ready,
            replica_ports,
        },
        spans,
    )
}
