//! Per-shard intent locks: the shard's half of the multi-shard transaction
//! mechanism (the coordinator's half is `server::txn`).
//!
//! A multi-shard transaction locks its keys on every shard it touches, in
//! ascending shard order, then runs its steps and releases. Within a shard a
//! request takes all its keys at once or queues, FIFO; acquiring shard by
//! shard in one global order means no cycle of waits can form, so there is no
//! deadlock, and nothing ever blocks a thread: a queued request is a parked
//! future woken by a oneshot.
//!
//! Single-shard commands take no lock: they run at once when none of their
//! keys conflicts with a held or queued lock (the uncontended fast path is one
//! `is_idle` check), and otherwise queue as a one-step transaction, so a reader
//! can never observe half of a multi-shard write.

use std::collections::VecDeque;

use futures_channel::oneshot;
use hashbrown::HashMap;

use super::db::Key;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Shared,
    Exclusive,
}

/// What a transaction locks on one shard.
#[derive(Debug)]
pub struct LockSet {
    pub db: usize,
    pub keys: Vec<Key>,
    pub mode: Mode,
    /// Lock every key of every database of the shard (FLUSHALL, SWAPDB, …).
    pub whole_shard: bool,
}

impl LockSet {
    fn conflicts(&self, other: &LockSet) -> bool {
        if self.whole_shard || other.whole_shard {
            return true;
        }
        if self.db != other.db || (self.mode == Mode::Shared && other.mode == Mode::Shared) {
            return false;
        }
        self.keys.iter().any(|k| other.keys.contains(k))
    }
}

#[derive(Default)]
struct KeyLock {
    readers: u32,
    writer: bool,
}

struct Waiter {
    txid: u64,
    set: LockSet,
    grant: oneshot::Sender<()>,
}

#[derive(Default)]
pub struct LockTable {
    keys: HashMap<(usize, Key), KeyLock>,
    whole_holders: u32,
    granted: HashMap<u64, LockSet>,
    waiters: VecDeque<Waiter>,
}

impl LockTable {
    /// No lock held or queued: every command may run without looking further.
    pub fn is_idle(&self) -> bool {
        self.granted.is_empty() && self.waiters.is_empty()
    }

    /// Whether a lock-free command touching `keys` in `db` may run right now.
    pub fn may_run(&self, db: usize, keys: &[&[u8]], mode: Mode) -> bool {
        if self.is_idle() {
            return true;
        }
        if self.whole_holders > 0 {
            return false;
        }
        let held_ok = keys.iter().all(|k| self.key_free(db, k, mode));
        held_ok
            && !self.waiters.iter().any(|w| {
                w.set.whole_shard
                    || (w.set.db == db
                        && !(w.set.mode == Mode::Shared && mode == Mode::Shared)
                        && keys.iter().any(|k| w.set.keys.iter().any(|wk| &wk[..] == *k)))
            })
    }

    /// Whether `key` is free of held locks that conflict with `mode`.
    fn key_free(&self, db: usize, key: &[u8], mode: Mode) -> bool {
        // Borrowed lookup of a (usize, Box<[u8]>) key needs an owned probe;
        // this path runs only under contention.
        match self.keys.get(&(db, Key::from(key))) {
            None => true,
            Some(l) => !l.writer && (mode == Mode::Shared || l.readers == 0),
        }
    }

    fn compatible_with_held(&self, set: &LockSet) -> bool {
        if self.whole_holders > 0 {
            return false;
        }
        if set.whole_shard {
            return self.granted.is_empty();
        }
        set.keys.iter().all(|k| self.key_free(set.db, k, set.mode))
    }

    fn take(&mut self, txid: u64, set: LockSet) {
        if set.whole_shard {
            self.whole_holders += 1;
        } else {
            for k in &set.keys {
                let l = self.keys.entry((set.db, k.clone())).or_default();
                match set.mode {
                    Mode::Shared => l.readers += 1,
                    Mode::Exclusive => l.writer = true,
                }
            }
        }
        self.granted.insert(txid, set);
    }

    /// Takes the locks now or queues the request. The receiver resolves when
    /// the locks are held (at once if they were free).
    pub fn acquire(&mut self, txid: u64, set: LockSet) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let blocked_by_queue = self.waiters.iter().any(|w| w.set.conflicts(&set));
        if !blocked_by_queue && self.compatible_with_held(&set) {
            self.take(txid, set);
            let _ = tx.send(());
        } else {
            self.waiters.push_back(Waiter { txid, set, grant: tx });
        }
        rx
    }

    /// Releases a transaction's locks on this shard and grants what became free.
    pub fn release(&mut self, txid: u64) {
        if let Some(set) = self.granted.remove(&txid) {
            if set.whole_shard {
                self.whole_holders -= 1;
            } else {
                for k in set.keys {
                    let probe = (set.db, k);
                    if let Some(l) = self.keys.get_mut(&probe) {
                        match set.mode {
                            Mode::Shared => l.readers -= 1,
                            Mode::Exclusive => l.writer = false,
                        }
                        if l.readers == 0 && !l.writer {
                            self.keys.remove(&probe);
                        }
                    }
                }
            }
        } else {
            // Released while still queued (its coordinator went away).
            self.waiters.retain(|w| w.txid != txid);
        }
        self.grant_waiters();
    }

    /// Grants queued requests in FIFO order; a request never overtakes an
    /// earlier one it conflicts with.
    fn grant_waiters(&mut self) {
        let mut i = 0;
        while i < self.waiters.len() {
            let blocked = self.waiters.iter().take(i).any(|w| w.set.conflicts(&self.waiters[i].set));
            if !blocked && self.compatible_with_held(&self.waiters[i].set) {
                let w = self.waiters.remove(i).expect("index in range");
                if w.grant.is_canceled() {
                    continue;
                }
                self.take(w.txid, w.set);
                // A coordinator that vanished meanwhile must not leak the lock.
                if w.grant.send(()).is_err() {
                    self.release(w.txid);
                    return;
                }
            } else {
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(keys: &[&str], mode: Mode) -> LockSet {
        LockSet { db: 0, keys: keys.iter().map(|k| k.as_bytes().into()).collect(), mode, whole_shard: false }
    }

    #[test]
    fn fifo_and_release() {
        let mut t = LockTable::default();
        let mut a = t.acquire(1, set(&["x", "y"], Mode::Exclusive));
        assert_eq!(a.try_recv(), Ok(Some(())));
        let mut b = t.acquire(2, set(&["y"], Mode::Shared));
        assert_eq!(b.try_recv(), Ok(None));
        let mut c = t.acquire(3, set(&["z"], Mode::Exclusive));
        assert_eq!(c.try_recv(), Ok(Some(())));
        assert!(!t.may_run(0, &[b"x"], Mode::Shared));
        assert!(t.may_run(0, &[b"w"], Mode::Exclusive));
        t.release(1);
        assert_eq!(b.try_recv(), Ok(Some(())));
        assert!(t.may_run(0, &[b"y"], Mode::Shared));
        assert!(!t.may_run(0, &[b"y"], Mode::Exclusive));
        t.release(2);
        t.release(3);
        assert!(t.is_idle());
    }

    #[test]
    fn whole_shard_excludes_all() {
        let mut t = LockTable::default();
        let mut a = t.acquire(1, set(&["x"], Mode::Shared));
        assert_eq!(a.try_recv(), Ok(Some(())));
        let mut w = t.acquire(2, LockSet { db: 0, keys: vec![], mode: Mode::Exclusive, whole_shard: true });
        assert_eq!(w.try_recv(), Ok(None));
        let mut c = t.acquire(3, set(&["q"], Mode::Shared));
        assert_eq!(c.try_recv(), Ok(None));
        t.release(1);
        assert_eq!(w.try_recv(), Ok(Some(())));
        assert_eq!(c.try_recv(), Ok(None));
        t.release(2);
        assert_eq!(c.try_recv(), Ok(Some(())));
    }
}
