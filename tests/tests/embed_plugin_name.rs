//! A plugin cannot hang `up` by naming another service. Its `Start` carries a
//! reporter bound to its registered name; one that still sends raw events under a
//! wrong name (straight to the Supervisor) is logged as a warning naming that
//! name, and `up` fails at the plugin's readiness deadline instead of waiting
//! forever.
mod actors_support;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actors_support::*;
use ringmaster::messages::{EventKind, ServiceEvent, Start, Stop};
use ringmaster::plugin::PluginService;
use ringmaster::{Error, Options, Orchestrator, ServiceState, StopReport};

/// A tracing writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }
}

/// A plugin written against the old protocol: it repeats its name in every event
/// it sends to the Supervisor, and gets it wrong (`cahce` for `cache`).
struct Misnamed {
    supervisor: Arc<Mutex<Option<Recipient<ServiceEvent>>>>,
    started_as: Arc<Mutex<Option<String>>>,
    stopped: Arc<AtomicBool>,
}

impl Actor for Misnamed {
    type Context = Context<Self>;
}

impl Handler<Start> for Misnamed {
    type Result = ();
    fn handle(&mut self, start: Start, _: &mut Context<Self>) {
        *self.started_as.lock().expect("lock") = Some(start.name.clone());
        let to = self.supervisor.lock().expect("lock").clone();
        if let Some(to) = to {
            for kind in [EventKind::Spawned { pid: None }, EventKind::Ready] {
                to.do_send(ServiceEvent {
                    name: "cahce".into(),
                    kind,
                });
            }
        }
    }
}

impl Handler<Stop> for Misnamed {
    type Result = MessageResult<Stop>;
    fn handle(&mut self, _: Stop, _: &mut Context<Self>) -> Self::Result {
        self.stopped.store(true, Ordering::SeqCst);
        MessageResult(StopReport::default())
    }
}

#[actix_rt::test]
async fn events_under_another_name_are_a_warning_and_up_fails_at_the_deadline() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _log = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().expect("temp dir");
    let supervisor = Arc::new(Mutex::new(None));
    let started_as = Arc::new(Mutex::new(None));
    let stopped = Arc::new(AtomicBool::new(false));
    let actor = Misnamed {
        supervisor: supervisor.clone(),
        started_as: started_as.clone(),
        stopped: stopped.clone(),
    }
    .start();
    let deadline = Duration::from_secs(2);
    let plugin = PluginService::from_addr("cache", &actor).ready_timeout(deadline);
    let orch =
        Orchestrator::start_with(config(dir.path(), vec![]), Options::default(), vec![plugin])
            .expect("starts");
    *supervisor.lock().expect("lock") = Some(orch.supervisor().clone().recipient());
    let seen = record(&orch, None);

    let began = Instant::now();
    let result = timed(orch.up(None)).await;
    let took = began.elapsed();
    match &result {
        Err(Error::ServiceFailed { service, reason }) => {
            assert_eq!(service, "cache");
            assert!(
                reason.contains("not ready within 2.0s")
                    && reason.contains("reported neither Spawned nor Ready"),
                "{reason}"
            );
        }
        other => panic!("up fails for cache: {other:?}"),
    }
    assert!(took >= deadline, "not before the deadline: {took:?}");
    assert_eq!(started_as.lock().expect("lock").as_deref(), Some("cache"));

    // The warning names the unknown name and the event.
    let text = log.text();
    assert!(
        text.contains("WARN")
            && text.contains("an event for `cahce`, which is no service of this orchestrator")
            && text.contains("ready"),
        "{text}"
    );
    // The plugin was stopped (it had been started), and it is failed.
    assert!(stopped.load(Ordering::SeqCst), "the plugin got Stop");
    let status = timed(orch.status()).await.expect("status");
    let cache = status.iter().find(|s| s.name == "cache").expect("listed");
    assert_eq!(cache.state, ServiceState::Failed, "{cache:?}");
    // Subscribers heard no event under the wrong name.
    assert!(seen.events().iter().all(|s| s.event.name != "cahce"));
    assert!(!seen.of("cache", is_failed).is_empty());

    let report = timed(orch.shutdown(Duration::from_secs(10)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report}");
}
