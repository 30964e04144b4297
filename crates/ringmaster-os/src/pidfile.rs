//! PID files that record identity (pid, start time, exe, service, tag, owner pid),
//! written atomically (temp file + rename), never read or written through a
//! symlink. A file whose identity does not match the live process is stale: it is
//! removed and its pid is never signalled (this module never signals anyone).
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::process::ProcessInfo;
use crate::{Error, Result};

/// A PID file larger than this is garbage, not read whole.
const MAX_PID_FILE_BYTES: u64 = 64 * 1024;

/// The content of a PID file (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidRecord {
    pub pid: u32,
    pub start_time: u64,
    pub exe: Option<PathBuf>,
    pub service: String,
    /// The [`crate::Tag::env_value`] the process was spawned with.
    pub tag: String,
    /// The ringmaster that wrote it.
    pub owner_pid: u32,
}

impl PidRecord {
    /// The record of `process`, spawned for `service` with `tag`, written by us.
    /// A root still running the spawn's launcher (`setsid(1)`, a moment before it
    /// execs the shell) gets no exe: the pid and start time, which the exec
    /// keeps, tell it.
    pub fn new(process: &ProcessInfo, service: impl Into<String>, tag: &crate::Tag) -> PidRecord {
        let launcher = crate::spawn::launcher();
        PidRecord {
            pid: process.pid,
            start_time: process.start_time,
            exe: process
                .exe
                .clone()
                .filter(|exe| Some(exe.as_path()) != launcher),
            service: service.into(),
            tag: tag.env_value(),
            owner_pid: std::process::id(),
        }
    }
}

/// What a PID file says about the world.
// `Live` is larger than the others; a state is read once and not stored in bulk.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PidFileState {
    /// No file.
    Missing,
    /// The recorded process is alive and is the same process.
    Live(PidRecord, ProcessInfo),
    /// The file was stale and has been removed; the reason says why.
    Stale(String),
}

/// Creates `dir` (and parents) with mode 0700 on Unix when missing. An existing
/// directory is left as it is.
pub fn ensure_state_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| Error::io(format!("creating state directory {}", dir.display()), e))
}

/// Writes `record` to `path` atomically; refuses when `path` is a symlink.
///
/// The JSON goes to a new temp file in the same directory (mode 0600 on Unix,
/// created exclusively, so no existing file or link is opened), is synced, and is
/// renamed over `path`. A rename replaces a link rather than following it, so even
/// a link appearing after the check never redirects the write.
pub fn write_pid_file(path: &Path, record: &PidRecord) -> Result<()> {
    refuse_symlink(path)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pid".to_string());
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{file_name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let json = serde_json::to_vec_pretty(record).expect("a PidRecord always serializes to JSON");
    let written = (|| -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(&json)?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(format!("writing PID file {}", tmp.display()), e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(format!("renaming PID file into {}", path.display()), e)
    })
}

/// Reads `path`; refuses a symlink; garbage is an error (the file is left alone).
///
/// A record whose pid is gone (or a zombie), or is alive with another start time or
/// another exe (the pid was reused), is stale: the file is removed and
/// [`PidFileState::Stale`] says why. The pid is never signalled.
pub fn read_pid_file(path: &Path) -> Result<PidFileState> {
    let text = match read_no_follow(path)? {
        Some(text) => text,
        None => return Ok(PidFileState::Missing),
    };
    let record: PidRecord = serde_json::from_str(&text).map_err(|e| Error::PidFileGarbage {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let stale = |reason: String| -> Result<PidFileState> {
        remove_pid_file(path)?;
        Ok(PidFileState::Stale(reason))
    };
    let live = crate::process::process(record.pid)?;
    let Some(info) = live.filter(|i| !i.zombie) else {
        return stale(format!(
            "pid {} of service {} is no longer running",
            record.pid, record.service
        ));
    };
    if info.start_time != record.start_time {
        return stale(format!(
            "pid {} now belongs to another process ({}, started at {}, not {})",
            record.pid, info.name, info.start_time, record.start_time
        ));
    }
    if let (Some(recorded), Some(now)) = (&record.exe, &info.exe) {
        if strip_deleted(recorded) != strip_deleted(now) {
            return stale(format!(
                "pid {} now runs {}, not {}",
                record.pid,
                now.display(),
                recorded.display()
            ));
        }
    }
    Ok(PidFileState::Live(record, info))
}

/// The pid in a PID file that a daemon wrote itself (a decimal number and
/// whitespace, as redis, nginx and postgres write them); `None` for a missing,
/// unreadable or symlinked file, and for one of ringmaster's own records. The pid
/// is only a hint: a caller uses it only when it names a process of the service.
pub fn read_plain_pid(path: &Path) -> Option<u32> {
    let text = read_no_follow(path).ok()??;
    let first = text.lines().next()?.trim();
    first.parse::<u32>().ok().filter(|&pid| pid > 1)
}

/// Removes `path` if it is a regular file (never through a symlink: a link is
/// refused with [`Error::PidFileSymlink`]). A missing file is fine.
pub fn remove_pid_file(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(
            format!("inspecting PID file {}", path.display()),
            e,
        )),
        Ok(m) if m.file_type().is_symlink() => Err(Error::PidFileSymlink(path.to_path_buf())),
        Ok(m) if !m.is_file() => Err(Error::PidFileGarbage {
            path: path.to_path_buf(),
            reason: "not a regular file".to_string(),
        }),
        Ok(_) => match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(
                format!("removing PID file {}", path.display()),
                e,
            )),
            _ => Ok(()),
        },
    }
}

/// `Err(PidFileSymlink)` when `path` itself is a symbolic link.
fn refuse_symlink(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(Error::PidFileSymlink(path.to_path_buf())),
        _ => Ok(()),
    }
}

/// The content of `path`, `None` when it does not exist. A symlink is refused,
/// on Unix also at open time (`O_NOFOLLOW`), so a link swapped in is not followed.
fn read_no_follow(path: &Path) -> Result<Option<String>> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::io(
                format!("inspecting PID file {}", path.display()),
                e,
            ))
        }
    };
    if meta.file_type().is_symlink() {
        return Err(Error::PidFileSymlink(path.to_path_buf()));
    }
    if !meta.is_file() {
        return Err(Error::PidFileGarbage {
            path: path.to_path_buf(),
            reason: "not a regular file".to_string(),
        });
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    let file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(Error::PidFileSymlink(path.to_path_buf()))
        }
        Err(e) => return Err(Error::io(format!("opening PID file {}", path.display()), e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_PID_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("reading PID file {}", path.display()), e))?;
    if bytes.len() as u64 > MAX_PID_FILE_BYTES {
        return Err(Error::PidFileGarbage {
            path: path.to_path_buf(),
            reason: format!("larger than {MAX_PID_FILE_BYTES} bytes"),
        });
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Error::PidFileGarbage {
            path: path.to_path_buf(),
            reason: "not UTF-8 text".to_string(),
        })
}

/// Linux shows a replaced executable as `/path (deleted)`; the process is the same.
fn strip_deleted(exe: &Path) -> &Path {
    exe.to_str()
        .and_then(|s| s.strip_suffix(" (deleted)"))
        .map(Path::new)
        .unwrap_or(exe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pid: u32) -> PidRecord {
        PidRecord {
            pid,
            start_time: 42,
            exe: Some(PathBuf::from("/usr/bin/sleep")),
            service: "api".to_string(),
            tag: "rm-0123456789abcdef/api".to_string(),
            owner_pid: 1,
        }
    }

    #[test]
    fn write_then_raw_json_roundtrip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("api.pid");
        write_pid_file(&path, &record(1234)).expect("write");
        let text = std::fs::read_to_string(&path).expect("read back");
        let back: PidRecord = serde_json::from_str(&text).expect("json");
        assert_eq!(back, record(1234));
        // Overwriting works, and leaves no temp file behind.
        write_pid_file(&path, &record(1235)).expect("overwrite");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("api.pid")]);
    }

    #[test]
    fn missing_file_is_missing_and_removing_it_is_fine() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("none.pid");
        assert_eq!(read_pid_file(&path).expect("read"), PidFileState::Missing);
        remove_pid_file(&path).expect("remove missing");
    }

    #[test]
    fn garbage_is_an_error_and_the_file_stays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.pid");
        std::fs::write(&path, "12345\n").expect("write");
        match read_pid_file(&path) {
            Err(Error::PidFileGarbage { path: p, .. }) => assert_eq!(p, path),
            other => panic!("expected garbage, got {other:?}"),
        }
        assert!(path.exists());
    }

    #[test]
    fn deleted_suffix_is_ignored() {
        assert_eq!(
            strip_deleted(Path::new("/x/fake-service (deleted)")),
            Path::new("/x/fake-service")
        );
        assert_eq!(strip_deleted(Path::new("/x/y")), Path::new("/x/y"));
    }
}
