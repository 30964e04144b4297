//! Drawing a [`View`]: a pure function from the view to a ratatui buffer of any
//! size (the terminal's frame, `--once`'s text, a test's `TestBackend`), and the
//! buffer as text with ANSI colours or without.
//!
//! The screen, top to bottom: a title line (services and how many are ready, the
//! filter, the project); the table, one row per service (replicas too) coloured by
//! state, the selected one reversed; the selected service's output, newest at the
//! bottom; and a status line with the last action's result and the keys. Columns a
//! narrow terminal has no room for are left out, least useful first.
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, HighlightSpacing, Paragraph, Row, StatefulWidget, Table, TableState, Widget,
};
use ringmaster::status::STATUS_COLUMNS;
use ringmaster::{ServiceState, ServiceStatus};

use super::view::{Tone, View};

/// The table's columns, in order, and when a narrow terminal drops each one
/// (lowest first; 0: never).
const COLUMNS: [(&str, u8); 9] = [
    ("SERVICE", 0),
    ("STATE", 0),
    ("HEALTH", 5),
    ("PID", 4),
    ("PORT", 2),
    ("CPU", 7),
    ("MEM", 6),
    ("RESTARTS", 1),
    ("UPTIME", 3),
];

/// The narrowest HEALTH column worth showing.
const HEALTH_MIN: u16 = 10;
/// Spaces between columns.
const SPACING: u16 = 2;
/// Before the selected row (and as wide a blank before the others).
const HIGHLIGHT: &str = "▶ ";
/// The keys, on the status line when there is room.
const KEYS: &str = "↑↓ select  r restart  s stop/start  / filter  q quit";
/// The keys while the filter is typed.
const FILTER_KEYS: &str = "Enter keeps  Esc clears";
/// The log pane's smallest height (its title line and three lines) when the
/// table would leave it less.
const LOG_MIN: u16 = 4;

/// Draws `view` into `area` of `buf`.
pub fn render(view: &View, area: Rect, buf: &mut Buffer) {
    let status_h = u16::from(view.interactive);
    let rest = area.height.saturating_sub(1 + status_h);
    let rows = view.visible().len() as u16;
    let table_h = (rows + 1).min(rest.saturating_sub(LOG_MIN.min(rest / 2)));
    let [title, table, logs, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(table_h),
        Constraint::Fill(1),
        Constraint::Length(status_h),
    ])
    .areas(area);
    title_line(view).render(title, buf);
    render_table(view, table, buf);
    render_logs(view, logs, buf);
    if view.interactive {
        render_status(view, status, buf);
    }
}

/// The height `--once` draws at: the title, the table in full, and up to
/// `log_lines` lines of output under the pane's title.
pub fn natural_height(view: &View, log_lines: usize) -> u16 {
    let rows = view.visible().len();
    let logs = view.logs.len().clamp(1, log_lines.max(1));
    (1 + 1 + rows + 1 + logs + usize::from(view.interactive)).min(u16::MAX as usize) as u16
}

/// `ringmaster top · 3 services: 2 ready, 1 failed · filter: api · /srv/app`.
fn title_line(view: &View) -> Line<'static> {
    let services: Vec<&ServiceStatus> = view
        .services
        .iter()
        .filter(|s| ringmaster::config::replica_of(&s.name).is_none())
        .collect();
    let mut counts: Vec<(ServiceState, usize)> = Vec::new();
    for s in &services {
        match counts.iter_mut().find(|(state, _)| *state == s.state) {
            Some((_, n)) => *n += 1,
            None => counts.push((s.state, 1)),
        }
    }
    counts.sort_by_key(|(state, _)| *state as u8);
    let counts: Vec<String> = counts
        .iter()
        .map(|(state, n)| format!("{n} {state}"))
        .collect();
    let n = services.len();
    let mut spans = vec![Span::styled(
        "ringmaster top",
        Style::new().add_modifier(Modifier::BOLD),
    )];
    if !view.filter.is_empty() || view.editing_filter {
        spans.push(Span::raw(format!(" · filter: {}", view.filter)));
    }
    spans.push(Span::raw(format!(
        " · {n} service{}{}{}",
        if n == 1 { "" } else { "s" },
        if counts.is_empty() { "" } else { ": " },
        counts.join(", ")
    )));
    if !view.title.is_empty() {
        spans.push(Span::raw(format!(" · {}", view.title)));
    }
    Line::from(spans)
}

/// The style of a row in `state`: the colours of `up`'s progress lines
/// ([`crate::output::state_color`]); a stopped service dim.
fn state_style(state: ServiceState, color: bool) -> Style {
    let style = Style::new();
    match crate::output::state_color(state.as_str()) {
        _ if state == ServiceState::Stopped => style.add_modifier(Modifier::DIM),
        _ if !color => style,
        "32" => style.fg(Color::Green),
        "33" => style.fg(Color::Yellow),
        "31" => style.fg(Color::Red),
        _ => style.add_modifier(Modifier::DIM),
    }
}

/// One cell per [`COLUMNS`] entry. Where `status` has the same column its text is
/// the library's (so `top` and `status` print a service alike); STATE is the state
/// alone (its reason is in the log pane's title); HEALTH says why a service that
/// has no probe result is waiting or failed.
fn cells(s: &ServiceStatus, now_ms: u64) -> Vec<String> {
    let library = s.cells(now_ms);
    let cell = |name: &str| {
        STATUS_COLUMNS
            .iter()
            .position(|c| *c == name)
            .and_then(|i| library.get(i).cloned())
            .unwrap_or_else(|| "-".into())
    };
    COLUMNS
        .iter()
        .map(|(name, _)| match *name {
            "STATE" => s.state.to_string(),
            "HEALTH" => match (cell("HEALTH"), &s.reason) {
                (h, Some(reason)) if h == "-" => reason.clone(),
                (h, _) => h,
            },
            other => cell(other),
        })
        .collect()
}

fn width(text: &str) -> u16 {
    Span::raw(text).width().min(u16::MAX as usize) as u16
}

/// Which columns fit in `room` and how wide each is: every column as wide as its
/// widest cell (HEALTH takes what is left, at least [`HEALTH_MIN`]); while they do
/// not fit, the column of lowest priority goes.
fn layout(header: &[&str], rows: &[Vec<String>], room: u16) -> Vec<(usize, u16)> {
    let health = COLUMNS.iter().position(|(n, _)| *n == "HEALTH");
    let widths: Vec<u16> = header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .map(|r| width(&r[i]))
                .chain([width(h)])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let spacing = |n: usize| SPACING.saturating_mul(n.saturating_sub(1) as u16);
    // While the columns are chosen, HEALTH counts at its narrowest.
    let least = |i: usize| {
        if Some(i) == health {
            widths[i].min(HEALTH_MIN)
        } else {
            widths[i]
        }
    };
    let mut kept: Vec<usize> = (0..header.len()).collect();
    loop {
        let need = kept
            .iter()
            .map(|&i| least(i))
            .fold(spacing(kept.len()), u16::saturating_add);
        let lowest = kept
            .iter()
            .copied()
            .filter(|&i| COLUMNS[i].1 > 0)
            .min_by_key(|&i| COLUMNS[i].1);
        match lowest {
            Some(i) if need > room => kept.retain(|&k| k != i),
            _ => break,
        }
    }
    // HEALTH takes what the others leave, up to its widest cell.
    let others = kept
        .iter()
        .filter(|&&i| Some(i) != health)
        .map(|&i| widths[i])
        .fold(spacing(kept.len()), u16::saturating_add);
    let health_width = room.saturating_sub(others).max(HEALTH_MIN);
    kept.iter()
        .map(|&i| {
            let w = if Some(i) == health {
                widths[i].min(health_width)
            } else {
                widths[i]
            };
            (i, w)
        })
        .collect()
}

fn render_table(view: &View, area: Rect, buf: &mut Buffer) {
    let visible = view.visible();
    let header: Vec<&str> = COLUMNS.iter().map(|(n, _)| *n).collect();
    let rows: Vec<Vec<String>> = visible.iter().map(|s| cells(s, view.now_ms)).collect();
    let room = area.width.saturating_sub(width(HIGHLIGHT));
    let columns = layout(&header, &rows, room);
    // While the instance does not answer, the rows are its last word: dim.
    let stale = view.error.is_some();
    let table_rows = visible.iter().zip(&rows).map(|(s, cells)| {
        Row::new(columns.iter().map(|&(i, _)| cells[i].clone())).style(if stale {
            Style::new().add_modifier(Modifier::DIM)
        } else {
            state_style(s.state, view.color)
        })
    });
    let table = Table::new(
        table_rows,
        columns.iter().map(|&(_, w)| Constraint::Length(w)),
    )
    .header(
        Row::new(columns.iter().map(|&(i, _)| header[i]))
            .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .column_spacing(SPACING)
    .highlight_symbol(HIGHLIGHT)
    .highlight_spacing(HighlightSpacing::Always)
    .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = TableState::new().with_selected(view.selected_index());
    StatefulWidget::render(table, area, buf, &mut state);
}

fn render_logs(view: &View, area: Rect, buf: &mut Buffer) {
    let dim = Style::new().add_modifier(Modifier::DIM);
    let shown = view.selected_index().and(view.selected_service());
    let title = match shown {
        Some(s) => {
            let state = s
                .cells(view.now_ms)
                .get(1)
                .cloned()
                .unwrap_or_else(|| s.state.to_string());
            format!(" {}: {state} ", s.name)
        }
        None => " output ".into(),
    };
    let block = Block::new()
        .borders(Borders::TOP)
        .border_style(dim)
        .title(Span::styled(
            title,
            Style::new().add_modifier(Modifier::BOLD),
        ));
    let inner = block.inner(area);
    block.render(area, buf);
    let selected = view.selected.as_deref().unwrap_or("");
    let lines: Vec<Line> = if shown.is_none() {
        vec![Line::styled(
            if view.services.is_empty() {
                "(no services)"
            } else {
                "(no service matches the filter)"
            },
            dim,
        )]
    } else if view.logs.is_empty() {
        vec![Line::styled("(no output yet)", dim)]
    } else {
        let skip = view.logs.len().saturating_sub(inner.height as usize);
        view.logs
            .iter()
            .skip(skip)
            .map(|l| {
                let text = sanitize(&l.line);
                if l.service == selected {
                    Line::raw(text)
                } else {
                    Line::from(vec![
                        Span::styled(format!("{} | ", l.service), dim),
                        Span::raw(text),
                    ])
                }
            })
            .collect()
    };
    Paragraph::new(lines).render(inner, buf);
}

fn render_status(view: &View, area: Rect, buf: &mut Buffer) {
    let paint = |tone: Tone| {
        let style = Style::new();
        match (view.color, tone) {
            (false, _) => style,
            (true, Tone::Busy) => style.fg(Color::Yellow),
            (true, Tone::Done) => style.fg(Color::Green),
            (true, Tone::Failed) => style.fg(Color::Red),
        }
    };
    let (left, keys) = if view.editing_filter {
        (
            Line::from(vec![
                Span::raw(format!("/{}", view.filter)),
                Span::styled(" ", Style::new().add_modifier(Modifier::REVERSED)),
            ]),
            FILTER_KEYS,
        )
    } else if let Some(error) = &view.error {
        (Line::styled(error.clone(), paint(Tone::Failed)), KEYS)
    } else if let Some(m) = &view.message {
        (Line::styled(m.text.clone(), paint(m.tone)), KEYS)
    } else {
        (Line::default(), KEYS)
    };
    let keys_w = width(keys);
    if left.width() == 0 || left.width() as u16 + 2 + keys_w <= area.width {
        Line::styled(keys, Style::new().add_modifier(Modifier::DIM))
            .right_aligned()
            .render(area, buf);
    }
    left.render(area, buf);
}

/// A service's output line as plain text: ANSI escape sequences (colours, cursor
/// moves) and other control characters removed, tabs as spaces.
pub fn sanitize(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                // CSI: parameters, then a final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC: up to BEL or ESC \.
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\t' => out.push_str("    "),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The SGR parameters of a cell's style (`1;32`), empty for the default.
fn sgr(fg: Color, modifier: Modifier) -> String {
    let mut codes: Vec<&str> = Vec::new();
    if modifier.contains(Modifier::BOLD) {
        codes.push("1");
    }
    if modifier.contains(Modifier::DIM) {
        codes.push("2");
    }
    if modifier.contains(Modifier::REVERSED) {
        codes.push("7");
    }
    codes.push(match fg {
        Color::Red => "31",
        Color::Green => "32",
        Color::Yellow => "33",
        Color::Blue => "34",
        Color::Magenta => "35",
        Color::Cyan => "36",
        Color::Gray => "37",
        Color::DarkGray => "90",
        _ => "",
    });
    codes.retain(|c| !c.is_empty());
    codes.join(";")
}

/// The buffer as lines of text, trailing blanks cut; with `color`, each run of
/// cells in one style carries its ANSI escape (`--once` on a terminal).
pub fn to_text(buf: &Buffer, color: bool) -> String {
    let mut out = String::new();
    let w = buf.area.width as usize;
    if w == 0 {
        return out;
    }
    for row in buf.content().chunks(w) {
        // A cell shows when it is not a blank in the default look.
        let end = row
            .iter()
            .rposition(|c| c.symbol() != " " || (color && c.modifier.contains(Modifier::REVERSED)))
            .map_or(0, |i| i + 1);
        let mut current = String::new();
        let mut skip = 0usize;
        for c in &row[..end] {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            if color {
                let code = sgr(c.fg, c.modifier);
                if code != current {
                    out.push_str(&format!(
                        "\x1b[0{}{code}m",
                        if code.is_empty() { "" } else { ";" }
                    ));
                    current = code;
                }
            }
            out.push_str(c.symbol());
            skip = Span::raw(c.symbol()).width().saturating_sub(1);
        }
        if color && !current.is_empty() {
            out.push_str("\x1b[0m");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use ringmaster::balancer::{BackendSnapshot, BalancerSnapshot};
    use ringmaster::messages::{LogLine, Stream};
    use ringmaster::ServiceState;

    use super::*;
    use crate::cmd::top::view::tests::service;
    use crate::cmd::top::view::Message;

    const NOW: u64 = 1_767_225_600_000;

    /// A stack of every kind of row: a replicated API with its balancer and two
    /// replicas, a ready frontend with a long health text, a worker starting, a
    /// failed job, a stopped cache; the API selected, with replica output.
    fn fixed() -> View {
        let mut api = service("api", ServiceState::Ready, None);
        api.port = Some(8000);
        api.since_ms = NOW - 312_000;
        api.balancer = Some(BalancerSnapshot {
            listening: true,
            port: Some(8000),
            ready: 2,
            members: 2,
            active: 3,
            accepted: 120,
            refused: 0,
            backends: vec![BackendSnapshot::default(), BackendSnapshot::default()],
        });
        api.cpu_percent = Some(3.5);
        api.rss_bytes = Some(96 * 1024 * 1024);
        let replica = |n: u32, pid: u32, cpu: f64| {
            let mut r = service(&format!("api#{n}"), ServiceState::Ready, Some(pid));
            r.port = Some(41000 + n as u16);
            r.since_ms = NOW - 12_300;
            r.health = Some("ok".into());
            r.connections = Some(1 + n as u64);
            r.cpu_percent = Some(cpu);
            r.rss_bytes = Some(48 * 1024 * 1024);
            r.restarts = n;
            r
        };
        let mut web = service("frontend", ServiceState::Ready, Some(4170));
        web.port = Some(3000);
        web.since_ms = NOW - 3_725_000;
        web.health = Some("ok".into());
        web.cpu_percent = Some(41.2);
        web.rss_bytes = Some(1_288_490_189);
        let mut worker = service("worker", ServiceState::Starting, Some(4200));
        worker.since_ms = NOW - 850;
        worker.health = Some(
            "failing: GET http://127.0.0.1:9000/health: connection refused (os error 111)".into(),
        );
        worker.cpu_percent = Some(0.0);
        worker.rss_bytes = Some(812 * 1024);
        let mut job = service("job", ServiceState::Failed, None);
        job.reason = Some("exited with code 1 within its start window (1s)".into());
        job.restarts = 3;
        job.last_exit = Some(1);
        let cache = service("cache", ServiceState::Stopped, None);
        let mut view = View::new("/srv/app", true, true);
        view.set_services(
            vec![
                api,
                replica(0, 4121, 1.25),
                replica(1, 4133, 2.0),
                web,
                worker,
                job,
                cache,
            ],
            NOW,
        );
        for i in 0..12 {
            view.push_log(LogLine {
                service: format!("api#{}", i % 2),
                stream: Stream::Stdout,
                line: format!("GET /items/{i} 200 in {}ms", i * 3),
            });
        }
        view.push_log(LogLine {
            service: "api#0".into(),
            stream: Stream::Stderr,
            line: "\x1b[33mWARN\x1b[0m\tslow query".into(),
        });
        view.message = Some(Message {
            text: "api restarted".into(),
            tone: Tone::Done,
        });
        view
    }

    fn frame(view: &View, w: u16, h: u16) -> Terminal<TestBackend> {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("a test terminal");
        terminal
            .draw(|f| render(view, f.area(), f.buffer_mut()))
            .expect("draws");
        terminal
    }

    #[test]
    fn a_stack_at_100_by_30() {
        insta::assert_snapshot!(frame(&fixed(), 100, 30).backend());
    }

    #[test]
    fn a_stack_at_60_by_15() {
        let mut view = fixed();
        // The selection kept in sight near the end of a table taller than its room.
        view.selected = Some("job".into());
        view.logs.clear();
        view.message = None;
        insta::assert_snapshot!(frame(&view, 60, 15).backend());
    }

    #[test]
    fn a_filter_being_typed() {
        let mut view = fixed();
        view.filter = "API#".into();
        view.editing_filter = true;
        view.selected = Some("api#1".into());
        view.logs.retain(|l| l.service == "api#1");
        insta::assert_snapshot!(frame(&view, 80, 12).backend());
    }

    #[test]
    fn rows_are_coloured_by_state_and_the_selection_reversed() {
        let view = fixed();
        let terminal = frame(&view, 100, 30);
        let buf = terminal.backend().buffer();
        let row_of = |name: &str| {
            (0..buf.area.height)
                .find(|&y| {
                    (0..buf.area.width)
                        .map(|x| buf[(x, y)].symbol())
                        .collect::<String>()
                        .contains(&format!("{name} "))
                })
                .expect("a row")
        };
        let style_at = |y: u16| &buf[(4, y)];
        assert_eq!(style_at(row_of("frontend")).fg, Color::Green);
        assert_eq!(style_at(row_of("worker")).fg, Color::Yellow);
        assert_eq!(style_at(row_of("job")).fg, Color::Red);
        assert!(style_at(row_of("cache")).modifier.contains(Modifier::DIM));
        assert!(style_at(row_of("▶ api"))
            .modifier
            .contains(Modifier::REVERSED));
        // Without colour: the same frame, no foreground colours.
        let mut plain = fixed();
        plain.color = false;
        let terminal = frame(&plain, 100, 30);
        let buf = terminal.backend().buffer();
        assert!(buf.content().iter().all(|c| c.fg == Color::Reset));
    }

    #[test]
    fn any_size_draws_even_the_smallest() {
        let view = fixed();
        for (w, h) in [(0, 0), (1, 1), (2, 2), (10, 3), (20, 5), (40, 8), (300, 80)] {
            let mut buf = Buffer::empty(Rect::new(0, 0, w, h));
            render(&view, buf.area, &mut buf);
            assert_eq!(to_text(&buf, false).lines().count(), h as usize);
        }
    }

    #[test]
    fn an_instance_that_does_not_answer_leaves_dim_rows_and_says_why() {
        let mut view = fixed();
        view.error =
            Some("no ringmaster is running with state directory /srv/app/.ringmaster".into());
        let terminal = frame(&view, 100, 30);
        let buf = terminal.backend().buffer();
        for y in 2..9 {
            assert!(buf[(4, y)].modifier.contains(Modifier::DIM), "row {y}");
            assert_eq!(buf[(4, y)].fg, Color::Reset, "row {y}");
        }
        let bottom = to_text(buf, false);
        let last = bottom.lines().last().unwrap_or_default();
        assert!(last.starts_with("no ringmaster is running"), "{bottom}");
        assert_eq!(buf[(0, 29)].fg, Color::Red);
    }

    #[test]
    fn the_once_text_has_no_escapes_without_colour_and_fits_its_rows() {
        let mut view = fixed();
        view.interactive = false;
        let h = natural_height(&view, 10);
        assert_eq!(h, 1 + 1 + 7 + 1 + 10);
        let mut buf = Buffer::empty(Rect::new(0, 0, 100, h));
        render(&view, buf.area, &mut buf);
        let text = to_text(&buf, false);
        assert!(!text.contains('\x1b'), "{text}");
        assert!(text.lines().all(|l| l == l.trim_end()));
        assert!(text.contains("job       failed"), "{text}");
        let colored = to_text(&buf, true);
        assert!(colored.contains("\x1b[0;32m"), "{colored}");
    }

    #[test]
    fn output_lines_lose_their_escapes_and_control_characters() {
        assert_eq!(sanitize("\x1b[1;31merror\x1b[0m: x\r"), "error: x");
        assert_eq!(sanitize("a\tb"), "a    b");
        assert_eq!(sanitize("\x1b]0;title\x07done"), "done");
        assert_eq!(sanitize("ünïcödé ✓"), "ünïcödé ✓");
    }

    #[test]
    fn uptimes_are_the_status_command_s() {
        let view = fixed();
        let api = &view.services[0];
        let ours = cells(api, NOW);
        assert_eq!(
            ours[8],
            ringmaster::text::human_duration(Duration::from_secs(312))
        );
        assert_eq!(ours[2], "2/2 replicas ready, 3 in flight, 0 refused");
    }
}
