//! The stop cascade: levels of services stopped in parallel, each level after the
//! one that depends on it, within one deadline; each stop followed by its port's
//! check (`run_cascade`, `stop_item`).
use super::*;

pub(super) enum StopVia {
    Process(Addr<ServiceActor>),
    Plugin(Recipient<Stop>),
}

pub(super) struct StopItem {
    pub(super) name: String,
    pub(super) via: StopVia,
    pub(super) timeout: Duration,
    pub(super) port: Option<u16>,
    pub(super) allow: Vec<String>,
    /// The service's stop signal, for authorized leftovers on its port.
    pub(super) signal: Signal,
    /// It has a stop command (its stop may take longer, see `stop_item`).
    pub(super) stop_command: bool,
    /// A replica: its balancer, which drains it before the stop.
    pub(super) drain: Option<Addr<Balancer>>,
}

/// Whose stop left something: they stay in the sweep registry once removed.
pub(super) fn unclean(reports: &[ServiceStopReport]) -> Vec<String> {
    reports
        .iter()
        .filter(|r| !r.clean())
        .map(|r| r.name.clone())
        .collect()
}

pub(super) struct CascadeCtx {
    pub(super) janitor: Addr<PortJanitor>,
    pub(super) subscribers: Vec<Recipient<ServiceEvent>>,
    pub(super) project: String,
}

pub(super) async fn run_cascade(
    mut levels: VecDeque<Vec<StopItem>>,
    deadline: Duration,
    ctx: CascadeCtx,
) -> (Vec<ServiceStopReport>, bool) {
    let start = Instant::now();
    let end = start + deadline;
    let mut out = Vec::new();
    let mut hit = false;
    while let Some(mut level) = levels.pop_front() {
        let remaining = deadline.saturating_sub(start.elapsed());
        let at_once = remaining.is_zero();
        if at_once {
            hit = true;
            while let Some(more) = levels.pop_front() {
                level.extend(more);
            }
        }
        let stops = level.into_iter().map(|item| {
            let grace = if at_once {
                Duration::ZERO
            } else {
                item.timeout.min(remaining)
            };
            let cut = grace < item.timeout;
            stop_item(item, grace, cut, end, &ctx)
        });
        let reports = futures::future::join_all(stops).await;
        for r in &reports {
            if r.deadline_cut && !r.report.killed.is_empty() {
                hit = true;
            }
            let ev = ServiceEvent {
                name: r.name.clone(),
                kind: EventKind::Stopped {
                    report: r.report.clone(),
                },
            };
            for s in &ctx.subscribers {
                s.do_send(ev.clone());
            }
        }
        out.extend(reports);
    }
    (out, hit)
}

/// Stops one service with `grace` (`cut`: shorter than its stop timeout because
/// of the deadline), then checks its port, with a grace for the port's leftovers
/// that never reaches past `end` (the cascade's deadline).
pub(super) async fn stop_item(
    item: StopItem,
    grace: Duration,
    cut: bool,
    end: Instant,
    ctx: &CascadeCtx,
) -> ServiceStopReport {
    if let Some(balancer) = &item.drain {
        // No new connection goes to it; those in flight get up to its grace.
        let drain = crate::balancer::Drain {
            name: item.name.clone(),
            within: grace,
        };
        if let Err(e) = balancer.send(drain).await {
            tracing::warn!(service = %item.name, "not drained: its balancer is gone ({e})");
        }
    }
    let grace = grace.min(end.saturating_duration_since(Instant::now()));
    let started = Instant::now();
    // A stop command may use `grace`, then the signal its stop timeout cut to the
    // deadline (`service::stop_command`).
    let wait = if item.stop_command {
        grace + item.timeout.min(end.saturating_duration_since(started))
    } else {
        grace
    } + STOP_MARGIN;
    // Why there is no answer, when there is none.
    let answer = match &item.via {
        StopVia::Process(a) => {
            let msg = StopChecked {
                grace,
                deadline: end,
            };
            tokio::time::timeout(wait, a.send(msg)).await
        }
        StopVia::Plugin(r) => tokio::time::timeout(wait, r.send(Stop { grace }))
            .await
            .map(|r| {
                r.map(|report| StopAnswer {
                    report,
                    ..StopAnswer::default()
                })
            }),
    }
    .map_err(|_| format!("did not answer Stop within {wait:?}"))
    .and_then(|r| r.map_err(|e| format!("could not take Stop ({e})")));
    let mut no_answer = None;
    let mut stop_error = None;
    let mut stop_command = None;
    let report = match answer {
        Ok(a) => {
            stop_error = a.error;
            stop_command = a.command;
            a.report
        }
        Err(why) => match &item.via {
            StopVia::Process(_) => {
                tracing::warn!(service = %item.name, "its actor {why}; killing what carries its tag");
                let tag = Tag::new(ctx.project.clone(), item.name.clone());
                let target = StopTarget {
                    root: None,
                    pgid: None,
                    also: crate::service::Claims::held(&tag.env_value()),
                    tag: Some(tag),
                };
                let res = ringmaster_os::stop_async(target, Signal::Kill, Duration::ZERO).await;
                let mut r = res.unwrap_or_else(|e| {
                    stop_error = Some(format!("the kill in its place failed: {e}"));
                    StopReport::default()
                });
                r.elapsed = started.elapsed();
                r
            }
            StopVia::Plugin(_) => {
                let text = format!("plugin `{}` {why}; it may still be running", item.name);
                tracing::warn!(service = %item.name, "{text}");
                no_answer = Some(text);
                StopReport {
                    elapsed: started.elapsed(),
                    ..StopReport::default()
                }
            }
        },
    };
    let mut port_stopped = Vec::new();
    let mut port_refused = Vec::new();
    let port_free = match item.port {
        Some(port) => {
            // What is left of the deadline now, not the grace the stop had (which
            // the stop may have used up already).
            let left = end.saturating_duration_since(Instant::now());
            let check = ctx
                .janitor
                .send(CheckPort {
                    port,
                    service: item.name.clone(),
                    allow: item.allow.clone(),
                    signal: item.signal,
                    grace: grace.min(left),
                })
                .await;
            match check {
                Ok(c) => {
                    if !c.stopped.is_empty() {
                        tracing::warn!(
                            service = %item.name,
                            "port {port} was still held after the stop; stopped {}",
                            c.stopped
                                .iter()
                                .map(|p| p.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                    }
                    for r in &c.refused {
                        tracing::warn!(service = %item.name, "after the stop: {r}");
                    }
                    port_stopped = c.stopped;
                    port_refused = c.refused;
                    Some(c.free)
                }
                Err(e) => {
                    tracing::warn!(service = %item.name, "port {port} not checked: {e}");
                    Some(false)
                }
            }
        }
        None => None,
    };
    ServiceStopReport {
        plugin: matches!(item.via, StopVia::Plugin(_)),
        name: item.name,
        report,
        port_free,
        deadline_cut: cut,
        no_answer,
        port_stopped,
        port_refused,
        stop_error,
        stop_command,
    }
}

impl Supervisor {
    /// Stops `names` as a cascade (dependents first, each level in parallel) within
    /// `deadline`. Marks them stopping at once and stopped (phase idle) at the end.
    pub(super) fn cascade(
        &mut self,
        names: Vec<String>,
        deadline: Duration,
        ctx: &mut Context<Self>,
    ) -> impl ActorFuture<Self, Output = (Vec<ServiceStopReport>, bool)> + 'static {
        let mut items: Vec<(usize, StopItem)> = Vec::new();
        let mut ops: Vec<(String, u64)> = Vec::new();
        for n in &names {
            let Some(e) = self.entries.get_mut(n) else {
                continue;
            };
            self.health.do_send(Unwatch { name: n.clone() });
            // A plugin hears Stop only after a Start (one waiting for its
            // dependencies, or between restarts, has nothing running).
            let plugin_idle = e.is_plugin() && !matches!(e.phase, Phase::Starting | Phase::Running);
            // A pending restart is cancelled: left to fire, its timer would clear
            // the handle of a later one and start the service before its backoff.
            if let Some(t) = e.restart_timer.take() {
                ctx.cancel_future(t);
            }
            e.disarm_ready(ctx);
            e.phase = Phase::Stopping;
            e.op += 1;
            ops.push((n.clone(), e.op));
            if plugin_idle {
                e.ready = false;
                e.started = false;
                continue;
            }
            e.ready = false;
            e.started = false;
            if e.state != ServiceState::Failed {
                e.set_state(ServiceState::Stopping, None);
            }
            items.push((
                e.height,
                StopItem {
                    name: n.clone(),
                    via: match &e.spec.runner {
                        Runner::Process(a) => StopVia::Process(a.clone()),
                        Runner::Plugin { stop, .. } => StopVia::Plugin(stop.clone()),
                    },
                    timeout: e.spec.stop_timeout,
                    port: e.spec.port,
                    allow: e.spec.allow.clone(),
                    signal: e.spec.stop_signal,
                    stop_command: e.spec.stop_command,
                    drain: None,
                },
            ));
        }
        for (_, item) in items.iter_mut() {
            item.drain = self.group_addr(&item.name);
        }
        let mut by_height: BTreeMap<usize, Vec<StopItem>> = BTreeMap::new();
        for (h, item) in items {
            by_height.entry(h).or_default().push(item);
        }
        let levels: VecDeque<Vec<StopItem>> = by_height.into_values().collect();
        let cascade = CascadeCtx {
            janitor: self.janitor.clone(),
            subscribers: self.subscribers.clone(),
            project: self.project.clone(),
        };
        run_cascade(levels, deadline, cascade).into_actor(self).map(
            move |(reports, hit), act, _| {
                act.reap();
                for (name, op) in &ops {
                    if let Some(e) = act.entries.get_mut(name) {
                        if e.op == *op {
                            e.phase = Phase::Idle;
                            e.pid = None;
                            e.daemon = None;
                            e.ready_since = None;
                            if e.state != ServiceState::Failed {
                                e.set_state(ServiceState::Stopped, None);
                            }
                            // What its probe said describes a run that is over.
                            e.health_text = None;
                            e.health_latency_ms = None;
                            act.tell_group(name);
                        }
                    }
                }
                (reports, hit)
            },
        )
    }
}
