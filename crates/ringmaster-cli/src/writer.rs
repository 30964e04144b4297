//! A stream written by a thread of its own, for output that must never block the
//! thread that produces it: the foreground `up` prints from the thread its actors,
//! signals and control socket run on, and a reader that stops reading (`up | less`
//! paused, a terminal on Ctrl-S) would otherwise freeze all of them. Used for
//! stdout (`cmd/up.rs`) and for log lines on stderr (`stderr_log.rs`); each caller
//! decides what to drop when the writer falls behind.
use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The sending side; the thread ends once it is dropped and the queue is written.
pub struct QueuedWriter {
    tx: Option<Sender<Vec<u8>>>,
    /// Chunks sent and not yet written.
    queued: Arc<AtomicUsize>,
    /// Chunks written so far (to tell a slow reader from a stalled one).
    written: Arc<AtomicU64>,
}

impl QueuedWriter {
    /// Starts the thread `name` writing to `out` (opened on that thread). Without a
    /// thread nothing is written: losing output beats blocking.
    pub fn spawn<W: Write>(name: &str, out: impl FnOnce() -> W + Send + 'static) -> QueuedWriter {
        let (tx, rx) = channel::<Vec<u8>>();
        let queued = Arc::new(AtomicUsize::new(0));
        let written = Arc::new(AtomicU64::new(0));
        let (q, w) = (queued.clone(), written.clone());
        let spawned = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut out = out();
                for chunk in rx {
                    // A closed pipe is ignored: the chunk counts as written.
                    let _ = out.write_all(&chunk);
                    let _ = out.flush();
                    q.fetch_sub(1, SeqCst);
                    w.fetch_add(1, SeqCst);
                }
            });
        let tx = match spawned {
            Ok(_) => Some(tx),
            Err(e) => {
                tracing::warn!("cannot start the {name} writer: {e}");
                None
            }
        };
        QueuedWriter {
            tx,
            queued,
            written,
        }
    }

    /// Chunks waiting to be written.
    pub fn backlog(&self) -> usize {
        self.queued.load(SeqCst)
    }

    /// Queues `chunk` unless `limit` chunks are waiting already; false when it was
    /// not queued. Never blocks.
    pub fn send(&self, chunk: impl Into<Vec<u8>>, limit: usize) -> bool {
        let Some(tx) = &self.tx else { return false };
        if self.backlog() >= limit {
            return false;
        }
        self.queued.fetch_add(1, SeqCst);
        if tx.send(chunk.into()).is_err() {
            self.queued.fetch_sub(1, SeqCst);
            return false;
        }
        true
    }

    /// Returns once everything queued is written, or once the writer has written
    /// nothing for `stall` (a reader that stopped reading must not keep the process
    /// from exiting; a slow one gets everything).
    pub fn drain(&self, stall: Duration) {
        let mut last = self.written.load(SeqCst);
        let mut since = Instant::now();
        while self.backlog() > 0 {
            let now = self.written.load(SeqCst);
            if now != last {
                last = now;
                since = Instant::now();
            } else if since.elapsed() >= stall {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
