//! SORT and SORT_RO (Redis' sort.c).
//!
//! BY and GET patterns name other keys, which may live on any core, so SORT
//! is a connection command that coordinates one transaction: with patterns
//! it locks every shard whole (the keys they name are only known once the
//! elements are read), otherwise just its keys. It loads the elements on
//! the key's shard, gathers the values the patterns name with one step per
//! shard holding some, sorts on the connection's core, then replies, or
//! stores the list on the destination's shard.

use std::cmp::Ordering;

use super::{cmd, flags::*, ArgList, BoxFuture, Command, Ctx, OwnedArgs, Run};
use crate::config;
use crate::resp::err;
use crate::resp::parser::parse_i64;
use crate::server::session::Session;
use crate::server::txn::{group_keys, lock_sets, Txn};
use crate::shard::locks::{LockSet, Mode};
use crate::types::list::End;
use crate::types::{ListValue, Value};
use crate::util::parse_double;

const G: &str = "generic";

pub static COMMANDS: &[Command] = &[
    cmd("sort", -2, WRITE | DENYOOM, (1, 1, 1), G, "1.0.0", "Sort the elements in a list, set or sorted set", Run::Conn(sort)).with_keys(sort_keys),
    cmd("sort_ro", -2, READONLY, (1, 1, 1), G, "7.0.0", "Sort the elements in a list, set or sorted set. Read-only variant of SORT.", Run::Conn(sort_ro)),
];

const BAD_SCORE: &str = "ERR One or more scores can't be converted into double";

/// The sorted key and the STORE destination, if any: the last STORE, which
/// is the one SORT writes (`parse`).
fn sort_keys(a: &dyn ArgList) -> [std::ops::Range<usize>; 2] {
    let mut store = 0..0;
    let mut j = 2;
    while j < a.argc() {
        let arg = a.arg(j);
        let word = |w: &[u8]| arg.eq_ignore_ascii_case(w);
        if word(b"store") && j + 1 < a.argc() {
            store = j + 1..j + 2;
        }
        j += if word(b"limit") { 3 } else if word(b"by") || word(b"get") || word(b"store") { 2 } else { 1 };
    }
    [1..2, store]
}

struct SortOpts {
    desc: bool,
    alpha: bool,
    /// LIMIT offset count (count < 0: all); (0, -1) without LIMIT.
    limit: (i64, i64),
    store: Option<Vec<u8>>,
    /// BY with a `*` in it.
    by: Option<Vec<u8>>,
    /// BY without `*`: keep the elements' own order.
    dontsort: bool,
    gets: Vec<Vec<u8>>,
}

fn parse(a: &OwnedArgs, readonly: bool) -> Result<SortOpts, &'static str> {
    let mut o = SortOpts { desc: false, alpha: false, limit: (0, -1), store: None, by: None, dontsort: false, gets: Vec::new() };
    let mut j = 2;
    while j < a.len() {
        let left = a.len() - j - 1;
        if a.is(j, "asc") {
            o.desc = false;
        } else if a.is(j, "desc") {
            o.desc = true;
        } else if a.is(j, "alpha") {
            o.alpha = true;
        } else if a.is(j, "limit") && left >= 2 {
            let n = |i| parse_i64(a.get(i)).ok_or(err::NOT_INT);
            o.limit = (n(j + 1)?, n(j + 2)?);
            j += 2;
        } else if !readonly && a.is(j, "store") && left >= 1 {
            o.store = Some(a.get(j + 1).to_vec());
            j += 1;
        } else if a.is(j, "by") && left >= 1 {
            let p = a.get(j + 1);
            o.dontsort = !p.contains(&b'*');
            o.by = (!o.dontsort).then(|| p.to_vec());
            j += 1;
        } else if a.is(j, "get") && left >= 1 {
            o.gets.push(a.get(j + 1).to_vec());
            j += 1;
        } else {
            return Err(err::SYNTAX);
        }
        j += 1;
    }
    Ok(o)
}

/// Where a pattern points for one element: Redis' lookupKeyByPattern.
enum Lookup {
    /// `#`: the element itself.
    Element,
    /// No `*`: nothing.
    Nothing,
    /// A string key, or a field of a hash key (`->field`).
    Key(Vec<u8>, Option<Vec<u8>>),
}

fn lookup(pattern: &[u8], elem: &[u8]) -> Lookup {
    if pattern == b"#" {
        return Lookup::Element;
    }
    let Some(star) = pattern.iter().position(|&c| c == b'*') else { return Lookup::Nothing };
    // A field follows the first "->" after the `*`, if anything follows it.
    let arrow = pattern[star + 1..].windows(2).position(|w| w == b"->").map(|i| star + 1 + i).filter(|&i| i + 2 < pattern.len());
    let key_end = arrow.unwrap_or(pattern.len());
    let mut key = Vec::with_capacity(key_end + elem.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(&pattern[star + 1..key_end]);
    Lookup::Key(key, arrow.map(|i| pattern[i + 2..].to_vec()))
}

/// The value a key (or hash field) holds for a pattern, on its shard.
fn read_pointed(ctx: &mut Ctx, key: &[u8], field: Option<&[u8]>) -> Option<Vec<u8>> {
    let v = &ctx.read(key)?.value;
    match field {
        Some(f) => v.as_hash()?.get(f).map(<[u8]>::to_vec),
        None => Some(v.as_str()?.to_vec()),
    }
}

/// The values `patterns` point to for `elems`, `[element][pattern]`,
/// gathered under `txn` with one step per shard holding some.
async fn resolve(s: &Session, txn: &Txn, patterns: &[Vec<u8>], elems: &[Vec<u8>]) -> Vec<Vec<Option<Vec<u8>>>> {
    let mut out: Vec<Vec<Option<Vec<u8>>>> = vec![vec![None; patterns.len()]; elems.len()];
    let mut wanted = Vec::new();
    for (e, elem) in elems.iter().enumerate() {
        for (p, pattern) in patterns.iter().enumerate() {
            match lookup(pattern, elem) {
                Lookup::Element => out[e][p] = Some(elem.clone()),
                Lookup::Nothing => {}
                Lookup::Key(key, field) => wanted.push(((e, p), key, field)),
            }
        }
    }
    let db = s.db;
    let mut by_shard: Vec<(usize, Vec<((usize, usize), Vec<u8>, Option<Vec<u8>>)>)> = Vec::new();
    for w in wanted {
        let shard = s.core.slots.shard_of_key(&w.1);
        match by_shard.iter_mut().find(|(sh, _)| *sh == shard) {
            Some((_, v)) => v.push(w),
            None => by_shard.push((shard, vec![w])),
        }
    }
    let steps = by_shard
        .into_iter()
        .map(|(shard, reqs)| {
            let f: crate::server::txn::Step<Vec<((usize, usize), Option<Vec<u8>>)>> = Box::new(move |sh| {
                let mut ctx = Ctx::new(sh, db);
                reqs.into_iter().map(|(at, key, field)| (at, read_pointed(&mut ctx, &key, field.as_deref()))).collect()
            });
            (shard, f)
        })
        .collect();
    for ((e, p), v) in txn.on_many(steps).await.into_iter().flatten() {
        out[e][p] = v;
    }
    out
}

/// The elements of the collection at `key` (none if missing), in the order
/// SORT starts from; Err if another type. A set is flagged: its order is
/// the table's.
fn load(ctx: &mut Ctx, key: &[u8], desc_native: bool) -> Result<(Vec<Vec<u8>>, bool), ()> {
    let Some(e) = ctx.read(key) else { return Ok((Vec::new(), false)) };
    let v = &mut e.value;
    if let Some(z) = v.as_zset() {
        let mut elems = Vec::with_capacity(z.len());
        if !z.is_empty() {
            z.walk(if desc_native { z.len() - 1 } else { 0 }, desc_native, |m, _| {
                elems.push(m.to_vec());
                true
            });
        }
        return Ok((elems, false));
    }
    if let Some(set) = v.as_set() {
        return Ok((set.members(), true));
    }
    let l = v.as_list_mut().ok_or(())?;
    let elems = if desc_native { l.iter_rev().map(<[u8]>::to_vec).collect() } else { l.iter_from(0).map(<[u8]>::to_vec).collect() };
    Ok((elems, false))
}

/// SORT's numeric reading of a value (C's strtod over the whole string:
/// leading blanks allowed, the empty string is 0).
fn score(v: &[u8]) -> Option<f64> {
    let v = &v[v.iter().take_while(|c| c.is_ascii_whitespace()).count()..];
    if v.is_empty() {
        return Some(0.0);
    }
    parse_double(v).filter(|s| !s.is_nan())
}

fn sort(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(sort_generic(s, a, false))
}

fn sort_ro(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(sort_generic(s, a, true))
}

async fn sort_generic(s: &mut Session, a: OwnedArgs, readonly: bool) {
    let mut o = match parse(&a, readonly) {
        Ok(o) => o,
        Err(e) => return s.reply().error(e),
    };
    let db = s.db;
    let key = a.get(1).to_vec();
    let patterns = o.by.is_some() || o.gets.iter().any(|g| g.as_slice() != b"#" && g.contains(&b'*'));
    let mode = if o.store.is_some() { Mode::Exclusive } else { Mode::Shared };
    let sets = if patterns {
        (0..s.core.nshards()).map(|i| (i, LockSet { db, keys: Vec::new(), mode, whole_shard: true })).collect()
    } else {
        let keys = std::iter::once((1, key.clone())).chain(o.store.clone().map(|d| (2, d)));
        lock_sets(db, &group_keys(&s.core, keys), mode)
    };
    let txn = Txn::lock(s, sets).await;
    let desc_native = o.dontsort && o.desc;
    let k = key.clone();
    let loaded = txn.on(s.core.slots.shard_of_key(&key), move |sh| load(&mut Ctx::new(sh, db), &k, desc_native)).await;
    let (mut elems, is_set) = match loaded {
        Ok(l) => l,
        Err(()) => {
            txn.release().await;
            return s.reply().error(err::WRONGTYPE);
        }
    };
    // A set's own order is its table's: STORE sorts it, so that what is
    // stored does not depend on the table.
    if o.dontsort && is_set && o.store.is_some() {
        (o.dontsort, o.alpha, o.by) = (false, true, None);
    }
    let len = elems.len() as i64;
    let mut start = o.limit.0.max(0);
    let mut end = if o.limit.1 < 0 { len - 1 } else { start.saturating_add(o.limit.1) - 1 };
    if start >= len {
        (start, end) = (len - 1, len - 2);
    }
    end = end.min(len - 1);
    if !o.dontsort {
        let by: Vec<Option<Vec<u8>>> = match &o.by {
            Some(p) => resolve(s, &txn, std::slice::from_ref(p), &elems).await.into_iter().map(|mut v| v.pop().flatten()).collect(),
            None => elems.iter().map(|e| Some(e.clone())).collect(),
        };
        let mut order: Vec<usize> = (0..elems.len()).collect();
        if o.alpha {
            // Missing BY values sort first.
            order.sort_by(|&x, &y| by[x].cmp(&by[y]));
        } else {
            let mut scores = Vec::with_capacity(by.len());
            for v in &by {
                match v.as_deref().map_or(Some(0.0), score) {
                    Some(f) => scores.push(f),
                    None => {
                        txn.release().await;
                        return s.reply().error(BAD_SCORE);
                    }
                }
            }
            // Equal scores: the elements themselves decide, as in Redis.
            order.sort_by(|&x, &y| scores[x].partial_cmp(&scores[y]).unwrap_or(Ordering::Equal).then_with(|| elems[x].cmp(&elems[y])));
        }
        if o.desc {
            order.reverse();
        }
        let mut taken: Vec<Option<Vec<u8>>> = elems.into_iter().map(Some).collect();
        elems = order.into_iter().map(|i| taken[i].take().expect("a permutation")).collect();
    }
    let picked: Vec<Vec<u8>> = if end >= start { elems.drain(start as usize..=end as usize).collect() } else { Vec::new() };
    let rows: Vec<Vec<Option<Vec<u8>>>> = if o.gets.is_empty() { picked.into_iter().map(|e| vec![Some(e)]).collect() } else { resolve(s, &txn, &o.gets, &picked).await };
    let Some(dst) = o.store else {
        txn.release().await;
        let mut r = s.reply();
        r.array(rows.iter().map(Vec::len).sum());
        for v in rows.iter().flatten() {
            match v {
                Some(v) => r.bulk(v),
                None => r.null(),
            }
        }
        return;
    };
    let values: Vec<Vec<u8>> = rows.into_iter().flatten().map(Option::unwrap_or_default).collect();
    let n = values.len();
    txn.on(s.core.slots.shard_of_key(&dst), move |sh| {
        let mut ctx = Ctx::new(sh, db);
        let list = (!values.is_empty()).then(|| {
            let mut l = ListValue::new();
            let fill = config::list_max_listpack_size();
            values.iter().for_each(|v| l.push(End::Right, v, fill));
            Value::List(Box::new(l))
        });
        ctx.store(&dst, list, crate::shard::notify::LIST, "sortstore");
    })
    .await;
    txn.release().await;
    s.reply().int(n as i64);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(l: Lookup) -> (Vec<u8>, Option<Vec<u8>>) {
        match l {
            Lookup::Key(k, f) => (k, f),
            _ => panic!("not a key"),
        }
    }

    #[test]
    fn patterns_substitute_the_first_star_and_split_a_field() {
        assert_eq!(key(lookup(b"w_*", b"3")), (b"w_3".to_vec(), None));
        assert_eq!(key(lookup(b"h_*->f", b"3")), (b"h_3".to_vec(), Some(b"f".to_vec())));
        assert_eq!(key(lookup(b"a*b*->", b"x")), (b"axb*->".to_vec(), None));
        assert_eq!(key(lookup(b"->*->f->g", b"x")), (b"->x".to_vec(), Some(b"f->g".to_vec())));
        assert!(matches!(lookup(b"#", b"x"), Lookup::Element));
        assert!(matches!(lookup(b"nostar", b"x"), Lookup::Nothing));
    }

    #[test]
    fn scores_read_like_strtod() {
        assert_eq!(score(b""), Some(0.0));
        assert_eq!(score(b"  2.5"), Some(2.5));
        assert_eq!(score(b"2.5 "), None);
        assert_eq!(score(b"abc"), None);
        assert_eq!(score(b"nan"), None);
        assert_eq!(score(b"-inf"), Some(f64::NEG_INFINITY));
    }
}
