//! The services' log files in the state directory, read without a running
//! instance: `<state_dir>/logs/<service>.log` (the library writes them, rotating
//! by size to `<service>.log.1`). The last N lines are read from the end of the
//! file, so a large log costs no more than its tail.
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The folder of the log files.
pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("logs")
}

/// The current log file of `service`.
pub fn path(dir: &Path, service: &str) -> PathBuf {
    dir.join(format!("{service}.log"))
}

/// The last `n` lines of `service`'s log (the rotated file too when the current
/// one has fewer). Missing files give no lines.
pub fn tail(dir: &Path, service: &str, n: usize) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    let current = path(dir, service);
    let mut lines = tail_file(&current, n);
    if lines.len() < n {
        let rotated = dir.join(format!("{service}.log.1"));
        let mut older = tail_file(&rotated, n - lines.len());
        older.append(&mut lines);
        lines = older;
    }
    lines
}

/// The last `n` lines of one file.
pub fn tail_file(path: &Path, n: usize) -> Vec<String> {
    let Ok(mut file) = File::open(path) else {
        return Vec::new();
    };
    let Ok(len) = file.seek(SeekFrom::End(0)) else {
        return Vec::new();
    };
    let mut pos = len;
    let mut buf: Vec<u8> = Vec::new();
    const BLOCK: u64 = 16 * 1024;
    // Read blocks from the end until there are more than n newlines.
    while pos > 0 && buf.iter().filter(|&&b| b == b'\n').count() <= n {
        let start = pos.saturating_sub(BLOCK);
        let mut block = vec![0u8; (pos - start) as usize];
        if file.seek(SeekFrom::Start(start)).is_err() || file.read_exact(&mut block).is_err() {
            break;
        }
        block.extend_from_slice(&buf);
        buf = block;
        pos = start;
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // A partial first line (we started mid-line) is dropped unless we read it all.
    if pos > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    let skip = lines.len().saturating_sub(n);
    lines.split_off(skip)
}

/// Reads what was appended to `path` since `offset`; returns the complete new
/// lines and the offset after them. A file that shrank (rotated) restarts at 0.
pub fn read_new(path: &Path, offset: u64) -> (Vec<String>, u64) {
    let Ok(mut file) = File::open(path) else {
        return (Vec::new(), offset);
    };
    let len = file.seek(SeekFrom::End(0)).unwrap_or(0);
    let from = if len < offset { 0 } else { offset };
    if len == from || file.seek(SeekFrom::Start(from)).is_err() {
        return (Vec::new(), from);
    }
    let mut buf = Vec::new();
    if file.read_to_end(&mut buf).is_err() {
        return (Vec::new(), from);
    }
    let Some(last_nl) = buf.iter().rposition(|&b| b == b'\n') else {
        return (Vec::new(), from);
    };
    let text = String::from_utf8_lossy(&buf[..last_nl]);
    let lines = text.lines().map(str::to_string).collect();
    (lines, from + last_nl as u64 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_reads_the_last_lines() {
        let dir = std::env::temp_dir().join(format!("rm-cli-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let text: String = (0..5000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(path(&dir, "api"), text).expect("write log");
        let last = tail(&dir, "api", 3);
        assert_eq!(last, vec!["line 4997", "line 4998", "line 4999"]);
        assert_eq!(tail(&dir, "api", 6000).len(), 5000);
        assert!(tail(&dir, "nothing", 3).is_empty());
        let (new, off) = read_new(&path(&dir, "api"), 0);
        assert_eq!(new.len(), 5000);
        std::fs::write(path(&dir, "api"), "a\nb").expect("rewrite");
        let (new, off2) = read_new(&path(&dir, "api"), off);
        assert_eq!(new, vec!["a"]);
        assert_eq!(off2, 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
