//! `ringmaster kill-port`: a holder that is not allowed is refused with exit 3 and
//! stays alive (nothing touched, also with several holders); `--dry-run` touches
//! nothing; `--allow NAME` stops every holder's tree (a shared socket: both pids)
//! and frees the port; by default the project's own tagged processes are allowed.
#![cfg(unix)]

mod cli_support;

use cli_support::*;
use ringmaster_tests::{free_port, kill_pid, pid_alive, port_answers};

#[test]
fn a_foreign_holder_is_refused_with_exit_3_and_lives() {
    let p = Project::new();
    let port = free_port();
    let holder = foreign_holder(&p.guard, port, &[]);
    let out = p
        .rm()
        .args(["kill-port", &port.to_string()])
        .output()
        .expect("kill-port");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("pid {}", holder)),
        "names the pid: {err}"
    );
    assert!(err.contains("fake-service"), "names the process: {err}");
    assert!(err.contains("nothing was touched"), "{err}");
    assert!(pid_alive(holder), "the refused holder lives");
    assert!(port_answers(port));

    // Allowing another name does not allow this one.
    p.rm()
        .args(["kill-port", &port.to_string(), "--allow", "postgres"])
        .assert()
        .code(3);
    assert!(pid_alive(holder));
}

#[test]
fn dry_run_names_the_holders_and_touches_nothing() {
    let p = Project::new();
    let port = free_port();
    let holder = foreign_holder(&p.guard, port, &[]);
    let out = p
        .rm()
        .args([
            "kill-port",
            &port.to_string(),
            "--allow",
            "fake-service",
            "--dry-run",
        ])
        .output()
        .expect("kill-port --dry-run");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains(&holder.to_string()), "{stdout}");
    assert!(pid_alive(holder));
    assert!(port_answers(port));
}

#[test]
fn allowed_holders_are_stopped_with_their_trees_and_the_port_is_freed() {
    let p = Project::new();
    let port = free_port();
    // A shared socket (two pids hold the port) plus an idle child.
    let holder = foreign_holder(&p.guard, port, &["--share", "--children", "1"]);
    ringmaster_tests::wait_for("both holders", LONG, || holders(port).len() >= 2);
    let all = holders(port);
    for &pid in &all {
        p.guard.add(pid);
    }
    let out = p
        .rm()
        .args([
            "kill-port",
            &port.to_string(),
            "--allow",
            "fake-service",
            "--grace",
            "3s",
        ])
        .output()
        .expect("kill-port --allow");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("free"), "{stdout}");
    assert!(!port_answers(port));
    assert!(holders(port).is_empty());
    for pid in all.iter().copied().chain([holder]) {
        wait_gone(pid);
    }
    // Nothing holds it any more: a second run says so and exits 0.
    let again = p
        .rm()
        .args(["kill-port", &port.to_string()])
        .output()
        .expect("kill-port again");
    assert_eq!(again.status.code(), Some(0));
    assert!(text(&again.stdout).contains("is free"));
}

#[test]
fn the_projects_own_tagged_processes_are_allowed_by_default() {
    let (api, web) = (free_port(), free_port());
    let p = Project::with_config(&two_services(api, web));
    let instance = p.up_detached();
    p.guard_tagged();
    // The manager dies; its service keeps the port, tagged with this project.
    kill_pid(instance);
    wait_gone(instance);
    assert!(port_answers(web));
    let out = p
        .rm()
        .args(["kill-port", &web.to_string()])
        .output()
        .expect("kill-port");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    wait_port_free(web);
    // From another folder (another project) the same processes are foreign.
    let other = Project::new();
    let out = other
        .rm()
        .args(["kill-port", &api.to_string()])
        .output()
        .expect("kill-port from elsewhere");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(port_answers(api));
    p.rm().arg("down").assert().code(0);
    wait_port_free(api);
}
