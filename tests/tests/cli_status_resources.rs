//! What each service costs in `status`: resident memory, CPU time and CPU % over
//! all its live processes, checked against what the processes really do — one
//! holds 64 MiB it wrote to, one keeps a core busy, one idles, one has
//! completed — in `status --json` and in the table's `CPU` and `MEM` columns.
#![cfg(unix)]

mod cli_support;

use cli_support::*;
use ringmaster_tests::wait_for;
use serde_json::Value;

const HOLD_MIB: u64 = 64;

fn find<'a>(status: &'a [Value], name: &str) -> &'a Value {
    status
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {status:?}"))
}

#[test]
fn status_shows_the_memory_and_cpu_of_each_service() {
    let fake = ringmaster_tests::fake_service();
    let fake = fake.display();
    let p = Project::with_config(&format!(
        r#"[services.hold]
command = "{fake} --hold-mib {HOLD_MIB}"

[services.spin]
command = "{fake} --spin"

[services.idle]
command = "{fake} --children 1"

[services.once]
command = "{fake} --exit-after 10"
restart = {{ policy = "never" }}
"#
    ));
    p.up_detached();
    p.wait_ready(&["hold", "spin", "idle"]);
    p.guard_tagged();

    // Memory: at least what the service wrote to (the shell and the fake-service's
    // own pages come on top).
    let mut last = Vec::new();
    wait_for("hold's rss_bytes to reach what it holds", LONG, || {
        last = p.status().unwrap_or_default();
        last.iter().any(|s| {
            s["name"] == "hold"
                && s["rss_bytes"]
                    .as_u64()
                    .is_some_and(|b| b >= HOLD_MIB * 1024 * 1024)
        })
    });
    // The others have some, but not that much.
    let idle = find(&last, "idle");
    let idle_rss = idle["rss_bytes"].as_u64().expect("idle's rss_bytes");
    assert!(idle_rss > 0 && idle_rss < HOLD_MIB * 1024 * 1024, "{idle}");

    // CPU: over the time since the previous status, the spinner uses about a core
    // (more than a fifth of one, even on a loaded machine), the idle service less.
    wait_for("spin's cpu_percent above 20 and above idle's", LONG, || {
        last = p.status().unwrap_or_default();
        let cpu = |name| {
            last.iter()
                .find(|s| s["name"] == name)
                .and_then(|s| s["cpu_percent"].as_f64())
        };
        matches!((cpu("spin"), cpu("idle")), (Some(s), Some(i)) if s > 20.0 && i < s)
    });
    let spin = find(&last, "spin");
    assert!(
        spin["cpu_seconds"].as_f64().is_some_and(|s| s > 0.0),
        "accumulated CPU time: {spin}"
    );
    let idle = find(&last, "idle");
    assert!(
        idle["cpu_seconds"].as_f64().is_some_and(|s| s >= 0.0),
        "{idle}"
    );
    // Each figure is over all members: idle is the fake-service and its child.
    assert!(
        idle["members"].as_array().is_some_and(|m| m.len() >= 2),
        "{idle}"
    );

    // What does not run shows none of them.
    let once = find(&last, "once");
    assert_ne!(once["state"], "ready", "{once}");
    for field in ["cpu_percent", "rss_bytes", "cpu_seconds"] {
        assert!(once.get(field).is_none(), "no `{field}` in {once}");
    }

    // The table: CPU and MEM after PORT; `-` for what does not run.
    let out = p.rm().arg("status").output().expect("status");
    assert_eq!(out.status.code(), Some(0));
    let table = text(&out.stdout);
    let header = table.lines().next().expect("a header");
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        columns,
        ["SERVICE", "STATE", "PID", "PORT", "CPU", "MEM", "HEALTH", "RESTARTS", "UPTIME"],
        "{table}"
    );
    let (cpu_at, mem_at) = (
        header.find("CPU").expect("CPU"),
        header.find("MEM").expect("MEM"),
    );
    let cell = |name: &str, at: usize| -> String {
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("a row for {name} in\n{table}"));
        row[at..]
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string()
    };
    let mem = cell("hold", mem_at);
    let mib: f64 = match mem.strip_suffix('M') {
        Some(m) => m.parse().expect("a number of MiB"),
        None => panic!("hold's memory in MiB, got {mem:?} in\n{table}"),
    };
    assert!(mib >= HOLD_MIB as f64, "{table}");
    let spin_cpu = cell("spin", cpu_at);
    assert!(
        spin_cpu
            .strip_suffix('%')
            .is_some_and(|c| c.parse::<f64>().is_ok()),
        "{table}"
    );
    assert_eq!(cell("once", cpu_at), "-", "{table}");
    assert_eq!(cell("once", mem_at), "-", "{table}");

    p.rm().arg("down").assert().code(0);
}
