//! List commands (Redis' t_list.c), blocking ones included.
//!
//! Across cores: LMPOP looks for its first non-empty key on every core
//! involved under one transaction; LMOVE/RPOPLPUSH pop on the source's core
//! and push on the destination's under the transaction's locks. The blocking
//! forms run those same coordinators, then block (`server::blocking`) if
//! nothing was there; their `ServeFn`s (`serve_pop`, `serve_move`) serve them
//! on the shard when a list appears.

use super::{cmd, flags::*, numkeys_at, Args, ArgList, BoxFuture, Command, Ctx, OwnedArgs, Run};
use crate::config;
use crate::resp::parser::parse_i64;
use crate::resp::{err, Reply};
use crate::server::blocking::{self, Pending};
use crate::server::session::Session;
use crate::server::txn::{group_keys, lock_sets, Txn};
use crate::shard::blocking::{Wake, Waiter};
use crate::shard::locks::Mode;
use crate::types::list::End;
use crate::types::{ListValue, Value};
use crate::shard::notify::{GENERIC, LIST};

const G: &str = "list";

pub static COMMANDS: &[Command] = &[
    cmd("lpush", -3, WRITE | DENYOOM | FAST, (1, 1, 1), G, "1.0.0", "Prepend one or multiple elements to a list", Run::Shard(lpush)),
    cmd("rpush", -3, WRITE | DENYOOM | FAST, (1, 1, 1), G, "1.0.0", "Append one or multiple elements to a list", Run::Shard(rpush)),
    cmd("lpushx", -3, WRITE | DENYOOM | FAST, (1, 1, 1), G, "2.2.0", "Prepend an element to a list, only if the list exists", Run::Shard(lpushx)),
    cmd("rpushx", -3, WRITE | DENYOOM | FAST, (1, 1, 1), G, "2.2.0", "Append an element to a list, only if the list exists", Run::Shard(rpushx)),
    cmd("lpop", -2, WRITE | FAST, (1, 1, 1), G, "1.0.0", "Remove and get the first elements in a list", Run::Shard(lpop)),
    cmd("rpop", -2, WRITE | FAST, (1, 1, 1), G, "1.0.0", "Remove and get the last elements in a list", Run::Shard(rpop)),
    cmd("llen", 2, READONLY | FAST, (1, 1, 1), G, "1.0.0", "Get the length of a list", Run::Shard(llen)),
    cmd("lrange", 4, READONLY, (1, 1, 1), G, "1.0.0", "Get a range of elements from a list", Run::Shard(lrange)),
    cmd("lindex", 3, READONLY, (1, 1, 1), G, "1.0.0", "Get an element from a list by its index", Run::Shard(lindex)),
    cmd("lset", 4, WRITE | DENYOOM, (1, 1, 1), G, "1.0.0", "Set the value of an element in a list by its index", Run::Shard(lset)),
    cmd("linsert", 5, WRITE | DENYOOM, (1, 1, 1), G, "2.2.0", "Insert an element before or after another element in a list", Run::Shard(linsert)),
    cmd("lrem", 4, WRITE, (1, 1, 1), G, "1.0.0", "Remove elements from a list", Run::Shard(lrem)),
    cmd("ltrim", 4, WRITE, (1, 1, 1), G, "1.0.0", "Trim a list to the specified range", Run::Shard(ltrim)),
    cmd("lpos", -3, READONLY, (1, 1, 1), G, "6.0.6", "Return the index of matching elements on a list", Run::Shard(lpos)),
    cmd("rpoplpush", 3, WRITE | DENYOOM, (1, 2, 1), G, "1.2.0", "Remove the last element in a list, prepend it to another list and return it", Run::Span(lmove, lmove_span)),
    cmd("lmove", 5, WRITE | DENYOOM, (1, 2, 1), G, "6.2.0", "Pop an element from a list, push it to another list and return it", Run::Span(lmove, lmove_span)),
    cmd("lmpop", -4, WRITE, (0, 0, 0), G, "7.0.0", "Pop elements from a list", Run::Span(lmpop, lmpop_span)).with_keys(|a| numkeys_at(a, 1, 0..0)),
    cmd("blpop", -3, WRITE | NOSCRIPT | BLOCKING, (1, -2, 1), G, "2.0.0", "Remove and get the first element in a list, or block until one is available", Run::Conn(blpop)),
    cmd("brpop", -3, WRITE | NOSCRIPT | BLOCKING, (1, -2, 1), G, "2.0.0", "Remove and get the last element in a list, or block until one is available", Run::Conn(brpop)),
    cmd("brpoplpush", 4, WRITE | DENYOOM | NOSCRIPT | BLOCKING, (1, 2, 1), G, "2.2.0", "Pop an element from a list, push it to another list and return it; or block until one is available", Run::Conn(blmove)),
    cmd("blmove", 6, WRITE | DENYOOM | NOSCRIPT | BLOCKING, (1, 2, 1), G, "6.2.0", "Pop an element from a list, push it to another list and return it; or block until one is available", Run::Conn(blmove)),
    cmd("blmpop", -5, WRITE | BLOCKING, (0, 0, 0), G, "7.0.0", "Pop elements from a list, or block until one is available", Run::Conn(blmpop)).with_keys(|a| numkeys_at(a, 2, 0..0)),
];

const OUT_OF_RANGE: &str = "ERR index out of range";
const MUST_BE_POSITIVE: &str = "ERR value is out of range, must be positive";

fn fill() -> i64 {
    config::list_max_listpack_size()
}

/// The list at `key` for reading: Ok(None) if missing, Err(()) if another type.
fn read_list<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a mut ListValue>, ()> {
    match ctx.read(key) {
        None => Ok(None),
        Some(e) => e.value.as_list_mut().map(Some).ok_or(()),
    }
}

/// The list at `key` for writing: Ok(None) if missing, Err(()) if another type.
fn write_list<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a mut ListValue>, ()> {
    match ctx.write(key) {
        None => Ok(None),
        Some(e) => e.value.as_list_mut().map(Some).ok_or(()),
    }
}

/// Deletes `key` if its list was emptied (a collection never stays empty).
fn drop_if_empty(ctx: &mut Ctx, key: &[u8]) {
    if let Ok(Some(l)) = write_list(ctx, key) {
        if l.is_empty() {
            ctx.db().remove(key);
            ctx.notify(GENERIC, "del", key);
        }
    }
}

/// Pushes `elements` at `end` of the list at `key`, creating it if `create`.
/// Returns the new length (0 if it did not exist and `create` is false).
fn push_elements<'e>(ctx: &mut Ctx, key: &[u8], end: End, elements: impl Iterator<Item = &'e [u8]>, create: bool) -> Result<usize, ()> {
    let n = push_quietly(ctx, key, end, elements, create)?;
    if n > 0 {
        ctx.notify(LIST, if end == End::Left { "lpush" } else { "rpush" }, key);
    }
    Ok(n)
}

fn push_quietly<'e>(ctx: &mut Ctx, key: &[u8], end: End, elements: impl Iterator<Item = &'e [u8]>, create: bool) -> Result<usize, ()> {
    let fill = fill();
    match write_list(ctx, key)? {
        Some(l) => {
            elements.for_each(|e| l.push(end, e, fill));
            Ok(l.len())
        }
        None if !create => Ok(0),
        None => {
            let mut l = ListValue::new();
            elements.for_each(|e| l.push(end, e, fill));
            let n = l.len();
            ctx.db().insert(key, Value::List(Box::new(l)), 0);
            Ok(n)
        }
    }
}

fn push_cmd(ctx: &mut Ctx, r: &mut Reply, a: Args, end: End, create: bool) {
    match push_elements(ctx, a.get(1), end, a.iter().skip(2), create) {
        Ok(n) => r.int(n as i64),
        Err(()) => r.error(err::WRONGTYPE),
    }
}

fn lpush(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    push_cmd(ctx, r, a, End::Left, true)
}

fn rpush(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    push_cmd(ctx, r, a, End::Right, true)
}

fn lpushx(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    push_cmd(ctx, r, a, End::Left, false)
}

fn rpushx(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    push_cmd(ctx, r, a, End::Right, false)
}

/// LEFT or RIGHT.
fn end_arg(arg: &[u8]) -> Option<End> {
    if arg.eq_ignore_ascii_case(b"left") {
        Some(End::Left)
    } else if arg.eq_ignore_ascii_case(b"right") {
        Some(End::Right)
    } else {
        None
    }
}

/// A count that must be > 0 (LMPOP's COUNT, numkeys), with `msg` as the
/// error for anything else.
fn positive(arg: &[u8], msg: &'static str) -> Result<usize, &'static str> {
    match parse_i64(arg) {
        Some(n) if n > 0 => Ok(n as usize),
        _ => Err(msg),
    }
}

// --- LPOP, RPOP ---------------------------------------------------------------

fn pop_cmd(ctx: &mut Ctx, r: &mut Reply, a: Args, end: End) {
    if a.len() > 3 {
        return r.error(&super::arity_error(if end == End::Left { "lpop" } else { "rpop" }));
    }
    let count = match (a.len() == 3).then(|| parse_i64(a.get(2))) {
        None => None,
        Some(Some(n)) if n >= 0 => Some(n as usize),
        Some(_) => return r.error(MUST_BE_POSITIVE),
    };
    let key = a.get(1);
    let l = match write_list(ctx, key) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(None) if count.is_some() => return r.null_array(),
        Ok(None) => return r.null(),
        Ok(Some(l)) => l,
    };
    match count {
        None => {
            l.pop(end, |v| r.bulk(v));
        }
        Some(n) => {
            let n = n.min(l.len());
            r.array(n);
            // A count of 0 changes nothing: no event, no invalidation (Redis).
            if n == 0 {
                return;
            }
            for _ in 0..n {
                l.pop(end, |v| r.bulk(v));
            }
        }
    }
    ctx.notify(LIST, pop_event(end), key);
    drop_if_empty(ctx, key);
}

fn pop_event(end: End) -> &'static str {
    if end == End::Left {
        "lpop"
    } else {
        "rpop"
    }
}

fn lpop(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    pop_cmd(ctx, r, a, End::Left)
}

fn rpop(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    pop_cmd(ctx, r, a, End::Right)
}

// --- Reading: LLEN, LRANGE, LINDEX, LPOS ----------------------------------------

fn llen(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    match read_list(ctx, a.get(1)) {
        Ok(l) => r.int(l.map_or(0, |l| l.len() as i64)),
        Err(()) => r.error(err::WRONGTYPE),
    }
}

/// Redis' range normalization (LRANGE, LTRIM): negative indexes count from
/// the end; None if the range is empty.
fn range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { (start + len).max(0) } else { start };
    let stop = if stop < 0 { stop + len } else { stop };
    if start > stop || start >= len {
        return None;
    }
    Some((start as usize, stop.min(len - 1) as usize))
}

fn lrange(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let (Some(start), Some(stop)) = (parse_i64(a.get(2)), parse_i64(a.get(3))) else { return r.error(err::NOT_INT) };
    let l = match read_list(ctx, a.get(1)) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(None) => return r.array(0),
        Ok(Some(l)) => l,
    };
    let Some((from, to)) = range(start, stop, l.len()) else { return r.array(0) };
    r.array(to - from + 1);
    l.iter_from(from).take(to - from + 1).for_each(|e| r.bulk(e));
}

/// A list index: negative counts from the end; None if out of range.
fn index(i: i64, len: usize) -> Option<usize> {
    let i = if i < 0 { i.checked_add(len as i64)? } else { i };
    (0..len as i64).contains(&i).then_some(i as usize)
}

fn lindex(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let l = match read_list(ctx, a.get(1)) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(None) => return r.null(),
        Ok(Some(l)) => l,
    };
    let Some(i) = parse_i64(a.get(2)) else { return r.error(err::NOT_INT) };
    match index(i, l.len()).and_then(|i| l.get(i)) {
        Some(e) => r.bulk(e),
        None => r.null(),
    }
}

fn lpos(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let (mut rank, mut count, mut maxlen) = (1i64, None, 0usize);
    let mut i = 3;
    while i < a.len() {
        let more = i + 1 < a.len();
        if a.is(i, "rank") && more {
            match parse_i64(a.get(i + 1)) {
                Some(0) => return r.error("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"),
                Some(n) => rank = n,
                None => return r.error(err::NOT_INT),
            }
        } else if a.is(i, "count") && more {
            match parse_i64(a.get(i + 1)) {
                Some(n) if n >= 0 => count = Some(n as usize),
                _ => return r.error("ERR COUNT can't be negative"),
            }
        } else if a.is(i, "maxlen") && more {
            match parse_i64(a.get(i + 1)) {
                Some(n) if n >= 0 => maxlen = n as usize,
                _ => return r.error("ERR MAXLEN can't be negative"),
            }
        } else {
            return r.error(err::SYNTAX);
        }
        i += 2;
    }
    // A negative rank searches from the tail. Redis negates it as a C long,
    // so i64::MIN stays negative and then matches the first hit.
    let from_tail = rank < 0;
    if from_tail {
        rank = rank.wrapping_neg();
    }
    let l = match read_list(ctx, a.get(1)) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(None) if count.is_some() => return r.array(0),
        Ok(None) => return r.null(),
        Ok(Some(l)) => l,
    };
    let len = l.len();
    let scan = if maxlen == 0 { len } else { maxlen.min(len) };
    let elem = a.get(2);
    let scanned: Box<dyn Iterator<Item = (usize, &[u8])>> = if from_tail {
        Box::new(l.iter_rev().take(scan).enumerate().map(move |(i, e)| (len - 1 - i, e)))
    } else {
        Box::new(l.iter_from(0).take(scan).enumerate())
    };
    let mut found = scanned
        .filter(|(_, e)| *e == elem)
        .map(|(i, _)| i as i64)
        .enumerate()
        .filter(|(m, _)| *m as i64 + 1 >= rank)
        .map(|(_, i)| i);
    match count {
        None => match found.next() {
            Some(i) => r.int(i),
            None => r.null(),
        },
        Some(c) => {
            let wanted = if c == 0 { usize::MAX } else { c };
            let positions: Vec<i64> = found.take(wanted).collect();
            r.array(positions.len());
            positions.into_iter().for_each(|i| r.int(i));
        }
    }
}

// --- Writing in place: LSET, LINSERT, LREM, LTRIM --------------------------------

fn lset(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let l = match write_list(ctx, a.get(1)) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(None) => return r.error(err::NO_KEY),
        Ok(Some(l)) => l,
    };
    let Some(i) = parse_i64(a.get(2)) else { return r.error(err::NOT_INT) };
    match index(i, l.len()) {
        Some(i) => {
            l.set(i, a.get(3), fill());
            ctx.notify(LIST, "lset", a.get(1));
            r.ok();
        }
        None => r.error(OUT_OF_RANGE),
    }
}

fn linsert(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let after = if a.is(2, "after") {
        true
    } else if a.is(2, "before") {
        false
    } else {
        return r.error(err::SYNTAX);
    };
    let l = match write_list(ctx, a.get(1)) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(None) => return r.int(0),
        Ok(Some(l)) => l,
    };
    let Some(at) = l.iter_from(0).position(|e| e == a.get(3)) else { return r.int(-1) };
    l.insert(at + after as usize, a.get(4), fill());
    let n = l.len();
    ctx.notify(LIST, "linsert", a.get(1));
    r.int(n as i64);
}

fn lrem(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let Some(count) = parse_i64(a.get(2)) else { return r.error(err::NOT_INT) };
    let key = a.get(1);
    let l = match write_list(ctx, key) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(None) => return r.int(0),
        Ok(Some(l)) => l,
    };
    let end = if count < 0 { End::Right } else { End::Left };
    let limit = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
    let removed = l.remove_matching(a.get(3), limit, end, fill());
    if removed > 0 {
        ctx.notify(LIST, "lrem", key);
    }
    drop_if_empty(ctx, key);
    r.int(removed as i64);
}

fn ltrim(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let (Some(start), Some(stop)) = (parse_i64(a.get(2)), parse_i64(a.get(3))) else { return r.error(err::NOT_INT) };
    let key = a.get(1);
    let l = match write_list(ctx, key) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(None) => return r.ok(),
        Ok(Some(l)) => l,
    };
    let len = l.len();
    match range(start, stop, len) {
        None => l.drop(End::Left, len),
        Some((from, to)) => {
            l.drop(End::Right, len - 1 - to);
            l.drop(End::Left, from);
        }
    }
    ctx.notify(LIST, "ltrim", key);
    drop_if_empty(ctx, key);
    r.ok();
}

// --- LMPOP, BLPOP, BRPOP, BLMPOP --------------------------------------------------

/// What a pop of the *POP family takes and how it replies.
#[derive(Clone, Copy)]
struct PopSpec {
    end: End,
    /// LMPOP/BLMPOP: up to this many, replied as [key, [elements]];
    /// None: BLPOP/BRPOP, one element as [key, element].
    count: Option<usize>,
}

/// Parses the `LEFT|RIGHT [COUNT n]` tail of (B)LMPOP, whose numkeys is at
/// `at`; gives the spec and the range of key arguments.
fn mpop_args(a: &dyn ArgList, at: usize) -> Result<(PopSpec, std::ops::Range<usize>), &'static str> {
    let numkeys = positive(a.arg(at), "ERR numkeys should be greater than 0")?;
    let where_at = (at + 1).saturating_add(numkeys);
    if where_at >= a.argc() {
        return Err(err::SYNTAX);
    }
    let end = end_arg(a.arg(where_at)).ok_or(err::SYNTAX)?;
    let mut count = None;
    let mut i = where_at + 1;
    while i < a.argc() {
        if count.is_none() && a.arg(i).eq_ignore_ascii_case(b"count") && i + 1 < a.argc() {
            count = Some(positive(a.arg(i + 1), "ERR count should be greater than 0")?);
            i += 2;
        } else {
            return Err(err::SYNTAX);
        }
    }
    Ok((PopSpec { end, count: Some(count.unwrap_or(1)) }, at + 1..where_at))
}

/// The pop spec of a blocking pop command as sent (for its `ServeFn`).
fn blocking_pop_spec(a: &OwnedArgs) -> PopSpec {
    if a.is(0, "blmpop") {
        mpop_args(a, 2).expect("checked when it blocked").0
    } else {
        PopSpec { end: if a.is(0, "blpop") { End::Left } else { End::Right }, count: None }
    }
}

/// Pops from the non-empty list at `key` as `spec` says and writes the reply.
fn pop_reply(ctx: &mut Ctx, r: &mut Reply, key: &[u8], spec: PopSpec) {
    let Ok(Some(l)) = write_list(ctx, key) else { unreachable!("the caller found a list at the key") };
    r.array(2);
    r.bulk(key);
    match spec.count {
        None => {
            l.pop(spec.end, |v| r.bulk(v));
        }
        Some(n) => {
            let n = n.min(l.len());
            r.array(n);
            for _ in 0..n {
                l.pop(spec.end, |v| r.bulk(v));
            }
        }
    }
    ctx.notify(LIST, pop_event(spec.end), key);
    drop_if_empty(ctx, key);
}

/// What a key holds for a pop: nothing, a list, or another type (an error).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Found {
    List,
    WrongType,
}

/// The first of `keys` (in order) that exists, and what it holds.
fn first_existing<'k>(ctx: &mut Ctx, keys: impl Iterator<Item = &'k [u8]>) -> Option<(usize, Found)> {
    keys.enumerate().find_map(|(i, k)| match write_list(ctx, k) {
        Ok(None) => None,
        Ok(Some(_)) => Some((i, Found::List)),
        Err(()) => Some((i, Found::WrongType)),
    })
}

fn lmpop(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let (spec, keys) = match mpop_args(&a, 1) {
        Ok(x) => x,
        Err(e) => return r.error(e),
    };
    match first_existing(ctx, keys.clone().map(|i| a.get(i))) {
        None => r.null_array(),
        Some((_, Found::WrongType)) => r.error(err::WRONGTYPE),
        Some((i, Found::List)) => pop_reply(ctx, r, a.get(keys.start + i), spec),
    }
}

fn lmpop_span(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let (spec, keys) = match mpop_args(&a, 1) {
            Ok(x) => x,
            Err(e) => return s.reply().error(e),
        };
        pop_across(s, &a, keys, spec, None).await;
    })
}

/// The coordinator of LMPOP and the blocking pops: under one transaction,
/// finds the first key (in argument order) holding something, on whichever
/// core, and pops there; if there is none, registers `pending` on every core
/// involved (blocking forms) or replies null (LMPOP).
async fn pop_across(s: &mut Session, a: &OwnedArgs, keys: std::ops::Range<usize>, spec: PopSpec, pending: Option<Pending>) {
    let (db, proto) = (s.db, s.proto);
    let groups = group_keys(&s.core, keys.clone().map(|i| (i, a.get(i).to_vec())));
    let txn = Txn::lock(s, lock_sets(db, &groups, Mode::Exclusive)).await;
    let steps = groups
        .iter()
        .map(|(shard, ks)| {
            let ks = ks.clone();
            let f: crate::server::txn::Step<Option<(usize, Found)>> = Box::new(move |sh| {
                let found = first_existing(&mut Ctx::new(sh, db), ks.iter().map(|(_, k)| k.as_slice()));
                found.map(|(i, f)| (ks[i].0, f))
            });
            (*shard, f)
        })
        .collect();
    let found = txn.on_many(steps).await.into_iter().flatten().min_by_key(|(pos, _)| *pos);
    match found {
        Some((_, Found::WrongType)) => s.reply().error(err::WRONGTYPE),
        Some((pos, Found::List)) => {
            let key = a.get(pos).to_vec();
            let shard = s.core.slots.shard_of_key(&key);
            let out = txn
                .on(shard, move |sh| {
                    let mut out = Vec::new();
                    pop_reply(&mut Ctx::new(sh, db), &mut Reply::new(&mut out, proto), &key, spec);
                    out
                })
                .await;
            s.out.extend_from_slice(&out);
        }
        None => match pending {
            None => s.reply().null_array(),
            Some(p) => {
                let regs: Vec<(usize, Vec<Vec<u8>>)> = groups.into_iter().map(|(sh, ks)| (sh, ks.into_iter().map(|(_, k)| k).collect())).collect();
                p.register(&txn, db, &regs).await;
                txn.release().await;
                return p.block(s, regs);
            }
        },
    }
    txn.release().await;
}

/// `ServeFn` of BLPOP, BRPOP and BLMPOP.
fn serve_pop(ctx: &mut Ctx, key: &[u8], w: &Waiter) -> bool {
    if !matches!(write_list(ctx, key), Ok(Some(l)) if !l.is_empty()) {
        return false;
    }
    if w.claim() {
        let spec = blocking_pop_spec(&w.args);
        w.reply(|r| pop_reply(ctx, r, key, spec));
    }
    true
}

fn blocking_pop(s: &mut Session, a: OwnedArgs, spec: Option<PopSpec>) -> BoxFuture<'_> {
    Box::pin(async move {
        // BLMPOP timeout numkeys key... LEFT|RIGHT [COUNT n]; BLPOP key... timeout.
        let timeout_at = if spec.is_none() { 1 } else { a.len() - 1 };
        let timeout = a.get(timeout_at).to_vec();
        let pending = match blocking::prepare(s, &a, &timeout, serve_pop, false) {
            Ok(p) => p,
            Err(e) => return s.reply().error(e),
        };
        let (spec, keys) = match spec {
            Some(spec) => (spec, 1..a.len() - 1),
            None => match mpop_args(&a, 2) {
                Ok(x) => x,
                Err(e) => return s.reply().error(e),
            },
        };
        let pending = s.exec.is_none().then_some(pending);
        pop_across(s, &a, keys, spec, pending).await;
    })
}

fn blpop(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    blocking_pop(s, a, Some(PopSpec { end: End::Left, count: None }))
}

fn brpop(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    blocking_pop(s, a, Some(PopSpec { end: End::Right, count: None }))
}

fn blmpop(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    blocking_pop(s, a, None)
}

// --- LMOVE, RPOPLPUSH, BLMOVE, BRPOPLPUSH ---------------------------------------

/// Source and destination ends of LMOVE and friends, from the arguments
/// after the two keys (none for the RPOPLPUSH forms).
fn move_ends(a: &dyn ArgList) -> Result<(End, End), &'static str> {
    if a.arg(0).eq_ignore_ascii_case(b"rpoplpush") || a.arg(0).eq_ignore_ascii_case(b"brpoplpush") {
        return Ok((End::Right, End::Left));
    }
    Ok((end_arg(a.arg(3)).ok_or(err::SYNTAX)?, end_arg(a.arg(4)).ok_or(err::SYNTAX)?))
}

/// LMOVE with both keys on this shard. Returns false (having written
/// nothing) if the source has no list; otherwise the reply is written.
fn move_local(ctx: &mut Ctx, r: &mut Reply, src: &[u8], dst: &[u8], from: End, to: End) -> bool {
    match write_list(ctx, src) {
        Ok(None) => return false,
        Err(()) => {
            r.error(err::WRONGTYPE);
            return true;
        }
        Ok(Some(_)) => {}
    }
    if write_list(ctx, dst).is_err() {
        r.error(err::WRONGTYPE);
        return true;
    }
    let Ok(Some(l)) = write_list(ctx, src) else { unreachable!("checked above") };
    let v = l.pop(from, |v| v.to_vec()).expect("a stored list is never empty");
    // Redis' order: the push event, then the pop, then `del` if the source
    // is left empty (it is not when it is also the destination).
    push_elements(ctx, dst, to, std::iter::once(v.as_slice()), true).expect("checked above");
    ctx.notify(LIST, pop_event(from), src);
    drop_if_empty(ctx, src);
    r.bulk(&v);
    true
}

/// LMOVE and RPOPLPUSH on one shard.
fn lmove(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let (from, to) = match move_ends(&a) {
        Ok(x) => x,
        Err(e) => return r.error(e),
    };
    if !move_local(ctx, r, a.get(1), a.get(2), from, to) {
        r.null();
    }
}

/// LMOVE and RPOPLPUSH across cores.
fn lmove_span(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        match move_ends(&a) {
            Ok((from, to)) => move_across(s, &a, from, to, None).await,
            Err(e) => s.reply().error(e),
        }
    })
}

/// The coordinator of LMOVE and BLMOVE (either core layout): under one
/// transaction over both keys, pops on the source's core and pushes on the
/// destination's. With nothing to move, registers `pending` on the source
/// (blocking forms) or replies null.
async fn move_across(s: &mut Session, a: &OwnedArgs, from: End, to: End, pending: Option<Pending>) {
    let (db, proto) = (s.db, s.proto);
    let (src, dst) = (a.get(1).to_vec(), a.get(2).to_vec());
    let (src_shard, dst_shard) = (s.core.slots.shard_of_key(&src), s.core.slots.shard_of_key(&dst));
    let groups = group_keys(&s.core, [(1, src.clone()), (2, dst.clone())].into_iter());
    let txn = Txn::lock(s, lock_sets(db, &groups, Mode::Exclusive)).await;
    let mut out = Vec::new();
    let moved = if src_shard == dst_shard {
        let (src, dst) = (src.clone(), dst.clone());
        let (replied, reply) = txn
            .on(src_shard, move |sh| {
                let mut out = Vec::new();
                let replied = move_local(&mut Ctx::new(sh, db), &mut Reply::new(&mut out, proto), &src, &dst, from, to);
                (replied, out)
            })
            .await;
        out = reply;
        replied
    } else {
        let s2 = src.clone();
        let src_state = txn.on(src_shard, move |sh| first_existing(&mut Ctx::new(sh, db), std::iter::once(s2.as_slice()))).await;
        let d2 = dst.clone();
        match src_state {
            None => false,
            Some((_, Found::WrongType)) => {
                Reply::new(&mut out, proto).error(err::WRONGTYPE);
                true
            }
            Some((_, Found::List)) if txn.on(dst_shard, move |sh| write_list(&mut Ctx::new(sh, db), &d2).is_err()).await => {
                Reply::new(&mut out, proto).error(err::WRONGTYPE);
                true
            }
            Some((_, Found::List)) => {
                let s2 = src.clone();
                let v = txn
                    .on(src_shard, move |sh| {
                        let mut ctx = Ctx::new(sh, db);
                        let Ok(Some(l)) = write_list(&mut ctx, &s2) else { unreachable!("checked under the lock") };
                        let v = l.pop(from, |v| v.to_vec()).expect("a stored list is never empty");
                        ctx.notify(LIST, pop_event(from), &s2);
                        drop_if_empty(&mut ctx, &s2);
                        v
                    })
                    .await;
                Reply::new(&mut out, proto).bulk(&v);
                let d2 = dst.clone();
                txn.on(dst_shard, move |sh| push_elements(&mut Ctx::new(sh, db), &d2, to, std::iter::once(v.as_slice()), true).map(|_| ())).await.expect("checked under the lock");
                true
            }
        }
    };
    if moved {
        txn.release().await;
        return s.out.extend_from_slice(&out);
    }
    match pending {
        None => {
            txn.release().await;
            s.reply().null();
        }
        Some(p) => {
            let regs = vec![(src_shard, vec![src])];
            p.register(&txn, db, &regs).await;
            txn.release().await;
            p.block(s, regs);
        }
    }
}

/// `ServeFn` of BLMOVE and BRPOPLPUSH (`key` is the source).
fn serve_move(ctx: &mut Ctx, key: &[u8], w: &Waiter) -> bool {
    if !matches!(write_list(ctx, key), Ok(Some(l)) if !l.is_empty()) {
        return false;
    }
    if !w.claim() {
        return true;
    }
    if w.writes_elsewhere {
        w.wake(Wake::Retry);
        return true;
    }
    let (from, to) = move_ends(&w.args).expect("checked when it blocked");
    let dst = w.args.get(2);
    w.reply(|r| {
        move_local(ctx, r, key, dst, from, to);
    });
    true
}

/// BLMOVE and BRPOPLPUSH.
fn blmove(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let (from, to) = match move_ends(&a) {
            Ok(x) => x,
            Err(e) => return s.reply().error(e),
        };
        let timeout = a.get(a.len() - 1).to_vec();
        let elsewhere = s.core.slots.shard_of_key(a.get(1)) != s.core.slots.shard_of_key(a.get(2));
        let pending = match blocking::prepare(s, &a, &timeout, serve_move, elsewhere) {
            Ok(p) => p,
            Err(e) => return s.reply().error(e),
        };
        // Inside EXEC a blocking command does not block (as in Redis).
        let pending = s.exec.is_none().then_some(pending);
        move_across(s, &a, from, to, pending).await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_normalize_as_redis() {
        assert_eq!(range(0, -1, 3), Some((0, 2)));
        assert_eq!(range(-100, 100, 3), Some((0, 2)));
        assert_eq!(range(2, 1, 3), None);
        assert_eq!(range(3, 5, 3), None);
        assert_eq!(range(i64::MIN, i64::MAX, 3), Some((0, 2)));
        assert_eq!(range(0, i64::MIN, 3), None);
        assert_eq!(range(-1, -1, 0), None);
    }

    #[test]
    fn indexes_count_from_either_end() {
        assert_eq!(index(0, 3), Some(0));
        assert_eq!(index(-1, 3), Some(2));
        assert_eq!(index(-4, 3), None);
        assert_eq!(index(3, 3), None);
        assert_eq!(index(i64::MIN, 3), None);
    }
}
