//! A bot that embeds ringmaster and forgets to shut it down: the helper program of
//! `tests/tests/embed_dropped_handle.rs`, run as a separate process.
//!
//! `embed-bot MODE DIR PORT` builds a configuration in code (state in `DIR/state`):
//! `web`, `python3 -m http.server PORT` (probed over HTTP), and `worker`, a shell
//! with two `sleep` children. It starts both, prints `UP-READY` and then, by MODE:
//! - `error`: returns an error from `main` (the `?` between `up` and `shutdown`);
//! - `panic`: panics (unwinding through the block that holds the orchestrator);
//! - `shutdown`: shuts down as it should, and exits 0.
//!
//! Its log (warnings and up) goes to stderr.
use std::path::PathBuf;
use std::time::Duration;

use ringmaster::config::ServiceConfigBuilder;
use ringmaster::{Config, Options, Orchestrator};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .init();
    let mut args = std::env::args().skip(1);
    let usage = "usage: embed-bot error|panic|shutdown DIR PORT";
    let mode = args.next().ok_or(usage)?;
    let dir = PathBuf::from(args.next().ok_or(usage)?);
    let port: u16 = args.next().ok_or(usage)?.parse()?;

    let system = actix::System::new();
    system.block_on(async move {
        let config = Config::builder(&dir)
            .state_dir("state")
            .service(
                ServiceConfigBuilder::new(
                    "web",
                    format!("python3 -m http.server {port} --bind 127.0.0.1"),
                )
                .port(port)
                .allow(["python3", "python"])
                .health_http(format!("http://127.0.0.1:{port}/"))
                .stop_timeout(Duration::from_secs(5)),
            )
            .service(
                ServiceConfigBuilder::new("worker", "sleep 600 & sleep 601; wait")
                    .stop_timeout(Duration::from_secs(5)),
            )
            .build()?;
        let orch = Orchestrator::start(config, Options::default())?;
        orch.up_within(None, Duration::from_secs(60)).await?;
        for s in orch.status().await? {
            println!("{s}");
        }
        println!("UP-READY");
        match mode.as_str() {
            "error" => Err("the bot gave up after up".into()),
            "panic" => panic!("the bot panicked after up"),
            _ => {
                let report = orch.shutdown(Duration::from_secs(15)).await?;
                print!("{report}");
                Ok(())
            }
        }
    })
}
