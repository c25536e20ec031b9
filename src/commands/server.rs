//! Server commands: DBSIZE, FLUSHDB, FLUSHALL, SWAPDB, INFO, CONFIG, COMMAND,
//! TIME, LASTSAVE, DEBUG, SHUTDOWN.
//!
//! Commands that change every shard (FLUSHDB, FLUSHALL, SWAPDB) hold every
//! shard whole while they run (`on_every_shard`), so no client ever sees one
//! core flushed or swapped and another not. Commands that only read (DBSIZE,
//! INFO, CLIENT LIST) fan out without locks, as Redis' are point-in-time only
//! per field anyway.

use std::fmt::{Display, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use super::connection::help;
use super::docs::Docs;
use super::{by_index, cmd, flags::*, keyspecs, lookup, lookup_sub, BoxFuture, Command, OwnedArgs, Run, NOKEYS};
use crate::config;
use crate::persistence::snapshot;
use crate::resp::parser::parse_i64;
use crate::resp::{err, Reply};
use crate::server::clients::{self, CoreStats, ErrorStats};
use crate::server::session::Session;
use crate::server::txn::{Step, Txn};
use crate::shard::db::Db;
use crate::shard::locks::{LockSet, Mode};
use crate::shard::{Shard, ShardStats};
use crate::util::{glob_match, now_ms, now_us};

const G: &str = "server";

/// The Redis version kvick reports (the command set it implements).
pub const REDIS_VERSION: &str = "7.0.15";

/// Flags of the administrative subcommands (CONFIG GET/SET/RESETSTAT).
const ADMIN_FLAGS: u32 = ADMIN | NOSCRIPT | LOADING | STALE;

pub static COMMANDS: &[Command] = &[
    cmd("dbsize", 1, READONLY | FAST, NOKEYS, G, "1.0.0", "Return the number of keys in the selected database", Run::Conn(dbsize)),
    cmd("flushdb", -1, WRITE, NOKEYS, G, "1.0.0", "Remove all keys from the current database", Run::Conn(flushdb)),
    cmd("flushall", -1, WRITE, NOKEYS, G, "1.0.0", "Remove all keys from all databases", Run::Conn(flushall)),
    cmd("swapdb", 3, WRITE | FAST, NOKEYS, G, "4.0.0", "Swaps two Redis databases", Run::Conn(swapdb)),
    cmd("time", 1, LOADING | STALE | FAST, NOKEYS, G, "2.6.0", "Return the current server time", Run::Conn(time)),
    cmd("lastsave", 1, LOADING | STALE | FAST, NOKEYS, G, "1.0.0", "Get the UNIX time stamp of the last successful save to disk", Run::Conn(lastsave)),
    cmd("info", -1, LOADING | STALE, NOKEYS, G, "1.0.0", "Get information and statistics about the server", Run::Conn(info)),
    cmd("config", -2, 0, NOKEYS, G, "2.0.0", "A container for server configuration commands", Run::Conn(config_help)).with_subs(CONFIG),
    cmd("command", -1, LOADING | STALE, NOKEYS, G, "2.8.13", "Get array of Redis command details", Run::Conn(command)).with_subs(COMMAND),
    cmd("debug", -2, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, G, "1.0.0", "A container for debugging commands", Run::Conn(debug)),
    cmd("shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY, NOKEYS, G, "1.0.0", "Synchronously save the dataset to disk and then shut down the server", Run::Conn(shutdown)),
    cmd("save", 1, ADMIN | NOSCRIPT | NO_MULTI, NOKEYS, G, "1.0.0", "Synchronously save the dataset to disk", Run::Conn(save)),
    cmd("bgsave", -1, ADMIN | NOSCRIPT, NOKEYS, G, "1.0.0", "Asynchronously save the dataset to disk", Run::Conn(bgsave)),
    cmd("bgrewriteaof", 1, ADMIN | NOSCRIPT, NOKEYS, G, "1.0.0", "Asynchronously rewrite the append-only file", Run::Conn(bgrewriteaof)),
];

static CONFIG: &[Command] = &[
    cmd("config|get", -3, ADMIN_FLAGS, NOKEYS, G, "2.0.0", "Get the values of configuration parameters", Run::Conn(config_get)),
    cmd("config|set", -4, ADMIN_FLAGS, NOKEYS, G, "2.0.0", "Set configuration parameters to the given values", Run::Conn(config_set)),
    cmd("config|resetstat", 2, ADMIN_FLAGS, NOKEYS, G, "2.0.0", "Reset the stats returned by INFO", Run::Conn(config_resetstat)),
    cmd("config|help", 2, LOADING | STALE, NOKEYS, G, "5.0.0", "Show helpful text about the different subcommands", Run::Conn(config_help)),
];

static COMMAND: &[Command] = &[
    cmd("command|count", 2, LOADING | STALE, NOKEYS, G, "2.8.13", "Get total number of Redis commands", Run::Conn(command_count)),
    cmd("command|info", -2, LOADING | STALE, NOKEYS, G, "2.8.13", "Get array of specific Redis command details, or all when no argument is given.", Run::Conn(command_info)),
    cmd("command|docs", -2, LOADING | STALE, NOKEYS, G, "7.0.0", "Get array of specific Redis command documentation", Run::Conn(command_docs)),
    cmd("command|list", -2, LOADING | STALE, NOKEYS, G, "7.0.0", "Get an array of Redis command names", Run::Conn(command_list)),
    cmd("command|getkeys", -4, LOADING | STALE, NOKEYS, G, "2.8.13", "Extract keys given a full Redis command", Run::Conn(command_getkeys)),
    cmd("command|getkeysandflags", -4, LOADING | STALE, NOKEYS, G, "7.0.0", "Extract keys and access flags given a full Redis command", Run::Conn(command_getkeys)),
    cmd("command|help", 2, LOADING | STALE, NOKEYS, G, "5.0.0", "Show helpful text about the different subcommands", Run::Conn(command_help)),
];

// ---- Keyspace-wide changes -------------------------------------------------

fn dbsize(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let db = s.db;
        let sizes = s.core.call_all(move |c| c.shard.borrow().dbs[db].len()).await;
        s.reply().int(sizes.into_iter().sum::<usize>() as i64);
    })
}

/// Runs `f` on every shard while holding every shard whole (all databases),
/// so the change is atomic across cores.
async fn on_every_shard(s: &Session, f: impl Fn(&mut Shard) + Send + Clone + 'static) {
    let shards = 0..s.core.nshards();
    let whole = |i| (i, LockSet { db: 0, keys: Vec::new(), mode: Mode::Exclusive, whole_shard: true });
    let txn = Txn::lock(s, shards.clone().map(whole).collect()).await;
    let steps = shards
        .map(|i| {
            let f = f.clone();
            let step: Step<()> = Box::new(move |sh: &mut Shard| f(sh));
            (i, step)
        })
        .collect();
    txn.on_many(steps).await;
    txn.release().await;
}

/// FLUSHDB/FLUSHALL's [ASYNC|SYNC]; without it, lazyfree-lazy-user-flush decides.
fn flush_is_async(s: &mut Session, a: &OwnedArgs) -> Option<bool> {
    match a.len() {
        1 => Some(config::get_int("lazyfree-lazy-user-flush") != 0),
        2 if a.is(1, "async") => Some(true),
        2 if a.is(1, "sync") => Some(false),
        _ => {
            s.reply().error(err::SYNTAX);
            None
        }
    }
}

/// Keys handed to lazyfree threads and not yet freed, and keys freed so
/// (INFO's lazyfree_pending_objects and lazyfreed_objects).
static LAZYFREE_PENDING: AtomicU64 = AtomicU64::new(0);
static LAZYFREED: AtomicU64 = AtomicU64::new(0);

/// Empties database `db` (or all). ASYNC frees the old tables on a helper
/// thread, as Redis' lazyfree does, so a large flush does not stall the core;
/// the keyspace is empty either way when the command replies.
fn empty(shard: &mut Shard, db: Option<usize>, lazy: bool) {
    let old: Vec<Db> = match db {
        Some(d) => vec![shard.dbs[d].take_keys()],
        None => shard.dbs.iter_mut().map(Db::take_keys).collect(),
    };
    let keys = old.iter().map(|d| d.len() as u64).sum::<u64>();
    if lazy && keys > 0 {
        LAZYFREE_PENDING.fetch_add(keys, Ordering::Relaxed);
        std::thread::spawn(move || {
            drop(old);
            LAZYFREE_PENDING.fetch_sub(keys, Ordering::Relaxed);
            LAZYFREED.fetch_add(keys, Ordering::Relaxed);
        });
    }
}

fn flushdb(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let Some(lazy) = flush_is_async(s, &a) else { return };
        let db = s.db;
        on_every_shard(s, move |sh| sh.journal_whole(db, &[b"FLUSHDB"], |sh| empty(sh, Some(db), lazy))).await;
        s.reply().ok();
    })
}

fn flushall(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let Some(lazy) = flush_is_async(s, &a) else { return };
        on_every_shard(s, move |sh| sh.journal_whole(0, &[b"FLUSHALL"], |sh| empty(sh, None, lazy))).await;
        // With save points, Redis saves the empty dataset at once, so that a
        // restart does not bring the old one back. Inside EXEC (which holds
        // locks a snapshot's start needs) the save is scheduled instead.
        if !snapshot::save_points().is_empty() {
            if s.exec.is_some() {
                snapshot::schedule();
            } else {
                // A save already running has the old data: save after it.
                while let Err(snapshot::SaveError::InProgress) = snapshot::save(&s.core, snapshot::SaveKind::Internal).await {
                    glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
        }
        s.reply().ok();
    })
}

fn swapdb(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        // Redis parses each index as a C int before checking the range.
        let index = |i| parse_i64(a.get(i)).filter(|n| i32::try_from(*n).is_ok());
        let Some(x) = index(1) else { return s.reply().error("ERR invalid first DB index") };
        let Some(y) = index(2) else { return s.reply().error("ERR invalid second DB index") };
        let dbs = s.core.shard.borrow().dbs.len() as i64;
        if !(0..dbs).contains(&x) || !(0..dbs).contains(&y) {
            return s.reply().error(err::DB_INDEX);
        }
        let (x, y) = (x as usize, y as usize);
        // Clients stay on their index and so see the other database's keys.
        on_every_shard(s, move |sh| {
            let (xs, ys) = (x.to_string(), y.to_string());
            sh.journal_whole(0, &[b"SWAPDB", xs.as_bytes(), ys.as_bytes()], |sh| sh.swap_dbs(x, y))
        })
        .await;
        s.reply().ok();
    })
}

// ---- Clocks ----------------------------------------------------------------

fn time(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let us = now_us();
        let mut r = s.reply();
        r.array(2);
        r.bulk_int((us / 1_000_000) as i64);
        r.bulk_int((us % 1_000_000) as i64);
    })
}

/// The last successful save; the end of loading at startup before any.
fn lastsave(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move { s.reply().int(snapshot::last_save() as i64) })
}

/// SAVE: a snapshot like BGSAVE's (forkless, so the server keeps serving),
/// answered when it is on disk.
fn save(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        match snapshot::save(&s.core, snapshot::SaveKind::Command).await {
            Ok(()) => s.reply().ok(),
            Err(snapshot::SaveError::InProgress) => s.reply().error("ERR Background save already in progress"),
            Err(snapshot::SaveError::Failed) => s.reply().error("ERR"),
        }
    })
}

/// BGSAVE [SCHEDULE]. Inside EXEC, or with SCHEDULE while an AOF rewrite
/// scans (it holds the shards' snapshot epochs), the save is scheduled, as
/// Redis does while its rewrite child runs.
fn bgsave(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let schedule = a.len() == 2 && a.is(1, "schedule");
        if a.len() > 2 || (a.len() == 2 && !schedule) {
            return s.reply().error(err::SYNTAX);
        }
        if snapshot::in_progress() {
            return s.reply().error("ERR Background save already in progress");
        }
        if snapshot::rewrites_running() && !schedule && s.exec.is_none() {
            return s.reply().error(
                "ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.",
            );
        }
        if s.exec.is_some() || snapshot::rewrites_running() {
            snapshot::schedule();
            return s.reply().simple("Background saving scheduled");
        }
        if !snapshot::try_claim() {
            // Lost a race with another save or a starting rewrite.
            if snapshot::in_progress() {
                return s.reply().error("ERR Background save already in progress");
            }
            snapshot::schedule();
            return s.reply().simple("Background saving scheduled");
        }
        // The point in time is taken before the reply: writes the client
        // sends after it are not in the snapshot.
        let start = snapshot::begin_all(&s.core).await;
        glommio::spawn_local(snapshot::finish(s.core.clone(), start, snapshot::SaveKind::Background)).detach();
        s.reply().simple("Background saving started");
    })
}

/// When the process started, in unix ms. Read from /proc (start ticks after
/// boot against the uptime) rather than recorded, so no startup hook is needed.
fn started_ms() -> u64 {
    static START: OnceLock<u64> = OnceLock::new();
    *START.get_or_init(|| {
        let age_ms = || -> Option<u64> {
            let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
            // Field 22, counted after the parenthesized command name (field 2).
            let ticks: f64 = stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()?;
            let uptime: f64 = std::fs::read_to_string("/proc/uptime").ok()?.split_whitespace().next()?.parse().ok()?;
            // SAFETY: sysconf has no preconditions.
            let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
            Some(((uptime - ticks / hz).max(0.0) * 1000.0) as u64)
        };
        now_ms().saturating_sub(age_ms().unwrap_or(0))
    })
}

/// 40 random hex digits, fixed for the life of the process (run_id, replid).
fn process_hex_id(slot: &'static OnceLock<String>) -> &'static str {
    slot.get_or_init(|| {
        let mut b = [0u8; 20];
        // SAFETY: getrandom writes at most b.len() bytes into b.
        if unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) } != b.len() as isize {
            let seed = now_us() ^ ((std::process::id() as u64) << 32);
            for (i, x) in b.iter_mut().enumerate() {
                *x = (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(i as u32 * 7) >> 24) as u8;
            }
        }
        b.iter().map(|x| format!("{x:02x}")).collect()
    })
}

// ---- INFO ------------------------------------------------------------------

/// What INFO needs from one core.
struct CoreInfo {
    clients: usize,
    blocked: usize,
    max_qbuf: usize,
    max_obuf: usize,
    /// Bytes in the clients' query and reply buffers.
    client_bufs: usize,
    net: CoreStats,
    /// Commands, input bytes and output bytes per second (`clients::Rates`).
    rates: [f64; 3],
    errors: ErrorStats,
    /// The Lua state's bytes, cached EVAL scripts and their bytes.
    lua: (usize, usize, usize),
    /// Functions, libraries and the libraries' code bytes.
    functions: (usize, usize, usize),
    /// Bytes of the databases' structures beyond keys and values.
    db_overhead: usize,
    keys: ShardStats,
    /// Changes since the last save (save points).
    changes: u64,
    /// Per database: keys, keys with an expiry, estimated average TTL (ms).
    dbs: Vec<(usize, usize, u64)>,
    /// Client-side caching: (clients, keys, items, prefixes).
    tracking: (usize, usize, usize, usize),
}

/// INFO's sections in output order; "modules" lists none (kvick has none).
/// Commandstats and latencystats are not tracked (timing every command
/// would cost two clock reads per command), so not shown.
const SECTIONS: &[&str] =
    &["server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules", "errorstats", "cluster", "keyspace"];

fn info(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let mut wanted = vec![a.len() == 1; SECTIONS.len()];
        for arg in &a.0[1..] {
            let arg = arg.to_ascii_lowercase();
            match arg.as_slice() {
                b"all" | b"everything" | b"default" => wanted.iter_mut().for_each(|w| *w = true),
                b"module_list" => wanted[7] = true,
                name => {
                    if let Some(i) = SECTIONS.iter().position(|s| s.as_bytes() == name) {
                        wanted[i] = true;
                    }
                }
            }
        }
        let now = now_ms();
        let cores = s
            .core
            .call_all(move |c| {
                let clients = c.clients.borrow();
                let shard = c.shard.borrow();
                CoreInfo {
                    clients: clients.map.len(),
                    blocked: clients.blocked.len(),
                    max_qbuf: clients.map.values().map(|i| i.qbuf.get()).max().unwrap_or(0),
                    max_obuf: clients.map.values().map(|i| i.obuf.get()).max().unwrap_or(0),
                    client_bufs: clients.map.values().map(|i| i.qbuf.get() + i.obuf.get()).sum(),
                    net: clients.stats,
                    rates: clients.rates.current(),
                    errors: clients::error_stats(),
                    lua: crate::scripting::memory_info(),
                    functions: crate::scripting::functions::memory_info(),
                    db_overhead: shard.dbs.iter().map(Db::overhead_bytes).sum(),
                    keys: shard.stats_snapshot(),
                    changes: snapshot::changes_since_save(&shard),
                    dbs: shard.dbs.iter().map(|d| (d.len(), d.expires_len(), d.estimate_avg_ttl(now))).collect(),
                    tracking: crate::server::tracking::counts(c),
                }
            })
            .await;
        let pubsub = if wanted[4] { crate::server::pubsub::info_counts(&s.core).await } else { [0; 3] };
        let mut text = String::new();
        for (i, name) in SECTIONS.iter().enumerate().filter(|(i, _)| wanted[*i]) {
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            let title = match *name {
                "cpu" => "CPU".to_string(),
                n => n[..1].to_ascii_uppercase() + &n[1..],
            };
            let _ = write!(text, "# {title}\r\n");
            match i {
                0 => server_section(&mut text, s.core.nshards(), now),
                1 => clients_section(&mut text, &cores),
                2 => memory_section(&mut text, &cores, s.core.id),
                3 => persistence_section(&mut text, &cores),
                4 => stats_section(&mut text, &cores, pubsub),
                5 => replication_section(&mut text),
                6 => cpu_section(&mut text),
                8 => errorstats_section(&mut text, &cores),
                9 => field(&mut text, "cluster_enabled", 0),
                10 => keyspace_section(&mut text, &cores),
                _ => {}
            }
        }
        s.reply().verbatim(text.as_bytes());
    })
}

fn field(out: &mut String, name: &str, value: impl Display) {
    let _ = write!(out, "{name}:{value}\r\n");
}

fn server_section(out: &mut String, threads: usize, now: u64) {
    // SAFETY: uname fills the zeroed struct with NUL-terminated strings.
    let os = unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        libc::uname(&mut u);
        let text = |f: &[libc::c_char]| std::ffi::CStr::from_ptr(f.as_ptr()).to_string_lossy().into_owned();
        format!("{} {} {}", text(&u.sysname), text(&u.release), text(&u.machine))
    };
    static RUN_ID: OnceLock<String> = OnceLock::new();
    let uptime = now.saturating_sub(started_ms()) / 1000;
    let hz = config::get_int("hz");
    field(out, "redis_version", REDIS_VERSION);
    field(out, "redis_git_sha1", "00000000");
    field(out, "redis_git_dirty", 0);
    // Identifies the build by kvick's version, as Redis' hashes its build.
    let build = concat!("kvick-", env!("CARGO_PKG_VERSION"));
    field(out, "redis_build_id", format!("{:x}", crate::persistence::crc64::crc64(0, build.as_bytes())));
    field(out, "redis_mode", "standalone");
    field(out, "os", os);
    field(out, "arch_bits", usize::BITS);
    field(out, "monotonic_clock", "POSIX clock_gettime");
    field(out, "multiplexing_api", "io_uring");
    // Rust's atomics are the C11 memory model's.
    field(out, "atomicvar_api", "c11-builtin");
    // Not built by gcc: Redis prints 0.0.0 then.
    field(out, "gcc_version", "0.0.0");
    field(out, "process_id", std::process::id());
    field(out, "process_supervised", "no");
    field(out, "run_id", process_hex_id(&RUN_ID));
    field(out, "tcp_port", config::get_int("port"));
    field(out, "server_time_usec", now_us());
    field(out, "uptime_in_seconds", uptime);
    field(out, "uptime_in_days", uptime / 86400);
    field(out, "hz", hz);
    field(out, "configured_hz", hz);
    // Redis' 24-bit LRU clock (seconds).
    field(out, "lru_clock", crate::shard::db::lru_clock() & 0xFF_FFFF);
    field(out, "executable", std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default());
    field(out, "config_file", config::config_file());
    field(out, "io_threads_active", 0);
    field(out, "kvick_version", env!("CARGO_PKG_VERSION"));
    field(out, "kvick_threads", threads);
}

fn clients_section(out: &mut String, cores: &[CoreInfo]) {
    field(out, "connected_clients", cores.iter().map(|c| c.clients).sum::<usize>());
    field(out, "cluster_connections", 0);
    field(out, "maxclients", config::get_int("maxclients"));
    // The largest query buffer now (Redis: over the last few seconds).
    field(out, "client_recent_max_input_buffer", cores.iter().map(|c| c.max_qbuf).max().unwrap_or(0));
    // The largest last batch of replies (Redis: largest over the last seconds).
    field(out, "client_recent_max_output_buffer", cores.iter().map(|c| c.max_obuf).max().unwrap_or(0));
    field(out, "blocked_clients", cores.iter().map(|c| c.blocked).sum::<usize>());
    field(out, "tracking_clients", cores.iter().map(|c| c.tracking.0).sum::<usize>());
    field(out, "clients_in_timeout_table", 0);
}

/// Redis' bytesToHuman.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["K", "M", "G", "T", "P"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut d = n as f64 / 1024.0;
    for unit in UNITS {
        if d < 1024.0 {
            return format!("{d:.2}{unit}");
        }
        d /= 1024.0;
    }
    format!("{n}B")
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64
}

/// A number of /proc/self/status, given there in kB ("VmHWM:  1234 kB").
fn proc_status_kb(name: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?;
    line.split_whitespace().next()?.parse().ok()
}

/// The process' resident set in bytes (/proc/self/statm).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * page_size()
}

static STARTUP_MEMORY: OnceLock<u64> = OnceLock::new();

/// Records used_memory_startup: the resident set once the cores are up,
/// before the dataset loads (Redis takes it after its initialization too).
pub fn note_startup_memory() {
    STARTUP_MEMORY.get_or_init(resident_bytes);
}

/// used_memory is the process' resident set (/proc/self/statm), not an
/// allocator count: exact allocator totals (mallinfo2) walk free lists under
/// every arena's lock, which would stall all cores on each INFO. Hence the
/// allocator's figures are the resident set too and every fragmentation
/// ratio between them is 1 (allocator_*, rss_overhead, mem_fragmentation).
/// Lua memory is the states' own count; there is one state per core for
/// both scripts and functions (so used_memory_vm_functions is 0), and each
/// core caches every script and library, so their bytes are summed.
fn memory_section(out: &mut String, cores: &[CoreInfo], me: usize) {
    let rss = resident_bytes();
    let used = rss;
    let peak = (proc_status_kb("VmHWM").unwrap_or(0) * 1024).max(used);
    // SAFETY: sysconf has no preconditions.
    let total = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) }.max(0) as u64 * page_size();
    let maxmemory = config::get_int("maxmemory").max(0) as u64;
    let sum = |f: fn(&CoreInfo) -> usize| cores.iter().map(f).sum::<usize>() as u64;
    let lua = sum(|c| c.lua.0);
    let scripts_eval = sum(|c| c.lua.2);
    let functions = sum(|c| c.functions.2);
    let scripts = scripts_eval + functions;
    let client_bufs = sum(|c| c.client_bufs);
    let startup = STARTUP_MEMORY.get().copied().unwrap_or(0);
    // Lua's states are not data (Redis' used_memory leaves them out).
    let overhead = startup + client_bufs + sum(|c| c.db_overhead) + scripts + lua;
    let dataset = used.saturating_sub(overhead);
    let net = used.saturating_sub(startup).max(1);
    let ratio = |a: u64, b: u64| format!("{:.2}", a as f64 / b.max(1) as f64);
    let (nfunctions, nlibraries, _) = cores[me].functions;
    field(out, "used_memory", used);
    field(out, "used_memory_human", human_bytes(used));
    field(out, "used_memory_rss", rss);
    field(out, "used_memory_rss_human", human_bytes(rss));
    field(out, "used_memory_peak", peak);
    field(out, "used_memory_peak_human", human_bytes(peak));
    field(out, "used_memory_peak_perc", format!("{:.2}%", used as f64 * 100.0 / peak.max(1) as f64));
    field(out, "used_memory_overhead", overhead);
    field(out, "used_memory_startup", startup);
    field(out, "used_memory_dataset", dataset);
    field(out, "used_memory_dataset_perc", format!("{:.2}%", dataset as f64 * 100.0 / net as f64));
    field(out, "allocator_allocated", used);
    field(out, "allocator_active", used);
    field(out, "allocator_resident", rss);
    field(out, "total_system_memory", total);
    field(out, "total_system_memory_human", human_bytes(total));
    field(out, "used_memory_lua", lua);
    field(out, "used_memory_vm_eval", lua);
    field(out, "used_memory_lua_human", human_bytes(lua));
    field(out, "used_memory_scripts_eval", scripts_eval);
    field(out, "number_of_cached_scripts", cores[me].lua.1);
    field(out, "number_of_functions", nfunctions);
    field(out, "number_of_libraries", nlibraries);
    field(out, "used_memory_vm_functions", 0);
    field(out, "used_memory_vm_total", lua);
    field(out, "used_memory_vm_total_human", human_bytes(lua));
    field(out, "used_memory_functions", functions);
    field(out, "used_memory_scripts", scripts);
    field(out, "used_memory_scripts_human", human_bytes(scripts));
    field(out, "maxmemory", maxmemory);
    field(out, "maxmemory_human", human_bytes(maxmemory));
    field(out, "maxmemory_policy", config::get_text("maxmemory-policy"));
    field(out, "allocator_frag_ratio", ratio(used, used));
    field(out, "allocator_frag_bytes", 0);
    field(out, "allocator_rss_ratio", ratio(rss, used));
    field(out, "allocator_rss_bytes", rss - used);
    field(out, "rss_overhead_ratio", ratio(rss, rss));
    field(out, "rss_overhead_bytes", 0);
    field(out, "mem_fragmentation_ratio", ratio(rss, used));
    field(out, "mem_fragmentation_bytes", rss - used);
    // No replication, no cluster bus; the AOF keeps no buffer between
    // writes (aof_buffer_length in persistence).
    field(out, "mem_not_counted_for_evict", 0);
    field(out, "mem_replication_backlog", 0);
    field(out, "mem_total_replication_buffers", 0);
    field(out, "mem_clients_slaves", 0);
    field(out, "mem_clients_normal", client_bufs);
    field(out, "mem_cluster_links", 0);
    field(out, "mem_aof_buffer", 0);
    field(out, "mem_allocator", "libc");
    // No active defragmentation.
    field(out, "active_defrag_running", 0);
    field(out, "lazyfree_pending_objects", LAZYFREE_PENDING.load(Ordering::Relaxed));
    field(out, "lazyfreed_objects", LAZYFREED.load(Ordering::Relaxed));
}

/// Redis' fields: RDB from `persistence::snapshot`, AOF from `persistence::aof`.
fn persistence_section(out: &mut String, cores: &[CoreInfo]) {
    snapshot::info_fields(out, cores.iter().map(|c| c.changes).sum());
    crate::persistence::aof::info_fields(out);
}

/// Counters of features kvick does not have (replication, eviction, forks,
/// MIGRATE, active defragmentation, I/O threads) are zero; whoever adds a
/// feature fills its fields.
fn stats_section(out: &mut String, cores: &[CoreInfo], [channels, patterns, shard_channels]: [usize; 3]) {
    let net = |f: fn(&CoreStats) -> u64| cores.iter().map(|c| f(&c.net)).sum::<u64>();
    let keys = |f: fn(&ShardStats) -> u64| cores.iter().map(|c| f(&c.keys)).sum::<u64>();
    let rate = |i: usize| cores.iter().map(|c| c.rates[i]).sum::<f64>();
    field(out, "total_connections_received", net(|s| s.connections_received));
    field(out, "total_commands_processed", net(|s| s.commands_processed));
    field(out, "instantaneous_ops_per_sec", rate(0) as u64);
    field(out, "total_net_input_bytes", net(|s| s.net_input_bytes));
    field(out, "total_net_output_bytes", net(|s| s.net_output_bytes));
    out.push_str("total_net_repl_input_bytes:0\r\ntotal_net_repl_output_bytes:0\r\n");
    field(out, "instantaneous_input_kbps", format!("{:.2}", rate(1) / 1024.0));
    field(out, "instantaneous_output_kbps", format!("{:.2}", rate(2) / 1024.0));
    out.push_str("instantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\n");
    field(out, "rejected_connections", net(|s| s.rejected_connections));
    out.push_str("sync_full:0\r\nsync_partial_ok:0\r\nsync_partial_err:0\r\n");
    field(out, "expired_keys", keys(|s| s.expired_keys));
    // The cores' mean: each core expires its own keys.
    let stale = cores.iter().map(|c| c.keys.expired_stale_perc).sum::<f64>() / cores.len().max(1) as f64;
    field(out, "expired_stale_perc", format!("{:.2}", stale * 100.0));
    field(out, "expired_time_cap_reached_count", keys(|s| s.expired_time_cap_reached_count));
    field(out, "expire_cycle_cpu_milliseconds", keys(|s| s.expire_cycle_us) / 1000);
    out.push_str("evicted_keys:0\r\nevicted_clients:0\r\ntotal_eviction_exceeded_time:0\r\ncurrent_eviction_exceeded_time:0\r\n");
    field(out, "keyspace_hits", keys(|s| s.keyspace_hits));
    field(out, "keyspace_misses", keys(|s| s.keyspace_misses));
    field(out, "pubsub_channels", channels);
    field(out, "pubsub_patterns", patterns);
    field(out, "pubsubshard_channels", shard_channels);
    out.push_str("latest_fork_usec:0\r\ntotal_forks:0\r\nmigrate_cached_sockets:0\r\nslave_expires_tracked_keys:0\r\n");
    out.push_str(
        "active_defrag_hits:0\r\nactive_defrag_misses:0\r\nactive_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\n\
         total_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\n",
    );
    field(out, "tracking_total_keys", cores.iter().map(|c| c.tracking.1).sum::<usize>());
    field(out, "tracking_total_items", cores.iter().map(|c| c.tracking.2).sum::<usize>());
    // Every core registers every prefix.
    field(out, "tracking_total_prefixes", cores.iter().map(|c| c.tracking.3).max().unwrap_or(0));
    // Redis counts here errors a master or the AOF got (no replication) and
    // deep sanitizations of RESTORE payloads (kvick has no such mode).
    out.push_str("unexpected_error_replies:0\r\n");
    field(out, "total_error_replies", cores.iter().map(|c| c.errors.total).sum::<u64>());
    out.push_str("dump_payload_sanitizations:0\r\n");
    field(out, "total_reads_processed", net(|s| s.reads_processed));
    field(out, "total_writes_processed", net(|s| s.writes_processed));
    out.push_str("io_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\n");
}

/// A master without replicas (replication is not implemented yet).
fn replication_section(out: &mut String) {
    static REPLID: OnceLock<String> = OnceLock::new();
    field(out, "role", "master");
    field(out, "connected_slaves", 0);
    field(out, "master_failover_state", "no-failover");
    field(out, "master_replid", process_hex_id(&REPLID));
    field(out, "master_replid2", "0".repeat(40));
    out.push_str(
        "master_repl_offset:0\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\nrepl_backlog_size:1048576\r\n\
         repl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n",
    );
}

fn cpu_section(out: &mut String) {
    let usage = |who| {
        // SAFETY: getrusage fills the zeroed struct.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut u) };
        let t = |tv: libc::timeval| format!("{}.{:06}", tv.tv_sec, tv.tv_usec);
        (t(u.ru_stime), t(u.ru_utime))
    };
    let (sys, user) = usage(libc::RUSAGE_SELF);
    let (csys, cuser) = usage(libc::RUSAGE_CHILDREN);
    field(out, "used_cpu_sys", sys);
    field(out, "used_cpu_user", user);
    field(out, "used_cpu_sys_children", csys);
    field(out, "used_cpu_user_children", cuser);
    // The calling connection's core.
    let (tsys, tuser) = usage(libc::RUSAGE_THREAD);
    field(out, "used_cpu_sys_main_thread", tsys);
    field(out, "used_cpu_user_main_thread", tuser);
}

/// Error replies by code, summed over the cores (`clients::count_error`).
fn errorstats_section(out: &mut String, cores: &[CoreInfo]) {
    let mut by_code = std::collections::BTreeMap::new();
    for (code, n) in cores.iter().flat_map(|c| c.errors.by_code.iter()) {
        *by_code.entry(code.as_str()).or_insert(0u64) += n;
    }
    for (code, n) in by_code {
        let _ = write!(out, "errorstat_{code}:count={n}\r\n");
    }
}

fn keyspace_section(out: &mut String, cores: &[CoreInfo]) {
    for db in 0..cores.first().map_or(0, |c| c.dbs.len()) {
        let (mut keys, mut expires, mut ttl_sum) = (0u64, 0u64, 0u128);
        for (k, e, ttl) in cores.iter().map(|c| c.dbs[db]) {
            keys += k as u64;
            expires += e as u64;
            ttl_sum += ttl as u128 * e as u128;
        }
        if keys > 0 {
            // Each shard's estimate weighted by its keys with a TTL.
            let avg_ttl = if expires > 0 { ttl_sum / expires as u128 } else { 0 };
            let _ = write!(out, "db{db}:keys={keys},expires={expires},avg_ttl={avg_ttl}\r\n");
        }
    }
}

// ---- Persistence -----------------------------------------------------------

/// BGREWRITEAOF: every core rewrites its own AOF (`persistence::aof`).
fn bgrewriteaof(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        // With appendonly no, Redis 7 writes a base alone.
        let started = if crate::persistence::aof::running() {
            s.core.call_all(|_| crate::persistence::aof::request_rewrite()).await
        } else {
            s.core.call_all(crate::persistence::aof::rewrite_offline).await
        };
        if started.iter().any(|&b| b) {
            // One rewrite, however many cores write their files.
            crate::persistence::aof::count_rewrite();
        }
        if started.iter().any(|&b| b) && snapshot::in_progress() {
            // It starts once the save is done.
            s.reply().simple("Background append only file rewriting scheduled");
        } else if started.iter().any(|&b| b) {
            s.reply().simple("Background append only file rewriting started");
        } else {
            s.reply().error("ERR Background append only file rewriting already in progress");
        }
    })
}

// ---- CONFIG ----------------------------------------------------------------

fn config_get(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let mut pairs: Vec<(&'static str, String)> = Vec::new();
        for pattern in &a.0[2..] {
            for (name, value) in config::matching(pattern) {
                if !pairs.iter().any(|(n, _)| *n == name) {
                    pairs.push((name, value));
                }
            }
        }
        let mut r = s.reply();
        r.map(pairs.len());
        for (name, value) in pairs {
            r.bulk(name.as_bytes());
            r.bulk(value.as_bytes());
        }
    })
}

/// CONFIG SET name value [name value ...]: all or nothing. Every name is
/// checked before any value is set, and a value that fails restores the ones
/// already set.
fn config_set(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        if !a.len().is_multiple_of(2) {
            return s.reply().error(err::SYNTAX);
        }
        // (directive, how it was named): an alias and its directive count as
        // two names, as in Redis (the later one wins).
        let mut params: Vec<(&'static config::Param, &'static str)> = Vec::new();
        let local = is_local(s);
        for i in (2..a.len()).step_by(2) {
            let typed = String::from_utf8_lossy(a.get(i));
            let failed = |why: &str| format!("ERR CONFIG SET failed (possibly related to argument '{typed}') - {why}");
            let error = match (config::find(&typed), config::spelling(&typed)) {
                (Some(p), Some(name)) if p.mutable && !config::protected_refused(p, local) && !params.iter().any(|(_, n)| *n == name) => {
                    params.push((p, name));
                    continue;
                }
                (Some(p), _) if !p.mutable => failed("can't set immutable config"),
                (Some(p), _) if config::protected_refused(p, local) => failed("can't set protected config"),
                (Some(_), _) => failed("duplicate parameter"),
                _ => format!("ERR Unknown option or number of arguments for CONFIG SET - '{typed}'"),
            };
            return s.reply().error(&error);
        }
        let backups: Vec<String> = params.iter().map(|(p, _)| config::get_text(p.name)).collect();
        for (j, (_, name)) in params.iter().enumerate() {
            if let Err(e) = config::set_runtime(name, &String::from_utf8_lossy(a.get(3 + 2 * j))) {
                for ((q, _), old) in params[..j].iter().zip(&backups) {
                    let _ = config::set_runtime(q.name, old);
                }
                return s.reply().error(&format!("ERR {e}"));
            }
        }
        if let Some(j) = params.iter().position(|(p, _)| p.name == "appendonly") {
            // Turning it on writes a base of the data: Redis counts that as
            // one rewrite (each core writes its own).
            if backups[j] == "no" && config::get_int("appendonly") == 1 {
                crate::persistence::aof::count_rewrite();
            }
            s.core.call_all(crate::persistence::aof::apply_config).await;
        }
        s.reply().ok();
    })
}

fn config_resetstat(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        s.core
            .call_all(|c| {
                c.clients.borrow_mut().stats = CoreStats::default();
                clients::reset_error_stats();
                c.shard.borrow_mut().reset_stats();
            })
            .await;
        s.reply().ok();
    })
}

fn config_help(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        help(
            &mut s.reply(),
            "CONFIG",
            &[
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>",
                "    Set the configuration <directive> to <value>.",
                "RESETSTAT",
                "    Reset statistics reported by the INFO command.",
            ],
        )
    })
}

// ---- COMMAND ---------------------------------------------------------------

/// Redis' ACL categories, in the order COMMAND INFO lists them.
const CATEGORIES: &[&str] = &[
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap", "hyperloglog", "geo", "stream",
    "pubsub", "admin", "fast", "slow", "blocking", "dangerous", "connection", "transaction", "scripting",
];

/// Redis 7.0's categories that its flags and doc group do not imply (see
/// `acl_categories`), by command; a subcommand without an entry takes its
/// container's. Generated by diffing `COMMAND INFO` of redis-server 7.0.15.
const ACL_EXCEPTIONS: &[(&str, &str)] = &[
    ("asking", "+connection"),
    ("command", "+connection"),
    ("dbsize", "+keyspace"),
    ("flushall", "+dangerous +keyspace"),
    ("flushdb", "+dangerous +keyspace"),
    ("info", "+dangerous"),
    ("keys", "+dangerous"),
    ("lastsave", "+admin +dangerous"),
    ("migrate", "+dangerous"),
    ("pubsub|help", "-pubsub"),
    ("readonly", "+connection"),
    ("readwrite", "+connection"),
    ("restore", "+dangerous"),
    ("restore-asking", "+dangerous +keyspace"),
    ("role", "+admin +dangerous"),
    ("sort", "+dangerous +list +set +sortedset -keyspace"),
    ("sort_ro", "+dangerous +list +set +sortedset -keyspace"),
    ("swapdb", "+dangerous +keyspace"),
    ("wait", "+connection -keyspace"),
];

/// Redis 7.0's command tips (for cluster clients: how to route and merge),
/// from `COMMAND INFO` of redis-server 7.0.15.
const TIPS: &[(&str, &str)] = &[
    ("client|info", "nondeterministic_output"),
    ("client|list", "nondeterministic_output"),
    ("cluster|bumpepoch", "nondeterministic_output"),
    ("cluster|count-failure-reports", "nondeterministic_output"),
    ("cluster|getkeysinslot", "nondeterministic_output"),
    ("cluster|info", "nondeterministic_output"),
    ("cluster|links", "nondeterministic_output"),
    ("cluster|nodes", "nondeterministic_output"),
    ("cluster|replicas", "nondeterministic_output"),
    ("cluster|shards", "nondeterministic_output"),
    ("cluster|slaves", "nondeterministic_output"),
    ("cluster|slots", "nondeterministic_output"),
    ("command", "nondeterministic_output_order"),
    ("command|docs", "nondeterministic_output_order"),
    ("command|info", "nondeterministic_output_order"),
    ("command|list", "nondeterministic_output_order"),
    ("config|set", "request_policy:all_nodes response_policy:all_succeeded"),
    ("dbsize", "request_policy:all_shards response_policy:agg_sum"),
    ("del", "request_policy:multi_shard response_policy:agg_sum"),
    ("dump", "nondeterministic_output"),
    ("exists", "request_policy:multi_shard response_policy:agg_sum"),
    ("flushall", "request_policy:all_shards response_policy:all_succeeded"),
    ("flushdb", "request_policy:all_shards response_policy:all_succeeded"),
    ("function|delete", "request_policy:all_shards response_policy:all_succeeded"),
    ("function|flush", "request_policy:all_shards response_policy:all_succeeded"),
    ("function|kill", "request_policy:all_shards response_policy:one_succeeded"),
    ("function|list", "nondeterministic_output_order"),
    ("function|load", "request_policy:all_shards response_policy:all_succeeded"),
    ("function|restore", "request_policy:all_shards response_policy:all_succeeded"),
    ("function|stats", "nondeterministic_output request_policy:all_shards response_policy:special"),
    ("hgetall", "nondeterministic_output_order"),
    ("hkeys", "nondeterministic_output_order"),
    ("hrandfield", "nondeterministic_output"),
    ("hscan", "nondeterministic_output"),
    ("hvals", "nondeterministic_output_order"),
    ("info", "nondeterministic_output request_policy:all_shards response_policy:special"),
    ("keys", "request_policy:all_shards nondeterministic_output_order"),
    ("lastsave", "nondeterministic_output"),
    ("latency|doctor", "nondeterministic_output request_policy:all_nodes response_policy:special"),
    ("latency|graph", "nondeterministic_output request_policy:all_nodes response_policy:special"),
    ("latency|histogram", "nondeterministic_output request_policy:all_nodes response_policy:special"),
    ("latency|history", "nondeterministic_output request_policy:all_nodes response_policy:special"),
    ("latency|latest", "nondeterministic_output request_policy:all_nodes response_policy:special"),
    ("latency|reset", "request_policy:all_nodes response_policy:all_succeeded"),
    ("memory|doctor", "nondeterministic_output request_policy:all_shards response_policy:special"),
    ("memory|malloc-stats", "nondeterministic_output request_policy:all_shards response_policy:special"),
    ("memory|purge", "request_policy:all_shards response_policy:all_succeeded"),
    ("memory|stats", "nondeterministic_output request_policy:all_shards response_policy:special"),
    ("mget", "request_policy:multi_shard"),
    ("migrate", "nondeterministic_output"),
    ("module|list", "nondeterministic_output_order"),
    ("mset", "request_policy:multi_shard response_policy:all_succeeded"),
    ("msetnx", "request_policy:multi_shard response_policy:agg_min"),
    ("object|encoding", "nondeterministic_output"),
    ("object|freq", "nondeterministic_output"),
    ("object|idletime", "nondeterministic_output"),
    ("object|refcount", "nondeterministic_output"),
    ("ping", "request_policy:all_shards response_policy:all_succeeded"),
    ("pttl", "nondeterministic_output"),
    ("randomkey", "request_policy:all_shards nondeterministic_output"),
    ("scan", "nondeterministic_output request_policy:special"),
    ("script|exists", "request_policy:all_shards response_policy:agg_logical_and"),
    ("script|flush", "request_policy:all_nodes response_policy:all_succeeded"),
    ("script|kill", "request_policy:all_shards response_policy:one_succeeded"),
    ("script|load", "request_policy:all_nodes response_policy:all_succeeded"),
    ("sdiff", "nondeterministic_output_order"),
    ("sinter", "nondeterministic_output_order"),
    ("slowlog|get", "request_policy:all_nodes nondeterministic_output"),
    ("slowlog|len", "request_policy:all_nodes response_policy:agg_sum nondeterministic_output"),
    ("slowlog|reset", "request_policy:all_nodes response_policy:all_succeeded"),
    ("smembers", "nondeterministic_output_order"),
    ("spop", "nondeterministic_output"),
    ("srandmember", "nondeterministic_output"),
    ("sscan", "nondeterministic_output"),
    ("sunion", "nondeterministic_output_order"),
    ("time", "nondeterministic_output"),
    ("touch", "request_policy:multi_shard response_policy:agg_sum"),
    ("ttl", "nondeterministic_output"),
    ("unlink", "request_policy:multi_shard response_policy:agg_sum"),
    ("wait", "request_policy:all_shards response_policy:agg_min"),
    ("xadd", "nondeterministic_output"),
    ("xautoclaim", "nondeterministic_output"),
    ("xclaim", "nondeterministic_output"),
    ("xinfo|consumers", "nondeterministic_output"),
    ("xpending", "nondeterministic_output"),
    ("xtrim", "nondeterministic_output"),
    ("zrandmember", "nondeterministic_output"),
    ("zscan", "nondeterministic_output"),
];

/// A command's ACL categories the way Redis derives them: from its flags
/// (setImplicitACLCategories), its doc group (containers excepted), and the
/// exceptions above.
fn acl_categories(c: &Command) -> impl Iterator<Item = &'static str> {
    let bit = |name: &str| 1u32 << CATEGORIES.iter().position(|c| *c == name).expect("a Redis ACL category");
    let mut m = 0u32;
    let group = match c.group {
        "generic" => Some("keyspace"),
        "sorted-set" => Some("sortedset"),
        "transactions" => Some("transaction"),
        g => CATEGORIES.iter().copied().find(|cat| *cat == g),
    };
    if let (Some(cat), true) = (group, c.subs.is_empty()) {
        m |= bit(cat);
    }
    let parent = c.name.split('|').next().unwrap_or(c.name);
    let exception = ACL_EXCEPTIONS.iter().find(|(n, _)| *n == c.name).or_else(|| ACL_EXCEPTIONS.iter().find(|(n, _)| *n == parent));
    for word in exception.map_or("", |(_, e)| e).split_whitespace() {
        match word.split_at(1) {
            ("+", cat) => m |= bit(cat),
            (_, cat) => m &= !bit(cat),
        }
    }
    let implied = [(WRITE, "write"), (ADMIN, "admin"), (ADMIN, "dangerous"), (PUBSUB, "pubsub"), (FAST, "fast"), (BLOCKING, "blocking")];
    for (flag, cat) in implied {
        if c.flags & flag != 0 {
            m |= bit(cat);
        }
    }
    // Scripts may write, so scripting commands are never @read.
    if c.flags & READONLY != 0 && m & bit("scripting") == 0 {
        m |= bit("read");
    }
    if m & bit("fast") == 0 {
        m |= bit("slow");
    }
    CATEGORIES.iter().enumerate().filter(move |(i, _)| m & (1 << i) != 0).map(|(_, c)| *c)
}

/// A command by full name ("get", "client|list"), as COMMAND INFO/DOCS take it.
fn by_fullname(name: &[u8]) -> Option<&'static Command> {
    let mut parts = name.splitn(2, |&b| b == b'|');
    let ci = lookup(parts.next()?)?;
    match parts.next() {
        None => Some(by_index(ci)),
        Some(sub) => lookup_sub(ci, sub).map(by_index),
    }
}

/// Every command and subcommand, depth first (COMMAND LIST's order).
fn every_command() -> impl Iterator<Item = &'static Command> {
    super::all().iter().flat_map(|c| std::iter::once(*c).chain(c.subs.iter()))
}

/// One entry of COMMAND / COMMAND INFO, in Redis 7.0's shape and types.
fn reply_info(r: &mut Reply, c: &Command) {
    r.array(10);
    r.bulk(c.name.as_bytes());
    r.int(c.arity as i64);
    r.set(keyspecs::command_flags(c).count());
    keyspecs::command_flags(c).for_each(|n| r.simple(n));
    let has_keys = c.first_key > 0;
    let (first, last, step) = if has_keys { (c.first_key, c.last_key, c.step) } else { (0, 0, 0) };
    r.int(first as i64);
    r.int(last as i64);
    r.int(step as i64);
    let cats: Vec<&str> = acl_categories(c).collect();
    r.set(cats.len());
    cats.iter().for_each(|cat| r.simple(&format!("@{cat}")));
    let tips = TIPS.iter().find(|(n, _)| *n == c.name).map_or("", |(_, t)| t);
    r.set(tips.split_whitespace().count());
    tips.split_whitespace().for_each(|t| r.bulk(t.as_bytes()));
    keyspecs::reply_specs(r, c);
    if c.subs.is_empty() {
        r.set(0);
    } else {
        r.array(c.subs.len());
        c.subs.iter().for_each(|sub| reply_info(r, sub));
    }
}

/// One entry of COMMAND DOCS: summary, since and group from the command
/// table, complexity, arguments and the rest from `docs`, then subcommands.
fn reply_docs(r: &mut Reply, c: &Command) {
    let more = Docs::of(c.name);
    r.map(3 + more.as_ref().map_or(0, Docs::fields) + !c.subs.is_empty() as usize);
    r.bulk(b"summary");
    r.bulk(c.summary.as_bytes());
    r.bulk(b"since");
    r.bulk(c.since.as_bytes());
    r.bulk(b"group");
    r.bulk(c.group.as_bytes());
    if let Some(more) = more {
        more.reply(r);
    }
    if !c.subs.is_empty() {
        r.bulk(b"subcommands");
        r.map(c.subs.len());
        for sub in c.subs {
            r.bulk(sub.name.as_bytes());
            reply_docs(r, sub);
        }
    }
}

fn command(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let mut r = s.reply();
        r.array(super::all().len());
        super::all().iter().for_each(|c| reply_info(&mut r, c));
    })
}

fn command_count(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move { s.reply().int(super::all().len() as i64) })
}

fn command_info(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    if a.len() == 2 {
        return command(s, a);
    }
    Box::pin(async move {
        let mut r = s.reply();
        r.array(a.len() - 2);
        for name in &a.0[2..] {
            match by_fullname(name) {
                Some(c) => reply_info(&mut r, c),
                None => r.null(),
            }
        }
    })
}

fn command_docs(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let found: Vec<&Command> = if a.len() == 2 { super::all().to_vec() } else { a.0[2..].iter().filter_map(|n| by_fullname(n)).collect() };
        let mut r = s.reply();
        r.map(found.len());
        for c in found {
            r.bulk(c.name.as_bytes());
            reply_docs(&mut r, c);
        }
    })
}

fn command_list(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let names: Vec<&str> = if a.len() == 2 {
            every_command().map(|c| c.name).collect()
        } else if a.len() == 5 && a.is(2, "filterby") {
            let arg = a.get(4);
            if a.is(3, "module") {
                Vec::new()
            } else if a.is(3, "aclcat") {
                every_command().filter(|c| acl_categories(c).any(|cat| cat.as_bytes().eq_ignore_ascii_case(arg))).map(|c| c.name).collect()
            } else if a.is(3, "pattern") {
                every_command().filter(|c| glob_match(arg, c.name.as_bytes(), true)).map(|c| c.name).collect()
            } else {
                return s.reply().error(err::SYNTAX);
            }
        } else {
            return s.reply().error(err::SYNTAX);
        };
        let mut r = s.reply();
        r.array(names.len());
        names.iter().for_each(|n| r.bulk(n.as_bytes()));
    })
}

/// COMMAND GETKEYS and GETKEYSANDFLAGS.
fn command_getkeys(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let with_flags = a.is(1, "getkeysandflags");
        let argv = &a.0[2..];
        let found = lookup(&argv[0]).and_then(|ci| match argv.len() >= 2 && !by_index(ci).subs.is_empty() {
            true => lookup_sub(ci, &argv[1]),
            false => Some(ci),
        });
        let Some(c) = found.map(by_index) else { return s.reply().error("ERR Invalid command specified") };
        if !keyspecs::has_keys(c) {
            return s.reply().error("ERR The command has no key arguments");
        }
        if !c.arity_ok(argv.len()) {
            return s.reply().error("ERR Invalid number of arguments specified for command");
        }
        let Some(keys) = keyspecs::getkeys(c, &OwnedArgs(argv.to_vec())) else {
            return s.reply().error("ERR Invalid arguments specified for command");
        };
        let mut r = s.reply();
        r.array(keys.len());
        for (i, key_flags) in keys {
            if with_flags {
                r.array(2);
                r.bulk(&argv[i]);
                keyspecs::reply_flags(&mut r, key_flags);
            } else {
                r.bulk(&argv[i]);
            }
        }
    })
}

fn command_help(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        help(
            &mut s.reply(),
            "COMMAND",
            &[
                "(no subcommand)",
                "    Return details about all Redis commands.",
                "COUNT",
                "    Return the total number of commands in this Redis server.",
                "LIST",
                "    Return a list of all commands in this Redis server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "GETKEYS <full-command>",
                "    Return the keys from a full Redis command.",
                "GETKEYSANDFLAGS <full-command>",
                "    Return the keys and the access flags from a full Redis command.",
            ],
        )
    })
}

// ---- DEBUG and SHUTDOWN ----------------------------------------------------

/// C's strtod over the longest numeric prefix: DEBUG SLEEP takes "0.5s" as
/// 0.5 and "x" as 0, like Redis.
fn strtod(b: &[u8]) -> f64 {
    let text = String::from_utf8_lossy(&b[..b.len().min(64)]);
    let text = text.trim_start();
    (1..=text.len()).rev().find_map(|n| text.get(..n)?.parse::<f64>().ok()).unwrap_or(0.0)
}

/// Whether the client connects over loopback: Redis' "local" for
/// enable-debug-command and enable-protected-configs.
fn is_local(s: &Session) -> bool {
    let ip = s.info.addr.ip();
    ip == std::net::Ipv4Addr::LOCALHOST || ip == std::net::Ipv6Addr::LOCALHOST
}

/// DEBUG, behind Redis 7.0's enable-debug-command (no / yes / local).
///
/// DEBUG SLEEP stops the whole server, as Redis' does: every core's thread
/// sleeps (blocking its executor) for the duration, so no client is served
/// meanwhile (tests use it to make a server unresponsive).
fn debug(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let allowed = match config::get_int("enable-debug-command") {
            1 => true,
            2 => is_local(s),
            _ => false,
        };
        if !allowed {
            return s.reply().error(
                "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
            );
        }
        if a.is(1, "help") && a.len() == 2 {
            let lines = [
                "ERROR <string>",
                "    Return a Redis protocol error with <string> as message. Useful for clients",
                "    unit tests to simulate Redis errors.",
                "LOG <message>",
                "    Write <message> to the server log.",
                "SLEEP <seconds>",
                "    Stop the server for <seconds>. Decimals allowed.",
            ];
            help(&mut s.reply(), "DEBUG", &lines);
        } else if a.is(1, "sleep") && a.len() == 3 {
            let secs = strtod(a.get(2));
            if secs > 0.0 {
                let pause = Duration::from_secs_f64(secs.min(1e9));
                s.core.call_all(move |_| std::thread::sleep(pause)).await;
            }
            s.reply().ok();
        } else if a.is(1, "log") && a.len() == 3 {
            eprintln!("DEBUG LOG: {}", String::from_utf8_lossy(a.get(2)));
            s.reply().ok();
        } else if a.is(1, "error") && a.len() == 3 {
            // Written as given, as Redis' addReplySds: errorstats do not count it.
            let msg = a.get(2).iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b });
            s.reply().raw(&std::iter::once(b'-').chain(msg).chain(*b"\r\n").collect::<Vec<u8>>());
        } else {
            let sub = super::printable(a.get(1), 128);
            s.reply().error(&format!("ERR unknown subcommand or wrong number of arguments for '{sub}'. Try DEBUG HELP."));
        }
    })
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]. On success the process exits
/// without replying, as Redis closes the connection. There is nothing to wait
/// for (no replicas), so NOW changes nothing. It saves a snapshot when save
/// points are set or SAVE is given (not with NOSAVE); a failed save stops
/// the shutdown unless FORCE'd.
fn shutdown(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let (mut nosave, mut save, mut force, mut abort, mut other) = (false, false, false, false, false);
        for i in 1..a.len() {
            if a.is(i, "nosave") {
                nosave = true;
            } else if a.is(i, "save") {
                save = true;
            } else if a.is(i, "force") {
                force = true;
            } else if a.is(i, "abort") {
                abort = true;
            } else if a.is(i, "now") {
                other = true;
            } else {
                return s.reply().error(err::SYNTAX);
            }
        }
        if (abort && (nosave || save || force || other)) || (nosave && save) {
            return s.reply().error(err::SYNTAX);
        }
        if abort {
            return s.reply().error("ERR No shutdown in progress.");
        }
        eprintln!("User requested shutdown...");
        if save || (!nosave && !snapshot::save_points().is_empty()) {
            eprintln!("Saving the final RDB snapshot before exiting.");
            // A running BGSAVE (no child to kill here) finishes first.
            let saved = loop {
                match snapshot::save(&s.core, snapshot::SaveKind::Internal).await {
                    Err(snapshot::SaveError::InProgress) => glommio::timer::sleep(Duration::from_millis(10)).await,
                    r => break r.is_ok(),
                }
            };
            if !saved && !force {
                eprintln!("Error trying to save the DB, can't exit.");
                return s.reply().error("ERR Errors trying to SHUTDOWN. Check logs.");
            }
        }
        // A busy script's core cannot answer until the script ends; what it
        // acknowledged before is in its AOF already (replies wait for the
        // write), so exit now, as Redis' SHUTDOWN NOSAVE does then.
        if crate::scripting::busy::busy() {
            crate::server::remove_pidfile();
            eprintln!("kvick is now ready to exit, bye bye...");
            std::process::exit(0);
        }
        // Everything acknowledged is in the AOF (with `everysec` some of it
        // only in the journal until now).
        for rx in s.core.call_all(|c| crate::persistence::aof::written(c)).await.into_iter().flatten() {
            let _ = rx.await;
        }
        s.core.call_all(|_| crate::persistence::aof::sync_now()).await;
        crate::server::remove_pidfile();
        eprintln!("kvick is now ready to exit, bye bye...");
        std::process::exit(0);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_like_redis() {
        assert_eq!(human_bytes(1023), "1023B");
        assert_eq!(human_bytes(916336), "894.86K");
        assert_eq!(human_bytes(12124160), "11.56M");
        assert_eq!(human_bytes(25276502016), "23.54G");
    }

    #[test]
    fn strtod_prefix() {
        assert_eq!(strtod(b"0.5s"), 0.5);
        assert_eq!(strtod(b"x"), 0.0);
        assert_eq!(strtod(b" 2"), 2.0);
    }

    #[test]
    fn categories_match_redis() {
        let cats = |name: &str| acl_categories(by_fullname(name.as_bytes()).expect("known command")).collect::<Vec<_>>().join(" ");
        assert_eq!(cats("get"), "read string fast");
        assert_eq!(cats("client"), "slow");
        assert_eq!(cats("client|list"), "admin slow dangerous connection");
        assert_eq!(cats("command|count"), "slow connection");
        assert_eq!(cats("flushall"), "keyspace write slow dangerous");
        assert_eq!(cats("swapdb"), "keyspace write fast dangerous");
        assert_eq!(cats("lastsave"), "admin fast dangerous");
    }

    #[test]
    fn subcommands_resolve() {
        assert_eq!(by_fullname(b"CLIENT|List").map(|c| c.name), Some("client|list"));
        assert!(by_fullname(b"client|").is_none());
        assert!(by_fullname(b"get|x").is_none());
        assert!(lookup(b"client|list").is_none());
    }
}
