//! The shard's half of blocking commands (BLPOP, BLMOVE, ..., and later
//! BZPOPMIN, XREAD BLOCK): who waits for which key, and serving them when
//! a key gets data. The connection's half (registering, timeouts,
//! disconnects) is `server::blocking`, whose module comment describes the
//! whole mechanism and its API.
//!
//! A waiter is registered on every shard owning one of its keys, in a FIFO
//! per key (`Db::blocked`). When a key with waiters is created
//! (`Db::insert`), the key is marked ready; once the command that created it
//! is done (after a single-shard command, or when a transaction releases its
//! locks), `Shard::serve_blocked` offers the key to each of its waiters in
//! order. A waiter is served once: its `claim` is an
//! atomic flag shared by the shards it waits on and its own connection (which
//! claims it on timeout or disconnect), so exactly one of them acts.
//!
//! Costs nothing while nobody waits: the only check on the command path is
//! `Shard::waiting != 0`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_channel::oneshot;

use super::locks::Mode;
use super::Shard;
use crate::commands::{Ctx, OwnedArgs};
use crate::resp::{Proto, Reply};

/// What a blocked connection is woken with.
pub enum Wake {
    /// Served: the encoded reply.
    Reply(Vec<u8>),
    /// Its key has data but serving needs another shard too (BLMOVE to a key
    /// of another core): the connection runs the command again, under a
    /// transaction over all its keys, keeping its place in the queues.
    Retry,
    /// CLIENT UNBLOCK: with an error (true) or as a timeout (false).
    Unblocked(bool),
}

/// Serves waiter `w` from `key` (in the waiter's database), which has just
/// become ready on this shard. It must check that it can serve first, then
/// `claim` (giving up if that fails), then change data and `wake`.
/// Returns false if the key holds nothing for this waiter (it keeps its
/// place; the waiters behind it are tried next), true once the waiter is
/// served or gone.
pub type ServeFn = fn(&mut Ctx, &[u8], &Waiter) -> bool;

/// One blocked client, shared by the shards it waits on.
pub struct Waiter {
    claimed: AtomicBool,
    tx: Mutex<Option<oneshot::Sender<Wake>>>,
    pub db: usize,
    pub proto: Proto,
    /// The blocking command as sent.
    pub args: OwnedArgs,
    pub serve: ServeFn,
    /// Serving it writes a key of another shard too (BLMOVE across cores):
    /// its `ServeFn` wakes it with `Wake::Retry` instead.
    pub writes_elsewhere: bool,
}

impl Waiter {
    pub fn new(db: usize, proto: Proto, args: OwnedArgs, serve: ServeFn, writes_elsewhere: bool) -> (Arc<Waiter>, oneshot::Receiver<Wake>) {
        let (tx, rx) = oneshot::channel();
        let w = Waiter { claimed: AtomicBool::new(false), tx: Mutex::new(Some(tx)), db, proto, args, serve, writes_elsewhere };
        (Arc::new(w), rx)
    }

    /// Takes the right to serve (or time out, or drop) this waiter; only the
    /// first caller gets true.
    pub fn claim(&self) -> bool {
        !self.claimed.swap(true, Ordering::AcqRel)
    }

    pub fn is_claimed(&self) -> bool {
        self.claimed.load(Ordering::Acquire)
    }

    /// Wakes the connection (after a successful `claim`).
    pub fn wake(&self, w: Wake) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(w);
        }
    }

    /// Wakes the connection with a reply written by `f` in its protocol.
    pub fn reply(&self, f: impl FnOnce(&mut Reply)) {
        let mut out = Vec::new();
        f(&mut Reply::new(&mut out, self.proto));
        self.wake(Wake::Reply(out));
    }
}

/// A key's waiters, first come first served.
pub type Queue = VecDeque<Arc<Waiter>>;

impl Shard {
    /// Registers `w` as waiting for `key` of `db`: last in line, or first
    /// when it lost its turn to a retry (`Wake::Retry`).
    pub fn block(&mut self, db: usize, key: &[u8], w: Arc<Waiter>, front: bool) {
        let q = self.dbs[db].blocked.entry(key.into()).or_default();
        if front {
            q.push_front(w);
        } else {
            q.push_back(w);
        }
        self.waiting += 1;
    }

    /// Removes `w` from `key`'s queue (it was served elsewhere, timed out,
    /// or its client went away).
    pub fn unblock(&mut self, db: usize, key: &[u8], w: &Arc<Waiter>) {
        let blocked = &mut self.dbs[db].blocked;
        let Some(q) = blocked.get_mut(key) else { return };
        let before = q.len();
        q.retain(|x| !Arc::ptr_eq(x, w));
        self.waiting -= before - q.len();
        if q.is_empty() {
            blocked.remove(key);
        }
    }

    /// Serves the waiters of keys that became ready; call after a command
    /// (or a transaction) is done with the shard.
    #[inline]
    pub fn serve_blocked(&mut self) {
        if self.waiting != 0 && self.dbs.iter().any(|d| !d.ready.is_empty()) {
            self.serve_ready();
        }
    }

    fn serve_ready(&mut self) {
        let mut deferred = Vec::new();
        // Serving may make more keys ready (BLMOVE pushes): loop until none.
        while let Some((db, key)) = self.dbs.iter_mut().enumerate().find_map(|(i, d)| d.ready.pop().map(|k| (i, k))) {
            // A transaction holds the key: serve when it releases.
            if !self.locks.may_run(db, &[&key], Mode::Exclusive) {
                deferred.push((db, key));
                continue;
            }
            let Some(q) = self.dbs[db].blocked.remove(&key[..]) else { continue };
            // Every waiter gets its turn, in order: one that finds nothing
            // for it (a BZPOPMIN when a list appeared, an XREAD after an ID
            // not reached yet) keeps its place, and those behind it may
            // still take something (every XREAD gets the new entries).
            let mut kept = Queue::with_capacity(q.len());
            for w in q {
                if !w.is_claimed() && !(w.serve)(&mut Ctx::new(self, db), &key, &w) {
                    kept.push_back(w);
                } else {
                    self.waiting -= 1;
                }
            }
            if !kept.is_empty() {
                self.dbs[db].blocked.insert(key, kept);
            }
        }
        for (db, key) in deferred {
            self.dbs[db].ready.push(key);
        }
    }
}

impl Shard {
    /// SWAPDB: swaps the keys of two databases. Clients stay blocked on
    /// their database index, and are served if their keys now hold data.
    pub fn swap_dbs(&mut self, x: usize, y: usize) {
        if x != y {
            let (lo, hi) = self.dbs.split_at_mut(x.max(y));
            super::db::Db::swap_keys(&mut lo[x.min(y)], &mut hi[0]);
        }
        self.serve_blocked();
    }
}
