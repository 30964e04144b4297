//! A foreign holder on a service's port, through the real binary: `up -d` exits 1
//! naming it, the holder still alone on the port and alive, nothing of the
//! project left running (the other services started meanwhile are stopped
//! again). (The PortJanitor in the library: `fault_port_holder.rs`. A separate test binary: an orchestrator in the test process is a child
//! subreaper that reaps adopted children, which must not race with the waits on
//! the `ringmaster` commands run here.)
#![cfg(unix)]

mod cli_support;

use cli_support::LONG;
use ringmaster_tests::{fake_service, free_port, pid_alive, wait_for};

#[test]
fn up_against_a_foreign_holder_exits_1_naming_it_and_leaves_it_alone() {
    use cli_support::{foreign_holder, holders, text, Project};
    let (base, p) = (free_port(), free_port());
    let fake = fake_service();
    let fake = fake.display();
    let project = Project::with_config(&format!(
        r#"[services.base]
command = "{fake} --listen {base}"
port = {base}
allow = ["fake-service"]
health = {{ tcp = {base} }}
stop = {{ timeout = "5s" }}

[services.api]
command = "{fake} --listen {p} --http"
port = {p}
allow = ["nothing-of-this-name"]
depends_on = ["base"]
health = {{ http = "http://127.0.0.1:{p}/" }}
stop = {{ timeout = "5s" }}
"#
    ));
    let stranger = foreign_holder(&project.guard, p, &[]);
    let up = project.rm().args(["up", "-d"]).output().expect("up -d");
    let (out, err) = (text(&up.stdout), text(&up.stderr));
    assert_eq!(up.status.code(), Some(1), "{out}{err}");
    assert!(
        format!("{out}{err}").contains(&stranger.to_string()),
        "names the holder {stranger}: {out}{err}"
    );
    if let Some(pid) = project.instance_pid() {
        project.guard.add(pid);
        cli_support::wait_gone(pid);
    }
    assert!(pid_alive(stranger), "the foreign holder was touched");
    assert_eq!(
        holders(p),
        vec![stranger],
        "the stranger alone holds the port"
    );
    wait_for("nothing of the project left", LONG, || {
        project.tagged_pids().is_empty()
    });
    assert!(holders(base).is_empty(), "base was stopped again");
}
