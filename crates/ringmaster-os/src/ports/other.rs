//! macOS and Windows port lookup, through the `listeners` crate.
//!
//! What is covered:
//! - macOS: the crate walks every process's file descriptors (libproc), so a socket
//!   shared by several processes (a reloader and its worker) is reported once per
//!   process holding it, as on Linux. Processes we may not inspect (another user's)
//!   are not seen.
//! - Windows: the TCP tables name one owning pid per socket (the process that
//!   created it). A child that inherited the socket handle is invisible there, so
//!   only the creator is reported; stopping the creator's process tree (what
//!   kill-port does) reaches such children too. When the creator has exited and a
//!   child still holds the socket, the crate drops the row (it cannot name the
//!   process), so that socket is neither reported nor seen by [`port_is_free`].
use super::Listener;
use crate::{Error, Result};

/// Every process holding a LISTEN TCP socket on `port` (every port when `None`).
pub(super) fn listeners(port: Option<u16>) -> Result<Vec<Listener>> {
    let all = listeners::get_all()
        .map_err(|e| Error::io("listing sockets", std::io::Error::other(e.to_string())))?;
    let mut found: Vec<Listener> = all
        .into_iter()
        .filter(|l| l.protocol == listeners::Protocol::TCP)
        .filter(|l| l.state == listeners::SocketState::Listen)
        .filter(|l| port.is_none_or(|p| l.socket.port() == p))
        .map(|l| Listener {
            port: l.socket.port(),
            addr: match l.socket.ip() {
                std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                    Some(v4) => std::net::IpAddr::V4(v4),
                    None => std::net::IpAddr::V6(v6),
                },
                v4 => v4,
            },
            pid: l.process.pid,
            process: None,
        })
        .collect();
    found.sort_by_key(|l| (l.port, l.pid, l.addr));
    found.dedup_by(|a, b| a.pid == b.pid && a.addr == b.addr && a.port == b.port);
    Ok(found)
}

/// True when no LISTEN TCP socket on `port` is seen.
pub(super) fn port_is_free(port: u16) -> Result<bool> {
    Ok(listeners(Some(port))?.is_empty())
}

/// Whether a connection to an address would find a listener: not known
/// cheaply here (`None`).
pub(super) fn listening(_addr: std::net::SocketAddr) -> Option<bool> {
    None
}
