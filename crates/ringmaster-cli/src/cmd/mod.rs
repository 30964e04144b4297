//! One module per command. Each `run` returns the exit code or a [`crate::exit::Failure`].
pub mod change;
pub mod down;
pub mod kill_port;
pub mod logs;
pub mod ports;
pub mod restart;
pub mod status;
pub mod top;
pub mod up;
pub mod validate;
