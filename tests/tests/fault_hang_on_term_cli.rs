//! Hangs on TERM, through the real binary: six services that all hang on TERM at
//! once (each with a child that hangs too) are stopped by `down` within the
//! shutdown deadline, and the OS shows none of their processes and every port
//! free. (The same fault in the library: `fault_hang_on_term.rs`. A separate test binary: an orchestrator in the test process is a child
//! subreaper that reaps adopted children, which must not race with the waits on
//! the `ringmaster` commands run here.)
#![cfg(unix)]

mod cli_support;

use std::time::{Duration, Instant};

use ringmaster_tests::{free_port, pid_alive};

#[test]
fn several_hangs_on_term_at_once_keep_the_shutdown_deadline() {
    use cli_support::{holders, Project};
    let fake = ringmaster_tests::fake_service();
    let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
    let mut toml = String::from("[settings]\nshutdown_timeout = \"2s\"\n");
    for (i, port) in ports.iter().enumerate() {
        toml.push_str(&format!(
            "\n[services.hang{i}]\ncommand = \"{} --listen {port} --ignore-term --children 1 --children-ignore-term\"\nport = {port}\nallow = [\"fake-service\"]\nhealth = {{ tcp = {port} }}\nstop = {{ timeout = \"60s\" }}\n",
            fake.display()
        ));
    }
    let p = Project::with_config(&toml);
    let instance = p.up_detached();
    let names: Vec<String> = (0..6).map(|i| format!("hang{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    p.wait_ready(&names);
    let members = p.guard_tagged();
    assert!(
        members.len() >= 12,
        "six roots and six children: {members:?}"
    );

    let started = Instant::now();
    let down = p.rm().arg("down").output().expect("down");
    let took = started.elapsed();
    let out = cli_support::text(&down.stdout);
    assert_eq!(
        down.status.code(),
        Some(0),
        "{out}{}",
        cli_support::text(&down.stderr)
    );
    // The 2 s deadline plus the kill's own short wait, not 6 × 60 s.
    assert!(took < Duration::from_secs(8), "down took {took:?}: {out}");
    for m in &members {
        assert!(!pid_alive(*m), "pid {m} survived the shutdown");
    }
    for port in &ports {
        assert!(holders(*port).is_empty(), "port {port} is still held");
    }
    cli_support::wait_gone(instance);
    assert!(p.tagged_pids().is_empty());
}
