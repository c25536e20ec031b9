//! One database (of 16) within a shard: the key table and its expiry index.
//!
//! Expiry is kept in the entry (checked on every access: lazy expiry) and in
//! an ordered index (time, key) so the active cycle removes exactly the keys
//! that are due, oldest first, without sampling.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hashbrown::HashMap;

use crate::persistence::snapshot::DbSnap;
use crate::types::Value;

pub use super::key::Key;
use super::notify;
use super::table::{KeyTable, Lookup, Slot};
type Hasher = foldhash::fast::RandomState;

#[derive(Clone)]
pub struct Entry {
    pub value: Value,
    /// Absolute expiry in unix milliseconds; 0 means no expiry.
    pub expire_at: u64,
    /// Last access, in seconds of the LRU clock (OBJECT IDLETIME).
    pub lru: u32,
    /// The snapshot epoch in which this entry was saved or created
    /// (`persistence::snapshot`): a running snapshot skips it. A Cell so the
    /// snapshot's scan can stamp through a shared borrow; it fills the
    /// padding after `lru`, so entries do not grow.
    pub saved: Cell<u32>,
}

#[derive(Default)]
pub struct Db {
    /// This database's number (keyspace notifications name it).
    pub index: usize,
    map: KeyTable,
    expires: BTreeSet<(u64, Key)>,
    /// Keys removed on access because they had expired (INFO expired_keys).
    pub lazy_expired: u64,
    /// WATCHed keys of this database index and the flags of the clients
    /// watching them. It belongs to the index, not the data: FLUSHDB and
    /// SWAPDB move the data and leave this in place.
    watched: HashMap<Key, Vec<WatchFlag>>,
    /// Clients blocked on keys of this database (`shard::blocking`).
    pub blocked: HashMap<Key, super::blocking::Queue, Hasher>,
    /// Keys with waiters that were created since the shard last served them.
    pub ready: Vec<Key>,
    /// Changes counted for save points, and the running snapshot's state.
    /// Like watchers, it belongs to the index: FLUSHDB and SWAPDB keep it.
    pub snap: DbSnap,
    /// Keys changed outside a recorded command while the journal is on
    /// (`shard::journal`): their state is recorded next.
    pub changed: Vec<Key>,
}

/// Set when a key a client WATCHes changes; its EXEC then fails. Shared with
/// the client's core, hence atomic.
pub type WatchFlag = Arc<AtomicBool>;

/// Seconds-resolution clock for idle times, as Redis' LRU clock.
pub fn lru_clock() -> u32 {
    (crate::util::now_ms() / 1000) as u32
}

impl Db {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn expires_len(&self) -> usize {
        self.expires.len()
    }

    pub fn is_expired(e: &Entry, now: u64) -> bool {
        e.expire_at != 0 && e.expire_at <= now
    }

    /// Starts loading the cache lines a lookup of `key` will touch first
    /// (its control group and first candidate slot), so that the lookups of
    /// a pipeline's keys overlap their cache misses instead of paying them
    /// one after another. Only a hint: it reads nothing.
    pub fn prefetch(&self, key: &[u8]) {
        self.map.prefetch(key);
    }

    /// Second stage of `prefetch`: finds `key` (whose slot should be in
    /// cache by now) and starts loading its value's bytes.
    pub fn prefetch_value(&self, key: &[u8]) {
        if let Some(e) = self.map.get(key) {
            match &e.value {
                Value::Str(crate::types::StrValue::Emb(b)) => crate::util::prefetch(b.as_ptr()),
                Value::Str(crate::types::StrValue::Raw(v)) => crate::util::prefetch(v.as_ptr()),
                _ => {}
            }
        }
    }

    /// An empty database numbered `index`.
    pub fn numbered(index: usize) -> Db {
        Db { index, ..Db::default() }
    }

    pub fn get_mut(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        // One hash and probe for the common case (live key or no key).
        match self.map.get_live(key, |e| Self::is_expired(e, now)) {
            Lookup::Absent => None,
            Lookup::Removed(k, e) => {
                self.snap.dirty += 1;
                self.snap.save(key, &e);
                if super::journal::note_touch() {
                    self.changed.push(k.clone());
                }
                self.expires.remove(&(e.expire_at, k));
                self.lazy_expired += 1;
                notify::event(notify::EXPIRED, "expired", self.index, key);
                super::tracking::key_changed(key);
                if let Some(flags) = self.watched.remove(key) {
                    flags.iter().for_each(|f| f.store(true, Ordering::Release));
                }
                None
            }
            Lookup::Live(e) => Some(e),
        }
    }

    pub fn get(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        self.get_mut(key, now).map(|e| &*e)
    }

    /// The live entry of `key` without expiring anything: for holding
    /// several entries at once.
    pub fn get_ref(&self, key: &[u8], now: u64) -> Option<&Entry> {
        self.map.get(key).filter(|e| !Self::is_expired(e, now))
    }

    /// True if the key exists (after lazy expiry).
    pub fn contains(&mut self, key: &[u8], now: u64) -> bool {
        self.get(key, now).is_some()
    }

    /// Deletes `key` if it has expired; returns true if it did.
    pub fn expire_if_due(&mut self, key: &[u8], now: u64) -> bool {
        match self.map.get(key) {
            Some(e) if Self::is_expired(e, now) => {
                self.remove(key);
                self.lazy_expired += 1;
                notify::event(notify::EXPIRED, "expired", self.index, key);
                true
            }
            _ => false,
        }
    }

    /// An entry about to be written in place: watchers are told, the change
    /// is counted and a running snapshot saves the old value first.
    pub fn get_for_write(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        if super::journal::note_touch() {
            self.changed.push(key.into());
        }
        // Client-side caches hear of it only if the command then changes
        // it (see `tracking::key_written`).
        super::tracking::key_written(key);
        self.touch_watchers(key);
        self.before_change(key);
        self.get_mut(key, now)
    }

    /// Every path that changes or removes an entry calls this first: it
    /// counts the change (save points) and, while a snapshot runs, saves the
    /// entry as it was when the snapshot started, unless already saved.
    #[inline]
    fn before_change(&mut self, key: &[u8]) {
        self.snap.dirty += 1;
        if self.snap.epoch != 0 {
            if let Some(e) = self.map.get(key) {
                self.snap.save(key, e);
            }
        }
    }

    /// Stores a value with the given expiry (0 = none), replacing any old one.
    pub fn insert(&mut self, key: &[u8], value: Value, expire_at: u64) {
        self.touch(key);
        self.before_change(key);
        let now = crate::util::now_ms();
        // One hash and probe whether the key is new or replaced.
        let old_expiry = match self.map.entry(key) {
            Slot::Occupied(e) => {
                e.value = value;
                e.lru = super::access::touched(e.lru, now);
                std::mem::replace(&mut e.expire_at, expire_at)
            }
            Slot::Vacant(v) => {
                // Created after the running snapshot began: not part of it.
                v.insert(key, Entry { value, expire_at, lru: super::access::fresh(now), saved: Cell::new(self.snap.epoch) });
                notify::event(notify::NEW, "new", self.index, key);
                0
            }
        };
        // A key someone blocks on came into being (a push, RENAME, ...).
        self.signal_ready(key);
        if old_expiry != expire_at {
            if old_expiry != 0 {
                self.expires.remove(&(old_expiry, Key::from(key)));
            }
            if expire_at != 0 {
                self.expires.insert((expire_at, key.into()));
            }
        }
    }

    /// Stores a whole entry, keeping its expiry and LRU clock (RENAME, MOVE).
    pub fn insert_entry(&mut self, key: &[u8], e: Entry) {
        let lru = e.lru;
        self.insert(key, e.value, e.expire_at);
        if let Some(e) = self.map.get_mut(key) {
            e.lru = lru;
        }
    }

    /// Replaces the value and keeps the key's TTL (KEEPTTL, in-place updates).
    pub fn insert_keep_ttl(&mut self, key: &[u8], value: Value, now: u64) {
        match self.get_for_write(key, now) {
            Some(e) => {
                e.value = value;
                e.lru = super::access::touched(e.lru, now);
            }
            None => self.insert(key, value, 0),
        }
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        self.before_change(key);
        let e = self.map.remove(key)?;
        self.touch(key);
        // A blocked XREADGROUP learns that its stream is gone.
        self.signal_ready(key);
        if e.expire_at != 0 {
            self.expires.remove(&(e.expire_at, Key::from(key)));
        }
        Some(e)
    }

    /// Sets or clears (0) the expiry of an existing key. Returns false if absent.
    pub fn set_expire(&mut self, key: &[u8], expire_at: u64) -> bool {
        self.before_change(key);
        let Some(e) = self.map.get_mut(key) else { return false };
        let old = std::mem::replace(&mut e.expire_at, expire_at);
        self.touch(key);
        if old != 0 {
            self.expires.remove(&(old, Key::from(key)));
        }
        if expire_at != 0 {
            self.expires.insert((expire_at, key.into()));
        }
        true
    }

    /// Takes the keys out (FLUSHDB/FLUSHALL), leaving an empty database that
    /// keeps its watchers and blocked clients (they belong to the index);
    /// those watching a key that existed are told.
    pub fn take_keys(&mut self) -> Db {
        self.touch_existing(None);
        super::tracking::flushed();
        self.snap.dirty += self.map.len() as u64;
        self.snap.save_all(self.map.iter());
        let (watched, blocked) = (std::mem::take(&mut self.watched), std::mem::take(&mut self.blocked));
        // Blocked clients see their keys deleted (XREADGROUP replies so).
        let ready = blocked.keys().filter(|k| self.map.contains_key(*k)).cloned().collect();
        let snap = std::mem::take(&mut self.snap);
        std::mem::replace(self, Db { index: self.index, watched, blocked, ready, snap, ..Db::default() })
    }

    /// Marks `key` for its blocked clients, if it has any (`shard::blocking`):
    /// it was created, deleted, or got data they may wait for (XADD).
    /// Costs one branch while nobody blocks in this database.
    #[inline]
    pub fn signal_ready(&mut self, key: &[u8]) {
        if !self.blocked.is_empty() && self.blocked.contains_key(key) {
            self.ready.push(key.into());
        }
    }

    /// Exchanges the keys of two databases (SWAPDB). Watchers and blocked
    /// clients stay with their index: watchers are told if their key exists
    /// on either side, blocked clients whose key now exists become ready.
    pub fn swap_keys(a: &mut Db, b: &mut Db) {
        a.touch_existing(Some(b));
        b.touch_existing(Some(a));
        // A running snapshot saves both sides first: its scan goes by index.
        for db in [&mut *a, &mut *b] {
            db.snap.dirty += 1;
            db.snap.save_all(db.map.iter());
        }
        std::mem::swap(a, b);
        std::mem::swap(&mut a.index, &mut b.index);
        std::mem::swap(&mut a.watched, &mut b.watched);
        std::mem::swap(&mut a.blocked, &mut b.blocked);
        std::mem::swap(&mut a.snap, &mut b.snap);
        for db in [a, b] {
            db.ready = db.blocked.keys().filter(|k| db.map.contains_key(*k)).cloned().collect();
        }
    }

    /// An entry a command changes in place after looking it up as a read:
    /// XREADGROUP, XCLAIM and XAUTOCLAIM change a stream's groups, which
    /// Redis does not count as a modification for WATCH. The journal and a
    /// running snapshot must still see the change.
    pub fn changing(&mut self, key: &[u8]) {
        if super::journal::note_touch() {
            self.changed.push(key.into());
        }
        self.before_change(key);
    }

    /// Marks the watchers of `key` (a write, a deletion or an expiry), and
    /// tells the journal and client-side caching (`tracking`). Costs two branches while nobody watches this
    /// database and the journal is off.
    pub fn touch(&mut self, key: &[u8]) {
        if super::journal::note_touch() {
            self.changed.push(key.into());
        }
        super::tracking::key_changed(key);
        self.touch_watchers(key);
    }

    #[inline]
    fn touch_watchers(&mut self, key: &[u8]) {
        if self.watched.is_empty() {
            return;
        }
        if let Some(flags) = self.watched.remove(key) {
            flags.iter().for_each(|f| f.store(true, Ordering::Release));
        }
    }

    /// Marks the watchers of keys that exist here or in `other`.
    fn touch_existing(&mut self, other: Option<&Db>) {
        let map = &self.map;
        self.watched.retain(|k, flags| {
            let exists = map.contains_key(k) || other.is_some_and(|o| o.map.contains_key(k));
            if exists {
                flags.iter().for_each(|f| f.store(true, Ordering::Release));
            }
            !exists
        });
    }

    /// WATCH: `flag` is set when `key` next changes. A key that has already
    /// expired is deleted first, so its expiry is not a change (as Redis).
    pub fn watch(&mut self, key: &[u8], flag: WatchFlag, now: u64) {
        self.get_mut(key, now);
        self.watched.entry(key.into()).or_default().push(flag);
    }

    /// Forgets `flag` on `key` (UNWATCH, EXEC, DISCARD, disconnect).
    pub fn unwatch(&mut self, key: &[u8], flag: &WatchFlag) {
        if let Some(flags) = self.watched.get_mut(key) {
            flags.retain(|f| !Arc::ptr_eq(f, flag));
            if flags.is_empty() {
                self.watched.remove(key);
            }
        }
    }

    /// Removes up to `limit` keys whose expiry is due; returns how many it removed.
    /// Keys for which `locked` is true stay (an in-flight transaction holds
    /// them) and go on a later pass.
    pub fn expire_due(&mut self, now: u64, limit: usize, locked: impl Fn(&[u8]) -> bool) -> usize {
        let mut due = Vec::new();
        for (at, key) in self.expires.iter() {
            if *at > now || due.len() == limit {
                break;
            }
            if !locked(key) {
                due.push((*at, key.clone()));
            }
        }
        for entry in &due {
            self.before_change(&entry.1);
            self.expires.remove(entry);
            self.map.remove(&entry.1);
            self.touch(&entry.1);
            self.signal_ready(&entry.1);
            notify::event(notify::EXPIRED, "expired", self.index, &entry.1);
        }
        due.len()
    }

    /// Average remaining TTL in ms over keys with an expiry (sampled from the
    /// index's ends so it stays O(1)-ish), as INFO keyspace reports it.
    pub fn estimate_avg_ttl(&self, now: u64) -> u64 {
        if self.expires.is_empty() {
            return 0;
        }
        let sample = self.expires.iter().take(16).chain(self.expires.iter().rev().take(16));
        let (mut sum, mut n) = (0u64, 0u64);
        for (at, _) in sample {
            sum += at.saturating_sub(now);
            n += 1;
        }
        sum / n
    }

    /// Bytes of this database's structures beyond its keys and values (INFO's
    /// used_memory_overhead): the table's empty slots and control bytes (its
    /// entries are stored in the slots), and the expiry index's entries.
    pub fn overhead_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(Key, Entry)>();
        let table = self.map.buckets() * (slot + 1) - self.map.len() * slot;
        table + self.expires.len() * std::mem::size_of::<(u64, Key)>()
    }

    /// Buckets of the key table: a snapshot's scan restarts when it changes
    /// (a resize moves entries behind the cursor; saved ones are skipped).
    pub fn buckets(&self) -> usize {
        self.map.buckets()
    }

    /// The entries, taken (loading an AOF written by another thread count
    /// moves a scratch shard's keys to their owners).
    pub fn into_entries(self) -> impl Iterator<Item = (Key, Entry)> {
        self.map.into_entries()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Entry)> {
        self.map.iter()
    }

    /// Visits the entries of up to `count` blocks of homes from `cursor`
    /// (fewer once `count` came back) and returns the next cursor (0 when
    /// the table is done). Each call costs O(count), not O(keys). An entry
    /// present for the whole iteration is returned, whatever the table does
    /// meanwhile (see `table_scan`).
    pub fn scan(&self, cursor: usize, count: usize, mut visit: impl FnMut(&Key, &Entry)) -> usize {
        self.map.scan(cursor, count, |k, e| visit(k, e))
    }

    /// A uniformly random key (see `util::table_random`).
    pub fn random_key(&self, mut rand: impl FnMut() -> u64) -> Option<&Key> {
        self.map.random(&mut rand).map(|(k, _)| k)
    }
}
