//! The human text of reports, events and status — the `Display` impls of
//! [`ShutdownReport`](crate::messages::ShutdownReport),
//! [`EventKind`](crate::messages::EventKind), [`ServiceEvent`](crate::messages::ServiceEvent),
//! [`ServiceStatus`](crate::ServiceStatus) and [`ServiceState`](crate::ServiceState) —
//! written here once, so that a bot prints what the `ringmaster` CLI prints (the
//! CLI uses these same functions, adding only colour through a [`Paint`]).
use std::time::Duration;

/// A short human duration: `850ms`, `12.3s`, `5m12s`, `3h04m`, `2d03h`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    if s < 60 {
        return format!("{:.1}s", d.as_secs_f64());
    }
    if s < 3600 {
        return format!("{}m{:02}s", s / 60, s % 60);
    }
    if s < 86400 {
        return format!("{}h{:02}m", s / 3600, (s % 3600) / 60);
    }
    format!("{}d{:02}h", s / 86400, (s % 86400) / 3600)
}

/// A short human size in binary units (K = 1024 bytes): `512B`, `812K`, `12.4M`,
/// `512M`, `1.2G`.
pub fn human_bytes(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    let units = ["K", "M", "G", "T", "P"];
    let mut v = bytes as f64 / 1024.0;
    for (i, unit) in units.iter().enumerate() {
        // Kilobytes whole; above, one decimal below 100.
        let decimals = if i > 0 && v < 99.95 { 1 } else { 0 };
        let scale = if decimals == 1 { 10.0 } else { 1.0 };
        if (v * scale).round() / scale < 1024.0 || i == units.len() - 1 {
            return format!("{v:.decimals$}{unit}");
        }
        v /= 1024.0;
    }
    unreachable!("the last unit returns")
}

/// The widest of `names` in characters: the column they are padded to.
pub fn widest<'a>(names: impl IntoIterator<Item = &'a str>) -> usize {
    names
        .into_iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
}

/// What a piece of text says, for a writer that colours it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// All went well (green in the CLI).
    Good,
    /// Something needed force (yellow).
    Warning,
    /// Something is left or went wrong (red).
    Bad,
    /// A table header (bold).
    Header,
}

/// How text is coloured: the CLI paints with ANSI colours, `Display` not at all.
pub trait Paint {
    /// `text` in the colour of `tone`.
    fn paint(&self, tone: Tone, text: &str) -> String;
}

/// No colour: what `Display` uses.
#[derive(Clone, Copy, Debug, Default)]
pub struct Plain;

impl Paint for Plain {
    fn paint(&self, _: Tone, text: &str) -> String {
        text.to_owned()
    }
}

/// Milliseconds since the Unix epoch, now (what [`crate::ServiceStatus::since_ms`] counts in).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A table with left-aligned columns separated by two spaces, its header painted
/// [`Tone::Header`].
pub fn table(paint: &dyn Paint, header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| -> String {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(cell.chars().count())
                    + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = String::new();
    let head = line(header.iter().map(|h| h.to_string()).collect());
    out.push_str(&paint.paint(Tone::Header, &head));
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.clone()));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_short() {
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(1023), "1023B");
        assert_eq!(human_bytes(1024), "1K");
        assert_eq!(human_bytes(812 * 1024 + 300), "812K");
        // 1023.9K rounds to the next unit rather than print 1024K.
        assert_eq!(human_bytes(1024 * 1024 - 100), "1.0M");
        assert_eq!(human_bytes(12_400 * 1024 + 1024 * 1024 / 2), "12.6M");
        assert_eq!(human_bytes(13_002_342), "12.4M");
        assert_eq!(human_bytes(512 * 1024 * 1024), "512M");
        assert_eq!(human_bytes(1_288_490_189), "1.2G");
        assert_eq!(human_bytes(u64::MAX), "16384P");
    }
}
