//! `ringmaster stop SERVICE` / `start SERVICE` against a running instance and the
//! OS: a stopped service and its dependents are gone with their ports free and
//! stay stopped (their restart policy does not bring them back) while the rest
//! runs untouched; `start` brings them back under new pids; an unknown name is
//! exit 2, no instance exit 1.
#![cfg(unix)]

mod cli_support;

use cli_support::*;
use ringmaster_tests::{fake_service, free_port, pid_alive, wait_for};
use serde_json::Value;

fn state(status: &[Value], name: &str) -> (String, String) {
    let s = status
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {status:?}"));
    (
        s["state"].as_str().unwrap_or_default().to_owned(),
        s["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

#[test]
fn stop_keeps_a_service_and_its_dependents_down_until_start() {
    let (api, web, other) = (free_port(), free_port(), free_port());
    let fake = fake_service();
    let svc = |name: &str, port: u16, more: &str| {
        format!(
            "[services.{name}]\ncommand = \"{} --listen {port}\"\nport = {port}\n\
             health = {{ tcp = {port} }}\nrestart = {{ policy = \"always\", backoff = \"100ms\" }}\n\
             stop = {{ timeout = \"5s\" }}\n{more}\n",
            fake.display()
        )
    };
    let p = Project::with_config(&format!(
        "{}{}{}",
        svc("api", api, ""),
        svc("web", web, "depends_on = [\"api\"]"),
        svc("other", other, "")
    ));
    // No instance: exit 1.
    let out = p.rm().args(["stop", "api"]).output().expect("stop");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));

    p.up_detached();
    let before = p.wait_ready(&["api", "web", "other"]);
    p.guard_tagged();
    let (api_pid, web_pid, other_pid) = (
        pid_of(&before, "api"),
        pid_of(&before, "web"),
        pid_of(&before, "other"),
    );

    let out = p.rm().args(["stop", "api"]).output().expect("stop");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("api stopped"));
    for pid in [api_pid, web_pid] {
        wait_gone(pid);
    }
    wait_port_free(api);
    wait_port_free(web);
    // They stay down (policy "always" notwithstanding); the other one runs on.
    std::thread::sleep(std::time::Duration::from_millis(800));
    let status = p.status().expect("status");
    assert_eq!(
        state(&status, "api"),
        ("stopped".into(), "stopped on request".into())
    );
    assert_eq!(
        state(&status, "web"),
        ("stopped".into(), "stopped with `api`".into())
    );
    assert_eq!(pid_of(&status, "other"), other_pid);
    assert!(pid_alive(other_pid));
    assert!(holders(api).is_empty() && holders(web).is_empty());

    let out = p.rm().args(["start", "api"]).output().expect("start");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let after = p.wait_ready(&["api", "web", "other"]);
    p.guard_tagged();
    assert_ne!(pid_of(&after, "api"), api_pid);
    assert_ne!(pid_of(&after, "web"), web_pid);
    assert_eq!(pid_of(&after, "other"), other_pid);

    // Unknown: exit 2, nothing touched.
    p.rm().args(["stop", "nope"]).assert().code(2);
    p.rm().args(["start", "nope"]).assert().code(2);
    wait_for("still all ready", LONG, || {
        p.status().is_some_and(|s| {
            ["api", "web", "other"]
                .iter()
                .all(|n| state(&s, n).0 == "ready")
        })
    });
    p.rm().arg("down").assert().code(0);
}

#[test]
fn a_start_asked_while_the_stop_runs_waits_for_it_and_a_replica_stops_alone() {
    let (api, port) = (free_port(), free_port());
    let fake = fake_service();
    // api ignores SIGTERM: its stop takes its whole stop timeout.
    let p = Project::with_config(&format!(
        "[services.api]\ncommand = \"{} --listen {api} --ignore-term\"\nport = {api}\n\
         health = {{ tcp = {api} }}\nstop = {{ timeout = \"2s\" }}\n\n\
         [services.pool]\ncommand = \"{} --listen ${{PORT}}\"\nport = {port}\nreplicas = 2\n\
         health = {{ tcp = \"${{PORT}}\" }}\n",
        fake.display(),
        fake.display()
    ));
    p.up_detached();
    let before = p.wait_ready(&["api", "pool#0", "pool#1"]);
    p.guard_tagged();
    let old = pid_of(&before, "api");

    let mut stop = p.rm();
    stop.args(["stop", "api"]);
    let stop = std::thread::spawn(move || stop.output().expect("stop"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = p.rm().args(["start", "api"]).output().expect("start");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(stop.join().expect("the stop thread").status.code(), Some(0));
    let after = p.wait_ready(&["api"]);
    p.guard_tagged();
    assert_ne!(pid_of(&after, "api"), old);
    assert!(!pid_alive(old));

    // A replica by its name: only it stops; the service serves on with the other.
    let one = pid_of(&after, "pool#1");
    let zero = pid_of(&after, "pool#0");
    p.rm().args(["stop", "pool#1"]).assert().code(0);
    wait_gone(one);
    let status = p.status().expect("status");
    assert_eq!(state(&status, "pool#1").0, "stopped");
    assert_eq!(state(&status, "pool").0, "ready");
    assert_eq!(pid_of(&status, "pool#0"), zero);
    p.rm().args(["start", "pool#1"]).assert().code(0);
    p.wait_ready(&["pool#1"]);
    p.guard_tagged();
    p.rm().arg("down").assert().code(0);
}
