//! Configuration loading and validation: one fixture per rule under
//! `tests/configs/` with its message and `line:col` asserted, the DESIGN example,
//! relative paths, `${VAR}` expansion, `env_file`, start order, the builder and
//! replicated services.
//! The shared helpers are here; each file of this folder holds one part.
mod builder;
mod changes;
mod model;
mod paths_and_vars;
mod replicas;
mod rules;
mod stop_and_window;
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
