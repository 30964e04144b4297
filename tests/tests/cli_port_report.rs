//! The stop report names who holds a service's port once the service's own
//! processes are gone: a process that is not ours (untagged, outside `allow`) is
//! named with pid, name, exe and user, left alone, and `down` exits 1 because the
//! port is not free; an allowed one is stopped and named as such.
#![cfg(unix)]

mod cli_support;

use cli_support::*;
use ringmaster_tests::{fake_service, free_port, pid_alive};

/// `api` owns `port` but does not listen on it (it listens on an ephemeral port),
/// so the port is free at start and whoever takes it later is not the service.
fn config(port: u16, allow: &str) -> String {
    format!(
        "[services.api]\ncommand = \"{} --listen 0\"\nport = {port}\nallow = [\"{allow}\"]\nstop = {{ timeout = \"5s\" }}\n",
        fake_service().display()
    )
}

#[test]
fn a_holder_that_is_not_ours_is_named_and_left_alone() {
    let port = free_port();
    let p = Project::with_config(&config(port, "nothing-of-this-name"));
    p.up_detached();
    p.wait_ready(&["api"]);
    let members = p.guard_tagged();
    let holder = foreign_holder(&p.guard, port, &[]);

    let down = p.rm().arg("down").output().expect("run down");
    let out = text(&down.stdout);
    assert_eq!(down.status.code(), Some(1), "the port is not free: {out}");
    let line = out
        .lines()
        .find(|l| l.contains("port held by"))
        .unwrap_or_else(|| panic!("the report names the holder: {out}"));
    assert!(
        line.contains(&holder.to_string())
            && line.contains("fake-service")
            && line.contains("not ours: left alone"),
        "{line}"
    );
    assert!(pid_alive(holder), "the holder is not ours and lives on");
    for pid in members {
        assert!(!pid_alive(pid), "the service's pid {pid} is gone");
    }
}

#[test]
fn an_allowed_holder_is_stopped_and_named() {
    let port = free_port();
    let p = Project::with_config(&config(port, "fake-service"));
    p.up_detached();
    p.wait_ready(&["api"]);
    let holder = foreign_holder(&p.guard, port, &[]);

    let down = p.rm().arg("down").output().expect("run down");
    let out = text(&down.stdout);
    assert_eq!(down.status.code(), Some(0), "{out}{}", text(&down.stderr));
    assert!(
        out.contains(&format!("port freed by stopping {holder} (fake-service)")),
        "{out}"
    );
    wait_gone(holder);
    wait_port_free(port);
}
