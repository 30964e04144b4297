//! Configuration loading and validation: one fixture per rule under
//! `tests/configs/` with its message and `line:col` asserted, the DESIGN example,
//! relative paths, `${VAR}` expansion, `env_file`, start order and the builder.
use std::path::{Path, PathBuf};
use std::time::Duration;

use ringmaster::config::{
    Condition, Config, ConfigErrors, Probe, RestartPolicy, ServiceConfigBuilder, BUILDER_FILE,
};
// Through the re-export: builder users need no dependency on ringmaster-os.
use ringmaster::Signal;

/// The fixture's absolute path: errors name the file that way (on Windows with its
/// drive, also for a path given from the root of the current drive).
fn fixture(name: &str) -> PathBuf {
    std::path::absolute(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join("configs")
            .join(name),
    )
    .expect("an absolute fixture path")
}

/// How an error names `path`: absolute.
fn shown(path: &str) -> String {
    std::path::absolute(path)
        .expect("an absolute path")
        .display()
        .to_string()
}

/// Loads a fixture that must fail; returns `(line, col, message)` of each error,
/// after checking every error names the fixture file.
fn errors_of(name: &str) -> Vec<(usize, usize, String)> {
    let path = fixture(name);
    let errors = match Config::load(&path) {
        Ok(config) => panic!("{name} should not load, got {config:#?}"),
        Err(e) => e,
    };
    for e in &errors.0 {
        assert_eq!(e.file, path, "{e}");
    }
    errors
        .0
        .into_iter()
        .map(|e| (e.line, e.col, e.message))
        .collect()
}

/// Asserts the fixture fails with exactly these errors, in this order.
fn assert_errors(name: &str, expected: &[(usize, usize, &str)]) {
    let got = errors_of(name);
    let got_ref: Vec<(usize, usize, &str)> =
        got.iter().map(|(l, c, m)| (*l, *c, m.as_str())).collect();
    assert_eq!(got_ref, expected, "errors of {name}");
}

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("a joined path has a parent"))
        .expect("create fixture folder");
    std::fs::write(&path, text).expect("write fixture");
    path
}

// ---- one fixture per validation rule -------------------------------------------

#[test]
fn unknown_dependency_points_at_the_name() {
    assert_errors(
        "unknown_dependency.toml",
        &[(
            6,
            15,
            "service `web` depends on unknown service `apii` (did you mean `api`?)",
        )],
    );
}

#[test]
fn dependency_cycle_is_printed() {
    // d depends on the cycle but is not part of it: one error, at the closing edge.
    assert_errors(
        "dependency_cycle.toml",
        &[(11, 15, "dependency cycle: a -> b -> c -> a")],
    );
}

#[test]
fn self_dependency_is_a_cycle() {
    assert_errors(
        "self_dependency.toml",
        &[(
            3,
            15,
            "service `loop` depends on itself (dependency cycle: loop -> loop)",
        )],
    );
}

#[test]
fn two_services_on_one_port_name_both() {
    assert_errors(
        "duplicate_port.toml",
        &[(7, 8, "port 8000 is used by both `api` and `admin`")],
    );
}

#[test]
fn empty_command() {
    assert_errors(
        "empty_command.toml",
        &[(2, 11, "service `api` has an empty command")],
    );
}

#[test]
fn missing_command_points_at_the_service() {
    assert_errors(
        "missing_command.toml",
        &[(1, 11, "service `api` has no `command`")],
    );
}

#[test]
fn port_out_of_range() {
    assert_errors(
        "port_out_of_range.toml",
        &[
            (3, 8, "service `big`: port 70000 is out of range (1-65535)"),
            (7, 8, "service `zero`: port 0 is out of range (1-65535)"),
            (
                11,
                8,
                "service `negative`: port -1 is out of range (1-65535)",
            ),
            (
                12,
                18,
                "service `negative` health tcp: port 65536 is out of range (1-65535)",
            ),
        ],
    );
}

#[test]
fn port_strings_that_are_not_ports() {
    assert_errors(
        "port_strings.toml",
        &[
            (
                4,
                8,
                "service `word`: port \"http\" is not a number (expected an integer 1-65535)",
            ),
            (
                8,
                8,
                "service `env`: port \"${RINGMASTER_TEST_SURELY_UNSET_PORT:-eighty}\" is \"eighty\", not a number (expected an integer 1-65535)",
            ),
            (
                12,
                8,
                "service `big`: port 70000 is out of range (1-65535) (from \"${RINGMASTER_TEST_SURELY_UNSET_PORT:-70000}\")",
            ),
            (
                13,
                18,
                "service `big` health tcp: port \"${RINGMASTER_TEST_SURELY_UNSET_PORT:-x1}\" is \"x1\", not a number (expected an integer 1-65535)",
            ),
            (
                17,
                8,
                "service `unset`: port: environment variable `RINGMASTER_TEST_SURELY_UNSET_PORT` is not set (give a default with `${RINGMASTER_TEST_SURELY_UNSET_PORT:-default}`)",
            ),
            (
                18,
                18,
                "service `unset` health tcp: port 99999999999999999999999 is out of range (1-65535)",
            ),
            (22, 8, "service `zero`: port 0 is out of range (1-65535)"),
        ],
    );
}

#[test]
fn ports_may_be_strings_with_variables() {
    // A name no other test touches; set before any parse that reads it.
    std::env::set_var("RINGMASTER_CFG_PORT_TEST", "9123");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    write(&root, "svc.env", "API_PORT=8124\n");
    let path = write(
        &root,
        "ringmaster.toml",
        r#"
[services.api]
command = "serve --port ${API_PORT:-8000}"
env_file = "svc.env"
port = "${API_PORT:-8000}"
health = { tcp = "${API_PORT:-8000}" }

[services.web]
command = "serve"
env = { WEB_PORT = "3001" }
port = "${WEB_PORT:-3000}"
health = { tcp = "${RINGMASTER_CFG_PORT_TEST:-1}" }

[services.defaults]
command = "serve"
port = "${RINGMASTER_CFG_PORT_TEST_UNSET:-8000}"

[services.plain]
command = "serve"
port = " 7000 "
health = { tcp = 7001 }
"#,
    );
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let port = |name: &str| config.services[name].port;
    let tcp = |name: &str| config.services[name].health.as_ref().unwrap().probe.clone();
    // env_file, then the env table, then the process environment, then the default.
    assert_eq!(port("api"), Some(8124));
    assert_eq!(tcp("api"), Probe::Tcp { port: 8124 });
    assert_eq!(config.services["api"].command, "serve --port 8124");
    assert_eq!(port("web"), Some(3001));
    assert_eq!(tcp("web"), Probe::Tcp { port: 9123 });
    assert_eq!(port("defaults"), Some(8000));
    assert_eq!(port("plain"), Some(7000));
    assert_eq!(tcp("plain"), Probe::Tcp { port: 7001 });

    // Expanded ports take part in the one-service-per-port check, at the value.
    let err = Config::parse(
        "[services.a]\ncommand = \"a\"\nport = 8000\n[services.b]\ncommand = \"b\"\nport = \"${RINGMASTER_CFG_PORT_TEST_UNSET:-8000}\"\n",
        Path::new("/srv/ringmaster.toml"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        shown("/srv/ringmaster.toml") + ":6:8: port 8000 is used by both `a` and `b`"
    );
}

#[test]
fn unknown_probe_kind() {
    assert_errors(
        "unknown_probe_kind.toml",
        &[(
            3,
            12,
            "service `api` health: unknown probe kind `grpc`; expected one of http, tcp, exec, log (besides interval, timeout, failures)",
        )],
    );
}

#[test]
fn more_than_one_probe_kind() {
    assert_errors(
        "two_probe_kinds.toml",
        &[(
            3,
            57,
            "service `api` health: more than one probe kind (http, tcp); choose one of http, tcp, exec, log or notify",
        )],
    );
}

#[test]
fn no_probe_kind() {
    assert_errors(
        "no_probe_kind.toml",
        &[(
            3,
            10,
            "service `api` health: no probe kind; expected one of http, tcp, exec, log or notify",
        )],
    );
}

#[test]
fn durations_that_do_not_parse() {
    assert_errors(
        "bad_duration.toml",
        &[
            (
                2,
                20,
                "settings: shutdown_timeout: invalid duration \"15\": the number 15 has no unit (expected ms, s, m or h)",
            ),
            (
                6,
                35,
                "service `api` health interval: invalid duration \"5 minutes\": the number 5 has no unit (expected ms, s, m or h)",
            ),
            (
                7,
                23,
                "service `api` restart backoff: invalid duration \"fast\": expected a number at \"fast\" (e.g. \"500ms\", \"30s\", \"1m30s\")",
            ),
            (8, 20, "service `api` stop timeout: invalid duration \"-1s\": a duration cannot be negative"),
        ],
    );
}

#[test]
fn signal_that_does_not_parse() {
    let errors = errors_of("bad_signal.toml");
    assert_eq!(errors.len(), 1, "{errors:?}");
    let (line, col, message) = &errors[0];
    assert_eq!((*line, *col), (3, 19));
    assert!(message.starts_with("service `api` stop: "), "{message}");
    assert!(message.contains("SIGFOO"), "{message}");
}

#[test]
fn unknown_keys_at_every_level() {
    assert_errors(
        "unknown_key.toml",
        &[
            (1, 1, "unknown key `title` at the top level; expected `settings` or `services`"),
            (
                5,
                1,
                "settings: unknown key `log_dir`; expected one of state_dir, shutdown_timeout, health_interval, metrics, log_max_bytes, start_window",
            ),
            (
                9,
                1,
                "service `api`: unknown key `comand`; expected one of command, workdir, env, env_file, port, allow, depends_on, health, restart, stop, ready_timeout, pid_file, install, follow_daemon, start_window",
            ),
            (
                10,
                32,
                "service `api` restart: unknown key `retries`; expected one of policy, max_attempts, backoff",
            ),
        ],
    );
}

#[test]
fn toml_syntax_errors_all_at_once() {
    assert_errors(
        "syntax_error.toml",
        &[
            (2, 19, "TOML syntax: invalid basic string, expected `\"`"),
            (5, 14, "TOML syntax: unclosed table, expected `]`"),
        ],
    );
}

#[test]
fn wrong_types() {
    assert_errors(
        "wrong_type.toml",
        &[
            (
                3,
                8,
                "service `api`: `port`: invalid type: boolean `true`, expected an integer or a string (a port such as 8000 or \"${API_PORT:-8000}\")",
            ),
            (
                4,
                9,
                "service `api`: `allow`: invalid type: string \"python\", expected a sequence",
            ),
        ],
    );
}

#[test]
fn https_health_urls_are_refused() {
    // The scheme in any case, after expansion; a plain http URL passes.
    let message = |name: &str, url: &str| {
        format!("service `{name}`: health url \"{url}\": https is not supported: ringmaster's HTTP probe has no TLS; use http:// on loopback, or a tcp/exec probe")
    };
    let got = errors_of("https_health_url.toml");
    let got_ref: Vec<(usize, usize, &str)> =
        got.iter().map(|(l, c, m)| (*l, *c, m.as_str())).collect();
    assert_eq!(
        got_ref,
        [
            (
                4,
                19,
                message("api", "https://127.0.0.1:8443/health").as_str()
            ),
            (8, 19, message("web", "HTTPS://localhost/").as_str()),
        ]
    );
}

#[test]
fn unknown_dependency_condition() {
    assert_errors(
        "unknown_condition.toml",
        &[(
            6,
            21,
            "service `api`: unknown condition \"healthy\" for dependency `db`; expected \"ready\", \"started\" or \"completed\"",
        )],
    );
}

#[test]
fn unknown_restart_policy() {
    assert_errors(
        "unknown_restart_policy.toml",
        &[(
            3,
            22,
            "service `api` restart: unknown policy \"unless-stopped\"; expected \"never\", \"on-failure\" or \"always\"",
        )],
    );
}

#[test]
fn metrics_must_be_a_socket_address() {
    assert_errors(
        "bad_metrics.toml",
        &[(2, 11, "settings: metrics \"localhost\" is not a socket address (expected e.g. \"127.0.0.1:9464\")")],
    );
}

#[test]
fn log_probe_regex_must_compile() {
    assert_errors(
        "bad_log_regex.toml",
        &[(
            3,
            18,
            "service `api`: invalid log regex \"Uvicorn running on (http\": unclosed group",
        )],
    );
}

#[test]
fn unset_variable_without_default() {
    assert_errors(
        "undefined_variable.toml",
        &[(
            2,
            11,
            "service `api`: command: environment variable `RINGMASTER_TEST_SURELY_UNSET_VAR` is not set (give a default with `${RINGMASTER_TEST_SURELY_UNSET_VAR:-default}`)",
        )],
    );
}

#[test]
fn service_names_must_be_file_names() {
    assert_errors(
        "bad_service_name.toml",
        &[(
            1,
            11,
            "invalid service name `my api` (expected letters, digits, `-`, `_` and `.`, not starting with `.` or `-`)",
        )],
    );
}

#[test]
fn every_error_at_once() {
    assert_errors(
        "many_errors.toml",
        &[
            (
                2,
                19,
                "settings: health_interval: invalid duration \"often\": expected a number at \"often\" (e.g. \"500ms\", \"30s\", \"1m30s\")",
            ),
            (5, 11, "service `api` has an empty command"),
            (
                7,
                57,
                "service `api` health: more than one probe kind (http, tcp); choose one of http, tcp, exec, log or notify",
            ),
            (11, 8, "port 8000 is used by both `api` and `web`"),
            (12, 22, "service `web` depends on unknown service `ghost`"),
            (
                13,
                22,
                "service `web` restart: unknown policy \"sometimes\"; expected \"never\", \"on-failure\" or \"always\"",
            ),
        ],
    );
}

#[test]
fn display_is_file_line_col() {
    let path = fixture("empty_command.toml");
    let err = Config::load(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2:11: service `api` has an empty command",
            path.display()
        )
    );
}

#[test]
fn unreadable_file_is_one_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let err = Config::load(&path).unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert_eq!(err.0[0].file, path);
    assert!(
        err.to_string().starts_with(&format!(
            "{}: cannot read the configuration",
            path.display()
        )),
        "{err}"
    );
}

// ---- the DESIGN example ---------------------------------------------------------

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

// ---- paths, ${VAR}, env_file ----------------------------------------------------

#[test]
fn relative_paths_resolve_against_the_config_folder() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let path = write(
        &root,
        "project/conf/ringmaster.toml",
        r#"
[settings]
state_dir = "../state"

[services.api]
command = "run"
workdir = "./api/../backend"
env_file = "api.env"
pid_file = "pids/api.pid"
install = { command = "pip install -r requirements.txt", unless_exists = ".venv" }

[services.abs]
command = "run"
workdir = "/opt/abs"
"#,
    );
    write(&root, "project/conf/api.env", "FROM_FILE=1\n");
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let conf = root.join("project/conf");
    assert_eq!(config.base_dir, conf);
    assert_eq!(config.settings.state_dir, root.join("project/state"));
    let api = &config.services["api"];
    assert_eq!(api.workdir, conf.join("backend"));
    assert_eq!(api.pid_file, conf.join("pids/api.pid"));
    assert_eq!(
        api.install.as_ref().unwrap().unless_exists.as_deref(),
        Some(conf.join("backend/.venv").as_path())
    );
    assert_eq!(api.env, [("FROM_FILE".to_string(), "1".to_string())]);
    let abs = &config.services["abs"];
    // Absolute stays as it is. On Windows `/opt/abs` is relative to the root of a
    // drive: the config folder's.
    let expected = if cfg!(windows) {
        let drive_root: PathBuf = conf.components().take(2).collect();
        drive_root.join("opt").join("abs")
    } else {
        PathBuf::from("/opt/abs")
    };
    assert_eq!(abs.workdir, expected);
    assert_eq!(
        abs.pid_file,
        root.join("project/state/abs.pid"),
        "default pid file under state_dir"
    );
}

#[test]
fn relative_config_path_resolves_against_the_current_directory() {
    let config = Config::parse(
        "[services.a]\ncommand = \"a\"\n",
        Path::new("some/where/ringmaster.toml"),
    )
    .unwrap();
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(config.base_dir, cwd.join("some/where"));
    assert_eq!(
        config.path.as_deref(),
        Some(cwd.join("some/where/ringmaster.toml").as_path())
    );
    assert_eq!(config.services["a"].workdir, cwd.join("some/where"));
    assert_eq!(
        config.settings.state_dir,
        cwd.join("some/where/.ringmaster")
    );
}

#[test]
fn variables_expand_in_command_env_workdir_and_probes() {
    // A name no other test touches; set before any parse that reads it.
    std::env::set_var("RINGMASTER_CFG_TEST_HOST", "127.0.0.9");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    write(
        &root,
        "svc.env",
        "APP_PORT=8123\nRINGMASTER_CFG_TEST_HOST=10.0.0.1\n",
    );
    let path = write(
        &root,
        "ringmaster.toml",
        r#"
[services.api]
command = "serve --host ${RINGMASTER_CFG_TEST_HOST} --port ${APP_PORT} --workers ${RINGMASTER_CFG_TEST_UNSET:-2} $HOME $${LITERAL}"
workdir = "${RINGMASTER_CFG_TEST_DIR:-backend}"
env_file = "svc.env"
env = { URL = "http://${RINGMASTER_CFG_TEST_HOST}:${APP_PORT}", PLAIN = "x" }
health = { http = "http://127.0.0.1:${APP_PORT}/health" }

[services.other]
command = "serve --host ${RINGMASTER_CFG_TEST_HOST}"
install = { command = "setup ${RINGMASTER_CFG_TEST_HOST}" }
health = { exec = "check ${RINGMASTER_CFG_TEST_HOST}" }
"#,
    );
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let api = &config.services["api"];
    // The env_file wins over the process environment, as the service itself sees it.
    assert_eq!(
        api.command,
        "serve --host 10.0.0.1 --port 8123 --workers 2 $HOME ${LITERAL}"
    );
    assert_eq!(api.workdir, root.join("backend"));
    assert_eq!(
        api.health.as_ref().unwrap().probe,
        Probe::Http {
            url: "http://127.0.0.1:8123/health".into()
        }
    );
    let env: std::collections::HashMap<_, _> = api.env.iter().cloned().collect();
    assert_eq!(env["URL"], "http://10.0.0.1:8123");
    assert_eq!(env["PLAIN"], "x");
    assert_eq!(env["APP_PORT"], "8123");
    let other = &config.services["other"];
    assert_eq!(other.command, "serve --host 127.0.0.9");
    assert_eq!(other.install.as_ref().unwrap().command, "setup 127.0.0.9");
    assert_eq!(
        other.health.as_ref().unwrap().probe,
        Probe::Exec {
            command: "check 127.0.0.9".into()
        }
    );
}

#[test]
fn variables_come_from_env_then_env_file_then_the_process() {
    // Names no other test touches; set before any parse that reads them.
    std::env::set_var("RINGMASTER_CFG_ORDER_PROC", "proc");
    std::env::set_var("RINGMASTER_CFG_ORDER_BOTH", "proc");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    write(
        &root,
        "svc.env",
        "PORT=1\nFILE_ONLY=f\nRINGMASTER_CFG_ORDER_PROC=file\n",
    );
    let path = write(
        &root,
        "ringmaster.toml",
        r#"
[services.api]
command = "run ${PORT} ${FROM_FILE} ${SELF} ${OTHER} ${FILE_ONLY} ${RINGMASTER_CFG_ORDER_PROC} ${RINGMASTER_CFG_ORDER_BOTH}"
workdir = "dir-${PORT}"
env_file = "svc.env"
env = { PORT = "2", FROM_FILE = "${FILE_ONLY}", SELF = "${PORT}", OTHER = "${FROM_FILE:-none}", RINGMASTER_CFG_ORDER_BOTH = "table" }
install = { command = "setup ${PORT}" }
health = { http = "http://127.0.0.1:${PORT}/health" }

[services.exec]
command = "run"
env = { PORT = 3 }
health = { exec = "check ${PORT}" }
"#,
    );
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let api = &config.services["api"];
    // The `env` table wins over the env_file, which wins over the process
    // environment; `env` values read the env_file and the process only (SELF is
    // the file's PORT, OTHER does not see FROM_FILE).
    assert_eq!(api.command, "run 2 f 1 none f file table");
    assert_eq!(api.workdir, root.join("dir-2"));
    assert_eq!(api.install.as_ref().unwrap().command, "setup 2");
    assert_eq!(
        api.health.as_ref().unwrap().probe,
        Probe::Http {
            url: "http://127.0.0.1:2/health".into()
        }
    );
    // What the command saw is what the service will see.
    let env: std::collections::HashMap<_, _> = api.env.iter().cloned().collect();
    assert_eq!(env["PORT"], "2");
    assert_eq!(env["FROM_FILE"], "f");
    assert_eq!(env["SELF"], "1");
    assert_eq!(env["OTHER"], "none");
    assert_eq!(env["RINGMASTER_CFG_ORDER_PROC"], "file");
    assert_eq!(env["RINGMASTER_CFG_ORDER_BOTH"], "table");
    assert_eq!(
        config.services["exec"].health.as_ref().unwrap().probe,
        Probe::Exec {
            command: "check 3".into()
        }
    );
}

#[test]
fn an_env_value_that_does_not_expand_is_one_error() {
    // The command using it does not report it a second time.
    let err = Config::parse(
        "[services.api]\ncommand = \"run ${BAD}\"\nenv = { BAD = \"${RINGMASTER_CFG_SURELY_UNSET}\" }\n",
        Path::new("/srv/ringmaster.toml"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        shown("/srv/ringmaster.toml") + ":3:15: service `api`: env BAD: environment variable `RINGMASTER_CFG_SURELY_UNSET` is not set (give a default with `${RINGMASTER_CFG_SURELY_UNSET:-default}`)"
    );
}

#[test]
fn env_file_entries_come_first_and_env_wins() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    write(
        &root,
        ".env",
        "# database\nDB_URL=\"postgres://localhost/app\"\nexport MODE=dev\nSHARED=from-file\nQUOTED='a # b'\n",
    );
    let path = write(
        &root,
        "ringmaster.toml",
        "[services.api]\ncommand = \"run\"\nenv_file = \".env\"\nenv = { SHARED = \"from-env\", EXTRA = \"1\" }\n",
    );
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let env: Vec<(&str, &str)> = config.services["api"]
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("DB_URL", "postgres://localhost/app"),
            ("MODE", "dev"),
            ("QUOTED", "a # b"),
            ("EXTRA", "1"),
            ("SHARED", "from-env"),
        ]
    );
}

#[test]
fn env_file_errors_point_into_the_env_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let env_path = write(
        &root,
        "api.env",
        "GOOD=1\nthis is not an assignment\nBAD KEY=2\n",
    );
    let path = write(
        &root,
        "ringmaster.toml",
        "[services.api]\ncommand = \"run\"\nenv_file = \"api.env\"\n\n[services.web]\ncommand = \"run\"\nenv_file = \"missing.env\"\n",
    );
    let errors = Config::load(&path).unwrap_err();
    let got: Vec<(PathBuf, usize, usize, String)> = errors
        .0
        .iter()
        .map(|e| (e.file.clone(), e.line, e.col, e.message.clone()))
        .collect();
    assert_eq!(got.len(), 3, "{errors}");
    assert_eq!((&got[0].0, got[0].1, got[0].2), (&env_path, 2, 1));
    assert_eq!(
        got[0].3,
        "env_file: expected KEY=VALUE, found \"this is not an assignment\""
    );
    assert_eq!((&got[1].0, got[1].1, got[1].2), (&env_path, 3, 1));
    assert!(
        got[1].3.contains("invalid variable name `BAD KEY`"),
        "{}",
        got[1].3
    );
    assert_eq!((&got[2].0, got[2].1, got[2].2), (&path, 7, 12));
    assert!(
        got[2].3.starts_with(&format!(
            "service `web`: cannot read env_file {}",
            root.join("missing.env").display()
        )),
        "{}",
        got[2].3
    );
}

// ---- the builder ----------------------------------------------------------------

#[test]
fn builder_makes_the_same_model_as_the_file() {
    let path = fixture("example.toml");
    let from_file = Config::load(&path).unwrap();
    let built = Config::builder(path.parent().unwrap())
        .state_dir(".ringmaster")
        .shutdown_timeout(Duration::from_secs(15))
        .health_interval(Duration::from_secs(30))
        .service(
            ServiceConfigBuilder::new(
                "api",
                "python -m uvicorn main:app --host 127.0.0.1 --port 8000 --reload",
            )
            .workdir("api")
            .env("PYTHONUNBUFFERED", "1")
            .port(8000)
            .allow(["python", "uvicorn"])
            .health_http("http://127.0.0.1:8000/health")
            .health_interval(Duration::from_secs(30))
            .health_timeout(Duration::from_secs(2))
            .health_failures(3)
            .restart(RestartPolicy::OnFailure)
            .max_attempts(3)
            .backoff(Duration::from_secs(1))
            .stop_signal(Signal::Term)
            .stop_timeout(Duration::from_secs(10))
            .pid_file(".dashboard_api.pid"),
        )
        .service(
            ServiceConfigBuilder::new("frontend", "npm run dev")
                .workdir("dashboard")
                .port(3000)
                .allow(["node", "npm", "next-server"])
                .depends_on("api")
                .install("npm install", Some("node_modules"))
                .health_http("http://127.0.0.1:3000/")
                .health_timeout(Duration::from_secs(20)),
        )
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(built.path, None);
    assert_eq!(
        format!("{:?}", built.settings),
        format!("{:?}", from_file.settings)
    );
    assert_eq!(
        format!("{:?}", built.services),
        format!("{:?}", from_file.services)
    );
}

#[test]
fn builder_runs_the_same_checks() {
    let errors: ConfigErrors = Config::builder("/srv/app")
        .service(
            ServiceConfigBuilder::new("api", "run")
                .port(8000)
                .depends_on("web"),
        )
        .service(
            ServiceConfigBuilder::new("web", "run")
                .port(8000)
                .depends_on("api"),
        )
        .service(
            ServiceConfigBuilder::new("job", "")
                .depends_on_condition("ghost", Condition::Completed),
        )
        .service(
            ServiceConfigBuilder::new("probe", "run")
                .health_tcp(0)
                .health_failures(0),
        )
        .service(ServiceConfigBuilder::new("url", "run").health_http("localhost:8000"))
        .service(ServiceConfigBuilder::new("tls", "run").health_http("https://127.0.0.1:8443/"))
        .build()
        .unwrap_err();
    let messages: Vec<String> = errors.0.iter().map(|e| e.to_string()).collect();
    assert!(errors
        .0
        .iter()
        .all(|e| e.file == Path::new(BUILDER_FILE) && e.line == 0 && e.col == 0));
    for expected in [
        "<builder>: service `job` has an empty command",
        "<builder>: service `job` depends on unknown service `ghost`",
        "<builder>: dependency cycle: api -> web -> api",
        "<builder>: port 8000 is used by both `api` and `web`",
        "<builder>: service `probe`: tcp probe port 0 is out of range (1-65535)",
        "<builder>: service `probe`: health failures must be at least 1",
        "<builder>: service `url`: health url \"localhost:8000\" is not an http:// URL with a host",
        "<builder>: service `tls`: health url \"https://127.0.0.1:8443/\": https is not supported: ringmaster's HTTP probe has no TLS; use http:// on loopback, or a tcp/exec probe",
    ] {
        assert!(messages.iter().any(|m| m == expected), "missing {expected:?} in {messages:#?}");
    }
    assert_eq!(messages.len(), 8, "{messages:#?}");
}

#[test]
fn builder_reads_env_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    write(&root, "api.env", "A=1\nB=2\n");
    let config = Config::builder(&root)
        .service(
            ServiceConfigBuilder::new("api", "run")
                .env_file("api.env")
                .env("B", "3"),
        )
        .build()
        .unwrap();
    assert_eq!(
        config.services["api"].env,
        [
            ("A".to_string(), "1".to_string()),
            ("B".to_string(), "3".to_string())
        ]
    );
}

#[test]
fn dependency_listed_twice() {
    assert_errors(
        "duplicate_dependency.toml",
        &[(6, 21, "service `api` lists dependency `db` twice")],
    );
}

#[test]
fn service_that_is_not_a_table() {
    // No "unknown service" for web's dependency and no "no command" for api:
    // only the error that explains it. Env values may be numbers and booleans,
    // not arrays.
    assert_errors(
        "service_not_a_table.toml",
        &[
            (2, 7, "service `api`: expected a table, found a string"),
            (
                3,
                107,
                "service `web`: `env`: invalid type: sequence, expected a string, number or boolean",
            ),
        ],
    );
}

#[test]
fn env_values_may_be_numbers_and_booleans() {
    let config = Config::parse(
        "[services.web]\ncommand = \"run\"\nenv = { PORT = 3000, DEBUG = true, RATIO = 0.5 }\n",
        Path::new("/srv/ringmaster.toml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let env: Vec<(&str, &str)> = config.services["web"]
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(env, [("DEBUG", "true"), ("PORT", "3000"), ("RATIO", "0.5")]);
}

#[test]
fn dependencies_on_external_services_such_as_plugins() {
    let text = "[services.web]\ncommand = \"run\"\ndepends_on = [\"gateway\"]\n";
    let path = Path::new("/srv/ringmaster.toml");
    let err = Config::parse(text, path).unwrap_err();
    assert_eq!(
        err.to_string(),
        shown("/srv/ringmaster.toml") + ":3:15: service `web` depends on unknown service `gateway`"
    );
    let config =
        Config::parse_with_external(text, path, &["gateway"]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.services["web"].depends_on[0].service, "gateway");
    assert_eq!(config.start_order(), ["web"]);

    let built = Config::builder("/srv")
        .external("gateway")
        .service(ServiceConfigBuilder::new("web", "run").depends_on("gateway"))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(built.services["web"].depends_on[0].service, "gateway");
    let err = Config::builder("/srv")
        .external("gateway")
        .service(ServiceConfigBuilder::new("web", "run").depends_on("gatewya"))
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "<builder>: service `web` depends on unknown service `gatewya` (did you mean `gateway`?)"
    );
}

// ---- stop.command and start_window ------------------------------------------------

#[test]
fn stop_command_and_start_window_load_with_their_defaults() {
    let c =
        Config::load(fixture("stop_command_start_window.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.settings.start_window, Duration::from_millis(250));
    let redis = &c.services["redis"];
    assert_eq!(
        redis.stop.command.as_deref(),
        Some("redis-cli -p 6390 shutdown"),
        "expanded from the service's env"
    );
    assert_eq!(redis.stop.timeout, Duration::from_secs(5));
    assert_eq!(redis.stop.signal, Signal::Term);
    assert_eq!(
        redis.start_window,
        Duration::from_millis(250),
        "the settings' default"
    );
    assert_eq!(c.services["job"].start_window, Duration::ZERO);
    assert_eq!(c.services["job"].stop.command, None);
    assert_eq!(c.services["slow"].start_window, Duration::from_secs(3));
    // Without [settings] start_window: 1 s.
    let example = Config::load(fixture("example.toml")).unwrap();
    assert_eq!(example.settings.start_window, Duration::from_secs(1));
    assert_eq!(example.services["api"].stop.command, None);
}

#[test]
fn stop_command_and_start_window_errors() {
    assert_errors(
        "bad_stop_command_start_window.toml",
        &[
            (3, 20, "service `api` has an empty stop command"),
            (
                5,
                16,
                "service `api`: start_window applies only to a service without a health probe (the probe decides when it is ready)",
            ),
            (
                9,
                16,
                "service `web` start_window: invalid duration \"soon\": expected a number at \"soon\" (e.g. \"500ms\", \"30s\", \"1m30s\")",
            ),
            (
                10,
                20,
                "service `web` stop: `command`: invalid type: integer `3`, expected a string",
            ),
        ],
    );
}

#[test]
fn builder_sets_stop_command_and_start_window() {
    let c = Config::builder("/srv/app")
        .start_window(Duration::from_millis(300))
        .service(
            ServiceConfigBuilder::new("nginx", "nginx -g 'daemon off;'")
                .stop_command("nginx -s quit")
                .stop_timeout(Duration::from_secs(4)),
        )
        .service(ServiceConfigBuilder::new("job", "true").start_window(Duration::ZERO))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.services["nginx"].stop.command.as_deref(),
        Some("nginx -s quit")
    );
    assert_eq!(c.services["nginx"].start_window, Duration::from_millis(300));
    assert_eq!(c.services["job"].start_window, Duration::ZERO);
    let errors = Config::builder("/srv/app")
        .service(
            ServiceConfigBuilder::new("api", "run")
                .health_tcp(8000)
                .start_window(Duration::from_secs(2))
                .stop_command(" "),
        )
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("<builder>: service `api`: start_window applies only to a service without a health probe"),
        "{errors}"
    );
    assert!(
        errors.contains("<builder>: service `api` has an empty stop command"),
        "{errors}"
    );
}
