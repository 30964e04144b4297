//! `demo-api`: the API half of the demo stack, shaped like `uvicorn --reload`.
//!
//! The first process (the "reloader") waits `--startup-delay`, binds the port, then
//! runs a worker: itself again, with the listening socket inherited. Both processes
//! hold the port; the worker accepts and answers, the reloader waits for it and
//! exits with its status. A port janitor that kills "the" pid on the port misses
//! one of them; ringmaster stops both. On Windows the reloader serves by itself.
//!
//! Endpoints: `GET /health` → `{"status":"ok"}`; `GET /api/stats` → live
//! [`ApiStats`] (uptime, a request counter, the worker's pid).
use std::net::TcpListener;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::{get, web, App, HttpResponse, HttpServer, Responder};
use clap::Parser;
use ringmaster_examples::{os, unix_ms, ApiStats};

/// A demo API with a health endpoint and live stats, run by a reloader process and
/// a worker that share the listening socket.
#[derive(Parser, Debug)]
#[command(name = "demo-api", version)]
struct Args {
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Milliseconds to wait before binding the port (makes start-up gating visible).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    startup_delay: u64,
    /// Serve in this process instead of running a worker.
    #[arg(long)]
    no_worker: bool,
    /// Internal: run as the worker, serving the listener the reloader passed.
    #[arg(long, hide = true, value_name = "TOKEN")]
    worker_listener: Option<String>,
}

/// What every request handler sees.
struct State {
    started: Instant,
    requests: AtomicU64,
    port: u16,
    reloader_pid: Option<u32>,
}

#[get("/health")]
async fn health() -> impl Responder {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

#[get("/api/stats")]
async fn stats(state: web::Data<State>) -> impl Responder {
    let requests = state.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let stats = ApiStats {
        service: "demo-api".into(),
        worker_pid: std::process::id(),
        reloader_pid: state.reloader_pid,
        port: state.port,
        uptime_ms: state.started.elapsed().as_millis() as u64,
        requests,
        unix_ms: unix_ms(),
    };
    println!(
        "demo-api[{}]: GET /api/stats (#{requests})",
        std::process::id()
    );
    HttpResponse::Ok().json(stats)
}

/// Serves on `listener` until SIGINT/SIGTERM (actix-web's own signal handling).
fn serve(listener: TcpListener, reloader_pid: Option<u32>) -> std::io::Result<()> {
    let port = listener.local_addr()?.port();
    let state = web::Data::new(State {
        started: Instant::now(),
        requests: AtomicU64::new(0),
        port,
        reloader_pid,
    });
    println!(
        "demo-api[{}]: worker serving http://127.0.0.1:{port} (GET /health, GET /api/stats)",
        std::process::id()
    );
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .service(health)
                .service(stats)
        })
        .workers(2)
        .shutdown_timeout(5)
        .listen(listener)?
        .run()
        .await
    })
}

fn run(args: Args) -> Result<ExitCode, String> {
    if let Some(token) = &args.worker_listener {
        let listener = os::inherited_listener(token)
            .map_err(|e| format!("cannot use the listener passed by the reloader: {e}"))?;
        serve(listener, os::parent_pid()).map_err(|e| e.to_string())?;
        return Ok(ExitCode::SUCCESS);
    }

    let pid = std::process::id();
    if args.startup_delay > 0 {
        println!("demo-api[{pid}]: starting in {} ms", args.startup_delay);
        std::thread::sleep(Duration::from_millis(args.startup_delay));
    }
    let addr = format!("{}:{}", args.host, args.port);
    let listener = TcpListener::bind(&addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    println!("demo-api[{pid}]: listening on http://{addr}");

    if args.no_worker || !os::SHARES_LISTENER {
        serve(listener, None).map_err(|e| e.to_string())?;
        return Ok(ExitCode::SUCCESS);
    }

    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own exe: {e}"))?;
    let mut cmd = Command::new(exe);
    let token = os::pass_listener(&listener, &mut cmd)
        .map_err(|e| format!("cannot pass the listener to a worker: {e}"))?;
    cmd.arg("--worker-listener")
        .arg(&token)
        .arg("--port")
        .arg(args.port.to_string());
    let mut worker = cmd
        .spawn()
        .map_err(|e| format!("cannot start the worker: {e}"))?;
    println!(
        "demo-api[{pid}]: reloader started worker {} (both hold the port)",
        worker.id()
    );
    // The reloader keeps `listener` open while it waits, like uvicorn's does.
    let status = worker
        .wait()
        .map_err(|e| format!("cannot wait for the worker: {e}"))?;
    drop(listener);
    println!("demo-api[{pid}]: worker exited ({status})");
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("demo-api: {e}");
            ExitCode::FAILURE
        }
    }
}
