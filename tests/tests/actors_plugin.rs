//! Plugin services: an in-process HTTP server actor registered in code takes part
//! in gating like a process service (a process service that depends on it spawns
//! only once its health probe succeeded), in the shutdown cascade (stopped after
//! its dependents, its port checked free), and a plugin may itself wait for a
//! process service. A plugin that does not answer `Stop` is reported as such, not
//! as a survivor process.
//! Runs on Windows too (under Wine: `.ci/wine/test.sh`).

mod actors_support;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actors_support::*;
use ringmaster::config::{Config, Probe};
use ringmaster::messages::{EventKind, Start, Stop};
use ringmaster::plugin::PluginService;
use ringmaster::{Options, Orchestrator, ServiceState, StopReport};
use ringmaster_tests::{free_port, port_answers, PidGuard};

/// A plugin serving HTTP `200 ok` on `port` from a thread, `delay` after its Start.
struct HttpPlugin {
    port: u16,
    delay: Duration,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    started_at: Arc<Mutex<Option<Instant>>>,
}

impl Actor for HttpPlugin {
    type Context = Context<Self>;
}

impl Handler<Start> for HttpPlugin {
    type Result = ();
    fn handle(&mut self, start: Start, _: &mut Context<Self>) {
        *self.started_at.lock().expect("lock") = Some(Instant::now());
        let (port, delay) = (self.port, self.delay);
        let stop = Arc::new(AtomicBool::new(false));
        self.stop = stop.clone();
        self.thread = Some(std::thread::spawn(move || {
            std::thread::sleep(delay);
            let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("plugin binds");
            listener.set_nonblocking(true).expect("nonblocking");
            start.events.report(EventKind::Spawned { pid: None });
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                        let mut buf = [0u8; 1024];
                        let _ = s.read(&mut buf);
                        let _ = s.write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }));
    }
}

impl Handler<Stop> for HttpPlugin {
    type Result = MessageResult<Stop>;
    fn handle(&mut self, _: Stop, _: &mut Context<Self>) -> Self::Result {
        let started = Instant::now();
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        MessageResult(StopReport {
            elapsed: started.elapsed(),
            ..StopReport::default()
        })
    }
}

/// A plugin with no probe: ready as soon as it starts.
struct Instant0 {
    started_at: Arc<Mutex<Option<Instant>>>,
}

impl Actor for Instant0 {
    type Context = Context<Self>;
}

impl Handler<Start> for Instant0 {
    type Result = ();
    fn handle(&mut self, start: Start, _: &mut Context<Self>) {
        *self.started_at.lock().expect("lock") = Some(Instant::now());
        for kind in [EventKind::Spawned { pid: None }, EventKind::Ready] {
            start.events.report(kind);
        }
    }
}

impl Handler<Stop> for Instant0 {
    type Result = MessageResult<Stop>;
    fn handle(&mut self, _: Stop, _: &mut Context<Self>) -> Self::Result {
        MessageResult(StopReport::default())
    }
}

#[actix_rt::test]
async fn a_plugin_is_gated_and_stopped_like_a_process_service() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (plugin_port, web_port) = (free_port(), free_port());
    // web depends on the plugin, a name the configuration declares as external.
    let config = Config::builder(dir.path())
        .state_dir(dir.path().join("state"))
        .external("http-plugin")
        .service(
            svc("web", &format!("--listen {web_port}"))
                .port(web_port)
                .health_tcp(web_port)
                .depends_on("http-plugin"),
        )
        .build()
        .expect("valid with the external name");
    let started_at = Arc::new(Mutex::new(None));
    let plugin = HttpPlugin {
        port: plugin_port,
        delay: Duration::from_millis(300),
        stop: Arc::default(),
        thread: None,
        started_at: started_at.clone(),
    }
    .start();
    let service = PluginService::from_addr("http-plugin", &plugin)
        .port(plugin_port)
        .health(Probe::Http {
            url: format!("http://127.0.0.1:{plugin_port}/health"),
        });
    let orch = Orchestrator::start_with(config, Options::default(), vec![service])
        .expect("starts with the plugin");
    let seen = record(&orch, Some(("web", plugin_port)));
    let guard = PidGuard::new();

    actix_rt::time::timeout(LONG, orch.up(None))
        .await
        .expect("in time")
        .expect("up");
    let status = orch.status().await.expect("status");
    let plugin_status = status
        .iter()
        .find(|s| s.name == "http-plugin")
        .expect("listed");
    assert!(plugin_status.plugin);
    assert_eq!(plugin_status.state, ServiceState::Ready);
    assert_eq!(plugin_status.pid, None);
    let web = status.iter().find(|s| s.name == "web").expect("listed");
    guard.add(web.pid.expect("pid"));

    let i = |n: &str, f: fn(&EventKind) -> bool| seen.index(n, f).expect("seen");
    assert!(i("http-plugin", is_ready) < i("web", is_spawned));
    assert_eq!(
        seen.port_at_spawn.lock().expect("lock").clone(),
        vec![("web".to_owned(), true)],
        "the plugin answered when web spawned"
    );
    let plugin_start = started_at.lock().expect("lock").expect("plugin started");
    let web_spawned = seen.first("web", is_spawned).expect("web spawned");
    assert!(web_spawned.duration_since(plugin_start) >= Duration::from_millis(300));

    let report = actix_rt::time::timeout(LONG, orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("in time")
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    assert!(i("web", is_stopped) < i("http-plugin", is_stopped));
    let p = report
        .services
        .iter()
        .find(|s| s.name == "http-plugin")
        .expect("plugin in the report");
    assert_eq!(p.port_free, Some(true));
    assert!(!port_answers(plugin_port) && !port_answers(web_port));
}

#[actix_rt::test]
async fn a_plugin_waits_for_the_process_service_it_depends_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let api = free_port();
    let config = config(
        dir.path(),
        vec![
            svc("api", &format!("--ready-after 300 --listen {api} --http"))
                .port(api)
                .health_http(format!("http://127.0.0.1:{api}/")),
        ],
    );
    let started_at = Arc::new(Mutex::new(None));
    let cache = Instant0 {
        started_at: started_at.clone(),
    }
    .start();
    let plugin = PluginService::from_addr("cache", &cache).depends_on("api");
    let orch = Orchestrator::start_with(config, Options::default(), vec![plugin]).expect("starts");
    let seen = record(&orch, None);
    let guard = PidGuard::new();
    actix_rt::time::timeout(LONG, orch.up(Some(vec!["cache".into()])))
        .await
        .expect("in time")
        .expect("up");
    guard.add(
        orch.status().await.expect("status")[0]
            .pid
            .expect("api pid"),
    );
    let api_ready = seen.first("api", is_ready).expect("api ready");
    let cache_started = started_at.lock().expect("lock").expect("cache started");
    assert!(
        cache_started >= api_ready,
        "the plugin got Start before api was ready"
    );
    assert!(seen.first("cache", is_ready).is_some());
    let report = actix_rt::time::timeout(LONG, orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("in time")
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    assert!(seen.index("cache", is_stopped) < seen.index("api", is_stopped));
}

#[actix_rt::test]
async fn plugin_names_and_dependencies_are_checked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(dir.path(), vec![svc("api", "")]);
    let cache = Instant0 {
        started_at: Arc::default(),
    }
    .start();
    let clash = PluginService::from_addr("api", &cache);
    let err = Orchestrator::start_with(config.clone(), Options::default(), vec![clash])
        .err()
        .expect("a plugin named like a service is refused");
    assert!(err.to_string().contains("`api`"), "{err}");
    let unknown = PluginService::from_addr("cache", &cache).depends_on("nope");
    let err = Orchestrator::start_with(config, Options::default(), vec![unknown])
        .err()
        .expect("an unknown dependency is refused");
    assert!(err.to_string().contains("unknown service `nope`"), "{err}");
}

/// A plugin that starts, then either never answers `Stop` or stops its actor at
/// once (so `Stop` cannot be delivered).
struct Mute {
    gone_after_start: bool,
}

impl Actor for Mute {
    type Context = Context<Self>;
}

impl Handler<Start> for Mute {
    type Result = ();
    fn handle(&mut self, start: Start, ctx: &mut Context<Self>) {
        for kind in [EventKind::Spawned { pid: None }, EventKind::Ready] {
            start.events.report(kind);
        }
        if self.gone_after_start {
            ctx.stop();
        }
    }
}

impl Handler<Stop> for Mute {
    type Result = ResponseFuture<StopReport>;
    fn handle(&mut self, _: Stop, _: &mut Context<Self>) -> Self::Result {
        Box::pin(std::future::pending())
    }
}

#[actix_rt::test]
async fn a_plugin_that_does_not_answer_stop_is_reported_as_such() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(dir.path(), vec![]);
    let mute = Mute {
        gone_after_start: false,
    }
    .start();
    let gone = Mute {
        gone_after_start: true,
    }
    .start();
    let plugins = vec![
        PluginService::from_addr("mute", &mute).stop_timeout(Duration::from_millis(100)),
        PluginService::from_addr("gone", &gone).stop_timeout(Duration::from_millis(100)),
    ];
    let orch = Orchestrator::start_with(config, Options::default(), plugins).expect("starts");
    timed(orch.up(None)).await.expect("up");
    let began = Instant::now();
    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    let of = |name: &str| {
        report
            .services
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} in {report:?}"))
    };

    let mute = of("mute");
    let text = mute.no_answer.as_deref().unwrap_or_default();
    assert!(
        text.contains("plugin `mute` did not answer Stop within"),
        "{report:?}"
    );
    // Its grace (100 ms) and the margin (5 s) were waited for, no more.
    let waited = began.elapsed();
    assert!(
        waited >= Duration::from_millis(5100) && waited < LONG,
        "{waited:?}"
    );
    let gone = of("gone");
    let text = gone.no_answer.as_deref().unwrap_or_default();
    assert!(
        text.contains("plugin `gone` could not take Stop"),
        "{report:?}"
    );

    // No made-up survivor process (ringmaster's own pid was once reported as one).
    for s in [mute, gone] {
        assert!(s.report.survivors.is_empty(), "{report:?}");
        assert!(s.report.killed.is_empty(), "{report:?}");
        assert!(!s.graceful(), "{report:?}");
    }
    assert!(report.survivors().is_empty(), "{report:?}");
    assert!(!report.clean(), "an unanswered Stop is not a clean stop");
}
