//! ringmaster beside the process managers its users would otherwise reach for —
//! supervisord, honcho, circus, PM2, concurrently + wait-on — each running the
//! same real stack, `examples/fastapi-nextjs` (uvicorn `--reload` and `next dev`),
//! on two free loopback ports per run, one tool after another, alternating, the
//! same number of rounds each. Every figure is read from the OS (the ports, GETs,
//! /proc), not from the tools:
//!
//! - **launch → API ready / web ready**: to the first `200` of `GET /health` on the
//!   API port / `GET /` on the web port (each asked every 5 ms; a GET to the web
//!   waits for the first page compile).
//! - **gating**: from the API's first healthy answer to the frontend's first
//!   process (the first process whose command line runs the web command, seen in
//!   /proc every 5 ms); negative when the frontend started before the API could
//!   answer.
//! - **manager RSS and CPU**: the processes of the launched tree (the bench is a
//!   child subreaper, so a daemon such as PM2's stays in it) that are not service
//!   processes; VmRSS summed, utime + stime over 10 s of idle after both are ready.
//! - **stop → all gone**: from the tool's documented stop request to no service
//!   process left and both ports refusing connections; **left after exit**: the
//!   service processes still alive 3 s after the last manager process exited.
//! - **crash**: once ready, SIGKILL of the manager (PM2: its daemon); the service
//!   processes alive 2 s later; the tool launched again: whether both ports answer
//!   from new processes (no survivor among the listeners) within 60 s, how fast,
//!   and how many survivors are still alive after that (not cleaned up).
//!
//! Between runs every process left below the bench is killed by pid.
//!
//! Env: `PEERS_DEBUG=1` prints each run's process tree once ready; `PEERS_ROUNDS` (default 3), `PEERS_TOOLS` (comma-separated subset of
//! ringmaster,supervisord,honcho,circus,pm2,concurrently), `PEERS_CRASH=0` to skip
//! the crash runs, `PEERS_JSON` (default docs/benchmarks/peers.json).
//!
//! Run (Linux): `just bench-peers`, or `scripts/bench-tools.sh &&
//! cargo build --release -p ringmaster-cli && cargo bench -p ringmaster-tests --bench peers`.
#[cfg(target_os = "linux")]
#[path = "peers/procs.rs"]
mod procs;
#[cfg(target_os = "linux")]
#[path = "peers/report.rs"]
mod report;
#[cfg(target_os = "linux")]
#[path = "peers/run.rs"]
mod run;
#[cfg(target_os = "linux")]
#[path = "peers/tools.rs"]
mod tools;

#[cfg(target_os = "linux")]
use serde_json::{json, Value};
#[cfg(target_os = "linux")]
use tools::{Paths, Tool};

#[cfg(target_os = "linux")]
fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[cfg(target_os = "linux")]
fn run_all() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rounds: u32 = env_or("PEERS_ROUNDS", 3);
    let crash = env_or("PEERS_CRASH", 1) != 0;
    let paths = Paths::new();
    let tools: Vec<Tool> = match std::env::var("PEERS_TOOLS") {
        Ok(list) => list
            .split(',')
            .map(|n| Tool::parse(n).unwrap_or_else(|| panic!("unknown tool {n:?}")))
            .collect(),
        Err(_) => tools::ALL.to_vec(),
    };
    for t in &tools {
        assert!(
            t.installed(&paths),
            "{} is not installed: run scripts/bench-tools.sh and \
             cargo build --release -p ringmaster-cli",
            t.name()
        );
    }
    assert!(
        paths.example.join("api/.venv/bin/uvicorn").exists()
            && paths.example.join("web/node_modules").exists(),
        "the example is not prepared: run scripts/bench-tools.sh"
    );
    procs::become_subreaper();
    let machine_before = report::machine(&paths);

    // One untimed start, so that no tool pays for the first `next dev` compile.
    eprintln!("warm-up: {}", tools[0].name());
    if env_or("PEERS_WARMUP", 1) != 0 {
        let _ = run::normal(tools[0], &paths);
    }

    let mut runs: Vec<Value> = Vec::new();
    for round in 1..=rounds {
        for kind in ["normal", "crash"] {
            if kind == "crash" && !crash {
                continue;
            }
            for &tool in &tools {
                eprintln!("round {round}/{rounds}: {} ({kind})", tool.name());
                let mut r = if kind == "normal" {
                    run::normal(tool, &paths)
                } else {
                    run::crash(tool, &paths)
                };
                eprintln!("  {r}");
                if let Some(o) = r.as_object_mut() {
                    o.insert("tool".into(), json!(tool.name()));
                    o.insert("round".into(), json!(round));
                    o.insert("kind".into(), json!(kind));
                    o.insert("gated_by_tool".into(), json!(tool.gates()));
                }
                runs.push(r);
            }
        }
    }
    let versions: serde_json::Map<String, Value> = tools
        .iter()
        .map(|t| (t.name().to_owned(), json!(t.version(&paths))))
        .collect();
    let all = json!({
        "command": "cargo bench -p ringmaster-tests --bench peers",
        "rounds": rounds,
        "poll_ms": run::POLL.as_millis() as u64,
        "idle_window_s": run::IDLE.as_secs(),
        "machine": machine_before,
        "load_after": report::loadavg(),
        "versions": versions,
        "runs": runs,
    });
    println!("{}", report::table(&tools, &all));
    let out = std::env::var("PEERS_JSON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| paths.root.join("docs/benchmarks/peers.json"));
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).expect("the JSON's folder");
    }
    let text = serde_json::to_string_pretty(&all).expect("JSON");
    std::fs::write(&out, text + "\n").expect("the JSON written");
    eprintln!("raw results: {}", out.display());
}

fn main() {
    #[cfg(target_os = "linux")]
    run_all();
}
