//! What a valid file loads into: the DESIGN example, every probe kind and
//! option, the start order.
use super::*;

#[test]
fn design_example_parses_with_expected_values() {
    let path = fixture("example.toml");
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let dir = path.parent().unwrap().to_path_buf();
    assert_eq!(config.path.as_deref(), Some(path.as_path()));
    assert_eq!(config.base_dir, dir);
    assert_eq!(config.settings.state_dir, dir.join(".ringmaster"));
    assert_eq!(config.settings.shutdown_timeout, Duration::from_secs(15));
    assert_eq!(config.settings.health_interval, Duration::from_secs(30));
    assert_eq!(config.settings.metrics, None);
    assert_eq!(config.settings.log_max_bytes, 10 * 1024 * 1024);

    let api = &config.services["api"];
    assert_eq!(api.name, "api");
    assert_eq!(
        api.command,
        "python -m uvicorn main:app --host 127.0.0.1 --port 8000 --reload"
    );
    assert_eq!(api.workdir, dir.join("api"));
    assert_eq!(
        api.env,
        vec![("PYTHONUNBUFFERED".to_string(), "1".to_string())]
    );
    assert_eq!(api.port, Some(8000));
    assert_eq!(api.allow, ["python", "uvicorn"]);
    assert!(api.depends_on.is_empty());
    let health = api.health.as_ref().unwrap();
    assert_eq!(
        health.probe,
        Probe::Http {
            url: "http://127.0.0.1:8000/health".into()
        }
    );
    assert_eq!(health.interval, Duration::from_secs(30));
    assert_eq!(health.timeout, Duration::from_secs(2));
    assert_eq!(health.failures, 3);
    assert_eq!(api.restart.policy, RestartPolicy::OnFailure);
    assert_eq!(api.restart.max_attempts, 3);
    assert_eq!(api.restart.backoff, Duration::from_secs(1));
    assert_eq!(api.stop.signal, Signal::Term);
    assert_eq!(api.stop.timeout, Duration::from_secs(10));
    assert_eq!(api.pid_file, dir.join(".dashboard_api.pid"));
    assert!(api.install.is_none());

    let fe = &config.services["frontend"];
    assert_eq!(fe.command, "npm run dev");
    assert_eq!(fe.workdir, dir.join("dashboard"));
    assert_eq!(fe.port, Some(3000));
    assert_eq!(fe.allow, ["node", "npm", "next-server"]);
    assert_eq!(fe.depends_on.len(), 1);
    assert_eq!(fe.depends_on[0].service, "api");
    assert_eq!(fe.depends_on[0].condition, Condition::Ready);
    let install = fe.install.as_ref().unwrap();
    assert_eq!(install.command, "npm install");
    assert_eq!(
        install.unless_exists.as_deref(),
        Some(dir.join("dashboard").join("node_modules").as_path())
    );
    let health = fe.health.as_ref().unwrap();
    assert_eq!(
        health.probe,
        Probe::Http {
            url: "http://127.0.0.1:3000/".into()
        }
    );
    assert_eq!(health.timeout, Duration::from_secs(20));
    assert_eq!(
        health.interval,
        Duration::from_secs(30),
        "defaults to settings.health_interval"
    );
    assert_eq!(fe.pid_file, dir.join(".ringmaster").join("frontend.pid"));

    assert_eq!(config.start_order(), ["api", "frontend"]);
    assert_eq!(config.stop_order(), ["frontend", "api"]);
    assert_eq!(config.dependents("api"), ["frontend"]);
}

#[test]
fn every_probe_kind_and_option_parses() {
    let text = r#"
[settings]
health_interval = "5s"
metrics = "127.0.0.1:9464"
log_max_bytes = 1024

[services.db]
command = "run-db"
health = { tcp = 5432, failures = 1 }
stop = { signal = "SIGINT", timeout = "1m30s" }
restart = { policy = "always", max_attempts = 0, backoff = "250ms" }

[services.migrate]
command = "run-migrate"
depends_on = { db = "started" }
restart = { policy = "never" }

[services.api]
command = "run-api"
depends_on = { migrate = "completed", db = "ready" }
health = { exec = "curl -fsS localhost:8000", interval = "1s" }

[services.worker]
command = "run-worker"
depends_on = ["db"]
health = { log = "^ready after \\d+ ms$", timeout = "500ms" }
"#;
    let config = Config::parse(text, Path::new("/srv/app/ringmaster.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.settings.metrics,
        Some("127.0.0.1:9464".parse().unwrap())
    );
    assert_eq!(config.settings.log_max_bytes, 1024);
    assert_eq!(config.settings.health_interval, Duration::from_secs(5));
    let db = &config.services["db"];
    assert_eq!(db.health.as_ref().unwrap().probe, Probe::Tcp { port: 5432 });
    assert_eq!(db.health.as_ref().unwrap().failures, 1);
    assert_eq!(db.health.as_ref().unwrap().interval, Duration::from_secs(5));
    assert_eq!(db.stop.signal, Signal::Int);
    assert_eq!(db.stop.timeout, Duration::from_secs(90));
    assert_eq!(db.restart.policy, RestartPolicy::Always);
    assert_eq!(db.restart.max_attempts, 0);
    assert_eq!(db.restart.backoff, Duration::from_millis(250));
    assert_eq!(
        config.services["migrate"].restart.policy,
        RestartPolicy::Never
    );
    assert_eq!(
        config.services["migrate"].depends_on[0].condition,
        Condition::Started
    );
    let api = &config.services["api"];
    let conditions: Vec<(&str, Condition)> = api
        .depends_on
        .iter()
        .map(|d| (d.service.as_str(), d.condition))
        .collect();
    assert!(
        conditions.contains(&("migrate", Condition::Completed)),
        "{conditions:?}"
    );
    assert!(
        conditions.contains(&("db", Condition::Ready)),
        "{conditions:?}"
    );
    assert_eq!(
        api.health.as_ref().unwrap().probe,
        Probe::Exec {
            command: "curl -fsS localhost:8000".into()
        }
    );
    assert_eq!(
        api.health.as_ref().unwrap().interval,
        Duration::from_secs(1)
    );
    let worker = &config.services["worker"];
    assert_eq!(
        worker.health.as_ref().unwrap().probe,
        Probe::Log {
            regex: r"^ready after \d+ ms$".into()
        }
    );
    assert_eq!(
        worker.health.as_ref().unwrap().timeout,
        Duration::from_millis(500)
    );
    // Whatever is startable next, by name: db; then migrate and worker are
    // startable and migrate goes first; that makes api startable, before worker.
    assert_eq!(config.start_order(), ["db", "migrate", "api", "worker"]);
    assert_eq!(
        config.start_order_for(&["api"]).unwrap(),
        ["db", "migrate", "api"]
    );
    assert_eq!(
        config.start_order_for(&["worker"]).unwrap(),
        ["db", "worker"]
    );
    assert!(config
        .start_order_for(&["nope"])
        .unwrap_err()
        .contains("`nope`"));
    let mut deps = config.dependents("db");
    deps.sort();
    assert_eq!(deps, ["api", "migrate", "worker"]);
}

#[test]
fn start_order_is_topological_with_ties_by_name() {
    let text = r#"
[services.z]
command = "z"
[services.y]
command = "y"
depends_on = ["z"]
[services.b]
command = "b"
depends_on = ["y", "a"]
[services.a]
command = "a"
[services.c]
command = "c"
"#;
    let config = Config::parse(text, Path::new("/srv/ringmaster.toml")).unwrap();
    assert_eq!(config.start_order(), ["a", "c", "z", "y", "b"]);
}
