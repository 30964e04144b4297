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
use crate::messages::{Apply, Change, Preview};
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
    /// Process services whose new configuration needs a new process; with
    /// `true` when they run (or failed) and restart now, `false` when the new
    /// configuration waits for their next start.
    restart: Vec<(ServiceConfig, bool)>,
    /// Process services whose new configuration applies to what runs.
    update: Vec<ServiceConfig>,
    /// Services added on their own that a file now defines.
    adopt: Vec<String>,
    /// The new settings, when the change is a configuration.
    settings: Option<Settings>,
    setting_changes: Vec<SettingChange>,
    /// What the report says of each service, by name.
    report: BTreeMap<String, ServiceChange>,
    /// Each service's dependencies in the graph the change leads to.
    graph: BTreeMap<String, Vec<String>>,
    /// What the change stops (see `stops`), dependents first by height.
    to_stop: Vec<String>,
}

impl Plan {
    /// A process service that needs a new process: restarted now (`again`), or
    /// with the new configuration at its next start.
    fn restarting(
        &mut self,
        cfg: &ServiceConfig,
        again: bool,
        keys: &[&str],
        because: Option<String>,
    ) {
        if again {
            self.note(&cfg.name, Action::Restarted, keys, because);
        } else {
            let later = "not running: applies at its next start".to_owned();
            self.note(&cfg.name, Action::Updated, keys, Some(later));
        }
        self.restart.push((cfg.clone(), again));
    }

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

impl Handler<Preview> for Supervisor {
    type Result = Result<ApplyReport>;

    /// What the change would do, worked out against the graph as it is now; nothing
    /// is changed. (A change queued before it is not taken into account.)
    fn handle(&mut self, msg: Preview, _: &mut Context<Self>) -> Self::Result {
        if self.closed || self.shutting_down {
            return Err(Error::ShuttingDown);
        }
        let plan = self.plan(msg.0)?;
        let mut report = self.report(plan, Instant::now(), None);
        report.preview = true;
        Ok(report)
    }
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
            if self.waiters.iter().any(|w| w.up) || self.orphans == Some(true) {
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

    /// Once, at the first [`Up`], when this Supervisor holds the instance lock
    /// (so no other instance runs on the state directory): stops what an earlier
    /// run left of services no configuration names, in parallel with the start.
    pub(super) fn stop_orphans(&mut self, ctx: &mut Context<Self>) {
        if self.orphans.is_some() || self.lock.is_none() {
            return;
        }
        self.orphans = Some(true);
        let project = self.project.clone();
        let known: BTreeSet<String> = self.entries.keys().cloned().collect();
        async move {
            blocking(move || crate::janitor::stop_orphans(&project, &known, SWEEP_GRACE)).await
        }
        .into_actor(self)
        .map(|res, act, ctx| {
            act.orphans = Some(false);
            match res.and_then(|found| found.map_err(Error::from)) {
                Ok(found) => {
                    for (service, report) in found {
                        let stopped: Vec<String> =
                            report.stopped.iter().map(|p| p.to_string()).collect();
                        tracing::warn!(
                            "stopped {} process(es) an earlier run left of `{service}`, which no \
                             configuration names (added at runtime?): {}",
                            stopped.len(),
                            stopped.join(", ")
                        );
                    }
                }
                Err(e) => tracing::warn!("looking for what an earlier run left: {e}"),
            }
            act.next_change(ctx);
        })
        .spawn(ctx);
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
                if config.settings.state_dir != self.settings.state_dir {
                    return Err(rejected(format!(
                        "the configuration's state directory is {}, this instance's is {}: \
                         another state directory is another instance",
                        config.settings.state_dir.display(),
                        self.settings.state_dir.display()
                    )));
                }
                // What only changes in place, with its old configuration.
                let mut in_place: Vec<(&ServiceConfig, &ServiceConfig, Vec<&'static str>)> =
                    Vec::new();
                for (name, cfg) in &config.services {
                    let Some(e) = self.entries.get(name) else {
                        plan.note(name, Action::Added, &[], None);
                        let def = ServiceDef::Process(Box::new(cfg.clone()));
                        plan.add.push((def, Origin::Config));
                        continue;
                    };
                    let Some(old) = &e.spec.config else {
                        return Err(rejected(format!(
                            "service `{name}` is a plugin registered in code: a configuration \
                             cannot define a service of that name"
                        )));
                    };
                    if e.origin == Origin::Added {
                        plan.adopt.push(name.clone());
                    }
                    let diff = old.changes(cfg);
                    // A failed service whose configuration changed gets another chance.
                    let again = e.in_flight() || e.state == ServiceState::Failed;
                    if diff.is_empty() {
                        plan.note(name, Action::Unchanged, &[], None);
                    } else if !diff.restart.is_empty() {
                        let keys: Vec<&str> =
                            diff.restart.iter().chain(&diff.in_place).copied().collect();
                        plan.restarting(cfg, again, &keys, None);
                    } else {
                        in_place.push((old, cfg, diff.in_place));
                    }
                }
                self.sort_in_place(&mut plan, in_place);
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
                    if let Some(why) = p.refusal() {
                        return Err(rejected(why));
                    }
                }
                plan.note(&name, Action::Added, &[], None);
                plan.add.push((def, Origin::Added));
            }
            Change::Remove(name) => {
                if self.entries.get(&name).is_none_or(|e| e.leaving) {
                    return Err(Error::UnknownService(name));
                }
                plan.note(&name, Action::Removed, &[], None);
                plan.remove.push(name);
            }
        }
        plan.graph = self.check_plan(&plan)?;
        plan.to_stop = self.stops(&mut plan);
        Ok(plan)
    }

    /// What a plan stops: what is removed or restarted and runs, and what runs
    /// of their dependents — of a removed service in the graph as it runs, of a
    /// restarted one in the graph the change leads to (each dependent noted in
    /// the report as restarted, and why).
    fn stops(&self, plan: &mut Plan) -> Vec<String> {
        let removed = plan.remove.clone();
        let restarted: Vec<String> = plan
            .restart
            .iter()
            .filter(|(_, again)| *again)
            .map(|(c, _)| c.name.clone())
            .collect();
        let mut to_stop: Vec<String> = Vec::new();
        for (n, removing) in removed
            .iter()
            .map(|n| (n, true))
            .chain(restarted.iter().map(|n| (n, false)))
        {
            let dependents = if removing {
                self.dependents(n)
            } else {
                graph::dependents_in(&plan.graph, n)
            };
            for d in std::iter::once(n.clone()).chain(dependents) {
                let runs = self.entries.get(&d).is_some_and(|e| e.in_flight());
                if !runs || to_stop.contains(&d) {
                    continue;
                }
                to_stop.push(d.clone());
                if !removed.contains(&d) && !restarted.contains(&d) {
                    let keys = plan
                        .report
                        .get(&d)
                        .map(|c| c.keys.clone())
                        .unwrap_or_default();
                    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                    let what = if removing { "is removed" } else { "restarts" };
                    let because = format!("depends on `{n}`, which {what}");
                    plan.note(&d, Action::Restarted, &keys, Some(because));
                }
            }
        }
        to_stop
    }

    /// Sorts the services whose configuration changed only in place: updated,
    /// unless one runs and a new dependency of it will not be at its condition
    /// when it is (added, restarted by this change, or not there yet) — then it
    /// restarts too, so that it starts after that dependency. Repeated until
    /// nothing moves (one that moves can be another's new dependency).
    fn sort_in_place(
        &self,
        plan: &mut Plan,
        mut todo: Vec<(&ServiceConfig, &ServiceConfig, Vec<&'static str>)>,
    ) {
        loop {
            let restarting: BTreeSet<String> = plan
                .restart
                .iter()
                .filter(|(_, again)| *again)
                .map(|(c, _)| c.name.clone())
                .chain(plan.add.iter().map(|(d, _)| d.name().to_owned()))
                .collect();
            let moves = todo.iter().enumerate().find_map(|(i, (old, new, _))| {
                let runs = self.entries.get(&new.name).is_some_and(|e| e.in_flight());
                runs.then(|| self.unmet_new_dependency(old, new, &restarting))
                    .flatten()
                    .map(|why| (i, why))
            });
            let Some((i, why)) = moves else {
                break;
            };
            let (_, new, keys) = todo.remove(i);
            plan.restarting(new, true, &keys, Some(why));
        }
        for (_, new, keys) in todo {
            let runs = self.entries.get(&new.name).is_some_and(|e| e.in_flight());
            let because = (!runs).then(|| "not running: applies at its next start".into());
            plan.note(&new.name, Action::Updated, &keys, because);
            plan.update.push(new.clone());
        }
    }

    /// Why a new dependency of `new` will not be at its condition: it is in
    /// `restarting` (added or restarted by this change) or not at it now.
    fn unmet_new_dependency(
        &self,
        old: &ServiceConfig,
        new: &ServiceConfig,
        restarting: &BTreeSet<String>,
    ) -> Option<String> {
        new.depends_on
            .iter()
            .filter(|d| !old.depends_on.contains(d))
            .find_map(|d| {
                let cond = d.condition.as_str();
                if restarting.contains(&d.service) {
                    Some(format!(
                        "its new dependency `{}` starts with this change",
                        d.service
                    ))
                } else if !self
                    .entries
                    .get(&d.service)
                    .is_some_and(|dep| graph::at_condition(dep, d.condition))
                {
                    Some(format!(
                        "its new dependency `{}` is not {cond} yet",
                        d.service
                    ))
                } else {
                    None
                }
            })
    }

    /// The graph the plan leads to must be valid: every dependency known (a
    /// service still named in a `depends_on` cannot be removed), one service
    /// per port, no cycle. Returns its dependencies.
    fn check_plan(&self, plan: &Plan) -> Result<BTreeMap<String, Vec<String>>> {
        let mut graph = self.shape();
        graph.retain(|n, _| !plan.remove.contains(n));
        for c in plan.restart.iter().map(|(c, _)| c).chain(&plan.update) {
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
        let problems = graph_problems(&graph, &plan.remove);
        if problems.is_empty() {
            Ok(graph::deps_of(&graph))
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
        let removed = plan.remove.clone();
        let to_stop = plan.to_stop.clone();
        // Nothing of what is removed starts again meanwhile, and no request
        // can need it any more.
        for n in &removed {
            if let Some(e) = self.entries.get_mut(n) {
                e.needed = false;
                e.leaving = true;
            }
        }
        // Said before the stops, so that subscribers read why they come.
        for (cfg, again) in &plan.restart {
            if let Some(c) = plan.report.get(&cfg.name) {
                self.broadcast(
                    &cfg.name,
                    EventKind::Reconfigured {
                        keys: c.keys.clone(),
                        restart: *again,
                    },
                );
            }
        }
        let timeout = self.settings.shutdown_timeout;
        self.cascade(to_stop.clone(), timeout, ctx)
            .then(move |(reports, _), act, ctx| {
                // A removed service whose stop left something stays in the
                // sweep registry: the forced sweep and a dropped handle still
                // reach what is left of it.
                let unclean: Vec<String> = reports
                    .iter()
                    .filter(|r| !r.clean())
                    .map(|r| r.name.clone())
                    .collect();
                let rx = if act.shutting_down || act.closed {
                    None
                } else {
                    Some(act.rebuild_and_start(&mut plan, &to_stop, &unclean, ctx))
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
    /// service) or added starts. Returns the answer to wait for, when anything
    /// starts. `unclean`: whose stop left something.
    fn rebuild_and_start(
        &mut self,
        plan: &mut Plan,
        stopped: &[String],
        unclean: &[String],
        ctx: &mut Context<Self>,
    ) -> Option<oneshot::Receiver<Result<()>>> {
        for n in &plan.remove {
            self.health.do_send(Unwatch { name: n.clone() });
            if let Some(mut e) = self.entries.remove(n) {
                e.disarm_ready(ctx);
                if let Some(t) = e.restart_timer.take() {
                    ctx.cancel_future(t);
                }
                self.retired_op = self.retired_op.max(e.op + 1);
            }
            if !unclean.contains(n) {
                let mut r = registry(&self.registry);
                r.items.remove(n);
                r.touched.remove(n);
            }
            tracing::info!(service = %n, "removed");
            self.broadcast(n, EventKind::Removed);
        }
        let mut start: Vec<String> = stopped
            .iter()
            .filter(|n| !plan.remove.contains(n))
            .cloned()
            .collect();
        for (cfg, again) in std::mem::take(&mut plan.restart) {
            let spec = self.process_spec(&cfg);
            let Some(e) = self.entries.get_mut(&cfg.name) else {
                continue;
            };
            e.spec = spec;
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
                ServiceDef::Process(cfg) => self.process_spec(&cfg),
                ServiceDef::Plugin(p) => Spec::of_plugin(&p, self.shared.state_dir.clone()),
            };
            let mut e = Entry::new(name.clone(), spec, origin);
            e.op = self.retired_op;
            self.entries.insert(name.clone(), e);
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
            self.take_settings(settings);
        }
        match self.graph_order() {
            Ok(order) => self.order = order,
            // Checked before the plan ran: cannot happen.
            Err(e) => tracing::error!("the changed graph has no order: {e}"),
        }
        self.rebuild();
        if start.is_empty() {
            self.check_waiters(ctx);
            return None;
        }
        let (names, _) = self.need_again(&start);
        let (_, rx) = self.wait_for(names, Vec::new(), false);
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
                if ready {
                    // Nothing will say it is healthy again: it runs, so it is.
                    e.set_state(ServiceState::Ready, None);
                } else {
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

    /// Takes the settings of a new configuration that a running instance can
    /// take (those `setting_changes` says are applied); `metrics` and
    /// `log_max_bytes` stay as `up` set them up (`state_dir` cannot differ:
    /// `plan` refuses another).
    fn take_settings(&mut self, new: Settings) {
        self.settings.shutdown_timeout = new.shutdown_timeout;
        self.settings.health_interval = new.health_interval;
        self.settings.start_window = new.start_window;
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
            preview: false,
        }
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
    out
}
