//! The balancer driven alone, with real sockets on loopback and a test actor
//! that collects its events.
use std::collections::HashMap;
use std::net::TcpListener as StdListener;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::*;
use crate::messages::ServiceEvent;

/// The longest any wait of these tests lasts before it fails: long enough for
/// a loaded machine, and only reached when something is wrong.
const PATIENCE: Duration = Duration::from_secs(10);

/// Collects the kinds of the events it hears.
#[derive(Default)]
struct Collector(Vec<EventKind>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<ServiceEvent> for Collector {
    type Result = ();
    fn handle(&mut self, ev: ServiceEvent, _: &mut Context<Self>) {
        assert_eq!(ev.name, "api");
        self.0.push(ev.kind);
    }
}

/// The kinds heard so far.
#[derive(Message)]
#[rtype(result = "Vec<EventKind>")]
struct Kinds;

impl Handler<Kinds> for Collector {
    type Result = MessageResult<Kinds>;
    fn handle(&mut self, _: Kinds, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.0.clone())
    }
}

/// A balancer for `api`, started, with its events collected.
struct Rig {
    addr: Addr<Balancer>,
    stats: Arc<BalancerStats>,
    events: Addr<Collector>,
}

impl Rig {
    async fn new(port: Option<u16>, min_ready: u32) -> Rig {
        let (addr, stats) = Balancer::start_own("api", port, min_ready);
        let rig = Rig {
            addr,
            stats,
            events: Collector::default().start(),
        };
        rig.start().await;
        rig
    }

    async fn start(&self) {
        self.addr
            .send(Start {
                name: "api".into(),
                events: Reporter::new("api", self.events.clone().recipient()),
                notify_socket: None,
            })
            .await
            .expect("balancer answers Start");
    }

    async fn stop(&self, grace: Duration) -> StopReport {
        tokio::time::timeout(PATIENCE, self.addr.send(Stop { grace }))
            .await
            .expect("Stop answers")
            .expect("balancer answers Stop")
    }

    async fn set(&self, name: &str, port: Option<u16>, ready: bool) {
        self.addr
            .send(SetBackend {
                name: name.into(),
                port,
                ready,
            })
            .await
            .expect("balancer answers SetBackend");
    }

    async fn forget(&self, name: &str) {
        self.addr
            .send(ForgetBackend { name: name.into() })
            .await
            .expect("balancer answers ForgetBackend");
    }

    /// The events so far. The balancer sends them before it answers the
    /// message that caused them, and the collector takes its mail in order, so
    /// they are all here once that answer came.
    async fn kinds(&self) -> Vec<EventKind> {
        self.events.send(Kinds).await.expect("collector answers")
    }

    fn backend(&self, name: &str) -> BackendSnapshot {
        self.stats
            .snapshot()
            .backends
            .into_iter()
            .find(|b| b.name == name)
            .unwrap_or_else(|| panic!("no member {name}"))
    }
}

/// Polls `done` every 20 ms until it holds; fails after [`PATIENCE`].
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let began = Instant::now();
    while !done() {
        assert!(began.elapsed() < PATIENCE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A member: answers each connection with its name and a newline, then echoes.
async fn member(name: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind member");
    let port = listener.local_addr().expect("member address").port();
    actix::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            actix::spawn(async move {
                if socket
                    .write_all(format!("{name}\n").as_bytes())
                    .await
                    .is_ok()
                {
                    let (mut r, mut w) = socket.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                }
            });
        }
    });
    port
}

/// Connects through the balancer on `port`: the member's name (empty when the
/// connection was closed without one) and the open connection.
async fn open(port: u16) -> (String, BufReader<TcpStream>) {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the balancer");
    let mut conn = BufReader::new(stream);
    let mut line = String::new();
    match tokio::time::timeout(PATIENCE, conn.read_line(&mut line)).await {
        Ok(Ok(_)) => {}
        // A reset counts as closed.
        Ok(Err(_)) => line.clear(),
        Err(_) => panic!("no answer through the balancer within {PATIENCE:?}"),
    }
    (line.trim_end().to_owned(), conn)
}

/// One connection through the balancer, closed again: the member's name.
async fn hello(port: u16) -> String {
    open(port).await.0
}

/// Waits until the peer closes `conn` (EOF or reset); fails after [`PATIENCE`].
async fn closed(conn: &mut BufReader<TcpStream>) {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(PATIENCE, conn.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => {}
        Ok(Ok(n)) => panic!("read {n} bytes from a connection that should be closed"),
        Err(_) => panic!("the connection was not closed within {PATIENCE:?}"),
    }
}

#[actix_rt::test]
async fn ready_only_once_min_ready_members_are_routable() {
    // Without a port: no listener, readiness only.
    let rig = Rig::new(None, 2).await;
    assert_eq!(rig.kinds().await, [EventKind::Spawned { pid: None }]);
    rig.set("api#0", None, true).await;
    rig.set("api#1", None, false).await;
    assert_eq!(rig.kinds().await, [EventKind::Spawned { pid: None }]);
    let snap = rig.stats.snapshot();
    assert_eq!((snap.ready, snap.members, snap.listening), (1, 2, false));
    rig.set("api#1", None, true).await;
    assert_eq!(
        rig.kinds().await,
        [EventKind::Spawned { pid: None }, EventKind::Ready]
    );
    rig.addr.send(SetMinReady(3)).await.expect("answers");
    rig.addr.send(SetMinReady(2)).await.expect("answers");
    assert_eq!(
        rig.kinds().await[2..],
        [
            EventKind::Unhealthy {
                reason: "2 of 2 replicas ready, fewer than min_ready 3".into()
            },
            EventKind::Healthy
        ]
    );
}

#[actix_rt::test]
async fn ready_at_once_when_enough_members_are_routable_before_start() {
    let (addr, stats) = Balancer::start_own("api", None, 1);
    let rig = Rig {
        addr,
        stats,
        events: Collector::default().start(),
    };
    rig.set("api#0", None, true).await;
    assert_eq!(rig.kinds().await, []);
    rig.start().await;
    assert_eq!(
        rig.kinds().await,
        [EventKind::Spawned { pid: None }, EventKind::Ready]
    );
}

#[actix_rt::test]
async fn connections_spread_over_all_ready_members() {
    let port = free_port();
    let rig = Rig::new(Some(port), 1).await;
    for name in ["api#0", "api#1", "api#2"] {
        rig.set(name, Some(member(name).await), true).await;
    }
    let mut got: HashMap<String, u32> = HashMap::new();
    for _ in 0..30 {
        *got.entry(hello(port).await).or_default() += 1;
    }
    for name in ["api#0", "api#1", "api#2"] {
        assert!(got.get(name).copied().unwrap_or(0) > 0, "{got:?}");
    }
    assert_eq!(got.values().sum::<u32>(), 30, "{got:?}");
    wait_for("every connection to end", || {
        rig.stats.snapshot().active == 0
    })
    .await;
    let snap = rig.stats.snapshot();
    assert_eq!((snap.accepted, snap.refused), (30, 0));
    assert_eq!(snap.backends.iter().map(|b| b.served).sum::<u64>(), 30);
    let names: Vec<&str> = snap.backends.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["api#0", "api#1", "api#2"]);
}

#[actix_rt::test]
async fn least_connections_sends_new_connections_past_the_busiest() {
    let port = free_port();
    let rig = Rig::new(Some(port), 1).await;
    rig.set("api#0", Some(member("api#0").await), true).await;
    let (first, _held1) = open(port).await;
    let (second, _held2) = open(port).await;
    assert_eq!((first.as_str(), second.as_str()), ("api#0", "api#0"));
    rig.set("api#1", Some(member("api#1").await), true).await;
    for _ in 0..5 {
        assert_eq!(hello(port).await, "api#1");
        wait_for("the closed connection to end", || {
            rig.stats.snapshot().active == 2
        })
        .await;
    }
    assert_eq!(rig.backend("api#0").active, 2);
    assert_eq!(rig.backend("api#1").served, 5);
}

#[actix_rt::test]
async fn no_ready_member_closes_the_connection_at_once_and_counts_it_refused() {
    let port = free_port();
    let rig = Rig::new(Some(port), 1).await;
    let (name, mut conn) = open(port).await;
    assert_eq!(name, "");
    closed(&mut conn).await;
    rig.set("api#0", Some(member("api#0").await), false).await;
    assert_eq!(hello(port).await, "");
    wait_for("two refusals", || rig.stats.snapshot().refused == 2).await;
    let snap = rig.stats.snapshot();
    assert_eq!((snap.accepted, snap.active), (2, 0));
    assert_eq!(rig.backend("api#0").served, 0);
    assert_eq!(rig.kinds().await, [EventKind::Spawned { pid: None }]);
}

#[actix_rt::test]
async fn a_member_refusing_the_connect_is_skipped() {
    let port = free_port();
    let rig = Rig::new(Some(port), 1).await;
    // Nothing listens on this one.
    rig.set("api#0", Some(free_port()), true).await;
    rig.set("api#1", Some(member("api#1").await), true).await;
    for _ in 0..6 {
        assert_eq!(hello(port).await, "api#1");
    }
    wait_for("every connection to end", || {
        rig.stats.snapshot().active == 0
    })
    .await;
    assert_eq!(rig.stats.snapshot().refused, 0);
    assert_eq!(rig.backend("api#0").served, 0);
    assert_eq!(rig.backend("api#1").served, 6);
    // With only the dead one left, the connection is refused.
    rig.forget("api#1").await;
    assert_eq!(hello(port).await, "");
    wait_for("a refusal", || rig.stats.snapshot().refused == 1).await;
}

#[actix_rt::test]
async fn drain_waits_for_the_open_connection_and_routes_nothing_new_to_it() {
    let port = free_port();
    let rig = Rig::new(Some(port), 1).await;
    rig.set("api#0", Some(member("api#0").await), true).await;
    rig.set("api#1", Some(member("api#1").await), true).await;
    let (drained, held) = open(port).await;
    let other = if drained == "api#0" { "api#1" } else { "api#0" };
    let drain = rig.addr.send(Drain {
        name: drained.clone(),
        within: PATIENCE,
    });
    let answered = actix::spawn(async move {
        drain.await.expect("balancer answers Drain");
        Instant::now()
    });
    wait_for("the member to drain", || rig.backend(&drained).draining).await;
    assert_eq!(rig.stats.snapshot().ready, 1);
    for _ in 0..5 {
        assert_eq!(hello(port).await, other);
    }
    // A ready member stays draining until it is not ready once.
    rig.set(&drained, rig.backend(&drained).port, true).await;
    assert!(rig.backend(&drained).draining);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !answered.is_finished(),
        "Drain answered with a connection open"
    );
    let closed_at = Instant::now();
    drop(held);
    let answered_at = tokio::time::timeout(PATIENCE, answered)
        .await
        .expect("Drain answers once the connection ended")
        .expect("drain task");
    assert!(answered_at >= closed_at);
    assert_eq!(rig.backend(&drained).active, 0);
    // Not ready, then ready again: routable again.
    rig.set(&drained, rig.backend(&drained).port, false).await;
    rig.set(&drained, rig.backend(&drained).port, true).await;
    assert!(!rig.backend(&drained).draining);
    assert_eq!(rig.stats.snapshot().ready, 2);
}

#[actix_rt::test]
async fn drain_answers_after_within_when_the_connection_stays_open() {
    let port = free_port();
    let rig = Rig::new(Some(port), 1).await;
    rig.set("api#0", Some(member("api#0").await), true).await;
    let (name, mut held) = open(port).await;
    assert_eq!(name, "api#0");
    let drain = rig.addr.send(Drain {
        name: "api#0".into(),
        within: Duration::from_millis(200),
    });
    tokio::time::timeout(PATIENCE, drain)
        .await
        .expect("Drain answers after `within`")
        .expect("balancer answers Drain");
    // The connection was left as it is.
    assert_eq!(rig.backend("api#0").active, 1);
    held.get_mut().write_all(b"ping\n").await.expect("write");
    let mut line = String::new();
    tokio::time::timeout(PATIENCE, held.read_line(&mut line))
        .await
        .expect("echo")
        .expect("read");
    assert_eq!(line, "ping\n");
    // An unknown member answers at once.
    let unknown = rig.addr.send(Drain {
        name: "api#9".into(),
        within: PATIENCE * 10,
    });
    tokio::time::timeout(PATIENCE, unknown)
        .await
        .expect("Drain of an unknown member answers")
        .expect("balancer answers Drain");
}

#[actix_rt::test]
async fn drain_answers_when_the_member_is_forgotten() {
    let port = free_port();
    let rig = Rig::new(Some(port), 1).await;
    rig.set("api#0", Some(member("api#0").await), true).await;
    let (name, _held) = open(port).await;
    assert_eq!(name, "api#0");
    let drain = rig.addr.send(Drain {
        name: "api#0".into(),
        within: PATIENCE * 10,
    });
    let answered = actix::spawn(drain);
    wait_for("the member to drain", || rig.backend("api#0").draining).await;
    rig.forget("api#0").await;
    tokio::time::timeout(PATIENCE, answered)
        .await
        .expect("Drain answers once the member is forgotten")
        .expect("drain task")
        .expect("balancer answers Drain");
    // Its connection still runs, counted in the total only.
    let snap = rig.stats.snapshot();
    assert_eq!((snap.active, snap.members), (1, 0));
}

#[actix_rt::test]
async fn unhealthy_when_the_last_ready_member_goes_and_healthy_when_one_returns() {
    let rig = Rig::new(Some(free_port()), 1).await;
    rig.set("api#0", Some(free_port()), true).await;
    rig.set("api#1", Some(free_port()), false).await;
    rig.set("api#0", Some(free_port()), false).await;
    rig.set("api#1", Some(free_port()), true).await;
    rig.forget("api#1").await;
    assert_eq!(
        rig.kinds().await,
        [
            EventKind::Spawned { pid: None },
            EventKind::Ready,
            EventKind::Unhealthy {
                reason: "0 of 2 replicas ready, fewer than min_ready 1".into()
            },
            EventKind::Healthy,
            EventKind::Unhealthy {
                reason: "0 of 1 replicas ready, fewer than min_ready 1".into()
            },
        ]
    );
    // A drain counts too.
    rig.set("api#0", Some(free_port()), true).await;
    rig.addr
        .send(Drain {
            name: "api#0".into(),
            within: PATIENCE,
        })
        .await
        .expect("answers");
    assert_eq!(
        rig.kinds().await[5..],
        [
            EventKind::Healthy,
            EventKind::Unhealthy {
                reason: "0 of 1 replicas ready, fewer than min_ready 1".into()
            },
        ]
    );
}

#[actix_rt::test]
async fn stop_frees_the_port_within_grace_and_cuts_held_connections() {
    let port = free_port();
    let rig = Rig::new(Some(port), 1).await;
    rig.set("api#0", Some(member("api#0").await), true).await;
    assert!(rig.stats.snapshot().listening);
    let (name, mut held) = open(port).await;
    assert_eq!(name, "api#0");
    let grace = Duration::from_millis(300);
    let report = rig.stop(grace).await;
    // It waited for the held connection through the grace, then cut it
    // before it answered.
    assert!(report.elapsed >= grace, "{report:?}");
    assert!(report.signalled.is_empty() && report.killed.is_empty());
    let snap = rig.stats.snapshot();
    assert!(!snap.listening);
    assert_eq!(snap.active, 0);
    closed(&mut held).await;
    StdListener::bind(("127.0.0.1", port)).expect("the port is free after Stop");
    // Stopped: no more events.
    rig.forget("api#0").await;
    assert_eq!(
        rig.kinds().await,
        [EventKind::Spawned { pid: None }, EventKind::Ready]
    );
}

#[actix_rt::test]
async fn stop_answers_at_once_when_no_connection_is_open() {
    let port = free_port();
    let rig = Rig::new(Some(port), 1).await;
    rig.set("api#0", Some(member("api#0").await), true).await;
    assert_eq!(hello(port).await, "api#0");
    wait_for("the connection to end", || rig.stats.snapshot().active == 0).await;
    // A grace far beyond the test's patience: only an early answer passes.
    rig.stop(PATIENCE * 10).await;
    StdListener::bind(("127.0.0.1", port)).expect("the port is free after Stop");
}

#[actix_rt::test]
async fn start_again_after_stop_serves_again() {
    let port = free_port();
    let rig = Rig::new(Some(port), 1).await;
    rig.set("api#0", Some(member("api#0").await), true).await;
    assert_eq!(hello(port).await, "api#0");
    rig.stop(Duration::from_secs(1)).await;
    assert!(!rig.stats.snapshot().listening);
    rig.start().await;
    assert!(rig.stats.snapshot().listening);
    assert_eq!(hello(port).await, "api#0");
    let ready = [EventKind::Spawned { pid: None }, EventKind::Ready];
    assert_eq!(rig.kinds().await, [ready.clone(), ready].concat());
}

#[actix_rt::test]
async fn bind_failure_reports_failed_naming_the_port() {
    let held = StdListener::bind("127.0.0.1:0").expect("bind");
    let port = held.local_addr().expect("address").port();
    let rig = Rig::new(Some(port), 0).await;
    let kinds = rig.kinds().await;
    match kinds.as_slice() {
        [EventKind::Failed { reason }] => {
            assert!(reason.contains(&format!("127.0.0.1:{port}")), "{reason}")
        }
        other => panic!("expected one Failed, got {other:?}"),
    }
    assert!(!rig.stats.snapshot().listening);
    // Still stopped: a member changes nothing, and Stop answers.
    rig.set("api#0", Some(free_port()), true).await;
    assert_eq!(rig.kinds().await.len(), 1);
    rig.stop(PATIENCE * 10).await;
    drop(held);
}

#[actix_rt::test]
async fn serves_on_ipv6_loopback_when_there_is_one() {
    if StdListener::bind("[::1]:0").is_err() {
        return; // no IPv6 here
    }
    let port = free_port();
    let rig = Rig::new(Some(port), 1).await;
    rig.set("api#0", Some(member("api#0").await), true).await;
    let stream = TcpStream::connect(("::1", port))
        .await
        .expect("connect over IPv6");
    let mut conn = BufReader::new(stream);
    let mut line = String::new();
    tokio::time::timeout(PATIENCE, conn.read_line(&mut line))
        .await
        .expect("an answer")
        .expect("read");
    assert_eq!(line, "api#0\n");
}

#[actix_rt::test]
async fn dropping_every_address_stops_the_balancer_and_frees_the_port() {
    let port = free_port();
    let rig = Rig::new(Some(port), 1).await;
    let Rig { addr, stats, .. } = rig;
    assert!(stats.snapshot().listening);
    drop(addr);
    // The actor, its accept loops and its Arbiter hold the other references.
    wait_for("the balancer to be gone", || Arc::strong_count(&stats) == 1).await;
    assert!(!stats.snapshot().listening);
    StdListener::bind(("127.0.0.1", port)).expect("the port is free");
}
