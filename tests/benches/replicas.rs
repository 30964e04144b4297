//! Replicas behind the balancer, measured with a real load tool (`oha`, from
//! crates.io: `cargo install oha`; set `OHA` to its path when it is not on PATH).
//!
//! 1. **Failed requests during a rolling restart**: `demo-api` (actix-web; a
//!    reloader that binds after 500 ms and a worker sharing the socket, like
//!    `uvicorn --reload`) as 3 replicas; `oha` sends a steady `RATE` requests/s
//!    (default 300) to the balancer for the whole run while `ringmaster restart
//!    api` replaces the replicas one at a time. Beside it, for contrast, the same
//!    restart of one instance of the same program with no balancer. Each with
//!    keep-alive connections (oha's default) and with a connection per request.
//! 2. **Balancer overhead**: one replica; `oha -c 50` for `SECS` seconds (default
//!    10), through the balancer and straight to the replica's own port,
//!    alternating, `ROUNDS` rounds each (default 3): `demo-api` at full speed and
//!    at a steady 2000 requests/s, and — when `UVICORN` names a uvicorn with
//!    fastapi installed — the FastAPI example at full speed.
//! 3. **Memory per 1 000 open connections**: the instance's resident memory with
//!    1 000 idle connections held open through the balancer (to a replica that
//!    holds them), against none.
//!
//! Run: `cargo build --release -p ringmaster-cli -p ringmaster-examples --bins &&
//! cargo bench -p ringmaster-tests --bench replicas`.
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ringmaster_tests::{built_path, fake_service, free_port, run_ringmaster, wait_for};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn oha() -> PathBuf {
    std::env::var_os("OHA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("oha"))
}

/// The API as `replicas` replicas behind the balancer on `port` (or, with
/// `None`, one instance on `port` itself).
fn api_config(port: u16, replicas: Option<u32>) -> String {
    let demo_api = built_path("demo-api");
    let (own, more) = match replicas {
        Some(n) => ("${PORT}".to_owned(), format!("replicas = {n}\n")),
        None => (port.to_string(), String::new()),
    };
    format!(
        "[settings]\nshutdown_timeout = \"30s\"\n\n[services.api]\n\
         command = \"'{}' --port {own} --startup-delay 500\"\nport = {port}\n{more}\
         allow = [\"demo-api\"]\n\
         health = {{ http = \"http://127.0.0.1:{own}/health\", interval = \"1s\" }}\n\
         stop = {{ timeout = \"5s\" }}\n",
        demo_api.display()
    )
}

/// One replica of the FastAPI example served by uvicorn (the `uvicorn` given in
/// `UVICORN`, from a venv with the example's requirements) behind the balancer.
fn fastapi_config(port: u16, uvicorn: &str) -> String {
    let app = workspace_root().join("examples/fastapi-nextjs/api");
    format!(
        "[settings]\nshutdown_timeout = \"30s\"\n\n[services.api]\n\
         command = \"'{uvicorn}' --app-dir '{}' main:app --host 127.0.0.1 --port ${{PORT}} --log-level warning\"\n\
         port = {port}\nreplicas = 1\n\
         health = {{ http = \"http://127.0.0.1:${{PORT}}/health\", interval = \"5s\" }}\n",
        app.display()
    )
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// Replicas that hold every connection open (for the memory figure).
fn holder_config(port: u16) -> String {
    format!(
        "[settings]\nshutdown_timeout = \"30s\"\n\n[services.api]\n\
         command = \"'{}' --listen ${{PORT}}\"\nport = {port}\nreplicas = 2\n\
         health = {{ tcp = \"${{PORT}}\" }}\n",
        fake_service().display()
    )
}

struct Stack {
    dir: tempfile::TempDir,
}

impl Stack {
    fn up(config: &str) -> Stack {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join("ringmaster.toml"), config).expect("config");
        let s = Stack { dir };
        s.run(&["up", "-d"]);
        s
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `ringmaster ARGS`; its wall time. Panics when it fails.
    fn run(&self, args: &[&str]) -> Duration {
        run_ringmaster(self.path(), args)
    }

    fn status(&self) -> Vec<Value> {
        let out = Command::new(built_path("ringmaster"))
            .args(["status", "--json"])
            .current_dir(self.path())
            .output()
            .expect("status");
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    }

    fn entry(&self, name: &str) -> Value {
        self.status()
            .into_iter()
            .find(|s| s["name"] == name)
            .unwrap_or(Value::Null)
    }

    fn instance_pid(&self) -> u32 {
        ringmaster_os::InstanceLock::owner(&self.path().join(".ringmaster")).expect("instance")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = Command::new(built_path("ringmaster"))
            .arg("down")
            .current_dir(self.path())
            .output();
    }
}

/// Starts oha against `url` with `args`; JSON on stdout.
fn start_oha(url: &str, args: &[&str]) -> Child {
    Command::new(oha())
        .args(args)
        .args(["--no-tui", "--output-format", "json", url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("oha runs (cargo install oha, or set OHA)")
}

fn finish_oha(child: Child) -> Value {
    let out = child.wait_with_output().expect("oha ends");
    assert!(
        out.status.success(),
        "oha failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("oha's JSON")
}

/// Requests sent, and those that failed (no answer, or not a 200).
fn failures(report: &Value) -> (u64, u64, String) {
    let codes = report["statusCodeDistribution"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let errors = report["errorDistribution"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let ok = codes.get("200").and_then(Value::as_u64).unwrap_or(0);
    let answered: u64 = codes.values().filter_map(Value::as_u64).sum();
    let errored: u64 = errors.values().filter_map(Value::as_u64).sum();
    let what = errors
        .iter()
        .map(|(k, v)| format!("{v} × {k}"))
        .chain(
            codes
                .iter()
                .filter(|(k, _)| *k != "200")
                .map(|(k, v)| format!("{v} × status {k}")),
        )
        .collect::<Vec<_>>()
        .join("; ");
    (answered + errored, answered - ok + errored, what)
}

/// One restart under a steady load: what oha saw, and how long the restart took.
fn restart_under_load(
    replicas: Option<u32>,
    keepalive: bool,
    rate: u32,
) -> (u64, u64, String, Duration) {
    let port = free_port();
    let stack = Stack::up(&api_config(port, replicas));
    let url = format!("http://127.0.0.1:{port}/health");
    // A count, not a duration: oha cuts the requests in flight when a duration
    // ends ("aborted due to deadline"), which are not failures of the stack.
    let total = (rate * 25).to_string();
    let rate = rate.to_string();
    let mut args = vec!["-n", total.as_str(), "-q", rate.as_str(), "-c", "8"];
    if !keepalive {
        args.push("--disable-keepalive");
    }
    let load = start_oha(&url, &args);
    std::thread::sleep(Duration::from_secs(3));
    let took = stack.run(&["restart", "api"]);
    let report = finish_oha(load);
    let (sent, failed, what) = failures(&report);
    (sent, failed, what, took)
}

/// Through the balancer and straight to its one replica, alternating, `rounds`
/// rounds of `oha ARGS` each: requests/s and p99 (medians).
fn overhead(what: &str, config: &str, args: &[&str], rounds: u32) {
    let port: u16 = config
        .lines()
        .find_map(|l| l.strip_prefix("port = "))
        .and_then(|p| p.trim().parse().ok())
        .expect("a port in the config");
    let stack = Stack::up(config);
    wait_for("the replica", TIMEOUT, || {
        stack.entry("api#0")["state"] == "ready"
    });
    let direct = stack.entry("api#0")["port"].as_u64().expect("a port") as u16;
    let mut rows: Vec<(&str, Vec<f64>, Vec<f64>)> = vec![
        ("through the balancer", vec![], vec![]),
        ("straight to the replica", vec![], vec![]),
    ];
    for _ in 0..rounds {
        for (i, p) in [port, direct].into_iter().enumerate() {
            let url = format!("http://127.0.0.1:{p}/health");
            let r = finish_oha(start_oha(&url, args));
            rows[i]
                .1
                .push(r["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0));
            rows[i]
                .2
                .push(r["latencyPercentiles"]["p99"].as_f64().unwrap_or(0.0) * 1000.0);
        }
    }
    let med = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    println!(
        "\n{what}: oha {} ({rounds} rounds each, alternating)",
        args.join(" ")
    );
    println!("| | requests/s (median) | p99 (median) | rounds (requests/s; p99 ms) |");
    println!("|---|---:|---:|---|");
    for (row, rps, p99) in &rows {
        let each: Vec<String> = rps
            .iter()
            .zip(p99)
            .map(|(r, p)| format!("{r:.0}; {p:.2}"))
            .collect();
        println!(
            "| {row} | {:.0} | {:.2} ms | {} |",
            med(rps),
            med(p99),
            each.join(" / ")
        );
    }
    let (b, d) = (med(&rows[0].1), med(&rows[1].1));
    println!(
        "balancer: {:.0} % of the direct throughput, {:+.2} ms at p99",
        b / d * 100.0,
        med(&rows[0].2) - med(&rows[1].2)
    );
}

fn rss_kib(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn memory_per_thousand() {
    let port = free_port();
    let stack = Stack::up(&holder_config(port));
    let pid = stack.instance_pid();
    // Warm: one connection through, then settle.
    drop(TcpStream::connect(("127.0.0.1", port)));
    std::thread::sleep(Duration::from_secs(1));
    let before = rss_kib(pid);
    let mut held = Vec::new();
    for _ in 0..1000 {
        held.push(TcpStream::connect(("127.0.0.1", port)).expect("a connection"));
    }
    wait_for("1000 connections in flight", TIMEOUT, || {
        stack.entry("api")["balancer"]["active"] == 1000
    });
    std::thread::sleep(Duration::from_secs(1));
    let with = rss_kib(pid);
    drop(held);
    wait_for("no connection in flight", TIMEOUT, || {
        stack.entry("api")["balancer"]["active"] == 0
    });
    std::thread::sleep(Duration::from_secs(1));
    let after = rss_kib(pid);
    println!(
        "\nmemory: instance RSS {before} KiB idle, {with} KiB with 1000 connections open \
         ({} KiB per 1000), {after} KiB once they closed",
        with.saturating_sub(before)
    );
}

fn main() {
    let rate: u32 = env_or("RATE", 300);
    let rounds: u32 = env_or("ROUNDS", 3);
    let secs: u32 = env_or("SECS", 10);
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!("| restart under {rate} requests/s (oha -q {rate} -c 8 -n {}) | keep-alive | sent | failed | restart took | what failed |", rate * 25);
    println!("|---|---|---:|---:|---:|---|");
    for (what, replicas) in [
        ("3 replicas, rolling", Some(3)),
        ("1 instance, no balancer", None),
    ] {
        for keepalive in [true, false] {
            let (sent, failed, errs, took) = restart_under_load(replicas, keepalive, rate);
            println!(
                "| {what} | {} | {sent} | {failed} | {} ms | {errs} |",
                if keepalive { "yes" } else { "no" },
                took.as_millis()
            );
        }
    }
    let z = format!("{secs}s");
    let port = free_port();
    let demo = api_config(port, Some(1)).replace(" --startup-delay 500", " --no-worker");
    overhead(
        "demo-api (actix-web), full speed",
        &demo,
        &["-z", &z, "-c", "50"],
        rounds,
    );
    overhead(
        "demo-api (actix-web), 2000 requests/s",
        &demo,
        &["-z", &z, "-c", "50", "-q", "2000"],
        rounds,
    );
    if let Ok(uvicorn) = std::env::var("UVICORN") {
        let fastapi = fastapi_config(free_port(), &uvicorn);
        overhead(
            "FastAPI on uvicorn, full speed",
            &fastapi,
            &["-z", &z, "-c", "50"],
            rounds,
        );
    } else {
        println!("\n(FastAPI row skipped: set UVICORN to a uvicorn with fastapi installed)");
    }
    memory_per_thousand();
}
