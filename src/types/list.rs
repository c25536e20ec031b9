//! The list type: a deque of packed nodes, as Redis' quicklist of listpacks
//! (OBJECT ENCODING says "quicklist" for every list, as Redis 7.0 does).
//!
//! A node packs its elements back to back in one buffer, each as
//! `[length][bytes][length reversed]` with LEB128 lengths, so it can be walked
//! from either end and an element costs its bytes plus two bytes of framing
//! (up to 127 bytes long). The live bytes are `buf[head..]`: popping from the
//! front moves `head`, pushing to the front writes into the room before it
//! (grown geometrically), so both ends are O(1) amortized. Nodes are bounded
//! by `list-max-listpack-size` (negative: -1..-5 = 4..64 KB; positive: that
//! many elements, and at most 8 KB as Redis' SIZE_SAFETY_LIMIT); an element
//! larger than the limit gets a node of its own.

use std::collections::VecDeque;

/// Which end of a list (Redis' LEFT/HEAD and RIGHT/TAIL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

/// Byte limit of a node for a count-based fill (Redis' SIZE_SAFETY_LIMIT).
const SAFETY_LIMIT: usize = 8192;

/// The byte limit of a node under fill `fill` (list-max-listpack-size).
fn byte_limit(fill: i64) -> usize {
    if fill >= 0 {
        SAFETY_LIMIT
    } else {
        4096usize << ((-fill).min(5) - 1)
    }
}

/// Whether a node holding `count` elements in `bytes` may take one more of
/// `extra` bytes under fill `fill`.
fn fits(fill: i64, count: usize, bytes: usize, extra: usize) -> bool {
    count == 0 || ((fill < 0 || (count as i64) < fill.max(1)) && bytes + extra <= byte_limit(fill))
}

/// Whether one node may hold `count` elements in `bytes` under fill `fill`.
fn fits_merged(fill: i64, count: usize, bytes: usize) -> bool {
    (fill < 0 || count as i64 <= fill.max(1)) && bytes <= byte_limit(fill)
}

fn varint_len(n: usize) -> usize {
    let mut len = 1;
    let mut v = n >> 7;
    while v != 0 {
        len += 1;
        v >>= 7;
    }
    len
}

/// Bytes an element of `n` bytes takes in a node.
fn framed_len(n: usize) -> usize {
    2 * varint_len(n) + n
}

/// Writes `v` framed (length, bytes, reversed length) into `out`, which is
/// exactly `framed_len(v.len())` long.
fn write_framed(out: &mut [u8], v: &[u8]) {
    let mut len = [0u8; 10];
    let mut n = v.len();
    let mut k = 0;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        len[k] = b | if n != 0 { 0x80 } else { 0 };
        k += 1;
        if n == 0 {
            break;
        }
    }
    out[..k].copy_from_slice(&len[..k]);
    out[k..k + v.len()].copy_from_slice(v);
    let tail = &mut out[k + v.len()..];
    for (i, b) in len[..k].iter().enumerate() {
        tail[k - 1 - i] = *b;
    }
}

/// One packed node.
#[derive(Clone, Default)]
struct Node {
    buf: Vec<u8>,
    /// Start of the live bytes; `buf[..head]` is room for pushes to the front.
    head: usize,
    count: usize,
}

impl Node {
    fn bytes(&self) -> usize {
        self.buf.len() - self.head
    }

    /// The element starting at `at` (an offset into `buf`): its bytes and the
    /// offset of the next element.
    fn at(&self, at: usize) -> (&[u8], usize) {
        let (mut n, mut shift, mut p) = (0usize, 0, at);
        loop {
            let b = self.buf[p];
            n |= ((b & 0x7f) as usize) << shift;
            p += 1;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        (&self.buf[p..p + n], p + n + (p - at))
    }

    /// The element ending at `end`: its bytes and the offset where it starts.
    fn before(&self, end: usize) -> (&[u8], usize) {
        let (mut n, mut shift, mut p) = (0usize, 0, end);
        loop {
            p -= 1;
            let b = self.buf[p];
            n |= ((b & 0x7f) as usize) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        let lenlen = end - p;
        let start = p - n;
        (&self.buf[start..p], start - lenlen)
    }

    fn push_back(&mut self, v: &[u8]) {
        let at = self.buf.len();
        self.buf.resize(at + framed_len(v.len()), 0);
        write_framed(&mut self.buf[at..], v);
        self.count += 1;
    }

    /// Pushes to the front; `limit` (the node's byte limit) caps the room
    /// kept in front, so a full node wastes little.
    fn push_front(&mut self, v: &[u8], limit: usize) {
        let need = framed_len(v.len());
        if self.head < need {
            // Grow the room in front geometrically: amortized O(1) per byte.
            let room = (need + self.bytes().max(16)).min(limit.saturating_sub(self.bytes())).max(need);
            let mut buf = Vec::with_capacity(room + self.bytes());
            buf.resize(room, 0);
            buf.extend_from_slice(&self.buf[self.head..]);
            self.buf = buf;
            self.head = room;
        }
        self.head -= need;
        let at = self.head;
        write_framed(&mut self.buf[at..at + need], v);
        self.count += 1;
    }

    /// Appends `other`'s elements, growing the buffer by exactly their bytes.
    fn append(&mut self, other: &Node) {
        self.buf.reserve_exact(other.bytes());
        self.buf.extend_from_slice(&other.buf[other.head..]);
        self.count += other.count;
    }

    /// Removes the first element and gives its bytes to `f`.
    fn pop_front<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> R {
        let (v, next) = self.at(self.head);
        let r = f(v);
        self.head = next;
        self.count -= 1;
        if self.count == 0 {
            self.buf.clear();
            self.head = 0;
        }
        r
    }

    fn pop_back<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> R {
        let (v, start) = self.before(self.buf.len());
        let r = f(v);
        self.buf.truncate(start);
        self.count -= 1;
        r
    }

    fn iter(&self) -> NodeIter<'_> {
        NodeIter { node: self, front: self.head, back: self.buf.len() }
    }
}

/// A node's elements, from either end.
struct NodeIter<'a> {
    node: &'a Node,
    front: usize,
    back: usize,
}

impl<'a> Iterator for NodeIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.front >= self.back {
            return None;
        }
        let (v, next) = self.node.at(self.front);
        self.front = next;
        Some(v)
    }
}

impl DoubleEndedIterator for NodeIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front >= self.back {
            return None;
        }
        let (v, start) = self.node.before(self.back);
        self.back = start;
        Some(v)
    }
}

#[derive(Clone, Default)]
pub struct ListValue {
    nodes: VecDeque<Node>,
    len: usize,
}

impl ListValue {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, end: End, v: &[u8], fill: i64) {
        let extra = framed_len(v.len());
        let node = match end {
            End::Left => self.nodes.front_mut(),
            End::Right => self.nodes.back_mut(),
        };
        match node {
            Some(n) if fits(fill, n.count, n.bytes(), extra) => match end {
                End::Left => n.push_front(v, byte_limit(fill)),
                End::Right => n.push_back(v),
            },
            _ => {
                let mut n = Node::default();
                n.push_back(v);
                match end {
                    End::Left => self.nodes.push_front(n),
                    End::Right => self.nodes.push_back(n),
                }
            }
        }
        self.len += 1;
    }

    /// Removes the element at `end` and gives its bytes to `f` (so a reply
    /// can be written straight from the node).
    pub fn pop<R>(&mut self, end: End, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let r = match end {
            End::Left => {
                let n = self.nodes.front_mut()?;
                let r = n.pop_front(f);
                if n.count == 0 {
                    self.nodes.pop_front();
                }
                r
            }
            End::Right => {
                let n = self.nodes.back_mut()?;
                let r = n.pop_back(f);
                if n.count == 0 {
                    self.nodes.pop_back();
                }
                r
            }
        };
        self.len -= 1;
        Some(r)
    }

    /// The node holding element `i` and `i`'s position within it.
    fn locate(&self, i: usize) -> (usize, usize) {
        if i < self.len / 2 {
            let mut i = i;
            for (k, n) in self.nodes.iter().enumerate() {
                if i < n.count {
                    return (k, i);
                }
                i -= n.count;
            }
        } else {
            let mut from_end = self.len - i;
            for (k, n) in self.nodes.iter().enumerate().rev() {
                if from_end <= n.count {
                    return (k, n.count - from_end);
                }
                from_end -= n.count;
            }
        }
        unreachable!("index {i} within a list of {}", self.len)
    }

    /// Element `i` (0-based from the left), if in range.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len {
            return None;
        }
        let (k, j) = self.locate(i);
        let n = &self.nodes[k];
        if j < n.count / 2 {
            n.iter().nth(j)
        } else {
            n.iter().rev().nth(n.count - 1 - j)
        }
    }

    /// The elements from index `from` rightwards.
    pub fn iter_from(&self, from: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let (k, j) = if from < self.len { self.locate(from) } else { (self.nodes.len(), 0) };
        self.nodes.range(k..).enumerate().flat_map(move |(m, n)| n.iter().skip(if m == 0 { j } else { 0 }))
    }

    /// The elements from the right end leftwards.
    pub fn iter_rev(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.nodes.iter().rev().flat_map(|n| n.iter().rev())
    }

    /// Rebuilds node `k` from the elements `edit` emits (given the old
    /// node), split into nodes that respect `fill`; none removes the node.
    fn rewrite(&mut self, k: usize, fill: i64, edit: impl FnOnce(&Node, &mut dyn FnMut(&[u8]))) {
        let old = std::mem::take(&mut self.nodes[k]);
        let mut parts: Vec<Node> = Vec::new();
        let mut cur = Node::default();
        edit(&old, &mut |e| {
            if !fits(fill, cur.count, cur.bytes(), framed_len(e.len())) {
                parts.push(std::mem::take(&mut cur));
            }
            cur.push_back(e);
        });
        if cur.count > 0 {
            parts.push(cur);
        }
        // Exact sizes, as Redis' listpacks: push_back grew them geometrically.
        parts.iter_mut().for_each(|p| p.buf.shrink_to_fit());
        self.len = self.len - old.count + parts.iter().map(|p| p.count).sum::<usize>();
        self.nodes.remove(k);
        for (m, p) in parts.into_iter().enumerate() {
            self.nodes.insert(k + m, p);
        }
    }

    /// Replaces element `i` (which must be in range).
    pub fn set(&mut self, i: usize, v: &[u8], fill: i64) {
        let (k, j) = self.locate(i);
        self.rewrite(k, fill, |old, emit| old.iter().enumerate().for_each(|(x, e)| emit(if x == j { v } else { e })));
    }

    /// Inserts `v` so that it becomes element `i` (0 ..= len).
    pub fn insert(&mut self, i: usize, v: &[u8], fill: i64) {
        if i == 0 {
            return self.push(End::Left, v, fill);
        }
        if i == self.len {
            return self.push(End::Right, v, fill);
        }
        let (k, j) = self.locate(i);
        self.rewrite(k, fill, |old, emit| {
            for (x, e) in old.iter().enumerate() {
                if x == j {
                    emit(v);
                }
                emit(e);
            }
        });
    }

    /// Removes up to `limit` elements equal to `v` (0: all), scanning from
    /// `end`; returns how many it removed.
    pub fn remove_matching(&mut self, v: &[u8], limit: usize, end: End, fill: i64) -> usize {
        let mut removed = 0;
        let left = end == End::Left;
        let mut k = if left { 0 } else { self.nodes.len() };
        loop {
            if limit != 0 && removed == limit {
                break;
            }
            if !left {
                if k == 0 {
                    break;
                }
                k -= 1;
            } else if k == self.nodes.len() {
                break;
            }
            let node = &self.nodes[k];
            let matches = node.iter().filter(|e| *e == v).count();
            if matches == 0 {
                k += left as usize;
                continue;
            }
            let take = if limit == 0 { matches } else { matches.min(limit - removed) };
            // Which matches go: the first `take` seen from `end`.
            let (lo, hi) = if left { (0, take) } else { (matches - take, matches) };
            removed += take;
            let before = self.nodes.len();
            self.rewrite(k, fill, |old, emit| {
                let mut seen = 0;
                for e in old.iter() {
                    if e == v {
                        seen += 1;
                        if seen > lo && seen <= hi {
                            continue;
                        }
                    }
                    emit(e);
                }
            });
            if left {
                // The node became 0 or more nodes; continue after them.
                k = k + 1 + self.nodes.len() - before;
            }
        }
        if removed > 0 {
            self.merge_small(fill);
        }
        removed
    }

    /// Merges each node into the one before it while both fit in one node
    /// under `fill`, so deletions in the middle (LREM) leave full nodes
    /// rather than many small ones, each with its own allocation (Redis'
    /// quicklist merges its neighbours the same way, _quicklistMergeNodes).
    /// One pass, O(nodes + bytes moved).
    fn merge_small(&mut self, fill: i64) {
        let mut merged: VecDeque<Node> = VecDeque::with_capacity(self.nodes.len());
        for n in self.nodes.drain(..) {
            match merged.back_mut() {
                Some(last) if fits_merged(fill, last.count + n.count, last.bytes() + n.bytes()) => last.append(&n),
                _ => merged.push_back(n),
            }
        }
        merged.shrink_to_fit();
        self.nodes = merged;
    }

    /// Drops `n` elements from `end` (whole nodes at once where possible).
    pub fn drop(&mut self, end: End, mut n: usize) {
        n = n.min(self.len);
        while n > 0 {
            let node = match end {
                End::Left => self.nodes.front().expect("len > 0"),
                End::Right => self.nodes.back().expect("len > 0"),
            };
            if node.count <= n {
                n -= node.count;
                self.len -= node.count;
                match end {
                    End::Left => self.nodes.pop_front(),
                    End::Right => self.nodes.pop_back(),
                };
            } else {
                self.pop(end, |_| ());
                n -= 1;
            }
        }
    }

    /// Approximate heap bytes.
    pub fn mem_size(&self) -> usize {
        self.nodes.iter().map(|n| n.buf.capacity() + std::mem::size_of::<Node>()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(l: &ListValue) -> Vec<Vec<u8>> {
        l.iter_from(0).map(|e| e.to_vec()).collect()
    }

    fn model_check(l: &ListValue, m: &VecDeque<Vec<u8>>) {
        assert_eq!(l.len(), m.len());
        assert_eq!(collect(l), m.iter().cloned().collect::<Vec<_>>());
        let rev: Vec<Vec<u8>> = l.iter_rev().map(|e| e.to_vec()).collect();
        assert_eq!(rev, m.iter().rev().cloned().collect::<Vec<_>>());
        for (i, e) in m.iter().enumerate() {
            assert_eq!(l.get(i), Some(e.as_slice()));
            assert_eq!(l.iter_from(i).next(), Some(e.as_slice()));
        }
        assert_eq!(l.get(m.len()), None);
        assert_eq!(l.nodes.iter().map(|n| n.count).sum::<usize>(), l.len());
        assert!(l.nodes.iter().all(|n| n.count > 0));
    }

    #[test]
    fn framing_roundtrips_every_length_class() {
        for len in [0, 1, 127, 128, 300, 16383, 16384, 70000] {
            let v: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut n = Node::default();
            n.push_back(b"x");
            n.push_back(&v);
            n.push_front(&v, 1 << 20);
            assert_eq!(n.iter().collect::<Vec<_>>(), vec![&v[..], b"x", &v[..]]);
            assert_eq!(n.iter().rev().collect::<Vec<_>>(), vec![&v[..], b"x", &v[..]]);
            assert_eq!(n.bytes(), 2 * framed_len(len) + 3);
        }
    }

    #[test]
    fn matches_a_deque_model_under_mixed_operations() {
        for fill in [-2, -1, 1, 3, 128] {
            let mut l = ListValue::new();
            let mut m: VecDeque<Vec<u8>> = VecDeque::new();
            let mut x: u64 = 12345;
            for step in 0..4000u64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let size = match x % 7 {
                    0 => 0,
                    1 => 200,
                    2 => 9000,
                    _ => (x % 20) as usize,
                };
                let v: Vec<u8> = format!("{step}-").into_bytes().into_iter().chain(std::iter::repeat_n(b'a', size)).collect();
                match (x >> 8) % 9 {
                    0 | 1 => {
                        l.push(End::Left, &v, fill);
                        m.push_front(v);
                    }
                    2 | 3 => {
                        l.push(End::Right, &v, fill);
                        m.push_back(v);
                    }
                    4 => assert_eq!(l.pop(End::Left, |e| e.to_vec()), m.pop_front()),
                    5 => assert_eq!(l.pop(End::Right, |e| e.to_vec()), m.pop_back()),
                    6 if !m.is_empty() => {
                        let i = (x >> 16) as usize % m.len();
                        l.set(i, &v, fill);
                        m[i] = v;
                    }
                    7 => {
                        let i = (x >> 16) as usize % (m.len() + 1);
                        l.insert(i, &v, fill);
                        m.insert(i, v);
                    }
                    _ if !m.is_empty() => {
                        let target = m[(x >> 16) as usize % m.len()].clone();
                        let end = if x & 1 == 0 { End::Left } else { End::Right };
                        let limit = (x >> 20) as usize % 3;
                        let got = l.remove_matching(&target, limit, end, fill);
                        assert_eq!(got, 1);
                        let pos = m.iter().position(|e| *e == target).unwrap();
                        m.remove(pos);
                    }
                    _ => {}
                }
                if step % 97 == 0 {
                    model_check(&l, &m);
                }
            }
            model_check(&l, &m);
            l.drop(End::Left, 3);
            l.drop(End::Right, 5);
            for _ in 0..3.min(m.len()) {
                m.pop_front();
            }
            for _ in 0..5.min(m.len()) {
                m.pop_back();
            }
            model_check(&l, &m);
        }
    }

    #[test]
    fn remove_matching_respects_limit_and_direction() {
        let mut l = ListValue::new();
        for e in ["a", "b", "a", "c", "a"] {
            l.push(End::Right, e.as_bytes(), 2);
        }
        assert_eq!(l.remove_matching(b"a", 2, End::Right, 2), 2);
        assert_eq!(collect(&l), vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(l.remove_matching(b"z", 0, End::Left, 2), 0);
        assert_eq!(l.remove_matching(b"a", 0, End::Left, 2), 1);
        assert_eq!(collect(&l), vec![b"b".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn removals_in_the_middle_leave_full_nodes() {
        let gone = [b'd'; 30];
        for fill in [-2, 128] {
            let mut l = ListValue::new();
            let mut m: VecDeque<Vec<u8>> = VecDeque::new();
            for i in 0..40_000 {
                let v = if i % 4 == 0 { format!("element:{i}").into_bytes() } else { gone.to_vec() };
                l.push(End::Right, &v, fill);
                m.push_back(v);
            }
            let full = l.nodes.len();
            assert_eq!(l.remove_matching(&gone, 0, End::Left, fill), 30_000);
            m.retain(|e| *e != gone);
            model_check(&l, &m);
            // As few nodes as the fill allows, give or take the greedy merge
            // (two neighbours never fit in one node).
            let least = match fill {
                128 => 10_000usize.div_ceil(128),
                _ => l.nodes.iter().map(|n| n.bytes()).sum::<usize>().div_ceil(byte_limit(fill)),
            };
            assert!(l.nodes.len() <= 2 * least + 1 && l.nodes.len() * 3 < full, "{} nodes (from {full}), {least} needed", l.nodes.len());
            assert!(l.nodes.iter().zip(l.nodes.iter().skip(1)).all(|(a, b)| !fits_merged(fill, a.count + b.count, a.bytes() + b.bytes())));
            assert!(l.nodes.iter().all(|n| fits_merged(fill, n.count, n.bytes())));
            // Each node's buffer holds its elements and little else.
            let live: usize = l.nodes.iter().map(|n| n.bytes()).sum();
            let held: usize = l.nodes.iter().map(|n| n.buf.capacity()).sum();
            assert!(held * 100 <= live * 102, "{held} bytes held for {live} live");
        }
    }

    #[test]
    fn nodes_respect_the_size_limit() {
        let mut l = ListValue::new();
        for _ in 0..1000 {
            l.push(End::Right, &[b'x'; 100], -2);
            l.push(End::Left, &[b'y'; 100], -2);
        }
        assert!(l.nodes.iter().all(|n| n.bytes() <= 8192));
        // Near Redis' listpack density: 102 bytes per 100-byte element.
        assert!(l.nodes.iter().map(|n| n.bytes()).sum::<usize>() == 2000 * 102);
        // Pushing to the front only keeps little room unused.
        let mut f = ListValue::new();
        for _ in 0..10_000 {
            f.push(End::Left, &[b'z'; 100], -2);
        }
        let live: usize = f.nodes.iter().map(|n| n.bytes()).sum();
        let held: usize = f.nodes.iter().map(|n| n.buf.capacity()).sum();
        assert!(held * 100 <= live * 110, "{held} bytes held for {live} live");
        let mut c = ListValue::new();
        for _ in 0..10 {
            c.push(End::Right, b"v", 4);
        }
        assert_eq!(c.nodes.len(), 3);
    }
}
