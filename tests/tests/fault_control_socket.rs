//! The control socket's path, tampered with: a symlink there (to a file of someone
//! else's, or dangling) or a regular file is refused — `up -d` exits 1 naming the
//! path, no service process is left, and the link, its target and the file are
//! untouched; a stale socket with a wide-open mode in a state directory others
//! may enter is replaced by one of mode 0600, and `down` removes it.
#![cfg(unix)]

mod cli_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cli_support::*;
use ringmaster_tests::{fake_service, free_port};

fn project(port: u16) -> Project {
    let p = Project::with_config(&format!(
        r#"[services.api]
command = "{} --listen {port}"
port = {port}
allow = ["fake-service"]
health = {{ tcp = {port} }}
stop = {{ timeout = "5s" }}
"#,
        fake_service().display()
    ));
    std::fs::create_dir(p.state_dir()).expect("create the state dir");
    std::fs::set_permissions(p.state_dir(), std::fs::Permissions::from_mode(0o700))
        .expect("chmod the state dir");
    p
}

/// `up -d` must fail with exit 1 naming `socket`, leaving no process of the project.
fn up_is_refused(p: &Project, socket: &Path, port: u16) {
    let up = p.rm().args(["up", "-d"]).output().expect("up -d");
    let said = format!("{}{}", text(&up.stdout), text(&up.stderr));
    assert_eq!(up.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&socket.display().to_string()) && said.contains("not a socket"),
        "names the path: {said}"
    );
    if let Some(pid) = p.instance_pid() {
        p.guard.add(pid);
        wait_gone(pid);
    }
    ringmaster_tests::wait_for("no service process left", LONG, || {
        p.tagged_pids().is_empty()
    });
    assert!(holders(port).is_empty());
}

#[test]
fn a_symlink_or_a_file_at_the_socket_path_is_refused_and_left_alone() {
    let port = free_port();
    let p = project(port);
    let socket = p.state_dir().join("control.sock");

    // A symlink to a file that is not ours to touch.
    let victim = p.write("victim.txt", "keep me");
    std::os::unix::fs::symlink(&victim, &socket).expect("plant a symlink");
    up_is_refused(&p, &socket, port);
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "keep me");
    assert!(std::fs::symlink_metadata(&socket)
        .expect("the link is still there")
        .file_type()
        .is_symlink());
    // `status` and `down` do not follow it into a fake instance either.
    p.rm().arg("status").assert().code(1);
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "keep me");

    // A dangling symlink: a path someone could create later.
    std::fs::remove_file(&socket).expect("remove the link");
    std::os::unix::fs::symlink(p.path().join("nowhere.sock"), &socket).expect("plant");
    up_is_refused(&p, &socket, port);
    assert!(
        !p.path().join("nowhere.sock").exists(),
        "nothing created at the target"
    );

    // A regular file.
    std::fs::remove_file(&socket).expect("remove the link");
    std::fs::write(&socket, "not a socket").expect("write a file");
    up_is_refused(&p, &socket, port);
    assert_eq!(
        std::fs::read_to_string(&socket).expect("file"),
        "not a socket"
    );
}

#[test]
fn a_stale_open_socket_in_an_open_state_dir_is_replaced_by_a_private_one() {
    let port = free_port();
    let p = project(port);
    std::fs::set_permissions(p.state_dir(), std::fs::Permissions::from_mode(0o777))
        .expect("open the state dir");
    let socket = p.state_dir().join("control.sock");
    // A socket nobody answers on, mode 0666.
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind a stale socket"));
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");

    let instance = p.up_detached();
    p.wait_ready(&["api"]);
    p.guard_tagged();
    let mode = std::fs::symlink_metadata(&socket)
        .expect("the socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is private: {mode:o}");
    p.rm().arg("down").assert().code(0);
    wait_gone(instance);
    assert!(!socket.exists(), "down removed the socket");
    assert!(p.tagged_pids().is_empty() && holders(port).is_empty());
}
