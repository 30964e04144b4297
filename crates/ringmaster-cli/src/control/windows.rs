//! Windows transport of the control socket: loopback TCP on an ephemeral port. The
//! port and a random token are kept in `<state_dir>/control.token`; every request
//! must carry the token (`Authorization: Bearer ...`), so other local users cannot
//! drive the instance.
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file holding `port token`.
pub const TOKEN_FILE: &str = "control.token";

/// A bound control endpoint, ready to be attached to an `HttpServer`.
#[derive(Debug)]
pub struct Listening {
    listener: TcpListener,
    path: PathBuf,
    /// The token clients must send.
    pub token: Option<String>,
}

impl Listening {
    /// The bound listener.
    pub fn into_std(self) -> TcpListener {
        self.listener
    }

    /// Where it listens, for messages.
    pub fn describe(&self) -> String {
        match self.listener.local_addr() {
            Ok(a) => format!("{a} (token in {})", self.path.display()),
            Err(_) => self.path.display().to_string(),
        }
    }
}

/// A random token from the OS-seeded hasher, the time and the pid.
fn random_token() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for i in 0..4u64 {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u32(std::process::id());
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// True when the stream answers `GET /startup` with 200 (used to tell a live
/// endpoint from a stale one).
fn probe(stream: &mut Box<dyn super::client::Stream>, token: Option<&str>) -> bool {
    let _ = stream.set_read_timeout_dyn(Some(Duration::from_secs(2)));
    if super::client::send(&mut **stream, "GET", "/startup", token).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// Binds 127.0.0.1:0 and writes the port and a fresh token to the token file
/// (replacing a stale one).
pub fn listen(state_dir: &Path) -> io::Result<Listening> {
    let path = state_dir.join(TOKEN_FILE);
    if let Ok((mut stream, token)) = connect(state_dir, Duration::from_millis(500)) {
        if probe(&mut stream, token.as_deref()) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} names an instance that answers", path.display()),
            ));
        }
    }
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let port = listener.local_addr()?.port();
    let token = random_token();
    let tmp = state_dir.join(format!("{TOKEN_FILE}.tmp"));
    std::fs::write(&tmp, format!("{port} {token}\n"))?;
    std::fs::rename(&tmp, &path)?;
    Ok(Listening {
        listener,
        path,
        token: Some(token),
    })
}

/// Attaches a [`Listening`] to an `HttpServer` (a macro, so that the server's
/// generic parameters need not be named): `attach!(server, listening)`.
macro_rules! attach {
    ($server:expr, $listening:expr) => {
        $server.listen($listening.into_std())
    };
}
pub(crate) use attach;

/// Removes the token file (on exit).
pub fn remove(state_dir: &Path) {
    let _ = std::fs::remove_file(state_dir.join(TOKEN_FILE));
}

/// A connected stream and the token to send.
pub type Connection = (Box<dyn super::client::Stream>, Option<String>);

/// Connects to the instance named by the token file of `state_dir`. `NotFound` /
/// `ConnectionRefused` mean no instance answers there.
pub fn connect(state_dir: &Path, timeout: Duration) -> io::Result<Connection> {
    let text = std::fs::read_to_string(state_dir.join(TOKEN_FILE))?;
    let mut parts = text.split_whitespace();
    let port: u16 = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "malformed control token file"))?;
    let token = parts.next().map(str::to_string);
    let stream = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), timeout)?;
    stream.set_write_timeout(Some(timeout))?;
    Ok((Box::new(stream), token))
}

impl super::client::Stream for TcpStream {
    fn set_read_timeout_dyn(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(timeout)
    }
}
