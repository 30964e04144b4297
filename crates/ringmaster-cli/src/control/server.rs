//! The control server: actix-web on the control endpoint of a running `up`, with
//! one worker thread. It holds a clone of the [`Orchestrator`] handle and talks to
//! the `up` loop through channels: a shutdown request goes to the loop (which owns
//! the cascade, also started by signals), and the report comes back through a
//! watch channel, so any number of `down` calls all receive the one report.
//! Changes to the running stack (`/reload`, `/services`) go to the orchestrator
//! here, and what they did is told to the `up` loop, which prints it.
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use actix_web::web::{self, Bytes};
use actix_web::{guard, App, HttpResponse, HttpServer};
use ringmaster::change::ApplyReport;
use ringmaster::messages::{LogLine, ShutdownReport, Stream as OutStream};
use ringmaster::{Config, Error, Orchestrator};
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc, watch};

use super::{Listening, Startup};

/// What the handlers share with the `up` loop.
pub struct Shared {
    pub orch: Orchestrator,
    /// Where the services' log files are.
    pub log_dir: PathBuf,
    /// The configuration in force: the file `up` read, as last reloaded, and
    /// the services added on their own.
    pub config: Arc<Mutex<Current>>,
    /// Tells the `up` loop what a change did.
    pub applied: mpsc::UnboundedSender<Applied>,
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
                .route("/stop/{name}", web::post().to(stop_one))
                .route("/start/{name}", web::post().to(start_one))
                .route("/reload", web::post().to(reload))
                .route("/services", web::post().to(add))
                .route("/services/{name}", web::delete().to(remove))
                .route("/services/{name}/scale", web::post().to(scale))
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
    match s.orch.restart(&name).await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "restarted": name })),
        Err(e) => error_response(e),
    }
}

/// `POST /stop/{name}`: it and its running dependents stop and stay stopped.
async fn stop_one(s: web::Data<Shared>, name: web::Path<String>) -> HttpResponse {
    let name = name.into_inner();
    match s.orch.stop_service(&name).await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "stopped": name })),
        Err(e) => error_response(e),
    }
}

/// `POST /start/{name}`: it starts again, with what it needs and what stopped with it.
async fn start_one(s: web::Data<Shared>, name: web::Path<String>) -> HttpResponse {
    let name = name.into_inner();
    match s.orch.start_service(&name).await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "started": name })),
        Err(e) => error_response(e),
    }
}

/// The configuration in force.
#[derive(Clone, Debug)]
pub struct Current {
    /// The file, as last reloaded.
    pub file: Config,
    /// Services added with `add` (not in the file), by name.
    pub added: std::collections::BTreeMap<String, ringmaster::config::ServiceConfig>,
}

impl Current {
    /// The file `up` read.
    pub fn new(file: Config) -> Current {
        Current {
            file,
            added: Default::default(),
        }
    }

    /// The file with the services added on their own: what a forced stop and
    /// the check after the shutdown cover.
    pub fn merged(&self) -> Config {
        let mut all = self.file.clone();
        for (name, svc) in &self.added {
            all.services
                .entry(name.clone())
                .or_insert_with(|| svc.clone());
        }
        all
    }
}

/// Locks the configuration in force (plain data: a poisoned lock is still good).
pub fn current(c: &Mutex<Current>) -> std::sync::MutexGuard<'_, Current> {
    c.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a change to the running stack did, for the `up` loop to print.
#[derive(Debug)]
pub enum Applied {
    /// `via` (`the control socket`, `SIGHUP`) changed the stack.
    Done { via: String, report: ApplyReport },
    /// A reload that changed nothing, and why.
    Refused { via: String, why: String },
}

/// Why a change was not made, as the control API answers it.
pub enum ChangeError {
    /// 422: the configuration (file or JSON) is invalid; every error, one per line.
    Invalid(String),
    /// The orchestrator refused it (409), or it is gone or shutting down (503).
    Refused(Error),
}

impl ChangeError {
    fn response(self) -> HttpResponse {
        match self {
            ChangeError::Invalid(text) => HttpResponse::UnprocessableEntity().body(text),
            ChangeError::Refused(e) => error_response(e),
        }
    }

    /// The text `up` prints.
    pub fn text(&self) -> String {
        match self {
            ChangeError::Invalid(t) => t.clone(),
            ChangeError::Refused(e) => e.to_string(),
        }
    }
}

/// A library error as an HTTP answer: 404 unknown service, 409 a change that
/// cannot be made, 503 shutting down or gone, 500 otherwise.
fn error_response(e: Error) -> HttpResponse {
    let text = e.to_string();
    match e {
        Error::UnknownService(_) => HttpResponse::NotFound().body(text),
        Error::Rejected(_) => HttpResponse::Conflict().body(text),
        Error::ShuttingDown | Error::SupervisorGone => {
            HttpResponse::ServiceUnavailable().body(text)
        }
        _ => HttpResponse::InternalServerError().body(text),
    }
}

/// Reads `file` (the one `up` read, when `None`) and applies it; on success
/// it becomes the configuration in force. With `dry_run`, only says what it
/// would do. Shared by `POST /reload` and SIGHUP.
pub async fn reload_file(
    orch: &Orchestrator,
    config: &Mutex<Current>,
    file: Option<PathBuf>,
    dry_run: bool,
) -> Result<ApplyReport, ChangeError> {
    let path = current(config).file.path.clone();
    let Some(path) = file.or(path) else {
        return Err(ChangeError::Invalid(
            "no file to reload: this instance was not started from one".into(),
        ));
    };
    let read = path.clone();
    let loaded = actix_web::rt::task::spawn_blocking(move || Config::load(&read))
        .await
        .map_err(|e| ChangeError::Invalid(format!("cannot read {}: {e}", path.display())))?;
    let new = loaded.map_err(|errors| {
        let n = errors.0.len();
        ChangeError::Invalid(format!(
            "{errors}\n{n} configuration error{}; nothing was changed",
            if n == 1 { "" } else { "s" }
        ))
    })?;
    // (A file of another state directory is refused by the orchestrator.)
    if dry_run {
        return orch.preview(new).await.map_err(ChangeError::Refused);
    }
    let report = orch
        .apply(new.clone())
        .await
        .map_err(ChangeError::Refused)?;
    let mut c = current(config);
    // A service of the file's takes over one added on its own.
    c.added.retain(|name, _| !new.services.contains_key(name));
    c.file = new;
    Ok(report)
}

/// `POST /reload` body: which file (default: the one `up` read), and whether
/// only to say what would change.
#[derive(Debug, Default, Deserialize)]
struct ReloadBody {
    file: Option<PathBuf>,
    #[serde(default)]
    dry_run: bool,
}

async fn reload(s: web::Data<Shared>, body: web::Bytes) -> HttpResponse {
    let req: ReloadBody = if body.is_empty() {
        ReloadBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => return HttpResponse::BadRequest().body(format!("bad request: {e}")),
        }
    };
    let result = reload_file(&s.orch, &s.config, req.file, req.dry_run).await;
    if req.dry_run {
        // Nothing changed: nothing for `up` to print.
        return match result {
            Ok(report) => HttpResponse::Ok().json(report),
            Err(e) => e.response(),
        };
    }
    answer(&s, result)
}

/// The answer to a change through the socket; what it did (or why it was not
/// made) also goes to the `up` loop, which prints it.
fn answer(s: &Shared, result: Result<ApplyReport, ChangeError>) -> HttpResponse {
    let via = "the control socket".to_owned();
    match result {
        Ok(report) => {
            let _ = s.applied.send(Applied::Done {
                via,
                report: report.clone(),
            });
            HttpResponse::Ok().json(report)
        }
        Err(e) => {
            let _ = s.applied.send(Applied::Refused { via, why: e.text() });
            e.response()
        }
    }
}

/// `POST /services`: one service as a JSON object (`name` and the keys of a
/// `[services.NAME]` table).
async fn add(s: web::Data<Shared>, body: web::Json<serde_json::Value>) -> HttpResponse {
    let running: Vec<String> = match s.orch.status_brief().await {
        Ok(list) => list.into_iter().map(|st| st.name).collect(),
        Err(e) => return error_response(e),
    };
    // Parsed off the lock and off this thread: an `env_file` is read from disk.
    let file = current(&s.config).file.clone();
    let value = body.into_inner();
    let parsed = web::block(move || file.service_from_json(&value, &running)).await;
    let service = match parsed {
        Ok(Ok(service)) => service,
        Ok(Err(errors)) => {
            return ChangeError::Invalid(format!("{errors}\nnothing was changed")).response()
        }
        Err(e) => return HttpResponse::InternalServerError().body(e.to_string()),
    };
    let result = s.orch.add_service(service.clone()).await;
    if result.is_ok() {
        current(&s.config)
            .added
            .insert(service.name.clone(), service);
    }
    answer(&s, result.map_err(ChangeError::Refused))
}

/// `DELETE /services/{name}`.
async fn remove(s: web::Data<Shared>, name: web::Path<String>) -> HttpResponse {
    let result = s.orch.remove_service(&name).await;
    if result.is_ok() {
        current(&s.config).added.remove(name.as_str());
    }
    answer(&s, result.map_err(ChangeError::Refused))
}

/// `POST /services/{name}/scale` body.
#[derive(Debug, Deserialize)]
struct ScaleRequest {
    replicas: u32,
}

/// `POST /services/{name}/scale`: `{"replicas": N}`.
async fn scale(
    s: web::Data<Shared>,
    name: web::Path<String>,
    body: web::Json<ScaleRequest>,
) -> HttpResponse {
    let result = s.orch.scale(&name, body.replicas).await;
    answer(&s, result.map_err(ChangeError::Refused))
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
    let services: Vec<String> = match s.orch.status_brief().await {
        Ok(list) => list.into_iter().map(|st| st.name).collect(),
        Err(e) => return error_response(e),
    };
    let names: Vec<String> = match &q.service {
        Some(name) if !services.contains(name) => {
            return HttpResponse::NotFound().body(format!("unknown service `{name}`"));
        }
        // A replicated service's lines are its replicas' (`api#0`, ...).
        Some(name) => services
            .iter()
            .filter(|n| {
                *n == name || ringmaster::config::replica_of(n).is_some_and(|(g, _)| g == name)
            })
            .cloned()
            .collect(),
        None => services,
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
