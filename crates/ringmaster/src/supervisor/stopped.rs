//! One service stopped on request and started again ([`StopService`],
//! [`StartService`]): `ringmaster stop` / `start`, the `s` key of `top`. A
//! stopped service is not needed: nothing restarts it (its restart policy, a
//! dependency's restart) until it is started again, named by an `Up`, or
//! restarted. What depends on it stops first and remembers why
//! (`stopped_with`), so that starting it brings them back.
use super::*;
use crate::messages::{StartService, StopService};

impl Handler<StopService> for Supervisor {
    type Result = ResponseActFuture<Self, Result<()>>;

    fn handle(&mut self, msg: StopService, ctx: &mut Context<Self>) -> Self::Result {
        if self.closed || self.shutting_down {
            return Box::pin(actix::fut::ready(Err(Error::ShuttingDown)));
        }
        if self.entries.get(&msg.name).is_none_or(|e| e.leaving) {
            return Box::pin(actix::fut::ready(Err(Error::UnknownService(msg.name))));
        }
        let name = msg.name;
        // It, its replicas, and what runs of its dependents: none is needed any
        // more, so nothing starts them again behind the request's back.
        let mut names = vec![name.clone()];
        names.extend(self.members(&name));
        let dependents: Vec<String> = self
            .dependents(&name)
            .into_iter()
            .filter(|d| {
                self.entries
                    .get(d)
                    .is_some_and(|e| e.in_flight() || e.needed)
            })
            .collect();
        for d in &dependents {
            names.extend(self.members(d));
        }
        names.extend(dependents.iter().cloned());
        for n in &names {
            if let Some(e) = self.entries.get_mut(n) {
                e.needed = false;
            }
        }
        for d in &dependents {
            if let Some(e) = self.entries.get_mut(d) {
                e.stopped_with = Some(name.clone());
            }
        }
        let to_stop: Vec<String> = names
            .iter()
            .filter(|n| self.entries.get(*n).is_some_and(|e| e.in_flight()))
            .cloned()
            .collect();
        tracing::info!(service = %name, "stopping on request");
        let timeout = self.settings.shutdown_timeout;
        Box::pin(self.cascade(to_stop, timeout, ctx).map(move |_, act, ctx| {
            for n in &names {
                let Some(e) = act.entries.get_mut(n) else {
                    continue;
                };
                if e.phase != Phase::Idle || e.state == ServiceState::Failed {
                    continue;
                }
                let why = match &e.stopped_with {
                    Some(by) if *n != name => format!("stopped with `{by}`"),
                    _ if n != &name => format!("stopped with `{name}`"),
                    _ => "stopped on request".to_owned(),
                };
                e.set_state(ServiceState::Stopped, Some(why));
            }
            // A request still waiting for one of them answers with why.
            act.check_waiters(ctx);
            Ok(())
        }))
    }
}

impl Handler<StartService> for Supervisor {
    type Result = ResponseFuture<Result<()>>;

    fn handle(&mut self, msg: StartService, ctx: &mut Context<Self>) -> Self::Result {
        if self.closed || self.shutting_down {
            return Box::pin(async { Err(Error::ShuttingDown) });
        }
        if self.entries.get(&msg.name).is_none_or(|e| e.leaving) {
            return Box::pin(async move { Err(Error::UnknownService(msg.name)) });
        }
        // It, and the dependents its stop took down (they come after it).
        let mut only = vec![msg.name.clone()];
        for e in self.entries.values_mut() {
            if e.stopped_with.as_deref() == Some(msg.name.as_str()) {
                e.stopped_with = None;
                only.push(e.name.clone());
            }
        }
        if let Some(e) = self.entries.get_mut(&msg.name) {
            e.stopped_with = None;
        }
        let names = match self.closure(Some(&only)) {
            Ok(n) => n,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let started_here = self.need(&names);
        let (_, rx) = self.wait_for(names, started_here, false);
        self.advance(ctx);
        self.check_waiters(ctx);
        Box::pin(async move { rx.await.unwrap_or(Err(Error::SupervisorGone)) })
    }
}
