//! The key table of one database: a hashbrown table whose last doubling is
//! staged in a second table, so the memory it takes grows in steps of at
//! most half a table instead of doubling at once.
//!
//! Why: a hashbrown table is full at 7/8 of its buckets and then doubles, so
//! right after a doubling it is 44% full and every key pays more than twice
//! its slot (a keyspace of 1M keys sits in 2M slots of 64 bytes). Here, once
//! `main` is full, new keys go to `overflow`, a table of its own that grows
//! (by doubling, but it is small) up to half of `main`'s buckets; past that
//! both merge into one table twice `main`'s size. The load of the whole
//! stays between 0.66 and 0.875 instead of 0.44 and 0.875.
//!
//! The price: a key in `overflow` (at most a third of the keys) is found by
//! a second probe after `main` misses, and so is every absent key while
//! `overflow` holds something. Both tables share one hasher, so a key is
//! hashed once per lookup. Small tables (below `STAGED_FROM` buckets) just
//! double: the saving would be small and a lookup stays one probe.

use std::hash::BuildHasher;

use hashbrown::hash_map::RawEntryMut;
use hashbrown::HashMap;

use super::db::Entry;
use super::key::Key;
use crate::table_scan;

type Hasher = foldhash::fast::RandomState;
type Map = HashMap<Key, Entry, Hasher>;

/// `main` doubles by itself below this many buckets.
const STAGED_FROM: usize = 1 << 14;

pub struct KeyTable {
    main: Map,
    overflow: Map,
}

impl Default for KeyTable {
    fn default() -> Self {
        let hasher = Hasher::default();
        KeyTable { main: Map::with_hasher(hasher.clone()), overflow: Map::with_hasher(hasher) }
    }
}

/// What `get_live` found.
pub enum Lookup<'a> {
    Absent,
    Live(&'a mut Entry),
    /// The entry was there but `expired` said so: it is now out of the table.
    Removed(Key, Entry),
}

/// Either a table's entry or where a new one goes (`KeyTable::entry`).
pub enum Slot<'a> {
    Occupied(&'a mut Entry),
    Vacant(Vacant<'a>),
}

pub struct Vacant<'a> {
    table: &'a mut KeyTable,
    hash: u64,
}

impl Vacant<'_> {
    pub fn insert(self, key: &[u8], e: Entry) {
        let map = self.table.for_new_key();
        let hasher = map.hasher().clone();
        map.raw_table_mut().insert(self.hash, (key.into(), e), |(k, _)| hasher.hash_one(k));
    }
}

fn probe<'a>(map: &'a mut Map, hash: u64, key: &[u8], expired: &impl Fn(&Entry) -> bool) -> Option<Lookup<'a>> {
    match map.raw_entry_mut().from_key_hashed_nocheck(hash, key) {
        RawEntryMut::Vacant(_) => None,
        RawEntryMut::Occupied(o) if expired(o.get()) => {
            let (k, e) = o.remove_entry();
            Some(Lookup::Removed(k, e))
        }
        RawEntryMut::Occupied(o) => Some(Lookup::Live(o.into_mut())),
    }
}

impl KeyTable {
    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        self.main.hasher().hash_one(key)
    }

    pub fn len(&self) -> usize {
        self.main.len() + self.overflow.len()
    }

    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        let hash = self.hash(key);
        let eq = |(k, _): &(Key, Entry)| **k == *key;
        match self.main.raw_table().get(hash, eq) {
            Some((_, e)) => Some(e),
            None if self.overflow.is_empty() => None,
            None => self.overflow.raw_table().get(hash, eq).map(|(_, e)| e),
        }
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let hash = self.hash(key);
        let eq = |(k, _): &(Key, Entry)| **k == *key;
        if let Some((_, e)) = self.main.raw_table_mut().get_mut(hash, eq) {
            return Some(e);
        }
        if self.overflow.is_empty() {
            return None;
        }
        self.overflow.raw_table_mut().get_mut(hash, eq).map(|(_, e)| e)
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// The entry of `key`, taken out instead if `expired` says so: one probe
    /// (per table) for lazy expiry.
    pub fn get_live(&mut self, key: &[u8], expired: impl Fn(&Entry) -> bool) -> Lookup<'_> {
        let hash = self.hash(key);
        if let Some(found) = probe(&mut self.main, hash, key, &expired) {
            return found;
        }
        if self.overflow.is_empty() {
            return Lookup::Absent;
        }
        probe(&mut self.overflow, hash, key, &expired).unwrap_or(Lookup::Absent)
    }

    /// The entry of `key` or the place to insert it, from one hash.
    pub fn entry(&mut self, key: &[u8]) -> Slot<'_> {
        let hash = self.hash(key);
        // Buckets are found first and dereferenced after, so that the
        // borrow of one table ends before the vacant case borrows `self`.
        let eq = |(k, _): &(Key, Entry)| **k == *key;
        let bucket = self.main.raw_table().find(hash, eq).or_else(|| match self.overflow.is_empty() {
            true => None,
            false => self.overflow.raw_table().find(hash, eq),
        });
        match bucket {
            // SAFETY: the bucket was just found full in one of our tables,
            // which stay borrowed (through `self`) as long as the result.
            Some(b) => Slot::Occupied(unsafe { &mut b.as_mut().1 }),
            None => Slot::Vacant(Vacant { table: self, hash }),
        }
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let hash = self.hash(key);
        let eq = |(k, _): &(Key, Entry)| **k == *key;
        if let Some((_, e)) = self.main.raw_table_mut().remove_entry(hash, eq) {
            return Some(e);
        }
        if self.overflow.is_empty() {
            return None;
        }
        self.overflow.raw_table_mut().remove_entry(hash, eq).map(|(_, e)| e)
    }

    /// The table a new key goes to: `main` while it has room (or is small,
    /// or so full of deleted slots that hashbrown rehashes it in place
    /// rather than grow it: at most 7/16 of its buckets live), else
    /// `overflow` while it can grow within half of `main`, else both merged
    /// into a `main` twice as large.
    fn for_new_key(&mut self) -> &mut Map {
        let main_buckets = self.main.raw_table().buckets();
        let main_len = self.main.len();
        if main_len < self.main.capacity() || main_buckets < STAGED_FROM || main_len < main_buckets * 7 / 16 {
            return &mut self.main;
        }
        let overflow_full = self.overflow.len() == self.overflow.capacity();
        let overflow_next = (self.overflow.raw_table().buckets() * 2).max(4);
        if overflow_full && overflow_next > main_buckets / 2 {
            self.main.reserve(self.overflow.len() + 1);
            for (k, e) in self.overflow.drain() {
                self.main.insert_unique_unchecked(k, e);
            }
            self.overflow.shrink_to(0);
            return &mut self.main;
        }
        &mut self.overflow
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Entry)> {
        self.main.iter().chain(self.overflow.iter())
    }

    pub fn into_entries(self) -> impl Iterator<Item = (Key, Entry)> {
        self.main.into_iter().chain(self.overflow)
    }

    /// Buckets of both tables (a snapshot's scan restarts when it changes).
    pub fn buckets(&self) -> usize {
        self.main.raw_table().buckets() + self.overflow.raw_table().buckets()
    }

    /// SCAN over both tables as one (`table_scan`): a cursor value is a
    /// block of homes at the larger table's precision, visited in both, so a
    /// key moving from `overflow` to `main` in a merge stays in its block.
    /// Visits up to `count` blocks (fewer once `count` keys came back).
    pub fn scan(&self, cursor: usize, count: usize, mut visit: impl FnMut(&Key, &Entry)) -> usize {
        if self.len() == 0 {
            return 0;
        }
        let (main, overflow) = (self.main.raw_table(), self.overflow.raw_table());
        let precision = table_scan::block_mask(main) | table_scan::block_mask(overflow);
        let hash = |(k, _): &(Key, Entry)| self.hash(k);
        let (mut cursor, mut seen) = (cursor, 0);
        for _ in 0..count {
            for table in [main, overflow] {
                table_scan::visit_block(table, cursor, precision, hash, |(k, e)| {
                    visit(k, e);
                    seen += 1;
                });
            }
            cursor = table_scan::next_cursor(cursor, precision);
            if cursor == 0 || seen >= count {
                break;
            }
        }
        cursor
    }

    /// A uniformly random entry: a table drawn by its share of keys, then
    /// an entry of it (`util::table_random`).
    pub fn random(&self, rand: &mut impl FnMut() -> u64) -> Option<(&Key, &Entry)> {
        if self.len() == 0 {
            return None;
        }
        let map = match rand() % (self.len() as u64) < self.main.len() as u64 {
            true => &self.main,
            false => &self.overflow,
        };
        crate::util::table_random(map, rand)
    }

    /// Starts loading the cache lines a lookup of `key` touches first in
    /// each table (its control group and first candidate slot).
    #[inline]
    pub fn prefetch(&self, key: &[u8]) {
        let hash = self.hash(key);
        crate::util::prefetch_hashed(&self.main, hash);
        if !self.overflow.is_empty() {
            crate::util::prefetch_hashed(&self.overflow, hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{StrValue, Value};
    use std::cell::Cell;

    fn entry(i: u64) -> Entry {
        Entry { value: Value::Str(StrValue::Int(i as i64)), expire_at: 0, lru: 0, saved: Cell::new(0) }
    }

    fn value(e: &Entry) -> i64 {
        e.value.as_str().and_then(|s| s.as_int()).unwrap()
    }

    fn insert(t: &mut KeyTable, i: u64) {
        let key = format!("key:{i}");
        match t.entry(key.as_bytes()) {
            Slot::Occupied(_) => panic!("{key} present"),
            Slot::Vacant(v) => v.insert(key.as_bytes(), entry(i)),
        }
    }

    #[test]
    fn staged_growth_finds_every_key_and_stays_loaded() {
        let mut t = KeyTable::default();
        let n = 300_000u64;
        let mut worst_load = 1.0f64;
        let mut saw_overflow = false;
        for i in 0..n {
            insert(&mut t, i);
            saw_overflow |= !t.overflow.is_empty();
            if t.main.raw_table().buckets() >= STAGED_FROM * 2 {
                worst_load = worst_load.min(t.len() as f64 / t.buckets() as f64);
            }
        }
        assert!(saw_overflow);
        // Plain doubling would drop to 7/16 = 0.4375 right after a doubling.
        assert!(worst_load > 0.64, "load fell to {worst_load}");
        assert_eq!(t.len(), n as usize);
        for i in 0..n {
            let key = format!("key:{i}");
            assert_eq!(t.get(key.as_bytes()).map(value), Some(i as i64));
            assert!(matches!(t.entry(key.as_bytes()), Slot::Occupied(_)));
        }
        assert!(t.get(b"key:-1").is_none());
        // SCAN visits every key once while the table does not resize.
        let (mut cursor, mut seen) = (0, std::collections::HashSet::new());
        loop {
            cursor = t.scan(cursor, 100, |k, _| assert!(seen.insert(k.to_vec())));
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), n as usize);
        assert_eq!(t.iter().count(), n as usize);
        // Removal and lazy-expiry lookups reach both tables.
        for i in (0..n).step_by(2) {
            assert_eq!(t.remove(format!("key:{i}").as_bytes()).map(|e| value(&e)), Some(i as i64));
        }
        for i in (1..n).step_by(4) {
            assert!(matches!(t.get_live(format!("key:{i}").as_bytes(), |_| true), Lookup::Removed(..)));
            assert!(matches!(t.get_live(format!("key:{}", i + 2).as_bytes(), |_| false), Lookup::Live(_)));
        }
        assert_eq!(t.len(), (n / 4) as usize);
        // Churn: the deleted slots are reused, the tables do not keep growing.
        let buckets = t.buckets();
        for round in 0..4u64 {
            let base = n * (round + 1);
            (base..base + n / 2).for_each(|i| insert(&mut t, i));
            (base..base + n / 2).for_each(|i| assert!(t.remove(format!("key:{i}").as_bytes()).is_some()));
        }
        assert_eq!(t.len(), (n / 4) as usize);
        assert!(t.buckets() <= buckets, "{} buckets, {buckets} before the churn", t.buckets());
        let mut r = crate::util::rng_from(7);
        let k = t.random(&mut r).map(|(k, _)| k.clone()).unwrap();
        assert!(t.contains_key(&k));
    }
}
