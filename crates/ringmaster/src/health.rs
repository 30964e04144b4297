//! The HealthChecker: probes each watched service, first on a fast schedule that
//! backs off (from [`FAST_START`], ×1.5, up to [`FAST_CAP`]) until the first success
//! (→ [`Health::Ready`]), then every `interval`: `failures` failures in a row →
//! [`Health::Unhealthy`], a success after that → [`Health::Healthy`]. Failures
//! before the first success are no verdict, but they are what a service stuck in
//! `starting` is waiting on: each is logged at debug level, and the Supervisor
//! hears of them as [`Health::Failing`] — on the first, when what the probe says
//! changes, and otherwise at most once per [`FAILING_EVERY`].
//!
//! Probes: HTTP GET through one `awc::Client` built once for the actor (never HEAD:
//! FastAPI answers HEAD with 405; 2xx and 3xx are healthy, redirects are not
//! followed), TCP connect to 127.0.0.1, a command run by the platform shell with a
//! timeout (exit 0) — in the service's workdir, with its environment and its tag,
//! so that what the command leaves running stops with the service — and a regex
//! over the service's output lines (sent here as [`LogLine`]s). Each result
//! carries the probe's latency.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use regex::Regex;
use ringmaster_os::TAG_ENV;

use crate::config::Probe;
use crate::messages::{Health, HealthChanged, LogLine, Unwatch, Watch};

/// The first probe of the fast schedule runs this long after the watch begins.
pub const FAST_START: Duration = Duration::from_millis(10);
/// The fast schedule's delay never grows beyond this.
pub const FAST_CAP: Duration = Duration::from_millis(500);
/// Before the first success, a failure whose detail did not change is reported
/// ([`Health::Failing`]) at most this often.
pub const FAILING_EVERY: Duration = Duration::from_secs(1);

/// Probes services' health and reports changes.
pub struct HealthChecker {
    client: Option<awc::Client>,
    watches: HashMap<String, Watched>,
    next_id: u64,
}

struct Watched {
    id: u64,
    watch: Watch,
    ready: bool,
    unhealthy: bool,
    fails: u32,
    delay: Duration,
    regex: Option<Regex>,
    timer: Option<SpawnHandle>,
    began: Instant,
    /// Before the first success: when a failure was last reported, and its detail.
    failing_sent: Option<(Instant, String)>,
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
        }
    }

    fn client(&mut self) -> awc::Client {
        self.client
            .get_or_insert_with(|| awc::Client::builder().disable_redirects().finish())
            .clone()
    }

    fn schedule(&mut self, name: &str, after: Duration, ctx: &mut Context<Self>) {
        let Some(w) = self.watches.get(name) else {
            return;
        };
        let (id, name_owned) = (w.id, name.to_owned());
        let handle = ctx.run_later(after, move |act, ctx| act.probe(&name_owned, id, ctx));
        if let Some(w) = self.watches.get_mut(name) {
            if let Some(old) = w.timer.replace(handle) {
                ctx.cancel_future(old);
            }
        }
    }

    fn probe(&mut self, name: &str, id: u64, ctx: &mut Context<Self>) {
        let client = self.client();
        let Some(w) = self.watches.get_mut(name) else {
            return;
        };
        if w.id != id {
            return;
        }
        w.timer = None;
        let timeout = w.watch.timeout;
        let fut = run_probe(client, w.watch.clone(), timeout);
        let name = name.to_owned();
        let started = Instant::now();
        fut.into_actor(self)
            .map(move |(ok, detail), act, ctx| {
                act.result(&name, id, ok, detail, started.elapsed(), ctx)
            })
            .spawn(ctx);
    }

    fn result(
        &mut self,
        name: &str,
        id: u64,
        ok: bool,
        detail: String,
        latency: Duration,
        ctx: &mut Context<Self>,
    ) {
        let Some(w) = self.watches.get_mut(name) else {
            return;
        };
        if w.id != id {
            return;
        }
        let report = |health: Health| HealthChanged {
            name: name.to_owned(),
            health,
            latency,
            detail: detail.clone(),
        };
        let next;
        if !w.ready {
            if ok {
                w.ready = true;
                w.fails = 0;
                tracing::debug!(service = %name, "ready after {:?} ({detail})", w.began.elapsed());
                w.watch.reply.do_send(report(Health::Ready));
                next = w.watch.interval;
            } else {
                next = w.delay;
                w.delay = (w.delay.mul_f32(1.5)).min(FAST_CAP);
                tracing::debug!(service = %name, "probe failed while starting: {detail}");
                let due = match &w.failing_sent {
                    None => true,
                    Some((at, last)) => *last != detail || at.elapsed() >= FAILING_EVERY,
                };
                if due {
                    w.watch.reply.do_send(report(Health::Failing));
                    w.failing_sent = Some((Instant::now(), detail));
                }
            }
        } else {
            next = w.watch.interval;
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

/// Runs one probe of `watch`; returns whether it succeeded and what it said.
async fn run_probe(client: awc::Client, watch: Watch, timeout: Duration) -> (bool, String) {
    match &watch.probe {
        Probe::Http { url } => {
            let started = Instant::now();
            match client.get(url.as_str()).timeout(timeout).send().await {
                Ok(mut resp) => {
                    let status = resp.status();
                    // The body must arrive within what is left of the timeout too
                    // (awc bounds only the head): a server that sends its status line
                    // and then stalls is not healthy, and must not hold the probe.
                    // Only its first 64 KiB are read; a longer body is fine.
                    let left = timeout.saturating_sub(started.elapsed());
                    let body = tokio::time::timeout(left, resp.body().limit(64 * 1024)).await;
                    let ok = status.is_success() || status.is_redirection();
                    match body {
                        Ok(Ok(_)) | Ok(Err(awc::error::PayloadError::Overflow)) => {
                            (ok, format!("GET {url}: HTTP {}", status.as_u16()))
                        }
                        Ok(Err(e)) => (
                            false,
                            format!("GET {url}: HTTP {}, then the body failed: {e}", status.as_u16()),
                        ),
                        Err(_) => (
                            false,
                            format!(
                                "GET {url}: HTTP {}, but the body did not arrive within {timeout:?}",
                                status.as_u16()
                            ),
                        ),
                    }
                }
                Err(e) => (false, format!("GET {url}: {e}")),
            }
        }
        &Probe::Tcp { port } => {
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(("127.0.0.1", port)))
                .await
            {
                Ok(Ok(_)) => (true, format!("tcp 127.0.0.1:{port} accepted")),
                Ok(Err(e)) => (false, format!("tcp 127.0.0.1:{port}: {e}")),
                Err(_) => (
                    false,
                    format!("tcp 127.0.0.1:{port}: timed out after {timeout:?}"),
                ),
            }
        }
        Probe::Exec { command } => run_exec(command, timeout, &watch).await,
        // Log probes are driven by LogLine messages, never scheduled.
        Probe::Log { regex } => (false, format!("waiting for a line matching /{regex}/")),
    }
}

/// Runs `command` as `watch`'s service runs its own: in its workdir, with its
/// environment and its tag.
async fn run_exec(command: &str, timeout: Duration, watch: &Watch) -> (bool, String) {
    let mut cmd = crate::service::shell_command(command);
    cmd.current_dir(&watch.workdir);
    cmd.envs(watch.env.iter().map(|(k, v)| (k, v)));
    // Set last, as at a service's spawn: `env` cannot override it.
    if let Some(tag) = &watch.tag {
        cmd.env(TAG_ENV, tag.env_value());
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (false, format!("`{command}` could not start: {e}")),
    };
    let pid = child.id();
    let _registered = pid.map(crate::service::OwnChild::register);
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => (true, format!("`{command}` exited 0")),
        Ok(Ok(status)) => (false, format!("`{command}` exited with {status}")),
        Ok(Err(e)) => (false, format!("`{command}`: {e}")),
        Err(_) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            (false, format!("`{command}` timed out after {timeout:?}"))
        }
    }
}

impl Handler<Watch> for HealthChecker {
    type Result = ();

    fn handle(&mut self, watch: Watch, ctx: &mut Context<Self>) {
        self.next_id += 1;
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
        let is_log = matches!(watch.probe, Probe::Log { .. });
        let name = watch.name.clone();
        if let Some(old) = self.watches.remove(&name) {
            if let Some(t) = old.timer {
                ctx.cancel_future(t);
            }
        }
        self.watches.insert(
            name.clone(),
            Watched {
                id: self.next_id,
                watch,
                ready: false,
                unhealthy: false,
                fails: 0,
                delay: FAST_START,
                regex,
                timer: None,
                began: Instant::now(),
                failing_sent: None,
            },
        );
        if !is_log {
            self.schedule(&name, FAST_START, ctx);
        }
    }
}

impl Handler<Unwatch> for HealthChecker {
    type Result = ();

    fn handle(&mut self, msg: Unwatch, ctx: &mut Context<Self>) {
        if let Some(old) = self.watches.remove(&msg.name) {
            if let Some(t) = old.timer {
                ctx.cancel_future(t);
            }
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
            w.ready = true;
            w.watch.reply.do_send(HealthChanged {
                name: line.service.clone(),
                health: Health::Ready,
                latency: w.began.elapsed(),
                detail: format!("output matched /{}/: {}", re.as_str(), line.line),
            });
        }
    }
}
