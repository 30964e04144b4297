//! `ringmaster top [--once]`: a full-screen view of the running instance, through
//! its control socket — one row per service (replicas too) with state, health,
//! pid, port, CPU, memory, restarts and uptime, coloured by state; the selected
//! service's output below, following live; keys to move, filter, restart, stop
//! and start. `--once` prints one frame as text and exits.
//!
//! Where things live:
//! - [`view`]: the [`view::View`] drawn (plain data) and what each key does to it;
//! - [`render`]: the pure drawing of a view into a buffer of any size, and the
//!   buffer as text (`--once`); its tests snapshot frames of a fixed view;
//! - [`feed`]: the threads that talk to the instance — the status poll (once a
//!   second), the log follower of the selected service, the answers to `r`/`s`;
//! - [`term`]: raw mode and the alternate screen, restored on every way out
//!   (drop, error, panic).
//!
//! The event loop here waits up to [`TICK`] for a key, drains what the threads
//! sent, and redraws when anything changed (a key, a resize, a poll, a line).
mod feed;
mod render;
mod term;
mod view;

use std::io::IsTerminal;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use crossterm::event::{self, Event, KeyEventKind};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ringmaster::messages::LogLine;
use ringmaster::ServiceStatus;

use crate::cli::TopArgs;
use crate::control::client::Client;
use crate::exit::{load_config, CmdResult, Failure, OK};
use crate::output::{now_ms, Style};
use feed::{Feed, Follower};
use view::{Command, View};

/// How long the loop waits for a key before it looks at what the threads sent:
/// the delay of a log line or a poll on the screen.
const TICK: Duration = Duration::from_millis(100);

/// How many lines of output `--once` shows.
const ONCE_LOG_LINES: usize = 10;

/// `--once`'s width when stdout is not a terminal.
const ONCE_WIDTH: u16 = 100;

/// Runs the command.
pub fn run(args: &TopArgs, style: &Style) -> CmdResult {
    if !args.once && !std::io::stdout().is_terminal() {
        return Err(Failure::usage(
            "ringmaster top needs a terminal; use `ringmaster status` (or `top --once`)",
        ));
    }
    let config = load_config(&args.config.file)?;
    let client = Client::new(&config.settings.state_dir);
    let services: Vec<ServiceStatus> = client
        .get_json("/status")
        .map_err(|e| Failure::failed(e.to_string()))?;
    let title = project(&args.config.file);
    if args.once {
        once(&client, services, title, style)
    } else {
        live(&client, services, title, style).map_err(|e| Failure::failed(format!("top: {e}")))
    }
}

/// The project's folder (the configuration file's), for the title.
fn project(file: &Path) -> String {
    std::path::absolute(file)
        .ok()
        .and_then(|f| f.parent().map(|p| p.display().to_string()))
        .unwrap_or_default()
}

/// `--once`: the first service selected, its last lines, one frame as text.
fn once(client: &Client, services: Vec<ServiceStatus>, title: String, style: &Style) -> CmdResult {
    let mut view = View::new(title, style.color, false);
    view.set_services(services, now_ms());
    if let Some(name) = view.selected.clone() {
        let path = format!(
            "/logs?service={}&n={ONCE_LOG_LINES}",
            crate::control::client::encode(&name)
        );
        if let Ok(response) = client.request("GET", &path) {
            for text in response.lines().map_while(Result::ok) {
                if let Ok(line) = serde_json::from_str::<LogLine>(&text) {
                    view.push_log(line);
                }
            }
        }
    }
    let width = if style.live {
        crossterm::terminal::size().map_or(ONCE_WIDTH, |(w, _)| w)
    } else {
        ONCE_WIDTH
    };
    let area = Rect::new(0, 0, width, render::natural_height(&view, ONCE_LOG_LINES));
    let mut buf = Buffer::empty(area);
    render::render(&view, area, &mut buf);
    print!("{}", render::to_text(&buf, style.color));
    Ok(OK)
}

/// The full-screen view until `q` or Ctrl-C.
fn live(
    client: &Client,
    services: Vec<ServiceStatus>,
    title: String,
    style: &Style,
) -> std::io::Result<u8> {
    let (tx, rx) = mpsc::channel();
    let (wake, woken) = mpsc::channel();
    {
        let (client, tx) = (client.clone(), tx.clone());
        std::thread::spawn(move || feed::poll_status(client, tx, woken));
    }
    let mut view = View::new(title, style.color, true);
    view.set_services(services, now_ms());
    crate::platform::watch_quit();
    let mut screen = term::Screen::enter()?;
    let mut follower: Option<Follower> = None;
    let mut followers = 0u64;
    let mut dirty = true;
    loop {
        if crate::platform::quit_asked() {
            break;
        }
        // The log follower follows the selection.
        if follower.as_ref().map(|f| &f.service) != view.selected.as_ref() {
            view.logs.clear();
            follower = view.selected.clone().map(|name| {
                followers += 1;
                Follower::start(client, followers, name, tx.clone())
            });
            dirty = true;
        }
        if dirty {
            view.now_ms = now_ms();
            screen
                .terminal
                .draw(|f| render::render(&view, f.area(), f.buffer_mut()))?;
            dirty = false;
        }
        if event::poll(TICK)? {
            match event::read()? {
                Event::Key(key) if key.kind != KeyEventKind::Release => {
                    match view.key(key) {
                        Some(Command::Quit) => break,
                        Some(Command::Ask { verb, service }) => {
                            feed::ask(client, verb, service, tx.clone(), wake.clone())
                        }
                        None => {}
                    }
                    dirty = true;
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
        while let Ok(feed) = rx.try_recv() {
            match feed {
                Feed::Status(Ok(list)) => view.set_services(list, now_ms()),
                Feed::Status(Err(e)) => view.error = Some(e),
                Feed::Log { follower: id, line } => {
                    if follower.as_ref().is_some_and(|f| f.id == id) {
                        view.push_log(line);
                    }
                }
                Feed::Answer {
                    verb,
                    service,
                    result,
                } => view.answered(verb, &service, result),
            }
            dirty = true;
        }
    }
    drop(screen);
    Ok(OK)
}
