//! The sorted set type: members ordered by (score, member bytes), each member
//! once, with Redis' two encodings.
//!
//! - `Small` ("listpack" in OBJECT ENCODING): a vector sorted by (score,
//!   member). Lookups by member are linear, as in Redis' listpack, which is
//!   fine at up to `zset-max-listpack-entries` (128) members.
//! - `Large` ("skiplist"): members live in a slab (`Vec<Slot>`, a member's id
//!   is its index); a hash table of ids finds a member's score in O(1), and a
//!   B+tree of ids with subtree counts keeps the order. Rank, select-by-rank,
//!   range bounds and insert/remove are O(log n), as with Redis' skiplist
//!   spans. A B+tree was chosen over a skiplist because its nodes are arrays
//!   of 4-byte ids: per member it costs the slot (24 bytes), the member's own
//!   allocation and about 5 bytes of hash table and 6 of tree, well under
//!   the skiplist node, dict entry and sds of Redis. Comparisons go through
//!   the slab (one indirection), which binary search over small nodes keeps
//!   to a handful per level.
//!
//! A set converts from `Small` to `Large` when it outgrows the limits, and
//! never back, except when a command builds a new set (ZUNIONSTORE and
//! friends), exactly when Redis does.

use std::cmp::Ordering;

use hashbrown::HashTable;

/// One member of the small encoding.
#[derive(Clone, Debug)]
pub struct Item {
    pub score: f64,
    pub member: Box<[u8]>,
}

#[derive(Clone)]
pub enum Zset {
    Small(Vec<Item>),
    /// Boxed: the small encoding, by far the most common, stays small.
    Large(Box<Large>),
}

/// Orders (score, member) pairs as Redis does. Scores are never NaN.
fn cmp_entry(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    s1.partial_cmp(&s2).unwrap_or(Ordering::Equal).then_with(|| m1.cmp(m2))
}

impl Zset {
    pub fn new() -> Zset {
        Zset::Small(Vec::new())
    }

    /// An empty set in the large encoding, for commands that build a set
    /// and then pick its encoding (`shrink_if_fits`).
    pub fn new_large() -> Zset {
        Zset::Large(Box::default())
    }

    /// A set about to receive `size_hint` members of up to `max_member`
    /// bytes, in the encoding Redis' zsetTypeCreate picks.
    pub fn with_hint(size_hint: usize, max_member: usize, limits: Limits) -> Zset {
        if size_hint <= limits.entries && max_member <= limits.value {
            Zset::Small(Vec::new())
        } else {
            Zset::new_large()
        }
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            Zset::Small(_) => "listpack",
            Zset::Large(_) => "skiplist",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Zset::Small(v) => v.len(),
            Zset::Large(l) => l.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            Zset::Small(v) => v.iter().find(|i| &*i.member == member).map(|i| i.score),
            Zset::Large(l) => l.find(member).map(|id| l.slots[id as usize].score),
        }
    }

    /// Sets `member`'s score, adding it if new; returns the old score.
    /// Converts to the large encoding first when the new member would not
    /// fit the small one.
    pub fn set(&mut self, member: &[u8], score: f64, limits: Limits) -> Option<f64> {
        if let Zset::Small(v) = self {
            match v.iter().position(|i| &*i.member == member) {
                Some(at) => {
                    let old = v[at].score;
                    let score = if score == 0.0 { 0.0 } else { score };
                    if old != score {
                        let item = v.remove(at);
                        let pos = v.partition_point(|i| cmp_entry(i.score, &i.member, score, member).is_lt());
                        v.insert(pos, Item { score, member: item.member });
                    }
                    return Some(old);
                }
                None if v.len() < limits.entries && member.len() <= limits.value => {
                    // A listpack stores scores as text in which -0 is "0".
                    let score = if score == 0.0 { 0.0 } else { score };
                    let pos = v.partition_point(|i| cmp_entry(i.score, &i.member, score, member).is_lt());
                    v.insert(pos, Item { score, member: member.into() });
                    return None;
                }
                None => self.make_large(),
            }
        }
        let Zset::Large(l) = self else { unreachable!("converted above") };
        l.set(member, score)
    }

    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match self {
            Zset::Small(v) => {
                let at = v.iter().position(|i| &*i.member == member)?;
                Some(v.remove(at).score)
            }
            Zset::Large(l) => {
                let id = l.find(member)?;
                Some(l.remove_id(id).0)
            }
        }
    }

    /// The 0-based ascending rank of `member`.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match self {
            Zset::Small(v) => v.iter().position(|i| &*i.member == member),
            Zset::Large(l) => {
                let id = l.find(member)?;
                let s = &l.slots[id as usize];
                Some(l.count_while(|x| cmp_entry(x.score, &x.member, s.score, &s.member).is_lt()))
            }
        }
    }

    /// How many of the first members (in ascending order) satisfy `before`,
    /// a predicate that holds for a prefix of the order (a range bound).
    pub fn count_while(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        match self {
            Zset::Small(v) => v.partition_point(|i| before(i.score, &i.member)),
            Zset::Large(l) => l.count_while(|s| before(s.score, &s.member)),
        }
    }

    /// The member at ascending rank `rank` (< len).
    pub fn at(&self, rank: usize) -> (&[u8], f64) {
        match self {
            Zset::Small(v) => (&v[rank].member, v[rank].score),
            Zset::Large(l) => {
                let s = &l.slots[l.root.select(rank) as usize];
                (&s.member, s.score)
            }
        }
    }

    /// Visits members from ascending rank `start` (< len) upwards, or
    /// downwards if `rev`, while `f` returns true.
    pub fn walk(&self, start: usize, rev: bool, mut f: impl FnMut(&[u8], f64) -> bool) {
        match self {
            Zset::Small(v) if rev => {
                for i in v[..=start].iter().rev() {
                    if !f(&i.member, i.score) {
                        return;
                    }
                }
            }
            Zset::Small(v) => {
                for i in &v[start..] {
                    if !f(&i.member, i.score) {
                        return;
                    }
                }
            }
            Zset::Large(l) => {
                l.root.walk(start, rev, &mut |id| {
                    let s = &l.slots[id as usize];
                    f(&s.member, s.score)
                });
            }
        }
    }

    /// Removes the members of ascending ranks `start..end`; returns how many.
    pub fn remove_ranks(&mut self, start: usize, end: usize) -> usize {
        match self {
            Zset::Small(v) => v.drain(start..end).count(),
            Zset::Large(l) => {
                let mut ids = Vec::with_capacity(end - start);
                l.root.walk(start, false, &mut |id| {
                    ids.push(id);
                    ids.len() < end - start
                });
                for &id in &ids {
                    l.remove_id(id);
                }
                ids.len()
            }
        }
    }

    /// Removes and returns the lowest (or with `max` the highest) member.
    pub fn pop(&mut self, max: bool) -> Option<(Box<[u8]>, f64)> {
        match self {
            Zset::Small(v) if v.is_empty() => None,
            Zset::Small(v) => {
                let i = if max { v.pop()? } else { v.remove(0) };
                Some((i.member, i.score))
            }
            Zset::Large(l) if l.len == 0 => None,
            Zset::Large(l) => {
                let id = l.root.select(if max { l.len - 1 } else { 0 });
                let (score, member) = l.remove_id(id);
                Some((member, score))
            }
        }
    }

    /// ZSCAN's step: visits members from `cursor` on (at least `count` of
    /// them, or all) and returns the next cursor, 0 at the end. The small
    /// encoding is returned whole in one call, as Redis does.
    pub fn scan<'a>(&'a self, cursor: usize, count: usize, mut f: impl FnMut(&'a [u8], f64)) -> usize {
        match self {
            Zset::Small(v) => {
                v.iter().for_each(|i| f(&i.member, i.score));
                0
            }
            Zset::Large(l) => {
                // Slab positions are stable, so a member present for the
                // whole scan is seen exactly once.
                let mut seen = 0;
                let mut i = cursor;
                while i < l.slots.len() && seen < count {
                    let s = &l.slots[i];
                    if !s.score.is_nan() {
                        f(&s.member, s.score);
                        seen += 1;
                    }
                    i += 1;
                }
                if i >= l.slots.len() {
                    0
                } else {
                    i
                }
            }
        }
    }

    /// Every member in ascending order.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], f64)) {
        if !self.is_empty() {
            self.walk(0, false, |m, s| {
                f(m, s);
                true
            });
        }
    }

    fn make_large(&mut self) {
        if let Zset::Small(v) = self {
            let mut l = Box::<Large>::default();
            for i in std::mem::take(v) {
                l.set(&i.member, i.score);
            }
            *self = Zset::Large(l);
        }
    }

    /// Converts a freshly built set to the small encoding if it fits, as
    /// Redis' zsetConvertToListpackIfNeeded.
    pub fn shrink_if_fits(&mut self, limits: Limits) {
        if let Zset::Large(l) = self {
            let fits = l.len <= limits.entries && l.slots.iter().all(|s| s.score.is_nan() || s.member.len() <= limits.value);
            if fits {
                let mut v = Vec::with_capacity(l.len);
                self.for_each(|m, s| v.push(Item { score: if s == 0.0 { 0.0 } else { s }, member: m.into() }));
                *self = Zset::Small(v);
            }
        }
    }

    /// Approximate heap bytes.
    pub fn mem_size(&self) -> usize {
        match self {
            Zset::Small(v) => v.capacity() * size_of::<Item>() + v.iter().map(|i| i.member.len()).sum::<usize>(),
            Zset::Large(l) => {
                l.slots.capacity() * size_of::<Slot>()
                    + l.slots.iter().map(|s| s.member.len()).sum::<usize>()
                    + l.by_member.capacity() * 5
                    + l.len * 6
            }
        }
    }
}

impl Default for Zset {
    fn default() -> Self {
        Zset::new()
    }
}

/// The small encoding's limits (zset-max-listpack-entries/-value).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub entries: usize,
    pub value: usize,
}

impl Limits {
    pub fn from_config() -> Limits {
        Limits {
            entries: crate::config::zset_max_listpack_entries() as usize,
            value: crate::config::zset_max_listpack_value() as usize,
        }
    }
}

/// A member of the large encoding; a free slot has a NaN score.
#[derive(Clone)]
struct Slot {
    score: f64,
    member: Box<[u8]>,
}

#[derive(Clone, Default)]
pub struct Large {
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_member: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    root: Node,
    len: usize,
}

impl Large {
    fn hash(&self, member: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(member)
    }

    fn find(&self, member: &[u8]) -> Option<u32> {
        let slots = &self.slots;
        self.by_member.find(self.hash(member), |&id| &*slots[id as usize].member == member).copied()
    }

    fn count_while(&self, before: impl Fn(&Slot) -> bool) -> usize {
        self.root.count_while(&|id| before(&self.slots[id as usize]))
    }

    fn set(&mut self, member: &[u8], score: f64) -> Option<f64> {
        if let Some(id) = self.find(member) {
            let old = self.slots[id as usize].score;
            if old != score {
                self.tree_remove(id);
                self.slots[id as usize].score = score;
                self.tree_insert(id);
            }
            return Some(old);
        }
        let slot = Slot { score, member: member.into() };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        let hash = self.hash(member);
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.by_member.insert_unique(hash, id, |&x| {
            use std::hash::BuildHasher;
            hasher.hash_one(&*slots[x as usize].member)
        });
        self.tree_insert(id);
        None
    }

    /// Removes member `id` everywhere; returns its score and bytes.
    fn remove_id(&mut self, id: u32) -> (f64, Box<[u8]>) {
        self.tree_remove(id);
        let hash = self.hash(&self.slots[id as usize].member);
        if let Ok(e) = self.by_member.find_entry(hash, |&x| x == id) {
            e.remove();
        }
        let slot = std::mem::replace(&mut self.slots[id as usize], Slot { score: f64::NAN, member: Box::default() });
        self.free.push(id);
        if self.len == 0 {
            // Nothing is left to point into the slab.
            self.slots = Vec::new();
            self.free = Vec::new();
        }
        (slot.score, slot.member)
    }

    fn tree_insert(&mut self, id: u32) {
        let slots = &self.slots;
        let before = |x: u32| {
            let (a, b) = (&slots[x as usize], &slots[id as usize]);
            cmp_entry(a.score, &a.member, b.score, &b.member).is_lt()
        };
        self.len += 1;
        if let Some(right) = self.root.insert(id, &before) {
            let left = std::mem::take(&mut self.root);
            let left = Child { len: self.len - right.len, last: left.last(), node: Box::new(left) };
            self.root = Node::Inner(vec![left, right]);
        }
    }

    fn tree_remove(&mut self, id: u32) {
        let slots = &self.slots;
        let before = |x: u32| {
            let (a, b) = (&slots[x as usize], &slots[id as usize]);
            cmp_entry(a.score, &a.member, b.score, &b.member).is_lt()
        };
        let removed = self.root.remove(id, &before);
        debug_assert!(removed, "member missing from the tree");
        self.len -= 1;
        if let Node::Inner(c) = &mut self.root {
            if c.len() == 1 {
                self.root = *c.pop().expect("one child").node;
            }
        }
        if self.len == 0 {
            self.root = Node::default();
        }
    }
}

/// Most ids in a leaf, and children of an inner node; nodes below a quarter
/// of that merge with a neighbour.
const LEAF_MAX: usize = 128;
const INNER_MAX: usize = 64;

/// A node of the order-statistic B+tree. Leaves hold ids in order; an inner
/// node holds its children with their sizes (for ranks) and last ids (to
/// descend by key).
#[derive(Clone)]
enum Node {
    Leaf(Vec<u32>),
    Inner(Vec<Child>),
}

#[derive(Clone)]
struct Child {
    len: usize,
    last: u32,
    node: Box<Node>,
}

impl Default for Node {
    fn default() -> Self {
        Node::Leaf(Vec::new())
    }
}

impl Node {
    fn last(&self) -> u32 {
        match self {
            Node::Leaf(v) => *v.last().expect("nonempty leaf"),
            Node::Inner(c) => c.last().expect("nonempty node").last,
        }
    }

    fn underfull(&self) -> bool {
        match self {
            Node::Leaf(v) => v.len() < LEAF_MAX / 4,
            Node::Inner(c) => c.len() < INNER_MAX / 4,
        }
    }

    /// Inserts `id`, which sorts after exactly the ids `before` accepts.
    /// Returns the right half if the node split.
    fn insert(&mut self, id: u32, before: &dyn Fn(u32) -> bool) -> Option<Child> {
        match self {
            Node::Leaf(v) => {
                let pos = v.partition_point(|&x| before(x));
                v.insert(pos, id);
                (v.len() > LEAF_MAX).then(|| {
                    let right = v.split_off(v.len() / 2);
                    Child { len: right.len(), last: *right.last().expect("half"), node: Box::new(Node::Leaf(right)) }
                })
            }
            Node::Inner(children) => {
                let i = children.partition_point(|c| before(c.last)).min(children.len() - 1);
                let c = &mut children[i];
                c.len += 1;
                if before(c.last) {
                    c.last = id;
                }
                if let Some(right) = c.node.insert(id, before) {
                    c.len -= right.len;
                    c.last = c.node.last();
                    children.insert(i + 1, right);
                }
                (children.len() > INNER_MAX).then(|| {
                    let right = children.split_off(children.len() / 2);
                    let len = right.iter().map(|c| c.len).sum();
                    Child { len, last: right.last().expect("half").last, node: Box::new(Node::Inner(right)) }
                })
            }
        }
    }

    /// Removes `id`, found by its key (`before` as in `insert`).
    fn remove(&mut self, id: u32, before: &dyn Fn(u32) -> bool) -> bool {
        match self {
            Node::Leaf(v) => {
                let pos = v.partition_point(|&x| before(x));
                if v.get(pos) != Some(&id) {
                    return false;
                }
                v.remove(pos);
                true
            }
            Node::Inner(children) => {
                let i = children.partition_point(|c| before(c.last));
                let Some(c) = children.get_mut(i) else { return false };
                if !c.node.remove(id, before) {
                    return false;
                }
                c.len -= 1;
                if c.last == id && c.len > 0 {
                    c.last = c.node.last();
                }
                if c.node.underfull() && children.len() > 1 {
                    Self::rebalance(children, i);
                }
                true
            }
        }
    }

    /// Merges underfull child `i` with a neighbour, splitting the result
    /// again if it is too big.
    fn rebalance(children: &mut Vec<Child>, i: usize) {
        let j = if i + 1 < children.len() { i } else { i - 1 };
        let right = children.remove(j + 1);
        let left = &mut children[j];
        left.len += right.len;
        if right.len > 0 {
            left.last = right.last;
        }
        let split = match (&mut *left.node, *right.node) {
            (Node::Leaf(a), Node::Leaf(b)) => {
                a.extend(b);
                (a.len() > LEAF_MAX).then(|| Node::Leaf(a.split_off(a.len() / 2)))
            }
            (Node::Inner(a), Node::Inner(b)) => {
                a.extend(b);
                (a.len() > INNER_MAX).then(|| Node::Inner(a.split_off(a.len() / 2)))
            }
            _ => unreachable!("siblings are at the same depth"),
        };
        if let Some(node) = split {
            let len = node.size();
            left.len -= len;
            left.last = left.node.last();
            let last = node.last();
            children.insert(j + 1, Child { len, last, node: Box::new(node) });
        }
        if children[j].len == 0 {
            children.remove(j);
        }
    }

    fn size(&self) -> usize {
        match self {
            Node::Leaf(v) => v.len(),
            Node::Inner(c) => c.iter().map(|c| c.len).sum(),
        }
    }

    fn count_while(&self, before: &dyn Fn(u32) -> bool) -> usize {
        match self {
            Node::Leaf(v) => v.partition_point(|&x| before(x)),
            Node::Inner(children) => {
                let k = children.partition_point(|c| before(c.last));
                let skipped: usize = children[..k].iter().map(|c| c.len).sum();
                skipped + children.get(k).map_or(0, |c| c.node.count_while(before))
            }
        }
    }

    fn select(&self, mut rank: usize) -> u32 {
        match self {
            Node::Leaf(v) => v[rank],
            Node::Inner(children) => {
                for c in children {
                    if rank < c.len {
                        return c.node.select(rank);
                    }
                    rank -= c.len;
                }
                unreachable!("rank within the tree")
            }
        }
    }

    /// Visits ids from position `start` on (or down, with `rev`) while `f`
    /// returns true; returns false once `f` stopped the walk.
    fn walk(&self, start: usize, rev: bool, f: &mut dyn FnMut(u32) -> bool) -> bool {
        match self {
            Node::Leaf(v) if rev => v[..=start].iter().rev().all(|&x| f(x)),
            Node::Leaf(v) => v[start..].iter().all(|&x| f(x)),
            Node::Inner(children) => {
                let (mut i, mut local) = (0, start);
                while local >= children[i].len {
                    local -= children[i].len;
                    i += 1;
                }
                if rev {
                    if !children[i].node.walk(local, true, f) {
                        return false;
                    }
                    children[..i].iter().rev().all(|c| c.node.walk(c.len - 1, true, f))
                } else {
                    if !children[i].node.walk(local, false, f) {
                        return false;
                    }
                    children[i + 1..].iter().all(|c| c.node.walk(0, false, f))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    const BIG: Limits = Limits { entries: 0, value: 0 };

    fn check(z: &Zset, model: &std::collections::BTreeMap<Vec<u8>, f64>) {
        let mut sorted: Vec<(f64, &[u8])> = model.iter().map(|(m, &s)| (s, m.as_slice())).collect();
        sorted.sort_by(|a, b| cmp_entry(a.0, a.1, b.0, b.1));
        assert_eq!(z.len(), sorted.len());
        let mut seen = Vec::new();
        z.for_each(|m, s| seen.push((s, m.to_vec())));
        assert_eq!(seen.len(), sorted.len());
        for (i, (s, m)) in sorted.iter().enumerate() {
            assert_eq!((seen[i].0, seen[i].1.as_slice()), (*s, *m));
            assert_eq!(z.rank(m), Some(i));
            assert_eq!(z.at(i), (*m, *s));
            assert_eq!(z.score(m), Some(*s));
        }
        if let Zset::Large(l) = z {
            check_node(&l.root, &l.slots, true);
        }
    }

    /// Sizes and last ids of every child agree with its subtree; returns the size.
    fn check_node(n: &Node, slots: &[Slot], root: bool) -> usize {
        match n {
            Node::Leaf(v) => {
                assert!(v.len() <= LEAF_MAX);
                v.len()
            }
            Node::Inner(c) => {
                assert!(c.len() <= INNER_MAX && (root || !c.is_empty()));
                for ch in c {
                    assert_eq!(check_node(&ch.node, slots, false), ch.len);
                    assert_eq!(ch.node.last(), ch.last);
                    assert!(!slots[ch.last as usize].score.is_nan());
                }
                c.iter().map(|c| c.len).sum()
            }
        }
    }

    #[test]
    fn large_matches_model_under_random_operations() {
        let mut rng = Rng(0x9E3779B97F4A7C15);
        let mut z = Zset::new_large();
        let mut model = std::collections::BTreeMap::new();
        for round in 0..300_000u32 {
            let m = format!("m{}", rng.next() % 20_000).into_bytes();
            match rng.next() % 10 {
                0..=5 => {
                    let score = (rng.next() % 200) as f64 - 100.0;
                    assert_eq!(z.set(&m, score, BIG), model.insert(m, score));
                }
                6..=7 => assert_eq!(z.remove(&m), model.remove(&m)),
                8 if !model.is_empty() => {
                    let max = rng.next() % 2 == 0;
                    let (pm, ps) = z.pop(max).unwrap();
                    assert_eq!(model.remove(&*pm), Some(ps));
                }
                _ if z.len() > 10 => {
                    let start = (rng.next() as usize) % (z.len() - 5);
                    let mut gone = Vec::new();
                    z.walk(start, false, |m, _| {
                        gone.push(m.to_vec());
                        gone.len() < 5
                    });
                    assert_eq!(z.remove_ranks(start, start + 5), 5);
                    gone.iter().for_each(|m| assert!(model.remove(m).is_some()));
                }
                _ => {}
            }
            if round % 50_000 == 0 {
                check(&z, &model);
            }
        }
        check(&z, &model);
        // Empty it completely through the tree.
        while z.pop(false).is_some() {}
        assert!(z.is_empty());
        model.clear();
        check(&z, &model);
    }

    #[test]
    fn walk_both_ways_and_bounds() {
        let mut z = Zset::new_large();
        for i in 0..1000 {
            z.set(format!("{:04}", i).as_bytes(), (i / 10) as f64, BIG);
        }
        assert_eq!(z.count_while(|s, _| s < 50.0), 500);
        assert_eq!(z.count_while(|s, _| s <= 50.0), 510);
        let mut down = Vec::new();
        z.walk(999, true, |m, _| {
            down.push(m.to_vec());
            true
        });
        assert_eq!(down.len(), 1000);
        assert_eq!(down[0], b"0999");
        assert_eq!(down[999], b"0000");
        let mut some = 0;
        z.walk(700, true, |_, _| {
            some += 1;
            some < 3
        });
        assert_eq!(some, 3);
    }

    #[test]
    fn small_converts_when_limits_are_exceeded() {
        let limits = Limits { entries: 3, value: 4 };
        let mut z = Zset::new();
        for m in ["a", "b", "c"] {
            z.set(m.as_bytes(), 1.0, limits);
        }
        assert_eq!(z.encoding(), "listpack");
        z.set(b"d", 0.0, limits);
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(z.rank(b"d"), Some(0));
        let mut z = Zset::new();
        z.set(b"long!", 1.0, limits);
        assert_eq!(z.encoding(), "skiplist");
        z.remove(b"long!");
        z.set(b"a", 1.0, limits);
        z.shrink_if_fits(limits);
        assert_eq!(z.encoding(), "listpack");
        assert_eq!(z.score(b"a"), Some(1.0));
    }

    #[test]
    fn scan_covers_every_member_once() {
        let mut z = Zset::new_large();
        for i in 0..500 {
            z.set(format!("m{}", i).as_bytes(), i as f64, BIG);
        }
        for i in 0..100 {
            z.remove(format!("m{}", i * 3).as_bytes());
        }
        let (mut cursor, mut seen) = (0, std::collections::HashSet::new());
        loop {
            cursor = z.scan(cursor, 10, |m, _| assert!(seen.insert(m.to_vec())));
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 400);
    }
}
