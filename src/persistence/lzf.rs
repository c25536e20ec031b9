//! LZF, the compression of RDB strings (liblzf 3.6 as Redis ships it).
//!
//! The format: a control byte `c < 32` starts a run of `c + 1` literal bytes;
//! otherwise its top 3 bits are a length (7: one more length byte follows),
//! its low 5 bits and the next byte an offset, and the decoder copies
//! `len + 2` bytes starting `offset + 1` bytes back in its output.
//!
//! The compressor follows Redis' configuration (HLOG 16, VERY_FAST, the
//! multiplicative hash, the same match search and output-size checks), so
//! its output is byte-identical to Redis' `lzf_compress` (Redis leaves its
//! hash table uninitialized, which could in theory find an extra match; a
//! table that starts empty never does).
//!
//! The table (256 KB) is per thread and reused: zeroing it for every value
//! cost more than compressing a short one (a third of the core's time when
//! an AOF rewrite ran under writes). Entries are stored offset by a base
//! that moves past each input, so an earlier input's entries read as empty.

use std::cell::RefCell;

const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;
const MAX_LIT: usize = 1 << 5;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

fn idx(h: u32) -> usize {
    (h.wrapping_mul(0x1e35_a7bd) >> (32 - HLOG - 8)) as usize & (HSIZE - 1)
}

fn next(h: u32, input: &[u8], ip: usize) -> u32 {
    (h << 8) | input[ip + 2] as u32
}

/// Positions of earlier 3-byte sequences of the input by hash, as
/// `base + position`; anything below `base` is from an earlier input.
struct Positions {
    slots: Box<[u32]>,
    base: u32,
}

impl Positions {
    /// Makes room for an input of `n` bytes.
    fn begin(&mut self, n: usize) {
        if self.base as u64 + n as u64 + 1 >= u32::MAX as u64 {
            self.slots.fill(0);
            self.base = 1;
        }
    }

    /// Records `ip` under hash `h`; returns the position recorded there
    /// before in this input, 0 for none (a match at 0 is never taken, as in
    /// liblzf).
    fn swap(&mut self, h: u32, ip: usize) -> usize {
        let slot = &mut self.slots[idx(h)];
        let old = *slot;
        *slot = self.base + ip as u32;
        old.checked_sub(self.base).unwrap_or(0) as usize
    }

    /// Moves the base past an input of `n` bytes.
    fn end(&mut self, n: usize) {
        self.base += n as u32 + 1;
    }
}

thread_local! {
    static POSITIONS: RefCell<Positions> = RefCell::new(Positions { slots: vec![0; HSIZE].into_boxed_slice(), base: 1 });
}

/// Compresses `input` into at most `out_len` bytes, as Redis calls it with
/// `out_len = len - 4` (compression must save at least 4 bytes). None when
/// the output would not fit.
pub fn compress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let n = input.len();
    // Larger inputs than the table's positions can name stay uncompressed.
    if n == 0 || out_len == 0 || n >= (u32::MAX / 2) as usize {
        return None;
    }
    POSITIONS.with(|p| {
        let mut htab = p.borrow_mut();
        htab.begin(n);
        let out = compress_with(input, out_len, &mut htab);
        htab.end(n);
        out
    })
}

fn compress_with(input: &[u8], out_len: usize, htab: &mut Positions) -> Option<Vec<u8>> {
    let n = input.len();
    let mut out = Vec::with_capacity(out_len.min(n) + 1);
    let mut lit = 0usize;
    out.push(0); // start of the first literal run
    let mut ip = 0usize;
    let mut hval = if n >= 2 { ((input[0] as u32) << 8) | input[1] as u32 } else { 0 };
    while ip + 2 < n {
        hval = next(hval, input, ip);
        let r = htab.swap(hval, ip);
        let off = ip.wrapping_sub(r).wrapping_sub(1);
        if r > 0 && off < MAX_OFF && input[r + 2] == input[ip + 2] && input[r..r + 2] == input[ip..ip + 2] {
            let op = out.len();
            if op + 4 >= out_len && op - (lit == 0) as usize + 4 >= out_len {
                return None;
            }
            close_run(&mut out, lit);
            let maxlen = (n - ip - 2).min(MAX_REF);
            let mut len = 2;
            // liblzf compares 16 bytes unconditionally when more than 16 may match.
            let mut mismatch = false;
            if maxlen > 16 {
                for _ in 0..16 {
                    len += 1;
                    if input[r + len] != input[ip + len] {
                        mismatch = true;
                        break;
                    }
                }
            }
            if !mismatch {
                loop {
                    len += 1;
                    if !(len < maxlen && input[r + len] == input[ip + len]) {
                        break;
                    }
                }
            }
            len -= 2;
            ip += 1;
            if len < 7 {
                out.push(((off >> 8) + (len << 5)) as u8);
            } else {
                out.push(((off >> 8) + (7 << 5)) as u8);
                out.push((len - 7) as u8);
            }
            out.push(off as u8);
            lit = 0;
            out.push(0);
            ip += len + 1;
            if ip + 2 >= n {
                break;
            }
            // Hash the last two positions of the match (VERY_FAST).
            ip -= 2;
            hval = ((input[ip] as u32) << 8) | input[ip + 1] as u32;
            for _ in 0..2 {
                hval = next(hval, input, ip);
                htab.swap(hval, ip);
                ip += 1;
            }
        } else {
            if out.len() >= out_len {
                return None;
            }
            lit += 1;
            out.push(input[ip]);
            ip += 1;
            if lit == MAX_LIT {
                close_run(&mut out, lit);
                lit = 0;
                out.push(0);
            }
        }
    }
    if out.len() + 3 > out_len {
        return None;
    }
    while ip < n {
        lit += 1;
        out.push(input[ip]);
        ip += 1;
        if lit == MAX_LIT {
            close_run(&mut out, lit);
            lit = 0;
            out.push(0);
        }
    }
    close_run(&mut out, lit);
    Some(out)
}

/// Ends the literal run of `lit` bytes (its header sits before them), or
/// drops its header when the run is empty.
fn close_run(out: &mut Vec<u8>, lit: usize) {
    if lit == 0 {
        out.pop();
    } else {
        let at = out.len() - lit - 1;
        out[at] = (lit - 1) as u8;
    }
}

/// Decompresses `input`, which must expand to exactly `len` bytes (RDB
/// stores the length). None for corrupt data.
pub fn decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; len];
    let (mut ip, mut op) = (0, 0);
    while ip < input.len() {
        let ctrl = input[ip] as usize;
        ip += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            let lits = input.get(ip..ip + run)?;
            out.get_mut(op..op + run)?.copy_from_slice(lits);
            ip += run;
            op += run;
        } else {
            let mut n = ctrl >> 5;
            if n == 7 {
                n += *input.get(ip)? as usize;
                ip += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + *input.get(ip)? as usize + 1;
            ip += 1;
            n += 2;
            if back > op || op + n > len {
                return None;
            }
            let from = op - back;
            if back >= n {
                out.copy_within(from..from + n, op);
            } else {
                // The reference overlaps its own output (a repeat of the
                // last `back` bytes, a run when 1): copied forwards byte by
                // byte, as liblzf does; a copy call per `back` bytes cost
                // a fifth of loading a dump of repetitive values.
                for i in 0..n {
                    out[op + i] = out[from + i];
                }
            }
            op += n;
        }
    }
    (op == len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::hex;

    fn round_trip(data: &[u8]) -> Option<usize> {
        let c = compress(data, data.len().saturating_sub(4))?;
        assert!(c.len() <= data.len() - 4);
        assert_eq!(decompress(&c, data.len()).as_deref(), Some(data));
        Some(c.len())
    }

    #[test]
    fn same_bytes_as_redis() {
        // `SET lz <'abcdefghij'*30 + 'xyz' + '0123456789'*20>` then DUMP on
        // redis-server 7.0.15: the payload's LZF body (after 0xc3, compressed
        // length 0x26, raw length 0x41f7 - i.e. 503).
        let raw = format!("{}xyz{}", "abcdefghij".repeat(30), "0123456789".repeat(20));
        let redis = hex("0a6162636465666768696a61e0ff09e1100d0c78797a30313233343536373839e0b3090138390a009c534f04fdc14996");
        let body = &redis[..0x26];
        assert_eq!(compress(raw.as_bytes(), raw.len() - 4).unwrap(), body);
        // `SET s5 <'a'*100>`.
        // `SET s5 <'a'*100>`: compressed length 9, raw length 100 (0x40 0x64).
        let redis = hex("4064016161e057000161610a00e8a3b507b06df271");
        assert_eq!(compress(&[b'a'; 100], 96).unwrap(), &redis[2..11]);
    }

    #[test]
    fn earlier_inputs_leave_no_matches() {
        // B shares sequences with A: entries left by A must not be matched.
        let a = "0123456789abcdef".repeat(40);
        let b = format!("xyz{}", "abcdef0123456789".repeat(30));
        let fresh = std::thread::spawn({
            let b = b.clone();
            move || compress(b.as_bytes(), b.len() - 4)
        })
        .join()
        .unwrap();
        assert!(fresh.is_some());
        compress(a.as_bytes(), a.len() - 4).unwrap();
        assert_eq!(compress(b.as_bytes(), b.len() - 4), fresh);
        // And when the base wraps around, the table is emptied.
        POSITIONS.with(|p| p.borrow_mut().base = u32::MAX - 100);
        compress(a.as_bytes(), a.len() - 4).unwrap();
        assert_eq!(compress(b.as_bytes(), b.len() - 4), fresh);
    }

    #[test]
    fn round_trips() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut rand = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        // Random bytes do not compress.
        let noise: Vec<u8> = (0..5000).map(|_| rand() as u8).collect();
        assert_eq!(round_trip(&noise), None);
        // Repetitive data with long matches, short matches and literal runs.
        for size in [100, 1000, 70_000, 300_000] {
            let data: Vec<u8> = (0..size).map(|i| if rand() % 8 == 0 { rand() as u8 } else { b"redis-kvick"[i % 11] }).collect();
            round_trip(&data).expect("compressible");
        }
        let zeros = vec![0u8; 100_000];
        assert!(round_trip(&zeros).unwrap() < 2000);
        // Low-entropy random data: many small matches at all offsets.
        let small: Vec<u8> = (0..50_000).map(|_| b'a' + (rand() % 4) as u8).collect();
        round_trip(&small).expect("compressible");
    }

    #[test]
    fn corrupt_input_is_rejected() {
        let c = compress(&[b'x'; 200], 196).unwrap();
        assert_eq!(decompress(&c, 199), None);
        assert_eq!(decompress(&c, 201), None);
        assert_eq!(decompress(&c[..c.len() - 1], 200), None);
        // A back reference before the start of the output.
        assert_eq!(decompress(&[0x20, 0x05], 3), None);
        assert_eq!(decompress(&[0x05, b'a'], 6), None);
        assert_eq!(decompress(&[0xe0], 10), None);
    }

    /// Throughput, not an assertion: `cargo test --release --lib
    /// lzf::tests::throughput -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn throughput() {
        let text: Vec<u8> = (0..16u32 << 20).map(|i| b"the quick brown fox jumps over the lazy dog "[(i % 44) as usize] ^ ((i / 997) % 3) as u8).collect();
        let t = std::time::Instant::now();
        let c = compress(&text, text.len() - 4).unwrap();
        let ct = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let d = decompress(&c, text.len()).unwrap();
        let dt = t.elapsed().as_secs_f64();
        assert_eq!(d, text);
        let mb = text.len() as f64 / 1e6;
        println!("lzf: compress {:.0} MB/s (ratio {:.3}), decompress {:.0} MB/s", mb / ct, c.len() as f64 / text.len() as f64, mb / dt);
    }
}
