//! Shared by the actor benches: the fake-service program (built from the tests
//! crate), free ports, an event recorder, and percentiles.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use ringmaster::messages::ServiceEvent;

/// The fake-service binary next to this bench's own folder (`target/release`).
pub fn fake_service() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench knows its own path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("bench binaries live in target/<profile>/deps");
    let path = dir.join(format!("fake-service{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        eprintln!(
            "{} is missing; build it first: cargo build --release -p ringmaster-tests --bin fake-service",
            path.display()
        );
        std::process::exit(1);
    }
    path
}

/// The shell command running fake-service with `args`.
pub fn fake(args: &str) -> String {
    format!("'{}' {args}", fake_service().display())
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0 works")
}

/// Records every event with its arrival instant.
#[derive(Clone, Default)]
pub struct Events(pub Arc<Mutex<Vec<(Instant, ServiceEvent)>>>);

impl Events {
    pub fn first(&self, name: &str, pred: impl Fn(&ServiceEvent) -> bool) -> Option<Instant> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .find(|(_, e)| e.name == name && pred(e))
            .map(|(t, _)| *t)
    }
}

pub struct Recorder(pub Events);

impl Actor for Recorder {
    type Context = Context<Self>;
}

impl Handler<ServiceEvent> for Recorder {
    type Result = ();
    fn handle(&mut self, e: ServiceEvent, _: &mut Context<Self>) {
        let at = Instant::now();
        self.0 .0.lock().expect("lock").push((at, e));
    }
}

/// The value at `p` (0..=100) of sorted `v`.
pub fn percentile(v: &[Duration], p: f64) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    if s.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((p / 100.0) * (s.len() - 1) as f64).round() as usize;
    s[idx.min(s.len() - 1)]
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
