//! Sorted set commands (Redis' t_zset.c). The type and its encodings are in
//! `types::zset`; this file parses arguments, picks ranks and replies.
//!
//! Every range command (ZRANGE and its older spellings, ZRANGESTORE, ZCOUNT,
//! ZREMRANGEBY*) resolves its range to ascending ranks first, with O(log n)
//! bound searches, then walks just the members it returns.

use super::{cmd, flags::*, numkeys_at, Args, ArgList, BoxFuture, Command, Ctx, OwnedArgs, Run};
use crate::resp::parser::parse_i64;
use crate::resp::{err, Reply};
use crate::server::blocking::{self, Pending};
use crate::server::session::Session;
use crate::shard::blocking::Waiter;
use crate::server::txn::{gather_span, group_keys, lock_sets, Txn};
use crate::shard::locks::Mode;
use crate::types::zset::{Item, Limits};
use crate::types::{Value, Zset};
use crate::util::{glob_match, parse_double};
use crate::shard::notify::{GENERIC, ZSET};

const G: &str = "sorted-set";

pub static COMMANDS: &[Command] = &[
    cmd("zadd", -4, WRITE | DENYOOM | FAST, (1, 1, 1), G, "1.2.0", "Add one or more members to a sorted set, or update its score if it already exists", Run::Shard(zadd)),
    cmd("zincrby", 4, WRITE | DENYOOM | FAST, (1, 1, 1), G, "1.2.0", "Increment the score of a member in a sorted set", Run::Shard(zincrby)),
    cmd("zrem", -3, WRITE | FAST, (1, 1, 1), G, "1.2.0", "Remove one or more members from a sorted set", Run::Shard(zrem)),
    cmd("zcard", 2, READONLY | FAST, (1, 1, 1), G, "1.2.0", "Get the number of members in a sorted set", Run::Shard(zcard)),
    cmd("zcount", 4, READONLY | FAST, (1, 1, 1), G, "2.0.0", "Count the members in a sorted set with scores within the given values", Run::Shard(zcount)),
    cmd("zlexcount", 4, READONLY | FAST, (1, 1, 1), G, "2.8.9", "Count the number of members in a sorted set between a given lexicographical range", Run::Shard(zlexcount)),
    cmd("zscore", 3, READONLY | FAST, (1, 1, 1), G, "1.2.0", "Get the score associated with the given member in a sorted set", Run::Shard(zscore)),
    cmd("zmscore", -3, READONLY | FAST, (1, 1, 1), G, "6.2.0", "Get the score associated with the given members in a sorted set", Run::Shard(zmscore)),
    cmd("zrank", 3, READONLY | FAST, (1, 1, 1), G, "2.0.0", "Determine the index of a member in a sorted set", Run::Shard(zrank)),
    cmd("zrevrank", 3, READONLY | FAST, (1, 1, 1), G, "2.0.0", "Determine the index of a member in a sorted set, with scores ordered from high to low", Run::Shard(zrevrank)),
    cmd("zrange", -4, READONLY, (1, 1, 1), G, "1.2.0", "Return a range of members in a sorted set", Run::Shard(zrange)),
    cmd("zrangestore", -5, WRITE | DENYOOM, (1, 2, 1), G, "6.2.0", "Store a range of members from sorted set into another key", Run::Span(zrangestore, gather_span)),
    cmd("zrevrange", -4, READONLY, (1, 1, 1), G, "1.2.0", "Return a range of members in a sorted set, by index, with scores ordered from high to low", Run::Shard(zrevrange)),
    cmd("zrangebyscore", -4, READONLY, (1, 1, 1), G, "1.0.5", "Return a range of members in a sorted set, by score", Run::Shard(zrangebyscore)),
    cmd("zrevrangebyscore", -4, READONLY, (1, 1, 1), G, "2.2.0", "Return a range of members in a sorted set, by score, with scores ordered from high to low", Run::Shard(zrevrangebyscore)),
    cmd("zrangebylex", -4, READONLY, (1, 1, 1), G, "2.8.9", "Return a range of members in a sorted set, by lexicographical range", Run::Shard(zrangebylex)),
    cmd("zrevrangebylex", -4, READONLY, (1, 1, 1), G, "2.8.9", "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings.", Run::Shard(zrevrangebylex)),
    cmd("zremrangebyrank", 4, WRITE, (1, 1, 1), G, "2.0.0", "Remove all members in a sorted set within the given indexes", Run::Shard(zremrangebyrank)),
    cmd("zremrangebyscore", 4, WRITE, (1, 1, 1), G, "1.2.0", "Remove all members in a sorted set within the given scores", Run::Shard(zremrangebyscore)),
    cmd("zremrangebylex", 4, WRITE, (1, 1, 1), G, "2.8.9", "Remove all members in a sorted set between the given lexicographical range", Run::Shard(zremrangebylex)),
    cmd("zpopmin", -2, WRITE | FAST, (1, 1, 1), G, "5.0.0", "Remove and return members with the lowest scores in a sorted set", Run::Shard(zpopmin)),
    cmd("zpopmax", -2, WRITE | FAST, (1, 1, 1), G, "5.0.0", "Remove and return members with the highest scores in a sorted set", Run::Shard(zpopmax)),
    cmd("zmpop", -4, WRITE, NOKEYS_MOVABLE, G, "7.0.0", "Remove and return members with scores in a sorted set", Run::Span(zmpop, zmpop_span)).with_keys(zmpop_keys),
    cmd("bzpopmin", -3, WRITE | NOSCRIPT | FAST | BLOCKING, (1, -2, 1), G, "5.0.0", "Remove and return the member with the lowest score from one or more sorted sets, or block until one is available", Run::Conn(bzpopmin)),
    cmd("bzpopmax", -3, WRITE | NOSCRIPT | FAST | BLOCKING, (1, -2, 1), G, "5.0.0", "Remove and return the member with the highest score from one or more sorted sets, or block until one is available", Run::Conn(bzpopmax)),
    cmd("bzmpop", -5, WRITE | BLOCKING, NOKEYS_MOVABLE, G, "7.0.0", "Remove and return members with scores in a sorted set or block until one is available", Run::Conn(bzmpop)).with_keys(|a| numkeys_at(a, 2, 0..0)),
    cmd("zrandmember", -2, READONLY, (1, 1, 1), G, "6.2.0", "Get one or multiple random elements from a sorted set", Run::Shard(zrandmember)),
    cmd("zunion", -3, READONLY, NOKEYS_MOVABLE, G, "6.2.0", "Add multiple sorted sets", Run::Span(zunion, gather_span)).with_keys(numkeys_1),
    cmd("zinter", -3, READONLY, NOKEYS_MOVABLE, G, "6.2.0", "Intersect multiple sorted sets", Run::Span(zinter, gather_span)).with_keys(numkeys_1),
    cmd("zdiff", -3, READONLY, NOKEYS_MOVABLE, G, "6.2.0", "Subtract multiple sorted sets", Run::Span(zdiff, gather_span)).with_keys(numkeys_1),
    cmd("zintercard", -3, READONLY, NOKEYS_MOVABLE, G, "7.0.0", "Intersect multiple sorted sets and return the cardinality of the result", Run::Span(zintercard, gather_span)).with_keys(numkeys_1),
    cmd("zunionstore", -4, WRITE | DENYOOM, (1, 1, 1), G, "2.0.0", "Add multiple sorted sets and store the resulting sorted set in a new key", Run::Span(zunionstore, gather_span)).with_keys(numkeys_2),
    cmd("zinterstore", -4, WRITE | DENYOOM, (1, 1, 1), G, "2.0.0", "Intersect multiple sorted sets and store the resulting sorted set in a new key", Run::Span(zinterstore, gather_span)).with_keys(numkeys_2),
    cmd("zdiffstore", -4, WRITE | DENYOOM, (1, 1, 1), G, "6.2.0", "Subtract multiple sorted sets and store the resulting sorted set in a new key", Run::Span(zdiffstore, gather_span)).with_keys(numkeys_2),
    cmd("zscan", -3, READONLY, (1, 1, 1), G, "2.8.0", "Incrementally iterate sorted sets elements and associated scores", Run::Shard(zscan)),
];

/// The legacy key triple of a command whose keys are all movable.
const NOKEYS_MOVABLE: (i32, i32, i32) = (0, 0, 0);

fn numkeys_1(a: &dyn ArgList) -> [std::ops::Range<usize>; 2] {
    numkeys_at(a, 1, 0..0)
}

/// A destination, then numkeys sources.
fn numkeys_2(a: &dyn ArgList) -> [std::ops::Range<usize>; 2] {
    numkeys_at(a, 2, 1..2)
}

fn zmpop_keys(a: &dyn ArgList) -> [std::ops::Range<usize>; 2] {
    numkeys_at(a, 1, 0..0)
}

const NAN_SCORE: &str = "ERR resulting score is not a number (NaN)";
const BAD_RANGE: &str = "ERR min or max is not a float";
const BAD_LEX_RANGE: &str = "ERR min or max not valid string range item";
const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";

/// The sorted set at `key` for reading: Ok(None) if missing, Err if another type.
pub(super) fn read_zset<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a Zset>, ()> {
    match ctx.read(key) {
        None => Ok(None),
        Some(e) => e.value.as_zset().map(Some).ok_or(()),
    }
}

/// The sorted set at `key` for writing: Ok(None) if missing, Err if another type.
fn write_zset<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a mut Zset>, ()> {
    match ctx.write(key) {
        None => Ok(None),
        Some(e) => e.value.as_zset_mut().map(Some).ok_or(()),
    }
}

/// Deletes `key` if a command emptied its set.
fn delete_if_empty(ctx: &mut Ctx, key: &[u8]) {
    if read_zset_len(ctx, key) == Some(0) {
        ctx.db().remove(key);
        ctx.notify(GENERIC, "del", key);
    }
}

fn read_zset_len(ctx: &mut Ctx, key: &[u8]) -> Option<usize> {
    ctx.write(key)?.value.as_zset().map(Zset::len)
}

/// Stores a freshly built set at `dst` (replacing whatever was there) in the
/// encoding Redis would give it, or deletes `dst` if the set is empty;
/// raises `event` (or `del`) as `Ctx::store`. Returns the set's size.
pub(super) fn store_zset(ctx: &mut Ctx, dst: &[u8], mut z: Zset, event: &str) -> usize {
    let n = z.len();
    z.shrink_if_fits(Limits::from_config());
    ctx.store(dst, (n > 0).then(|| Value::Zset(Box::new(z))), ZSET, event);
    n
}

/// A member and its score in a reply: in RESP3 a [member, score] pair, in
/// RESP2 two bulk strings.
fn reply_pair(r: &mut Reply, member: &[u8], score: f64) {
    if r.is_resp3() {
        r.array(2);
    }
    r.bulk(member);
    r.double(score);
}

/// The array header of `n` members, with their scores or not.
fn members_header(r: &mut Reply, n: usize, withscores: bool) {
    r.array(if withscores && !r.is_resp3() { 2 * n } else { n });
}

fn reply_member(r: &mut Reply, member: &[u8], score: f64, withscores: bool) {
    if withscores {
        reply_pair(r, member, score);
    } else {
        r.bulk(member);
    }
}

// --- ZADD / ZINCRBY

#[derive(Default)]
pub(super) struct AddFlags {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
    pub ch: bool,
    pub incr: bool,
}

/// What adding one member did.
enum Added {
    New(f64),
    Updated(f64),
    Same(f64),
    /// NX/XX/GT/LT kept it from changing.
    Skipped,
}

/// Redis' zsetAdd: applies one score (an increment with INCR) under the flags.
fn add_one(z: &mut Zset, member: &[u8], score: f64, f: &AddFlags, limits: Limits) -> Result<Added, &'static str> {
    match z.score(member) {
        Some(cur) => {
            if f.nx {
                return Ok(Added::Skipped);
            }
            let new = if f.incr { cur + score } else { score };
            if new.is_nan() {
                return Err(NAN_SCORE);
            }
            if (f.lt && new >= cur) || (f.gt && new <= cur) {
                return Ok(Added::Skipped);
            }
            if new == cur {
                return Ok(Added::Same(new));
            }
            z.set(member, new, limits);
            Ok(Added::Updated(new))
        }
        None if f.xx => Ok(Added::Skipped),
        None => {
            z.set(member, score, limits);
            Ok(Added::New(score))
        }
    }
}

fn zadd(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let mut f = AddFlags::default();
    let mut i = 2;
    while i < a.len() {
        let flag = a.get(i);
        let slot = match flag.to_ascii_uppercase().as_slice() {
            b"NX" => &mut f.nx,
            b"XX" => &mut f.xx,
            b"GT" => &mut f.gt,
            b"LT" => &mut f.lt,
            b"CH" => &mut f.ch,
            b"INCR" => &mut f.incr,
            _ => break,
        };
        *slot = true;
        i += 1;
    }
    let elements = a.len() - i;
    if elements == 0 || elements % 2 != 0 {
        return r.error(err::SYNTAX);
    }
    if f.nx && f.xx {
        return r.error("ERR XX and NX options at the same time are not compatible");
    }
    if (f.gt && f.nx) || (f.lt && f.nx) || (f.gt && f.lt) {
        return r.error("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if f.incr && elements > 2 {
        return r.error("ERR INCR option supports a single increment-element pair");
    }
    let mut max_member = 0;
    for j in (i..a.len()).step_by(2) {
        if parse_double(a.get(j)).is_none() {
            return r.error(err::NOT_FLOAT);
        }
        max_member = max_member.max(a.get(j + 1).len());
    }
    let pairs = (i..a.len()).step_by(2).map(|j| (parse_double(a.get(j)).unwrap_or_default(), a.get(j + 1)));
    add_pairs(ctx, r, a.get(1), pairs, elements / 2, max_member, &f);
}

fn zincrby(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let Some(by) = parse_double(a.get(2)) else { return r.error(err::NOT_FLOAT) };
    let f = AddFlags { incr: true, ..Default::default() };
    add_pairs(ctx, r, a.get(1), std::iter::once((by, a.get(3))), 1, a.get(3).len(), &f);
}

/// ZADD's body once its arguments are valid: `n` (score, member) pairs,
/// whose longest member has `max_member` bytes. GEOADD ends here too.
pub(super) fn add_pairs<'a>(
    ctx: &mut Ctx,
    r: &mut Reply,
    key: &[u8],
    pairs: impl Iterator<Item = (f64, &'a [u8])>,
    n: usize,
    max_member: usize,
    f: &AddFlags,
) {
    let limits = Limits::from_config();
    // A new set is filled before it is inserted: one key lookup, as for SET.
    let mut fresh = None;
    let z = match write_zset(ctx, key) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(None) if f.xx => return if f.incr { r.null() } else { r.int(0) },
        Ok(None) => fresh.insert(Zset::with_hint(n, max_member, limits)),
        Ok(Some(z)) => z,
    };
    let (mut added, mut changed, mut last) = (0, 0, None);
    for (score, member) in pairs {
        match add_one(z, member, score, f, limits) {
            // Only an existing member's score can turn NaN.
            Err(e) => return r.error(e),
            Ok(Added::New(s)) => (added, last) = (added + 1, Some(s)),
            Ok(Added::Updated(s)) => (changed, last) = (changed + 1, Some(s)),
            Ok(Added::Same(s)) => last = Some(s),
            Ok(Added::Skipped) => {}
        }
    }
    if let Some(z) = fresh {
        ctx.db().insert(key, Value::Zset(Box::new(z)), 0);
    }
    if added + changed > 0 {
        ctx.notify(ZSET, if f.incr { "zincr" } else { "zadd" }, key);
    }
    if f.incr {
        match last {
            Some(s) => r.double(s),
            None => r.null(),
        }
    } else {
        r.int(if f.ch { added + changed } else { added });
    }
}

// --- Single-member commands

fn zrem(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let key = a.get(1);
    let removed = match write_zset(ctx, key) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(None) => 0,
        Ok(Some(z)) => a.iter().skip(2).filter(|m| z.remove(m).is_some()).count(),
    };
    if removed > 0 {
        ctx.notify(ZSET, "zrem", key);
    }
    delete_if_empty(ctx, key);
    r.int(removed as i64);
}

fn zcard(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    match read_zset(ctx, a.get(1)) {
        Err(()) => r.error(err::WRONGTYPE),
        Ok(z) => r.int(z.map_or(0, Zset::len) as i64),
    }
}

fn zscore(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    match read_zset(ctx, a.get(1)) {
        Err(()) => r.error(err::WRONGTYPE),
        Ok(z) => match z.and_then(|z| z.score(a.get(2))) {
            Some(s) => r.double(s),
            None => r.null(),
        },
    }
}

fn zmscore(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    match read_zset(ctx, a.get(1)) {
        Err(()) => r.error(err::WRONGTYPE),
        Ok(z) => {
            r.array(a.len() - 2);
            for m in a.iter().skip(2) {
                match z.and_then(|z| z.score(m)) {
                    Some(s) => r.double(s),
                    None => r.null(),
                }
            }
        }
    }
}

fn rank_generic(ctx: &mut Ctx, r: &mut Reply, a: Args, rev: bool) {
    match read_zset(ctx, a.get(1)) {
        Err(()) => r.error(err::WRONGTYPE),
        Ok(z) => match z.and_then(|z| Some((z.rank(a.get(2))?, z.len()))) {
            Some((rank, len)) => r.int(if rev { len - 1 - rank } else { rank } as i64),
            None => r.null(),
        },
    }
}

fn zrank(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    rank_generic(ctx, r, a, false)
}

fn zrevrank(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    rank_generic(ctx, r, a, true)
}

// --- Ranges

/// A score bound as Redis' zslParseRange reads it: strtod, so leading
/// spaces, an empty string (0) and out-of-range numbers (±inf) are taken;
/// NaN and trailing garbage are not. `(` makes it exclusive.
fn parse_score_bound(b: &[u8]) -> Option<(f64, bool)> {
    let (exclusive, b) = match b.strip_prefix(b"(") {
        Some(rest) => (true, rest),
        None => (false, b),
    };
    let b = &b[b.iter().position(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')).unwrap_or(b.len())..];
    let v = if b.is_empty() { 0.0 } else { crate::util::parse_f64(b)? };
    Some((v, exclusive))
}

#[derive(Clone, Copy)]
struct ScoreRange {
    min: f64,
    max: f64,
    minex: bool,
    maxex: bool,
}

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
        let (min, minex) = parse_score_bound(min)?;
        let (max, maxex) = parse_score_bound(max)?;
        Some(ScoreRange { min, max, minex, maxex })
    }

    /// Ascending ranks [start, end) of the members within the range.
    fn ranks(&self, z: &Zset) -> (usize, usize) {
        let start = z.count_while(|s, _| if self.minex { s <= self.min } else { s < self.min });
        let end = z.count_while(|s, _| if self.maxex { s < self.max } else { s <= self.max });
        (start, end.max(start))
    }
}

#[derive(Clone, Copy)]
enum LexBound<'a> {
    NegInf,
    PosInf,
    Incl(&'a [u8]),
    Excl(&'a [u8]),
}

impl<'a> LexBound<'a> {
    fn parse(b: &'a [u8]) -> Option<LexBound<'a>> {
        match b.first() {
            Some(b'+') if b.len() == 1 => Some(LexBound::PosInf),
            Some(b'-') if b.len() == 1 => Some(LexBound::NegInf),
            Some(b'[') => Some(LexBound::Incl(&b[1..])),
            Some(b'(') => Some(LexBound::Excl(&b[1..])),
            _ => None,
        }
    }

    /// Whether `m` sorts before this bound taken as a range's start.
    fn before_min(&self, m: &[u8]) -> bool {
        match *self {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Incl(b) => m < b,
            LexBound::Excl(b) => m <= b,
        }
    }

    /// Whether `m` is not past this bound taken as a range's end.
    fn within_max(&self, m: &[u8]) -> bool {
        match *self {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Incl(b) => m <= b,
            LexBound::Excl(b) => m < b,
        }
    }
}

#[derive(Clone, Copy)]
struct LexRange<'a> {
    min: LexBound<'a>,
    max: LexBound<'a>,
}

impl<'a> LexRange<'a> {
    fn parse(min: &'a [u8], max: &'a [u8]) -> Option<LexRange<'a>> {
        Some(LexRange { min: LexBound::parse(min)?, max: LexBound::parse(max)? })
    }

    /// Ascending ranks [start, end) of the members within the range
    /// (meaningful when all scores are equal, as in Redis).
    fn ranks(&self, z: &Zset) -> (usize, usize) {
        let start = z.count_while(|_, m| self.min.before_min(m));
        let end = z.count_while(|_, m| self.max.within_max(m));
        (start, end.max(start))
    }
}

/// Redis' rank sanitizing (negative from the end, clamped): the inclusive
/// ascending ranks, or None for an empty range.
fn rank_span(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { start.saturating_add(len).max(0) } else { start };
    let end = if end < 0 { end.saturating_add(len) } else { end };
    if start > end || start >= len {
        return None;
    }
    Some((start as usize, end.min(len - 1) as usize))
}

#[derive(Clone, Copy, PartialEq)]
enum RangeKind {
    Rank,
    Score,
    Lex,
}

/// What a ZRANGE-like command selected: `count` members from ascending rank
/// `first`, walking down if `rev`.
struct Picked {
    first: usize,
    count: usize,
    rev: bool,
}

/// Applies direction and LIMIT to the ascending ranks [lo, hi) of a score or
/// lex range. A negative offset selects nothing, a negative count everything
/// after the offset, as in Redis.
fn pick(lo: usize, hi: usize, rev: bool, offset: i64, limit: i64) -> Picked {
    let n = hi - lo;
    if offset < 0 || offset as u64 >= n as u64 {
        return Picked { first: lo, count: 0, rev };
    }
    let left = n - offset as usize;
    let count = if limit < 0 { left } else { left.min(limit as usize) };
    let first = if rev { hi - 1 - offset as usize } else { lo + offset as usize };
    Picked { first, count, rev }
}

/// The selection of a ZRANGE-like command over `z`, or an error to reply.
fn select(z: &Zset, kind: RangeKind, min: &[u8], max: &[u8], rev: bool, limit: (i64, i64)) -> Picked {
    match kind {
        RangeKind::Rank => {
            let (start, end) = (parse_i64(min).unwrap_or(0), parse_i64(max).unwrap_or(0));
            match rank_span(start, end, z.len()) {
                None => Picked { first: 0, count: 0, rev },
                Some((s, e)) if rev => Picked { first: z.len() - 1 - s, count: e - s + 1, rev },
                Some((s, e)) => Picked { first: s, count: e - s + 1, rev },
            }
        }
        RangeKind::Score => {
            let range = ScoreRange::parse(min, max).expect("validated");
            let (lo, hi) = range.ranks(z);
            pick(lo, hi, rev, limit.0, limit.1)
        }
        RangeKind::Lex => {
            let range = LexRange::parse(min, max).expect("validated");
            let (lo, hi) = range.ranks(z);
            pick(lo, hi, rev, limit.0, limit.1)
        }
    }
}

/// Visits the picked members in reply order.
fn walk_picked(z: &Zset, p: &Picked, mut f: impl FnMut(&[u8], f64)) {
    if p.count == 0 {
        return;
    }
    let mut left = p.count;
    z.walk(p.first, p.rev, |m, s| {
        f(m, s);
        left -= 1;
        left > 0
    });
}

/// Redis' zrangeGenericCommand. `fixed` is the kind and direction of the
/// older commands (ZRANGEBYSCORE, ZREVRANGE, ...), whose options are fewer;
/// `store` is ZRANGESTORE's destination (then the source is at 2).
fn zrange_generic(ctx: &mut Ctx, r: &mut Reply, a: Args, fixed: Option<(RangeKind, bool)>, store: bool) {
    let base = if store { 2 } else { 1 };
    let (key, mut min, mut max) = (a.get(base), a.get(base + 1), a.get(base + 2));
    let (mut kind, mut rev) = (fixed.map(|f| f.0), fixed.map(|f| f.1));
    let (mut withscores, mut limit) = (false, None);
    let mut j = base + 3;
    while j < a.len() {
        let left = a.len() - j - 1;
        if !store && a.is(j, "withscores") {
            withscores = true;
        } else if a.is(j, "limit") && left >= 2 {
            let (Some(offset), Some(count)) = (parse_i64(a.get(j + 1)), parse_i64(a.get(j + 2))) else {
                return r.error(err::NOT_INT);
            };
            limit = Some((offset, count));
            j += 2;
        } else if rev.is_none() && a.is(j, "rev") {
            rev = Some(true);
        } else if kind.is_none() && a.is(j, "bylex") {
            kind = Some(RangeKind::Lex);
        } else if kind.is_none() && a.is(j, "byscore") {
            kind = Some(RangeKind::Score);
        } else {
            return r.error(err::SYNTAX);
        }
        j += 1;
    }
    let (kind, rev) = (kind.unwrap_or(RangeKind::Rank), rev.unwrap_or(false));
    if limit.is_some() && kind == RangeKind::Rank {
        return r.error("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
    }
    if withscores && kind == RangeKind::Lex {
        return r.error("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    }
    if rev && kind != RangeKind::Rank {
        // Given as [max, min].
        std::mem::swap(&mut min, &mut max);
    }
    let valid = match kind {
        RangeKind::Rank => parse_i64(min).is_some() && parse_i64(max).is_some(),
        RangeKind::Score => ScoreRange::parse(min, max).is_some(),
        RangeKind::Lex => LexRange::parse(min, max).is_some(),
    };
    if !valid {
        return r.error(match kind {
            RangeKind::Rank => err::NOT_INT,
            RangeKind::Score => BAD_RANGE,
            RangeKind::Lex => BAD_LEX_RANGE,
        });
    }
    let limit = limit.unwrap_or((0, -1));
    let z = match read_zset(ctx, key) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(z) => z,
    };
    if store {
        let mut out = Vec::new();
        if let Some(z) = z {
            let p = select(z, kind, min, max, rev, limit);
            out.reserve(p.count);
            walk_picked(z, &p, |m, s| out.push(Item { score: s, member: m.into() }));
        }
        let mut dst = Zset::new_large();
        for i in out {
            dst.set(&i.member, i.score, Limits::from_config());
        }
        let n = store_zset(ctx, a.get(1), dst, "zrangestore");
        return r.int(n as i64);
    }
    let Some(z) = z else { return r.array(0) };
    let p = select(z, kind, min, max, rev, limit);
    members_header(r, p.count, withscores);
    walk_picked(z, &p, |m, s| reply_member(r, m, s, withscores));
}

fn zrange(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    zrange_generic(ctx, r, a, None, false)
}

fn zrangestore(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    zrange_generic(ctx, r, a, None, true)
}

fn zrevrange(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    zrange_generic(ctx, r, a, Some((RangeKind::Rank, true)), false)
}

fn zrangebyscore(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    zrange_generic(ctx, r, a, Some((RangeKind::Score, false)), false)
}

fn zrevrangebyscore(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    zrange_generic(ctx, r, a, Some((RangeKind::Score, true)), false)
}

fn zrangebylex(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    zrange_generic(ctx, r, a, Some((RangeKind::Lex, false)), false)
}

fn zrevrangebylex(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    zrange_generic(ctx, r, a, Some((RangeKind::Lex, true)), false)
}

fn zcount(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let Some(range) = ScoreRange::parse(a.get(2), a.get(3)) else { return r.error(BAD_RANGE) };
    match read_zset(ctx, a.get(1)) {
        Err(()) => r.error(err::WRONGTYPE),
        Ok(z) => r.int(z.map_or(0, |z| {
            let (lo, hi) = range.ranks(z);
            hi - lo
        }) as i64),
    }
}

fn zlexcount(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let Some(range) = LexRange::parse(a.get(2), a.get(3)) else { return r.error(BAD_LEX_RANGE) };
    match read_zset(ctx, a.get(1)) {
        Err(()) => r.error(err::WRONGTYPE),
        Ok(z) => r.int(z.map_or(0, |z| {
            let (lo, hi) = range.ranks(z);
            hi - lo
        }) as i64),
    }
}

/// ZREMRANGEBY*: `span` turns the set into the ascending ranks [lo, hi) to remove.
fn remrange(ctx: &mut Ctx, r: &mut Reply, key: &[u8], event: &str, span: impl Fn(&Zset) -> (usize, usize)) {
    let removed = match write_zset(ctx, key) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(None) => 0,
        Ok(Some(z)) => {
            let (lo, hi) = span(z);
            if lo < hi {
                z.remove_ranks(lo, hi)
            } else {
                0
            }
        }
    };
    if removed > 0 {
        ctx.notify(ZSET, event, key);
    }
    delete_if_empty(ctx, key);
    r.int(removed as i64);
}

fn zremrangebyrank(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let (Some(start), Some(end)) = (parse_i64(a.get(2)), parse_i64(a.get(3))) else { return r.error(err::NOT_INT) };
    remrange(ctx, r, a.get(1), "zremrangebyrank", |z| rank_span(start, end, z.len()).map_or((0, 0), |(s, e)| (s, e + 1)))
}

fn zremrangebyscore(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let Some(range) = ScoreRange::parse(a.get(2), a.get(3)) else { return r.error(BAD_RANGE) };
    remrange(ctx, r, a.get(1), if a.is(0, "zremrangebyscore") { "zremrangebyscore" } else { "zremrangebylex" }, |z| range.ranks(z))
}

fn zremrangebylex(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let Some(range) = LexRange::parse(a.get(2), a.get(3)) else { return r.error(BAD_LEX_RANGE) };
    remrange(ctx, r, a.get(1), if a.is(0, "zremrangebyscore") { "zremrangebyscore" } else { "zremrangebylex" }, |z| range.ranks(z))
}

// --- Pops

/// Pops up to `count` members from the low (or `max`: high) end of the set
/// at `key`; deletes the key if it empties. One event per call, as Redis.
fn pop_members(ctx: &mut Ctx, key: &[u8], count: usize, max: bool) -> Result<Vec<(Box<[u8]>, f64)>, ()> {
    let popped: Vec<_> = match write_zset(ctx, key)? {
        None => return Ok(Vec::new()),
        Some(z) => (0..count.min(z.len())).filter_map(|_| z.pop(max)).collect(),
    };
    if !popped.is_empty() {
        ctx.notify(ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
    }
    delete_if_empty(ctx, key);
    Ok(popped)
}

fn pop_generic(ctx: &mut Ctx, r: &mut Reply, a: Args, max: bool) {
    if a.len() > 3 {
        return r.error(err::SYNTAX);
    }
    let count = match a.len() {
        3 => match parse_i64(a.get(2)) {
            Some(c) if c >= 0 => Some(c as usize),
            _ => return r.error(NOT_POSITIVE),
        },
        _ => None,
    };
    let popped = match pop_members(ctx, a.get(1), count.unwrap_or(1), max) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(p) => p,
    };
    // Without COUNT the reply is one flat pair, in RESP3 too.
    if count.is_none() {
        r.array(2 * popped.len());
        for (m, s) in &popped {
            r.bulk(m);
            r.double(*s);
        }
        return;
    }
    members_header(r, popped.len(), true);
    for (m, s) in &popped {
        reply_pair(r, m, *s);
    }
}

fn zpopmin(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    pop_generic(ctx, r, a, false)
}

fn zpopmax(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    pop_generic(ctx, r, a, true)
}

/// What a pop of the ZMPOP family takes and how it replies.
#[derive(Clone, Copy)]
struct PopSpec {
    /// Pop the highest scores.
    max: bool,
    /// ZMPOP/BZMPOP: up to this many, replied as [key, [[member, score]...]];
    /// None: BZPOPMIN/BZPOPMAX, one member replied as [key, member, score].
    count: Option<usize>,
}

/// Parses `numkeys key... MIN|MAX [COUNT n]` of (B)ZMPOP, numkeys at `at`;
/// gives the spec and the positions of the keys.
fn zmpop_opts(a: &dyn ArgList, at: usize) -> Result<(PopSpec, std::ops::Range<usize>), &'static str> {
    let numkeys = match parse_i64(a.arg(at)) {
        Some(n) if n > 0 => n as usize,
        _ => return Err("ERR numkeys should be greater than 0"),
    };
    let first_opt = (at + 1).saturating_add(numkeys);
    if first_opt >= a.argc() {
        return Err(err::SYNTAX);
    }
    let where_ = a.arg(first_opt);
    let max = if where_.eq_ignore_ascii_case(b"min") {
        false
    } else if where_.eq_ignore_ascii_case(b"max") {
        true
    } else {
        return Err(err::SYNTAX);
    };
    let mut count = None;
    let mut j = first_opt + 1;
    while j < a.argc() {
        if count.is_none() && a.arg(j).eq_ignore_ascii_case(b"count") && j + 1 < a.argc() {
            match parse_i64(a.arg(j + 1)) {
                Some(c) if c > 0 => count = Some(c as usize),
                _ => return Err("ERR count should be greater than 0"),
            }
            j += 2;
        } else {
            return Err(err::SYNTAX);
        }
    }
    Ok((PopSpec { max, count: Some(count.unwrap_or(1)) }, at + 1..first_opt))
}

/// The reply of a pop that took `popped` (not empty) from `key`.
fn zpop_reply(r: &mut Reply, key: &[u8], popped: &[(Box<[u8]>, f64)], spec: PopSpec) {
    if spec.count.is_none() {
        let (m, score) = &popped[0];
        r.array(3);
        r.bulk(key);
        r.bulk(m);
        return r.double(*score);
    }
    r.array(2);
    r.bulk(key);
    r.array(popped.len());
    for (m, score) in popped {
        r.array(2);
        r.bulk(m);
        r.double(*score);
    }
}

/// ZMPOP with every key on this shard: pops from the first nonempty set.
fn zmpop(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let (spec, keys) = match zmpop_opts(&a, 1) {
        Ok(o) => o,
        Err(e) => return r.error(e),
    };
    for i in keys {
        match pop_members(ctx, a.get(i), spec.count.unwrap_or(1), spec.max) {
            Err(()) => return r.error(err::WRONGTYPE),
            Ok(p) if p.is_empty() => continue,
            Ok(p) => return zpop_reply(r, a.get(i), &p, spec),
        }
    }
    r.null_array()
}

fn zmpop_span(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let (spec, keys) = match zmpop_opts(&a, 1) {
            Ok(o) => o,
            Err(e) => return s.reply().error(e),
        };
        pop_across(s, &a, keys, spec, None).await;
    })
}

/// The coordinator of ZMPOP and the blocking pops: locks every key, then
/// tries the keys in order, each on its own shard, until one pops (the key
/// written is whichever is first nonempty, so `gather_span` does not fit).
/// With nothing anywhere, registers `pending` on every shard involved
/// (blocking forms) or replies null.
async fn pop_across(s: &mut Session, a: &OwnedArgs, keys: std::ops::Range<usize>, spec: PopSpec, pending: Option<Pending>) {
    let db = s.db;
    let groups = group_keys(&s.core, keys.clone().map(|i| (i, a.get(i).to_vec())));
    let txn = Txn::lock(s, lock_sets(db, &groups, Mode::Exclusive)).await;
    let mut result = Ok(None);
    for i in keys {
        let key = a.get(i).to_vec();
        let shard = s.core.slots.shard_of_key(&key);
        let k = key.clone();
        match txn.on(shard, move |sh| pop_members(&mut Ctx::new(sh, db), &k, spec.count.unwrap_or(1), spec.max)).await {
            Err(()) => result = Err(()),
            Ok(p) if p.is_empty() => continue,
            Ok(p) => result = Ok(Some((key, p))),
        }
        break;
    }
    if let (Ok(None), Some(p)) = (&result, pending) {
        let regs: Vec<(usize, Vec<Vec<u8>>)> = groups.into_iter().map(|(sh, ks)| (sh, ks.into_iter().map(|(_, k)| k).collect())).collect();
        p.register(&txn, db, &regs).await;
        txn.release().await;
        return p.block(s, regs);
    }
    txn.release().await;
    let mut r = s.reply();
    match result {
        Err(()) => r.error(err::WRONGTYPE),
        Ok(None) => r.null_array(),
        Ok(Some((key, p))) => zpop_reply(&mut r, &key, &p, spec),
    }
}

/// The pop spec of a blocking pop as sent (for its `ServeFn`).
fn blocking_pop_spec(a: &OwnedArgs) -> PopSpec {
    if a.is(0, "bzmpop") {
        zmpop_opts(a, 2).expect("checked when it blocked").0
    } else {
        PopSpec { max: a.is(0, "bzpopmax"), count: None }
    }
}

/// `ServeFn` of BZPOPMIN, BZPOPMAX and BZMPOP: a sorted set appeared.
fn serve_pop(ctx: &mut Ctx, key: &[u8], w: &Waiter) -> bool {
    if !matches!(read_zset_len(ctx, key), Some(n) if n > 0) {
        return false;
    }
    if w.claim() {
        let spec = blocking_pop_spec(&w.args);
        let popped = pop_members(ctx, key, spec.count.unwrap_or(1), spec.max).expect("checked: a sorted set");
        w.reply(|r| zpop_reply(r, key, &popped, spec));
    }
    true
}

/// BZPOPMIN/BZPOPMAX (`spec` given: keys then timeout) and BZMPOP (timeout
/// numkeys key... MIN|MAX [COUNT n]). Inside MULTI they do not block.
fn blocking_pop(s: &mut Session, a: OwnedArgs, spec: Option<PopSpec>) -> BoxFuture<'_> {
    Box::pin(async move {
        let timeout_at = if spec.is_some() { a.len() - 1 } else { 1 };
        let timeout = a.get(timeout_at).to_vec();
        let pending = match blocking::prepare(s, &a, &timeout, serve_pop, false) {
            Ok(p) => p,
            Err(e) => return s.reply().error(e),
        };
        let (spec, keys) = match spec {
            Some(spec) => (spec, 1..a.len() - 1),
            None => match zmpop_opts(&a, 2) {
                Ok(x) => x,
                Err(e) => return s.reply().error(e),
            },
        };
        let pending = s.exec.is_none().then_some(pending);
        pop_across(s, &a, keys, spec, pending).await;
    })
}

fn bzpopmin(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    blocking_pop(s, a, Some(PopSpec { max: false, count: None }))
}

fn bzpopmax(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    blocking_pop(s, a, Some(PopSpec { max: true, count: None }))
}

fn bzmpop(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    blocking_pop(s, a, None)
}

// --- ZRANDMEMBER

fn zrandmember(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let key = a.get(1);
    if a.len() == 2 {
        let len = match read_zset(ctx, key) {
            Err(()) => return r.error(err::WRONGTYPE),
            Ok(None) => return r.null(),
            Ok(Some(z)) => z.len(),
        };
        let rank = (ctx.shard.rand() % len as u64) as usize;
        let Ok(Some(z)) = read_zset(ctx, key) else { unreachable!("read above") };
        return r.bulk(z.at(rank).0);
    }
    let Some(count) = parse_i64(a.get(2)) else { return r.error(err::NOT_INT) };
    if count == i64::MIN {
        return r.error("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807");
    }
    let withscores = match a.len() {
        3 => false,
        4 if a.is(3, "withscores") => true,
        _ => return r.error(err::SYNTAX),
    };
    if withscores && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
        return r.error("ERR value is out of range");
    }
    // The shard's generator seeds a local one, so the set can stay borrowed.
    let mut rng = Xorshift(ctx.shard.rand() | 1);
    let z = match read_zset(ctx, key) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(None) => return r.array(0),
        Ok(Some(z)) => z,
    };
    let len = z.len();
    if count < 0 {
        // With repetitions: streamed, however many are asked for.
        members_header(r, count.unsigned_abs() as usize, withscores);
        for _ in 0..count.unsigned_abs() {
            let (m, s) = z.at((rng.next() % len as u64) as usize);
            reply_member(r, m, s, withscores);
        }
        return;
    }
    let ranks: Vec<usize> = if count as u64 >= len as u64 {
        // The whole set, from the top, as Redis returns it.
        (0..len).rev().collect()
    } else {
        // A partial Fisher-Yates shuffle: `count` distinct ranks.
        let count = count as usize;
        let mut all: Vec<usize> = (0..len).collect();
        for i in 0..count {
            let j = i + (rng.next() % (len - i) as u64) as usize;
            all.swap(i, j);
        }
        all.truncate(count);
        all
    };
    members_header(r, ranks.len(), withscores);
    for rank in ranks {
        let (m, s) = z.at(rank);
        reply_member(r, m, s, withscores);
    }
}

/// A small generator for ZRANDMEMBER's draws (xorshift64).
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

// --- ZUNION / ZINTER / ZDIFF and their STORE forms

#[derive(Clone, Copy, PartialEq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

fn aggregate(acc: &mut f64, v: f64, how: Aggregate) {
    match how {
        Aggregate::Sum => {
            *acc += v;
            // inf + -inf: Redis makes it 0 rather than store a NaN.
            if acc.is_nan() {
                *acc = 0.0;
            }
        }
        Aggregate::Min => *acc = if v < *acc { v } else { *acc },
        Aggregate::Max => *acc = if v > *acc { v } else { *acc },
    }
}

/// Redis' zunionInterDiffGenericCommand. `dst`: the destination of a STORE
/// form; `at`: the position of numkeys; `card_only`: ZINTERCARD.
fn set_op(ctx: &mut Ctx, r: &mut Reply, a: Args, op: SetOp, store: bool, card_only: bool) {
    let at = if store { 2 } else { 1 };
    let Some(numkeys) = parse_i64(a.get(at)) else { return r.error(err::NOT_INT) };
    if numkeys < 1 {
        let name = String::from_utf8_lossy(a.get(0)).to_ascii_lowercase();
        return r.error(&format!("ERR at least 1 input key is needed for '{}' command", name));
    }
    if numkeys as u64 > (a.len() - at - 1) as u64 {
        return r.error(err::SYNTAX);
    }
    let n = numkeys as usize;
    // Sources are read (and type-checked) before the options, as in Redis.
    // A plain set counts as a sorted set whose scores are all 1 (as Redis).
    let mut sources: Vec<(Option<Zset>, f64)> = Vec::with_capacity(n);
    let limits = Limits::from_config();
    for i in at + 1..at + 1 + n {
        let z = match ctx.read(a.get(i)).map(|e| &e.value) {
            None => None,
            Some(Value::Zset(z)) => Some((**z).clone()),
            Some(Value::Set(s)) => {
                let mut z = Zset::new_large();
                s.for_each(|m| {
                    z.set(m, 1.0, limits);
                });
                Some(z)
            }
            Some(_) => return r.error(err::WRONGTYPE),
        };
        sources.push((z, 1.0));
    }
    let (mut how, mut withscores, mut limit) = (Aggregate::Sum, false, 0usize);
    let mut j = at + 1 + n;
    while j < a.len() {
        let left = a.len() - j;
        if card_only && left >= 2 && a.is(j, "limit") {
            match parse_i64(a.get(j + 1)) {
                Some(l) if l >= 0 => limit = l as usize,
                _ => return r.error("ERR LIMIT can't be negative"),
            }
            j += 1;
        } else if !card_only && op != SetOp::Diff && left > n && a.is(j, "weights") {
            for (k, src) in sources.iter_mut().enumerate() {
                match parse_double(a.get(j + 1 + k)) {
                    Some(w) => src.1 = w,
                    None => return r.error("ERR weight value is not a float"),
                }
            }
            j += n;
        } else if !card_only && op != SetOp::Diff && left >= 2 && a.is(j, "aggregate") {
            how = match a.get(j + 1).to_ascii_lowercase().as_slice() {
                b"sum" => Aggregate::Sum,
                b"min" => Aggregate::Min,
                b"max" => Aggregate::Max,
                _ => return r.error(err::SYNTAX),
            };
            j += 1;
        } else if !card_only && !store && a.is(j, "withscores") {
            withscores = true;
        } else {
            return r.error(err::SYNTAX);
        }
        j += 1;
    }
    let empty = Zset::new();
    let srcs: Vec<(&Zset, f64)> = sources.iter().map(|(z, w)| (z.as_ref().unwrap_or(&empty), *w)).collect();
    let result = match op {
        SetOp::Inter => intersect(srcs, how, if card_only { limit } else { 0 }),
        SetOp::Union => unite(srcs, how),
        SetOp::Diff => subtract(srcs),
    };
    if card_only {
        return r.int(result.len() as i64);
    }
    if store {
        let mut z = Zset::new_large();
        for (m, s) in &result {
            z.set(m, *s, Limits::from_config());
        }
        let event = match op {
            SetOp::Inter => "zinterstore",
            SetOp::Union => "zunionstore",
            SetOp::Diff => "zdiffstore",
        };
        let n = store_zset(ctx, a.get(1), z, event);
        return r.int(n as i64);
    }
    let mut sorted: Vec<(&[u8], f64)> = result.iter().map(|(m, s)| (&m[..], *s)).collect();
    sorted.sort_by(|x, y| x.1.partial_cmp(&y.1).unwrap_or(std::cmp::Ordering::Equal).then_with(|| x.0.cmp(y.0)));
    members_header(r, sorted.len(), withscores);
    for (m, s) in sorted {
        reply_member(r, m, s, withscores);
    }
}

/// A source's weighted score; NaN (0 × inf) counts as 0, as in Redis.
fn weighted(score: f64, weight: f64) -> f64 {
    let v = score * weight;
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

/// Sources ordered by size, smallest first, as Redis orders them (which
/// fixes the order scores are summed in).
fn by_size(mut srcs: Vec<(&Zset, f64)>) -> Vec<(&Zset, f64)> {
    srcs.sort_by_key(|(z, _)| z.len());
    srcs
}

/// Members of every source (stopping at `limit` members if nonzero).
fn intersect(srcs: Vec<(&Zset, f64)>, how: Aggregate, limit: usize) -> Vec<(Box<[u8]>, f64)> {
    let srcs = by_size(srcs);
    let mut out = Vec::new();
    let (first, w0) = srcs[0];
    first.for_each(|m, s| {
        if limit != 0 && out.len() >= limit {
            return;
        }
        let mut acc = weighted(s, w0);
        for &(z, w) in &srcs[1..] {
            match z.score(m) {
                Some(v) => aggregate(&mut acc, v * w, how),
                None => return,
            }
        }
        out.push((m.into(), acc));
    });
    out
}

fn unite(srcs: Vec<(&Zset, f64)>, how: Aggregate) -> Vec<(Box<[u8]>, f64)> {
    let srcs = by_size(srcs);
    let mut acc: hashbrown::HashMap<Box<[u8]>, f64> = hashbrown::HashMap::new();
    for (z, w) in srcs {
        z.for_each(|m, s| {
            let v = weighted(s, w);
            match acc.get_mut(m) {
                Some(cur) => aggregate(cur, v, how),
                None => {
                    acc.insert(m.into(), v);
                }
            }
        });
    }
    acc.into_iter().collect()
}

/// Members of the first source found in no other.
fn subtract(srcs: Vec<(&Zset, f64)>) -> Vec<(Box<[u8]>, f64)> {
    let mut out = Vec::new();
    srcs[0].0.for_each(|m, s| {
        if srcs[1..].iter().all(|(z, _)| z.score(m).is_none()) {
            out.push((m.into(), s));
        }
    });
    out
}

fn zunion(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    set_op(ctx, r, a, SetOp::Union, false, false)
}

fn zinter(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    set_op(ctx, r, a, SetOp::Inter, false, false)
}

fn zdiff(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    set_op(ctx, r, a, SetOp::Diff, false, false)
}

fn zintercard(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    set_op(ctx, r, a, SetOp::Inter, false, true)
}

fn zunionstore(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    set_op(ctx, r, a, SetOp::Union, true, false)
}

fn zinterstore(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    set_op(ctx, r, a, SetOp::Inter, true, false)
}

fn zdiffstore(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    set_op(ctx, r, a, SetOp::Diff, true, false)
}

// --- ZSCAN

fn zscan(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let Some(cursor) = super::keys::parse_cursor(a.get(2)) else {
        return r.error("ERR invalid cursor");
    };
    let z = match read_zset(ctx, a.get(1)) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(None) => {
            r.array(2);
            r.bulk(b"0");
            return r.array(0);
        }
        Ok(Some(z)) => z,
    };
    let (mut count, mut pattern) = (10usize, None);
    let mut j = 3;
    while j < a.len() {
        if a.is(j, "count") && j + 1 < a.len() {
            match parse_i64(a.get(j + 1)) {
                None => return r.error(err::NOT_INT),
                Some(c) if c < 1 => return r.error(err::SYNTAX),
                Some(c) => count = c as usize,
            }
        } else if a.is(j, "match") && j + 1 < a.len() {
            pattern = Some(a.get(j + 1));
        } else {
            return r.error(err::SYNTAX);
        }
        j += 2;
    }
    let mut found = Vec::new();
    let next = z.scan(usize::try_from(cursor).unwrap_or(usize::MAX), count, |m, s| {
        if pattern.is_none_or(|p| glob_match(p, m, false)) {
            found.push((m, s));
        }
    });
    r.array(2);
    r.bulk_int(next as i64);
    r.array(found.len() * 2);
    let mut buf = [0u8; 64];
    for (m, s) in found {
        r.bulk(m);
        r.bulk(crate::util::fmt_double(s, &mut buf));
    }
}
