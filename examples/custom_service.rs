//! A new kind of service written as a plugin actor, not a process: `gateway`, a
//! TCP forwarder (like an SSH tunnel) that listens on its own port and forwards
//! every connection to the API's port.
//!
//! The stack: `api` (the demo API, a process) ← `gateway` (this plugin, depends on
//! `api`) ← `frontend` (the demo frontend, a process that reaches the API only
//! through the gateway, so it depends on `gateway`). ringmaster gates, probes and
//! stops the plugin like a process service: the gateway starts once the API is
//! ready, is ready itself once `GET /health` answers *through* it, the frontend
//! starts only then, and the shutdown cascade stops the frontend, then the
//! gateway, then the API.
//!
//! ```sh
//! cargo run -p ringmaster-examples --example custom_service
//! ```
//! It starts the stack on free ports, fetches the frontend's page once (its data
//! flows frontend → gateway → API), prints the status, and shuts everything down.
//! With `DEMO_BIN_DIR=target/debug` it runs the demo programs from there instead
//! of through `cargo run` (Unix shell quoting).
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use ringmaster::config::{Probe, ServiceConfigBuilder};
use ringmaster::messages::{EventKind, ServiceEvent, Start, Stop};
use ringmaster::plugin::PluginService;
use ringmaster::{Config, Options, Orchestrator, StopReport};
use ringmaster_examples::http;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// The plugin: forwards connections from `127.0.0.1:listen` to `127.0.0.1:target`.
struct Gateway {
    listen: u16,
    target: u16,
    /// The accept loop, while running. Aborting it drops its [`JoinSet`], which
    /// aborts every open connection too.
    accept: Option<JoinHandle<()>>,
    connections: Arc<AtomicU64>,
}

impl Gateway {
    fn new(listen: u16, target: u16) -> Self {
        Gateway {
            listen,
            target,
            accept: None,
            connections: Arc::default(),
        }
    }
}

impl Actor for Gateway {
    type Context = Context<Self>;
}

/// Accepts on `listener` and forwards each connection to `target` until aborted.
async fn accept_loop(listener: TcpListener, target: u16, connections: Arc<AtomicU64>) {
    let mut open = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((mut inbound, peer)) = accepted else { continue };
                let n = connections.fetch_add(1, Ordering::Relaxed) + 1;
                open.spawn(async move {
                    match TcpStream::connect(("127.0.0.1", target)).await {
                        Ok(mut outbound) => {
                            let moved = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            match moved {
                                Ok((up, down)) => println!("gateway: connection #{n} from {peer} → :{target} ({up} bytes up, {down} down)"),
                                Err(e) => println!("gateway: connection #{n} from {peer} → :{target} ended: {e}"),
                            }
                        }
                        Err(e) => println!("gateway: connection #{n}: cannot reach :{target}: {e}"),
                    }
                });
            }
            // Reap finished connections so the set does not grow.
            Some(_) = open.join_next(), if !open.is_empty() => {}
        }
    }
}

impl Handler<Start> for Gateway {
    type Result = ();

    fn handle(&mut self, start: Start, _: &mut Context<Self>) {
        // `start.events` is bound to the name the plugin was registered under:
        // its events cannot name another service.
        let report = |kind| start.events.report(kind);
        // Binding is one quick system call; a std listener gives a plain error
        // when the port is taken.
        let listener = StdListener::bind(("127.0.0.1", self.listen))
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(TcpListener::from_std);
        match listener {
            Ok(listener) => {
                println!(
                    "{}: forwarding 127.0.0.1:{} → 127.0.0.1:{}",
                    start.name, self.listen, self.target
                );
                self.accept = Some(actix::spawn(accept_loop(
                    listener,
                    self.target,
                    self.connections.clone(),
                )));
                // Readiness comes from the health probe given to the PluginService.
                report(EventKind::Spawned { pid: None });
            }
            Err(e) => report(EventKind::Failed {
                reason: format!("cannot listen on 127.0.0.1:{}: {e}", self.listen),
            }),
        }
    }
}

impl Handler<Stop> for Gateway {
    type Result = ResponseFuture<StopReport>;

    fn handle(&mut self, _: Stop, _: &mut Context<Self>) -> Self::Result {
        let started = Instant::now();
        let task = self.accept.take();
        let connections = self.connections.clone();
        Box::pin(async move {
            if let Some(task) = task {
                task.abort();
                // Resolves once the task is dropped: the listener and every open
                // connection are closed before the reply, so the port is free when
                // the supervisor checks it.
                let _ = task.await;
            }
            println!(
                "gateway: stopped after {} connections",
                connections.load(Ordering::Relaxed)
            );
            // No process, so nobody was signalled or killed.
            StopReport {
                elapsed: started.elapsed(),
                ..StopReport::default()
            }
        })
    }
}

/// Prints every service event.
struct Printer;

impl Actor for Printer {
    type Context = Context<Self>;
}

impl Handler<ServiceEvent> for Printer {
    type Result = ();
    fn handle(&mut self, ev: ServiceEvent, _: &mut Context<Self>) {
        match ev.kind {
            EventKind::Stopped { report } => {
                println!(
                    "[event] {}: stopped ({} ms)",
                    ev.name,
                    report.elapsed.as_millis()
                )
            }
            kind => println!("[event] {}: {kind:?}", ev.name),
        }
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(StdListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("the examples crate lives in the workspace")?
        .to_path_buf();
    let (api, gateway, web) = (free_port()?, free_port()?, free_port()?);
    println!("ports: api {api}, gateway {gateway}, frontend {web}");

    // The process services, built in code. Their commands build the demo
    // programs on first use, as examples/dashboard/ringmaster.toml does; with
    // DEMO_BIN_DIR set (e.g. target/debug) they run the built programs directly.
    let bin_dir = std::env::var_os("DEMO_BIN_DIR").map(PathBuf::from);
    let demo = |bin: &str, args: String| match &bin_dir {
        Some(dir) => format!("'{}' {args}", dir.join(bin).display()),
        None => format!("cargo run -q -p ringmaster-examples --bin {bin} -- {args}"),
    };
    let config = Config::builder(&root)
        .state_dir("target/custom-service-state")
        // Provided by the plugin below, not by this configuration.
        .external("gateway")
        .service(
            ServiceConfigBuilder::new("api", demo("demo-api", format!("--port {api}")))
                .port(api)
                .allow(["demo-api"])
                .health_http(format!("http://127.0.0.1:{api}/health"))
                .stop_timeout(Duration::from_secs(5)),
        )
        .service(
            ServiceConfigBuilder::new(
                "frontend",
                demo(
                    "demo-frontend",
                    format!("--port {web} --api http://127.0.0.1:{gateway}"),
                ),
            )
            .port(web)
            .allow(["demo-frontend"])
            .depends_on("gateway")
            .health_http(format!("http://127.0.0.1:{web}/"))
            .stop_timeout(Duration::from_secs(5)),
        )
        .build()?;

    // The plugin: its actor, and how it takes part in the stack.
    let actor = Gateway::new(gateway, api).start();
    let plugin = PluginService::from_addr("gateway", &actor)
        .depends_on("api")
        .port(gateway)
        .health(Probe::Http {
            url: format!("http://127.0.0.1:{gateway}/health"),
        });

    let orch = Orchestrator::start_with(config, Options::default(), vec![plugin])?;
    orch.subscribe(Printer.start().recipient());

    let started = Instant::now();
    if let Err(e) = orch.up(None).await {
        println!("start-up failed: {e}");
        orch.shutdown(Duration::from_secs(15)).await?;
        return Ok(false);
    }
    println!(
        "every service ready in {} ms",
        started.elapsed().as_millis()
    );
    for s in orch.status().await? {
        println!(
            "  {:<9} {:?} pid {:?} port {:?} plugin {}",
            s.name, s.state, s.pid, s.port, s.plugin
        );
    }

    // One page of the frontend: its server fetches the API's data through the gateway.
    let url = format!("http://127.0.0.1:{web}/");
    let page =
        tokio::task::spawn_blocking(move || http::get(&url, Duration::from_secs(10))).await??;
    let shows_api = page.body.contains("\"service\":\"demo-api\"");
    println!(
        "frontend page: HTTP {}, shows the API's data (through the gateway): {shows_api}",
        page.status
    );

    let report = orch.shutdown(Duration::from_secs(15)).await?;
    for s in &report.services {
        println!(
            "  {} stopped in {} ms, port free: {:?}",
            s.name,
            s.report.elapsed.as_millis(),
            s.port_free
        );
    }
    println!("shutdown clean: {}", report.clean());
    Ok(shows_api && report.clean())
}

fn main() -> ExitCode {
    let system = System::new();
    let result = system.block_on(run());
    System::current().stop();
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("custom_service: {e}");
            ExitCode::FAILURE
        }
    }
}
