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
        todo!()
    }
    /// The value stored in [`TAG_ENV`].
    pub fn env_value(&self) -> String {
        todo!()
    }
    /// Parses a [`TAG_ENV`] value; `None` when it is not one of ours.
    pub fn parse(value: &str) -> Option<Tag> {
        todo!()
    }
}

/// The project id of a state directory: `rm-` and 16 hex digits of a stable hash
/// (FNV-1a, not std's randomized hasher) of its absolute, canonical path.
pub fn project_id(state_dir: &Path) -> String {
    todo!()
}
