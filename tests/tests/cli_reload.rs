//! `ringmaster reload`, `add`, `remove` and SIGHUP, against a running instance
//! and the OS: what a reload removes is gone with its port free, what it
//! changes runs under a new pid, what it leaves keeps its pid; a broken file or
//! a change that cannot be made exits 2 and changes nothing; a reload with no
//! instance exits 1; one during start-up waits for it; one during `down` is
//! refused; the control API takes a service as JSON with the TOML's keys.
#![cfg(unix)]

mod cli_support;

use std::io::{Read, Write};

use cli_support::*;
use ringmaster_tests::{fake_service, free_port, pid_alive, port_answers, wait_for};
use serde_json::Value;

fn members(status: &[Value], name: &str) -> Vec<u32> {
    status
        .iter()
        .find(|s| s["name"] == name)
        .and_then(|s| s["members"].as_array())
        .map(|m| {
            m.iter()
                .filter_map(|m| m["pid"].as_u64())
                .map(|p| p as u32)
                .collect()
        })
        .unwrap_or_default()
}

/// A service table running fake-service on `port` with `extra` arguments.
fn service(name: &str, port: u16, extra: &str, more: &str) -> String {
    let fake = fake_service();
    format!(
        "[services.{name}]\ncommand = \"{} --listen {port} {extra}\"\nport = {port}\n\
         health = {{ tcp = {port} }}\nstop = {{ timeout = \"5s\" }}\n{more}\n",
        fake.display()
    )
}

const SETTINGS: &str = "[settings]\nshutdown_timeout = \"20s\"\n\n";

#[test]
fn reload_adds_removes_changes_and_leaves() {
    let (keep, gone, change, dep, new) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let first = format!(
        "{SETTINGS}{}{}{}{}",
        service("keep", keep, "", ""),
        service("gone", gone, "--children 2", ""),
        service("change", change, "", ""),
        service("dep", dep, "", "depends_on = [\"change\"]"),
    );
    let p = Project::with_config(&first);
    // No instance: it says so, exit 1.
    p.expect_no_instance(&["reload"]);

    p.up_detached();
    wait_for("gone's children", LONG, || {
        p.status().is_some_and(|s| members(&s, "gone").len() >= 3)
    });
    let before = p.wait_ready(&["keep", "gone", "change", "dep"]);
    p.guard_tagged();
    let gone_pids = members(&before, "gone");

    // A broken file: every error at file:line:col, exit 2, nothing changed.
    let broken = format!("{first}\n[services.bad]\ncomand = \"x\"\n");
    p.write("ringmaster.toml", &broken);
    let out = p.rm().arg("reload").output().expect("reload");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("ringmaster.toml:"), "{err}");
    assert!(err.contains("comand"), "{err}");
    // A removed dependency that a running service still names: a config error.
    let orphaned = format!(
        "{SETTINGS}{}{}{}",
        service("keep", keep, "", ""),
        service("gone", gone, "--children 2", ""),
        service("dep", dep, "", "depends_on = [\"change\"]"),
    );
    p.write("ringmaster.toml", &orphaned);
    let out = p.rm().arg("reload").output().expect("reload");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("`change`"),
        "{}",
        text(&out.stderr)
    );
    // (`status` reads the file too: a valid one again.)
    p.write("ringmaster.toml", &first);
    let same = p.status().expect("status");
    for n in ["keep", "gone", "change", "dep"] {
        assert_eq!(pid_of(&same, n), pid_of(&before, n), "{n} untouched");
    }

    // The real change: gone removed, change's command changed, new added.
    let second = format!(
        "{SETTINGS}{}{}{}{}",
        service("keep", keep, "", ""),
        service("change", change, "--print-pids", ""),
        service("dep", dep, "", "depends_on = [\"change\"]"),
        service("new", new, "", "depends_on = [\"keep\"]"),
    );
    p.write("ringmaster.toml", &second);
    // First what it would do: the same lines, and nothing changes.
    let out = p
        .rm()
        .args(["reload", "--dry-run"])
        .output()
        .expect("dry run");
    let would = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{would}{}", text(&out.stderr));
    assert!(
        would.starts_with("would change (nothing was changed):\n"),
        "{would}"
    );
    assert!(would.contains("gone    removed"), "{would}");
    assert!(would.contains("new     added"), "{would}");
    let still = p.status().expect("status");
    for n in ["keep", "gone", "change", "dep"] {
        assert_eq!(
            pid_of(&still, n),
            pid_of(&before, n),
            "{n} untouched by --dry-run"
        );
    }
    assert!(still.iter().all(|s| s["name"] != "new"), "{still:?}");
    let out = p.rm().arg("reload").output().expect("reload");
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}{}", text(&out.stderr));
    p.guard_tagged();
    assert!(said.starts_with("applied in "), "{said}");
    for line in [
        "keep    unchanged",
        "change  restarted (command changed)",
        "dep     restarted (depends on `change`, which restarts)",
        "new     added",
        "gone    removed",
    ] {
        assert!(said.contains(line), "`{line}` in:\n{said}");
    }
    let after = p.wait_ready(&["keep", "change", "dep", "new"]);
    assert!(after.iter().all(|s| s["name"] != "gone"), "{after:?}");
    for pid in gone_pids {
        assert!(!pid_alive(pid), "gone's {pid} is gone");
    }
    wait_port_free(gone);
    assert_eq!(pid_of(&after, "keep"), pid_of(&before, "keep"));
    assert_ne!(pid_of(&after, "change"), pid_of(&before, "change"));
    assert_ne!(pid_of(&after, "dep"), pid_of(&before, "dep"));
    assert!(port_answers(new));

    // `add` and `remove` through the CLI.
    let extra = free_port();
    let out = p
        .rm()
        .args([
            "add",
            "extra",
            "--port",
            &extra.to_string(),
            "--depends-on",
            "keep",
        ])
        .arg("--command")
        .arg(format!("{} --listen {extra}", fake_service().display()))
        .args(["--json", &format!("{{\"health\": {{\"tcp\": {extra}}}}}")])
        .output()
        .expect("add");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("extra  added"),
        "{}",
        text(&out.stdout)
    );
    p.guard_tagged();
    assert!(port_answers(extra));
    // A taken name, an unknown key: exit 2, nothing changed.
    let out = p
        .rm()
        .args(["add", "keep", "--command", "true"])
        .output()
        .expect("add");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = p
        .rm()
        .args(["add", "odd", "--command", "true", "--json", "{\"prot\": 1}"])
        .output()
        .expect("add");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("prot"), "{}", text(&out.stderr));
    // keep is still needed by new and extra.
    let out = p.rm().args(["remove", "keep"]).output().expect("remove");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("depends on `keep`"),
        "{}",
        text(&out.stderr)
    );
    // A service added on its own (in no file) can be restarted like any other.
    let before_restart = pid_of(&p.status().expect("status"), "extra");
    let out = p.rm().args(["restart", "extra"]).output().expect("restart");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    p.guard_tagged();
    let now = p.wait_ready(&["extra"]);
    assert_ne!(pid_of(&now, "extra"), before_restart, "a new process");
    let extra_pids = members(&p.status().expect("status"), "extra");
    let out = p.rm().args(["remove", "extra"]).output().expect("remove");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("extra  removed"),
        "{}",
        text(&out.stdout)
    );
    for pid in extra_pids {
        assert!(!pid_alive(pid));
    }
    wait_port_free(extra);

    p.rm().arg("down").assert().code(0);
    for port in [keep, change, dep, new] {
        wait_port_free(port);
    }
}

/// One HTTP request over the control socket; the status and the body.
fn control(p: &Project, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = std::os::unix::net::UnixStream::connect(p.state_dir().join("control.sock"))
        .expect("control socket");
    s.set_read_timeout(Some(LONG)).expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("reply");
    let status = reply
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn the_control_api_adds_and_removes_a_service_as_json() {
    let api = free_port();
    let p = Project::with_config(&format!("{SETTINGS}{}", service("api", api, "", "")));
    p.up_detached();
    p.wait_ready(&["api"]);
    p.guard_tagged();
    let helper = free_port();
    let json = serde_json::json!({
        "name": "helper",
        "command": format!("{} --listen {helper} --http", fake_service().display()),
        "port": helper,
        "depends_on": {"api": "ready"},
        "health": {"http": format!("http://127.0.0.1:{helper}/"), "interval": "1s"},
        "env": {"ROLE": "helper"},
    });
    let (status, body) = control(&p, "POST", "/services", &json.to_string());
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(body.trim()).unwrap_or_else(|_| {
        // chunked or not, the JSON is the body's one line
        serde_json::from_str(body.lines().find(|l| l.starts_with('{')).unwrap_or("{}"))
            .expect("json")
    });
    assert_eq!(report["services"][0]["action"], "added", "{report}");
    p.guard_tagged();
    assert!(port_answers(helper));
    // The same keys as the TOML, checked as strictly.
    let (status, body) = control(
        &p,
        "POST",
        "/services",
        r#"{"name": "bad", "command": "true", "restart": {"policy": "sometimes"}}"#,
    );
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("sometimes"), "{body}");
    let (status, body) = control(&p, "DELETE", "/services/helper", "");
    assert_eq!(status, 200, "{body}");
    wait_port_free(helper);
    let (status, _) = control(&p, "DELETE", "/services/helper", "");
    assert_eq!(status, 404);
    p.rm().arg("down").assert().code(0);
}

#[test]
fn sighup_reloads_a_foreground_up_and_a_reload_waits_for_the_start() {
    let (slow, other) = (free_port(), free_port());
    let first = format!(
        "{SETTINGS}{}{}",
        service("slow", slow, "--ready-after 3000", ""),
        service("other", other, "", ""),
    );
    let p = Project::with_config(&first);
    let mut up = p.spawn_up(&[]);
    wait_for("the instance to answer", LONG, || {
        p.rm()
            .args(["status", "--json"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    // A reload while slow is still starting waits until the start is over.
    let changed = format!(
        "{SETTINGS}{}{}",
        service("slow", slow, "--ready-after 3000", ""),
        service("other", other, "--print-pids", ""),
    );
    // Still starting (3 s is far longer than it took to get here).
    let status = p.status().expect("status");
    assert!(
        status
            .iter()
            .any(|s| s["name"] == "slow" && s["state"] != "ready"),
        "{status:?}"
    );
    p.write("ringmaster.toml", &changed);
    let out = p.rm().arg("reload").output().expect("reload");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("other  restarted"),
        "{}",
        text(&out.stdout)
    );
    // up's own writer thread puts the line out, maybe after reload has its answer.
    wait_for("the change in up's output", LONG, || {
        p.up_output().contains("change through the control socket")
    });
    let log = p.up_output();
    let ready_at = log
        .find("2 services ready")
        .expect("start-up over in the log");
    let change_at = log
        .find("change through the control socket")
        .expect("change logged");
    assert!(ready_at < change_at, "{log}");
    p.guard_tagged();

    // SIGHUP: the file again, with other back as it was.
    p.write("ringmaster.toml", &first);
    send_unix_signal(up.id(), libc::SIGHUP);
    wait_for("the SIGHUP reload in up's output", LONG, || {
        p.up_output().contains("change through SIGHUP: applied")
    });
    let log = p.up_output();
    let (_, after_hup) = log
        .split_once("change through SIGHUP: applied")
        .expect("the SIGHUP reload");
    assert!(
        after_hup.contains("other  restarted (command changed)"),
        "{log}"
    );
    p.guard_tagged();
    send_unix_signal(up.id(), libc::SIGTERM);
    let status = wait_child_exit(&mut up);
    assert_eq!(status.code(), Some(0), "{}", p.up_output());
    wait_port_free(slow);
    wait_port_free(other);
}

#[test]
fn a_reload_during_down_is_refused() {
    let port = free_port();
    let fake = fake_service();
    let config = format!(
        "{SETTINGS}[services.stubborn]\ncommand = \"{} --listen {port} --ignore-term\"\nport = {port}\n\
         health = {{ tcp = {port} }}\nstop = {{ timeout = \"8s\" }}\n",
        fake.display()
    );
    let p = Project::with_config(&config);
    p.up_detached();
    p.wait_ready(&["stubborn"]);
    p.guard_tagged();
    let down = std::process::Command::new(ringmaster_tests::bin_path("ringmaster"))
        .arg("down")
        .current_dir(p.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("down");
    p.guard.add(down.id());
    wait_for("stopping", LONG, || {
        p.status()
            .is_some_and(|s| s.iter().any(|s| s["state"] == "stopping"))
    });
    let out = p.rm().arg("reload").output().expect("reload");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("shutting down"),
        "{}",
        text(&out.stderr)
    );
    let mut down = down;
    let status = wait_child_exit(&mut down);
    assert_eq!(status.code(), Some(0));
    wait_port_free(port);
}
