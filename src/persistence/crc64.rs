//! Redis' CRC-64 (Jones polynomial, reflected input and output, initial
//! value 0, as redis/src/crc64.c): the checksum of DUMP payloads and RDB
//! files. Table-driven, eight bytes per step (slice-by-8), since it will
//! checksum multi-gigabyte snapshots.

/// The Jones polynomial 0xad93d23594c935a9, bit-reversed for the reflected algorithm.
const POLY: u64 = 0x95ac_9329_ac4b_c9b5;

/// `TABLES[0]` is the byte-at-a-time table; `TABLES[k][b]` is the CRC of
/// byte `b` followed by `k` zero bytes.
static TABLES: [[u64; 256]; 8] = make_tables();

const fn make_tables() -> [[u64; 256]; 8] {
    let mut t = [[0u64; 256]; 8];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u64;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][n] = c;
        n += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut n = 0;
        while n < 256 {
            let prev = t[k - 1][n];
            t[k][n] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            n += 1;
        }
        k += 1;
    }
    t
}

/// Continues a checksum over `data` (start with `crc = 0`).
pub fn crc64(mut crc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let v = crc ^ u64::from_le_bytes(c.try_into().expect("8-byte chunk"));
        crc = TABLES[7][(v & 0xff) as usize]
            ^ TABLES[6][((v >> 8) & 0xff) as usize]
            ^ TABLES[5][((v >> 16) & 0xff) as usize]
            ^ TABLES[4][((v >> 24) & 0xff) as usize]
            ^ TABLES[3][((v >> 32) & 0xff) as usize]
            ^ TABLES[2][((v >> 40) & 0xff) as usize]
            ^ TABLES[1][((v >> 48) & 0xff) as usize]
            ^ TABLES[0][(v >> 56) as usize];
    }
    for &b in chunks.remainder() {
        crc = TABLES[0][((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        assert_eq!(crc64(0, b"123456789"), 0xe9c6d914c4b8d9ca);
        // The checksum of `DUMP s1` (SET s1 hello) on redis-server 7.0.15.
        assert_eq!(crc64(0, b"\x00\x05hello\x0a\x00"), u64::from_le_bytes(*b"\x63\x72\xdf\x76\x65\x34\x20\x0a"));
    }

    #[test]
    fn incremental_equals_whole() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 3) as u8).collect();
        let whole = crc64(0, &data);
        for split in [0, 1, 7, 8, 9, 500, 999, 1000] {
            assert_eq!(crc64(crc64(0, &data[..split]), &data[split..]), whole);
        }
        // Against the bitwise definition.
        let mut slow = 0u64;
        for &b in &data {
            slow ^= b as u64;
            for _ in 0..8 {
                slow = if slow & 1 != 0 { (slow >> 1) ^ POLY } else { slow >> 1 };
            }
        }
        assert_eq!(slow, whole);
    }

    /// Throughput, not an assertion: `cargo test --release --lib
    /// crc64::tests::throughput -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn throughput() {
        let data: Vec<u8> = (0..64 << 20).map(|i: u32| (i * 31) as u8).collect();
        let t = std::time::Instant::now();
        let crc = crc64(0, &data);
        let secs = t.elapsed().as_secs_f64();
        println!("crc64: {:.2} GB/s ({crc:x})", data.len() as f64 / secs / 1e9);
    }
}
