//! HyperLogLog commands (Redis' hyperloglog.c). An HLL is a string in Redis'
//! format (`types::hyperloglog`), so GET, SET, APPEND... see its bytes.

use super::{cmd, flags::*, printable, Args, Command, Ctx, Run};
use crate::config;
use crate::resp::{err, Reply};
use crate::server::txn::gather_span;
use crate::shard::db::Entry;
use crate::shard::notify::STRING;
use crate::types::hyperloglog::{self as hll, HDR_SIZE, REGISTERS};
use crate::types::{StrValue, Value};

const G: &str = "hyperloglog";

pub static COMMANDS: &[Command] = &[
    cmd("pfadd", -2, WRITE | DENYOOM | FAST, (1, 1, 1), G, "2.8.9", "Adds the specified elements to the specified HyperLogLog.", Run::Shard(pfadd)),
    cmd("pfcount", -2, READONLY, (1, -1, 1), G, "2.8.9", "Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s).", Run::Span(pfcount, gather_span)),
    cmd("pfmerge", -2, WRITE | DENYOOM, (1, -1, 1), G, "2.8.9", "Merge N different HyperLogLogs into a single one.", Run::Span(pfmerge, gather_span)),
    cmd("pfdebug", 3, WRITE | DENYOOM | ADMIN, (2, 2, 1), G, "2.8.9", "Internal commands for debugging HyperLogLog values", Run::Shard(pfdebug)),
    cmd("pfselftest", 1, ADMIN, super::NOKEYS, G, "2.8.9", "An internal command for testing HyperLogLog values", Run::Shard(pfselftest)),
];

const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
const CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";

/// The bytes of a value that is a valid HLL, or the error to reply.
fn hll_bytes(v: &Value) -> Result<&[u8], &'static str> {
    let b: &[u8] = match v.as_str().ok_or(err::WRONGTYPE)? {
        // Digits never start with the magic.
        StrValue::Int(_) => return Err(NOT_HLL),
        StrValue::Emb(b) => b,
        StrValue::Raw(v) => v,
    };
    if hll::is_valid(b) {
        Ok(b)
    } else {
        Err(NOT_HLL)
    }
}

/// The HLL of an entry about to be modified (Redis unshares it: raw encoding).
fn hll_mut(e: &mut Entry) -> Result<&mut Vec<u8>, &'static str> {
    hll_bytes(&e.value)?;
    Ok(e.value.as_str_mut().expect("checked a string").make_raw())
}

/// Runs `f` on the HLL at `key` about to be modified, or on a new empty one
/// stored there afterwards (`f` is told which). One lookup when the key
/// exists. Err: the error to reply (not an HLL, or `f`'s).
fn with_hll<T>(ctx: &mut Ctx, key: &[u8], f: impl FnOnce(&mut Vec<u8>, bool) -> Result<T, &'static str>) -> Result<T, &'static str> {
    if let Some(e) = ctx.write(key) {
        return f(hll_mut(e)?, false);
    }
    let mut h = hll::new_sparse();
    let out = f(&mut h, true);
    ctx.db().insert(key, Value::Str(StrValue::Raw(h)), 0);
    out
}

fn pfadd(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let max_bytes = config::hll_sparse_max_bytes() as usize;
    let added = with_hll(ctx, a.get(1), |h, created| {
        let mut updated = created;
        for ele in a.iter().skip(2) {
            updated |= hll::add(h, ele, max_bytes).map_err(|_| CORRUPT)?;
        }
        if updated {
            hll::invalidate_card(h);
        }
        Ok(updated)
    });
    match added {
        Ok(updated) => {
            if updated {
                ctx.notify(STRING, "pfadd", a.get(1));
            }
            r.int(updated as i64)
        }
        Err(msg) => r.error(msg),
    }
}

/// Registers of every HLL among `keys` merged (max per register), one per
/// byte, and whether any of them is dense. Missing keys count as empty.
fn merge_keys<'k>(ctx: &mut Ctx, keys: impl Iterator<Item = &'k [u8]>) -> Result<(Box<[u8; REGISTERS]>, bool), &'static str> {
    let mut max = Box::new([0u8; REGISTERS]);
    let mut any_dense = false;
    for key in keys {
        let Some(e) = ctx.read(key) else { continue };
        let b = hll_bytes(&e.value)?;
        any_dense |= !hll::is_sparse(b);
        hll::merge_into(&mut max, b).map_err(|_| CORRUPT)?;
    }
    Ok((max, any_dense))
}

fn pfcount(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    if a.len() > 2 {
        // The union's cardinality; no key is modified.
        return match merge_keys(ctx, a.iter().skip(1)) {
            Ok((max, _)) => r.int(hll::count_registers(&max[..]) as i64),
            Err(msg) => r.error(msg),
        };
    }
    let Some(e) = ctx.read(a.get(1)) else { return r.int(0) };
    let h = match hll_mut(e) {
        Ok(h) => h,
        Err(msg) => return r.error(msg),
    };
    // A valid cached cardinality is returned as is; otherwise it is computed
    // and cached in the header, as Redis does (the value changes on a read).
    let card = match hll::cached_card(h) {
        Some(c) => c,
        None => match hll::count(h) {
            Ok(c) => {
                hll::set_cached_card(h, c);
                c
            }
            Err(hll::Corrupt) => return r.error(CORRUPT),
        },
    };
    r.int(card as i64);
}

fn pfmerge(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    // The destination is a source too.
    let (max, any_dense) = match merge_keys(ctx, a.iter().skip(1)) {
        Ok(m) => m,
        Err(msg) => return r.error(msg),
    };
    let max_bytes = config::hll_sparse_max_bytes() as usize;
    let merged = with_hll(ctx, a.get(1), |h, _| {
        // Dense if any input is: cheaper than growing a sparse one to promotion.
        if any_dense {
            hll::to_dense(h).map_err(|_| CORRUPT)?;
        }
        // The destination was validated by the merge: it cannot be corrupt.
        hll::raise_all(h, &max, max_bytes).map_err(|_| CORRUPT)?;
        hll::invalidate_card(h);
        Ok(())
    });
    match merged {
        // Redis raises PFADD's event for a merge too.
        Ok(()) => {
            ctx.notify(STRING, "pfadd", a.get(1));
            r.ok()
        }
        Err(msg) => r.error(msg),
    }
}

fn pfdebug(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let sub = a.get(1);
    let Some(e) = ctx.write(a.get(2)) else { return r.error("ERR The specified key does not exist") };
    let h = match hll_mut(e) {
        Ok(h) => h,
        Err(msg) => return r.error(msg),
    };
    if a.is(1, "getreg") {
        if hll::to_dense(h).is_err() {
            return r.error(CORRUPT);
        }
        r.array(REGISTERS);
        for i in 0..REGISTERS {
            r.int(hll::dense_get(&h[HDR_SIZE..], i) as i64);
        }
    } else if a.is(1, "decode") {
        if !hll::is_sparse(h) {
            return r.error("ERR HLL encoding is not sparse");
        }
        r.bulk(hll::decode_sparse(h).as_bytes());
    } else if a.is(1, "encoding") {
        r.simple(if hll::is_sparse(h) { "sparse" } else { "dense" });
    } else if a.is(1, "todense") {
        match hll::to_dense(h) {
            Ok(converted) => r.int(converted as i64),
            Err(hll::Corrupt) => r.error(CORRUPT),
        }
    } else {
        r.error(&format!("ERR Unknown PFDEBUG subcommand '{}'", printable(sub, sub.len())));
    }
}

fn pfselftest(ctx: &mut Ctx, r: &mut Reply, _: Args) {
    match hll::self_test(|| ctx.shard.rand(), config::hll_sparse_max_bytes() as usize) {
        Ok(()) => r.ok(),
        Err(msg) => r.error(&format!("ERR TESTFAILED {msg}")),
    }
}
