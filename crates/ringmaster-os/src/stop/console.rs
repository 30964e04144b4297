//! Windows' graceful stop for console programs: CTRL_BREAK to the service's
//! console process group. What is decided here is only the order of the console
//! calls (behind [`Console`], so a test records it on any OS); the calls
//! themselves are in `stop/windows.rs`.
//!
//! Windows delivers a console control event only to processes attached to the
//! caller's console, and only by process group: every service's root is started
//! with `CREATE_NEW_PROCESS_GROUP`, so its pid names a group holding the service's
//! processes and nobody else (neither ringmaster nor the user's shell is ever in
//! it: a group is inherited downwards only).
//! - The root shares our console (a foreground `up`, or `up -d`, which runs with a
//!   hidden console of its own): the event is sent to its group directly.
//! - We have no console (an embedding program without one): the service was given
//!   a hidden console of its own when it was spawned; we attach to it for the
//!   call and detach at once. Every stop runs on one thread, so two attaches never
//!   overlap.
//! - We have a console and the root is on another one (a service started while an
//!   embedding program had no console, stopped after it got one): leaving our
//!   console would cut the user's terminal off, so no event is sent, and
//!   `taskkill` and the deadline stop it. (A service adopted from an earlier
//!   instance after a crash gets no event at all: its stop names no group.)
//!
//! Group 0 means "every process on the console", ourselves and the user's shell
//! included: it is never sent, nor are the system's pids (below 5).
//!
//! `CTRL_C_EVENT` is never used: Windows cannot address it to one process group
//! (the call succeeds and nobody in the group receives it), and a process started
//! with `CREATE_NEW_PROCESS_GROUP` ignores Ctrl-C anyway. Every graceful stop
//! signal (`TERM`, `INT`, `BREAK`, ...) is therefore CTRL_BREAK, which no process
//! can mask: Python raises it as `SIGBREAK` (uvicorn shuts down on it), Node as
//! `SIGBREAK` (which ends it unless handled), `cmd.exe` ends with its child.

/// The console calls a stop makes. Implemented by the real API on Windows, and by
/// a recorder in tests.
pub(crate) trait Console {
    /// The pids attached to our console; `None` when we have no console.
    fn attached(&mut self) -> Option<Vec<u32>>;
    /// Attaches to the console of process `pid` (we have none).
    fn attach(&mut self, pid: u32) -> std::io::Result<()>;
    /// Detaches from the console we attached to.
    fn detach(&mut self) -> std::io::Result<()>;
    /// Generates CTRL_BREAK for process group `group` on our console.
    fn ctrl_break(&mut self, group: u32) -> std::io::Result<()>;
}

/// What became of a CTRL_BREAK.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Sent on the console we share with the group.
    Sent,
    /// Sent after attaching to the service's own console (we had none).
    SentAttached,
    /// Not sent: group 0 or a system pid.
    Refused,
    /// Not sent: the group is on another console than ours.
    OtherConsole,
    /// A console call failed; the message says which.
    Failed(String),
}

/// Windows' own pids: 0 (the idle process; as a console process group, every
/// process on the console) and 4 (System, the kernel). Windows pids are multiples
/// of 4, so these are the pids below 5. Never signalled, never a group to send a
/// console event to.
pub(crate) fn is_windows_kernel(pid: u32) -> bool {
    pid < 5
}

/// Sends CTRL_BREAK to the console process group `group` (the pid of a service
/// root started with `CREATE_NEW_PROCESS_GROUP`), as the module says.
pub(crate) fn send_break(console: &mut impl Console, group: u32) -> Delivery {
    if is_windows_kernel(group) {
        return Delivery::Refused;
    }
    match console.attached() {
        Some(pids) if pids.contains(&group) => match console.ctrl_break(group) {
            Ok(()) => Delivery::Sent,
            Err(e) => Delivery::Failed(format!("CTRL_BREAK to group {group}: {e}")),
        },
        Some(_) => Delivery::OtherConsole,
        None => {
            if let Err(e) = console.attach(group) {
                return Delivery::Failed(format!("attaching to the console of {group}: {e}"));
            }
            let sent = console.ctrl_break(group);
            let detached = console.detach();
            match (sent, detached) {
                (Ok(()), Ok(())) => Delivery::SentAttached,
                (Err(e), _) => Delivery::Failed(format!("CTRL_BREAK to group {group}: {e}")),
                (Ok(()), Err(e)) => {
                    Delivery::Failed(format!("detaching from the console of {group}: {e}"))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records every console call; `attached` and the failures are set up front.
    #[derive(Default)]
    struct Recorder {
        on_console: Option<Vec<u32>>,
        fail_attach: bool,
        fail_break: bool,
        calls: Vec<String>,
    }

    impl Console for Recorder {
        fn attached(&mut self) -> Option<Vec<u32>> {
            self.calls.push("GetConsoleProcessList".into());
            self.on_console.clone()
        }
        fn attach(&mut self, pid: u32) -> std::io::Result<()> {
            self.calls.push(format!("AttachConsole({pid})"));
            if self.fail_attach {
                return Err(std::io::Error::other("access denied"));
            }
            Ok(())
        }
        fn detach(&mut self) -> std::io::Result<()> {
            self.calls.push("FreeConsole".into());
            Ok(())
        }
        fn ctrl_break(&mut self, group: u32) -> std::io::Result<()> {
            self.calls.push(format!(
                "GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, {group})"
            ));
            if self.fail_break {
                return Err(std::io::Error::other("invalid handle"));
            }
            Ok(())
        }
    }

    #[test]
    fn a_group_on_our_console_gets_ctrl_break_directly() {
        let mut rec = Recorder {
            on_console: Some(vec![100, 4242, 4250]),
            ..Default::default()
        };
        assert_eq!(send_break(&mut rec, 4242), Delivery::Sent);
        assert_eq!(
            rec.calls,
            [
                "GetConsoleProcessList",
                "GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, 4242)"
            ]
        );
    }

    #[test]
    fn without_a_console_we_attach_to_the_services_for_the_call_only() {
        let mut rec = Recorder::default();
        assert_eq!(send_break(&mut rec, 4242), Delivery::SentAttached);
        assert_eq!(
            rec.calls,
            [
                "GetConsoleProcessList",
                "AttachConsole(4242)",
                "GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, 4242)",
                "FreeConsole"
            ]
        );
    }

    #[test]
    fn a_failed_event_after_attaching_still_detaches() {
        let mut rec = Recorder {
            fail_break: true,
            ..Default::default()
        };
        let Delivery::Failed(why) = send_break(&mut rec, 4242) else {
            panic!("the failure is reported");
        };
        assert!(
            why.contains("CTRL_BREAK to group 4242: invalid handle"),
            "{why}"
        );
        assert_eq!(rec.calls.last().map(String::as_str), Some("FreeConsole"));
    }

    #[test]
    fn a_failed_attach_sends_nothing() {
        let mut rec = Recorder {
            fail_attach: true,
            ..Default::default()
        };
        assert!(matches!(send_break(&mut rec, 4242), Delivery::Failed(_)));
        assert_eq!(rec.calls, ["GetConsoleProcessList", "AttachConsole(4242)"]);
    }

    #[test]
    fn a_group_on_another_console_is_left_to_taskkill() {
        let mut rec = Recorder {
            on_console: Some(vec![100, 200]),
            ..Default::default()
        };
        assert_eq!(send_break(&mut rec, 4242), Delivery::OtherConsole);
        assert_eq!(rec.calls, ["GetConsoleProcessList"]);
    }

    #[test]
    fn group_zero_and_system_pids_are_never_sent() {
        for group in 0..5 {
            let mut rec = Recorder {
                on_console: Some(vec![0, 1, 2, 3, 4]),
                ..Default::default()
            };
            assert_eq!(send_break(&mut rec, group), Delivery::Refused);
            assert!(rec.calls.is_empty(), "{:?}", rec.calls);
        }
    }
}
