//! The stream type: entries ordered by ID, and consumer groups.
//!
//! Entries live in chunks (Redis' listpack nodes) kept in a `BTreeMap` keyed
//! by each chunk's first ID, Redis' "master ID" and rax key. Seeking an ID is
//! O(log chunks) plus a binary search in one chunk, appending touches only
//! the last chunk, and a chunk stores its entries' fields back to back in one
//! buffer, so an entry costs a few bytes of overhead and no allocation of its
//! own. Chunks, rather than one `BTreeMap` of entries, because Redis' results
//! depend on them: `~` trimming removes whole nodes only, and XINFO reports
//! the node count. A chunk is closed by Redis' own rules (the
//! `stream-node-max-entries` and `stream-node-max-bytes` settings, with the
//! listpack size computed as Redis encodes it), so both make the same nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::persistence::listpack;
use crate::resp::parser::parse_i64;

/// An entry ID: milliseconds and a sequence number, ordered as a pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    pub const fn new(ms: u64, seq: u64) -> Self {
        StreamId { ms, seq }
    }

    /// The next ID, None after the last possible one.
    pub fn next(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (u64::MAX, u64::MAX) => None,
            (ms, u64::MAX) => Some(StreamId::new(ms + 1, 0)),
            (ms, seq) => Some(StreamId::new(ms, seq + 1)),
        }
    }

    /// The previous ID, None before 0-0.
    pub fn prev(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (0, 0) => None,
            (ms, 0) => Some(StreamId::new(ms - 1, u64::MAX)),
            (ms, seq) => Some(StreamId::new(ms, seq - 1)),
        }
    }

    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }

    /// "ms-seq" into `buf`.
    pub fn format(self, buf: &mut [u8; 41]) -> &[u8] {
        let mut a = itoa::Buffer::new();
        let ms = a.format(self.ms).as_bytes();
        buf[..ms.len()].copy_from_slice(ms);
        buf[ms.len()] = b'-';
        let mut b = itoa::Buffer::new();
        let seq = b.format(self.seq).as_bytes();
        let n = ms.len() + 1 + seq.len();
        buf[ms.len() + 1..n].copy_from_slice(seq);
        &buf[..n]
    }

    /// Parses an ID as Redis' streamGenericParseIDOrReply: `ms` (the sequence
    /// is then `missing_seq`) or `ms-seq`; `-` and `+` unless `strict`; and,
    /// if `seq_given` is asked for, `ms-*` (which leaves it false).
    pub fn parse(arg: &[u8], missing_seq: u64, strict: bool, seq_given: Option<&mut bool>) -> Option<StreamId> {
        if arg.len() > 127 {
            return None;
        }
        // Redis parses a C string: a NUL byte ends it.
        let s = &arg[..arg.iter().position(|&b| b == 0).unwrap_or(arg.len())];
        match s {
            b"-" | b"+" if strict => return None,
            b"-" => return Some(StreamId::MIN),
            b"+" => return Some(StreamId::MAX),
            _ => {}
        }
        let (ms, seq) = match s.iter().position(|&b| b == b'-') {
            Some(dash) => (&s[..dash], Some(&s[dash + 1..])),
            None => (s, None),
        };
        let ms = parse_u64(ms)?;
        let seq = match (seq, seq_given) {
            (Some(b"*"), Some(given)) => {
                *given = false;
                0
            }
            (Some(seq), given) => {
                if let Some(g) = given {
                    *g = true;
                }
                parse_u64(seq)?
            }
            (None, given) => {
                if let Some(g) = given {
                    *g = true;
                }
                missing_seq
            }
        };
        Some(StreamId::new(ms, seq))
    }
}

/// Redis' string2ull: an i64 in Redis' strict form if it is not negative,
/// else what C's strtoull accepts in full (leading spaces, a sign, no overflow).
fn parse_u64(s: &[u8]) -> Option<u64> {
    if let Some(v) = parse_i64(s) {
        return (v >= 0).then_some(v as u64);
    }
    let start = s.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))?;
    let (neg, digits) = match s[start] {
        b'-' => (true, &s[start + 1..]),
        b'+' => (false, &s[start + 1..]),
        _ => (false, &s[start..]),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits.iter().try_fold(0u64, |v, d| v.checked_mul(10)?.checked_add((d - b'0') as u64))?;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// One entry seen in place: its ID and its field-value items.
#[derive(Clone, Copy)]
pub struct Entry<'a> {
    pub id: StreamId,
    items: &'a [u8],
}

impl<'a> Entry<'a> {
    /// Number of items (twice the number of fields).
    pub fn item_count(&self) -> usize {
        read_varint(self.items).0 as usize
    }

    pub fn items(&self) -> Items<'a> {
        let (n, used) = read_varint(self.items);
        Items { rest: &self.items[used..], left: n as usize }
    }
}

/// The fields and values of an entry, alternating.
pub struct Items<'a> {
    rest: &'a [u8],
    left: usize,
}

impl<'a> Iterator for Items<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let (len, used) = read_varint(self.rest);
        let (item, rest) = self.rest[used..].split_at(len as usize);
        self.rest = rest;
        Some(item)
    }
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(b: &[u8]) -> (u64, usize) {
    let (mut v, mut shift) = (0u64, 0);
    for (i, &byte) in b.iter().enumerate() {
        v |= ((byte & 0x7f) as u64) << shift;
        if byte < 0x80 {
            return (v, i + 1);
        }
        shift += 7;
    }
    unreachable!("a varint written by push_varint")
}

/// Entry items encoded as a chunk stores them: a count, then each item as a
/// length and its bytes.
fn encode_items(out: &mut Vec<u8>, items: &[&[u8]]) {
    push_varint(out, items.len() as u64);
    for it in items {
        push_varint(out, it.len() as u64);
        out.extend_from_slice(it);
    }
}

/// The fields of `items` (fields and values, alternating), encoded alike.
fn encode_fields(items: &[&[u8]]) -> Box<[u8]> {
    let mut out = Vec::new();
    push_varint(&mut out, items.len() as u64 / 2);
    for f in items.iter().step_by(2) {
        push_varint(&mut out, f.len() as u64);
        out.extend_from_slice(f);
    }
    out.into_boxed_slice()
}

/// A run of consecutive entries: Redis' listpack node.
#[derive(Clone)]
struct Chunk {
    ids: Vec<StreamId>,
    /// End offset in `data` of each entry's encoded items.
    ends: Vec<u32>,
    data: Vec<u8>,
    /// The last ID ever appended, deleted or not (Redis reads the last entry
    /// of a node whatever its deleted flag when trimming by MINID).
    last: StreamId,
    /// Entries deleted from this chunk: they still take room in it, as
    /// Redis' entries flagged deleted do.
    deleted: u32,
    /// The byte size of the equivalent Redis listpack.
    lp_bytes: u64,
    /// The first entry's fields (Redis' master entry), encoded: later
    /// entries with the same fields take less room in Redis' listpack.
    master_fields: Box<[u8]>,
}

impl Chunk {
    fn entry(&self, i: usize) -> Entry<'_> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        Entry { id: self.ids[i], items: &self.data[start..self.ends[i] as usize] }
    }

    fn remove(&mut self, i: usize) {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        let end = self.ends[i] as usize;
        self.data.drain(start..end);
        self.ids.remove(i);
        self.ends.remove(i);
        for e in &mut self.ends[i..] {
            *e -= (end - start) as u32;
        }
        self.deleted += 1;
    }

    /// Removes the first `n` entries.
    fn remove_first(&mut self, n: usize) {
        let end = self.ends[n - 1];
        self.data.drain(..end as usize);
        self.ids.drain(..n);
        self.ends.drain(..n);
        for e in &mut self.ends {
            *e -= end;
        }
        self.deleted += n as u32;
    }
}

/// Size of one listpack element holding `v` as Redis encodes it (header,
/// data, back-length): strings that read as integers are stored as integers.
fn lp_entry_size(v: &[u8]) -> u64 {
    if v.len() <= 20 {
        if let Some(n) = parse_i64(v) {
            return lp_int_size(n);
        }
    }
    let len = v.len() as u64;
    let head = if len < 64 {
        1
    } else if len < 4096 {
        2
    } else {
        5
    };
    head + len + lp_backlen_size(head + len)
}

fn lp_int_size(n: i64) -> u64 {
    let body = if (0..=127).contains(&n) {
        1
    } else if (-4096..=4095).contains(&n) {
        2
    } else if (-32768..=32767).contains(&n) {
        3
    } else if (-8388608..=8388607).contains(&n) {
        4
    } else if (i32::MIN as i64..=i32::MAX as i64).contains(&n) {
        5
    } else {
        9
    };
    body + lp_backlen_size(body)
}

fn lp_backlen_size(len: u64) -> u64 {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// Listpack header and end byte.
const LP_EMPTY: u64 = 7;

/// What ends a trim: the stream's length or the smallest ID to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

/// Sizes of a new chunk, from the configuration.
#[derive(Clone, Copy)]
pub struct NodeLimits {
    pub max_bytes: u64,
    pub max_entries: u64,
}

/// Redis' STREAM_LISTPACK_MAX_SIZE: the most a node may hold.
pub const LISTPACK_MAX_SIZE: u64 = 1 << 30;

/// A pending (delivered, not acknowledged) entry of a consumer group.
#[derive(Clone, Debug)]
pub struct Pending {
    pub consumer: Arc<[u8]>,
    /// Unix ms of the last delivery.
    pub delivery_time: u64,
    pub delivery_count: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Consumer {
    /// Unix ms of the last time the consumer read or claimed.
    pub seen_time: u64,
    /// The IDs of the group's pending entries owned by this consumer.
    pub pending: BTreeSet<StreamId>,
}

/// Redis' SCG_INVALID_ENTRIES_READ: a group's read counter is unknown.
pub const ENTRIES_READ_UNKNOWN: i64 = -1;

#[derive(Clone, Debug)]
pub struct Group {
    /// The last ID delivered to the group.
    pub last_id: StreamId,
    /// How many entries the group has read (its logical position), or
    /// ENTRIES_READ_UNKNOWN.
    pub entries_read: i64,
    /// Pending entries, by ID (Redis' group PEL).
    pub pending: BTreeMap<StreamId, Pending>,
    pub consumers: BTreeMap<Arc<[u8]>, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Self {
        Group { last_id, entries_read, pending: BTreeMap::new(), consumers: BTreeMap::new() }
    }

    /// The consumer called `name`, created if missing (with whether it was).
    pub fn consumer(&mut self, name: &[u8], now: u64) -> (Arc<[u8]>, &mut Consumer, bool) {
        let created = !self.consumers.contains_key(name);
        if created {
            self.consumers.insert(name.into(), Consumer { seen_time: now, pending: BTreeSet::new() });
        }
        let k = self.consumers.get_key_value(name).expect("inserted above").0.clone();
        (k, self.consumers.get_mut(name).expect("inserted above"), created)
    }

    /// Records a delivery of `id` to `consumer` (Redis' NACK creation): a new
    /// pending entry, or one taken over from whoever had it, counted as a
    /// first delivery.
    pub fn deliver(&mut self, id: StreamId, consumer: &Arc<[u8]>, now: u64) {
        let nack = Pending { consumer: consumer.clone(), delivery_time: now, delivery_count: 1 };
        if let Some(old) = self.pending.insert(id, nack) {
            if let Some(c) = self.consumers.get_mut(&old.consumer) {
                c.pending.remove(&id);
            }
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pending.insert(id);
        }
    }

    /// Acknowledges `id`; true if it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        match self.pending.remove(&id) {
            Some(p) => {
                if let Some(c) = self.consumers.get_mut(&p.consumer) {
                    c.pending.remove(&id);
                }
                true
            }
            None => false,
        }
    }

    /// Gives the pending entry `id` to `consumer`.
    pub fn reassign(&mut self, id: StreamId, consumer: &Arc<[u8]>) {
        let Some(p) = self.pending.get_mut(&id) else { return };
        if *p.consumer != **consumer {
            let old = std::mem::replace(&mut p.consumer, consumer.clone());
            if let Some(c) = self.consumers.get_mut(&old) {
                c.pending.remove(&id);
            }
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pending.insert(id);
        }
    }

    /// Deletes a consumer and its pending entries; returns how many it had.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in &c.pending {
            self.pending.remove(id);
        }
        Some(c.pending.len())
    }
}

#[derive(Clone, Default)]
pub struct StreamValue {
    chunks: BTreeMap<StreamId, Chunk>,
    len: u64,
    /// The ID of the last entry added (it may have been deleted since).
    pub last_id: StreamId,
    /// The first live entry's ID, 0-0 when empty (Redis' recorded first ID).
    pub first_id: StreamId,
    /// The largest ID removed by XDEL.
    pub max_deleted_id: StreamId,
    /// Entries ever added.
    pub entries_added: u64,
    /// Consumer groups by name, in name order (as XINFO lists them).
    pub groups: BTreeMap<Box<[u8]>, Group>,
}

impl StreamValue {
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of chunks (XINFO's radix-tree-keys).
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Appends an entry with ID `id` (greater than `last_id`; the caller
    /// checks) and `items` (fields and values, alternating).
    pub fn append(&mut self, id: StreamId, items: &[&[u8]], limits: NodeLimits) {
        let raw_len: u64 = items.iter().map(|i| i.len() as u64).sum();
        let max_bytes = if limits.max_bytes == 0 || limits.max_bytes > LISTPACK_MAX_SIZE { LISTPACK_MAX_SIZE } else { limits.max_bytes };
        let max_entries = limits.max_entries;
        let fits = self.chunks.last_key_value().is_some_and(|(_, c)| {
            c.lp_bytes + raw_len < max_bytes && (max_entries == 0 || (c.ids.len() as u64 + c.deleted as u64) < max_entries)
        });
        if !fits {
            // Master entry: count, deleted, number of fields, the fields, a 0.
            let master_size = 3 * lp_int_size(0) + lp_int_size(items.len() as i64 / 2) + items.iter().step_by(2).map(|f| lp_entry_size(f)).sum::<u64>();
            let chunk = Chunk {
                ids: Vec::new(),
                ends: Vec::new(),
                data: Vec::new(),
                last: id,
                deleted: 0,
                lp_bytes: LP_EMPTY + master_size,
                master_fields: encode_fields(items),
            };
            self.chunks.insert(id, chunk);
        }
        let mut tail = self.chunks.last_entry().expect("a chunk to append to");
        let master = *tail.key();
        let chunk = tail.get_mut();
        let same_fields = Entry { id, items: &chunk.master_fields }.items().eq(items.iter().step_by(2).copied());
        let values: u64 = items.iter().skip(1).step_by(2).map(|v| lp_entry_size(v)).sum();
        let n = items.len() as i64 / 2;
        let mut size = lp_int_size(0) + lp_int_size(id.ms.wrapping_sub(master.ms) as i64) + lp_int_size(id.seq.wrapping_sub(master.seq) as i64) + values;
        if same_fields {
            size += lp_int_size(n + 3);
        } else {
            size += lp_int_size(n) + items.iter().step_by(2).map(|f| lp_entry_size(f)).sum::<u64>() + lp_int_size(2 * n + 4);
        }
        chunk.lp_bytes += size;
        encode_items(&mut chunk.data, items);
        chunk.ids.push(id);
        chunk.ends.push(chunk.data.len() as u32);
        chunk.last = id;
        self.len += 1;
        self.entries_added += 1;
        self.last_id = id;
        if self.len == 1 {
            self.first_id = id;
        }
    }

    /// The entry with ID `id`.
    pub fn get(&self, id: StreamId) -> Option<Entry<'_>> {
        let (_, c) = self.chunks.range(..=id).next_back()?;
        let i = c.ids.binary_search(&id).ok()?;
        Some(c.entry(i))
    }

    /// Deletes the entry `id`; false if there is none. A chunk left empty
    /// goes, as Redis frees a node whose last entry is deleted.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&key, c)) = self.chunks.range_mut(..=id).next_back() else { return false };
        let Ok(i) = c.ids.binary_search(&id) else { return false };
        c.remove(i);
        if c.ids.is_empty() {
            self.chunks.remove(&key);
        }
        self.len -= 1;
        true
    }

    /// Sets `first_id` to the first live entry's ID (0-0 when empty).
    pub fn refresh_first_id(&mut self) {
        self.first_id = self.first_entry().map_or(StreamId::MIN, |e| e.id);
    }

    pub fn first_entry(&self) -> Option<Entry<'_>> {
        self.chunks.values().find(|c| !c.ids.is_empty()).map(|c| c.entry(0))
    }

    pub fn last_entry(&self) -> Option<Entry<'_>> {
        self.chunks.values().rev().find(|c| !c.ids.is_empty()).map(|c| c.entry(c.ids.len() - 1))
    }

    /// Visits the entries with `start <= ID <= end`, in ID order or reversed,
    /// while `f` returns true.
    pub fn range<'a>(&'a self, start: StreamId, end: StreamId, rev: bool, mut f: impl FnMut(Entry<'a>) -> bool) {
        if start > end {
            return;
        }
        let from = self.chunks.range(..=start).next_back().map_or(start, |(k, _)| *k);
        let chunks = self.chunks.range(from..=end);
        let bounds = |c: &Chunk| (c.ids.partition_point(|&x| x < start), c.ids.partition_point(|&x| x <= end));
        if rev {
            for (_, c) in chunks.rev() {
                let (lo, hi) = bounds(c);
                if !(lo..hi).rev().all(|i| f(c.entry(i))) {
                    return;
                }
            }
        } else {
            for (_, c) in chunks {
                let (lo, hi) = bounds(c);
                if !(lo..hi).all(|i| f(c.entry(i))) {
                    return;
                }
            }
        }
    }

    /// How many entries `range` would visit, counting up to `max` (0: all).
    pub fn range_len(&self, start: StreamId, end: StreamId, max: u64) -> u64 {
        if start > end {
            return 0;
        }
        let from = self.chunks.range(..=start).next_back().map_or(start, |(k, _)| *k);
        let mut n = 0;
        for (_, c) in self.chunks.range(from..=end) {
            n += (c.ids.partition_point(|&x| x <= end) - c.ids.partition_point(|&x| x < start)) as u64;
            if max != 0 && n >= max {
                return max;
            }
        }
        n
    }

    /// Removes entries from the head as Redis' streamTrim: whole chunks
    /// while all their entries must go, then, unless `approx`, single entries
    /// of the next one. `limit` (0: none) caps the entries removed, checked
    /// a whole chunk at a time. Returns how many went.
    pub fn trim(&mut self, to: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0;
        while let Some(mut first) = self.chunks.first_entry() {
            if matches!(to, Trim::MaxLen(max) if self.len <= max) {
                break;
            }
            let c = first.get_mut();
            let entries = c.ids.len() as u64;
            if limit != 0 && deleted + entries > limit {
                break;
            }
            let whole = match to {
                Trim::MaxLen(max) => self.len - entries >= max,
                Trim::MinId(min) => c.last < min,
            };
            if whole {
                first.remove();
                self.len -= entries;
                deleted += entries;
                continue;
            }
            if !approx {
                // Entries within a chunk go by marking in Redis, which keeps
                // the node even if all its live entries go (so does this).
                let n = match to {
                    Trim::MaxLen(max) => (self.len - max) as usize,
                    Trim::MinId(min) => c.ids.partition_point(|&x| x < min),
                };
                if n > 0 {
                    c.remove_first(n);
                    self.len -= n as u64;
                    deleted += n as u64;
                }
            }
            break;
        }
        self.refresh_first_id();
        deleted
    }

    /// Whether an entry at or after `start` was deleted by XDEL, as far as
    /// the stream can tell (Redis' streamRangeHasTombstones to the end).
    pub fn has_tombstones_from(&self, start: StreamId) -> bool {
        if self.len == 0 || self.max_deleted_id.is_zero() || self.first_id > self.max_deleted_id {
            return false;
        }
        start <= self.max_deleted_id
    }

    /// The number of entries added up to `id` (a group's entries-read at
    /// `id`), when the stream can know it (Redis'
    /// streamEstimateDistanceFromFirstEverEntry).
    pub fn entries_read_at(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.len == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        if id == self.last_id {
            return Some(self.entries_added);
        }
        if id > self.last_id {
            return None;
        }
        if self.max_deleted_id.is_zero() || self.max_deleted_id < self.first_id {
            if id < self.first_id {
                return Some(self.entries_added - self.len);
            }
            if id == self.first_id {
                return Some(self.entries_added - self.len + 1);
            }
        }
        None
    }

    /// How many entries the group has yet to read, if known.
    pub fn lag(&self, g: &Group) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != ENTRIES_READ_UNKNOWN && !self.has_tombstones_from(g.last_id) {
            return Some(self.entries_added.wrapping_sub(g.entries_read as u64));
        }
        self.entries_read_at(g.last_id).map(|read| self.entries_added - read)
    }

    /// Moves group `name` past entry `id` as a delivery does, keeping its
    /// read counter when it can.
    pub fn advance_group(&mut self, name: &[u8], id: StreamId) {
        let tombstones = self.has_tombstones_from(id);
        let estimate = self.entries_read_at(id).map_or(ENTRIES_READ_UNKNOWN, |n| n as i64);
        let added = self.entries_added;
        let Some(g) = self.groups.get_mut(name) else { return };
        if id <= g.last_id {
            return;
        }
        if g.entries_read != ENTRIES_READ_UNKNOWN && !tombstones {
            g.entries_read += 1;
        } else if added != 0 {
            g.entries_read = estimate;
        }
        g.last_id = id;
    }

    /// Nodes of the radix tree Redis keeps for these chunks (XINFO's
    /// radix-tree-nodes): computed from the chunk keys as 16-byte big-endian
    /// strings, with Redis' node layout (a compressed node per unbranched
    /// run, a node per branch and per leaf).
    pub fn rax_nodes(&self) -> usize {
        let keys: Vec<[u8; 16]> = self
            .chunks
            .keys()
            .map(|k| {
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&k.ms.to_be_bytes());
                b[8..].copy_from_slice(&k.seq.to_be_bytes());
                b
            })
            .collect();
        if keys.is_empty() {
            return 1;
        }
        1 + rax_nodes_below(&keys, 0)
    }

    /// Approximate heap bytes.
    pub fn mem_size(&self) -> usize {
        let chunks: usize = self.chunks.values().map(|c| c.data.capacity() + c.ids.capacity() * 16 + c.ends.capacity() * 4 + c.master_fields.len() + 64).sum();
        let groups: usize = self.groups.iter().map(|(n, g)| n.len() + 64 + g.pending.len() * 64 + g.consumers.iter().map(|(n, c)| n.len() + 48 + c.pending.len() * 32).sum::<usize>()).sum();
        chunks + groups
    }
}

// --- Redis' node listpacks (RDB) --------------------------------------------------
//
// A node's listpack starts with the master entry: live count, deleted count,
// the master fields' count, the fields, a 0. Each entry follows as flags,
// ms and seq differences from the master ID, then either the values alone
// (SAMEFIELDS: the master's fields) or a field count and the fields and
// values, then the number of elements the entry took ("lp-count", to walk
// backwards).

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

impl Chunk {
    /// The node as a Redis listpack. Entries kvick deleted are gone from
    /// the chunk, so the node is written with none (deleted count 0).
    fn to_listpack(&self, master: StreamId) -> Vec<u8> {
        let mut w = listpack::Writer::new();
        let master_fields = Entry { id: master, items: &self.master_fields };
        w.push_int(self.ids.len() as i64);
        w.push_int(0);
        w.push_int(master_fields.item_count() as i64);
        master_fields.items().for_each(|f| w.push(f));
        w.push_int(0);
        for i in 0..self.ids.len() {
            let e = self.entry(i);
            let n = e.item_count() as i64 / 2;
            let same = n as usize == master_fields.item_count() && e.items().step_by(2).eq(master_fields.items());
            w.push_int(if same { FLAG_SAMEFIELDS } else { 0 });
            w.push_int(e.id.ms.wrapping_sub(master.ms) as i64);
            w.push_int(e.id.seq.wrapping_sub(master.seq) as i64);
            if same {
                e.items().skip(1).step_by(2).for_each(|v| w.push(v));
                w.push_int(n + 3);
            } else {
                w.push_int(n);
                e.items().for_each(|v| w.push(v));
                w.push_int(2 * n + 4);
            }
        }
        w.finish()
    }

    /// A node read from a Redis listpack, checked as Redis' deep sanitization
    /// does (counts, lp-counts, IDs increasing from `master` and after
    /// `after`); None if anything is off.
    fn from_listpack(master: StreamId, lp: &[u8], after: Option<StreamId>) -> Option<Chunk> {
        let entries = listpack::decode(lp)?;
        let mut it = entries.iter().copied();
        let (count, deleted, nf) = (lp_int(it.next())?, lp_int(it.next())?, lp_int(it.next())?);
        let nf = usize::try_from(nf).ok()?;
        let mut fields: Vec<listpack::Entry> = Vec::with_capacity(nf.min(entries.len()));
        for _ in 0..nf {
            fields.push(it.next()?);
        }
        if lp_int(it.next())? != 0 {
            return None;
        }
        let mut master_fields = Vec::new();
        push_varint(&mut master_fields, nf as u64);
        let mut scratch = itoa::Buffer::new();
        for f in &fields {
            let f = entry_bytes(*f, &mut scratch);
            push_varint(&mut master_fields, f.len() as u64);
            master_fields.extend_from_slice(f);
        }
        let mut c = Chunk { ids: Vec::new(), ends: Vec::new(), data: Vec::new(), last: master, deleted: 0, lp_bytes: lp.len() as u64, master_fields: master_fields.into_boxed_slice() };
        let mut prev = after;
        let mut items: Vec<listpack::Entry> = Vec::new();
        while let Some(flags) = it.next() {
            let flags = lp_int(Some(flags))?;
            let id = StreamId::new(master.ms.wrapping_add(lp_int(it.next())? as u64), master.seq.wrapping_add(lp_int(it.next())? as u64));
            if id < master || prev.is_some_and(|p| id <= p) {
                return None;
            }
            prev = Some(id);
            items.clear();
            let n = if flags & FLAG_SAMEFIELDS != 0 {
                for f in &fields {
                    items.push(*f);
                    items.push(it.next()?);
                }
                nf as i64 + 3
            } else {
                let n = usize::try_from(lp_int(it.next())?).ok()?;
                for _ in 0..2 * n {
                    items.push(it.next()?);
                }
                2 * n as i64 + 4
            };
            if lp_int(it.next())? != n {
                return None;
            }
            c.last = id;
            if flags & FLAG_DELETED != 0 {
                c.deleted += 1;
                continue;
            }
            // As encode_items, from listpack elements.
            push_varint(&mut c.data, items.len() as u64);
            for e in &items {
                let b = entry_bytes(*e, &mut scratch);
                push_varint(&mut c.data, b.len() as u64);
                c.data.extend_from_slice(b);
            }
            c.ids.push(id);
            c.ends.push(u32::try_from(c.data.len()).ok()?);
        }
        (count == c.ids.len() as i64 && deleted == c.deleted as i64 && (count + deleted) > 0).then_some(c)
    }
}

/// A listpack element as an integer (None at the end).
fn lp_int(e: Option<listpack::Entry>) -> Option<i64> {
    match e? {
        listpack::Entry::Int(v) => Some(v),
        listpack::Entry::Str(s) => parse_i64(s),
    }
}

/// A listpack element as the string clients see.
fn entry_bytes<'a>(e: listpack::Entry<'a>, buf: &'a mut itoa::Buffer) -> &'a [u8] {
    match e {
        listpack::Entry::Str(s) => s,
        listpack::Entry::Int(v) => buf.format(v).as_bytes(),
    }
}

impl StreamValue {
    /// The chunks as Redis' nodes: master ID and listpack, in ID order.
    pub fn to_listpacks(&self) -> Vec<(StreamId, Vec<u8>)> {
        self.chunks.iter().map(|(&master, c)| (master, c.to_listpack(master))).collect()
    }

    /// Appends a node read from RDB (nodes come in ID order). None if the
    /// listpack is not a valid node or its IDs do not follow the stream's.
    pub fn push_listpack(&mut self, master: StreamId, lp: &[u8]) -> Option<()> {
        let after = self.chunks.last_key_value().map(|(_, c)| c.last);
        let c = Chunk::from_listpack(master, lp, after)?;
        self.len += c.ids.len() as u64;
        self.chunks.insert(master, c);
        Some(())
    }

    /// The last entry ID any chunk ever held (deleted ones included).
    pub fn last_stored_id(&self) -> Option<StreamId> {
        self.chunks.last_key_value().map(|(_, c)| c.last)
    }
}

/// Nodes below the node at depth `d` of the radix tree holding `keys`
/// (sorted, sharing their first `d` bytes).
fn rax_nodes_below(keys: &[[u8; 16]], d: usize) -> usize {
    if d == 16 {
        return 0;
    }
    let (first, last) = (&keys[0], &keys[keys.len() - 1]);
    let common = (d..16).take_while(|&i| first[i] == last[i]).count();
    if common > 0 {
        // A compressed node for the common run; its child follows it.
        return 1 + rax_nodes_below(keys, d + common);
    }
    let mut n = 0;
    let mut rest = keys;
    while !rest.is_empty() {
        let split = rest.partition_point(|k| k[d] == rest[0][d]);
        n += 1 + rax_nodes_below(&rest[..split], d + 1);
        rest = &rest[split..];
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: NodeLimits = NodeLimits { max_bytes: 4096, max_entries: 3 };

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId::new(ms, seq)
    }

    fn stream(ids: &[(u64, u64)], limits: NodeLimits) -> StreamValue {
        let mut s = StreamValue::default();
        for &(ms, seq) in ids {
            s.append(id(ms, seq), &[b"f", b"v"], limits);
        }
        s
    }

    fn ids_of(s: &StreamValue, start: StreamId, end: StreamId, rev: bool) -> Vec<StreamId> {
        let mut out = Vec::new();
        s.range(start, end, rev, |e| {
            out.push(e.id);
            true
        });
        out
    }

    #[test]
    fn id_parsing() {
        let p = |s: &[u8]| StreamId::parse(s, 7, false, None);
        assert_eq!(p(b"1-2"), Some(id(1, 2)));
        assert_eq!(p(b"5"), Some(id(5, 7)));
        assert_eq!(p(b"-"), Some(StreamId::MIN));
        assert_eq!(p(b"+"), Some(StreamId::MAX));
        assert_eq!(StreamId::parse(b"+", 0, true, None), None);
        assert_eq!(p(b"18446744073709551615-18446744073709551615"), Some(StreamId::MAX));
        assert_eq!(p(b"18446744073709551616"), None);
        assert_eq!(p(b"-1"), None);
        assert_eq!(p(b"1-"), None);
        assert_eq!(p(b""), None);
        assert_eq!(p(b"1-2-3"), None);
        assert_eq!(p(b"1-*"), None);
        // C's strtoull quirks, which Redis inherits: a sign, leading spaces.
        assert_eq!(p(b"+5"), Some(id(5, 7)));
        assert_eq!(p(b" 5"), Some(id(5, 7)));
        assert_eq!(p(b"5-+1"), Some(id(5, 1)));
        // A NUL byte ends the C string.
        assert_eq!(p(b"9\x00junk"), Some(id(9, 7)));
        assert_eq!(p(&[b'1'; 128]), None);
        let mut given = true;
        assert_eq!(StreamId::parse(b"3-*", 0, true, Some(&mut given)), Some(id(3, 0)));
        assert!(!given);
        assert_eq!(StreamId::parse(b"3", 0, true, Some(&mut given)), Some(id(3, 0)));
        assert!(given);
    }

    #[test]
    fn id_steps_and_format() {
        assert_eq!(id(1, u64::MAX).next(), Some(id(2, 0)));
        assert_eq!(StreamId::MAX.next(), None);
        assert_eq!(id(2, 0).prev(), Some(id(1, u64::MAX)));
        assert_eq!(StreamId::MIN.prev(), None);
        assert_eq!(StreamId::MAX.format(&mut [0; 41]), b"18446744073709551615-18446744073709551615");
        assert_eq!(id(0, 0).format(&mut [0; 41]), b"0-0");
    }

    #[test]
    fn entries_keep_their_items() {
        let mut s = StreamValue::default();
        s.append(id(1, 1), &[b"", b"\x00\xff", b"name", b"a much longer value than the others"], SMALL);
        let e = s.get(id(1, 1)).unwrap();
        assert_eq!(e.item_count(), 4);
        let items: Vec<&[u8]> = e.items().collect();
        assert_eq!(items, vec![&b""[..], b"\x00\xff", b"name", b"a much longer value than the others"]);
        assert!(s.get(id(1, 2)).is_none());
    }

    #[test]
    fn ranges_across_chunks() {
        let all: Vec<(u64, u64)> = (1..=10).map(|i| (i, 0)).collect();
        let s = stream(&all, SMALL);
        assert_eq!(s.chunk_count(), 4);
        assert_eq!(ids_of(&s, id(3, 0), id(7, 0), false), (3..=7).map(|i| id(i, 0)).collect::<Vec<_>>());
        assert_eq!(ids_of(&s, id(3, 1), id(7, 0), true), (4..=7).rev().map(|i| id(i, 0)).collect::<Vec<_>>());
        assert_eq!(ids_of(&s, StreamId::MIN, StreamId::MAX, false).len(), 10);
        assert!(ids_of(&s, id(8, 0), id(2, 0), false).is_empty());
        assert_eq!(s.range_len(id(2, 0), id(9, 0), 0), 8);
        assert_eq!(s.range_len(id(2, 0), id(9, 0), 5), 5);
        assert_eq!(s.first_entry().unwrap().id, id(1, 0));
        assert_eq!(s.last_entry().unwrap().id, id(10, 0));
    }

    #[test]
    fn deleted_entries_take_room_until_the_chunk_empties() {
        let mut s = stream(&[(1, 0), (2, 0), (3, 0)], SMALL);
        assert!(s.delete(id(3, 0)));
        assert!(!s.delete(id(3, 0)));
        // The first chunk still counts three slots: a new entry opens a chunk.
        s.append(id(4, 0), &[b"f", b"v"], SMALL);
        assert_eq!(s.chunk_count(), 2);
        assert!(s.delete(id(1, 0)) && s.delete(id(2, 0)));
        assert_eq!(s.chunk_count(), 1);
        assert_eq!(s.len(), 1);
        s.refresh_first_id();
        assert_eq!(s.first_id, id(4, 0));
    }

    #[test]
    fn big_values_close_a_chunk_by_bytes() {
        let limits = NodeLimits { max_bytes: 120, max_entries: 100 };
        let mut s = StreamValue::default();
        let big = [b'x'; 40];
        for seq in 0..4 {
            s.append(id(1, seq), &[b"f", &big], limits);
        }
        // Redis' listpack with one such entry takes 68 bytes, with two 118:
        // a third would pass 120.
        assert_eq!(s.chunk_count(), 2);
        assert_eq!(lp_entry_size(b"127"), 2);
        assert_eq!(lp_entry_size(b"128"), 3);
        assert_eq!(lp_entry_size(&[b'a'; 63]), 65);
        assert_eq!(lp_entry_size(&[b'a'; 64]), 67);
    }

    #[test]
    fn trimming() {
        let all: Vec<(u64, u64)> = (1..=10).map(|i| (i, 0)).collect();
        // Approximate: whole chunks only.
        let mut s = stream(&all, SMALL);
        assert_eq!(s.trim(Trim::MaxLen(5), true, 0), 3);
        assert_eq!(s.len(), 7);
        assert_eq!(s.first_id, id(4, 0));
        // Exact: the rest from within the next chunk.
        assert_eq!(s.trim(Trim::MaxLen(5), false, 0), 2);
        assert_eq!(s.first_id, id(6, 0));
        // A limit stops before a chunk that would exceed it.
        let mut s = stream(&all, SMALL);
        assert_eq!(s.trim(Trim::MaxLen(0), true, 5), 3);
        // By ID.
        let mut s = stream(&all, SMALL);
        assert_eq!(s.trim(Trim::MinId(id(5, 0)), true, 0), 3);
        assert_eq!(s.trim(Trim::MinId(id(5, 0)), false, 0), 1);
        assert_eq!(s.first_id, id(5, 0));
        assert_eq!(s.trim(Trim::MaxLen(0), false, 0), 6);
        assert!(s.is_empty() && s.first_id.is_zero() && s.chunk_count() == 0);
    }

    #[test]
    fn radix_tree_nodes() {
        assert_eq!(StreamValue::default().rax_nodes(), 1);
        assert_eq!(stream(&[(1, 1)], SMALL).rax_nodes(), 2);
        // Two keys that differ in the last byte: a common run, a branch, two leaves.
        let s = stream(&[(1, 1), (1, 2), (1, 3), (1, 4)], SMALL);
        assert_eq!(s.rax_nodes(), 4);
        // Differing in the first byte: the branch is the root.
        let s = stream(&[(1, 1), (1, 2), (1, 3), (u64::MAX, 1)], SMALL);
        assert_eq!(s.rax_nodes(), 5);
    }

    #[test]
    fn group_pending_stays_consistent() {
        let mut g = Group::new(StreamId::MIN, ENTRIES_READ_UNKNOWN);
        let (alice, _, created) = g.consumer(b"alice", 10);
        assert!(created);
        let (bob, _, _) = g.consumer(b"bob", 10);
        assert!(!g.consumer(b"alice", 11).2);
        g.deliver(id(1, 0), &alice, 20);
        g.deliver(id(2, 0), &alice, 20);
        // Delivered again to another consumer: moves, counted as a first delivery.
        g.deliver(id(1, 0), &bob, 30);
        assert_eq!(g.pending[&id(1, 0)].consumer, bob);
        assert_eq!(g.consumers[&b"alice"[..]].pending.len(), 1);
        g.reassign(id(2, 0), &bob);
        assert_eq!(g.consumers[&b"bob"[..]].pending.len(), 2);
        assert!(g.consumers[&b"alice"[..]].pending.is_empty());
        assert!(g.ack(id(1, 0)));
        assert!(!g.ack(id(1, 0)));
        assert_eq!(g.delete_consumer(b"bob"), Some(1));
        assert!(g.pending.is_empty());
        assert_eq!(g.delete_consumer(b"bob"), None);
    }

    #[test]
    fn read_counters_and_lag() {
        let mut s = stream(&[(1, 0), (2, 0), (3, 0)], SMALL);
        s.groups.insert(b"g".as_slice().into(), Group::new(StreamId::MIN, ENTRIES_READ_UNKNOWN));
        assert_eq!(s.lag(&s.groups[&b"g"[..]]), Some(3));
        s.advance_group(b"g", id(1, 0));
        assert_eq!(s.groups[&b"g"[..]].entries_read, 1);
        assert_eq!(s.lag(&s.groups[&b"g"[..]]), Some(2));
        // A deletion ahead of the group makes its position unknowable.
        s.delete(id(2, 0));
        s.max_deleted_id = id(2, 0);
        assert_eq!(s.lag(&s.groups[&b"g"[..]]), None);
        assert_eq!(s.entries_read_at(id(3, 0)), Some(3));
        assert_eq!(s.entries_read_at(id(9, 0)), None);
        // As Redis, only tombstones at or after the entry read stop the
        // counter, so it misses the deleted entry and the lag stays 1.
        s.advance_group(b"g", id(3, 0));
        assert_eq!(s.groups[&b"g"[..]].entries_read, 2);
        assert_eq!(s.lag(&s.groups[&b"g"[..]]), Some(1));
    }

    #[test]
    fn value_stays_small() {
        assert!(std::mem::size_of::<crate::types::Value>() <= 32);
    }
}
