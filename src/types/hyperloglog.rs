//! HyperLogLog in Redis' exact string format, so that GET/SET, DUMP and RDB
//! files move HLLs between kvick and Redis unchanged.
//!
//! Layout: a 16-byte header ("HYLL", encoding byte, 3 unused bytes, the
//! cached cardinality as 8 little-endian bytes whose top bit marks it
//! invalid), then the registers: 16384 registers (P = 14) of 6 bits, either
//! packed densely (12288 bytes, least significant bits first) or sparse, as
//! run-length opcodes:
//! - ZERO  `00xxxxxx`: 1..64 zero registers;
//! - XZERO `01xxxxxx yyyyyyyy`: 1..16384 zero registers;
//! - VAL   `1vvvvvxx`: 1..4 registers of value 1..32.
//!
//! A new HLL is sparse; it turns dense when a value exceeds 32 or the string
//! would grow past `hll-sparse-max-bytes`. Every update reproduces Redis'
//! opcode splitting and merging byte for byte, since the bytes are visible.
//! The estimator is Ertl's (arXiv:1702.01284), as Redis 7's hllCount.

pub const HDR_SIZE: usize = 16;
const P: u32 = 14;
/// Hash bits left for the run of zeros after the register index.
const Q: usize = 64 - P as usize;
pub const REGISTERS: usize = 1 << P;
const BITS: usize = 6;
const REGISTER_MAX: u32 = (1 << BITS) - 1;
const DENSE_SIZE: usize = HDR_SIZE + (REGISTERS * BITS).div_ceil(8);
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const SPARSE_VAL_MAX_VALUE: u8 = 32;
const SPARSE_VAL_MAX_LEN: usize = 4;
const SPARSE_ZERO_MAX_LEN: usize = 64;
const HASH_SEED: u64 = 0xadc83b19;
/// 1 / (2 ln 2), the estimator's constant as m grows (Redis: 0.721347520444481703680).
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// A sparse representation that does not add up to 16384 registers.
#[derive(Debug, PartialEq, Eq)]
pub struct Corrupt;

/// Whether `b` is an HLL Redis accepts: the magic, a known encoding, and the
/// exact size if dense (Redis' isHLLObjectOrReply).
pub fn is_valid(b: &[u8]) -> bool {
    b.len() >= HDR_SIZE && &b[..4] == b"HYLL" && b[4] <= SPARSE && (b[4] == SPARSE || b.len() == DENSE_SIZE)
}

pub fn is_sparse(b: &[u8]) -> bool {
    b[4] == SPARSE
}

/// An empty HLL: sparse, one XZERO opcode for all registers, cardinality 0 (valid).
pub fn new_sparse() -> Vec<u8> {
    let mut v = vec![0u8; HDR_SIZE + 2];
    v[..4].copy_from_slice(b"HYLL");
    v[4] = SPARSE;
    xzero_op(REGISTERS, &mut v[HDR_SIZE..]);
    v
}

/// The cached cardinality, if valid.
pub fn cached_card(b: &[u8]) -> Option<u64> {
    (b[15] & 0x80 == 0).then(|| u64::from_le_bytes(b[8..16].try_into().expect("8 bytes")))
}

pub fn set_cached_card(b: &mut [u8], card: u64) {
    b[8..16].copy_from_slice(&card.to_le_bytes());
}

pub fn invalidate_card(b: &mut [u8]) {
    b[15] |= 0x80;
}

/// Austin Appleby's MurmurHash64A as Redis has it: little-endian words, any length.
fn murmurhash64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4a7935bd1e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut words = key.chunks_exact(8);
    for w in &mut words {
        let mut k = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element falls in and the value it proposes: the length
/// of the run of zeros (plus one) in the hash bits above the index.
fn register_of(ele: &[u8]) -> (usize, u8) {
    let hash = murmurhash64a(ele, HASH_SEED);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // The sentinel bit bounds the count at Q + 1.
    let rest = (hash >> P) | (1 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

// --- Dense registers: 6 bits each, register i at bit 6*i, LSB first. A
// register may straddle two bytes; the last one's second byte does not exist
// (Redis touches its sds terminator, with no effect).

pub fn dense_get(regs: &[u8], i: usize) -> u8 {
    let (byte, fb) = (i * BITS / 8, (i * BITS) & 7);
    let b0 = regs[byte] as u32;
    let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u32;
    (((b0 >> fb) | (b1 << (8 - fb))) & REGISTER_MAX) as u8
}

fn dense_put(regs: &mut [u8], i: usize, val: u8) {
    let (byte, fb) = (i * BITS / 8, (i * BITS) & 7);
    let v = val as u32;
    regs[byte] &= !(REGISTER_MAX << fb) as u8;
    regs[byte] |= (v << fb) as u8;
    if let Some(next) = regs.get_mut(byte + 1) {
        *next &= !(REGISTER_MAX >> (8 - fb)) as u8;
        *next |= (v >> (8 - fb)) as u8;
    }
}

/// Raises register `i` to `val`; whether it changed.
fn dense_raise(regs: &mut [u8], i: usize, val: u8) -> bool {
    if val > dense_get(regs, i) {
        dense_put(regs, i, val);
        true
    } else {
        false
    }
}

/// Every dense register in order, 4 registers in each 3 bytes (the fast way
/// through all of them).
fn dense_for_each(regs: &[u8], mut f: impl FnMut(usize, u8)) {
    for (j, c) in regs.chunks_exact(3).enumerate() {
        let (b0, b1, b2) = (c[0], c[1], c[2]);
        f(4 * j, b0 & 0x3f);
        f(4 * j + 1, (b0 >> 6) | ((b1 & 0x0f) << 2));
        f(4 * j + 2, (b1 >> 4) | ((b2 & 0x03) << 4));
        f(4 * j + 3, b2 >> 2);
    }
}

/// Stores `values` (one register per byte, each at most 63) as dense registers.
fn dense_store_all(regs: &mut [u8], values: &[u8]) {
    for (c, v) in regs.chunks_exact_mut(3).zip(values.chunks_exact(4)) {
        c[0] = v[0] | (v[1] << 6);
        c[1] = (v[1] >> 2) | (v[2] << 4);
        c[2] = (v[2] >> 4) | (v[3] << 2);
    }
}

// --- Sparse opcodes.

fn is_zero_op(op: u8) -> bool {
    op & 0xc0 == 0
}

fn is_xzero_op(op: u8) -> bool {
    op & 0xc0 == 0x40
}

fn val_op(value: u8, len: usize) -> u8 {
    (((value - 1) << 2) | (len as u8 - 1)) | 0x80
}

fn val_value(op: u8) -> u8 {
    ((op >> 2) & 0x1f) + 1
}

fn val_len(op: u8) -> usize {
    (op & 0x3) as usize + 1
}

fn zero_op(len: usize) -> u8 {
    (len - 1) as u8
}

fn xzero_op(len: usize, out: &mut [u8]) {
    let l = len - 1;
    out[0] = (l >> 8) as u8 | 0x40;
    out[1] = (l & 0xff) as u8;
}

/// One decoded sparse opcode.
enum Op {
    Zero(usize),
    Val(u8, usize),
}

/// Decodes the opcode at `p` of `ops`: (opcode, its size in bytes). An XZERO
/// cut short by the end of the string reads its second byte as 0, as Redis
/// reads the sds terminator.
fn op_at(ops: &[u8], p: usize) -> (Op, usize) {
    let op = ops[p];
    if is_zero_op(op) {
        (Op::Zero((op & 0x3f) as usize + 1), 1)
    } else if is_xzero_op(op) {
        let lo = ops.get(p + 1).copied().unwrap_or(0) as usize;
        (Op::Zero((((op & 0x3f) as usize) << 8 | lo) + 1), 2)
    } else {
        (Op::Val(val_value(op), val_len(op)), 1)
    }
}

/// Zero registers as the shortest opcode (ZERO up to 64, XZERO beyond).
fn push_zeros(seq: &mut Vec<u8>, len: usize) {
    if len > SPARSE_ZERO_MAX_LEN {
        let mut two = [0u8; 2];
        xzero_op(len, &mut two);
        seq.extend_from_slice(&two);
    } else {
        seq.push(zero_op(len));
    }
}

/// Converts a sparse HLL to dense in place; false if it already was dense.
/// The header (cached cardinality included) is kept.
pub fn to_dense(hll: &mut Vec<u8>) -> Result<bool, Corrupt> {
    if !is_sparse(hll) {
        return Ok(false);
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HDR_SIZE].copy_from_slice(&hll[..HDR_SIZE]);
    dense[4] = DENSE;
    let regs = &mut dense[HDR_SIZE..];
    let ops = &hll[HDR_SIZE..];
    let (mut p, mut idx) = (0, 0);
    while p < ops.len() {
        let (op, size) = op_at(ops, p);
        match op {
            Op::Zero(n) => idx += n,
            Op::Val(v, n) => {
                if idx + n > REGISTERS {
                    return Err(Corrupt);
                }
                for i in idx..idx + n {
                    dense_put(regs, i, v);
                }
                idx += n;
            }
        }
        p += size;
    }
    if idx != REGISTERS {
        return Err(Corrupt);
    }
    *hll = dense;
    Ok(true)
}

/// Raises register `index` of a sparse HLL to `count` (Redis' hllSparseSet):
/// splits the opcode covering it, merges equal neighbours, and turns the HLL
/// dense when the value does not fit a VAL opcode or the string would exceed
/// `max_bytes`. Whether the register changed.
fn sparse_raise(hll: &mut Vec<u8>, index: usize, count: u8, max_bytes: usize) -> Result<bool, Corrupt> {
    if count > SPARSE_VAL_MAX_VALUE {
        return promote(hll, index, count);
    }
    // Find the opcode covering `index`: it starts at `p` and covers first..first+span.
    let mut end = hll.len();
    let (mut p, mut first, mut span, mut prev) = (HDR_SIZE, 0usize, 0usize, None);
    let mut op = Op::Zero(0);
    let mut size = 1;
    while p < end {
        (op, size) = op_at(hll, p);
        span = match op {
            Op::Zero(n) | Op::Val(_, n) => n,
        };
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += size;
        first += span;
    }
    if span == 0 || p >= end {
        return Err(Corrupt);
    }
    let updated_in_place = match op {
        Op::Val(v, _) if v >= count => return Ok(false),
        Op::Val(_, 1) => true,
        Op::Zero(1) if size == 1 => true,
        _ => false,
    };
    if updated_in_place {
        hll[p] = val_op(count, 1);
    } else {
        // Split into up to three opcodes: before, the register, after.
        let last = first + span - 1;
        let mut seq = Vec::with_capacity(5);
        match op {
            Op::Zero(_) => {
                if index != first {
                    push_zeros(&mut seq, index - first);
                }
                seq.push(val_op(count, 1));
                if index != last {
                    push_zeros(&mut seq, last - index);
                }
            }
            Op::Val(v, _) => {
                if index != first {
                    seq.push(val_op(v, index - first));
                }
                seq.push(val_op(count, 1));
                if index != last {
                    seq.push(val_op(v, last - index));
                }
            }
        }
        let delta = seq.len() as isize - size as isize;
        if delta > 0 && hll.len() + delta as usize > max_bytes {
            return promote(hll, index, count);
        }
        // A truncated XZERO (its second byte missing) leaves one byte less.
        let new_len = (end as isize + delta) as usize;
        let tail = (p + size).min(end);
        hll.splice(p..tail, seq);
        hll.truncate(new_len);
        end = new_len;
    }
    // Merge adjacent VAL opcodes of equal value, scanning up to 5 opcodes from
    // the one before the change.
    let mut p = prev.unwrap_or(HDR_SIZE);
    let mut scan = 5;
    while p < end && scan > 0 {
        scan -= 1;
        let op = hll[p];
        if is_xzero_op(op) {
            p += 2;
            continue;
        }
        if is_zero_op(op) {
            p += 1;
            continue;
        }
        if p + 1 < end && !is_zero_op(hll[p + 1]) && !is_xzero_op(hll[p + 1]) {
            let (v1, v2) = (val_value(op), val_value(hll[p + 1]));
            let len = val_len(op) + val_len(hll[p + 1]);
            if v1 == v2 && len <= SPARSE_VAL_MAX_LEN {
                hll[p + 1] = val_op(v1, len);
                hll.remove(p);
                end -= 1;
                continue;
            }
        }
        p += 1;
    }
    invalidate_card(hll);
    Ok(true)
}

/// Turns a sparse HLL dense and raises the register there: what a sparse
/// update does when its result would not fit.
fn promote(hll: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    to_dense(hll)?;
    Ok(dense_raise(&mut hll[HDR_SIZE..], index, count))
}

/// Raises register `index` to `count` in either encoding (a valid HLL);
/// whether it changed. The cached cardinality is the caller's to invalidate.
fn raise(hll: &mut Vec<u8>, index: usize, count: u8, max_bytes: usize) -> Result<bool, Corrupt> {
    if is_sparse(hll) {
        sparse_raise(hll, index, count, max_bytes)
    } else {
        Ok(dense_raise(&mut hll[HDR_SIZE..], index, count))
    }
}

/// Raises every register to at least `max[i]` (PFMERGE's destination). The
/// cached cardinality is the caller's to invalidate.
pub fn raise_all(hll: &mut Vec<u8>, max: &[u8; REGISTERS], max_bytes: usize) -> Result<(), Corrupt> {
    for (i, &m) in max.iter().enumerate() {
        if !is_sparse(hll) {
            // Dense (from the start or promoted on the way): all at once.
            let mut merged = *max;
            dense_for_each(&hll[HDR_SIZE..], |j, v| merged[j] = merged[j].max(v));
            dense_store_all(&mut hll[HDR_SIZE..], &merged);
            return Ok(());
        }
        if m != 0 {
            sparse_raise(hll, i, m, max_bytes)?;
        }
    }
    Ok(())
}

/// Adds an element (PFADD); whether a register changed.
pub fn add(hll: &mut Vec<u8>, ele: &[u8], max_bytes: usize) -> Result<bool, Corrupt> {
    let (index, count) = register_of(ele);
    raise(hll, index, count, max_bytes)
}

/// Folds a valid HLL into `max` (one byte per register): max[i] = MAX(max[i], reg[i]).
pub fn merge_into(max: &mut [u8; REGISTERS], hll: &[u8]) -> Result<(), Corrupt> {
    if !is_sparse(hll) {
        dense_for_each(&hll[HDR_SIZE..], |i, v| max[i] = max[i].max(v));
        return Ok(());
    }
    let ops = &hll[HDR_SIZE..];
    let (mut p, mut idx) = (0, 0);
    while p < ops.len() {
        let (op, size) = op_at(ops, p);
        match op {
            Op::Zero(n) => idx += n,
            Op::Val(v, n) => {
                if idx + n > REGISTERS {
                    return Err(Corrupt);
                }
                for m in &mut max[idx..idx + n] {
                    *m = (*m).max(v);
                }
                idx += n;
            }
        }
        p += size;
    }
    if idx == REGISTERS {
        Ok(())
    } else {
        Err(Corrupt)
    }
}

/// The estimated cardinality of a valid HLL.
pub fn count(hll: &[u8]) -> Result<u64, Corrupt> {
    let mut histo = [0u64; 64];
    if is_sparse(hll) {
        let ops = &hll[HDR_SIZE..];
        let (mut p, mut idx) = (0, 0);
        while p < ops.len() {
            let (op, size) = op_at(ops, p);
            let (v, n) = match op {
                Op::Zero(n) => (0, n),
                Op::Val(v, n) => (v, n),
            };
            histo[v as usize] += n as u64;
            idx += n;
            p += size;
        }
        if idx != REGISTERS {
            return Err(Corrupt);
        }
    } else {
        dense_for_each(&hll[HDR_SIZE..], |_, v| histo[v as usize] += 1);
    }
    Ok(estimate(&histo))
}

/// The estimated cardinality of registers held one per byte (a merge).
pub fn count_registers(regs: &[u8]) -> u64 {
    let mut histo = [0u64; 64];
    for &r in regs {
        histo[r as usize & 63] += 1;
    }
    estimate(&histo)
}

/// Ertl's improved raw estimator from the histogram of register values.
fn estimate(histo: &[u64; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - histo[Q + 1] as f64) / m);
    for &h in histo[1..=Q].iter().rev() {
        z += h as f64;
        z *= 0.5;
    }
    z += m * sigma(histo[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let prev = z;
        z += x * y;
        y += y;
        if prev == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let prev = z;
        y *= 0.5;
        let d = 1.0 - x;
        z -= d * d * y;
        if prev == z {
            return z / 3.0;
        }
    }
}

/// The sparse opcodes as PFDEBUG DECODE shows them: "z:LEN", "Z:LEN", "v:VALUE,LEN".
pub fn decode_sparse(hll: &[u8]) -> String {
    let ops = &hll[HDR_SIZE..];
    let mut out = Vec::new();
    let mut p = 0;
    while p < ops.len() {
        let (op, size) = op_at(ops, p);
        out.push(match op {
            Op::Zero(n) if size == 1 => format!("z:{n}"),
            Op::Zero(n) => format!("Z:{n}"),
            Op::Val(v, n) => format!("v:{v},{n}"),
        });
        p += size;
    }
    out.join(" ")
}

/// PFSELFTEST: dense register access against plain bytes, then the
/// estimator's error at cardinalities 1, 10, ... 10^7 with a dense and a
/// sparse HLL fed the same elements (they must agree). Err: what failed.
pub fn self_test(mut rand: impl FnMut() -> u64, max_bytes: usize) -> Result<(), String> {
    let mut regs = vec![0u8; DENSE_SIZE - HDR_SIZE];
    let mut plain = vec![0u8; REGISTERS];
    for _ in 0..1000 {
        for (i, p) in plain.iter_mut().enumerate() {
            *p = (rand() & REGISTER_MAX as u64) as u8;
            dense_put(&mut regs, i, *p);
        }
        for (i, &p) in plain.iter().enumerate() {
            let v = dense_get(&regs, i);
            if v != p {
                return Err(format!("Register {i} should be {p} but is {v}"));
            }
        }
    }
    let mut dense = new_sparse();
    to_dense(&mut dense).map_err(|_| "dense conversion failed")?;
    let mut sparse = new_sparse();
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    let seed = rand();
    let mut checkpoint = 1u64;
    for j in 1..=10_000_000u64 {
        let ele = (j ^ seed).to_le_bytes();
        add(&mut dense, &ele, max_bytes).map_err(|_| "corrupted dense HLL")?;
        add(&mut sparse, &ele, max_bytes).map_err(|_| "corrupted sparse HLL")?;
        if j != checkpoint {
            continue;
        }
        if (j as usize) < max_bytes / 2 && !is_sparse(&sparse) {
            return Err("sparse encoding not used".into());
        }
        let card = count(&dense).map_err(|_| "corrupted dense HLL")?;
        if count(&sparse) != Ok(card) {
            return Err("dense/sparse disagree".into());
        }
        let abserr = (checkpoint as i64 - card as i64).unsigned_abs();
        let maxerr = if j == 10 { 1 } else { (relerr * 6.0 * checkpoint as f64).ceil() as u64 };
        if abserr > maxerr {
            return Err(format!("Too big error. card:{checkpoint} abserr:{abserr}"));
        }
        checkpoint *= 10;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmurhash64a_vectors() {
        // With seed 0 the empty input hashes to 0 (every step multiplies or xors 0).
        assert_eq!(murmurhash64a(b"", 0), 0);
        // Register index and count Redis 7.0 gives these elements
        // (PFADD k ELE; PFDEBUG DECODE k).
        for (ele, index, count) in REDIS_REGISTERS {
            assert_eq!(register_of(ele.as_bytes()), (*index, *count), "{ele}");
        }
    }

    /// (element, register, value) as read from redis-server 7.0.15.
    const REDIS_REGISTERS: &[(&str, usize, u8)] = &[
        ("", 5938, 2),
        ("a", 12711, 2),
        ("foo", 7348, 5),
        ("hello", 9216, 1),
        ("kvick", 12316, 1),
        ("12345678", 10579, 3),
        ("0123456789abcdef", 5949, 1),
    ];

    #[test]
    fn dense_registers_round_trip_without_touching_neighbours() {
        let mut regs = vec![0u8; DENSE_SIZE - HDR_SIZE];
        let value = |i: usize| ((i * 7 + 3) % 64) as u8;
        for i in 0..REGISTERS {
            dense_put(&mut regs, i, value(i));
        }
        for i in 0..REGISTERS {
            assert_eq!(dense_get(&regs, i), value(i), "register {i}");
        }
        dense_for_each(&regs, |i, v| assert_eq!(v, value(i), "register {i}"));
        let mut stored = vec![0u8; regs.len()];
        dense_store_all(&mut stored, &(0..REGISTERS).map(value).collect::<Vec<u8>>());
        assert_eq!(stored, regs);
        dense_put(&mut regs, 100, 0);
        assert_eq!((dense_get(&regs, 99), dense_get(&regs, 100), dense_get(&regs, 101)), (value(99), 0, value(101)));
    }

    #[test]
    fn sparse_and_dense_agree() {
        let mut sparse = new_sparse();
        let mut dense = new_sparse();
        to_dense(&mut dense).unwrap();
        assert_eq!(dense.len(), DENSE_SIZE);
        for i in 0..2000u32 {
            let ele = i.to_le_bytes();
            let a = add(&mut sparse, &ele, 1 << 20).unwrap();
            let b = add(&mut dense, &ele, 1 << 20).unwrap();
            assert_eq!(a, b);
        }
        assert!(is_sparse(&sparse));
        assert_eq!(count(&sparse), count(&dense));
        let mut converted = sparse.clone();
        assert_eq!(to_dense(&mut converted), Ok(true));
        assert_eq!(converted[HDR_SIZE..], dense[HDR_SIZE..]);
        let (mut m1, mut m2) = ([0u8; REGISTERS], [0u8; REGISTERS]);
        merge_into(&mut m1, &sparse).unwrap();
        merge_into(&mut m2, &dense).unwrap();
        assert_eq!(m1, m2);
        assert_eq!(count_registers(&m1), count(&dense).unwrap());
        // Writing the merged registers back gives the same dense HLL.
        let mut rebuilt = new_sparse();
        raise_all(&mut rebuilt, &m1, 1 << 20).unwrap();
        to_dense(&mut rebuilt).unwrap();
        assert_eq!(rebuilt[HDR_SIZE..], dense[HDR_SIZE..]);
    }

    #[test]
    fn sparse_promotes_past_max_bytes() {
        let mut hll = new_sparse();
        let mut i = 0u32;
        while is_sparse(&hll) {
            add(&mut hll, &i.to_le_bytes(), 200).unwrap();
            assert!(hll.len() <= 200 || !is_sparse(&hll));
            i += 1;
        }
        assert_eq!(hll.len(), DENSE_SIZE);
    }

    #[test]
    fn estimates_are_close() {
        assert_eq!(count(&new_sparse()), Ok(0));
        let mut hll = new_sparse();
        for n in 1..=100_000u32 {
            add(&mut hll, format!("ele:{n}").as_bytes(), 3000).unwrap();
            if n == 10 || n == 1000 || n == 100_000 {
                let c = count(&hll).unwrap() as f64;
                let err = (c - n as f64).abs() / n as f64;
                assert!(err < 6.0 * 1.04 / 128.0, "n={n} count={c}");
            }
        }
    }

    #[test]
    fn corrupt_sparse_detected() {
        let mut hll = new_sparse();
        hll[HDR_SIZE] = 0x7e; // XZERO of 16128: registers missing
        assert_eq!(count(&hll), Err(Corrupt));
        assert_eq!(merge_into(&mut [0u8; REGISTERS], &hll), Err(Corrupt));
        assert_eq!(to_dense(&mut hll.clone()), Err(Corrupt));
    }

    #[test]
    fn validity() {
        assert!(is_valid(&new_sparse()));
        let mut dense = new_sparse();
        to_dense(&mut dense).unwrap();
        assert!(is_valid(&dense));
        assert!(!is_valid(&dense[..DENSE_SIZE - 1]));
        assert!(!is_valid(b"HYLL"));
        let mut bad = new_sparse();
        bad[4] = 2;
        assert!(!is_valid(&bad));
    }
}
