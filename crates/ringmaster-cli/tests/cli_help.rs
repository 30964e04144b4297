//! The clap surface of the built binary: `--version`, `--help` of every command
//! with an example, and exit 2 for usage errors. (Its presence also makes
//! `cargo test --workspace` build `target/debug/ringmaster`, which the end-to-end
//! tests in `tests/` drive.)
use assert_cmd::Command;

fn ringmaster() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringmaster"));
    cmd.env_remove("RUST_LOG");
    cmd
}

#[test]
fn version_names_the_program() {
    let out = ringmaster()
        .arg("--version")
        .output()
        .expect("run --version");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("ringmaster "), "{text}");
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
}

#[test]
fn every_command_has_help_with_an_example() {
    for command in [
        "up",
        "down",
        "status",
        "restart",
        "logs",
        "ports",
        "kill-port",
        "validate",
    ] {
        let out = ringmaster()
            .args([command, "--help"])
            .output()
            .expect("run --help");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{command} --help");
        assert!(
            text.contains("Example"),
            "{command} --help has an example:\n{text}"
        );
        assert!(
            text.contains("Exit"),
            "{command} --help names its exit codes:\n{text}"
        );
        assert!(
            text.contains(&format!("ringmaster {command}")),
            "{command} --help shows the command in use:\n{text}"
        );
    }
    let out = ringmaster().arg("--help").output().expect("run --help");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Exit codes"), "{text}");
    assert!(!text.contains("__serve"), "the internal command is hidden");
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["no-such-command"],
        vec!["kill-port"],
        vec!["kill-port", "not-a-port"],
        vec!["kill-port", "70000"],
        vec!["kill-port", "3000", "--grace", "soon"],
        vec!["ports", "--bogus"],
        vec!["status", "-v", "-q"],
        vec![],
    ] {
        let out = ringmaster().args(&args).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
