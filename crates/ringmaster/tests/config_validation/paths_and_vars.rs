//! Relative paths, `${VAR}` expansion and `env_file`.
use super::*;

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
