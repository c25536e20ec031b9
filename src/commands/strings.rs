//! String commands (Redis' t_string.c).

use std::sync::Arc;

use super::{cmd, flags::*, Args, BoxFuture, Command, Ctx, OwnedArgs, Run};
use crate::config;
use crate::resp::parser::parse_i64;
use crate::resp::{err, Reply};
use crate::server::session::Session;
use crate::server::txn::{gather_span, group_keys, run_grouped, Txn};
use crate::shard::locks::Mode;
use crate::shard::notify::{GENERIC, STRING};
use crate::types::{StrValue, Value};
use crate::util::{long_double_add, LdAddError};

const G: &str = "string";

pub static COMMANDS: &[Command] = &[
    cmd("get", 2, READONLY | FAST, (1, 1, 1), G, "1.0.0", "Get the value of a key", Run::Shard(get)),
    cmd("set", -3, WRITE | DENYOOM, (1, 1, 1), G, "1.0.0", "Set the string value of a key", Run::Shard(set)),
    cmd("setnx", 3, WRITE | DENYOOM | FAST, (1, 1, 1), G, "1.0.0", "Set the value of a key, only if the key does not exist", Run::Shard(setnx)),
    cmd("setex", 4, WRITE | DENYOOM, (1, 1, 1), G, "2.0.0", "Set the value and expiration of a key", Run::Shard(setex)),
    cmd("psetex", 4, WRITE | DENYOOM, (1, 1, 1), G, "2.6.0", "Set the value and expiration in milliseconds of a key", Run::Shard(psetex)),
    cmd("getset", 3, WRITE | DENYOOM | FAST, (1, 1, 1), G, "1.0.0", "Set the string value of a key and return its old value", Run::Shard(getset)),
    cmd("getdel", 2, WRITE | FAST, (1, 1, 1), G, "6.2.0", "Get the value of a key and delete the key", Run::Shard(getdel)),
    cmd("getex", -2, WRITE | FAST, (1, 1, 1), G, "6.2.0", "Get the value of a key and optionally set its expiration", Run::Shard(getex)),
    cmd("mget", -2, READONLY | FAST, (1, -1, 1), G, "1.0.0", "Get the values of all the given keys", Run::Span(mget, mget_span)),
    cmd("mset", -3, WRITE | DENYOOM, (1, -1, 2), G, "1.0.1", "Set multiple keys to multiple values", Run::Span(mset, mset_span)),
    cmd("msetnx", -3, WRITE | DENYOOM, (1, -1, 2), G, "1.0.1", "Set multiple keys to multiple values, only if none of the keys exist", Run::Span(msetnx, msetnx_span)),
    cmd("append", 3, WRITE | DENYOOM | FAST, (1, 1, 1), G, "2.0.0", "Append a value to a key", Run::Shard(append)),
    cmd("strlen", 2, READONLY | FAST, (1, 1, 1), G, "2.2.0", "Get the length of the value stored in a key", Run::Shard(strlen)),
    cmd("incr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), G, "1.0.0", "Increment the integer value of a key by one", Run::Shard(incr)),
    cmd("decr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), G, "1.0.0", "Decrement the integer value of a key by one", Run::Shard(decr)),
    cmd("incrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), G, "1.0.0", "Increment the integer value of a key by the given amount", Run::Shard(incrby)),
    cmd("decrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), G, "1.0.0", "Decrement the integer value of a key by the given number", Run::Shard(decrby)),
    cmd("incrbyfloat", 3, WRITE | DENYOOM | FAST, (1, 1, 1), G, "2.6.0", "Increment the float value of a key by the given amount", Run::Shard(incrbyfloat)),
    cmd("getrange", 4, READONLY, (1, 1, 1), G, "2.4.0", "Get a substring of the string stored at a key", Run::Shard(getrange)),
    cmd("substr", 4, READONLY, (1, 1, 1), G, "1.0.0", "Get a substring of the string stored at a key", Run::Shard(getrange)),
    cmd("setrange", 4, WRITE | DENYOOM, (1, 1, 1), G, "2.2.0", "Overwrite part of a string at key starting at the specified offset", Run::Shard(setrange)),
    cmd("lcs", -3, READONLY, (1, 2, 1), G, "7.0.0", "Find longest common substring", Run::Span(lcs, gather_span)),
];

/// The string at `key`: Ok(None) if missing, Err(()) if another type.
fn read_str<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a StrValue>, ()> {
    match ctx.read(key) {
        None => Ok(None),
        Some(e) => e.value.as_str().map(Some).ok_or(()),
    }
}

fn get(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    match read_str(ctx, a.get(1)) {
        Ok(Some(s)) => r.bulk(s.bytes(&mut itoa::Buffer::new())),
        Ok(None) => r.null(),
        Err(()) => r.error(err::WRONGTYPE),
    }
}

/// Expiry given to SET/SETEX/GETEX, resolved to absolute milliseconds.
fn expire_arg(r: &mut Reply, cmd: &str, raw: &[u8], unit_ms: u64, absolute: bool, now: u64) -> Option<u64> {
    let Some(v) = parse_i64(raw) else {
        r.error(err::NOT_INT);
        return None;
    };
    let invalid = |r: &mut Reply| r.error(&format!("ERR invalid expire time in '{}' command", cmd));
    if v <= 0 || (unit_ms == 1000 && v > i64::MAX / 1000) {
        invalid(r);
        return None;
    }
    let ms = v as u64 * unit_ms;
    let at = if absolute { Some(ms) } else { ms.checked_add(now).filter(|&t| t <= i64::MAX as u64) };
    if at.is_none() {
        invalid(r);
    }
    at
}

fn string_value(v: &[u8]) -> Value {
    Value::Str(StrValue::from_bytes(v))
}

/// The expiry option of SET or GETEX.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expiry {
    Keep,
    Ex,
    Px,
    ExAt,
    PxAt,
    /// SET KEEPTTL.
    KeepTtl,
    /// GETEX PERSIST.
    Persist,
}

/// Options of SET (`for_set`) or GETEX, parsed as Redis'
/// parseExtendedStringArguments: an option may repeat, but two different
/// expiry options, or NX with XX, are a syntax error. The expiry's number is
/// read later, so syntax errors win over bad numbers.
struct StringOpts<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    expiry: Expiry,
    expiry_arg: &'a [u8],
}

fn parse_string_opts<'a>(a: &Args<'a>, from: usize, for_set: bool) -> Option<StringOpts<'a>> {
    let mut o = StringOpts { nx: false, xx: false, get: false, expiry: Expiry::Keep, expiry_arg: b"" };
    let mut i = from;
    while i < a.len() {
        let w = a.get(i);
        let is = |name: &str| w.eq_ignore_ascii_case(name.as_bytes());
        let timed = if is("ex") {
            Some(Expiry::Ex)
        } else if is("px") {
            Some(Expiry::Px)
        } else if is("exat") {
            Some(Expiry::ExAt)
        } else if is("pxat") {
            Some(Expiry::PxAt)
        } else {
            None
        };
        let flag = if let Some(kind) = timed {
            if i + 1 >= a.len() || (o.expiry != Expiry::Keep && o.expiry != kind) {
                return None;
            }
            o.expiry = kind;
            o.expiry_arg = a.get(i + 1);
            i += 1;
            true
        } else if for_set && is("nx") && !o.xx {
            o.nx = true;
            true
        } else if for_set && is("xx") && !o.nx {
            o.xx = true;
            true
        } else if for_set && is("get") {
            o.get = true;
            true
        } else if (for_set && is("keepttl")) || (!for_set && is("persist")) {
            let kind = if for_set { Expiry::KeepTtl } else { Expiry::Persist };
            if o.expiry != Expiry::Keep && o.expiry != kind {
                return None;
            }
            o.expiry = kind;
            true
        } else {
            false
        };
        if !flag {
            return None;
        }
        i += 1;
    }
    Some(o)
}

/// The absolute expiry the options ask for: Some(None) leaves the TTL alone
/// (or clears it, for SET), Some(Some(0)) is PERSIST. None: error replied.
fn resolve_expiry(r: &mut Reply, cmd: &str, o: &StringOpts, now: u64) -> Option<Option<u64>> {
    let (unit_ms, absolute) = match o.expiry {
        Expiry::Keep | Expiry::KeepTtl => return Some(None),
        Expiry::Persist => return Some(Some(0)),
        Expiry::Ex => (1000, false),
        Expiry::Px => (1, false),
        Expiry::ExAt => (1000, true),
        Expiry::PxAt => (1, true),
    };
    expire_arg(r, cmd, o.expiry_arg, unit_ms, absolute, now).map(Some)
}

fn set(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let Some(o) = parse_string_opts(&a, 3, true) else { return r.error(err::SYNTAX) };
    let Some(expire_at) = resolve_expiry(r, "set", &o, ctx.now) else { return };
    let key = a.get(1);
    let exists = if o.get {
        match read_str(ctx, key) {
            Ok(Some(s)) => {
                r.bulk(s.bytes(&mut itoa::Buffer::new()));
                true
            }
            Ok(None) => {
                r.null();
                false
            }
            Err(()) => return r.error(err::WRONGTYPE),
        }
    } else if o.nx || o.xx {
        ctx.write(key).is_some()
    } else {
        // A plain SET replaces whatever is there: no lookup needed.
        false
    };
    if (o.nx && exists) || (o.xx && !exists) {
        if !o.get {
            r.null();
        }
        return;
    }
    let value = string_value(a.get(2));
    let now = ctx.now;
    if o.expiry == Expiry::KeepTtl {
        ctx.db().insert_keep_ttl(key, value, now);
    } else {
        ctx.db().insert(key, value, expire_at.unwrap_or(0));
    }
    ctx.notify(STRING, "set", key);
    if expire_at.is_some_and(|at| at != 0) {
        ctx.notify(GENERIC, "expire", key);
    }
    if !o.get {
        r.ok();
    }
}

fn setnx(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    if ctx.write(a.get(1)).is_some() {
        return r.int(0);
    }
    ctx.db().insert(a.get(1), string_value(a.get(2)), 0);
    ctx.notify(STRING, "set", a.get(1));
    r.int(1);
}

fn setex_generic(ctx: &mut Ctx, r: &mut Reply, a: Args, name: &str, unit_ms: u64) {
    let Some(at) = expire_arg(r, name, a.get(2), unit_ms, false, ctx.now) else { return };
    ctx.db().insert(a.get(1), string_value(a.get(3)), at);
    ctx.notify(STRING, "set", a.get(1));
    ctx.notify(GENERIC, "expire", a.get(1));
    r.ok();
}

fn setex(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    setex_generic(ctx, r, a, "setex", 1000)
}

fn psetex(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    setex_generic(ctx, r, a, "psetex", 1)
}

fn getset(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    match read_str(ctx, a.get(1)) {
        Ok(Some(s)) => r.bulk(s.bytes(&mut itoa::Buffer::new())),
        Ok(None) => r.null(),
        Err(()) => return r.error(err::WRONGTYPE),
    }
    ctx.db().insert(a.get(1), string_value(a.get(2)), 0);
    ctx.notify(STRING, "set", a.get(1));
}

fn getdel(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    match read_str(ctx, a.get(1)) {
        Ok(Some(s)) => r.bulk(s.bytes(&mut itoa::Buffer::new())),
        Ok(None) => return r.null(),
        Err(()) => return r.error(err::WRONGTYPE),
    }
    ctx.db().remove(a.get(1));
    ctx.notify(GENERIC, "del", a.get(1));
}

fn getex(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    // Redis' order: syntax, then the key (missing: nil) and its type, and
    // only then the expiry's number.
    let Some(o) = parse_string_opts(&a, 2, false) else { return r.error(err::SYNTAX) };
    let key = a.get(1);
    let now = ctx.now;
    let new_expiry = match read_str(ctx, key) {
        Ok(Some(s)) => {
            let Some(new_expiry) = resolve_expiry(r, "getex", &o, now) else { return };
            r.bulk(s.bytes(&mut itoa::Buffer::new()));
            new_expiry
        }
        Ok(None) => return r.null(),
        Err(()) => return r.error(err::WRONGTYPE),
    };
    match new_expiry {
        // An expiry in the past deletes the key, as Redis does.
        Some(at) if at != 0 && at <= now => {
            ctx.db().remove(key);
            ctx.notify(GENERIC, "del", key);
        }
        // PERSIST of a key without a TTL changes nothing (no event, no
        // invalidation), as in Redis.
        Some(0) if ctx.view(key).is_none_or(|e| e.expire_at == 0) => {}
        Some(at) => {
            ctx.db().set_expire(key, at);
            ctx.notify(GENERIC, if at == 0 { "persist" } else { "expire" }, key);
        }
        None => {}
    }
}

/// MGET on one shard.
fn mget(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    r.array(a.len() - 1);
    for k in a.iter().skip(1) {
        match read_str(ctx, k) {
            Ok(Some(s)) => r.bulk(s.bytes(&mut itoa::Buffer::new())),
            _ => r.null(),
        }
    }
}

fn mget_span(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let n = a.len() - 1;
        let groups = group_keys(&s.core, a.0.iter().cloned().enumerate().skip(1));
        let parts = run_grouped(s, s.db, groups, Mode::Shared, Arc::new(a), |ctx, keys, _| {
            keys.iter()
                .map(|(i, k)| (*i, read_str(ctx, k).ok().flatten().map(|v| v.to_vec())))
                .collect::<Vec<_>>()
        })
        .await;
        let mut values: Vec<Option<Vec<u8>>> = vec![None; n];
        for (i, v) in parts.into_iter().flatten() {
            values[i - 1] = v;
        }
        let mut r = s.reply();
        r.array(n);
        for v in values {
            match v {
                Some(v) => r.bulk(&v),
                None => r.null(),
            }
        }
    })
}

fn mset_pairs_ok(r: &mut Reply, a: &Args, name: &str) -> bool {
    if a.len() % 2 == 0 {
        r.error(&super::arity_error(name));
        return false;
    }
    true
}

/// MSET on one shard.
fn mset(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    if !mset_pairs_ok(r, &a, "mset") {
        return;
    }
    for i in (1..a.len()).step_by(2) {
        ctx.db().insert(a.get(i), string_value(a.get(i + 1)), 0);
        ctx.notify(STRING, "set", a.get(i));
    }
    r.ok();
}

fn mset_span(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        if a.len() % 2 == 0 {
            return s.reply().error(&super::arity_error("mset"));
        }
        let groups = group_keys(&s.core, a.0.iter().cloned().enumerate().skip(1).step_by(2));
        run_grouped(s, s.db, groups, Mode::Exclusive, Arc::new(a), |ctx, keys, args| {
            for (i, k) in keys {
                ctx.db().insert(k, string_value(args.get(i + 1)), 0);
                ctx.notify(STRING, "set", k);
            }
        })
        .await;
        s.reply().ok();
    })
}

/// MSETNX on one shard.
fn msetnx(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    if !mset_pairs_ok(r, &a, "msetnx") {
        return;
    }
    if (1..a.len()).step_by(2).any(|i| ctx.write(a.get(i)).is_some()) {
        return r.int(0);
    }
    for i in (1..a.len()).step_by(2) {
        ctx.db().insert(a.get(i), string_value(a.get(i + 1)), 0);
        ctx.notify(STRING, "set", a.get(i));
    }
    r.int(1);
}

/// MSETNX across shards: all or nothing. Check every shard under the locks,
/// then write everywhere or nowhere.
fn msetnx_span(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        if a.len() % 2 == 0 {
            return s.reply().error(&super::arity_error("msetnx"));
        }
        let db = s.db;
        let groups = group_keys(&s.core, a.0.iter().cloned().enumerate().skip(1).step_by(2));
        let sets = crate::server::txn::lock_sets(db, &groups, Mode::Exclusive);
        let txn = Txn::lock(s, sets).await;
        let a = Arc::new(a);
        let checks = groups
            .iter()
            .map(|(shard, keys)| {
                let keys: Vec<Vec<u8>> = keys.iter().map(|(_, k)| k.clone()).collect();
                let f: crate::server::txn::Step<bool> = Box::new(move |sh| {
                    let mut ctx = Ctx::new(sh, db);
                    keys.iter().any(|k| ctx.write(k).is_some())
                });
                (*shard, f)
            })
            .collect();
        let any_exists = txn.on_many(checks).await.into_iter().any(|e| e);
        if !any_exists {
            let writes = groups
                .into_iter()
                .map(|(shard, keys)| {
                    let a = a.clone();
                    let f: crate::server::txn::Step<()> = Box::new(move |sh| {
                        let mut ctx = Ctx::new(sh, db);
                        for (i, k) in keys {
                            ctx.db().insert(&k, string_value(a.get(i + 1)), 0);
                            ctx.notify(STRING, "set", &k);
                        }
                    });
                    (shard, f)
                })
                .collect();
            txn.on_many(writes).await;
        }
        txn.release().await;
        s.reply().int(!any_exists as i64);
    })
}

fn append(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let (key, add) = (a.get(1), a.get(2));
    let before = r.out.len();
    append_value(ctx, r, key, add);
    // Notified unless it failed (an error reply starts with '-').
    if r.out.get(before) == Some(&b':') {
        ctx.notify(STRING, "append", key);
    }
}

fn append_value(ctx: &mut Ctx, r: &mut Reply, key: &[u8], add: &[u8]) {
    let max = config::proto_max_bulk_len() as usize;
    match ctx.write(key) {
        None => {
            // A new key gets tryObjectEncoding, as in Redis: "123" is an int.
            ctx.db().insert(key, Value::Str(StrValue::from_bytes(add)), 0);
            r.int(add.len() as i64);
        }
        Some(e) => {
            let Some(s) = e.value.as_str_mut() else { return r.error(err::WRONGTYPE) };
            if s.len() + add.len() > max {
                return r.error(err::STRING_TOO_LONG);
            }
            let v = s.make_raw();
            v.extend_from_slice(add);
            r.int(v.len() as i64);
        }
    }
}

fn strlen(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    match read_str(ctx, a.get(1)) {
        Ok(Some(s)) => r.int(s.len() as i64),
        Ok(None) => r.int(0),
        Err(()) => r.error(err::WRONGTYPE),
    }
}

fn incr_by(ctx: &mut Ctx, r: &mut Reply, key: &[u8], by: i64) {
    let current = match ctx.write(key) {
        None => 0,
        Some(e) => match e.value.as_str().map(|s| s.as_int()) {
            Some(Some(v)) => v,
            Some(None) => return r.error(err::NOT_INT),
            None => return r.error(err::WRONGTYPE),
        },
    };
    let Some(next) = current.checked_add(by) else { return r.error(err::OVERFLOW) };
    match ctx.write(key) {
        // In place: the key keeps its TTL.
        Some(e) => e.value = Value::Str(StrValue::Int(next)),
        None => ctx.db().insert(key, Value::Str(StrValue::Int(next)), 0),
    }
    ctx.notify(STRING, "incrby", key);
    r.int(next);
}

fn incr(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    incr_by(ctx, r, a.get(1), 1)
}

fn decr(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    incr_by(ctx, r, a.get(1), -1)
}

fn incrby(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    match parse_i64(a.get(2)) {
        Some(by) => incr_by(ctx, r, a.get(1), by),
        None => r.error(err::NOT_INT),
    }
}

fn decrby(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    match parse_i64(a.get(2)) {
        Some(i64::MIN) => r.error("ERR decrement would overflow"),
        Some(by) => incr_by(ctx, r, a.get(1), -by),
        None => r.error(err::NOT_INT),
    }
}

fn incrbyfloat(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let key = a.get(1);
    let mut scratch = itoa::Buffer::new();
    let current = match ctx.write(key) {
        None => None,
        Some(e) => match e.value.as_str() {
            Some(s) => Some(s.bytes(&mut scratch)),
            None => return r.error(err::WRONGTYPE),
        },
    };
    let text = match long_double_add(current, a.get(2)) {
        Ok(t) => t,
        Err(LdAddError::NotFinite) => return r.error("ERR increment would produce NaN or Infinity"),
        Err(_) => return r.error(err::NOT_FLOAT),
    };
    let value = Value::Str(StrValue::from_bytes_no_int(&text));
    let now = ctx.now;
    ctx.db().insert_keep_ttl(key, value, now);
    ctx.notify(STRING, "incrbyfloat", key);
    r.bulk(&text);
}

fn getrange(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let (Some(mut start), Some(mut end)) = (parse_i64(a.get(2)), parse_i64(a.get(3))) else {
        return r.error(err::NOT_INT);
    };
    let mut scratch = itoa::Buffer::new();
    let s = match read_str(ctx, a.get(1)) {
        Ok(Some(s)) => s.bytes(&mut scratch),
        Ok(None) => return r.bulk(b""),
        Err(()) => return r.error(err::WRONGTYPE),
    };
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        return r.bulk(b"");
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if len == 0 || start > end {
        return r.bulk(b"");
    }
    r.bulk(&s[start as usize..=end as usize]);
}

fn setrange(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let (key, value) = (a.get(1), a.get(3));
    let Some(offset) = parse_i64(a.get(2)) else { return r.error(err::NOT_INT) };
    if offset < 0 {
        return r.error("ERR offset is out of range");
    }
    let offset = offset as usize;
    let max = config::proto_max_bulk_len() as usize;
    let too_long = |r: &mut Reply| r.error(err::STRING_TOO_LONG);
    match ctx.write(key) {
        None => {
            if value.is_empty() {
                return r.int(0);
            }
            if offset.saturating_add(value.len()) > max {
                return too_long(r);
            }
            let mut v = vec![0u8; offset + value.len()];
            v[offset..].copy_from_slice(value);
            r.int(v.len() as i64);
            ctx.db().insert(key, Value::Str(StrValue::Raw(v)), 0);
            ctx.notify(STRING, "setrange", key);
        }
        Some(e) => {
            let Some(s) = e.value.as_str_mut() else { return r.error(err::WRONGTYPE) };
            if value.is_empty() {
                return r.int(s.len() as i64);
            }
            if offset.saturating_add(value.len()) > max {
                return too_long(r);
            }
            let v = s.make_raw();
            if v.len() < offset + value.len() {
                v.resize(offset + value.len(), 0);
            }
            v[offset..offset + value.len()].copy_from_slice(value);
            r.int(v.len() as i64);
            ctx.notify(STRING, "setrange", key);
        }
    }
}

/// LCS options.
struct LcsOpts {
    len: bool,
    idx: bool,
    min_match: usize,
    with_match_len: bool,
}

fn lcs_opts(r: &mut Reply, a: &[&[u8]]) -> Option<LcsOpts> {
    let mut o = LcsOpts { len: false, idx: false, min_match: 0, with_match_len: false };
    let mut i = 3;
    while i < a.len() {
        let w = a[i];
        if w.eq_ignore_ascii_case(b"idx") {
            o.idx = true;
        } else if w.eq_ignore_ascii_case(b"len") {
            o.len = true;
        } else if w.eq_ignore_ascii_case(b"withmatchlen") {
            o.with_match_len = true;
        } else if w.eq_ignore_ascii_case(b"minmatchlen") && i + 1 < a.len() {
            let Some(v) = parse_i64(a[i + 1]) else {
                r.error(err::NOT_INT);
                return None;
            };
            o.min_match = v.max(0) as usize;
            i += 1;
        } else {
            r.error(err::SYNTAX);
            return None;
        }
        i += 1;
    }
    if o.len && o.idx {
        r.error("ERR If you want both the length and indexes, please just use IDX.");
        return None;
    }
    Some(o)
}

/// Length of the LCS of `a` and `b` with two rows of the DP table, the
/// shorter string along the rows: O(min(n, m)) memory.
fn lcs_len(a: &[u8], b: &[u8]) -> Option<u32> {
    let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    let w = short.len() + 1;
    let mut rows: Vec<u32> = Vec::new();
    rows.try_reserve_exact(2 * w).ok()?;
    rows.resize(2 * w, 0);
    let (mut prev, mut cur) = rows.split_at_mut(w);
    for &x in long {
        for j in 1..w {
            cur[j] = if x == short[j - 1] { prev[j - 1] + 1 } else { prev[j].max(cur[j - 1]) };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    Some(prev[w - 1])
}

/// Computes LCS of `a` and `b` and writes the reply Redis gives for `o`.
fn lcs_reply(r: &mut Reply, a: &[u8], b: &[u8], o: &LcsOpts) {
    let (n, m) = (a.len(), b.len());
    // Redis refuses when its (n+1)*(m+1) table of u32 would exceed
    // proto-max-bulk-len, LEN included, and replies an error (instead of
    // aborting) when the allocation fails.
    let table_bytes = (n as u128 + 1) * (m as u128 + 1) * 4;
    if table_bytes > config::proto_max_bulk_len().max(0) as u128 {
        return r.error("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    }
    const ALLOC_FAILED: &str = "ERR Insufficient memory, failed allocating transient memory for LCS";
    if o.len {
        return match lcs_len(a, b) {
            Some(total) => r.int(total as i64),
            None => r.error(ALLOC_FAILED),
        };
    }
    // dp[i][j] = LCS length of a[..i] and b[..j], flattened.
    let w = m + 1;
    let mut dp: Vec<u32> = Vec::new();
    if dp.try_reserve_exact((n + 1) * w).is_err() {
        return r.error(ALLOC_FAILED);
    }
    dp.resize((n + 1) * w, 0);
    for i in 1..=n {
        for j in 1..=m {
            dp[i * w + j] = if a[i - 1] == b[j - 1] {
                dp[(i - 1) * w + j - 1] + 1
            } else {
                dp[(i - 1) * w + j].max(dp[i * w + j - 1])
            };
        }
    }
    let total = dp[n * w + m] as usize;
    // Walk back from the end, collecting the LCS and (for IDX) matching ranges.
    let mut result = vec![0u8; total];
    let mut ranges: Vec<((usize, usize), (usize, usize), usize)> = Vec::new();
    let (mut i, mut j, mut k) = (n, m, total);
    let mut cur: Option<((usize, usize), (usize, usize))> = None;
    let flush = |cur: &mut Option<((usize, usize), (usize, usize))>, ranges: &mut Vec<_>| {
        if let Some(((a0, a1), (b0, b1))) = cur.take() {
            let len = a1 - a0 + 1;
            if len >= o.min_match {
                ranges.push(((a0, a1), (b0, b1), len));
            }
        }
    };
    while i > 0 && j > 0 {
        if a[i - 1] == b[j - 1] {
            k -= 1;
            result[k] = a[i - 1];
            let (ai, bj) = (i - 1, j - 1);
            match &mut cur {
                Some(((a0, _), (b0, _))) if *a0 == ai + 1 && *b0 == bj + 1 => {
                    *a0 = ai;
                    *b0 = bj;
                }
                _ => {
                    flush(&mut cur, &mut ranges);
                    cur = Some(((ai, ai), (bj, bj)));
                }
            }
            i -= 1;
            j -= 1;
        } else if dp[(i - 1) * w + j] > dp[i * w + j - 1] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    flush(&mut cur, &mut ranges);
    if !o.idx {
        return r.bulk(&result);
    }
    r.map(2);
    r.bulk(b"matches");
    r.array(ranges.len());
    for ((a0, a1), (b0, b1), len) in ranges {
        r.array(if o.with_match_len { 3 } else { 2 });
        r.array(2);
        r.int(a0 as i64);
        r.int(a1 as i64);
        r.array(2);
        r.int(b0 as i64);
        r.int(b1 as i64);
        if o.with_match_len {
            r.int(len as i64);
        }
    }
    r.bulk(b"len");
    r.int(total as i64);
}

const LCS_TYPE_ERR: &str = "ERR The specified keys must contain string values";

/// LCS once both values are read: as Redis' lcsCommand, the type check
/// comes before the options are parsed.
fn lcs_finish(r: &mut Reply, argv: &[&[u8]], va: Result<Option<Vec<u8>>, ()>, vb: Result<Option<Vec<u8>>, ()>) {
    let (Ok(x), Ok(y)) = (va, vb) else { return r.error(LCS_TYPE_ERR) };
    let Some(o) = lcs_opts(r, argv) else { return };
    lcs_reply(r, &x.unwrap_or_default(), &y.unwrap_or_default(), &o)
}

fn lcs(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let argv: Vec<&[u8]> = a.iter().collect();
    let va = read_str(ctx, a.get(1)).map(|s| s.map(|s| s.to_vec()));
    let vb = read_str(ctx, a.get(2)).map(|s| s.map(|s| s.to_vec()));
    lcs_finish(r, &argv, va, vb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::Proto;

    fn reply(a: &[u8], b: &[u8], len: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let o = LcsOpts { len, idx: false, min_match: 0, with_match_len: false };
        lcs_reply(&mut Reply::new(&mut out, Proto::Resp2), a, b, &o);
        out
    }

    #[test]
    fn lcs_len_two_rows_matches_full_table() {
        let cases: &[(&[u8], &[u8])] = &[(b"ohmytext", b"mynewtext"), (b"", b"abc"), (b"ABCBDAB", b"BDCABA"), (b"aaaa", b"aa"), (b"12345", b"13579")];
        for (a, b) in cases {
            let full = reply(a, b, false);
            let text_len = if full.starts_with(b"$") { std::str::from_utf8(&full[1..full.iter().position(|&c| c == b'\r').unwrap()]).unwrap().parse::<u32>().unwrap() } else { 0 };
            assert_eq!(lcs_len(a, b), Some(text_len), "{:?} {:?}", a, b);
            assert_eq!(lcs_len(b, a), Some(text_len));
        }
    }

    #[test]
    fn lcs_table_limited_by_proto_max_bulk_len() {
        // (100001)^2 * 4 bytes is far above the default 512 MB: an error, no abort.
        let big = vec![b'x'; 100_000];
        let err = b"-ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len\r\n";
        assert_eq!(reply(&big, &big, true), err);
        assert_eq!(reply(&big, &big, false), err);
        assert_eq!(reply(b"", &big, true), b":0\r\n");
    }
}
