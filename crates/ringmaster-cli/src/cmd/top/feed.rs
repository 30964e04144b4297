//! What `top` hears from the instance, each on a thread of its own so that a slow
//! answer never holds up the keys: the status, polled once a second; the selected
//! service's output, followed as it comes; and the answers to `r` and `s`. Every
//! thread sends a [`Feed`] down one channel, which the event loop drains.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringmaster::messages::LogLine;
use ringmaster::ServiceStatus;

use super::view::Verb;
use crate::control::client::{Client, ClientError};

/// How often the status is polled. Each poll costs the instance a scan of the
/// process table (see docs/benchmarks.md); faster would show nothing more.
pub const STATUS_PERIOD: Duration = Duration::from_secs(1);

/// How many past lines the log follower asks for.
pub const LOG_TAIL: usize = 200;

/// How long a log follower waits for a line before it looks whether it is still
/// wanted (its connection closes when it is not).
const FOLLOW_TICK: Duration = Duration::from_millis(500);

/// One thing a thread heard.
#[derive(Debug)]
pub enum Feed {
    /// A status poll: the services, or why it failed.
    Status(Result<Vec<ServiceStatus>, String>),
    /// A line of output for follower `follower`.
    Log { follower: u64, line: LogLine },
    /// The answer to `verb` on `service`.
    Answer {
        verb: Verb,
        service: String,
        result: Result<(), String>,
    },
}

/// The text of a failed request: the instance's reason, or what went wrong.
pub fn describe(e: &ClientError) -> String {
    match e {
        ClientError::Status { status, body } if body.is_empty() => format!("HTTP {status}"),
        e => e.to_string(),
    }
}

/// Polls `GET /status` every [`STATUS_PERIOD`] (at once when woken through
/// `wake`) until `wake`'s sender is dropped or nobody listens on `tx`.
/// The first ask waits a period: the view starts with the status `top` fetched
/// (each ask costs the instance a scan of the process table).
pub fn poll_status(client: Client, tx: Sender<Feed>, wake: Receiver<()>) {
    let mut started = Instant::now();
    loop {
        match wake.recv_timeout(STATUS_PERIOD.saturating_sub(started.elapsed())) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        started = Instant::now();
        let result = client
            .get_json::<Vec<ServiceStatus>>("/status")
            .map_err(|e| describe(&e));
        if tx.send(Feed::Status(result)).is_err() {
            return;
        }
    }
}

/// Asks the instance for `verb` on `service` on a thread (a restart takes the
/// service's stop and start), then sends the answer and wakes the status poll.
pub fn ask(client: &Client, verb: Verb, service: String, tx: Sender<Feed>, wake: Sender<()>) {
    let client = client.clone().with_timeout(None);
    std::thread::spawn(move || {
        let path = format!(
            "/{}/{}",
            verb.as_str(),
            crate::control::client::encode(&service)
        );
        let result = client
            .request("POST", &path)
            .map(drop)
            .map_err(|e| describe(&e));
        let _ = tx.send(Feed::Answer {
            verb,
            service,
            result,
        });
        let _ = wake.send(());
    });
}

/// Follows one service's output (`GET /logs?service=NAME&n=200&follow=true`) on a
/// thread; dropping it stops the thread and closes its connection within
/// [`FOLLOW_TICK`].
pub struct Follower {
    /// Its number: lines of a follower that is no longer the current one are
    /// not shown.
    pub id: u64,
    /// Whose output.
    pub service: String,
    stop: Arc<AtomicBool>,
}

impl Follower {
    /// Starts following `service`.
    pub fn start(client: &Client, id: u64, service: String, tx: Sender<Feed>) -> Follower {
        let stop = Arc::new(AtomicBool::new(false));
        let client = client.clone().with_timeout(Some(FOLLOW_TICK));
        let path = format!(
            "/logs?service={}&n={LOG_TAIL}&follow=true",
            crate::control::client::encode(&service)
        );
        let stopped = stop.clone();
        std::thread::spawn(move || follow(&client, &path, id, &tx, &stopped));
        Follower { id, service, stop }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The follower's thread: follows `path` until it is stopped. When the stream
/// ends or cannot be had (the instance went away, a `down` and a new `up`), it
/// tries again every second, then asks only for new lines (`n=0`), so that
/// nothing already shown comes twice.
fn follow(client: &Client, path: &str, id: u64, tx: &Sender<Feed>, stop: &AtomicBool) {
    let again = path.replace(&format!("&n={LOG_TAIL}&"), "&n=0&");
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        let path = if first { path } else { again.as_str() };
        match stream(client, path, id, tx, stop) {
            Ended::Gone => return,
            Ended::Streamed => first = false,
            Ended::Refused => {}
        }
        // A second before the next try, looking at `stop` meanwhile.
        for _ in 0..10 {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// How one stream of [`follow`] ended.
enum Ended {
    /// Nobody listens any more (the view is gone) or it was stopped.
    Gone,
    /// It ran, then ended.
    Streamed,
    /// It could not be had (no instance, an unknown service).
    Refused,
}

/// One `GET /logs` stream: each line to `tx` until it ends. The short read
/// timeout only wakes it to look at `stop`; a timeout between two lines loses
/// nothing (each line comes in a chunk of its own).
fn stream(client: &Client, path: &str, id: u64, tx: &Sender<Feed>, stop: &AtomicBool) -> Ended {
    let response = loop {
        if stop.load(Ordering::Relaxed) {
            return Ended::Gone;
        }
        match client.request("GET", path) {
            Ok(r) => break r,
            Err(ClientError::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            // No instance, an unknown service: the status line says so.
            Err(_) => return Ended::Refused,
        }
    };
    for line in response.lines() {
        if stop.load(Ordering::Relaxed) {
            return Ended::Gone;
        }
        match line {
            Ok(text) => {
                let Ok(line) = serde_json::from_str::<LogLine>(&text) else {
                    continue;
                };
                if tx.send(Feed::Log { follower: id, line }).is_err() {
                    return Ended::Gone;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Ended::Streamed,
        }
    }
    Ended::Streamed
}
