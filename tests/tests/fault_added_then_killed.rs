//! A service added at runtime is in no file. When the instance that ran it is
//! killed with SIGKILL, its processes live on carrying the project's tag under a
//! service name no configuration knows: `down` (no instance running) stops them,
//! and so does the next `up`, before anything of the new run could meet them.
#![cfg(unix)]

mod cli_support;

use cli_support::*;
use ringmaster_tests::{fake_service, free_port, kill_pid, pid_alive, wait_for};

fn project(base: u16) -> Project {
    Project::with_config(&format!(
        "[services.base]\ncommand = \"{} --listen {base}\"\nport = {base}\n\
         health = {{ tcp = {base} }}\nstop = {{ timeout = \"5s\" }}\n",
        fake_service().display()
    ))
}

/// `up -d`, `add extra` (a server with a child that ignores SIGTERM), then SIGKILL
/// to the instance; returns extra's processes, still alive.
fn added_then_killed(p: &Project, extra: u16) -> Vec<u32> {
    let instance = p.up_detached();
    p.wait_ready(&["base"]);
    let out = p
        .rm()
        .args(["add", "extra", "--port", &extra.to_string(), "--command"])
        .arg(format!(
            "{} --listen {extra} --children 1 --children-ignore-term",
            fake_service().display()
        ))
        .args(["--json", &format!("{{\"health\": {{\"tcp\": {extra}}}}}")])
        .output()
        .expect("add");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    p.guard_tagged();
    let project = ringmaster_os::project_id(&p.state_dir());
    let extra_pids: Vec<u32> = ringmaster_os::process::snapshot()
        .expect("snapshot")
        .into_iter()
        .filter(|q| {
            !q.zombie
                && q.tag
                    .as_ref()
                    .is_some_and(|t| t.project == project && t.service == "extra")
        })
        .map(|q| q.pid)
        .collect();
    assert!(extra_pids.len() >= 2, "extra and its child: {extra_pids:?}");
    kill_pid(instance);
    // Its lock is free only once its last thread is gone: the main thread shows
    // as a zombie a moment before.
    wait_for("the instance gone, its lock free", LONG, || {
        !pid_alive(instance) && p.instance_pid().is_none()
    });
    for pid in &extra_pids {
        assert!(
            pid_alive(*pid),
            "extra's {pid} outlives the killed instance"
        );
    }
    extra_pids
}

#[test]
fn down_stops_what_a_killed_instance_ran_of_a_service_added_at_runtime() {
    let (base, extra) = (free_port(), free_port());
    let p = project(base);
    let left = added_then_killed(&p, extra);
    let out = p.rm().arg("down").output().expect("down");
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}{}", text(&out.stderr));
    assert!(
        said.contains("extra (in no configuration): stopped"),
        "{said}"
    );
    for pid in left {
        assert!(!pid_alive(pid), "extra's {pid} was stopped:\n{said}");
    }
    wait_port_free(extra);
    wait_port_free(base);
}

#[test]
fn the_next_up_stops_what_a_killed_instance_ran_of_a_service_added_at_runtime() {
    let (base, extra) = (free_port(), free_port());
    let p = project(base);
    let left = added_then_killed(&p, extra);
    p.up_detached();
    p.wait_ready(&["base"]);
    wait_for("extra's processes stopped by the new up", LONG, || {
        left.iter().all(|pid| !pid_alive(*pid))
    });
    wait_port_free(extra);
    p.rm().arg("down").assert().code(0);
    wait_port_free(base);
}
