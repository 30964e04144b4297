//! A graph that changes while it runs ([`Apply`]; the rules are in
//! [`crate::change`]). A change is worked out against the running graph into a
//! [`Plan`] (refused as a whole when the graph it leads to is not valid), then
//! run in three steps: one cascade stops what is removed, what is restarted and
//! their running dependents (dependents first, by the graph as it was); the
//! graph is then rebuilt (entries removed, replaced, updated, added; order and
//! heights); and what was stopped or added is needed again and starts as at
//! `up`. The change answers once those are ready, or with the first failure.
//! Changes run one at a time, after any pending [`Up`].
use super::*;
use crate::change::{Action, ApplyReport, ServiceChange, ServiceDef, SettingChange};
use crate::messages::{Apply, Change};
use crate::service::Reconfigure;

/// A change waiting for its turn.
pub(super) struct Queued {
    change: Change,
    at: Instant,
    tx: oneshot::Sender<Result<ApplyReport>>,
}

/// A change worked out against the running graph.
#[derive(Default)]
struct Plan {
    add: Vec<(ServiceDef, Origin)>,
    remove: Vec<String>,
    /// Process services whose new configuration needs a new process.
    restart: Vec<ServiceConfig>,
    /// Process services whose new configuration applies to what runs.
    update: Vec<ServiceConfig>,
    /// Services added on their own that a file now defines.
    adopt: Vec<String>,
    /// The new settings, when the change is a configuration.
    settings: Option<Settings>,
    setting_changes: Vec<SettingChange>,
    /// What the report says of each service, by name.
    report: BTreeMap<String, ServiceChange>,
}

impl Plan {
    fn note(&mut self, name: &str, action: Action, keys: &[&str], because: Option<String>) {
        self.report.insert(
            name.to_owned(),
            ServiceChange {
                name: name.to_owned(),
                action,
                keys: keys.iter().map(|k| k.to_string()).collect(),
                because,
            },
        );
    }
}

fn rejected(text: impl Into<String>) -> Error {
    Error::Rejected(text.into())
}

impl Handler<Apply> for Supervisor {
    type Result = ResponseFuture<Result<ApplyReport>>;

    fn handle(&mut self, msg: Apply, ctx: &mut Context<Self>) -> Self::Result {
        if self.closed || self.shutting_down {
            return Box::pin(async { Err(Error::ShuttingDown) });
        }
        let (tx, rx) = oneshot::channel();
        self.changes.push_back(Queued {
            change: msg.0,
            at: Instant::now(),
            tx,
        });
        self.next_change(ctx);
        Box::pin(async move { rx.await.unwrap_or(Err(Error::SupervisorGone)) })
    }
}

impl Supervisor {
    /// Runs the next queued change, unless one runs, an [`Up`] is pending (a
    /// change waits until the start is over) or a shutdown began.
    pub(super) fn next_change(&mut self, ctx: &mut Context<Self>) {
        while !self.applying && !self.shutting_down && !self.closed {
            if self.waiters.iter().any(|w| w.up) {
                return;
            }
            let Some(q) = self.changes.pop_front() else {
                return;
            };
            match self.plan(q.change) {
                Ok(plan) => {
                    self.applying = true;
                    self.run_plan(plan, q.at, q.tx, ctx);
                }
                Err(e) => {
                    let _ = q.tx.send(Err(e));
                }
            }
        }
    }

    /// Refuses every queued change: a shutdown began.
    pub(super) fn refuse_changes(&mut self) {
        for q in std::mem::take(&mut self.changes) {
            let _ = q.tx.send(Err(Error::ShuttingDown));
        }
    }

    /// Works `change` out against the running graph.
    fn plan(&self, change: Change) -> Result<Plan> {
        let mut plan = Plan::default();
        match change {
            Change::Config(config) => {
                let config = *config;
                for (name, cfg) in &config.services {
                    match self.entries.get(name) {
                        None => {
                            plan.note(name, Action::Added, &[], None);
                            plan.add
                                .push((ServiceDef::Process(Box::new(cfg.clone())), Origin::Config));
                        }
                        Some(e) => {
                            let Some(old) = &e.spec.config else {
                                return Err(rejected(format!(
                                    "service `{name}` is a plugin registered in code: a \
                                     configuration cannot define a service of that name"
                                )));
                            };
                            if e.origin == Origin::Added {
                                plan.adopt.push(name.clone());
                            }
                            self.plan_change(&mut plan, e, old, cfg);
                        }
                    }
                }
                for e in self.entries.values() {
                    if e.origin == Origin::Config && !config.services.contains_key(&e.name) {
                        plan.note(&e.name, Action::Removed, &[], None);
                        plan.remove.push(e.name.clone());
                    }
                }
                plan.setting_changes = setting_changes(&self.settings, &config.settings);
                plan.settings = Some(config.settings);
            }
            Change::Add(def) => {
                let name = def.name().to_owned();
                if self.entries.contains_key(&name) {
                    return Err(rejected(format!(
                        "a service named `{name}` exists already (remove it first, or change it \
                         in the configuration and reload)"
                    )));
                }
                if let ServiceDef::Plugin(p) = &def {
                    if p.health
                        .as_ref()
                        .is_some_and(|h| h.probe == crate::config::Probe::Notify)
                    {
                        return Err(rejected(format!(
                            "plugin `{name}` has a notify probe: a plugin has no process to send \
                             READY=1; report Ready from the plugin instead"
                        )));
                    }
                }
                plan.note(&name, Action::Added, &[], None);
                plan.add.push((def, Origin::Added));
            }
            Change::Remove(name) => {
                if !self.entries.contains_key(&name) {
                    return Err(Error::UnknownService(name));
                }
                plan.note(&name, Action::Removed, &[], None);
                plan.remove.push(name);
            }
        }
        self.check_plan(&plan)?;
        Ok(plan)
    }

    /// Sorts one process service's new configuration into the plan.
    fn plan_change(&self, plan: &mut Plan, e: &Entry, old: &ServiceConfig, new: &ServiceConfig) {
        let diff = old.changes(new);
        let name = e.name.as_str();
        let runs = e.in_flight();
        // A failed service whose configuration changed gets another chance.
        let again = runs || e.state == ServiceState::Failed;
        if diff.is_empty() {
            plan.note(name, Action::Unchanged, &[], None);
        } else if !diff.restart.is_empty() {
            let keys: Vec<&str> = diff.restart.iter().chain(&diff.in_place).copied().collect();
            if again {
                plan.note(name, Action::Restarted, &keys, None);
            } else {
                plan.note(
                    name,
                    Action::Updated,
                    &keys,
                    Some("not running: applies at its next start".into()),
                );
            }
            plan.restart.push(new.clone());
        } else {
            // A new dependency that is not at its condition now: gating holds
            // only if it starts again after it.
            let unmet = runs
                .then(|| {
                    new.depends_on
                        .iter()
                        .filter(|d| !old.depends_on.contains(d))
                        .find(|d| !self.met_now(&d.service, d.condition))
                })
                .flatten();
            if let Some(d) = unmet {
                plan.note(
                    name,
                    Action::Restarted,
                    &diff.in_place,
                    Some(format!(
                        "its new dependency `{}` is not {} yet",
                        d.service,
                        condition_name(d.condition)
                    )),
                );
                plan.restart.push(new.clone());
            } else {
                let because = (!runs).then(|| "not running: applies at its next start".into());
                plan.note(name, Action::Updated, &diff.in_place, because);
                plan.update.push(new.clone());
            }
        }
    }

    /// True when `name` is a service at `condition` now.
    fn met_now(&self, name: &str, condition: Condition) -> bool {
        self.entries.get(name).is_some_and(|dep| match condition {
            Condition::Ready => dep.ready,
            Condition::Started => dep.started || dep.ready,
            Condition::Completed => dep.completed,
        })
    }

    /// The graph the plan leads to must be valid: every dependency known (a
    /// service still named in a `depends_on` cannot be removed), one service
    /// per port, no cycle.
    fn check_plan(&self, plan: &Plan) -> Result<()> {
        // name → (dependencies, port)
        let mut graph: BTreeMap<String, (Vec<String>, Option<u16>)> = self
            .entries
            .iter()
            .filter(|(n, _)| !plan.remove.contains(n))
            .map(|(n, e)| {
                let deps = e.spec.deps.iter().map(|d| d.service.clone()).collect();
                (n.clone(), (deps, e.spec.port))
            })
            .collect();
        for c in plan.restart.iter().chain(&plan.update) {
            let deps = c.depends_on.iter().map(|d| d.service.clone()).collect();
            graph.insert(c.name.clone(), (deps, c.port));
        }
        for (def, _) in &plan.add {
            let port = match def {
                ServiceDef::Process(c) => c.port,
                ServiceDef::Plugin(p) => p.port,
            };
            graph.insert(def.name().to_owned(), (def.deps(), port));
        }
        let mut problems = Vec::new();
        let mut ports: BTreeMap<u16, &str> = BTreeMap::new();
        for (name, (deps, port)) in &graph {
            for d in deps {
                if graph.contains_key(d) {
                    continue;
                }
                if plan.remove.contains(d) {
                    problems.push(format!(
                        "service `{name}` depends on `{d}`, which this change removes"
                    ));
                } else {
                    problems.push(format!("service `{name}` depends on unknown service `{d}`"));
                }
            }
            if let Some(p) = port {
                if let Some(other) = ports.insert(*p, name) {
                    problems.push(format!("services `{other}` and `{name}` both use port {p}"));
                }
            }
        }
        let deps_only: BTreeMap<String, Vec<String>> =
            graph.into_iter().map(|(n, (d, _))| (n, d)).collect();
        if let Err(cycle) = topo_order(&deps_only) {
            problems.push(format!("dependency cycle: {}", cycle.join(" → ")));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(rejected(format!(
                "{}; nothing was changed",
                problems.join("; ")
            )))
        }
    }

    /// Runs a checked plan: stop, rebuild, start; answers on `tx`.
    fn run_plan(
        &mut self,
        mut plan: Plan,
        at: Instant,
        tx: oneshot::Sender<Result<ApplyReport>>,
        ctx: &mut Context<Self>,
    ) {
        let restarted: Vec<String> = plan.restart.iter().map(|c| c.name.clone()).collect();
        // What stops: the removed and restarted services that run, and what
        // runs of their dependents in the graph as it is now (dependents first).
        let mut to_stop: Vec<String> = Vec::new();
        let removed = plan.remove.clone();
        for n in removed.iter().chain(&restarted) {
            if self.entries.get(n).is_some_and(|e| e.in_flight()) && !to_stop.contains(n) {
                to_stop.push(n.clone());
            }
            for d in self.dependents(n) {
                let runs = self.entries.get(&d).is_some_and(|e| e.in_flight());
                if runs && !to_stop.contains(&d) {
                    to_stop.push(d.clone());
                    if !removed.contains(&d) && !restarted.contains(&d) {
                        let what = if removed.contains(n) {
                            "removed"
                        } else {
                            "restarted"
                        };
                        let keys = plan
                            .report
                            .get(&d)
                            .map(|c| c.keys.clone())
                            .unwrap_or_default();
                        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                        plan.note(
                            &d,
                            Action::Restarted,
                            &keys,
                            Some(format!("depends on `{n}`, which was {what}")),
                        );
                    }
                }
            }
        }
        // Nothing of what is removed starts again meanwhile.
        for n in &removed {
            if let Some(e) = self.entries.get_mut(n) {
                e.needed = false;
            }
        }
        // Said before the stops, so that subscribers read why they come.
        for name in &restarted {
            if let Some(c) = plan.report.get(name) {
                self.broadcast(
                    name,
                    EventKind::Reconfigured {
                        keys: c.keys.clone(),
                        restart: c.action == Action::Restarted,
                    },
                );
            }
        }
        let timeout = self.shutdown_timeout;
        self.cascade(to_stop.clone(), timeout, ctx)
            .then(move |_, act, ctx| {
                let rx = if act.shutting_down || act.closed {
                    None
                } else {
                    Some(act.rebuild_and_start(&mut plan, &to_stop, ctx))
                };
                actix::fut::wrap_future(async move {
                    let outcome = match rx {
                        Some(Some(rx)) => rx.await.unwrap_or(Err(Error::SupervisorGone)),
                        Some(None) => Ok(()),
                        None => Err(rejected("a shutdown began while the change was applied")),
                    };
                    (plan, outcome)
                })
            })
            .map(move |(plan, outcome), act, ctx| {
                act.applying = false;
                let report = act.report(plan, at, outcome.err().map(|e| e.to_string()));
                let _ = tx.send(Ok(report));
                act.next_change(ctx);
            })
            .spawn(ctx);
    }

    /// The graph after the plan's stops: entries removed, replaced, updated and
    /// added, order and heights rebuilt; then what was stopped (and is still a
    /// service) or added starts. Returns the answer to wait for, when anything starts.
    fn rebuild_and_start(
        &mut self,
        plan: &mut Plan,
        stopped: &[String],
        ctx: &mut Context<Self>,
    ) -> Option<oneshot::Receiver<Result<()>>> {
        for n in &plan.remove {
            self.health.do_send(Unwatch { name: n.clone() });
            if let Some(mut e) = self.entries.remove(n) {
                e.disarm_ready(ctx);
                if let Some(t) = e.restart_timer.take() {
                    ctx.cancel_future(t);
                }
            }
            let mut r = registry(&self.registry);
            r.items.remove(n);
            r.touched.remove(n);
            drop(r);
            tracing::info!(service = %n, "removed");
            self.broadcast(n, EventKind::Removed);
        }
        // A request still waiting for a removed service would wait forever.
        let (gone, rest): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| w.names.iter().any(|n| plan.remove.contains(n)));
        self.waiters = rest;
        for w in gone {
            let names: Vec<&String> = w.names.iter().filter(|n| plan.remove.contains(n)).collect();
            let _ = w.tx.send(Err(Error::Other(format!(
                "service `{}` was removed while the request waited for it",
                names.first().map(|n| n.as_str()).unwrap_or_default()
            ))));
        }
        let mut start: Vec<String> = stopped
            .iter()
            .filter(|n| !plan.remove.contains(n))
            .cloned()
            .collect();
        for cfg in std::mem::take(&mut plan.restart) {
            let addr = ServiceActor::new(cfg.clone(), self.shared.clone()).start();
            let spec = Spec::of_service(&cfg, Runner::Process(addr), &self.project);
            let Some(e) = self.entries.get_mut(&cfg.name) else {
                continue;
            };
            e.spec = spec;
            let again = e.state == ServiceState::Failed || start.contains(&cfg.name);
            if e.state == ServiceState::Failed {
                e.set_state(ServiceState::Stopped, Some("reconfigured".into()));
            }
            if again && !start.contains(&cfg.name) {
                start.push(cfg.name.clone());
            }
        }
        for cfg in std::mem::take(&mut plan.update) {
            self.update_in_place(cfg, plan, ctx);
        }
        for (def, origin) in std::mem::take(&mut plan.add) {
            let name = def.name().to_owned();
            let spec = match def {
                ServiceDef::Process(cfg) => {
                    let addr = ServiceActor::new((*cfg).clone(), self.shared.clone()).start();
                    Spec::of_service(&cfg, Runner::Process(addr), &self.project)
                }
                ServiceDef::Plugin(p) => Spec::of_plugin(&p, self.shared.state_dir.clone()),
            };
            self.entries
                .insert(name.clone(), Entry::new(name.clone(), spec, origin));
            tracing::info!(service = %name, "added");
            self.broadcast(&name, EventKind::Added);
            start.push(name);
        }
        for n in &plan.adopt {
            if let Some(e) = self.entries.get_mut(n) {
                e.origin = Origin::Config;
            }
        }
        if let Some(settings) = plan.settings.take() {
            self.take_settings(settings, &plan.setting_changes);
        }
        match self.graph_order() {
            Ok(order) => self.order = order,
            // Checked before the plan ran: cannot happen.
            Err(e) => tracing::error!("the changed graph has no order: {e}"),
        }
        self.rebuild();
        if start.is_empty() {
            return None;
        }
        for n in &start {
            if let Some(e) = self.entries.get_mut(n) {
                e.attempts = 0;
            }
        }
        // What they depend on comes along (started as `up` would, when it does
        // not run); a dependency that completed stays completed.
        let closure = self.closure(Some(&start)).unwrap_or_default();
        let needed: Vec<String> = closure
            .iter()
            .filter(|n| start.contains(n) || !self.entries.get(*n).is_some_and(|e| e.completed))
            .cloned()
            .collect();
        self.need(&needed);
        let (_, rx) = self.wait_for(needed, Vec::new(), false);
        self.advance(ctx);
        self.check_waiters(ctx);
        Some(rx)
    }

    /// A process service's new configuration that applies to what runs: the
    /// spec is replaced (the actor kept), the actor takes the new stop, and a
    /// changed probe takes over at once.
    fn update_in_place(&mut self, cfg: ServiceConfig, plan: &Plan, ctx: &mut Context<Self>) {
        let keys = plan
            .report
            .get(&cfg.name)
            .map(|c| c.keys.clone())
            .unwrap_or_default();
        let Some(e) = self.entries.get_mut(&cfg.name) else {
            return;
        };
        let runner = e.spec.runner.clone();
        let health_changed = e.spec.health != cfg.health;
        e.spec = Spec::of_service(&cfg, runner, &self.project);
        if let Runner::Process(addr) = &e.spec.runner {
            addr.do_send(Reconfigure(Box::new(cfg.clone())));
        }
        let running = matches!(e.phase, Phase::Starting | Phase::Running);
        let ready = e.ready;
        let no_probe_now = e.spec.health.is_none();
        let window = e.spec.start_window;
        if running && health_changed {
            e.health_text = None;
            e.health_latency_ms = None;
            if no_probe_now {
                self.health.do_send(Unwatch {
                    name: cfg.name.clone(),
                });
                if !ready {
                    // No probe to wait for any more: its start window decides.
                    self.begin_start_window(&cfg.name, window, ctx);
                }
            } else {
                self.watch(&cfg.name, ready, ctx);
            }
        }
        tracing::info!(service = %cfg.name, "reconfigured in place: {}", keys.join(", "));
        self.broadcast(
            &cfg.name,
            EventKind::Reconfigured {
                keys,
                restart: false,
            },
        );
    }

    /// Takes the settings of a new configuration where they can change.
    fn take_settings(&mut self, new: Settings, changes: &[SettingChange]) {
        let applied = |key: &str| changes.iter().any(|c| c.key == key && c.applied);
        if applied("shutdown_timeout") {
            self.shutdown_timeout = new.shutdown_timeout;
            self.settings.shutdown_timeout = new.shutdown_timeout;
        }
        if applied("health_interval") {
            self.settings.health_interval = new.health_interval;
        }
        if applied("start_window") {
            self.settings.start_window = new.start_window;
        }
    }

    /// The report of a finished change.
    fn report(&self, plan: Plan, at: Instant, failed: Option<String>) -> ApplyReport {
        let mut services: Vec<ServiceChange> = Vec::new();
        let mut report = plan.report;
        for n in &self.order {
            // Not in it: not part of a file reload (added on its own, a plugin).
            if let Some(c) = report.remove(n) {
                services.push(c);
            }
        }
        services.extend(report.into_values());
        ApplyReport {
            services,
            settings: plan.setting_changes,
            elapsed: at.elapsed(),
            failed,
        }
    }
}

/// `ready`, `started`, `completed`.
pub(super) fn condition_name(c: Condition) -> &'static str {
    match c {
        Condition::Ready => "ready",
        Condition::Started => "started",
        Condition::Completed => "completed",
    }
}

/// Which settings differ, and whether a running instance can take each.
fn setting_changes(old: &Settings, new: &Settings) -> Vec<SettingChange> {
    let mut out = Vec::new();
    let mut add = |changed: bool, key: &str, applied: bool, note: &str| {
        if changed {
            out.push(SettingChange {
                key: key.to_owned(),
                applied,
                note: note.to_owned(),
            });
        }
    };
    add(
        old.shutdown_timeout != new.shutdown_timeout,
        "shutdown_timeout",
        true,
        "the next stop uses it",
    );
    add(
        old.health_interval != new.health_interval,
        "health_interval",
        true,
        "through each service whose probe uses the default",
    );
    add(
        old.start_window != new.start_window,
        "start_window",
        true,
        "through each service that uses the default",
    );
    add(
        old.metrics != new.metrics,
        "metrics",
        false,
        "the endpoint is bound at `up`: it needs a new `up`",
    );
    add(
        old.log_max_bytes != new.log_max_bytes,
        "log_max_bytes",
        false,
        "the log writer is set up at `up`: it needs a new `up`",
    );
    add(
        old.state_dir != new.state_dir,
        "state_dir",
        false,
        "another state directory is another instance: it needs a new `up`",
    );
    out
}
