//! The data path: accepting on the service's port and forwarding each
//! connection, bytes both ways, to the member the table picks.
use super::*;

/// A non-blocking tokio listener on `ip:port` (a std bind gives the plain OS
/// error when the port is taken).
pub(super) fn listen(ip: IpAddr, port: u16) -> io::Result<TcpListener> {
    let listener = std::net::TcpListener::bind(SocketAddr::new(ip, port))?;
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

/// Accepts on `listener` until aborted, forwarding each connection in a task of
/// its own.
pub(super) async fn accept_loop(
    listener: TcpListener,
    stats: Arc<BalancerStats>,
    cut: watch::Receiver<bool>,
) {
    loop {
        match listener.accept().await {
            Ok((client, peer)) => {
                stats.count_accepted();
                let span = tracing::debug_span!("connection", %peer);
                actix::spawn(forward(client, stats.clone(), cut.clone()).instrument(span));
            }
            // A client that gave up before its connection was accepted.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted
                ) =>
            {
                tracing::debug!("accept: {e}");
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Forwards `client` to a routable member until either side closes, or until
/// `true` comes on `cut` (the end of a `Stop`'s grace).
pub(super) async fn forward(
    client: TcpStream,
    stats: Arc<BalancerStats>,
    mut cut: watch::Receiver<bool>,
) {
    tokio::select! {
        () = relay(client, stats) => {}
        // Also when the sender is gone: the run is over.
        _ = cut.wait_for(|cut| *cut) => tracing::debug!("cut by stop"),
    }
}

pub(super) async fn relay(mut client: TcpStream, stats: Arc<BalancerStats>) {
    let mut tried = Vec::new();
    let (mut upstream, _in_flight) = loop {
        let Some(pick) = stats.pick(&tried) else {
            // Dropping `client` closes it: the client sees the close at once.
            stats.count_refused();
            tracing::debug!(tried = tried.len(), "no ready member: connection refused");
            return;
        };
        tried.push(pick.id);
        let in_flight = InFlight {
            stats: stats.clone(),
            name: pick.name.clone(),
            id: pick.id,
        };
        match connect(pick.port, pick.v6_first).await {
            Ok((upstream, v6)) => {
                stats.connected(&pick.name, pick.id, v6);
                break (upstream, in_flight);
            }
            Err(e) => {
                tracing::debug!(member = %pick.name, port = pick.port, "cannot connect: {e}");
            }
        }
    };
    for socket in [&client, &upstream] {
        if let Err(e) = socket.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
    }
    if let Err(e) = tokio::io::copy_bidirectional_with_sizes(
        &mut client,
        &mut upstream,
        COPY_BUFFER,
        COPY_BUFFER,
    )
    .await
    {
        tracing::debug!("connection ended: {e}");
    }
}

/// Connects to a member on loopback: `127.0.0.1:port`, then `[::1]:port` (the
/// other way round with `v6_first`), each within [`CONNECT_TIMEOUT`]. Returns
/// the stream and whether IPv6 answered.
pub(super) async fn connect(port: u16, v6_first: bool) -> io::Result<(TcpStream, bool)> {
    let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let (first, second) = if v6_first { (v6, v4) } else { (v4, v6) };
    let attempt = |ip: IpAddr| async move {
        let addr = SocketAddr::new(ip, port);
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => Ok((stream, ip.is_ipv6())),
            Ok(Err(e)) => Err(io::Error::new(e.kind(), format!("{addr}: {e}"))),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{addr}: no answer within {CONNECT_TIMEOUT:?}"),
            )),
        }
    };
    match attempt(first).await {
        Ok(connected) => Ok(connected),
        Err(e1) => attempt(second)
            .await
            .map_err(|e2| io::Error::new(e2.kind(), format!("{e1}; {e2}"))),
    }
}
