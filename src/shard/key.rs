//! The key type of the keyspace: short keys live inline in the hash table's
//! slot, so a lookup compares bytes already in the cache line instead of
//! chasing a pointer to a separate allocation (the key comparison was the
//! costliest cache miss of GET/SET at depth).

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

const INLINE: usize = 22;

#[derive(Clone)]
pub enum Key {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl From<&[u8]> for Key {
    fn from(b: &[u8]) -> Key {
        if b.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..b.len()].copy_from_slice(b);
            Key::Inline { len: b.len() as u8, buf }
        } else {
            Key::Heap(b.into())
        }
    }
}

impl From<Vec<u8>> for Key {
    fn from(v: Vec<u8>) -> Key {
        if v.len() <= INLINE {
            Key::from(v.as_slice())
        } else {
            Key::Heap(v.into_boxed_slice())
        }
    }
}

impl Deref for Key {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Key::Inline { len, buf } => &buf[..*len as usize],
            Key::Heap(b) => b,
        }
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

// Hash, Eq and Ord must agree with [u8]'s, so `&[u8]` can look up a `Key`.
impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        **self == **other
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> std::cmp::Ordering {
        (**self).cmp(&**other)
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_heap_compare_as_bytes() {
        let short = Key::from(&b"key:1"[..]);
        let long = Key::from(&b"a-key-longer-than-twenty-two-bytes"[..]);
        assert!(matches!(short, Key::Inline { .. }));
        assert!(matches!(long, Key::Heap(_)));
        assert_eq!(&*short, b"key:1");
        assert_eq!(std::mem::size_of::<Key>(), 24);
        let mut m = hashbrown::HashMap::new();
        m.insert(short.clone(), 1);
        m.insert(long.clone(), 2);
        assert_eq!(m.get(&b"key:1"[..]), Some(&1));
        assert_eq!(m.get(&b"a-key-longer-than-twenty-two-bytes"[..]), Some(&2));
        assert!(Key::from(&b"a"[..]) < Key::from(&b"b"[..]));
    }
}
