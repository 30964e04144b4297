//! The guide's own bot: docs/embedding.md opens with a complete `main`, which is
//! `examples/embedding.rs` word for word (checked here; the guide's blocks are
//! also compiled as doc tests of the ringmaster crate). The example is run end to
//! end on a free port: its service becomes ready and answers, SIGINT makes it shut
//! down, it exits 0 with the shutdown report, and the OS shows nothing of its
//! service left (no process carrying the tag, the port free).
use std::fs;
use std::path::{Path, PathBuf};

/// The workspace root (the folder of the workspace Cargo.toml).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the workspace root")
        .to_path_buf()
}

/// The first ```rust block of `markdown` (its body, without the fences).
fn first_rust_block(markdown: &str) -> Option<String> {
    let mut lines = markdown.lines();
    lines.find(|l| l.starts_with("```rust"))?;
    let body: Vec<&str> = lines.take_while(|l| *l != "```").collect();
    Some(body.join("\n") + "\n")
}

#[test]
fn the_guide_opens_with_the_example_word_for_word() {
    let root = workspace_root();
    let guide = fs::read_to_string(root.join("docs/embedding.md")).expect("the guide");
    let block = first_rust_block(&guide).expect("a rust block");
    let example = fs::read_to_string(root.join("examples/embedding.rs")).expect("the example");
    assert_eq!(
        block, example,
        "docs/embedding.md's first block and examples/embedding.rs differ"
    );
    assert!(block.contains("fn main()") && block.contains(".shutdown("));
}

#[cfg(unix)]
mod run {
    use std::io::{BufRead, BufReader, Read};
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use ringmaster_os::process::{members, snapshot};
    use ringmaster_os::{project_id, Tag};
    use ringmaster_tests::{built_path, free_port, port_answers, PidGuard};

    use super::workspace_root;

    const LONG: Duration = Duration::from_secs(60);

    fn tagged(state_dir: &Path, service: &str) -> Vec<u32> {
        let tag = Tag::new(project_id(state_dir), service);
        let table = snapshot().expect("process table");
        members(&table, None, None, Some(&tag))
            .iter()
            .filter(|p| !p.zombie)
            .map(|p| p.pid)
            .collect()
    }

    #[test]
    fn the_guides_main_runs_end_to_end_and_stops_on_sigint() {
        // Built here, so that the binary is this tree's.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let built = Command::new(cargo)
            .args([
                "build",
                "-q",
                "-p",
                "ringmaster-examples",
                "--example",
                "embedding",
            ])
            .current_dir(workspace_root())
            .status()
            .expect("cargo runs");
        assert!(built.success(), "building the example failed");

        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let guard = PidGuard::new();
        let mut bot = Command::new(built_path("examples/embedding"))
            .arg(port.to_string())
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the example starts");
        guard.add(bot.id());
        let stdout = bot.stdout.take().expect("piped");
        let mut stderr = bot.stderr.take().expect("piped");
        let errors = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut out: Vec<String> = Vec::new();
        let deadline = Instant::now() + LONG;
        while !out.iter().any(|l| l.starts_with("bot: ready")) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => out.push(line),
                Err(_) => panic!("the example never got ready: {out:?}"),
            }
        }
        let state_dir = dir.path().join(".ringmaster");
        let running = tagged(&state_dir, "web");
        running.iter().for_each(|p| guard.add(*p));
        assert!(!running.is_empty(), "web runs: {out:?}");
        assert!(port_answers(port), "web answers on {port}");
        assert!(
            out.iter()
                .any(|l| l.starts_with("web: ready, pid ") && l.contains(&format!("port {port}"))),
            "{out:?}"
        );
        assert!(
            out.iter()
                .any(|l| l.starts_with("[event] web: starting (pid ")),
            "{out:?}"
        );

        // Ctrl-C.
        // SAFETY: a plain kill(2) of the child we spawned, by its pid.
        assert_eq!(
            unsafe { libc::kill(bot.id() as libc::pid_t, libc::SIGINT) },
            0
        );
        let until = Instant::now() + LONG;
        let status = loop {
            if let Some(status) = bot.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > until {
                // Say where it stood: its output so far and its log lines.
                let _ = bot.kill();
                let _ = bot.wait();
                out.extend(rx.try_iter());
                let errors = errors.join().unwrap_or_default();
                panic!("the example did not exit within {LONG:?} of SIGINT:\n{out:#?}\n{errors}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let errors = errors.join().expect("stderr");
        out.extend(rx.try_iter());
        assert!(
            status.success(),
            "exit 0 after Ctrl-C: {status:?}\n{out:?}\n{errors}"
        );
        assert!(out.iter().any(|l| l == "bot: Ctrl-C"), "{out:?}");
        assert!(
            out.iter().any(|l| l.starts_with("stopped in ")),
            "the report: {out:?}"
        );
        assert!(
            out.iter()
                .any(|l| l.starts_with("  web  stopped gracefully") && l.ends_with("; port free")),
            "{out:?}"
        );
        assert!(!errors.contains("dropped without shutdown"), "{errors}");
        assert!(tagged(&state_dir, "web").is_empty());
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} free"
        );
    }
}
