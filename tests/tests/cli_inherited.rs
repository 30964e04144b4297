//! What a `ringmaster` process was handed by its caller stays with the caller: a
//! pipe on an extra descriptor is not held open by the detached instance or its
//! services (a caller reading it to the end gets its end-of-file once `up -d`
//! returned), and a closed stdout ends a short command quietly instead of with a
//! panic.
#![cfg(unix)]

mod cli_support;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;

use cli_support::*;
use ringmaster_tests::{bin_path, free_port, pid_alive};

#[test]
fn a_pipe_on_an_extra_descriptor_is_not_held_by_the_detached_instance() {
    let port = free_port();
    let p = Project::with_config(&format!(
        "[services.api]\ncommand = \"{} --listen {port} --children 1\"\nport = {port}\nhealth = {{ tcp = {port} }}\n",
        ringmaster_tests::fake_service().display()
    ));
    // The shell gives `up -d` our pipe as descriptor 7 (and nothing else of it).
    let mut sh = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec '{}' up -d 7>&1 >/dev/null 2>&1",
            bin_path("ringmaster").display()
        ))
        .current_dir(p.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sh runs");
    let mut pipe = sh.stdout.take().expect("piped");
    let (tx, eof) = mpsc::channel();
    std::thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = tx.send(pipe.read_to_end(&mut rest).map(|_| ()));
    });
    let status = sh.wait().expect("up -d exits");
    assert_eq!(status.code(), Some(0), "up -d");
    let instance = p.instance_pid().expect("the instance runs");
    p.guard.add(instance);
    let members = p.guard_tagged();
    assert!(!members.is_empty(), "the service runs");

    // Everything with the pipe has exited or closed it: the reader sees its end
    // while the instance and the service are still running.
    let got = eof.recv_timeout(LONG);
    assert!(
        matches!(got, Ok(Ok(()))),
        "the pipe stayed open ({got:?}): held by the instance {instance} or a service {members:?}"
    );
    assert!(pid_alive(instance), "the instance still runs");

    p.rm().arg("down").assert().code(0);
    wait_gone(instance);
    wait_port_free(port);
}

#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills two descriptors we then own.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: closing the read end we own: nobody will ever read.
    unsafe { libc::close(fds[0]) };
    // SAFETY: the write end is ours and handed over once.
    let stdout = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[1]) };
    let out = Command::new(bin_path("ringmaster"))
        .args(["ports", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::piped())
        .output()
        .expect("ringmaster ports runs");
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("panicked") && out.status.code() != Some(101),
        "{:?}: {stderr}",
        out.status
    );
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "ended by SIGPIPE, as `ls | true` would be: {:?} {stderr}",
        out.status
    );
}
