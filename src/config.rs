//! Settings, by Redis' names. One table describes every directive; the config
//! file, `--name value` arguments and CONFIG GET/SET all go through it.
//!
//! Values live in a process-wide table: integers in atomics (read on hot paths
//! without locks), text behind a mutex (read only by CONFIG GET and startup).
//! Settings are not shard data, so sharing them does not break shared-nothing.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, OnceLock};

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// Integer within [min, max].
    Int(i64, i64),
    /// Byte size with k/kb/m/mb/g/gb suffixes, at least the given minimum.
    Memory(i64),
    Bool,
    /// One of a fixed set of words.
    Enum(&'static [&'static str]),
    Text,
}

pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub default: &'static str,
    /// Can be changed with CONFIG SET.
    pub mutable: bool,
}

const fn p(name: &'static str, kind: Kind, default: &'static str, mutable: bool) -> Param {
    Param { name, kind, default, mutable }
}

const MB: i64 = 1024 * 1024;
const YES: bool = true;
const NO: bool = false;
const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning", "nothing"];
const POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];
const FSYNC: &[&str] = &["always", "everysec", "no"];
const PROTECTED: &[&str] = &["no", "yes", "local"];
const IO_ENGINES: &[&str] = &["glommio", "uring"];

/// Every directive kvick knows. Names are Redis' (plus `threads`, kvick's own).
pub static PARAMS: &[Param] = &[
    p("port", Kind::Int(0, 65535), "6379", NO),
    p("bind", Kind::Text, "127.0.0.1", NO),
    p("threads", Kind::Int(0, 1024), "0", NO),
    p("databases", Kind::Int(1, 256), "16", NO),
    // Redis takes 0..INT_MAX and clamps to 1..500 (see `store`).
    p("hz", Kind::Int(0, i32::MAX as i64), "10", YES),
    p("timeout", Kind::Int(0, i32::MAX as i64), "0", YES),
    p("tcp-backlog", Kind::Int(0, 65535), "511", NO),
    p("tcp-keepalive", Kind::Int(0, i32::MAX as i64), "300", YES),
    p("maxclients", Kind::Int(1, 1_000_000), "10000", YES),
    p("proto-max-bulk-len", Kind::Memory(MB), "536870912", YES),
    p("client-query-buffer-limit", Kind::Memory(MB), "1073741824", YES),
    p("maxmemory", Kind::Memory(0), "0", YES),
    p("maxmemory-policy", Kind::Enum(POLICIES), "noeviction", YES),
    p("maxmemory-samples", Kind::Int(1, 64), "5", YES),
    p("lfu-log-factor", Kind::Int(0, i32::MAX as i64), "10", YES),
    p("lfu-decay-time", Kind::Int(0, i32::MAX as i64), "1", YES),
    p("loglevel", Kind::Enum(LOGLEVELS), "notice", YES),
    p("logfile", Kind::Text, "", NO),
    p("daemonize", Kind::Bool, "no", NO),
    p("protected-mode", Kind::Bool, "yes", YES),
    p("pidfile", Kind::Text, "", NO),
    p("dir", Kind::Text, ".", YES),
    p("dbfilename", Kind::Text, "dump.rdb", YES),
    p("save", Kind::Text, "3600 1 300 100 60 10000", YES),
    p("rdbcompression", Kind::Bool, "yes", YES),
    p("appendonly", Kind::Bool, "no", YES),
    p("appendfilename", Kind::Text, "appendonly.aof", NO),
    p("appenddirname", Kind::Text, "appendonlydir", NO),
    p("appendfsync", Kind::Enum(FSYNC), "everysec", YES),
    p("requirepass", Kind::Text, "", YES),
    p("slowlog-log-slower-than", Kind::Int(-1, i64::MAX), "10000", YES),
    p("slowlog-max-len", Kind::Int(0, i64::MAX), "128", YES),
    p("lazyfree-lazy-user-del", Kind::Bool, "no", YES),
    p("lazyfree-lazy-user-flush", Kind::Bool, "no", YES),
    p("notify-keyspace-events", Kind::Text, "", YES),
    p("busy-reply-threshold", Kind::Int(0, i64::MAX), "5000", YES),
    p("enable-debug-command", Kind::Enum(PROTECTED), "no", NO),
    p("io-memory", Kind::Memory(0), "0", NO),
    p("stream-node-max-bytes", Kind::Memory(0), "4096", YES),
    p("stream-node-max-entries", Kind::Int(0, i64::MAX), "100", YES),
    // 512 is redis-server's built-in default (its sample redis.conf says 128).
    p("hash-max-listpack-entries", Kind::Int(0, i64::MAX), "512", YES),
    p("hash-max-listpack-value", Kind::Memory(0), "64", YES),
    p("set-max-intset-entries", Kind::Int(0, i64::MAX), "512", YES),
    p("hll-sparse-max-bytes", Kind::Memory(0), "3000", YES),
    // kvick: how long an idle core polls before sleeping in the kernel.
    p("spin-before-park-us", Kind::Int(0, 1_000_000), "0", NO),
    // kvick: how client connections do I/O. `glommio`: glommio's TcpStream;
    // `uring`: a completion ring per core beside glommio (server::uring).
    p("io-engine", Kind::Enum(IO_ENGINES), "uring", NO),
    p("list-max-listpack-size", Kind::Int(i32::MIN as i64, i32::MAX as i64), "-2", YES),
    p("zset-max-listpack-entries", Kind::Int(0, i64::MAX), "128", YES),
    p("zset-max-listpack-value", Kind::Int(0, i64::MAX), "64", YES),
    p("client-output-buffer-limit", Kind::Text, "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60", YES),
    p("rdbchecksum", Kind::Bool, "yes", NO),
    p("stop-writes-on-bgsave-error", Kind::Bool, "yes", YES),
    // kvick: SAVE/BGSAVE write one Redis-compatible `dbfilename` instead of
    // a file per core and a manifest (persistence::snapshot).
    p("rdb-single-file", Kind::Bool, "no", YES),
    p("aof-load-truncated", Kind::Bool, "yes", YES),
    p("auto-aof-rewrite-percentage", Kind::Int(0, i32::MAX as i64), "100", YES),
    p("auto-aof-rewrite-min-size", Kind::Memory(0), "67108864", YES),
    p("aof-use-rdb-preamble", Kind::Bool, "yes", YES),
    p("no-appendfsync-on-rewrite", Kind::Bool, "no", YES),
    p("tracking-table-max-keys", Kind::Int(0, i64::MAX), "1000000", YES),
    // Who may CONFIG SET the PROTECTED directives (no / yes / local clients).
    p("enable-protected-configs", Kind::Enum(PROTECTED), "no", NO),
];

/// Directives Redis 7.0 flags PROTECTED_CONFIG: where files are written is
/// settable at runtime only with `enable-protected-configs`.
const PROTECTED_CONFIGS: &[&str] = &["dir", "dbfilename"];

/// Whether CONFIG SET of `p` is refused to this client as protected
/// (`local`: the client connects over loopback).
pub fn protected_refused(p: &Param, local: bool) -> bool {
    PROTECTED_CONFIGS.contains(&p.name)
        && match get_int("enable-protected-configs") {
            1 => false,
            2 => !local,
            _ => true,
        }
}

/// Old names Redis 7 still accepts for a directive (alias, name): CONFIG
/// GET lists them as directives of their own, with the same value.
const ALIASES: &[(&str, &str)] = &[
    ("hash-max-ziplist-entries", "hash-max-listpack-entries"),
    ("hash-max-ziplist-value", "hash-max-listpack-value"),
    ("list-max-ziplist-size", "list-max-listpack-size"),
    ("zset-max-ziplist-entries", "zset-max-listpack-entries"),
    ("zset-max-ziplist-value", "zset-max-listpack-value"),
    ("lua-time-limit", "busy-reply-threshold"),
];

struct Values {
    ints: Vec<AtomicI64>,
    texts: Vec<Mutex<String>>,
}

fn values() -> &'static Values {
    static V: OnceLock<Values> = OnceLock::new();
    V.get_or_init(|| {
        let v = Values {
            ints: PARAMS.iter().map(|_| AtomicI64::new(0)).collect(),
            texts: PARAMS.iter().map(|_| Mutex::new(String::new())).collect(),
        };
        for (i, p) in PARAMS.iter().enumerate() {
            store(&v, i, p.default).expect("defaults are valid");
        }
        v
    })
}


fn index(name: &str) -> Option<usize> {
    let name = ALIASES.iter().find(|(alias, _)| alias.eq_ignore_ascii_case(name)).map_or(name, |(_, n)| n);
    PARAMS.iter().position(|p| p.name.eq_ignore_ascii_case(name))
}

/// The directive called `name` (any case), if kvick knows it.
pub fn find(name: &str) -> Option<&'static Param> {
    index(name).map(|i| &PARAMS[i])
}

/// How Redis spells `name` (any case) in CONFIG SET errors: the alias's own
/// spelling when an alias was used.
pub fn spelling(name: &str) -> Option<&'static str> {
    match ALIASES.iter().find(|(alias, _)| alias.eq_ignore_ascii_case(name)) {
        Some((alias, _)) => Some(alias),
        None => find(name).map(|p| p.name),
    }
}

/// Validates and stores a value; the error text is what CONFIG SET reports.
fn store(v: &Values, i: usize, raw: &str) -> Result<(), String> {
    let p = &PARAMS[i];
    let (num, text) = match p.kind {
        Kind::Int(min, max) => {
            let n: i64 = raw.parse().map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
            if n < min || n > max {
                return Err(format!("argument must be between {} and {} inclusive", min, max));
            }
            // As Redis' hz: any value is taken, then clamped to 1..500.
            let n = if p.name == "hz" { n.clamp(1, 500) } else { n };
            (n, n.to_string())
        }
        Kind::Memory(min) => {
            let n = parse_memory(raw).ok_or_else(|| "argument must be a memory value".to_string())?;
            if n < min {
                return Err(format!("argument must be between {} and {} inclusive", min, i64::MAX));
            }
            (n, n.to_string())
        }
        Kind::Bool => match raw.to_ascii_lowercase().as_str() {
            "yes" => (1, "yes".to_string()),
            "no" => (0, "no".to_string()),
            _ => return Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Enum(words) => {
            let lower = raw.to_ascii_lowercase();
            let at = words.iter().position(|w| *w == lower).ok_or_else(|| "argument(s) must be one of the following: ".to_string() + &words.join(", "))?;
            (at as i64, lower)
        }
        Kind::Text => match p.name {
            "notify-keyspace-events" => {
                let flags = crate::shard::notify::parse_flags(raw).ok_or("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")?;
                crate::shard::notify::set_flags(flags);
                (0, crate::shard::notify::flags_text(flags))
            }
            "client-output-buffer-limit" => (0, set_output_buffer_limits(raw)?),
            "save" => (0, save_params(raw).ok_or("Invalid save parameters")?),
            "dir" => (0, resolve_dir(v, i, raw)?),
            "dbfilename" if raw.contains('/') => return Err("dbfilename can't be a path, just a filename".into()),
            _ => (0, raw.to_string()),
        },
    };
    not_yet(p.name, &text)?;
    v.ints[i].store(num, Ordering::Relaxed);
    *v.texts[i].lock().unwrap_or_else(|e| e.into_inner()) = text;
    Ok(())
}

/// Directives kvick accepts by name but does not implement yet: only the
/// value that means "off" is taken (name, that value as stored, why).
const NOT_YET: &[(&str, &str, &str)] = &[
    ("maxmemory", "0", "argument must be 0 (maxmemory is not implemented yet)"),
    ("daemonize", "no", "argument must be 'no' (daemonize is not implemented yet)"),
    ("logfile", "", "argument must be \"\" (logging to a file is not implemented yet)"),
];

/// Refuses a value of a NOT_YET directive other than "off", after the
/// directive's own syntax check.
fn not_yet(name: &str, text: &str) -> Result<(), String> {
    let Some((_, off, why)) = NOT_YET.iter().find(|(n, _, _)| *n == name) else { return Ok(()) };
    if text == *off {
        return Ok(());
    }
    Err(why.to_string())
}

/// Redis' check of a save value, pairs of seconds >= 1 and changes >= 0
/// split at single spaces (as its CONFIG SET: "5  5" is refused), and its
/// text as CONFIG GET shows it; "" means no save points.
fn save_params(raw: &str) -> Option<String> {
    if raw.is_empty() {
        return Some(String::new());
    }
    let words: Vec<&str> = raw.split(' ').collect();
    let ok = words.len().is_multiple_of(2)
        && words.iter().enumerate().all(|(j, w)| w.parse::<i64>().is_ok_and(|v| v >= if j % 2 == 0 { 1 } else { 0 }));
    ok.then(|| words.iter().map(|w| w.parse::<i64>().unwrap_or(0).to_string()).collect::<Vec<_>>().join(" "))
}

/// `dir` as an absolute path (Redis chdir()s into it, and CONFIG GET dir
/// shows the working directory), relative to the current `dir`; it must be
/// an existing directory, or the error is chdir's.
fn resolve_dir(v: &Values, i: usize, raw: &str) -> Result<String, String> {
    let current = v.texts[i].lock().unwrap_or_else(|e| e.into_inner()).clone();
    let path = std::path::Path::new(&current).join(raw);
    let abs = std::fs::canonicalize(path).map_err(|e| crate::util::strerror(&e))?;
    if !abs.is_dir() {
        return Err(crate::util::strerror(&std::io::Error::from_raw_os_error(libc::ENOTDIR)));
    }
    Ok(abs.display().to_string())
}

/// "1gb", "100mb", "512k", "42" → bytes (k = 1000, kb = 1024, as redis.conf).
pub fn parse_memory(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '-').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().ok()?;
    let mul: i64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if n < 0 {
        return None;
    }
    n.checked_mul(mul)
}

/// The integer value of a directive (Bool: 0/1, Enum: position in its list).
/// Panics on an unknown name: names are fixed at compile time.
pub fn get_int(name: &str) -> i64 {
    let i = index(name).unwrap_or_else(|| panic!("unknown config directive {name}"));
    values().ints[i].load(Ordering::Relaxed)
}

pub fn get_text(name: &str) -> String {
    let i = index(name).unwrap_or_else(|| panic!("unknown config directive {name}"));
    values().texts[i].lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Sets a directive at startup (file or command line): any directive may be set.
/// `save` lines accumulate as in Redis: the first one replaces the default,
/// later ones add their points, and `save ""` clears what came before.
pub fn set_startup(name: &str, args: &[String]) -> Result<(), String> {
    let i = index(name).ok_or_else(|| format!("Bad directive or wrong number of arguments: '{}'", name))?;
    let mut value = args.join(" ");
    if PARAMS[i].name == "save" {
        static SAVE_SEEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        let clears = args.len() == 1 && args[0].is_empty();
        save_params(&value).ok_or("Invalid save parameters")?;
        if SAVE_SEEN.swap(true, Ordering::Relaxed) && !clears {
            value = [get_text("save"), value].into_iter().filter(|v| !v.is_empty()).collect::<Vec<_>>().join(" ");
        }
    }
    store(values(), i, &value)
}

/// CONFIG SET: only mutable directives.
pub fn set_runtime(name: &str, value: &str) -> Result<(), String> {
    let i = index(name).ok_or_else(|| format!("Unknown option or number of arguments for CONFIG SET - '{}'", name))?;
    let spelled = spelling(name).unwrap_or(PARAMS[i].name);
    if !PARAMS[i].mutable {
        return Err(format!("CONFIG SET failed (possibly related to argument '{spelled}') - can't set immutable config"));
    }
    store(values(), i, value).map_err(|e| format!("CONFIG SET failed (possibly related to argument '{spelled}') - {e}"))
}

/// (name, value) pairs whose name matches the glob, for CONFIG GET. As in
/// Redis, a pattern without `[`, `*` or `?` is a plain (case-insensitive)
/// name, so a backslash in it is not an escape.
pub fn matching(pattern: &[u8]) -> Vec<(&'static str, String)> {
    let glob = pattern.iter().any(|c| matches!(c, b'[' | b'*' | b'?'));
    let names = PARAMS.iter().map(|p| p.name).chain(ALIASES.iter().map(|(alias, _)| *alias));
    names
        .filter(|name| {
            if glob {
                crate::util::glob_match(pattern, name.as_bytes(), true)
            } else {
                name.as_bytes().eq_ignore_ascii_case(pattern)
            }
        })
        .map(|name| (name, get_text(name)))
        .collect()
}

/// Parses a redis.conf-style file: `name arg arg` per line, `#` comments,
/// double-quoted arguments.
pub fn load_file(path: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("Fatal error, can't open config file '{}': {}", path, e))?;
    let absolute = std::fs::canonicalize(path).map(|p| p.display().to_string()).unwrap_or_else(|_| path.to_string());
    let _ = CONFIG_FILE.set(absolute);
    for (n, line) in text.lines().enumerate() {
        let words = split_words(line);
        if words.is_empty() || words[0].starts_with('#') {
            continue;
        }
        set_startup(&words[0], &words[1..])
            .map_err(|e| format!("*** FATAL CONFIG FILE ERROR *** line {}: >>> '{}'\n{}", n + 1, line.trim(), e))?;
    }
    Ok(())
}

static CONFIG_FILE: OnceLock<String> = OnceLock::new();

/// The absolute path of the config file the server started with ("" if none),
/// as INFO's config_file.
pub fn config_file() -> &'static str {
    CONFIG_FILE.get().map_or("", |s| s.as_str())
}

/// Applies `--name value [value...]` pairs from the command line.
pub fn apply_args(args: &[String]) -> Result<(), String> {
    let mut i = 0;
    while i < args.len() {
        let Some(name) = args[i].strip_prefix("--") else {
            return Err(format!("Invalid argument '{}': directives are given as --name value", args[i]));
        };
        let mut vals = Vec::new();
        i += 1;
        while i < args.len() && !args[i].starts_with("--") {
            vals.push(args[i].clone());
            i += 1;
        }
        set_startup(name, &vals).map_err(|e| format!("*** FATAL CONFIG ERROR *** --{}: {}", name, e))?;
    }
    Ok(())
}

fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut has_word = false;
    for c in line.trim().chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                has_word = true;
            }
            c if c.is_whitespace() && !in_quotes => {
                if has_word {
                    words.push(std::mem::take(&mut cur));
                    has_word = false;
                }
            }
            c => {
                cur.push(c);
                has_word = true;
            }
        }
    }
    if has_word {
        words.push(cur);
    }
    words
}

#[cfg(test)]
mod tests {
    #[test]
    fn lfu_policy_indexes_name_the_lfu_policies() {
        let lfu: Vec<usize> = (0..super::POLICIES.len()).filter(|&i| super::POLICIES[i].ends_with("lfu")).collect();
        assert_eq!(lfu, [1, 5]);
    }

    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1gb"), Some(1 << 30));
        assert_eq!(parse_memory("512k"), Some(512_000));
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_memory("x"), None);
    }

    #[test]
    fn not_implemented_directives_take_only_off() {
        let v = values();
        let at = |n: &str| index(n).unwrap();
        assert_eq!(store(v, at("appendonly"), "maybe").unwrap_err(), "argument must be 'yes' or 'no'");
        assert!(store(v, at("maxmemory"), "0mb").is_ok());
        assert!(store(v, at("maxmemory"), "1gb").unwrap_err().contains("not implemented"));
        assert!(store(v, at("daemonize"), "yes").unwrap_err().contains("not implemented"));
        assert!(store(v, at("logfile"), "/tmp/x.log").unwrap_err().contains("not implemented"));
        assert_eq!(get_text("appendonly"), "no");
    }

    #[test]
    fn hz_is_clamped() {
        let v = values();
        let hz = index("hz").unwrap();
        store(v, hz, "0").unwrap();
        assert_eq!((get_int("hz"), get_text("hz")), (1, "1".to_string()));
        store(v, hz, "501").unwrap();
        assert_eq!(get_int("hz"), 500);
        assert_eq!(store(v, hz, "-1").unwrap_err(), "argument must be between 0 and 2147483647 inclusive");
        store(v, hz, "10").unwrap();
    }

    #[test]
    fn words() {
        assert_eq!(split_words("save \"\""), vec!["save", ""]);
        assert_eq!(split_words("  port 7000 "), vec!["port", "7000"]);
    }
}

/// Integer value of a directive through a cached index, for per-request reads.
macro_rules! hot_int {
    ($fn:ident, $name:literal) => {
        pub fn $fn() -> i64 {
            static I: OnceLock<usize> = OnceLock::new();
            let i = *I.get_or_init(|| index($name).expect("known directive"));
            values().ints[i].load(Ordering::Relaxed)
        }
    };
}

hot_int!(proto_max_bulk_len, "proto-max-bulk-len");
hot_int!(hash_max_listpack_entries, "hash-max-listpack-entries");
hot_int!(hash_max_listpack_value, "hash-max-listpack-value");
hot_int!(set_max_intset_entries, "set-max-intset-entries");
hot_int!(client_query_buffer_limit, "client-query-buffer-limit");
hot_int!(stream_node_max_bytes, "stream-node-max-bytes");
hot_int!(stream_node_max_entries, "stream-node-max-entries");
hot_int!(list_max_listpack_size, "list-max-listpack-size");
hot_int!(hll_sparse_max_bytes, "hll-sparse-max-bytes");
hot_int!(busy_reply_threshold, "busy-reply-threshold");
hot_int!(zset_max_listpack_entries, "zset-max-listpack-entries");
hot_int!(zset_max_listpack_value, "zset-max-listpack-value");
hot_int!(appendfsync, "appendfsync");
hot_int!(maxmemory_policy, "maxmemory-policy");
hot_int!(lfu_log_factor, "lfu-log-factor");
hot_int!(lfu_decay_time, "lfu-decay-time");

/// Whether `maxmemory-policy` is one of the LFU ones (`shard::access`).
pub fn lfu_policy() -> bool {
    // Indexes of volatile-lfu and allkeys-lfu in POLICIES (read per key access).
    matches!(maxmemory_policy(), 1 | 5)
}

/// Client classes of `client-output-buffer-limit`.
#[derive(Clone, Copy)]
pub enum ClientClass {
    Normal = 0,
    Replica = 1,
    Pubsub = 2,
}

/// (hard, soft, soft seconds) per client class, read on every push.
static OUTPUT_LIMITS: [AtomicI64; 9] = [const { AtomicI64::new(0) }; 9];

/// The output buffer limits of a class: (hard bytes, soft bytes, soft seconds).
pub fn output_buffer_limit(class: ClientClass) -> (i64, i64, i64) {
    let at = class as usize * 3;
    let l = |i: usize| OUTPUT_LIMITS[at + i].load(Ordering::Relaxed);
    (l(0), l(1), l(2))
}

/// Applies `class hard soft seconds` groups (classes not named keep their
/// limits, as in Redis) and returns the whole setting in Redis' form.
fn set_output_buffer_limits(raw: &str) -> Result<String, String> {
    let words: Vec<&str> = raw.split_whitespace().collect();
    if words.len() % 4 != 0 {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut updates = Vec::new();
    for g in words.chunks(4) {
        let class = match g[0].to_ascii_lowercase().as_str() {
            "normal" => ClientClass::Normal,
            "slave" | "replica" => ClientClass::Replica,
            "pubsub" => ClientClass::Pubsub,
            _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
        };
        let (hard, soft, secs) = (parse_memory(g[1]), parse_memory(g[2]), g[3].parse::<i64>().ok().filter(|s| *s >= 0));
        let (Some(hard), Some(soft), Some(secs)) = (hard, soft, secs) else {
            return Err("Error in hard, soft or soft_seconds setting in buffer limit configuration.".into());
        };
        updates.push((class, [hard, soft, secs]));
    }
    for (class, v) in updates {
        for (i, x) in v.into_iter().enumerate() {
            OUTPUT_LIMITS[class as usize * 3 + i].store(x, Ordering::Relaxed);
        }
    }
    let names = ["normal", "slave", "pubsub"];
    let text = names
        .iter()
        .enumerate()
        .map(|(c, n)| format!("{} {} {} {}", n, OUTPUT_LIMITS[c * 3].load(Ordering::Relaxed), OUTPUT_LIMITS[c * 3 + 1].load(Ordering::Relaxed), OUTPUT_LIMITS[c * 3 + 2].load(Ordering::Relaxed)))
        .collect::<Vec<_>>()
        .join(" ");
    Ok(text)
}
