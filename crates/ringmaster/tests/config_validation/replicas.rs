//! `replicas`, `min_ready` and `replica_ports`: the keys, their errors (each at
//! its `line:col`), a member's configuration ([`ServiceConfig::replica`]), member
//! names, the builder, JSON and what a reload compares.
use super::*;

use ringmaster::config::{replica_name, replica_of, ServiceConfig};

fn parse(toml: &str) -> Config {
    Config::parse(toml, Path::new("/srv/app/ringmaster.toml")).unwrap_or_else(|e| panic!("{e}"))
}

/// `(line, col, message)` of every error of `toml`.
fn errors_in(toml: &str) -> Vec<(usize, usize, String)> {
    match Config::parse(toml, Path::new("/srv/app/ringmaster.toml")) {
        Ok(c) => panic!("should not load, got {c:#?}"),
        Err(e) => {
            e.0.into_iter()
                .map(|e| (e.line, e.col, e.message))
                .collect()
        }
    }
}

fn assert_errors_in(toml: &str, expected: &[(usize, usize, &str)]) {
    let got = errors_in(toml);
    let got: Vec<(usize, usize, &str)> = got.iter().map(|(l, c, m)| (*l, *c, m.as_str())).collect();
    assert_eq!(got, expected);
}

fn abs(p: &str) -> PathBuf {
    std::path::absolute(p).expect("absolute")
}

fn env_of(svc: &ServiceConfig) -> std::collections::BTreeMap<&str, &str> {
    svc.env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

const API: &str = r#"
[services.api]
command = "uvicorn main:app --port ${PORT} --name api-${REPLICA}"
workdir = "work/${REPLICA}"
port = 8000
replicas = 3
env = { URL = "http://127.0.0.1:${PORT}/", ID = "${REPLICA:-none}", PLAIN = "x" }
health = { http = "http://127.0.0.1:${PORT}/health" }
stop = { command = "kill-member ${REPLICA} ${PORT}" }
install = { command = "setup ${REPLICA}", unless_exists = "venv" }
pid_file = "pids/api-${REPLICA}.pid"
depends_on = ["db"]
allow = ["python"]

[services.db]
command = "postgres"
"#;

#[test]
fn replicas_load_with_their_defaults() {
    let c = parse(API);
    let api = &c.services["api"];
    assert_eq!(api.replicas, Some(3));
    assert_eq!(api.min_ready, 1);
    assert_eq!(api.replica_ports, None);
    let db = &c.services["db"];
    assert_eq!(
        (db.replicas, db.min_ready, db.replica_ports),
        (None, 1, None)
    );
    let c = parse(&API.replace(
        "replicas = 3",
        "replicas = 3\nmin_ready = 2\nreplica_ports = \" 9100 - 9102 \"",
    ));
    let api = &c.services["api"];
    assert_eq!(api.min_ready, 2);
    assert_eq!(api.replica_ports, Some((9100, 9102)));
}

#[test]
fn a_member_has_its_index_and_port_everywhere() {
    let c = parse(API);
    let api = &c.services["api"];
    let m = api.replica(2, Some(41002));
    assert_eq!(m.name, "api#2");
    assert_eq!(m.command, "uvicorn main:app --port 41002 --name api-2");
    assert_eq!(m.workdir, abs("/srv/app/work/2"));
    assert_eq!(m.port, Some(41002));
    let env = env_of(&m);
    assert_eq!(env["URL"], "http://127.0.0.1:41002/");
    assert_eq!(env["ID"], "2", "`${{REPLICA:-x}}` is the index too");
    assert_eq!(env["PLAIN"], "x");
    assert_eq!(env["PORT"], "41002", "PORT is in the member's environment");
    assert_eq!(
        m.health.as_ref().expect("a probe").probe,
        Probe::Http {
            url: "http://127.0.0.1:41002/health".into()
        }
    );
    assert_eq!(m.stop.command.as_deref(), Some("kill-member 2 41002"));
    let install = m.install.as_ref().expect("an install step");
    assert_eq!(install.command, "setup 2");
    assert_eq!(
        install.unless_exists.as_deref(),
        Some(abs("/srv/app/work/2/venv").as_path()),
        "beside the member's own workdir"
    );
    assert_eq!(m.pid_file, abs("/srv/app/pids/api-2.pid"));
    // A member is a plain service; the rest is the service's.
    assert_eq!((m.replicas, m.min_ready, m.replica_ports), (None, 1, None));
    assert_eq!(m.depends_on, api.depends_on);
    assert_eq!(m.allow, api.allow);
    assert_eq!(m.restart, api.restart);
    assert_eq!(m.ready_timeout, api.ready_timeout);
    assert_eq!(m.follow_daemon, api.follow_daemon);
    // Another member, another index and port: nothing is shared but the text.
    let m0 = api.replica(0, Some(41000));
    assert_eq!(m0.command, "uvicorn main:app --port 41000 --name api-0");
    assert_eq!(m0.pid_file, abs("/srv/app/pids/api-0.pid"));
    // The service's own configuration keeps its marks: no member's text, no
    // environment lookup at load time.
    assert!(!api.command.contains("41002"));
    assert_ne!(api.command, m0.command);
    assert!(!api.env.iter().any(|(k, _)| k == "PORT"));
}

#[test]
fn a_default_pid_file_gets_the_member_index() {
    let c = parse(
        "[settings]\nstate_dir = \"state\"\n[services.w]\ncommand = \"work\"\nreplicas = 2\n",
    );
    let w = &c.services["w"];
    assert_eq!(w.pid_file, abs("/srv/app/state/w.pid"));
    assert_eq!(w.replica(1, None).pid_file, abs("/srv/app/state/w#1.pid"));
    // Given explicitly, the default path itself is accepted too.
    let c =
        parse("[services.w]\ncommand = \"work\"\nreplicas = 2\npid_file = \".ringmaster/w.pid\"\n");
    assert_eq!(
        c.services["w"].replica(0, None).pid_file,
        abs("/srv/app/.ringmaster/w#0.pid")
    );
}

#[test]
fn a_tcp_probe_of_the_service_port_checks_each_member() {
    for tcp in ["\"${PORT}\"", "\"${PORT:-1}\"", "8000", "\" ${PORT} \""] {
        let c = parse(&format!(
            "[services.api]\ncommand = \"serve ${{PORT}}\"\nport = 8000\nreplicas = 2\nhealth = {{ tcp = {tcp} }}\n"
        ));
        let api = &c.services["api"];
        assert_eq!(
            api.health.as_ref().expect("a probe").probe,
            Probe::Tcp { port: 8000 },
            "{tcp}: the service's port in its own configuration"
        );
        assert_eq!(
            api.replica(1, Some(9001)).health.expect("a probe").probe,
            Probe::Tcp { port: 9001 },
            "{tcp}: the member's own port"
        );
    }
    // Another port is probed as written.
    let c = parse(
        "[services.api]\ncommand = \"serve\"\nport = 8000\nreplicas = 2\nhealth = { tcp = 7000 }\n",
    );
    assert_eq!(
        c.services["api"]
            .replica(0, Some(9000))
            .health
            .expect("a probe")
            .probe,
        Probe::Tcp { port: 7000 }
    );
}

#[test]
fn without_a_port_members_are_workers_and_port_is_read_as_usual() {
    let c = parse(
        r#"
[services.worker]
command = "work --id ${REPLICA} --api ${PORT}"
replicas = 4
env = { PORT = "8000" }
"#,
    );
    let w = &c.services["worker"];
    assert_eq!(w.port, None);
    let m = w.replica(3, None);
    assert_eq!(m.name, "worker#3");
    assert_eq!(m.command, "work --id 3 --api 8000", "PORT from `env`");
    assert_eq!(m.port, None);
    assert_eq!(env_of(&m)["PORT"], "8000", "not replaced without a port");
    assert_eq!(m.env.len(), 1);
}

#[test]
fn a_plain_service_reads_port_and_replica_from_its_environment() {
    let c = parse(
        r#"
[services.api]
command = "serve --port ${PORT} --id ${REPLICA:-solo}"
port = "${PORT}"
env = { PORT = "8123" }
pid_file = "run/${PORT}.pid"
"#,
    );
    let api = &c.services["api"];
    assert_eq!(api.command, "serve --port 8123 --id solo");
    assert_eq!(api.port, Some(8123));
    assert_eq!(api.replicas, None);
    assert_eq!(
        api.pid_file,
        abs("/srv/app/run/8123.pid"),
        "pid_file expands ${{VAR}} like workdir"
    );
}

#[test]
fn replica_errors_name_their_place() {
    assert_errors_in(
        r#"[services.zero]
command = "run"
replicas = 0

[services.negative]
command = "run"
replicas = -2
min_ready = 1

[services.alone]
command = "run"
min_ready = 2
replica_ports = "9100-9199"

[services.few]
command = "run ${REPLICA}"
port = 8000
replicas = 3
min_ready = 4
replica_ports = "9100-9101"

[services.inside]
command = "run"
port = 9150
replicas = 2
replica_ports = "9100-9199"
min_ready = 0

[services.shapes]
command = "run"
port = 8100
replicas = 2
replica_ports = "9100"

[services.range]
command = "run"
port = 8200
replicas = 2
replica_ports = "9100-70000"

[services.upside]
command = "run"
port = 8300
replicas = 2
replica_ports = "9199-9100"

[services.noport]
command = "run"
replicas = 2
replica_ports = "9100-9199"
"#,
        &[
            (3, 12, "service `zero`: replicas must be at least 1"),
            (7, 12, "service `negative`: replicas must be at least 1"),
            (
                12,
                13,
                "service `alone`: min_ready applies only to a service with `replicas`",
            ),
            (
                13,
                17,
                "service `alone`: replica_ports applies only to a service with `replicas` and a `port`",
            ),
            (
                19,
                13,
                "service `few`: min_ready must be between 1 and replicas (3)",
            ),
            (
                20,
                17,
                "service `few`: replica_ports \"9100-9101\" holds 2 port(s), fewer than replicas (3)",
            ),
            (
                26,
                17,
                "service `inside`: replica_ports \"9100-9199\" contains the service's own port 9150, where ringmaster listens",
            ),
            (
                27,
                13,
                "service `inside`: min_ready must be between 1 and replicas (2)",
            ),
            (
                33,
                17,
                "service `shapes`: replica_ports \"9100\" is not a range of ports (expected \"FIRST-LAST\", such as \"9100-9199\")",
            ),
            (
                39,
                17,
                "service `range`: replica_ports \"9100-70000\": port 70000 is out of range (1-65535)",
            ),
            (
                45,
                17,
                "service `upside`: replica_ports \"9199-9100\": the first port is above the last",
            ),
            (
                50,
                17,
                "service `noport`: replica_ports applies only to a service with `replicas` and a `port`",
            ),
        ],
    );
}

#[test]
fn a_replicated_service_needs_its_own_pid_files_port_and_install() {
    assert_errors_in(
        r#"[services.api]
command = "serve"
port = 8000
replicas = 2
env = { PORT = "8000", OTHER = "1" }
pid_file = "api.pid"
install = { command = "npm install" }
health = { http = "http://localhost:8000/health" }

[services.ports]
command = "serve"
port = "${PORT:-8001}"
replicas = 2

[services.index]
command = "serve"
port = "80${REPLICA}"
replicas = 2
health = { tcp = "1${PORT}" }

[services.probe]
command = "serve"
port = 8002
replicas = 2
health = { tcp = "${REPLICA}" }

[services.balanced]
command = "serve"
port = 80
replicas = 2
health = { http = "http://127.0.0.1/health" }
"#,
        &[
            (
                5,
                9,
                "service `api`: `PORT` is set by ringmaster to each replica's own port; remove it from `env`",
            ),
            (
                6,
                12,
                "service `api`: each replica needs a PID file of its own: put `${REPLICA}` in `pid_file`",
            ),
            (
                7,
                11,
                "service `api`: each replica runs the install step when it is prepared; give `unless_exists` so that it runs once",
            ),
            (
                8,
                19,
                "service `api`: health url \"http://localhost:8000/health\" goes to port 8000, where ringmaster listens, not to a replica: write `${PORT}` (each replica's own port) for the port",
            ),
            (
                12,
                8,
                "service `ports`: `${PORT}` cannot be used in `port` (with `replicas`, it is each replica's own; `port` is where ringmaster listens)",
            ),
            (
                17,
                8,
                "service `index`: `${REPLICA}` cannot be used in `port` (with `replicas`, it is each replica's own; `port` is where ringmaster listens)",
            ),
            (
                19,
                18,
                "service `index` health tcp: `${PORT}` can only be the whole value (`tcp = \"${PORT}\"`: each replica's own port)",
            ),
            (
                25,
                18,
                "service `probe` health tcp: `${REPLICA}` cannot be used in a port",
            ),
            (
                31,
                19,
                "service `balanced`: health url \"http://127.0.0.1/health\" goes to port 80, where ringmaster listens, not to a replica: write `${PORT}` (each replica's own port) for the port",
            ),
        ],
    );
}

#[test]
fn port_from_an_env_file_is_an_error_with_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    write(&root, "api.env", "PORT=3000\nMODE=dev\n");
    let path = write(
        &root,
        "ringmaster.toml",
        "[services.api]\ncommand = \"serve\"\nport = 8000\nreplicas = 2\nenv_file = \"api.env\"\n\n[services.worker]\ncommand = \"work\"\nreplicas = 2\nenv_file = \"api.env\"\n",
    );
    let errors = Config::load(&path).expect_err("PORT in the env_file");
    let got: Vec<_> = errors
        .0
        .iter()
        .map(|e| (e.line, e.col, e.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [(
            5,
            12,
            "service `api`: `PORT` is set by ringmaster to each replica's own port; remove it from the env_file"
        )],
        "a service without a port may keep it"
    );
}

#[test]
fn member_names() {
    assert_eq!(replica_name("api", 0), "api#0");
    assert_eq!(replica_name("web-1.eu", 12), "web-1.eu#12");
    assert_eq!(replica_of("api#3"), Some(("api", 3)));
    assert_eq!(replica_of("web-1.eu#12"), Some(("web-1.eu", 12)));
    assert_eq!(replica_of("api#0"), Some(("api", 0)));
    for plain in [
        "api",
        "api#",
        "#3",
        "api#x",
        "api#03",
        "api#+3",
        "a#1#2",
        "api#99999999999",
    ] {
        assert_eq!(replica_of(plain), None, "{plain}");
    }
}

#[test]
fn a_replicated_service_as_json() {
    let config = parse("[services.db]\ncommand = \"postgres\"\n");
    let json = serde_json::json!({
        "name": "api",
        "command": "serve --port ${PORT} --id ${REPLICA}",
        "port": 8000,
        "replicas": 3,
        "min_ready": 2,
        "replica_ports": "9100-9199",
        "health": {"tcp": "${PORT}"},
    });
    let svc = config.service_from_json(&json, &["db"]).expect("valid");
    assert_eq!(svc.replicas, Some(3));
    assert_eq!(svc.min_ready, 2);
    assert_eq!(svc.replica_ports, Some((9100, 9199)));
    let m = svc.replica(1, Some(9101));
    assert_eq!(m.command, "serve --port 9101 --id 1");
    assert_eq!(m.health.expect("a probe").probe, Probe::Tcp { port: 9101 });
    let json = serde_json::json!({"name": "w", "command": "x", "min_ready": 2});
    let text = config
        .service_from_json(&json, &["db"])
        .expect_err("min_ready without replicas")
        .to_string();
    assert!(
        text.contains(
            "service `w` (JSON): service `w`: min_ready applies only to a service with `replicas`"
        ),
        "{text}"
    );
}

#[test]
fn the_builder_makes_the_same_replicated_service() {
    let from_file = parse(
        r#"
[services.api]
command = "serve --port ${PORT} --id ${REPLICA}"
port = 8000
replicas = 3
min_ready = 2
replica_ports = "9100-9199"
env = { URL = "http://127.0.0.1:${PORT}" }
health = { http = "http://127.0.0.1:${PORT}/health" }
pid_file = "run/api-${REPLICA}.pid"
"#,
    );
    let built = Config::builder("/srv/app")
        .service(
            ServiceConfigBuilder::new("api", "serve --port ${PORT} --id ${REPLICA}")
                .port(8000)
                .replicas(3)
                .min_ready(2)
                .replica_ports(9100, 9199)
                .env("URL", "http://127.0.0.1:${PORT}")
                .health_http("http://127.0.0.1:${PORT}/health")
                .pid_file("run/api-${REPLICA}.pid"),
        )
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let (file, built) = (&from_file.services["api"], &built.services["api"]);
    assert_eq!(built.replicas, file.replicas);
    assert_eq!(built.min_ready, file.min_ready);
    assert_eq!(built.replica_ports, file.replica_ports);
    assert_eq!(built.command, file.command);
    assert_eq!(built.health, file.health);
    assert_eq!(built.pid_file, file.pid_file);
    assert_eq!(env_of(built)["URL"], env_of(file)["URL"]);
    let m = built.replica(2, Some(9102));
    assert_eq!(m.command, "serve --port 9102 --id 2");
    assert_eq!(m.pid_file, abs("/srv/app/run/api-2.pid"));
    assert_eq!(env_of(&m)["URL"], "http://127.0.0.1:9102");
    // Without replicas the builder takes its text as given.
    let plain = Config::builder("/srv/app")
        .service(ServiceConfigBuilder::new("p", "serve ${PORT}").port(8000))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plain.services["p"].command, "serve ${PORT}");
}

#[test]
fn the_builder_runs_the_same_replica_checks() {
    let errors = Config::builder("/srv/app")
        .service(
            ServiceConfigBuilder::new("zero", "run")
                .replicas(0)
                .min_ready(1),
        )
        .service(ServiceConfigBuilder::new("alone", "run").min_ready(2))
        .service(
            ServiceConfigBuilder::new("api", "run")
                .port(8000)
                .replicas(2)
                .min_ready(3)
                .replica_ports(7990, 8010)
                .env("PORT", "1")
                .pid_file("api.pid")
                .install("npm install", None::<&str>),
        )
        .service(
            ServiceConfigBuilder::new("few", "run")
                .port(8100)
                .replicas(4)
                .replica_ports(9000, 9002),
        )
        .service(
            ServiceConfigBuilder::new("noport", "run")
                .replicas(2)
                .replica_ports(9100, 9199),
        )
        .build()
        .unwrap_err();
    let text = errors.to_string();
    for expected in [
        "<builder>: service `zero`: replicas must be at least 1",
        "<builder>: service `alone`: min_ready applies only to a service with `replicas`",
        "<builder>: service `api`: min_ready must be between 1 and replicas (2)",
        "<builder>: service `api`: replica_ports \"7990-8010\" contains the service's own port 8000, where ringmaster listens",
        "<builder>: service `api`: `PORT` is set by ringmaster to each replica's own port; remove it from `env`",
        "<builder>: service `api`: each replica needs a PID file of its own: put `${REPLICA}` in `pid_file`",
        "<builder>: service `api`: each replica runs the install step when it is prepared; give `unless_exists` so that it runs once",
        "<builder>: service `few`: replica_ports \"9000-9002\" holds 3 port(s), fewer than replicas (4)",
        "<builder>: service `noport`: replica_ports applies only to a service with `replicas` and a `port`",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert_eq!(errors.0.len(), 9, "{text}");
    assert!(errors.0.iter().all(|e| e.file == Path::new(BUILDER_FILE)));
}

#[test]
fn a_reload_scales_in_place_and_restarts_for_new_ports() {
    const BASE: &str = "[services.api]\ncommand = \"serve\"\nport = 8000\nreplicas = 2\n";
    let old = parse(BASE);
    let diff = |new: &str| old.services["api"].changes(&parse(new).services["api"]);
    assert!(diff(BASE).is_empty());
    let d = diff(&BASE.replace("replicas = 2", "replicas = 4\nmin_ready = 3"));
    assert!(d.restart.is_empty(), "{d:?}");
    assert_eq!(d.in_place, vec!["replicas", "min_ready"]);
    let d = diff(&format!(
        "{BASE}replica_ports = \"9100-9199\"\nstop = {{ timeout = \"1s\" }}\n"
    ));
    assert_eq!(d.restart, vec!["replica_ports"]);
    assert_eq!(d.in_place, vec!["stop"]);
    let d = diff("[services.api]\ncommand = \"serve\"\nport = 8000\n");
    assert_eq!(d.in_place, vec!["replicas"], "a plain service from here on");
}
