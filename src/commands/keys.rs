//! Generic key commands (Redis' db.c, expire.c, object.c and cluster.c's
//! DUMP/RESTORE).
//!
//! Across cores: DEL/EXISTS/TOUCH sum per-shard counts; RENAME and COPY move
//! a value from one core to another under the transaction's locks; KEYS, SCAN
//! and RANDOMKEY visit the cores from the connection's task. A SCAN cursor
//! carries both the core and the position in that core's table.

use std::borrow::Cow;
use std::sync::Arc;

use super::{cmd, flags::*, Args, BoxFuture, Command, Ctx, OwnedArgs, Run};
use crate::config;
use crate::persistence::rdb::{self, BadFormat, Object, StreamConsumer, StreamGroup, StreamObject};
use crate::resp::parser::parse_i64;
use crate::resp::{err, Proto, Reply};
use crate::server::session::Session;
use crate::server::txn::{group_keys, run_grouped, Step, Txn};
use crate::shard::db::{Db, Entry};
use crate::shard::locks::{LockSet, Mode};
use crate::shard::Shard;
use crate::types::list::End;
use crate::types::stream::{Consumer, Group, Pending};
use crate::types::zset::Limits;
use crate::types::{HashValue, ListValue, SetValue, StrValue, StreamValue, Value, Zset};
use crate::util::{glob_match, now_ms};
use crate::shard::notify::GENERIC;

const G: &str = "generic";

pub static COMMANDS: &[Command] = &[
    cmd("del", -2, WRITE, (1, -1, 1), G, "1.0.0", "Delete a key", Run::Span(del, del_span)),
    cmd("unlink", -2, WRITE | FAST, (1, -1, 1), G, "4.0.0", "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.", Run::Span(del, del_span)),
    cmd("exists", -2, READONLY | FAST, (1, -1, 1), G, "1.0.0", "Determine if a key exists", Run::Span(exists, exists_span)),
    cmd("touch", -2, READONLY | FAST, (1, -1, 1), G, "3.2.1", "Alters the last access time of a key(s). Returns the number of existing keys specified.", Run::Span(touch, touch_span)),
    cmd("type", 2, READONLY | FAST, (1, 1, 1), G, "1.0.0", "Determine the type stored at key", Run::Shard(type_)),
    cmd("expire", -3, WRITE | FAST, (1, 1, 1), G, "1.0.0", "Set a key's time to live in seconds", Run::Shard(expire)),
    cmd("pexpire", -3, WRITE | FAST, (1, 1, 1), G, "2.6.0", "Set a key's time to live in milliseconds", Run::Shard(pexpire)),
    cmd("expireat", -3, WRITE | FAST, (1, 1, 1), G, "1.2.0", "Set the expiration for a key as a UNIX timestamp", Run::Shard(expireat)),
    cmd("pexpireat", -3, WRITE | FAST, (1, 1, 1), G, "2.6.0", "Set the expiration for a key as a UNIX timestamp specified in milliseconds", Run::Shard(pexpireat)),
    cmd("expiretime", 2, READONLY | FAST, (1, 1, 1), G, "7.0.0", "Get the expiration Unix timestamp for a key", Run::Shard(expiretime)),
    cmd("pexpiretime", 2, READONLY | FAST, (1, 1, 1), G, "7.0.0", "Get the expiration Unix timestamp for a key in milliseconds", Run::Shard(pexpiretime)),
    cmd("ttl", 2, READONLY | FAST, (1, 1, 1), G, "1.0.0", "Get the time to live for a key in seconds", Run::Shard(ttl)),
    cmd("pttl", 2, READONLY | FAST, (1, 1, 1), G, "2.6.0", "Get the time to live for a key in milliseconds", Run::Shard(pttl)),
    cmd("persist", 2, WRITE | FAST, (1, 1, 1), G, "2.2.0", "Remove the expiration from a key", Run::Shard(persist)),
    cmd("keys", 2, READONLY, (0, 0, 0), G, "1.0.0", "Find all keys matching the given pattern", Run::Conn(keys)),
    cmd("scan", -2, READONLY, (0, 0, 0), G, "2.8.0", "Incrementally iterate the keys space", Run::Conn(scan)),
    cmd("randomkey", 1, READONLY, (0, 0, 0), G, "1.0.0", "Return a random key from the keyspace", Run::Conn(randomkey)),
    cmd("rename", 3, WRITE, (1, 2, 1), G, "1.0.0", "Rename a key", Run::Span(rename, rename_span)),
    cmd("renamenx", 3, WRITE | FAST, (1, 2, 1), G, "1.0.0", "Rename a key, only if the new key does not exist", Run::Span(renamenx, renamenx_span)),
    cmd("copy", -3, WRITE | DENYOOM | OTHER_DB, (1, 2, 1), G, "6.2.0", "Copy a key", Run::Span(copy, copy_span)),
    cmd("move", 3, WRITE | FAST | OTHER_DB, (1, 1, 1), G, "1.0.0", "Move a key to another database", Run::Shard(move_)),
    cmd("dump", 2, READONLY, (1, 1, 1), G, "2.6.0", "Return a serialized version of the value stored at the specified key.", Run::Shard(dump)),
    cmd("restore", -4, WRITE | DENYOOM, (1, 1, 1), G, "2.6.0", "Create a key using the provided serialized value, previously obtained using DUMP.", Run::Shard(restore)),
    cmd("object", -2, 0, (0, 0, 0), G, "2.2.3", "A container for object introspection commands", Run::Shard(object_help)).with_subs(OBJECT),
];

static OBJECT: &[Command] = &[
    cmd("object|encoding", 3, READONLY, (2, 2, 1), G, "2.2.3", "Inspect the internal encoding of a Redis object", Run::Shard(object_encoding)),
    cmd("object|freq", 3, READONLY, (2, 2, 1), G, "4.0.0", "Get the logarithmic access frequency counter of a Redis object", Run::Shard(object_freq)),
    cmd("object|help", 2, LOADING | STALE, (0, 0, 0), G, "6.2.0", "Show helpful text about the different subcommands", Run::Shard(object_help)),
    cmd("object|idletime", 3, READONLY, (2, 2, 1), G, "2.2.3", "Get the time since a Redis object was last accessed", Run::Shard(object_idletime)),
    cmd("object|refcount", 3, READONLY, (2, 2, 1), G, "2.2.3", "Get the number of references to the value of the key", Run::Shard(object_refcount)),
];

const SAME_OBJECT: &str = "ERR source and destination objects are the same";

// --- DEL, UNLINK, EXISTS, TOUCH, TYPE ---------------------------------------

fn count_deleted(ctx: &mut Ctx, keys: impl Iterator<Item = impl AsRef<[u8]>>) -> i64 {
    let now = ctx.now;
    keys.filter(|k| {
        let db = ctx.db();
        db.expire_if_due(k.as_ref(), now);
        let deleted = db.remove(k.as_ref()).is_some();
        if deleted {
            ctx.notify(GENERIC, "del", k.as_ref());
        }
        deleted
    })
    .count() as i64
}

/// Counts the keys that exist; TOUCH (`touch`) also marks them accessed,
/// EXISTS does not (Redis' LOOKUP_NOTOUCH).
fn count_existing(ctx: &mut Ctx, keys: impl Iterator<Item = impl AsRef<[u8]>>, touch: bool) -> i64 {
    keys.filter(|k| if touch { ctx.read(k.as_ref()).is_some() } else { ctx.peek(k.as_ref()).is_some() }).count() as i64
}

fn del(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    r.int(count_deleted(ctx, a.iter().skip(1)));
}

fn exists(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    r.int(count_existing(ctx, a.iter().skip(1), false));
}

fn touch(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    r.int(count_existing(ctx, a.iter().skip(1), true));
}

/// One shard's count over its share of the key arguments.
type CountStep = fn(&mut Ctx, &[(usize, Vec<u8>)], &OwnedArgs) -> i64;

/// Runs a per-shard counting step over every key argument and replies the sum.
async fn sum_over_shards(s: &mut Session, a: OwnedArgs, mode: Mode, step: CountStep) {
    let groups = group_keys(&s.core, a.0.iter().cloned().enumerate().skip(1));
    let counts = run_grouped(s, s.db, groups, mode, Arc::new(a), step).await;
    s.reply().int(counts.into_iter().sum());
}

fn del_span(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(sum_over_shards(s, a, Mode::Exclusive, |ctx, keys, _| count_deleted(ctx, keys.iter().map(|(_, k)| k))))
}

fn exists_span(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(sum_over_shards(s, a, Mode::Shared, |ctx, keys, _| count_existing(ctx, keys.iter().map(|(_, k)| k), false)))
}

fn touch_span(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(sum_over_shards(s, a, Mode::Shared, |ctx, keys, _| count_existing(ctx, keys.iter().map(|(_, k)| k), true)))
}

fn type_(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    r.simple(ctx.peek(a.get(1)).map_or("none", |e| e.value.type_name()));
}

// --- Expiry -------------------------------------------------------------------

const EXP_NX: u8 = 1;
const EXP_XX: u8 = 2;
const EXP_GT: u8 = 4;
const EXP_LT: u8 = 8;

/// EXPIRE's NX/XX/GT/LT options (Redis' parseExtendedExpireArgumentsOrReply).
fn expire_flags(a: &Args) -> Result<u8, String> {
    let mut f = 0;
    for o in a.iter().skip(3) {
        f |= match o.to_ascii_lowercase().as_slice() {
            b"nx" => EXP_NX,
            b"xx" => EXP_XX,
            b"gt" => EXP_GT,
            b"lt" => EXP_LT,
            _ => return Err(format!("ERR Unsupported option {}", String::from_utf8_lossy(o))),
        };
    }
    if f & EXP_NX != 0 && f & (EXP_XX | EXP_GT | EXP_LT) != 0 {
        return Err("ERR NX and XX, GT or LT options at the same time are not compatible".into());
    }
    if f & EXP_GT != 0 && f & EXP_LT != 0 {
        return Err("ERR GT and LT options at the same time are not compatible".into());
    }
    Ok(f)
}

/// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (Redis' expireGenericCommand): the
/// time is `unit_ms` units, relative to now or absolute. A time already past
/// deletes the key; a key without TTL counts as an infinite TTL for GT/LT.
fn expire_generic(ctx: &mut Ctx, r: &mut Reply, a: Args, name: &str, unit_ms: i64, relative: bool) {
    let flags = match expire_flags(&a) {
        Ok(f) => f,
        Err(e) => return r.error(&e),
    };
    let Some(when) = parse_i64(a.get(2)) else { return r.error(err::NOT_INT) };
    let base = if relative { ctx.now as i64 } else { 0 };
    if when > i64::MAX / unit_ms || when < i64::MIN / unit_ms || when * unit_ms > i64::MAX - base {
        return r.error(&format!("ERR invalid expire time in '{}' command", name));
    }
    let when = when * unit_ms + base;
    let key = a.get(1);
    let Some(e) = ctx.write(key) else { return r.int(0) };
    // Current expiry; 0 means none (an infinite TTL).
    let cur = e.expire_at as i64;
    let refused = (flags & EXP_NX != 0 && cur != 0)
        || (flags & EXP_XX != 0 && cur == 0)
        || (flags & EXP_GT != 0 && (cur == 0 || when <= cur))
        || (flags & EXP_LT != 0 && cur != 0 && when >= cur);
    if refused {
        return r.int(0);
    }
    if when <= ctx.now as i64 {
        ctx.db().remove(key);
        ctx.notify(GENERIC, "del", key);
    } else {
        ctx.db().set_expire(key, when as u64);
        ctx.notify(GENERIC, "expire", key);
    }
    r.int(1);
}

fn expire(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    expire_generic(ctx, r, a, "expire", 1000, true)
}

fn pexpire(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    expire_generic(ctx, r, a, "pexpire", 1, true)
}

fn expireat(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    expire_generic(ctx, r, a, "expireat", 1000, false)
}

fn pexpireat(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    expire_generic(ctx, r, a, "pexpireat", 1, false)
}

/// TTL, PTTL, EXPIRETIME, PEXPIRETIME: -2 if missing, -1 without expiry,
/// seconds rounded to nearest as Redis does.
fn ttl_generic(ctx: &mut Ctx, r: &mut Reply, a: Args, ms: bool, absolute: bool) {
    let now = ctx.now;
    let Some(e) = ctx.peek(a.get(1)) else { return r.int(-2) };
    if e.expire_at == 0 {
        return r.int(-1);
    }
    // Expiries are below 2^63, so the rounding cannot overflow in u64.
    let t = if absolute { e.expire_at } else { e.expire_at.saturating_sub(now) };
    r.int((if ms { t } else { (t + 500) / 1000 }) as i64);
}

fn ttl(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    ttl_generic(ctx, r, a, false, false)
}

fn pttl(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    ttl_generic(ctx, r, a, true, false)
}

fn expiretime(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    ttl_generic(ctx, r, a, false, true)
}

fn pexpiretime(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    ttl_generic(ctx, r, a, true, true)
}

fn persist(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let key = a.get(1);
    if ctx.write(key).is_none_or(|e| e.expire_at == 0) {
        return r.int(0);
    }
    ctx.db().set_expire(key, 0);
    ctx.notify(GENERIC, "persist", key);
    r.int(1);
}

// --- KEYS, SCAN, RANDOMKEY -------------------------------------------------------

/// KEYS sees one point in time: it holds every shard (as Redis' single
/// thread would) while each core lists its matches, encoded there as replies.
fn keys(s: &mut Session, mut a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let (db, proto) = (s.db, s.proto);
        let pattern = Arc::new(a.0.swap_remove(1));
        let n = s.core.nshards();
        let whole = |i| (i, LockSet { db, keys: Vec::new(), mode: Mode::Shared, whole_shard: true });
        let txn = Txn::lock(s, (0..n).map(whole).collect()).await;
        let steps = (0..n)
            .map(|i| {
                let p = pattern.clone();
                let f: Step<(usize, Vec<u8>)> = Box::new(move |sh| {
                    let (now, all) = (now_ms(), p.as_slice() == b"*");
                    let mut out = Vec::new();
                    let mut r = Reply::new(&mut out, proto);
                    let mut found = 0;
                    for (k, e) in sh.dbs[db].iter() {
                        if !Db::is_expired(e, now) && (all || glob_match(&p, k, false)) {
                            r.bulk(k);
                            found += 1;
                        }
                    }
                    (found, out)
                });
                (i, f)
            })
            .collect();
        let parts = txn.on_many(steps).await;
        txn.release().await;
        let mut r = s.reply();
        r.array(parts.iter().map(|(n, _)| n).sum());
        for (_, encoded) in &parts {
            r.raw(encoded);
        }
    })
}

/// Low bits of a SCAN cursor that name the shard (`threads` is at most 1024).
const CURSOR_SHARD_BITS: u32 = 10;

/// A SCAN cursor for position `pos` of shard `shard`'s table. Cursor 0 is both
/// the start (shard 0, position 0) and the end, as in Redis.
fn encode_cursor(pos: usize, shard: usize) -> u64 {
    ((pos as u64) << CURSOR_SHARD_BITS) | shard as u64
}

/// (position, shard) of a cursor.
fn decode_cursor(c: u64) -> (usize, usize) {
    ((c >> CURSOR_SHARD_BITS) as usize, (c & ((1 << CURSOR_SHARD_BITS) - 1)) as usize)
}

/// A cursor as Redis reads it (strtoul, base 10, no leading space): an
/// optional sign (a negative value wraps), digits; "" is 0.
pub(super) fn parse_cursor(s: &[u8]) -> Option<u64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return if s.is_empty() { Some(0) } else { None };
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

struct ScanOpts {
    count: usize,
    pattern: Option<Vec<u8>>,
    type_: Option<Vec<u8>>,
}

fn scan_opts(a: &OwnedArgs) -> Result<ScanOpts, &'static str> {
    let mut o = ScanOpts { count: 10, pattern: None, type_: None };
    let mut i = 2;
    while i < a.len() {
        if i + 1 >= a.len() {
            return Err(err::SYNTAX);
        }
        let v = a.get(i + 1);
        if a.is(i, "count") {
            match parse_i64(v) {
                None => return Err(err::NOT_INT),
                Some(n) if n < 1 => return Err(err::SYNTAX),
                Some(n) => o.count = n as usize,
            }
        } else if a.is(i, "match") {
            o.pattern = (v != b"*").then(|| v.to_vec());
        } else if a.is(i, "type") {
            o.type_ = Some(v.to_vec());
        } else {
            return Err(err::SYNTAX);
        }
        i += 2;
    }
    Ok(o)
}

/// The options of HSCAN, SSCAN and ZSCAN (arguments from 3 on): COUNT and
/// MATCH, as `scan_opts` minus TYPE, which only SCAN takes. Returns (count,
/// pattern; None for everything).
pub(super) fn collection_scan_opts<'a>(a: &Args<'a>) -> Result<(usize, Option<&'a [u8]>), &'static str> {
    let (mut count, mut pattern) = (10, None);
    let mut i = 3;
    while i < a.len() {
        if i + 1 >= a.len() {
            return Err(err::SYNTAX);
        }
        let v = a.get(i + 1);
        if a.is(i, "count") {
            match parse_i64(v) {
                None => return Err(err::NOT_INT),
                Some(n) if n < 1 => return Err(err::SYNTAX),
                Some(n) => count = n as usize,
            }
        } else if a.is(i, "match") {
            pattern = (v != b"*").then_some(v);
        } else {
            return Err(err::SYNTAX);
        }
        i += 2;
    }
    Ok((count, pattern))
}

/// One shard's part of a SCAN call: visits up to `count` keys of `db` from
/// table position `pos`. Returns the next position (0: shard done), how many
/// keys it visited, and the matching ones, already encoded as bulk replies.
fn scan_shard(sh: &mut Shard, db: usize, proto: Proto, pos: usize, count: usize, o: &ScanOpts) -> (usize, usize, usize, Vec<u8>) {
    let now = now_ms();
    let (mut seen, mut found, mut out, mut expired) = (0, 0, Vec::new(), Vec::new());
    let mut r = Reply::new(&mut out, proto);
    let next = sh.dbs[db].scan(pos, count, |k, e| {
        seen += 1;
        if Db::is_expired(e, now) {
            expired.push(k.clone());
        } else if o.pattern.as_ref().is_none_or(|p| glob_match(p, k, false))
            && o.type_.as_ref().is_none_or(|t| t.eq_ignore_ascii_case(e.value.type_name().as_bytes()))
        {
            r.bulk(k);
            found += 1;
        }
    });
    // As Redis, keys found expired on the way are deleted.
    for k in expired {
        sh.dbs[db].remove(&k);
    }
    (next, seen, found, out)
}

/// SCAN walks the shards in order; one call continues into the next shard
/// while it has visited fewer than COUNT keys.
fn scan(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let Some(cursor) = parse_cursor(a.get(1)) else { return s.reply().error("ERR invalid cursor") };
        let o = match scan_opts(&a) {
            Ok(o) => Arc::new(o),
            Err(e) => return s.reply().error(e),
        };
        let (db, proto, n) = (s.db, s.proto, s.core.nshards());
        let (mut pos, mut shard) = decode_cursor(cursor);
        let (mut left, mut found, mut keys) = (o.count, 0, Vec::new());
        // A cursor naming a shard past the last one (never issued) ends the scan.
        let next = loop {
            if shard >= n {
                break 0;
            }
            let o2 = o.clone();
            let (next, seen, f, encoded) = s.core.call(shard, move |c| scan_shard(&mut c.shard.borrow_mut(), db, proto, pos, left, &o2)).await;
            found += f;
            keys.extend_from_slice(&encoded);
            if next != 0 {
                break encode_cursor(next, shard);
            }
            // A shard's last blocks may hold more than were left.
            left = left.saturating_sub(seen);
            (pos, shard) = (0, shard + 1);
            if left == 0 {
                break if shard < n { encode_cursor(0, shard) } else { 0 };
            }
        };
        let mut r = s.reply();
        r.array(2);
        r.bulk(itoa::Buffer::new().format(next).as_bytes());
        r.array(found);
        r.raw(&keys);
    })
}

/// A random live key of `db` on this shard, deleting expired ones it draws
/// (as Redis' dbRandomKey). None once the database is empty.
fn random_live_key(sh: &mut Shard, db: usize) -> Option<Vec<u8>> {
    let now = now_ms();
    loop {
        // Take the db out so its table can be probed with the shard's generator.
        let d = std::mem::take(&mut sh.dbs[db]);
        let key = d.random_key(|| sh.rand()).map(|k| k.to_vec());
        sh.dbs[db] = d;
        let key = key?;
        if !sh.dbs[db].expire_if_due(&key, now) {
            return Some(key);
        }
    }
}

/// RANDOMKEY: a core drawn with probability proportional to its key count,
/// then a random key there. A core found to hold only expired keys is empty
/// afterwards, so the draw is retried with fresh counts.
fn randomkey(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let db = s.db;
        loop {
            let sizes = s.core.call_all(move |c| c.shard.borrow().dbs[db].len()).await;
            let total: usize = sizes.iter().sum();
            if total == 0 {
                return s.reply().null();
            }
            let mut pick = (s.core.shard.borrow_mut().rand() % total as u64) as usize;
            let shard = sizes
                .iter()
                .position(|&n| {
                    let here = pick < n;
                    pick = pick.wrapping_sub(n);
                    here
                })
                .expect("pick < total");
            if let Some(k) = s.core.call(shard, move |c| random_live_key(&mut c.shard.borrow_mut(), db)).await {
                return s.reply().bulk(&k);
            }
        }
    })
}

// --- RENAME, RENAMENX, COPY, MOVE -------------------------------------------------

fn rename_reply(r: &mut Reply, nx: bool) {
    if nx {
        r.int(1)
    } else {
        r.ok()
    }
}

/// RENAME/RENAMENX on one shard: the entry (value, TTL, LRU) moves whole.
fn rename_generic(ctx: &mut Ctx, r: &mut Reply, a: Args, nx: bool) {
    let (src, dst) = (a.get(1), a.get(2));
    if ctx.write(src).is_none() {
        return r.error(err::NO_KEY);
    }
    if src == dst {
        return if nx { r.int(0) } else { r.ok() };
    }
    if nx && ctx.write(dst).is_some() {
        return r.int(0);
    }
    let e = ctx.db().remove(src).expect("source checked above");
    ctx.db().insert_entry(dst, e);
    ctx.notify(GENERIC, "rename_from", src);
    ctx.notify(GENERIC, "rename_to", dst);
    rename_reply(r, nx);
}

fn rename(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    rename_generic(ctx, r, a, false)
}

fn renamenx(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    rename_generic(ctx, r, a, true)
}

/// A lock on one key of one database.
fn key_lock(db: usize, key: &[u8], mode: Mode) -> LockSet {
    LockSet { db, keys: vec![key.into()], mode, whole_shard: false }
}

/// RENAME/RENAMENX with source and destination on different cores, holding
/// both keys: check the destination (NX), take the entry off the source
/// core, store it on the destination core.
async fn rename_across(s: &mut Session, a: OwnedArgs, nx: bool) {
    let db = s.db;
    let (src, dst) = (a.get(1).to_vec(), a.get(2).to_vec());
    let (from, to) = (s.core.slots.shard_of_key(&src), s.core.slots.shard_of_key(&dst));
    debug_assert_ne!(from, to);
    let sets = vec![(from, key_lock(db, &src, Mode::Exclusive)), (to, key_lock(db, &dst, Mode::Exclusive))];
    let txn = Txn::lock(s, sets).await;
    let dst_exists = nx && {
        let dst = dst.clone();
        txn.on(to, move |sh| Ctx::new(sh, db).write(&dst).is_some()).await
    };
    // None: no source; Some(None): left in place (NX); Some(Some(e)): taken.
    let taken = txn
        .on(from, move |sh| {
            let mut ctx = Ctx::new(sh, db);
            ctx.write(&src)?;
            if dst_exists {
                return Some(None);
            }
            let e = ctx.db().remove(&src);
            ctx.notify(GENERIC, "rename_from", &src);
            Some(e)
        })
        .await;
    let moved = match taken {
        Some(Some(e)) => {
            txn.on(to, move |sh| {
                let mut ctx = Ctx::new(sh, db);
                ctx.db().insert_entry(&dst, e);
                ctx.notify(GENERIC, "rename_to", &dst);
            })
            .await;
            Some(true)
        }
        Some(None) => Some(false),
        None => None,
    };
    txn.release().await;
    let mut r = s.reply();
    match moved {
        None => r.error(err::NO_KEY),
        Some(false) => r.int(0),
        Some(true) => rename_reply(&mut r, nx),
    }
}

fn rename_span(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(rename_across(s, a, false))
}

fn renamenx_span(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(rename_across(s, a, true))
}

/// A database index argument (COPY's DB, MOVE): an int, then in range.
fn db_index(raw: &[u8], dbs: usize) -> Result<usize, &'static str> {
    match parse_i64(raw) {
        Some(n) if n >= i32::MIN as i64 && n <= i32::MAX as i64 => {
            if n < 0 || n as usize >= dbs {
                Err(err::DB_INDEX)
            } else {
                Ok(n as usize)
            }
        }
        _ => Err(err::NOT_INT),
    }
}

/// COPY's options: (destination db, REPLACE), checked as Redis does before
/// any key is read.
fn copy_opts(a: &[&[u8]], db: usize, dbs: usize) -> Result<(usize, bool), &'static str> {
    let (mut dst_db, mut replace) = (db, false);
    let mut i = 3;
    while i < a.len() {
        if a[i].eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if a[i].eq_ignore_ascii_case(b"db") && i + 1 < a.len() {
            dst_db = db_index(a[i + 1], dbs)?;
            i += 1;
        } else {
            return Err(err::SYNTAX);
        }
        i += 1;
    }
    if dst_db == db && a[1] == a[2] {
        return Err(SAME_OBJECT);
    }
    Ok((dst_db, replace))
}

/// The destination half of COPY: stores a fresh copy unless the key exists
/// and REPLACE was not given. Returns whether it copied.
fn copy_into(ctx: &mut Ctx, key: &[u8], value: Value, expire_at: u64, replace: bool) -> bool {
    if ctx.write(key).is_some() && !replace {
        return false;
    }
    ctx.db().insert(key, value, expire_at);
    ctx.notify(GENERIC, "copy_to", key);
    true
}

fn copy(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let argv: Vec<&[u8]> = a.iter().collect();
    let (dst_db, replace) = match copy_opts(&argv, ctx.db, ctx.shard.dbs.len()) {
        Ok(o) => o,
        Err(e) => return r.error(e),
    };
    let Some((value, at)) = ctx.read(a.get(1)).map(|e| (e.value.clone(), e.expire_at)) else { return r.int(0) };
    let mut dst = ctx.with_db(dst_db);
    r.int(copy_into(&mut dst, a.get(2), value, at, replace) as i64);
}

/// COPY with source and destination on different cores: read the source
/// (shared lock), then write the destination (exclusive lock).
fn copy_span(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let argv: Vec<&[u8]> = a.0.iter().map(|v| v.as_slice()).collect();
        let dbs = s.core.shard.borrow().dbs.len();
        let (db, (dst_db, replace)) = match copy_opts(&argv, s.db, dbs) {
            Ok(o) => (s.db, o),
            Err(e) => return s.reply().error(e),
        };
        let (src, dst) = (a.get(1).to_vec(), a.get(2).to_vec());
        let (from, to) = (s.core.slots.shard_of_key(&src), s.core.slots.shard_of_key(&dst));
        debug_assert_ne!(from, to);
        let sets = vec![(from, key_lock(db, &src, Mode::Shared)), (to, key_lock(dst_db, &dst, Mode::Exclusive))];
        let txn = Txn::lock(s, sets).await;
        let got = txn.on(from, move |sh| Ctx::new(sh, db).read(&src).map(|e| (e.value.clone(), e.expire_at))).await;
        let copied = match got {
            Some((value, at)) => txn.on(to, move |sh| copy_into(&mut Ctx::new(sh, dst_db), &dst, value, at, replace)).await,
            None => false,
        };
        txn.release().await;
        s.reply().int(copied as i64);
    })
}

/// MOVE: every database of a key lives on the key's shard, so this never spans.
fn move_(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let dst_db = match db_index(a.get(2), ctx.shard.dbs.len()) {
        Ok(d) if d == ctx.db => return r.error(SAME_OBJECT),
        Ok(d) => d,
        Err(e) => return r.error(e),
    };
    let key = a.get(1);
    if ctx.write(key).is_none() {
        return r.int(0);
    }
    if ctx.with_db(dst_db).write(key).is_some() {
        return r.int(0);
    }
    let e = ctx.db().remove(key).expect("key checked above");
    ctx.shard.dbs[dst_db].insert_entry(key, e);
    ctx.notify(GENERIC, "move_from", key);
    ctx.with_db(dst_db).notify(GENERIC, "move_to", key);
    r.int(1);
}

// --- OBJECT -------------------------------------------------------------------------

fn object_help(_: &mut Ctx, r: &mut Reply, _: Args) {
    super::connection::help(
        r,
        "OBJECT",
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    );
}

/// The entry OBJECT inspects, looked up without touching it (null reply if missing).
fn object_entry<'a>(ctx: &'a mut Ctx, r: &mut Reply, a: &Args) -> Option<&'a mut Entry> {
    let e = ctx.peek(a.get(2));
    if e.is_none() {
        r.null();
    }
    e
}

use crate::shard::access::{self, lfu_policy};

/// Seconds since the entry was last accessed, on the LRU clock.
fn idle_secs(now: u64, e: &Entry) -> u64 {
    ((now / 1000) as u32).saturating_sub(e.lru) as u64
}

fn object_encoding(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    if let Some(e) = object_entry(ctx, r, &a) {
        r.bulk(e.value.encoding().as_bytes());
    }
}

/// Redis' OBJ_SHARED_REFCOUNT: the refcount of a shared object.
const SHARED_REFCOUNT: i64 = i32::MAX as i64;

/// Redis shares the integers 0..9999 (OBJ_SHARED_INTEGERS) unless a maxmemory
/// limit with an LRU/LFU policy needs per-object access data; every other
/// value has one reference.
fn object_refcount(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let Some(e) = object_entry(ctx, r, &a) else { return };
    let shared_ints = || {
        let policy = config::get_text("maxmemory-policy");
        config::get_int("maxmemory") == 0 || !(policy.contains("lru") || policy.contains("lfu"))
    };
    r.int(match e.value.as_str() {
        Some(StrValue::Int(n)) if (0..10_000).contains(n) && shared_ints() => SHARED_REFCOUNT,
        _ => 1,
    });
}

fn object_idletime(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let now = ctx.now;
    let Some(e) = object_entry(ctx, r, &a) else { return };
    if lfu_policy() {
        return r.error("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
    }
    r.int(idle_secs(now, e) as i64);
}

fn object_freq(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let now = ctx.now;
    let Some(e) = object_entry(ctx, r, &a) else { return };
    if !lfu_policy() {
        return r.error("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
    }
    r.int(access::lfu_count(e.lru, now) as i64);
}

// --- DUMP, RESTORE -------------------------------------------------------------

/// Bytes of listpack a quicklist node holds before Redis starts another one
/// (list-max-listpack-size -2), estimated as 11 bytes of overhead per entry.
const LIST_NODE_BYTES: usize = 8192;

/// How a value is serialized (DUMP, RDB snapshots, AOF base files).
pub fn value_to_rdb<'a>(v: &'a Value, scratch: &'a mut itoa::Buffer) -> Object<'a> {
    match v {
        Value::Str(s) => Object::Str(Cow::Borrowed(s.bytes(scratch))),
        Value::List(l) => {
            let mut nodes: Vec<Vec<Vec<u8>>> = Vec::new();
            let mut bytes = LIST_NODE_BYTES;
            for item in l.iter_from(0) {
                if bytes + item.len() + 11 > LIST_NODE_BYTES {
                    nodes.push(Vec::new());
                    bytes = 0;
                }
                bytes += item.len() + 11;
                nodes.last_mut().expect("a node was opened").push(item.to_vec());
            }
            Object::List(nodes)
        }
        Value::Set(s) if s.encoding() == "intset" => {
            let mut ints = Vec::with_capacity(s.len());
            s.for_each(|m| ints.push(parse_i64(m).expect("intset members are integers")));
            Object::IntSet(ints)
        }
        Value::Set(s) => Object::Set(s.members()),
        Value::Hash(h) => Object::Hash {
            pairs: h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect(),
            listpack: h.encoding() == "listpack",
        },
        Value::Zset(z) => {
            let mut members = Vec::with_capacity(z.len());
            z.for_each(|m, s| members.push((m.to_vec(), s)));
            Object::Zset { members, listpack: z.encoding() == "listpack" }
        }
        Value::Stream(s) => Object::Stream(Box::new(StreamObject {
            nodes: s.to_listpacks(),
            length: s.len(),
            last_id: s.last_id,
            first_id: s.first_id,
            max_deleted_id: s.max_deleted_id,
            entries_added: s.entries_added,
            groups: s
                .groups
                .iter()
                .map(|(name, g)| StreamGroup {
                    name: name.to_vec(),
                    last_id: g.last_id,
                    entries_read: g.entries_read,
                    pending: g.pending.iter().map(|(id, p)| (*id, p.delivery_time, p.delivery_count)).collect(),
                    consumers: g
                        .consumers
                        .iter()
                        .map(|(name, c)| StreamConsumer { name: name.to_vec(), seen_time: c.seen_time, pending: c.pending.iter().copied().collect() })
                        .collect(),
                })
                .collect(),
        })),
    }
}

/// A stream read from RDB; the reader has checked the PELs, this checks the
/// entries against the recorded length and last ID.
fn stream_from_rdb(st: StreamObject) -> Result<StreamValue, BadFormat> {
    let mut s = StreamValue::default();
    for (master, lp) in &st.nodes {
        s.push_listpack(*master, lp).ok_or(BadFormat)?;
    }
    if s.len() != st.length || s.last_stored_id().is_some_and(|id| id > st.last_id) {
        return Err(BadFormat);
    }
    s.last_id = st.last_id;
    s.first_id = st.first_id;
    s.max_deleted_id = st.max_deleted_id;
    s.entries_added = st.entries_added;
    for g in st.groups {
        let mut group = Group::new(g.last_id, g.entries_read);
        let mut owner = hashbrown::HashMap::new();
        for c in g.consumers {
            let name: Arc<[u8]> = c.name.into();
            for &id in &c.pending {
                owner.insert(id, name.clone());
            }
            group.consumers.insert(name, Consumer { seen_time: c.seen_time, pending: c.pending.into_iter().collect() });
        }
        for (id, delivery_time, delivery_count) in g.pending {
            let consumer = owner.remove(&id).ok_or(BadFormat)?;
            group.pending.insert(id, Pending { consumer, delivery_time, delivery_count });
        }
        s.groups.insert(g.name.into(), group);
    }
    Ok(s)
}

/// A loaded RDB object as a value, in the encoding kvick's own commands
/// would give it.
pub fn value_from_rdb(obj: Object) -> Result<Value, BadFormat> {
    Ok(match obj {
        // As Redis' loading, which calls tryObjectEncoding on strings.
        Object::Str(b) => Value::Str(StrValue::from_bytes(&b)),
        Object::List(nodes) => {
            let mut l = ListValue::new();
            let fill = config::list_max_listpack_size();
            nodes.iter().flatten().for_each(|item| l.push(End::Right, item, fill));
            Value::List(Box::new(l))
        }
        Object::IntSet(ints) => {
            let mut s = SetValue::default();
            let mut b = itoa::Buffer::new();
            for &i in &ints {
                s.add(b.format(i).as_bytes());
            }
            Value::Set(Box::new(s))
        }
        Object::Set(members) => {
            let mut s = SetValue::default();
            for m in &members {
                s.add(m);
            }
            Value::Set(Box::new(s))
        }
        Object::Hash { pairs, .. } => {
            let mut h = HashValue::default();
            for (f, v) in &pairs {
                h.set(f, v);
            }
            Value::Hash(h)
        }
        Object::Zset { members, .. } => {
            let limits = Limits::from_config();
            let mut z = Zset::with_hint(members.len(), members.iter().map(|(m, _)| m.len()).max().unwrap_or(0), limits);
            for (m, s) in &members {
                z.set(m, *s, limits);
            }
            Value::Zset(Box::new(z))
        }
        Object::Stream(st) => Value::Stream(Box::new(stream_from_rdb(*st)?)),
    })
}

fn dump(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let Some(e) = ctx.read(a.get(1)) else { return r.null() };
    let mut scratch = itoa::Buffer::new();
    r.bulk(&rdb::dump_payload(&value_to_rdb(&e.value, &mut scratch), config::get_int("rdbcompression") != 0));
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f], checked
/// in Redis' order: options, existing key, TTL, payload.
fn restore(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let (mut replace, mut absttl, mut idle, mut freq) = (false, false, None, None);
    let mut i = 4;
    while i < a.len() {
        let more = i + 1 < a.len();
        if a.is(i, "replace") {
            replace = true;
        } else if a.is(i, "absttl") {
            absttl = true;
        } else if a.is(i, "idletime") && more && freq.is_none() {
            match parse_i64(a.get(i + 1)) {
                None => return r.error(err::NOT_INT),
                Some(n) if n < 0 => return r.error("ERR Invalid IDLETIME value, must be >= 0"),
                Some(n) => idle = Some(n),
            }
            i += 1;
        } else if a.is(i, "freq") && more && idle.is_none() {
            match parse_i64(a.get(i + 1)) {
                None => return r.error(err::NOT_INT),
                Some(n) if !(0..=255).contains(&n) => return r.error("ERR Invalid FREQ value, must be >= 0 and <= 255"),
                Some(n) => freq = Some(n),
            }
            i += 1;
        } else {
            return r.error(err::SYNTAX);
        }
        i += 1;
    }
    let key = a.get(1);
    if !replace && ctx.write(key).is_some() {
        return r.error("BUSYKEY Target key name already exists.");
    }
    let ttl = match parse_i64(a.get(2)) {
        None => return r.error(err::NOT_INT),
        Some(t) if t < 0 => return r.error("ERR Invalid TTL value, must be >= 0"),
        Some(t) => t,
    };
    let payload = a.get(3);
    if !rdb::verify_payload(payload) {
        return r.error("ERR DUMP payload version or checksum are wrong");
    }
    let Ok(value) = rdb::read_payload(payload).and_then(value_from_rdb) else {
        return r.error("ERR Bad data format");
    };
    if replace {
        ctx.db().remove(key);
    }
    let now = ctx.now as i64;
    // Redis adds without an overflow check; a wrapped time is in the past.
    let at = if ttl != 0 && !absttl { ttl.wrapping_add(now) } else { ttl };
    if at != 0 && at <= now {
        // Already expired: the key is not created (a replaced one stays deleted).
        return r.ok();
    }
    ctx.db().insert(key, value, at as u64);
    ctx.notify(GENERIC, "restore", key);
    // IDLETIME sets the clock under an LRU policy, FREQ under an LFU one.
    let now = ctx.now;
    let clock = match (idle, freq, lfu_policy()) {
        (Some(idle), _, false) => Some(((now / 1000) as u32).saturating_sub(idle.min(u32::MAX as i64) as u32)),
        (_, Some(freq), true) => Some(access::with_count(freq as u32, now)),
        _ => None,
    };
    if let Some(clock) = clock {
        if let Some(e) = ctx.db().get_mut(key, now) {
            e.lru = clock;
        }
    }
    r.ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::commands::run_shard_fn as run;

    fn set(sh: &mut Shard, key: &str, v: &str, expire_at: u64) {
        sh.dbs[0].insert(key.as_bytes(), Value::Str(StrValue::from_bytes(v.as_bytes())), expire_at);
    }

    #[test]
    fn cursor_round_trip() {
        for (pos, shard) in [(0, 0), (1, 0), (0, 1), (12345, 7), (1 << 40, 1023)] {
            assert_eq!(decode_cursor(encode_cursor(pos, shard)), (pos, shard));
        }
        assert_eq!(encode_cursor(0, 0), 0);
        assert_ne!(encode_cursor(0, 1), 0, "moving to the next shard is not the end");
    }

    #[test]
    fn cursor_parsing_is_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"+5"), Some(5));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        for bad in ["18446744073709551616", " 1", "1 ", "+", "-", "0x10", "1a"] {
            assert_eq!(parse_cursor(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn expire_options() {
        let mut sh = Shard::new(0, 16);
        set(&mut sh, "k", "v", 0);
        assert_eq!(run(&mut sh, expire, &["expire", "k", "100", "gt"]), ":0\r\n", "no TTL is infinite: GT fails");
        assert_eq!(run(&mut sh, expire, &["expire", "k", "100", "xx"]), ":0\r\n");
        assert_eq!(run(&mut sh, expire, &["expire", "k", "100", "lt"]), ":1\r\n", "no TTL is infinite: LT succeeds");
        assert_eq!(run(&mut sh, expire, &["expire", "k", "200", "lt"]), ":0\r\n");
        assert_eq!(run(&mut sh, expire, &["expire", "k", "200", "gt", "xx"]), ":1\r\n");
        assert_eq!(run(&mut sh, expire, &["expire", "k", "50", "nx"]), ":0\r\n");
        assert_eq!(run(&mut sh, ttl, &["ttl", "k"]), ":200\r\n");
        assert!(run(&mut sh, expire, &["expire", "k", "1", "nx", "gt"]).starts_with("-ERR NX and XX"));
        assert!(run(&mut sh, expire, &["expire", "k", "1", "gt", "lt"]).starts_with("-ERR GT and LT"));
        assert_eq!(run(&mut sh, expire, &["expire", "k", "x", "foo"]), "-ERR Unsupported option foo\r\n");
        assert_eq!(run(&mut sh, expire, &["expire", "k", "9223372036854776"]), "-ERR invalid expire time in 'expire' command\r\n");
        assert_eq!(run(&mut sh, persist, &["persist", "k"]), ":1\r\n");
        assert_eq!(run(&mut sh, pttl, &["pttl", "k"]), ":-1\r\n");
        assert_eq!(run(&mut sh, pexpireat, &["pexpireat", "k", "1"]), ":1\r\n", "a past time deletes");
        assert_eq!(run(&mut sh, ttl, &["ttl", "k"]), ":-2\r\n");
    }

    #[test]
    fn rename_copy_move_keep_ttl() {
        let mut sh = Shard::new(0, 16);
        let at = now_ms() + 100_000;
        set(&mut sh, "a", "1", at);
        assert_eq!(run(&mut sh, rename, &["rename", "a", "b"]), "+OK\r\n");
        assert_eq!(run(&mut sh, pexpiretime, &["pexpiretime", "b"]), format!(":{at}\r\n"));
        assert_eq!(run(&mut sh, renamenx, &["renamenx", "b", "b"]), ":0\r\n");
        assert_eq!(run(&mut sh, rename, &["rename", "a", "b"]), "-ERR no such key\r\n");
        assert_eq!(run(&mut sh, copy, &["copy", "b", "c", "db", "3"]), ":1\r\n");
        assert_eq!(run(&mut sh, copy, &["copy", "b", "c", "db", "3"]), ":0\r\n");
        assert_eq!(run(&mut sh, copy, &["copy", "b", "b"]), format!("-{SAME_OBJECT}\r\n"));
        assert_eq!(sh.dbs[3].get(b"c", now_ms()).map(|e| e.expire_at), Some(at));
        assert_eq!(run(&mut sh, move_, &["move", "b", "3"]), ":1\r\n");
        assert_eq!(run(&mut sh, move_, &["move", "b", "16"]), "-ERR DB index is out of range\r\n");
        assert_eq!(sh.dbs[3].get(b"b", now_ms()).map(|e| e.expire_at), Some(at));
    }
}
