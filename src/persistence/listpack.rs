//! Redis' listpack: the compact sequence Redis 7.0 uses for small lists
//! (quicklist nodes), hashes, sorted sets and stream nodes, and stores in
//! RDB as is.
//!
//! Layout: total bytes (u32 LE), element count (u16 LE, 65535 when it does
//! not fit), the entries, a 0xFF terminator. An entry is its encoding byte(s)
//! and data, then "backlen": the size of encoding+data in 1 to 5 bytes of 7
//! bits, so the listpack can be walked backwards. Strings that are canonical
//! integers are stored as integers, in the smallest of 7-, 13-, 16-, 24-, 32-
//! or 64-bit encodings; other strings with a 6-, 12- or 32-bit length.

use crate::resp::parser::parse_i64;

const HEADER: usize = 6;
const END: u8 = 0xff;
/// The element count of a listpack with 65535 or more elements.
const COUNT_UNKNOWN: u16 = u16::MAX;

/// One decoded element.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Entry<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Entry<'_> {
    /// The element as Redis returns it to clients: integers in decimal.
    pub fn to_vec(self) -> Vec<u8> {
        match self {
            Entry::Str(s) => s.to_vec(),
            Entry::Int(v) => itoa::Buffer::new().format(v).as_bytes().to_vec(),
        }
    }
}

/// Builds a listpack by appending elements.
pub struct Writer {
    buf: Vec<u8>,
    count: usize,
}

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Writer {
    pub fn new() -> Writer {
        Writer { buf: vec![0; HEADER], count: 0 }
    }

    /// Appends an element, stored as an integer when it is a canonical one (as lpAppend).
    pub fn push(&mut self, s: &[u8]) {
        match parse_i64(s) {
            Some(v) => self.push_int(v),
            None => self.push_str(s),
        }
    }

    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        let b = &mut self.buf;
        match v {
            0..=127 => b.push(v as u8),
            -4096..=4095 => {
                let u = (v as u64) & 0x1fff;
                b.extend_from_slice(&[0xc0 | (u >> 8) as u8, u as u8]);
            }
            -32768..=32767 => {
                b.push(0xf1);
                b.extend_from_slice(&(v as i16).to_le_bytes());
            }
            -8_388_608..=8_388_607 => {
                b.push(0xf2);
                b.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
            }
            _ if i32::try_from(v).is_ok() => {
                b.push(0xf3);
                b.extend_from_slice(&(v as i32).to_le_bytes());
            }
            _ => {
                b.push(0xf4);
                b.extend_from_slice(&v.to_le_bytes());
            }
        }
        self.finish_entry(start);
    }

    pub fn push_str(&mut self, s: &[u8]) {
        let start = self.buf.len();
        let b = &mut self.buf;
        let n = s.len();
        if n < 64 {
            b.push(0x80 | n as u8);
        } else if n < 4096 {
            b.extend_from_slice(&[0xe0 | (n >> 8) as u8, n as u8]);
        } else {
            b.push(0xf0);
            b.extend_from_slice(&(n as u32).to_le_bytes());
        }
        b.extend_from_slice(s);
        self.finish_entry(start);
    }

    fn finish_entry(&mut self, start: usize) {
        let l = (self.buf.len() - start) as u64;
        let n = backlen_size(l);
        // Most significant 7 bits first; every byte but the first has bit 7 set.
        for i in (0..n).rev() {
            let part = ((l >> (7 * i)) & 127) as u8;
            self.buf.push(if i == n - 1 { part } else { part | 128 });
        }
        self.count += 1;
    }

    /// Bytes the listpack would have if finished now.
    pub fn len(&self) -> usize {
        self.buf.len() + 1
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(END);
        let total = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        let count = if self.count < COUNT_UNKNOWN as usize { self.count as u16 } else { COUNT_UNKNOWN };
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

fn backlen_size(l: u64) -> u32 {
    match l {
        0..=127 => 1,
        128..16383 => 2,
        16383..2_097_151 => 3,
        2_097_151..268_435_455 => 4,
        _ => 5,
    }
}

/// Encodes a whole sequence of elements.
pub fn encode<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut w = Writer::new();
    for s in items {
        w.push(s);
    }
    w.finish()
}

/// Decodes and validates a listpack blob: header sizes, every entry's
/// bounds and backlen, the terminator. None if anything is off (RESTORE of
/// a corrupt payload must fail, never read out of bounds).
pub fn decode(lp: &[u8]) -> Option<Vec<Entry<'_>>> {
    if lp.len() < HEADER + 1 || u32::from_le_bytes(lp[..4].try_into().ok()?) as usize != lp.len() {
        return None;
    }
    let count = u16::from_le_bytes([lp[4], lp[5]]);
    let mut out = Vec::with_capacity(count.min(1024) as usize);
    let mut p = HEADER;
    loop {
        let b = *lp.get(p)?;
        if b == END {
            break;
        }
        let (entry, size) = decode_entry(&lp[p..])?;
        let n = backlen_size(size as u64) as usize;
        let back = lp.get(p + size..p + size + n)?;
        let mut l = 0u64;
        for (i, &c) in back.iter().enumerate() {
            if (i == 0) == (c & 128 != 0) {
                return None;
            }
            l = (l << 7) | (c & 127) as u64;
        }
        if l != size as u64 {
            return None;
        }
        out.push(entry);
        p += size + n;
    }
    if p + 1 != lp.len() || (count != COUNT_UNKNOWN && count as usize != out.len()) {
        return None;
    }
    Some(out)
}

/// One entry at the start of `e`: the element and the size of its encoding and data.
fn decode_entry(e: &[u8]) -> Option<(Entry<'_>, usize)> {
    let b = e[0];
    let int = |n: usize| -> Option<i64> {
        let bytes = e.get(1..1 + n)?;
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(bytes);
        // Sign-extend from n bytes.
        let shift = 64 - 8 * n as u32;
        Some((i64::from_le_bytes(v) << shift) >> shift)
    };
    let str_at = |start: usize, len: usize| -> Option<(Entry<'_>, usize)> {
        Some((Entry::Str(e.get(start..start.checked_add(len)?)?), start + len))
    };
    match b {
        0x00..=0x7f => Some((Entry::Int(b as i64), 1)),
        0x80..=0xbf => str_at(1, (b & 0x3f) as usize),
        0xc0..=0xdf => {
            let u = (((b & 0x1f) as i64) << 8) | *e.get(1)? as i64;
            Some((Entry::Int(if u >= 1 << 12 { u - (1 << 13) } else { u }), 2))
        }
        0xe0..=0xef => str_at(2, (((b & 0x0f) as usize) << 8) | *e.get(1)? as usize),
        0xf0 => str_at(5, u32::from_le_bytes(e.get(1..5)?.try_into().ok()?) as usize),
        0xf1 => Some((Entry::Int(int(2)?), 3)),
        0xf2 => Some((Entry::Int(int(3)?), 4)),
        0xf3 => Some((Entry::Int(int(4)?), 5)),
        0xf4 => Some((Entry::Int(int(8)?), 9)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::hex;

    // Listpacks cut from DUMP payloads of redis-server 7.0.15 (see
    // rdb.rs' tests for the commands that made them).

    #[test]
    fn byte_identical_to_redis() {
        // RPUSH l1 a 1 bb 300 -5 70000 1234567890123 (a quicklist node).
        let l1 = hex("250000000700816102010182626203c12c02dffb02f270110104f4cb04fb711f01000009ff");
        let items: [&[u8]; 7] = [b"a", b"1", b"bb", b"300", b"-5", b"70000", b"1234567890123"];
        assert_eq!(encode(items), l1);
        let got: Vec<Vec<u8>> = decode(&l1).unwrap().into_iter().map(Entry::to_vec).collect();
        assert_eq!(got, items);
        // HSET h1 f1 v1 f2 2.
        let h1 = hex("1500000004008266310382763103826632030201ff");
        assert_eq!(encode([&b"f1"[..], b"v1", b"f2", b"2"]), h1);
        // ZADD z1 1 a 2.5 b: member, then score as a string.
        let z1 = hex("140000000400816102010181620283322e3504ff");
        assert_eq!(encode([&b"a"[..], b"1", b"b", b"2.5"]), z1);
    }

    #[test]
    fn every_encoding_round_trips() {
        let long12 = vec![b'x'; 4000];
        let long32 = vec![b'y'; 70_000];
        let ints = [0, 127, 128, -1, -4096, 4095, 4096, -4097, 32767, -32768, 32768, 8_388_607, -8_388_608, 8_388_608, i32::MAX as i64, i32::MIN as i64, i32::MAX as i64 + 1, i64::MAX, i64::MIN];
        let mut w = Writer::new();
        for v in ints {
            w.push(itoa::Buffer::new().format(v).as_bytes());
        }
        for s in [&b""[..], b"-0", b"007", b"+1", b"1.5", &long12, &long32] {
            w.push(s);
        }
        let lp = w.finish();
        let got = decode(&lp).unwrap();
        for (i, v) in ints.iter().enumerate() {
            assert_eq!(got[i], Entry::Int(*v));
        }
        assert_eq!(got[ints.len()], Entry::Str(b""));
        assert_eq!(got[ints.len() + 1], Entry::Str(b"-0"));
        assert_eq!(got[ints.len() + 5], Entry::Str(&long12));
        assert_eq!(got[ints.len() + 6], Entry::Str(&long32));
    }

    #[test]
    fn corrupt_listpacks_are_rejected() {
        let lp = encode([&b"hello"[..], b"12345"]);
        for cut in 0..lp.len() {
            assert!(decode(&lp[..cut]).is_none());
        }
        let mut bad = lp.clone();
        bad[6] = 0x8f; // string length past the end
        assert!(decode(&bad).is_none());
        let mut bad = lp.clone();
        bad[4] = 3; // wrong count
        assert!(decode(&bad).is_none());
        assert!(decode(&lp).is_some());
    }
}
