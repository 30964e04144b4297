//! The plugin example (`examples/custom_service.rs`): a TCP-forwarding `gateway`
//! actor, gated between the demo API and the demo frontend, carries the frontend's
//! requests to the API, and is stopped in the cascade with the port left free.
#![cfg(unix)]

mod example_support;

use std::process::Command;
use std::time::Duration;

use example_support::{example_bin, port_free, run, workspace_root};

#[test]
fn gateway_plugin_is_gated_forwards_and_stops() {
    let bin_dir = example_bin("demo-api")
        .parent()
        .expect("the demo programs live in a folder")
        .to_path_buf();
    let (code, out, err) = run(
        Command::new(example_bin("examples/custom_service"))
            .current_dir(workspace_root())
            .env("DEMO_BIN_DIR", &bin_dir),
        Duration::from_secs(120),
    );
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");

    let ports: Vec<u16> = out
        .lines()
        .find_map(|l| l.strip_prefix("ports: "))
        .expect("the example prints its ports")
        .split(", ")
        .filter_map(|p| p.rsplit(' ').next()?.parse().ok())
        .collect();
    assert_eq!(ports.len(), 3, "api, gateway and frontend ports: {out}");

    let pos = |needle: &str| {
        out.find(needle)
            .unwrap_or_else(|| panic!("`{needle}` in the output:\n{out}"))
    };
    // Gating: api ready → gateway starts → gateway ready → frontend spawns.
    assert!(pos("[event] api: Ready") < pos("gateway: forwarding"));
    assert!(pos("[event] gateway: Ready") < pos("[event] frontend: Spawned"));
    // The frontend's data came through the gateway.
    assert!(out.contains("shows the API's data (through the gateway): true"));
    assert!(out.contains("gateway: connection #"));
    // The cascade: frontend, then the gateway, then the API.
    assert!(pos("[event] frontend: stopped") < pos("[event] gateway: stopped"));
    assert!(pos("[event] gateway: stopped") < pos("[event] api: stopped"));
    assert!(out.contains("shutdown clean: true"));
    for port in ports {
        assert!(port_free(port), "port {port} is free after the example");
    }
}
