//! The receiving end of the sd_notify protocol (Linux), for services with
//! `health = { notify = true }`.
//!
//! Each launch of such a service gets a datagram socket of its own in the
//! abstract namespace (`NOTIFY_SOCKET=@ringmaster/…`): it has no file, so a
//! service that drops privileges (`setpriv`, `su`, postgres and redis started as
//! root) can still send to it, and nothing is left on disk. The socket asks the
//! kernel for each sender's credentials (`SO_PASSCRED`), so every datagram comes
//! with the pid that sent it; a datagram counts only when that pid is one of the
//! service's processes ([`belongs`]).
//!
//! A datagram is newline-separated `KEY=VALUE` assignments (see sd_notify(3)):
//! ringmaster reads `READY=1`, `STATUS=…`, `MAINPID=…` and `STOPPING=1`, and
//! ignores the rest.
use std::io;
use std::os::fd::AsRawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicU64, Ordering};

use ringmaster_os::Tag;

/// The environment variable that names the socket to the service.
pub const NOTIFY_ENV: &str = "NOTIFY_SOCKET";

/// The largest datagram read; systemd reads up to its page size too.
const MAX_DATAGRAM: usize = 4096;

/// How many parents [`belongs`] looks through.
const MAX_DEPTH: usize = 64;

/// One launch's notify socket, bound and ready to receive.
#[derive(Debug)]
pub struct NotifySocket {
    socket: UnixDatagram,
    address: String,
}

impl NotifySocket {
    /// Binds a fresh abstract socket for `service`, with `SO_PASSCRED` on. The
    /// name holds our pid and a counter, so that every launch has its own (a
    /// straggler of an earlier run cannot reach this one's socket).
    pub fn bind(service: &str) -> io::Result<NotifySocket> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // An abstract name holds at most 107 bytes; the service's name is
        // only there to be read by people (`ss -x`), so it is cut.
        let short: String = service.chars().take(48).collect();
        let name = format!("ringmaster/{}/{n}/{short}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
        let socket = UnixDatagram::bind_addr(&addr)?;
        nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::PassCred, &true)
            .map_err(io::Error::from)?;
        socket.set_nonblocking(true)?;
        Ok(NotifySocket {
            socket,
            address: format!("@{name}"),
        })
    }

    /// The value of `NOTIFY_SOCKET` for the service (`@` marks the abstract
    /// namespace, as systemd writes it).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// A second handle on the socket, for the task that reads it.
    pub fn reader(&self) -> io::Result<tokio::net::UnixDatagram> {
        let s = self.socket.try_clone()?;
        tokio::net::UnixDatagram::from_std(s)
    }
}

/// One datagram: who sent it and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// The sender's pid, as the kernel reports it (`None` if it did not).
    pub pid: Option<u32>,
    /// The `KEY=VALUE` assignments, in order.
    pub fields: Vec<(String, String)>,
}

/// Waits for the next datagram on `socket`.
pub async fn recv(socket: &tokio::net::UnixDatagram) -> io::Result<Datagram> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        socket.readable().await?;
        let got = socket.try_io(tokio::io::Interest::READABLE, || {
            let mut cmsg = nix::cmsg_space!(nix::libc::ucred);
            let mut iov = [io::IoSliceMut::new(&mut buf)];
            let msg = recvmsg::<UnixAddr>(
                socket.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
            )
            .map_err(io::Error::from)?;
            let mut pid = None;
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    if let ControlMessageOwned::ScmCredentials(cred) = c {
                        pid = u32::try_from(cred.pid()).ok().filter(|p| *p > 0);
                    }
                }
            }
            Ok((msg.bytes, pid))
        });
        match got {
            Ok((n, pid)) => {
                let text = String::from_utf8_lossy(&buf[..n.min(buf.len())]);
                return Ok(Datagram {
                    pid,
                    fields: parse(&text),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The assignments of one datagram: one `KEY=VALUE` per line; lines without
/// `=` are dropped.
pub fn parse(text: &str) -> Vec<(String, String)> {
    text.split('\n')
        .filter_map(|line| line.split_once('='))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Whether `pid` is one of the processes of the service tagged `tag`: it, or
/// one of its parents below us, carries the tag in its environment, the tag's
/// timer-slack marker ([`Tag::slack_marker`]), or is a process the service
/// claimed (a daemon re-parented to us, whose environment no longer shows the
/// tag). Blocking (reads /proc for each parent), but cheap: a few files per
/// level. A process that is already gone does not belong.
pub fn belongs(pid: u32, tag: &Tag) -> bool {
    let me = std::process::id();
    let marker = tag.slack_marker();
    let claimed = crate::service::Claims::held(&tag.env_value());
    let mut pid = pid;
    for _ in 0..MAX_DEPTH {
        if pid <= 1 || pid == me {
            return false;
        }
        let Ok(Some(p)) = ringmaster_os::process::process(pid) else {
            return false;
        };
        if p.zombie {
            return false;
        }
        if p.tag.as_ref() == Some(tag)
            || ringmaster_os::process::timer_slack(pid) == Some(marker)
            || claimed.contains(&(pid, p.start_time))
        {
            return true;
        }
        match p.ppid {
            Some(parent) if parent != pid => pid = parent,
            _ => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_assignments_and_drops_the_rest() {
        assert_eq!(
            parse("READY=1\nSTATUS=Accepting connections: a=b\nnoise\n\nMAINPID=42"),
            vec![
                ("READY".to_owned(), "1".to_owned()),
                ("STATUS".to_owned(), "Accepting connections: a=b".to_owned()),
                ("MAINPID".to_owned(), "42".to_owned()),
            ]
        );
        assert!(parse("").is_empty());
        assert!(parse("=1").is_empty());
    }

    #[test]
    fn a_datagram_carries_its_senders_pid() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let sock = NotifySocket::bind("unit").expect("bind");
            assert!(sock.address().starts_with("@ringmaster/"));
            let reader = sock.reader().expect("reader");
            let name = &sock.address()[1..];
            let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("addr");
            let tx = UnixDatagram::unbound().expect("unbound");
            tx.send_to_addr(b"READY=1\nSTATUS=up", &addr).expect("send");
            let d = recv(&reader).await.expect("recv");
            assert_eq!(d.pid, Some(std::process::id()));
            assert_eq!(d.fields[0], ("READY".to_owned(), "1".to_owned()));
            assert_eq!(d.fields[1], ("STATUS".to_owned(), "up".to_owned()));
        });
    }

    #[test]
    fn ringmaster_itself_never_belongs() {
        let tag = Tag::new("p", "s");
        assert!(!belongs(std::process::id(), &tag));
        assert!(!belongs(1, &tag));
    }
}
