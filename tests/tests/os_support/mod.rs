//! Shared by the OS-layer tests that spawn through `ringmaster_os::spawn`
//! (`os_process.rs`, `fault_process_tree.rs`): a tagged service with its stdout as lines,
//! which kills whatever carries its tag when dropped.
#![allow(dead_code)]

use std::time::Duration;

use ringmaster_os::process::{self, members, ProcessInfo};
use ringmaster_os::spawn::{spawn, SpawnSpec, Spawned};
use ringmaster_os::stop::{stop, Signal, StopTarget};
use ringmaster_os::tag::Tag;
use ringmaster_tests::PidGuard;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::ChildStdout;

/// How long a line may take to come.
const LONG: Duration = Duration::from_secs(20);

/// A service spawned through `ringmaster_os::spawn`, with its stdout as lines.
/// The runtime is declared last so it is dropped last.
pub struct Service {
    pub spawned: Spawned,
    lines: Lines<BufReader<ChildStdout>>,
    /// Lines read but not yet asked for.
    seen: Vec<String>,
    pub tag: Tag,
    rt: tokio::runtime::Runtime,
}

impl Service {
    /// Spawns `spec`; `guard` kills its root when the test ends.
    pub fn start(spec: SpawnSpec, guard: &PidGuard) -> Service {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let mut spawned = rt.block_on(async { spawn(&spec) }).expect("spawn works");
        guard.add(spawned.pid);
        let stdout = spawned.stdout.take().expect("stdout is piped");
        Service {
            spawned,
            lines: BufReader::new(stdout).lines(),
            seen: Vec::new(),
            tag: spec.tag,
            rt,
        }
    }

    /// The next stdout line.
    pub fn next_line(&mut self) -> String {
        let lines = &mut self.lines;
        self.rt
            .block_on(async { tokio::time::timeout(LONG, lines.next_line()).await })
            .expect("a line within the timeout")
            .expect("stdout reads")
            .expect("stdout is still open")
    }

    /// The first line (read now or earlier, not yet taken) starting with
    /// `prefix`, taken; returns its last word as a number.
    pub fn value_of(&mut self, prefix: &str) -> u32 {
        let line = loop {
            if let Some(i) = self.seen.iter().position(|l| l.starts_with(prefix)) {
                break self.seen.remove(i);
            }
            let next = self.next_line();
            self.seen.push(next);
        };
        line.split_whitespace()
            .last()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no number in {line:?}"))
    }

    /// What a stop of this service aims at: its root, group and tag.
    pub fn target(&self) -> StopTarget {
        StopTarget {
            root: Some(self.spawned.pid),
            pgid: self.spawned.pgid,
            tag: Some(self.tag.clone()),
            also: Vec::new(),
        }
    }

    /// The service's members in a fresh process table.
    pub fn members_now(&self) -> Vec<ProcessInfo> {
        let table = process::snapshot().expect("snapshot");
        let t = self.target();
        members(&table, t.root, t.pgid, t.tag.as_ref())
            .into_iter()
            .cloned()
            .collect()
    }
}

impl Drop for Service {
    /// Whatever carries this test's tag dies with the test, even when an
    /// assertion failed before every pid was known.
    fn drop(&mut self) {
        let _ = stop(&self.target(), Signal::Kill, Duration::ZERO);
    }
}

/// A spec that runs `command` as `service`, tagged with a project named after
/// this test process, without workdir or extra environment.
pub fn spec(command: impl Into<String>, service: &str) -> SpawnSpec {
    SpawnSpec {
        command: command.into(),
        workdir: None,
        env: vec![],
        tag: Tag::new(format!("rm-test{}", std::process::id()), service),
    }
}
