//! Platform code of the CLI, in one place: start-up preparation (what the process
//! inherited), the termination signals `up` reacts to (and those `top` ends on), and how `up -d` detaches its
//! background instance (a new session on Unix, a detached process on Windows).
//! Callers never see a `cfg`.
#[cfg_attr(unix, path = "unix.rs")]
#[cfg_attr(windows, path = "windows.rs")]
mod imp;

pub use imp::{detach, prepare, quit_asked, signals, watch_quit};
