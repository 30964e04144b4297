//! A minimal blocking HTTP/1.1 client for the control socket: one request per
//! connection (`Connection: close`), bodies by `Content-Length`, chunked, or until
//! end of stream, read incrementally so that streamed logs print as they come.
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;

/// A byte stream to the control endpoint (a Unix socket or loopback TCP).
pub trait Stream: Read + Write + Send {
    /// Sets the read timeout (`None`: block).
    fn set_read_timeout_dyn(&self, timeout: Option<Duration>) -> io::Result<()>;
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nobody answers on the control endpoint of this state directory.
    #[error("no ringmaster is running with state directory {}", .0.display())]
    NoInstance(PathBuf),
    /// The connection broke or timed out.
    #[error("control socket: {0}")]
    Io(#[from] io::Error),
    /// The instance answered with an error status; `body` says why.
    #[error("{body}")]
    Status { status: u16, body: String },
}

/// A client for the instance of one state directory.
#[derive(Clone, Debug)]
pub struct Client {
    state_dir: PathBuf,
    /// Read timeout for replies; `None` waits as long as it takes.
    pub timeout: Option<Duration>,
}

/// A reply: its status and a body reader.
pub struct Response {
    pub status: u16,
    body: BodyReader,
}

impl Client {
    /// A client for `state_dir`'s instance, with a 10 s read timeout.
    pub fn new(state_dir: &Path) -> Client {
        Client {
            state_dir: state_dir.to_path_buf(),
            timeout: Some(Duration::from_secs(10)),
        }
    }

    /// The same client with another read timeout.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Client {
        self.timeout = timeout;
        self
    }

    /// True when an instance answers.
    pub fn is_running(&self) -> bool {
        self.get_json::<super::Startup>("/startup").is_ok()
    }

    /// Sends `method path` with an empty body. Error statuses (>= 400) are
    /// returned as [`ClientError::Status`] with the body text.
    pub fn request(&self, method: &str, path: &str) -> Result<Response, ClientError> {
        self.request_with(method, path, None)
    }

    /// Like [`Client::request`], with a JSON body.
    pub fn request_with(
        &self,
        method: &str,
        path: &str,
        json: Option<&serde_json::Value>,
    ) -> Result<Response, ClientError> {
        let (mut stream, token) =
            super::connect(&self.state_dir, Duration::from_secs(5)).map_err(|e| {
                match e.kind() {
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                        ClientError::NoInstance(self.state_dir.clone())
                    }
                    _ => ClientError::Io(e),
                }
            })?;
        stream.set_read_timeout_dyn(self.timeout)?;
        let body = json.map(|j| j.to_string()).unwrap_or_default();
        send_body(
            &mut *stream,
            method,
            path,
            token.as_deref(),
            body.as_bytes(),
        )
        .map_err(|e| self.timed_out(e))?;
        let response = read_head(stream).map_err(|e| self.timed_out(e))?;
        if response.status >= 400 {
            let status = response.status;
            let body = response.text().unwrap_or_default();
            return Err(ClientError::Status {
                status,
                body: body.trim().to_string(),
            });
        }
        Ok(response)
    }

    /// A read or write that ran out of time says so, with the limit, instead of
    /// the OS's "resource temporarily unavailable".
    fn timed_out(&self, e: io::Error) -> io::Error {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => io::Error::new(
                io::ErrorKind::TimedOut,
                match self.timeout {
                    Some(t) => format!("the instance did not answer within {t:?}"),
                    None => "the instance did not answer in time".to_string(),
                },
            ),
            _ => e,
        }
    }

    /// `GET path` and parse the JSON body.
    pub fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.request("GET", path)?.json()
    }

    /// `POST path` and parse the JSON body.
    pub fn post_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.request("POST", path)?.json()
    }
}

#[cfg(windows)]
pub(super) fn send(
    stream: &mut dyn Stream,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> io::Result<()> {
    send_body(stream, method, path, token, &[])
}

/// Sends a request with `body` (JSON when not empty).
fn send_body(
    stream: &mut dyn Stream,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> io::Result<()> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: ringmaster\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn read_head(stream: Box<dyn Stream>) -> io::Result<Response> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("not an HTTP reply: {line:?}")))?;
    let mut length = None;
    let mut chunked = false;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(bad("connection closed in the reply's headers"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((name, value)) = l.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<u64>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
            {
                chunked = true;
            }
        }
    }
    let kind = if chunked {
        Body::Chunked {
            left: 0,
            done: false,
        }
    } else if let Some(n) = length {
        Body::Length(n)
    } else {
        Body::Eof
    };
    Ok(Response {
        status,
        body: BodyReader { reader, kind },
    })
}

enum Body {
    Length(u64),
    Chunked { left: u64, done: bool },
    Eof,
}

struct BodyReader {
    reader: BufReader<Box<dyn Stream>>,
    kind: Body,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match &mut self.kind {
            Body::Eof => self.reader.read(buf),
            Body::Length(left) => {
                if *left == 0 {
                    return Ok(0);
                }
                let max = (*left).min(buf.len() as u64) as usize;
                let n = self.reader.read(&mut buf[..max])?;
                *left -= n as u64;
                Ok(n)
            }
            Body::Chunked { left, done } => {
                if *done {
                    return Ok(0);
                }
                if *left == 0 {
                    let mut line = String::new();
                    if self.reader.read_line(&mut line)? == 0 {
                        *done = true;
                        return Ok(0);
                    }
                    if line.trim().is_empty() {
                        // The CRLF ending the previous chunk.
                        line.clear();
                        if self.reader.read_line(&mut line)? == 0 {
                            *done = true;
                            return Ok(0);
                        }
                    }
                    let size = line.trim().split(';').next().unwrap_or("");
                    let size = u64::from_str_radix(size, 16)
                        .map_err(|_| bad(format!("bad chunk size {line:?}")))?;
                    if size == 0 {
                        *done = true;
                        return Ok(0);
                    }
                    *left = size;
                }
                let max = (*left).min(buf.len() as u64) as usize;
                let n = self.reader.read(&mut buf[..max])?;
                if n == 0 {
                    *done = true;
                }
                *left -= n as u64;
                Ok(n)
            }
        }
    }
}

impl Response {
    /// The whole body as text.
    pub fn text(mut self) -> io::Result<String> {
        let mut s = String::new();
        self.body.read_to_string(&mut s)?;
        Ok(s)
    }

    /// The whole body parsed as JSON.
    pub fn json<T: DeserializeOwned>(self) -> Result<T, ClientError> {
        let text = self.text()?;
        serde_json::from_str(&text)
            .map_err(|e| ClientError::Io(bad(format!("unexpected reply ({e}): {text}"))))
    }

    /// The body line by line, as it arrives.
    pub fn lines(self) -> impl Iterator<Item = io::Result<String>> {
        BufReader::new(self.body).lines()
    }
}

/// A service name as one segment of a request path (or a query value): a
/// replica's `#` — which would otherwise end the path as a fragment — and
/// anything else not plain, percent-encoded.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod encode_tests {
    use super::encode;

    #[test]
    fn names_are_escaped_for_urls() {
        assert_eq!(encode("api"), "api");
        assert_eq!(encode("api#1"), "api%231");
        assert_eq!(encode("a b&c"), "a%20b%26c");
    }
}
