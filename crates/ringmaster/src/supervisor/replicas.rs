//! Replicas: a service with `replicas = N` is N members of the graph (`api#0`,
//! `api#1`, ...), each a full process service on an internal port of its own,
//! and one entry under the service's name whose runner is its balancer
//! ([`crate::balancer`]): a plugin that listens on the service's port and is
//! ready once `min_ready` members are. What depends on the service depends on
//! that entry. The Supervisor tells the balancer each member's readiness
//! (`tell_group`, from every event it broadcasts), drains a member before its
//! stop (the cascade), and fails the service when all its members failed.
//!
//! A rolling restart (`restart` of the service, a reload that changes it) runs
//! as a change: one member at a time, a new member under the lowest free
//! number is started and ready before the one it replaces is drained and
//! stopped, so the service keeps its ready replicas throughout.
use super::*;
use crate::balancer::{ForgetBackend, SetBackend};
use crate::config::replica_of;

/// A port of `range` (or one the OS picks) that no service uses and that can
/// be bound on loopback now.
pub(super) fn free_port(range: Option<(u16, u16)>, taken: &BTreeSet<u16>) -> Result<u16> {
    let bindable = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    match range {
        Some((first, last)) => (first..=last)
            .find(|p| !taken.contains(p) && bindable(*p))
            .ok_or_else(|| {
                Error::Rejected(format!("no free port left in replica_ports {first}-{last}"))
            }),
        None => {
            let pick = || -> std::io::Result<u16> {
                let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
                Ok(l.local_addr()?.port())
            };
            for _ in 0..64 {
                let p = pick()
                    .map_err(|e| Error::Other(format!("no loopback port for a replica: {e}")))?;
                if !taken.contains(&p) {
                    return Ok(p);
                }
            }
            Err(Error::Other("no free loopback port for a replica".into()))
        }
    }
}

impl Supervisor {
    /// The members of replicated service `group`, by number.
    pub(super) fn members(&self, group: &str) -> Vec<String> {
        let mut found: Vec<(u32, String)> = self
            .entries
            .keys()
            .filter_map(|n| match replica_of(n) {
                Some((g, i)) if g == group => Some((i, n.clone())),
                _ => None,
            })
            .collect();
        found.sort();
        found.into_iter().map(|(_, n)| n).collect()
    }

    /// Every port a service of the graph uses.
    pub(super) fn used_ports(&self) -> BTreeSet<u16> {
        self.entries.values().filter_map(|e| e.spec.port).collect()
    }

    /// The configurations of the members `indices` of `cfg`, each on a port of its
    /// own (when `cfg` has a port) that is not in `taken` (which gains it).
    pub(super) fn new_members(
        &self,
        cfg: &ServiceConfig,
        indices: &[u32],
        taken: &mut BTreeSet<u16>,
    ) -> Result<Vec<ServiceConfig>> {
        let mut out = Vec::with_capacity(indices.len());
        for &i in indices {
            let port = match cfg.port {
                Some(_) => {
                    let p = free_port(cfg.replica_ports, taken)?;
                    taken.insert(p);
                    Some(p)
                }
                None => None,
            };
            out.push(cfg.replica(i, port));
        }
        Ok(out)
    }

    /// The members of a service added (or made replicated): `0..replicas`.
    pub(super) fn members_of_new(
        &self,
        cfg: &ServiceConfig,
        also_taken: &[u16],
    ) -> Result<Vec<ServiceConfig>> {
        let Some(n) = cfg.replicas else {
            return Ok(Vec::new());
        };
        let mut taken = self.used_ports();
        taken.extend(also_taken);
        taken.extend(cfg.port);
        let indices: Vec<u32> = (0..n).collect();
        self.new_members(cfg, &indices, &mut taken)
    }

    /// The `count` lowest numbers no member of `group` has.
    pub(super) fn free_indices(&self, group: &str, count: usize) -> Vec<u32> {
        let used: BTreeSet<u32> = self
            .members(group)
            .iter()
            .filter_map(|n| replica_of(n).map(|(_, i)| i))
            .collect();
        (0..).filter(|i| !used.contains(i)).take(count).collect()
    }

    /// The balancer of `name`'s service, when `name` is a member of one.
    fn group_of(&self, name: &str) -> Option<&Group> {
        let (group, _) = replica_of(name)?;
        self.entries.get(group)?.spec.group.as_ref()
    }

    /// The address of `name`'s balancer, when it is a member.
    pub(super) fn group_addr(&self, name: &str) -> Option<Addr<Balancer>> {
        self.group_of(name).map(|g| g.addr.clone())
    }

    /// Tells `name`'s balancer (when it is a member) whether it takes connections
    /// now: only when ready (not starting, unhealthy, stopping or gone).
    pub(super) fn tell_group(&self, name: &str) {
        let Some(g) = self.group_of(name) else {
            return;
        };
        match self.entries.get(name) {
            Some(e) => g.addr.do_send(SetBackend {
                name: name.to_owned(),
                port: e.spec.port,
                ready: e.ready && e.state == ServiceState::Ready,
            }),
            None => g.addr.do_send(ForgetBackend {
                name: name.to_owned(),
            }),
        }
    }

    /// After a member of `group` failed or was removed: when every member left
    /// has failed, the service fails too, its balancer stopped first (what
    /// depends on it is stopped, a pending request answers).
    pub(super) fn group_check(&mut self, group: &str, ctx: &mut Context<Self>) {
        let members = self.members(group);
        let failed = |m: &String| {
            self.entries
                .get(m)
                .is_some_and(|e| e.state == ServiceState::Failed)
        };
        let Some(last) = members.iter().rev().find(|m| failed(m)).cloned() else {
            return;
        };
        let group_runs = self
            .entries
            .get(group)
            .is_some_and(|e| e.state != ServiceState::Failed && e.phase != Phase::Stopping);
        if !members.iter().all(failed) || !group_runs || self.shutting_down {
            return;
        }
        let reason = self.entries[&last].reason.clone().unwrap_or_default();
        let why = format!("every replica failed (`{last}`: {reason})");
        let owned = group.to_owned();
        let timeout = self.settings.shutdown_timeout;
        self.cascade(vec![owned.clone()], timeout, ctx)
            .map(move |_, act, ctx| {
                if !act.shutting_down {
                    act.fail(&owned, why, ctx);
                }
            })
            .spawn(ctx);
    }

    /// The graph for the stop order: each service's dependencies, and a balancer
    /// above its members (it stops first, so no connection goes to a member that
    /// is stopping).
    pub(super) fn stop_graph(&self) -> BTreeMap<String, Vec<String>> {
        let mut g = graph::deps_of(&self.shape());
        for (name, deps) in g.iter_mut() {
            if self
                .entries
                .get(name)
                .is_some_and(|e| e.spec.group.is_some())
            {
                deps.extend(self.members(name));
            }
        }
        g
    }

    /// Adds member `cfg` to the graph (rebuilt), needed: returns the answer to
    /// wait for (ready, or its failure).
    pub(super) fn add_member(
        &mut self,
        cfg: &ServiceConfig,
        origin: Origin,
        ctx: &mut Context<Self>,
    ) -> oneshot::Receiver<Result<()>> {
        self.insert_entry(cfg.name.clone(), self.spec_for(cfg), origin);
        self.reorder();
        let (names, _) = self.need_again(std::slice::from_ref(&cfg.name));
        let (_, rx) = self.wait_for(names, Vec::new(), false);
        self.advance(ctx);
        self.check_waiters(ctx);
        rx
    }

    /// One step of a rolling restart of `group` with `cfg`: a new member, once
    /// ready, replaces `old` (drained and stopped, then removed); then the next.
    /// A new member that fails ends the roll (it is removed again; what was not
    /// replaced yet runs on) with its failure.
    pub(super) fn roll(
        &mut self,
        group: String,
        cfg: ServiceConfig,
        mut old: VecDeque<String>,
        ctx: &mut Context<Self>,
    ) -> Pin<Box<dyn ActorFuture<Self, Output = Result<()>>>> {
        if self.shutting_down || self.closed {
            return Box::pin(actix::fut::ready(Err(Error::ShuttingDown)));
        }
        let Some(victim) = old.pop_front() else {
            return Box::pin(actix::fut::ready(Ok(())));
        };
        let index = self.free_indices(&group, 1)[0];
        let mut taken = self.used_ports();
        taken.extend(cfg.port);
        let member = match self.new_members(&cfg, &[index], &mut taken) {
            Ok(mut m) => m.remove(0),
            Err(e) => return Box::pin(actix::fut::ready(Err(e))),
        };
        let origin = self
            .entries
            .get(&group)
            .map_or(Origin::Config, |e| e.origin);
        tracing::info!(service = %group, "rolling: `{}` replaces `{victim}`", member.name);
        let rx = self.add_member(&member, origin, ctx);
        let new_name = member.name.clone();
        Box::pin(
            actix::fut::wrap_future::<_, Self>(async move {
                rx.await.unwrap_or(Err(Error::SupervisorGone))
            })
            .then(
                move |res, act, ctx| -> Pin<Box<dyn ActorFuture<Self, Output = Result<()>>>> {
                    if act.shutting_down || act.closed {
                        // The shutdown's cascade stops them all.
                        return Box::pin(actix::fut::ready(Err(Error::ShuttingDown)));
                    }
                    let (retire, outcome) = match res {
                        Ok(()) => (victim, Ok(())),
                        Err(e) => (new_name, Err(e)),
                    };
                    Box::pin(act.retire(vec![retire], ctx).map(move |_, _, _| outcome))
                },
            )
            .then(
                move |outcome, act, ctx| -> Pin<Box<dyn ActorFuture<Self, Output = Result<()>>>> {
                    match outcome {
                        Ok(()) => act.roll(group, cfg, old, ctx),
                        Err(e) => Box::pin(actix::fut::ready(Err(e))),
                    }
                },
            ),
        )
    }

    /// Nothing of `names` starts again, and no request can need them any more:
    /// they are being removed.
    pub(super) fn mark_leaving(&mut self, names: &[String]) {
        for n in names {
            if let Some(e) = self.entries.get_mut(n) {
                e.needed = false;
                e.leaving = true;
            }
        }
    }

    /// Stops `names` (a cascade: members are drained first) and removes them.
    pub(super) fn retire(
        &mut self,
        names: Vec<String>,
        ctx: &mut Context<Self>,
    ) -> impl ActorFuture<Self, Output = ()> + 'static {
        self.mark_leaving(&names);
        let timeout = self.settings.shutdown_timeout;
        self.cascade(names.clone(), timeout, ctx)
            .map(move |(reports, _), act, ctx| {
                act.remove_entries(&names, &cascade::unclean(&reports), ctx);
                act.reorder();
                for n in &names {
                    if let Some((group, _)) = replica_of(n) {
                        act.group_check(group, ctx);
                    }
                }
                act.check_waiters(ctx);
            })
    }
}
