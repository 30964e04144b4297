//! What the bench prints and records: the machine, and the table of medians with
//! ringmaster's ratio to each peer.
use std::fmt::Write;
use std::process::Command;

use serde_json::{json, Value};

use super::tools::{Paths, Tool};

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn output(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn package_version(file: std::path::PathBuf) -> String {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["version"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The machine and the stack's own versions.
pub fn machine(paths: &Paths) -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let procs = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .count()
        })
        .unwrap_or(0);
    let py = paths.example.join("api/.venv/bin/python");
    let py_pkg = |name: &str| {
        output(
            &py.display().to_string(),
            &[
                "-c",
                &format!("import importlib.metadata as m; print(m.version('{name}'))"),
            ],
        )
    };
    json!({
        "date": output("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        "commit": output("git", &["-C", &paths.root.display().to_string(), "rev-parse", "--short", "HEAD"]),
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        "processes": procs,
        "load_before": loadavg(),
        "python": output(&py.display().to_string(), &["--version"]),
        "node": output("node", &["--version"]),
        "npm": output("npm", &["--version"]),
        "next": package_version(paths.example.join("web/node_modules/next/package.json")),
        "fastapi": py_pkg("fastapi"),
        "uvicorn": py_pkg("uvicorn"),
    })
}

/// The values of `key` over the runs of `tool` of `kind`, one per round (None
/// where the run had none: not reached, or not measured).
fn values(all: &Value, tool: Tool, kind: &str, key: &str) -> Vec<Option<f64>> {
    all["runs"]
        .as_array()
        .map(|runs| {
            runs.iter()
                .filter(|r| r["tool"] == tool.name() && r["kind"] == kind)
                .map(|r| r[key].as_f64())
                .collect()
        })
        .unwrap_or_default()
}

/// The median of the values present (the lower middle for an even count).
pub fn median(v: &[Option<f64>]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().flatten().copied().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[(v.len() - 1) / 2])
}

/// A median cell: `scale`d and formatted, with how many runs had no value.
fn cell(v: &[Option<f64>], fmt: impl Fn(f64) -> String, none: &str) -> String {
    let missing = v.iter().filter(|x| x.is_none()).count();
    match median(v) {
        None => none.to_owned(),
        Some(m) if missing > 0 => format!("{} ({missing}/{} {none})", fmt(m), v.len()),
        Some(m) => fmt(m),
    }
}

/// Each round's count, e.g. `2, 2, 2`.
fn each(v: &[Option<f64>]) -> String {
    v.iter()
        .map(|x| x.map_or("–".to_owned(), |x| format!("{x:.0}")))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn table(tools: &[Tool], all: &Value) -> String {
    let mut t = String::new();
    let secs = |x: f64| format!("{:.2} s", x / 1000.0);
    let millis = |x: f64| format!("{x:.0} ms");
    let mib = |x: f64| format!("{:.1} MiB", x / 1024.0);
    let _ = writeln!(
        t,
        "\n| tool | launch → API ready | launch → web ready | gating | manager RSS | \
         manager CPU, 10 s idle | stop → all gone | left 3 s after exit |"
    );
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---:|---|");
    for &tool in tools {
        let v = |k: &str| values(all, tool, "normal", k);
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            tool.name(),
            cell(&v("api_ready_ms"), secs, "not ready"),
            cell(&v("web_ready_ms"), secs, "not ready"),
            cell(&v("gating_ms"), |x| format!("{x:+.0} ms"), "n/a"),
            cell(&v("manager_rss_kib"), mib, "n/a"),
            cell(&v("manager_cpu_ms"), millis, "n/a"),
            cell(&v("stop_all_gone_ms"), millis, "not in 60 s"),
            each(&v("left_3s_after_exit")),
        );
    }
    let _ = writeln!(
        t,
        "\n| tool (crash: SIGKILL of the manager, then launched again) | survived the kill | \
         ready again on the same ports | again in | survivors left after the relaunch |"
    );
    let _ = writeln!(t, "|---|---|---|---:|---|");
    for &tool in tools {
        let v = |k: &str| values(all, tool, "crash", k);
        let again = v("ready_again_ms");
        if again.is_empty() {
            continue;
        }
        let _ = writeln!(
            t,
            "| {} | {} | {} of {} | {} | {} |",
            tool.name(),
            each(&v("survived_kill")),
            again.iter().flatten().count(),
            again.len(),
            median(&again).map_or("–".to_owned(), secs),
            each(&v("survivors_left_after_relaunch")),
        );
    }
    let Some(rm) = tools.iter().find(|t| **t == Tool::Ringmaster) else {
        return t;
    };
    let _ = writeln!(
        t,
        "\n| ringmaster ÷ peer (medians) | API ready | web ready | manager RSS | \
         manager CPU | stop → all gone |"
    );
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|");
    let keys = [
        "api_ready_ms",
        "web_ready_ms",
        "manager_rss_kib",
        "manager_cpu_ms",
        "stop_all_gone_ms",
    ];
    for &peer in tools.iter().filter(|t| *t != rm) {
        let cells: Vec<String> = keys
            .iter()
            .map(|k| {
                let ours = median(&values(all, *rm, "normal", k));
                let theirs = median(&values(all, peer, "normal", k));
                match (ours, theirs) {
                    (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
                    _ => "–".to_owned(),
                }
            })
            .collect();
        let _ = writeln!(t, "| {} | {} |", peer.name(), cells.join(" | "));
    }
    t
}
