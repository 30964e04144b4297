//! `ringmaster top`: driven in a real pseudo-terminal. tmux runs it (on a private
//! server socket) in a 120×30 window while a two-service stack runs; the test
//! reads the screen with `capture-pane`, presses `r` on the selected service, sees
//! its pid change in `status --json` and on the screen, presses `q`, and finds the
//! terminal restored: the alternate screen left, the cursor shown, the tty back in
//! canonical mode with echo. Also: `top --once` prints both services, `top` with
//! stdout not a terminal exits 2, and with no instance running exits 1.
//!
//! Skipped, with a note, when tmux is not installed (`.ci/run` installs it).
#![cfg(unix)]

mod cli_support;

use std::process::{Command as StdCommand, Output};

use cli_support::*;
use ringmaster_tests::{bin_path, free_port, wait_for};

/// A tmux server of this test's own, with one session running a command in the
/// project folder; killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// True when `tmux` can be run.
    fn available() -> bool {
        StdCommand::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// `tmux new-session -d -x 120 -y 30 COMMAND` in `p`'s folder.
    fn start(p: &Project, name: &str, command: &str) -> Tmux {
        let tmux = Tmux {
            socket: format!("ringmaster-top-{}-{name}", std::process::id()),
        };
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "30",
            "-c",
            &p.path().display().to_string(),
            command,
        ]);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            text(&out.stderr)
        );
        tmux
    }

    /// `tmux -L SOCKET ARGS`, with the environment the CLI tests give ringmaster.
    fn run(&self, args: &[&str]) -> Output {
        StdCommand::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .output()
            .expect("tmux runs")
    }

    /// The visible screen, as text.
    fn screen(&self) -> String {
        text(&self.run(&["capture-pane", "-p"]).stdout)
    }

    /// A pane variable (`#{alternate_on}`, `#{cursor_flag}`).
    fn pane(&self, format: &str) -> String {
        text(&self.run(&["display-message", "-p", format]).stdout)
            .trim()
            .to_string()
    }

    /// Types `key` (a tmux key name: `r`, `q`, `Down`).
    fn press(&self, key: &str) {
        let out = self.run(&["send-keys", key]);
        assert!(
            out.status.success(),
            "tmux send-keys: {}",
            text(&out.stderr)
        );
    }

    /// Waits until the screen satisfies `cond`; returns it.
    fn wait_screen(&self, what: &str, mut cond: impl FnMut(&str) -> bool) -> String {
        let mut last = String::new();
        let mut seen = false;
        wait_for(what, LONG, || {
            last = self.screen();
            seen = cond(&last);
            seen
        });
        assert!(seen);
        last
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// The table row of `name` on a screen: its cells (the selection mark left out).
fn row<'a>(screen: &'a str, name: &str) -> Option<Vec<&'a str>> {
    screen
        .lines()
        .map(|l| {
            l.trim_start_matches('▶')
                .split_whitespace()
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.first() == Some(&name))
}

/// The cell of `name`'s row under the column `column` (by its position in the header).
fn cell(screen: &str, name: &str, column: &str) -> Option<String> {
    let header = row(screen, "SERVICE")?;
    let at = header.iter().position(|c| *c == column)?;
    row(screen, name)?.get(at).map(|c| c.to_string())
}

#[test]
fn top_follows_the_stack_restarts_with_r_and_restores_the_terminal() {
    let (api, web) = (free_port(), free_port());
    let p = Project::with_config(&two_services(api, web));
    let ringmaster = bin_path("ringmaster");

    // No instance: exit 1, saying so (also in a terminal, below).
    p.expect_no_instance(&["top", "--once"]);

    p.up_detached();
    let status = p.wait_ready(&["api", "web"]);
    p.guard_tagged();
    let api_pid = pid_of(&status, "api");

    // --once: one plain frame with both services, exit 0.
    let out = p.rm().args(["top", "--once"]).output().expect("top --once");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let frame = text(&out.stdout);
    assert!(!has_escape(&frame), "{frame}");
    assert!(frame.lines().all(|l| l.chars().count() <= 100), "{frame}");
    for name in ["api", "web"] {
        assert_eq!(
            cell(&frame, name, "STATE").as_deref(),
            Some("ready"),
            "{frame}"
        );
    }
    assert_eq!(
        cell(&frame, "api", "PID"),
        Some(api_pid.to_string()),
        "{frame}"
    );

    // Not a terminal, no --once: exit 2, pointing at `status`.
    let out = p.rm().arg("top").output().expect("top");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("ringmaster top needs a terminal; use `ringmaster status`"));

    if !Tmux::available() {
        eprintln!("note: tmux is not installed; the terminal part of this test is skipped");
        return;
    }
    // After top: its exit code, then the tty's mode (raw mode would show
    // `-icanon -echo`), and the pane stays for the test to read.
    let command = format!(
        "sh -c '{} top; echo EXITED $?; stty -a | tr \" ;\" \"\\n\\n\" | grep -x -e -icanon -e icanon -e -echo -e echo | tr \"\\n\" \" \"; echo; sleep 120'",
        ringmaster.display()
    );
    let tmux = Tmux::start(&p, "live", &command);
    let screen = tmux.wait_screen("both services ready on the screen", |s| {
        cell(s, "api", "STATE").as_deref() == Some("ready")
            && cell(s, "web", "STATE").as_deref() == Some("ready")
    });
    assert_eq!(
        tmux.pane("#{alternate_on}"),
        "1",
        "top runs on the alternate screen"
    );
    assert!(
        screen.contains("▶ api"),
        "the first row is selected:\n{screen}"
    );
    assert_eq!(
        cell(&screen, "api", "PID"),
        Some(api_pid.to_string()),
        "{screen}"
    );
    // The selected service's output, followed below the table.
    tmux.wait_screen("api's output in the log pane", |s| {
        s.contains(&format!("listening {api}"))
    });

    // `r` restarts the selected service: a new pid in status and on the screen.
    tmux.press("r");
    let mut new_pid = 0;
    wait_for("api restarted with a new pid", LONG, || {
        let status = p.status().unwrap_or_default();
        let Some(entry) = status.iter().find(|e| e["name"] == "api") else {
            return false;
        };
        new_pid = entry["pid"].as_u64().unwrap_or(0) as u32;
        entry["state"] == "ready" && new_pid != 0 && new_pid != api_pid
    });
    p.guard_tagged();
    let screen = tmux.wait_screen("the new pid on the screen", |s| {
        cell(s, "api", "PID") == Some(new_pid.to_string())
            && cell(s, "api", "STATE").as_deref() == Some("ready")
    });
    tmux.wait_screen("the status line saying so", |s| s.contains("api restarted"));
    assert_eq!(
        cell(&screen, "api", "RESTARTS").as_deref(),
        Some("1"),
        "{screen}"
    );

    // `q`: top exits 0 and the terminal is as it was.
    tmux.press("q");
    let screen = tmux.wait_screen("top to exit", |s| s.contains("EXITED"));
    assert!(screen.contains("EXITED 0"), "{screen}");
    assert!(!screen.contains("SERVICE"), "the table is gone:\n{screen}");
    assert_eq!(
        tmux.pane("#{alternate_on}"),
        "0",
        "the alternate screen is left"
    );
    assert_eq!(tmux.pane("#{cursor_flag}"), "1", "the cursor is shown");
    let mode = tmux.wait_screen("the tty's mode", |s| s.contains("icanon"));
    assert!(
        mode.contains("icanon echo") && !mode.contains("-icanon"),
        "raw mode is off:\n{mode}"
    );
    drop(tmux);

    // SIGTERM (as `kill` sends): top ends as for `q`, the terminal put back.
    // The inner shell writes its pid, then becomes top (exec).
    p.write(
        "run-top.sh",
        &format!(
            "sh -c 'echo $$ > top.pid; exec {} top'\necho EXITED $?\n\
             stty -a | tr ' ;' '\\n\\n' | grep -x -e -icanon -e icanon -e -echo -e echo | tr '\\n' ' '\n\
             echo\nsleep 120\n",
            ringmaster.display()
        ),
    );
    let command = "sh ./run-top.sh".to_owned();
    let tmux = Tmux::start(&p, "term", &command);
    tmux.wait_screen("top drawn", |s| {
        cell(s, "api", "STATE").as_deref() == Some("ready")
    });
    let pid: i32 = std::fs::read_to_string(p.path().join("top.pid"))
        .expect("top's pid")
        .trim()
        .parse()
        .expect("a pid");
    // SAFETY: kill(2) on the pid of the top this test started.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let screen = tmux.wait_screen("top to exit", |s| s.contains("EXITED"));
    assert!(screen.contains("EXITED 0"), "{screen}");
    assert_eq!(
        tmux.pane("#{alternate_on}"),
        "0",
        "the alternate screen is left"
    );
    let mode = tmux.wait_screen("the tty's mode", |s| s.contains("icanon"));
    assert!(
        mode.contains("icanon echo") && !mode.contains("-icanon"),
        "raw mode is off:\n{mode}"
    );
    drop(tmux);

    // In a terminal with no instance: it says so and exits 1, the terminal untouched.
    p.rm().arg("down").assert().code(0);
    let command = format!(
        "sh -c '{} top; echo EXITED $?; sleep 120'",
        ringmaster.display()
    );
    let tmux = Tmux::start(&p, "none", &command);
    let screen = tmux.wait_screen("top to exit", |s| s.contains("EXITED"));
    assert!(screen.contains("no ringmaster is running"), "{screen}");
    assert!(screen.contains("EXITED 1"), "{screen}");
}
