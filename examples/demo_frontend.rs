//! `demo-frontend`: the web half of the demo stack, shaped like `next dev`.
//!
//! The launcher checks the API once (`GET <api>/health`) and exits 1 with a message
//! when it does not answer — so a stack started without gating fails visibly. It
//! then runs its server through the platform shell (`demo-frontend` → `sh -c` →
//! `demo-frontend --serve`) and waits for that chain. The server renames itself
//! `demo-frontend-server` (Linux), as Next.js's `next-server` does, and serves:
//! - `GET /`: an HTML page with the API's `/api/stats` fetched server-side at
//!   request time, and a small script that refreshes it;
//! - `GET /api/stats`: the same data as JSON, proxied from the API (for the script).
use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Duration;

use actix_web::{get, web, App, HttpResponse, HttpServer, Responder};
use clap::Parser;
use ringmaster_examples::{http, os, ApiStats};

/// A demo web frontend that renders live data from the demo API.
#[derive(Parser, Debug, Clone)]
#[command(name = "demo-frontend", version)]
struct Args {
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 3000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Base URL of the demo API.
    #[arg(long, env = "API_URL", default_value = "http://127.0.0.1:8000")]
    api: String,
    /// Internal: run as the server (the launcher starts it through the shell).
    #[arg(long, hide = true)]
    serve: bool,
}

/// Launcher: check the API, then run the server through the shell and wait.
fn launch(args: &Args) -> Result<ExitCode, String> {
    let pid = std::process::id();
    let api = args.api.trim_end_matches('/');
    let health = format!("{api}/health");
    match http::get(&health, Duration::from_secs(2)) {
        Ok(r) if r.status == 200 => {}
        Ok(r) => {
            return Err(not_answering(
                api,
                &format!("GET /health answered {}", r.status),
            ))
        }
        Err(e) => return Err(not_answering(api, &e.to_string())),
    }
    println!("demo-frontend[{pid}]: the API at {api} answers; starting the server");
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own exe: {e}"))?;
    let server_args = vec![
        "--serve".to_string(),
        "--port".to_string(),
        args.port.to_string(),
        "--host".to_string(),
        args.host.clone(),
        "--api".to_string(),
        api.to_string(),
    ];
    let mut shell = os::through_shell(&exe, &server_args)
        .spawn()
        .map_err(|e| format!("cannot start the shell: {e}"))?;
    println!(
        "demo-frontend[{pid}]: shell {} runs the server; waiting",
        shell.id()
    );
    let status = shell
        .wait()
        .map_err(|e| format!("cannot wait for the shell: {e}"))?;
    println!("demo-frontend[{pid}]: the server chain exited ({status})");
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

fn not_answering(api: &str, why: &str) -> String {
    format!("the API at {api} is not answering ({why}); start it first")
}

/// What the server's handlers share (one per worker thread: `awc::Client` is not `Send`).
struct Server {
    api: String,
    client: awc::Client,
}

/// The API's stats, or why they could not be fetched.
async fn fetch_stats(server: &Server) -> Result<(ApiStats, String), String> {
    let url = format!("{}/api/stats", server.api);
    let mut resp = server
        .client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("GET {url}: {}", resp.status()));
    }
    let body = resp
        .body()
        .await
        .map_err(|e| format!("GET {url}: reading the body: {e}"))?;
    let raw = String::from_utf8_lossy(&body).into_owned();
    let stats: ApiStats =
        serde_json::from_str(&raw).map_err(|e| format!("GET {url}: not the API's stats: {e}"))?;
    Ok((stats, raw))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn page(server: &Server, stats: Result<(ApiStats, String), String>) -> String {
    let body = match stats {
        Ok((s, raw)) => format!(
            r#"<table>
<tr><th>answered by worker pid</th><td id="worker_pid">{}</td></tr>
<tr><th>reloader pid</th><td id="reloader_pid">{}</td></tr>
<tr><th>API uptime</th><td id="uptime">{:.1} s</td></tr>
<tr><th>requests to /api/stats</th><td id="requests">{}</td></tr>
</table>
<p>Raw answer of <code>GET {}/api/stats</code>, fetched by the server at request time:</p>
<pre id="stats">{}</pre>"#,
            s.worker_pid,
            s.reloader_pid
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
            s.uptime_ms as f64 / 1000.0,
            s.requests,
            escape(&server.api),
            escape(&raw),
        ),
        Err(e) => format!(
            "<p id=\"error\">The API did not answer: {}</p><pre id=\"stats\"></pre>",
            escape(&e)
        ),
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>ringmaster demo dashboard</title>
<style>body{{font-family:sans-serif;margin:2em}} th{{text-align:left;padding-right:1em}}</style></head>
<body>
<h1>ringmaster demo dashboard</h1>
<p>Served by <code>demo-frontend-server</code> (pid {pid}); data from the API at <code>{api}</code>.</p>
{body}
<script>
setInterval(async () => {{
  try {{
    const r = await fetch("/api/stats");
    const s = await r.json();
    document.getElementById("stats").textContent = JSON.stringify(s);
    for (const k of ["worker_pid", "requests"]) {{
      const el = document.getElementById(k);
      if (el) el.textContent = s[k];
    }}
    const up = document.getElementById("uptime");
    if (up) up.textContent = (s.uptime_ms / 1000).toFixed(1) + " s";
  }} catch (e) {{}}
}}, 2000);
</script>
</body>
</html>
"#,
        pid = std::process::id(),
        api = escape(&server.api),
    )
}

#[get("/")]
async fn index(server: web::Data<Server>) -> impl Responder {
    let stats = fetch_stats(&server).await;
    if let Err(e) = &stats {
        println!("demo-frontend-server[{}]: {e}", std::process::id());
    }
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page(&server, stats))
}

#[get("/api/stats")]
async fn stats_proxy(server: web::Data<Server>) -> impl Responder {
    match fetch_stats(&server).await {
        Ok((_, raw)) => HttpResponse::Ok()
            .content_type("application/json")
            .body(raw),
        Err(e) => HttpResponse::BadGateway().json(serde_json::json!({ "error": e })),
    }
}

/// Server: rename, bind, serve until SIGINT/SIGTERM.
fn serve(args: &Args) -> Result<ExitCode, String> {
    // Before any thread starts, so that every thread carries the new name.
    os::rename_current_process("demo-frontend-server");
    let pid = std::process::id();
    let addr = format!("{}:{}", args.host, args.port);
    let listener = TcpListener::bind(&addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    println!("demo-frontend-server[{pid}]: ready on http://{addr}");
    let api = args.api.trim_end_matches('/').to_string();
    actix_web::rt::System::new()
        .block_on(async move {
            HttpServer::new(move || {
                let server = Server {
                    api: api.clone(),
                    client: awc::Client::builder()
                        .timeout(Duration::from_secs(5))
                        .finish(),
                };
                App::new()
                    .app_data(web::Data::new(server))
                    .service(index)
                    .service(stats_proxy)
            })
            .workers(2)
            .shutdown_timeout(5)
            .listen(listener)?
            .run()
            .await
        })
        .map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (who, result) = if args.serve {
        ("demo-frontend-server", serve(&args))
    } else {
        ("demo-frontend", launch(&args))
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{who}: {e}");
            ExitCode::FAILURE
        }
    }
}
