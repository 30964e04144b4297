//! Running a checked [`Plan`]: one cascade stops what goes, the graph is rebuilt
//! (entries removed, replaced, updated, added; order and heights), what was
//! stopped or added starts, then replicated services roll; and the report.
use super::*;

impl Supervisor {
    /// Runs a checked plan: stop, rebuild, start; answers on `tx`.
    pub(super) fn run_plan(
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
    pub(super) fn roll_all(
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
    pub(super) fn rebuild_and_start(
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
    pub(in crate::supervisor) fn remove_entries(
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
    pub(in crate::supervisor) fn insert_entry(&mut self, name: String, spec: Spec, origin: Origin) {
        let mut e = Entry::new(name.clone(), spec, origin);
        e.op = self.retired_op;
        self.entries.insert(name.clone(), e);
        tracing::info!(service = %name, "added");
        self.broadcast(&name, EventKind::Added);
    }

    /// After the graph changed: its order, heights and sweep registry.
    pub(in crate::supervisor) fn reorder(&mut self) {
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
    pub(super) fn update_in_place(
        &mut self,
        cfg: ServiceConfig,
        plan: &Plan,
        ctx: &mut Context<Self>,
    ) {
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
    pub(super) fn take_settings(&mut self, new: Settings) {
        self.settings.shutdown_timeout = new.shutdown_timeout;
        self.settings.health_interval = new.health_interval;
        self.settings.start_window = new.start_window;
    }

    /// The report of a finished change.
    pub(super) fn report(&self, plan: Plan, at: Instant, failed: Option<String>) -> ApplyReport {
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
pub(super) fn setting_changes(old: &Settings, new: &Settings) -> Vec<SettingChange> {
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
