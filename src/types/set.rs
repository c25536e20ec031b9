//! The set type with Redis 7.0's two encodings: `intset` (a sorted array of
//! 16-, 32- or 64-bit integers, as wide as its widest member) while every
//! member is an integer and there are at most `set-max-intset-entries` of
//! them, else `hashtable`. A set never converts back, as in Redis.

use hashbrown::hash_map::RawEntryMut;
use hashbrown::HashMap;

use crate::config;
use crate::resp::parser::parse_i64;

type Hasher = foldhash::fast::RandomState;
/// hashbrown's HashSet has no raw-table access (SCAN, random members), so
/// the table is a map to nothing.
pub type SetTable = HashMap<Box<[u8]>, (), Hasher>;

pub enum SetValue {
    Intset(Intset),
    Table(SetTable),
}

/// A sorted array of distinct integers in the narrowest width that holds
/// them all (Redis' intset), one contiguous allocation.
#[derive(Clone)]
pub enum Intset {
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
}

fn search<T: Copy + Into<i64>>(v: &[T], x: i64) -> Result<usize, usize> {
    v.binary_search_by(|e| (*e).into().cmp(&x))
}

impl Intset {
    fn len(&self) -> usize {
        match self {
            Intset::I16(v) => v.len(),
            Intset::I32(v) => v.len(),
            Intset::I64(v) => v.len(),
        }
    }

    fn get(&self, i: usize) -> i64 {
        match self {
            Intset::I16(v) => v[i] as i64,
            Intset::I32(v) => v[i] as i64,
            Intset::I64(v) => v[i],
        }
    }

    fn find(&self, x: i64) -> Result<usize, usize> {
        match self {
            Intset::I16(v) => search(v, x),
            Intset::I32(v) => search(v, x),
            Intset::I64(v) => search(v, x),
        }
    }

    fn contains(&self, x: i64) -> bool {
        self.find(x).is_ok()
    }

    /// Widens every member to hold `x` if needed (Redis' intsetUpgradeAndAdd).
    fn widen_for(&mut self, x: i64) {
        let all = || (0..self.len()).map(|i| self.get(i));
        *self = match self {
            Intset::I16(_) if i16::try_from(x).is_err() && i32::try_from(x).is_ok() => Intset::I32(all().map(|v| v as i32).collect()),
            Intset::I16(_) | Intset::I32(_) if i32::try_from(x).is_err() => Intset::I64(all().collect()),
            _ => return,
        };
    }

    /// Inserts `x`; returns false if it was there.
    fn insert(&mut self, x: i64) -> bool {
        let Err(at) = self.find(x) else { return false };
        self.widen_for(x);
        // After widening, the position is the same (the order is unchanged)
        // and `x` fits the width.
        match self {
            Intset::I16(v) => v.insert(at, x as i16),
            Intset::I32(v) => v.insert(at, x as i32),
            Intset::I64(v) => v.insert(at, x),
        }
        true
    }

    /// Removes `x`; returns whether it was there. The width stays.
    fn remove(&mut self, x: i64) -> bool {
        let Ok(at) = self.find(x) else { return false };
        match self {
            Intset::I16(v) => drop(v.remove(at)),
            Intset::I32(v) => drop(v.remove(at)),
            Intset::I64(v) => drop(v.remove(at)),
        }
        true
    }

    fn byte_size(&self) -> usize {
        match self {
            Intset::I16(v) => v.capacity() * 2,
            Intset::I32(v) => v.capacity() * 4,
            Intset::I64(v) => v.capacity() * 8,
        }
    }
}

impl Default for SetValue {
    /// An empty intset, as Redis' createIntsetObject. Adding to it gives the
    /// encoding Redis' setTypeCreate would have picked for the first member.
    fn default() -> Self {
        SetValue::Intset(Intset::I16(Vec::new()))
    }
}

impl SetValue {
    pub fn encoding(&self) -> &'static str {
        match self {
            SetValue::Intset(_) => "intset",
            SetValue::Table(_) => "hashtable",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            SetValue::Intset(i) => i.len(),
            SetValue::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        match self {
            SetValue::Intset(i) => parse_i64(m).is_some_and(|x| i.contains(x)),
            SetValue::Table(t) => t.contains_key(m),
        }
    }

    /// Adds a member; returns whether it is new. An intset takes a
    /// non-integer or its `set-max-intset-entries`+1st member as a hashtable.
    pub fn add(&mut self, m: &[u8]) -> bool {
        if let SetValue::Intset(i) = self {
            if let Some(x) = parse_i64(m) {
                let added = i.insert(x);
                if added && i.len() as i64 > config::set_max_intset_entries() {
                    self.convert();
                }
                return added;
            }
            self.convert();
        }
        match self {
            // One probe; the member is copied only when it is new.
            SetValue::Table(t) => match t.raw_entry_mut().from_key(m) {
                RawEntryMut::Occupied(_) => false,
                RawEntryMut::Vacant(v) => {
                    v.insert(m.into(), ());
                    true
                }
            },
            SetValue::Intset(_) => unreachable!("converted above"),
        }
    }

    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self {
            SetValue::Intset(i) => parse_i64(m).is_some_and(|x| i.remove(x)),
            SetValue::Table(t) => t.remove(m).is_some(),
        }
    }

    fn convert(&mut self) {
        if let SetValue::Intset(i) = self {
            let mut t = SetTable::with_capacity_and_hasher(i.len() + 1, Hasher::default());
            let mut b = itoa::Buffer::new();
            for j in 0..i.len() {
                t.insert(b.format(i.get(j)).as_bytes().into(), ());
            }
            *self = SetValue::Table(t);
        }
    }

    /// Calls `f` with every member: ascending for an intset, table order else.
    pub fn for_each(&self, mut f: impl FnMut(&[u8])) {
        match self {
            SetValue::Intset(i) => {
                let mut b = itoa::Buffer::new();
                (0..i.len()).for_each(|j| f(b.format(i.get(j)).as_bytes()));
            }
            SetValue::Table(t) => t.keys().for_each(|m| f(m)),
        }
    }

    /// Every member, copied (for computing with several sets at once).
    pub fn members(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(self.len());
        self.for_each(|m| out.push(m.to_vec()));
        out
    }

    /// A uniformly random member of a non-empty set.
    pub fn random(&self, rand: &mut impl FnMut() -> u64) -> Vec<u8> {
        match self {
            SetValue::Intset(i) => itoa::Buffer::new().format(i.get((rand() % i.len() as u64) as usize)).as_bytes().to_vec(),
            SetValue::Table(t) => crate::util::table_random(t, rand).expect("set is not empty").0.to_vec(),
        }
    }

    /// SSCAN's step: an intset is returned whole (cursor 0 next); a table
    /// visits up to `count` members from bucket `cursor`.
    pub fn scan(&self, cursor: usize, count: usize, mut visit: impl FnMut(&[u8])) -> usize {
        match self {
            SetValue::Intset(_) => {
                self.for_each(visit);
                0
            }
            SetValue::Table(t) => crate::table_scan::table_scan(t, cursor, count, |(m, _)| visit(m)),
        }
    }

    pub fn mem_size(&self) -> usize {
        match self {
            SetValue::Intset(i) => i.byte_size(),
            SetValue::Table(t) => t.keys().map(|m| m.len() + 16).sum::<usize>() + t.capacity() * 17,
        }
    }
}

impl Clone for SetValue {
    fn clone(&self) -> Self {
        match self {
            SetValue::Intset(i) => SetValue::Intset(i.clone()),
            SetValue::Table(t) => SetValue::Table(t.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(s: &SetValue) -> Vec<i64> {
        let mut v = Vec::new();
        s.for_each(|m| v.push(parse_i64(m).unwrap()));
        v
    }

    #[test]
    fn intset_stays_sorted_and_widens() {
        let mut s = SetValue::default();
        for x in [5, -3, 5, 100] {
            s.add(x.to_string().as_bytes());
        }
        assert!(matches!(&s, SetValue::Intset(Intset::I16(_))));
        s.add(b"70000");
        assert!(matches!(&s, SetValue::Intset(Intset::I32(_))));
        s.add(b"-9223372036854775808");
        assert!(matches!(&s, SetValue::Intset(Intset::I64(_))));
        assert_eq!(ints(&s), vec![i64::MIN, -3, 5, 100, 70000]);
        assert!(s.remove(b"5"));
        assert!(!s.remove(b"5"));
        assert!(!s.remove(b"abc"));
        assert!(s.contains(b"70000") && !s.contains(b"070000"));
        assert_eq!(s.encoding(), "intset");
    }

    #[test]
    fn converts_on_non_integer_or_size() {
        let mut s = SetValue::default();
        s.add(b"1");
        s.add(b"x");
        assert_eq!(s.encoding(), "hashtable");
        assert!(s.contains(b"1") && s.contains(b"x"));
        // Not string2ll-canonical, so not an integer member.
        for (m, enc) in [("+1", "hashtable"), ("01", "hashtable"), ("-0", "hashtable"), ("-1", "intset")] {
            let mut s = SetValue::default();
            s.add(m.as_bytes());
            assert_eq!(s.encoding(), enc, "{m}");
        }

        let mut s = SetValue::default();
        let max = config::set_max_intset_entries();
        for x in 0..max {
            s.add(x.to_string().as_bytes());
        }
        assert_eq!(s.encoding(), "intset");
        s.add(b"-1");
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(s.len() as i64, max + 1);
    }

    #[test]
    fn random_and_scan_cover_both_encodings() {
        let mut rng = 7u64;
        let mut rand = || {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            rng >> 33
        };
        let small: Vec<String> = ["1", "2", "3"].map(String::from).to_vec();
        let big: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
        for members in [small, big] {
            let mut s = SetValue::default();
            for m in &members {
                s.add(m.as_bytes());
            }
            assert!(s.contains(&s.random(&mut rand)));
            let (mut seen, mut cursor) = (0, 0);
            loop {
                cursor = s.scan(cursor, 7, |_| seen += 1);
                if cursor == 0 {
                    break;
                }
            }
            assert_eq!(seen, members.len());
        }
    }
}
