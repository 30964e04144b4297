//! The builder: the same model and the same checks as a file; services
//! provided elsewhere (plugins).
use super::*;

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
