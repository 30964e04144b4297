//! The knocker: one thread of its own that asks, every [`KNOCK_EVERY`], whether
//! the ports of the services still waiting for theirs accept connections, and
//! tells the HealthChecker ([`PortOpen`]) the moment one does.
//!
//! Why a thread and not a timer of the actor: what a slow starter costs while it
//! starts is the wake-ups. On the virtual machine this was measured on, one
//! wake-up of a sleeping thread costs ~40 µs of CPU; through the actor's runtime
//! (its timer wheel, its reactor, the actor's context) a tick cost about twice
//! that of a plain thread sleeping in `nanosleep` (docs/benchmarks.md). The question itself is cheap
//! on Linux (one `sock_diag` lookup, ~4 µs, [`ringmaster_os::ports::listening`]);
//! elsewhere it is a `connect`. The thread sleeps on a condition variable while
//! nothing waits, and ends after 10 s of that.
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use actix::prelude::*;

use super::probe::knock;

/// While a service waits for its port, the port is asked about this often.
pub const KNOCK_EVERY: Duration = Duration::from_millis(5);
/// How long one knock's `connect` may wait (it blocks the knocker, but a
/// connect on loopback completes within the call): a listener whose accept
/// queue is full does not answer the handshake, and counts as accepting.
const KNOCK_WAIT: Duration = Duration::from_millis(2);

/// Knocker → HealthChecker: watch `id` of `name` found its port accepting.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub(super) struct PortOpen {
    pub name: String,
    pub id: u64,
}

#[derive(Default)]
struct Shared {
    /// The watches waiting for their port: name, watch id, addresses.
    waiting: Vec<(String, u64, Vec<SocketAddr>)>,
    /// The HealthChecker is gone: the thread ends.
    closed: bool,
    /// The thread runs (it ends after [`IDLE_END`] with nothing to wait for,
    /// and is started again when something does).
    running: bool,
}

/// The knocker thread ends after this long with nothing to knock for.
const IDLE_END: Duration = Duration::from_secs(10);

/// The HealthChecker's handle on its knocker thread (started on first use).
#[derive(Default)]
pub(super) struct Knocker {
    shared: Option<Arc<(Mutex<Shared>, Condvar)>>,
}

impl Knocker {
    /// Knocks for watch `id` of `name` on `addrs` from now on, until its port
    /// accepts (then `to` hears of it once) or [`Knocker::forget`].
    pub(super) fn wait_for(
        &mut self,
        name: &str,
        id: u64,
        addrs: Vec<SocketAddr>,
        to: Recipient<PortOpen>,
    ) {
        let shared = self
            .shared
            .get_or_insert_with(|| Arc::new((Mutex::new(Shared::default()), Condvar::new())))
            .clone();
        let (lock, wake) = &*shared;
        let Ok(mut s) = lock.lock() else {
            return;
        };
        s.waiting.retain(|(n, _, _)| n != name);
        s.waiting.push((name.to_owned(), id, addrs));
        if !s.running {
            let theirs = shared.clone();
            let started = std::thread::Builder::new()
                .name("ringmaster-knocker".into())
                .spawn(move || run(&theirs, &to));
            match started {
                Ok(_) => s.running = true,
                Err(e) => tracing::warn!("cannot start the knocker thread: {e}"),
            }
        }
        drop(s);
        wake.notify_one();
    }

    /// Stops knocking for `name`.
    pub(super) fn forget(&mut self, name: &str) {
        if let Some(shared) = &self.shared {
            if let Ok(mut s) = shared.0.lock() {
                s.waiting.retain(|(n, _, _)| n != name);
            }
        }
    }
}

impl Drop for Knocker {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            if let Ok(mut s) = shared.0.lock() {
                s.closed = true;
            }
            shared.1.notify_one();
        }
    }
}

/// The thread: sleeps while nothing waits; else knocks every [`KNOCK_EVERY`].
fn run(shared: &(Mutex<Shared>, Condvar), to: &Recipient<PortOpen>) {
    let (lock, wake) = shared;
    loop {
        let waiting: Vec<(String, u64, Vec<SocketAddr>)> = {
            let Ok(mut s) = lock.lock() else {
                return;
            };
            while s.waiting.is_empty() && !s.closed {
                let (guard, waited) = match wake.wait_timeout(s, IDLE_END) {
                    Ok(r) => r,
                    Err(_) => return,
                };
                s = guard;
                if waited.timed_out() && s.waiting.is_empty() {
                    // Idle: end; the next wait starts a thread again.
                    s.running = false;
                    return;
                }
            }
            if s.closed {
                s.running = false;
                return;
            }
            s.waiting.clone()
        };
        std::thread::sleep(KNOCK_EVERY);
        for (name, id, addrs) in waiting {
            if !knock(&addrs, KNOCK_WAIT) {
                continue;
            }
            let still = lock.lock().is_ok_and(|mut s| {
                let before = s.waiting.len();
                s.waiting.retain(|(n, i, _)| !(n == &name && *i == id));
                s.waiting.len() < before
            });
            if still {
                to.do_send(PortOpen { name, id });
            }
        }
    }
}
