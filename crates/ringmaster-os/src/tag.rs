//! The tag: an environment variable set on every spawned process and inherited by
//! all its descendants. It names the project (stable across runs: derived from the
//! state directory's absolute path) and the service, so that double-forked,
//! re-parented and left-over processes of an earlier, crashed run are still ours.
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Name of the environment variable that carries the tag.
pub const TAG_ENV: &str = "RINGMASTER_TAG";

/// A project and service name pair; rendered as `project/service` in [`TAG_ENV`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tag {
    pub project: String,
    pub service: String,
}

impl Tag {
    /// A tag for `service` in `project`.
    pub fn new(project: impl Into<String>, service: impl Into<String>) -> Self {
        Tag {
            project: project.into(),
            service: service.into(),
        }
    }
    /// The value stored in [`TAG_ENV`].
    pub fn env_value(&self) -> String {
        format!("{}/{}", self.project, self.service)
    }
    /// The timer slack (in ns) every process spawned for this tag starts with on
    /// Linux: 50 001 to 99 999, from a hash of the tag (the kernel's default is
    /// 50 000; a few µs more slack changes nothing for a server). Unlike the
    /// environment, a process cannot write its title over it: it survives fork,
    /// exec, `setsid` and the process titles of nginx, redis and postgres, so an
    /// orphan whose tag cannot be read can still show which service launched it.
    /// A hint, not a proof on its own (another process may pick the same value).
    pub fn slack_marker(&self) -> u64 {
        50_001 + fnv1a64(self.env_value().as_bytes()) % 49_999
    }
    /// Parses a [`TAG_ENV`] value; `None` when it is not one of ours.
    /// The project is everything before the first `/`, the service the rest;
    /// both must be non-empty.
    pub fn parse(value: &str) -> Option<Tag> {
        let (project, service) = value.split_once('/')?;
        if project.is_empty() || service.is_empty() {
            return None;
        }
        Some(Tag::new(project, service))
    }
}

/// The project id of a state directory: `rm-` and 16 hex digits of a stable hash
/// (FNV-1a, not std's randomized hasher) of its absolute, canonical path.
/// When the directory does not exist yet (so it cannot be canonicalized), its
/// nearest existing ancestor is canonicalized and the rest appended, so the id
/// does not change once the directory is created.
pub fn project_id(state_dir: &Path) -> String {
    let path = canonical_or_absolute(state_dir);
    format!("rm-{:016x}", fnv1a64(path_bytes(&path).as_ref()))
}

fn canonical_or_absolute(path: &Path) -> std::path::PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut rest = Vec::new();
    let mut cur = absolute.as_path();
    loop {
        if let Ok(canon) = std::fs::canonicalize(cur) {
            return rest.iter().rev().fold(canon, |acc, part| acc.join(part));
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                cur = parent;
            }
            _ => return absolute,
        }
    }
}

/// FNV-1a, 64 bits: small, stable across runs and platforms.
fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(PRIME))
}

#[cfg(unix)]
fn path_bytes(path: &Path) -> std::borrow::Cow<'_, [u8]> {
    use std::os::unix::ffi::OsStrExt;
    std::borrow::Cow::Borrowed(path.as_os_str().as_bytes())
}

#[cfg(not(unix))]
fn path_bytes(path: &Path) -> std::borrow::Cow<'_, [u8]> {
    std::borrow::Cow::Owned(path.to_string_lossy().into_owned().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_value_round_trips() {
        let tag = Tag::new("rm-0123456789abcdef", "api");
        assert_eq!(tag.env_value(), "rm-0123456789abcdef/api");
        assert_eq!(Tag::parse(&tag.env_value()), Some(tag));
        assert_eq!(Tag::parse("noslash"), None);
        assert_eq!(Tag::parse("/api"), None);
        assert_eq!(Tag::parse("rm-x/"), None);
    }

    #[test]
    fn fnv1a_matches_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn project_id_is_stable_and_path_dependent() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = project_id(dir.path());
        assert_eq!(a, project_id(dir.path()));
        assert!(a.starts_with("rm-") && a.len() == 19, "{a}");
        let missing = dir.path().join("not-yet");
        let b = project_id(&missing);
        assert_ne!(a, b);
        std::fs::create_dir(&missing).expect("mkdir");
        assert_eq!(b, project_id(&missing));
    }
}
