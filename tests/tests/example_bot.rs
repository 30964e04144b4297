//! The embedded bot example (`examples/bot.rs`), driven through its stdin as a chat:
//! it starts the dashboard, answers `status`, `restart api` and `logs frontend`, and
//! on `quit` stops everything, exits 0 and leaves every port free.
#![cfg(unix)]

mod example_support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use example_support::{
    dashboard_config, example_bin, get, page_server_pid, port_free, two_free_ports, wait_exit,
    Output,
};
use ringmaster_examples::ApiStats;
use ringmaster_tests::{pid_alive, wait_for, PidGuard};

const TIMEOUT: Duration = Duration::from_secs(60);

fn stats(port: u16) -> ApiStats {
    let r = get(port, "/api/stats").expect("GET /api/stats answers");
    serde_json::from_str(&r.body).expect("/api/stats is JSON stats")
}

/// Waits until a line after `mark` satisfies `pred`; returns it.
fn wait_line(out: &Output, mark: usize, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let mut found = None;
    wait_for(what, TIMEOUT, || {
        found = out.since(mark).into_iter().find(|l| pred(l));
        found.is_some()
    });
    found.expect("wait_for returned, so a line was found")
}

#[test]
fn bot_answers_chat_commands_and_leaves_nothing_on_quit() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (api_port, web_port) = two_free_ports();
    let config = dir.path().join("ringmaster.toml");
    std::fs::write(&config, dashboard_config(api_port, web_port)).expect("config written");
    let pids = PidGuard::new();

    let mut bot = Command::new(example_bin("examples/bot"))
        .arg(&config)
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the bot starts");
    pids.add(bot.id());
    let out = Output::default();
    out.collect(bot.stdout.take().expect("piped"), "bot | ");
    out.collect(bot.stderr.take().expect("piped"), "bot ! ");
    let mut chat = bot.stdin.take().expect("piped");
    let mut say = |line: &str| -> usize {
        let mark = out.len();
        writeln!(chat, "{line}").expect("the bot reads its stdin");
        chat.flush().expect("flush");
        mark
    };

    wait_line(&out, 0, "the bot to report every service ready", |l| {
        l.starts_with("bot: every service is ready")
    });
    // The OS agrees: both answer.
    let before = stats(api_port);
    let page = get(web_port, "/").expect("the frontend answers");
    let server = page_server_pid(&page.body).expect("the page names its server");
    for pid in [before.worker_pid, server] {
        pids.add(pid);
    }
    pids.add(before.reloader_pid.expect("the API has a reloader"));

    // status: both ready, with their pids.
    let mark = say("status");
    let api_line = wait_line(&out, mark, "status of api", |l| l.starts_with("api: "));
    let web_line = wait_line(&out, mark, "status of frontend", |l| {
        l.starts_with("frontend: ")
    });
    assert!(api_line.starts_with("api: ready"), "{api_line}");
    assert!(web_line.starts_with("frontend: ready"), "{web_line}");
    assert!(api_line.contains(&format!("port {api_port}")), "{api_line}");

    // restart api: ok, and a new API process answers afterwards.
    let mark = say("restart api");
    let answer = wait_line(&out, mark, "the answer to restart api", |l| {
        l.starts_with("restarted api") || l.starts_with("restart api failed")
    });
    assert!(answer.starts_with("restarted api"), "{answer}");
    wait_for("the old API worker to be gone", TIMEOUT, || {
        !pid_alive(before.worker_pid)
    });
    wait_for("the API to answer again", TIMEOUT, || {
        get(api_port, "/health").is_some_and(|r| r.status == 200)
    });
    let after = stats(api_port);
    assert_ne!(after.worker_pid, before.worker_pid, "a new worker answers");
    pids.add(after.worker_pid);
    pids.add(after.reloader_pid.expect("the API has a reloader"));
    let mut ready_again = false;
    wait_for("status to show api ready again", TIMEOUT, || {
        let mark = say("status");
        let line = wait_line(&out, mark, "status of api", |l| l.starts_with("api: "));
        ready_again = line.starts_with("api: ready");
        ready_again
    });

    // logs frontend: the last lines of the frontend's output.
    let mark = say("logs frontend");
    let head = wait_line(&out, mark, "the answer to logs frontend", |l| {
        l.starts_with("last ") && l.ends_with(" lines of frontend:")
    });
    assert!(
        !head.starts_with("last 0 "),
        "the frontend printed something: {head}"
    );
    wait_line(&out, mark, "a frontend log line", |l| {
        l.starts_with("  ") && l.contains("demo-frontend")
    });

    // add a helper at runtime, see it answer and in the status; remove it: its
    // process is gone and its port free, the rest untouched.
    let helper_port = ringmaster_tests::free_port();
    let fake = ringmaster_tests::fake_service();
    let mark = say(&format!(
        "add helper {helper_port} {} --listen {helper_port}",
        fake.display()
    ));
    let answer = wait_line(&out, mark, "the answer to add helper", |l| {
        l.starts_with("added helper") || l.starts_with("add helper failed")
    });
    assert!(answer.starts_with("added helper: ready"), "{answer}");
    assert!(!port_free(helper_port), "the helper listens");
    let helper_pid = ringmaster_os::listeners(helper_port)
        .expect("listeners")
        .first()
        .map(|l| l.pid)
        .expect("a holder");
    pids.add(helper_pid);
    let mark = say("status");
    let line = wait_line(&out, mark, "status of helper", |l| {
        l.starts_with("helper: ")
    });
    assert!(line.starts_with("helper: ready"), "{line}");
    let mark = say("remove helper");
    let answer = wait_line(&out, mark, "the answer to remove helper", |l| {
        l.contains("helper") && (l.starts_with("removed") || l.starts_with("remove"))
    });
    assert_eq!(answer, "removed helper");
    assert!(!pid_alive(helper_pid), "the helper's process is gone");
    assert!(port_free(helper_port), "its port is free");
    assert!(get(web_port, "/").is_some(), "the frontend still answers");

    // quit: the cascade runs, the bot exits 0 and nothing is left.
    say("quit");
    let code = wait_exit(&mut bot, TIMEOUT);
    assert_eq!(code, Some(0), "the bot exits 0:\n{}", out.text());
    for pid in [
        before.worker_pid,
        after.worker_pid,
        server,
        after.reloader_pid.unwrap_or(0),
    ] {
        assert!(!pid_alive(pid), "pid {pid} is gone after quit");
    }
    assert!(port_free(api_port), "port {api_port} is free after quit");
    assert!(port_free(web_port), "port {web_port} is free after quit");
    assert!(
        out.lines()
            .iter()
            .any(|l| l.starts_with("bot: shutdown clean")),
        "the bot reports a clean shutdown:\n{}",
        out.text()
    );
}
