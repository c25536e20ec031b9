//! Stream commands (Redis' t_stream.c): entries, trimming, reads, consumer
//! groups and their pending entries.
//!
//! XREAD and XREADGROUP name several keys. When those live on different
//! cores, `read_span` locks them all, checks every stream on its own core
//! (so that an error anywhere replies before anything is read or changed),
//! then serves each core's streams there and stitches the parts together in
//! argument order. Only the streams' answers travel, never whole streams.
//!
//! XREAD/XREADGROUP BLOCK always run through `read_span` (dispatch routes
//! them there, see `read_blocks`): when no stream has anything, it registers
//! the client on every stream's core (`server::blocking`), with XREAD's `$`
//! replaced by the IDs it meant at call time. XADD marks a stream ready for
//! its waiters, and `serve_blocked_read` serves each of them from the one
//! stream that got entries, as Redis does. Inside MULTI they do not block.

use std::sync::Arc;

use super::{cmd, flags::*, ArgList, Args, BoxFuture, Command, Ctx, OwnedArgs, Run, NOKEYS};
use crate::config;
use crate::resp::parser::parse_i64;
use crate::resp::{err, Proto, Reply};
use crate::server::core::lock_mode;
use crate::server::blocking;
use crate::server::session::Session;
use crate::shard::blocking::Waiter;
use crate::server::txn::{group_keys, lock_sets, Step, Txn};
use crate::shard::journal;
use crate::shard::Shard;
use crate::types::stream::{Entry, Group, NodeLimits, Pending, StreamId, Trim, ENTRIES_READ_UNKNOWN, LISTPACK_MAX_SIZE};
use crate::types::{StreamValue, Value};
use crate::shard::notify::{self, STREAM};
use crate::util::now_ms;

const G: &str = "stream";

pub static COMMANDS: &[Command] = &[
    cmd("xadd", -5, WRITE | DENYOOM | FAST, (1, 1, 1), G, "5.0.0", "Appends a new entry to a stream", Run::Shard(xadd)),
    cmd("xlen", 2, READONLY | FAST, (1, 1, 1), G, "5.0.0", "Return the number of entries in a stream", Run::Shard(xlen)),
    cmd("xrange", -4, READONLY, (1, 1, 1), G, "5.0.0", "Return a range of elements in a stream, with IDs matching the specified IDs interval", Run::Shard(xrange)),
    cmd("xrevrange", -4, READONLY, (1, 1, 1), G, "5.0.0", "Return a range of elements in a stream, with IDs matching the specified IDs interval, in reverse order (from greater to smaller IDs) compared to XRANGE", Run::Shard(xrevrange)),
    cmd("xdel", -3, WRITE | FAST, (1, 1, 1), G, "5.0.0", "Removes the specified entries from the stream. Returns the number of items actually deleted, that may be different from the number of IDs passed in case certain IDs do not exist.", Run::Shard(xdel)),
    cmd("xtrim", -4, WRITE, (1, 1, 1), G, "5.0.0", "Trims the stream to (approximately if '~' is passed) a certain size", Run::Shard(xtrim)),
    cmd("xread", -4, READONLY | BLOCKING, NOKEYS, G, "5.0.0", "Return never seen elements in multiple streams, with IDs greater than the ones reported by the caller for each stream. Can block.", Run::Span(xread, read_span)).with_keys(read_keys),
    cmd("xreadgroup", -7, WRITE | BLOCKING, NOKEYS, G, "5.0.0", "Return new entries from a stream using a consumer group, or access the history of the pending entries for a given consumer. Can block.", Run::Span(xreadgroup, read_span)).with_keys(read_keys),
    cmd("xack", -4, WRITE | FAST, (1, 1, 1), G, "5.0.0", "Marks a pending message as correctly processed, effectively removing it from the pending entries list of the consumer group. Return value of the command is the number of messages successfully acknowledged, that is, the IDs we were actually able to resolve in the PEL.", Run::Shard(xack)),
    cmd("xpending", -3, READONLY, (1, 1, 1), G, "5.0.0", "Return information and entries from a stream consumer group pending entries list, that are messages fetched but never acknowledged.", Run::Shard(xpending)),
    cmd("xclaim", -6, WRITE | FAST, (1, 1, 1), G, "5.0.0", "Changes (or acquires) ownership of a message in a consumer group, as if the message was delivered to the specified consumer.", Run::Shard(xclaim)),
    cmd("xautoclaim", -6, WRITE | FAST, (1, 1, 1), G, "6.2.0", "Changes (or acquires) ownership of messages in a consumer group, as if the messages were delivered to the specified consumer.", Run::Shard(xautoclaim)),
    cmd("xsetid", -3, WRITE | DENYOOM | FAST, (1, 1, 1), G, "5.0.0", "An internal command for replicating stream values", Run::Shard(xsetid)),
    cmd("xgroup", -2, 0, NOKEYS, G, "5.0.0", "A container for consumer groups commands", Run::Shard(xgroup_help)).with_subs(XGROUP),
    cmd("xinfo", -2, 0, NOKEYS, G, "5.0.0", "A container for stream introspection commands", Run::Shard(xinfo_help)).with_subs(XINFO),
];

static XGROUP: &[Command] = &[
    cmd("xgroup|create", -5, WRITE | DENYOOM, (2, 2, 1), G, "5.0.0", "Create a consumer group.", Run::Shard(xgroup_create)),
    cmd("xgroup|createconsumer", 5, WRITE | DENYOOM, (2, 2, 1), G, "6.2.0", "Create a consumer in a consumer group.", Run::Shard(xgroup_createconsumer)),
    cmd("xgroup|delconsumer", 5, WRITE, (2, 2, 1), G, "5.0.0", "Delete a consumer from a consumer group.", Run::Shard(xgroup_delconsumer)),
    cmd("xgroup|destroy", 4, WRITE, (2, 2, 1), G, "5.0.0", "Destroy a consumer group.", Run::Shard(xgroup_destroy)),
    cmd("xgroup|help", 2, LOADING | STALE, NOKEYS, G, "5.0.0", "Show helpful text about the different subcommands", Run::Shard(xgroup_help)),
    cmd("xgroup|setid", -5, WRITE, (2, 2, 1), G, "5.0.0", "Set a consumer group to an arbitrary last delivered ID value.", Run::Shard(xgroup_setid)),
];

static XINFO: &[Command] = &[
    cmd("xinfo|consumers", 4, READONLY, (2, 2, 1), G, "5.0.0", "List the consumers in a consumer group", Run::Shard(xinfo_consumers)),
    cmd("xinfo|groups", 3, READONLY, (2, 2, 1), G, "5.0.0", "List the consumer groups of a stream", Run::Shard(xinfo_groups)),
    cmd("xinfo|help", 2, LOADING | STALE, NOKEYS, G, "5.0.0", "Show helpful text about the different subcommands", Run::Shard(xinfo_help)),
    cmd("xinfo|stream", -3, READONLY, (2, 2, 1), G, "5.0.0", "Get information about a stream", Run::Shard(xinfo_stream)),
];

const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";
const ID_TOO_SMALL: &str = "ERR The ID specified in XADD is equal or smaller than the target stream top item";
const BAD_START: &str = "ERR invalid start ID for the interval";
const BAD_END: &str = "ERR invalid end ID for the interval";

/// The stream at `key` as Redis' lookupKeyRead sees it: Ok(None) if missing,
/// Err(()) if another type.
fn read_stream<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a mut StreamValue>, ()> {
    match ctx.read(key) {
        None => Ok(None),
        Some(e) => e.value.as_stream_mut().map(Some).ok_or(()),
    }
}

/// As `read_stream`, for a key the command writes (Redis' lookupKeyWrite).
fn write_stream<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a mut StreamValue>, ()> {
    match ctx.write(key) {
        None => Ok(None),
        Some(e) => e.value.as_stream_mut().map(Some).ok_or(()),
    }
}

/// The stream at `key`, which this command has looked up as a read, about
/// to change in place: its groups (see `Db::changing`).
fn changing_stream<'a>(ctx: &'a mut Ctx, key: &[u8]) -> &'a mut StreamValue {
    let now = ctx.now;
    let db = &mut ctx.shard.dbs[ctx.db];
    db.changing(key);
    db.get_mut(key, now).and_then(|e| e.value.as_stream_mut()).expect("checked: a stream")
}

fn node_limits() -> NodeLimits {
    NodeLimits { max_bytes: config::stream_node_max_bytes() as u64, max_entries: config::stream_node_max_entries() as u64 }
}

fn reply_id(r: &mut Reply, id: StreamId) {
    r.bulk(id.format(&mut [0; 41]));
}

/// An entry as every stream reply shows it: [id, [field, value, ...]].
fn reply_entry(r: &mut Reply, e: Entry) {
    r.array(2);
    reply_id(r, e.id);
    r.array(e.item_count());
    for item in e.items() {
        r.bulk(item);
    }
}

/// The entries of `s` from `start` to `end` (at most `count`, 0: all).
fn reply_range(r: &mut Reply, s: &StreamValue, start: StreamId, end: StreamId, count: u64, rev: bool) {
    let n = s.range_len(start, end, count);
    r.array(n as usize);
    let mut left = n;
    s.range(start, end, rev, |e| {
        reply_entry(r, e);
        left -= 1;
        left > 0
    });
}

fn nogroup(key: &[u8], group: &[u8]) -> String {
    format!("NOGROUP No such key '{}' or consumer group '{}'", super::printable(key, usize::MAX), super::printable(group, usize::MAX))
}

/// A strict ID (no `-` or `+`), as most arguments are.
fn strict_id(arg: &[u8]) -> Result<StreamId, &'static str> {
    StreamId::parse(arg, 0, true, None).ok_or(INVALID_ID)
}

/// An interval bound of XRANGE/XPENDING/XAUTOCLAIM: an ID, `-`/`+`, or
/// `(ID` for an exclusive bound (made inclusive here).
fn interval_bound(arg: &[u8], end: bool) -> Result<StreamId, &'static str> {
    let missing_seq = if end { u64::MAX } else { 0 };
    if arg.len() > 1 && arg[0] == b'(' {
        let id = StreamId::parse(&arg[1..], missing_seq, true, None).ok_or(INVALID_ID)?;
        if end {
            id.prev().ok_or(BAD_END)
        } else {
            id.next().ok_or(BAD_START)
        }
    } else {
        StreamId::parse(arg, missing_seq, false, None).ok_or(INVALID_ID)
    }
}

// --- XADD, XTRIM ----------------------------------------------------------------

/// Trimming options of XADD and XTRIM, and XADD's NOMKSTREAM and ID.
struct AddTrimOpts {
    trim: Option<Trim>,
    approx: bool,
    /// Entries a trim may remove at most (0: no limit).
    limit: u64,
    nomkstream: bool,
    /// XADD's explicit ID and whether its sequence was given (not `ms-*`).
    id: Option<(StreamId, bool)>,
    /// Index of XADD's ID argument.
    id_at: usize,
}

/// Parses options from argument `i` as Redis' streamParseAddOrTrimArgsOrReply.
fn parse_add_trim(a: &Args, mut i: usize, xadd: bool) -> Result<AddTrimOpts, &'static str> {
    let mut o = AddTrimOpts { trim: None, approx: false, limit: 0, nomkstream: false, id: None, id_at: a.len() };
    let mut limit_given = false;
    while i < a.len() {
        let more = a.len() - 1 - i;
        let opt = a.get(i);
        let maxlen = opt.eq_ignore_ascii_case(b"maxlen");
        if xadd && opt == b"*" {
            o.id_at = i;
            break;
        } else if (maxlen || opt.eq_ignore_ascii_case(b"minid")) && more > 0 {
            if o.trim.is_some() {
                return Err("ERR syntax error, MAXLEN and MINID options at the same time are not compatible");
            }
            o.approx = false;
            let next = a.get(i + 1);
            if more >= 2 && (next == b"~" || next == b"=") {
                o.approx = next == b"~";
                i += 1;
            }
            let arg = a.get(i + 1);
            o.trim = Some(if maxlen {
                let n = parse_i64(arg).ok_or(err::NOT_INT)?;
                if n < 0 {
                    return Err("ERR The MAXLEN argument must be >= 0.");
                }
                Trim::MaxLen(n as u64)
            } else {
                Trim::MinId(strict_id(arg)?)
            });
            i += 1;
        } else if more > 0 && opt.eq_ignore_ascii_case(b"limit") {
            let n = parse_i64(a.get(i + 1)).ok_or(err::NOT_INT)?;
            if n < 0 {
                return Err("ERR The LIMIT argument must be >= 0.");
            }
            o.limit = n as u64;
            limit_given = true;
            i += 1;
        } else if xadd && opt.eq_ignore_ascii_case(b"nomkstream") {
            o.nomkstream = true;
        } else if xadd {
            let mut seq_given = true;
            let id = StreamId::parse(opt, 0, true, Some(&mut seq_given)).ok_or(INVALID_ID)?;
            o.id = Some((id, seq_given));
            o.id_at = i;
            break;
        } else {
            return Err(err::SYNTAX);
        }
        i += 1;
    }
    if o.limit != 0 && o.trim.is_none() {
        return Err("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy");
    }
    if !xadd && o.trim.is_none() {
        return Err("ERR syntax error, XTRIM must be called with a trimming strategy");
    }
    if limit_given {
        if !o.approx {
            return Err("ERR syntax error, LIMIT cannot be used without the special ~ option");
        }
    } else if o.approx {
        // Bounds the work of an approximate trim, as Redis does.
        let n = config::stream_node_max_entries().saturating_mul(100);
        o.limit = if n <= 0 { 10_000 } else { n.min(1_000_000) as u64 };
    } else {
        o.limit = 0;
    }
    Ok(o)
}

fn xadd(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let o = match parse_add_trim(&a, 2, true) {
        Ok(o) => o,
        Err(e) => return r.error(e),
    };
    let fields = o.id_at + 1;
    if fields > a.len() || a.len() - fields < 2 || (a.len() - fields) % 2 == 1 {
        return r.error(&super::arity_error("xadd"));
    }
    if let Some((id, true)) = o.id {
        if id.is_zero() {
            return r.error("ERR The ID specified in XADD must be greater than 0-0");
        }
    }
    let key = a.get(1);
    let now = ctx.now;
    let before = r.out.len();
    let trimmed = xadd_to(ctx, r, key, &o, &a, fields, now);
    // Notified when an ID was replied (not an error, not a null).
    if r.out.get(before) == Some(&b'$') && r.out.get(before + 1) != Some(&b'-') {
        ctx.notify(STREAM, "xadd", key);
        if trimmed > 0 {
            ctx.notify(STREAM, "xtrim", key);
        }
    }
}

/// Returns how many entries the trimming removed.
fn xadd_to(ctx: &mut Ctx, r: &mut Reply, key: &[u8], o: &AddTrimOpts, a: &Args, fields: usize, now: u64) -> u64 {
    let trimmed = match ctx.write(key) {
        Some(e) => match e.value.as_stream_mut() {
            Some(s) => add_entry(r, s, o, a, fields, now),
            None => {
                r.error(err::WRONGTYPE);
                0
            }
        },
        None if o.nomkstream => {
            r.null();
            0
        }
        None => {
            let mut s = Box::<StreamValue>::default();
            let trimmed = add_entry(r, &mut s, o, a, fields, now);
            ctx.db().insert(key, Value::Stream(s), 0);
            return trimmed;
        }
    };
    // Readers blocked on the stream may have something now.
    ctx.db().signal_ready(key);
    trimmed
}

/// XADD on an existing or new stream: picks the ID, appends, replies, trims.
/// Returns how many entries the trimming removed (0 after an error).
fn add_entry(r: &mut Reply, s: &mut StreamValue, o: &AddTrimOpts, a: &Args, fields: usize, now: u64) -> u64 {
    let last = s.last_id;
    if last == StreamId::MAX {
        r.error("ERR The stream has exhausted the last possible ID, unable to add more items");
        return 0;
    }
    let id = match o.id {
        Some((id, true)) => id,
        Some((id, false)) if id.ms == last.ms => match last.next().filter(|n| n.ms == last.ms) {
            Some(n) => n,
            None => {
                r.error(ID_TOO_SMALL);
                return 0;
            }
        },
        Some((id, false)) => id,
        None if now > last.ms => StreamId::new(now, 0),
        None => last.next().expect("last is not the maximum ID"),
    };
    if id <= last {
        r.error(ID_TOO_SMALL);
        return 0;
    }
    let n = a.len() - fields;
    let total: u64 = (fields..a.len()).map(|i| a.get(i).len() as u64).sum();
    if total > LISTPACK_MAX_SIZE {
        r.error("ERR Elements are too large to be stored");
        return 0;
    }
    // Up to 16 fields and values without allocating.
    let mut small: [&[u8]; 32] = [b""; 32];
    let big: Vec<&[u8]>;
    let items: &[&[u8]] = if n <= small.len() {
        for (k, d) in small[..n].iter_mut().enumerate() {
            *d = a.get(fields + k);
        }
        &small[..n]
    } else {
        big = (fields..a.len()).map(|i| a.get(i)).collect();
        &big
    };
    s.append(id, items, node_limits());
    reply_id(r, id);
    o.trim.map_or(0, |t| s.trim(t, o.approx, o.limit) as u64)
}

fn xtrim(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let s = match write_stream(ctx, a.get(1)) {
        Ok(Some(s)) => s,
        Ok(None) => return r.int(0),
        Err(()) => return r.error(err::WRONGTYPE),
    };
    match parse_add_trim(&a, 2, false) {
        Ok(o) => {
            let trimmed = s.trim(o.trim.expect("XTRIM has a strategy"), o.approx, o.limit) as i64;
            if trimmed > 0 {
                ctx.notify(STREAM, "xtrim", a.get(1));
            }
            r.int(trimmed)
        }
        Err(e) => r.error(e),
    }
}

// --- XLEN, XRANGE, XREVRANGE, XDEL ------------------------------------------------

fn xlen(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    match read_stream(ctx, a.get(1)) {
        Ok(s) => r.int(s.map_or(0, |s| s.len() as i64)),
        Err(()) => r.error(err::WRONGTYPE),
    }
}

fn xrange(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    range_generic(ctx, r, a, false)
}

fn xrevrange(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    range_generic(ctx, r, a, true)
}

fn range_generic(ctx: &mut Ctx, r: &mut Reply, a: Args, rev: bool) {
    let (start, end) = if rev { (a.get(3), a.get(2)) } else { (a.get(2), a.get(3)) };
    let bounds = interval_bound(start, false).and_then(|s| Ok((s, interval_bound(end, true)?)));
    let (start, end) = match bounds {
        Ok(b) => b,
        Err(e) => return r.error(e),
    };
    // None: no COUNT (all entries).
    let mut count = None;
    let mut j = 4;
    while j < a.len() {
        if a.is(j, "count") && j + 1 < a.len() {
            match parse_i64(a.get(j + 1)) {
                Some(n) => count = Some(n.max(0) as u64),
                None => return r.error(err::NOT_INT),
            }
            j += 2;
        } else {
            return r.error(err::SYNTAX);
        }
    }
    match read_stream(ctx, a.get(1)) {
        Err(()) => r.error(err::WRONGTYPE),
        Ok(None) => r.array(0),
        Ok(Some(_)) if count == Some(0) => r.null_array(),
        Ok(Some(s)) => reply_range(r, s, start, end, count.unwrap_or(0), rev),
    }
}

fn xdel(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let s = match write_stream(ctx, a.get(1)) {
        Ok(Some(s)) => s,
        Ok(None) => return r.int(0),
        Err(()) => return r.error(err::WRONGTYPE),
    };
    // All IDs are checked first, so that the command runs entirely or not at all.
    if let Some(e) = (2..a.len()).find_map(|j| strict_id(a.get(j)).err()) {
        return r.error(e);
    }
    let mut deleted = 0;
    let mut first_deleted = false;
    for j in 2..a.len() {
        let id = strict_id(a.get(j)).expect("checked above");
        if s.delete(id) {
            first_deleted |= id == s.first_id;
            s.max_deleted_id = s.max_deleted_id.max(id);
            deleted += 1;
        }
    }
    if deleted > 0 && (first_deleted || s.is_empty()) {
        s.refresh_first_id();
    }
    if deleted > 0 {
        ctx.notify(STREAM, "xdel", a.get(1));
    }
    r.int(deleted);
}

// --- XREAD, XREADGROUP ----------------------------------------------------------

/// The key arguments of XREAD/XREADGROUP: the first half of what follows
/// STREAMS (Redis' xreadGetKeys, which skips the options before it).
fn read_keys(a: &dyn ArgList) -> [std::ops::Range<usize>; 2] {
    let mut i = 1;
    while i < a.argc() {
        let arg = a.arg(i);
        if arg.eq_ignore_ascii_case(b"block") || arg.eq_ignore_ascii_case(b"count") {
            i += 2;
        } else if arg.eq_ignore_ascii_case(b"group") {
            i += 3;
        } else if arg.eq_ignore_ascii_case(b"noack") {
            i += 1;
        } else if arg.eq_ignore_ascii_case(b"streams") {
            let n = a.argc() - i - 1;
            if n == 0 || !n.is_multiple_of(2) {
                break;
            }
            return [0..0, i + 1..i + 1 + n / 2];
        } else {
            break;
        }
    }
    // A syntax error: the command reports it.
    [0..0, 0..0]
}

/// Options of XREAD/XREADGROUP.
struct ReadOpts<'a> {
    /// Entries per stream at most (0: all).
    count: u64,
    group: Option<(&'a [u8], &'a [u8])>,
    noack: bool,
    /// BLOCK: milliseconds to wait at most (0: for ever).
    block: Option<u64>,
    /// Index of the first key; the IDs follow the keys.
    keys_at: usize,
    streams: usize,
}

fn parse_read<'a>(a: &Args<'a>, xreadgroup: bool) -> Result<ReadOpts<'a>, String> {
    let mut o = ReadOpts { count: 0, group: None, noack: false, block: None, keys_at: 0, streams: 0 };
    let mut i = 1;
    while i < a.len() {
        let more = a.len() - i - 1;
        if a.is(i, "block") && more > 0 {
            i += 1;
            match parse_i64(a.get(i)) {
                None => return Err("ERR timeout is not an integer or out of range".into()),
                Some(t) if t < 0 => return Err("ERR timeout is negative".into()),
                Some(t) => o.block = Some(t as u64),
            }
        } else if a.is(i, "count") && more > 0 {
            i += 1;
            o.count = parse_i64(a.get(i)).ok_or(err::NOT_INT)?.max(0) as u64;
        } else if a.is(i, "streams") && more > 0 {
            o.keys_at = i + 1;
            if !more.is_multiple_of(2) {
                return Err("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.".into());
            }
            o.streams = more / 2;
            break;
        } else if a.is(i, "group") && more >= 2 {
            if !xreadgroup {
                return Err("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.".into());
            }
            o.group = Some((a.get(i + 1), a.get(i + 2)));
            i += 2;
        } else if a.is(i, "noack") {
            if !xreadgroup {
                return Err("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.".into());
            }
            o.noack = true;
        } else {
            return Err(err::SYNTAX.into());
        }
        i += 1;
    }
    if o.keys_at == 0 {
        return Err(err::SYNTAX.into());
    }
    if xreadgroup && o.group.is_none() {
        return Err("ERR Missing GROUP option for XREADGROUP".into());
    }
    Ok(o)
}

/// Where a read of one stream starts.
#[derive(Clone, Copy)]
enum ReadFrom {
    /// After this ID (XREAD's IDs, XREADGROUP's history IDs).
    After(StreamId),
    /// XREAD's `$`: after the stream's last ID.
    Last,
    /// XREADGROUP's `>`: entries never delivered to the group.
    New,
}

/// Checks stream `i` of a read as Redis does before serving anything: its
/// type, its group, its ID.
fn check_read(ctx: &mut Ctx, a: &Args, o: &ReadOpts, i: usize) -> Result<ReadFrom, String> {
    let key = a.get(o.keys_at + i);
    let s = read_stream(ctx, key).map_err(|()| err::WRONGTYPE.to_string())?;
    if let Some((group, _)) = o.group {
        if !s.is_some_and(|s| s.groups.contains_key(group)) {
            return Err(format!(
                "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                super::printable(key, usize::MAX),
                super::printable(group, usize::MAX)
            ));
        }
    }
    let arg = a.get(o.keys_at + o.streams + i);
    match (arg, o.group.is_some()) {
        (b"$", true) => Err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.".into()),
        (b"$", false) => Ok(ReadFrom::Last),
        (b">", false) => Err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.".into()),
        (b">", true) => Ok(ReadFrom::New),
        // The largest ID is how Redis marks `>`, so it means `>` too.
        _ => match strict_id(arg)? {
            StreamId::MAX if o.group.is_some() => Ok(ReadFrom::New),
            id => Ok(ReadFrom::After(id)),
        },
    }
}

/// Whether stream `s` has something for a read from `from` (a consumer's
/// history always answers, if only with an empty list).
fn has_entries(s: &StreamValue, o: &ReadOpts, from: ReadFrom) -> bool {
    let after = match (from, o.group) {
        (ReadFrom::After(_), Some(_)) => return true,
        (ReadFrom::After(id), None) => id,
        (ReadFrom::Last, _) => s.last_id,
        (ReadFrom::New, Some((g, _))) => s.groups[g].last_id,
        (ReadFrom::New, None) => unreachable!("checked: XREAD has no >"),
    };
    s.last_entry().is_some_and(|e| e.id > after)
}

/// What XREADGROUP, XCLAIM and XAUTOCLAIM change in a group, journaled as
/// Redis propagates it (t_stream.c: streamPropagateXCLAIM,
/// streamPropagateGroupID, streamPropagateConsumerCreation), so the AOF
/// grows by the entries served, not by the stream: per delivered or claimed
/// entry an XCLAIM ... FORCE JUSTID that sets its owner, delivery time and
/// count whatever the state replayed; the group's last ID as XGROUP SETID
/// ... ENTRIESREAD; a consumer created by a read as XGROUP CREATECONSUMER;
/// an entry gone from the stream and dropped from the PEL as XACK.
/// Collected while the stream is borrowed, journaled after. Only when
/// `journal::recording` says the command is recorded by itself; otherwise
/// (a served blocked read, a multi-shard step) the journal records the
/// stream's state, as for any change made outside a command.
struct GroupEffects<'a> {
    on: bool,
    key: &'a [u8],
    group: &'a [u8],
    cmds: Vec<Vec<Vec<u8>>>,
}

impl<'a> GroupEffects<'a> {
    fn new(ctx: &Ctx, key: &'a [u8], group: &'a [u8]) -> Self {
        GroupEffects { on: journal::recording(ctx), key, group, cmds: Vec::new() }
    }

    fn id(id: StreamId) -> Vec<u8> {
        id.format(&mut [0; 41]).to_vec()
    }

    fn int(n: impl itoa::Integer) -> Vec<u8> {
        itoa::Buffer::new().format(n).as_bytes().to_vec()
    }

    fn push(&mut self, head: &[&[u8]], rest: impl IntoIterator<Item = Vec<u8>>) {
        let mut cmd: Vec<Vec<u8>> = head.iter().map(|a| a.to_vec()).collect();
        cmd.extend(rest);
        self.cmds.push(cmd);
    }

    fn xclaim(&mut self, consumer: &[u8], id: StreamId, p: &Pending, last_id: StreamId) {
        if self.on {
            let (time, count) = (Self::int(p.delivery_time), Self::int(p.delivery_count));
            let tail = [Self::id(id), b"TIME".to_vec(), time, b"RETRYCOUNT".to_vec(), count, b"FORCE".to_vec(), b"JUSTID".to_vec(), b"LASTID".to_vec(), Self::id(last_id)];
            self.push(&[b"XCLAIM", self.key, self.group, consumer, b"0"], tail);
        }
    }

    fn setid(&mut self, g: &Group) {
        if self.on {
            self.push(&[b"XGROUP", b"SETID", self.key, self.group], [Self::id(g.last_id), b"ENTRIESREAD".to_vec(), Self::int(g.entries_read)]);
        }
    }

    fn create_consumer(&mut self, consumer: &[u8]) {
        if self.on {
            self.push(&[b"XGROUP", b"CREATECONSUMER", self.key, self.group, consumer], []);
        }
    }

    fn ack(&mut self, id: StreamId) {
        if self.on {
            self.push(&[b"XACK", self.key, self.group], [Self::id(id)]);
        }
    }

    fn journal(self, ctx: &mut Ctx) {
        for cmd in self.cmds {
            ctx.shard.journal.command(ctx.db, cmd.iter().map(Vec::as_slice));
        }
    }
}

/// Serves stream `i` of a read: writes the key and its entries to `r` and
/// returns true, or writes nothing if the stream has nothing to give.
/// XREADGROUP also creates the consumer and delivers to it.
fn serve_read(ctx: &mut Ctx, r: &mut Reply, a: &Args, o: &ReadOpts, i: usize, from: ReadFrom) -> bool {
    let key = a.get(o.keys_at + i);
    let (now, db) = (ctx.now, ctx.db);
    let mut fx = GroupEffects::new(ctx, key, o.group.map_or(&[][..], |(g, _)| g));
    let Ok(Some(s)) = read_stream(ctx, key) else { return false };
    if !has_entries(s, o, from) {
        return false;
    }
    let header = |r: &mut Reply| {
        if !r.is_resp3() {
            r.array(2);
        }
        r.bulk(key);
    };
    let Some((gname, cname)) = o.group else {
        let after = match from {
            ReadFrom::Last => s.last_id,
            ReadFrom::After(id) => id,
            ReadFrom::New => unreachable!("checked: XREAD has no >"),
        };
        let start = after.next().expect("an entry follows it");
        header(r);
        reply_range(r, s, start, StreamId::MAX, o.count, false);
        return true;
    };
    // Only a stream that is served creates the consumer (and marks it seen).
    let s = changing_stream(ctx, key);
    let new_after = s.groups[gname].last_id;
    let g = s.groups.get_mut(gname).expect("checked: the group exists");
    let (consumer, c, created) = g.consumer(cname, now);
    c.seen_time = now;
    if created {
        notify::event(STREAM, "xgroup-createconsumer", db, key);
        fx.create_consumer(cname);
    }
    match from {
        ReadFrom::After(after) => {
            // The consumer's history: its pending entries after `after`.
            let start = after.next().unwrap_or(StreamId::MIN);
            let take = if o.count == 0 { usize::MAX } else { o.count as usize };
            let ids: Vec<StreamId> = c.pending.range(start..).take(take).copied().collect();
            header(r);
            r.array(ids.len());
            for id in ids {
                match s.get(id) {
                    Some(e) => {
                        reply_entry(r, e);
                        let g = s.groups.get_mut(gname).expect("the group exists");
                        let p = g.pending.get_mut(&id).expect("a consumer's entry is pending");
                        p.delivery_time = now;
                        p.delivery_count += 1;
                        fx.xclaim(cname, id, p, g.last_id);
                    }
                    None => {
                        // Deleted since delivery: the ID with no fields.
                        r.array(2);
                        reply_id(r, id);
                        r.null_array();
                    }
                }
            }
            fx.journal(ctx);
            true
        }
        _ => {
            let start = new_after.next().expect("an entry follows it");
            header(r);
            let n = s.range_len(start, StreamId::MAX, o.count);
            r.array(n as usize);
            let mut ids = Vec::with_capacity(n as usize);
            s.range(start, StreamId::MAX, false, |e| {
                reply_entry(r, e);
                ids.push(e.id);
                (ids.len() as u64) < n
            });
            for &id in &ids {
                s.advance_group(gname, id);
                if !o.noack {
                    let g = s.groups.get_mut(gname).expect("the group exists");
                    g.deliver(id, &consumer, now);
                    fx.xclaim(cname, id, &g.pending[&id], g.last_id);
                }
            }
            if !ids.is_empty() {
                fx.setid(&s.groups[gname]);
            }
            fx.journal(ctx);
            true
        }
    }
}

fn xread(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    read_local(ctx, r, a, false)
}

fn xreadgroup(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    read_local(ctx, r, a, true)
}

/// XREAD/XREADGROUP with every stream on this core.
fn read_local(ctx: &mut Ctx, r: &mut Reply, a: Args, xreadgroup: bool) {
    let o = match parse_read(&a, xreadgroup) {
        Ok(o) => o,
        Err(e) => return r.error(&e),
    };
    let mut from = Vec::with_capacity(o.streams);
    for i in 0..o.streams {
        match check_read(ctx, &a, &o, i) {
            Ok(f) => from.push(f),
            Err(e) => return r.error(&e),
        }
    }
    let mut body = Vec::new();
    let mut served = 0;
    {
        let mut part = Reply::new(&mut body, r.proto);
        for (i, f) in from.into_iter().enumerate() {
            served += serve_read(ctx, &mut part, &a, &o, i, f) as usize;
        }
    }
    read_reply(r, served, &body);
}

/// The reply of a read that served `served` streams, whose parts are `body`.
fn read_reply(r: &mut Reply, served: usize, body: &[u8]) {
    if served == 0 {
        return r.null_array();
    }
    if r.is_resp3() {
        r.map(served);
    } else {
        r.array(served);
    }
    r.raw(body);
}

/// XREAD/XREADGROUP over streams on several cores (see the module comment).
fn read_span(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let xreadgroup = a.len() > 0 && a.get(0).len() == "xreadgroup".len();
        let (db, proto) = (s.db, s.proto);
        let (base, ranges) = a.flatten();
        let args = Args::new(&base, &ranges);
        let o = match parse_read(&args, xreadgroup) {
            Ok(o) => o,
            Err(e) => return s.reply().error(&e),
        };
        let (keys_at, streams, block) = (o.keys_at, o.streams, o.block.filter(|_| s.exec.is_none()));
        let ci = super::lookup(a.get(0)).expect("dispatch resolved this command");
        let groups = group_keys(&s.core, (0..streams).map(|i| (i, a.get(keys_at + i).to_vec())));
        let txn = Txn::lock(s, lock_sets(db, &groups, lock_mode(super::by_index(ci)))).await;
        let shared = Arc::new(a);
        let per_shard = |f: ReadStep| -> Vec<(usize, Step<ReadParts>)> {
            groups
                .iter()
                .map(|(shard, keys)| {
                    let (a, idx) = (shared.clone(), keys.iter().map(|(i, _)| *i).collect::<Vec<_>>());
                    let step: Step<_> = Box::new(move |sh: &mut Shard| {
                        let (base, ranges) = a.flatten();
                        f(&mut Ctx::new(sh, db), &Args::new(&base, &ranges), &idx, proto)
                    });
                    (*shard, step)
                })
                .collect()
        };
        // First every stream is checked; the first error in argument order wins.
        let mut checks: Vec<_> = txn.on_many(per_shard(check_step)).await.into_iter().flatten().collect();
        checks.sort_by_key(|(i, _)| *i);
        if let Some((_, Err(e))) = checks.iter().find(|(_, c)| c.is_err()) {
            let e = e.clone();
            txn.release().await;
            return s.reply().error(&e);
        }
        let mut parts: Vec<_> = txn.on_many(per_shard(serve_step)).await.into_iter().flatten().collect();
        parts.sort_by_key(|(i, _)| *i);
        let body: Vec<u8> = parts.iter().filter_map(|(_, p)| p.as_ref().ok()).flatten().copied().collect();
        let served = parts.iter().filter(|(_, p)| p.as_ref().is_ok_and(|p| !p.is_empty())).count();
        if let (0, Some(ms)) = (served, block) {
            // Nothing anywhere: wait for the streams, `$` meaning what it means now.
            let mut waiting = OwnedArgs(shared.0.clone());
            let lasts: Vec<_> = if xreadgroup { Vec::new() } else { txn.on_many(per_shard(last_ids_step)).await.into_iter().flatten().collect() };
            for (i, id) in lasts {
                waiting.0[keys_at + streams + i] = id.expect("the step gives IDs");
            }
            let deadline = if ms == 0 { 0 } else { now_ms().saturating_add(ms) };
            let pending = blocking::prepare_until(s, &waiting, deadline, serve_blocked_read, false);
            let regs: Vec<(usize, Vec<Vec<u8>>)> = groups.into_iter().map(|(sh, ks)| (sh, ks.into_iter().map(|(_, k)| k).collect())).collect();
            pending.register(&txn, db, &regs).await;
            txn.release().await;
            return pending.block(s, regs);
        }
        txn.release().await;
        read_reply(&mut s.reply(), served, &body);
    })
}

/// Whether an XREAD/XREADGROUP asks to BLOCK. Dispatch then runs it through
/// its coordinator (`read_span`), which can make the connection wait. A
/// false positive (a group named "block") only takes the longer path.
pub fn read_blocks(a: &dyn ArgList) -> bool {
    (1..a.argc()).map(|i| a.arg(i)).take_while(|arg| !arg.eq_ignore_ascii_case(b"streams")).any(|arg| arg.eq_ignore_ascii_case(b"block"))
}

/// `read_span`'s step before XREAD blocks: the IDs its `$` stands for (the
/// stream's last ID, 0-0 if there is none), as (position, ID).
fn last_ids_step(ctx: &mut Ctx, a: &Args, idx: &[usize], _: Proto) -> ReadParts {
    let o = parse_read(a, false).expect("parsed by the coordinator");
    idx.iter()
        .filter(|&&i| a.get(o.keys_at + o.streams + i) == b"$")
        .map(|&i| {
            let last = match read_stream(ctx, a.get(o.keys_at + i)) {
                Ok(Some(s)) => s.last_id,
                _ => StreamId::MIN,
            };
            (i, Ok(last.format(&mut [0; 41]).to_vec()))
        })
        .collect()
}

/// `ServeFn` of XREAD/XREADGROUP BLOCK (args as registered: `$` already
/// resolved): `key` was written, created or deleted. Serves the waiter
/// from that stream alone. A group reader whose stream or group is gone
/// gets Redis' error; a plain reader keeps waiting.
fn serve_blocked_read(ctx: &mut Ctx, key: &[u8], w: &Waiter) -> bool {
    let (base, ranges) = w.args.flatten();
    let a = Args::new(&base, &ranges);
    let o = parse_read(&a, w.args.is(0, "xreadgroup")).expect("parsed when it blocked");
    let i = (0..o.streams).find(|&i| a.get(o.keys_at + i) == key).expect("a waiter waits on its own keys");
    let from = match check_read(ctx, &a, &o, i) {
        Ok(from) => from,
        Err(_) if o.group.is_none() => return false,
        Err(_) => {
            let gone = if matches!(read_stream(ctx, key), Ok(Some(_))) {
                "NOGROUP the consumer group this client was blocked on no longer exists"
            } else {
                "UNBLOCKED the stream key no longer exists"
            };
            if w.claim() {
                w.reply(|r| r.error(gone));
            }
            return true;
        }
    };
    if !matches!(read_stream(ctx, key), Ok(Some(s)) if has_entries(s, &o, from)) {
        return false;
    }
    if w.claim() {
        w.reply(|r| {
            let mut body = Vec::new();
            serve_read(ctx, &mut Reply::new(&mut body, r.proto), &a, &o, i, from);
            read_reply(r, 1, &body);
        });
    }
    true
}

/// Per stream (by position): a part of the reply, or an error.
type ReadParts = Vec<(usize, Result<Vec<u8>, String>)>;
type ReadStep = fn(&mut Ctx, &Args, &[usize], Proto) -> ReadParts;

/// `read_span`'s first step on one core: checks its streams `idx`.
fn check_step(ctx: &mut Ctx, a: &Args, idx: &[usize], _: Proto) -> ReadParts {
    let o = parse_read(a, a.get(0).len() == "xreadgroup".len()).expect("parsed by the coordinator");
    idx.iter().map(|&i| (i, check_read(ctx, a, &o, i).map(|_| Vec::new()))).collect()
}

/// `read_span`'s second step on one core: serves its streams `idx`, each
/// into its own part (empty if it has nothing to give).
fn serve_step(ctx: &mut Ctx, a: &Args, idx: &[usize], proto: Proto) -> ReadParts {
    let o = parse_read(a, a.get(0).len() == "xreadgroup".len()).expect("parsed by the coordinator");
    idx.iter()
        .map(|&i| {
            let mut part = Vec::new();
            if let Ok(from) = check_read(ctx, a, &o, i) {
                serve_read(ctx, &mut Reply::new(&mut part, proto), a, &o, i, from);
            }
            (i, Ok(part))
        })
        .collect()
}

// --- XACK, XPENDING, XCLAIM, XAUTOCLAIM -----------------------------------------

fn xack(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let s = match write_stream(ctx, a.get(1)) {
        Ok(s) => s,
        Err(()) => return r.error(err::WRONGTYPE),
    };
    let Some(g) = s.and_then(|s| s.groups.get_mut(a.get(2))) else { return r.int(0) };
    if let Some(e) = (3..a.len()).find_map(|j| strict_id(a.get(j)).err()) {
        return r.error(e);
    }
    let acked = (3..a.len()).filter(|&j| g.ack(strict_id(a.get(j)).expect("checked above"))).count();
    r.int(acked as i64);
}

fn xpending(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let argc = a.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return r.error(err::SYNTAX);
    }
    // Extended form: [IDLE min-idle] start end count [consumer].
    let mut extended = None;
    if argc >= 6 {
        let mut at = 3;
        let mut min_idle = 0;
        if a.is(3, "idle") {
            match parse_i64(a.get(4)) {
                Some(n) => min_idle = n,
                None => return r.error(err::NOT_INT),
            }
            if argc < 8 {
                return r.error(err::SYNTAX);
            }
            at = 5;
        }
        let Some(count) = parse_i64(a.get(at + 2)) else { return r.error(err::NOT_INT) };
        let bounds = interval_bound(a.get(at), false).and_then(|s| Ok((s, interval_bound(a.get(at + 1), true)?)));
        let (start, end) = match bounds {
            Ok(b) => b,
            Err(e) => return r.error(e),
        };
        let consumer = (at + 3 < argc).then(|| a.get(at + 3));
        extended = Some((min_idle, start, end, count.max(0) as usize, consumer));
    }
    let now = ctx.now;
    let (key, gname) = (a.get(1), a.get(2));
    let g = match read_stream(ctx, key) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(s) => match s.and_then(|s| s.groups.get(gname)) {
            Some(g) => g,
            None => return r.error(&nogroup(key, gname)),
        },
    };
    let Some((min_idle, start, end, count, consumer)) = extended else {
        r.array(4);
        r.int(g.pending.len() as i64);
        let (Some((first, _)), Some((last, _))) = (g.pending.first_key_value(), g.pending.last_key_value()) else {
            r.null();
            r.null();
            return r.null_array();
        };
        reply_id(r, *first);
        reply_id(r, *last);
        let owners = g.consumers.iter().filter(|(_, c)| !c.pending.is_empty());
        r.array(owners.clone().count());
        for (name, c) in owners {
            r.array(2);
            r.bulk(name);
            r.bulk_int(c.pending.len() as i64);
        }
        return;
    };
    let ids: Box<dyn Iterator<Item = StreamId>> = match consumer {
        Some(name) => match g.consumers.get(name) {
            Some(c) => Box::new(c.pending.range(start..).copied()),
            None => return r.array(0),
        },
        None => Box::new(g.pending.range(start..).map(|(id, _)| *id)),
    };
    let idle = |id: &StreamId| now.saturating_sub(g.pending[id].delivery_time);
    let rows: Vec<StreamId> = ids.take_while(|id| *id <= end).filter(|id| min_idle == 0 || idle(id) as i64 >= min_idle).take(count).collect();
    r.array(rows.len());
    for id in rows {
        let p = &g.pending[&id];
        r.array(4);
        reply_id(r, id);
        r.bulk(&p.consumer);
        r.int(idle(&id) as i64);
        r.int(p.delivery_count as i64);
    }
}

/// An integer option of XCLAIM with Redis' per-option error text.
fn claim_int(arg: &[u8], what: &str) -> Result<i64, String> {
    parse_i64(arg).ok_or_else(|| format!("ERR Invalid {what} argument for XCLAIM"))
}

fn xclaim(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let now = ctx.now;
    let (key, gname) = (a.get(1), a.get(2));
    match read_stream(ctx, key) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(Some(s)) if s.groups.contains_key(gname) => {}
        Ok(_) => return r.error(&nogroup(key, gname)),
    }
    let min_idle = match claim_int(a.get(4), "min-idle-time") {
        Ok(n) => n.max(0) as u64,
        Err(e) => return r.error(&e),
    };
    // IDs until the first argument that is not one; options after.
    let ids_end = (5..a.len()).find(|&j| strict_id(a.get(j)).is_err()).unwrap_or(a.len());
    let (mut force, mut justid) = (false, false);
    let mut retry_count = None;
    let mut delivery_time = None;
    let mut last_id = StreamId::MIN;
    let mut j = ids_end;
    while j < a.len() {
        let more = j + 1 < a.len();
        let opt = a.get(j);
        let option = |name: &str| more && opt.eq_ignore_ascii_case(name.as_bytes());
        let parsed = if opt.eq_ignore_ascii_case(b"force") {
            force = true;
            Ok(())
        } else if opt.eq_ignore_ascii_case(b"justid") {
            justid = true;
            Ok(())
        } else if option("idle") {
            j += 1;
            claim_int(a.get(j), "IDLE option").map(|n| delivery_time = Some((now as i64).wrapping_sub(n)))
        } else if option("time") {
            j += 1;
            claim_int(a.get(j), "TIME option").map(|n| delivery_time = Some(n))
        } else if option("retrycount") {
            j += 1;
            claim_int(a.get(j), "RETRYCOUNT option").map(|n| retry_count = Some(n))
        } else if option("lastid") {
            j += 1;
            strict_id(a.get(j)).map(|id| last_id = id).map_err(String::from)
        } else {
            Err(format!("ERR Unrecognized XCLAIM option '{}'", super::printable(opt, usize::MAX)))
        };
        if let Err(e) = parsed {
            return r.error(&e);
        }
        j += 1;
    }
    let mut fx = GroupEffects::new(ctx, key, gname);
    let s = changing_stream(ctx, key);
    let g = s.groups.get_mut(gname).expect("checked above");
    let moved = last_id > g.last_id;
    g.last_id = g.last_id.max(last_id);
    // A bogus time (negative or in the future) becomes now, as in Redis;
    // an AOF replays at time 0 (nothing expires), keeping the recorded time.
    let delivery_time = match delivery_time {
        Some(t) if t >= 0 && (t as u64 <= now || now == 0) => t as u64,
        _ => now,
    };
    let mut claimed: Vec<StreamId> = Vec::new();
    let mut consumer: Option<Arc<[u8]>> = None;
    // Whether claiming created the consumer (its event follows the loop).
    let mut created = false;
    for j in 5..ids_end {
        let id = strict_id(a.get(j)).expect("checked above");
        if s.get(id).is_none() {
            // Gone from the stream: drop it from the PEL too.
            if s.groups.get_mut(gname).expect("checked above").ack(id) {
                fx.ack(id);
            }
            continue;
        }
        let g = s.groups.get_mut(gname).expect("checked above");
        // FORCE creates a missing pending entry; a new one ignores the idle time.
        let forced = match g.pending.get(&id) {
            Some(p) if min_idle > 0 && now.saturating_sub(p.delivery_time) < min_idle => continue,
            Some(_) => false,
            None if force => true,
            None => continue,
        };
        let name = consumer.get_or_insert_with(|| {
            let (name, c, new) = g.consumer(a.get(3), now);
            c.seen_time = now;
            created = new;
            name
        });
        if forced {
            g.pending.insert(id, Pending { consumer: name.clone(), delivery_time: now, delivery_count: 1 });
        }
        g.reassign(id, name);
        let p = g.pending.get_mut(&id).expect("pending");
        p.delivery_time = delivery_time;
        match retry_count {
            Some(n) if n >= 0 => p.delivery_count = n as u64,
            _ if !justid => p.delivery_count += 1,
            _ => {}
        }
        fx.xclaim(name, id, p, g.last_id);
        claimed.push(id);
    }
    if moved {
        fx.setid(&s.groups[gname]);
    }
    r.array(claimed.len());
    for id in claimed {
        if justid {
            reply_id(r, id);
        } else {
            reply_entry(r, s.get(id).expect("checked above"));
        }
    }
    fx.journal(ctx);
    if created {
        ctx.notify(STREAM, "xgroup-createconsumer", key);
    }
}

fn xautoclaim(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let now = ctx.now;
    let min_idle = match parse_i64(a.get(4)) {
        Some(n) => n.max(0) as u64,
        None => return r.error("ERR Invalid min-idle-time argument for XAUTOCLAIM"),
    };
    let start = match interval_bound(a.get(5), false) {
        Ok(s) => s,
        Err(e) => return r.error(e),
    };
    let mut count: u64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < a.len() {
        if a.is(j, "count") && j + 1 < a.len() {
            match parse_i64(a.get(j + 1)) {
                Some(n) if (1..=i64::MAX / 16).contains(&n) => count = n as u64,
                _ => return r.error("ERR COUNT must be > 0"),
            }
            j += 1;
        } else if a.is(j, "justid") {
            justid = true;
        } else {
            return r.error(err::SYNTAX);
        }
        j += 1;
    }
    let (key, gname) = (a.get(1), a.get(2));
    match read_stream(ctx, key) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(Some(s)) if s.groups.contains_key(gname) => {}
        Ok(_) => return r.error(&nogroup(key, gname)),
    }
    let mut fx = GroupEffects::new(ctx, key, gname);
    let s = changing_stream(ctx, key);
    let mut attempts = count * 10;
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let mut consumer: Option<Arc<[u8]>> = None;
    // Whether claiming created the consumer (its event follows the loop).
    let mut created = false;
    // The next PEL position to look at; None once past the largest ID.
    let mut cursor = Some(start);
    while attempts > 0 && count > 0 {
        attempts -= 1;
        let g = s.groups.get_mut(gname).expect("checked above");
        let Some(id) = cursor.and_then(|c| g.pending.range(c..).next().map(|(id, _)| *id)) else {
            cursor = None;
            break;
        };
        cursor = id.next();
        if s.get(id).is_none() {
            s.groups.get_mut(gname).expect("checked above").ack(id);
            fx.ack(id);
            deleted.push(id);
            count -= 1;
            continue;
        }
        let g = s.groups.get_mut(gname).expect("checked above");
        if min_idle > 0 && now.saturating_sub(g.pending[&id].delivery_time) < min_idle {
            continue;
        }
        let name = consumer.get_or_insert_with(|| {
            let (name, c, new) = g.consumer(a.get(3), now);
            c.seen_time = now;
            created = new;
            name
        });
        g.reassign(id, name);
        let p = g.pending.get_mut(&id).expect("pending");
        p.delivery_time = now;
        if !justid {
            p.delivery_count += 1;
        }
        fx.xclaim(name, id, p, g.last_id);
        claimed.push(id);
        count -= 1;
    }
    let g = &s.groups[gname];
    let next = cursor.and_then(|c| g.pending.range(c..).next().map(|(id, _)| *id)).unwrap_or(StreamId::MIN);
    r.array(3);
    reply_id(r, next);
    r.array(claimed.len());
    for id in claimed {
        if justid {
            reply_id(r, id);
        } else {
            reply_entry(r, s.get(id).expect("checked above"));
        }
    }
    r.array(deleted.len());
    for id in deleted {
        reply_id(r, id);
    }
    fx.journal(ctx);
    if created {
        ctx.notify(STREAM, "xgroup-createconsumer", key);
    }
}

// --- XSETID -----------------------------------------------------------------------

fn xsetid(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let id = match strict_id(a.get(2)) {
        Ok(id) => id,
        Err(e) => return r.error(e),
    };
    let mut entries_added = None;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < a.len() {
        let more = i + 1 < a.len();
        if a.is(i, "entriesadded") && more {
            match parse_i64(a.get(i + 1)) {
                None => return r.error(err::NOT_INT),
                Some(n) if n < 0 => return r.error("ERR entries_added must be positive"),
                Some(n) => entries_added = Some(n as u64),
            }
        } else if a.is(i, "maxdeletedid") && more {
            match strict_id(a.get(i + 1)) {
                Err(e) => return r.error(e),
                Ok(m) if id < m => return r.error("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"),
                Ok(m) => max_deleted = m,
            }
        } else {
            return r.error(err::SYNTAX);
        }
        i += 2;
    }
    let s = match write_stream(ctx, a.get(1)) {
        Ok(Some(s)) => s,
        Ok(None) => return r.error(err::NO_KEY),
        Err(()) => return r.error(err::WRONGTYPE),
    };
    if let Some(last) = s.last_entry() {
        if id < last.id {
            return r.error("ERR The ID specified in XSETID is smaller than the target stream top item");
        }
        if entries_added.is_some_and(|n| n < s.len()) {
            return r.error("ERR The entries_added specified in XSETID is smaller than the target stream length");
        }
    }
    s.last_id = id;
    if let Some(n) = entries_added {
        s.entries_added = n;
    }
    if !max_deleted.is_zero() {
        s.max_deleted_id = max_deleted;
    }
    ctx.notify(STREAM, "xsetid", a.get(1));
    r.ok();
}

// --- XGROUP -----------------------------------------------------------------------

fn xgroup_help(_: &mut Ctx, r: &mut Reply, _: Args) {
    super::connection::help(
        r,
        "XGROUP",
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    );
}

fn subcommand_syntax_error(r: &mut Reply, a: &Args) {
    r.error(&format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        super::printable(a.get(1), 128),
        String::from_utf8_lossy(a.get(0)).to_ascii_uppercase()
    ));
}

/// Options of XGROUP CREATE/SETID: (MKSTREAM, ENTRIESREAD). None: error replied.
fn group_opts(r: &mut Reply, a: &Args, create: bool) -> Option<(bool, i64)> {
    let (mut mkstream, mut entries_read) = (false, ENTRIES_READ_UNKNOWN);
    let mut i = 5;
    while i < a.len() {
        if create && a.is(i, "mkstream") {
            mkstream = true;
        } else if a.is(i, "entriesread") && i + 1 < a.len() {
            match parse_i64(a.get(i + 1)) {
                None => {
                    r.error(err::NOT_INT);
                    return None;
                }
                Some(n) if n < 0 && n != ENTRIES_READ_UNKNOWN => {
                    r.error("ERR value for ENTRIESREAD must be positive or -1");
                    return None;
                }
                Some(n) => entries_read = n,
            }
            i += 1;
        } else {
            subcommand_syntax_error(r, a);
            return None;
        }
        i += 1;
    }
    Some((mkstream, entries_read))
}

const XGROUP_NEEDS_KEY: &str =
    "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.";

/// The stream and group an XGROUP subcommand works on; None: error replied.
fn xgroup_target<'a, 'b>(ctx: &'a mut Ctx, r: &mut Reply, a: &Args<'b>) -> Option<(&'a mut StreamValue, &'b [u8])> {
    let (key, gname) = (a.get(2), a.get(3));
    match write_stream(ctx, key) {
        Err(()) => r.error(err::WRONGTYPE),
        Ok(None) => r.error(XGROUP_NEEDS_KEY),
        Ok(Some(s)) if !s.groups.contains_key(gname) && !a.is(1, "destroy") => {
            r.error(&format!("NOGROUP No such consumer group '{}' for key name '{}'", super::printable(gname, usize::MAX), super::printable(key, usize::MAX)))
        }
        Ok(Some(s)) => return Some((s, gname)),
    }
    None
}

fn xgroup_create(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let Some((mkstream, entries_read)) = group_opts(r, &a, true) else { return };
    let (key, gname) = (a.get(2), a.get(3));
    let last_id = match write_stream(ctx, key) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(None) if !mkstream => return r.error(XGROUP_NEEDS_KEY),
        Ok(s) => s.map_or(StreamId::MIN, |s| s.last_id),
    };
    if a.len() > 8 {
        return subcommand_syntax_error(r, &a);
    }
    let id = if a.get(4) == b"$" {
        last_id
    } else {
        match strict_id(a.get(4)) {
            Ok(id) => id,
            Err(e) => return r.error(e),
        }
    };
    if ctx.write(key).is_none() {
        ctx.db().insert(key, Value::Stream(Box::default()), 0);
    }
    let s = write_stream(ctx, key).ok().flatten().expect("a stream at key");
    if s.groups.contains_key(gname) {
        return r.error("BUSYGROUP Consumer Group name already exists");
    }
    s.groups.insert(gname.into(), Group::new(id, entries_read));
    ctx.notify(STREAM, "xgroup-create", key);
    r.ok();
}

fn xgroup_setid(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let Some((_, entries_read)) = group_opts(r, &a, false) else { return };
    let Some((s, gname)) = xgroup_target(ctx, r, &a) else { return };
    if a.len() != 5 && a.len() != 7 {
        return subcommand_syntax_error(r, &a);
    }
    let id = if a.get(4) == b"$" {
        s.last_id
    } else {
        match StreamId::parse(a.get(4), 0, false, None) {
            Some(id) => id,
            None => return r.error(INVALID_ID),
        }
    };
    let g = s.groups.get_mut(gname).expect("checked by xgroup_target");
    g.last_id = id;
    g.entries_read = entries_read;
    ctx.notify(STREAM, "xgroup-setid", a.get(2));
    r.ok();
}

fn xgroup_destroy(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let Some((s, gname)) = xgroup_target(ctx, r, &a) else { return };
    let destroyed = s.groups.remove(gname).is_some();
    r.int(destroyed as i64);
    if destroyed {
        ctx.notify(STREAM, "xgroup-destroy", a.get(2));
        // Readers blocked on the group get an error.
        ctx.db().signal_ready(a.get(2));
    }
}

fn xgroup_createconsumer(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let now = ctx.now;
    let Some((s, gname)) = xgroup_target(ctx, r, &a) else { return };
    let (_, _, created) = s.groups.get_mut(gname).expect("checked by xgroup_target").consumer(a.get(4), now);
    if created {
        ctx.notify(STREAM, "xgroup-createconsumer", a.get(2));
    }
    r.int(created as i64);
}

fn xgroup_delconsumer(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let Some((s, gname)) = xgroup_target(ctx, r, &a) else { return };
    let pending = s.groups.get_mut(gname).expect("checked by xgroup_target").delete_consumer(a.get(4));
    if pending.is_some() {
        ctx.notify(STREAM, "xgroup-delconsumer", a.get(2));
    }
    r.int(pending.unwrap_or(0) as i64);
}

// --- XINFO ------------------------------------------------------------------------

fn xinfo_help(_: &mut Ctx, r: &mut Reply, _: Args) {
    super::connection::help(
        r,
        "XINFO",
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    );
}

/// The stream XINFO looks at; None: error replied.
fn xinfo_target<'a>(ctx: &'a mut Ctx, r: &mut Reply, key: &[u8]) -> Option<&'a mut StreamValue> {
    match read_stream(ctx, key) {
        Ok(Some(s)) => Some(s),
        Ok(None) => {
            r.error(err::NO_KEY);
            None
        }
        Err(()) => {
            r.error(err::WRONGTYPE);
            None
        }
    }
}

fn xinfo_consumers(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let now = ctx.now;
    let Some(s) = xinfo_target(ctx, r, a.get(2)) else { return };
    let Some(g) = s.groups.get(a.get(3)) else {
        return r.error(&format!(
            "NOGROUP No such consumer group '{}' for key name '{}'",
            super::printable(a.get(3), usize::MAX),
            super::printable(a.get(2), usize::MAX)
        ));
    };
    r.array(g.consumers.len());
    for (name, c) in &g.consumers {
        r.map(3);
        r.bulk(b"name");
        r.bulk(name);
        r.bulk(b"pending");
        r.int(c.pending.len() as i64);
        r.bulk(b"idle");
        r.int(now.saturating_sub(c.seen_time) as i64);
    }
}

/// A group's entries-read (null when unknown) and lag (null when unknowable).
fn reply_group_progress(r: &mut Reply, s: &StreamValue, g: &Group) {
    r.bulk(b"entries-read");
    if g.entries_read == ENTRIES_READ_UNKNOWN {
        r.null();
    } else {
        r.int(g.entries_read);
    }
    r.bulk(b"lag");
    match s.lag(g) {
        Some(n) => r.int(n as i64),
        None => r.null(),
    }
}

fn xinfo_groups(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let Some(s) = xinfo_target(ctx, r, a.get(2)) else { return };
    r.array(s.groups.len());
    for (name, g) in &s.groups {
        r.map(6);
        r.bulk(b"name");
        r.bulk(name);
        r.bulk(b"consumers");
        r.int(g.consumers.len() as i64);
        r.bulk(b"pending");
        r.int(g.pending.len() as i64);
        r.bulk(b"last-delivered-id");
        reply_id(r, g.last_id);
        reply_group_progress(r, s, g);
    }
}

fn xinfo_stream(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let Some(s) = xinfo_target(ctx, r, a.get(2)) else { return };
    // None: the short form; Some(count): FULL, with count entries (0: all).
    let full = match a.len() {
        3 => None,
        4 if a.is(3, "full") => Some(10),
        6 if a.is(3, "full") && a.is(4, "count") => match parse_i64(a.get(5)) {
            Some(n) => Some(if n < 0 { 10 } else { n as u64 }),
            None => return r.error(err::NOT_INT),
        },
        _ => return subcommand_syntax_error(r, &a),
    };
    r.map(if full.is_some() { 9 } else { 10 });
    r.bulk(b"length");
    r.int(s.len() as i64);
    r.bulk(b"radix-tree-keys");
    r.int(s.chunk_count() as i64);
    r.bulk(b"radix-tree-nodes");
    r.int(s.rax_nodes() as i64);
    r.bulk(b"last-generated-id");
    reply_id(r, s.last_id);
    r.bulk(b"max-deleted-entry-id");
    reply_id(r, s.max_deleted_id);
    r.bulk(b"entries-added");
    r.int(s.entries_added as i64);
    r.bulk(b"recorded-first-entry-id");
    reply_id(r, s.first_id);
    let Some(count) = full else {
        r.bulk(b"groups");
        r.int(s.groups.len() as i64);
        for (name, e) in [(&b"first-entry"[..], s.first_entry()), (b"last-entry", s.last_entry())] {
            r.bulk(name);
            match e {
                Some(e) => reply_entry(r, e),
                None => r.null(),
            }
        }
        return;
    };
    r.bulk(b"entries");
    reply_range(r, s, StreamId::MIN, StreamId::MAX, count, false);
    r.bulk(b"groups");
    r.array(s.groups.len());
    let take = if count == 0 { usize::MAX } else { count as usize };
    for (name, g) in &s.groups {
        r.map(7);
        r.bulk(b"name");
        r.bulk(name);
        r.bulk(b"last-delivered-id");
        reply_id(r, g.last_id);
        reply_group_progress(r, s, g);
        r.bulk(b"pel-count");
        r.int(g.pending.len() as i64);
        r.bulk(b"pending");
        r.array(g.pending.len().min(take));
        for (id, p) in g.pending.iter().take(take) {
            r.array(4);
            reply_id(r, *id);
            r.bulk(&p.consumer);
            r.int(p.delivery_time as i64);
            r.int(p.delivery_count as i64);
        }
        r.bulk(b"consumers");
        r.array(g.consumers.len());
        for (name, c) in &g.consumers {
            r.map(4);
            r.bulk(b"name");
            r.bulk(name);
            r.bulk(b"seen-time");
            r.int(c.seen_time as i64);
            r.bulk(b"pel-count");
            r.int(c.pending.len() as i64);
            r.bulk(b"pending");
            r.array(c.pending.len().min(take));
            for id in c.pending.iter().take(take) {
                let p = &g.pending[id];
                r.array(3);
                reply_id(r, *id);
                r.int(p.delivery_time as i64);
                r.int(p.delivery_count as i64);
            }
        }
    }
}
