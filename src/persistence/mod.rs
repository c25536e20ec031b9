//! Redis' serialization formats: the RDB encoding of values (DUMP/RESTORE
//! payloads now, RDB snapshots later) and the codecs it nests (CRC-64, LZF,
//! listpack, intset, and the read-only ziplist of older files).

pub mod crc64;
pub mod lzf;
