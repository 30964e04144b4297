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
//! - Under Wine the TCP tables give pid 0 as every socket's owner, and the crate
//!   drops those rows too (Wine lists no process 0), so nothing is reported and a
//!   held port reads as free. On Windows pid 0 is the idle process, which the crate
//!   names: a row with owner 0 reaches us there, and reads as an unknown owner.
//!
//! [`from_rows`] turns the crate's rows into ours without reading anything; the
//! tests below run it, and the kill-port authorization, on socket tables written
//! as `netstat -ano` prints them.
use super::Listener;
use crate::{Error, Result};

/// Every process holding a LISTEN TCP socket on `port` (every port when `None`).
pub(super) fn listeners(port: Option<u16>) -> Result<Vec<Listener>> {
    let all = listeners::get_all()
        .map_err(|e| Error::io("listing sockets", std::io::Error::other(e.to_string())))?;
    Ok(from_rows(all, port))
}

/// Our listeners in the crate's rows (one per socket and owning process, TCP and
/// UDP, every state): the TCP rows in LISTEN on `port` (every port when `None`),
/// an IPv4-mapped IPv6 address read as the IPv4 address, sorted by port, pid and
/// address, one per (port, pid, address). The holders are not read here (pid 0,
/// an unknown owner, stays 0). Reads nothing, so recorded tables can be tested.
fn from_rows(
    rows: impl IntoIterator<Item = listeners::Listener>,
    port: Option<u16>,
) -> Vec<Listener> {
    let mut found: Vec<Listener> = rows
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
    found
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

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, SocketAddr};

    use super::*;
    use crate::authz::{Policy, RefusalReason};
    use crate::killport::{holders_of, refusals, Holders};
    use crate::process::ProcessInfo;
    use crate::tag::Tag;

    /// A Windows machine's sockets as `netstat -ano` prints them (written for these
    /// tests in that form, not captured from one machine). Its columns are those of
    /// the `GetExtendedTcpTable`/`GetExtendedUdpTable` rows (`OWNER_PID` classes,
    /// IPv4 and IPv6 tables) that the `listeners` crate reads, which keeps the
    /// protocol, local address, state and pid (UDP rows have no state), and adds
    /// each pid's image name and path ([`IMAGES`]).
    ///
    /// On it: uvicorn (python.exe, 7412) on 0.0.0.0:8000 and [::]:8000, with one
    /// socket listed twice and one accepted connection; Next.js (node.exe, 9120)
    /// on [::]:3000 only, a dual-stack socket; Vite (node.exe, 9388) on an
    /// IPv4-mapped address; redis on 127.0.0.1 and [::1]; System (pid 4) holding
    /// http.sys's port 80 and SMB's 445; the RPC endpoint mapper (svchost.exe, run
    /// by SYSTEM); a client's connection and a TIME_WAIT row (owner 0) on 8000;
    /// UDP sockets, one on 8000.
    const WINDOWS_TABLE: &str = "\
  Proto  Local Address            Foreign Address        State           PID
  TCP    0.0.0.0:80               0.0.0.0:0              LISTENING       4
  TCP    0.0.0.0:135              0.0.0.0:0              LISTENING       1104
  TCP    0.0.0.0:445              0.0.0.0:0              LISTENING       4
  TCP    0.0.0.0:8000             0.0.0.0:0              LISTENING       7412
  TCP    0.0.0.0:8000             0.0.0.0:0              LISTENING       7412
  TCP    127.0.0.1:6379           0.0.0.0:0              LISTENING       3320
  TCP    127.0.0.1:8000           127.0.0.1:50632        ESTABLISHED     7412
  TCP    127.0.0.1:8000           127.0.0.1:50611        TIME_WAIT       0
  TCP    127.0.0.1:50632          127.0.0.1:8000         ESTABLISHED     10244
  TCP    [::]:80                  [::]:0                 LISTENING       4
  TCP    [::]:445                 [::]:0                 LISTENING       4
  TCP    [::]:3000                [::]:0                 LISTENING       9120
  TCP    [::]:8000                [::]:0                 LISTENING       7412
  TCP    [::1]:6379               [::]:0                 LISTENING       3320
  TCP    [::ffff:127.0.0.1]:5173  [::]:0                 LISTENING       9388
  UDP    0.0.0.0:5353             *:*                                    2208
  UDP    0.0.0.0:8000             *:*                                    6016
  UDP    [::]:5353                *:*                                    2208
";

    /// Listening sockets whose owner the table gives as pid 0. Under Wine the TCP
    /// tables give 0 for every socket, and the crate drops those rows before us
    /// (Wine's process snapshot has no pid 0 to name them), so there a held port
    /// reads as free. On Windows pid 0 is the idle process, which the crate names,
    /// so such a row reaches [`from_rows`]: its owner must read as unknown.
    const UNKNOWN_OWNER_TABLE: &str = "\
  Proto  Local Address            Foreign Address        State           PID
  TCP    0.0.0.0:8000             0.0.0.0:0              LISTENING       0
  TCP    127.0.0.1:8000           127.0.0.1:50611        TIME_WAIT       0
  TCP    [::]:8000                [::]:0                 LISTENING       0
";

    const PYTHON: &str = r"C:\Users\dev\api\.venv\Scripts\python.exe";
    const NODE: &str = r"C:\Program Files\nodejs\node.exe";
    const REDIS: &str = r"C:\Program Files\Redis\redis-server.exe";
    const SVCHOST: &str = r"C:\Windows\System32\svchost.exe";
    const TELEGRAF: &str = r"C:\Program Files\Telegraf\telegraf.exe";
    const CURL: &str = r"C:\Windows\System32\curl.exe";

    /// pid, image name, image path, user, service of the tag it carries ("" when
    /// none or unknown).
    type Image = (u32, &'static str, &'static str, &'static str, &'static str);

    /// Each pid's image name and path as the crate gives them (the path is empty
    /// when the process may not be opened), then its user and tag as the process
    /// table reads them.
    const IMAGES: &[Image] = &[
        (0, "[System Process]", "", "", ""),
        (4, "System", "", "", ""),
        (1104, "svchost.exe", SVCHOST, "SYSTEM", ""),
        (2208, "svchost.exe", SVCHOST, "LOCAL SERVICE", ""),
        (3320, "redis-server.exe", REDIS, "dev", ""),
        (6016, "telegraf.exe", TELEGRAF, "dev", ""),
        (7412, "python.exe", PYTHON, "dev", "api"),
        (9120, "node.exe", NODE, "dev", ""),
        (9388, "node.exe", NODE, "dev", ""),
        (10244, "curl.exe", CURL, "dev", ""),
    ];

    fn image(pid: u32) -> Image {
        *IMAGES.iter().find(|i| i.0 == pid).expect("a pid of IMAGES")
    }

    /// The crate's rows for a table printed as `netstat -ano` prints it.
    fn rows(table: &str) -> Vec<listeners::Listener> {
        table
            .lines()
            .skip(1)
            .map(|line| {
                let columns: Vec<&str> = line.split_whitespace().collect();
                let (protocol, state, pid) = match columns[..] {
                    ["TCP", _, _, state, pid] => (listeners::Protocol::TCP, state, pid),
                    ["UDP", _, _, pid] => (listeners::Protocol::UDP, "", pid),
                    _ => panic!("not a netstat row: {line}"),
                };
                let (pid, name, path, _, _) = image(pid.parse().expect(pid));
                listeners::Listener {
                    process: listeners::Process {
                        pid,
                        name: name.to_string(),
                        path: path.to_string(),
                    },
                    socket: columns[1].parse::<SocketAddr>().expect(columns[1]),
                    protocol,
                    state: match state {
                        "LISTENING" => listeners::SocketState::Listen,
                        "ESTABLISHED" => listeners::SocketState::Established,
                        "TIME_WAIT" => listeners::SocketState::TimeWait,
                        "" => listeners::SocketState::Unknown,
                        other => panic!("state {other}"),
                    },
                }
            })
            .collect()
    }

    const PROJECT: &str = "rm-0123456789abcdef";

    /// (port, address, pid) of each listener.
    fn seen(found: &[Listener]) -> Vec<(u16, String, u32)> {
        found
            .iter()
            .map(|l| (l.port, l.addr.to_string(), l.pid))
            .collect()
    }

    /// The process table's reading of `pid`, from [`IMAGES`]. Pid 0 is never read
    /// (it is no process).
    fn read(pid: u32) -> crate::Result<Option<ProcessInfo>> {
        assert_ne!(pid, 0, "pid 0 was read as a process");
        let (pid, name, path, user, service) = image(pid);
        Ok(Some(ProcessInfo {
            pid,
            ppid: Some(900),
            pgid: None,
            sid: None,
            start_time: 1_700_000_000,
            name: name.to_string(),
            exe: (!path.is_empty()).then(|| path.into()),
            argv: Vec::new(),
            uid: None,
            user: (!user.is_empty()).then(|| user.to_string()),
            tag: (!service.is_empty()).then(|| Tag {
                project: PROJECT.to_string(),
                service: service.to_string(),
            }),
            zombie: false,
            usage: None,
        }))
    }

    /// The policy of service `api` on `port`, on Windows (no uid; our user `dev`).
    fn policy(port: u16, allow: &[&str]) -> Policy {
        Policy {
            project: Some(PROJECT.to_string()),
            allow: allow.iter().map(|s| s.to_string()).collect(),
            service: Some("api".to_string()),
            port: Some(port),
            uid: None,
            user: Some("dev".to_string()),
            protected: vec![std::process::id()],
        }
    }

    fn holders(table: &str, port: u16) -> Holders {
        holders_of(from_rows(rows(table), Some(port)), read).expect("holders")
    }

    #[test]
    fn every_listening_tcp_socket_once_ipv4_and_ipv6() {
        assert_eq!(
            seen(&from_rows(rows(WINDOWS_TABLE), None)),
            vec![
                (80, "0.0.0.0".to_string(), 4),
                (80, "::".to_string(), 4),
                (135, "0.0.0.0".to_string(), 1104),
                (445, "0.0.0.0".to_string(), 4),
                (445, "::".to_string(), 4),
                (3000, "::".to_string(), 9120),
                (5173, "127.0.0.1".to_string(), 9388),
                (6379, "127.0.0.1".to_string(), 3320),
                (6379, "::1".to_string(), 3320),
                (8000, "0.0.0.0".to_string(), 7412),
                (8000, "::".to_string(), 7412),
            ]
        );
    }

    #[test]
    fn one_port_leaves_out_udp_connections_and_time_wait() {
        let on_8000 = from_rows(rows(WINDOWS_TABLE), Some(8000));
        assert_eq!(
            seen(&on_8000),
            vec![
                (8000, "0.0.0.0".to_string(), 7412),
                (8000, "::".to_string(), 7412),
            ]
        );
        assert!(on_8000.iter().all(|l| l.process.is_none()));
        // The dual-stack socket is one IPv6 row; the mapped address reads as IPv4.
        assert_eq!(
            seen(&from_rows(rows(WINDOWS_TABLE), Some(3000))),
            vec![(3000, "::".to_string(), 9120)]
        );
        assert_eq!(
            from_rows(rows(WINDOWS_TABLE), Some(5173))[0].addr,
            IpAddr::from([127, 0, 0, 1])
        );
        // Ports with UDP sockets or connections only have no listener.
        for port in [5353, 50632] {
            assert_eq!(
                from_rows(rows(WINDOWS_TABLE), Some(port)),
                Vec::new(),
                "{port}"
            );
        }
    }

    #[test]
    fn an_owner_given_as_pid_0_stays_0() {
        assert_eq!(
            seen(&from_rows(rows(UNKNOWN_OWNER_TABLE), Some(8000))),
            vec![
                (8000, "0.0.0.0".to_string(), 0),
                (8000, "::".to_string(), 0),
            ]
        );
    }

    #[test]
    fn the_holder_of_8000_is_judged_by_tag_and_allow_list() {
        let found = holders(WINDOWS_TABLE, 8000);
        assert!(!found.unknown_owner, "a TIME_WAIT row's pid 0 is no holder");
        let pids: Vec<u32> = found.processes.iter().map(|p| p.pid).collect();
        assert_eq!(pids, vec![7412]);

        // Tagged with our project: ours, whatever the allow list says.
        assert_eq!(
            refusals(&found.processes, false, &policy(8000, &[])),
            Vec::new()
        );

        // Another project's: judged by the allow list alone.
        let mut other = policy(8000, &["node"]);
        other.project = Some("rm-fedcba9876543210".to_string());
        let refused = refusals(&found.processes, false, &other);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].reason, RefusalReason::NotInAllowList);
        assert_eq!(
            refused[0].to_string(),
            format!(
                "port 8000 is held by pid 7412 (python.exe, {PYTHON}, user dev), \
                 which is not in api's allow list"
            )
        );
        other.allow = vec!["python".to_string()];
        assert_eq!(refusals(&found.processes, false, &other), Vec::new());
    }

    #[test]
    fn dual_stack_and_loopback_holders_by_allow_list_user_and_protection() {
        let next = holders(WINDOWS_TABLE, 3000);
        assert_eq!(
            refusals(&next.processes, false, &policy(3000, &["node"])),
            Vec::new()
        );
        let mut protected = policy(3000, &["node"]);
        protected.protected.push(9120);
        let refused = refusals(&next.processes, false, &protected);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].reason, RefusalReason::Ancestor);
        assert_eq!(
            refused[0].to_string(),
            format!(
                "port 3000 is held by pid 9120 (node.exe, {NODE}, user dev), \
                 which is an ancestor of ringmaster"
            )
        );

        let redis = holders(WINDOWS_TABLE, 6379);
        assert_eq!(redis.processes.len(), 1, "127.0.0.1 and [::1]: one holder");
        assert_eq!(
            refusals(&redis.processes, false, &policy(6379, &["redis-server"])),
            Vec::new()
        );

        let rpc = holders(WINDOWS_TABLE, 135);
        let refused = refusals(&rpc.processes, false, &policy(135, &["svchost"]));
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].reason, RefusalReason::OtherUser);
        assert_eq!(
            refused[0].to_string(),
            format!(
                "port 135 is held by pid 1104 (svchost.exe, {SVCHOST}, user SYSTEM), \
                 which runs as another user"
            )
        );
    }

    /// Pid 4 is the kernel on Windows; on macOS it is judged like any process.
    #[cfg(windows)]
    #[test]
    fn system_is_never_stopped_even_when_allowed() {
        for port in [80, 445] {
            let found = holders(WINDOWS_TABLE, port);
            let pids: Vec<u32> = found.processes.iter().map(|p| p.pid).collect();
            assert_eq!(pids, vec![4], "{port}");
            let refused = refusals(&found.processes, false, &policy(port, &["System"]));
            assert_eq!(refused.len(), 1);
            assert_eq!(refused[0].reason, RefusalReason::System);
            assert_eq!(
                refused[0].to_string(),
                format!(
                    "port {port} is held by pid 4 (System, exe unknown, user unknown), \
                     which is the Windows kernel (System)"
                )
            );
        }
    }

    #[test]
    fn an_unknown_owner_is_refused_and_never_read() {
        let found = holders(UNKNOWN_OWNER_TABLE, 8000);
        assert!(found.unknown_owner);
        assert_eq!(found.processes, Vec::new());
        let refused = refusals(
            &found.processes,
            found.unknown_owner,
            &policy(8000, &["python"]),
        );
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].pid, 0);
        assert_eq!(refused[0].reason, RefusalReason::UnknownOwner);
        assert_eq!(
            refused[0].to_string(),
            "port 8000 is held by a process that the socket table does not name (pid 0), \
             which is never stopped"
        );

        // Beside an authorized holder, the unknown owner still refuses the port:
        // stopping uvicorn alone would not free it.
        let mut both = rows(WINDOWS_TABLE);
        both.extend(rows(UNKNOWN_OWNER_TABLE));
        let found = holders_of(from_rows(both, Some(8000)), read).expect("holders");
        assert!(found.unknown_owner);
        assert_eq!(found.processes.len(), 1);
        let refused = refusals(&found.processes, found.unknown_owner, &policy(8000, &[]));
        let reasons: Vec<RefusalReason> = refused.into_iter().map(|r| r.reason).collect();
        assert_eq!(reasons, vec![RefusalReason::UnknownOwner]);
    }
}
