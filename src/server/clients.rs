//! The clients connected to one core, for CLIENT LIST/KILL/INFO and INFO's
//! clients and stats sections.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;

use hashbrown::HashMap;

use crate::resp::Proto;

/// What other tasks on the core may read or change about a connection.
pub struct ClientInfo {
    pub id: u64,
    pub fd: i32,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub created_ms: u64,
    pub last_ms: Cell<u64>,
    pub name: RefCell<Vec<u8>>,
    pub db: Cell<usize>,
    pub proto: Cell<Proto>,
    pub last_cmd: Cell<&'static str>,
    pub qbuf: Cell<usize>,
    /// The size of the last batch of replies written (INFO's
    /// client_recent_max_output_buffer).
    pub obuf: Cell<usize>,
    pub killed: Cell<bool>,
    /// Pushes waiting for the connection (`server::pubsub`).
    pub outbox: crate::server::pubsub::Outbox,
    /// Client-side caching mode (`server::tracking`).
    pub tracking: RefCell<crate::server::tracking::Mode>,
}

impl ClientInfo {
    /// A new connection's information.
    pub fn new(id: u64, fd: i32, addr: SocketAddr, laddr: SocketAddr, now_ms: u64) -> Self {
        ClientInfo {
            id,
            fd,
            addr,
            laddr,
            created_ms: now_ms,
            last_ms: now_ms.into(),
            name: Default::default(),
            db: 0.into(),
            proto: crate::resp::Proto::Resp2.into(),
            last_cmd: "NULL".into(),
            qbuf: 0.into(),
            obuf: 0.into(),
            killed: false.into(),
            outbox: Default::default(),
            tracking: Default::default(),
        }
    }

    /// The information of client `id` where no connection of it is (see
    /// `Session::proxy`).
    pub fn detached(id: u64) -> Self {
        let nowhere = SocketAddr::from(([0, 0, 0, 0], 0));
        ClientInfo::new(id, -1, nowhere, nowhere, 0)
    }

    /// One line of CLIENT LIST / CLIENT INFO, with Redis 7.0's fields
    /// (`blocked`: waiting in a blocking command, flag `b`).
    pub fn line(&self, now_ms: u64, blocked: bool) -> String {
        let tracking = self.tracking.borrow();
        // Redis' flag letters, in its order.
        let mut flags = String::new();
        for (on, letter) in [
            (self.outbox.subscribed(), 'P'),
            (blocked, 'b'),
            (tracking.on, 't'),
            (tracking.broken_redirect, 'R'),
            (tracking.bcast, 'B'),
        ] {
            if on {
                flags.push(letter);
            }
        }
        if flags.is_empty() {
            flags.push('N');
        }
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi=-1 qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir={} resp={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            String::from_utf8_lossy(&self.name.borrow()),
            now_ms.saturating_sub(self.created_ms) / 1000,
            now_ms.saturating_sub(self.last_ms.get()) / 1000,
            flags,
            self.db.get(),
            self.outbox.channels.get(),
            self.outbox.patterns.get(),
            self.outbox.shard_channels.get(),
            self.qbuf.get(),
            self.last_cmd.get(),
            crate::server::tracking::redirection(&tracking),
            if self.proto.get() == Proto::Resp3 { 3 } else { 2 },
        )
    }

    /// Closes the connection: its pending read returns end-of-file.
    pub fn kill(&self) {
        self.killed.set(true);
        // SAFETY: shutdown(2) on a descriptor owned by a live connection task.
        unsafe {
            libc::shutdown(self.fd, libc::SHUT_RDWR);
        }
    }
}

#[derive(Default, Clone, Copy)]
pub struct CoreStats {
    pub connections_received: u64,
    pub commands_processed: u64,
    pub rejected_connections: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    /// Completed socket reads and writes (Redis' total_reads_processed and
    /// total_writes_processed).
    pub reads_processed: u64,
    pub writes_processed: u64,
}

/// Samples kept for the instantaneous rates: Redis' STATS_METRIC_SAMPLES.
const RATE_SAMPLES: usize = 16;

/// This core's rates (commands, input and output bytes per second), each
/// the mean of the last samples taken every 100 ms, as Redis'
/// trackInstantaneousMetric does in serverCron.
#[derive(Default)]
pub struct Rates {
    samples: [[f64; 3]; RATE_SAMPLES],
    next: usize,
    /// The counters and the clock at the previous sample.
    last: Option<(u64, [u64; 3])>,
}

impl Rates {
    fn sample(&mut self, now_ms: u64, s: &CoreStats) {
        let counts = [s.commands_processed, s.net_input_bytes, s.net_output_bytes];
        if let Some((at, before)) = self.last {
            let ms = now_ms.saturating_sub(at).max(1) as f64;
            // CONFIG RESETSTAT may have zeroed the counters meanwhile.
            self.samples[self.next] = std::array::from_fn(|i| counts[i].saturating_sub(before[i]) as f64 * 1000.0 / ms);
            self.next = (self.next + 1) % RATE_SAMPLES;
        }
        self.last = Some((now_ms, counts));
    }

    /// Commands per second, input and output bytes per second.
    pub fn current(&self) -> [f64; 3] {
        std::array::from_fn(|i| self.samples.iter().map(|s| s[i]).sum::<f64>() / RATE_SAMPLES as f64)
    }
}

#[derive(Default)]
pub struct Clients {
    pub map: HashMap<u64, Rc<ClientInfo>>,
    pub stats: CoreStats,
    pub rates: Rates,
    /// Clients of this core blocked on keys, by id (CLIENT UNBLOCK, INFO).
    pub blocked: HashMap<u64, std::sync::Arc<crate::shard::blocking::Waiter>>,
}

/// Samples the core's rates every 100 ms (`Rates`).
pub async fn sample_rates(core: Rc<crate::server::core::Core>) {
    loop {
        glommio::timer::sleep(std::time::Duration::from_millis(100)).await;
        let mut clients = core.clients.borrow_mut();
        let stats = clients.stats;
        clients.rates.sample(crate::util::now_ms(), &stats);
    }
}

/// Distinct error codes counted per core, bounding the table: a client can
/// make up codes (DEBUG ERROR, scripts' error_reply), and new ones past this
/// count only in the total.
const ERROR_CODES_MAX: usize = 128;
/// Longest error code kept (the rest of a longer first word is cut).
const ERROR_CODE_LEN: usize = 64;

/// The error replies this core's thread wrote (INFO's total_error_replies
/// and errorstats), by code: the error's first word, as Redis counts them.
#[derive(Default, Clone)]
pub struct ErrorStats {
    pub total: u64,
    pub by_code: std::collections::BTreeMap<String, u64>,
}

thread_local! {
    // Per thread is per core: every error reply is encoded on some core's
    // thread, which counts it without touching any shared state.
    static ERRORS: RefCell<ErrorStats> = RefCell::default();
}

/// Counts one error reply (`msg` without the leading '-'). Called only
/// when an error is written, so successful commands pay nothing.
pub fn count_error(msg: &str) {
    let code = msg.split(' ').next().unwrap_or("");
    let code = &code[..code.floor_char_boundary(ERROR_CODE_LEN)];
    ERRORS.with(|e| {
        let mut e = e.borrow_mut();
        e.total += 1;
        if let Some(n) = e.by_code.get_mut(code) {
            *n += 1;
        } else if e.by_code.len() < ERROR_CODES_MAX {
            e.by_code.insert(code.to_string(), 1);
        }
    });
}

/// This core's error counts.
pub fn error_stats() -> ErrorStats {
    ERRORS.with(|e| e.borrow().clone())
}

/// CONFIG RESETSTAT on this core.
pub fn reset_error_stats() {
    ERRORS.with(|e| *e.borrow_mut() = ErrorStats::default());
}

/// Turns on TCP keepalive as Redis' anetKeepAlive does: first probe after
/// `secs` idle seconds, then every secs/3, dropping the peer after 3 misses.
pub fn set_keepalive(fd: i32, secs: i64) {
    if secs <= 0 {
        return;
    }
    let secs = secs.min(i32::MAX as i64) as libc::c_int;
    let set = |level, opt, v: libc::c_int| {
        // SAFETY: setsockopt on a socket we own, with an int-sized value.
        unsafe { libc::setsockopt(fd, level, opt, &v as *const _ as *const libc::c_void, std::mem::size_of::<libc::c_int>() as libc::socklen_t) };
    };
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, (secs / 3).max(1));
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3);
}

/// Closes clients idle for longer than `timeout` seconds (0: never), checked
/// once a second on each core for its own clients, as Redis' clientsCron.
pub async fn close_idle_clients(core: Rc<crate::server::core::Core>) {
    loop {
        glommio::timer::sleep(std::time::Duration::from_secs(1)).await;
        let timeout = crate::config::get_int("timeout");
        if timeout <= 0 {
            continue;
        }
        let now = crate::util::now_ms();
        let limit = timeout as u64 * 1000;
        let clients = core.clients.borrow();
        for info in clients.map.values() {
            // A blocked client waits by its own timeout, as in Redis.
            if now.saturating_sub(info.last_ms.get()) > limit && !info.killed.get() && !clients.blocked.contains_key(&info.id) {
                info.kill();
            }
        }
    }
}
