//! The balancer: a plugin actor in front of a replicated service. It owns the
//! service's public port and hands each TCP connection to one ready member.
//!
//! # What it is
//! A service with `replicas = N` runs as N process members (`api#0`, `api#1`,
//! ...), each on an internal loopback port of its own. In front of them the
//! Supervisor puts one [`Balancer`], the first plugin ringmaster ships itself: it
//! speaks the plugin protocol ([`Start`], [`Stop`], events through the
//! [`Reporter`] of the `Start`; see docs/plugins.md) and, beside it, messages of
//! its own defined here: [`SetBackend`] when a member's readiness changes,
//! [`ForgetBackend`] when a member is removed, [`Drain`] before a member is
//! stopped and [`SetMinReady`]. The Supervisor reads [`BalancerStats::snapshot`]
//! synchronously, from its own thread, for `status`.
//!
//! # Threads
//! [`Balancer::start_own`] starts the actor in an [`Arbiter`] (a thread with a
//! current-thread tokio runtime) of its own, so that forwarding bytes never runs
//! on the Supervisor's thread. Everything of the balancer runs there: the actor,
//! one accept loop per listener, and one task per connection (all spawned with
//! [`actix::spawn`]). Nothing there blocks: binding is one quick system call,
//! every wait is a tokio timer or socket. The table of members and counters lives
//! in [`BalancerStats`] behind a `std` mutex, held only for a few field updates
//! and never across an `.await`; the Supervisor's thread takes it only to copy a
//! [`BalancerSnapshot`]. When the last [`Addr`] is dropped the actor stops, and
//! stops its Arbiter with it, which drops every task still running there.
//!
//! # Routing
//! A member is *routable* when it is ready ([`SetBackend`] with `ready: true`) and
//! not draining. Each accepted connection goes to the routable member with the
//! fewest connections in flight (least connections), ties broken by a rotating
//! cursor (round-robin): dev servers keep long connections (HMR websockets,
//! keep-alive) that make plain round-robin uneven. The connection is counted on
//! the member from the moment it is chosen, so a burst of accepts spreads too.
//! The balancer connects to the member on `127.0.0.1:port`, and on `[::1]:port`
//! when that fails (a dev server bound to `localhost` may listen on IPv6 only;
//! the family that answered is tried first next time), each within
//! [`CONNECT_TIMEOUT`]. When the member cannot be reached, the next routable one is
//! tried (each at most once per connection); when none is left — or none was
//! routable to begin with — the client's connection is closed at once and counted
//! in `refused`. It is not held until a member is ready: the client sees the
//! close at once, and the counter says why. A member without a port counts for
//! readiness but is never sent a connection.
//!
//! # Readiness
//! `Start` reports `Spawned`, then `Ready` once at least `min_ready` members are
//! routable (at once when they already are). After `Ready`, when the routable
//! members fall below `min_ready` it reports `Unhealthy` ("1 of 3 replicas ready,
//! fewer than min_ready 2") once, and `Healthy` when enough are back. Every
//! message that changes the table or the minimum re-evaluates this. Events are
//! reported only between `Start` and `Stop`.
//!
//! # Drain
//! [`Drain`] marks a member draining: it gets no new connection from that moment
//! on. The answer comes when its connections in flight reach 0, or after
//! `within` (those left run on: the member's stop ends them), or when the member
//! is forgotten. It waits on a [`Notify`] that the end of every connection (and
//! every `ForgetBackend`) wakes, not on a timer. `draining` is cleared only by
//! [`ForgetBackend`] or by a [`SetBackend`] with `ready: false`; a `SetBackend`
//! with `ready: true` for a draining member keeps it draining.
//!
//! # Start and Stop
//! `Start` binds the public port on `127.0.0.1` (required: when that fails it
//! reports `Failed` naming the address and the OS error, and stays stopped) and on
//! `[::1]` (best effort), and runs an accept loop per listener. Without a port it
//! binds nothing and only tracks readiness. `Stop { grace }` ends the accept loops
//! at once (the port is free once they are gone), waits for the connections in
//! flight to end, at most `grace`, then cuts the rest: every connection task
//! selects on a `watch` channel of its run, and the run's end is seen when the
//! last receiver of that channel is dropped. It answers with an empty
//! [`StopReport`] (no process was signalled), and the actor keeps running: a later
//! `Start` binds again. A `Start` while started keeps its listeners and reports
//! `Spawned`, then `Ready`, again to the new `Reporter`.
use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::messages::{EventKind, Reporter, Start, Stop};
use crate::StopReport;

mod relay;
mod table;

use relay::{accept_loop, listen};
use table::{Backend, InFlight};
pub use table::{BackendSnapshot, BalancerSnapshot, BalancerStats};

/// How long one connect to a member may take, per address family, before the
/// next address (then the next member) is tried. On loopback a live listener
/// answers within microseconds; Windows retries a refused loopback SYN for about
/// two seconds, which this cuts short.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The copy buffer of a forwarded connection, each way. tokio's default is 8 KiB;
/// a dev stack's connections mostly carry small messages (requests, JSON, HMR
/// updates) and many sit idle (websockets, keep-alive), so half that keeps a
/// connection at 8 KiB of buffers in all. Bulk transfers (a bundle of a few MB)
/// only take more loopback reads and writes, of a few microseconds each. Chosen,
/// not measured.
const COPY_BUFFER: usize = 4 * 1024;

/// After a `Stop`'s grace the connection tasks are told to end; they run on the
/// balancer's thread and end at their next poll. This bounds that wait.
const CUT_WAIT: Duration = Duration::from_secs(1);

/// After an `accept` error (e.g. out of file descriptors) the accept loop waits
/// this long before the next one, instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Supervisor → Balancer: add or update member `name` (its internal `port`, and
/// whether it is ready). `ready: true` makes it routable unless it is draining;
/// `ready: false` also ends a drain.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct SetBackend {
    pub name: String,
    pub port: Option<u16>,
    pub ready: bool,
}

/// Supervisor → Balancer: member `name` was removed; forget it (its connections in
/// flight run on until the member's stop ends them).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct ForgetBackend {
    pub name: String,
}

/// Supervisor → Balancer, before it stops member `name`: route no new connection
/// to it from now on; answers when its connections in flight reach 0, or once
/// `within` passed (they are left as they are then: the member's stop ends
/// them), or when the member is forgotten meanwhile ([`ForgetBackend`]). An
/// unknown name answers at once.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct Drain {
    pub name: String,
    pub within: Duration,
}

/// Supervisor → Balancer: the service is ready while at least this many members
/// are routable; `Ready`, `Unhealthy` and `Healthy` are re-evaluated at once.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct SetMinReady(pub u32);

/// The balancer of one replicated service. See the module documentation.
pub struct Balancer {
    name: String,
    port: Option<u16>,
    min_ready: u32,
    stats: Arc<BalancerStats>,
    /// Between `Start` and `Stop`.
    run: Option<Run>,
}

/// What one `Start` set running.
struct Run {
    events: Reporter,
    /// The accept loops (one per listener; none without a port).
    accept: Vec<JoinHandle<()>>,
    /// Every connection task of this run holds a receiver and ends when `true` is
    /// sent; the run's connections are all gone when the channel is closed.
    cut: watch::Sender<bool>,
    ready_reported: bool,
    unhealthy: bool,
}

impl Balancer {
    /// Starts the balancer for service `name` in an [`Arbiter`] (thread) of its
    /// own, so that forwarding never runs on the Supervisor's thread. `port`: the
    /// public port (`None`: a replicated service without a port: no listener, it
    /// only tracks readiness). `min_ready`: how many routable members make the
    /// service ready. Returns its address and its live counters. The Arbiter stops
    /// when the actor stops (all addresses dropped).
    ///
    /// # Panics
    /// Outside a running actix System, or when the OS cannot create the thread
    /// (as [`Arbiter::new`]).
    pub fn start_own(
        name: &str,
        port: Option<u16>,
        min_ready: u32,
    ) -> (Addr<Balancer>, Arc<BalancerStats>) {
        let stats = Arc::new(BalancerStats::new(port));
        let arbiter = Arbiter::new();
        let balancer = Balancer {
            name: name.to_owned(),
            port,
            min_ready,
            stats: stats.clone(),
            run: None,
        };
        let addr = Balancer::start_in_arbiter(&arbiter.handle(), move |_| balancer);
        (addr, stats)
    }

    /// Reports `Ready`, `Unhealthy` or `Healthy` when the routable members crossed
    /// `min_ready` (only while started).
    fn evaluate(&mut self) {
        let Some(run) = &mut self.run else { return };
        let (ready, members) = self.stats.table().readiness();
        let enough = ready >= self.min_ready;
        if !run.ready_reported {
            if enough {
                run.ready_reported = true;
                run.events.report(EventKind::Ready);
            }
        } else if !enough && !run.unhealthy {
            run.unhealthy = true;
            run.events.report(EventKind::Unhealthy {
                reason: format!(
                    "{ready} of {members} replicas ready, fewer than min_ready {}",
                    self.min_ready
                ),
            });
        } else if enough && run.unhealthy {
            run.unhealthy = false;
            run.events.report(EventKind::Healthy);
        }
    }

    fn span(&self) -> tracing::Span {
        tracing::info_span!("balancer", service = %self.name)
    }
}

impl Actor for Balancer {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.stats.set_listening(false, None);
        // Drops the accept loops and connections with the Arbiter's runtime.
        Arbiter::current().stop();
    }
}

impl Handler<Start> for Balancer {
    type Result = ();

    fn handle(&mut self, start: Start, _: &mut Context<Self>) {
        let span = self.span();
        let _entered = span.enter();
        if let Some(run) = &mut self.run {
            // Started already (no Stop came between): keep the listeners, take the
            // new reporter and report this start from its beginning.
            run.events = start.events;
            run.ready_reported = false;
            run.unhealthy = false;
            run.events.report(EventKind::Spawned { pid: None });
            self.evaluate();
            return;
        }
        let (cut, cut_rx) = watch::channel(false);
        let mut accept = Vec::new();
        if let Some(port) = self.port {
            let v4 = match listen(IpAddr::V4(Ipv4Addr::LOCALHOST), port) {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::warn!("cannot listen on 127.0.0.1:{port}: {e}");
                    start.events.report(EventKind::Failed {
                        reason: format!("cannot listen on 127.0.0.1:{port}: {e}"),
                    });
                    return;
                }
            };
            // Port 0 asks the OS for one: take the same on IPv6.
            let bound = v4.local_addr().map_or(port, |a| a.port());
            let v6 = match listen(IpAddr::V6(Ipv6Addr::LOCALHOST), bound) {
                Ok(listener) => Some(listener),
                Err(e) => {
                    tracing::debug!("not listening on [::1]:{bound}: {e}");
                    None
                }
            };
            for listener in std::iter::once(v4).chain(v6) {
                let task = accept_loop(listener, self.stats.clone(), cut_rx.clone());
                accept.push(actix::spawn(task.instrument(span.clone())));
            }
            self.stats.set_listening(true, Some(bound));
            tracing::debug!("listening on port {bound}");
        }
        start.events.report(EventKind::Spawned { pid: None });
        self.run = Some(Run {
            events: start.events,
            accept,
            cut,
            ready_reported: false,
            unhealthy: false,
        });
        self.evaluate();
    }
}

impl Handler<Stop> for Balancer {
    type Result = ResponseFuture<StopReport>;

    fn handle(&mut self, stop: Stop, _: &mut Context<Self>) -> Self::Result {
        let began = Instant::now();
        let run = self.run.take();
        self.stats.set_listening(false, None);
        let span = self.span();
        Box::pin(
            async move {
                if let Some(Run { accept, cut, .. }) = run {
                    for task in &accept {
                        task.abort();
                    }
                    // Each resolves once its task is dropped: the listeners are
                    // closed (the port is free) before the reply.
                    for task in accept {
                        let _ = task.await;
                    }
                    let grace = stop.grace.saturating_sub(began.elapsed());
                    if tokio::time::timeout(grace, cut.closed()).await.is_err() {
                        tracing::debug!(
                            "cutting {} connections after the grace",
                            cut.receiver_count()
                        );
                        cut.send_replace(true);
                        let _ = tokio::time::timeout(CUT_WAIT, cut.closed()).await;
                    }
                }
                // No process: nobody was signalled or killed.
                StopReport {
                    elapsed: began.elapsed(),
                    ..StopReport::default()
                }
            }
            .instrument(span),
        )
    }
}

impl Handler<SetBackend> for Balancer {
    type Result = ();

    fn handle(&mut self, msg: SetBackend, _: &mut Context<Self>) {
        {
            let mut t = self.stats.table();
            let t = &mut *t;
            let backend = t.backends.entry(msg.name).or_insert_with(|| {
                t.next_id += 1;
                Backend {
                    id: t.next_id,
                    port: msg.port,
                    ready: false,
                    draining: false,
                    active: 0,
                    served: 0,
                    v6_first: false,
                }
            });
            if backend.port != msg.port {
                backend.port = msg.port;
                backend.v6_first = false;
            }
            backend.ready = msg.ready;
            if !msg.ready {
                backend.draining = false;
            }
        }
        self.evaluate();
    }
}

impl Handler<ForgetBackend> for Balancer {
    type Result = ();

    fn handle(&mut self, msg: ForgetBackend, _: &mut Context<Self>) {
        self.stats.table().backends.remove(&msg.name);
        // A Drain waiting for this member answers now.
        self.stats.ended.notify_waiters();
        self.evaluate();
    }
}

impl Handler<Drain> for Balancer {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: Drain, _: &mut Context<Self>) -> Self::Result {
        let deadline = tokio::time::Instant::now() + msg.within;
        let id = {
            let mut t = self.stats.table();
            t.backends.get_mut(&msg.name).map(|b| {
                b.draining = true;
                b.id
            })
        };
        let Some(id) = id else {
            return Box::pin(async {});
        };
        self.evaluate();
        let stats = self.stats.clone();
        Box::pin(
            async move {
                loop {
                    // Registered before the check, so an end between the check
                    // and the wait is not missed.
                    let ended = stats.ended.notified();
                    let left = stats.in_flight(&msg.name, id);
                    if left == 0 {
                        tracing::debug!(member = %msg.name, "drained");
                        return;
                    }
                    if tokio::time::timeout_at(deadline, ended).await.is_err() {
                        tracing::debug!(
                            member = %msg.name,
                            "{left} connections still in flight after {:?}",
                            msg.within
                        );
                        return;
                    }
                }
            }
            .instrument(self.span()),
        )
    }
}

impl Handler<SetMinReady> for Balancer {
    type Result = ();

    fn handle(&mut self, msg: SetMinReady, _: &mut Context<Self>) {
        self.min_ready = msg.0;
        self.evaluate();
    }
}

#[cfg(test)]
mod tests;
