//! The control server: actix-web on the control endpoint of a running `up`, with
//! one worker thread. It holds a clone of the [`Orchestrator`] handle and talks to
//! the `up` loop through channels: a shutdown request goes to the loop (which owns
//! the cascade, also started by signals), and the report comes back through a
//! watch channel, so any number of `down` calls all receive the one report.
use std::path::PathBuf;

use actix_web::web::{self, Bytes};
use actix_web::{guard, App, HttpResponse, HttpServer};
use ringmaster::messages::{LogLine, ShutdownReport, Stream as OutStream};
use ringmaster::Orchestrator;
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc, watch};

use super::{Listening, Startup};

/// What the handlers share with the `up` loop.
pub struct Shared {
    pub orch: Orchestrator,
    /// Where the services' log files are.
    pub log_dir: PathBuf,
    /// The configured services, in start order.
    pub services: Vec<String>,
    pub startup: watch::Receiver<Startup>,
    pub report: watch::Receiver<Option<ShutdownReport>>,
    /// Asks the `up` loop to run the cascade.
    pub shutdown: mpsc::UnboundedSender<()>,
    /// Every output line of the services, for `logs -f`.
    pub logs: broadcast::Sender<LogLine>,
}

/// Starts serving on `listening`; the returned server must be spawned (it is a
/// future) and stopped with its handle. Installs no signal handlers.
pub fn start(listening: Listening, shared: Shared) -> std::io::Result<actix_web::dev::Server> {
    let token = listening.token.clone();
    let shared = web::Data::new(shared);
    let server = HttpServer::new(move || {
        let token = token.clone();
        App::new().app_data(shared.clone()).service(
            web::scope("")
                .guard(guard::fn_guard(move |ctx| {
                    authorized(ctx, token.as_deref())
                }))
                .route("/status", web::get().to(status))
                .route("/startup", web::get().to(startup))
                .route("/restart/{name}", web::post().to(restart))
                .route("/shutdown", web::post().to(shutdown))
                .route("/logs", web::get().to(logs)),
        )
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(2);
    Ok(super::attach!(server, listening)?.run())
}

fn authorized(ctx: &guard::GuardContext<'_>, token: Option<&str>) -> bool {
    match token {
        None => true,
        Some(t) => ctx
            .head()
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|v| v == t),
    }
}

/// `GET /status`, or `GET /status?brief` without the census of the process table
/// (what `up -d` polls while it waits).
async fn status(s: web::Data<Shared>, req: actix_web::HttpRequest) -> HttpResponse {
    let brief = req.query_string().split('&').any(|q| q == "brief");
    let list = if brief {
        s.orch.status_brief().await
    } else {
        s.orch.status().await
    };
    match list {
        Ok(list) => HttpResponse::Ok().json(list),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}

async fn startup(s: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(s.startup.borrow().clone())
}

async fn restart(s: web::Data<Shared>, name: web::Path<String>) -> HttpResponse {
    let name = name.into_inner();
    if !s.services.contains(&name) {
        return HttpResponse::NotFound().body(format!("unknown service `{name}`"));
    }
    match s.orch.restart(&name).await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "restarted": name })),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}

async fn shutdown(s: web::Data<Shared>) -> HttpResponse {
    let mut rx = s.report.clone();
    let _ = s.shutdown.send(());
    loop {
        if let Some(report) = rx.borrow_and_update().clone() {
            return HttpResponse::Ok().json(report);
        }
        if rx.changed().await.is_err() {
            return HttpResponse::ServiceUnavailable()
                .body("the instance stopped without a report");
        }
    }
}

/// `GET /logs` query.
#[derive(Debug, Deserialize)]
struct LogsQuery {
    service: Option<String>,
    #[serde(default = "default_lines")]
    n: usize,
    #[serde(default)]
    follow: bool,
}

fn default_lines() -> usize {
    100
}

async fn logs(s: web::Data<Shared>, q: web::Query<LogsQuery>) -> HttpResponse {
    let q = q.into_inner();
    let names: Vec<String> = match &q.service {
        Some(name) if !s.services.contains(name) => {
            return HttpResponse::NotFound().body(format!("unknown service `{name}`"));
        }
        Some(name) => vec![name.clone()],
        None => s.services.clone(),
    };
    // Subscribe before reading the files, so no line falls between the two.
    let live = q.follow.then(|| s.logs.subscribe());
    let dir = s.log_dir.clone();
    let wanted = names.clone();
    let n = q.n;
    let past = actix_web::rt::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for name in &wanted {
            for line in crate::logfiles::tail(&dir, name, n) {
                out.push(LogLine {
                    service: name.clone(),
                    stream: OutStream::Stdout,
                    line,
                });
            }
        }
        out
    })
    .await
    .unwrap_or_default();
    let mut body: Vec<u8> = Vec::new();
    for line in &past {
        push_json_line(&mut body, line);
    }
    let Some(live) = live else {
        return HttpResponse::Ok()
            .content_type("application/x-ndjson")
            .body(body);
    };
    let report = s.report.clone();
    let first = Some(Bytes::from(body));
    let stream = futures::stream::unfold(
        (first, live, report, names),
        |(mut first, mut live, mut report, names)| async move {
            if let Some(b) = first.take() {
                return Some((Ok::<_, std::io::Error>(b), (None, live, report, names)));
            }
            loop {
                if report.borrow().is_some() {
                    return None;
                }
                tokio::select! {
                    line = live.recv() => match line {
                        Ok(line) if names.contains(&line.service) => {
                            let mut buf = Vec::new();
                            push_json_line(&mut buf, &line);
                            return Some((Ok(Bytes::from(buf)), (None, live, report, names)));
                        }
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    changed = report.changed() => {
                        if changed.is_err() {
                            return None;
                        }
                    }
                }
            }
        },
    );
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(stream)
}

fn push_json_line(buf: &mut Vec<u8>, line: &LogLine) {
    if serde_json::to_writer(&mut *buf, line).is_ok() {
        buf.push(b'\n');
    }
}
