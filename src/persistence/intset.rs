//! Redis' intset: a set of integers as a sorted array of little-endian
//! integers, all of the width the largest magnitude needs. Layout: encoding
//! (element width in bytes: 2, 4 or 8; u32 LE), length (u32 LE), elements.

/// Encodes members (any order; duplicates are the caller's business) with
/// the smallest width that holds them all, as Redis' intsetAdd upgrades to.
pub fn encode(values: &[i64]) -> Vec<u8> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let width: usize = if sorted.iter().all(|&v| i16::try_from(v).is_ok()) {
        2
    } else if sorted.iter().all(|&v| i32::try_from(v).is_ok()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + width * sorted.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(sorted.len() as u32).to_le_bytes());
    for v in sorted {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}

/// Decodes and validates an intset (known width, exact size, strictly
/// increasing elements, as Redis' intsetValidateIntegrity deep check).
pub fn decode(blob: &[u8]) -> Option<Vec<i64>> {
    let width = u32::from_le_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let len = u32::from_le_bytes(blob.get(4..8)?.try_into().ok()?) as usize;
    if !matches!(width, 2 | 4 | 8) || blob.len() != 8 + width.checked_mul(len)? {
        return None;
    }
    let values: Vec<i64> = blob[8..]
        .chunks_exact(width)
        .map(|c| {
            let mut v = [0u8; 8];
            v[..width].copy_from_slice(c);
            let shift = 64 - 8 * width as u32;
            (i64::from_le_bytes(v) << shift) >> shift
        })
        .collect();
    values.windows(2).all(|w| w[0] < w[1]).then_some(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::hex;

    #[test]
    fn byte_identical_to_redis() {
        // From DUMP payloads of redis-server 7.0.15: SADD i1 1 2 3;
        // SADD i2 5 70000; SADD i3 1 5000000000.
        let cases: [(&str, &[i64]); 3] = [
            ("0200000003000000010002000300", &[1, 2, 3]),
            ("04000000020000000500000070110100", &[5, 70000]),
            (concat!("0800000002000000", "0100000000000000", "00f2052a01000000"), &[1, 5_000_000_000]),
        ];
        for (h, values) in cases {
            let blob = hex(h);
            assert_eq!(encode(values), blob);
            assert_eq!(decode(&blob).unwrap(), values);
        }
        assert_eq!(encode(&[3, -1, 2]), encode(&[-1, 2, 3]));
    }

    #[test]
    fn corrupt_intsets_are_rejected() {
        let good = encode(&[1, 2, 3]);
        assert!(decode(&good[..good.len() - 1]).is_none());
        let mut unsorted = good.clone();
        unsorted[8] = 9;
        assert!(decode(&unsorted).is_none());
        let mut width = good.clone();
        width[0] = 3;
        assert!(decode(&width).is_none());
        assert!(decode(&encode(&[])).unwrap().is_empty());
    }
}
