//! Bitmap commands on strings (Redis' bitops.c). Bit 0 is the most
//! significant bit of byte 0; a string grows zero-padded to hold the highest
//! bit written, and reads past its end see zeros.

use super::{cmd, flags::*, Args, Command, Ctx, Run};
use crate::config;
use crate::resp::parser::parse_i64;
use crate::resp::{err, Reply};
use crate::server::txn::gather_span;
use crate::types::{StrValue, Value};
use crate::shard::notify::STRING;

const G: &str = "bitmap";

pub static COMMANDS: &[Command] = &[
    cmd("setbit", 4, WRITE | DENYOOM, (1, 1, 1), G, "2.2.0", "Sets or clears the bit at offset in the string value stored at key", Run::Shard(setbit)),
    cmd("getbit", 3, READONLY | FAST, (1, 1, 1), G, "2.2.0", "Returns the bit value at offset in the string value stored at key", Run::Shard(getbit)),
    cmd("bitcount", -2, READONLY, (1, 1, 1), G, "2.6.0", "Count set bits in a string", Run::Shard(bitcount)),
    cmd("bitpos", -3, READONLY, (1, 1, 1), G, "2.8.7", "Find first bit set or clear in a string", Run::Shard(bitpos)),
    cmd("bitop", -4, WRITE | DENYOOM, (2, -1, 1), G, "2.6.0", "Perform bitwise operations between strings", Run::Span(bitop, gather_span)),
    cmd("bitfield", -2, WRITE | DENYOOM, (1, 1, 1), G, "3.2.0", "Perform arbitrary bitfield integer operations on strings", Run::Shard(bitfield)),
    cmd("bitfield_ro", -2, READONLY | FAST, (1, 1, 1), G, "6.0.0", "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD", Run::Shard(bitfield_ro)),
];

const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";
const BAD_BIT: &str = "ERR bit is not an integer or out of range";
const BAD_TYPE: &str = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

/// A bit offset argument; with `bits` > 0 (BITFIELD) `#N` means N * bits.
/// Bounded by proto-max-bulk-len in bytes, as Redis.
fn bit_offset(arg: &[u8], bits: u32) -> Option<u64> {
    let hash = bits > 0 && arg.len() > 1 && arg[0] == b'#';
    let mut off = parse_i64(if hash { &arg[1..] } else { arg })?;
    if hash {
        // Redis multiplies without an overflow check (two's complement wrap).
        off = off.wrapping_mul(bits as i64);
    }
    (off >= 0 && (off >> 3) < config::proto_max_bulk_len()).then_some(off as u64)
}

/// Runs `f` on the string at `key` for a write reaching bit `max_bit`,
/// created or grown zero-padded to hold it (Redis' lookupStringForBitCommand).
/// None if the key holds another type; else `f`'s result and whether the
/// string was created or grown (Redis' `dirty`, which makes SETBIT notify
/// even when the bit keeps its value). One lookup when the key exists.
fn with_bits<T>(ctx: &mut Ctx, key: &[u8], max_bit: u64, f: impl FnOnce(&mut Vec<u8>) -> T) -> Option<(T, bool)> {
    let need = (max_bit >> 3) as usize + 1;
    if let Some(e) = ctx.write(key) {
        let s = e.value.as_str_mut()?.make_raw();
        let grown = s.len() < need;
        if grown {
            s.resize(need, 0);
        }
        return Some((f(s), grown));
    }
    let mut s = vec![0; need];
    let out = f(&mut s);
    ctx.db().insert(key, Value::Str(StrValue::Raw(s)), 0);
    Some((out, true))
}

fn setbit(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let Some(off) = bit_offset(a.get(2), 0) else { return r.error(BAD_OFFSET) };
    let on = match parse_i64(a.get(3)) {
        Some(v @ (0 | 1)) => v == 1,
        _ => return r.error(BAD_BIT),
    };
    let (byte, mask) = ((off >> 3) as usize, 0x80u8 >> (off & 7));
    let old = with_bits(ctx, a.get(1), off, |s| {
        let old = s[byte] & mask != 0;
        s[byte] = if on { s[byte] | mask } else { s[byte] & !mask };
        old
    });
    match old {
        Some((old, grown)) => {
            if grown || old != on {
                ctx.notify(STRING, "setbit", a.get(1));
            }
            r.int(old as i64)
        }
        None => r.error(err::WRONGTYPE),
    }
}

fn getbit(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let Some(off) = bit_offset(a.get(2), 0) else { return r.error(BAD_OFFSET) };
    let mut scratch = itoa::Buffer::new();
    let s = match ctx.read(a.get(1)) {
        None => return r.int(0),
        Some(e) => match e.value.as_str() {
            Some(s) => s.bytes(&mut scratch),
            None => return r.error(err::WRONGTYPE),
        },
    };
    let bit = s.get((off >> 3) as usize).is_some_and(|b| b & (0x80 >> (off & 7)) != 0);
    r.int(bit as i64);
}

/// A START END [BYTE|BIT] range resolved against a string of `len` bytes
/// as Redis does: negative indexes from the end, clamped. For BIT ranges the
/// bytes holding the ends, with masks of the bits outside the range in the
/// first and last byte. None: the range is empty.
struct ByteRange {
    start: usize,
    end: usize,
    first_mask: u8,
    last_mask: u8,
}

fn resolve_range(mut start: i64, mut end: i64, len: usize, is_bit: bool) -> Option<ByteRange> {
    let total = if is_bit { (len as i64) << 3 } else { len as i64 };
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    if start > end {
        return None;
    }
    if is_bit {
        let first_mask = !((1u32 << (8 - (start & 7))) - 1) as u8;
        let last_mask = ((1u32 << (7 - (end & 7))) - 1) as u8;
        Some(ByteRange { start: (start >> 3) as usize, end: (end >> 3) as usize, first_mask, last_mask })
    } else {
        Some(ByteRange { start: start as usize, end: end as usize, first_mask: 0, last_mask: 0 })
    }
}

/// BYTE or BIT (any case); None for anything else.
fn unit_is_bit(arg: &[u8]) -> Option<bool> {
    if arg.eq_ignore_ascii_case(b"bit") {
        Some(true)
    } else if arg.eq_ignore_ascii_case(b"byte") {
        Some(false)
    } else {
        None
    }
}

/// Set bits in `s`, with the POPCNT instruction when the CPU has it (the
/// build targets baseline x86-64, which lacks it).
fn popcount(s: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("popcnt") {
        // SAFETY: the CPU supports POPCNT.
        return unsafe { popcount_popcnt(s) };
    }
    popcount_words(s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn popcount_popcnt(s: &[u8]) -> u64 {
    popcount_words(s)
}

#[inline(always)]
fn popcount_words(s: &[u8]) -> u64 {
    let mut words = s.chunks_exact(8);
    let mut n: u64 = words.by_ref().map(|w| u64::from_ne_bytes(w.try_into().expect("8 bytes")).count_ones() as u64).sum();
    n += words.remainder().iter().map(|b| b.count_ones() as u64).sum::<u64>();
    n
}

fn bitcount(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    // Redis 7.0 looks the key up before parsing the range.
    let mut scratch = itoa::Buffer::new();
    let s = match ctx.read(a.get(1)) {
        None => return r.int(0),
        Some(e) => match e.value.as_str() {
            Some(s) => s.bytes(&mut scratch),
            None => return r.error(err::WRONGTYPE),
        },
    };
    let range = match a.len() {
        2 => resolve_range(0, s.len() as i64 - 1, s.len(), false),
        4 | 5 => {
            let (Some(start), Some(end)) = (parse_i64(a.get(2)), parse_i64(a.get(3))) else { return r.error(err::NOT_INT) };
            // Before the unit is parsed, as Redis 7.0.
            if start < 0 && end < 0 && start > end {
                return r.int(0);
            }
            let is_bit = if a.len() == 5 {
                match unit_is_bit(a.get(4)) {
                    Some(b) => b,
                    None => return r.error(err::SYNTAX),
                }
            } else {
                false
            };
            resolve_range(start, end, s.len(), is_bit)
        }
        _ => return r.error(err::SYNTAX),
    };
    let Some(rg) = range else { return r.int(0) };
    let mut n = popcount(&s[rg.start..=rg.end]);
    // Bits of the end bytes outside a BIT range were counted: take them off.
    n -= popcount(&[s[rg.start] & rg.first_mask, s[rg.end] & rg.last_mask]);
    r.int(n as i64);
}

/// Position of the first bit equal to `bit` in `s`; past the end (a string
/// is zero-padded) for a 0 never found, -1 for a 1 never found.
fn first_bit(s: &[u8], bit: bool) -> i64 {
    for (i, &b) in s.iter().enumerate() {
        let b = if bit { b } else { !b };
        if b != 0 {
            return (i as i64) * 8 + b.leading_zeros() as i64;
        }
    }
    if bit {
        -1
    } else {
        s.len() as i64 * 8
    }
}

fn bitpos(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let bit = match parse_i64(a.get(2)) {
        Some(b @ (0 | 1)) => b == 1,
        Some(_) => return r.error("ERR The bit argument must be 1 or 0."),
        None => return r.error(err::NOT_INT),
    };
    let mut scratch = itoa::Buffer::new();
    let s = match ctx.read(a.get(1)) {
        // A missing key is an infinite run of zeros.
        None => return r.int(if bit { -1 } else { 0 }),
        Some(e) => match e.value.as_str() {
            Some(s) => s.bytes(&mut scratch),
            None => return r.error(err::WRONGTYPE),
        },
    };
    let len = s.len();
    let (range, end_given) = match a.len() {
        3 => (resolve_range(0, len as i64 - 1, len, false), false),
        4..=6 => {
            let Some(start) = parse_i64(a.get(3)) else { return r.error(err::NOT_INT) };
            let is_bit = if a.len() == 6 {
                match unit_is_bit(a.get(5)) {
                    Some(b) => b,
                    None => return r.error(err::SYNTAX),
                }
            } else {
                false
            };
            let end = if a.len() >= 5 {
                match parse_i64(a.get(4)) {
                    Some(e) => e,
                    None => return r.error(err::NOT_INT),
                }
            } else {
                len as i64 - 1
            };
            (resolve_range(start, end, len, is_bit), a.len() >= 5)
        }
        _ => return r.error(err::SYNTAX),
    };
    let Some(rg) = range else { return r.int(-1) };
    // Bits outside a BIT range in the end bytes are forced to the value not
    // searched for.
    let (mut first, mut last) = (s[rg.start], s[rg.end]);
    if bit {
        first &= !rg.first_mask;
        last &= !rg.last_mask;
    } else {
        first |= rg.first_mask;
        last |= rg.last_mask;
    }
    let pos = if rg.start == rg.end {
        first_bit(&[if bit { first & last } else { first | last }], bit)
    } else {
        let middle = &s[rg.start + 1..rg.end];
        let found = [first_bit(&[first], bit), first_bit(middle, bit), first_bit(&[last], bit)];
        let spans = [8, middle.len() as i64 * 8, 8];
        let mut at = 0;
        let mut pos = -1;
        for (p, span) in found.into_iter().zip(spans) {
            if p != -1 && p != span {
                pos = at + p;
                break;
            }
            at += span;
        }
        if pos == -1 && !bit {
            pos = at;
        }
        pos
    };
    let range_bits = ((rg.end - rg.start + 1) * 8) as i64;
    // With an explicit end, no 0 inside the range is -1, not the bit after it.
    if end_given && !bit && pos == range_bits {
        return r.int(-1);
    }
    r.int(if pos == -1 { -1 } else { pos + (rg.start as i64) * 8 });
}

#[derive(Clone, Copy, PartialEq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

fn bitop(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    let op = if a.is(1, "and") {
        BitOp::And
    } else if a.is(1, "or") {
        BitOp::Or
    } else if a.is(1, "xor") {
        BitOp::Xor
    } else if a.is(1, "not") {
        BitOp::Not
    } else {
        return r.error(err::SYNTAX);
    };
    if op == BitOp::Not && a.len() != 4 {
        return r.error("ERR BITOP NOT must be called with a single source key.");
    }
    // Folded source by source; a missing key is an empty string, and a
    // shorter string is zero-padded to the longest.
    let mut res: Vec<u8> = Vec::new();
    let mut scratch = itoa::Buffer::new();
    for (j, key) in a.iter().enumerate().skip(3) {
        let src = match ctx.read(key) {
            None => &[][..],
            Some(e) => match e.value.as_str() {
                Some(s) => s.bytes(&mut scratch),
                None => return r.error(err::WRONGTYPE),
            },
        };
        if j == 3 {
            res = match op {
                BitOp::Not => src.iter().map(|b| !b).collect(),
                _ => src.to_vec(),
            };
            continue;
        }
        if res.len() < src.len() {
            res.resize(src.len(), 0);
        }
        // Past the source's end it reads as zeros: AND clears, OR/XOR keep.
        let common = res.iter_mut().zip(src);
        match op {
            BitOp::And => {
                common.for_each(|(d, s)| *d &= s);
                res[src.len()..].fill(0);
            }
            BitOp::Or => common.for_each(|(d, s)| *d |= s),
            BitOp::Xor => common.for_each(|(d, s)| *d ^= s),
            BitOp::Not => unreachable!("NOT has one source"),
        }
    }
    let len = res.len();
    ctx.store(a.get(2), (len > 0).then(|| Value::Str(StrValue::Raw(res))), STRING, "set");
    r.int(len as i64);
}

#[derive(Clone, Copy, PartialEq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq)]
enum FieldOp {
    Get,
    Set(i64),
    IncrBy(i64),
}

struct Field {
    op: FieldOp,
    offset: u64,
    bits: u32,
    signed: bool,
    overflow: Overflow,
}

/// A bitfield type: i1..i64 or u1..u63 (lowercase letter only, as Redis 7.0).
fn field_type(arg: &[u8]) -> Option<(bool, u32)> {
    let signed = match arg.first()? {
        b'i' => true,
        b'u' => false,
        _ => return None,
    };
    // Redis reads the width as a C string: it ends at a NUL byte.
    let rest = &arg[1..];
    let rest = &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())];
    let bits = parse_i64(rest)?;
    (bits >= 1 && bits <= if signed { 64 } else { 63 }).then_some((signed, bits as u32))
}

/// Parses BITFIELD's subcommands. Err: the error to reply.
fn parse_fields(a: &Args) -> Result<Vec<Field>, &'static str> {
    let mut fields = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < a.len() {
        let left = a.len() - j - 1;
        let op = if a.is(j, "get") && left >= 2 {
            FieldOp::Get
        } else if a.is(j, "set") && left >= 3 {
            FieldOp::Set(0)
        } else if a.is(j, "incrby") && left >= 3 {
            FieldOp::IncrBy(0)
        } else if a.is(j, "overflow") && left >= 1 {
            overflow = if a.is(j + 1, "wrap") {
                Overflow::Wrap
            } else if a.is(j + 1, "sat") {
                Overflow::Sat
            } else if a.is(j + 1, "fail") {
                Overflow::Fail
            } else {
                return Err("ERR Invalid OVERFLOW type specified");
            };
            j += 2;
            continue;
        } else {
            return Err(err::SYNTAX);
        };
        let (signed, bits) = field_type(a.get(j + 1)).ok_or(BAD_TYPE)?;
        let offset = bit_offset(a.get(j + 2), bits).ok_or(BAD_OFFSET)?;
        let op = match op {
            FieldOp::Get => FieldOp::Get,
            FieldOp::Set(_) => FieldOp::Set(parse_i64(a.get(j + 3)).ok_or(err::NOT_INT)?),
            FieldOp::IncrBy(_) => FieldOp::IncrBy(parse_i64(a.get(j + 3)).ok_or(err::NOT_INT)?),
        };
        fields.push(Field { op, offset, bits, signed, overflow });
        j += if op == FieldOp::Get { 3 } else { 4 };
    }
    Ok(fields)
}

fn get_unsigned(s: &[u8], offset: u64, bits: u32) -> u64 {
    let mut v = 0u64;
    for o in offset..offset + bits as u64 {
        let bit = s.get((o >> 3) as usize).map_or(0, |b| (b >> (7 - (o & 7))) & 1);
        v = (v << 1) | bit as u64;
    }
    v
}

fn get_signed(s: &[u8], offset: u64, bits: u32) -> i64 {
    let v = get_unsigned(s, offset, bits) as i64;
    if bits < 64 && v & (1 << (bits - 1)) != 0 {
        v | (-1i64 << bits)
    } else {
        v
    }
}

/// Writes the low `bits` bits of `value`, most significant first (the string
/// already holds them).
fn set_bits(s: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..bits {
        let o = offset + j as u64;
        let mask = 0x80u8 >> (o & 7);
        let byte = &mut s[(o >> 3) as usize];
        if value & (1u64 << (bits - 1 - j)) != 0 {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

/// `value + incr` in a `bits`-wide unsigned field: None if it fits, else the
/// value the overflow policy stores (FAIL stores nothing, its value is unused).
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> Option<u64> {
    let max = (1u64 << bits) - 1;
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = (value as i64).wrapping_neg();
    let wrap = || value.wrapping_add(incr as u64) & max;
    if value > max || (incr > 0 && incr > max_incr) {
        Some(if ow == Overflow::Sat { max } else { wrap() })
    } else if incr < 0 && incr < min_incr {
        Some(if ow == Overflow::Sat { 0 } else { wrap() })
    } else {
        None
    }
}

/// The signed counterpart of `unsigned_overflow`.
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> Option<i64> {
    let max = if bits == 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let wrap = || {
        let c = (value as u64).wrapping_add(incr as u64);
        if bits == 64 {
            return c as i64;
        }
        let high = u64::MAX << bits;
        (if c & (1 << (bits - 1)) != 0 { c | high } else { c & !high }) as i64
    };
    if value > max || (bits != 64 && incr > max_incr) || (value >= 0 && incr > 0 && incr > max_incr) {
        Some(if ow == Overflow::Sat { max } else { wrap() })
    } else if value < min || (bits != 64 && incr < min_incr) || (value < 0 && incr < 0 && incr < min_incr) {
        Some(if ow == Overflow::Sat { min } else { wrap() })
    } else {
        None
    }
}

/// Runs one SET/INCRBY on `s`: the reply value, or None when OVERFLOW FAIL
/// refused it (nothing written).
fn field_write(s: &mut [u8], f: &Field) -> Option<i64> {
    let (arg, is_incr) = match f.op {
        FieldOp::Set(v) => (v, false),
        FieldOp::IncrBy(v) => (v, true),
        FieldOp::Get => unreachable!("GET does not write"),
    };
    let (stored, reply, overflowed) = if f.signed {
        let old = get_signed(s, f.offset, f.bits);
        let (base, incr) = if is_incr { (old, arg) } else { (arg, 0) };
        let of = signed_overflow(base, incr, f.bits, f.overflow);
        let new = of.unwrap_or(base.wrapping_add(incr));
        (new as u64, if is_incr { new } else { old }, of.is_some())
    } else {
        let old = get_unsigned(s, f.offset, f.bits);
        let (base, incr) = if is_incr { (old, arg) } else { (arg as u64, 0) };
        let of = unsigned_overflow(base, incr, f.bits, f.overflow);
        let new = of.unwrap_or(base.wrapping_add(incr as u64));
        (new, if is_incr { new as i64 } else { old as i64 }, of.is_some())
    };
    if overflowed && f.overflow == Overflow::Fail {
        return None;
    }
    set_bits(s, f.offset, f.bits, stored);
    Some(reply)
}

fn field_get(s: &[u8], f: &Field) -> i64 {
    if f.signed {
        get_signed(s, f.offset, f.bits)
    } else {
        get_unsigned(s, f.offset, f.bits) as i64
    }
}

fn bitfield_generic(ctx: &mut Ctx, r: &mut Reply, a: Args, read_only: bool) {
    let fields = match parse_fields(&a) {
        Ok(f) => f,
        Err(msg) => return r.error(msg),
    };
    let key = a.get(1);
    let highest = fields.iter().filter(|f| f.op != FieldOp::Get).map(|f| f.offset + f.bits as u64 - 1).max();
    let Some(highest) = highest else {
        // Only GETs: a missing key reads as zeros.
        let mut scratch = itoa::Buffer::new();
        let s = match ctx.read(key) {
            None => &[][..],
            Some(e) => match e.value.as_str() {
                Some(s) => s.bytes(&mut scratch),
                None => return r.error(err::WRONGTYPE),
            },
        };
        r.array(fields.len());
        for f in &fields {
            r.int(field_get(s, f));
        }
        return;
    };
    if read_only {
        return r.error("ERR BITFIELD_RO only supports the GET subcommand");
    }
    // `with_bits` runs the closure only on a string, so the array header
    // never precedes a WRONGTYPE error.
    // Counts the writes that took effect (not failed by OVERFLOW FAIL):
    // with none, Redis raises no event.
    let written = with_bits(ctx, key, highest, |s| {
        r.array(fields.len());
        let mut changes = 0;
        for f in &fields {
            match f.op {
                FieldOp::Get => r.int(field_get(s, f)),
                _ => match field_write(s, f) {
                    Some(v) => {
                        changes += 1;
                        r.int(v)
                    }
                    None => r.null(),
                },
            }
        }
        changes
    });
    match written {
        None => r.error(err::WRONGTYPE),
        Some((changes, _)) if changes > 0 => ctx.notify(STRING, "setbit", key),
        Some(_) => {}
    }
}

fn bitfield(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    bitfield_generic(ctx, r, a, false)
}

fn bitfield_ro(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    bitfield_generic(ctx, r, a, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitfield_overflow_policies() {
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Wrap), Some(4));
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Sat), Some(255));
        assert_eq!(unsigned_overflow(5, -10, 8, Overflow::Sat), Some(0));
        assert_eq!(unsigned_overflow(5, -10, 8, Overflow::Wrap), Some(251));
        assert_eq!(unsigned_overflow(5, 10, 8, Overflow::Wrap), None);
        assert_eq!(signed_overflow(120, 10, 8, Overflow::Wrap), Some(-126));
        assert_eq!(signed_overflow(120, 10, 8, Overflow::Sat), Some(127));
        assert_eq!(signed_overflow(-120, -10, 8, Overflow::Sat), Some(-128));
        assert_eq!(signed_overflow(i64::MAX, 1, 64, Overflow::Wrap), Some(i64::MIN));
        assert_eq!(signed_overflow(i64::MIN, -1, 64, Overflow::Sat), Some(i64::MIN));
        assert_eq!(signed_overflow(i64::MAX, i64::MIN, 64, Overflow::Wrap), None);
        assert_eq!(signed_overflow(1, 1, 1, Overflow::Wrap), Some(0));
    }

    #[test]
    fn bitfield_bits_round_trip() {
        let mut s = vec![0u8; 10];
        set_bits(&mut s, 3, 13, 0x1abc);
        assert_eq!(get_unsigned(&s, 3, 13), 0x1abc);
        assert_eq!(get_signed(&s, 3, 13), 0x1abc - (1 << 13));
        set_bits(&mut s, 0, 64, u64::MAX);
        assert_eq!(get_signed(&s, 0, 64), -1);
        // Reads past the end are zeros.
        assert_eq!(get_unsigned(&s, 76, 8), 0);
    }

    #[test]
    fn popcount_any_length() {
        let s: Vec<u8> = (0..=255u8).chain(0..37).collect();
        let expected: u64 = s.iter().map(|b| b.count_ones() as u64).sum();
        for start in 0..9 {
            assert_eq!(popcount(&s[start..]), expected - s[..start].iter().map(|b| b.count_ones() as u64).sum::<u64>());
        }
    }

    #[test]
    fn first_bit_positions() {
        assert_eq!(first_bit(&[0x00, 0x10], true), 11);
        assert_eq!(first_bit(&[0xff, 0xff], false), 16);
        assert_eq!(first_bit(&[0x00], true), -1);
        assert_eq!(first_bit(&[], false), 0);
    }
}
