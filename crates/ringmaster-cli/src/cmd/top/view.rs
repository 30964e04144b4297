//! The state `top` draws: the services as last polled, the selection (by name, so
//! that it survives a refresh and a filter), the filter, the selected service's log
//! tail and the last action's result — and what a key does to it. Plain data and
//! pure functions: no terminal, no socket, so tests build a [`View`] by hand.
use std::collections::VecDeque;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ringmaster::messages::LogLine;
use ringmaster::{ServiceState, ServiceStatus};

/// How many log lines of the selected service are kept (the follower asks for
/// the last 200, then every new one).
pub const LOG_CAPACITY: usize = 500;

/// What `top` shows.
#[derive(Clone, Debug, Default)]
pub struct View {
    /// The title's subject: the project's folder.
    pub title: String,
    /// Every service, in status order (replicas after their service), as last polled.
    pub services: Vec<ServiceStatus>,
    /// The selected service's name, if any row is visible.
    pub selected: Option<String>,
    /// Rows whose name contains this text (ignoring case) are shown; empty: all.
    pub filter: String,
    /// The filter is being typed (after `/`, until Enter or Esc).
    pub editing_filter: bool,
    /// The selected service's output, oldest first (a replicated service's are its
    /// replicas' lines).
    pub logs: VecDeque<LogLine>,
    /// The last action's result.
    pub message: Option<Message>,
    /// Why the last status poll failed (the instance is gone, say); `None` once
    /// one succeeds again.
    pub error: Option<String>,
    /// Now, for uptimes (Unix ms).
    pub now_ms: u64,
    /// Colours (a terminal, no `NO_COLOR`); modifiers (bold, dim, reverse) are
    /// drawn either way.
    pub color: bool,
    /// The key line at the bottom (off for `--once`).
    pub interactive: bool,
}

/// A line for the status bar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub text: String,
    pub tone: Tone,
}

/// How a [`Message`] is coloured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// Under way (yellow).
    Busy,
    /// Done (green).
    Done,
    /// Failed (red).
    Failed,
}

/// What a key asks of the instance (or of `top`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Leave `top`.
    Quit,
    /// `POST /{verb}/{service}`: `restart`, `stop` or `start`.
    Ask { verb: Verb, service: String },
}

/// A control request on one service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Restart,
    Stop,
    Start,
}

impl Verb {
    /// The route's word: `restart`, `stop`, `start`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Restart => "restart",
            Verb::Stop => "stop",
            Verb::Start => "start",
        }
    }

    /// While it runs: `restarting`, `stopping`, `starting`.
    pub fn doing(self) -> &'static str {
        match self {
            Verb::Restart => "restarting",
            Verb::Stop => "stopping",
            Verb::Start => "starting",
        }
    }

    /// Once done: `restarted`, `stopped`, `started`.
    pub fn done(self) -> &'static str {
        match self {
            Verb::Restart => "restarted",
            Verb::Stop => "stopped",
            Verb::Start => "started",
        }
    }
}

impl View {
    /// An empty view.
    pub fn new(title: impl Into<String>, color: bool, interactive: bool) -> View {
        View {
            title: title.into(),
            color,
            interactive,
            ..View::default()
        }
    }

    /// The services that pass the filter, in status order.
    pub fn visible(&self) -> Vec<&ServiceStatus> {
        let needle = self.filter.to_lowercase();
        self.services
            .iter()
            .filter(|s| needle.is_empty() || s.name.to_lowercase().contains(&needle))
            .collect()
    }

    /// The selected row's index among [`View::visible`].
    pub fn selected_index(&self) -> Option<usize> {
        let name = self.selected.as_deref()?;
        self.visible().iter().position(|s| s.name == name)
    }

    /// The selected service.
    pub fn selected_service(&self) -> Option<&ServiceStatus> {
        let name = self.selected.as_deref()?;
        self.services.iter().find(|s| s.name == name)
    }

    /// A new poll: the services as they are now. The selection stays on its name
    /// while that is visible, else moves to the first visible row.
    pub fn set_services(&mut self, services: Vec<ServiceStatus>, now_ms: u64) {
        self.services = services;
        self.now_ms = now_ms;
        self.error = None;
        self.keep_selection();
    }

    /// Appends a line of the selected service's output, dropping the oldest past
    /// [`LOG_CAPACITY`].
    pub fn push_log(&mut self, line: LogLine) {
        if self.logs.len() == LOG_CAPACITY {
            self.logs.pop_front();
        }
        self.logs.push_back(line);
    }

    /// Puts the selection on a visible row (the first) when it is on none. While
    /// the filter hides every row, a service that still exists stays selected (its
    /// output is not asked for again when the filter widens).
    fn keep_selection(&mut self) {
        if self.selected_index().is_some() {
            return;
        }
        let first = self.visible().first().map(|s| s.name.clone());
        if first.is_some() || self.selected_service().is_none() {
            self.selected = first;
        }
    }

    /// Selects the visible row at `index` (clamped).
    fn select(&mut self, index: usize) {
        let visible = self.visible();
        if let Some(s) = visible.get(index.min(visible.len().saturating_sub(1))) {
            self.selected = Some(s.name.clone());
        }
    }

    /// Moves the selection by `delta` rows, stopping at the ends.
    fn step(&mut self, delta: isize) {
        let at = self.selected_index().unwrap_or(0);
        self.select(at.saturating_add_signed(delta));
    }

    /// What a key press does: moves the selection, edits the filter, or returns
    /// what to ask the instance (the status bar says it is under way).
    pub fn key(&mut self, key: KeyEvent) -> Option<Command> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c')) {
            return Some(Command::Quit);
        }
        match key.code {
            KeyCode::Up => self.step(-1),
            KeyCode::Down => self.step(1),
            KeyCode::Home => self.select(0),
            KeyCode::End => self.select(usize::MAX),
            KeyCode::PageUp => self.step(-10),
            KeyCode::PageDown => self.step(10),
            _ if self.editing_filter => self.filter_key(key),
            KeyCode::Char('q') => return Some(Command::Quit),
            KeyCode::Char('k') => self.step(-1),
            KeyCode::Char('j') => self.step(1),
            KeyCode::Char('g') => self.select(0),
            KeyCode::Char('G') => self.select(usize::MAX),
            KeyCode::Char('/') => {
                self.filter.clear();
                self.editing_filter = true;
                self.keep_selection();
            }
            KeyCode::Esc => {
                self.filter.clear();
                self.keep_selection();
            }
            KeyCode::Char('r') => return self.ask(Verb::Restart),
            KeyCode::Char('s') => {
                let verb = match self.selected_service()?.state {
                    ServiceState::Stopped | ServiceState::Failed => Verb::Start,
                    ServiceState::Stopping => {
                        let name = self.selected.clone().unwrap_or_default();
                        self.message = Some(Message {
                            text: format!("{name} is stopping"),
                            tone: Tone::Busy,
                        });
                        return None;
                    }
                    _ => Verb::Stop,
                };
                return self.ask(verb);
            }
            _ => {}
        }
        None
    }

    /// A key while the filter is typed: text narrows the rows, Backspace takes a
    /// character back, Enter keeps the filter, Esc clears it.
    fn filter_key(&mut self, key: KeyEvent) {
        let plain = !key
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        match key.code {
            KeyCode::Char(c) if plain => self.filter.push(c),
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Enter => self.editing_filter = false,
            KeyCode::Esc => {
                self.filter.clear();
                self.editing_filter = false;
            }
            _ => {}
        }
        self.keep_selection();
    }

    /// `verb` on the selected service: the status bar says it is under way.
    fn ask(&mut self, verb: Verb) -> Option<Command> {
        let service = self.selected.clone()?;
        self.message = Some(Message {
            text: format!("{} {service}…", verb.doing()),
            tone: Tone::Busy,
        });
        Some(Command::Ask { verb, service })
    }

    /// The result of a [`Command::Ask`]: `api restarted`, or the error.
    pub fn answered(&mut self, verb: Verb, service: &str, result: Result<(), String>) {
        self.message = Some(match result {
            Ok(()) => Message {
                text: format!("{service} {}", verb.done()),
                tone: Tone::Done,
            },
            Err(e) => Message {
                text: format!("{} {service}: {e}", verb.as_str()),
                tone: Tone::Failed,
            },
        });
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A service as the instance reports it, with what a test cares about.
    pub fn service(name: &str, state: ServiceState, pid: Option<u32>) -> ServiceStatus {
        ServiceStatus {
            name: name.into(),
            state,
            pid,
            root_pid: pid.map(|p| p - 1),
            ..ServiceStatus::default()
        }
    }

    fn press(view: &mut View, code: KeyCode) -> Option<Command> {
        view.key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn three() -> View {
        let mut v = View::new("t", false, true);
        v.set_services(
            vec![
                service("api", ServiceState::Ready, Some(10)),
                service("web", ServiceState::Stopped, None),
                service("worker", ServiceState::Failed, None),
            ],
            0,
        );
        v
    }

    #[test]
    fn keys_move_the_selection_and_stop_at_the_ends() {
        let mut v = three();
        assert_eq!(v.selected.as_deref(), Some("api"));
        press(&mut v, KeyCode::Up);
        assert_eq!(v.selected.as_deref(), Some("api"));
        press(&mut v, KeyCode::Char('j'));
        press(&mut v, KeyCode::Down);
        press(&mut v, KeyCode::Down);
        assert_eq!(v.selected.as_deref(), Some("worker"));
        press(&mut v, KeyCode::Home);
        assert_eq!(v.selected.as_deref(), Some("api"));
        press(&mut v, KeyCode::End);
        press(&mut v, KeyCode::Char('k'));
        assert_eq!(v.selected.as_deref(), Some("web"));
    }

    #[test]
    fn the_selection_follows_its_name_across_polls() {
        let mut v = three();
        press(&mut v, KeyCode::End);
        let mut again = v.services.clone();
        again.rotate_left(1);
        v.set_services(again, 0);
        assert_eq!(v.selected.as_deref(), Some("worker"));
        // Gone: the first row.
        let without: Vec<_> = v
            .services
            .iter()
            .filter(|s| s.name != "worker")
            .cloned()
            .collect();
        v.set_services(without, 0);
        assert_eq!(v.selected.as_deref(), Some("web"));
    }

    #[test]
    fn the_filter_narrows_the_rows_enter_keeps_it_esc_clears_it() {
        let mut v = three();
        press(&mut v, KeyCode::Char('/'));
        for c in "WOR".chars() {
            press(&mut v, KeyCode::Char(c));
        }
        assert!(v.editing_filter);
        let names: Vec<_> = v.visible().iter().map(|s| s.name.clone()).collect();
        assert_eq!(names, ["worker"]);
        assert_eq!(v.selected.as_deref(), Some("worker"));
        // Typed text is the filter's, not a command: `q` does not quit.
        assert_eq!(press(&mut v, KeyCode::Char('q')), None);
        assert!(v.visible().is_empty());
        assert_eq!(
            v.selected.as_deref(),
            Some("worker"),
            "kept while nothing shows"
        );
        press(&mut v, KeyCode::Backspace);
        press(&mut v, KeyCode::Enter);
        assert!(!v.editing_filter);
        assert_eq!(v.visible().len(), 1);
        press(&mut v, KeyCode::Char('/'));
        press(&mut v, KeyCode::Char('e'));
        press(&mut v, KeyCode::Esc);
        assert_eq!(v.visible().len(), 3);
        assert!(!v.editing_filter && v.filter.is_empty());
    }

    #[test]
    fn r_restarts_and_s_stops_or_starts_the_selected_service() {
        let mut v = three();
        assert_eq!(
            press(&mut v, KeyCode::Char('r')),
            Some(Command::Ask {
                verb: Verb::Restart,
                service: "api".into()
            })
        );
        assert_eq!(
            v.message.as_ref().map(|m| m.text.as_str()),
            Some("restarting api…")
        );
        v.answered(Verb::Restart, "api", Ok(()));
        assert_eq!(
            v.message.as_ref().map(|m| m.text.as_str()),
            Some("api restarted")
        );
        assert_eq!(
            press(&mut v, KeyCode::Char('s')),
            Some(Command::Ask {
                verb: Verb::Stop,
                service: "api".into()
            })
        );
        press(&mut v, KeyCode::Down);
        assert_eq!(
            press(&mut v, KeyCode::Char('s')),
            Some(Command::Ask {
                verb: Verb::Start,
                service: "web".into()
            })
        );
        v.answered(Verb::Start, "web", Err("unknown service `web`".into()));
        let m = v.message.clone().expect("a message");
        assert_eq!(
            (m.text.as_str(), m.tone),
            ("start web: unknown service `web`", Tone::Failed)
        );
        assert_eq!(press(&mut v, KeyCode::Char('q')), Some(Command::Quit));
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(v.key(ctrl_c), Some(Command::Quit));
    }

    #[test]
    fn the_log_buffer_is_bounded() {
        let mut v = three();
        for i in 0..LOG_CAPACITY + 5 {
            v.push_log(LogLine {
                service: "api".into(),
                stream: ringmaster::messages::Stream::Stdout,
                line: i.to_string(),
            });
        }
        assert_eq!(v.logs.len(), LOG_CAPACITY);
        assert_eq!(v.logs.front().map(|l| l.line.as_str()), Some("5"));
    }
}
