//! Shared harness for the integration tests: starting kvick and redis-server
//! on free ports, a raw RESP client that returns replies byte for byte, and
//! a constructor for `redis` crate connections.
//!
//! Every test crate (`tests/*.rs`) compiles this module separately and uses
//! only part of it, so unused-item warnings would be noise here.
#![allow(dead_code)]

use std::fs::{self, File};
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// How long a server gets to answer its first PING.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Default read/write timeout of `RawConn` and `redis` crate connections: long
/// enough for a 10 MB reply on a busy 2-core CI machine, short enough that a
/// hung server fails the test instead of stalling the suite.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------

/// Lock files of the ports this process has handed out; see `pick_free_port`.
/// They stay locked until the process exits, which is when the OS releases
/// the locks, even if the process is killed. The files themselves are never
/// deleted: deleting a lock file races with another process opening it.
static PORT_LOCKS: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// Returns a TCP port on 127.0.0.1 that nothing listens on and that no other
/// test process of this machine will pick while this process lives.
///
/// Checking that bind() succeeds is not enough: kvick binds with SO_REUSEPORT,
/// so a second kvick on a port that is already taken would silently share it
/// and tests would talk to the wrong server. Hence three checks:
/// - a per-port lock file (flock), so concurrently running test processes
///   (cargo test runs binaries one at a time, nextest runs tests in parallel
///   processes) never pick the same port;
/// - bind() on 127.0.0.1 without SO_REUSEPORT, which fails if anything listens;
/// - connect(), which must be refused, in case something listens in a way the
///   bind check does not see.
///
/// Ports come from below the kernel's ephemeral range so that outgoing
/// connections (including the tests' own) cannot be sitting on them.
pub fn pick_free_port() -> u16 {
    let (low, high) = port_range();
    let lock_dir = std::env::temp_dir().join("kvick-test-ports");
    fs::create_dir_all(&lock_dir).expect("create port lock directory");
    for _ in 0..1000 {
        let port = low + (random_u64() % u64::from(high - low)) as u16;
        let lock = File::create(lock_dir.join(format!("{port}.lock"))).expect("create port lock");
        if lock.try_lock().is_err() {
            continue; // another live test process owns this port
        }
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err() {
            continue;
        }
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            continue;
        }
        PORT_LOCKS.lock().unwrap().push(lock);
        return port;
    }
    panic!("no free port found in {low}..{high} after 1000 tries");
}

/// The port range to pick from: 20000 up to the start of the kernel's
/// ephemeral port range (normally 32768), or 20000..60000 if that leaves
/// too few ports.
fn port_range() -> (u16, u16) {
    let ephemeral_low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok().and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok());
    match ephemeral_low {
        Some(low) if low >= 22000 => (20000, low),
        _ => (20000, 60000),
    }
}

/// A random number without pulling in a dependency: std's RandomState is
/// seeded from the OS, and hashing a counter makes each call differ.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}

// ---------------------------------------------------------------------------
// Server processes
// ---------------------------------------------------------------------------

/// A server process started by a test, listening on 127.0.0.1:`port`.
/// Dropping it kills the process (SIGKILL) and reaps it.
pub struct TestServer {
    name: String,
    child: Child,
    port: u16,
    /// stdout and stderr of the server. A file rather than a pipe, so a
    /// chatty server can never block on a pipe nobody drains.
    log_path: PathBuf,
    /// A directory made for this server alone, removed with it.
    own_dir: Option<PathBuf>,
}

/// Starts kvick, the binary built by this same `cargo test` run.
pub struct KvickServer;

impl KvickServer {
    /// Starts kvick with `args` (redis-style `--name value` directives, and
    /// optionally a config file as the first argument), bound to 127.0.0.1
    /// on a free port. `--bind` and `--port` go after `args` because later
    /// directives override earlier ones, and the harness must own both.
    pub fn start(args: &[&str]) -> TestServer {
        Self::start_bound(args, "127.0.0.1")
    }

    /// As `start`, listening on `bind` (which must include 127.0.0.1, where
    /// the harness checks that the server is up).
    pub fn start_bound(args: &[&str], bind: &str) -> TestServer {
        let port = pick_free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvick"));
        cmd.args(args).args(["--bind", bind, "--port", &port.to_string()]);
        // kvick saves snapshots by default (as Redis): unless a test picks
        // its own `dir`, keep them in a directory of this server's, never in
        // the repository, and never load another test's.
        let mut own_dir = None;
        if !args.contains(&"--dir") {
            let dir = std::env::temp_dir().join(format!("kvick-test-dir-{}-{port}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("create the server's directory");
            cmd.arg("--dir").arg(&dir);
            own_dir = Some(dir);
        }
        let label = if args.is_empty() { "kvick".to_string() } else { format!("kvick {}", args.join(" ")) };
        let mut server = TestServer::spawn(label, cmd, port);
        server.own_dir = own_dir;
        server
    }
}

/// Starts Debian's redis-server, the reference implementation.
pub struct RedisServer;

impl RedisServer {
    /// Starts a throwaway redis-server: no persistence, no files written,
    /// bound to 127.0.0.1 on a free port.
    pub fn start() -> TestServer {
        let port = pick_free_port();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            // Nothing is saved, but keep redis-server from ever touching the
            // current directory (the repository) anyway.
            .arg("--dir")
            .arg(std::env::temp_dir());
        TestServer::spawn("redis-server".to_string(), cmd, port)
    }

    /// As `start`, with more directives after the defaults (which they
    /// override: e.g. `--dir` and `--dbfilename` to load a file).
    pub fn start_with(args: &[&str]) -> TestServer {
        let port = pick_free_port();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(std::env::temp_dir())
            .args(args);
        TestServer::spawn("redis-server".to_string(), cmd, port)
    }
}

impl TestServer {
    fn spawn(name: String, mut cmd: Command, port: u16) -> TestServer {
        let log_path =
            std::env::temp_dir().join(format!("kvick-test-{}-{}-{port}.log", name.split_whitespace().next().unwrap_or("server"), std::process::id()));
        let log = File::create(&log_path).expect("create server log file");
        cmd.stdin(Stdio::null()).stdout(log.try_clone().expect("clone log file handle")).stderr(log);
        let child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == io::ErrorKind::NotFound && name == "redis-server" => panic!(
                "redis-server not found in PATH: the differential tests need it as the \
                 reference. Run scripts/setup.sh (installs Debian's redis-server and redis-tools)."
            ),
            Err(e) => panic!("failed to start {name}: {e}"),
        };
        let mut server = TestServer { name, child, port, log_path, own_dir: None };
        server.wait_until_ready();
        server
    }

    /// Polls with PING until the server answers +PONG. Panics if it exits
    /// or does not answer in time; `Drop` then prints the server's output.
    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("{} exited during startup ({status})", self.name);
            }
            if let Ok(mut conn) = RawConn::connect(self.port) {
                if let Ok(reply) = conn.command(&["PING"]) {
                    assert_eq!(reply, b"+PONG\r\n", "{} answered PING with {}", self.name, escape(&reply));
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("{} did not answer PING on port {} within {STARTUP_TIMEOUT:?}", self.name, self.port);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The name and arguments the server was started with, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new raw RESP connection to the server.
    pub fn raw(&self) -> RawConn {
        RawConn::connect(self.port).unwrap_or_else(|e| panic!("connect to {} on port {}: {e}", self.name, self.port))
    }

    /// A new `redis` crate connection to the server, with `IO_TIMEOUT`.
    pub fn client(&self) -> redis::Connection {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).expect("valid redis URL");
        let conn = client.get_connection_with_timeout(IO_TIMEOUT).unwrap_or_else(|e| panic!("redis crate connect to {}: {e}", self.name));
        conn.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        conn.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        conn
    }

    /// Panics if the process has exited; `Drop` then prints its output.
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!("{} on port {} died ({status})", self.name, self.port);
        }
    }

    /// Whether the process has exited (after a SHUTDOWN, say).
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_some()
    }

    /// Everything the server has written to stdout and stderr so far.
    pub fn log(&self) -> String {
        fs::read(&self.log_path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_else(|e| format!("<cannot read {}: {e}>", self.log_path.display()))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // SIGKILL: no server code runs on the way down, so a server that
        // hangs on shutdown cannot hang the tests.
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test gets the output of every server it started (this is
        // where startup failures and crashes are explained); a passing one
        // leaves no file behind.
        if thread::panicking() {
            eprintln!("---- output of {} (port {}) ----\n{}", self.name, self.port, self.log());
        }
        let _ = fs::remove_file(&self.log_path);
        if let Some(dir) = &self.own_dir {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

// ---------------------------------------------------------------------------
// Raw RESP client
// ---------------------------------------------------------------------------

/// A RESP client that hands back each reply exactly as the server sent it,
/// so tests can compare bytes rather than a client library's interpretation.
pub struct RawConn {
    stream: TcpStream,
    /// Bytes received but not yet returned; may hold the start of the next
    /// reply when commands are pipelined.
    buf: Vec<u8>,
}

impl RawConn {
    /// A numeric field of INFO `section`.
    pub fn info_number(&mut self, section: &str, field: &str) -> usize {
        let info = String::from_utf8(self.cmd(&["INFO", section])).unwrap();
        let prefix = format!("{field}:");
        let line = info.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("INFO has {field}"));
        line[prefix.len()..].trim().parse().unwrap()
    }

    /// Waits until INFO reports `n` blocked clients (a hang guard, not a
    /// timing assertion: the bound is far beyond any expected delay).
    pub fn wait_blocked(&mut self, n: usize) {
        let start = std::time::Instant::now();
        while self.info_number("clients", "blocked_clients") != n {
            assert!(start.elapsed() < std::time::Duration::from_secs(20), "never reached {n} blocked clients");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// Connects to 127.0.0.1:`port` with `IO_TIMEOUT` on reads and writes.
    pub fn connect(port: u16) -> io::Result<RawConn> {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(RawConn { stream, buf: Vec::new() })
    }

    pub fn set_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.stream.set_read_timeout(Some(timeout))?;
        self.stream.set_write_timeout(Some(timeout))
    }

    /// Sends bytes as they are: inline commands, malformed input, pipelines.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends one command, encoded as a RESP array of bulk strings.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<()> {
        self.send_raw(&encode_command(args))
    }

    /// Sends one command and reads its reply.
    pub fn command<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<Vec<u8>> {
        self.send(args)?;
        self.read_reply()
    }

    /// Like `command`, but panics on I/O errors: for tests where the
    /// connection failing is itself the failure.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Vec<u8> {
        self.command(args).unwrap_or_else(|e| {
            let shown: Vec<String> = args.iter().map(|a| escape(a.as_ref())).collect();
            panic!("command {shown:?} failed: {e}")
        })
    }

    /// Reads exactly one complete RESP2/RESP3 frame (an attribute counts
    /// together with the reply it annotates) and returns its raw bytes.
    /// EOF before a complete frame is `UnexpectedEof`; a read timeout is
    /// `TimedOut`; a frame that is not valid RESP is `InvalidData`.
    pub fn read_reply(&mut self) -> io::Result<Vec<u8>> {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let complete = parse_frame(&self.buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?.map(|frame| frame.raw.len());
            if let Some(len) = complete {
                return Ok(self.buf.drain(..len).collect());
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("connection closed with {} bytes of an incomplete reply buffered", self.buf.len()),
                    ))
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // SO_RCVTIMEO expiry surfaces as EAGAIN on Linux.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out reading a reply")),
                Err(e) => return Err(e),
            }
        }
    }
}

/// Finds `n` keys with the given prefix whose hash slots are owned by each of
/// the two cores (slots below 8192 belong to core 0), alternating cores.
pub fn keys_on_both_cores(prefix: &str, n: usize) -> Vec<String> {
    let mut low = Vec::new();
    let mut high = Vec::new();
    let mut i = 0;
    while low.len() < n.div_ceil(2) || high.len() < n / 2 {
        let k = format!("{prefix}{i}");
        let slot = crc16::State::<crc16::XMODEM>::calculate(k.as_bytes()) % 16384;
        if slot < 8192 {
            low.push(k);
        } else {
            high.push(k);
        }
        i += 1;
    }
    (0..n).map(|j| if j % 2 == 0 { low[j / 2].clone() } else { high[j / 2].clone() }).collect()
}

/// Encodes a command the way clients send it: `*N` then N bulk strings.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// One parsed RESP frame, borrowing from the input buffer.
#[derive(Debug)]
pub struct Frame<'a> {
    /// All bytes of the frame, children included.
    pub raw: &'a [u8],
    /// The first line including its CRLF, e.g. `*3\r\n` or `$5\r\n`.
    pub head: &'a [u8],
    /// Elements of aggregates (maps and attributes list keys and values
    /// alternately; an attribute's last child is the reply it annotates).
    pub children: Vec<Frame<'a>>,
}

impl Frame<'_> {
    /// The RESP type byte: `+`, `$`, `*`, `%`, ...
    pub fn kind(&self) -> u8 {
        self.head[0]
    }
}

/// Parses the frame at the start of `buf`. `Ok(None)` means more bytes are
/// needed; `Err` means the bytes are not RESP2/RESP3.
pub fn parse_frame(buf: &[u8]) -> Result<Option<Frame<'_>>, String> {
    let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    if eol == 0 {
        return Err("empty line where a RESP type byte was expected".into());
    }
    let head = &buf[..eol + 2];
    let kind = head[0];
    let len_field = || -> Result<i64, String> {
        std::str::from_utf8(&buf[1..eol]).ok().and_then(|s| s.parse().ok()).ok_or_else(|| format!("bad length in {}", escape(head)))
    };
    // Number of child frames of an aggregate, or a leaf's total length.
    let children = match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => return Ok(Some(Frame { raw: head, head, children: Vec::new() })),
        b'$' | b'!' | b'=' => {
            let len = len_field()?;
            // `$-1` is RESP2's null bulk string.
            let total = match len {
                -1 if kind == b'$' => head.len(),
                len if len >= 0 => head.len() + len as usize + 2,
                _ => return Err(format!("bad length in {}", escape(head))),
            };
            if buf.len() < total {
                return Ok(None);
            }
            if &buf[total - 2..total] != b"\r\n" {
                return Err(format!("bulk payload after {} not ended by CRLF", escape(head)));
            }
            return Ok(Some(Frame { raw: &buf[..total], head, children: Vec::new() }));
        }
        b'*' | b'~' | b'>' => match len_field()? {
            // `*-1` is RESP2's null array.
            -1 if kind == b'*' => 0,
            n if n >= 0 => n as usize,
            _ => return Err(format!("bad length in {}", escape(head))),
        },
        b'%' | b'|' => match len_field()? {
            n if n >= 0 => 2 * n as usize + usize::from(kind == b'|'),
            _ => return Err(format!("bad length in {}", escape(head))),
        },
        _ => return Err(format!("unknown RESP type byte in {}", escape(head))),
    };
    let mut pos = head.len();
    let mut frames = Vec::with_capacity(children.min(1024));
    for _ in 0..children {
        match parse_frame(&buf[pos..])? {
            Some(child) => {
                pos += child.raw.len();
                frames.push(child);
            }
            None => return Ok(None),
        }
    }
    Ok(Some(Frame { raw: &buf[..pos], head, children: frames }))
}

/// Shows bytes readably: printable ASCII as is, `\r` `\n` `\t` `\\` `\"`
/// escaped, everything else as `\xHH` (the corpus quoting syntax).
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// The strings of a frame (bulk strings, integers, nulls as "(nil)"),
/// flattened, after its first line.
pub fn frame_strings(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw).to_string();
    let mut lines = text.split("\r\n").skip(1);
    let mut out = Vec::new();
    while let Some(l) = lines.next() {
        match l.as_bytes().first() {
            Some(b'$') if l == "$-1" => out.push("(nil)".to_string()),
            Some(b'$') => out.push(lines.next().unwrap_or_default().to_string()),
            Some(b':') => out.push(l[1..].to_string()),
            Some(b'_') => out.push("(nil)".to_string()),
            _ => {}
        }
    }
    out
}

/// kvick with `--dir dir --threads threads` and `extra` (persistence tests).
pub fn kvick_in(dir: &std::path::Path, threads: usize, extra: &[&str]) -> TestServer {
    let t = threads.to_string();
    let mut args = vec!["--dir", dir.to_str().unwrap(), "--threads", &t];
    args.extend_from_slice(extra);
    KvickServer::start(&args)
}

/// Starts kvick on `dir` with `args`, expecting it to refuse to start:
/// returns its error output (persistence tests of unloadable files).
pub fn kvick_exits(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kvick"))
        .args(["--port", &pick_free_port().to_string(), "--dir", dir.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "kvick started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs one command given as words, panicking with the command on an error.
pub fn q<T: redis::FromRedisValue>(c: &mut redis::Connection, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}
