//! One fixture per validation rule under `tests/configs/`, with its message
//! and `line:col`; every error at once; how an error reads.
use super::*;

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
                "service `api`: unknown key `comand`; expected one of command, workdir, env, env_file, port, allow, depends_on, health, restart, stop, ready_timeout, pid_file, install, follow_daemon, start_window, replicas, min_ready, replica_ports",
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
            "service `api`: invalid log regex \"Uvicorn running on (http\": found open group without closing ')'",
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
