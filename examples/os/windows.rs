//! Windows: no socket sharing (the demo API serves in its own process), no
//! renaming, the shell is `cmd /C`.
use std::io;
use std::net::TcpListener;
use std::os::windows::process::CommandExt;
use std::path::Path;
use std::process::Command;

pub const SHARES_LISTENER: bool = false;

pub fn pass_listener(_listener: &TcpListener, _cmd: &mut Command) -> io::Result<String> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "sharing a listening socket with a child is not supported on Windows",
    ))
}

pub fn inherited_listener(_token: &str) -> io::Result<TcpListener> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "inheriting a listening socket is not supported on Windows",
    ))
}

pub fn rename_current_process(_name: &str) {}

pub fn parent_pid() -> Option<u32> {
    None
}

pub fn through_shell(program: &Path, args: &[String]) -> Command {
    let mut line = format!("\"{}\"", program.display());
    for a in args {
        line.push_str(&format!(" \"{a}\""));
    }
    let mut cmd = Command::new("cmd");
    cmd.arg("/C").raw_arg(line);
    cmd
}

pub async fn terminate_requested() {
    std::future::pending::<()>().await
}
