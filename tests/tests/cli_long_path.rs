//! A project folder so deep that `<state_dir>/control.sock` does not fit in a Unix
//! socket address (108 bytes on Linux): `up -d`, `status`, `down` still work, the
//! socket lives in this user's short folder meanwhile, and `down` leaves no
//! process, a free port and no socket file behind.
#![cfg(unix)]

mod cli_support;

use cli_support::*;
use ringmaster_tests::{free_port, pid_alive};

#[test]
fn a_state_dir_too_deep_for_a_socket_address_still_works() {
    let outer = Project::new();
    let deep = outer
        .path()
        .join("a-project-folder-with-a-rather-long-name")
        .join("and-another-long-folder-name-below-it")
        .join("dashboard");
    std::fs::create_dir_all(&deep).expect("deep folders");
    let usual = deep.join(".ringmaster").join("control.sock");
    assert!(
        usual.as_os_str().len() > 108,
        "the test needs a path longer than a socket address: {}",
        usual.display()
    );

    let port = free_port();
    // The project is the deep folder; `outer` only owns (and removes) it.
    let p = Project {
        dir: tempfile::TempDir::new_in(&deep).expect("a temp dir in the deep folder"),
        guard: ringmaster_tests::PidGuard::new(),
    };
    let fake = ringmaster_tests::fake_service();
    p.write(
        "ringmaster.toml",
        &format!(
            "[services.api]\ncommand = \"{} --listen {port}\"\nport = {port}\nhealth = {{ tcp = {port} }}\n",
            fake.display()
        ),
    );

    let instance = p.up_detached();
    let status = p.wait_ready(&["api"]);
    let members = p.guard_tagged();
    assert!(!members.is_empty(), "the service runs: {status:?}");
    assert!(
        !p.state_dir().join("control.sock").exists(),
        "no socket where it cannot be bound"
    );

    let down = p.rm().arg("down").output().expect("run down");
    assert_eq!(
        down.status.code(),
        Some(0),
        "down: {}{}",
        text(&down.stdout),
        text(&down.stderr)
    );
    wait_gone(instance);
    for pid in members {
        assert!(!pid_alive(pid), "pid {pid} is gone after down");
    }
    wait_port_free(port);
    // The socket went with the instance: `status` finds nobody.
    let status = p.rm().arg("status").output().expect("run status");
    assert_eq!(status.status.code(), Some(1), "{}", text(&status.stderr));
}
