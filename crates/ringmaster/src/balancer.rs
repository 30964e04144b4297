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

/// The balancer's live table: its members and counters, shared between the
/// balancer's thread (which updates it) and whoever holds the `Arc` (the
/// Supervisor reads it with [`BalancerStats::snapshot`]). `Send + Sync`; the lock
/// is held only for a few field updates.
#[derive(Debug)]
pub struct BalancerStats {
    table: Mutex<Table>,
    /// Notified whenever a connection in flight ends (what a [`Drain`] waits for).
    ended: Notify,
}

/// The counters and members under [`BalancerStats`]'s lock.
#[derive(Debug, Default)]
struct Table {
    listening: bool,
    port: Option<u16>,
    accepted: u64,
    refused: u64,
    active: u64,
    /// Where the round-robin among equally loaded members goes on: an index into
    /// `backends` in name order.
    cursor: usize,
    /// The id of the next member entry (an entry forgotten and added again is a
    /// new one, so a connection of the old one never counts on it).
    next_id: u64,
    backends: BTreeMap<String, Backend>,
}

#[derive(Debug)]
struct Backend {
    id: u64,
    port: Option<u16>,
    ready: bool,
    draining: bool,
    active: u64,
    served: u64,
    /// The member answered on `[::1]` last time: try that first.
    v6_first: bool,
}

impl Backend {
    /// Counts for readiness: ready and not draining.
    fn routable(&self) -> bool {
        self.ready && !self.draining
    }
}

/// A copy of the balancer's counters at one moment ([`BalancerStats::snapshot`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalancerSnapshot {
    /// The public port is bound (between `Start` and `Stop`).
    pub listening: bool,
    /// The public port (`None`: a replicated service without one).
    pub port: Option<u16>,
    /// Members routable now (ready and not draining).
    pub ready: u32,
    /// Members known.
    pub members: u32,
    /// Connections in flight, to all members.
    pub active: u64,
    /// Connections accepted since the balancer was created.
    pub accepted: u64,
    /// Connections closed for want of a ready member: none was routable, or every
    /// routable one refused the connect.
    pub refused: u64,
    /// Every member, sorted by name.
    pub backends: Vec<BackendSnapshot>,
}

/// One member in a [`BalancerSnapshot`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendSnapshot {
    /// The member's name (`api#0`).
    pub name: String,
    /// Its internal port.
    pub port: Option<u16>,
    /// Its last [`SetBackend`] said it is ready.
    pub ready: bool,
    /// A [`Drain`] took it out of the rotation.
    pub draining: bool,
    /// Connections in flight to it.
    pub active: u64,
    /// Connections handed to it (connected), finished or running.
    pub served: u64,
}

/// A member chosen for a connection, already counted in flight on it.
struct Pick {
    name: String,
    id: u64,
    port: u16,
    v6_first: bool,
}

impl BalancerStats {
    fn new(port: Option<u16>) -> BalancerStats {
        BalancerStats {
            table: Mutex::new(Table {
                port,
                ..Table::default()
            }),
            ended: Notify::new(),
        }
    }

    /// The table. Nothing panics while holding the lock, so a poisoned one is
    /// still consistent: take it as it is.
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of every counter and member, consistent with each other (taken
    /// under one lock). Cheap: for `status`, from any thread.
    pub fn snapshot(&self) -> BalancerSnapshot {
        let t = self.table();
        let (ready, members) = t.readiness();
        BalancerSnapshot {
            listening: t.listening,
            port: t.port,
            ready,
            members,
            active: t.active,
            accepted: t.accepted,
            refused: t.refused,
            backends: t
                .backends
                .iter()
                .map(|(name, b)| BackendSnapshot {
                    name: name.clone(),
                    port: b.port,
                    ready: b.ready,
                    draining: b.draining,
                    active: b.active,
                    served: b.served,
                })
                .collect(),
        }
    }

    fn set_listening(&self, listening: bool, port: Option<u16>) {
        let mut t = self.table();
        t.listening = listening;
        if port.is_some() {
            t.port = port;
        }
    }

    fn count_accepted(&self) {
        self.table().accepted += 1;
    }

    fn count_refused(&self) {
        self.table().refused += 1;
    }

    /// Chooses the member for a connection (least connections, then the cursor),
    /// skipping the entries in `tried`, and counts the connection in flight on it.
    fn pick(&self, tried: &[u64]) -> Option<Pick> {
        let mut t = self.table();
        let eligible = |b: &Backend| b.routable() && b.port.is_some() && !tried.contains(&b.id);
        let least = t
            .backends
            .values()
            .filter(|b| eligible(b))
            .map(|b| b.active)
            .min()?;
        let n = t.backends.len();
        let start = t.cursor % n;
        let (index, name) = t
            .backends
            .iter()
            .enumerate()
            .filter(|(_, (_, b))| eligible(b) && b.active == least)
            .min_by_key(|(i, _)| (i + n - start) % n)
            .map(|(i, (name, _))| (i, name.clone()))?;
        let t = &mut *t;
        let b = t.backends.get_mut(&name)?;
        let (id, port, v6_first) = (b.id, b.port?, b.v6_first);
        b.active += 1;
        t.active += 1;
        t.cursor = index + 1;
        Some(Pick {
            name,
            id,
            port,
            v6_first,
        })
    }

    /// The connection picked for entry `id` of `name` is connected: it counts as
    /// served, and `v6` says which family answered.
    fn connected(&self, name: &str, id: u64, v6: bool) {
        if let Some(b) = self.table().backends.get_mut(name).filter(|b| b.id == id) {
            b.served += 1;
            b.v6_first = v6;
        }
    }

    /// A connection counted in flight on entry `id` of `name` ended (or its
    /// connect failed).
    fn end(&self, name: &str, id: u64) {
        {
            let mut t = self.table();
            t.active = t.active.saturating_sub(1);
            if let Some(b) = t.backends.get_mut(name).filter(|b| b.id == id) {
                b.active = b.active.saturating_sub(1);
            }
        }
        self.ended.notify_waiters();
    }

    /// Connections in flight on entry `id` of `name` (0 once it is forgotten).
    fn in_flight(&self, name: &str, id: u64) -> u64 {
        self.table()
            .backends
            .get(name)
            .filter(|b| b.id == id)
            .map_or(0, |b| b.active)
    }
}

impl Table {
    /// (routable members, members known).
    fn readiness(&self) -> (u32, u32) {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let routable = self.backends.values().filter(|b| b.routable()).count();
        (count(routable), count(self.backends.len()))
    }
}

/// A connection counted in flight on a member: dropping it (the connection ended,
/// its connect failed, its task was cut or dropped) counts it out.
struct InFlight {
    stats: Arc<BalancerStats>,
    name: String,
    id: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.stats.end(&self.name, self.id);
    }
}

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

/// A non-blocking tokio listener on `ip:port` (a std bind gives the plain OS
/// error when the port is taken).
fn listen(ip: IpAddr, port: u16) -> io::Result<TcpListener> {
    let listener = std::net::TcpListener::bind(SocketAddr::new(ip, port))?;
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

/// Accepts on `listener` until aborted, forwarding each connection in a task of
/// its own.
async fn accept_loop(listener: TcpListener, stats: Arc<BalancerStats>, cut: watch::Receiver<bool>) {
    loop {
        match listener.accept().await {
            Ok((client, peer)) => {
                stats.count_accepted();
                let span = tracing::debug_span!("connection", %peer);
                actix::spawn(forward(client, stats.clone(), cut.clone()).instrument(span));
            }
            // A client that gave up before its connection was accepted.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted
                ) =>
            {
                tracing::debug!("accept: {e}");
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Forwards `client` to a routable member until either side closes, or until
/// `true` comes on `cut` (the end of a `Stop`'s grace).
async fn forward(client: TcpStream, stats: Arc<BalancerStats>, mut cut: watch::Receiver<bool>) {
    tokio::select! {
        () = relay(client, stats) => {}
        // Also when the sender is gone: the run is over.
        _ = cut.wait_for(|cut| *cut) => tracing::debug!("cut by stop"),
    }
}

async fn relay(mut client: TcpStream, stats: Arc<BalancerStats>) {
    let mut tried = Vec::new();
    let (mut upstream, _in_flight) = loop {
        let Some(pick) = stats.pick(&tried) else {
            // Dropping `client` closes it: the client sees the close at once.
            stats.count_refused();
            tracing::debug!(tried = tried.len(), "no ready member: connection refused");
            return;
        };
        tried.push(pick.id);
        let in_flight = InFlight {
            stats: stats.clone(),
            name: pick.name.clone(),
            id: pick.id,
        };
        match connect(pick.port, pick.v6_first).await {
            Ok((upstream, v6)) => {
                stats.connected(&pick.name, pick.id, v6);
                break (upstream, in_flight);
            }
            Err(e) => {
                tracing::debug!(member = %pick.name, port = pick.port, "cannot connect: {e}");
            }
        }
    };
    for socket in [&client, &upstream] {
        if let Err(e) = socket.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
    }
    if let Err(e) = tokio::io::copy_bidirectional_with_sizes(
        &mut client,
        &mut upstream,
        COPY_BUFFER,
        COPY_BUFFER,
    )
    .await
    {
        tracing::debug!("connection ended: {e}");
    }
}

/// Connects to a member on loopback: `127.0.0.1:port`, then `[::1]:port` (the
/// other way round with `v6_first`), each within [`CONNECT_TIMEOUT`]. Returns
/// the stream and whether IPv6 answered.
async fn connect(port: u16, v6_first: bool) -> io::Result<(TcpStream, bool)> {
    let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let (first, second) = if v6_first { (v6, v4) } else { (v4, v6) };
    let attempt = |ip: IpAddr| async move {
        let addr = SocketAddr::new(ip, port);
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => Ok((stream, ip.is_ipv6())),
            Ok(Err(e)) => Err(io::Error::new(e.kind(), format!("{addr}: {e}"))),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{addr}: no answer within {CONNECT_TIMEOUT:?}"),
            )),
        }
    };
    match attempt(first).await {
        Ok(connected) => Ok(connected),
        Err(e1) => attempt(second)
            .await
            .map_err(|e2| io::Error::new(e2.kind(), format!("{e1}; {e2}"))),
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
mod tests {
    use std::collections::HashMap;
    use std::net::TcpListener as StdListener;

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    use super::*;
    use crate::messages::ServiceEvent;

    /// The longest any wait of these tests lasts before it fails: long enough for
    /// a loaded machine, and only reached when something is wrong.
    const PATIENCE: Duration = Duration::from_secs(10);

    /// Collects the kinds of the events it hears.
    #[derive(Default)]
    struct Collector(Vec<EventKind>);

    impl Actor for Collector {
        type Context = Context<Self>;
    }

    impl Handler<ServiceEvent> for Collector {
        type Result = ();
        fn handle(&mut self, ev: ServiceEvent, _: &mut Context<Self>) {
            assert_eq!(ev.name, "api");
            self.0.push(ev.kind);
        }
    }

    /// The kinds heard so far.
    #[derive(Message)]
    #[rtype(result = "Vec<EventKind>")]
    struct Kinds;

    impl Handler<Kinds> for Collector {
        type Result = MessageResult<Kinds>;
        fn handle(&mut self, _: Kinds, _: &mut Context<Self>) -> Self::Result {
            MessageResult(self.0.clone())
        }
    }

    /// A balancer for `api`, started, with its events collected.
    struct Rig {
        addr: Addr<Balancer>,
        stats: Arc<BalancerStats>,
        events: Addr<Collector>,
    }

    impl Rig {
        async fn new(port: Option<u16>, min_ready: u32) -> Rig {
            let (addr, stats) = Balancer::start_own("api", port, min_ready);
            let rig = Rig {
                addr,
                stats,
                events: Collector::default().start(),
            };
            rig.start().await;
            rig
        }

        async fn start(&self) {
            self.addr
                .send(Start {
                    name: "api".into(),
                    events: Reporter::new("api", self.events.clone().recipient()),
                    notify_socket: None,
                })
                .await
                .expect("balancer answers Start");
        }

        async fn stop(&self, grace: Duration) -> StopReport {
            tokio::time::timeout(PATIENCE, self.addr.send(Stop { grace }))
                .await
                .expect("Stop answers")
                .expect("balancer answers Stop")
        }

        async fn set(&self, name: &str, port: Option<u16>, ready: bool) {
            self.addr
                .send(SetBackend {
                    name: name.into(),
                    port,
                    ready,
                })
                .await
                .expect("balancer answers SetBackend");
        }

        async fn forget(&self, name: &str) {
            self.addr
                .send(ForgetBackend { name: name.into() })
                .await
                .expect("balancer answers ForgetBackend");
        }

        /// The events so far. The balancer sends them before it answers the
        /// message that caused them, and the collector takes its mail in order, so
        /// they are all here once that answer came.
        async fn kinds(&self) -> Vec<EventKind> {
            self.events.send(Kinds).await.expect("collector answers")
        }

        fn backend(&self, name: &str) -> BackendSnapshot {
            self.stats
                .snapshot()
                .backends
                .into_iter()
                .find(|b| b.name == name)
                .unwrap_or_else(|| panic!("no member {name}"))
        }
    }

    /// Polls `done` every 20 ms until it holds; fails after [`PATIENCE`].
    async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let began = Instant::now();
        while !done() {
            assert!(began.elapsed() < PATIENCE, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn free_port() -> u16 {
        StdListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    }

    /// A member: answers each connection with its name and a newline, then echoes.
    async fn member(name: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind member");
        let port = listener.local_addr().expect("member address").port();
        actix::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                actix::spawn(async move {
                    if socket
                        .write_all(format!("{name}\n").as_bytes())
                        .await
                        .is_ok()
                    {
                        let (mut r, mut w) = socket.split();
                        let _ = tokio::io::copy(&mut r, &mut w).await;
                    }
                });
            }
        });
        port
    }

    /// Connects through the balancer on `port`: the member's name (empty when the
    /// connection was closed without one) and the open connection.
    async fn open(port: u16) -> (String, BufReader<TcpStream>) {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to the balancer");
        let mut conn = BufReader::new(stream);
        let mut line = String::new();
        match tokio::time::timeout(PATIENCE, conn.read_line(&mut line)).await {
            Ok(Ok(_)) => {}
            // A reset counts as closed.
            Ok(Err(_)) => line.clear(),
            Err(_) => panic!("no answer through the balancer within {PATIENCE:?}"),
        }
        (line.trim_end().to_owned(), conn)
    }

    /// One connection through the balancer, closed again: the member's name.
    async fn hello(port: u16) -> String {
        open(port).await.0
    }

    /// Waits until the peer closes `conn` (EOF or reset); fails after [`PATIENCE`].
    async fn closed(conn: &mut BufReader<TcpStream>) {
        let mut buf = [0u8; 64];
        match tokio::time::timeout(PATIENCE, conn.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => {}
            Ok(Ok(n)) => panic!("read {n} bytes from a connection that should be closed"),
            Err(_) => panic!("the connection was not closed within {PATIENCE:?}"),
        }
    }

    #[actix_rt::test]
    async fn ready_only_once_min_ready_members_are_routable() {
        // Without a port: no listener, readiness only.
        let rig = Rig::new(None, 2).await;
        assert_eq!(rig.kinds().await, [EventKind::Spawned { pid: None }]);
        rig.set("api#0", None, true).await;
        rig.set("api#1", None, false).await;
        assert_eq!(rig.kinds().await, [EventKind::Spawned { pid: None }]);
        let snap = rig.stats.snapshot();
        assert_eq!((snap.ready, snap.members, snap.listening), (1, 2, false));
        rig.set("api#1", None, true).await;
        assert_eq!(
            rig.kinds().await,
            [EventKind::Spawned { pid: None }, EventKind::Ready]
        );
        rig.addr.send(SetMinReady(3)).await.expect("answers");
        rig.addr.send(SetMinReady(2)).await.expect("answers");
        assert_eq!(
            rig.kinds().await[2..],
            [
                EventKind::Unhealthy {
                    reason: "2 of 2 replicas ready, fewer than min_ready 3".into()
                },
                EventKind::Healthy
            ]
        );
    }

    #[actix_rt::test]
    async fn ready_at_once_when_enough_members_are_routable_before_start() {
        let (addr, stats) = Balancer::start_own("api", None, 1);
        let rig = Rig {
            addr,
            stats,
            events: Collector::default().start(),
        };
        rig.set("api#0", None, true).await;
        assert_eq!(rig.kinds().await, []);
        rig.start().await;
        assert_eq!(
            rig.kinds().await,
            [EventKind::Spawned { pid: None }, EventKind::Ready]
        );
    }

    #[actix_rt::test]
    async fn connections_spread_over_all_ready_members() {
        let port = free_port();
        let rig = Rig::new(Some(port), 1).await;
        for name in ["api#0", "api#1", "api#2"] {
            rig.set(name, Some(member(name).await), true).await;
        }
        let mut got: HashMap<String, u32> = HashMap::new();
        for _ in 0..30 {
            *got.entry(hello(port).await).or_default() += 1;
        }
        for name in ["api#0", "api#1", "api#2"] {
            assert!(got.get(name).copied().unwrap_or(0) > 0, "{got:?}");
        }
        assert_eq!(got.values().sum::<u32>(), 30, "{got:?}");
        wait_for("every connection to end", || {
            rig.stats.snapshot().active == 0
        })
        .await;
        let snap = rig.stats.snapshot();
        assert_eq!((snap.accepted, snap.refused), (30, 0));
        assert_eq!(snap.backends.iter().map(|b| b.served).sum::<u64>(), 30);
        let names: Vec<&str> = snap.backends.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["api#0", "api#1", "api#2"]);
    }

    #[actix_rt::test]
    async fn least_connections_sends_new_connections_past_the_busiest() {
        let port = free_port();
        let rig = Rig::new(Some(port), 1).await;
        rig.set("api#0", Some(member("api#0").await), true).await;
        let (first, _held1) = open(port).await;
        let (second, _held2) = open(port).await;
        assert_eq!((first.as_str(), second.as_str()), ("api#0", "api#0"));
        rig.set("api#1", Some(member("api#1").await), true).await;
        for _ in 0..5 {
            assert_eq!(hello(port).await, "api#1");
            wait_for("the closed connection to end", || {
                rig.stats.snapshot().active == 2
            })
            .await;
        }
        assert_eq!(rig.backend("api#0").active, 2);
        assert_eq!(rig.backend("api#1").served, 5);
    }

    #[actix_rt::test]
    async fn no_ready_member_closes_the_connection_at_once_and_counts_it_refused() {
        let port = free_port();
        let rig = Rig::new(Some(port), 1).await;
        let (name, mut conn) = open(port).await;
        assert_eq!(name, "");
        closed(&mut conn).await;
        rig.set("api#0", Some(member("api#0").await), false).await;
        assert_eq!(hello(port).await, "");
        wait_for("two refusals", || rig.stats.snapshot().refused == 2).await;
        let snap = rig.stats.snapshot();
        assert_eq!((snap.accepted, snap.active), (2, 0));
        assert_eq!(rig.backend("api#0").served, 0);
        assert_eq!(rig.kinds().await, [EventKind::Spawned { pid: None }]);
    }

    #[actix_rt::test]
    async fn a_member_refusing_the_connect_is_skipped() {
        let port = free_port();
        let rig = Rig::new(Some(port), 1).await;
        // Nothing listens on this one.
        rig.set("api#0", Some(free_port()), true).await;
        rig.set("api#1", Some(member("api#1").await), true).await;
        for _ in 0..6 {
            assert_eq!(hello(port).await, "api#1");
        }
        wait_for("every connection to end", || {
            rig.stats.snapshot().active == 0
        })
        .await;
        assert_eq!(rig.stats.snapshot().refused, 0);
        assert_eq!(rig.backend("api#0").served, 0);
        assert_eq!(rig.backend("api#1").served, 6);
        // With only the dead one left, the connection is refused.
        rig.forget("api#1").await;
        assert_eq!(hello(port).await, "");
        wait_for("a refusal", || rig.stats.snapshot().refused == 1).await;
    }

    #[actix_rt::test]
    async fn drain_waits_for_the_open_connection_and_routes_nothing_new_to_it() {
        let port = free_port();
        let rig = Rig::new(Some(port), 1).await;
        rig.set("api#0", Some(member("api#0").await), true).await;
        rig.set("api#1", Some(member("api#1").await), true).await;
        let (drained, held) = open(port).await;
        let other = if drained == "api#0" { "api#1" } else { "api#0" };
        let drain = rig.addr.send(Drain {
            name: drained.clone(),
            within: PATIENCE,
        });
        let answered = actix::spawn(async move {
            drain.await.expect("balancer answers Drain");
            Instant::now()
        });
        wait_for("the member to drain", || rig.backend(&drained).draining).await;
        assert_eq!(rig.stats.snapshot().ready, 1);
        for _ in 0..5 {
            assert_eq!(hello(port).await, other);
        }
        // A ready member stays draining until it is not ready once.
        rig.set(&drained, rig.backend(&drained).port, true).await;
        assert!(rig.backend(&drained).draining);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !answered.is_finished(),
            "Drain answered with a connection open"
        );
        let closed_at = Instant::now();
        drop(held);
        let answered_at = tokio::time::timeout(PATIENCE, answered)
            .await
            .expect("Drain answers once the connection ended")
            .expect("drain task");
        assert!(answered_at >= closed_at);
        assert_eq!(rig.backend(&drained).active, 0);
        // Not ready, then ready again: routable again.
        rig.set(&drained, rig.backend(&drained).port, false).await;
        rig.set(&drained, rig.backend(&drained).port, true).await;
        assert!(!rig.backend(&drained).draining);
        assert_eq!(rig.stats.snapshot().ready, 2);
    }

    #[actix_rt::test]
    async fn drain_answers_after_within_when_the_connection_stays_open() {
        let port = free_port();
        let rig = Rig::new(Some(port), 1).await;
        rig.set("api#0", Some(member("api#0").await), true).await;
        let (name, mut held) = open(port).await;
        assert_eq!(name, "api#0");
        let drain = rig.addr.send(Drain {
            name: "api#0".into(),
            within: Duration::from_millis(200),
        });
        tokio::time::timeout(PATIENCE, drain)
            .await
            .expect("Drain answers after `within`")
            .expect("balancer answers Drain");
        // The connection was left as it is.
        assert_eq!(rig.backend("api#0").active, 1);
        held.get_mut().write_all(b"ping\n").await.expect("write");
        let mut line = String::new();
        tokio::time::timeout(PATIENCE, held.read_line(&mut line))
            .await
            .expect("echo")
            .expect("read");
        assert_eq!(line, "ping\n");
        // An unknown member answers at once.
        let unknown = rig.addr.send(Drain {
            name: "api#9".into(),
            within: PATIENCE * 10,
        });
        tokio::time::timeout(PATIENCE, unknown)
            .await
            .expect("Drain of an unknown member answers")
            .expect("balancer answers Drain");
    }

    #[actix_rt::test]
    async fn drain_answers_when_the_member_is_forgotten() {
        let port = free_port();
        let rig = Rig::new(Some(port), 1).await;
        rig.set("api#0", Some(member("api#0").await), true).await;
        let (name, _held) = open(port).await;
        assert_eq!(name, "api#0");
        let drain = rig.addr.send(Drain {
            name: "api#0".into(),
            within: PATIENCE * 10,
        });
        let answered = actix::spawn(drain);
        wait_for("the member to drain", || rig.backend("api#0").draining).await;
        rig.forget("api#0").await;
        tokio::time::timeout(PATIENCE, answered)
            .await
            .expect("Drain answers once the member is forgotten")
            .expect("drain task")
            .expect("balancer answers Drain");
        // Its connection still runs, counted in the total only.
        let snap = rig.stats.snapshot();
        assert_eq!((snap.active, snap.members), (1, 0));
    }

    #[actix_rt::test]
    async fn unhealthy_when_the_last_ready_member_goes_and_healthy_when_one_returns() {
        let rig = Rig::new(Some(free_port()), 1).await;
        rig.set("api#0", Some(free_port()), true).await;
        rig.set("api#1", Some(free_port()), false).await;
        rig.set("api#0", Some(free_port()), false).await;
        rig.set("api#1", Some(free_port()), true).await;
        rig.forget("api#1").await;
        assert_eq!(
            rig.kinds().await,
            [
                EventKind::Spawned { pid: None },
                EventKind::Ready,
                EventKind::Unhealthy {
                    reason: "0 of 2 replicas ready, fewer than min_ready 1".into()
                },
                EventKind::Healthy,
                EventKind::Unhealthy {
                    reason: "0 of 1 replicas ready, fewer than min_ready 1".into()
                },
            ]
        );
        // A drain counts too.
        rig.set("api#0", Some(free_port()), true).await;
        rig.addr
            .send(Drain {
                name: "api#0".into(),
                within: PATIENCE,
            })
            .await
            .expect("answers");
        assert_eq!(
            rig.kinds().await[5..],
            [
                EventKind::Healthy,
                EventKind::Unhealthy {
                    reason: "0 of 1 replicas ready, fewer than min_ready 1".into()
                },
            ]
        );
    }

    #[actix_rt::test]
    async fn stop_frees_the_port_within_grace_and_cuts_held_connections() {
        let port = free_port();
        let rig = Rig::new(Some(port), 1).await;
        rig.set("api#0", Some(member("api#0").await), true).await;
        assert!(rig.stats.snapshot().listening);
        let (name, mut held) = open(port).await;
        assert_eq!(name, "api#0");
        let grace = Duration::from_millis(300);
        let report = rig.stop(grace).await;
        // It waited for the held connection through the grace, then cut it
        // before it answered.
        assert!(report.elapsed >= grace, "{report:?}");
        assert!(report.signalled.is_empty() && report.killed.is_empty());
        let snap = rig.stats.snapshot();
        assert!(!snap.listening);
        assert_eq!(snap.active, 0);
        closed(&mut held).await;
        StdListener::bind(("127.0.0.1", port)).expect("the port is free after Stop");
        // Stopped: no more events.
        rig.forget("api#0").await;
        assert_eq!(
            rig.kinds().await,
            [EventKind::Spawned { pid: None }, EventKind::Ready]
        );
    }

    #[actix_rt::test]
    async fn stop_answers_at_once_when_no_connection_is_open() {
        let port = free_port();
        let rig = Rig::new(Some(port), 1).await;
        rig.set("api#0", Some(member("api#0").await), true).await;
        assert_eq!(hello(port).await, "api#0");
        wait_for("the connection to end", || rig.stats.snapshot().active == 0).await;
        // A grace far beyond the test's patience: only an early answer passes.
        rig.stop(PATIENCE * 10).await;
        StdListener::bind(("127.0.0.1", port)).expect("the port is free after Stop");
    }

    #[actix_rt::test]
    async fn start_again_after_stop_serves_again() {
        let port = free_port();
        let rig = Rig::new(Some(port), 1).await;
        rig.set("api#0", Some(member("api#0").await), true).await;
        assert_eq!(hello(port).await, "api#0");
        rig.stop(Duration::from_secs(1)).await;
        assert!(!rig.stats.snapshot().listening);
        rig.start().await;
        assert!(rig.stats.snapshot().listening);
        assert_eq!(hello(port).await, "api#0");
        let ready = [EventKind::Spawned { pid: None }, EventKind::Ready];
        assert_eq!(rig.kinds().await, [ready.clone(), ready].concat());
    }

    #[actix_rt::test]
    async fn bind_failure_reports_failed_naming_the_port() {
        let held = StdListener::bind("127.0.0.1:0").expect("bind");
        let port = held.local_addr().expect("address").port();
        let rig = Rig::new(Some(port), 0).await;
        let kinds = rig.kinds().await;
        match kinds.as_slice() {
            [EventKind::Failed { reason }] => {
                assert!(reason.contains(&format!("127.0.0.1:{port}")), "{reason}")
            }
            other => panic!("expected one Failed, got {other:?}"),
        }
        assert!(!rig.stats.snapshot().listening);
        // Still stopped: a member changes nothing, and Stop answers.
        rig.set("api#0", Some(free_port()), true).await;
        assert_eq!(rig.kinds().await.len(), 1);
        rig.stop(PATIENCE * 10).await;
        drop(held);
    }

    #[actix_rt::test]
    async fn serves_on_ipv6_loopback_when_there_is_one() {
        if StdListener::bind("[::1]:0").is_err() {
            return; // no IPv6 here
        }
        let port = free_port();
        let rig = Rig::new(Some(port), 1).await;
        rig.set("api#0", Some(member("api#0").await), true).await;
        let stream = TcpStream::connect(("::1", port))
            .await
            .expect("connect over IPv6");
        let mut conn = BufReader::new(stream);
        let mut line = String::new();
        tokio::time::timeout(PATIENCE, conn.read_line(&mut line))
            .await
            .expect("an answer")
            .expect("read");
        assert_eq!(line, "api#0\n");
    }

    #[actix_rt::test]
    async fn dropping_every_address_stops_the_balancer_and_frees_the_port() {
        let port = free_port();
        let rig = Rig::new(Some(port), 1).await;
        let Rig { addr, stats, .. } = rig;
        assert!(stats.snapshot().listening);
        drop(addr);
        // The actor, its accept loops and its Arbiter hold the other references.
        wait_for("the balancer to be gone", || Arc::strong_count(&stats) == 1).await;
        assert!(!stats.snapshot().listening);
        StdListener::bind(("127.0.0.1", port)).expect("the port is free");
    }
}
