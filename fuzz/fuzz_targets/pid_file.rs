//! `read_pid_file` on any file content: `Missing`, `Live`, `Stale` or an error,
//! never a panic. The file lives in a private temporary folder of this process;
//! a record naming a live pid only makes the reader look that pid up (the reader
//! never signals anyone).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ringmaster-fuzz-{}", std::process::id()));
        ringmaster_os::pidfile::ensure_state_dir(&dir).expect("a private temp folder");
        dir.join("service.pid")
    })
}

fuzz_target!(|data: &[u8]| {
    let path = path();
    std::fs::write(path, data).expect("write the PID file");
    let _ = ringmaster_os::read_pid_file(path);
});
