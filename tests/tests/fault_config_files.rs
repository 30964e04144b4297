//! Broken configuration files are errors, never a panic, a crash or a hang: a valid
//! file cut at every byte, binary files (not UTF-8, and UTF-8 full of control
//! characters and NULs), a file over the 4 MiB limit (refused before it is read
//! whole), and nesting far deeper than anyone writes (arrays, inline tables,
//! dotted keys, table headers). In the library (`Config::parse`, `Config::load`)
//! and through the binary: `validate` exits 2 with `path:line:col`, and `up -d`
//! exits 2 without starting an instance.

mod cli_support;

use std::path::Path;
use std::time::{Duration, Instant};

use cli_support::*;
use ringmaster::Config;

/// A valid configuration using most keys.
const VALID: &str = r#"[settings]
state_dir = ".ringmaster"
shutdown_timeout = "15s"
health_interval = "30s"

[services.api]
command = "python -m uvicorn main:app --port 8000"
workdir = "."
env = { PYTHONUNBUFFERED = "1", MODE = "dev" }
port = 8000
allow = ["python", "uvicorn"]
health = { http = "http://127.0.0.1:8000/health", interval = "30s", timeout = "2s", failures = 3 }
restart = { policy = "on-failure", max_attempts = 3, backoff = "1s" }
stop = { signal = "TERM", timeout = "10s" }

[services.web]
command = "npm run dev"
port = 3000
depends_on = ["api"]
install = { command = "npm install", unless_exists = "node_modules" }
health = { tcp = 3000 }
"#;

/// Parses `text` in the library; a panic fails the test with `what`.
fn parse_no_panic(what: &str, text: &str) -> Result<Config, ringmaster::config::ConfigErrors> {
    let text = text.to_string();
    std::panic::catch_unwind(move || Config::parse(&text, Path::new("/tmp/ringmaster.toml")))
        .unwrap_or_else(|_| panic!("Config::parse panicked on {what}"))
}

/// `validate -f NAME` in `p` must exit 2 and name the file with a position;
/// `up -d -f NAME` must exit 2 and leave no instance.
fn refused_by_the_binary(p: &Project, name: &str, expect: &str) {
    let started = Instant::now();
    let out = p
        .rm()
        .args(["validate", "-f", name])
        .output()
        .expect("validate");
    let err = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{name}: {err}");
    assert!(err.contains(name) && err.contains(expect), "{name}: {err}");
    let up = p
        .rm()
        .args(["up", "-d", "-f", name])
        .output()
        .expect("up -d");
    assert_eq!(up.status.code(), Some(2), "{name}: {}", text(&up.stderr));
    assert!(p.instance_pid().is_none(), "{name}: no instance");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{name}: took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_valid_file_cut_at_every_byte_is_an_error_or_a_config_never_a_panic() {
    assert!(parse_no_panic("the whole file", VALID).is_ok());
    let mut errors = 0;
    for cut in 0..VALID.len() {
        if !VALID.is_char_boundary(cut) {
            continue;
        }
        if let Err(e) = parse_no_panic(&format!("the first {cut} bytes"), &VALID[..cut]) {
            assert!(!e.0.is_empty(), "an error names something");
            errors += 1;
        }
    }
    assert!(errors > VALID.len() / 2, "most cuts are errors: {errors}");

    let p = Project::new();
    p.write("cut.toml", &VALID[..VALID.find("failures").expect("a key")]);
    refused_by_the_binary(&p, "cut.toml", "cut.toml:12:");
}

#[test]
fn binary_files_are_errors() {
    // A small deterministic generator: the same bytes on every run.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let p = Project::new();
    for round in 0..50 {
        let bytes: Vec<u8> = (0..4096).map(|_| next() as u8).collect();
        let path = p.path().join("binary.toml");
        std::fs::write(&path, &bytes).expect("write");
        let loaded = std::panic::catch_unwind(|| Config::load(&path))
            .unwrap_or_else(|_| panic!("Config::load panicked on binary round {round}"));
        assert!(
            loaded.is_err(),
            "round {round}: random bytes are no configuration"
        );
        // The same bytes made UTF-8 (control characters, NULs and all).
        let lossy = String::from_utf8_lossy(&bytes);
        assert!(parse_no_panic(&format!("round {round}"), &lossy).is_err());
        let ascii: String = bytes.iter().map(|b| (b % 128) as char).collect();
        assert!(parse_no_panic(&format!("ascii round {round}"), &ascii).is_err());
    }
    let garbage: Vec<u8> = (0..=255u8).cycle().take(64 * 1024).collect();
    std::fs::write(p.path().join("garbage.toml"), garbage).expect("write");
    refused_by_the_binary(&p, "garbage.toml", "not contain valid UTF-8");
    std::fs::write(
        p.path().join("nul.toml"),
        "[services.api]\ncommand = \"a\0b\"\n",
    )
    .expect("write");
    refused_by_the_binary(&p, "nul.toml", "nul.toml:2:");
}

#[test]
fn a_file_over_the_limit_is_refused_before_it_is_read_whole() {
    let limit = ringmaster::config::MAX_CONFIG_BYTES;
    // Just under the limit: a valid file of many services parses.
    let mut many = String::new();
    let mut i = 0;
    while many.len() < limit - 200 {
        many.push_str(&format!("[services.s{i}]\ncommand = \"true\"\n"));
        i += 1;
    }
    let started = Instant::now();
    let config = parse_no_panic("many services", &many).expect("a large valid file parses");
    assert_eq!(config.services.len(), i);
    assert!(started.elapsed() < Duration::from_secs(60));

    // Over it: one error naming the limit, in the library and through the binary.
    let huge = format!(
        "[services.api]\ncommand = \"{}\"\n",
        "a".repeat(16 * 1024 * 1024)
    );
    let err = parse_no_panic("a 16 MiB file", &huge).expect_err("too large");
    assert_eq!(err.0.len(), 1);
    assert!(err.0[0].message.contains("more than the limit"), "{err}");
    let p = Project::new();
    p.write("huge.toml", &huge);
    let started = Instant::now();
    refused_by_the_binary(&p, "huge.toml", "more than the limit of 4194304 bytes");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn deep_nesting_is_a_syntax_error_not_a_stack_overflow() {
    let depth = 100_000;
    let cases = [
        (
            "arrays",
            format!("x = {}{}\n", "[".repeat(depth), "]".repeat(depth)),
        ),
        (
            "inline tables",
            format!("x = {}1{}\n", "{a=".repeat(depth), "}".repeat(depth)),
        ),
        (
            "a service's env",
            format!(
                "[services.api]\ncommand = \"true\"\nenv = {}1{}\n",
                "{a=".repeat(depth),
                "}".repeat(depth)
            ),
        ),
        ("dotted keys", format!("x{} = 1\n", ".a".repeat(depth))),
        ("a table header", format!("[x{}]\n", ".a".repeat(depth))),
        (
            "arrays of tables",
            format!("[[services{}]]\n", ".a".repeat(depth)),
        ),
    ];
    let p = Project::new();
    for (i, (what, text)) in cases.iter().enumerate() {
        // The parse runs on a thread with the default stack of a Rust thread (2 MiB), so that deep
        // recursion would show here as a crash of this test, not pass by luck.
        let owned = text.clone();
        let result = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || Config::parse(&owned, Path::new("/tmp/ringmaster.toml")).map(|_| ()))
            .expect("spawn")
            .join()
            .unwrap_or_else(|_| panic!("Config::parse panicked on {what}"));
        let err = result.expect_err(what);
        assert!(err.to_string().contains("TOML syntax"), "{what}: {err}");
        let name = format!("deep{i}.toml");
        p.write(&name, text);
        refused_by_the_binary(&p, &name, "TOML syntax");
    }
}
