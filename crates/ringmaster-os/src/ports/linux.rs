//! Linux port lookup without any external command: the LISTEN sockets of our
//! network namespace, then every process whose `/proc/PID/fd` links to one of
//! their inodes (`socket:[INODE]`). A shared socket is held by several processes,
//! and every one of them is reported. Processes whose fds we cannot read (another
//! user's, or gone while we look) are skipped; [`port_is_free`] still sees their
//! sockets.
//!
//! The sockets come from netlink `sock_diag` (`sock_diag.rs`, LISTEN-only, cheap)
//! and, where that is not available, from parsing `/proc/net/tcp` and
//! `/proc/net/tcp6`. The fd scan is most of the cost with hundreds of processes:
//! it opens each fd directory relative to an open `/proc`, resolves only the fds
//! open for reading and writing (as every socket is) with `statx`, and is split
//! over a few threads (see `fd_socket_inode`).
use std::collections::{HashMap, HashSet};
use std::ffi::CStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::Listener;
use crate::{Error, Result};

#[path = "sock_diag.rs"]
mod sock_diag;

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

/// Each socket as `(address, port, inode)`: what the parsers' tests compare.
#[cfg(test)]
fn address_port_inode(sockets: &[ListenSocket]) -> Vec<(String, u16, u64)> {
    sockets
        .iter()
        .map(|s| (s.addr.to_string(), s.port, s.inode))
        .collect()
}

/// Every process holding a LISTEN socket on `port` (every port when `None`).
pub(super) fn listeners(port: Option<u16>) -> Result<Vec<Listener>> {
    listeners_among(port, None)
}

/// [`listeners`], looking only at the fds of `among` when given (every process's
/// otherwise).
pub(super) fn listeners_among(port: Option<u16>, among: Option<&[u32]>) -> Result<Vec<Listener>> {
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
    let holders = socket_holders(&inodes, among);
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

/// Whether a connection to `addr` would find a listener: one `sock_diag`
/// lookup (no process lookup); `None` when it cannot tell.
pub(super) fn listening(addr: std::net::SocketAddr) -> Option<bool> {
    sock_diag::listening(addr)
}

/// The LISTEN sockets of our network namespace: from `sock_diag`, else from the
/// `/proc/net` tables.
fn listen_sockets() -> Result<Vec<ListenSocket>> {
    match sock_diag::listen_sockets() {
        Some(sockets) => Ok(sockets),
        None => proc_net_listen_sockets(),
    }
}

/// The LISTEN sockets of both `/proc/net` tables. A missing table (IPv6 disabled)
/// is empty.
fn proc_net_listen_sockets() -> Result<Vec<ListenSocket>> {
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
fn socket_holders(inodes: &HashSet<u64>, among: Option<&[u32]>) -> HashMap<u64, Vec<u32>> {
    let mut holders: HashMap<u64, Vec<u32>> = HashMap::new();
    let Some(proc_dir) = open_dir(None, c"/proc") else {
        return holders;
    };
    let pids = match among {
        Some(pids) => pids.to_vec(),
        None => list_pids(&proc_dir),
    };
    let found: Vec<(u64, u32)> =
        crate::batches::in_batches(&pids, DirentBuf::new, |buf, batch, found| {
            scan_pids(&proc_dir, batch, inodes, buf, found)
        });
    for (inode, pid) in found {
        let pids = holders.entry(inode).or_default();
        if !pids.contains(&pid) {
            pids.push(pid);
        }
    }
    for pids in holders.values_mut() {
        pids.sort_unstable();
    }
    holders
}

/// The pids listed in the open `/proc` (thread-group leaders).
fn list_pids(proc_dir: &OwnedFd) -> Vec<u32> {
    let mut pids = Vec::new();
    let mut buf = DirentBuf::new();
    for_each_entry(proc_dir, &mut buf, false, |name| {
        if let Some(pid) = std::str::from_utf8(name.to_bytes())
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
        {
            pids.push(pid);
        }
    });
    pids
}

/// Appends `(inode, pid)` to `found` for every fd of `pids` that links to a
/// socket in `inodes`.
fn scan_pids(
    proc_dir: &OwnedFd,
    pids: &[u32],
    inodes: &HashSet<u64>,
    entries: &mut DirentBuf,
    found: &mut Vec<(u64, u32)>,
) {
    use std::io::Write;
    let mut link = [0u8; 64];
    let mut path = [0u8; 32];
    for &pid in pids {
        // "PID/fd\0" in a stack buffer: no allocation per process.
        let mut cursor = std::io::Cursor::new(&mut path[..]);
        if write!(cursor, "{pid}/fd\0").is_err() {
            continue;
        }
        let len = cursor.position() as usize;
        let Ok(rel) = CStr::from_bytes_with_nul(&path[..len]) else {
            continue;
        };
        let Some(fd_dir) = open_dir(Some(proc_dir), rel) else {
            continue;
        };
        let dir_fd = fd_dir.as_raw_fd();
        for_each_entry(&fd_dir, entries, true, |name| {
            if let Some(inode) = fd_socket_inode(dir_fd, name, &mut link) {
                if inodes.contains(&inode) {
                    found.push((inode, pid));
                }
            }
        });
    }
}

/// The socket inode an fd entry (`name` in the fd directory `dir_fd`) refers to,
/// `None` when it is not a socket or cannot be read.
///
/// Two cheap steps instead of `readlinkat` (which builds the link text):
/// - `statx` of the fd link itself: procfs gives it the mode the file was opened
///   with (`r` for reading, `w` for writing). A socket is always open for both, so
///   an fd that is not (a pipe end, a log file, `/dev/null` on stdin) is skipped.
///   A kernel that reported something else would only make this filter keep more.
/// - `statx` through the link: the socket's inode, without touching the files of
///   the other fds' filesystems (`AT_STATX_DONT_SYNC`: no NFS or FUSE round trip).
///
/// Kernels without statx (before 4.11) get `readlinkat`.
fn fd_socket_inode(dir_fd: libc::c_int, name: &CStr, link: &mut [u8; 64]) -> Option<u64> {
    const READ_WRITE: u32 = libc::S_IRUSR | libc::S_IWUSR;
    match statx(dir_fd, name, libc::AT_SYMLINK_NOFOLLOW, libc::STATX_MODE) {
        Ok(fd_link) if u32::from(fd_link.stx_mode) & READ_WRITE != READ_WRITE => return None,
        Ok(_) => {}
        Err(e) if e != libc::ENOSYS => return None,
        Err(_) => return readlink_socket_inode(dir_fd, name, link),
    }
    let target = statx(dir_fd, name, 0, libc::STATX_TYPE | libc::STATX_INO).ok()?;
    let is_socket = u32::from(target.stx_mode) & libc::S_IFMT == libc::S_IFSOCK;
    is_socket.then_some(target.stx_ino)
}

/// `statx(dir_fd, name, flags | AT_STATX_DONT_SYNC, mask)`, or the errno.
fn statx(
    dir_fd: libc::c_int,
    name: &CStr,
    flags: libc::c_int,
    mask: libc::c_uint,
) -> std::result::Result<libc::statx, i32> {
    // SAFETY: statx is plain data; all-zero is a valid value.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is a NUL-terminated entry of the directory `dir_fd` refers to,
    // and `stx` is a live, writable statx.
    let rc = unsafe {
        libc::statx(
            dir_fd,
            name.as_ptr(),
            flags | libc::AT_STATX_DONT_SYNC,
            mask,
            &mut stx,
        )
    };
    if rc == 0 {
        Ok(stx)
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

/// The socket inode of an fd entry, from its link text `socket:[INODE]`.
fn readlink_socket_inode(dir_fd: libc::c_int, name: &CStr, link: &mut [u8; 64]) -> Option<u64> {
    // SAFETY: `name` is a NUL-terminated entry of the directory `dir_fd` refers to;
    // `link` is a live buffer of the given length.
    let n =
        unsafe { libc::readlinkat(dir_fd, name.as_ptr(), link.as_mut_ptr().cast(), link.len()) };
    if n <= 0 {
        return None;
    }
    socket_inode(&link[..n as usize])
}

/// Opens the directory `path` (relative to `at`, or absolute), never following a
/// final symlink. `None` when it cannot be opened (gone, or not ours to read).
fn open_dir(at: Option<&OwnedFd>, path: &CStr) -> Option<OwnedFd> {
    let base = at.map(|d| d.as_raw_fd()).unwrap_or(libc::AT_FDCWD);
    // SAFETY: `path` is NUL-terminated; `base` is a live directory fd or AT_FDCWD.
    let fd = unsafe {
        libc::openat(
            base,
            path.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    // SAFETY: a non-negative result is a fresh descriptor that nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A buffer for `getdents64`, 8-byte aligned as `struct linux_dirent64` wants.
struct DirentBuf(Vec<u64>);

impl DirentBuf {
    fn new() -> DirentBuf {
        DirentBuf(vec![0u64; 1024])
    }

    fn bytes(&mut self) -> &mut [u8] {
        let len = self.0.len() * std::mem::size_of::<u64>();
        // SAFETY: the Vec's allocation is `len` bytes, borrowed mutably for the
        // returned slice's lifetime; u8 has no alignment or validity requirements.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<u8>(), len) }
    }
}

/// Calls `f(name)` for every entry of the open directory `dir` but `.` and `..`.
/// Reads with `getdents64` straight into `buf` (no `DIR` allocation per directory,
/// which matters when hundreds of fd directories are read per lookup).
///
/// `once_short`: stop after a read that filled less than half the buffer, instead
/// of asking again until the end is reported. Only for `/proc/PID/fd`: procfs
/// fills the buffer with fd entries until none are left or the next one does not
/// fit (an entry is at most 32 bytes), so a half-empty buffer means the listing
/// is complete. This saves one system call per process, 10-20% of a lookup.
fn for_each_entry(dir: &OwnedFd, buf: &mut DirentBuf, once_short: bool, mut f: impl FnMut(&CStr)) {
    // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
    const RECLEN_AT: usize = 16;
    const NAME_AT: usize = 19;
    let bytes = buf.bytes();
    loop {
        // SAFETY: `bytes` is a live, writable, 8-byte aligned buffer of the given
        // length, and `dir` is an open directory descriptor.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                bytes.as_mut_ptr(),
                bytes.len(),
            )
        };
        if n <= 0 {
            return;
        }
        let data = &bytes[..(n as usize).min(bytes.len())];
        let mut at = 0;
        while at + NAME_AT < data.len() {
            let reclen = usize::from(u16::from_ne_bytes([
                data[at + RECLEN_AT],
                data[at + RECLEN_AT + 1],
            ]));
            if reclen <= NAME_AT || at + reclen > data.len() {
                return;
            }
            let Ok(name) = CStr::from_bytes_until_nul(&data[at + NAME_AT..at + reclen]) else {
                return;
            };
            if name.to_bytes() != b"." && name.to_bytes() != b".." {
                f(name);
            }
            at += reclen;
        }
        if once_short && (n as usize) < bytes.len() / 2 {
            return;
        }
    }
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
        let got = address_port_inode(&parse_listen_sockets(TCP6, true));
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
    fn fd_entries_resolve_to_socket_inodes_only() {
        use std::os::fd::AsRawFd;
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = l.local_addr().expect("local addr").port();
        let read_only = std::fs::File::open("/dev/null").expect("open /dev/null");
        let read_write = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .expect("open /dev/null read-write");
        let dir = open_dir(None, c"/proc/self/fd").expect("our fd directory");
        let mut link = [0u8; 64];
        let entry = |fd: i32| std::ffi::CString::new(fd.to_string()).expect("no NUL");

        let inode = fd_socket_inode(dir.as_raw_fd(), &entry(l.as_raw_fd()), &mut link)
            .expect("a socket fd has a socket inode");
        let from_link = readlink_socket_inode(dir.as_raw_fd(), &entry(l.as_raw_fd()), &mut link);
        assert_eq!(Some(inode), from_link);
        let sockets = listen_sockets().expect("socket table");
        assert!(sockets.iter().any(|s| s.port == port && s.inode == inode));

        for fd in [read_only.as_raw_fd(), read_write.as_raw_fd()] {
            assert_eq!(
                fd_socket_inode(dir.as_raw_fd(), &entry(fd), &mut link),
                None
            );
        }
    }

    #[test]
    fn a_long_fd_directory_is_listed_whole() {
        use std::os::fd::AsRawFd;
        // 600 fds: more than one 8 KiB read of /proc/self/fd.
        let files: Vec<std::fs::File> = (0..600)
            .map(|_| std::fs::File::open("/dev/null").expect("open /dev/null"))
            .collect();
        let dir = open_dir(None, c"/proc/self/fd").expect("our fd directory");
        let mut names = HashSet::new();
        for_each_entry(&dir, &mut DirentBuf::new(), true, |name| {
            names.insert(name.to_str().expect("digits").to_string());
        });
        for f in &files {
            assert!(
                names.contains(&f.as_raw_fd().to_string()),
                "fd {f:?} missing"
            );
        }
    }

    #[test]
    fn the_live_table_parses() {
        // Our own listener on an IPv4 loopback port shows up in the real table.
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = l.local_addr().expect("local addr").port();
        let sockets = listen_sockets().expect("read the socket table");
        assert!(sockets.iter().any(|s| s.port == port && s.inode != 0));
        // Both sources agree on our socket.
        let from_proc = proc_net_listen_sockets().expect("read /proc/net/tcp");
        let ours = |all: &[ListenSocket]| -> Vec<ListenSocket> {
            all.iter().filter(|s| s.port == port).copied().collect()
        };
        assert_eq!(ours(&sockets), ours(&from_proc));
        let found = listeners(Some(port)).expect("listeners");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].pid, std::process::id());
        assert!(!port_is_free(port).expect("port_is_free"));
        drop(l);
        // Another test may bind the released port at once: only our own socket
        // must be gone.
        let after = listeners(Some(port)).expect("listeners");
        assert!(
            after.iter().all(|h| h.pid != std::process::id()),
            "{after:?}"
        );
    }
}
