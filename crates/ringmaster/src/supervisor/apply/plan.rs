//! Working a change out against the running graph: the [`Plan`] (what is added,
//! removed, restarted, updated in place, rolled), the sorting of keys into
//! restarts and in-place updates, replicated services (scale, roll, another
//! kind of service), what the change stops, and the check of the graph it leads
//! to. Nothing here changes the running graph.
use super::*;

/// A change worked out against the running graph.
#[derive(Default)]
pub(super) struct Plan {
    pub(super) add: Vec<(ServiceDef, Origin)>,
    pub(super) remove: Vec<String>,
    /// Process services whose new configuration needs a new process; with
    /// `true` when they run (or failed) and restart now, `false` when the new
    /// configuration waits for their next start.
    pub(super) restart: Vec<(ServiceConfig, bool)>,
    /// Process services whose new configuration applies to what runs.
    pub(super) update: Vec<ServiceConfig>,
    /// Services added on their own that a file now defines.
    pub(super) adopt: Vec<String>,
    /// The new settings, when the change is a configuration.
    pub(super) settings: Option<Settings>,
    pub(super) setting_changes: Vec<SettingChange>,
    /// What the report says of each service, by name.
    pub(super) report: BTreeMap<String, ServiceChange>,
    /// Each service's dependencies in the graph the change leads to.
    pub(super) graph: BTreeMap<String, Vec<String>>,
    /// Replicated services rolled after the rest of the change: each with its
    /// new configuration and the members to replace, one at a time.
    pub(super) roll: Vec<(String, ServiceConfig, Vec<String>)>,
    /// Replicated services whose own entry takes a new configuration in place
    /// (`replicas`, `min_ready`, or what their members take through `roll`).
    pub(super) regroup: Vec<ServiceConfig>,
    /// What the change stops (see `stops`), dependents first by height.
    pub(super) to_stop: Vec<String>,
}

impl Plan {
    /// A process service that needs a new process: restarted now (`again`), or
    /// with the new configuration at its next start.
    pub(super) fn restarting(
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

    pub(super) fn note(
        &mut self,
        name: &str,
        action: Action,
        keys: &[&str],
        because: Option<String>,
    ) {
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

pub(super) fn rejected(text: impl Into<String>) -> Error {
    Error::Rejected(text.into())
}

impl Supervisor {
    /// Works `change` out against the running graph.
    pub(super) fn plan(&self, change: Job) -> Result<Plan> {
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
    pub(super) fn group_config(&self, name: &str) -> Result<&ServiceConfig> {
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
    pub(super) fn removing(&self, plan: &mut Plan, name: &str) {
        for n in std::iter::once(name.to_owned()).chain(self.members(name)) {
            plan.note(&n, Action::Removed, &[], None);
            plan.remove.push(n);
        }
    }

    /// Members `indices` of `cfg` join the graph (on ports not in `taken`).
    pub(super) fn add_members(
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
    pub(super) fn first_members(
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
    pub(super) fn plan_group(
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
    pub(super) fn scale_members(
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
    pub(super) fn roll_members(
        &self,
        plan: &mut Plan,
        new: &ServiceConfig,
        keep: &[String],
        keys: &[&str],
    ) {
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
    pub(super) fn stops(&self, plan: &mut Plan) -> Vec<String> {
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
    pub(super) fn sort_in_place(
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
    pub(super) fn unmet_new_dependency(
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
    pub(super) fn check_plan(&self, plan: &Plan) -> Result<BTreeMap<String, Vec<String>>> {
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
}
