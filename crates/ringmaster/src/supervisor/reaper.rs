//! The subreaper's reaping of adopted orphans, on a thread of its own.
use super::*;

/// Reaps exited orphans re-parented to us (a subreaper), on a thread of its own
/// (a one-thread SyncArbiter, never an arbiter thread). A reap once a second
/// through the shared blocking pool would wake a different idle pool thread each
/// time and keep them all alive; this thread is the only one it uses.
struct Reaper {
    /// Set while a [`Reap`] is queued: requests coalesce into one pass.
    queued: Arc<AtomicBool>,
}

impl Actor for Reaper {
    type Context = SyncContext<Self>;
}

/// Supervisor → Reaper: reap now.
#[derive(Message)]
#[rtype(result = "()")]
struct Reap;

impl Handler<Reap> for Reaper {
    type Result = ();

    fn handle(&mut self, _: Reap, _: &mut SyncContext<Self>) {
        // Cleared first: an exit after this point queues the next pass.
        self.queued.store(false, Ordering::SeqCst);
        let pids = ringmaster_os::reap_adopted(&OwnChild::all());
        if !pids.is_empty() {
            tracing::debug!("reaped adopted orphans {pids:?}");
        }
    }
}

/// How the Supervisor asks its [`Reaper`] for a pass.
pub(super) struct ReaperHandle {
    addr: Addr<Reaper>,
    queued: Arc<AtomicBool>,
}

impl ReaperHandle {
    /// Starts the reaper thread (in the current actix System).
    pub(super) fn start() -> ReaperHandle {
        let queued = Arc::new(AtomicBool::new(false));
        let q = queued.clone();
        let addr = SyncArbiter::start(1, move || Reaper { queued: q.clone() });
        ReaperHandle { addr, queued }
    }

    /// Subreaper: reaps exited orphans that were re-parented to us (never the
    /// children something here waits on); one pass at a time, requests that come
    /// while one is queued join it.
    pub(super) fn reap(&self) {
        if !self.queued.swap(true, Ordering::SeqCst) {
            self.addr.do_send(Reap);
        }
    }
}

impl Supervisor {
    pub(super) fn reap(&self) {
        if let Some(r) = &self.reaper {
            r.reap();
        }
    }
}
