//! Reload against restart: the time from `ringmaster reload` to the changed
//! service ready again, beside a full `ringmaster down` + `ringmaster up -d` of
//! the same stack, on the demo stack's shape (an API that is a reloader and a
//! worker sharing its port, bound after 500 ms like `uvicorn --reload` starting;
//! a frontend gated on it, a launcher → `sh -c` → a renamed server) with the
//! demo programs built, not run through `cargo run`.
//!
//! Rows, each `BENCH_ROUNDS` times (default 10), alternating:
//! - `reload, frontend changed`: its environment changes; only it restarts;
//! - `reload, api changed`: its environment changes; it and the frontend (its
//!   dependent) restart;
//! - `reload, nothing changed`: the cost of the round trip itself;
//! - `down + up -d`: the whole stack stopped and started again.
//!
//! `reload` answers the moment what it started is ready; `up -d` polls the
//! instance every 50 ms, so its figure may carry up to 50 ms of polling.
//! Run: `cargo build --release -p ringmaster-cli -p ringmaster-examples --bins &&
//! cargo bench -p ringmaster-tests --bench reload`.
use std::time::Duration;

use ringmaster_tests::{built_path, free_port, run_ringmaster};

fn config(api: u16, web: u16, api_round: u32, web_round: u32) -> String {
    let demo_api = built_path("demo-api");
    let demo_web = built_path("demo-frontend");
    format!(
        r#"[settings]
shutdown_timeout = "15s"

[services.api]
command = "'{}' --port {api} --startup-delay 500"
env = {{ ROUND = "{api_round}" }}
port = {api}
allow = ["demo-api"]
health = {{ http = "http://127.0.0.1:{api}/health", interval = "5s" }}
stop = {{ timeout = "5s" }}

[services.frontend]
command = "'{}' --port {web} --api http://127.0.0.1:{api}"
env = {{ ROUND = "{web_round}" }}
port = {web}
allow = ["demo-frontend", "demo-frontend-server"]
depends_on = ["api"]
health = {{ http = "http://127.0.0.1:{web}/", interval = "10s" }}
stop = {{ timeout = "5s" }}
"#,
        demo_api.display(),
        demo_web.display()
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    for name in ["ringmaster", "demo-api", "demo-frontend"] {
        assert!(
            built_path(name).exists(),
            "{} is not built: cargo build --release -p ringmaster-cli -p ringmaster-examples --bins",
            built_path(name).display()
        );
    }
    let rounds: u32 = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().expect("temp dir");
    let (api, web) = (free_port(), free_port());
    let file = dir.path().join("ringmaster.toml");
    let (mut api_round, mut web_round) = (0, 0);
    std::fs::write(&file, config(api, web, api_round, web_round)).expect("config");
    run_ringmaster(dir.path(), &["up", "-d"]);

    let rows = [
        "reload, frontend changed",
        "reload, api changed",
        "reload, nothing changed",
        "down + up -d",
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    for _ in 0..rounds {
        web_round += 1;
        std::fs::write(&file, config(api, web, api_round, web_round)).expect("config");
        times[0].push(ms(run_ringmaster(dir.path(), &["reload"])));
        api_round += 1;
        std::fs::write(&file, config(api, web, api_round, web_round)).expect("config");
        times[1].push(ms(run_ringmaster(dir.path(), &["reload"])));
        times[2].push(ms(run_ringmaster(dir.path(), &["reload"])));
        let down = run_ringmaster(dir.path(), &["down"]);
        let up = run_ringmaster(dir.path(), &["up", "-d"]);
        times[3].push(ms(down + up));
    }
    run_ringmaster(dir.path(), &["down"]);

    let full = {
        let mut t = times[3].clone();
        t.sort_by(f64::total_cmp);
        quantile(&t, 0.5)
    };
    println!("| what ({rounds} rounds) | median | p95 | max | median ÷ down + up |");
    println!("|---|---:|---:|---:|---:|");
    for (row, t) in rows.iter().zip(&mut times) {
        t.sort_by(f64::total_cmp);
        let median = quantile(t, 0.5);
        println!(
            "| {row} | {median:.0} ms | {:.0} ms | {:.0} ms | {:.2} |",
            quantile(t, 0.95),
            t[t.len() - 1],
            median / full
        );
    }
}
