//! The hash type with Redis 7.0's two encodings: `listpack` (every field and
//! value in one contiguous buffer, in insertion order) while the hash has at
//! most `hash-max-listpack-entries` fields and no field or value longer than
//! `hash-max-listpack-value` bytes, else `hashtable`. A hash never converts
//! back, as in Redis.

use hashbrown::hash_map::RawEntryMut;
use hashbrown::HashMap;

use crate::config;

type Hasher = foldhash::fast::RandomState;
pub type HashTable = HashMap<Box<[u8]>, Box<[u8]>, Hasher>;

pub enum HashValue {
    /// Field, value, field, value, ... each as a LEB128 length then its
    /// bytes. Sized exactly (one reallocation per change, as Redis' listpack)
    /// so that a small hash costs one small allocation.
    Listpack(Box<[u8]>),
    Table(Box<HashTable>),
}

/// `n` as LEB128: the bytes and how many of them are used.
fn len_prefix(mut n: usize) -> ([u8; 10], usize) {
    let (mut out, mut used) = ([0u8; 10], 0);
    while n >= 0x80 {
        out[used] = (n as u8 & 0x7f) | 0x80;
        used += 1;
        n >>= 7;
    }
    out[used] = n as u8;
    (out, used + 1)
}

/// Reads one length-prefixed entry at `pos`: (its bytes, the next position).
fn entry_at(buf: &[u8], mut pos: usize) -> (&[u8], usize) {
    let (mut n, mut shift) = (0usize, 0);
    loop {
        let b = buf[pos];
        pos += 1;
        n |= ((b & 0x7f) as usize) << shift;
        if b < 0x80 {
            break;
        }
        shift += 7;
    }
    (&buf[pos..pos + n], pos + n)
}

/// The (field, value) pairs of a listpack buffer, with each pair's byte range.
struct Pairs<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Pairs<'a> {
    /// (field, value, start of the pair, end of the pair)
    type Item = (&'a [u8], &'a [u8], usize, usize);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        let (f, p) = entry_at(self.buf, start);
        let (v, end) = entry_at(self.buf, p);
        self.pos = end;
        Some((f, v, start, end))
    }
}

fn pairs(buf: &[u8]) -> Pairs<'_> {
    Pairs { buf, pos: 0 }
}

/// Whether a field or value this long keeps a hash in listpack form.
fn fits_listpack(len: usize) -> bool {
    len as i64 <= config::hash_max_listpack_value()
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue::Listpack(Box::default())
    }
}

impl HashValue {
    pub fn encoding(&self) -> &'static str {
        match self {
            HashValue::Listpack(_) => "listpack",
            HashValue::Table(_) => "hashtable",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            HashValue::Listpack(b) => pairs(b).count(),
            HashValue::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            HashValue::Listpack(b) => b.is_empty(),
            HashValue::Table(t) => t.is_empty(),
        }
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            HashValue::Listpack(b) => pairs(b).find(|p| p.0 == field).map(|p| p.1),
            HashValue::Table(t) => t.get(field).map(|v| &**v),
        }
    }

    /// Every (field, value): insertion order for a listpack, table order else.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match self {
            HashValue::Listpack(b) => Box::new(pairs(b).map(|p| (p.0, p.1))),
            HashValue::Table(t) => Box::new(t.iter().map(|(f, v)| (&**f, &**v))),
        }
    }

    /// Sets a field; returns true if it is new. A listpack given a field or
    /// value longer than `hash-max-listpack-value`, or grown past
    /// `hash-max-listpack-entries`, becomes a hashtable (Redis' hashTypeSet).
    pub fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        if matches!(self, HashValue::Listpack(_)) && !(fits_listpack(field.len()) && fits_listpack(value.len())) {
            self.convert();
        }
        let added = match self {
            HashValue::Listpack(b) => {
                let mut buf = std::mem::take(b).into_vec();
                let found = pairs(&buf).find(|p| p.0 == field).map(|p| (p.2, p.3));
                let ((fl, fn_), (vl, vn)) = (len_prefix(field.len()), len_prefix(value.len()));
                let pair = fl[..fn_].iter().chain(field).chain(&vl[..vn]).chain(value).copied();
                match found {
                    Some((start, end)) => drop(buf.splice(start..end, pair)),
                    None => {
                        buf.reserve_exact(fn_ + field.len() + vn + value.len());
                        buf.extend(pair);
                    }
                }
                *b = buf.into_boxed_slice();
                found.is_none()
            }
            // One probe; the field is copied only when it is new.
            HashValue::Table(t) => match t.raw_entry_mut().from_key(field) {
                RawEntryMut::Occupied(mut o) => {
                    *o.get_mut() = value.into();
                    false
                }
                RawEntryMut::Vacant(v) => {
                    v.insert(field.into(), value.into());
                    true
                }
            },
        };
        if added && matches!(self, HashValue::Listpack(_)) && self.len() as i64 > config::hash_max_listpack_entries() {
            self.convert();
        }
        added
    }

    /// Removes a field; returns whether it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            HashValue::Listpack(b) => {
                let Some((start, end)) = pairs(b).find(|p| p.0 == field).map(|p| (p.2, p.3)) else { return false };
                let mut buf = std::mem::take(b).into_vec();
                buf.drain(start..end);
                *b = buf.into_boxed_slice();
                true
            }
            HashValue::Table(t) => t.remove(field).is_some(),
        }
    }

    fn convert(&mut self) {
        if let HashValue::Listpack(b) = self {
            let mut t = HashTable::with_capacity_and_hasher(pairs(b).count(), Hasher::default());
            for (f, v, _, _) in pairs(b) {
                t.insert(f.into(), v.into());
            }
            *self = HashValue::Table(Box::new(t));
        }
    }

    /// A uniformly random pair of a non-empty hash.
    pub fn random(&self, rand: &mut impl FnMut() -> u64) -> (&[u8], &[u8]) {
        match self {
            HashValue::Listpack(b) => {
                let i = (rand() % self.len() as u64) as usize;
                pairs(b).nth(i).map(|p| (p.0, p.1)).expect("index within the hash")
            }
            HashValue::Table(t) => crate::util::table_random(t, rand).map(|(f, v)| (&**f, &**v)).expect("hash is not empty"),
        }
    }

    /// HSCAN's step: a listpack is returned whole (cursor 0 next); a table
    /// visits up to `count` entries from bucket `cursor`.
    pub fn scan<'a>(&'a self, cursor: usize, count: usize, mut visit: impl FnMut(&'a [u8], &'a [u8])) -> usize {
        match self {
            HashValue::Listpack(b) => {
                pairs(b).for_each(|p| visit(p.0, p.1));
                0
            }
            HashValue::Table(t) => crate::table_scan::table_scan(t, cursor, count, |(f, v)| visit(f, v)),
        }
    }

    pub fn mem_size(&self) -> usize {
        match self {
            HashValue::Listpack(b) => b.len(),
            HashValue::Table(t) => t.iter().map(|(f, v)| f.len() + v.len() + 32).sum::<usize>() + t.capacity() * 33,
        }
    }
}

impl Clone for HashValue {
    fn clone(&self) -> Self {
        match self {
            HashValue::Listpack(b) => HashValue::Listpack(b.clone()),
            HashValue::Table(t) => HashValue::Table(t.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listpack_set_get_remove_keep_order() {
        let mut h = HashValue::default();
        assert!(h.set(b"a", b"1"));
        assert!(h.set(b"b", b"2"));
        assert!(!h.set(b"a", b"one"));
        assert_eq!(h.get(b"a"), Some(&b"one"[..]));
        assert_eq!(h.iter().map(|p| p.0.to_vec()).collect::<Vec<_>>(), vec![b"a".to_vec(), b"b".to_vec()]);
        assert!(h.remove(b"a"));
        assert!(!h.remove(b"a"));
        assert_eq!(h.len(), 1);
        assert_eq!(h.encoding(), "listpack");
        let HashValue::Listpack(b) = &h else { panic!() };
        assert_eq!(&b[..], b"\x01b\x012", "sized exactly, one byte of length each");
    }

    #[test]
    fn long_entries_use_multi_byte_lengths() {
        let mut h = HashValue::default();
        let long = vec![b'x'; 300];
        // Built by hand: the encoding itself must hold any length (the
        // limit is a setting).
        if let HashValue::Listpack(b) = &mut h {
            let (vl, vn) = len_prefix(long.len());
            assert_eq!(vn, 2);
            let mut v = vec![1, b'f'];
            v.extend_from_slice(&vl[..vn]);
            v.extend_from_slice(&long);
            *b = v.into_boxed_slice();
        }
        assert_eq!(h.get(b"f").map(|v| v.len()), Some(300));
    }

    #[test]
    fn converts_on_entries_and_value_length() {
        let mut h = HashValue::default();
        for i in 0..config::hash_max_listpack_entries() {
            h.set(i.to_string().as_bytes(), b"v");
        }
        assert_eq!(h.encoding(), "listpack");
        h.set(b"one more", b"v");
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len() as i64, config::hash_max_listpack_entries() + 1);
        assert_eq!(h.get(b"0"), Some(&b"v"[..]));

        let mut h = HashValue::default();
        h.set(b"f", b"v");
        let long = vec![b'x'; config::hash_max_listpack_value() as usize + 1];
        h.set(b"g", &long);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(b"f"), Some(&b"v"[..]));
    }

    #[test]
    fn random_and_scan_cover_both_encodings() {
        let mut rng = 1u64;
        let mut rand = || {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            rng >> 33
        };
        for n in [3, 300] {
            let mut h = HashValue::default();
            for i in 0..n {
                h.set(i.to_string().as_bytes(), b"v");
            }
            let (f, _) = h.random(&mut rand);
            assert!(h.get(f).is_some());
            let mut seen = 0;
            let mut cursor = 0;
            loop {
                cursor = h.scan(cursor, 10, |_, _| seen += 1);
                if cursor == 0 {
                    break;
                }
            }
            assert_eq!(seen, n);
        }
    }
}
