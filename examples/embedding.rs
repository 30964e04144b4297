use std::time::Duration;

use actix::prelude::*;
use ringmaster::config::ServiceConfigBuilder;
use ringmaster::messages::ServiceEvent;
use ringmaster::{Config, Options, Orchestrator};

/// Prints every service event as `ringmaster up` does: `web: starting (pid 4121)`.
struct Events;

impl Actor for Events {
    type Context = Context<Self>;
}

impl Handler<ServiceEvent> for Events {
    type Result = ();
    fn handle(&mut self, event: ServiceEvent, _: &mut Context<Self>) {
        println!("[event] {event}");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The library never prints: its warnings go to `tracing`.
    tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .init();
    let port: u16 = match std::env::args().nth(1) {
        Some(port) => port.parse()?,
        None => 8000,
    };
    // The orchestrator's actors live in the bot's actix System.
    System::new().block_on(async move {
        let config = Config::builder(".") // relative paths start here
            .state_dir(".ringmaster")
            .service(
                ServiceConfigBuilder::new("web", format!("python3 -m http.server {port}"))
                    .port(port)
                    .allow(["python3", "python"])
                    .health_http(format!("http://127.0.0.1:{port}/"))
                    .ready_timeout(Duration::from_secs(60)),
            )
            .build()?;
        let orch = Orchestrator::start(config, Options::default())?;
        orch.subscribe(Events.start().recipient());

        // Whatever `run` returns — Ctrl-C, or an error from one of its `?` — the
        // shutdown runs next. (A panic skips it: then dropping `orch` stops the
        // services, see "Closing".)
        let result = run(&orch).await;
        let report = orch.shutdown(Duration::from_secs(15)).await?;
        print!("{report}");
        result
    })
}

/// The bot's life: start the services, show them, serve until Ctrl-C.
async fn run(orch: &Orchestrator) -> Result<(), Box<dyn std::error::Error>> {
    orch.up_within(None, Duration::from_secs(120)).await?;
    for status in orch.status().await? {
        println!("{status}");
    }
    println!("bot: ready; Ctrl-C stops it");
    tokio::signal::ctrl_c().await?;
    println!("bot: Ctrl-C");
    Ok(())
}
