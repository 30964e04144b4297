//! `stop.command` and `start_window`: defaults, errors, the builder.
use super::*;

#[test]
fn stop_command_and_start_window_load_with_their_defaults() {
    let c =
        Config::load(fixture("stop_command_start_window.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.settings.start_window, Duration::from_millis(250));
    let redis = &c.services["redis"];
    assert_eq!(
        redis.stop.command.as_deref(),
        Some("redis-cli -p 6390 shutdown"),
        "expanded from the service's env"
    );
    assert_eq!(redis.stop.timeout, Duration::from_secs(5));
    assert_eq!(redis.stop.signal, Signal::Term);
    assert_eq!(
        redis.start_window,
        Duration::from_millis(250),
        "the settings' default"
    );
    assert_eq!(c.services["job"].start_window, Duration::ZERO);
    assert_eq!(c.services["job"].stop.command, None);
    assert_eq!(c.services["slow"].start_window, Duration::from_secs(3));
    // Without [settings] start_window: 1 s.
    let example = Config::load(fixture("example.toml")).unwrap();
    assert_eq!(example.settings.start_window, Duration::from_secs(1));
    assert_eq!(example.services["api"].stop.command, None);
}

#[test]
fn stop_command_and_start_window_errors() {
    assert_errors(
        "bad_stop_command_start_window.toml",
        &[
            (3, 20, "service `api` has an empty stop command"),
            (
                5,
                16,
                "service `api`: start_window applies only to a service without a health probe (the probe decides when it is ready)",
            ),
            (
                9,
                16,
                "service `web` start_window: invalid duration \"soon\": expected a number at \"soon\" (e.g. \"500ms\", \"30s\", \"1m30s\")",
            ),
            (
                10,
                20,
                "service `web` stop: `command`: invalid type: integer `3`, expected a string",
            ),
        ],
    );
}

#[test]
fn builder_sets_stop_command_and_start_window() {
    let c = Config::builder("/srv/app")
        .start_window(Duration::from_millis(300))
        .service(
            ServiceConfigBuilder::new("nginx", "nginx -g 'daemon off;'")
                .stop_command("nginx -s quit")
                .stop_timeout(Duration::from_secs(4)),
        )
        .service(ServiceConfigBuilder::new("job", "true").start_window(Duration::ZERO))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.services["nginx"].stop.command.as_deref(),
        Some("nginx -s quit")
    );
    assert_eq!(c.services["nginx"].start_window, Duration::from_millis(300));
    assert_eq!(c.services["job"].start_window, Duration::ZERO);
    let errors = Config::builder("/srv/app")
        .service(
            ServiceConfigBuilder::new("api", "run")
                .health_tcp(8000)
                .start_window(Duration::from_secs(2))
                .stop_command(" "),
        )
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("<builder>: service `api`: start_window applies only to a service without a health probe"),
        "{errors}"
    );
    assert!(
        errors.contains("<builder>: service `api` has an empty stop command"),
        "{errors}"
    );
}
