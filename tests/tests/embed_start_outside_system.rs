//! `Orchestrator::start` outside an actix System returns an error and touches
//! nothing: no state directory is created and no lock is taken, so an
//! orchestrator started properly afterwards on the same state directory gets it.
mod actors_support;

use std::time::Duration;

use actors_support::*;
use ringmaster::{Error, Options, Orchestrator};

#[test]
fn start_outside_a_system_is_an_error_that_touches_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(dir.path(), vec![svc("web", "--listen 0").health_tcp(1)]);
    let state_dir = config.settings.state_dir.clone();

    // No System at all.
    match Orchestrator::start(config.clone(), Options::default()) {
        Err(e @ Error::NoSystem) => assert!(e.to_string().contains("actix System"), "{e}"),
        Err(e) => panic!("the wrong error: {e}"),
        Ok(_) => panic!("started outside a System"),
    }
    assert!(
        !state_dir.exists(),
        "nothing was created: {}",
        state_dir.display()
    );

    // A System exists, but this is not inside its block_on.
    let system = actix::System::new();
    assert!(matches!(
        Orchestrator::start(config.clone(), Options::default()),
        Err(Error::NoSystem)
    ));
    assert!(!state_dir.exists());

    // Inside it, the same configuration starts: the lock was never taken.
    system.block_on(async move {
        let orch =
            Orchestrator::start(config, Options::default()).expect("starts inside the System");
        assert!(state_dir.join(ringmaster_os::lock::LOCK_FILE).exists());
        let report = timed(orch.shutdown(Duration::from_secs(5)))
            .await
            .expect("shutdown");
        assert!(report.clean(), "{report}");
    });
}
