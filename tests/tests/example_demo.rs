//! The demo stack of `examples/`: its configurations pass `ringmaster validate`;
//! `demo-api` runs a reloader and a worker that share the port; `demo-frontend`
//! refuses to start without the API and otherwise runs a renamed server through a
//! shell; and the whole dashboard goes `up -d` → the API's two replicas and the
//! frontend `ready` → the page shows the API's data → `down` → no process left,
//! ports free.
#![cfg(unix)]

mod example_support;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use example_support::{
    dashboard_config_for_env, dashboard_env, example_bin, get, page_server_pid, port_free, run,
    two_free_ports, workspace_root, GroupGuard, Output,
};
use ringmaster_examples::ApiStats;
use ringmaster_tests::{bin_path, pid_alive, wait_for, PidGuard};

/// Generous: the first start of a debug build on a slow machine.
const TIMEOUT: Duration = Duration::from_secs(60);

fn ringmaster() -> Command {
    let mut cmd = Command::new(bin_path("ringmaster"));
    cmd.current_dir(workspace_root()).env("NO_COLOR", "1");
    cmd
}

#[test]
fn example_configs_pass_validation() {
    for config in [
        "examples/dashboard/ringmaster.toml",
        "examples/fastapi-nextjs/ringmaster.toml",
    ] {
        let (code, out, err) = run(ringmaster().args(["validate", "-f", config]), TIMEOUT);
        assert_eq!(
            code,
            Some(0),
            "ringmaster validate -f {config}:\n{out}\n{err}"
        );
    }
}

/// Starts `demo-api` on `port` in a process group of its own, registered with `groups`.
fn start_api(port: u16, groups: &GroupGuard) -> std::process::Child {
    let child = Command::new(example_bin("demo-api"))
        .args(["--port", &port.to_string()])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("demo-api starts");
    groups.add(child.id());
    wait_for("demo-api to answer GET /health", TIMEOUT, || {
        get(port, "/health").is_some_and(|r| r.status == 200 && r.body.contains("\"ok\""))
    });
    child
}

fn stats(port: u16) -> ApiStats {
    let r = get(port, "/api/stats").expect("GET /api/stats answers");
    assert_eq!(r.status, 200, "GET /api/stats: {}", r.body);
    serde_json::from_str(&r.body).expect("/api/stats is JSON stats")
}

#[test]
fn demo_api_reloader_and_worker_share_the_port() {
    let groups = GroupGuard::default();
    let port = ringmaster_tests::free_port();
    let mut reloader = start_api(port, &groups);

    let first = stats(port);
    let second = stats(port);
    assert_eq!(first.service, "demo-api");
    assert_eq!(first.port, port);
    assert_eq!(first.reloader_pid, Some(reloader.id()));
    assert_ne!(
        first.worker_pid,
        reloader.id(),
        "a worker answers, not the reloader"
    );
    assert!(
        second.requests > first.requests,
        "the counter moves: {first:?} then {second:?}"
    );

    // Both processes hold the listening socket, as the OS shows it.
    let holders: Vec<u32> = ringmaster_os::listeners(port)
        .expect("listeners can be read")
        .iter()
        .map(|l| l.pid)
        .collect();
    assert!(
        holders.contains(&reloader.id()) && holders.contains(&first.worker_pid),
        "holders of :{port} are {holders:?}; expected the reloader {} and the worker {}",
        reloader.id(),
        first.worker_pid
    );

    // Stopping only the reloader leaves the worker holding the port: the problem
    // ringmaster's group/tag stop solves. Stop the group here.
    drop(groups);
    wait_for("both demo-api processes to be gone", TIMEOUT, || {
        !pid_alive(reloader.id()) && !pid_alive(first.worker_pid)
    });
    wait_for("the port to be free", TIMEOUT, || port_free(port));
    let _ = reloader.wait();
}

#[test]
fn demo_frontend_refuses_to_start_without_the_api() {
    let (api_port, web_port) = two_free_ports();
    let api = format!("http://127.0.0.1:{api_port}");
    let (code, out, err) = run(
        Command::new(example_bin("demo-frontend")).args([
            "--port",
            &web_port.to_string(),
            "--api",
            &api,
        ]),
        TIMEOUT,
    );
    assert_eq!(code, Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains(&format!("the API at {api} is not answering"))
            && err.contains("start it first"),
        "stderr says why: {err}"
    );
    assert!(
        port_free(web_port),
        "nothing was left listening on {web_port}"
    );
}

#[test]
fn demo_frontend_serves_the_api_data_from_a_renamed_server_behind_a_shell() {
    let groups = GroupGuard::default();
    let (api_port, web_port) = two_free_ports();
    let mut api = start_api(api_port, &groups);

    let mut launcher = Command::new(example_bin("demo-frontend"))
        .args([
            "--port",
            &web_port.to_string(),
            "--api",
            &format!("http://127.0.0.1:{api_port}"),
        ])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("demo-frontend starts");
    groups.add(launcher.id());
    wait_for("the frontend page", TIMEOUT, || {
        get(web_port, "/").is_some_and(|r| r.status == 200)
    });

    let page = get(web_port, "/").expect("the page answers").body;
    let worker = stats(api_port).worker_pid;
    assert!(
        page.contains(&format!("<td id=\"worker_pid\">{worker}</td>"))
            && page.contains("\"service\":\"demo-api\""),
        "the page shows the API's data (worker {worker}):\n{page}"
    );
    let server = page_server_pid(&page).expect("the page names its server's pid");
    assert_ne!(server, launcher.id(), "the server is not the launcher");

    #[cfg(target_os = "linux")]
    {
        let comm = std::fs::read_to_string(format!("/proc/{server}/comm")).expect("comm");
        assert_eq!(
            comm.trim(),
            "demo-frontend-s",
            "renamed (comm keeps 15 bytes)"
        );
        let ppid = |pid: u32| -> u32 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
            let after = stat.rsplit_once(')').expect("stat has a comm").1;
            after
                .split_whitespace()
                .nth(1)
                .expect("ppid")
                .parse()
                .expect("ppid is a number")
        };
        let shell = ppid(server);
        let shell_comm = std::fs::read_to_string(format!("/proc/{shell}/comm")).expect("comm");
        assert_eq!(
            shell_comm.trim(),
            "sh",
            "a shell sits between launcher and server"
        );
        assert_eq!(ppid(shell), launcher.id(), "the launcher runs the shell");
    }

    // The launcher's group is the whole chain: stopping it leaves nothing.
    let api_pid = api.id();
    drop(groups);
    wait_for("the frontend chain and the API to be gone", TIMEOUT, || {
        [launcher.id(), server, api_pid, worker]
            .iter()
            .all(|p| !pid_alive(*p))
    });
    wait_for("both ports to be free", TIMEOUT, || {
        port_free(api_port) && port_free(web_port)
    });
    let _ = launcher.wait();
    let _ = api.wait();
}

/// `ringmaster` with the dashboard's ports set through `API_PORT` and `WEB_PORT`.
fn ringmaster_on(api_port: u16, web_port: u16) -> Command {
    let mut cmd = ringmaster();
    cmd.envs(dashboard_env(api_port, web_port));
    cmd
}

/// Runs `ringmaster down` (with the test's ports) when dropped, so a failing test
/// leaves nothing running.
struct DownOnDrop<'a>(&'a Path, u16, u16);

impl Drop for DownOnDrop<'_> {
    fn drop(&mut self) {
        let _ = ringmaster_on(self.1, self.2)
            .args(["down", "-f"])
            .arg(self.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The services of `status --json`, whether it prints a list or `{"services": [...]}`.
fn services(json: &serde_json::Value) -> Vec<serde_json::Value> {
    let list = json.get("services").unwrap_or(json);
    list.as_array().cloned().unwrap_or_default()
}

#[test]
fn dashboard_stack_up_status_page_down() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (api_port, web_port) = two_free_ports();
    // A copy in the test's folder (its own state dir); the ports come from the
    // environment of every ringmaster command below.
    let config = dir.path().join("ringmaster.toml");
    std::fs::write(&config, dashboard_config_for_env()).expect("config written");
    let ringmaster = || ringmaster_on(api_port, web_port);
    let pids = PidGuard::new();
    let _down = DownOnDrop(&config, api_port, web_port);

    // up -d returns once every service is ready.
    let mut up = ringmaster()
        .args(["up", "-d", "-f"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ringmaster up -d starts");
    pids.add(up.id());
    let out = Output::default();
    out.collect(up.stdout.take().expect("piped"), "up | ");
    out.collect(up.stderr.take().expect("piped"), "up ! ");
    let code = example_support::wait_exit(&mut up, Duration::from_secs(180));
    assert_eq!(code, Some(0), "ringmaster up -d:\n{}", out.text());

    let (code, json, err) = run(
        ringmaster().args(["status", "--json", "-f"]).arg(&config),
        TIMEOUT,
    );
    assert_eq!(code, Some(0), "status --json: {err}");
    let status: serde_json::Value = serde_json::from_str(&json).expect("status --json is JSON");
    let services = services(&status);
    let find = |name: &str| {
        services
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} in status: {json}"))
    };
    // The API runs two replicas behind ringmaster's balancer on its port.
    let api = find("api");
    assert_eq!(api["state"], "ready", "api is ready: {json}");
    assert_eq!(
        api["balancer"]["ready"], 2,
        "both replicas take connections: {json}"
    );
    let mut service_pids = Vec::new();
    let mut replica_ports = Vec::new();
    for name in ["api#0", "api#1", "frontend"] {
        let s = find(name);
        assert_eq!(s["state"], "ready", "{name} is ready: {json}");
        let pid = s["pid"]
            .as_u64()
            .unwrap_or_else(|| panic!("{name} has a pid: {json}")) as u32;
        assert!(pid_alive(pid), "{name}'s pid {pid} is alive");
        service_pids.push(pid);
        if name.starts_with("api#") {
            replica_ports.push(s["port"].as_u64().expect("a replica's port") as u16);
        }
    }

    // Each replica answers on its own port; the balancer's port reaches them.
    let replicas: Vec<ApiStats> = replica_ports.iter().map(|p| stats(*p)).collect();
    let workers: Vec<u32> = replicas.iter().map(|s| s.worker_pid).collect();
    let through = stats(api_port);
    assert!(
        workers.contains(&through.worker_pid),
        "{through:?} is one of {workers:?}"
    );
    // The page answers and carries what the API says right now.
    let page = get(web_port, "/").expect("the frontend answers");
    assert_eq!(page.status, 200);
    assert!(
        workers.iter().any(|w| page
            .body
            .contains(&format!("<td id=\"worker_pid\">{w}</td>")))
            && page.body.contains("\"service\":\"demo-api\""),
        "the page shows the API's data (a worker of {workers:?}):\n{}",
        page.body
    );
    let server = page_server_pid(&page.body).expect("the page names its server's pid");

    // Every process the OS shows for the stack: the roots from status, the API's
    // reloader and worker, the frontend's server.
    let mut all = service_pids.clone();
    all.push(server);
    for r in &replicas {
        all.push(r.worker_pid);
        all.extend(r.reloader_pid);
    }
    for pid in &all {
        pids.add(*pid);
    }

    let (code, out, err) = run(ringmaster().args(["down", "-f"]).arg(&config), TIMEOUT);
    assert_eq!(code, Some(0), "ringmaster down:\n{out}\n{err}");
    for pid in &all {
        assert!(!pid_alive(*pid), "pid {pid} is gone after down");
    }
    assert!(port_free(api_port), "port {api_port} is free after down");
    for p in replica_ports {
        assert!(port_free(p), "replica port {p} is free after down");
    }
    assert!(port_free(web_port), "port {web_port} is free after down");
}
