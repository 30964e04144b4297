//! ringmaster killed with SIGKILL mid-run, through the real binary: its services
//! live on holding their ports; `up -d` again stops every process of the killed
//! run (a worker sharing a socket, children, a setsid daemon) and its new
//! processes hold the ports; `down` leaves nothing of either run.
//! (An orchestrator killed in a child process: `fault_manager_killed.rs`. A separate test binary: an orchestrator in the test process is a child
//! subreaper that reaps adopted children, which must not race with the waits on
//! the `ringmaster` commands run here.)
#![cfg(unix)]

mod cli_support;

use ringmaster_tests::{free_port, kill_pid, pid_alive};

#[test]
fn a_sigkilled_ringmaster_then_up_and_down_leave_nothing_of_either_run() {
    use cli_support::{holders, text, two_services, wait_gone, Project};
    let (api, web) = (free_port(), free_port());
    // The two-service stack, with web's children under a setsid daemon.
    let config = two_services(api, web).replace(
        &format!("--listen {web} --http --children 2"),
        &format!("--listen {web} --children 2 --daemon"),
    );
    assert!(config.contains("--daemon"), "{config}");
    let p = Project::with_config(&config);
    let first = p.up_detached();
    p.wait_ready(&["api", "web"]);
    let old = p.guard_tagged();
    assert!(
        old.len() >= 5,
        "root, worker, root, children, daemon: {old:?}"
    );

    kill_pid(first);
    wait_gone(first);
    // The killed run's services live on, holding their ports.
    assert!(old.iter().all(|&m| pid_alive(m)), "{old:?}");
    assert!(!holders(api).is_empty() && !holders(web).is_empty());

    let up = p.rm().args(["up", "-d"]).output().expect("up -d again");
    assert_eq!(
        up.status.code(),
        Some(0),
        "{}{}",
        text(&up.stdout),
        text(&up.stderr)
    );
    let second = p.instance_pid().expect("a new instance");
    p.guard.add(second);
    assert_ne!(first, second);
    p.wait_ready(&["api", "web"]);
    let new = p.guard_tagged();
    for m in &old {
        assert!(!pid_alive(*m), "pid {m} of the killed run is still alive");
        assert!(!new.contains(m));
    }
    for port in [api, web] {
        let h = holders(port);
        assert!(
            !h.is_empty() && h.iter().all(|pid| new.contains(pid)),
            "port {port}: {h:?} vs {new:?}"
        );
    }

    let down = p.rm().arg("down").output().expect("down");
    assert_eq!(down.status.code(), Some(0), "{}", text(&down.stdout));
    wait_gone(second);
    for m in old.iter().chain(&new) {
        assert!(!pid_alive(*m), "pid {m} outlived down");
    }
    assert!(holders(api).is_empty() && holders(web).is_empty());
    assert!(p.tagged_pids().is_empty());
    assert!(p.instance_pid().is_none());
}
