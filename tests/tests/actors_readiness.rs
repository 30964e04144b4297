//! Readiness of slow starters, with real processes and real HTTP: a dependency
//! that binds its port late and then holds its first request (a reloader whose
//! worker is still starting), and one that answers 503 before 200. The dependent
//! spawns only after the dependency's first healthy answer; the status says what
//! the dependency is waiting on meanwhile; a probe that was accepted waits for its
//! answer instead of timing out and asking again. Order and state only: the
//! speed is the `gating` bench's.
#![cfg(unix)]

mod actors_support;

use std::time::Duration;

use actors_support::*;
use ringmaster::messages::EventKind;
use ringmaster::{Options, Orchestrator, ServiceState};
use ringmaster_tests::free_port;

/// The health text of `name` in `orch`'s status.
async fn health_of(orch: &Orchestrator, name: &str) -> Option<String> {
    orch.status_brief()
        .await
        .ok()?
        .into_iter()
        .find(|s| s.name == name)?
        .health
}

/// The `answered <status>` lines of `service`, in order.
fn answers(seen: &Recording, service: &str) -> Vec<String> {
    seen.lines()
        .into_iter()
        .filter(|l| l.service == service)
        .filter_map(|l| l.line.strip_prefix("answered ").map(str::to_owned))
        .collect()
}

#[actix_rt::test]
async fn a_late_binder_that_holds_its_first_request_is_waited_for_not_asked_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (api, web) = (free_port(), free_port());
    let config = config(
        dir.path(),
        vec![
            // Binds after 300 ms, holds every request until 2 s after its start.
            svc(
                "api",
                &format!("--ready-after 300 --listen {api} --answer-after 2000"),
            )
            .port(api)
            .health_http(format!("http://127.0.0.1:{api}/health"))
            .health_timeout(Duration::from_millis(200)),
            dependent("web", "api", web),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("orchestrator starts");
    let seen = record(&orch, None);
    let up = up_in_background(&orch);

    // While the request is held, the status says so (once the probe's 200 ms
    // timeout has passed) and web has not started.
    let said = std::rc::Rc::new(std::cell::RefCell::new(None));
    until_async("api's status to say it waits for an answer", LONG, || {
        let orch = orch.clone();
        let said = said.clone();
        async move {
            let h = health_of(&orch, "api").await;
            let waiting = h.as_deref().is_some_and(|h| h.contains("no answer yet"));
            *said.borrow_mut() = h;
            waiting
        }
    })
    .await;
    let said = said.borrow().clone().expect("a health text");
    assert!(
        said.starts_with(&format!(
            "failing: GET http://127.0.0.1:{api}/health: connected"
        )),
        "{said}"
    );
    if seen.first("api", is_ready).is_none() {
        assert!(seen.first("web", is_spawned).is_none());
    }

    timed(up).await.expect("joined").expect("up succeeds");

    // One request was sent before api was ready, and it was the one answered:
    // the probe waited instead of timing out after 200 ms and asking again.
    assert_eq!(answers(&seen, "api"), vec!["200".to_owned()]);
    let i = |svc: &str, f: fn(&EventKind) -> bool| seen.index(svc, f).expect("event seen");
    assert!(i("api", is_ready) < i("web", is_spawned));
    for s in orch.status().await.expect("status") {
        assert_eq!(s.state, ServiceState::Ready, "{s:?}");
    }
    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    assert!(port_free(api) && port_free(web));
}

#[actix_rt::test]
async fn a_dependency_answering_503_before_200_gates_on_the_200() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (api, web) = (free_port(), free_port());
    let config = config(
        dir.path(),
        vec![
            svc(
                "api",
                &format!("--listen {api} --answer-after 1200 --early-status 503"),
            )
            .port(api)
            .health_http(format!("http://127.0.0.1:{api}/health")),
            dependent("web", "api", web),
        ],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("orchestrator starts");
    let seen = record(&orch, None);
    let up = up_in_background(&orch);
    until_async("api's status to show the 503", LONG, || {
        let orch = orch.clone();
        async move {
            health_of(&orch, "api").await.is_some_and(|h| {
                h == format!("failing: GET http://127.0.0.1:{api}/health: HTTP 503")
            })
        }
    })
    .await;
    timed(up).await.expect("joined").expect("up succeeds");

    // 503s, then one 200, and web spawned after api's ready, which came from the 200.
    let said = answers(&seen, "api");
    let (last, before) = said.split_last().expect("answers");
    assert_eq!(last, "200", "{said:?}");
    assert!(!before.is_empty(), "{said:?}");
    assert!(before.iter().all(|s| s == "503"), "{said:?}");
    let i = |svc: &str, f: fn(&EventKind) -> bool| seen.index(svc, f).expect("event seen");
    assert!(i("api", is_ready) < i("web", is_spawned));
    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
}

#[actix_rt::test]
async fn an_exec_probe_runs_once_the_services_port_accepts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let api = free_port();
    let marker = dir.path().join("probed");
    // The probe leaves a mark each time it runs and fails until the port is
    // bound: it must not run before the port accepts, so the mark is written
    // only by runs after the bind, and the first of them passes.
    let probe = format!(
        "echo run >> '{m}' && exec 3<>/dev/tcp/127.0.0.1/{api}",
        m = marker.display()
    );
    let config = config(
        dir.path(),
        vec![svc("api", &format!("--ready-after 500 --listen {api}"))
            .port(api)
            .health_exec(format!("bash -c \"{probe}\""))],
    );
    let orch = Orchestrator::start(config, Options::default()).expect("orchestrator starts");
    timed(orch.up(None)).await.expect("up succeeds");
    let runs = std::fs::read_to_string(&marker).unwrap_or_default();
    assert_eq!(runs.lines().count(), 1, "the exec probe ran: {runs:?}");
    let report = timed(orch.shutdown(Duration::from_secs(20)))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
}
