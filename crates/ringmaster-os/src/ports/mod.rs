//! Who holds a port: every process with a LISTEN socket on it, IPv4 and IPv6,
//! including every holder of a shared socket (uvicorn `--reload`: the reloader and
//! the worker both hold it). Platform code: `linux.rs` (/proc/net/tcp{,6} and fd
//! inodes, no external command), `other.rs` (macOS and Windows).
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::process::ProcessInfo;
use crate::Result;

/// One process holding one listening socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub port: u16,
    pub addr: IpAddr,
    pub pid: u32,
    /// The holder, when it could be read.
    pub process: Option<ProcessInfo>,
}

/// Every holder of a LISTEN socket on `port`.
pub fn listeners(port: u16) -> Result<Vec<Listener>> {
    todo!()
}

/// Every LISTEN socket on the machine that we can attribute to a process.
pub fn all_listeners() -> Result<Vec<Listener>> {
    todo!()
}

/// True when no socket is listening on `port` (read from the socket table, not
/// by binding, so it does not disturb anyone).
pub fn port_is_free(port: u16) -> Result<bool> {
    todo!()
}
