//! SCAN cursors over hashbrown tables (the keyspace, hashtable-encoded
//! hashes and sets), with Redis' guarantee: a full iteration returns every
//! element present from its start to its end at least once, even when the
//! table grows, shrinks or is rehashed in between.
//!
//! Why not bucket positions: a SwissTable moves elements freely. Growth
//! reinserts everything, an in-place rehash (hashbrown's answer to a table
//! full of deleted slots) pulls displaced elements back towards their home
//! bucket, and the keyspace's staged overflow table merges into its main
//! table; a cursor over positions skips whatever moves behind it.
//!
//! What does not move is an element's *home*: `hash & (buckets - 1)`, where
//! its probe sequence starts. So the cursor walks homes, as Redis' walks its
//! chained buckets, in blocks of `BLOCK` consecutive homes (one block per
//! cursor value: the block index is `(hash >> 4) & mask`, a chained table's
//! bucket index in all but name), in Redis' reverse-binary order. Doubling
//! splits block `b` into `b` and `b + blocks`, which that order visits
//! together, so nothing is missed; shrinking merges blocks, which may repeat
//! elements (as in Redis). Which elements a call returns depends on their
//! hashes only, so two tables with one hasher (`KeyTable`'s main and
//! overflow) are scanned as one, at the larger table's precision.
//!
//! Finding the elements of a home: hashbrown keeps an element in its home's
//! probe sequence (groups at triangular offsets) before the first group
//! with an EMPTY control byte — its own lookups stop there. A block's homes
//! are adjacent, so their groups at each probe step form one window of
//! `BLOCK + GROUP - 1` slots; every full slot there is hashed to learn its
//! home. hashbrown's raw API does not tell EMPTY from DELETED, so this reads
//! the control bytes itself (layout of hashbrown 0.14, pinned in Cargo.toml,
//! checked by the tests below).
//!
//! Cost: a call of COUNT n visits about n / load homes' worth of blocks:
//! per block, ~31 control bytes and a hash of each full slot in the window
//! (about two hashes per element returned); later probe steps only when a
//! home's first group is full. A call visits at most `count` blocks, so a
//! sparse table (hashbrown does not shrink on deletion) costs O(count) per
//! call, not O(buckets).

use std::hash::{BuildHasher, Hash};

use hashbrown::raw::RawTable;
use hashbrown::HashMap;

const BLOCK_BITS: u32 = 4;
/// Homes per cursor value.
const BLOCK: usize = 1 << BLOCK_BITS;

/// hashbrown's group width (its `Group::WIDTH`, chosen by the same cfg):
/// the stride unit of its probe sequence.
#[cfg(all(target_feature = "sse2", any(target_arch = "x86", target_arch = "x86_64"), not(miri)))]
const GROUP: usize = 16;
#[cfg(all(target_arch = "aarch64", target_feature = "neon", target_endian = "little", not(miri)))]
const GROUP: usize = 8;
#[cfg(not(any(
    all(target_feature = "sse2", any(target_arch = "x86", target_arch = "x86_64"), not(miri)),
    all(target_arch = "aarch64", target_feature = "neon", target_endian = "little", not(miri))
)))]
const GROUP: usize = std::mem::size_of::<usize>();

/// hashbrown's control byte of a never-used slot; a full slot's has the top
/// bit clear, a deleted slot's is 0x80.
const EMPTY: u8 = 0xFF;

/// The mask of `table`'s block indices: 0 for a table of one block.
pub fn block_mask<T>(table: &RawTable<T>) -> usize {
    (table.buckets() - 1) >> BLOCK_BITS
}

/// Redis' reverse-binary increment of `cursor` over the bits of `mask`
/// (dictScan): 0 once every block has been visited.
pub fn next_cursor(cursor: usize, mask: usize) -> usize {
    (cursor | !mask).reverse_bits().wrapping_add(1).reverse_bits()
}

/// Visits every element of `table` whose hash agrees with `cursor` on the
/// block bits of `precision` (a mask at least `table`'s own `block_mask`):
/// the elements of block `cursor & block_mask(table)`, filtered further when
/// a larger table sets the precision. `hash` recomputes an element's hash.
pub fn visit_block<'a, T>(table: &'a RawTable<T>, cursor: usize, precision: usize, hash: impl Fn(&T) -> u64, mut visit: impl FnMut(&'a T)) {
    if table.is_empty() {
        return;
    }
    let want = cursor & precision;
    let in_scan = |h: u64| (h as usize >> BLOCK_BITS) & precision == want;
    let buckets = table.buckets();
    let mask = buckets - 1;
    if buckets <= BLOCK {
        // One block holds every home: every element is a candidate.
        for i in 0..buckets {
            // SAFETY: i < buckets(); a full bucket holds an initialized element.
            unsafe {
                if table.is_bucket_full(i) {
                    let e = table.bucket(i).as_ref();
                    if precision == 0 || in_scan(hash(e)) {
                        visit(e);
                    }
                }
            }
        }
        return;
    }
    // From here buckets >= 2 * BLOCK > BLOCK + GROUP - 1: a window of one
    // probe step never wraps onto itself.
    let first = (cursor & (mask >> BLOCK_BITS)) << BLOCK_BITS;
    let ctrl = table.data_end().as_ptr() as *const u8;
    let group_bits: u64 = (1 << GROUP) - 1;
    // Bit d: home `first + d` has not yet met a group with an EMPTY byte.
    let mut active: u64 = (1 << BLOCK) - 1;
    let mut offset = 0;
    // A probe sequence meets every group once in buckets / GROUP steps.
    for step in 1..=buckets / GROUP {
        if active == 0 {
            break;
        }
        let base = first + offset;
        // Window bit o is slot (base + o) & mask; home d's group at this
        // step is window bits d..d + GROUP.
        let (mut full, mut empty, mut reach) = (0u64, 0u64, 0u64);
        for d in 0..BLOCK {
            if active & (1 << d) != 0 {
                reach |= group_bits << d;
            }
        }
        for o in 0..BLOCK + GROUP - 1 {
            // SAFETY: the control bytes are `buckets` bytes (plus a mirrored
            // group) from `data_end`, and the index is below `buckets`.
            let c = unsafe { *ctrl.add((base + o) & mask) };
            if c == EMPTY {
                empty |= 1 << o;
            } else if c & 0x80 == 0 && reach & (1 << o) != 0 {
                full |= 1 << o;
            }
        }
        while full != 0 {
            let o = full.trailing_zeros() as usize;
            full &= full - 1;
            // SAFETY: the slot's control byte says it is full.
            let e = unsafe { table.bucket((base + o) & mask).as_ref() };
            let h = hash(e);
            let d = (h as usize & mask).wrapping_sub(first) & mask;
            // Reported only from its own home's group of this step, so an
            // element seen in several windows is visited once.
            if d < BLOCK && active & (1 << d) != 0 && o >= d && o - d < GROUP && in_scan(h) {
                visit(e);
            }
        }
        for d in 0..BLOCK {
            if empty & (group_bits << d) != 0 {
                active &= !(1 << d);
            }
        }
        offset += GROUP * step;
    }
}

/// Visits the elements of up to `count` blocks (fewer once `count`
/// elements came back) of `map` from `cursor`, and returns the next cursor
/// (0 when the table is done).
pub fn table_scan<'a, K: Hash, V, S: BuildHasher>(map: &'a HashMap<K, V, S>, cursor: usize, count: usize, mut visit: impl FnMut((&'a K, &'a V))) -> usize {
    if map.is_empty() {
        return 0;
    }
    let table = map.raw_table();
    let mask = block_mask(table);
    let hasher = map.hasher();
    let (mut cursor, mut seen) = (cursor, 0);
    for _ in 0..count {
        visit_block(table, cursor, mask, |(k, _)| hasher.hash_one(k), |(k, v)| {
            visit((k, v));
            seen += 1;
        });
        cursor = next_cursor(cursor, mask);
        if cursor == 0 || seen >= count {
            break;
        }
    }
    cursor
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    type Map = HashMap<u64, (), foldhash::fast::RandomState>;

    fn full_scan(m: &Map) -> Vec<u64> {
        let (mut cursor, mut out) = (0, Vec::new());
        loop {
            cursor = table_scan(m, cursor, 10, |(k, _)| out.push(*k));
            if cursor == 0 {
                return out;
            }
        }
    }

    /// The layout this module reads: control bytes from `data_end`, EMPTY
    /// 0xFF, full bytes with the top bit clear, as `is_bucket_full` says.
    #[test]
    fn control_bytes_as_read() {
        let mut m = Map::default();
        (0..3000).for_each(|i| {
            m.insert(i, ());
        });
        (0..3000).step_by(3).for_each(|i| {
            m.remove(&i);
        });
        let t = m.raw_table();
        let ctrl = t.data_end().as_ptr() as *const u8;
        let (mut empty, mut deleted) = (0, 0);
        for i in 0..t.buckets() {
            // SAFETY: i < buckets().
            let (c, full) = unsafe { (*ctrl.add(i), t.is_bucket_full(i)) };
            assert_eq!(c & 0x80 == 0, full, "slot {i}: {c:#x}");
            empty += (c == EMPTY) as usize;
            deleted += (c == 0x80) as usize;
        }
        assert_eq!(empty + deleted + m.len(), t.buckets());
        assert!(empty > 0 && deleted > 0);
    }

    /// Every block visit returns exactly the elements of that block, in
    /// tables of every size and full of deleted slots.
    #[test]
    fn blocks_partition_the_table() {
        let mut rand = crate::util::rng_from(1);
        for n in [1usize, 5, 14, 28, 100, 1000, 5000] {
            let mut m = Map::default();
            (0..n as u64).for_each(|_| {
                m.insert(rand(), ());
            });
            // Deleted slots, then reuse of them.
            let keys: Vec<u64> = m.keys().copied().collect();
            keys.iter().step_by(2).for_each(|k| {
                m.remove(k);
            });
            (0..n as u64 / 3).for_each(|_| {
                m.insert(rand(), ());
            });
            let t = m.raw_table();
            let mask = block_mask(t);
            let mut seen = HashSet::new();
            for b in 0..=mask {
                visit_block(t, b, mask, |(k, _)| m.hasher().hash_one(k), |(k, _)| {
                    assert_eq!((m.hasher().hash_one(k) as usize >> BLOCK_BITS) & mask, b);
                    assert!(seen.insert(*k), "{k} twice");
                });
            }
            assert_eq!(seen.len(), m.len(), "{n}");
            assert_eq!(full_scan(&m).len(), m.len());
        }
    }

    /// The guarantee under growth and under elements moving within the same
    /// buckets (what an in-place rehash does; hashbrown does one only after
    /// long deletion churn, so the test re-places them itself): elements
    /// present throughout are returned while others come and go between
    /// calls. The stable elements go in after filler, so many sit away from
    /// their home group, where a move takes them furthest.
    #[test]
    fn scan_survives_growth_and_moves() {
        let mut rand = crate::util::rng_from(2);
        let mut m = Map::default();
        let filler: Vec<u64> = (0..2000).map(|_| rand()).collect();
        let stable: Vec<u64> = (0..1500).map(|_| rand()).collect();
        filler.iter().chain(&stable).for_each(|&k| {
            m.insert(k, ());
        });
        // SAFETY: the bucket was just found in `m`.
        let positions = |m: &Map| -> Vec<usize> {
            let t = m.raw_table();
            stable.iter().map(|&k| unsafe { t.bucket_index(&t.find(m.hasher().hash_one(k), |(x, _)| *x == k).unwrap()) }).collect()
        };
        let (mut grew, mut moved) = (false, false);
        let (mut cursor, mut seen, mut calls) = (0, HashSet::new(), 0);
        loop {
            cursor = table_scan(&m, cursor, 10, |(k, _)| {
                seen.insert(*k);
            });
            if cursor == 0 {
                break;
            }
            calls += 1;
            let buckets = m.raw_table().buckets();
            if calls == 30 {
                filler.iter().for_each(|k| {
                    m.remove(k);
                });
                let before = positions(&m);
                let mut all: Vec<u64> = m.keys().copied().collect();
                all.reverse();
                m.clear();
                all.iter().for_each(|&k| {
                    m.insert(k, ());
                });
                assert_eq!(m.raw_table().buckets(), buckets);
                moved = positions(&m) != before;
            }
            if calls == 80 {
                (0..2500).for_each(|_| {
                    m.insert(rand(), ());
                });
            }
            for _ in 0..40 {
                let k = rand();
                m.insert(k, ());
                m.remove(&k);
            }
            grew |= m.raw_table().buckets() > buckets;
        }
        assert!(grew && moved, "grew {grew}, moved {moved}");
        let missed = stable.iter().filter(|k| !seen.contains(*k)).count();
        assert_eq!(missed, 0, "of {}", stable.len());
    }

    #[test]
    fn reverse_binary_cursor() {
        // Mask 0b111: 0, 4, 2, 6, 1, 5, 3, 7, then done.
        let mut order = vec![0];
        let mut c = 0;
        loop {
            c = next_cursor(c, 7);
            if c == 0 {
                break;
            }
            order.push(c);
        }
        assert_eq!(order, [0, 4, 2, 6, 1, 5, 3, 7]);
        // A cursor from a larger table continues at this table's precision.
        assert_eq!(next_cursor(0b1100, 7), 2);
    }
}
