//! The stack ringmaster is built for, for real: `examples/fastapi-nextjs` (uvicorn
//! `--reload` and `next dev`) copied to a temporary folder and run on two free
//! ports. Its install steps create a Python venv and run `npm install`, so this
//! test needs python3 with venv, Node.js with npm, and the package registries. CI
//! has neither, so it is ignored there; run it with
//!
//! ```sh
//! cargo test -p ringmaster-tests --test example_fastapi_nextjs -- --ignored --nocapture
//! ```
//!
//! What it checks, in the process table and on the ports: `up -d` → both `ready`;
//! both uvicorn processes hold the API port and a renamed `next-server` holds the
//! web port; the page shows the API's data; after `kill -9` of the background
//! instance its services keep the ports, and the next `up -d` stops every one of
//! them and comes up on the same ports; `down` leaves no tagged process and both
//! ports free.
#![cfg(unix)]

mod example_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use example_support::{get, port_free, run, two_free_ports, workspace_root};
use ringmaster_os::process::snapshot;
use ringmaster_os::{listeners, project_id, Listener};
use ringmaster_tests::{bin_path, kill_pid, pid_alive, wait_for, PidGuard};

/// A first `pip install` and `npm install` with cold caches take minutes.
const UP_TIMEOUT: Duration = Duration::from_secs(900);
const TIMEOUT: Duration = Duration::from_secs(60);

/// Copies the example without what an earlier run here installed or left.
fn copy_example(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a folder for the copy");
    for entry in std::fs::read_dir(from).expect("the example is readable") {
        let entry = entry.expect("a folder entry");
        let name = entry.file_name();
        let skip = [
            ".venv",
            "node_modules",
            ".next",
            ".ringmaster",
            "__pycache__",
        ];
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().expect("a file type").is_dir() {
            copy_example(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("a file copied");
        }
    }
}

struct Stack {
    config: std::path::PathBuf,
    project: String,
    api_port: u16,
    web_port: u16,
}

impl Stack {
    fn ringmaster(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin_path("ringmaster"));
        cmd.args(args)
            .arg("-f")
            .arg(&self.config)
            .env("NO_COLOR", "1")
            .env("API_PORT", self.api_port.to_string())
            .env("WEB_PORT", self.web_port.to_string());
        cmd
    }

    /// `up -d`; returns the background instance's pid.
    fn up(&self) -> u32 {
        let (code, out, err) = run(&mut self.ringmaster(&["up", "-d"]), UP_TIMEOUT);
        assert_eq!(code, Some(0), "up -d:\n{out}\n{err}");
        let rest = out
            .split("in the background (pid ")
            .nth(1)
            .unwrap_or_else(|| panic!("up -d names its pid: {out}"));
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().expect("a pid")
    }

    fn assert_ready(&self) {
        let (code, json, err) = run(&mut self.ringmaster(&["status", "--json"]), TIMEOUT);
        assert_eq!(code, Some(0), "status --json: {err}");
        let services: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        for name in ["api", "web"] {
            let s = services
                .as_array()
                .and_then(|a| a.iter().find(|s| s["name"] == name))
                .unwrap_or_else(|| panic!("{name} in {json}"));
            assert_eq!(s["state"], "ready", "{json}");
        }
    }

    /// The pids of every live process that carries this stack's tag.
    fn tagged(&self) -> BTreeSet<u32> {
        snapshot()
            .expect("the process table can be read")
            .into_iter()
            .filter(|p| !p.zombie && p.tag.as_ref().is_some_and(|t| t.project == self.project))
            .map(|p| p.pid)
            .collect()
    }

    /// Holders of the API port (all python) and of the web port (a next-server).
    fn holders(&self) -> (Vec<u32>, u32) {
        let api = listeners(self.api_port).expect("listeners");
        assert!(
            api.len() >= 2 && api.iter().all(|l| name_starts(l, "python")),
            "uvicorn's reloader and worker hold :{}: {api:?}",
            self.api_port
        );
        let web = listeners(self.web_port).expect("listeners");
        let server = web
            .iter()
            .find(|l| name_starts(l, "next-server"))
            .unwrap_or_else(|| panic!("a renamed next-server holds :{}: {web:?}", self.web_port));
        (api.iter().map(|l| l.pid).collect(), server.pid)
    }
}

fn name_starts(l: &Listener, prefix: &str) -> bool {
    l.process
        .as_ref()
        .is_some_and(|p| p.name.starts_with(prefix))
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = run(&mut self.ringmaster(&["down"]), TIMEOUT);
    }
}

#[test]
#[ignore = "needs python3 (venv), Node.js (npm) and the package registries; see the file's doc"]
fn fastapi_and_nextjs_up_killed_up_again_down() {
    let dir = tempfile::tempdir().expect("a temp dir");
    copy_example(
        &workspace_root().join("examples/fastapi-nextjs"),
        dir.path(),
    );
    let (api_port, web_port) = two_free_ports();
    let stack = Stack {
        config: dir.path().join("ringmaster.toml"),
        project: project_id(&dir.path().join(".ringmaster")),
        api_port,
        web_port,
    };
    let pids = PidGuard::new();

    let first = stack.up();
    pids.add(first);
    stack.assert_ready();
    let (api_holders, server) = stack.holders();

    // The page is rendered by the Next.js server with what the API says.
    let stats = get(api_port, "/api/stats").expect("the API answers");
    let stats: serde_json::Value = serde_json::from_str(&stats.body).expect("stats JSON");
    let worker = stats["worker_pid"].as_u64().expect("a worker pid");
    assert!(api_holders.contains(&(worker as u32)), "{api_holders:?}");
    let page = get(web_port, "/").expect("the web answers");
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains(&format!("&quot;worker_pid&quot;: {worker}")),
        "the page shows the API's worker pid {worker}:\n{}",
        page.body
    );

    // The manager dies; its services keep running and keep the ports.
    let before = stack.tagged();
    for pid in &before {
        pids.add(*pid);
    }
    assert!(before.contains(&server) && api_holders.iter().all(|p| before.contains(p)));
    kill_pid(first);
    wait_for("the killed instance gone", TIMEOUT, || !pid_alive(first));
    assert!(
        !port_free(api_port) && !port_free(web_port),
        "orphans hold the ports"
    );

    // The next start stops every one of them and takes the same ports.
    pids.add(stack.up());
    stack.assert_ready();
    let alive: Vec<u32> = stack.tagged().intersection(&before).copied().collect();
    assert!(alive.is_empty(), "left from the killed run: {alive:?}");
    let (new_holders, new_server) = stack.holders();
    assert!(new_holders.iter().all(|p| !before.contains(p)) && !before.contains(&new_server));
    for pid in stack.tagged() {
        pids.add(pid);
    }

    let (code, out, err) = run(&mut stack.ringmaster(&["down"]), TIMEOUT);
    assert_eq!(code, Some(0), "down:\n{out}\n{err}");
    assert!(stack.tagged().is_empty(), "a tagged process is left");
    assert!(
        port_free(api_port) && port_free(web_port),
        "both ports free"
    );
}
