//! The command table: name, arity, flags and key positions of every command
//! (as in Redis' table), and how each one runs.
//!
//! A command runs in one of three ways:
//! - `Run::Shard`: on the shard that owns all its keys (the connection's own
//!   core inline, or another core by message). Keyless ones run on the home core.
//! - `Run::Span`: a multi-key command; when its keys live on one shard it runs
//!   like `Run::Shard`, otherwise its coordinator runs it as a multi-shard
//!   transaction (`server::txn`).
//! - `Run::Conn`: needs the connection's state or every shard (SELECT, HELLO,
//!   CLIENT, INFO, FLUSHALL, SCAN, ...); it runs on the connection's task.

pub mod bitmaps;
pub mod cluster;
pub mod connection;
pub mod docs;
pub mod functions;
pub mod geo;
pub mod hashes;
pub mod hyperloglog;
pub mod keys;
pub mod keyspecs;
pub mod lists;
pub mod pubsub;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod sort;
pub mod streams;
pub mod strings;
pub mod transactions;
pub mod zsets;

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::OnceLock;

use hashbrown::HashMap;

use crate::resp::Reply;
use crate::server::session::Session;
use crate::shard::db::{Db, Entry};
use crate::shard::notify::{self, event as notify};
use crate::shard::Shard;

/// A command's arguments: byte ranges into one buffer (zero-copy).
#[derive(Clone, Copy)]
pub struct Args<'a> {
    base: &'a [u8],
    ranges: &'a [Range<usize>],
}

impl<'a> Args<'a> {
    pub fn new(base: &'a [u8], ranges: &'a [Range<usize>]) -> Self {
        Args { base, ranges }
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn get(&self, i: usize) -> &'a [u8] {
        &self.base[self.ranges[i].clone()]
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let base = self.base;
        self.ranges.iter().map(move |r| &base[r.clone()])
    }

    /// Case-insensitive comparison of argument `i` with an (uppercase or lowercase) word.
    pub fn is(&self, i: usize, word: &str) -> bool {
        self.get(i).eq_ignore_ascii_case(word.as_bytes())
    }

    pub fn to_owned(&self) -> OwnedArgs {
        OwnedArgs(self.iter().map(|a| a.to_vec()).collect())
    }
}

/// Read access to a command's arguments, borrowed or owned (key finders take
/// either).
pub trait ArgList {
    fn argc(&self) -> usize;
    fn arg(&self, i: usize) -> &[u8];
}

impl ArgList for Args<'_> {
    fn argc(&self) -> usize {
        self.len()
    }
    fn arg(&self, i: usize) -> &[u8] {
        self.get(i)
    }
}

impl ArgList for OwnedArgs {
    fn argc(&self) -> usize {
        self.len()
    }
    fn arg(&self, i: usize) -> &[u8] {
        self.get(i)
    }
}

/// Arguments copied out of the read buffer, for commands that run across awaits.
pub struct OwnedArgs(pub Vec<Vec<u8>>);

impl OwnedArgs {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn get(&self, i: usize) -> &[u8] {
        &self.0[i]
    }

    pub fn is(&self, i: usize, word: &str) -> bool {
        self.0[i].eq_ignore_ascii_case(word.as_bytes())
    }

    /// The arguments in one buffer, for running a shard function (`Args`).
    pub fn flatten(&self) -> (Vec<u8>, Vec<Range<usize>>) {
        let mut base = Vec::with_capacity(self.0.iter().map(Vec::len).sum());
        let ranges = self
            .0
            .iter()
            .map(|a| {
                base.extend_from_slice(a);
                base.len() - a.len()..base.len()
            })
            .collect();
        (base, ranges)
    }
}

/// What a shard-level command gets besides its reply writer: the shard, the
/// client's database and the request's clock.
pub struct Ctx<'a> {
    pub shard: &'a mut Shard,
    pub db: usize,
    pub now: u64,
    /// Copies of keys owned by other shards, fetched under the transaction's
    /// locks when a command that reads several keys spans cores
    /// (`server::txn::gather_span`); lookups see them as if they were local.
    pub remote: Option<&'a mut RemoteKeys>,
}

/// Entries of other shards' keys (None: the key does not exist), by key.
pub type RemoteKeys = HashMap<Vec<u8>, Option<Entry>>;

impl<'a> Ctx<'a> {
    pub fn new(shard: &'a mut Shard, db: usize) -> Self {
        Self::at(shard, db, crate::util::now_ms())
    }

    /// As `new`, with the clock the caller read (`Core::try_run_local`).
    pub fn at(shard: &'a mut Shard, db: usize, now: u64) -> Self {
        Ctx { shard, db, now, remote: None }
    }

    /// The same shard and clock, another database (COPY ... DB, MOVE).
    pub fn with_db(&mut self, db: usize) -> Ctx<'_> {
        Ctx { shard: &mut *self.shard, db, now: self.now, remote: None }
    }
}

impl Ctx<'_> {
    pub fn db(&mut self) -> &mut Db {
        &mut self.shard.dbs[self.db]
    }

    /// A key read by a command: lazy expiry, hit/miss statistics, LRU touch.
    pub fn read(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let now = self.now;
        let e = self.peek(key)?;
        e.lru = crate::shard::access::touched(e.lru, now);
        Some(e)
    }

    /// A key looked at without counting as an access (EXISTS, TYPE, TTL,
    /// OBJECT; Redis' LOOKUP_NOTOUCH): lazy expiry and statistics, no LRU touch.
    pub fn peek(&mut self, key: &[u8]) -> Option<&mut Entry> {
        // A gathered key was counted and touched on its own shard.
        if let Some(remote) = self.remote.as_deref_mut() {
            if let Some(e) = remote.get_mut(key) {
                return e.as_mut();
            }
        }
        let shard = &mut *self.shard;
        let e = shard.dbs[self.db].get_mut(key, self.now);
        match e {
            Some(_) => shard.stats.keyspace_hits += 1,
            None => {
                shard.stats.keyspace_misses += 1;
                notify(notify::KEY_MISS, "keymiss", self.db, key);
            }
        }
        e
    }

    /// A key this command has already `read`, looked at again without
    /// statistics and through a shared borrow, so that several can be held
    /// at once (SINTER walks one set while probing the others).
    pub fn view(&self, key: &[u8]) -> Option<&Entry> {
        match self.remote.as_deref().and_then(|r| r.get(key)) {
            Some(e) => e.as_ref(),
            None => self.shard.dbs[self.db].get_ref(key, self.now),
        }
    }

    /// Runs `f` on the collection at `key`, a new empty one if the key is
    /// missing (Redis' lookupWriteOrCreate). The key is stored if `f` leaves
    /// the collection non-empty and deleted if it empties it. Err(()) if the
    /// key holds another type.
    pub fn update<T: crate::types::Collection, R>(&mut self, key: &[u8], f: impl FnOnce(&mut T) -> R) -> Result<R, ()> {
        let (out, emptied) = self.modify(key, f)?;
        if emptied {
            self.notify(notify::GENERIC, "del", key);
        }
        Ok(out)
    }

    /// As `update`, but the caller raises `del` when the bool says `f`
    /// emptied (and so deleted) the key: after its own event, Redis' order
    /// (HDEL's `hdel`, then `del`).
    pub fn modify<T: crate::types::Collection, R>(&mut self, key: &[u8], f: impl FnOnce(&mut T) -> R) -> Result<(R, bool), ()> {
        let (out, emptied) = match self.write(key) {
            Some(e) => {
                let c = T::of(&mut e.value).ok_or(())?;
                let out = f(c);
                (out, c.is_empty())
            }
            None => {
                let mut c = T::default();
                let out = f(&mut c);
                if !c.is_empty() {
                    self.db().insert(key, c.into_value(), 0);
                }
                return Ok((out, false));
            }
        };
        if emptied {
            self.db().remove(key);
        }
        Ok((out, emptied))
    }

    /// Stores the result of a STORE-style command at `dst` (replacing any
    /// value and its TTL) and raises `event`; an empty result (None)
    /// deletes `dst` instead, raising `del` only if it existed, as Redis.
    pub fn store(&mut self, dst: &[u8], value: Option<crate::types::Value>, class: u32, event: &str) {
        let now = self.now;
        self.db().expire_if_due(dst, now);
        match value {
            Some(v) => {
                self.db().insert(dst, v, 0);
                self.notify(class, event, dst);
            }
            None => {
                if self.db().remove(dst).is_some() {
                    self.notify(notify::GENERIC, "del", dst);
                }
            }
        }
    }

    /// Raises keyspace notification `event` of `class` on `key` (one flag
    /// check when notifications are off).
    #[inline]
    pub fn notify(&self, class: u32, event: &str, key: &[u8]) {
        notify(class, event, self.db, key);
        crate::shard::tracking::key_notified(key);
    }

    /// A key about to be written: lazy expiry and LRU touch, no statistics.
    /// Only keys of this shard can be written (a gathered run writes its
    /// first key, which is local). Counts as a change for WATCH even if the
    /// command then changes nothing (SET NX on an existing key): an EXEC may
    /// fail where Redis' would not, but never succeeds over a change.
    pub fn write(&mut self, key: &[u8]) -> Option<&mut Entry> {
        debug_assert!(self.remote.as_ref().is_none_or(|r| !r.contains_key(key)), "write to a key of another shard");
        let now = self.now;
        let e = self.shard.dbs[self.db].get_for_write(key, now)?;
        e.lru = crate::shard::access::touched(e.lru, now);
        Some(e)
    }
}

pub type ShardFn = fn(&mut Ctx, &mut Reply, Args);
pub type BoxFuture<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;
/// Runs on the connection's task with its session; writes its reply into `s.out`.
pub type ConnFn = for<'a> fn(&'a mut Session, OwnedArgs) -> BoxFuture<'a>;

#[derive(Clone, Copy)]
pub enum Run {
    Shard(ShardFn),
    Span(ShardFn, ConnFn),
    Conn(ConnFn),
}

pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const FAST: u32 = 1 << 9;
    pub const NO_AUTH: u32 = 1 << 10;
    pub const NO_MULTI: u32 = 1 << 11;
    pub const SKIP_SLOWLOG: u32 = 1 << 12;
    pub const ALLOW_BUSY: u32 = 1 << 13;
    /// kvick-internal (not in COMMAND INFO): may touch another database than
    /// the client's (MOVE, COPY ... DB), so lock checks must cover the shard.
    pub const OTHER_DB: u32 = 1 << 14;
    /// Not a write itself but may write (scripts): the AOF's group commit
    /// holds its reply as a write's.
    pub const MAY_REPLICATE: u32 = 1 << 15;

    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
        (MAY_REPLICATE, "may_replicate"),
    ];
}

pub struct Command {
    /// Lowercase name.
    pub name: &'static str,
    /// Redis arity: N exactly, or -N for at least N (the name counts).
    pub arity: i32,
    pub flags: u32,
    /// Key positions as Redis' legacy (first, last, step); last < 0 counts from the end.
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    /// ACL categories and doc group, for COMMAND INFO/DOCS.
    pub group: &'static str,
    pub summary: &'static str,
    pub since: &'static str,
    pub run: Run,
    /// Subcommands of a container (CLIENT, CONFIG, ...), named "parent|sub"
    /// as in Redis; dispatch resolves them, so each has its own arity and flags.
    pub subs: &'static [Command],
    /// Keys whose positions depend on the arguments (ZUNION's numkeys,
    /// XREAD's STREAMS, ...): Redis' "movablekeys" commands. Overrides the
    /// legacy (first, last, step).
    pub keys_fn: Option<KeysFn>,
}

/// Finds a movable-keys command's key arguments: at most two runs of
/// consecutive arguments (e.g. ZUNIONSTORE's destination, then its sources).
/// Invalid arguments (a bad numkeys) give whatever is in range; the command
/// itself reports the error.
pub type KeysFn = fn(&dyn ArgList) -> [Range<usize>; 2];

/// The key positions of a "numkeys" command: `numkeys` at argument `at`, the
/// keys right after it; `extra` is an optional key run before (a destination).
pub fn numkeys_at(a: &dyn ArgList, at: usize, extra: Range<usize>) -> [Range<usize>; 2] {
    let n = (at < a.argc()).then(|| crate::resp::parser::parse_i64(a.arg(at))).flatten().unwrap_or(0);
    let end = (at as i64 + 1).saturating_add(n.max(0)).min(a.argc() as i64) as usize;
    [extra, at + 1..end.max(at + 1)]
}

/// The iterator `Command::key_indexes` returns.
pub type KeyIndexes = std::iter::Chain<std::iter::StepBy<Range<usize>>, Range<usize>>;

impl Command {
    /// Makes this entry a container of `subs`. Its own `run` serves a call
    /// without subcommand, which only arity -1 allows (COMMAND).
    pub const fn with_subs(self, subs: &'static [Command]) -> Command {
        Command { subs, ..self }
    }

    /// Gives this entry movable keys, found by `f`.
    pub const fn with_keys(self, f: KeysFn) -> Command {
        Command { keys_fn: Some(f), ..self }
    }

    /// Whether the command names keys at all (keyless ones never wait for locks).
    pub fn has_keys(&self) -> bool {
        self.first_key > 0 || self.keys_fn.is_some()
    }

    pub fn arity_ok(&self, argc: usize) -> bool {
        let a = self.arity;
        (a >= 0 && argc == a as usize) || (a < 0 && argc >= (-a) as usize)
    }

    pub fn is_write(&self) -> bool {
        self.flags & flags::WRITE != 0
    }

    /// Indexes of the key arguments of this invocation.
    pub fn key_indexes(&self, args: &dyn ArgList) -> KeyIndexes {
        if let Some(f) = self.keys_fn {
            let [a, b] = f(args);
            return a.step_by(1).chain(b);
        }
        let argc = args.argc();
        let (first, step) = (self.first_key, self.step.max(1) as usize);
        let last = if first <= 0 {
            -1
        } else if self.last_key < 0 {
            argc as i32 + self.last_key
        } else {
            self.last_key.min(argc as i32 - 1)
        };
        let range = if first <= 0 || last < first { 1..1 } else { first as usize..last as usize + 1 };
        range.step_by(step).chain(0..0)
    }
}

/// Builds a table entry; the family files list their commands with it.
#[allow(clippy::too_many_arguments)]
pub const fn cmd(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    group: &'static str,
    since: &'static str,
    summary: &'static str,
    run: Run,
) -> Command {
    Command { name, arity, flags, first_key: keys.0, last_key: keys.1, step: keys.2, group, summary, since, run, subs: &[], keys_fn: None }
}

pub const NOKEYS: (i32, i32, i32) = (0, 0, 0);

/// Every command by index: the top-level commands (what COMMAND lists), then
/// each container's subcommands, so a subcommand can be forwarded by index too.
struct Table {
    cmds: Vec<&'static Command>,
    top: usize,
    /// Index of the first subcommand of each top-level command.
    first_sub: Vec<u16>,
    /// Top-level names only ("client|list" is not a command name): slots
    /// by `name_slot`, open addressing with linear probing, `NO_CMD` for
    /// empty; and each top-level command's `name_words`.
    names: Box<[u16]>,
    words: Vec<[u64; 4]>,
}

const NO_CMD: u16 = u16::MAX;
/// No command name is longer.
const MAX_NAME: usize = 32;

/// A name of at most `MAX_NAME` bytes as lowercase 8-byte words, zero
/// padded: every request looks its command up, so names are compared and
/// hashed a word at a time rather than byte by byte.
fn name_words(name: &[u8]) -> [u64; 4] {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let mut words = [0u64; 4];
    for (w, chunk) in words.iter_mut().zip(name.chunks(8)) {
        let raw = load_le(chunk);
        // ASCII lowercase of eight bytes at once: a byte is uppercase if its
        // low 7 bits are >= 'A' and not > 'Z' (no carry leaves a byte) and
        // its top bit is clear; those get 0x20 added.
        let low7 = raw & (0x7f * ONES);
        let ge_a = low7 + (0x80 - b'A' as u64) * ONES;
        let gt_z = low7 + (0x7f - b'Z' as u64) * ONES;
        let upper = ge_a & !gt_z & !raw & (0x80 * ONES);
        *w = raw | (upper >> 2);
    }
    words
}

/// Up to 8 bytes as a little-endian word, zero padded, in a few loads
/// (overlapping ones for odd lengths) rather than a loop or a copy call.
fn load_le(c: &[u8]) -> u64 {
    let n = c.len();
    if n >= 4 {
        let lo = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u64;
        let hi = u32::from_le_bytes([c[n - 4], c[n - 3], c[n - 2], c[n - 1]]) as u64;
        lo | hi << (8 * (n - 4))
    } else if n > 0 {
        c[0] as u64 | (c[n / 2] as u64) << (8 * (n / 2)) | (c[n - 1] as u64) << (8 * (n - 1))
    } else {
        0
    }
}

/// A name's first slot in `Table::names` (the product's high bits depend on
/// every bit of the words).
fn name_slot(words: &[u64; 4], len: usize, mask: usize) -> usize {
    let mut h = len as u64;
    for &w in &words[..len.div_ceil(8)] {
        h = (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    (h >> 32) as usize & mask
}

fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| {
        let mut cmds: Vec<&'static Command> = Vec::new();
        for family in [
            strings::COMMANDS,
            keys::COMMANDS,
            lists::COMMANDS,
            connection::COMMANDS,
            server::COMMANDS,
            cluster::COMMANDS,
            transactions::COMMANDS,
            streams::COMMANDS,
            hashes::COMMANDS,
            sets::COMMANDS,
            hyperloglog::COMMANDS,
            bitmaps::COMMANDS,
            zsets::COMMANDS,
            geo::COMMANDS,
            sort::COMMANDS,
            pubsub::COMMANDS,
            scripting::COMMANDS,
            functions::COMMANDS,
        ] {
            cmds.extend(family.iter());
        }
        let top = cmds.len();
        let mut first_sub = Vec::with_capacity(top);
        for i in 0..top {
            first_sub.push(cmds.len() as u16);
            let subs = cmds[i].subs;
            cmds.extend(subs.iter());
        }
        // At most a quarter full, so probes stay short.
        let mut names = vec![NO_CMD; (4 * top).next_power_of_two()].into_boxed_slice();
        let mask = names.len() - 1;
        let words: Vec<[u64; 4]> = cmds[..top].iter().map(|c| name_words(c.name.as_bytes())).collect();
        for (i, c) in cmds[..top].iter().enumerate() {
            assert!(c.name.len() <= MAX_NAME, "command name {} too long", c.name);
            let mut at = name_slot(&words[i], c.name.len(), mask);
            while names[at] != NO_CMD {
                at = (at + 1) & mask;
            }
            names[at] = i as u16;
        }
        Table { cmds, top, first_sub, names, words }
    })
}

/// The top-level commands.
pub fn all() -> &'static [&'static Command] {
    let t = table();
    &t.cmds[..t.top]
}

/// Finds a command by name, case-insensitively, without allocating.
pub fn lookup(name: &[u8]) -> Option<u16> {
    if name.len() > MAX_NAME {
        return None;
    }
    let t = table();
    let words = name_words(name);
    let mask = t.names.len() - 1;
    let mut at = name_slot(&words, name.len(), mask);
    loop {
        let ci = t.names[at];
        if ci == NO_CMD {
            return None;
        }
        if t.words[ci as usize] == words && t.cmds[ci as usize].name.len() == name.len() {
            return Some(ci);
        }
        at = (at + 1) & mask;
    }
}

/// Finds subcommand `name` of the container at index `ci`, case-insensitively.
pub fn lookup_sub(ci: u16, name: &[u8]) -> Option<u16> {
    let t = table();
    let j = t.cmds[ci as usize].subs.iter().position(|c| c.name.rsplit('|').next().is_some_and(|n| n.as_bytes().eq_ignore_ascii_case(name)))?;
    Some(t.first_sub[ci as usize] + j as u16)
}

pub fn by_index(i: u16) -> &'static Command {
    table().cmds[i as usize]
}

/// Redis' reply for an unknown command: the name and the first 128 bytes of
/// its arguments, quoted.
pub fn unknown_command_error(args: &Args) -> String {
    let mut rest = String::new();
    for a in args.iter().skip(1) {
        if rest.len() >= 128 {
            break;
        }
        let room = 128 - rest.len();
        rest.push_str(&format!("'{}' ", printable(a, room)));
    }
    format!("ERR unknown command '{}', with args beginning with: {}", printable(args.get(0), 128), rest)
}

/// Redis' reply for a container called with a subcommand it does not have.
pub fn unknown_subcommand_error(args: &Args) -> String {
    format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        printable(args.get(1), 128),
        String::from_utf8_lossy(args.get(0)).to_ascii_uppercase()
    )
}

pub fn arity_error(name: &str) -> String {
    format!("ERR wrong number of arguments for '{}' command", name)
}

/// Lossy, length-capped text of an argument for error messages. Cut at a NUL
/// byte, as Redis' "%s" formatting does.
pub fn printable(a: &[u8], max: usize) -> String {
    let a = &a[..a.iter().position(|&b| b == 0).unwrap_or(a.len())];
    let s = String::from_utf8_lossy(&a[..a.len().min(max)]);
    s.chars().map(|c| if c == '\r' || c == '\n' { ' ' } else { c }).collect()
}

/// Runs a shard-level command on `sh` (db 0) and returns its RESP2 reply:
/// for the families' unit tests.
#[cfg(test)]
pub(crate) fn run_shard_fn(sh: &mut Shard, f: ShardFn, argv: &[&str]) -> String {
    let (base, ranges) = OwnedArgs(argv.iter().map(|a| a.as_bytes().to_vec()).collect()).flatten();
    let mut out = Vec::new();
    f(&mut Ctx::new(sh, 0), &mut Reply::new(&mut out, crate::resp::Proto::Resp2), Args::new(&base, &ranges));
    String::from_utf8(out).expect("RESP2 replies of these tests are text")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_ignores_case_and_knows_every_name() {
        for (i, c) in all().iter().enumerate() {
            assert_eq!(lookup(c.name.as_bytes()), Some(i as u16), "{}", c.name);
            assert_eq!(lookup(c.name.to_ascii_uppercase().as_bytes()), Some(i as u16), "{}", c.name);
        }
        assert_eq!(lookup(b"GeT"), lookup(b"get"));
        for n in 0..=8 {
            let bytes: Vec<u8> = (1..=n as u8).collect();
            let mut padded = [0u8; 8];
            padded[..n].copy_from_slice(&bytes);
            assert_eq!(load_le(&bytes), u64::from_le_bytes(padded));
        }
        // Only ASCII letters fold.
        assert_eq!(name_words(b"AZaz@[`{\xc1_09"), name_words(b"azaz@[`{\xc1_09"));
        assert_ne!(name_words(b"\xc1"), name_words(b"\xe1"));
        for unknown in [&b""[..], b"ge", b"gett", b"client|list", b"g\xc5t", b"GET\0", &[b'x'; 40]] {
            assert_eq!(lookup(unknown), None, "{:?}", unknown);
        }
    }
}
