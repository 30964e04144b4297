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

/// A service name in a URL: a replica's `#` (and anything else not plain) escaped.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Polls `GET /status` every [`STATUS_PERIOD`] (at once when woken through
/// `wake`) until `wake`'s sender is dropped or nobody listens on `tx`.
pub fn poll_status(client: Client, tx: Sender<Feed>, wake: Receiver<()>) {
    loop {
        let started = Instant::now();
        let result = client
            .get_json::<Vec<ServiceStatus>>("/status")
            .map_err(|e| describe(&e));
        if tx.send(Feed::Status(result)).is_err() {
            return;
        }
        match wake.recv_timeout(STATUS_PERIOD.saturating_sub(started.elapsed())) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Asks the instance for `verb` on `service` on a thread (a restart takes the
/// service's stop and start), then sends the answer and wakes the status poll.
pub fn ask(client: &Client, verb: Verb, service: String, tx: Sender<Feed>, wake: Sender<()>) {
    let client = client.clone().with_timeout(None);
    std::thread::spawn(move || {
        let path = format!("/{}/{}", verb.as_str(), encode(&service));
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
            encode(&service)
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

/// The follower's thread: connects (again, while the instance is slow to
/// answer), then sends each line until the stream ends or it is stopped. The
/// short read timeout only wakes it to look at `stop`; a timeout between two
/// lines loses nothing (each line comes in a chunk of its own).
fn follow(client: &Client, path: &str, id: u64, tx: &Sender<Feed>, stop: &AtomicBool) {
    let response = loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        match client.request("GET", path) {
            Ok(r) => break r,
            Err(ClientError::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            // No instance, an unknown service: the status line says so.
            Err(_) => return,
        }
    };
    for line in response.lines() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        match line {
            Ok(text) => {
                let Ok(line) = serde_json::from_str::<LogLine>(&text) else {
                    continue;
                };
                if tx.send(Feed::Log { follower: id, line }).is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_for_urls() {
        assert_eq!(encode("api"), "api");
        assert_eq!(encode("api#1"), "api%231");
        assert_eq!(encode("a b&c"), "a%20b%26c");
    }
}
