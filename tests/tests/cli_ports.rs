//! `ringmaster ports`: every listener, or those on the given ports, with pid,
//! name, exe and user, as a table or JSON; exit 0 also when nobody listens.
#![cfg(unix)]

mod cli_support;

use cli_support::*;
use ringmaster_tests::free_port;
use serde_json::Value;

#[test]
fn ports_json_lists_the_holder_of_a_port() {
    let p = Project::new();
    let port = free_port();
    let holder = foreign_holder(&p.guard, port, &[]);
    let out = p
        .rm()
        .args(["ports", &port.to_string(), "--json"])
        .output()
        .expect("ports --json");
    assert_eq!(out.status.code(), Some(0));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON array");
    assert!(!rows.is_empty(), "the holder is listed");
    let row = rows
        .iter()
        .find(|r| r["pid"] == holder)
        .unwrap_or_else(|| panic!("pid {} among {rows:?}", holder));
    assert_eq!(row["port"], port);
    assert_eq!(row["addr"], "127.0.0.1");
    assert_eq!(row["name"], "fake-service");
    assert!(
        row["exe"]
            .as_str()
            .is_some_and(|e| e.ends_with("fake-service")),
        "{row}"
    );
    assert!(row["user"].is_string(), "{row}");
    assert!(rows.iter().all(|r| r["port"] == port));
}

#[test]
fn ports_table_and_all_listeners() {
    let p = Project::new();
    let port = free_port();
    let holder = foreign_holder(&p.guard, port, &["--share"]);
    ringmaster_tests::wait_for("both holders", LONG, || holders(port).len() >= 2);
    for pid in holders(port) {
        p.guard.add(pid);
    }
    let out = p
        .rm()
        .args(["ports", &port.to_string()])
        .output()
        .expect("ports");
    let table = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(table.starts_with("PORT"), "{table}");
    assert!(!has_escape(&table), "no escape codes without a terminal");
    for pid in holders(port) {
        assert!(
            table.contains(&pid.to_string()),
            "shared socket: {pid} listed\n{table}"
        );
    }
    // Without ports: every listener, ours among them.
    let all = p.rm().args(["ports", "--json"]).output().expect("ports");
    let rows: Vec<Value> = serde_json::from_slice(&all.stdout).expect("JSON");
    assert!(rows.iter().any(|r| r["pid"] == holder && r["port"] == port));
}

#[test]
fn a_free_port_is_reported_with_exit_0() {
    let p = Project::new();
    let port = free_port();
    let out = p
        .rm()
        .args(["ports", &port.to_string()])
        .output()
        .expect("ports");
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("nobody listens"));
    let json = p
        .rm()
        .args(["ports", &port.to_string(), "--json"])
        .output()
        .expect("ports --json");
    let rows: Vec<Value> = serde_json::from_slice(&json.stdout).expect("JSON");
    assert!(rows.is_empty());
}
