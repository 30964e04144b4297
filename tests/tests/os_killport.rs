//! Kill-port on real processes: holders outside the allow list are refused and
//! left alive (nothing touched, even when another holder is allowed); ourselves
//! always refused; allowed holders (by name, renamed name, tag, and both holders
//! of a shared socket) are stopped with their trees and the port is freed.
#![cfg(unix)]

use std::process::Command;
use std::time::Duration;

use ringmaster_os::authz::RefusalReason;
use ringmaster_os::ports::{listeners, port_is_free};
use ringmaster_os::{clear_port, Error, Policy, Signal, Tag, TAG_ENV};
use ringmaster_tests::{fake_service, pid_alive, PidGuard, Svc};

const TIMEOUT: Duration = Duration::from_secs(20);
const GRACE: Duration = Duration::from_secs(5);
const PROJECT: &str = "rm-00000000000000cc";

fn policy(allow: &[&str]) -> Policy {
    Policy::current(
        Some(PROJECT.to_string()),
        allow.iter().map(|s| s.to_string()).collect(),
    )
    .expect("a policy")
    .with_service("api")
}

fn clear(port: u16, policy: &Policy) -> ringmaster_os::Result<ringmaster_os::ClearReport> {
    clear_port(port, policy, Signal::Term, GRACE, false)
}

#[test]
fn a_holder_outside_the_allow_list_is_refused_and_left_alive() {
    let guard = PidGuard::new();
    let mut svc = Svc::with(&["--listen", "0"], &guard);
    let port = svc.port();
    match clear(port, &policy(&["postgres"])) {
        Err(e @ Error::Refused { .. }) => {
            let Error::Refused { port: p, refusals } = &e else {
                unreachable!()
            };
            assert_eq!(*p, port);
            assert_eq!(refusals.len(), 1, "{refusals:?}");
            let r = &refusals[0];
            assert_eq!(r.pid, svc.pid());
            assert_eq!(r.name, "fake-service");
            assert_eq!(r.reason, RefusalReason::NotInAllowList);
            let exe = r.exe.clone().expect("exe named");
            assert_eq!(
                exe.file_name().and_then(|n| n.to_str()),
                Some("fake-service")
            );
            let user = r.user.clone().expect("user named");
            let text = e.to_string();
            assert!(
                text.starts_with(&format!(
                    "port {port} is held by pid {} (fake-service, ",
                    svc.pid()
                )),
                "{text}"
            );
            assert!(text.contains(&format!("user {user}")), "{text}");
            assert!(text.ends_with("which is not in api's allow list"), "{text}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(!svc.exited(), "a refused holder is never signalled");
    assert!(!port_is_free(port).expect("port_is_free"));
    svc.kill();
}

#[test]
fn one_refused_holder_means_nothing_is_touched() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    }
    let guard = PidGuard::new();
    // Two processes on one port number (IPv4 and IPv6 loopback). The first runs
    // as `uvicorn` (its argv[0]) and is allowed; the second is not.
    let mut cmd = Command::new(fake_service());
    std::os::unix::process::CommandExt::arg0(&mut cmd, "uvicorn");
    let mut allowed = Svc::start(cmd.args(["--listen", "0"]), &guard);
    let port = allowed.port();
    let mut stranger = Svc::with(&["--listen", &port.to_string(), "--listen6"], &guard);
    assert_eq!(stranger.port(), port);
    assert_eq!(listeners(port).expect("listeners").len(), 2);

    match clear(port, &policy(&["uvicorn"])) {
        Err(Error::Refused { refusals, .. }) => {
            assert_eq!(refusals.len(), 1, "{refusals:?}");
            assert_eq!(refusals[0].pid, stranger.pid());
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !allowed.exited(),
        "nothing is touched when one holder is refused"
    );
    assert!(!stranger.exited());
    allowed.kill();
    stranger.kill();
}

#[test]
fn our_own_listener_is_always_refused() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let me = ringmaster_os::process::process(std::process::id())
        .expect("read")
        .expect("we exist");
    let mut allow = vec![me.name.clone()];
    allow.extend(me.exe_name());
    let mut p = policy(&[]);
    p.allow = allow;
    match clear(port, &p) {
        Err(Error::Refused { refusals, .. }) => {
            assert_eq!(refusals.len(), 1);
            assert_eq!(refusals[0].pid, std::process::id());
            assert_eq!(refusals[0].reason, RefusalReason::Ourselves);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!port_is_free(port).expect("port_is_free"));
}

#[test]
fn a_free_port_needs_nothing() {
    let port = ringmaster_tests::free_port();
    let report = clear(port, &policy(&[])).expect("nothing to clear");
    assert_eq!(report.port, port);
    assert!(report.holders.is_empty());
    assert!(report.stops.is_empty());
}

#[test]
fn dry_run_reports_the_holders_and_touches_nothing() {
    let guard = PidGuard::new();
    let mut svc = Svc::with(&["--listen", "0"], &guard);
    let port = svc.port();
    let report =
        clear_port(port, &policy(&["fake-service"]), Signal::Term, GRACE, true).expect("dry run");
    assert_eq!(report.holders.len(), 1);
    assert_eq!(report.holders[0].pid, svc.pid());
    assert!(report.stops.is_empty());
    std::thread::sleep(Duration::from_millis(200));
    assert!(!svc.exited());
    assert!(!port_is_free(port).expect("port_is_free"));
    svc.kill();
}

/// Clears the port of `svc` with `policy`, then checks the OS: the holder and its
/// children are gone and the port is free.
fn assert_cleared(svc: &mut Svc, port: u16, policy: &Policy, children: &[u32]) {
    let report = clear(port, policy).expect("the port is cleared");
    assert_eq!(report.port, port);
    assert!(
        report.holders.iter().any(|h| h.pid == svc.pid()),
        "{report:?}"
    );
    assert!(!report.stops.is_empty());
    assert!(report.stops.iter().all(|s| s.clean()), "{report:?}");
    assert!(port_is_free(port).expect("port_is_free"));
    assert!(listeners(port).expect("listeners").is_empty());
    ringmaster_tests::wait_for("the holder to exit", TIMEOUT, || svc.exited());
    for &c in children {
        ringmaster_tests::wait_for("its child to exit", TIMEOUT, || !pid_alive(c));
    }
}

#[test]
fn an_allowed_holder_is_stopped_with_its_children() {
    let guard = PidGuard::new();
    let mut svc = Svc::with(&["--listen", "0", "--children", "2"], &guard);
    let c1: u32 = svc.expect("pid child ").parse().expect("pid");
    let c2: u32 = svc.expect("pid child ").parse().expect("pid");
    guard.add(c1);
    guard.add(c2);
    let port = svc.port();
    assert_cleared(&mut svc, port, &policy(&["fake-service"]), &[c1, c2]);
}

#[cfg(target_os = "linux")]
#[test]
fn a_renamed_holder_is_stopped_by_its_new_name() {
    let guard = PidGuard::new();
    let mut svc = Svc::with(
        &["--listen", "0", "--rename", "next-server (v16.0.1)"],
        &guard,
    );
    let port = svc.port();
    // Not by the old name alone: `node` is not it either.
    assert!(matches!(
        clear(port, &policy(&["node"])),
        Err(Error::Refused { .. })
    ));
    assert_cleared(&mut svc, port, &policy(&["node", "next-server"]), &[]);
}

#[test]
fn a_tagged_holder_is_stopped_without_an_allow_list() {
    let guard = PidGuard::new();
    let mut svc = Svc::start(
        Command::new(fake_service())
            .args(["--listen", "0"])
            .env(TAG_ENV, Tag::new(PROJECT, "api").env_value()),
        &guard,
    );
    let port = svc.port();
    assert_cleared(&mut svc, port, &policy(&[]), &[]);
}

#[test]
fn both_holders_of_a_shared_socket_are_stopped() {
    let guard = PidGuard::new();
    let mut svc = Svc::with(&["--listen", "0", "--share"], &guard);
    let port = svc.port();
    let worker: u32 = svc.expect("pid worker ").parse().expect("pid");
    guard.add(worker);
    ringmaster_tests::wait_for("both holders", TIMEOUT, || {
        listeners(port).expect("listeners").len() == 2
    });
    assert_cleared(&mut svc, port, &policy(&["fake-service"]), &[worker]);
}

#[test]
fn a_holder_ignoring_term_is_killed_after_the_grace() {
    let guard = PidGuard::new();
    let mut svc = Svc::with(&["--listen", "0", "--ignore-term"], &guard);
    let port = svc.port();
    let report = clear_port(
        port,
        &policy(&["fake-service"]),
        Signal::Term,
        Duration::from_millis(300),
        false,
    )
    .expect("cleared");
    assert!(
        report
            .stops
            .iter()
            .any(|s| s.killed.iter().any(|b| b.pid == svc.pid())),
        "{report:?}"
    );
    assert!(port_is_free(port).expect("port_is_free"));
    ringmaster_tests::wait_for("the holder to exit", TIMEOUT, || svc.exited());
}
