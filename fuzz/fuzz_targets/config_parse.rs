//! `Config::parse` on any text: an error or a configuration, never a panic, a
//! hang or a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ =
            ringmaster::Config::parse(text, std::path::Path::new("/nonexistent/ringmaster.toml"));
    }
});
