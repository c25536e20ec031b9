//! Redis' ziplist, read-only: the compact encoding of small lists, hashes
//! and sorted sets before Redis 7.0 (RDB types LIST_ZIPLIST, ZSET_ZIPLIST,
//! HASH_ZIPLIST and the nodes of QUICKLIST), which 7.0 still loads.
//!
//! Layout: total bytes (u32 LE), offset of the last entry (u32 LE), count
//! (u16 LE), entries, 0xFF. An entry is the previous entry's size (1 byte, or
//! 0xFE and u32 LE), an encoding and the data: strings with a 6-bit, 14-bit
//! (big-endian) or 32-bit (big-endian) length, integers of 8, 16, 24, 32 or
//! 64 bits (LE), or an immediate 0..12 in the encoding byte itself.

use super::listpack::Entry;

const HEADER: usize = 10;
const END: u8 = 0xff;

/// Decodes and validates a ziplist (bounds, prevlen chain, tail offset, count).
pub fn decode(zl: &[u8]) -> Option<Vec<Entry<'_>>> {
    if zl.len() < HEADER + 1 || u32::from_le_bytes(zl[..4].try_into().ok()?) as usize != zl.len() {
        return None;
    }
    let tail = u32::from_le_bytes(zl[4..8].try_into().ok()?) as usize;
    let count = u16::from_le_bytes([zl[8], zl[9]]);
    let mut out = Vec::new();
    let (mut p, mut prev_size, mut last) = (HEADER, 0usize, HEADER);
    while *zl.get(p)? != END {
        let start = p;
        let prevlen = if zl[p] < 0xfe {
            p += 1;
            zl[p - 1] as usize
        } else if zl[p] == 0xfe {
            p += 5;
            u32::from_le_bytes(zl.get(p - 4..p)?.try_into().ok()?) as usize
        } else {
            return None;
        };
        if prevlen != prev_size {
            return None;
        }
        let enc = *zl.get(p)?;
        let int = |n: usize| -> Option<i64> {
            let mut v = [0u8; 8];
            v[..n].copy_from_slice(zl.get(p + 1..p + 1 + n)?);
            let shift = 64 - 8 * n as u32;
            Some((i64::from_le_bytes(v) << shift) >> shift)
        };
        let (entry, data_end) = match enc >> 6 {
            0 => str_entry(zl, p + 1, (enc & 0x3f) as usize)?,
            1 => str_entry(zl, p + 2, (((enc & 0x3f) as usize) << 8) | *zl.get(p + 1)? as usize)?,
            2 if enc == 0x80 => str_entry(zl, p + 5, u32::from_be_bytes(zl.get(p + 1..p + 5)?.try_into().ok()?) as usize)?,
            _ => match enc {
                0xc0 => (Entry::Int(int(2)?), p + 3),
                0xd0 => (Entry::Int(int(4)?), p + 5),
                0xe0 => (Entry::Int(int(8)?), p + 9),
                0xf0 => (Entry::Int(int(3)?), p + 4),
                0xfe => (Entry::Int(int(1)?), p + 2),
                0xf1..=0xfd => (Entry::Int((enc & 0x0f) as i64 - 1), p + 1),
                _ => return None,
            },
        };
        out.push(entry);
        last = start;
        prev_size = data_end - start;
        p = data_end;
    }
    let count_ok = count == u16::MAX || count as usize == out.len();
    (p + 1 == zl.len() && count_ok && (out.is_empty() || tail == last)).then_some(out)
}

fn str_entry(zl: &[u8], start: usize, len: usize) -> Option<(Entry<'_>, usize)> {
    let end = start.checked_add(len)?;
    Some((Entry::Str(zl.get(start..end)?), end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::hex;

    #[test]
    fn decodes_redis_6_ziplist() {
        // A ziplist as Redis 6 writes for RPUSH l a 1 bb 300 -5 70000
        // 1234567890123 12 13 (immediate, int8, int16, int24, int64, strings).
        let zl = hex(concat!(
            "2f000000", "2b000000", "0900", // zlbytes 47, tail 43, count 9
            "00", "0161",                   // "a"
            "03", "f2",                     // 1 (immediate)
            "02", "026262",                 // "bb"
            "04", "c02c01",                 // 300 (int16)
            "04", "fefb",                   // -5 (int8)
            "03", "f0701101",               // 70000 (int24)
            "05", "e0cb04fb711f010000",     // 1234567890123 (int64)
            "0a", "fd",                     // 12 (immediate)
            "02", "fe0d",                   // 13 (int8)
            "ff"
        ));
        let got: Vec<Vec<u8>> = decode(&zl).unwrap().into_iter().map(Entry::to_vec).collect();
        let want: [&[u8]; 9] = [b"a", b"1", b"bb", b"300", b"-5", b"70000", b"1234567890123", b"12", b"13"];
        assert_eq!(got, want);
        for cut in 0..zl.len() {
            assert!(decode(&zl[..cut]).is_none());
        }
        let mut bad = zl.clone();
        bad[4] = 0x30; // wrong tail offset
        assert!(decode(&bad).is_none());
    }
}
