//! Redis' serialization formats: the RDB encoding of values (DUMP/RESTORE
//! payloads now, RDB snapshots later) and the codecs it nests (CRC-64, LZF,
//! listpack, intset, and the read-only ziplist of older files).

pub mod aof;
pub mod crc64;
pub mod lzf;
pub mod intset;
pub mod listpack;
pub mod rdb;
pub mod ziplist;
pub mod load;
pub mod rdbfile;
pub mod snapshot;

/// Test vectors are Redis' bytes written as hex.
#[cfg(test)]
pub(crate) fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}
pub mod chunks;
