//! Service output: every line a service writes becomes a `tracing` event (span and
//! field `service`), a line in its log file `<state_dir>/logs/<name>.log` (rotated by
//! size, keeping [`KEEP`] old files `<name>.log.1` … `.3`), and a [`LogLine`] for
//! subscribers and log probes.
//!
//! Files are written by one background thread per orchestrator ([`LogWriter`]), so
//! no file write runs on an actor's thread; [`LogWriter::flush`] resolves once every
//! line sent before it is on disk.
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tracing::Instrument;

use crate::messages::{LogLine, Stream};

/// How many rotated files are kept per service.
pub const KEEP: usize = 3;

/// The folder of the log files in a state directory.
pub fn log_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("logs")
}

/// The current log file of `service` (rotated ones add `.1`, `.2`, …).
pub fn log_path(state_dir: &Path, service: &str) -> PathBuf {
    log_dir(state_dir).join(format!("{service}.log"))
}

/// Shifts `path` to `<path>.1`, `.1` to `.2`, … keeping `keep` old files (the
/// oldest, `<path>.<keep>`, is removed; `keep` 0 just removes `path`). Missing
/// older files are skipped; the error is that of moving (or removing) `path`
/// itself. A writer holding `path` open would go on writing into `.1`.
pub fn rotate(path: &Path, keep: usize) -> std::io::Result<()> {
    if keep == 0 {
        return std::fs::remove_file(path);
    }
    let name = |i: usize| {
        let mut p = path.as_os_str().to_owned();
        p.push(format!(".{i}"));
        PathBuf::from(p)
    };
    let _ = std::fs::remove_file(name(keep));
    for i in (1..keep).rev() {
        let _ = std::fs::rename(name(i), name(i + 1));
    }
    std::fs::rename(path, name(1))
}

/// [`rotate`]s `path` when it is a file larger than `max_bytes`; returns whether
/// it did. For a file nobody writes to at the moment (such as the detached
/// instance's `ringmaster.log` once that instance has exited). A missing file,
/// or something other than a plain file, is left alone.
pub fn rotate_if_larger(path: &Path, max_bytes: u64, keep: usize) -> std::io::Result<bool> {
    let len = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => m.len(),
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if len <= max_bytes {
        return Ok(false);
    }
    rotate(path, keep)?;
    Ok(true)
}

/// Who receives every output line (log subscribers of the orchestrator). Shared
/// by the Supervisor and every service actor.
pub(crate) type LogSubscribers = Arc<Mutex<Vec<Recipient<LogLine>>>>;

enum Command {
    Line { service: Arc<str>, line: String },
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Writes service output to rotated per-service files from one background thread.
/// Cheap to clone; the thread ends when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct LogWriter {
    tx: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Line { service, .. } => write!(f, "Line({service})"),
            Command::Flush(_) => write!(f, "Flush"),
        }
    }
}

impl LogWriter {
    /// Starts the writer thread for files in `dir`, each rotated once it would pass
    /// `max_bytes` (0: never), keeping `keep` old files.
    pub fn start(dir: PathBuf, max_bytes: u64, keep: usize) -> LogWriter {
        let (tx, rx) = mpsc::channel::<Command>();
        let spawned = std::thread::Builder::new()
            .name("ringmaster-logs".into())
            .spawn(move || writer_thread(rx, dir, max_bytes, keep));
        if let Err(e) = spawned {
            tracing::error!(
                "cannot start the log writer thread: {e}; service output goes to tracing only"
            );
        }
        LogWriter { tx }
    }

    /// Queues one line of `service`'s output.
    pub fn write(&self, service: &Arc<str>, line: &str) {
        let _ = self.tx.send(Command::Line {
            service: service.clone(),
            line: line.to_owned(),
        });
    }

    /// Resolves once every line queued before this call is written and flushed.
    pub fn flush(&self) -> impl std::future::Future<Output = ()> + 'static {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.tx.send(Command::Flush(tx)).is_ok();
        async move {
            if sent {
                let _ = rx.await;
            }
        }
    }
}

struct Rotating {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    size: u64,
}

impl Rotating {
    fn open(path: PathBuf) -> Rotating {
        let mut r = Rotating {
            path,
            out: None,
            size: 0,
        };
        r.reopen();
        r
    }

    fn reopen(&mut self) {
        match OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            Ok(f) => {
                self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
                self.out = Some(BufWriter::new(f));
            }
            Err(e) => {
                tracing::warn!("cannot open log file {}: {e}", self.path.display());
                self.out = None;
            }
        }
    }

    fn rotate(&mut self, keep: usize) {
        if let Some(mut out) = self.out.take() {
            let _ = out.flush();
        }
        let _ = rotate(&self.path, keep);
        self.reopen();
    }

    fn write_line(&mut self, line: &str, max_bytes: u64, keep: usize) {
        let len = line.len() as u64 + 1;
        if max_bytes > 0 && self.size > 0 && self.size + len > max_bytes {
            self.rotate(keep);
        }
        if let Some(out) = self.out.as_mut() {
            if out
                .write_all(line.as_bytes())
                .and_then(|_| out.write_all(b"\n"))
                .is_ok()
            {
                self.size += len;
            }
        }
    }

    fn flush(&mut self) {
        if let Some(out) = self.out.as_mut() {
            let _ = out.flush();
        }
    }
}

fn writer_thread(rx: mpsc::Receiver<Command>, dir: PathBuf, max_bytes: u64, keep: usize) {
    if let Err(e) = std::fs::create_dir_all(&dir) {
        tracing::warn!("cannot create log folder {}: {e}", dir.display());
    }
    let mut files: HashMap<Arc<str>, Rotating> = HashMap::new();
    let handle = |cmd: Command, files: &mut HashMap<Arc<str>, Rotating>| match cmd {
        Command::Line { service, line } => {
            let file = files
                .entry(service.clone())
                .or_insert_with(|| Rotating::open(dir.join(format!("{service}.log"))));
            file.write_line(&line, max_bytes, keep);
        }
        Command::Flush(done) => {
            files.values_mut().for_each(Rotating::flush);
            let _ = done.send(());
        }
    };
    while let Ok(cmd) = rx.recv() {
        handle(cmd, &mut files);
        // Drain what is queued, then flush once: cheap under a burst of lines, and
        // a quiet service's lines reach the disk at once.
        while let Ok(cmd) = rx.try_recv() {
            handle(cmd, &mut files);
        }
        files.values_mut().for_each(Rotating::flush);
    }
    files.values_mut().for_each(Rotating::flush);
}

/// Where one service's output lines go.
#[derive(Clone)]
pub(crate) struct OutputSink {
    pub service: Arc<str>,
    pub writer: LogWriter,
    pub subscribers: LogSubscribers,
    /// The HealthChecker, when the service has a log probe.
    pub probe: Option<Recipient<LogLine>>,
    /// The last lines, kept for error messages (install failures).
    pub tail: Option<Arc<Mutex<std::collections::VecDeque<String>>>>,
}

/// How many lines [`OutputSink::tail`] keeps.
pub(crate) const TAIL_LINES: usize = 10;

impl OutputSink {
    fn emit(&self, stream: Stream, line: String) {
        match stream {
            Stream::Stdout => {
                tracing::info!(target: "ringmaster::output", service = %self.service, stream = "stdout", "{line}")
            }
            Stream::Stderr => {
                tracing::info!(target: "ringmaster::output", service = %self.service, stream = "stderr", "{line}")
            }
        }
        self.writer.write(&self.service, &line);
        if let Some(tail) = &self.tail {
            if let Ok(mut t) = tail.lock() {
                if t.len() == TAIL_LINES {
                    t.pop_front();
                }
                t.push_back(line.clone());
            }
        }
        let subscribers: Vec<Recipient<LogLine>> = self
            .subscribers
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        if subscribers.is_empty() && self.probe.is_none() {
            return;
        }
        let msg = LogLine {
            service: self.service.to_string(),
            stream,
            line,
        };
        if let Some(probe) = &self.probe {
            probe.do_send(msg.clone());
        }
        for s in subscribers {
            s.do_send(msg.clone());
        }
    }

    /// Reads `reader` line by line until EOF (lossy UTF-8, `\r\n` trimmed) and
    /// sends each line on. Runs as a task on the current arbiter.
    pub fn pump<R>(self, reader: R, stream: Stream) -> actix_rt::task::JoinHandle<()>
    where
        R: AsyncRead + Unpin + 'static,
    {
        let span = tracing::info_span!("service", service = %self.service);
        actix_rt::spawn(
            async move {
                let mut reader = BufReader::with_capacity(4 * 1024, reader);
                let mut buf = Vec::with_capacity(256);
                loop {
                    buf.clear();
                    match reader.read_until(b'\n', &mut buf).await {
                        Ok(0) => break,
                        Ok(_) => {
                            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                                buf.pop();
                            }
                            self.emit(stream, String::from_utf8_lossy(&buf).into_owned());
                        }
                        Err(e) => {
                            tracing::debug!("reading {stream:?} stopped: {e}");
                            break;
                        }
                    }
                }
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects what a `tracing` fmt subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[actix_rt::test]
    async fn each_line_is_a_tracing_event_with_its_service_and_goes_to_its_file() {
        let captured = Captured::default();
        let out = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let dir = tempfile::tempdir().expect("temp dir");
        let writer = LogWriter::start(dir.path().to_path_buf(), 0, KEEP);
        let sink = OutputSink {
            service: Arc::from("api"),
            writer: writer.clone(),
            subscribers: LogSubscribers::default(),
            probe: None,
            tail: None,
        };
        let input: &[u8] = b"first line\r\nsecond line\nno newline at the end";
        sink.pump(input, Stream::Stderr).await.expect("pump task");
        writer.flush().await;
        let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        for (line, want) in lines
            .iter()
            .zip(["first line", "second line", "no newline at the end"])
        {
            assert!(line.contains("service=api"), "{line}");
            assert!(line.contains("stderr"), "{line}");
            assert!(line.contains(want), "{line}");
        }
        let file = std::fs::read_to_string(dir.path().join("api.log")).expect("log file");
        assert_eq!(file, "first line\nsecond line\nno newline at the end\n");
    }

    #[actix_rt::test]
    async fn rotates_by_size_and_keeps_three() {
        let dir = tempfile::tempdir().expect("temp dir");
        let writer = LogWriter::start(dir.path().to_path_buf(), 100, KEEP);
        let name: Arc<str> = Arc::from("api");
        for i in 0..40 {
            writer.write(&name, &format!("line {i:04} ............"));
        }
        writer.flush().await;
        let current = std::fs::read_to_string(dir.path().join("api.log")).expect("current log");
        assert!(current.contains("line 0039"), "{current}");
        assert!(current.len() <= 100);
        for i in 1..=KEEP {
            let rotated = dir.path().join(format!("api.log.{i}"));
            assert!(rotated.exists(), "{} missing", rotated.display());
            assert!(std::fs::metadata(&rotated).expect("meta").len() <= 100);
        }
        assert!(!dir.path().join(format!("api.log.{}", KEEP + 1)).exists());
        let newest_old = std::fs::read_to_string(dir.path().join("api.log.1")).expect("log.1");
        let last_in_old: u32 = newest_old
            .lines()
            .last()
            .and_then(|l| l.get(5..9))
            .and_then(|n| n.parse().ok())
            .expect("a numbered line");
        let first_current: u32 = current
            .lines()
            .next()
            .and_then(|l| l.get(5..9))
            .and_then(|n| n.parse().ok())
            .expect("a numbered line");
        assert_eq!(last_in_old + 1, first_current, "no line lost at rotation");
    }

    #[test]
    fn rotate_if_larger_keeps_one_old_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("ringmaster.log");
        let old = dir.path().join("ringmaster.log.1");
        assert!(!rotate_if_larger(&log, 10, 1).expect("a missing file is fine"));
        std::fs::write(&log, "0123456789").expect("write log");
        assert!(!rotate_if_larger(&log, 10, 1).expect("at the limit"));
        assert!(log.exists() && !old.exists());
        std::fs::write(&log, "first run, over the limit\n").expect("write log");
        assert!(rotate_if_larger(&log, 10, 1).expect("over the limit"));
        assert!(!log.exists());
        std::fs::write(&log, "second run, over the limit\n").expect("write log");
        assert!(rotate_if_larger(&log, 10, 1).expect("over the limit again"));
        assert_eq!(
            std::fs::read_to_string(&old).expect("the rotated file"),
            "second run, over the limit\n"
        );
    }
}
