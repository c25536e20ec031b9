//! kvick-bench: a small, cheap RESP load generator.
//!
//! It shares a 2-core machine with the server under test, so it is built to
//! cost as little CPU as possible: each client thread drives many non-blocking
//! connections from one epoll loop, requests are assembled into reused buffers
//! from pre-rendered fragments, and replies are parsed in place.
//!
//! Every connection keeps `--pipeline` requests in flight: it writes a batch,
//! waits for all of its replies (recording, for each reply, the time since the
//! batch was sent) and only then writes the next batch.
//!
//! Output ends with machine-readable lines for scripts:
//! `PREFILL keys=.. secs=.. ops_per_sec=.. errors=..` (with `--prefill`) and
//! `RESULT ops=.. ops_per_sec=.. p50_us=.. p99_us=.. p999_us=.. max_us=.. errors=.. nil=..
//! client_cpu_pct=..`, where client_cpu_pct is this process's CPU time during the
//! measurement as a percentage of one core: near 100 means the client, not the
//! server, may be the bottleneck.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::process;
use std::sync::{Barrier, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;

/// Keys are `<prefix><number zero-padded to 12 digits>`, the format
/// redis-benchmark uses for `-r`, so a `--prefill` here populates exactly the
/// keys a `redis-benchmark -r N` run reads (with the default prefix).
const KEY_DIGITS: usize = 12;
const MAX_KEYS: u64 = 1_000_000_000_000;
/// Requests per batch while prefilling: deep enough to amortise round trips,
/// but bounded in bytes so that large values do not make huge batches.
const PREFILL_PIPELINE: usize = 1000;
const PREFILL_BATCH_BYTES: usize = 1 << 20;
const READ_BUF_SIZE: usize = 64 * 1024;
/// Give up if the server sends nothing at all for this long.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
const EPOLL_TIMEOUT_MS: i32 = 1000;
/// Highest latency the histogram tracks (larger values are clamped): 60 s in µs.
const MAX_LATENCY_US: u64 = 60_000_000;
const MAX_ERROR_SAMPLES: usize = 5;

#[derive(Parser, Debug)]
#[command(
    name = "kvick-bench",
    version,
    about = "RESP load generator for kvick and Redis"
)]
struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(long, default_value_t = 6379)]
    port: u16,
    /// Total connections, split across the client threads.
    #[arg(long, default_value_t = 50)]
    connections: usize,
    /// Client threads, each running one epoll loop over its connections.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Requests in flight per connection (batch size).
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// SET:GET mix, e.g. "1:10" (one SET for every ten GETs).
    #[arg(long, default_value = "1:10", value_parser = parse_ratio)]
    ratio: Ratio,
    /// Key range: keys are drawn uniformly from [0, keys).
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Prefix prepended to the zero-padded key number.
    #[arg(long, default_value = "key:")]
    key_prefix: String,
    /// Size in bytes of the SET value.
    #[arg(long, default_value_t = 32)]
    data_size: usize,
    /// Seconds to run the measurement for (ignored with --requests).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Run this many requests in total instead of for --duration; 0 skips the
    /// measurement (useful with --prefill).
    #[arg(long)]
    requests: Option<u64>,
    /// SET every key in the range once (deeply pipelined) before measuring.
    #[arg(long)]
    prefill: bool,
    /// PRNG seed; each connection derives its own stream from it.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Send this command instead of the SET/GET mix, words split on spaces,
    /// as redis-benchmark's own command mode: every `__rand_int__` becomes a
    /// random number below --keys (12 digits, one per occurrence) and a
    /// `__data__` word a value of --data-size bytes. E.g. "LPUSH mylist
    /// __data__" or "SADD myset element:__rand_int__".
    #[arg(long)]
    command: Option<String>,
}

#[derive(Clone, Copy, Debug)]
struct Ratio {
    set: u64,
    get: u64,
}

fn parse_ratio(s: &str) -> Result<Ratio, String> {
    let (set, get) = s
        .split_once(':')
        .ok_or_else(|| format!("expected SET:GET, got {s:?}"))?;
    let parse = |v: &str| v.trim().parse::<u64>().map_err(|e| format!("{v:?}: {e}"));
    let ratio = Ratio {
        set: parse(set)?,
        get: parse(get)?,
    };
    if ratio.set + ratio.get == 0 {
        return Err("ratio must not be 0:0".into());
    }
    Ok(ratio)
}

fn fatal(msg: impl std::fmt::Display) -> ! {
    eprintln!("kvick-bench: {msg}");
    process::exit(1);
}

/// xorshift64*: fast and plenty good for picking keys.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // splitmix64 scrambles nearby seeds apart and never yields the
        // all-zero state xorshift cannot leave.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, n) by multiply-shift (bias is negligible for our n).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

/// A `--command` request rendered once: its bytes, with the offsets where
/// each request writes a fresh random number.
struct Template {
    bytes: Vec<u8>,
    rand_at: Vec<usize>,
}

const RAND_INT: &str = "__rand_int__";

impl Template {
    fn new(command: &str, data_size: usize) -> Template {
        let words: Vec<&str> = command.split(' ').filter(|w| !w.is_empty()).collect();
        let mut bytes = format!("*{}\r\n", words.len()).into_bytes();
        let mut rand_at = Vec::new();
        for w in words {
            let word = if w == "__data__" { "x".repeat(data_size) } else { w.replace(RAND_INT, &"0".repeat(KEY_DIGITS)) };
            bytes.extend_from_slice(format!("${}\r\n", word.len()).as_bytes());
            let start = bytes.len();
            for (i, _) in w.match_indices(RAND_INT) {
                // Each earlier occurrence in the word is 12 digits, as long as
                // the placeholder itself: offsets carry over unchanged.
                rand_at.push(start + i);
            }
            bytes.extend_from_slice(word.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        Template { bytes, rand_at }
    }

    fn push(&self, buf: &mut Vec<u8>, rng: &mut Rng, keys: u64) {
        let start = buf.len();
        buf.extend_from_slice(&self.bytes);
        for &at in &self.rand_at {
            buf[start + at..start + at + KEY_DIGITS].copy_from_slice(&key_digits(rng.below(keys)));
        }
    }
}

/// Pre-rendered RESP fragments: a request is these plus the key digits.
struct Encoder {
    /// `*3\r\n$3\r\nSET\r\n$<keylen>\r\n<prefix>`
    set_head: Vec<u8>,
    /// `*2\r\n$3\r\nGET\r\n$<keylen>\r\n<prefix>`
    get_head: Vec<u8>,
    /// `\r\n$<datasize>\r\n<value>\r\n`
    set_tail: Vec<u8>,
    /// The `--command`, if one was given.
    command: Option<Template>,
}

impl Encoder {
    fn new(prefix: &str, data_size: usize, command: Option<&str>) -> Self {
        let key_len = prefix.len() + KEY_DIGITS;
        let head = |cmd: &str, argc: usize| {
            let mut v =
                format!("*{argc}\r\n${}\r\n{cmd}\r\n${key_len}\r\n", cmd.len()).into_bytes();
            v.extend_from_slice(prefix.as_bytes());
            v
        };
        let mut set_tail = format!("\r\n${data_size}\r\n").into_bytes();
        set_tail.resize(set_tail.len() + data_size, b'x');
        set_tail.extend_from_slice(b"\r\n");
        Encoder {
            set_head: head("SET", 3),
            get_head: head("GET", 2),
            set_tail,
            command: command.map(|c| Template::new(c, data_size)),
        }
    }

    /// Longest request this encoder produces.
    fn max_request_len(&self) -> usize {
        self.set_head.len() + KEY_DIGITS + self.set_tail.len()
    }

    fn push_set(&self, buf: &mut Vec<u8>, key: u64) {
        buf.extend_from_slice(&self.set_head);
        push_key_digits(buf, key);
        buf.extend_from_slice(&self.set_tail);
    }

    fn push_get(&self, buf: &mut Vec<u8>, key: u64) {
        buf.extend_from_slice(&self.get_head);
        push_key_digits(buf, key);
        buf.extend_from_slice(b"\r\n");
    }
}

fn push_key_digits(buf: &mut Vec<u8>, key: u64) {
    buf.extend_from_slice(&key_digits(key));
}

/// `key` in decimal, zero-padded to KEY_DIGITS (as redis-benchmark's `-r`).
fn key_digits(mut key: u64) -> [u8; KEY_DIGITS] {
    let mut digits = [b'0'; KEY_DIGITS];
    for d in digits.iter_mut().rev() {
        *d = b'0' + (key % 10) as u8;
        key /= 10;
    }
    digits
}

/// What a top-level reply was, as far as the statistics care.
#[derive(Debug, PartialEq)]
enum ReplyKind {
    Value,
    /// A null bulk string or null array (`$-1`, `*-1`): a GET miss.
    Nil,
    Error,
}

/// Parses one complete RESP2 reply at the start of `buf`.
/// Returns its length and kind, or `None` if `buf` holds only part of it.
fn parse_reply(buf: &[u8]) -> Result<Option<(usize, ReplyKind)>, String> {
    let mut kind = ReplyKind::Value;
    let mut pos = 0;
    // Values still to read: the reply itself plus pending array elements.
    let mut pending: u64 = 1;
    while pending > 0 {
        pending -= 1;
        if pos >= buf.len() {
            return Ok(None);
        }
        let tag = buf[pos];
        let Some(line_end) = find_crlf(buf, pos + 1) else {
            return Ok(None);
        };
        let line = &buf[pos + 1..line_end];
        let top_level = pos == 0;
        pos = line_end + 2;
        match tag {
            b'+' | b':' => {}
            b'-' => {
                if top_level {
                    kind = ReplyKind::Error;
                }
            }
            b'$' => match parse_int(line)? {
                -1 => {
                    if top_level {
                        kind = ReplyKind::Nil;
                    }
                }
                n if n >= 0 => {
                    let end = pos + n as usize + 2;
                    if buf.len() < end {
                        return Ok(None);
                    }
                    if &buf[end - 2..end] != b"\r\n" {
                        return Err("bulk string not terminated by CRLF".into());
                    }
                    pos = end;
                }
                n => return Err(format!("bad bulk length {n}")),
            },
            b'*' => match parse_int(line)? {
                -1 => {
                    if top_level {
                        kind = ReplyKind::Nil;
                    }
                }
                n if n >= 0 => pending += n as u64,
                n => return Err(format!("bad array length {n}")),
            },
            other => return Err(format!("unexpected reply type byte {:?}", other as char)),
        }
    }
    Ok(Some((pos, kind)))
}

/// Index of the `\r` of the first CRLF at or after `from`.
fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let rel = buf.get(from..)?.iter().position(|&b| b == b'\r')?;
    let at = from + rel;
    match buf.get(at + 1) {
        Some(b'\n') => Some(at),
        Some(_) => find_crlf(buf, at + 1),
        None => None,
    }
}

fn parse_int(line: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad integer {:?}", String::from_utf8_lossy(line)))
}

/// What the requests of a phase look like.
#[derive(Clone, Copy)]
enum Workload {
    /// SET each key of the connection's slice once, in order.
    Prefill,
    /// Uniformly random keys, SET or GET per the ratio.
    Mixed { ratio: Ratio, keys: u64 },
    /// The `--command` template, random numbers below `keys`.
    Command { keys: u64 },
}

struct Conn {
    stream: TcpStream,
    rng: Rng,
    /// Requests this connection may still send in the current phase.
    quota: u64,
    /// Next key to SET while prefilling.
    next_key: u64,
    wbuf: Vec<u8>,
    wpos: usize,
    rbuf: Vec<u8>,
    /// Unparsed bytes are `rbuf[rstart..rend]`.
    rstart: usize,
    rend: usize,
    /// Replies still expected for the batch in flight.
    in_flight: usize,
    sent_at: Instant,
    /// Whether EPOLLOUT is registered (a write is waiting for room).
    want_write: bool,
}

impl Conn {
    fn connect(addr: &str, seed: u64) -> io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        Ok(Conn {
            stream,
            rng: Rng::new(seed),
            quota: 0,
            next_key: 0,
            // Grows to the largest batch once, then is reused.
            wbuf: Vec::new(),
            wpos: 0,
            rbuf: vec![0; READ_BUF_SIZE],
            rstart: 0,
            rend: 0,
            in_flight: 0,
            sent_at: Instant::now(),
            want_write: false,
        })
    }

    /// Fills the write buffer with the next batch and records its send time.
    fn build_batch(&mut self, workload: Workload, pipeline: usize, enc: &Encoder) {
        let n = pipeline.min(self.quota as usize);
        self.wbuf.clear();
        self.wpos = 0;
        for _ in 0..n {
            match workload {
                Workload::Prefill => {
                    enc.push_set(&mut self.wbuf, self.next_key);
                    self.next_key += 1;
                }
                Workload::Mixed { ratio, keys } => {
                    let key = self.rng.below(keys);
                    if self.rng.below(ratio.set + ratio.get) < ratio.set {
                        enc.push_set(&mut self.wbuf, key);
                    } else {
                        enc.push_get(&mut self.wbuf, key);
                    }
                }
                Workload::Command { keys } => {
                    let t = enc.command.as_ref().expect("a command workload has a template");
                    t.push(&mut self.wbuf, &mut self.rng, keys);
                }
            }
        }
        self.quota -= n as u64;
        self.in_flight = n;
        self.sent_at = Instant::now();
    }

    /// Writes as much of the batch as the socket takes; true once all is sent.
    fn flush(&mut self) -> io::Result<bool> {
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "socket closed")),
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Reads once and accounts every complete reply; false if nothing was ready.
    fn read_replies(&mut self, stats: &mut PhaseStats) -> io::Result<bool> {
        if self.rend == self.rbuf.len() {
            // A single reply larger than the buffer (rstart is 0 after compaction).
            let len = self.rbuf.len();
            self.rbuf.resize(len * 2, 0);
        }
        let n = match self.stream.read(&mut self.rbuf[self.rend..]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed the connection",
                ))
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                return Ok(false)
            }
            Err(e) => return Err(e),
        };
        let now = Instant::now();
        self.rend += n;
        let latency_us = now.duration_since(self.sent_at).as_micros() as u64;
        while self.rstart < self.rend {
            let pending = &self.rbuf[self.rstart..self.rend];
            let Some((len, kind)) = parse_reply(pending).map_err(protocol_error)? else {
                break;
            };
            if self.in_flight == 0 {
                return Err(protocol_error("reply to a request that was never sent"));
            }
            match kind {
                ReplyKind::Value => {}
                ReplyKind::Nil => stats.nils += 1,
                ReplyKind::Error => stats.record_error(&pending[..len]),
            }
            stats.ops += 1;
            stats.hist.saturating_record(latency_us);
            self.in_flight -= 1;
            self.rstart += len;
        }
        // Keep the unparsed tail at the front so the buffer never creeps.
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        } else if self.rstart > 0 {
            self.rbuf.copy_within(self.rstart..self.rend, 0);
            self.rend -= self.rstart;
            self.rstart = 0;
        }
        stats.finished = now;
        Ok(true)
    }
}

fn protocol_error(msg: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("protocol error: {msg}"))
}

struct PhaseStats {
    ops: u64,
    errors: u64,
    nils: u64,
    /// A few distinct error replies, to show what went wrong.
    error_samples: Vec<String>,
    hist: Histogram<u64>,
    started: Instant,
    /// When the last reply arrived.
    finished: Instant,
}

impl PhaseStats {
    fn new(started: Instant) -> Self {
        PhaseStats {
            ops: 0,
            errors: 0,
            nils: 0,
            error_samples: Vec::new(),
            hist: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds"),
            started,
            finished: started,
        }
    }

    fn record_error(&mut self, reply: &[u8]) {
        self.errors += 1;
        if self.error_samples.len() < MAX_ERROR_SAMPLES {
            let msg = String::from_utf8_lossy(reply).trim_end().to_string();
            if !self.error_samples.contains(&msg) {
                self.error_samples.push(msg);
            }
        }
    }

    fn merge(&mut self, other: PhaseStats) {
        self.ops += other.ops;
        self.errors += other.errors;
        self.nils += other.nils;
        for msg in other.error_samples {
            if self.error_samples.len() < MAX_ERROR_SAMPLES && !self.error_samples.contains(&msg) {
                self.error_samples.push(msg);
            }
        }
        self.hist.add(&other.hist).expect("histograms share bounds");
        self.started = self.started.min(other.started);
        self.finished = self.finished.max(other.finished);
    }

    fn secs(&self) -> f64 {
        self.finished.duration_since(self.started).as_secs_f64()
    }

    fn ops_per_sec(&self) -> f64 {
        let secs = self.secs();
        if secs > 0.0 {
            self.ops as f64 / secs
        } else {
            0.0
        }
    }
}

/// Thin owner of an epoll instance.
struct Epoll {
    fd: RawFd,
    events: Vec<libc::epoll_event>,
}

impl Epoll {
    fn new(capacity: usize) -> io::Result<Self> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Epoll {
            fd,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; capacity.max(1)],
        })
    }

    fn ctl(&self, op: i32, fd: RawFd, token: usize, want_write: bool) -> io::Result<()> {
        let mut flags = libc::EPOLLIN as u32;
        if want_write {
            flags |= libc::EPOLLOUT as u32;
        }
        let mut ev = libc::epoll_event {
            events: flags,
            u64: token as u64,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        if unsafe { libc::epoll_ctl(self.fd, op, fd, &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits for events; returns how many of `self.events` are filled.
    fn wait(&mut self, timeout_ms: i32) -> io::Result<usize> {
        // SAFETY: the buffer holds `events.len()` entries the kernel may fill.
        let n = unsafe {
            libc::epoll_wait(
                self.fd,
                self.events.as_mut_ptr(),
                self.events.len() as i32,
                timeout_ms,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(err)
            };
        }
        Ok(n as usize)
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: we own this descriptor.
        unsafe { libc::close(self.fd) };
    }
}

/// One client thread: its connections and their event loop.
struct Client<'a> {
    conns: Vec<Conn>,
    epoll: Epoll,
    enc: &'a Encoder,
}

impl<'a> Client<'a> {
    fn new(conns: Vec<Conn>, enc: &'a Encoder) -> io::Result<Self> {
        let epoll = Epoll::new(conns.len())?;
        for (i, c) in conns.iter().enumerate() {
            epoll.ctl(libc::EPOLL_CTL_ADD, c.stream.as_raw_fd(), i, false)?;
        }
        Ok(Client { conns, epoll, enc })
    }

    /// Runs until every connection has used up its quota, or the deadline has
    /// passed and the batches in flight have been answered.
    fn run_phase(
        &mut self,
        workload: Workload,
        pipeline: usize,
        deadline: Option<Instant>,
    ) -> io::Result<PhaseStats> {
        let mut stats = PhaseStats::new(Instant::now());
        let mut active = 0;
        for i in 0..self.conns.len() {
            if self.next_batch(i, workload, pipeline, deadline)? {
                active += 1;
            }
        }
        let mut last_event = Instant::now();
        while active > 0 {
            let n = self.epoll.wait(EPOLL_TIMEOUT_MS)?;
            if n == 0 {
                if last_event.elapsed() > STALL_TIMEOUT {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no reply from the server for {} s", STALL_TIMEOUT.as_secs()),
                    ));
                }
                continue;
            }
            last_event = Instant::now();
            for e in 0..n {
                let ev = self.epoll.events[e];
                let (i, flags) = (ev.u64 as usize, ev.events);
                let conn = &mut self.conns[i];
                if flags & libc::EPOLLOUT as u32 != 0 && conn.want_write && conn.flush()? {
                    conn.want_write = false;
                    self.epoll
                        .ctl(libc::EPOLL_CTL_MOD, conn.stream.as_raw_fd(), i, false)?;
                }
                let readable = (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32;
                if flags & readable != 0 && conn.read_replies(&mut stats)? && conn.in_flight == 0 {
                    // All replies are in, so the whole batch was written.
                    if !self.next_batch(i, workload, pipeline, deadline)? {
                        active -= 1;
                    }
                }
            }
        }
        Ok(stats)
    }

    /// Sends connection `i`'s next batch; false if it has nothing left to send.
    fn next_batch(
        &mut self,
        i: usize,
        workload: Workload,
        pipeline: usize,
        deadline: Option<Instant>,
    ) -> io::Result<bool> {
        let conn = &mut self.conns[i];
        if conn.quota == 0 || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
        conn.build_batch(workload, pipeline, self.enc);
        if !conn.flush()? {
            conn.want_write = true;
            self.epoll
                .ctl(libc::EPOLL_CTL_MOD, conn.stream.as_raw_fd(), i, true)?;
        }
        Ok(true)
    }
}

/// Share `index` of `total` split into `parts` near-equal contiguous pieces.
fn share(total: u64, parts: usize, index: usize) -> (u64, u64) {
    let at = |k: usize| (u128::from(total) * k as u128 / parts as u128) as u64;
    (at(index), at(index + 1))
}

fn validate(args: &Args) -> Result<(), String> {
    if args.connections == 0 || args.threads == 0 || args.pipeline == 0 {
        return Err("--connections, --threads and --pipeline must be at least 1".into());
    }
    if args.threads > args.connections {
        return Err("--threads must not exceed --connections".into());
    }
    if args.keys == 0 || args.keys > MAX_KEYS {
        return Err(format!("--keys must be in 1..={MAX_KEYS}"));
    }
    if args.requests.is_none() && args.duration == 0 {
        return Err("--duration must be at least 1 (or use --requests)".into());
    }
    Ok(())
}

struct ThreadResult {
    prefill: Option<PhaseStats>,
    measure: Option<PhaseStats>,
}

/// CPU time (user + system) used so far by this whole process.
fn process_cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct we pass it.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn main() {
    let args = Args::parse();
    if let Err(msg) = validate(&args) {
        fatal(msg);
    }
    let addr = format!("{}:{}", args.host, args.port);
    let enc = Encoder::new(&args.key_prefix, args.data_size, args.command.as_deref());
    let measure = args.requests != Some(0);
    let prefill_depth = (PREFILL_BATCH_BYTES / enc.max_request_len()).clamp(1, PREFILL_PIPELINE);

    let mix = match &args.command {
        Some(c) => format!("command {c:?}"),
        None => format!("SET:GET {}:{}", args.ratio.set, args.ratio.get),
    };
    println!(
        "kvick-bench: {addr}, {} connections on {} thread(s), pipeline {}, {mix}, \
         {} keys, {}-byte values, {}",
        args.connections,
        args.threads,
        args.pipeline,
        args.keys,
        args.data_size,
        match args.requests {
            Some(n) => format!("{n} requests"),
            None => format!("{} s", args.duration),
        }
    );

    // Every thread waits here after connecting, and again before measuring,
    // so all connections start each phase together.
    let barrier = Barrier::new(args.threads);
    let cpu_at_measure_start = OnceLock::new();
    let results: Vec<ThreadResult> = thread::scope(|s| {
        let handles: Vec<_> = (0..args.threads)
            .map(|t| {
                let (args, addr, enc, barrier, cpu_start) =
                    (&args, &addr, &enc, &barrier, &cpu_at_measure_start);
                s.spawn(move || {
                    let (first, end) = share(args.connections as u64, args.threads, t);
                    let conns = (first..end)
                        .map(|g| {
                            Conn::connect(addr, args.seed ^ g.wrapping_mul(0x9e37_79b9))
                                .unwrap_or_else(|e| fatal(format!("connect to {addr}: {e}")))
                        })
                        .collect();
                    let mut client = Client::new(conns, enc).unwrap_or_else(|e| fatal(e));
                    let fail = |e: io::Error| -> ! { fatal(format!("{addr}: {e}")) };
                    barrier.wait();

                    let prefill = args.prefill.then(|| {
                        for (c, g) in client.conns.iter_mut().zip(first..) {
                            let (lo, hi) = share(args.keys, args.connections, g as usize);
                            c.next_key = lo;
                            c.quota = hi - lo;
                        }
                        client
                            .run_phase(Workload::Prefill, prefill_depth, None)
                            .unwrap_or_else(|e| fail(e))
                    });
                    if barrier.wait().is_leader() {
                        cpu_start.get_or_init(process_cpu_time);
                    }

                    let measure = measure.then(|| {
                        for (c, g) in client.conns.iter_mut().zip(first..) {
                            c.quota = match args.requests {
                                Some(total) => {
                                    let (lo, hi) = share(total, args.connections, g as usize);
                                    hi - lo
                                }
                                None => u64::MAX,
                            };
                        }
                        let workload = match args.command {
                            Some(_) => Workload::Command { keys: args.keys },
                            None => Workload::Mixed {
                                ratio: args.ratio,
                                keys: args.keys,
                            },
                        };
                        let deadline = match args.requests {
                            Some(_) => None,
                            None => Some(Instant::now() + Duration::from_secs(args.duration)),
                        };
                        client
                            .run_phase(workload, args.pipeline, deadline)
                            .unwrap_or_else(|e| fail(e))
                    });
                    ThreadResult { prefill, measure }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread panicked"))
            .collect()
    });
    let client_cpu = process_cpu_time() - *cpu_at_measure_start.get().expect("set at the barrier");

    let merge_all = |phases: Vec<Option<PhaseStats>>| {
        phases.into_iter().flatten().reduce(|mut acc, s| {
            acc.merge(s);
            acc
        })
    };
    let (prefills, measures): (Vec<_>, Vec<_>) =
        results.into_iter().map(|r| (r.prefill, r.measure)).unzip();

    if let Some(p) = merge_all(prefills) {
        println!(
            "prefill: {} keys in {:.2} s ({:.0} SET/s)",
            p.ops,
            p.secs(),
            p.ops_per_sec()
        );
        print_errors(&p);
        println!(
            "PREFILL keys={} secs={:.3} ops_per_sec={:.0} errors={}",
            p.ops,
            p.secs(),
            p.ops_per_sec(),
            p.errors
        );
    }
    if let Some(m) = merge_all(measures) {
        let q = |quantile: f64| m.hist.value_at_quantile(quantile);
        let (p50, p99, p999, max) = (q(0.5), q(0.99), q(0.999), m.hist.max());
        let ms = |us: u64| us as f64 / 1000.0;
        println!("ops: {} in {:.2} s", m.ops, m.secs());
        println!("ops/sec: {:.0}", m.ops_per_sec());
        println!(
            "latency ms: p50 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            ms(p50),
            ms(p99),
            ms(p999),
            ms(max)
        );
        let client_cpu_pct = 100.0 * client_cpu.as_secs_f64() / m.secs().max(f64::EPSILON);
        println!("GET misses (nil): {}", m.nils);
        println!(
            "client CPU: {:.2} s ({client_cpu_pct:.0}% of one core)",
            client_cpu.as_secs_f64()
        );
        print_errors(&m);
        println!(
            "RESULT ops={} ops_per_sec={:.0} p50_us={p50} p99_us={p99} p999_us={p999} max_us={max} errors={} nil={} \
             client_cpu_pct={client_cpu_pct:.0}",
            m.ops,
            m.ops_per_sec(),
            m.errors,
            m.nils
        );
    }
}

fn print_errors(stats: &PhaseStats) {
    println!("errors: {}", stats.errors);
    for msg in &stats.error_samples {
        println!("  e.g. {msg}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_reply_type() {
        assert_eq!(
            parse_reply(b"+OK\r\n").unwrap(),
            Some((5, ReplyKind::Value))
        );
        assert_eq!(
            parse_reply(b"-ERR x\r\n").unwrap(),
            Some((8, ReplyKind::Error))
        );
        assert_eq!(
            parse_reply(b":42\r\n").unwrap(),
            Some((5, ReplyKind::Value))
        );
        assert_eq!(
            parse_reply(b"$3\r\nabc\r\n").unwrap(),
            Some((9, ReplyKind::Value))
        );
        assert_eq!(
            parse_reply(b"$0\r\n\r\n").unwrap(),
            Some((6, ReplyKind::Value))
        );
        assert_eq!(parse_reply(b"$-1\r\n").unwrap(), Some((5, ReplyKind::Nil)));
        assert_eq!(parse_reply(b"*-1\r\n").unwrap(), Some((5, ReplyKind::Nil)));
        assert_eq!(parse_reply(b"*0\r\n").unwrap(), Some((4, ReplyKind::Value)));
        let nested = b"*2\r\n*2\r\n:1\r\n-no\r\n$-1\r\n+tail";
        assert_eq!(parse_reply(nested).unwrap(), Some((22, ReplyKind::Value)));
    }

    #[test]
    fn waits_for_incomplete_replies() {
        let full = b"*3\r\n$5\r\nhello\r\n:7\r\n$-1\r\n";
        for cut in 0..full.len() {
            assert_eq!(parse_reply(&full[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert_eq!(
            parse_reply(full).unwrap(),
            Some((full.len(), ReplyKind::Value))
        );
        // A bulk payload may itself contain CR and LF.
        assert_eq!(
            parse_reply(b"$4\r\na\r\nb\r\n").unwrap(),
            Some((10, ReplyKind::Value))
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_reply(b"?x\r\n").is_err());
        assert!(parse_reply(b"$abc\r\n").is_err());
        assert!(parse_reply(b"$1\r\nab\r\n").is_err());
    }

    #[test]
    fn encodes_requests() {
        let enc = Encoder::new("key:", 3, None);
        let mut buf = Vec::new();
        enc.push_set(&mut buf, 42);
        enc.push_get(&mut buf, 7);
        let set: &[u8] = b"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000042\r\n$3\r\nxxx\r\n";
        let get: &[u8] = b"*2\r\n$3\r\nGET\r\n$16\r\nkey:000000000007\r\n";
        assert_eq!(buf, [set, get].concat());
        assert_eq!(enc.max_request_len(), set.len());
    }

    #[test]
    fn renders_commands_with_random_numbers_and_data() {
        let t = Template::new("ZADD  z __rand_int__ m:__rand_int__:__rand_int__ __data__", 4);
        let mut rng = Rng::new(3);
        let mut buf = Vec::new();
        t.push(&mut buf, &mut rng, 1000);
        let text = String::from_utf8(buf).unwrap();
        let parts: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(&parts[..6], ["*5", "$4", "ZADD", "$1", "z", "$12"]);
        assert!(parts[6].len() == 12 && parts[6].bytes().all(|b| b.is_ascii_digit()) && parts[6] < "000000001000");
        assert_eq!(parts[7], "$27");
        let m: Vec<&str> = parts[8].split(':').collect();
        assert_eq!(m[0], "m");
        assert!(m[1..].iter().all(|n| n.len() == 12 && n.bytes().all(|b| b.is_ascii_digit())));
        assert_eq!(&parts[9..], ["$4", "xxxx", ""]);
    }

    #[test]
    fn shares_cover_the_range() {
        let parts: Vec<_> = (0..3).map(|i| share(10, 3, i)).collect();
        assert_eq!(parts, vec![(0, 3), (3, 6), (6, 10)]);
    }

    #[test]
    fn rng_stays_in_range() {
        let mut rng = Rng::new(0);
        assert!((0..10_000).all(|_| rng.below(7) < 7));
    }

    #[test]
    fn parses_ratio() {
        let r = parse_ratio("1:10").unwrap();
        assert_eq!((r.set, r.get), (1, 10));
        assert!(parse_ratio("0:0").is_err());
        assert!(parse_ratio("3").is_err());
    }
}
