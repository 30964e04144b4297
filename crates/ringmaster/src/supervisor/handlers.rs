//! The Supervisor's message handlers: they route each message to the part of the
//! Supervisor that owns it (the graph, a service's life, the cascade, the status).
use super::*;

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.reaper.is_some() {
            // A backstop: orphans mostly die when a service exits or is stopped,
            // and those moments reap at once (stops reap as they go). It ends
            // with the shutdown (see `Shutdown`).
            self.reap_timer = Some(ctx.run_interval(REAP_EVERY, |act, _| act.reap()));
        }
    }
}

impl Handler<Up> for Supervisor {
    type Result = ResponseFuture<Result<()>>;

    fn handle(&mut self, msg: Up, ctx: &mut Context<Self>) -> Self::Result {
        if self.closed || self.shutting_down {
            return Box::pin(async { Err(Error::ShuttingDown) });
        }
        let names = match self.closure(msg.only.as_deref()) {
            Ok(n) => n,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        self.stop_orphans(ctx);
        let started_here = self.need(&names);
        let (id, rx) = self.wait_for(names, started_here, true);
        if let Some(within) = msg.within {
            ctx.run_later(within, move |act, ctx| act.up_timed_out(id, within, ctx));
        }
        self.advance(ctx);
        self.check_waiters(ctx);
        Box::pin(async move { rx.await.unwrap_or(Err(Error::SupervisorGone)) })
    }
}

impl Handler<Restart> for Supervisor {
    type Result = ResponseActFuture<Self, Result<()>>;

    fn handle(&mut self, msg: Restart, ctx: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.known(&msg.name) {
            return Box::pin(actix::fut::ready(Err(e)));
        }
        let rolls = self
            .entries
            .get(&msg.name)
            .is_some_and(|e| e.spec.group.is_some() && e.phase == Phase::Running);
        if rolls {
            // A running replicated service: one replica at a time, as a change.
            let rx = self.queue(apply::Job::Roll(msg.name.clone()), ctx);
            return Box::pin(actix::fut::wrap_future(stopped::answer(msg.name, rx)));
        }
        let dependents = self.dependents(&msg.name);
        let mut to_stop: Vec<String> = dependents
            .iter()
            .filter(|d| self.entries.get(*d).is_some_and(|e| e.in_flight()))
            .cloned()
            .collect();
        to_stop.push(msg.name.clone());
        if let Some(e) = self.entries.get_mut(&msg.name) {
            e.restarts += 1;
            if let Some(t) = e.restart_timer.take() {
                // A pending automatic restart is replaced by this one.
                ctx.cancel_future(t);
            }
        }
        let name = msg.name;
        let timeout = self.settings.shutdown_timeout;
        Box::pin(
            self.cascade(to_stop.clone(), timeout, ctx)
                .then(move |_, act, ctx| {
                    // A shutdown that began while this restart stopped things wins.
                    let rx = (!act.shutting_down && !act.closed)
                        .then(|| act.start_again(&name, &to_stop, ctx));
                    actix::fut::wrap_future(async move {
                        match rx {
                            Some(rx) => rx.await.unwrap_or(Err(Error::SupervisorGone)),
                            None => Err(Error::ShuttingDown),
                        }
                    })
                }),
        )
    }
}

impl Handler<Shutdown> for Supervisor {
    type Result = ResponseActFuture<Self, ShutdownReport>;

    fn handle(&mut self, msg: Shutdown, ctx: &mut Context<Self>) -> Self::Result {
        if self.closed {
            // Done already: the same report again.
            let report = self.last_report.clone().unwrap_or_default();
            return Box::pin(actix::fut::ready(report));
        }
        if self.shutting_down {
            // One cascade at a time: this one gets the running cascade's report.
            let (tx, rx) = oneshot::channel();
            self.shutdown_waiters.push(tx);
            return Box::pin(actix::fut::wrap_future(async move {
                rx.await.unwrap_or_default()
            }));
        }
        self.shutting_down = true;
        let start = Instant::now();
        for w in std::mem::take(&mut self.waiters) {
            let _ = w.tx.send(Err(Error::ShuttingDown));
        }
        self.refuse_changes();
        let mut names = Vec::new();
        for (n, e) in self.entries.iter_mut() {
            let pending_restart = e.restart_timer.take();
            if let Some(t) = &pending_restart {
                ctx.cancel_future(*t);
            }
            if e.ever_started || e.phase != Phase::Idle || pending_restart.is_some() {
                names.push(n.clone());
            }
        }
        tracing::info!(
            "shutting down {} service(s) within {:?}",
            names.len(),
            msg.deadline
        );
        // Not atomic: GetStatus is answered while the cascade runs, and what could
        // start something is refused (`shutting_down`).
        Box::pin(self.cascade(names, msg.deadline, ctx).map(
            move |(services, deadline_hit), act, ctx| {
                act.closed = true;
                act.lock.take();
                // Nothing of ours runs any more: the periodic reaping ends (a
                // program that runs one orchestrator after another would
                // otherwise keep one timer per orchestrator it ever ran).
                act.reap();
                if let Some(t) = act.reap_timer.take() {
                    ctx.cancel_future(t);
                }
                // What never started (waiting for a dependency that failed, say)
                // had nothing to stop: it is stopped now all the same.
                for e in act.entries.values_mut() {
                    e.needed = false;
                    if e.phase == Phase::Idle && e.state == ServiceState::Waiting {
                        e.set_state(ServiceState::Stopped, e.reason.clone());
                    }
                }
                let report = ShutdownReport {
                    services,
                    elapsed: start.elapsed(),
                    deadline_hit,
                };
                tracing::info!("shutdown done in {:?}", report.elapsed);
                for tx in std::mem::take(&mut act.shutdown_waiters) {
                    let _ = tx.send(report.clone());
                }
                act.last_report = Some(report.clone());
                report
            },
        ))
    }
}

impl Handler<ServiceEvent> for Supervisor {
    type Result = ();

    fn handle(&mut self, ev: ServiceEvent, ctx: &mut Context<Self>) {
        if self.closed {
            return;
        }
        let name = ev.name.clone();
        let Some(e) = self.entries.get_mut(&name) else {
            tracing::warn!(
                "an event for `{name}`, which is no service of this orchestrator, was dropped: {}",
                ev.kind
            );
            return;
        };
        match ev.kind {
            EventKind::Spawned { pid } => {
                if e.phase != Phase::Starting {
                    return;
                }
                e.phase = Phase::Running;
                e.started = true;
                e.ever_started = true;
                e.pid = pid;
                e.daemon = None;
                let no_probe = e.spec.health.is_none();
                let plugin = e.is_plugin();
                for s in &self.subscribers {
                    s.do_send(ServiceEvent {
                        name: name.clone(),
                        kind: EventKind::Spawned { pid },
                    });
                }
                let window = e.spec.start_window;
                if no_probe && !plugin && window.is_zero() {
                    self.mark_ready(&name, ctx);
                } else if no_probe && !plugin {
                    self.begin_start_window(&name, window, ctx);
                } else {
                    self.advance(ctx);
                }
            }
            EventKind::Ready => {
                if !matches!(e.phase, Phase::Starting | Phase::Running) {
                    return;
                }
                if e.phase == Phase::Starting {
                    e.phase = Phase::Running;
                    e.ever_started = true;
                }
                self.mark_ready(&name, ctx);
            }
            EventKind::Unhealthy { reason } => {
                if e.phase == Phase::Running {
                    self.on_unhealthy(&name, reason, ctx);
                }
            }
            EventKind::Healthy => self.on_healthy(&name),
            EventKind::Daemonized { pid } => {
                if e.phase != Phase::Running || e.daemon.is_some() {
                    return;
                }
                // The ServiceActor has logged it (once per start).
                e.daemon = Some(pid);
                self.broadcast(&name, EventKind::Daemonized { pid });
            }
            EventKind::Exited { code } => {
                if matches!(e.phase, Phase::Starting | Phase::Running) {
                    self.on_exit(&name, code, ctx);
                }
            }
            EventKind::Stopped { .. } => {
                if e.phase == Phase::Running {
                    self.on_exit(&name, None, ctx);
                }
            }
            EventKind::Failed { reason } => {
                if matches!(
                    e.phase,
                    Phase::Preparing | Phase::Prepared | Phase::Starting | Phase::Running
                ) {
                    self.fail(&name, reason, ctx);
                }
            }
            // The Supervisor's own words to subscribers: nothing a service says.
            EventKind::Added | EventKind::Removed | EventKind::Reconfigured { .. } => {}
        }
    }
}

impl Handler<HealthChanged> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: HealthChanged, ctx: &mut Context<Self>) {
        if self.closed || self.shutting_down {
            return;
        }
        let Some(e) = self.entries.get_mut(&msg.name) else {
            return;
        };
        if !matches!(e.phase, Phase::Starting | Phase::Running) {
            return;
        }
        if msg.health == Health::Failing && e.ready {
            // A late word from before the first success.
            return;
        }
        e.health_latency_ms = Some(msg.latency.as_millis() as u64);
        e.health_text = Some(match msg.health {
            Health::Ready | Health::Healthy => "ok".to_owned(),
            Health::Unhealthy | Health::Failing => format!("failing: {}", msg.detail),
        });
        match msg.health {
            Health::Ready => {
                if e.phase == Phase::Starting {
                    // A plugin may be probed before it reports Spawned.
                    e.phase = Phase::Running;
                    e.ever_started = true;
                }
                self.mark_ready(&msg.name, ctx);
            }
            Health::Healthy => self.on_healthy(&msg.name),
            Health::Unhealthy => self.on_unhealthy(&msg.name, msg.detail, ctx),
            // Recorded above; still starting.
            Health::Failing => {}
        }
    }
}

impl Handler<Notified> for Supervisor {
    type Result = ();

    /// What a `notify` service said of itself (already checked to come from one
    /// of its processes): kept for its status.
    fn handle(&mut self, msg: Notified, _: &mut Context<Self>) {
        if self.closed {
            return;
        }
        let Some(e) = self.entries.get_mut(&msg.name) else {
            return;
        };
        if !matches!(e.phase, Phase::Starting | Phase::Running) {
            return;
        }
        match msg.notice {
            Notice::Status(text) => {
                tracing::debug!(service = %msg.name, pid = msg.pid, "STATUS={text}");
                e.said.status = Some(text);
            }
            Notice::MainPid(pid) => {
                tracing::debug!(service = %msg.name, "MAINPID={pid}");
                e.said.main_pid = Some(pid);
            }
            Notice::Stopping => {
                tracing::info!(service = %msg.name, pid = msg.pid, "it says it is stopping (STOPPING=1)");
                if e.reason.is_none() {
                    e.reason = Some("stopping on its own (STOPPING=1)".to_owned());
                }
            }
        }
    }
}

impl Handler<GetStatus> for Supervisor {
    type Result = ResponseFuture<Vec<ServiceStatus>>;

    /// The status of every service, with what one census of the process table
    /// (and of the listening sockets) finds for the running ones: their live
    /// members, the ports each holds, the main pid (see
    /// [`mod@ringmaster_os::census`]), and what they cost (memory, CPU time, and
    /// the CPU % since an earlier full status: see `usage.rs`). A pid that is
    /// gone is never shown; when the census fails, the pids the Supervisor knows
    /// are kept.
    fn handle(&mut self, msg: GetStatus, _: &mut Context<Self>) -> Self::Result {
        let mut statuses: Vec<ServiceStatus> = Vec::new();
        let mut targets: Vec<(usize, CensusTarget)> = Vec::new();
        for e in self.order.iter().filter_map(|n| self.entries.get(n)) {
            let running = matches!(e.phase, Phase::Running | Phase::Stopping);
            if let (true, Some(tag)) = (running, &e.spec.tag) {
                let root = if e.daemon.is_some() { None } else { e.pid };
                targets.push((
                    statuses.len(),
                    CensusTarget {
                        root,
                        pgid: None,
                        tag: Some(tag.clone()),
                        also: crate::service::Claims::held(&tag.env_value()),
                        port: e.spec.port,
                        hint: e.said.main_pid.or(e.daemon.flatten()),
                    },
                ));
            }
            statuses.push(Self::status_of(e));
        }
        // Each replica's connections in flight, as its balancer counts them.
        let flights: BTreeMap<String, u64> = statuses
            .iter()
            .filter_map(|s| s.balancer.as_ref())
            .flat_map(|b| b.backends.iter().map(|m| (m.name.clone(), m.active)))
            .collect();
        for s in statuses.iter_mut() {
            if let Some(n) = flights.get(&s.name) {
                s.connections = Some(*n);
            }
        }
        if msg.brief {
            targets.clear();
        }
        let meter = self.cpu_meter.clone();
        Box::pin(async move {
            if targets.is_empty() {
                return statuses;
            }
            let list: Vec<CensusTarget> = targets.iter().map(|(_, t)| t.clone()).collect();
            let found = blocking(move || {
                // The moment the CPU times are read (the census then reads the
                // socket table too, which may take long).
                let at = Instant::now();
                let found = ringmaster_os::census(&list)?;
                let percents = usage::lock(&meter).percents(at, &found);
                Ok::<_, ringmaster_os::Error>((found, percents))
            })
            .await;
            let Ok(Ok((found, percents))) = found else {
                return statuses;
            };
            for (((i, t), c), cpu_percent) in targets.iter().zip(found).zip(percents) {
                let s = &mut statuses[*i];
                s.cpu_percent = cpu_percent;
                s.rss_bytes = c.rss_bytes;
                // To the millisecond: Linux counts in 10 ms ticks anyway.
                s.cpu_seconds = c.cpu.map(|d| d.as_millis() as f64 / 1000.0);
                s.pid = c.main_pid;
                s.root_pid = t.root.filter(|r| c.members.iter().any(|m| m.pid == *r));
                s.members = c
                    .members
                    .into_iter()
                    .map(|m| MemberStatus {
                        pid: m.pid,
                        name: m.name,
                        ports: m.ports,
                    })
                    .collect();
            }
            sum_replicas(&mut statuses);
            statuses
        })
    }
}

/// A replicated service's row costs what its replicas cost together.
fn sum_replicas(statuses: &mut [ServiceStatus]) {
    let mut sums: BTreeMap<String, (f64, u64, f64)> = BTreeMap::new();
    for s in statuses.iter() {
        let Some((group, _)) = crate::config::replica_of(&s.name) else {
            continue;
        };
        if let (Some(cpu), Some(rss), Some(secs)) = (s.cpu_percent, s.rss_bytes, s.cpu_seconds) {
            let sum = sums.entry(group.to_owned()).or_default();
            sum.0 += cpu;
            sum.1 += rss;
            sum.2 += secs;
        }
    }
    for s in statuses.iter_mut().filter(|s| s.balancer.is_some()) {
        if let Some((cpu, rss, secs)) = sums.get(&s.name) {
            s.cpu_percent = Some(*cpu);
            s.rss_bytes = Some(*rss);
            s.cpu_seconds = Some(*secs);
        }
    }
}

impl Handler<HoldRestarts> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: HoldRestarts, ctx: &mut Context<Self>) {
        self.swept = true;
        for e in self.entries.values_mut() {
            if let Some(t) = e.restart_timer.take() {
                ctx.cancel_future(t);
            }
        }
    }
}

impl Handler<Subscribe> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) {
        self.subscribers.push(msg.0);
    }
}

impl Handler<SubscribeLogs> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: SubscribeLogs, _: &mut Context<Self>) {
        if let Ok(mut s) = self.log_subscribers.lock() {
            s.push(msg.0);
        }
    }
}
