//! The LISTEN TCP sockets of our network namespace through netlink `sock_diag`
//! (what `ss` uses). With a LISTEN-only state filter the kernel walks just its
//! listening hash, while reading `/proc/net/tcp` walks every bucket of the whole
//! connection table: on machines with much memory that table is large, and one
//! read of `/proc/net/tcp` costs ~10 ms even when it holds two lines.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::ListenSocket;

/// `SOCK_DIAG_BY_FAMILY` (linux/sock_diag.h).
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 0x2;
const NLMSG_DONE: u16 = 0x3;
/// `TCP_LISTEN` in the kernel's TCP state numbering.
const TCP_LISTEN: u32 = 10;
const NETLINK_SOCK_DIAG: libc::c_int = 4;

/// `struct nlmsghdr`.
#[repr(C)]
#[derive(Clone, Copy)]
struct NlMsgHdr {
    len: u32,
    kind: u16,
    flags: u16,
    seq: u32,
    pid: u32,
}

/// `struct inet_diag_sockid`: ports and addresses in network byte order.
#[repr(C)]
#[derive(Clone, Copy)]
struct InetDiagSockId {
    sport: [u8; 2],
    dport: [u8; 2],
    src: [u8; 16],
    dst: [u8; 16],
    interface: u32,
    cookie: [u32; 2],
}

/// `struct inet_diag_req_v2`.
#[repr(C)]
#[derive(Clone, Copy)]
struct InetDiagReqV2 {
    family: u8,
    protocol: u8,
    ext: u8,
    pad: u8,
    states: u32,
    id: InetDiagSockId,
}

/// `struct inet_diag_msg`.
#[repr(C)]
#[derive(Clone, Copy)]
struct InetDiagMsg {
    family: u8,
    state: u8,
    timer: u8,
    retrans: u8,
    id: InetDiagSockId,
    expires: u32,
    rqueue: u32,
    wqueue: u32,
    uid: u32,
    inode: u32,
}

/// A request for every LISTEN TCP socket of `family`.
#[repr(C)]
struct Request {
    header: NlMsgHdr,
    body: InetDiagReqV2,
}

/// Every LISTEN TCP socket (IPv4 and IPv6), or `None` when netlink `sock_diag`
/// is not available here (the caller then reads `/proc/net/tcp{,6}`).
pub(super) fn listen_sockets() -> Option<Vec<ListenSocket>> {
    let sock = open()?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut all = Vec::new();
    for (seq, family) in [(1u32, libc::AF_INET), (2u32, libc::AF_INET6)] {
        all.extend(dump(&sock, seq, family as u8, &mut buf)?);
    }
    Some(all)
}

/// A fresh netlink `sock_diag` socket.
fn open() -> Option<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked before use and owned at once.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            NETLINK_SOCK_DIAG,
        )
    };
    if raw < 0 {
        return None;
    }
    // SAFETY: `raw` is a fresh, valid descriptor that nothing else owns.
    Some(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// This thread's socket and buffer for [`listening`]: kept between calls, since
/// a slow starter's port is asked about every few milliseconds.
struct Asker {
    sock: OwnedFd,
    buf: Vec<u8>,
    seq: u32,
}

thread_local! {
    static ASKER: std::cell::RefCell<Option<Asker>> = const { std::cell::RefCell::new(None) };
}

/// Whether a connection to `addr` would find a listening socket: one exact
/// `sock_diag` lookup (the kernel's own listener lookup for a connection from
/// `addr`'s host, port 1, to `addr`), through a socket this thread keeps.
/// `None` when `sock_diag` cannot tell. A dump of the listening sockets would
/// walk the whole listening hash, which on a machine with much memory has tens
/// of thousands of buckets (~0.15 ms); the lookup is one bucket.
pub(super) fn listening(addr: SocketAddr) -> Option<bool> {
    ASKER.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(Asker {
                sock: open()?,
                buf: vec![0u8; 8 * 1024],
                seq: 0,
            });
        }
        let asker = slot.as_mut()?;
        asker.seq = asker.seq.wrapping_add(1).max(1);
        let answer = lookup(asker, addr);
        if answer.is_none() {
            // Start afresh next time (a stale answer may be queued).
            *slot = None;
        }
        answer
    })
}

/// Sends the exact lookup for `addr` and reads its answer.
fn lookup(asker: &mut Asker, addr: SocketAddr) -> Option<bool> {
    let (family, ip) = match addr.ip() {
        IpAddr::V4(v4) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&v4.octets());
            (libc::AF_INET as u8, b)
        }
        IpAddr::V6(v6) => (libc::AF_INET6 as u8, v6.octets()),
    };
    let request = Request {
        header: NlMsgHdr {
            len: std::mem::size_of::<Request>() as u32,
            kind: SOCK_DIAG_BY_FAMILY,
            flags: NLM_F_REQUEST,
            seq: asker.seq,
            pid: 0,
        },
        body: InetDiagReqV2 {
            family,
            protocol: libc::IPPROTO_TCP as u8,
            ext: 0,
            pad: 0,
            states: 1 << TCP_LISTEN,
            id: InetDiagSockId {
                // Local side: the address connected to.
                sport: addr.port().to_be_bytes(),
                // Remote side: a peer on the same host, port 1.
                dport: 1u16.to_be_bytes(),
                src: ip,
                dst: ip,
                interface: 0,
                // INET_DIAG_NOCOOKIE: any socket.
                cookie: [u32::MAX; 2],
            },
        },
    };
    send(&asker.sock, &request)?;
    loop {
        let n = receive(&asker.sock, &mut asker.buf)?;
        match parse_lookup(&asker.buf[..n], asker.seq) {
            Lookup::Other => continue,
            Lookup::Found(state) => return Some(u32::from(state) == TCP_LISTEN),
            Lookup::NotFound => return Some(false),
            Lookup::Failed => return None,
        }
    }
}

/// What an exact lookup's answer said.
#[derive(Debug, PartialEq, Eq)]
enum Lookup {
    /// A socket, in this TCP state.
    Found(u8),
    /// `ENOENT`: no socket would take the connection.
    NotFound,
    /// Another error, or a message that does not parse.
    Failed,
    /// Nothing for this request in the batch (a stale answer).
    Other,
}

fn parse_lookup(data: &[u8], seq: u32) -> Lookup {
    let walked = walk(data, seq, |header, payload| {
        Some(match header.kind {
            SOCK_DIAG_BY_FAMILY if payload.len() >= std::mem::size_of::<InetDiagMsg>() => {
                // SAFETY: a whole InetDiagMsg is in bounds; plain data.
                let msg: InetDiagMsg = unsafe { std::ptr::read_unaligned(payload.as_ptr().cast()) };
                Lookup::Found(msg.state)
            }
            NLMSG_ERROR if payload.len() >= 4 => {
                let errno = i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]);
                if errno == -libc::ENOENT {
                    Lookup::NotFound
                } else {
                    Lookup::Failed
                }
            }
            _ => Lookup::Failed,
        })
    });
    match walked {
        Ok(Some(l)) => l,
        Ok(None) => Lookup::Other,
        Err(()) => Lookup::Failed,
    }
}

/// Receives one batch into `buf`: its length; `None` on an error or an empty
/// read (an interrupted call is retried).
fn receive(sock: &OwnedFd, buf: &mut [u8]) -> Option<usize> {
    loop {
        // SAFETY: `buf` is a live, writable buffer of the given length.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        return usize::try_from(n).ok().filter(|n| *n > 0);
    }
}

/// Sends `request` to the kernel.
fn send(sock: &OwnedFd, request: &Request) -> Option<()> {
    // SAFETY: sockaddr_nl is plain data; all-zero is a valid value.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: the buffer is `request`, alive and of the given size; the address is
    // a sockaddr_nl of the given size.
    let sent = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            (request as *const Request).cast(),
            std::mem::size_of::<Request>(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    (sent >= 0).then_some(())
}

/// Sends one dump request for `family` and collects the answers.
fn dump(sock: &OwnedFd, seq: u32, family: u8, buf: &mut [u8]) -> Option<Vec<ListenSocket>> {
    let request = Request {
        header: NlMsgHdr {
            len: std::mem::size_of::<Request>() as u32,
            kind: SOCK_DIAG_BY_FAMILY,
            flags: NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            pid: 0,
        },
        body: InetDiagReqV2 {
            family,
            protocol: libc::IPPROTO_TCP as u8,
            ext: 0,
            pad: 0,
            states: 1 << TCP_LISTEN,
            id: InetDiagSockId {
                sport: [0; 2],
                dport: [0; 2],
                src: [0; 16],
                dst: [0; 16],
                interface: 0,
                cookie: [0; 2],
            },
        },
    };
    send(sock, &request)?;
    let mut found = Vec::new();
    loop {
        let n = receive(sock, buf)?;
        match parse_messages(&buf[..n], seq, &mut found) {
            Batch::More => {}
            Batch::Done => return Some(found),
            Batch::Failed => return None,
        }
    }
}

/// What one received batch said.
#[derive(Debug, PartialEq, Eq)]
enum Batch {
    More,
    Done,
    Failed,
}

/// Walks the netlink messages in `data`, calling `f` with the header and
/// payload of each one of request `seq` until it returns `Some`. `Err` when a
/// message does not fit in `data`.
fn walk<R>(
    data: &[u8],
    seq: u32,
    mut f: impl FnMut(&NlMsgHdr, &[u8]) -> Option<R>,
) -> Result<Option<R>, ()> {
    const HDR: usize = std::mem::size_of::<NlMsgHdr>();
    let mut at = 0;
    while at + HDR <= data.len() {
        // SAFETY: HDR bytes are in bounds; read_unaligned copes with any alignment,
        // and NlMsgHdr is plain integers (any bit pattern is valid).
        let header: NlMsgHdr = unsafe { std::ptr::read_unaligned(data[at..].as_ptr().cast()) };
        let len = header.len as usize;
        if len < HDR || at + len > data.len() {
            return Err(());
        }
        if header.seq == seq {
            if let Some(r) = f(&header, &data[at + HDR..at + len]) {
                return Ok(Some(r));
            }
        }
        at += (len + 3) & !3;
    }
    Ok(None)
}

/// Parses the netlink messages in `data`, appending the LISTEN sockets found.
fn parse_messages(data: &[u8], seq: u32, found: &mut Vec<ListenSocket>) -> Batch {
    let walked = walk(data, seq, |header, payload| match header.kind {
        NLMSG_DONE => Some(Batch::Done),
        NLMSG_ERROR => Some(Batch::Failed),
        SOCK_DIAG_BY_FAMILY => {
            found.extend(parse_socket(payload));
            None
        }
        _ => None,
    });
    match walked {
        Ok(Some(b)) => b,
        Ok(None) => Batch::More,
        Err(()) => Batch::Failed,
    }
}

/// One `inet_diag_msg`, when it is a LISTEN socket.
fn parse_socket(payload: &[u8]) -> Option<ListenSocket> {
    if payload.len() < std::mem::size_of::<InetDiagMsg>() {
        return None;
    }
    // SAFETY: the payload holds a whole InetDiagMsg (checked above); it is plain
    // integers and byte arrays, valid for any bit pattern.
    let msg: InetDiagMsg = unsafe { std::ptr::read_unaligned(payload.as_ptr().cast()) };
    if u32::from(msg.state) != TCP_LISTEN {
        return None;
    }
    let addr = match i32::from(msg.family) {
        libc::AF_INET => {
            let b = msg.id.src;
            IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        }
        libc::AF_INET6 => {
            let v6 = Ipv6Addr::from(msg.id.src);
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    Some(ListenSocket {
        addr,
        port: u16::from_be_bytes(msg.id.sport),
        inode: u64::from(msg.inode),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_sizes_match_the_kernel_abi() {
        assert_eq!(std::mem::size_of::<NlMsgHdr>(), 16);
        assert_eq!(std::mem::size_of::<InetDiagSockId>(), 48);
        assert_eq!(std::mem::size_of::<InetDiagReqV2>(), 56);
        assert_eq!(std::mem::size_of::<InetDiagMsg>(), 72);
    }

    /// A netlink message carrying one inet_diag_msg.
    fn message(seq: u32, family: u8, state: u8, src: [u8; 16], port: u16, inode: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let len = 16 + 72;
        out.extend_from_slice(&(len as u32).to_ne_bytes());
        out.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        out.extend_from_slice(&0u16.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(&[family, state, 0, 0]);
        out.extend_from_slice(&port.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&src);
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&[0; 4 + 8]);
        out.extend_from_slice(&[0; 16]); // expires, rqueue, wqueue, uid
        out.extend_from_slice(&inode.to_ne_bytes());
        out
    }

    fn done(seq: u32) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&20u32.to_ne_bytes());
        out.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        out.extend_from_slice(&0u16.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(&0i32.to_ne_bytes());
        out
    }

    #[test]
    fn parses_a_lookups_answer() {
        let found = message(
            7,
            libc::AF_INET as u8,
            TCP_LISTEN as u8,
            [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            8000,
            42,
        );
        assert_eq!(parse_lookup(&found, 7), Lookup::Found(TCP_LISTEN as u8));
        assert_eq!(
            parse_lookup(&found, 8),
            Lookup::Other,
            "another request's answer"
        );
        let mut error = Vec::new();
        error.extend_from_slice(&(16u32 + 4).to_ne_bytes());
        error.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        error.extend_from_slice(&0u16.to_ne_bytes());
        error.extend_from_slice(&9u32.to_ne_bytes());
        error.extend_from_slice(&0u32.to_ne_bytes());
        error.extend_from_slice(&(-libc::ENOENT).to_ne_bytes());
        assert_eq!(parse_lookup(&error, 9), Lookup::NotFound);
        error[std::mem::size_of::<NlMsgHdr>()..].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        assert_eq!(parse_lookup(&error, 9), Lookup::Failed);
        assert_eq!(
            parse_lookup(&error[..10], 9),
            Lookup::Other,
            "too short for a header"
        );
    }

    #[test]
    fn parses_a_dump_batch() {
        let mut v4 = [0u8; 16];
        v4[..4].copy_from_slice(&[127, 0, 0, 1]);
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&[10, 0, 0, 7]);
        let mut one = [0u8; 16];
        one[15] = 1;
        let mut data = message(7, libc::AF_INET as u8, 10, v4, 8000, 11);
        data.extend(message(7, libc::AF_INET6 as u8, 10, mapped, 8001, 12));
        data.extend(message(7, libc::AF_INET6 as u8, 10, one, 8002, 13));
        data.extend(message(7, libc::AF_INET as u8, 1, v4, 8003, 14)); // not LISTEN
        data.extend(message(6, libc::AF_INET as u8, 10, v4, 8004, 15)); // other request
        let mut found = Vec::new();
        assert_eq!(parse_messages(&data, 7, &mut found), Batch::More);
        let got = super::super::address_port_inode(&found);
        assert_eq!(
            got,
            vec![
                ("127.0.0.1".to_string(), 8000, 11),
                ("10.0.0.7".to_string(), 8001, 12),
                ("::1".to_string(), 8002, 13),
            ]
        );
        assert_eq!(parse_messages(&done(7), 7, &mut found), Batch::Done);
        assert_eq!(parse_messages(&data[..50], 7, &mut found), Batch::Failed);
    }
}
