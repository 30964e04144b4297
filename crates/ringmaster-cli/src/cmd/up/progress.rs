//! The live view of a running `up`: one line per service while it starts (a
//! spinner on a terminal, plain lines otherwise), then the services' output
//! prefixed with their names, ringmaster's own lines, what changes did, and the
//! shutdown report. Stdout is written by a thread of its own ([`QueuedWriter`]):
//! a reader that stops reading never holds up the actors.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use ringmaster::change::Action;
use ringmaster::messages::{EventKind, LogLine, ServiceEvent, ShutdownReport};

use super::{plural, Mode};
use crate::control::server::Applied;
use crate::output::{human_duration, shutdown_report, state_color, Prefixer, Style};
use crate::writer::QueuedWriter;

/// How many chunks of text may wait for stdout before lines are dropped for the
/// screen (the services' log files keep every line).
const SCREEN_QUEUE: usize = 2048;

/// How long stdout may take nothing at all before the last lines are given up at
/// exit (see [`QueuedWriter::drain`]).
const SCREEN_STALL: Duration = Duration::from_secs(3);

/// The progress view of the running instance.
pub(super) struct Progress {
    style: Style,
    mode: Mode,
    prefix: Prefixer,
    names: Vec<String>,
    /// Per service (same order as `names`): state and detail.
    states: Vec<(String, String)>,
    width: usize,
    /// Lines of the live block currently on screen (0: none drawn).
    drawn: usize,
    live: bool,
    frame: usize,
    pub(super) started: Instant,
    /// Stdout, written by a thread of its own.
    screen: QueuedWriter,
    /// Lines dropped for the screen since the last note saying so.
    dropped: usize,
    /// When each service was last spawned: after the start-up, a service that
    /// a change or a restart started is ready some time after that.
    spawned: HashMap<String, Instant>,
    /// The start-up is over.
    settled: bool,
}

impl Drop for Progress {
    fn drop(&mut self) {
        // The last word on what the screen missed (the writer may still take it).
        if self.dropped > 0 {
            let note = self.dropped_note();
            self.screen.send(note, usize::MAX);
        }
        self.screen.drain(SCREEN_STALL);
    }
}

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

impl Progress {
    pub(super) fn new(style: Style, mode: Mode, prefix: Prefixer, names: Vec<String>) -> Progress {
        let width = ringmaster::text::widest(names.iter().map(String::as_str));
        let states = names
            .iter()
            .map(|_| ("waiting".to_string(), String::new()))
            .collect();
        Progress {
            live: style.live && mode == Mode::Foreground,
            style,
            mode,
            prefix,
            names,
            states,
            width,
            drawn: 0,
            frame: 0,
            started: Instant::now(),
            screen: QueuedWriter::spawn("stdout", std::io::stdout),
            dropped: 0,
            spawned: Default::default(),
            settled: false,
        }
    }

    /// `ringmaster | N lines not shown (...)`.
    fn dropped_note(&self) -> String {
        format!(
            "{}\n",
            self.prefix.own(&format!(
                "{} not shown (stdout was not read fast enough; the log files have every line)",
                plural(self.dropped, "line")
            ))
        )
    }

    /// Writes service output to stdout without ever blocking: when the writer is
    /// [`SCREEN_QUEUE`] chunks behind, the text is dropped and counted; once half of
    /// that backlog has drained, a note says how many lines were not shown.
    fn out(&mut self, text: String) {
        if self.dropped > 0 && self.screen.backlog() <= SCREEN_QUEUE / 2 {
            let note = self.dropped_note();
            if self.screen.send(note, SCREEN_QUEUE) {
                self.dropped = 0;
            }
        }
        // Once dropping, keep dropping until the note is out: it comes first.
        let lines = text.lines().count().max(1);
        if self.dropped > 0 || !self.screen.send(text, SCREEN_QUEUE) {
            self.dropped += lines;
            // The live block cannot be redrawn in place over lines that were lost:
            // plain lines from here on.
            self.live = false;
            self.drawn = 0;
        }
    }

    /// Writes `text` that must reach the reader: ringmaster's own lines (state
    /// changes, signals) and the shutdown report. Queued whatever the backlog, after
    /// the note on what was dropped; they are few, so the queue stays bounded by the
    /// service output that [`Progress::out`] drops.
    fn out_kept(&mut self, text: String) {
        if self.dropped > 0 {
            let note = self.dropped_note();
            self.screen.send(note, usize::MAX);
            self.dropped = 0;
        }
        self.screen.send(text, usize::MAX);
    }

    fn clear_block(&mut self) {
        if self.drawn > 0 {
            self.out(format!("\x1b[{}A\x1b[J", self.drawn));
            self.drawn = 0;
        }
    }

    fn draw_block(&mut self) {
        if !self.live {
            return;
        }
        let mut text = String::new();
        for (name, (state, detail)) in self.names.iter().zip(&self.states) {
            let mark = match state.as_str() {
                "ready" => self.style.paint("32", "✓"),
                "failed" => self.style.paint("31", "✗"),
                _ => self.style.paint("36", SPINNER[self.frame % SPINNER.len()]),
            };
            let state_text = self.style.paint(state_color(state), state);
            text.push_str(&format!("{mark} {name:w$}  {state_text}", w = self.width));
            if !detail.is_empty() {
                text.push_str(&format!(" {detail}"));
            }
            text.push('\n');
        }
        self.out(text);
        if self.live {
            self.drawn = self.names.len();
        }
    }

    fn redraw(&mut self) {
        if self.live {
            self.clear_block();
            self.draw_block();
        }
    }

    pub(super) fn tick(&mut self) {
        self.frame += 1;
        self.redraw();
    }

    /// A line of ringmaster's own.
    pub(super) fn own(&mut self, line: &str) {
        let had = self.drawn > 0;
        self.clear_block();
        self.out_kept(format!("{}\n", self.prefix.own(line)));
        if had {
            self.draw_block();
        }
    }

    pub(super) fn log(&mut self, line: &LogLine) {
        if self.mode == Mode::Detached {
            return;
        }
        let had = self.drawn > 0;
        self.clear_block();
        self.out(format!("{}\n", self.prefix.line(&line.service, &line.line)));
        if had {
            self.draw_block();
        }
    }

    pub(super) fn event(&mut self, ev: &ServiceEvent) {
        // The library's words for the event (what `Display` prints); only the
        // time to ready is the CLI's own.
        let state = ev.kind.state_name();
        if let EventKind::Spawned { .. } = ev.kind {
            self.spawned.insert(ev.name.clone(), Instant::now());
        }
        let detail = match &ev.kind {
            // During the start-up: since `up` began. Later: since its own start.
            EventKind::Ready => match self.spawned.get(&ev.name) {
                Some(at) if self.settled => {
                    format!("in {} after its start", human_duration(at.elapsed()))
                }
                _ => format!("in {}", human_duration(self.started.elapsed())),
            },
            kind => kind.detail(),
        };
        if let Some(i) = self.names.iter().position(|n| n == &ev.name) {
            match ev.kind {
                // Not a state of its own: the service runs on as a daemon.
                EventKind::Daemonized { .. } => self.states[i].1 = format!("(daemonized {detail})"),
                _ => self.states[i] = (state.to_string(), detail.clone()),
            }
        }
        if self.live {
            self.redraw();
        } else {
            let mut text = format!("{}: {}", ev.name, state);
            if !detail.is_empty() {
                text.push(' ');
                text.push_str(&detail);
            }
            self.own(&text);
        }
    }

    /// What a change did: its report, line by line; the selected services follow it.
    pub(super) fn applied(&mut self, a: Applied, selected: &mut Vec<String>) {
        match a {
            Applied::Done { via, report } => {
                let text = report.render(&self.style);
                let mut lines = text.lines();
                if let Some(first) = lines.next() {
                    self.own(&format!("change through {via}: {first}"));
                }
                for line in lines {
                    self.own(line);
                }
                for n in report.with(Action::Added) {
                    if !selected.iter().any(|s| s == n) {
                        selected.push(n.to_owned());
                    }
                }
                let removed = report.with(Action::Removed);
                selected.retain(|s| !removed.contains(&s.as_str()));
            }
            Applied::Refused { via, why } => {
                let mut lines = why.lines();
                if let Some(first) = lines.next() {
                    self.own(&format!("change through {via} not made: {first}"));
                }
                for line in lines {
                    self.own(line);
                }
            }
        }
    }

    pub(super) fn all_ready(&self) -> bool {
        self.states.iter().all(|(s, _)| s == "ready")
    }

    /// Startup is over: leave the final block on screen and print lines from now on.
    pub(super) fn end_startup(&mut self) {
        self.settled = true;
        if self.live {
            self.redraw();
        }
        self.drawn = 0;
        self.live = false;
    }

    pub(super) fn report(&mut self, report: &ShutdownReport) {
        self.clear_block();
        self.out_kept(shutdown_report(&self.style, report));
    }
}
