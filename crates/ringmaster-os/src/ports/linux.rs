//! Linux port lookup without any external command: the LISTEN sockets of
//! `/proc/net/tcp` and `/proc/net/tcp6` (the network namespace we run in), then
//! every process whose `/proc/PID/fd` links to one of their inodes
//! (`socket:[INODE]`). A shared socket is held by several processes, and every one
//! of them is reported. Processes whose fds we cannot read (another user's, or gone
//! while we look) are skipped; [`port_is_free`] still sees their sockets.
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::ffi::OsStrExt;

use super::Listener;
use crate::{Error, Result};

/// The socket tables read, IPv4 first.
const TABLES: [(&str, bool); 2] = [("/proc/net/tcp", false), ("/proc/net/tcp6", true)];

/// The TCP state code of LISTEN in `/proc/net/tcp`.
const STATE_LISTEN: &str = "0A";

/// One LISTEN socket of the socket table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ListenSocket {
    pub addr: IpAddr,
    pub port: u16,
    pub inode: u64,
}

/// Every process holding a LISTEN socket on `port` (every port when `None`).
pub(super) fn listeners(port: Option<u16>) -> Result<Vec<Listener>> {
    let sockets: Vec<ListenSocket> = listen_sockets()?
        .into_iter()
        .filter(|s| port.is_none_or(|p| s.port == p))
        .collect();
    if sockets.is_empty() {
        return Ok(Vec::new());
    }
    let inodes: HashSet<u64> = sockets
        .iter()
        .map(|s| s.inode)
        .filter(|&i| i != 0)
        .collect();
    let holders = socket_holders(&inodes);
    let mut found = Vec::new();
    for socket in &sockets {
        for &pid in holders.get(&socket.inode).map(Vec::as_slice).unwrap_or(&[]) {
            found.push(Listener {
                port: socket.port,
                addr: socket.addr,
                pid,
                process: None,
            });
        }
    }
    Ok(found)
}

/// True when the socket tables hold no LISTEN socket on `port`.
pub(super) fn port_is_free(port: u16) -> Result<bool> {
    Ok(!listen_sockets()?.iter().any(|s| s.port == port))
}

/// The LISTEN sockets of both tables. A missing table (IPv6 disabled) is empty.
fn listen_sockets() -> Result<Vec<ListenSocket>> {
    let mut all = Vec::new();
    for (path, v6) in TABLES {
        match std::fs::read_to_string(path) {
            Ok(text) => all.extend(parse_listen_sockets(&text, v6)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("reading {path}"), e)),
        }
    }
    Ok(all)
}

/// Parses the text of `/proc/net/tcp` (`v6 == false`) or `/proc/net/tcp6`
/// (`v6 == true`) and keeps the sockets in state LISTEN. Lines that do not parse
/// (the header among them) are skipped. IPv4-mapped IPv6 addresses
/// (`::ffff:a.b.c.d`) are returned as IPv4.
pub(crate) fn parse_listen_sockets(text: &str, v6: bool) -> Vec<ListenSocket> {
    text.lines()
        .filter_map(|line| {
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || fields[3] != STATE_LISTEN {
                return None;
            }
            let (addr_hex, port_hex) = fields[1].split_once(':')?;
            let addr = parse_addr(addr_hex, v6)?;
            let port = u16::from_str_radix(port_hex, 16).ok()?;
            let inode = fields[9].parse::<u64>().ok()?;
            Some(ListenSocket { addr, port, inode })
        })
        .collect()
}

/// The kernel prints an address as 32-bit words in host byte order (`%08X` of the
/// raw `__be32`): 127.0.0.1 is `0100007F` on a little-endian machine.
fn parse_addr(hex: &str, v6: bool) -> Option<IpAddr> {
    let word = |i: usize| -> Option<[u8; 4]> {
        let part = hex.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(part, 16).ok()?.to_ne_bytes())
    };
    if !v6 {
        if hex.len() != 8 {
            return None;
        }
        return Some(IpAddr::V4(Ipv4Addr::from(word(0)?)));
    }
    if hex.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for i in 0..4 {
        bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
    }
    let addr = Ipv6Addr::from(bytes);
    Some(match addr.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(addr),
    })
}

/// For each inode in `inodes`, every pid whose fd table holds it (sorted, no
/// duplicates). Unreadable processes are skipped.
fn socket_holders(inodes: &HashSet<u64>) -> HashMap<u64, Vec<u32>> {
    let mut holders: HashMap<u64, Vec<u32>> = HashMap::new();
    let Ok(proc_dir) = std::fs::read_dir("/proc") else {
        return holders;
    };
    for entry in proc_dir.flatten() {
        let Some(pid) = std::str::from_utf8(entry.file_name().as_bytes())
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if let Some(inode) = socket_inode(target.as_os_str().as_bytes()) {
                if inodes.contains(&inode) {
                    let pids = holders.entry(inode).or_default();
                    if !pids.contains(&pid) {
                        pids.push(pid);
                    }
                }
            }
        }
    }
    for pids in holders.values_mut() {
        pids.sort_unstable();
    }
    holders
}

/// The inode of an fd link target `socket:[INODE]`.
fn socket_inode(target: &[u8]) -> Option<u64> {
    let inner = target.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(inner).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured on a little-endian x86_64 machine; the addresses are host-order words.
    const TCP: &str = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4121001 1 0000000000000000 100 0 0 10 0
   1: 00000000:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4121002 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1F40 0100007F:A2C4 01 00000000:00000000 00:00000000 00000000  1000        0 4121003 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:C350 00000000:0000 0A garbage
   4: 0100007F:ZZZZ 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4121004 1 0000000000000000 100 0 0 10 0
";

    const TCP6: &str = "\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F41 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5000001 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5000002 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F42 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5000003 1 0000000000000000 100 0 0 10 0
   3: B80D0120000000000000000001000000:2328 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5000004 1 0000000000000000 100 0 0 10 0
   4: 00000000000000000000000001000000:1F41 00000000000000000000000001000000:D431 01 00000000:00000000 00:00000000 00000000  1000        0 5000005 1 0000000000000000 20 4 30 10 -1
";

    #[cfg(target_endian = "little")]
    #[test]
    fn parses_ipv4_listen_sockets_only() {
        let sockets = parse_listen_sockets(TCP, false);
        assert_eq!(
            sockets,
            vec![
                ListenSocket {
                    addr: "127.0.0.1".parse().unwrap(),
                    port: 8000,
                    inode: 4121001
                },
                ListenSocket {
                    addr: "0.0.0.0".parse().unwrap(),
                    port: 3000,
                    inode: 4121002
                },
            ]
        );
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn parses_ipv6_loopback_any_mapped_and_global() {
        let sockets = parse_listen_sockets(TCP6, true);
        let got: Vec<(String, u16, u64)> = sockets
            .iter()
            .map(|s| (s.addr.to_string(), s.port, s.inode))
            .collect();
        assert_eq!(
            got,
            vec![
                ("::1".to_string(), 8001, 5000001),
                ("::".to_string(), 80, 5000002),
                ("127.0.0.1".to_string(), 8002, 5000003),
                ("2001:db8::1".to_string(), 9000, 5000004),
            ]
        );
    }

    #[test]
    fn ipv4_table_text_is_not_read_as_ipv6() {
        assert!(parse_listen_sockets(TCP, true).is_empty());
        assert!(parse_listen_sockets(TCP6, false).is_empty());
    }

    #[test]
    fn socket_link_targets() {
        assert_eq!(socket_inode(b"socket:[4121001]"), Some(4121001));
        assert_eq!(socket_inode(b"pipe:[4121001]"), None);
        assert_eq!(socket_inode(b"/dev/null"), None);
        assert_eq!(socket_inode(b"socket:[x]"), None);
    }

    #[test]
    fn the_live_table_parses() {
        // Our own listener on an IPv4 loopback port shows up in the real table.
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = l.local_addr().expect("local addr").port();
        let sockets = listen_sockets().expect("read /proc/net/tcp");
        assert!(sockets.iter().any(|s| s.port == port && s.inode != 0));
        let found = listeners(Some(port)).expect("listeners");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].pid, std::process::id());
        assert!(!port_is_free(port).expect("port_is_free"));
        drop(l);
        assert!(port_is_free(port).expect("port_is_free"));
    }
}
