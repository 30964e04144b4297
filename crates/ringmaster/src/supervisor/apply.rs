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
use crate::balancer::SetMinReady;
use crate::change::{Action, ApplyReport, ServiceChange, ServiceDef, SettingChange};
use crate::config::replica_of;
use crate::messages::{Apply, Change, Preview};
use crate::service::Reconfigure;

/// What a queued change asks for: a [`Change`], the rolling restart of a
/// replicated service ([`Restart`] of it), or one service stopped or started on
/// request (`stopped.rs`).
pub(super) enum Job {
    Change(Change),
    Roll(String),
    Stop(String),
    Start(String),
}

/// A change waiting for its turn.
pub(super) struct Queued {
    change: Job,
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
    /// Replicated services rolled after the rest of the change: each with its
    /// new configuration and the members to replace, one at a time.
    roll: Vec<(String, ServiceConfig, Vec<String>)>,
    /// Replicated services whose own entry takes a new configuration in place
    /// (`replicas`, `min_ready`, or what their members take through `roll`).
    regroup: Vec<ServiceConfig>,
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
        let plan = self.plan(Job::Change(msg.0))?;
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
        let rx = self.queue(Job::Change(msg.0), ctx);
        Box::pin(async move { rx.await.unwrap_or(Err(Error::SupervisorGone)) })
    }
}

impl Supervisor {
    /// Queues `job` behind the changes before it; returns its answer.
    pub(super) fn queue(
        &mut self,
        job: Job,
        ctx: &mut Context<Self>,
    ) -> oneshot::Receiver<Result<ApplyReport>> {
        let (tx, rx) = oneshot::channel();
        self.changes.push_back(Queued {
            change: job,
            at: Instant::now(),
            tx,
        });
        self.next_change(ctx);
        rx
    }

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
            match q.change {
                Job::Stop(name) => {
                    self.applying = true;
                    self.run_stop(name, q.at, q.tx, ctx);
                }
                Job::Start(name) => {
                    self.applying = true;
                    self.run_start(name, q.at, q.tx, ctx);
                }
                job => match self.plan(job) {
                    Ok(plan) => {
                        self.applying = true;
                        self.run_plan(plan, q.at, q.tx, ctx);
                    }
                    Err(e) => {
                        let _ = q.tx.send(Err(e));
                    }
                },
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
    fn plan(&self, change: Job) -> Result<Plan> {
        let mut plan = Plan::default();
        // Ports members added by this plan take (not in the graph yet).
        let mut taken: BTreeSet<u16> = self.used_ports();
        match change {
            Job::Change(Change::Config(config)) => {
                let config = *config;
                if config.settings.state_dir != self.settings.state_dir {
                    return Err(rejected(format!(
                        "the configuration's state directory is {}, this instance's is {}: \
                         another state directory is another instance",
                        config.settings.state_dir.display(),
                        self.settings.state_dir.display()
                    )));
                }
                taken.extend(config.services.values().filter_map(|c| c.port));
                // What only changes in place, with its old configuration.
                let mut in_place: Vec<(&ServiceConfig, &ServiceConfig, Vec<&'static str>)> =
                    Vec::new();
                for (name, cfg) in &config.services {
                    let Some(e) = self.entries.get(name) else {
                        plan.note(name, Action::Added, &[], None);
                        let def = ServiceDef::Process(Box::new(cfg.clone()));
                        plan.add.push((def, Origin::Config));
                        self.first_members(&mut plan, cfg, Origin::Config, &mut taken)?;
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
                    if old.replicas.is_some() || cfg.replicas.is_some() {
                        self.plan_group(&mut plan, e, old, cfg, &mut taken)?;
                    } else if diff.is_empty() {
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
                    let member = replica_of(&e.name).is_some();
                    if e.origin == Origin::Config
                        && !member
                        && !config.services.contains_key(&e.name)
                    {
                        self.removing(&mut plan, &e.name);
                    }
                }
                plan.setting_changes = setting_changes(&self.settings, &config.settings);
                plan.settings = Some(config.settings);
            }
            Job::Change(Change::Add(def)) => {
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
                if let ServiceDef::Process(cfg) = &def {
                    taken.extend(cfg.port);
                    self.first_members(&mut plan, cfg, Origin::Added, &mut taken)?;
                }
                plan.add.push((def, Origin::Added));
            }
            Job::Change(Change::Remove(name)) => {
                if self.entries.get(&name).is_none_or(|e| e.leaving) {
                    return Err(Error::UnknownService(name));
                }
                if let Some((group, _)) = replica_of(&name) {
                    return Err(rejected(format!(
                        "`{name}` is a replica of `{group}`: scale `{group}` instead"
                    )));
                }
                self.removing(&mut plan, &name);
            }
            Job::Change(Change::Scale { service, replicas }) => {
                let old = self.group_config(&service)?;
                if replicas < old.min_ready.max(1) {
                    return Err(rejected(format!(
                        "`{service}` needs at least {} replica(s) (min_ready)",
                        old.min_ready.max(1)
                    )));
                }
                let mut cfg = old.clone();
                cfg.replicas = Some(replicas);
                let e = &self.entries[&service];
                self.plan_group(&mut plan, e, old, &cfg, &mut taken)?;
            }
            Job::Stop(name) | Job::Start(name) => {
                return Err(rejected(format!(
                    "a stop or start of `{name}` changes no configuration"
                )));
            }
            Job::Roll(service) => {
                let cfg = self.group_config(&service)?.clone();
                let members = self.members(&service);
                let because = "one replica at a time, each new one ready before the one it \
                               replaces stops"
                    .to_owned();
                plan.note(&service, Action::Restarted, &[], Some(because));
                plan.roll.push((service, cfg, members));
            }
        }
        plan.graph = self.check_plan(&plan)?;
        plan.to_stop = self.stops(&mut plan);
        Ok(plan)
    }

    /// The configuration of replicated service `name`, or why there is none.
    fn group_config(&self, name: &str) -> Result<&ServiceConfig> {
        let e = self
            .entries
            .get(name)
            .filter(|e| !e.leaving)
            .ok_or_else(|| Error::UnknownService(name.to_owned()))?;
        match (&e.spec.group, &e.spec.config) {
            (Some(_), Some(cfg)) => Ok(cfg),
            _ => Err(rejected(format!(
                "`{name}` has no `replicas`: give it `replicas` in its table (its balancer then \
                 takes its port) to run several"
            ))),
        }
    }

    /// `name` goes, with its members when it is a replicated service.
    fn removing(&self, plan: &mut Plan, name: &str) {
        for n in std::iter::once(name.to_owned()).chain(self.members(name)) {
            plan.note(&n, Action::Removed, &[], None);
            plan.remove.push(n);
        }
    }

    /// Members `indices` of `cfg` join the graph (on ports not in `taken`).
    fn add_members(
        &self,
        plan: &mut Plan,
        cfg: &ServiceConfig,
        indices: &[u32],
        origin: Origin,
        taken: &mut BTreeSet<u16>,
    ) -> Result<()> {
        for m in self.new_members(cfg, indices, taken)? {
            plan.note(&m.name, Action::Added, &[], None);
            plan.add.push((ServiceDef::Process(Box::new(m)), origin));
        }
        Ok(())
    }

    /// The members of `cfg`, a service the plan adds or makes replicated: `0..replicas`.
    fn first_members(
        &self,
        plan: &mut Plan,
        cfg: &ServiceConfig,
        origin: Origin,
        taken: &mut BTreeSet<u16>,
    ) -> Result<()> {
        let indices: Vec<u32> = (0..cfg.replicas.unwrap_or(0)).collect();
        self.add_members(plan, cfg, &indices, origin, taken)
    }

    /// A service that has `replicas` before or after the change (`e`, with `old`
    /// its configuration). Made replicated or plain, it is another kind of
    /// service under the same name: its entry restarts (with what depends on
    /// it) and its members come or go. Replicated before and after: a new port
    /// or `allow` restarts its balancer; a new `replicas` adds members or
    /// retires some (`scale_members`); a change its members see rolls them
    /// (`roll_members`).
    fn plan_group(
        &self,
        plan: &mut Plan,
        e: &Entry,
        old: &ServiceConfig,
        new: &ServiceConfig,
        taken: &mut BTreeSet<u16>,
    ) -> Result<()> {
        let name = &new.name;
        let diff = old.changes(new);
        let mut keys: Vec<&str> = diff.restart.iter().chain(&diff.in_place).copied().collect();
        let again = e.in_flight() || e.state == ServiceState::Failed;
        if old.replicas.is_none() || new.replicas.is_none() {
            if !keys.contains(&"replicas") {
                keys.push("replicas");
            }
            plan.restarting(new, again, &keys, None);
            for m in self.members(name) {
                plan.note(&m, Action::Removed, &[], None);
                plan.remove.push(m);
            }
            return self.first_members(plan, new, e.origin, taken);
        }
        let own = |k: &&str| matches!(*k, "port" | "allow");
        if diff.restart.iter().any(own) {
            let own_keys: Vec<&str> = keys.iter().copied().filter(own).collect();
            plan.restarting(new, again, &own_keys, None);
        } else if keys.is_empty() {
            plan.note(name, Action::Unchanged, &[], None);
        } else {
            plan.note(name, Action::Updated, &keys, None);
        }
        plan.regroup.push(new.clone());
        let keep = self.scale_members(plan, e, new, taken)?;
        let theirs: Vec<&str> = keys
            .into_iter()
            .filter(|k| !matches!(*k, "port" | "allow" | "replicas" | "min_ready"))
            .collect();
        if !theirs.is_empty() {
            self.roll_members(plan, new, &keep, &theirs);
        }
        Ok(())
    }

    /// `new.replicas` members of `e`'s service: more are added under the lowest
    /// free numbers; of too many, those not ready go first, then the highest
    /// numbers (drained before they stop). Returns those kept, by number.
    fn scale_members(
        &self,
        plan: &mut Plan,
        e: &Entry,
        new: &ServiceConfig,
        taken: &mut BTreeSet<u16>,
    ) -> Result<Vec<String>> {
        let want = new.replicas.unwrap_or(1) as usize;
        let mut members = self.members(&new.name);
        if want > members.len() {
            let indices = self.free_indices(&new.name, want - members.len());
            self.add_members(plan, new, &indices, e.origin, taken)?;
            return Ok(members);
        }
        let number = |m: &String| replica_of(m).map_or(0, |(_, i)| i);
        let ready = |m: &String| self.entries.get(m).is_some_and(|e| e.ready);
        members.sort_by_key(|m| (!ready(m), number(m)));
        let extra = members.split_off(want);
        for m in extra {
            plan.note(&m, Action::Removed, &[], None);
            plan.remove.push(m);
        }
        members.sort_by_key(number);
        Ok(members)
    }

    /// `keep`, members of `new`'s service, take `new` (`keys` changed): those that
    /// run are rolled one at a time after the rest of the change; the others
    /// take it at their next start.
    fn roll_members(&self, plan: &mut Plan, new: &ServiceConfig, keep: &[String], keys: &[&str]) {
        let (running, idle): (Vec<&String>, Vec<&String>) = keep
            .iter()
            .partition(|m| self.entries.get(*m).is_some_and(|e| e.in_flight()));
        for m in idle {
            let index = replica_of(m).map_or(0, |(_, i)| i);
            let port = self.entries.get(m).and_then(|e| e.spec.port);
            plan.restarting(&new.replica(index, port), false, keys, None);
        }
        if running.is_empty() {
            return;
        }
        for m in &running {
            let because = "rolled: one replica at a time".to_owned();
            plan.note(m, Action::Restarted, keys, Some(because));
        }
        let running = running.into_iter().cloned().collect();
        plan.roll.push((new.name.clone(), new.clone(), running));
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
        for c in plan
            .restart
            .iter()
            .map(|(c, _)| c)
            .chain(&plan.update)
            .chain(&plan.regroup)
        {
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
        self.mark_leaving(&removed);
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
        // A lower min_ready applies before members are retired (a higher one
        // once the new members are in, `rebuild_and_start`).
        for cfg in &plan.regroup {
            let lower = self.entries.get(&cfg.name).and_then(|e| {
                let now = e.spec.config.as_ref()?.min_ready;
                (cfg.min_ready < now).then_some(e.spec.group.as_ref()?)
            });
            if let Some(g) = lower {
                g.addr.do_send(SetMinReady(cfg.min_ready));
            }
        }
        let timeout = self.settings.shutdown_timeout;
        self.cascade(to_stop.clone(), timeout, ctx)
            .then(move |(reports, _), act, ctx| {
                // A removed service whose stop left something stays in the
                // sweep registry: the forced sweep and a dropped handle still
                // reach what is left of it.
                let unclean = cascade::unclean(&reports);
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
            .then(|(mut plan, outcome), act, ctx| {
                // Rolled last: what the rest of the change started is ready.
                let rolls: VecDeque<_> = std::mem::take(&mut plan.roll).into();
                let rolled: Pin<Box<dyn ActorFuture<Self, Output = Result<()>>>> = match outcome {
                    Ok(()) => act.roll_all(rolls, ctx),
                    Err(e) => Box::pin(actix::fut::ready(Err(e))),
                };
                rolled.map(move |outcome, _, _| (plan, outcome))
            })
            .map(move |(plan, outcome), act, ctx| {
                act.applying = false;
                let report = act.report(plan, at, outcome.err().map(|e| e.to_string()));
                let _ = tx.send(Ok(report));
                act.next_change(ctx);
            })
            .spawn(ctx);
    }

    /// Rolls each replicated service of `rolls` in turn (see `roll`).
    fn roll_all(
        &mut self,
        mut rolls: VecDeque<(String, ServiceConfig, Vec<String>)>,
        ctx: &mut Context<Self>,
    ) -> Pin<Box<dyn ActorFuture<Self, Output = Result<()>>>> {
        let Some((group, cfg, members)) = rolls.pop_front() else {
            return Box::pin(actix::fut::ready(Ok(())));
        };
        Box::pin(
            self.roll(group, cfg, members.into(), ctx)
                .then(move |res, act, ctx| match res {
                    Ok(()) => act.roll_all(rolls, ctx),
                    Err(e) => Box::pin(actix::fut::ready(Err(e))),
                }),
        )
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
        self.remove_entries(&plan.remove, unclean, ctx);
        let mut start: Vec<String> = stopped
            .iter()
            .filter(|n| !plan.remove.contains(n))
            .cloned()
            .collect();
        for (cfg, again) in std::mem::take(&mut plan.restart) {
            let spec = self.spec_for(&cfg);
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
        for cfg in std::mem::take(&mut plan.regroup) {
            let Some(e) = self.entries.get_mut(&cfg.name) else {
                continue;
            };
            // A balancer restarted by this plan has its new spec already.
            if let Some(g) = e.spec.group.clone() {
                g.addr.do_send(SetMinReady(cfg.min_ready));
                e.spec = Spec::of_group(&cfg, g);
            }
        }
        for (def, origin) in std::mem::take(&mut plan.add) {
            let name = def.name().to_owned();
            let spec = match def {
                ServiceDef::Process(cfg) => self.spec_for(&cfg),
                ServiceDef::Plugin(p) => Spec::of_plugin(&p, self.shared.state_dir.clone()),
            };
            self.insert_entry(name.clone(), spec, origin);
            start.push(name);
        }
        for n in &plan.adopt {
            if let Some(e) = self.entries.get_mut(n) {
                e.origin = Origin::Config;
            }
        }
        // A member starts with its service: not alone while the service does not run.
        let starting: BTreeSet<String> = start
            .iter()
            .filter(|n| replica_of(n).is_none())
            .cloned()
            .collect();
        let entries = &self.entries;
        start.retain(|n| match replica_of(n) {
            Some((group, _)) => {
                starting.contains(group) || entries.get(group).is_some_and(|g| g.in_flight())
            }
            None => true,
        });
        if let Some(settings) = plan.settings.take() {
            self.take_settings(settings);
        }
        self.reorder();
        // Members removed: a service whose members left have all failed fails.
        let groups: BTreeSet<String> = plan
            .remove
            .iter()
            .filter_map(|n| replica_of(n).map(|(g, _)| g.to_owned()))
            .collect();
        for g in groups {
            self.group_check(&g, ctx);
        }
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

    /// Removes `names` from the graph (stopped already); `unclean`: those whose
    /// stop left something, which stay in the sweep registry.
    pub(super) fn remove_entries(
        &mut self,
        names: &[String],
        unclean: &[String],
        ctx: &mut Context<Self>,
    ) {
        for n in names {
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
    }

    /// Adds a service to the graph (its order and heights are rebuilt by the caller).
    pub(super) fn insert_entry(&mut self, name: String, spec: Spec, origin: Origin) {
        let mut e = Entry::new(name.clone(), spec, origin);
        e.op = self.retired_op;
        self.entries.insert(name.clone(), e);
        tracing::info!(service = %name, "added");
        self.broadcast(&name, EventKind::Added);
    }

    /// After the graph changed: its order, heights and sweep registry.
    pub(super) fn reorder(&mut self) {
        match self.graph_order() {
            Ok(order) => self.order = order,
            // Checked before the change ran: cannot happen.
            Err(e) => tracing::error!("the changed graph has no order: {e}"),
        }
        self.rebuild();
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
