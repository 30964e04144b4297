//! SIGHUP means two things to a foreground `up`: a reload (`kill -HUP`, tested in
//! `cli_reload.rs`), or — when the terminal it runs in is closed — the end: the
//! kernel hangs the terminal up, `/dev/tty` cannot be opened any more, and `up`
//! runs its shutdown cascade as for SIGTERM. Here `up` runs in a pseudo-terminal
//! of `script(1)`, which is killed: nothing of the stack is left.
#![cfg(target_os = "linux")]

mod cli_support;

use std::process::{Command as StdCommand, Stdio};

use cli_support::*;
use ringmaster_tests::{bin_path, fake_service, free_port, pid_alive, wait_for, which};

#[test]
fn closing_the_terminal_stops_the_stack() {
    let Some(script) = which("script") else {
        eprintln!("skipped: script(1) (util-linux) is not installed");
        return;
    };
    let port = free_port();
    let p = Project::with_config(&format!(
        "[services.api]\ncommand = \"{} --listen {port} --children 1\"\nport = {port}\n\
         health = {{ tcp = {port} }}\nstop = {{ timeout = \"5s\" }}\n",
        fake_service().display()
    ));
    // `script` gives `up` a pseudo-terminal as its controlling terminal; its
    // stdin stays open (a pipe) so that it does not end on its own.
    let mut term = StdCommand::new(script)
        .args(["-qfec"])
        .arg(format!("'{}' up", bin_path("ringmaster").display()))
        .arg("/dev/null")
        .current_dir(p.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("script");
    p.guard.add(term.id());
    let status = p.wait_ready(&["api"]);
    let up = p.instance_pid().expect("the instance holds its lock");
    p.guard.add(up);
    let tagged = p.guard_tagged();
    assert!(tagged.len() >= 2, "api and its child: {status:?}");

    // The terminal goes away: its master side is closed with `script`.
    let _ = term.kill();
    let _ = term.wait();
    wait_for("up to stop after its terminal closed", LONG, || {
        !pid_alive(up)
    });
    for pid in tagged {
        assert!(!pid_alive(pid), "pid {pid} was stopped with the stack");
    }
    wait_port_free(port);
}
