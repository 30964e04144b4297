//! A service's life: prepare (leftovers, install, port), launch once its
//! dependencies are met, ready (probe, start window or plugin), exit, restart with
//! backoff or fail; and the requests (`Up`, `Restart`) waiting on them.
use super::*;
use crate::config::replica_of;

impl Supervisor {
    /// Moves every needed service as far as it can go now.
    pub(super) fn advance(&mut self, ctx: &mut Context<Self>) {
        if self.shutting_down || self.closed {
            return;
        }
        for name in self.order.clone() {
            let e = &self.entries[&name];
            if !e.needed || e.restart_timer.is_some() {
                continue;
            }
            let ended = self.ended_dependency(e).map(|(_, reason)| reason);
            match e.phase {
                Phase::Idle if e.state == ServiceState::Waiting => {
                    if let Some(dep) = self.failed_dependency(e) {
                        let reason = format!("dependency `{dep}` failed");
                        if let Some(e) = self.entries.get_mut(&name) {
                            e.reason = Some(reason);
                        }
                        continue;
                    }
                    if let Some(reason) = ended {
                        self.cannot_start(&name, reason, ctx);
                        continue;
                    }
                    self.begin_prepare(&name, ctx);
                    self.note_waiting(&name);
                }
                Phase::Preparing | Phase::Prepared if ended.is_some() => {
                    if let Some(reason) = ended {
                        self.cannot_start(&name, reason, ctx);
                    }
                }
                Phase::Preparing => self.note_waiting(&name),
                Phase::Prepared => {
                    if self.unmet(e).is_none() {
                        self.launch(&name, ctx);
                    } else {
                        self.note_waiting(&name);
                    }
                }
                _ => {}
            }
        }
    }

    pub(super) fn note_waiting(&mut self, name: &str) {
        let Some(e) = self.entries.get(name) else {
            return;
        };
        let reason = match self.unmet(e) {
            Some((dep, cond)) => {
                let cond = cond.as_str();
                let failed = self
                    .entries
                    .get(&dep)
                    .is_some_and(|d| d.state == ServiceState::Failed);
                if failed {
                    format!("dependency `{dep}` failed")
                } else {
                    format!("waiting for `{dep}` ({cond})")
                }
            }
            None => "preparing".to_owned(),
        };
        if let Some(e) = self.entries.get_mut(name) {
            if e.state == ServiceState::Waiting
                && !e.reason.as_deref().is_some_and(|r| r.contains("restart"))
            {
                e.reason = Some(reason);
            }
        }
    }

    pub(super) fn begin_prepare(&mut self, name: &str, ctx: &mut Context<Self>) {
        let janitor = self.janitor.clone();
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        e.phase = Phase::Preparing;
        e.op += 1;
        let op = e.op;
        registry(&self.registry).touched.insert(name.to_owned());
        let prepare = match &e.spec.runner {
            Runner::Process(addr) => Some(addr.send(Prepare)),
            Runner::Plugin { .. } => None,
        };
        let clear = e.spec.port.map(|port| ClearPort {
            port,
            service: e.name.clone(),
            allow: e.spec.allow.clone(),
            signal: e.spec.stop_signal,
            grace: e.spec.stop_timeout,
        });
        let name = name.to_owned();
        async move {
            if let Some(p) = prepare {
                p.await
                    .map_err(|e| format!("the service actor is gone: {e}"))??;
            }
            if let Some(msg) = clear {
                janitor
                    .send(msg)
                    .await
                    .map_err(|e| format!("the port janitor is gone: {e}"))?
                    .map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        }
        .into_actor(self)
        .map(move |res, act, ctx| {
            let Some(e) = act.entries.get_mut(&name) else {
                return;
            };
            if e.op != op || e.phase != Phase::Preparing || act.shutting_down {
                return;
            }
            match res {
                Ok(()) => {
                    e.phase = Phase::Prepared;
                    act.advance(ctx);
                }
                Err(reason) => {
                    e.phase = Phase::Idle;
                    act.fail(&name, reason, ctx);
                }
            }
        })
        .spawn(ctx);
    }

    pub(super) fn launch(&mut self, name: &str, ctx: &mut Context<Self>) {
        let me = ctx.address();
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        e.phase = Phase::Starting;
        e.op += 1;
        e.set_state(ServiceState::Starting, None);
        e.ready = false;
        // `started` stays as it is: once spawned in this run, a service counts
        // as started for its dependents (see `unmet`).
        e.completed = false;
        // What an earlier run's probe said does not describe this one.
        e.health_text = None;
        e.health_latency_ms = None;
        e.said = Said::default();
        let notify_socket = self.watch(name, false, ctx);
        // A balancer (a new one too, after its service's port changed) learns
        // where its members are before it starts.
        for m in self.members(name) {
            self.tell_group(&m);
        }
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        let start = Start {
            name: name.to_owned(),
            events: Reporter::new(name, me.recipient()),
            notify_socket,
        };
        tracing::debug!(service = %name, "launching");
        match &e.spec.runner {
            Runner::Process(addr) => addr.do_send(start),
            Runner::Plugin { start: to, .. } => to.do_send(start),
        }
        // The readiness deadline of this run. A replicated service has none of
        // its own: each member has its deadline, and the service fails when
        // every member failed (`group_check`).
        e.disarm_ready(ctx);
        if e.spec.group.is_some() {
            return;
        }
        let (op, after) = (e.op, e.spec.ready_timeout);
        let owned = name.to_owned();
        e.ready_timer = Some(ctx.run_later(after, move |act, ctx| {
            act.ready_timed_out(&owned, op, after, ctx)
        }));
    }

    /// Sends the HealthChecker `name`'s probe, when it has one (`ready`: it is
    /// ready already, see [`Watch::ready`]). Returns the `NOTIFY_SOCKET` its
    /// processes get, for a notify probe (bound here, before `Start`: the service
    /// may send READY=1 the moment it runs).
    pub(super) fn watch(
        &mut self,
        name: &str,
        ready: bool,
        ctx: &mut Context<Self>,
    ) -> Option<String> {
        let me = ctx.address();
        let e = self.entries.get(name)?;
        let h = e.spec.health.as_ref()?;
        #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
        let mut notify_socket = None;
        #[cfg(target_os = "linux")]
        let notify = match h.probe {
            crate::config::Probe::Notify => match crate::notify::NotifySocket::bind(name) {
                Ok(sock) => {
                    notify_socket = Some(sock.address().to_owned());
                    Some(Arc::new(sock))
                }
                Err(err) => {
                    tracing::warn!(service = %name, "cannot bind its notify socket: {err}");
                    None
                }
            },
            _ => None,
        };
        self.health.do_send(Watch {
            name: name.to_owned(),
            probe: h.probe.clone(),
            interval: h.interval,
            timeout: h.timeout,
            failures: h.failures,
            start_interval: h.start_interval,
            patience: e.spec.ready_timeout,
            ready,
            port: e.spec.port,
            workdir: e.spec.workdir.clone(),
            env: e.spec.env.clone(),
            tag: e.spec.tag.clone(),
            #[cfg(target_os = "linux")]
            notify,
            reply: me.clone().recipient(),
            notices: me.recipient(),
        });
        notify_socket
    }

    /// `name`'s run `op` was not ready `after` its launch: it is stopped, then
    /// fails (no restart) with what its probe said last.
    pub(super) fn ready_timed_out(
        &mut self,
        name: &str,
        op: u64,
        after: Duration,
        ctx: &mut Context<Self>,
    ) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        e.ready_timer = None;
        if e.op != op
            || e.ready
            || !matches!(e.phase, Phase::Starting | Phase::Running)
            || self.shutting_down
        {
            return;
        }
        let reason = format!(
            "not ready within {} of its start ({})",
            crate::text::human_duration(after),
            e.readiness_text()
        );
        tracing::warn!(service = %name, "{reason}; stopping it");
        let owned = name.to_owned();
        let timeout = self.settings.shutdown_timeout;
        self.cascade(vec![owned.clone()], timeout, ctx)
            .map(move |_, act, ctx| {
                if !act.shutting_down {
                    act.fail(&owned, reason, ctx);
                }
            })
            .spawn(ctx);
    }

    /// A process service without a probe was spawned: it is ready once it still
    /// runs after `window` (an exit before that is a failed start, see
    /// `on_exit`). Meanwhile it is `starting`, and dependents that need it ready
    /// wait; `started` is met already.
    pub(super) fn begin_start_window(
        &mut self,
        name: &str,
        window: Duration,
        ctx: &mut Context<Self>,
    ) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        let op = e.op;
        e.reason = Some(format!("start window {window:?}"));
        let owned = name.to_owned();
        ctx.run_later(window, move |act, ctx| {
            // (A probe a change gave it meanwhile decides instead.)
            let survived = act.entries.get(&owned).is_some_and(|e| {
                e.op == op
                    && e.phase == Phase::Running
                    && !e.ready
                    && e.state == ServiceState::Starting
                    && e.spec.health.is_none()
            });
            if survived && !act.shutting_down && !act.closed {
                act.mark_ready(&owned, ctx);
            }
        });
        self.advance(ctx);
    }

    pub(super) fn mark_ready(&mut self, name: &str, ctx: &mut Context<Self>) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        if e.ready {
            return;
        }
        e.disarm_ready(ctx);
        e.ready = true;
        e.started = true;
        e.ready_since = Some(Instant::now());
        e.set_state(ServiceState::Ready, None);
        tracing::info!(service = %name, "ready");
        self.broadcast(name, EventKind::Ready);
        self.advance(ctx);
        self.check_waiters(ctx);
    }

    /// Answers the requests whose services are all ready (or completed); then a
    /// queued change may run.
    pub(super) fn check_waiters(&mut self, ctx: &mut Context<Self>) {
        // A request that needs a service nothing will start any more — removed by
        // a change, or undone by another request that failed — answers now.
        let entries = &self.entries;
        let stuck = |n: &String| match entries.get(n) {
            None => Some(format!("service `{n}` was removed")),
            Some(e) if e.leaving => Some(format!("service `{n}` is being removed")),
            Some(e)
                if !e.needed
                    && e.phase == Phase::Idle
                    && e.restart_timer.is_none()
                    && !e.ready
                    && !e.completed
                    && e.state != ServiceState::Failed =>
            {
                Some(format!(
                    "service `{n}` was stopped ({})",
                    e.reason.as_deref().unwrap_or("no reason given")
                ))
            }
            _ => None,
        };
        let (gone, pending): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| w.names.iter().any(|n| stuck(n).is_some()));
        for w in gone {
            let why = w.names.iter().find_map(&stuck).unwrap_or_default();
            let _ = w.tx.send(Err(Error::Other(format!(
                "{why} while the request waited for it"
            ))));
        }
        self.waiters = pending;
        let entries = &self.entries;
        let done = |n: &String| {
            entries
                .get(n)
                .is_some_and(|e| e.ready || (e.completed && e.phase == Phase::Idle))
        };
        let (finished, pending): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| w.names.iter().all(done));
        self.waiters = pending;
        for w in finished {
            let _ = w.tx.send(Ok(()));
        }
        self.next_change(ctx);
    }

    pub(super) fn on_exit(&mut self, name: &str, code: Option<i32>, ctx: &mut Context<Self>) {
        self.health.do_send(Unwatch {
            name: name.to_owned(),
        });
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        e.disarm_ready(ctx);
        e.pid = None;
        e.daemon = None;
        e.last_exit = code;
        // A probe-less service that ends within its start window never started
        // (supervisord's `startsecs`): the reason says so. With status 0 it is
        // a job that completed, not a failure.
        let window = e.spec.start_window;
        let in_window = !e.ready && !window.is_zero() && e.phase == Phase::Running;
        let why = if in_window && code != Some(0) {
            format!("{} within its start window ({window:?})", exit_text(code))
        } else {
            exit_text(code)
        };
        e.ready = false;
        // `started` is kept: it was spawned in this run (condition `started`).
        e.phase = Phase::Idle;
        e.op += 1;
        if e.ready_since
            .take()
            .is_some_and(|t| t.elapsed() >= RESET_AFTER)
        {
            e.attempts = 0;
        }
        tracing::info!(service = %name, "{why}");
        let restart = match e.spec.restart.policy {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => code != Some(0),
            RestartPolicy::Never => false,
        };
        self.broadcast(name, EventKind::Exited { code });
        self.reap();
        self.after_down(name, restart, why, code == Some(0), ctx);
    }

    /// After a service went down on its own (exit, or stopped for being
    /// unhealthy): restart it, or leave it completed, or fail it.
    pub(super) fn after_down(
        &mut self,
        name: &str,
        restart: bool,
        why: String,
        success: bool,
        ctx: &mut Context<Self>,
    ) {
        if self.shutting_down {
            // Nothing restarts and nothing fails now: the cascade decides its state.
            return;
        }
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        if self.swept {
            e.set_state(ServiceState::Stopped, Some(format!("{why}; swept")));
            self.check_waiters(ctx);
            return;
        }
        if restart {
            if e.attempts >= e.spec.restart.max_attempts {
                let n = e.attempts;
                let reason = format!("{why}; gave up after {n} restart(s)");
                self.fail(name, reason, ctx);
                return;
            }
            e.attempts += 1;
            e.restarts += 1;
            let delay = backoff_delay(e.spec.restart.backoff, e.attempts);
            e.set_state(
                ServiceState::Waiting,
                Some(format!(
                    "{why}; restart {}/{} in {delay:?}",
                    e.attempts, e.spec.restart.max_attempts
                )),
            );
            tracing::info!(service = %name, "{why}; restarting in {delay:?} (attempt {}/{})", e.attempts, e.spec.restart.max_attempts);
            let owned = name.to_owned();
            let handle = ctx.run_later(delay, move |act, ctx| {
                if let Some(e) = act.entries.get_mut(&owned) {
                    e.restart_timer = None;
                    if e.phase == Phase::Idle && e.state == ServiceState::Waiting {
                        e.reason = None;
                    }
                }
                act.advance(ctx);
            });
            if let Some(e) = self.entries.get_mut(name) {
                e.restart_timer = Some(handle);
            }
        } else if success {
            e.completed = true;
            e.set_state(ServiceState::Stopped, Some(format!("{why} (completed)")));
            self.check_waiters(ctx);
            self.advance(ctx);
        } else {
            self.fail(name, why, ctx);
        }
    }

    pub(super) fn on_unhealthy(&mut self, name: &str, detail: String, ctx: &mut Context<Self>) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        if e.phase != Phase::Running || e.state == ServiceState::Unhealthy {
            return;
        }
        e.set_state(ServiceState::Unhealthy, Some(detail.clone()));
        tracing::warn!(service = %name, "unhealthy: {detail}");
        let restart = e.spec.restart.policy != RestartPolicy::Never;
        self.broadcast(
            name,
            EventKind::Unhealthy {
                reason: detail.clone(),
            },
        );
        if !restart || self.shutting_down || self.swept {
            return;
        }
        let name_owned = name.to_owned();
        let timeout = self.settings.shutdown_timeout;
        self.cascade(vec![name_owned.clone()], timeout, ctx)
            .map(move |_, act, ctx| {
                if let Some(e) = act.entries.get_mut(&name_owned) {
                    if e.phase == Phase::Idle {
                        e.ready_since = None;
                        act.after_down(
                            &name_owned,
                            true,
                            format!("unhealthy ({detail})"),
                            false,
                            ctx,
                        );
                    }
                }
            })
            .spawn(ctx);
    }

    /// A success after `Unhealthy` (the service was not restarted): ready again.
    pub(super) fn on_healthy(&mut self, name: &str) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        if e.phase != Phase::Running || e.state != ServiceState::Unhealthy {
            return;
        }
        e.set_state(ServiceState::Ready, None);
        tracing::info!(service = %name, "healthy again");
        self.broadcast(name, EventKind::Healthy);
    }

    /// Fails `name` for good: its running dependents are stopped and wait again,
    /// and pending requests that need it answer with the failure once what they
    /// started is stopped again.
    pub(super) fn fail(&mut self, name: &str, reason: String, ctx: &mut Context<Self>) {
        self.health.do_send(Unwatch {
            name: name.to_owned(),
        });
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        if let Some(t) = e.restart_timer.take() {
            ctx.cancel_future(t);
        }
        e.disarm_ready(ctx);
        if e.phase != Phase::Stopping {
            e.phase = Phase::Idle;
        }
        e.op += 1;
        e.ready = false;
        e.started = false;
        e.pid = None;
        e.daemon = None;
        e.set_state(ServiceState::Failed, Some(reason.clone()));
        tracing::error!(service = %name, "failed: {reason}");
        self.broadcast(
            name,
            EventKind::Failed {
                reason: reason.clone(),
            },
        );

        if let Some((group, _)) = replica_of(name) {
            let group = group.to_owned();
            self.group_check(&group, ctx);
        }
        let dependents = self.dependents(name);
        let waiting_reason = format!("dependency `{name}` failed");
        for d in &dependents {
            if let Some(de) = self.entries.get_mut(d) {
                if !de.in_flight() && de.state != ServiceState::Failed && de.needed {
                    de.set_state(ServiceState::Waiting, Some(waiting_reason.clone()));
                }
            }
        }
        let to_stop: Vec<String> = dependents
            .iter()
            .filter(|d| self.entries.get(*d).is_some_and(|e| e.in_flight()))
            .cloned()
            .collect();
        self.fail_requests(name, reason, to_stop, ctx);
    }

    /// `name` cannot start in this run although it did not fail itself: a
    /// dependency it must wait for ended for good. It waits with `reason`, and
    /// the pending requests that need it answer with `reason`, as for a failure,
    /// once what they started (it too) is stopped again.
    pub(super) fn cannot_start(&mut self, name: &str, reason: String, ctx: &mut Context<Self>) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        if e.reason.as_deref() != Some(reason.as_str()) {
            tracing::warn!(service = %name, "cannot start: {reason}");
        }
        e.set_state(ServiceState::Waiting, Some(reason.clone()));
        self.fail_requests(name, reason, Vec::new(), ctx);
    }

    /// Answers the pending requests that need `name` with its failure (`reason`)
    /// once `to_stop` (its running dependents, which wait again) and what those
    /// requests started are stopped again.
    pub(super) fn fail_requests(
        &mut self,
        name: &str,
        reason: String,
        mut to_stop: Vec<String>,
        ctx: &mut Context<Self>,
    ) {
        let (affected, rest): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| w.names.iter().any(|n| n == name));
        self.waiters = rest;
        // A failed service stays as it is; one that cannot start is undone too.
        let failed_itself = self
            .entries
            .get(name)
            .is_some_and(|e| e.state == ServiceState::Failed);
        let undo: BTreeSet<String> = affected
            .iter()
            .flat_map(|w| w.started_here.iter().cloned())
            .filter(|n| n != name || !failed_itself)
            .collect();
        for n in &undo {
            if let Some(e) = self.entries.get_mut(n) {
                // Not needed any more: nothing of it starts while it is undone.
                e.needed = false;
                if !to_stop.contains(n) && e.in_flight() {
                    to_stop.push(n.clone());
                }
            }
        }
        if to_stop.is_empty() && affected.is_empty() {
            return;
        }
        let failed = name.to_owned();
        let timeout = self.settings.shutdown_timeout;
        self.cascade(to_stop, timeout, ctx)
            .map(move |(reports, _), act, ctx| {
                for r in &reports {
                    let Some(e) = act.entries.get_mut(&r.name) else {
                        continue;
                    };
                    if e.phase != Phase::Idle || e.state == ServiceState::Failed {
                        continue;
                    }
                    if r.name == failed {
                        e.needed = false;
                        e.set_state(ServiceState::Stopped, Some(reason.clone()));
                    } else if undo.contains(&r.name) {
                        e.needed = false;
                        e.set_state(
                            ServiceState::Stopped,
                            Some(format!("stopped again: `{failed}` failed to start")),
                        );
                    } else {
                        e.set_state(
                            ServiceState::Waiting,
                            Some(format!("dependency `{failed}` failed")),
                        );
                    }
                }
                for n in &undo {
                    if let Some(e) = act.entries.get_mut(n) {
                        if e.state == ServiceState::Waiting {
                            e.needed = false;
                            let why = if *n == failed {
                                reason.clone()
                            } else {
                                format!("not started: `{failed}` failed")
                            };
                            e.set_state(ServiceState::Stopped, Some(why));
                        }
                    }
                }
                for w in affected {
                    let _ = w.tx.send(Err(Error::ServiceFailed {
                        service: failed.clone(),
                        reason: reason.clone(),
                    }));
                }
                act.check_waiters(ctx);
            })
            .spawn(ctx);
    }

    /// After a [`Restart`] stopped `stopped` (`name` and its running dependents):
    /// needs them again, with what they depend on (started as [`Up`] would, when
    /// it does not run) and the dependents that were waiting for `name`, and
    /// returns the answer to wait for.
    pub(super) fn start_again(
        &mut self,
        name: &str,
        stopped: &[String],
        ctx: &mut Context<Self>,
    ) -> oneshot::Receiver<Result<()>> {
        // A change that removed it meanwhile: `check_waiters` answers with why.
        let (mut names, started_here) = self.need_again(stopped);
        // Dependents that were waiting for it come along.
        for d in self.dependents(name) {
            let waits = self
                .entries
                .get(&d)
                .is_some_and(|e| e.needed && e.state == ServiceState::Waiting);
            if waits && !names.contains(&d) {
                names.push(d);
            }
        }
        let (_, rx) = self.wait_for(names, started_here, false);
        self.advance(ctx);
        self.check_waiters(ctx);
        rx
    }

    /// Needs `names` again, each for a new run with its full restart attempts,
    /// with what they depend on: started as [`Up`] would when it does not run; a
    /// dependency that completed (a one-shot job that exited with 0) stays
    /// completed and is not run again. Returns the names to wait for (all of
    /// them, with their dependencies; one that a change removed stays among
    /// them, so that the request answers with why) and what this started
    /// besides `names`.
    pub(super) fn need_again(&mut self, names: &[String]) -> (Vec<String>, Vec<String>) {
        for n in names {
            if let Some(e) = self.entries.get_mut(n) {
                e.needed = true;
                e.attempts = 0;
                e.completed = false;
                if e.phase == Phase::Idle {
                    e.set_state(ServiceState::Waiting, None);
                }
            }
        }
        let staying: Vec<String> = names
            .iter()
            .filter(|n| self.entries.get(*n).is_some_and(|e| !e.leaving))
            .cloned()
            .collect();
        // Every name is known and staying here: `closure` cannot fail.
        let closure = self.closure(Some(&staying)).unwrap_or_default();
        let deps: Vec<String> = closure
            .iter()
            .filter(|n| !names.contains(n))
            .filter(|n| !self.entries.get(*n).is_some_and(|e| e.completed))
            .cloned()
            .collect();
        let started_here = self.need(&deps);
        let gone = names.iter().filter(|n| !staying.contains(n)).cloned();
        (closure.into_iter().chain(gone).collect(), started_here)
    }

    /// Registers `names` as a request; returns its answer.
    /// A replica whose service is among `names` is not waited for: the service
    /// is ready as a whole once `min_ready` replicas are (they all start).
    pub(super) fn wait_for(
        &mut self,
        mut names: Vec<String>,
        started_here: Vec<String>,
        up: bool,
    ) -> (u64, oneshot::Receiver<Result<()>>) {
        let listed: BTreeSet<String> = names.iter().cloned().collect();
        names.retain(|n| replica_of(n).is_none_or(|(group, _)| !listed.contains(group)));
        let (tx, rx) = oneshot::channel();
        let id = self.next_waiter;
        self.next_waiter += 1;
        self.waiters.push(Waiter {
            id,
            names,
            started_here,
            up,
            tx,
        });
        (id, rx)
    }

    /// The request `id` ([`Up::within`]) is not answered `within` its deadline:
    /// it answers with what is not ready (state, reason, last probe), once what it
    /// started is stopped again — as for a failure.
    pub(super) fn up_timed_out(&mut self, id: u64, within: Duration, ctx: &mut Context<Self>) {
        let Some(pos) = self.waiters.iter().position(|w| w.id == id) else {
            return;
        };
        if self.shutting_down || self.closed {
            return;
        }
        let w = self.waiters.remove(pos);
        let pending: Vec<String> = w
            .names
            .iter()
            .filter_map(|n| self.entries.get(n))
            .filter(|e| !(e.ready || (e.completed && e.phase == Phase::Idle)))
            .map(|e| {
                let state = Self::status_of(e).state;
                let mut text = format!("`{}` {state}", e.name);
                if let Some(r) = &e.reason {
                    text.push_str(&format!(" ({r})"));
                }
                if e.state == ServiceState::Starting {
                    text.push_str(&format!(", {}", e.readiness_text()));
                }
                text
            })
            .collect();
        let reason = format!(
            "not ready within {}: {}",
            crate::text::human_duration(within),
            pending.join("; ")
        );
        tracing::warn!("up: {reason}; stopping what it started");
        let mut to_stop = Vec::new();
        for n in &w.started_here {
            if let Some(e) = self.entries.get_mut(n) {
                e.needed = false;
                if e.in_flight() {
                    to_stop.push(n.clone());
                }
            }
        }
        let timeout = self.settings.shutdown_timeout;
        let undo = w.started_here.clone();
        self.cascade(to_stop, timeout, ctx)
            .map(move |_, act, ctx| {
                for n in &undo {
                    if let Some(e) = act.entries.get_mut(n) {
                        let idle = e.phase == Phase::Idle;
                        if idle && matches!(e.state, ServiceState::Waiting | ServiceState::Stopped)
                        {
                            e.set_state(
                                ServiceState::Stopped,
                                Some("stopped again: up's deadline passed".to_owned()),
                            );
                        }
                    }
                }
                let _ = w.tx.send(Err(Error::NotReady(reason)));
                act.check_waiters(ctx);
            })
            .spawn(ctx);
    }
}
