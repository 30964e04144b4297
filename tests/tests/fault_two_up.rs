//! Two `up` at once on the same project: exactly one instance runs; the other `up`
//! exits 1 naming the running instance's pid; the OS shows one set of service
//! processes (one root per service, the port held by the winner's process only),
//! and `down` leaves nothing. Run a few rounds, so that several orders of the race
//! are seen (both detached; a detached and a foreground one).
#![cfg(unix)]

mod cli_support;

use std::process::{Command, Stdio};

use cli_support::*;
use ringmaster_tests::{bin_path, fake_service, free_port, pid_alive, PidGuard};

fn config(port: u16) -> String {
    format!(
        r#"[services.api]
command = "{} --listen {port} --http --children 1"
port = {port}
allow = ["fake-service"]
health = {{ http = "http://127.0.0.1:{port}/" }}
stop = {{ timeout = "5s" }}
"#,
        fake_service().display()
    )
}

/// `ringmaster up ARGS` in `p`'s folder, spawned (not waited for), output piped.
fn spawn_up(p: &Project, args: &[&str], guard: &PidGuard) -> std::process::Child {
    let child = Command::new(bin_path("ringmaster"))
        .arg("up")
        .args(args)
        .current_dir(p.path())
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringmaster up");
    guard.add(child.id());
    child
}

#[test]
fn two_ups_at_once_start_one_instance_and_the_other_names_it() {
    let port = free_port();
    let p = Project::with_config(&config(port));
    for round in 0..3 {
        let guard = PidGuard::new();
        // Rounds 0 and 1: both detached; round 2: a foreground up against a detached one.
        let second_args: &[&str] = if round == 2 { &[] } else { &["-d"] };
        let a = spawn_up(&p, &["-d"], &guard);
        let b = spawn_up(&p, second_args, &guard);
        let a = a.wait_with_output().expect("first up");
        // A foreground winner never exits by itself: wait for one instance instead.
        let b_pid = b.id();
        let mut b = Some(b);
        let mut b_out = None;
        ringmaster_tests::wait_for("the second up to exit or to be the instance", LONG, || {
            if let Some(child) = b.as_mut() {
                if child.try_wait().expect("try_wait").is_some() {
                    b_out = Some(b.take().expect("child").wait_with_output().expect("output"));
                    return true;
                }
            }
            p.instance_pid() == Some(b_pid) && a.status.code() == Some(1)
        });
        let instance = p.instance_pid().expect("one instance runs");
        p.guard.add(instance);
        let ready = p.wait_ready(&["api"]);
        let tagged = p.guard_tagged();

        let codes = (a.status.code(), b_out.as_ref().map(|o| o.status.code()));
        let loser = match codes {
            // a won; b (detached or foreground) was refused.
            (Some(0), Some(Some(1))) => b_out.as_ref().expect("b exited"),
            // b won: detached (exit 0) or foreground (still running as the instance).
            (Some(1), Some(Some(0))) | (Some(1), None) => &a,
            other => panic!(
                "round {round}: exactly one up may win: {other:?}\n{}{}\n{:?}",
                text(&a.stdout),
                text(&a.stderr),
                b_out.as_ref().map(|o| (text(&o.stdout), text(&o.stderr)))
            ),
        };
        let said = format!("{}{}", text(&loser.stdout), text(&loser.stderr));
        // The pid named is the lock's holder at that moment: the instance, or,
        // while `up -d` hands its lock over to the background instance, the
        // `up -d` that started it.
        assert!(
            said.contains("another ringmaster (pid "),
            "round {round}: the loser names the running pid ({instance}): {said}"
        );

        // One set of processes: one server (the service's root, or its shell's
        // child), with its one child; the port held by that server alone.
        let servers: Vec<u32> = tagged
            .iter()
            .copied()
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).contains("--listen"))
                    .unwrap_or(false)
                    && ringmaster_os::process::process(*pid)
                        .ok()
                        .flatten()
                        .is_some_and(|i| i.name == "fake-service")
            })
            .collect();
        assert_eq!(servers.len(), 1, "round {round}: one server: {tagged:?}");
        assert_eq!(holders(port), servers, "round {round}");
        let root = ready[0]["pid"].as_u64().expect("api runs") as u32;
        assert!(
            tagged.contains(&root),
            "round {round}: {root} in {tagged:?}"
        );

        let down = p.rm().arg("down").output().expect("down");
        assert_eq!(down.status.code(), Some(0), "{}", text(&down.stdout));
        wait_gone(instance);
        if let Some(mut child) = b {
            wait_child_exit(&mut child);
        }
        for pid in tagged {
            assert!(!pid_alive(pid), "round {round}: pid {pid} outlived down");
        }
        assert!(p.tagged_pids().is_empty() && holders(port).is_empty());
    }
}
