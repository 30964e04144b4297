//! Log lines to stderr that never block the thread that logs them. The foreground
//! `up` logs from the thread its actors run on; if stderr is a pipe nobody reads
//! (`ringmaster up 2>&1 | less`, paused), a blocking write there would freeze the
//! instance, its signals and its control socket. Each line goes through a bounded
//! queue to a thread of its own; when the queue is full the line is dropped and
//! counted, and the writer says how many once it can write again.
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// Lines that may wait for the writer thread.
const QUEUE: usize = 1024;

static SENDER: OnceLock<SyncSender<Vec<u8>>> = OnceLock::new();
/// Lines dropped since the writer last wrote.
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Lines queued and not yet written.
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// The `MakeWriter` for `tracing_subscriber`: one buffer per event, queued when
/// the event is complete.
pub struct NonBlockingStderr;

impl<'a> MakeWriter<'a> for NonBlockingStderr {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line(Vec::new())
    }
}

/// One event's text, queued when dropped.
pub struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        PENDING.fetch_add(1, Ordering::SeqCst);
        match sender().try_send(std::mem::take(&mut self.0)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                PENDING.fetch_sub(1, Ordering::SeqCst);
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn sender() -> &'static SyncSender<Vec<u8>> {
    SENDER.get_or_init(|| {
        let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE);
        let spawned = std::thread::Builder::new()
            .name("stderr-log".into())
            .spawn(move || {
                let mut err = io::stderr();
                for line in rx {
                    let dropped = DROPPED.swap(0, Ordering::Relaxed);
                    if dropped > 0 {
                        let _ = writeln!(
                            err,
                            "ringmaster: {dropped} log lines not shown (stderr was not being read)"
                        );
                    }
                    let _ = err.write_all(&line);
                    PENDING.fetch_sub(1, Ordering::SeqCst);
                }
            });
        if let Err(e) = spawned {
            // No writer thread: every line is dropped (and counted) rather than blocking.
            let _ = writeln!(io::stderr(), "ringmaster: no log writer thread: {e}");
        }
        tx
    })
}

/// Waits until the queued lines are written, for at most `limit` (a stderr that
/// is not read must not keep the process from exiting).
pub fn flush(limit: Duration) {
    let start = Instant::now();
    while PENDING.load(Ordering::SeqCst) > 0 && start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(5));
    }
}
