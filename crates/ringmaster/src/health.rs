//! The HealthChecker: tells when a service is ready, then whether it stays
//! healthy.
//!
//! # Readiness: at the speed of the socket
//! From the moment a service is launched until its first success, the checker
//! does not wait on a growing delay. When the probe has an address to knock on —
//! an http probe of a loopback address or `localhost`, a tcp probe, an exec
//! probe of a service with a `port` — it asks whether the port accepts
//! connections: once at once, then every [`KNOCK_EVERY`] on a thread of its own
//! (the knocker; on Linux the question is one `sock_diag` lookup, no
//! connection), and runs the real probe the moment the port accepts. An http
//! probe sent before the first success waits for its answer as long as the
//! service may take to be ready (its `ready_timeout`, in [`Watch::patience`]): a
//! reloader such as `uvicorn --reload` accepts connections long before its
//! worker answers, and the answer *is* the moment it is ready. A probe that got
//! an answer other than a success is repeated after [`FAST_START`], 1.5 times
//! longer each time, up to the probe's `start_interval`; a refusal goes back to
//! knocking. Probes without an address (exec without a port, http of another
//! host) run on that schedule from the start.
//!
//! `log` and `notify` probes are never scheduled: a matching output line
//! ([`LogLine`]) or a `READY=1` datagram ([`crate::notify`], Linux) makes the
//! service ready when it arrives.
//!
//! Failures before the first success are no verdict, but they are what a
//! service stuck in `starting` is waiting on: each is logged at debug level, and
//! the Supervisor hears of them as [`Health::Failing`] — on the first, when what
//! the probe says changes, and otherwise at most once per [`FAILING_EVERY`].
//!
//! # Liveness
//! After the first success (→ [`Health::Ready`]) the probe runs every
//! `interval`, each bounded by its `timeout`: `failures` failures in a row →
//! [`Health::Unhealthy`], a success after that → [`Health::Healthy`].
//!
//! Probes: HTTP GET through one `awc::Client` built once for the actor (never HEAD:
//! FastAPI answers HEAD with 405; 2xx and 3xx are healthy, redirects are not
//! followed), TCP connect to 127.0.0.1, a command run by the platform shell with a
//! timeout (exit 0) — in the service's workdir, with its environment and its tag,
//! so that what the command leaves running stops with the service — a regex
//! over the service's output lines, and the sd_notify protocol. Each result
//! carries the probe's latency.
mod knocker;
mod probe;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix::prelude::*;
pub use knocker::KNOCK_EVERY;
use knocker::{Knocker, PortOpen};
use probe::{knock, knock_addresses, run_probe, Outcome};
use regex_lite::Regex;

use crate::config::Probe;
use crate::messages::{Health, HealthChanged, LogLine, Unwatch, Watch};

/// Before the first success, the first wait after a probe that got an answer
/// other than a success; it grows 1.5 times up to the probe's `start_interval`.
pub const FAST_START: Duration = Duration::from_millis(10);
/// Before the first success, a failure whose detail did not change is reported
/// ([`Health::Failing`]) at most this often.
pub const FAILING_EVERY: Duration = Duration::from_secs(1);
/// How long the first knock of a watch waits for the connection (see the
/// knocker's own).
const KNOCK_WAIT: Duration = Duration::from_millis(2);

/// Probes services' health and reports changes.
pub struct HealthChecker {
    client: Option<awc::Client>,
    watches: HashMap<String, Watched>,
    next_id: u64,
    /// The thread that knocks for the watches waiting for their port.
    knocker: Knocker,
}

struct Watched {
    id: u64,
    watch: Watch,
    ready: bool,
    unhealthy: bool,
    fails: u32,
    /// Before the first success: the next wait after an unhealthy answer.
    delay: Duration,
    regex: Option<Regex>,
    /// The next knock or probe.
    timer: Option<SpawnHandle>,
    /// The knock or probe in flight (dropped with the watch, so that a probe
    /// waiting long for an answer does not outlive it).
    inflight: Option<SpawnHandle>,
    /// Numbers the probes, so that a late word about one can be told from the next.
    seq: u64,
    /// Where to knock before the first success (empty: nowhere).
    knock: Vec<SocketAddr>,
    /// The port accepted since it last refused: the probe runs without knocking.
    open: bool,
    /// A notify probe's reading task.
    reader: Option<SpawnHandle>,
    began: Instant,
    /// Before the first success: when a failure was last reported, and its detail.
    failing_sent: Option<(Instant, String)>,
}

impl Watched {
    fn cancel_all(&mut self, ctx: &mut Context<HealthChecker>) {
        for h in [self.timer.take(), self.inflight.take(), self.reader.take()]
            .into_iter()
            .flatten()
        {
            ctx.cancel_future(h);
        }
    }

    /// Before the first success: reports `detail` as [`Health::Failing`] when it
    /// is new or [`FAILING_EVERY`] passed since the last report.
    fn failing(&mut self, name: &str, detail: String, latency: Duration) {
        tracing::debug!(service = %name, "not ready yet: {detail}");
        let due = match &self.failing_sent {
            None => true,
            Some((at, last)) => *last != detail || at.elapsed() >= FAILING_EVERY,
        };
        if due {
            self.watch.reply.do_send(HealthChanged {
                name: name.to_owned(),
                health: Health::Failing,
                latency,
                detail: detail.clone(),
            });
            self.failing_sent = Some((Instant::now(), detail));
        }
    }

    /// The first success: the service is ready.
    fn ready(&mut self, name: &str, detail: String, latency: Duration) {
        self.ready = true;
        self.fails = 0;
        tracing::debug!(service = %name, "ready after {:?} ({detail})", self.began.elapsed());
        self.watch.reply.do_send(HealthChanged {
            name: name.to_owned(),
            health: Health::Ready,
            latency,
            detail,
        });
    }
}

impl Default for HealthChecker {
    fn default() -> Self {
        Self::new()
    }
}

impl HealthChecker {
    /// A checker with no watch yet (its HTTP client is built when it starts).
    pub fn new() -> Self {
        HealthChecker {
            client: None,
            watches: HashMap::new(),
            next_id: 0,
            knocker: Knocker::default(),
        }
    }

    fn client(&mut self) -> awc::Client {
        self.client
            .get_or_insert_with(|| awc::Client::builder().disable_redirects().finish())
            .clone()
    }

    /// The watch of `name` if it is still watch `id`.
    fn current(&mut self, name: &str, id: u64) -> Option<&mut Watched> {
        self.watches.get_mut(name).filter(|w| w.id == id)
    }

    fn schedule(&mut self, name: &str, after: Duration, ctx: &mut Context<Self>) {
        let Some(w) = self.watches.get(name) else {
            return;
        };
        let (id, name_owned) = (w.id, name.to_owned());
        let handle = ctx.run_later(after, move |act, ctx| act.step(&name_owned, id, ctx));
        if let Some(w) = self.watches.get_mut(name) {
            if let Some(old) = w.timer.replace(handle) {
                ctx.cancel_future(old);
            }
        }
    }

    /// Knocks when the port has to open first, else probes.
    fn step(&mut self, name: &str, id: u64, ctx: &mut Context<Self>) {
        let Some(w) = self.current(name, id) else {
            return;
        };
        w.timer = None;
        if w.ready || w.open || w.knock.is_empty() {
            self.probe(name, id, ctx);
            return;
        }
        let open = knock(&w.knock, KNOCK_WAIT);
        self.knocked(name, id, open, ctx);
    }

    /// After a knock on `name`'s port: the probe runs at once when it accepted;
    /// else the knocker waits for the port.
    fn knocked(&mut self, name: &str, id: u64, open: bool, ctx: &mut Context<Self>) {
        let me = ctx.address().recipient();
        let Some(w) = self.current(name, id) else {
            return;
        };
        if !open {
            let latency = w.began.elapsed();
            let what = match &w.watch.probe {
                Probe::Http { url } => format!("GET {url}: connection refused"),
                Probe::Tcp { port } => format!("tcp 127.0.0.1:{port}: connection refused"),
                _ => format!(
                    "port {}: connection refused (the probe runs once it accepts)",
                    w.knock.first().map_or(0, |a| a.port())
                ),
            };
            w.failing(name, what, latency);
            let addrs = w.knock.clone();
            self.knocker.wait_for(name, id, addrs, me);
            return;
        }
        w.open = true;
        if let Probe::Tcp { port } = w.watch.probe {
            // The knock was the probe.
            let (latency, interval) = (w.began.elapsed(), w.watch.interval);
            w.ready(name, format!("tcp 127.0.0.1:{port} accepted"), latency);
            self.schedule(name, interval, ctx);
            return;
        }
        self.probe(name, id, ctx);
    }

    fn probe(&mut self, name: &str, id: u64, ctx: &mut Context<Self>) {
        let client = self.client();
        let Some(w) = self.current(name, id) else {
            return;
        };
        w.timer = None;
        w.seq += 1;
        let seq = w.seq;
        let timeout = w.watch.timeout;
        let patience = if w.ready {
            timeout
        } else {
            w.watch.patience.max(timeout)
        };
        let fut = run_probe(client, w.watch.clone(), timeout, patience);
        let owned = name.to_owned();
        let started = Instant::now();
        let handle = ctx.spawn(
            fut.into_actor(self)
                .map(move |(outcome, detail), act, ctx| {
                    act.result(&owned, id, outcome, detail, started.elapsed(), ctx)
                }),
        );
        let waiting_long = patience > timeout;
        if let Some(w) = self.current(name, id) {
            w.inflight = Some(handle);
        }
        if waiting_long {
            // Say why it is still starting when the answer is slow to come.
            let owned = name.to_owned();
            ctx.run_later(timeout, move |act, _| {
                let Some(w) = act.current(&owned, id) else {
                    return;
                };
                if w.ready || w.seq != seq || w.inflight.is_none() {
                    return;
                }
                if let Probe::Http { url } = &w.watch.probe {
                    let detail = format!(
                        "GET {url}: connected, no answer yet after {} (still waiting: a server \
                         that is starting may accept before it answers)",
                        crate::text::human_duration(timeout)
                    );
                    w.failing(&owned, detail, started.elapsed());
                }
            });
        }
    }

    fn result(
        &mut self,
        name: &str,
        id: u64,
        outcome: Outcome,
        detail: String,
        latency: Duration,
        ctx: &mut Context<Self>,
    ) {
        let Some(w) = self.current(name, id) else {
            return;
        };
        w.inflight = None;
        let ok = outcome == Outcome::Pass;
        let next;
        if !w.ready {
            if ok {
                w.ready(name, detail, latency);
                next = w.watch.interval;
            } else if outcome == Outcome::Refused && !w.knock.is_empty() {
                // The port closed again (a reloader restarting its worker): knock.
                w.open = false;
                w.failing(name, detail, latency);
                let addrs = w.knock.clone();
                let me = ctx.address().recipient();
                self.knocker.wait_for(name, id, addrs, me);
                return;
            } else {
                next = w.delay.min(w.watch.start_interval);
                w.delay = w.delay.mul_f32(1.5).min(w.watch.start_interval);
                w.failing(name, detail, latency);
            }
        } else {
            next = w.watch.interval;
            let report = |health: Health| HealthChanged {
                name: name.to_owned(),
                health,
                latency,
                detail: detail.clone(),
            };
            if ok {
                w.fails = 0;
                w.unhealthy = false;
                w.watch.reply.do_send(report(Health::Healthy));
            } else {
                w.fails += 1;
                tracing::debug!(service = %name, "probe failed ({}/{}): {detail}", w.fails, w.watch.failures);
                if w.fails >= w.watch.failures.max(1) {
                    w.unhealthy = true;
                    w.watch.reply.do_send(report(Health::Unhealthy));
                }
            }
        }
        self.schedule(name, next, ctx);
    }
}

impl Actor for HealthChecker {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        // Built here, on the actor's own arbiter: awc::Client is not Send.
        self.client();
    }
}

impl Handler<Watch> for HealthChecker {
    type Result = ();

    fn handle(&mut self, watch: Watch, ctx: &mut Context<Self>) {
        self.next_id += 1;
        let id = self.next_id;
        let regex = match &watch.probe {
            Probe::Log { regex } => match Regex::new(regex) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(service = %watch.name, "log probe /{regex}/ does not compile: {e}");
                    None
                }
            },
            _ => None,
        };
        let name = watch.name.clone();
        self.knocker.forget(&name);
        if let Some(mut old) = self.watches.remove(&name) {
            old.cancel_all(ctx);
        }
        let knock = knock_addresses(&watch);
        let ready = watch.ready;
        let first = match watch.probe {
            Probe::Log { .. } | Probe::Notify => None,
            // A new probe of a running service: checked at once, as liveness.
            _ if ready => Some(Duration::ZERO),
            _ if knock.is_empty() => Some(FAST_START),
            _ => Some(Duration::ZERO),
        };
        let notify = matches!(watch.probe, Probe::Notify);
        self.watches.insert(
            name.clone(),
            Watched {
                id,
                watch,
                ready,
                unhealthy: false,
                fails: 0,
                delay: FAST_START,
                regex,
                timer: None,
                inflight: None,
                seq: 0,
                knock,
                open: false,
                reader: None,
                began: Instant::now(),
                failing_sent: None,
            },
        );
        if let Some(after) = first {
            self.schedule(&name, after, ctx);
        }
        if notify {
            notify_watch::start(self, &name, id, ctx);
        }
    }
}

impl Handler<Unwatch> for HealthChecker {
    type Result = ();

    fn handle(&mut self, msg: Unwatch, ctx: &mut Context<Self>) {
        self.knocker.forget(&msg.name);
        if let Some(mut old) = self.watches.remove(&msg.name) {
            old.cancel_all(ctx);
        }
    }
}

impl Handler<PortOpen> for HealthChecker {
    type Result = ();

    fn handle(&mut self, msg: PortOpen, ctx: &mut Context<Self>) {
        if self.current(&msg.name, msg.id).is_some_and(|w| !w.ready) {
            self.knocked(&msg.name, msg.id, true, ctx);
        }
    }
}

impl Handler<LogLine> for HealthChecker {
    type Result = ();

    fn handle(&mut self, line: LogLine, _: &mut Context<Self>) {
        let Some(w) = self.watches.get_mut(&line.service) else {
            return;
        };
        if w.ready {
            return;
        }
        let Some(re) = &w.regex else {
            return;
        };
        if re.is_match(&line.line) {
            let detail = format!("output matched /{}/: {}", re.as_str(), line.line);
            let latency = w.began.elapsed();
            w.ready(&line.service, detail, latency);
        }
    }
}

/// Reading a notify probe's socket (Linux).
#[cfg(target_os = "linux")]
mod notify_watch {
    use std::rc::Rc;

    use actix::prelude::*;

    use super::HealthChecker;
    use crate::messages::{Notice, Notified};
    use crate::notify::{belongs, recv, Datagram};

    /// Starts reading the socket of `name`'s watch `id`.
    pub(super) fn start(
        act: &mut HealthChecker,
        name: &str,
        id: u64,
        ctx: &mut Context<HealthChecker>,
    ) {
        let Some(w) = act.current(name, id) else {
            return;
        };
        let latency = w.began.elapsed();
        let reader = match w.watch.notify.as_ref().map(|s| s.reader()) {
            Some(Ok(r)) => Rc::new(r),
            Some(Err(e)) => {
                w.failing(
                    name,
                    format!("its NOTIFY_SOCKET cannot be read: {e}"),
                    latency,
                );
                return;
            }
            None => {
                w.failing(name, "it has no NOTIFY_SOCKET".to_owned(), latency);
                return;
            }
        };
        let address = w
            .watch
            .notify
            .as_ref()
            .map(|s| s.address().to_owned())
            .unwrap_or_default();
        w.failing(
            name,
            format!("no READY=1 yet on its NOTIFY_SOCKET ({address})"),
            latency,
        );
        read(act, name.to_owned(), id, reader, ctx);
    }

    fn read(
        act: &mut HealthChecker,
        name: String,
        id: u64,
        reader: Rc<tokio::net::UnixDatagram>,
        ctx: &mut Context<HealthChecker>,
    ) {
        if act.current(&name, id).is_none() {
            // Unwatched meanwhile: the socket closes with `reader`.
            return;
        }
        let r = reader.clone();
        let tag = act.current(&name, id).and_then(|w| w.watch.tag.clone());
        let fut = async move {
            let d = recv(&r).await?;
            // Which of the pids it names are the service's: /proc reads, off
            // the actor's thread.
            let named: Vec<u32> = d.pid.into_iter().chain(main_pid(&d)).collect();
            let members = match tag {
                Some(tag) => tokio::task::spawn_blocking(move || {
                    named.into_iter().filter(|p| belongs(*p, &tag)).collect()
                })
                .await
                .unwrap_or_default(),
                None => Vec::new(),
            };
            Ok::<_, std::io::Error>((d, members))
        }
        .into_actor(act)
        .map(move |got, act, ctx| {
            match got {
                Ok((d, members)) => heard(act, &name, id, d, &members),
                Err(e) => {
                    tracing::warn!(service = %name, "reading its NOTIFY_SOCKET: {e}");
                    return;
                }
            }
            read(act, name, id, reader, ctx);
        });
        let handle = ctx.spawn(fut);
        if let Some(w) = act.watches.values_mut().find(|w| w.id == id) {
            if let Some(old) = w.reader.replace(handle) {
                ctx.cancel_future(old);
            }
        }
    }

    /// The pid a datagram's `MAINPID=` names, if any.
    fn main_pid(d: &Datagram) -> Option<u32> {
        d.fields
            .iter()
            .find(|(k, _)| k == "MAINPID")
            .and_then(|(_, v)| v.trim().parse().ok())
    }

    /// One datagram for `name`'s watch `id`: passed on only when one of the
    /// service's processes sent it.
    /// `members`: which of the pids it names (sender, `MAINPID=`) are the
    /// service's, as [`belongs`] found them.
    fn heard(act: &mut HealthChecker, name: &str, id: u64, d: Datagram, members: &[u32]) {
        let Some(w) = act.current(name, id) else {
            return;
        };
        let latency = w.began.elapsed();
        let Some(pid) = d.pid.filter(|pid| members.contains(pid)) else {
            let who = d
                .pid
                .map_or("a sender the kernel did not name".to_owned(), |p| {
                    format!("pid {p}")
                });
            tracing::warn!(service = %name, "ignored an sd_notify message from {who}: not one of its processes");
            if !w.ready {
                w.failing(
                    name,
                    format!("no READY=1 yet; ignored a message from {who}, which is not one of its processes"),
                    latency,
                );
            }
            return;
        };
        for (key, value) in d.fields {
            let notice = match (key.as_str(), value.as_str()) {
                ("READY", "1") => {
                    if !w.ready {
                        w.ready(name, format!("READY=1 from pid {pid}"), latency);
                    }
                    continue;
                }
                ("STATUS", text) => Notice::Status(text.to_owned()),
                ("STOPPING", "1") => Notice::Stopping,
                ("MAINPID", n) => match n.trim().parse::<u32>() {
                    Ok(main) if members.contains(&main) => Notice::MainPid(main),
                    _ => {
                        tracing::warn!(service = %name, "ignored MAINPID={n} from pid {pid}: not one of its processes");
                        continue;
                    }
                },
                _ => continue,
            };
            w.watch.notices.do_send(Notified {
                name: name.to_owned(),
                pid,
                notice,
            });
        }
    }
}

/// Without Linux there is no notify probe (the configuration refuses it).
#[cfg(not(target_os = "linux"))]
mod notify_watch {
    use actix::prelude::*;

    use super::HealthChecker;

    pub(super) fn start(
        act: &mut HealthChecker,
        name: &str,
        id: u64,
        _: &mut Context<HealthChecker>,
    ) {
        if let Some(w) = act.current(name, id) {
            let latency = w.began.elapsed();
            w.failing(
                name,
                "the notify probe is available on Linux only".to_owned(),
                latency,
            );
        }
    }
}
