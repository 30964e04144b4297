//! `ringmaster status`: the table (snapshot, with pids, ports and uptimes
//! normalized), the JSON form with every documented field, and exit 1 when no
//! instance runs.
#![cfg(unix)]

mod cli_support;

use cli_support::*;
use ringmaster_tests::free_port;

/// Replaces the volatile cells (pids, ports, CPU, memory, uptimes) with placeholders and
/// collapses the column padding, after checking that every row's cells start
/// where the header's columns start.
fn normalize(table: &str, replacements: &[(String, &str)]) -> String {
    let mut lines = table.lines();
    let header = lines.next().expect("a header line");
    let starts: Vec<usize> = header
        .match_indices(|c: char| c.is_ascii_uppercase())
        .map(|(i, _)| i)
        .filter(|&i| i == 0 || header.as_bytes()[i - 1] == b' ')
        .collect();
    for line in table.lines().skip(1) {
        for &s in starts.iter().filter(|&&s| s > 0) {
            assert!(
                line.len() <= s || (line.as_bytes()[s] != b' ' && line.as_bytes()[s - 1] == b' '),
                "cell not aligned with its column at {s}:\n{table}"
            );
        }
    }
    let mut out = String::new();
    for line in table.lines() {
        let mut cells: Vec<String> = line
            .split("  ")
            .filter(|c| !c.is_empty())
            .map(|c| c.trim().to_string())
            .collect();
        for cell in cells.iter_mut() {
            for (from, to) in replacements {
                if cell == from {
                    *cell = to.to_string();
                }
            }
            let uptime = cell.ends_with("ms")
                || cell.ends_with('s') && cell[..cell.len() - 1].parse::<f64>().is_ok();
            if uptime {
                *cell = "<uptime>".to_string();
            }
            let number = |c: &str| !c.is_empty() && c.parse::<f64>().is_ok();
            if cell.strip_suffix('%').is_some_and(number) {
                *cell = "<cpu>".to_string();
            }
            let size = cell.strip_suffix(['B', 'K', 'M', 'G']).is_some_and(number);
            if size {
                *cell = "<mem>".to_string();
            }
        }
        out.push_str(&cells.join("  "));
        out.push('\n');
    }
    out
}

#[test]
fn status_table_and_json_of_a_running_stack() {
    let (api, web) = (free_port(), free_port());
    let p = Project::with_config(&two_services(api, web));
    p.rm().arg("status").assert().code(1);
    let err = text(&p.rm().arg("status").output().expect("status").stderr);
    assert!(err.contains("no ringmaster is running"), "{err}");

    p.up_detached();
    let status = p.wait_ready(&["api", "web"]);
    p.guard_tagged();

    // JSON: every documented field, states from the documented set.
    for s in &status {
        for field in [
            "name",
            "state",
            "reason",
            "pid",
            "port",
            "restarts",
            "last_exit",
            "since_ms",
            "health",
            "health_latency_ms",
            "plugin",
            "cpu_percent",
            "rss_bytes",
            "cpu_seconds",
        ] {
            assert!(s.get(field).is_some(), "`{field}` in {s}");
        }
        assert_eq!(s["state"], "ready");
        let pid = s["pid"].as_u64().expect("a pid") as u32;
        assert!(ringmaster_tests::pid_alive(pid));
    }
    let api_status = status.iter().find(|s| s["name"] == "api").expect("api");
    assert_eq!(api_status["port"], api);

    // The table.
    let out = p.rm().arg("status").output().expect("status");
    assert_eq!(out.status.code(), Some(0));
    let table = text(&out.stdout);
    assert!(!has_escape(&table));
    let mut replacements = vec![
        (api.to_string(), "<api-port>"),
        (web.to_string(), "<web-port>"),
    ];
    for s in &status {
        let pid = s["pid"].as_u64().expect("pid").to_string();
        replacements.push((
            pid,
            if s["name"] == "api" {
                "<api-pid>"
            } else {
                "<web-pid>"
            },
        ));
    }
    insta::assert_snapshot!("status_table", normalize(&table, &replacements));

    p.rm().arg("down").assert().code(0);
    wait_port_free(api);
    wait_port_free(web);
    p.rm().args(["status", "--json"]).assert().code(1);
}
