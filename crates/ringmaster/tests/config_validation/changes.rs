//! What a reload compares ([`ServiceConfig::changes`]) and a service given as
//! JSON with the keys of the TOML ([`Config::service_from_json`]).
use super::*;

fn parse(toml: &str) -> Config {
    Config::parse(toml, Path::new("/srv/app/ringmaster.toml")).expect("valid")
}

const BASE: &str = r#"
[services.api]
command = "uvicorn main:app"
port = 8000
health = { http = "http://127.0.0.1:8000/health" }
"#;

fn diff(new: &str) -> ringmaster::config::ServiceDiff {
    let old = parse(BASE);
    let new = parse(new);
    old.services["api"].changes(&new.services["api"])
}

#[test]
fn keys_that_shape_the_process_need_a_restart() {
    assert!(diff(BASE).is_empty());
    let d = diff(&BASE.replace("main:app", "main:app --reload"));
    assert_eq!(d.restart, vec!["command"]);
    assert!(d.in_place.is_empty());
    let d = diff(&format!(
        "{BASE}env = {{ A = \"1\" }}\nallow = [\"python\"]\n"
    ));
    assert_eq!(d.restart, vec!["env", "allow"]);
}

#[test]
fn watching_and_stopping_change_in_place() {
    let d = diff(&BASE.replace("/health\" }", "/health\", interval = \"5s\" }"));
    assert!(d.restart.is_empty(), "{d:?}");
    assert_eq!(d.in_place, vec!["health"]);
    let d = diff(&format!(
        "{BASE}stop = {{ timeout = \"3s\" }}\nrestart = {{ policy = \"always\" }}\nready_timeout = \"1m\"\n"
    ));
    assert!(d.restart.is_empty(), "{d:?}");
    assert_eq!(d.in_place, vec!["restart", "stop", "ready_timeout"]);
}

#[test]
fn a_probe_wired_at_the_spawn_needs_a_restart() {
    let log = |re: &str| {
        BASE.replace(
            "health = { http = \"http://127.0.0.1:8000/health\" }",
            &format!("health = {{ log = \"{re}\" }}"),
        )
    };
    let d = diff(&log("Uvicorn running"));
    assert_eq!(d.restart, vec!["health"]);
    // Another regex of a log probe: the same wiring, in place.
    let old = parse(&log("Uvicorn running"));
    let new = parse(&log("Application startup complete"));
    let d = old.services["api"].changes(&new.services["api"]);
    assert!(d.restart.is_empty(), "{d:?}");
    assert_eq!(d.in_place, vec!["health"]);
}

#[test]
fn a_service_as_json_reads_like_the_file() {
    let config = parse(&format!(
        "[settings]\nstart_window = \"0\"\nhealth_interval = \"1.5s\"\n{BASE}"
    ));
    let json = serde_json::json!({
        "name": "worker",
        "command": "python worker.py",
        "workdir": "worker",
        "depends_on": {"api": "ready"},
        "health": {"exec": "true", "interval": "2s"},
        "env": {"N": 2},
    });
    let svc = config.service_from_json(&json, &["api"]).expect("valid");
    assert_eq!(svc.name, "worker");
    let abs = |p: &str| std::path::absolute(p).expect("absolute");
    assert_eq!(svc.workdir, abs("/srv/app/worker"));
    assert_eq!(svc.depends_on[0].service, "api");
    assert_eq!(svc.depends_on[0].condition, Condition::Ready);
    assert_eq!(svc.env, vec![("N".to_string(), "2".to_string())]);
    assert_eq!(
        svc.health.clone().expect("a probe").interval,
        Duration::from_secs(2)
    );
    // The defaults of the file's [settings], exactly.
    assert_eq!(svc.start_window, Duration::ZERO);
    let plain = config
        .service_from_json(
            &serde_json::json!({"name": "p", "command": "x", "health": {"tcp": 1}}),
            &["api"],
        )
        .expect("valid");
    assert_eq!(
        plain.health.expect("a probe").interval,
        Duration::from_millis(1500)
    );
    assert_eq!(
        svc.pid_file,
        abs("/srv/app/.ringmaster/worker.pid"),
        "the state directory of the file"
    );
}

#[test]
fn a_bad_service_as_json_names_the_service_and_the_key() {
    let config = parse(BASE);
    let json = serde_json::json!({"name": "w", "comand": "x", "port": 70000});
    let errors = config
        .service_from_json(&json, &["api"])
        .expect_err("invalid");
    let text = errors.to_string();
    assert!(text.contains("service `w` (JSON): "), "{text}");
    assert!(text.contains("comand"), "{text}");
    assert!(text.contains("70000"), "{text}");
    let no_name = serde_json::json!({"command": "x"});
    let text = config
        .service_from_json(&no_name, &["api"])
        .expect_err("no name")
        .to_string();
    assert!(text.contains("`name`"), "{text}");
    // A dependency on what does not run is an error too.
    let json = serde_json::json!({"name": "w", "command": "x", "depends_on": ["db"]});
    let text = config
        .service_from_json(&json, &["api"])
        .expect_err("unknown dependency")
        .to_string();
    assert!(text.contains("`db`"), "{text}");
}
