//! Who holds a port, as the OS shows it: both holders of a shared socket, IPv6
//! listeners, and a port that is free again once its holder died.
#![cfg(unix)]

use std::time::Duration;

use ringmaster_os::ports::{listeners, port_is_free};
use ringmaster_tests::{pid_alive, wait_for, PidGuard, Svc};

const TIMEOUT: Duration = Duration::from_secs(20);

fn pids_on(port: u16) -> Vec<u32> {
    let mut pids: Vec<u32> = listeners(port)
        .expect("listeners")
        .iter()
        .map(|l| l.pid)
        .collect();
    pids.dedup();
    pids
}

#[test]
fn both_holders_of_a_shared_socket_are_reported() {
    let guard = PidGuard::new();
    let mut svc = Svc::with(&["--listen", "0", "--share"], &guard);
    let root = svc.child.id();
    let port = svc.port();
    let worker: u32 = svc.expect("pid worker ").parse().expect("worker pid");
    guard.add(worker);
    assert_ne!(root, worker);

    let mut expected = vec![root, worker];
    expected.sort_unstable();
    wait_for("both holders to be listed", TIMEOUT, || {
        pids_on(port) == expected
    });

    let found = listeners(port).expect("listeners");
    assert_eq!(found.len(), 2, "{found:?}");
    for l in &found {
        assert_eq!(l.port, port);
        assert_eq!(l.addr.to_string(), "127.0.0.1");
        let info = l.process.as_ref().expect("our own children can be read");
        assert_eq!(info.pid, l.pid);
        assert_eq!(info.exe_name().as_deref(), Some("fake-service"));
    }

    // Killing the root alone leaves the worker holding the socket.
    svc.kill();
    wait_for("only the worker to hold the port", TIMEOUT, || {
        pids_on(port) == vec![worker]
    });
    assert!(!port_is_free(port).expect("port_is_free"));
    ringmaster_tests::kill_pid(worker);
    wait_for("the port to be free", TIMEOUT, || {
        port_is_free(port).expect("port_is_free")
    });
    assert!(listeners(port).expect("listeners").is_empty());
}

#[test]
fn an_ipv6_listener_is_found() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    }
    let guard = PidGuard::new();
    let mut svc = Svc::with(&["--listen", "0", "--listen6"], &guard);
    let port = svc.port();
    let found = listeners(port).expect("listeners");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].pid, svc.child.id());
    assert_eq!(found[0].addr.to_string(), "::1");
    assert!(!port_is_free(port).expect("port_is_free"));
    svc.kill();
    wait_for("the IPv6 port to be free", TIMEOUT, || {
        port_is_free(port).expect("port_is_free")
    });
}

#[test]
fn a_dual_stack_wildcard_listener_is_found() {
    // `[::]` without IPV6_V6ONLY takes IPv4 too; it lives in /proc/net/tcp6 only.
    let Ok(l) = std::net::TcpListener::bind("[::]:0") else {
        eprintln!("skipped: this machine has no IPv6");
        return;
    };
    let port = l.local_addr().expect("local addr").port();
    // Only this process holds it, once no other test of this binary is between the
    // fork and the exec of a child (a forked child briefly holds every fd, until
    // exec closes the close-on-exec ones).
    only_we_hold(port);
    let found = listeners(port).expect("listeners");
    assert_eq!(
        found.iter().map(|l| l.addr.to_string()).collect::<Vec<_>>(),
        ["::"]
    );
    drop(l);
    wait_for("the port to be free", TIMEOUT, || {
        port_is_free(port).expect("port_is_free")
    });
}

#[test]
fn the_port_is_free_once_its_holder_died() {
    let guard = PidGuard::new();
    let mut svc = Svc::with(&["--listen", "0"], &guard);
    let pid = svc.child.id();
    let port = svc.port();
    assert!(!port_is_free(port).expect("port_is_free"));
    assert_eq!(pids_on(port), vec![pid]);
    svc.kill();
    assert!(!pid_alive(pid));
    wait_for("the port to be free", TIMEOUT, || {
        port_is_free(port).expect("port_is_free")
    });
    assert!(listeners(port).expect("listeners").is_empty());
}

#[cfg(target_os = "linux")]
#[test]
fn all_listeners_includes_a_renamed_holder_with_its_identity() {
    let guard = PidGuard::new();
    let mut svc = Svc::with(
        &["--listen", "0", "--rename", "next-server (v16.0.1)"],
        &guard,
    );
    let port = svc.port();
    let pid = svc.child.id();
    let found = ringmaster_os::ports::all_listeners().expect("all_listeners");
    let ours: Vec<_> = found.iter().filter(|l| l.port == port).collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    let info = ours[0].process.as_ref().expect("readable");
    assert_eq!(info.pid, pid);
    assert!(info.name.starts_with("next-server"), "{}", info.name);
    assert_eq!(info.exe_name().as_deref(), Some("fake-service"));
    // Sorted by port.
    assert!(found.windows(2).all(|w| w[0].port <= w[1].port));
    svc.kill();
}

#[test]
fn a_port_nobody_listens_on_is_free_and_has_no_holders() {
    let port = ringmaster_tests::free_port();
    assert!(port_is_free(port).expect("port_is_free"));
    assert!(listeners(port).expect("listeners").is_empty());
    // A connected (not listening) socket does not count as a holder.
    let server = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let server_port = server.local_addr().expect("addr").port();
    let client = std::net::TcpStream::connect(("127.0.0.1", server_port)).expect("connect");
    let client_port = client.local_addr().expect("addr").port();
    assert!(listeners(client_port).expect("listeners").is_empty());
    assert!(port_is_free(client_port).expect("port_is_free"));
    only_we_hold(server_port);
}

/// Waits until this test process is the one holder of `port` (see above: a child
/// forked by a parallel test holds our sockets until its exec).
fn only_we_hold(port: u16) {
    let me = vec![std::process::id()];
    let mut last = Vec::new();
    let settled = ringmaster_os::process::poll_until(TIMEOUT, Duration::from_millis(10), || {
        last = pids_on(port);
        last == me
    });
    assert!(
        settled,
        "port {port}: holders {last:?}, expected only {me:?}"
    );
}

/// `listening` answers for an address without connecting: a listener bound
/// there, on the wildcard or on the dual-stack wildcard is found; a closed
/// port is not; on macOS and Windows it cannot tell.
#[test]
fn listening_tells_a_listener_from_a_closed_port_without_connecting() {
    use ringmaster_os::ports::listening;
    use std::net::{SocketAddr, TcpListener};
    let expect = |v: bool| {
        if cfg!(target_os = "linux") {
            Some(v)
        } else {
            None
        }
    };
    let local = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = local.local_addr().expect("addr");
    assert_eq!(listening(addr), expect(true));
    drop(local);
    // A closed port: one that is bound but does not listen, so that no other test
    // can take it meanwhile (a port just closed could be handed out again at once).
    let (closed, addr) = bound_not_listening();
    assert_eq!(listening(addr), expect(false));
    drop(closed);

    let any = TcpListener::bind("0.0.0.0:0").expect("bind");
    let port = any.local_addr().expect("addr").port();
    assert_eq!(
        listening(SocketAddr::from(([127, 0, 0, 1], port))),
        expect(true)
    );
    drop(any);

    if let Ok(v6) = TcpListener::bind("[::1]:0") {
        let addr = v6.local_addr().expect("addr");
        assert_eq!(listening(addr), expect(true));
        drop(v6);
        assert_eq!(listening(addr), expect(false));
    }
    // A connection on the port is not a listener.
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let _client = std::net::TcpStream::connect(addr).expect("connect");
    let (_served, _) = l.accept().expect("accept");
    drop(l);
    assert_eq!(listening(addr), expect(false));
}

/// A loopback TCP socket bound to a free port without listening, and its address.
/// Bound without `SO_REUSEADDR`, it keeps anyone else from binding the port
/// until it is dropped.
#[cfg(unix)]
fn bound_not_listening() -> (std::os::fd::OwnedFd, std::net::SocketAddr) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor this function owns; the address
    // structures are zeroed and sized as the calls expect.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket");
        let owned = std::os::fd::OwnedFd::from_raw_fd(fd);
        let mut sin: libc::sockaddr_in = std::mem::zeroed();
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let rc = libc::bind(fd, &sin as *const _ as *const libc::sockaddr, len);
        assert_eq!(rc, 0, "bind");
        let mut got: libc::sockaddr_in = std::mem::zeroed();
        let mut got_len = len;
        let rc = libc::getsockname(fd, &mut got as *mut _ as *mut libc::sockaddr, &mut got_len);
        assert_eq!(rc, 0, "getsockname");
        let port = u16::from_be(got.sin_port);
        (owned, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
    }
}

/// Elsewhere `listening` answers `None` whatever the port, so any loopback
/// address serves (here a listener's).
#[cfg(not(unix))]
fn bound_not_listening() -> (std::net::TcpListener, std::net::SocketAddr) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    (l, addr)
}
