//! Hash commands (Redis' t_hash.c). A hash lives on its key's shard, so
//! every command here runs there.

use super::keys::{collection_scan_opts, parse_cursor};
use super::{arity_error, cmd, flags::*, Args, Command, Ctx, Run};
use crate::resp::parser::parse_i64;
use crate::resp::{err, Reply};
use crate::types::HashValue;
use crate::util::{glob_match, long_double_add, rng_from, sample_distinct, LdAddError};
use crate::shard::notify::{GENERIC, HASH};

const G: &str = "hash";

pub static COMMANDS: &[Command] = &[
    cmd("hset", -4, WRITE | DENYOOM | FAST, (1, 1, 1), G, "2.0.0", "Set the string value of a hash field", Run::Shard(hset)),
    cmd("hsetnx", 4, WRITE | DENYOOM | FAST, (1, 1, 1), G, "2.0.0", "Set the value of a hash field, only if the field does not exist", Run::Shard(hsetnx)),
    cmd("hget", 3, READONLY | FAST, (1, 1, 1), G, "2.0.0", "Get the value of a hash field", Run::Shard(hget)),
    cmd("hmset", -4, WRITE | DENYOOM | FAST, (1, 1, 1), G, "2.0.0", "Set multiple hash fields to multiple values", Run::Shard(hmset)),
    cmd("hmget", -3, READONLY | FAST, (1, 1, 1), G, "2.0.0", "Get the values of all the given hash fields", Run::Shard(hmget)),
    cmd("hincrby", 4, WRITE | DENYOOM | FAST, (1, 1, 1), G, "2.0.0", "Increment the integer value of a hash field by the given number", Run::Shard(hincrby)),
    cmd("hincrbyfloat", 4, WRITE | DENYOOM | FAST, (1, 1, 1), G, "2.6.0", "Increment the float value of a hash field by the given amount", Run::Shard(hincrbyfloat)),
    cmd("hdel", -3, WRITE | FAST, (1, 1, 1), G, "2.0.0", "Delete one or more hash fields", Run::Shard(hdel)),
    cmd("hlen", 2, READONLY | FAST, (1, 1, 1), G, "2.0.0", "Get the number of fields in a hash", Run::Shard(hlen)),
    cmd("hstrlen", 3, READONLY | FAST, (1, 1, 1), G, "3.2.0", "Get the length of the value of a hash field", Run::Shard(hstrlen)),
    cmd("hkeys", 2, READONLY, (1, 1, 1), G, "2.0.0", "Get all the fields in a hash", Run::Shard(hkeys)),
    cmd("hvals", 2, READONLY, (1, 1, 1), G, "2.0.0", "Get all the values in a hash", Run::Shard(hvals)),
    cmd("hgetall", 2, READONLY, (1, 1, 1), G, "2.0.0", "Get all the fields and values in a hash", Run::Shard(hgetall)),
    cmd("hexists", 3, READONLY | FAST, (1, 1, 1), G, "2.0.0", "Determine if a hash field exists", Run::Shard(hexists)),
    cmd("hrandfield", -2, READONLY, (1, 1, 1), G, "6.2.0", "Get one or multiple random fields from a hash", Run::Shard(hrandfield)),
    cmd("hscan", -3, READONLY, (1, 1, 1), G, "2.8.0", "Incrementally iterate hash fields and associated values", Run::Shard(hscan)),
];

/// The hash at `key`: Ok(None) if missing, Err(()) if another type.
fn read_hash<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a HashValue>, ()> {
    match ctx.read(key) {
        None => Ok(None),
        Some(e) => e.value.as_hash().map(Some).ok_or(()),
    }
}

/// HSET and HMSET: field/value pairs; returns how many fields are new.
fn set_pairs(ctx: &mut Ctx, r: &mut Reply, a: &Args, name: &str) -> Option<i64> {
    if a.len() % 2 == 1 {
        r.error(&arity_error(name));
        return None;
    }
    let pairs = (2..a.len()).step_by(2);
    let added = ctx.update::<HashValue, _>(a.get(1), |h| pairs.filter(|&i| h.set(a.get(i), a.get(i + 1))).count() as i64);
    match added {
        Ok(_) => ctx.notify(HASH, "hset", a.get(1)),
        Err(()) => r.error(err::WRONGTYPE),
    }
    added.ok()
}

fn hset(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    if let Some(n) = set_pairs(ctx, r, &a, "hset") {
        r.int(n);
    }
}

fn hmset(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    if set_pairs(ctx, r, &a, "hmset").is_some() {
        r.ok();
    }
}

fn hsetnx(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let (field, value) = (a.get(2), a.get(3));
    match ctx.update::<HashValue, _>(a.get(1), |h| h.get(field).is_none() && h.set(field, value)) {
        Ok(added) => {
            if added {
                ctx.notify(HASH, "hset", a.get(1));
            }
            r.int(added as i64)
        }
        Err(()) => r.error(err::WRONGTYPE),
    }
}

fn hget(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    match read_hash(ctx, a.get(1)) {
        Ok(h) => match h.and_then(|h| h.get(a.get(2))) {
            Some(v) => r.bulk(v),
            None => r.null(),
        },
        Err(()) => r.error(err::WRONGTYPE),
    }
}

fn hmget(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let Ok(h) = read_hash(ctx, a.get(1)) else { return r.error(err::WRONGTYPE) };
    r.array(a.len() - 2);
    for field in a.iter().skip(2) {
        match h.and_then(|h| h.get(field)) {
            Some(v) => r.bulk(v),
            None => r.null(),
        }
    }
}

fn hdel(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    // A missing key gets a transient empty hash, which is not stored.
    match ctx.modify::<HashValue, _>(a.get(1), |h| a.iter().skip(2).filter(|f| h.remove(f)).count() as i64) {
        Ok((n, emptied)) => {
            if n > 0 {
                ctx.notify(HASH, "hdel", a.get(1));
            }
            if emptied {
                ctx.notify(GENERIC, "del", a.get(1));
            }
            r.int(n)
        }
        Err(()) => r.error(err::WRONGTYPE),
    }
}

fn hlen(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    match read_hash(ctx, a.get(1)) {
        Ok(h) => r.int(h.map_or(0, |h| h.len() as i64)),
        Err(()) => r.error(err::WRONGTYPE),
    }
}

fn hstrlen(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    match read_hash(ctx, a.get(1)) {
        Ok(h) => r.int(h.and_then(|h| h.get(a.get(2))).map_or(0, |v| v.len() as i64)),
        Err(()) => r.error(err::WRONGTYPE),
    }
}

fn hexists(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    match read_hash(ctx, a.get(1)) {
        Ok(h) => r.int(h.is_some_and(|h| h.get(a.get(2)).is_some()) as i64),
        Err(()) => r.error(err::WRONGTYPE),
    }
}

/// HKEYS, HVALS, HGETALL: fields and/or values, straight from the hash.
fn get_all(ctx: &mut Ctx, r: &mut Reply, a: Args, fields: bool, values: bool) {
    let h = match read_hash(ctx, a.get(1)) {
        Ok(h) => h,
        Err(()) => return r.error(err::WRONGTYPE),
    };
    let len = h.map_or(0, |h| h.len());
    if fields && values {
        r.map(len);
    } else {
        r.array(len);
    }
    for (f, v) in h.into_iter().flat_map(|h| h.iter()) {
        if fields {
            r.bulk(f);
        }
        if values {
            r.bulk(v);
        }
    }
}

fn hkeys(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    get_all(ctx, r, a, true, false)
}

fn hvals(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    get_all(ctx, r, a, false, true)
}

fn hgetall(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    get_all(ctx, r, a, true, true)
}

fn hincrby(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let Some(incr) = parse_i64(a.get(3)) else { return r.error(err::NOT_INT) };
    let field = a.get(2);
    let result = ctx.update::<HashValue, _>(a.get(1), |h| {
        let current = match h.get(field) {
            None => 0,
            Some(v) => parse_i64(v).ok_or("ERR hash value is not an integer")?,
        };
        let next = current.checked_add(incr).ok_or(err::OVERFLOW)?;
        h.set(field, itoa::Buffer::new().format(next).as_bytes());
        Ok(next)
    });
    match result {
        Ok(Ok(n)) => {
            ctx.notify(HASH, "hincrby", a.get(1));
            r.int(n)
        }
        Ok(Err(e)) => r.error(e),
        Err(()) => r.error(err::WRONGTYPE),
    }
}

/// HINCRBYFLOAT in long double, as INCRBYFLOAT. The increment is checked
/// first (Redis parses it before looking at the key).
fn hincrbyfloat(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let incr = a.get(3);
    match long_double_add(None, incr) {
        Err(LdAddError::NotFinite) => return r.error("ERR value is NaN or Infinity"),
        Err(_) => return r.error(err::NOT_FLOAT),
        Ok(_) => {}
    }
    let field = a.get(2);
    let result = ctx.update::<HashValue, _>(a.get(1), |h| {
        let text = long_double_add(h.get(field), incr).map_err(|e| match e {
            LdAddError::NotFinite => "ERR increment would produce NaN or Infinity",
            _ => "ERR hash value is not a float",
        })?;
        h.set(field, &text);
        Ok(text)
    });
    match result {
        Ok(Ok(text)) => {
            ctx.notify(HASH, "hincrbyfloat", a.get(1));
            r.bulk(&text)
        }
        Ok(Err(e)) => r.error(e),
        Err(()) => r.error(err::WRONGTYPE),
    }
}

/// The count of HRANDFIELD and SRANDMEMBER: any long but LONG_MIN, whose
/// negation would overflow.
pub(super) fn parse_rand_count(raw: &[u8]) -> Result<i64, &'static str> {
    match parse_i64(raw) {
        None => Err(err::NOT_INT),
        Some(i64::MIN) => Err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"),
        Some(n) => Ok(n),
    }
}

/// One HRANDFIELD pick: a flat field (and value) in RESP2, a [field, value]
/// pair in RESP3.
fn reply_pick(r: &mut Reply, (f, v): (&[u8], &[u8]), with_values: bool) {
    if with_values && r.is_resp3() {
        r.array(2);
    }
    r.bulk(f);
    if with_values {
        r.bulk(v);
    }
}

/// HRANDFIELD key [count [WITHVALUES]] (Redis' hrandfieldWithCountCommand):
/// a negative count may repeat fields, a positive one gives distinct fields,
/// the whole hash when it has no more than `count`.
fn hrandfield(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let mut rand = rng_from(ctx.shard.rand());
    if a.len() == 2 {
        return match read_hash(ctx, a.get(1)) {
            Ok(Some(h)) => r.bulk(h.random(&mut rand).0),
            Ok(None) => r.null(),
            Err(()) => r.error(err::WRONGTYPE),
        };
    }
    let count = match parse_rand_count(a.get(2)) {
        Ok(n) => n,
        Err(e) => return r.error(e),
    };
    if a.len() > 4 || (a.len() == 4 && !a.is(3, "withvalues")) {
        return r.error(err::SYNTAX);
    }
    let with_values = a.len() == 4;
    // Redis refuses counts whose reply length (two per pick) would overflow.
    if with_values && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
        return r.error("ERR value is out of range");
    }
    let h = match read_hash(ctx, a.get(1)) {
        Ok(Some(h)) => h,
        Ok(None) => return r.array(0),
        Err(()) => return r.error(err::WRONGTYPE),
    };
    let (n, distinct) = (count.unsigned_abs() as usize, count > 0);
    let len = h.len();
    let picks = if !distinct || n == 1 { n } else { n.min(len) };
    r.array(if with_values && !r.is_resp3() { picks * 2 } else { picks });
    if !distinct || n == 1 {
        (0..n).for_each(|_| reply_pick(r, h.random(&mut rand), with_values));
    } else if n >= len {
        h.iter().for_each(|p| reply_pick(r, p, with_values));
    } else {
        for p in sample_distinct(n, len, &mut rand, || h.iter().collect(), |rand| h.random(rand)) {
            reply_pick(r, p, with_values);
        }
    }
}

/// HSCAN key cursor [MATCH pattern] [COUNT count]: a listpack comes whole
/// with cursor 0, as in Redis.
fn hscan(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let Some(cursor) = parse_cursor(a.get(2)) else { return r.error("ERR invalid cursor") };
    let h = match read_hash(ctx, a.get(1)) {
        Ok(Some(h)) => h,
        Ok(None) => {
            r.array(2);
            r.bulk(b"0");
            return r.array(0);
        }
        Err(()) => return r.error(err::WRONGTYPE),
    };
    let (count, pattern) = match collection_scan_opts(&a) {
        Ok(o) => o,
        Err(e) => return r.error(e),
    };
    let mut found = Vec::new();
    let next = h.scan(cursor.try_into().unwrap_or(usize::MAX), count, |f, v| {
        if pattern.is_none_or(|p| glob_match(p, f, false)) {
            found.push((f, v));
        }
    });
    r.array(2);
    r.bulk_int(next as i64);
    r.array(found.len() * 2);
    for (f, v) in found {
        r.bulk(f);
        r.bulk(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::Shard;

    use crate::commands::run_shard_fn as run;

    #[test]
    fn hdel_of_last_field_deletes_the_key() {
        let mut sh = Shard::new(0, 1);
        assert_eq!(run(&mut sh, hset, &["hset", "h", "a", "1", "b", "2"]), ":2\r\n");
        assert_eq!(run(&mut sh, hdel, &["hdel", "h", "a", "b", "c"]), ":2\r\n");
        assert_eq!(sh.dbs[0].len(), 0);
        assert_eq!(run(&mut sh, hdel, &["hdel", "h", "a"]), ":0\r\n");
        assert_eq!(sh.dbs[0].len(), 0, "HDEL on a missing key creates nothing");
    }

    #[test]
    fn hincrby_errors_leave_no_key() {
        let mut sh = Shard::new(0, 1);
        assert_eq!(run(&mut sh, hincrby, &["hincrby", "h", "f", "x"]), format!("-{}\r\n", err::NOT_INT));
        assert_eq!(sh.dbs[0].len(), 0);
        assert_eq!(run(&mut sh, hincrby, &["hincrby", "h", "f", "9223372036854775807"]), ":9223372036854775807\r\n");
        assert_eq!(run(&mut sh, hincrby, &["hincrby", "h", "f", "1"]), format!("-{}\r\n", err::OVERFLOW));
        assert_eq!(run(&mut sh, hincrbyfloat, &["hincrbyfloat", "h", "g", "0.1"]), "$3\r\n0.1\r\n");
        assert_eq!(run(&mut sh, hincrbyfloat, &["hincrbyfloat", "h", "g", "0.2"]), "$3\r\n0.3\r\n");
    }

    #[test]
    fn hrandfield_positive_count_is_distinct() {
        let mut sh = Shard::new(0, 1);
        for i in 0..200 {
            run(&mut sh, hset, &["hset", "h", &format!("f{i}"), "v"]);
        }
        for count in ["5", "150", "300"] {
            let out = run(&mut sh, hrandfield, &["hrandfield", "h", count]);
            let fields: Vec<&str> = out.split("\r\n").filter(|l| l.starts_with('f')).collect();
            let distinct: std::collections::HashSet<_> = fields.iter().collect();
            assert_eq!(fields.len(), count.parse::<usize>().unwrap().min(200));
            assert_eq!(distinct.len(), fields.len());
        }
    }
}
