//! The pid users expect: `status` shows a service's main process — the program
//! behind `sh -c`, an `npm run` chain, the reloader of a reloader + worker pair
//! that share the port — not the wrapper ringmaster spawned, which stays in
//! `root_pid`; `members` lists every process with the ports it holds. Checked
//! against the OS: the pid shown is the one holding the port, and its name.
#![cfg(target_os = "linux")]

mod actors_support;

use std::path::Path;
use std::time::Duration;

use actors_support::*;
use ringmaster::config::ServiceConfigBuilder;
use ringmaster::{Options, Orchestrator, ServiceStatus};
use ringmaster_tests::{comm, free_port, which, PidGuard};

fn argv(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Runs `services` until all are ready; returns their status.
async fn run(
    dir: &Path,
    services: Vec<ServiceConfigBuilder>,
) -> (Orchestrator, Vec<ServiceStatus>) {
    let orch = Orchestrator::start(config(dir, services), Options::default()).expect("starts");
    timed(orch.up(None)).await.expect("ready");
    let status = timed(orch.status()).await.expect("status");
    (orch, status)
}

async fn stop(orch: Orchestrator) {
    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
}

#[actix_rt::test]
async fn the_program_behind_sh_c_is_the_main_pid() {
    if which("python3").is_none() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let p = free_port();
    // `; true` keeps the shell from exec'ing python: two processes.
    let cmd = format!("python3 -m http.server {p} --bind 127.0.0.1; true");
    let (orch, status) = run(
        dir.path(),
        vec![ServiceConfigBuilder::new("web", cmd)
            .port(p)
            .health_http(format!("http://127.0.0.1:{p}/"))],
    )
    .await;
    let guard = PidGuard::new();
    let s = &status[0];
    let (main, root) = (s.pid.expect("main"), s.root_pid.expect("root"));
    guard.add(main);
    guard.add(root);
    assert_eq!(comm(root), "sh", "{s:?}");
    assert!(comm(main).starts_with("python3"), "{s:?}: {}", comm(main));
    assert_eq!(cli_holders(p), vec![main], "the main pid holds the port");
    let m = s.members.iter().find(|m| m.pid == main).expect("a member");
    assert_eq!(m.ports, vec![p]);
    assert!(s
        .members
        .iter()
        .any(|m| m.pid == root && m.ports.is_empty()));
    stop(orch).await;
}

#[actix_rt::test]
async fn of_a_reloader_and_a_worker_sharing_the_port_the_reloader_is_the_main_pid() {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = free_port();
    let (orch, status) = run(
        dir.path(),
        vec![ServiceConfigBuilder::new(
            "api",
            format!("{}; true", fake(&format!("--listen {p} --http --share"))),
        )
        .port(p)
        .health_http(format!("http://127.0.0.1:{p}/"))],
    )
    .await;
    let guard = PidGuard::new();
    let s = &status[0];
    let main = s.pid.expect("main");
    s.members.iter().for_each(|m| guard.add(m.pid));
    let holders: Vec<u32> = s
        .members
        .iter()
        .filter(|m| m.ports.contains(&p))
        .map(|m| m.pid)
        .collect();
    assert_eq!(holders.len(), 2, "reloader and worker both hold it: {s:?}");
    assert!(holders.contains(&main));
    let worker = holders.iter().find(|&&h| h != main).expect("a worker");
    let worker_parent = std::fs::read_to_string(format!("/proc/{worker}/stat"))
        .ok()
        .and_then(|st| {
            st.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|pp| pp.parse::<u32>().ok());
    assert_eq!(
        worker_parent,
        Some(main),
        "the main pid is the worker's parent"
    );
    stop(orch).await;
}

#[actix_rt::test]
async fn an_npm_run_chain_shows_the_node_program() {
    if which("npm").is_none() || which("node").is_none() {
        eprintln!("skipped: node and npm are not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).expect("app dir");
    std::fs::write(
        app.join("package.json"),
        r#"{ "name": "chain", "version": "1.0.0", "private": true,
             "scripts": { "dev": "node server.js" } }"#,
    )
    .expect("package.json");
    std::fs::write(
        app.join("server.js"),
        "const http = require('http');\n\
         http.createServer((q, r) => r.end('ok')).listen(Number(process.env.PORT), '127.0.0.1');\n\
         setInterval(() => {}, 1000);\n",
    )
    .expect("server.js");
    let (p, q) = (free_port(), free_port());
    let (orch, status) = run(
        dir.path(),
        vec![
            // With a port: its holder.
            ServiceConfigBuilder::new("web", "npm run dev")
                .workdir(&app)
                .env("PORT", p.to_string())
                .port(p)
                .health_http(format!("http://127.0.0.1:{p}/")),
            // Without one: the first process below sh and npm.
            ServiceConfigBuilder::new("bare", "npm run dev")
                .workdir(&app)
                .env("PORT", q.to_string())
                .health_http(format!("http://127.0.0.1:{q}/")),
        ],
    )
    .await;
    let guard = PidGuard::new();
    for s in &status {
        s.members.iter().for_each(|m| guard.add(m.pid));
        let main = s.pid.expect("main");
        assert!(
            argv(main).contains("server.js"),
            "{}: main pid {main} runs `{}`; members {:?}",
            s.name,
            argv(main),
            s.members
        );
        assert_ne!(s.root_pid, Some(main), "{s:?}");
        assert!(s.members.len() >= 2, "{s:?}");
    }
    let web = status.iter().find(|s| s.name == "web").expect("web");
    assert_eq!(cli_holders(p), vec![web.pid.expect("pid")]);
    stop(orch).await;
}

/// Who holds `port`, as the OS layer sees it.
fn cli_holders(port: u16) -> Vec<u32> {
    let mut pids: Vec<u32> = ringmaster_os::listeners(port)
        .expect("listeners")
        .into_iter()
        .map(|l| l.pid)
        .collect();
    pids.dedup();
    pids
}
