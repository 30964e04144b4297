//! Who holds a port: every process with a LISTEN socket on it, IPv4 and IPv6,
//! including every holder of a shared socket (uvicorn `--reload`: the reloader and
//! the worker both hold it). Platform code: `linux.rs` (/proc/net/tcp{,6} and fd
//! inodes, no external command), `other.rs` (macOS and Windows, through the
//! `listeners` crate; see its header for what each platform can and cannot see).
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::process::ProcessInfo;
use crate::Result;

#[cfg_attr(target_os = "linux", path = "linux.rs")]
#[cfg_attr(not(target_os = "linux"), path = "other.rs")]
mod platform;

/// One process holding one listening socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub port: u16,
    pub addr: IpAddr,
    /// The holder's pid; 0 when the socket table does not name the owner: no
    /// process to read or stop.
    pub pid: u32,
    /// The holder, when it could be read.
    pub process: Option<ProcessInfo>,
}

/// Every holder of a LISTEN socket on `port`: one entry per (process, socket),
/// sorted by pid, then address. A shared socket appears once per process holding it.
pub fn listeners(port: u16) -> Result<Vec<Listener>> {
    let mut found = platform::listeners(Some(port))?;
    found.sort_by_key(|l| (l.pid, l.addr));
    attach_processes(&mut found);
    Ok(found)
}

/// Whether a TCP connection to `addr` (a local address) would find a listening
/// socket, asked without connecting and without looking for holders: on Linux
/// one exact netlink `sock_diag` lookup through a socket this thread keeps (the
/// kernel runs its own listener lookup for the connection). `None` where that
/// cannot be told cheaply (macOS, Windows) or the question failed.
pub fn listening(addr: std::net::SocketAddr) -> Option<bool> {
    platform::listening(addr)
}

/// Every LISTEN socket on the machine that we can attribute to a process, sorted by
/// port, then pid, then address.
pub fn all_listeners() -> Result<Vec<Listener>> {
    let mut found = platform::listeners(None)?;
    found.sort_by_key(|l| (l.port, l.pid, l.addr));
    attach_processes(&mut found);
    Ok(found)
}

/// The (pid, port) of every LISTEN socket held by one of `among`, without reading
/// the processes ([`all_listeners`] reads each holder, and on Linux looks at every
/// process's fds: for a census of 500 services that was most of its time).
/// Unsorted.
pub fn listening_pids(among: &[u32]) -> Result<Vec<(u32, u16)>> {
    #[cfg(target_os = "linux")]
    let found = platform::listeners_among(None, Some(among))?;
    #[cfg(not(target_os = "linux"))]
    let found = platform::listeners(None)?;
    let among: std::collections::HashSet<u32> = among.iter().copied().collect();
    Ok(found
        .into_iter()
        .filter(|l| among.contains(&l.pid))
        .map(|l| (l.pid, l.port))
        .collect())
}

/// True when no socket is listening on `port` (read from the socket table, not
/// by binding, so it does not disturb anyone).
pub fn port_is_free(port: u16) -> Result<bool> {
    platform::port_is_free(port)
}

/// Fills `process` for every listener, reading each distinct pid once. A process
/// that cannot be read (gone, or not ours to read) keeps `None`.
fn attach_processes(found: &mut [Listener]) {
    let mut cache: std::collections::HashMap<u32, Option<ProcessInfo>> = Default::default();
    for listener in found.iter_mut() {
        if listener.process.is_some() || listener.pid == 0 {
            continue;
        }
        let info = cache
            .entry(listener.pid)
            .or_insert_with(|| crate::process::process(listener.pid).ok().flatten());
        listener.process = info.clone();
    }
}
