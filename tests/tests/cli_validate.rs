//! `ringmaster validate`: one broken configuration per rule, each reported with
//! `file:line:col` and exit 2; a configuration with many errors reports them all
//! (snapshot); a clean one prints `ok: N services` with exit 0. Commands that read
//! a configuration exit 2 on the same errors.
mod cli_support;

use cli_support::*;

/// (rule, configuration, a piece of the expected message, line of the error)
const BROKEN: &[(&str, &str, &str, usize)] = &[
    (
        "unknown dependency",
        "[services.web]\ncommand = \"run\"\ndepends_on = [\"ghost\"]\n",
        "ghost",
        3,
    ),
    (
        "dependency cycle",
        "[services.a]\ncommand = \"run\"\ndepends_on = [\"b\"]\n\n[services.b]\ncommand = \"run\"\ndepends_on = [\"a\"]\n",
        "cycle",
        7,
    ),
    (
        "two services on one port",
        "[services.a]\ncommand = \"run\"\nport = 8000\n\n[services.b]\ncommand = \"run\"\nport = 8000\n",
        "8000",
        7,
    ),
    ("empty command", "[services.a]\ncommand = \"\"\n", "empty command", 2),
    (
        "port out of range",
        "[services.a]\ncommand = \"run\"\nport = 70000\n",
        "port",
        3,
    ),
    (
        "unknown probe kind",
        "[services.a]\ncommand = \"run\"\nhealth = { grpc = \"127.0.0.1:9000\" }\n",
        "grpc",
        3,
    ),
    (
        "duration that does not parse",
        "[settings]\nshutdown_timeout = \"soon\"\n\n[services.a]\ncommand = \"run\"\n",
        "soon",
        2,
    ),
    (
        "unknown key",
        "[services.a]\ncommand = \"run\"\nportt = 8000\n",
        "portt",
        3,
    ),
    (
        "TOML syntax",
        "[services.a]\ncommand = \"run\n",
        "",
        2,
    ),
];

#[test]
fn each_rule_is_reported_with_file_line_col_and_exit_2() {
    for (rule, toml, expected, line) in BROKEN {
        let p = Project::with_config(toml);
        let out = p.rm().arg("validate").output().expect("validate");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{rule}: {err}");
        let file = p.path().join("ringmaster.toml");
        let place = format!("{}:{line}:", file.display());
        assert!(err.contains(&place), "{rule}: expected {place} in:\n{err}");
        assert!(
            err.contains(expected),
            "{rule}: expected `{expected}` in:\n{err}"
        );
        assert!(!has_escape(&err));
        // Every command that reads the configuration refuses it the same way.
        for cmd in [["status", "--json"], ["down", "-q"], ["up", "-q"]] {
            p.rm().args(cmd).assert().code(2);
        }
    }
}

#[test]
fn every_error_of_a_file_is_reported_at_once() {
    let p = Project::with_config(
        r#"[settings]
health_interval = "often"

[services.api]
command = ""
port = 8000
health = { http = "http://127.0.0.1:8000/health", tcp = 8000 }

[services.web]
command = "run-web"
port = 8000
depends_on = ["api", "ghost"]
restart = { policy = "sometimes", max_attempts = 3 }
"#,
    );
    let out = p.rm().arg("validate").output().expect("validate");
    assert_eq!(out.status.code(), Some(2));
    let dir = p.path().display().to_string();
    let err = text(&out.stderr).replace(&dir, "[dir]");
    insta::assert_snapshot!("validate_many_errors", err);
}

#[test]
fn a_clean_configuration_is_ok() {
    let p = Project::with_config(&two_services(18000, 18001));
    let out = p.rm().arg("validate").output().expect("validate");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ok: 2 services\n");
    // -f names another file; a missing file is a configuration error.
    let other = p.write("other.toml", "[services.one]\ncommand = \"run\"\n");
    let out = p
        .rm()
        .args(["validate", "-f"])
        .arg(&other)
        .output()
        .expect("validate -f");
    assert_eq!(text(&out.stdout), "ok: 1 service\n");
    p.rm()
        .args(["validate", "-f", "missing.toml"])
        .assert()
        .code(2);
}
