//! The coordinator of multi-shard transactions: every command whose keys span
//! cores (MGET, MSET, RENAME, ...) runs through `Txn`, and so will MULTI/EXEC
//! and scripts.
//!
//! A transaction locks its keys shard by shard in ascending shard order (see
//! `shard::locks` for why that cannot deadlock), runs its steps on the shards
//! as messages, then releases. Other clients see either none or all of it:
//! every command touching a locked key waits for the release.

use std::rc::Rc;
use std::sync::Arc;

use futures_channel::oneshot;

use crate::commands::{self, Args, BoxFuture, Ctx, OwnedArgs, RemoteKeys};
use crate::server::core::{lock_mode, CallFn, Core, Msg};
use crate::server::session::Session;
use crate::shard::journal;
use crate::shard::locks::{LockSet, Mode};
use crate::shard::tracking::as_caller;
use crate::shard::Shard;

/// One transaction step on one shard.
pub type Step<T> = Box<dyn FnOnce(&mut Shard) -> T + Send>;

/// Keys of a command grouped by owning shard: (shard, [(argument position, key)]).
pub type KeyGroups = Vec<(usize, Vec<(usize, Vec<u8>)>)>;

/// Groups `keys` (argument position, key) by the shard that owns them.
pub fn group_keys(core: &Core, keys: impl Iterator<Item = (usize, Vec<u8>)>) -> KeyGroups {
    let mut groups: KeyGroups = Vec::new();
    for (i, k) in keys {
        let shard = core.slots.shard_of_key(&k);
        match groups.iter_mut().find(|(s, _)| *s == shard) {
            Some((_, v)) => v.push((i, k)),
            None => groups.push((shard, vec![(i, k)])),
        }
    }
    groups
}

/// The lock sets that cover `groups` in database `db`.
pub fn lock_sets(db: usize, groups: &KeyGroups, mode: Mode) -> Vec<(usize, LockSet)> {
    groups
        .iter()
        .map(|(shard, keys)| {
            let keys = keys.iter().map(|(_, k)| k.as_slice().into()).collect();
            (*shard, LockSet { db, keys, mode, whole_shard: false })
        })
        .collect()
}

pub struct Txn {
    core: Rc<Core>,
    txid: u64,
    shards: Vec<usize>,
    /// The client whose command this is (0: none): every step runs as its
    /// (`shard::tracking::as_caller`), so CLIENT TRACKING NOLOOP knows the
    /// writer on every shard the transaction touches.
    client: u64,
    /// Runs inside an EXEC that already holds every lock it needs: takes
    /// and releases nothing.
    nested: bool,
}

/// The transaction an EXEC holds while its queued commands run; commands
/// that lock for themselves (spanning ones, FLUSHALL, ...) join it.
#[derive(Clone)]
pub struct ExecScope {
    txid: u64,
    shards: Vec<usize>,
}

impl Txn {
    /// Takes the locks of `sets` (one per shard) for session `s` and returns
    /// once all are held. Inside EXEC the session's transaction already holds
    /// them (EXEC locks every key of its queue first), so this joins it.
    pub async fn lock(s: &Session, sets: Vec<(usize, LockSet)>) -> Txn {
        match &s.exec {
            Some(scope) => Txn { core: s.core.clone(), txid: scope.txid, shards: scope.shards.clone(), client: s.info.id, nested: true },
            None => Txn::acquire(&s.core, s.info.id, sets).await,
        }
    }

    /// Takes the locks of `sets` for a new transaction of client `client`
    /// (0: the server's own, a snapshot).
    pub async fn acquire(core: &Rc<Core>, client: u64, mut sets: Vec<(usize, LockSet)>) -> Txn {
        sets.sort_by_key(|(shard, _)| *shard);
        let txid = core.new_txid();
        let mut shards = Vec::with_capacity(sets.len());
        for (shard, set) in sets {
            lock_on(core, txid, shard, set).await;
            shards.push(shard);
        }
        Txn { core: core.clone(), txid, shards, client, nested: false }
    }

    /// A transaction holding nothing yet, grown by `add`.
    pub fn empty(core: &Rc<Core>, client: u64) -> Txn {
        Txn { core: core.clone(), txid: core.new_txid(), shards: Vec::new(), client, nested: false }
    }

    /// Adds the locks of `set` on `shard` to this transaction. Above every
    /// shard it holds it waits for them, as `acquire` does (ascending order,
    /// no deadlock); elsewhere it takes them only if no other transaction
    /// holds a conflicting one, and returns false otherwise
    /// (`LockTable::try_add`: never waiting, it cannot deadlock either).
    pub async fn add(&mut self, shard: usize, set: LockSet) -> bool {
        let txid = self.txid;
        if self.shards.iter().all(|&held| held < shard) {
            lock_on(&self.core, txid, shard, set).await;
            self.shards.push(shard);
            return true;
        }
        let added = self.core.call(shard, move |c| c.shard.borrow_mut().locks.try_add(txid, set)).await;
        if added && !self.shards.contains(&shard) {
            self.shards.push(shard);
        }
        added
    }

    /// Runs a transaction whose steps depend on nothing but their own
    /// shard (EXEC of single-shard commands): takes the locks of `plan`
    /// shard by shard in ascending order as `acquire` does, but runs each
    /// shard's step in the same message as soon as its locks are held, and
    /// the last shard's releases its locks right after. No lock is released
    /// before every one is held (two-phase locking), so other clients see all
    /// of the steps or none, at one message per shard. Results come back in
    /// the order of `plan`. Steps run as client `client`'s.
    pub async fn run_locked<T: Send + 'static>(core: &Rc<Core>, client: u64, plan: Vec<(usize, LockSet, Step<T>)>) -> Vec<T> {
        let mut order: Vec<usize> = (0..plan.len()).collect();
        order.sort_by_key(|&i| plan[i].0);
        let mut plan: Vec<_> = plan.into_iter().map(Some).collect();
        let mut out: Vec<Option<T>> = (0..plan.len()).map(|_| None).collect();
        let txid = core.new_txid();
        let mut held = Vec::with_capacity(plan.len());
        for (n, &i) in order.iter().enumerate() {
            let (shard, set, step) = plan[i].take().expect("each step once");
            let last = n + 1 == order.len();
            let result = if shard == core.id {
                let granted = core.shard.borrow_mut().locks.acquire(txid, set);
                granted.await.expect("a shard dropped a lock request");
                let mut sh = core.shard.borrow_mut();
                let result = as_caller(client, || step(&mut sh));
                if last {
                    sh.locks.release(txid);
                    sh.serve_blocked();
                }
                result
            } else {
                let (tx, rx) = oneshot::channel();
                let step: CallFn = Box::new(move |c| Box::new(as_caller(client, || step(&mut c.shard.borrow_mut()))));
                core.send(shard, Msg::LockRun { txid, set, step, release: last, reply: tx }).await;
                *rx.await.expect("peer core dropped a step").downcast::<T>().expect("step result type")
            };
            if !last {
                held.push(shard);
            }
            out[i] = Some(result);
        }
        Txn { core: core.clone(), txid, shards: held, client, nested: false }.release().await;
        out.into_iter().map(|o| o.expect("every step ran")).collect()
    }

    /// What commands running inside this transaction join (EXEC).
    pub fn scope(&self) -> ExecScope {
        ExecScope { txid: self.txid, shards: self.shards.clone() }
    }

    /// Runs one step on one of the transaction's shards.
    pub async fn on<T: Send + 'static>(&self, shard: usize, f: impl FnOnce(&mut Shard) -> T + Send + 'static) -> T {
        debug_assert!(self.shards.contains(&shard));
        let client = self.client;
        self.core.call(shard, move |c| as_caller(client, || f(&mut c.shard.borrow_mut()))).await
    }

    /// Runs one step on each of several shards concurrently; results come
    /// back in the order of `steps`.
    pub async fn on_many<T: Send + 'static>(&self, steps: Vec<(usize, Step<T>)>) -> Vec<T> {
        let mut pending = Vec::with_capacity(steps.len());
        let mut local = None;
        let client = self.client;
        for (i, (shard, f)) in steps.into_iter().enumerate() {
            if shard == self.core.id {
                local = Some((i, f));
                continue;
            }
            let (tx, rx) = oneshot::channel();
            let call: CallFn = Box::new(move |c| Box::new(as_caller(client, || f(&mut c.shard.borrow_mut()))));
            self.core.send(shard, Msg::Call(call, tx)).await;
            pending.push((i, rx));
        }
        let mut out: Vec<Option<T>> = (0..pending.len() + local.is_some() as usize).map(|_| None).collect();
        if let Some((i, f)) = local {
            out[i] = Some(as_caller(client, || f(&mut self.core.shard.borrow_mut())));
        }
        for (i, rx) in pending {
            let any = rx.await.expect("peer core dropped a call");
            out[i] = Some(*any.downcast::<T>().expect("step result type"));
        }
        out.into_iter().map(|o| o.expect("every step answered")).collect()
    }

    pub fn shards(&self) -> &[usize] {
        &self.shards
    }

    /// Releases every lock. Messages to a core arrive in order, so the unlock
    /// follows the transaction's last step there.
    pub async fn release(self) {
        if self.nested {
            return;
        }
        for &s in &self.shards {
            if s == self.core.id {
                let mut shard = self.core.shard.borrow_mut();
                shard.locks.release(self.txid);
                shard.serve_blocked();
            } else {
                self.core.send(s, Msg::Unlock(self.txid)).await;
            }
        }
    }
}

/// Takes transaction `txid`'s locks of `set` on `shard`, waiting until they are held.
async fn lock_on(core: &Rc<Core>, txid: u64, shard: usize, set: LockSet) {
    let granted = if shard == core.id {
        core.shard.borrow_mut().locks.acquire(txid, set)
    } else {
        let (tx, rx) = oneshot::channel();
        core.send(shard, Msg::Lock(txid, set, tx)).await;
        rx
    };
    granted.await.expect("a shard dropped a lock request");
}

/// The common shape of a spanning command: lock the keys of `groups`, run
/// `step` once per shard over that shard's keys (concurrently), release, and
/// return the results in group order. `args` is the whole command, shared.
pub async fn run_grouped<T: Send + 'static>(
    s: &Session,
    db: usize,
    groups: KeyGroups,
    mode: Mode,
    args: Arc<OwnedArgs>,
    step: fn(&mut Ctx, &[(usize, Vec<u8>)], &OwnedArgs) -> T,
) -> Vec<T> {
    let txn = Txn::lock(s, lock_sets(db, &groups, mode)).await;
    let steps = groups
        .into_iter()
        .map(|(shard, keys)| {
            let args = args.clone();
            let f: Step<T> = Box::new(move |sh: &mut Shard| step(&mut Ctx::new(sh, db), &keys, &args));
            (shard, f)
        })
        .collect();
    let out = txn.on_many(steps).await;
    txn.release().await;
    out
}

/// The coordinator of a spanning command that reads several keys and writes
/// at most its first one (SINTER, SUNIONSTORE, ZUNIONSTORE, BITOP, PFMERGE,
/// ...): lock every key, fetch copies of the keys other shards own, and run
/// the command's own single-shard function on the first key's shard with
/// those copies in view (`Ctx::remote`). So such a command is written once,
/// as if all its keys were local: `Run::Span(f, gather_span)`.
///
/// Copying costs what the command reads anyway (a union reads every member).
/// Commands that write a key of another shard (SMOVE, LMOVE) or touch little
/// of a large value need their own coordinator.
pub fn gather_span(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let ci = commands::lookup(a.get(0)).expect("dispatch resolved this command");
        let cmd = commands::by_index(ci);
        let f = match cmd.run {
            commands::Run::Span(f, _) => f,
            _ => unreachable!("gather_span serves Run::Span commands"),
        };
        let (db, proto) = (s.db, s.proto);
        let groups = group_keys(&s.core, cmd.key_indexes(&a).map(|i| (i, a.get(i).to_vec())));
        let home = groups[0].0;
        let txn = Txn::lock(s, lock_sets(db, &groups, lock_mode(cmd))).await;
        let fetches: Vec<(usize, Step<Vec<(Vec<u8>, Option<crate::shard::db::Entry>)>>)> = groups
            .into_iter()
            .filter(|(shard, _)| *shard != home)
            .map(|(shard, keys)| {
                let f: Step<_> = Box::new(move |sh: &mut Shard| {
                    let mut ctx = Ctx::new(sh, db);
                    keys.into_iter().map(|(_, k)| (ctx.read(&k).cloned(), k)).map(|(e, k)| (k, e)).collect()
                });
                (shard, f)
            })
            .collect();
        let mut remote: RemoteKeys = txn.on_many(fetches).await.into_iter().flatten().collect();
        let out = txn
            .on(home, move |sh| {
                let (base, ranges) = a.flatten();
                let mut out = Vec::new();
                let mut ctx = Ctx::new(sh, db);
                ctx.remote = Some(&mut remote);
                journal::run(f, cmd, &mut ctx, &mut out, proto, Args::new(&base, &ranges));
                out
            })
            .await;
        txn.release().await;
        s.out.extend_from_slice(&out);
    })
}
