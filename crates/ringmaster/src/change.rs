//! A stack that changes while it runs: what a bot or the CLI asks for
//! ([`crate::Orchestrator::apply`], [`crate::Orchestrator::add_service`],
//! [`crate::Orchestrator::remove_service`]) and what the Supervisor reports back
//! ([`ApplyReport`]).
//!
//! # What a change does to each service
//! - **added**: prepared and started, gated on its dependencies as at `up`;
//! - **removed**: stopped through the cascade (what depends on it in the running
//!   graph goes first), then forgotten; a service still named in a `depends_on`
//!   cannot be removed (nothing changes then);
//! - **restarted**: a key that shapes its process changed
//!   ([`ServiceConfig::changes`]); its running dependents are stopped first and
//!   start again after it, as for `restart`; one that was failed starts again;
//! - **updated**: only how it is watched, restarted or stopped changed: the
//!   running service keeps its pid; a new probe takes over at once (already
//!   ready: its failures count towards `unhealthy`); a new dependency that is not
//!   at its condition restarts it instead, so that gating still holds;
//! - **unchanged**: untouched (same pid, same probe schedule).
//!
//! Changes are applied one at a time, in the order they arrive; one that comes
//! while an `up` is still starting services waits until that start is over
//! (ready or failed), and one that comes during a shutdown is refused. A change
//! answers once what it started is ready, or with the first failure among them
//! (which is left as it is: nothing else is undone).
//!
//! A service added at runtime is in no file: when the process that ran it dies
//! without a shutdown, the next `up` on the same state directory (and `ringmaster
//! down` with no instance running) stops what carries the project's tag under a
//! service name it does not know ([`crate::janitor::stop_orphans`]).
//!
//! A file reload ([`crate::Orchestrator::apply`]) owns the services that came
//! from a configuration; services added one by one and plugins are left alone by
//! it (a file that defines a service of the same name takes it over).
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::ServiceConfig;
use crate::plugin::PluginService;
use crate::text::{human_duration, Paint, Tone};

/// One service to add at runtime: a process service or a plugin.
#[derive(Clone, Debug)]
pub enum ServiceDef {
    Process(Box<ServiceConfig>),
    Plugin(Box<PluginService>),
}

impl ServiceDef {
    /// Its name.
    pub fn name(&self) -> &str {
        match self {
            ServiceDef::Process(c) => &c.name,
            ServiceDef::Plugin(p) => &p.name,
        }
    }

    /// The services it depends on.
    pub(crate) fn deps(&self) -> Vec<String> {
        let deps = match self {
            ServiceDef::Process(c) => &c.depends_on,
            ServiceDef::Plugin(p) => &p.depends_on,
        };
        deps.iter().map(|d| d.service.clone()).collect()
    }
}

impl From<ServiceConfig> for ServiceDef {
    fn from(c: ServiceConfig) -> Self {
        ServiceDef::Process(Box::new(c))
    }
}

impl From<PluginService> for ServiceDef {
    fn from(p: PluginService) -> Self {
        ServiceDef::Plugin(Box::new(p))
    }
}

/// What a change did to one service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Added,
    Removed,
    Restarted,
    Updated,
    Unchanged,
}

impl Action {
    /// `added`, `removed`, `restarted`, `updated`, `unchanged`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Added => "added",
            Action::Removed => "removed",
            Action::Restarted => "restarted",
            Action::Updated => "updated",
            Action::Unchanged => "unchanged",
        }
    }
}

/// One service in an [`ApplyReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceChange {
    pub name: String,
    pub action: Action,
    /// The keys that changed (restarted, updated).
    #[serde(default)]
    pub keys: Vec<String>,
    /// Why, when it is not its own change: `depends on `api`, which was
    /// restarted`; for an updated service that does not run: `applies at its
    /// next start`.
    #[serde(default)]
    pub because: Option<String>,
}

/// One key of `[settings]` that changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingChange {
    pub key: String,
    /// True when the running instance uses the new value from now on.
    pub applied: bool,
    /// How it applies, or why it needs a new `up`.
    pub note: String,
}

/// What a change did ([`crate::Orchestrator::apply`] and the one-service calls).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyReport {
    /// Every service the change looked at: in the new start order, the removed
    /// ones last.
    pub services: Vec<ServiceChange>,
    #[serde(default)]
    pub settings: Vec<SettingChange>,
    /// From the request to what it started being ready (or failed).
    pub elapsed: Duration,
    /// Set when a service it started failed (or a shutdown began meanwhile):
    /// the first failure. The rest of the change stands.
    #[serde(default)]
    pub failed: Option<String>,
    /// What the change would do ([`crate::Orchestrator::preview`]): nothing was changed.
    #[serde(default)]
    pub preview: bool,
}

impl ApplyReport {
    /// The services with this action.
    pub fn with(&self, action: Action) -> Vec<&str> {
        self.services
            .iter()
            .filter(|s| s.action == action)
            .map(|s| s.name.as_str())
            .collect()
    }

    /// True when nothing changed.
    pub fn is_noop(&self) -> bool {
        self.services.iter().all(|s| s.action == Action::Unchanged) && self.settings.is_empty()
    }

    /// The report as `ringmaster reload` prints it, coloured by `paint`: a
    /// verdict line, one line per service, one per changed setting.
    pub fn render(&self, paint: &dyn Paint) -> String {
        let mut out = String::new();
        if self.preview {
            out.push_str(if self.is_noop() {
                "nothing would change\n"
            } else {
                "would change (nothing was changed):\n"
            });
        } else {
            let verdict = match &self.failed {
                Some(why) => paint.paint(Tone::Bad, &format!("applied, but {why}")),
                None if self.is_noop() => "nothing changed".to_owned(),
                None => paint.paint(Tone::Good, "applied"),
            };
            out.push_str(&format!("{verdict} in {}\n", human_duration(self.elapsed)));
        }
        let width = crate::text::widest(self.services.iter().map(|s| s.name.as_str()));
        for s in &self.services {
            let tone = match s.action {
                Action::Unchanged => None,
                Action::Removed | Action::Restarted => Some(Tone::Warning),
                Action::Added | Action::Updated => Some(Tone::Good),
            };
            let mut what = match tone {
                Some(t) => paint.paint(t, s.action.as_str()),
                None => s.action.as_str().to_owned(),
            };
            let mut why = Vec::new();
            if !s.keys.is_empty() {
                why.push(format!("{} changed", s.keys.join(", ")));
            }
            if let Some(b) = &s.because {
                why.push(b.clone());
            }
            if !why.is_empty() {
                what.push_str(&format!(" ({})", why.join("; ")));
            }
            out.push_str(&format!("  {:width$}  {what}\n", s.name));
        }
        for c in &self.settings {
            let what = if c.applied {
                format!("applied ({})", c.note)
            } else {
                paint.paint(Tone::Warning, &format!("not applied: {}", c.note))
            };
            out.push_str(&format!("  settings.{}  {what}\n", c.key));
        }
        out
    }
}

/// The report as `ringmaster reload` prints it (without colour).
impl std::fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(&crate::text::Plain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_names_each_action_and_why() {
        let r = ApplyReport {
            services: vec![
                ServiceChange {
                    name: "api".into(),
                    action: Action::Restarted,
                    keys: vec!["command".into()],
                    because: None,
                },
                ServiceChange {
                    name: "web".into(),
                    action: Action::Restarted,
                    keys: vec![],
                    because: Some("depends on `api`, which restarts".into()),
                },
                ServiceChange {
                    name: "db".into(),
                    action: Action::Unchanged,
                    keys: vec![],
                    because: None,
                },
            ],
            settings: vec![SettingChange {
                key: "metrics".into(),
                applied: false,
                note: "needs a new `up`".into(),
            }],
            elapsed: Duration::from_millis(420),
            failed: None,
            preview: false,
        };
        let text = r.to_string();
        assert!(text.starts_with("applied in 420ms\n"), "{text}");
        assert!(
            text.contains("  api  restarted (command changed)\n"),
            "{text}"
        );
        assert!(
            text.contains("  web  restarted (depends on `api`, which restarts)\n"),
            "{text}"
        );
        assert!(text.contains("  db   unchanged\n"), "{text}");
        assert!(
            text.contains("settings.metrics  not applied: needs a new `up`"),
            "{text}"
        );
        assert!(!r.is_noop());
    }
}
