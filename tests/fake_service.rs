//! `fake-service`: the test program the end-to-end tests drive. It imitates what real
//! services do to a process manager: listen on a port (optionally answering HTTP),
//! share its listening socket with a worker, spawn children and grandchildren,
//! rename itself, ignore SIGTERM, double-fork a setsid daemon, exit after a delay.
//!
//! ```text
//! fake-service [OPTIONS]
//!   --listen PORT          bind 127.0.0.1:PORT (0 = pick one), accept; prints `listening <port>`
//!   --listen6              bind [::1] instead of 127.0.0.1
//!   --http                 answer every HTTP request with `200 OK`, body `ok`
//!   --http-status CODE     answer with this status instead (implies --http)
//!   --body TEXT            answer 200 with body TEXT instead of `ok` (implies --http)
//!   --head-405             answer HEAD with `405 Method Not Allowed`, as FastAPI does (implies --http)
//!   --share                after binding, fork a worker that inherits the socket and accepts too
//!   --children N           spawn N idle child processes (each printed as `pid child <pid>`)
//!   --depth D              each child spawns one more below it, D levels deep
//!   --rename NAME          rename itself (Linux: prctl PR_SET_NAME; comm changes, exe stays)
//!   --ignore-term          ignore SIGTERM itself
//!   --children-ignore-term the children (and their descendants) ignore SIGTERM
//!   --daemon               double-fork a daemon that calls setsid and idles (`pid daemon <pid>`)
//!   --exit-after MS        exit after MS milliseconds, with --exit-code C (default 0)
//!   --exit-code C
//!   --ready-after MS       wait MS before binding the listener
//!   --print-pids           also print `pid root <pid>` for itself
//!   --wipe-env             overwrite its environment block in memory once its children
//!                          are spawned, as nginx, redis and postgres do when they set
//!                          their process title (/proc/PID/environ then shows no tag)
//!   --lines N              print N numbered lines (`line 1` … `line N`) as fast as it can, at start
//!   --answer-after MS      hold each HTTP request (accepted, unanswered) until MS ms after
//!                          start, as a reloader does while its worker starts; each answer
//!                          is printed (`answered <status>`)
//!   --early-status CODE    with --answer-after: answer requests before then with CODE at once
//!   --notify-status TEXT   at start, send `STATUS=TEXT` to $NOTIFY_SOCKET (sd_notify)
//!   --notify-after MS      MS ms after start (and after binding), send `READY=1` to
//!                          $NOTIFY_SOCKET, then print `notified <unix time in µs of the send>`
//!   --notify-mainpid       with --notify-after: also send `MAINPID=` of its first child
//!   --health-file PATH     answer HTTP (implies --http) as PATH says, read at every request:
//!                          a comma-separated cycle of modes, request k takes entry k mod len;
//!                          a mode is a status code (`200`, `500`), `hang` (never answer, hold
//!                          the connection), `reset` (close at once with a TCP reset) or `slow`
//!                          (a 200 whose body trickles one byte every 2 s); a missing or empty
//!                          file means `200`. Each request prints `health <k> <mode>`.
//!   --hold-mib N           allocate N MiB, write every page (so it is resident) and keep
//!                          it; prints `holding <N> MiB` once done
//!   --spin                 keep one thread busy (a loop that never sleeps)
//! ```
//!
//! Children, the worker and the daemon always print their `pid <role> <pid>` line;
//! `--print-pids` adds the root's own line. Every line is flushed at once. Without
//! `--exit-after` it runs until it is killed or terminated. A process that does not
//! ignore SIGTERM resets it to the default action (an ignored disposition is
//! inherited across exec, so this keeps `--children-ignore-term` honest).
//!
//! On Windows, `--share`, `--daemon` and `--rename` print a note and are otherwise
//! ignored. The graceful stop there is CTRL_BREAK to the service's console process
//! group, which ends this program (the default handler), and `taskkill` without
//! `/F`, a request to close windows, which a console program has none of.
//! `--ignore-term` installs a console handler that swallows CTRL_BREAK and Ctrl-C,
//! so only the kill ends it.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The parsed command line.
#[derive(Clone, Debug, Default)]
struct Options {
    listen: Option<u16>,
    listen6: bool,
    http: bool,
    http_status: u16,
    body: Option<String>,
    head_405: bool,
    share: bool,
    children: u32,
    depth: u32,
    rename: Option<String>,
    ignore_term: bool,
    children_ignore_term: bool,
    daemon: bool,
    exit_after: Option<u64>,
    exit_code: i32,
    ready_after: Option<u64>,
    print_pids: bool,
    wipe_env: bool,
    lines: u64,
    health_file: Option<std::path::PathBuf>,
    answer_after: Option<u64>,
    early_status: Option<u16>,
    notify_status: Option<String>,
    notify_after: Option<u64>,
    notify_mainpid: bool,
    hold_mib: u64,
    spin: bool,
    /// Internal: this process is a child spawned by `--children` (prints `pid child`).
    as_child: bool,
}

fn usage(msg: &str) -> ! {
    eprintln!("fake-service: {msg}");
    eprintln!("see the header of tests/fake_service.rs for the options");
    std::process::exit(2)
}

fn parse_args() -> Options {
    let mut o = Options {
        http_status: 200,
        ..Options::default()
    };
    let mut args = std::env::args().skip(1);
    fn value<T: std::str::FromStr>(flag: &str, v: Option<String>) -> T {
        let v = v.unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        v.parse()
            .unwrap_or_else(|_| usage(&format!("{flag}: bad value {v:?}")))
    }
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => o.listen = Some(value(&arg, args.next())),
            "--listen6" => o.listen6 = true,
            "--http" => o.http = true,
            "--http-status" => {
                o.http = true;
                o.http_status = value(&arg, args.next());
            }
            "--body" => {
                o.http = true;
                o.body = Some(value(&arg, args.next()));
            }
            "--head-405" => {
                o.http = true;
                o.head_405 = true;
            }
            "--share" => o.share = true,
            "--children" => o.children = value(&arg, args.next()),
            "--depth" => o.depth = value(&arg, args.next()),
            "--rename" => o.rename = Some(value(&arg, args.next())),
            "--ignore-term" => o.ignore_term = true,
            "--children-ignore-term" => o.children_ignore_term = true,
            "--daemon" => o.daemon = true,
            "--exit-after" => o.exit_after = Some(value(&arg, args.next())),
            "--exit-code" => o.exit_code = value(&arg, args.next()),
            "--ready-after" => o.ready_after = Some(value(&arg, args.next())),
            "--print-pids" => o.print_pids = true,
            "--wipe-env" => o.wipe_env = true,
            "--lines" => o.lines = value(&arg, args.next()),
            "--health-file" => {
                o.http = true;
                o.health_file = Some(value(&arg, args.next()));
            }
            "--answer-after" => {
                o.http = true;
                o.answer_after = Some(value(&arg, args.next()));
            }
            "--early-status" => o.early_status = Some(value(&arg, args.next())),
            "--notify-status" => o.notify_status = Some(value(&arg, args.next())),
            "--notify-after" => o.notify_after = Some(value(&arg, args.next())),
            "--notify-mainpid" => o.notify_mainpid = true,
            "--hold-mib" => o.hold_mib = value(&arg, args.next()),
            "--spin" => o.spin = true,
            "--as-child" => o.as_child = true,
            "-h" | "--help" => usage("help requested"),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if o.listen.is_none() && (o.listen6 || o.http || o.share) {
        usage("--listen6, --http, --http-status, --health-file and --share need --listen");
    }
    o
}

/// Writes one line to stdout and flushes; a closed stdout is not an error here.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn main() {
    let o = parse_args();
    let start = Instant::now();
    sys::set_term_ignored(o.ignore_term);

    // Fork the daemon first: before any thread exists and before the listening
    // socket is open (a forked daemon must not hold the port).
    if o.daemon {
        match sys::spawn_daemon() {
            Some(pid) => say(&format!("pid daemon {pid}")),
            None => say("note: --daemon is not supported on this platform"),
        }
    }
    if o.as_child {
        say(&format!("pid child {}", std::process::id()));
    } else if o.print_pids {
        say(&format!("pid root {}", std::process::id()));
    }
    if o.lines > 0 {
        print_lines(o.lines);
    }
    if o.hold_mib > 0 {
        hold(o.hold_mib);
        say(&format!("holding {} MiB", o.hold_mib));
    }
    if o.spin {
        std::thread::spawn(|| {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        });
    }
    if let Some(name) = &o.rename {
        if !sys::rename(name) {
            say("note: --rename is not supported on this platform");
        }
    }

    // Children are spawned before the listener exists, and they are plain
    // fork+exec, so they never hold the port.
    let mut children = Vec::new();
    for _ in 0..o.children {
        children.push(spawn_child(&o, o.depth));
    }
    if let Some(text) = &o.notify_status {
        notify(&format!("STATUS={text}"));
    }
    let first_child = children.first().map(std::process::Child::id);
    if o.wipe_env && !sys::wipe_env() {
        say("note: --wipe-env is not supported on this platform");
    }
    if o.as_child && o.depth > 0 {
        children.push(spawn_child(&o, o.depth - 1));
    }

    if let Some(ms) = o.ready_after {
        std::thread::sleep(Duration::from_millis(ms));
    }
    let listener = o.listen.map(|port| {
        let addr: SocketAddr = if o.listen6 {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port))
        } else {
            SocketAddr::from(([127, 0, 0, 1], port))
        };
        let l = TcpListener::bind(addr).unwrap_or_else(|e| {
            eprintln!("fake-service: cannot bind {addr}: {e}");
            std::process::exit(3)
        });
        let port = l.local_addr().map(|a| a.port()).unwrap_or(port);
        say(&format!("listening {port}"));
        l
    });

    if o.share && listener.is_some() {
        match sys::fork_worker() {
            Some(0) => {
                // The worker: it shares the socket; the children are the root's.
                say(&format!("pid worker {}", std::process::id()));
                std::mem::forget(std::mem::take(&mut children));
            }
            Some(worker) => {
                std::thread::spawn(move || sys::wait_pid(worker));
            }
            None => say("note: --share is not supported on this platform"),
        }
    }

    // Reap our children when they exit, like a shell would.
    for mut child in children {
        std::thread::spawn(move || {
            let _ = child.wait();
        });
    }

    if let Some(l) = listener {
        let answer = Answer {
            http: o.http,
            status: o.http_status,
            body: o.body.clone(),
            head_405: o.head_405,
            health_file: o.health_file.clone(),
            answer_at: o.answer_after.map(|ms| start + Duration::from_millis(ms)),
            early_status: o.early_status,
        };
        std::thread::spawn(move || accept_loop(l, answer));
    }

    if let Some(ms) = o.notify_after {
        std::thread::sleep(
            (start + Duration::from_millis(ms)).saturating_duration_since(Instant::now()),
        );
        let mut msg = "READY=1".to_owned();
        if let (true, Some(pid)) = (o.notify_mainpid, first_child) {
            msg.push_str(&format!("\nMAINPID={pid}"));
        }
        // The time is taken before the send: it is the moment READY=1 could
        // first be heard.
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        notify(&msg);
        say(&format!("notified {micros}"));
    }

    match o.exit_after {
        Some(ms) => {
            let deadline = start + Duration::from_millis(ms);
            std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
            std::process::exit(o.exit_code);
        }
        None => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
    }
}

/// Allocates `mib` MiB and writes a byte in every page, so that all of it is
/// resident; the memory is kept for the life of the process.
fn hold(mib: u64) {
    let len = usize::try_from(mib * 1024 * 1024).unwrap_or_else(|_| usage("--hold-mib: too large"));
    let mut block = vec![0u8; len].into_boxed_slice();
    // 4 KiB is the smallest page anywhere we run: every page gets a write.
    for (i, b) in block.iter_mut().enumerate().step_by(4096) {
        *b = (i / 4096) as u8 | 1;
    }
    std::hint::black_box(&mut block);
    Box::leak(block);
}

/// Spawns this program again as an idle child, `depth` more levels below it.
fn spawn_child(o: &Options, depth: u32) -> std::process::Child {
    let exe = std::env::current_exe().unwrap_or_else(|e| {
        eprintln!("fake-service: cannot find own exe: {e}");
        std::process::exit(4)
    });
    let mut cmd = Command::new(exe);
    cmd.arg("--as-child").arg("--depth").arg(depth.to_string());
    if o.children_ignore_term {
        cmd.arg("--ignore-term").arg("--children-ignore-term");
    }
    cmd.stdin(Stdio::null());
    cmd.spawn().unwrap_or_else(|e| {
        eprintln!("fake-service: cannot spawn a child: {e}");
        std::process::exit(4)
    })
}

/// How the listener answers.
#[derive(Clone)]
struct Answer {
    http: bool,
    status: u16,
    /// The body of a 200 (`--body`; else `ok`).
    body: Option<String>,
    head_405: bool,
    health_file: Option<std::path::PathBuf>,
    /// Requests are held until then (`--answer-after`)...
    answer_at: Option<Instant>,
    /// ...or answered with this status before then (`--early-status`).
    early_status: Option<u16>,
}

/// Sends one sd_notify datagram to $NOTIFY_SOCKET; says why when it cannot.
fn notify(msg: &str) {
    match std::env::var("NOTIFY_SOCKET") {
        Ok(addr) => {
            if let Err(e) = sys::notify(&addr, msg) {
                say(&format!("note: sd_notify to {addr} failed: {e}"));
            }
        }
        Err(_) => say("note: no NOTIFY_SOCKET"),
    }
}

/// Prints `line 1` … `line n` through one buffered, locked stdout.
fn print_lines(n: u64) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    for i in 1..=n {
        if writeln!(out, "line {i}").is_err() {
            return;
        }
    }
    let _ = out.flush();
}

fn accept_loop(listener: TcpListener, answer: Answer) {
    let requests = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                let answer = answer.clone();
                let requests = requests.clone();
                std::thread::spawn(move || serve(stream, &answer, &requests));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// The mode of request `k` from the health file (see the header).
fn health_mode(path: &std::path::Path, k: u64) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let modes: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    if modes.is_empty() {
        return "200".to_string();
    }
    modes[(k % modes.len() as u64) as usize].to_string()
}

fn serve(mut stream: TcpStream, answer: &Answer, requests: &std::sync::atomic::AtomicU64) {
    let mut buf = [0u8; 4096];
    if !answer.http {
        // Hold the connection until the peer closes it.
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        return;
    }
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut request = Vec::new();
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
        if request.len() > 64 * 1024 {
            return;
        }
    }
    let head = request.starts_with(b"HEAD ");
    let mut status = if head && answer.head_405 {
        405
    } else {
        answer.status
    };
    if let Some(at) = answer.answer_at.filter(|at| Instant::now() < *at) {
        match answer.early_status {
            Some(code) => status = code,
            None => std::thread::sleep(at.saturating_duration_since(Instant::now())),
        }
    }
    if let Some(path) = &answer.health_file {
        let k = requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mode = health_mode(path, k);
        say(&format!("health {k} {mode}"));
        match mode.as_str() {
            "hang" => {
                let _ = stream.set_read_timeout(None);
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                }
                return;
            }
            "reset" => {
                sys::reset(&stream);
                return;
            }
            "slow" => {
                let body = "slow body";
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                if stream.write_all(head.as_bytes()).is_err() {
                    return;
                }
                for b in body.bytes() {
                    if stream
                        .write_all(&[b])
                        .and_then(|()| stream.flush())
                        .is_err()
                    {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(2));
                }
                return;
            }
            code => status = code.parse().unwrap_or(500),
        }
    }
    let (reason, body) = match status {
        200 => (
            "OK",
            answer.body.clone().unwrap_or_else(|| "ok".to_string()),
        ),
        404 => ("Not Found", "status 404".to_string()),
        405 => ("Method Not Allowed", "status 405".to_string()),
        500 => ("Internal Server Error", "status 500".to_string()),
        503 => ("Service Unavailable", "status 503".to_string()),
        other => ("Status", format!("status {other}")),
    };
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head {
        response.push_str(&body);
    }
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
    if answer.answer_at.is_some() {
        say(&format!("answered {status}"));
    }
}

#[cfg(unix)]
mod sys {
    //! Unix: signal disposition, fork, setsid, prctl, sd_notify.

    /// Sends `msg` to the sd_notify socket `addr` (`@name`: abstract, Linux).
    pub fn notify(addr: &str, msg: &str) -> std::io::Result<()> {
        let sock = std::os::unix::net::UnixDatagram::unbound()?;
        #[cfg(target_os = "linux")]
        if let Some(name) = addr.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            let a = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            sock.send_to_addr(msg.as_bytes(), &a)?;
            return Ok(());
        }
        sock.send_to(msg.as_bytes(), addr)?;
        Ok(())
    }

    /// Zeroes every string of the environment block, where the kernel's
    /// /proc/PID/environ reads it (setproctitle does the same to make room).
    pub fn wipe_env() -> bool {
        extern "C" {
            static mut environ: *mut *mut libc::c_char;
        }
        // SAFETY: single-threaded at this point in a test program; each entry is a
        // NUL-terminated string the kernel placed at exec; only its bytes are zeroed.
        unsafe {
            let mut p = environ;
            while !p.is_null() && !(*p).is_null() {
                let s = *p;
                std::ptr::write_bytes(s, 0, libc::strlen(s));
                p = p.add(1);
            }
        }
        true
    }

    /// Ignores SIGTERM, or resets it to the default action.
    pub fn set_term_ignored(ignored: bool) {
        let action = if ignored {
            libc::SIG_IGN
        } else {
            libc::SIG_DFL
        };
        // SAFETY: setting a disposition to SIG_IGN/SIG_DFL installs no handler code.
        unsafe {
            libc::signal(libc::SIGTERM, action);
        }
    }

    /// Closes `stream` with a TCP reset (SO_LINGER with a zero timeout, then close).
    pub fn reset(stream: &std::net::TcpStream) {
        use std::os::unix::io::AsRawFd;
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt reads a `linger` of the given size from a live socket.
        unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                &linger as *const libc::linger as *const libc::c_void,
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }

    /// Renames the process (Linux: comm via PR_SET_NAME). False elsewhere.
    pub fn rename(name: &str) -> bool {
        #[cfg(target_os = "linux")]
        {
            let mut bytes: Vec<u8> = name.bytes().filter(|b| *b != 0).take(15).collect();
            bytes.push(0);
            // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
            unsafe { libc::prctl(libc::PR_SET_NAME, bytes.as_ptr() as libc::c_ulong, 0, 0, 0) == 0 }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = name;
            false
        }
    }

    /// Forks a worker that shares everything open, the listening socket included.
    /// Returns `Some(0)` in the worker, `Some(pid)` in the parent.
    pub fn fork_worker() -> Option<u32> {
        // SAFETY: called while the only other threads are idle reapers that hold
        // no locks the worker touches; the worker goes on with its own threads.
        match unsafe { libc::fork() } {
            -1 => {
                eprintln!(
                    "fake-service: fork failed: {}",
                    std::io::Error::last_os_error()
                );
                std::process::exit(5)
            }
            pid => Some(pid as u32),
        }
    }

    /// Waits for our child `pid` (the worker) so it does not linger as a zombie.
    pub fn wait_pid(pid: u32) {
        let mut status = 0;
        // SAFETY: waits for one specific child of ours.
        unsafe {
            libc::waitpid(pid as libc::pid_t, &mut status, 0);
        }
    }

    /// Double-forks a daemon: fork, setsid, fork again; the grandchild sends its pid
    /// through a pipe, points stdio at /dev/null and idles. Returns the daemon's pid.
    /// Called while this process has a single thread.
    pub fn spawn_daemon() -> Option<u32> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe(2) fills the two descriptors.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            eprintln!(
                "fake-service: pipe failed: {}",
                std::io::Error::last_os_error()
            );
            std::process::exit(5);
        }
        let (rd, wr) = (fds[0], fds[1]);
        // SAFETY: single-threaded here (the daemon is forked first thing).
        let first = unsafe { libc::fork() };
        if first < 0 {
            eprintln!(
                "fake-service: fork failed: {}",
                std::io::Error::last_os_error()
            );
            std::process::exit(5);
        }
        if first == 0 {
            // The intermediate child: new session, fork the daemon, exit.
            // SAFETY: only async-signal-safe calls until _exit / the daemon's loop.
            unsafe {
                libc::close(rd);
                libc::setsid();
                let second = libc::fork();
                if second != 0 {
                    libc::_exit(0);
                }
                let pid = libc::getpid() as u32;
                let bytes = pid.to_le_bytes();
                libc::write(wr, bytes.as_ptr() as *const libc::c_void, bytes.len());
                libc::close(wr);
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                if null >= 0 {
                    libc::dup2(null, 0);
                    libc::dup2(null, 1);
                    libc::dup2(null, 2);
                    if null > 2 {
                        libc::close(null);
                    }
                }
                libc::signal(libc::SIGTERM, libc::SIG_DFL);
                loop {
                    libc::sleep(3600);
                }
            }
        }
        // SAFETY: the parent closes its write end, reads 4 bytes, reaps the
        // intermediate child by its pid.
        unsafe {
            libc::close(wr);
            let mut bytes = [0u8; 4];
            let mut got = 0usize;
            while got < 4 {
                let n = libc::read(rd, bytes[got..].as_mut_ptr() as *mut libc::c_void, 4 - got);
                if n <= 0 {
                    break;
                }
                got += n as usize;
            }
            libc::close(rd);
            let mut status = 0;
            libc::waitpid(first, &mut status, 0);
            if got == 4 {
                Some(u32::from_le_bytes(bytes))
            } else {
                eprintln!("fake-service: the daemon did not report its pid");
                std::process::exit(5)
            }
        }
    }
}

#[cfg(not(unix))]
mod sys {
    //! Windows: the Unix-only options are noted and ignored.
    pub fn notify(_addr: &str, _msg: &str) -> std::io::Result<()> {
        Err(std::io::Error::other(
            "sd_notify is not supported on this platform",
        ))
    }
    pub fn wipe_env() -> bool {
        false
    }

    /// Swallows CTRL_BREAK and Ctrl-C when `ignored` (the close request of
    /// `taskkill` without `/F` never reaches a console program anyway).
    pub fn set_term_ignored(ignored: bool) {
        use windows::Win32::System::Console::SetConsoleCtrlHandler;

        unsafe extern "system" fn swallow(_event: u32) -> windows::core::BOOL {
            true.into()
        }
        if ignored {
            // SAFETY: installs a handler function that lives as long as the process.
            if let Err(e) = unsafe { SetConsoleCtrlHandler(Some(swallow), true) } {
                super::say(&format!("note: cannot ignore CTRL_BREAK: {e}"));
            }
        }
    }
    pub fn rename(_name: &str) -> bool {
        false
    }
    /// Closes without a reset (dropping the stream closes it).
    pub fn reset(_stream: &std::net::TcpStream) {}
    pub fn fork_worker() -> Option<u32> {
        None
    }
    pub fn wait_pid(_pid: u32) {}
    pub fn spawn_daemon() -> Option<u32> {
        None
    }
}
