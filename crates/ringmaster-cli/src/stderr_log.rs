//! Log lines to stderr that never block the thread that logs them. The foreground
//! `up` logs from the thread its actors run on; if stderr is a pipe nobody reads
//! (`ringmaster up 2>&1 | less`, paused), a blocking write there would freeze the
//! instance, its signals and its control socket. Each line goes to a
//! [`QueuedWriter`]; when [`QUEUE`] lines wait already, the line is dropped and
//! counted, and the next line that gets through is preceded by how many.
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

use crate::writer::QueuedWriter;

/// Lines that may wait for the writer thread.
const QUEUE: usize = 1024;

static WRITER: OnceLock<QueuedWriter> = OnceLock::new();
/// Lines dropped since the last note saying so.
static DROPPED: AtomicU64 = AtomicU64::new(0);

fn writer() -> &'static QueuedWriter {
    WRITER.get_or_init(|| QueuedWriter::spawn("stderr-log", io::stderr))
}

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

impl io::Write for Line {
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
        let w = writer();
        if w.backlog() >= QUEUE {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let dropped = DROPPED.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            w.send(
                format!("ringmaster: {dropped} log lines not shown (stderr was not being read)\n"),
                usize::MAX,
            );
        }
        if !w.send(std::mem::take(&mut self.0), QUEUE) {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Waits until the queued lines are written, or until stderr has taken nothing
/// for `stall` (a stderr that is not read must not keep the process from exiting).
pub fn flush(stall: Duration) {
    if let Some(w) = WRITER.get() {
        w.drain(stall);
    }
}
