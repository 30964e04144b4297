//! Cleaning up without a running instance (what a crashed `up` left), and the
//! check that nothing is left. Used by `down` when no instance answers (every
//! configured service), and by `up` when a second Ctrl-C forces the shutdown (kill
//! at once; only the services that run selected).
//!
//! Per service, dependents first: its PID file (identity checked: a live process
//! carrying this service's tag is stopped, a live process with another tag is left
//! alone with a warning, a stale file is removed and its pid never signalled), every
//! process carrying its tag (a replicated service: each replica's PID file and
//! tag, `api#0`, ...), and the holders of its port that its allow list or our tag
//! authorizes. Blocking: call it off actor threads.
use std::time::Duration;

use ringmaster::config::{replica_name, replica_of};
use ringmaster::Config;
use ringmaster_os::{
    clear_port, stop_leftovers, PidFileFinding, Policy, ProcessBrief, Signal, Tag,
};

/// How long the processes of a service no configuration names get after TERM
/// (their own stop timeout is unknown).
const ORPHAN_GRACE: Duration = Duration::from_secs(5);

/// What a cleanup did, and what is still there.
#[derive(Debug, Default)]
pub struct Cleanup {
    /// One line per action taken.
    pub actions: Vec<String>,
    /// One line per process or port that is still there.
    pub leftovers: Vec<String>,
    /// Per service (stop order), the processes it stopped (with kill when forced)
    /// and that are gone: the tag carriers, the PID file's process and the port's
    /// holders.
    pub stopped: Vec<(String, Vec<ProcessBrief>)>,
}

/// `name` is a replica (`api#0`) of a service of `config` that has `replicas`.
fn is_replica(config: &Config, name: &str) -> bool {
    replica_of(name).is_some_and(|(group, _)| {
        config
            .services
            .get(group)
            .is_some_and(|s| s.replicas.is_some())
    })
}

/// Adds `procs` to `into`, once per pid.
fn add_unique(into: &mut Vec<ProcessBrief>, procs: &[ProcessBrief]) {
    for p in procs {
        if !into.iter().any(|q| q.pid == p.pid) {
            into.push(p.clone());
        }
    }
}

/// `pid (name), pid (name)`.
fn joined(procs: &[ProcessBrief]) -> String {
    procs
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Stops what is still running of the services in `only` (dependents first), or of
/// every configured service when `None`: with each service's stop signal and
/// timeout, or with kill at once when `force`. The port of a service not in `only`
/// is not cleared, nor its processes stopped, nor its state checked afterwards.
pub fn sweep(config: &Config, only: Option<&[String]>, force: bool) -> Cleanup {
    let project = ringmaster_os::project_id(&config.settings.state_dir);
    let mut out = Cleanup::default();
    let tagged = match ringmaster::janitor::tagged_services(&project) {
        Ok(t) => t,
        Err(e) => {
            out.leftovers.push(format!("cannot scan processes: {e}"));
            Default::default()
        }
    };
    for name in config.stop_order() {
        if only.is_some_and(|names| !names.contains(&name)) {
            continue;
        }
        let Some(svc) = config.services.get(&name) else {
            continue;
        };
        let mut stopped: Vec<ProcessBrief> = Vec::new();
        let mut survived: Vec<ProcessBrief> = Vec::new();
        let (signal, grace) = if force {
            (Signal::Kill, Duration::ZERO)
        } else {
            (svc.stop.signal, svc.stop.timeout)
        };
        // Its processes carry its tag; a replicated service's, its replicas'
        // (`api#0`, ...: those that run, found by their tags), each with its
        // own PID file.
        let targets: Vec<(String, std::path::PathBuf)> = if svc.replicas.is_some() {
            tagged
                .iter()
                .filter_map(|t| replica_of(t).filter(|(g, _)| *g == name))
                .map(|(_, i)| (replica_name(&name, i), svc.replica(i, None).pid_file))
                .collect()
        } else {
            vec![(name.clone(), svc.pid_file.clone())]
        };
        for (name, pid_file) in &targets {
            let tag = Tag::new(project.clone(), name.clone());
            match stop_leftovers(pid_file, &tag, signal, grace) {
                Ok(left) => {
                    match left.pid_file {
                        PidFileFinding::Ours { pid, name: pname } => out.actions.push(format!(
                            "{name}: PID file {} names live pid {pid} ({pname})",
                            pid_file.display()
                        )),
                        // Another project (or service) shares this PID file path: not ours.
                        PidFileFinding::Foreign {
                            pid,
                            name: pname,
                            tag: theirs,
                        } => tracing::warn!(
                            service = %name,
                            "PID file {} names pid {pid} ({pname}) with tag {theirs}, not this project's {}; left alone",
                            pid_file.display(),
                            tag.env_value()
                        ),
                        PidFileFinding::Stale(reason) => out.actions.push(format!(
                            "{name}: removed stale PID file {} ({reason}); its pid was not signalled",
                            pid_file.display()
                        )),
                        PidFileFinding::Unreadable(e) => out.leftovers.push(format!("{name}: {e}")),
                        PidFileFinding::Missing => {}
                    }
                    let report = left.report;
                    if !report.signalled.is_empty() {
                        let killed = if report.killed.is_empty() || force {
                            String::new()
                        } else {
                            format!(" (needed kill: {})", joined(&report.killed))
                        };
                        out.actions.push(format!(
                            "{name}: {} {}{killed}",
                            if force { "killed" } else { "stopped" },
                            joined(&report.signalled)
                        ));
                    }
                    add_unique(&mut stopped, &report.signalled);
                    add_unique(&mut stopped, &report.killed);
                    add_unique(&mut survived, &report.survivors);
                    for p in &report.survivors {
                        out.leftovers
                            .push(format!("{name}: pid {p} is still alive after kill"));
                    }
                }
                Err(e) => out.leftovers.push(format!("{name}: stopping failed: {e}")),
            }
        }
        if let Some(port) = svc.port {
            let cleared =
                Policy::current(Some(project.clone()), svc.allow.clone()).and_then(|policy| {
                    let policy = policy.with_service(name.clone()).with_port(port);
                    clear_port(port, &policy, signal, grace, false)
                });
            match cleared {
                Ok(report) if !report.holders.is_empty() => {
                    out.actions.push(format!(
                        "{name}: cleared port {port} ({} {})",
                        if force {
                            "killed its holders"
                        } else {
                            "held by"
                        },
                        joined(&report.holders)
                    ));
                    for stop in &report.stops {
                        add_unique(&mut stopped, &stop.signalled);
                        add_unique(&mut stopped, &stop.killed);
                        add_unique(&mut survived, &stop.survivors);
                    }
                }
                Ok(_) => {}
                Err(e) => out.leftovers.push(format!("{name}: {e}")),
            }
        }
        stopped.retain(|p| !survived.iter().any(|q| q.pid == p.pid));
        if !stopped.is_empty() {
            out.stopped.push((name.clone(), stopped));
        }
    }
    if only.is_none() {
        // Services the file does not name: added at runtime by an instance that
        // was killed (or dropped from the file since). Their processes carry our
        // project's tag, so they are ours. (Replicas were stopped with their
        // service above.)
        let known = config
            .services
            .keys()
            .cloned()
            .chain(tagged.iter().filter(|t| is_replica(config, t)).cloned())
            .collect();
        let grace = if force { Duration::ZERO } else { ORPHAN_GRACE };
        match ringmaster::janitor::stop_orphans(&project, &known, grace) {
            Ok(found) => {
                for (name, report) in found {
                    out.actions.push(format!(
                        "{name} (in no configuration): stopped {}",
                        joined(&report.stopped)
                    ));
                    out.stopped.push((name, report.stopped));
                }
            }
            Err(e) => out.leftovers.push(format!("cannot scan processes: {e}")),
        }
    }
    let mut check = verify(config, only);
    for line in check.drain(..) {
        if !out.leftovers.contains(&line) {
            out.leftovers.push(line);
        }
    }
    out
}

/// What is still there of the services in `only`: live processes carrying their
/// tags, and their ports when held; with `None`, every process carrying a tag of
/// this project and every configured port.
pub fn verify(config: &Config, only: Option<&[String]>) -> Vec<String> {
    let wanted = |name: &String| only.is_none_or(|names| names.contains(name));
    // A replica's processes are its service's.
    let wanted_tag = |name: &String| match replica_of(name) {
        Some((group, _)) if is_replica(config, name) => wanted(&group.to_owned()),
        _ => wanted(name),
    };
    let project = ringmaster_os::project_id(&config.settings.state_dir);
    let mut left = Vec::new();
    match ringmaster_os::process::snapshot() {
        Ok(table) => {
            for p in table.iter().filter(|p| !p.zombie) {
                if let Some(tag) = &p.tag {
                    if tag.project == project && wanted_tag(&tag.service) {
                        left.push(format!(
                            "{}: pid {} ({}) is still alive",
                            tag.service, p.pid, p.name
                        ));
                    }
                }
            }
        }
        Err(e) => left.push(format!("cannot scan processes: {e}")),
    }
    for (name, svc) in config.services.iter().filter(|(n, _)| wanted(n)) {
        let Some(port) = svc.port else { continue };
        match ringmaster_os::listeners(port) {
            Ok(holders) if holders.is_empty() => {}
            Ok(holders) => {
                let mut pids: Vec<String> = holders
                    .iter()
                    .map(|l| match &l.process {
                        Some(p) => format!("{} ({})", l.pid, p.name),
                        None if l.pid == 0 => "an owner the socket table does not name".to_string(),
                        None => l.pid.to_string(),
                    })
                    .collect();
                pids.dedup();
                left.push(format!(
                    "{name}: port {port} is still held by {}",
                    pids.join(", ")
                ));
            }
            Err(e) => left.push(format!("{name}: cannot check port {port}: {e}")),
        }
    }
    left
}
