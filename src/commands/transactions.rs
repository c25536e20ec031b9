//! MULTI, EXEC, DISCARD, WATCH, UNWATCH (Redis' multi.c).
//!
//! MULTI makes the connection queue commands (dispatch answers +QUEUED and
//! checks each one as Redis does before queueing). EXEC runs the queue as one
//! multi-shard transaction (`server::txn`), the mechanism every multi-key
//! command uses: it locks every key of the queue and every watched key, checks
//! the watches, then runs the commands in order, each on the shard that owns
//! its keys, while no other client can touch those keys. Commands of the queue
//! that lock for themselves (a spanning MSET, FLUSHALL) join EXEC's
//! transaction instead (`Txn::lock` sees `Session::exec`). A queue holding a
//! command that works on the whole keyspace or on the session (FLUSHALL,
//! KEYS, SELECT, ...) locks every shard whole.
//!
//! WATCH registers a flag on the shard that owns each key (`Db::watch`); any
//! change of the key (a write, a deletion, an expiry, FLUSHDB) sets it, and a
//! set flag makes EXEC reply a null array.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{by_index, cmd, flags, flags::*, Args, BoxFuture, Command, Ctx, OwnedArgs, Run, NOKEYS};
use crate::server::core::lock_mode;
use crate::server::session::Session;
use crate::server::txn::{Step, Txn};
use crate::shard::Shard;
use crate::shard::db::WatchFlag;
use crate::shard::journal;
use crate::shard::tracking;
use crate::shard::locks::{LockSet, Mode};
use crate::util::now_ms;

const G: &str = "transactions";

pub static COMMANDS: &[Command] = &[
    cmd("multi", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NOKEYS, G, "1.2.0", "Mark the start of a transaction block", Run::Conn(multi)),
    cmd("exec", 1, NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG, NOKEYS, G, "1.2.0", "Execute all commands issued after MULTI", Run::Conn(exec)),
    cmd("discard", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NOKEYS, G, "2.0.0", "Discard all commands issued after MULTI", Run::Conn(discard)),
    cmd("watch", -2, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, (1, -1, 1), G, "2.2.0", "Watch the given keys to determine execution of the MULTI/EXEC block", Run::Conn(watch)),
    cmd("unwatch", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NOKEYS, G, "2.2.0", "Forget about all watched keys", Run::Conn(unwatch)),
];

/// A connection's open transaction: the queued commands, and whether one was
/// refused while queueing (EXEC then aborts).
#[derive(Default)]
pub struct Multi {
    queued: Vec<(u16, OwnedArgs)>,
    failed: bool,
}

/// A connection's watches: one flag, registered on the shard of every key.
pub struct Watching {
    flag: WatchFlag,
    keys: Vec<(usize, usize, Vec<u8>)>,
}

/// Whether a command runs at once inside MULTI instead of being queued.
pub fn runs_inside_multi(name: &str) -> bool {
    matches!(name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset")
}

/// Queues a checked command of an open transaction.
pub fn queue(s: &mut Session, ci: u16, args: &Args) {
    if let Some(m) = s.multi.as_mut() {
        m.queued.push((ci, args.to_owned()));
    }
}

/// A command refused while a transaction is open makes EXEC fail.
pub fn flag_error(s: &mut Session) {
    if let Some(m) = s.multi.as_mut() {
        m.failed = true;
    }
}

fn multi(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        if s.multi.is_some() {
            return s.reply().error("ERR MULTI calls can not be nested");
        }
        s.multi = Some(Multi::default());
        s.reply().ok();
    })
}

fn discard(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        if s.multi.take().is_none() {
            return s.reply().error("ERR DISCARD without MULTI");
        }
        forget_watches(s).await;
        s.reply().ok();
    })
}

fn watch(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        if s.multi.is_some() {
            return s.reply().error("ERR WATCH inside MULTI is not allowed");
        }
        let db = s.db;
        let w = s.watching.get_or_insert_with(|| Watching { flag: Arc::new(AtomicBool::new(false)), keys: Vec::new() });
        let flag = w.flag.clone();
        for key in a.0.into_iter().skip(1) {
            let shard = s.core.slots.shard_of_key(&key);
            let (f, k) = (flag.clone(), key.clone());
            s.core.call(shard, move |c| c.shard.borrow_mut().dbs[db].watch(&k, f, now_ms())).await;
            s.watching.as_mut().expect("created above").keys.push((shard, db, key));
        }
        s.reply().ok();
    })
}

fn unwatch(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        forget_watches(s).await;
        s.reply().ok();
    })
}

/// Removes the session's watches from their shards (UNWATCH, EXEC, DISCARD,
/// RESET, disconnect), so nothing stays behind.
pub async fn forget_watches(s: &mut Session) {
    let Some(w) = s.watching.take() else { return };
    for shard in 0..s.core.nshards() {
        let keys: Vec<(usize, Vec<u8>)> = w.keys.iter().filter(|(sh, _, _)| *sh == shard).map(|(_, db, k)| (*db, k.clone())).collect();
        if keys.is_empty() {
            continue;
        }
        let flag = w.flag.clone();
        s.core
            .call(shard, move |c| {
                let mut sh = c.shard.borrow_mut();
                for (db, k) in keys {
                    sh.dbs[db].unwatch(&k, &flag);
                }
            })
            .await;
    }
}

/// Every lock EXEC needs: the keys of the queue in the client's database
/// (exclusive where a command writes) and the watched keys; every shard
/// whole if a command works beyond its keys or the keys span databases.
fn exec_locks(s: &Session, queued: &[(u16, OwnedArgs)]) -> Vec<(usize, LockSet)> {
    let n = s.core.nshards();
    let beyond_keys = queued.iter().any(|(ci, _)| {
        let c = by_index(*ci);
        matches!(c.run, Run::Conn(_)) || c.flags & flags::OTHER_DB != 0
    });
    let watched = s.watching.as_ref().map_or(&[][..], |w| &w.keys[..]);
    if beyond_keys || watched.iter().any(|(_, db, _)| *db != s.db) {
        return (0..n).map(|i| (i, LockSet { db: 0, keys: Vec::new(), mode: Mode::Exclusive, whole_shard: true })).collect();
    }
    let mut sets: Vec<Option<LockSet>> = (0..n).map(|_| None).collect();
    let mut add = |shard: usize, key: &[u8], mode: Mode| {
        let set = sets[shard].get_or_insert_with(|| LockSet { db: s.db, keys: Vec::new(), mode: Mode::Shared, whole_shard: false });
        set.keys.push(key.into());
        if mode == Mode::Exclusive {
            set.mode = Mode::Exclusive;
        }
    };
    for (ci, a) in queued {
        let c = by_index(*ci);
        for i in c.key_indexes(a) {
            add(s.core.slots.shard_of_key(a.get(i)), a.get(i), lock_mode(c));
        }
    }
    for (shard, _, key) in watched {
        add(*shard, key, Mode::Shared);
    }
    sets.into_iter().enumerate().filter_map(|(i, set)| set.map(|set| (i, set))).collect()
}

/// Whether a watched key changed. Run holding the watched keys' locks, so
/// nothing can change them between this check and the queue's commands. A
/// key that expired since WATCH counts as changed (its deletion sets the flag).
async fn watch_broken(s: &Session, txn: &Txn) -> bool {
    let Some(w) = s.watching.as_ref() else { return false };
    for &(shard, db, ref key) in &w.keys {
        let key = key.clone();
        txn.on(shard, move |sh| sh.dbs[db].expire_if_due(&key, now_ms())).await;
    }
    w.flag.load(Ordering::Acquire)
}

fn exec(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let Some(multi) = s.multi.take() else { return s.reply().error("ERR EXEC without MULTI") };
        if multi.failed {
            forget_watches(s).await;
            return s.reply().error("EXECABORT Transaction discarded because of previous errors.");
        }
        if let Some(plan) = by_shard(s, &multi.queued) {
            return exec_by_shard(s, multi.queued, plan).await;
        }
        let txn = Txn::acquire(&s.core, s.info.id, exec_locks(s, &multi.queued)).await;
        if watch_broken(s, &txn).await {
            txn.release().await;
            forget_watches(s).await;
            return s.reply().null_array();
        }
        s.reply().array(multi.queued.len());
        s.exec = Some(txn.scope());
        // Each shard's records of the queue become one MULTI/EXEC unit.
        let journaled = crate::config::get_int("appendonly") == 1;
        if journaled {
            txn.on_many(txn.shards().iter().map(|&i| (i, Box::new(|sh: &mut Shard| sh.journal_begin_multi()) as Step<()>)).collect()).await;
        }
        for (ci, a) in multi.queued {
            run_queued(s, &txn, ci, a).await;
        }
        if journaled {
            txn.on_many(txn.shards().iter().map(|&i| (i, Box::new(|sh: &mut Shard| sh.journal_end_multi()) as Step<()>)).collect()).await;
        }
        s.exec = None;
        txn.release().await;
        forget_watches(s).await;
    })
}

/// A queue whose commands each run on one shard by themselves (no
/// connection-level, spanning or other-database command; no tracking, whose
/// reads are remembered per command): per queued command, its shard.
fn by_shard(s: &Session, queued: &[(u16, OwnedArgs)]) -> Option<Vec<usize>> {
    if s.tracking {
        return None;
    }
    let core = &s.core;
    queued
        .iter()
        .map(|(ci, a)| {
            let c = by_index(*ci);
            if matches!(c.run, Run::Conn(_)) || c.flags & flags::OTHER_DB != 0 {
                return None;
            }
            let mut owners = c.key_indexes(a).map(|i| core.slots.shard_of_key(a.get(i)));
            let first = owners.next().unwrap_or(core.id);
            owners.all(|o| o == first).then_some(first)
        })
        .collect()
}

/// EXEC of a queue that `by_shard` split: each shard gets its commands in
/// one step, run as soon as its locks are held (`Txn::run_locked`); with
/// watched keys every lock is taken and the watches checked first.
async fn exec_by_shard(s: &mut Session, queued: Vec<(u16, OwnedArgs)>, shard_of: Vec<usize>) {
    let n = queued.len();
    let mut sets = exec_locks(s, &queued);
    let mut programs: Vec<(usize, Vec<(u16, OwnedArgs)>)> = Vec::new();
    // Per queued command: its program and its place there.
    let mut place = Vec::with_capacity(n);
    for ((ci, a), shard) in queued.into_iter().zip(shard_of) {
        let p = match programs.iter().position(|(sh, _)| *sh == shard) {
            Some(p) => p,
            None => {
                programs.push((shard, Vec::new()));
                programs.len() - 1
            }
        };
        place.push((p, programs[p].1.len()));
        programs[p].1.push((ci, a));
    }
    // Keyless commands run on this core, which may hold no lock yet.
    for (shard, _) in &programs {
        if !sets.iter().any(|(sh, _)| sh == shard) {
            sets.push((*shard, LockSet { db: s.db, keys: Vec::new(), mode: Mode::Shared, whole_shard: false }));
        }
    }
    let (db, proto, id) = (s.db, s.proto, s.info.id);
    let journaled = crate::config::get_int("appendonly") == 1;
    let steps: Vec<(usize, Step<(Vec<u8>, Vec<usize>)>)> = programs
        .into_iter()
        .map(|(shard, cmds)| {
            let step: Step<_> = Box::new(move |sh: &mut Shard| {
                if journaled {
                    sh.journal_begin_multi();
                }
                let (mut out, mut ends) = (Vec::new(), Vec::with_capacity(cmds.len()));
                for (ci, a) in cmds {
                    let c = by_index(ci);
                    let (Run::Shard(f) | Run::Span(f, _)) = c.run else { unreachable!("by_shard keeps shard commands") };
                    let (base, ranges) = a.flatten();
                    journal::run(f, c, &mut Ctx::new(sh, db), &mut out, proto, Args::new(&base, &ranges));
                    ends.push(out.len());
                }
                if journaled {
                    sh.journal_end_multi();
                }
                (out, ends)
            });
            (shard, step)
        })
        .collect();
    let results = if s.watching.is_none() {
        // Without watches the locked shards are exactly the programs' shards.
        let plan = steps
            .into_iter()
            .map(|(shard, step)| {
                let i = sets.iter().position(|(sh, _)| *sh == shard).expect("every program's shard is locked");
                (shard, sets.swap_remove(i).1, step)
            })
            .collect();
        Txn::run_locked(&s.core, id, plan).await
    } else {
        let txn = Txn::acquire(&s.core, s.info.id, sets).await;
        if watch_broken(s, &txn).await {
            txn.release().await;
            forget_watches(s).await;
            return s.reply().null_array();
        }
        let results = txn.on_many(steps).await;
        txn.release().await;
        forget_watches(s).await;
        results
    };
    s.core.clients.borrow_mut().stats.commands_processed += n as u64;
    s.reply().array(n);
    for (p, j) in place {
        let (out, ends) = &results[p];
        let start = if j == 0 { 0 } else { ends[j - 1] };
        s.out.extend_from_slice(&out[start..ends[j]]);
    }
}

/// Runs one queued command inside EXEC's transaction, its reply appended to
/// the session's output: a single-shard one on its shard (no lock checks:
/// the transaction holds its keys), the others through their own paths,
/// which join the transaction. Scripts run their commands through it too.
pub async fn run_queued(s: &mut Session, txn: &Txn, ci: u16, a: OwnedArgs) {
    let c = by_index(ci);
    s.core.clients.borrow_mut().stats.commands_processed += 1;
    let (f, span) = match c.run {
        Run::Conn(f) => return f(s, a).await,
        Run::Shard(f) => (f, None),
        Run::Span(f, span) => (f, Some(span)),
    };
    // A tracking client's reads (a spanning MGET too) are remembered on
    // their shards before they run, as outside EXEC and scripts.
    if s.tracking {
        crate::server::tracking::remember(s, c, &a).await;
    }
    let mut owners = c.key_indexes(&a).map(|i| s.core.slots.shard_of_key(a.get(i)));
    let target = owners.next();
    if owners.any(|o| Some(o) != target) {
        let span = span.expect("multi-key commands that can span cores have a coordinator");
        return span(s, a).await;
    }
    let (db, proto, id) = (s.db, s.proto, s.info.id);
    let core = s.core.clone();
    match target.filter(|&t| t != core.id) {
        None => {
            let (base, ranges) = a.flatten();
            tracking::as_caller(id, || journal::run(f, c, &mut Ctx::new(&mut core.shard.borrow_mut(), db), &mut s.out, proto, Args::new(&base, &ranges)));
        }
        Some(shard) => {
            let out = txn
                .on(shard, move |sh| {
                    let (base, ranges) = a.flatten();
                    let mut out = Vec::new();
                    journal::run(f, c, &mut Ctx::new(sh, db), &mut out, proto, Args::new(&base, &ranges));
                    out
                })
                .await;
            s.out.extend_from_slice(&out);
        }
    }
}
