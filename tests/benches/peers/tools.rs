//! The tools compared, each configured to run `examples/fastapi-nextjs` as its
//! users would: the configuration written from a template into the run's temp
//! folder with the run's ports, the command that launches it, the documented stop,
//! and the process a crash kills.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use std::os::unix::process::CommandExt;

use super::procs;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Ringmaster,
    Supervisord,
    Honcho,
    Circus,
    Pm2,
    Concurrently,
}

pub const ALL: [Tool; 6] = [
    Tool::Ringmaster,
    Tool::Supervisord,
    Tool::Honcho,
    Tool::Circus,
    Tool::Pm2,
    Tool::Concurrently,
];

/// Where things are: the workspace, the example, the installed peers.
pub struct Paths {
    pub root: PathBuf,
    pub example: PathBuf,
    pub tools: PathBuf,
    pub ringmaster: PathBuf,
}

impl Paths {
    pub fn new() -> Paths {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the workspace root")
            .to_path_buf();
        Paths {
            example: root.join("examples/fastapi-nextjs"),
            tools: root.join(".bench-tools"),
            ringmaster: ringmaster_tests::built_path("ringmaster"),
            root,
        }
    }
    fn venv(&self, bin: &str) -> String {
        self.tools.join("venv/bin").join(bin).display().to_string()
    }
    fn npm_bin(&self, bin: &str) -> String {
        self.tools
            .join("node_modules/.bin")
            .join(bin)
            .display()
            .to_string()
    }
}

/// One run's setting: its temp folder, its two ports, its marker.
pub struct Run<'a> {
    pub paths: &'a Paths,
    pub dir: &'a Path,
    pub api: u16,
    pub web: u16,
}

impl Run<'_> {
    fn api_cmd(&self) -> String {
        format!(
            "{}/api/.venv/bin/python -m uvicorn main:app --host 127.0.0.1 --port {} --reload",
            self.paths.example.display(),
            self.api
        )
    }
    fn web_args(&self) -> String {
        format!("run dev -- --hostname 127.0.0.1 --port {}", self.web)
    }
    fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api)
    }
    fn file(&self, name: &str, text: String) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, text).expect("a config file");
        path.display().to_string()
    }
    fn tmp(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::Ringmaster => "ringmaster",
            Tool::Supervisord => "supervisord",
            Tool::Honcho => "honcho",
            Tool::Circus => "circus",
            Tool::Pm2 => "pm2",
            Tool::Concurrently => "concurrently",
        }
    }

    pub fn parse(name: &str) -> Option<Tool> {
        ALL.into_iter().find(|t| t.name() == name.trim())
    }

    /// True when the tool starts the frontend only once the API answers.
    pub fn gates(self) -> bool {
        matches!(self, Tool::Ringmaster | Tool::Concurrently)
    }

    /// Writes the tool's configuration for `run` and returns the command that
    /// launches it (not started).
    pub fn launch(self, run: &Run) -> Command {
        let p = run.paths;
        let ex = p.example.display().to_string();
        let mut cmd = match self {
            Tool::Ringmaster => {
                let mut c = Command::new(&p.ringmaster);
                c.arg("up")
                    .arg("-f")
                    .arg(p.example.join("ringmaster.toml"))
                    .env("API_PORT", run.api.to_string())
                    .env("WEB_PORT", run.web.to_string())
                    .env("NO_COLOR", "1");
                c
            }
            Tool::Supervisord => {
                let conf = run.file("supervisord.conf", supervisord_conf(run));
                let mut c = Command::new(p.venv("supervisord"));
                c.args(["-n", "-c", &conf]);
                c
            }
            Tool::Honcho => {
                let procfile = format!(
                    "api: cd {ex}/api && PYTHONUNBUFFERED=1 {}\n\
                     web: cd {ex}/web && API_URL={} NEXT_TELEMETRY_DISABLED=1 npm {}\n",
                    run.api_cmd(),
                    run.api_url(),
                    run.web_args()
                );
                let file = run.file("Procfile", procfile);
                let mut c = Command::new(p.venv("honcho"));
                c.args(["-f", &file, "-d", &ex, "start"]);
                c
            }
            Tool::Circus => {
                let conf = run.file("circus.ini", circus_ini(run));
                let mut c = Command::new(p.venv("circusd"));
                c.arg(conf);
                c
            }
            Tool::Pm2 => {
                let eco = run.file("ecosystem.config.js", pm2_ecosystem(run));
                let mut c = Command::new(p.npm_bin("pm2"));
                c.args(["start", &eco]).env("PM2_HOME", run.tmp("pm2"));
                c
            }
            Tool::Concurrently => {
                let api = format!("cd {ex}/api && PYTHONUNBUFFERED=1 {}", run.api_cmd());
                let web = format!(
                    "wait-on http-get://127.0.0.1:{}/health && cd {ex}/web && \
                     API_URL={} NEXT_TELEMETRY_DISABLED=1 npm {}",
                    run.api,
                    run.api_url(),
                    run.web_args()
                );
                let mut c = Command::new(p.npm_bin("concurrently"));
                c.args(["-k", "-n", "api,web", &api, &web]);
                c
            }
        };
        // wait-on as a project's devDependency is on PATH in npm scripts; here the
        // installed peers' bin folder is.
        let path = format!(
            "{}:{}",
            p.tools.join("node_modules/.bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let log = std::fs::File::create(run.dir.join(format!("{}.log", self.name())))
            .expect("a log file");
        cmd.current_dir(&p.example)
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a log file"))
            .stderr(log)
            // Its own process group, as a shell starts a job.
            .process_group(0);
        cmd
    }

    /// The tool's documented normal stop, as its users request it: a control
    /// command (started, not awaited: the bench keeps watching and reaping while
    /// it runs), or Ctrl-C (SIGINT to the foreground process group).
    pub fn stop(self, run: &Run, launched: &Child) {
        let p = run.paths;
        let quiet = |mut c: Command| {
            let _ = c
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
        };
        match self {
            Tool::Ringmaster | Tool::Honcho | Tool::Concurrently => {
                procs::signal_group(launched.id(), libc::SIGINT)
            }
            Tool::Supervisord => {
                let mut c = Command::new(p.venv("supervisorctl"));
                c.args(["-c", &run.tmp("supervisord.conf"), "shutdown"]);
                quiet(c)
            }
            Tool::Circus => {
                let mut c = Command::new(p.venv("circusctl"));
                c.args(["--endpoint", &circus_endpoint(run), "quit"]);
                quiet(c)
            }
            Tool::Pm2 => {
                let mut c = Command::new(p.npm_bin("pm2"));
                c.arg("kill").env("PM2_HOME", run.tmp("pm2"));
                quiet(c)
            }
        }
    }

    /// The process a crash of the manager kills: the launched process, or for
    /// PM2 its daemon (the `pm2 start` command has exited by then).
    pub fn manager_pid(self, run: &Run, launched: &Child) -> Option<u32> {
        match self {
            Tool::Pm2 => std::fs::read_to_string(run.dir.join("pm2/pm2.pid"))
                .ok()?
                .trim()
                .parse()
                .ok(),
            _ => Some(launched.id()),
        }
    }

    /// The tool's version, for the record.
    pub fn version(self, paths: &Paths) -> String {
        let npm_version = |name: &str| {
            let file = paths
                .tools
                .join("node_modules")
                .join(name)
                .join("package.json");
            let text = std::fs::read_to_string(file).unwrap_or_default();
            serde_json::from_str::<serde_json::Value>(&text).ok()?["version"]
                .as_str()
                .map(str::to_owned)
        };
        let py_version = |name: &str| {
            let out = Command::new(paths.venv("python"))
                .args([
                    "-c",
                    &format!("import importlib.metadata as m; print(m.version('{name}'))"),
                ])
                .output()
                .ok()?;
            Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        let v = match self {
            Tool::Ringmaster => Command::new(&paths.ringmaster)
                .arg("--version")
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()),
            Tool::Supervisord => py_version("supervisor"),
            Tool::Honcho => py_version("honcho"),
            Tool::Circus => py_version("circus"),
            Tool::Pm2 => npm_version("pm2"),
            Tool::Concurrently => npm_version("concurrently").map(|c| {
                format!(
                    "{c} (wait-on {})",
                    npm_version("wait-on").unwrap_or_default()
                )
            }),
        };
        v.unwrap_or_else(|| "not installed".into())
    }

    /// True when the tool can be run (installed by scripts/bench-tools.sh).
    pub fn installed(self, paths: &Paths) -> bool {
        let bin = match self {
            Tool::Ringmaster => paths.ringmaster.display().to_string(),
            Tool::Supervisord => paths.venv("supervisord"),
            Tool::Honcho => paths.venv("honcho"),
            Tool::Circus => paths.venv("circusd"),
            Tool::Pm2 => paths.npm_bin("pm2"),
            Tool::Concurrently => paths.npm_bin("concurrently"),
        };
        Path::new(&bin).exists()
    }
}

/// Both programs in the order of `priority` (supervisord has no readiness
/// gating); each stopped with its whole process group (`stopasgroup`, and
/// `killasgroup` after `stopwaitsecs`), as its manual advises for programs that
/// fork.
fn supervisord_conf(run: &Run) -> String {
    let ex = run.paths.example.display();
    let t = |n: &str| run.tmp(n);
    format!(
        "[unix_http_server]\nfile={sock}\n\n\
         [supervisord]\nlogfile={log}\npidfile={pid}\nchildlogdir={dir}\nnodaemon=true\n\n\
         [rpcinterface:supervisor]\n\
         supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n\
         [supervisorctl]\nserverurl=unix://{sock}\n\n\
         [program:api]\ncommand={api}\ndirectory={ex}/api\n\
         environment=PYTHONUNBUFFERED=\"1\"\npriority=1\n\
         stopsignal=TERM\nstopwaitsecs=10\nstopasgroup=true\nkillasgroup=true\n\n\
         [program:web]\ncommand=npm {web}\ndirectory={ex}/web\n\
         environment=API_URL=\"{url}\",NEXT_TELEMETRY_DISABLED=\"1\"\npriority=2\n\
         stopsignal=TERM\nstopwaitsecs=10\nstopasgroup=true\nkillasgroup=true\n",
        sock = t("supervisor.sock"),
        log = t("supervisord.log"),
        pid = t("supervisord.pid"),
        dir = run.dir.display(),
        api = run.api_cmd(),
        web = run.web_args(),
        url = run.api_url(),
    )
}

fn circus_endpoint(run: &Run) -> String {
    format!("ipc://{}", run.tmp("circus.sock"))
}

/// Two watchers (circus has no readiness gating; `priority` orders them), each
/// with the caller's environment (`copy_env`, so that `npm` and `node` are found)
/// and the stop signal sent to the children too (`stop_children`).
fn circus_ini(run: &Run) -> String {
    let ex = run.paths.example.display();
    format!(
        "[circus]\nendpoint = {endpoint}\npubsub_endpoint = ipc://{pubsub}\n\
         statsd = False\n\n\
         [watcher:api]\ncmd = {api}\nworking_dir = {ex}/api\ncopy_env = True\n\
         stop_signal = TERM\nstop_children = True\ngraceful_timeout = 10\npriority = 2\n\n\
         [env:api]\nPYTHONUNBUFFERED = 1\n\n\
         [watcher:web]\ncmd = npm {web}\nworking_dir = {ex}/web\ncopy_env = True\n\
         stop_signal = TERM\nstop_children = True\ngraceful_timeout = 10\npriority = 1\n\n\
         [env:web]\nAPI_URL = {url}\nNEXT_TELEMETRY_DISABLED = 1\n",
        endpoint = circus_endpoint(run),
        pubsub = run.tmp("circus-pubsub.sock"),
        api = run.api_cmd(),
        web = run.web_args(),
        url = run.api_url(),
    )
}

/// Two apps in fork mode (PM2 has no readiness gating): the API's venv python run
/// directly (`interpreter: "none"`), the web as `pm2 start npm -- run dev` is
/// usually written; PM2's defaults otherwise (tree kill on stop, autorestart).
fn pm2_ecosystem(run: &Run) -> String {
    let ex = run.paths.example.display();
    format!(
        "module.exports = {{\n  apps: [\n\
         {{ name: \"api\", script: \"{ex}/api/.venv/bin/python\", interpreter: \"none\",\n\
         args: \"-m uvicorn main:app --host 127.0.0.1 --port {api} --reload\", cwd: \"{ex}/api\",\n\
         env: {{ PYTHONUNBUFFERED: \"1\" }}, kill_timeout: 10000 }},\n\
         {{ name: \"web\", script: \"npm\", args: \"{web}\", cwd: \"{ex}/web\",\n\
         env: {{ API_URL: \"{url}\", NEXT_TELEMETRY_DISABLED: \"1\" }}, kill_timeout: 10000 }},\n\
         ]\n}};\n",
        api = run.api,
        web = run.web_args(),
        url = run.api_url(),
    )
}
