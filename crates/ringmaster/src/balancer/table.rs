//! The balancer's table: its members and counters, shared with the
//! Supervisor's thread ([`BalancerStats`]), and the choice of a member for a
//! connection (least connections, then round-robin).
use super::*;

/// The balancer's live table: its members and counters, shared between the
/// balancer's thread (which updates it) and whoever holds the `Arc` (the
/// Supervisor reads it with [`BalancerStats::snapshot`]). `Send + Sync`; the lock
/// is held only for a few field updates.
#[derive(Debug)]
pub struct BalancerStats {
    pub(super) table: Mutex<Table>,
    /// Notified whenever a connection in flight ends (what a [`Drain`] waits for).
    pub(super) ended: Notify,
}

/// The counters and members under [`BalancerStats`]'s lock.
#[derive(Debug, Default)]
pub(super) struct Table {
    pub(super) listening: bool,
    pub(super) port: Option<u16>,
    pub(super) accepted: u64,
    pub(super) refused: u64,
    pub(super) active: u64,
    /// Where the round-robin among equally loaded members goes on: an index into
    /// `backends` in name order.
    pub(super) cursor: usize,
    /// The id of the next member entry (an entry forgotten and added again is a
    /// new one, so a connection of the old one never counts on it).
    pub(super) next_id: u64,
    pub(super) backends: BTreeMap<String, Backend>,
}

#[derive(Debug)]
pub(super) struct Backend {
    pub(super) id: u64,
    pub(super) port: Option<u16>,
    pub(super) ready: bool,
    pub(super) draining: bool,
    pub(super) active: u64,
    pub(super) served: u64,
    /// The member answered on `[::1]` last time: try that first.
    pub(super) v6_first: bool,
}

impl Backend {
    /// Counts for readiness: ready and not draining.
    pub(super) fn routable(&self) -> bool {
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
pub(super) struct Pick {
    pub(super) name: String,
    pub(super) id: u64,
    pub(super) port: u16,
    pub(super) v6_first: bool,
}

impl BalancerStats {
    pub(super) fn new(port: Option<u16>) -> BalancerStats {
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
    pub(super) fn table(&self) -> MutexGuard<'_, Table> {
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

    pub(super) fn set_listening(&self, listening: bool, port: Option<u16>) {
        let mut t = self.table();
        t.listening = listening;
        if port.is_some() {
            t.port = port;
        }
    }

    pub(super) fn count_accepted(&self) {
        self.table().accepted += 1;
    }

    pub(super) fn count_refused(&self) {
        self.table().refused += 1;
    }

    /// Chooses the member for a connection (least connections, then the cursor),
    /// skipping the entries in `tried`, and counts the connection in flight on it.
    pub(super) fn pick(&self, tried: &[u64]) -> Option<Pick> {
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
    pub(super) fn connected(&self, name: &str, id: u64, v6: bool) {
        if let Some(b) = self.table().backends.get_mut(name).filter(|b| b.id == id) {
            b.served += 1;
            b.v6_first = v6;
        }
    }

    /// A connection counted in flight on entry `id` of `name` ended (or its
    /// connect failed).
    pub(super) fn end(&self, name: &str, id: u64) {
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
    pub(super) fn in_flight(&self, name: &str, id: u64) -> u64 {
        self.table()
            .backends
            .get(name)
            .filter(|b| b.id == id)
            .map_or(0, |b| b.active)
    }
}

impl Table {
    /// (routable members, members known).
    pub(super) fn readiness(&self) -> (u32, u32) {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let routable = self.backends.values().filter(|b| b.routable()).count();
        (count(routable), count(self.backends.len()))
    }
}

/// A connection counted in flight on a member: dropping it (the connection ended,
/// its connect failed, its task was cut or dropped) counts it out.
pub(super) struct InFlight {
    pub(super) stats: Arc<BalancerStats>,
    pub(super) name: String,
    pub(super) id: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.stats.end(&self.name, self.id);
    }
}
