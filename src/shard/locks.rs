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
//! As in VLL, every key with a held or queued intent has counters (readers and
//! writers, held and queued), so asking "may this run now?" costs one hash
//! lookup per key, whatever the number of transactions in flight.
//!
//! Single-shard commands take no lock: they run at once when none of their
//! keys has a conflicting intent, held or queued (with nothing in flight that
//! is a single `is_idle` check), and otherwise queue as one-step transactions,
//! so a reader can never observe half of a multi-shard write.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

use futures_channel::oneshot;
use hashbrown::{Equivalent, HashMap};

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
    /// Lock every key of every database of the shard (FLUSHALL, SWAPDB, KEYS).
    pub whole_shard: bool,
}

/// Intent counters of one key, or of the whole shard.
#[derive(Default, Clone, Copy, Debug)]
struct Intents {
    readers: u32,
    writers: u32,
}

impl Intents {
    fn add(&mut self, mode: Mode, n: i32) {
        let c = match mode {
            Mode::Shared => &mut self.readers,
            Mode::Exclusive => &mut self.writers,
        };
        *c = c.checked_add_signed(n).expect("intent counts stay non-negative");
    }

    fn blocks(&self, mode: Mode) -> bool {
        self.writers > 0 || (mode == Mode::Exclusive && self.readers > 0)
    }

    fn is_empty(&self) -> bool {
        self.readers == 0 && self.writers == 0
    }
}

#[derive(Default, Debug)]
struct KeyState {
    held: Intents,
    queued: Intents,
}

/// A borrowed (db, key) that looks up the owned table key without allocating.
struct KeyRef<'a>(usize, &'a [u8]);

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash exactly as (usize, Key) does.
        self.0.hash(state);
        self.1.hash(state);
    }
}

impl Equivalent<(usize, Key)> for KeyRef<'_> {
    fn equivalent(&self, k: &(usize, Key)) -> bool {
        self.0 == k.0 && self.1 == &*k.1
    }
}

struct Waiter {
    txid: u64,
    set: LockSet,
    grant: oneshot::Sender<()>,
}

#[derive(Default)]
pub struct LockTable {
    keys: HashMap<(usize, Key), KeyState>,
    /// Whole-shard intents, held and queued.
    whole_held: Intents,
    whole_queued: Intents,
    /// Key writers held, and queued, anywhere (a whole-shard reader waits for them).
    held_key_writers: u32,
    queued_key_writers: u32,
    granted: HashMap<u64, LockSet>,
    waiters: VecDeque<Waiter>,
}

impl LockTable {
    /// No lock held or queued: every command may run without looking further.
    pub fn is_idle(&self) -> bool {
        self.granted.is_empty() && self.waiters.is_empty()
    }

    /// Whether a lock-free command touching `keys` of `db` may run right now:
    /// no held or queued intent conflicts with it.
    pub fn may_run(&self, db: usize, keys: &[&[u8]], mode: Mode) -> bool {
        if self.is_idle() {
            return true;
        }
        if self.whole_held.blocks(mode) || self.whole_queued.blocks(mode) {
            return false;
        }
        keys.iter().all(|k| match self.keys.get(&KeyRef(db, k)) {
            None => true,
            Some(s) => !s.held.blocks(mode) && !s.queued.blocks(mode),
        })
    }

    /// Whether `key` has any intent on it (active expiry leaves such keys).
    pub fn is_locked(&self, db: usize, key: &[u8]) -> bool {
        !self.whole_held.is_empty() || self.keys.get(&KeyRef(db, key)).is_some_and(|s| !s.held.is_empty())
    }

    /// Whether `set` conflicts with held intents, or with queued ones when
    /// `include_queued` (a newcomer must not overtake the queue).
    fn conflicts(&self, set: &LockSet, include_queued: bool) -> bool {
        let whole = |i: &Intents| i.blocks(set.mode);
        if whole(&self.whole_held) || (include_queued && whole(&self.whole_queued)) {
            return true;
        }
        if set.whole_shard {
            return match set.mode {
                Mode::Exclusive => !self.granted.is_empty() || (include_queued && !self.waiters.is_empty()),
                Mode::Shared => self.held_key_writers > 0 || (include_queued && self.queued_key_writers > 0),
            };
        }
        set.keys.iter().any(|k| match self.keys.get(&KeyRef(set.db, k)) {
            None => false,
            Some(s) => s.held.blocks(set.mode) || (include_queued && s.queued.blocks(set.mode)),
        })
    }

    fn count(&mut self, set: &LockSet, queued: bool, n: i32) {
        if set.whole_shard {
            let w = if queued { &mut self.whole_queued } else { &mut self.whole_held };
            w.add(set.mode, n);
            return;
        }
        for k in &set.keys {
            let s = self.keys.entry((set.db, k.clone())).or_default();
            if queued { &mut s.queued } else { &mut s.held }.add(set.mode, n);
            let empty = s.held.is_empty() && s.queued.is_empty();
            if set.mode == Mode::Exclusive {
                let c = if queued { &mut self.queued_key_writers } else { &mut self.held_key_writers };
                *c = c.checked_add_signed(n).expect("writer counts stay non-negative");
            }
            if empty {
                self.keys.remove(&KeyRef(set.db, k));
            }
        }
    }

    /// Takes the locks now or queues the request. The receiver resolves when
    /// the locks are held (at once if they were free).
    pub fn acquire(&mut self, txid: u64, set: LockSet) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        if !self.conflicts(&set, true) {
            self.count(&set, false, 1);
            self.granted.insert(txid, set);
            let _ = tx.send(());
        } else {
            self.count(&set, true, 1);
            self.waiters.push_back(Waiter { txid, set, grant: tx });
        }
        rx
    }

    /// Adds `set` to transaction `txid`'s locks on this shard if no held lock
    /// conflicts, else refuses: it never queues, so a transaction may grow
    /// this way in any shard order without a deadlock (a script reaching a
    /// key it did not declare). A caller never adds a key it already holds.
    pub fn try_add(&mut self, txid: u64, set: LockSet) -> bool {
        if self.conflicts(&set, false) {
            return false;
        }
        self.count(&set, false, 1);
        match self.granted.get_mut(&txid) {
            Some(held) => {
                debug_assert!(held.db == set.db && held.mode == set.mode && !held.whole_shard && !set.whole_shard);
                held.keys.extend(set.keys);
            }
            None => {
                self.granted.insert(txid, set);
            }
        }
        true
    }

    /// Releases a transaction's locks on this shard and grants what became free.
    pub fn release(&mut self, txid: u64) {
        match self.granted.remove(&txid) {
            Some(set) => self.count(&set, false, -1),
            None => {
                // Released while still queued (its coordinator went away).
                if let Some(i) = self.waiters.iter().position(|w| w.txid == txid) {
                    let w = self.waiters.remove(i).expect("index in range");
                    self.count(&w.set, true, -1);
                }
            }
        }
        self.grant_waiters();
    }

    /// Grants queued requests in FIFO order: a request is granted when nothing
    /// held conflicts and no earlier, still-queued request conflicts with it.
    fn grant_waiters(&mut self) {
        let mut earlier = LockTable::default();
        let mut i = 0;
        while i < self.waiters.len() {
            let set = &self.waiters[i].set;
            let blocked = self.conflicts(set, false) || earlier.conflicts(set, false);
            if blocked {
                // Record it as held in the scratch table: later waiters must
                // not overtake it.
                let w = &self.waiters[i];
                earlier.count(&w.set, false, 1);
                earlier.granted.insert(w.txid, LockSet { db: 0, keys: Vec::new(), mode: Mode::Shared, whole_shard: false });
                i += 1;
                continue;
            }
            let w = self.waiters.remove(i).expect("index in range");
            self.count(&w.set, true, -1);
            if w.grant.is_canceled() {
                continue;
            }
            self.count(&w.set, false, 1);
            self.granted.insert(w.txid, w.set);
            // A coordinator that vanished meanwhile must not leak the lock.
            if w.grant.send(()).is_err() {
                self.release(w.txid);
                return;
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

    fn whole(mode: Mode) -> LockSet {
        LockSet { db: 0, keys: vec![], mode, whole_shard: true }
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
        // A queued reader of y blocks writers of y but not other readers.
        assert!(!t.may_run(0, &[b"y"], Mode::Exclusive));
        t.release(1);
        assert_eq!(b.try_recv(), Ok(Some(())));
        assert!(t.may_run(0, &[b"y"], Mode::Shared));
        assert!(!t.may_run(0, &[b"y"], Mode::Exclusive));
        t.release(2);
        t.release(3);
        assert!(t.is_idle());
        assert!(t.keys.is_empty() && t.held_key_writers == 0 && t.queued_key_writers == 0);
    }

    #[test]
    fn queued_requests_keep_their_order() {
        let mut t = LockTable::default();
        let mut a = t.acquire(1, set(&["k"], Mode::Exclusive));
        let mut b = t.acquire(2, set(&["k"], Mode::Exclusive));
        let mut c = t.acquire(3, set(&["k", "m"], Mode::Exclusive));
        // d does not conflict with anything held, but with queued c.
        let mut d = t.acquire(4, set(&["m"], Mode::Exclusive));
        assert_eq!(a.try_recv(), Ok(Some(())));
        assert_eq!((b.try_recv(), c.try_recv(), d.try_recv()), (Ok(None), Ok(None), Ok(None)));
        t.release(1);
        assert_eq!((b.try_recv(), c.try_recv(), d.try_recv()), (Ok(Some(())), Ok(None), Ok(None)));
        t.release(2);
        assert_eq!((c.try_recv(), d.try_recv()), (Ok(Some(())), Ok(None)));
        t.release(3);
        assert_eq!(d.try_recv(), Ok(Some(())));
        t.release(4);
        assert!(t.is_idle() && t.keys.is_empty());
    }

    #[test]
    fn try_add_grows_a_transaction_or_refuses() {
        let mut t = LockTable::default();
        let mut a = t.acquire(1, set(&["x"], Mode::Exclusive));
        assert_eq!(a.try_recv(), Ok(Some(())));
        let mut b = t.acquire(2, set(&["y"], Mode::Exclusive));
        assert_eq!(b.try_recv(), Ok(Some(())));
        // Held by 2: refused, nothing counted.
        assert!(!t.try_add(1, set(&["y"], Mode::Exclusive)));
        assert!(t.try_add(1, set(&["z"], Mode::Exclusive)));
        assert!(!t.may_run(0, &[b"z"], Mode::Shared));
        // A queued request does not stop it (it never waits, so it cannot deadlock).
        let mut c = t.acquire(3, set(&["w", "x"], Mode::Exclusive));
        assert_eq!(c.try_recv(), Ok(None));
        assert!(t.try_add(1, set(&["w"], Mode::Exclusive)));
        // A transaction new to this shard.
        assert!(t.try_add(4, set(&["v"], Mode::Shared)));
        t.release(1);
        assert_eq!(c.try_recv(), Ok(Some(())));
        assert!(t.may_run(0, &[b"z"], Mode::Exclusive));
        t.release(2);
        t.release(3);
        t.release(4);
        assert!(t.is_idle() && t.keys.is_empty() && t.held_key_writers == 0);
    }

    #[test]
    fn whole_shard_modes() {
        let mut t = LockTable::default();
        let mut r = t.acquire(1, set(&["x"], Mode::Shared));
        assert_eq!(r.try_recv(), Ok(Some(())));
        // A whole-shard reader (KEYS) shares with key readers...
        let mut k = t.acquire(2, whole(Mode::Shared));
        assert_eq!(k.try_recv(), Ok(Some(())));
        assert!(t.may_run(0, &[b"q"], Mode::Shared));
        assert!(!t.may_run(0, &[b"q"], Mode::Exclusive));
        // ...but a whole-shard writer (FLUSHALL) waits for everything.
        let mut w = t.acquire(3, whole(Mode::Exclusive));
        assert_eq!(w.try_recv(), Ok(None));
        let mut later = t.acquire(4, set(&["q"], Mode::Shared));
        assert_eq!(later.try_recv(), Ok(None));
        t.release(1);
        t.release(2);
        assert_eq!((w.try_recv(), later.try_recv()), (Ok(Some(())), Ok(None)));
        t.release(3);
        assert_eq!(later.try_recv(), Ok(Some(())));
        t.release(4);
        assert!(t.is_idle());
    }

    #[test]
    fn many_keys_stay_cheap() {
        // Six transactions of 50k keys sharing one key: linear, not quadratic.
        let mut t = LockTable::default();
        let mut rxs = Vec::new();
        for tx in 0..6u64 {
            let mut keys: Vec<String> = (0..50_000).map(|i| format!("{tx}:{i}")).collect();
            keys.push("shared".into());
            let keys: Vec<&str> = keys.iter().map(|s| s.as_str()).collect();
            rxs.push(t.acquire(tx, set(&keys, Mode::Exclusive)));
        }
        for tx in 0..6u64 {
            assert_eq!(rxs[tx as usize].try_recv(), Ok(Some(())));
            t.release(tx);
        }
        assert!(t.is_idle() && t.keys.is_empty() && t.held_key_writers == 0 && t.queued_key_writers == 0);
    }
}
