//! Running one probe, and knocking on a port: what the [`super::HealthChecker`]
//! schedules.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use ringmaster_os::TAG_ENV;

use crate::config::Probe;
use crate::messages::Watch;

/// How a probe ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Healthy.
    Pass,
    /// Nothing accepted the connection: the server is not listening (yet).
    Refused,
    /// Anything else: an answer that is not healthy, a reset, a timeout.
    Fail,
}

/// Where a probe connects, for knocking before the first success: the http
/// probe's host and port when the host is a loopback address or `localhost`, the tcp
/// probe's port, and for an exec probe the service's own port. Empty for a log
/// or notify probe, an exec probe of a service without a port, and an http
/// probe of another host or a host name (those are not knocked on: the probe
/// itself runs).
pub(super) fn knock_addresses(watch: &Watch) -> Vec<SocketAddr> {
    let loopback = |port: u16| {
        vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        ]
    };
    match &watch.probe {
        Probe::Http { url } => {
            let Ok(uri) = url.parse::<awc::http::Uri>() else {
                return Vec::new();
            };
            let Some(host) = uri.host() else {
                return Vec::new();
            };
            let port = uri.port_u16().unwrap_or(80);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.eq_ignore_ascii_case("localhost") {
                return loopback(port);
            }
            // Knocking is for this machine: a connect elsewhere does not
            // complete within the call.
            host.parse::<IpAddr>()
                .ok()
                .filter(|ip| ip.is_loopback() || ip.is_unspecified())
                .map(|ip| vec![SocketAddr::new(ip, port)])
                .unwrap_or_default()
        }
        &Probe::Tcp { port } => vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)],
        Probe::Exec { .. } => watch.port.map(loopback).unwrap_or_default(),
        Probe::Log { .. } | Probe::Notify => Vec::new(),
    }
}

/// Tries each of `addrs` once: true when one accepts (or does not answer
/// within `wait`: a full accept queue means a listener that is not accepting
/// yet, which the probe itself waits for), false when all refuse.
///
/// Blocking, on purpose: on loopback a refused or accepted connect completes
/// within the call (the handshake runs in the kernel as the SYN is sent), and
/// `wait` bounds the rare handshake that does not. While nothing listens on the
/// port, no connection is tried at all where the OS can tell cheaply
/// ([`ringmaster_os::ports::listening`]): a refused connect costs ~0.2 ms of
/// CPU, which every few ms for 30 s would be 4 % of a core.
pub(super) fn knock(addrs: &[SocketAddr], wait: Duration) -> bool {
    addrs.iter().any(|addr| {
        // Nothing listens there: no need to try (on Linux the kernel's own
        // listener lookup, far cheaper than a refused connect).
        if ringmaster_os::ports::listening(*addr) == Some(false) {
            return false;
        }
        match std::net::TcpStream::connect_timeout(addr, wait) {
            Ok(_) => true,
            // No answer to the handshake at once: a listener whose queue is full.
            Err(e) => e.kind() == std::io::ErrorKind::TimedOut,
        }
    })
}

/// Runs one probe of `watch`; returns how it ended and what it said. `timeout`
/// bounds the probe; `patience` (≥ `timeout`) is how long an http probe whose
/// connection was accepted waits for the whole answer.
pub(super) async fn run_probe(
    client: awc::Client,
    watch: Watch,
    timeout: Duration,
    patience: Duration,
) -> (Outcome, String) {
    match &watch.probe {
        Probe::Http { url } => http(client, url, patience).await,
        &Probe::Tcp { port } => {
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(("127.0.0.1", port)))
                .await
            {
                Ok(Ok(_)) => (Outcome::Pass, format!("tcp 127.0.0.1:{port} accepted")),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => (
                    Outcome::Refused,
                    format!("tcp 127.0.0.1:{port}: connection refused"),
                ),
                Ok(Err(e)) => (Outcome::Fail, format!("tcp 127.0.0.1:{port}: {e}")),
                Err(_) => (
                    Outcome::Fail,
                    format!("tcp 127.0.0.1:{port}: timed out after {timeout:?}"),
                ),
            }
        }
        Probe::Exec { command } => run_exec(command, timeout, &watch).await,
        // Log and notify probes are driven by what arrives, never scheduled.
        Probe::Log { regex } => (
            Outcome::Fail,
            format!("waiting for a line matching /{regex}/"),
        ),
        Probe::Notify => (Outcome::Fail, "no READY=1 yet".to_owned()),
    }
}

/// GET `url`: 2xx and 3xx pass once the body (its first 64 KiB) arrived too, all
/// within `timeout`.
async fn http(client: awc::Client, url: &str, timeout: Duration) -> (Outcome, String) {
    let started = Instant::now();
    match client.get(url).timeout(timeout).send().await {
        Ok(mut resp) => {
            let status = resp.status();
            // The body must arrive within what is left of the timeout too
            // (awc bounds only the head): a server that sends its status line and
            // then stalls is not healthy, and must not hold the probe. Only its
            // first 64 KiB are read; a longer body is fine.
            let left = timeout.saturating_sub(started.elapsed());
            let body = tokio::time::timeout(left, resp.body().limit(64 * 1024)).await;
            let ok = status.is_success() || status.is_redirection();
            let code = status.as_u16();
            match body {
                Ok(Ok(_)) | Ok(Err(awc::error::PayloadError::Overflow)) => (
                    if ok { Outcome::Pass } else { Outcome::Fail },
                    format!("GET {url}: HTTP {code}"),
                ),
                Ok(Err(e)) => (
                    Outcome::Fail,
                    format!("GET {url}: HTTP {code}, then the body failed: {e}"),
                ),
                Err(_) => (
                    Outcome::Fail,
                    format!(
                        "GET {url}: HTTP {code}, but the body did not arrive within {timeout:?}"
                    ),
                ),
            }
        }
        Err(awc::error::SendRequestError::Connect(awc::error::ConnectError::Io(e)))
            if e.kind() == std::io::ErrorKind::ConnectionRefused =>
        {
            (Outcome::Refused, format!("GET {url}: connection refused"))
        }
        Err(e) => (Outcome::Fail, format!("GET {url}: {e}")),
    }
}

/// Runs `command` as `watch`'s service runs its own: in its workdir, with its
/// environment and its tag.
async fn run_exec(command: &str, timeout: Duration, watch: &Watch) -> (Outcome, String) {
    let mut cmd = crate::service::shell_command(command);
    cmd.current_dir(&watch.workdir);
    cmd.envs(watch.env.iter().map(|(k, v)| (k, v)));
    // Set last, as at a service's spawn: `env` cannot override it.
    if let Some(tag) = &watch.tag {
        cmd.env(TAG_ENV, tag.env_value());
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (Outcome::Fail, format!("`{command}` could not start: {e}")),
    };
    let pid = child.id();
    let _registered = pid.map(crate::service::OwnChild::register);
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => (Outcome::Pass, format!("`{command}` exited 0")),
        Ok(Ok(status)) => (Outcome::Fail, format!("`{command}` exited with {status}")),
        Ok(Err(e)) => (Outcome::Fail, format!("`{command}`: {e}")),
        Err(_) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            (
                Outcome::Fail,
                format!("`{command}` timed out after {timeout:?}"),
            )
        }
    }
}
