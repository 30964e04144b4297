//! The forced stop of a foreground `up` (a second signal during the cascade): it
//! kills only what belongs to the services this run selected, never the holder of
//! another configured service's port, says what it killed, and the report says the
//! service needed a kill rather than that it stopped gracefully.
#![cfg(unix)]

mod cli_support;

use cli_support::*;
use ringmaster_tests::{fake_service, free_port, pid_alive, port_answers, wait_for};

/// `api` ignores SIGTERM (so only a kill ends it, and its stop timeout is long);
/// `web` has a port and an allow list that matches the fake service, and is not
/// a dependency of `api`.
fn config(api: u16, web: u16) -> String {
    let fake = fake_service();
    format!(
        r#"[settings]
shutdown_timeout = "120s"

[services.api]
command = "{fake} --listen {api} --ignore-term --children 1 --children-ignore-term"
port = {api}
allow = ["fake-service"]
health = {{ tcp = {api} }}
stop = {{ timeout = "100s" }}

[services.web]
command = "{fake} --listen {web}"
port = {web}
allow = ["fake-service"]
health = {{ tcp = {web} }}
"#,
        fake = fake.display()
    )
}

/// SIGINT to the foreground `up`, and once its cascade began, SIGINT again: its
/// exit status and what it printed.
fn force_stop(p: &Project, up: &mut std::process::Child) -> (std::process::ExitStatus, String) {
    send_unix_signal(up.id(), libc::SIGINT);
    wait_for("the cascade to start", LONG, || {
        p.up_output().contains("SIGINT: stopping")
    });
    send_unix_signal(up.id(), libc::SIGINT);
    let code = wait_child_exit(up);
    (code, p.up_output())
}

#[test]
fn a_second_sigint_kills_only_the_selected_services_and_says_so() {
    let (api, web) = (free_port(), free_port());
    let p = Project::with_config(&config(api, web));
    // Started by hand, holding web's port: this run never starts web.
    let holder = foreign_holder(&p.guard, web, &[]);

    let mut up = p.spawn_up(&["api"]);
    p.wait_ready(&["api"]);
    let mut members = p.guard_tagged();
    members.extend(holders(api));
    members.retain(|&m| m != holder);
    assert!(members.len() >= 2, "api and its child: {members:?}");

    let (code, log) = force_stop(&p, &mut up);

    // The hand-started holder of web's port is untouched.
    assert!(
        pid_alive(holder),
        "the holder of web's port was killed:\n{log}"
    );
    assert!(port_answers(web), "web's port is still held by its holder");
    assert!(
        !log.contains(&format!("pid {holder}")) && !log.contains(&format!("{holder} (")),
        "the holder is not named as killed:\n{log}"
    );
    // api's processes are gone, its port free.
    for m in &members {
        assert!(!pid_alive(*m), "pid {m} survived the forced stop:\n{log}");
    }
    assert!(p.tagged_pids().is_empty(), "{log}");
    wait_port_free(api);

    // What the forced stop did, per service, naming the pids.
    let forced: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("forced stop: "))
        .collect();
    assert!(
        forced.iter().any(|l| l.contains("api: killed")),
        "the forced stop names what it killed of api:\n{log}"
    );
    assert!(
        forced.iter().all(|l| !l.contains("web")),
        "the forced stop does not touch web:\n{log}"
    );
    let named = |line: &str| members.iter().any(|m| line.contains(&m.to_string()));
    assert!(
        forced.iter().any(|l| named(l)),
        "a pid of api is named:\n{log}"
    );

    // The report: api needed a kill; nothing claims a graceful stop.
    let api_line = log
        .lines()
        .find(|l| l.trim_start().starts_with("api ") && l.contains("needed kill"))
        .unwrap_or_else(|| panic!("a report line `api  needed kill: ...`:\n{log}"));
    assert!(named(api_line), "{api_line}");
    assert!(!log.contains("gracefully"), "{log}");
    // Nothing was left behind: a forced stop that cleaned up exits 0.
    assert_eq!(code.code(), Some(0), "{log}");
}

/// A service added while `up` runs (in no file) is covered by the forced stop
/// too: its processes ignore SIGTERM, and the second SIGINT kills them.
#[test]
fn a_second_sigint_kills_a_service_added_at_runtime() {
    let (base, extra) = (free_port(), free_port());
    let fake = fake_service();
    let p = Project::with_config(&format!(
        "[settings]\nshutdown_timeout = \"120s\"\n\n[services.base]\ncommand = \"{} --listen {base}\"\n\
         port = {base}\nhealth = {{ tcp = {base} }}\n",
        fake.display()
    ));
    let mut up = p.spawn_up(&[]);
    p.wait_ready(&["base"]);
    let json = format!(
        "{{\"port\": {extra}, \"health\": {{\"tcp\": {extra}}}, \"stop\": {{\"timeout\": \"100s\"}}}}"
    );
    let out = p
        .rm()
        .args(["add", "extra", "--json", &json, "--command"])
        .arg(format!(
            "{} --listen {extra} --ignore-term --children 1 --children-ignore-term",
            fake.display()
        ))
        .output()
        .expect("add");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let members = p.guard_tagged();
    assert!(members.len() >= 3, "base, extra and its child: {members:?}");

    let (_, log) = force_stop(&p, &mut up);
    for m in &members {
        assert!(!pid_alive(*m), "pid {m} survived the forced stop:\n{log}");
    }
    assert!(log.contains("forced stop: extra"), "{log}");
    wait_port_free(extra);
    wait_port_free(base);
}

#[test]
fn a_second_sigint_kills_the_replicas_of_a_replicated_service() {
    let port = free_port();
    let fake = fake_service();
    let p = Project::with_config(&format!(
        "[settings]\nshutdown_timeout = \"120s\"\n\n[services.api]\n\
         command = \"{} --listen ${{PORT}} --ignore-term\"\nport = {port}\nreplicas = 2\n\
         health = {{ tcp = \"${{PORT}}\" }}\nstop = {{ timeout = \"100s\" }}\n",
        fake.display()
    ));
    let mut up = p.spawn_up(&[]);
    p.wait_ready(&["api", "api#0", "api#1"]);
    let members = p.guard_tagged();
    assert!(members.len() >= 2, "{members:?}");

    let (_, log) = force_stop(&p, &mut up);
    for m in &members {
        assert!(!pid_alive(*m), "pid {m} survived the forced stop:\n{log}");
    }
    assert!(p.tagged_pids().is_empty(), "{log}");
    for member in ["api#0", "api#1"] {
        assert!(
            log.contains(&format!("forced stop: {member}: killed")),
            "{member} in:\n{log}"
        );
    }
    wait_port_free(port);
}
