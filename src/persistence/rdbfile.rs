//! RDB files, as Redis 7.0 writes and reads them: `REDIS0010`, AUX fields,
//! then per database a SELECTDB (and RESIZEDB) and its keys, each an
//! optional EXPIRETIME_MS and a typed object (`rdb`), then EOF and the
//! CRC-64 of everything before it (0 when `rdbchecksum` is off).
//!
//! Writing is split so that a snapshot can stream: `header`, any number of
//! `select_db`/`write_entry` pieces (a database may be selected more than
//! once: Redis' loader just switches), then `EOF` and the checksum. Reading
//! is an iterator over the keys of a file read in chunks.

use super::chunks::Chunks;
use super::rdb::{self, kind, Reader, RDB_VERSION};
use crate::shard::db::Entry;
use crate::types::Value;

/// Opcodes between keys (Redis' RDB_OPCODE_*).
pub mod op {
    /// A library (Redis 7.0 GA, RDB_OPCODE_FUNCTION2 = 245).
    pub const FUNCTION2: u8 = 0xF5;
    /// A library in 7.0-rc1/rc2's format (RDB_OPCODE_FUNCTION_PRE_GA).
    pub const FUNCTION: u8 = 0xF6;
    pub const MODULE_AUX: u8 = 0xF7;
    pub const IDLE: u8 = 0xF8;
    pub const FREQ: u8 = 0xF9;
    pub const AUX: u8 = 0xFA;
    pub const RESIZEDB: u8 = 0xFB;
    pub const EXPIRETIME_MS: u8 = 0xFC;
    pub const EXPIRETIME: u8 = 0xFD;
    pub const SELECTDB: u8 = 0xFE;
    pub const EOF: u8 = 0xFF;
}

/// The redis-ver AUX field: the Redis version whose format kvick writes.
const REDIS_VER: &str = "7.0.0";

fn aux(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.push(op::AUX);
    rdb::write_string(out, name.as_bytes(), false);
    rdb::write_string(out, value, false);
}

/// The magic, the version and the AUX fields Redis writes for a snapshot.
pub fn header(out: &mut Vec<u8>, used_mem: u64, aof_base: bool) {
    out.extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
    aux(out, "redis-ver", REDIS_VER.as_bytes());
    aux(out, "redis-bits", b"64");
    let mut b = itoa::Buffer::new();
    aux(out, "ctime", b.format(crate::util::now_ms() / 1000).as_bytes());
    aux(out, "used-mem", b.format(used_mem).as_bytes());
    aux(out, "aof-base", if aof_base { b"1" } else { b"0" });
}

/// Starts the keys of database `db`; `sizes` (keys, keys with expiry) are
/// only a hint for the loader.
pub fn select_db(out: &mut Vec<u8>, db: usize, sizes: Option<(usize, usize)>) {
    out.push(op::SELECTDB);
    rdb::write_len(out, db as u64);
    if let Some((keys, expires)) = sizes {
        out.push(op::RESIZEDB);
        rdb::write_len(out, keys as u64);
        rdb::write_len(out, expires as u64);
    }
}

/// One key with its expiry.
pub fn write_entry(out: &mut Vec<u8>, key: &[u8], e: &Entry, compress: bool) {
    let mut scratch = itoa::Buffer::new();
    let obj = crate::commands::keys::value_to_rdb(&e.value, &mut scratch);
    if e.expire_at != 0 {
        out.push(op::EXPIRETIME_MS);
        out.extend_from_slice(&e.expire_at.to_le_bytes());
    }
    out.push(rdb::object_kind(&obj));
    rdb::write_string(out, key, compress);
    rdb::write_body(out, &obj, compress);
}

/// A key read from a file.
pub struct Loaded {
    pub db: usize,
    pub key: Vec<u8>,
    pub value: Value,
    /// Unix ms, 0 for none.
    pub expire_at: u64,
}

/// Why a file could not be loaded, and where.
#[derive(Debug)]
pub struct LoadError {
    pub offset: usize,
    pub what: String,
}

/// The keys of an RDB file, in file order, read in chunks (`Chunks`).
pub struct Keys<R> {
    src: Chunks<R>,
    st: State,
    done: bool,
}

/// What the items read so far set.
struct State {
    version: u16,
    databases: usize,
    db: usize,
    /// The expiry read for the next key.
    expire_at: u64,
    /// The code of each function library read so far (FUNCTION2 records),
    /// in file order: the loader creates them once the keys are in.
    functions: Vec<Vec<u8>>,
}

/// What one item of the file was.
enum Item {
    /// An opcode that only changed the reading state.
    Other,
    Key(Loaded),
    /// EOF: the checksum (0 before version 5) and the offset it is at.
    Eof { at: usize, checksum: u64 },
}

impl<R: std::io::Read> Keys<R> {
    /// Checks the magic and version; `databases` bounds SELECTDB.
    pub fn new(mut src: Chunks<R>, databases: usize) -> Result<Keys<R>, LoadError> {
        let bad = |what: &str| LoadError { offset: 0, what: what.to_string() };
        src.fill(9).map_err(|e| bad(&e.to_string()))?;
        let buf = src.data();
        if buf.len() < 9 || &buf[..5] != b"REDIS" {
            return Err(bad("Wrong signature trying to load DB from file"));
        }
        let version: u16 = std::str::from_utf8(&buf[5..9]).ok().and_then(|v| v.parse().ok()).ok_or_else(|| bad("Wrong signature trying to load DB from file"))?;
        if !(1..=RDB_VERSION).contains(&version) {
            return Err(bad(&format!("Can't handle RDB format version {version}")));
        }
        src.consume(9);
        Ok(Keys { src, st: State { version, databases, db: 0, expire_at: 0, functions: Vec::new() }, done: false })
    }

    /// The code of the function libraries read so far, taken.
    pub fn take_functions(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.st.functions)
    }

    /// The next key, None after EOF (and a verified checksum).
    pub fn next_key(&mut self) -> Result<Option<Loaded>, LoadError> {
        while !self.done {
            let mut r = Reader::new(self.src.data());
            let item = self.st.item(&mut r);
            let (read, need) = (r.pos(), r.needs());
            match item {
                Ok(Item::Other) => self.src.consume(read),
                Ok(Item::Key(k)) => {
                    self.src.consume(read);
                    self.st.expire_at = 0;
                    return Ok(Some(k));
                }
                Ok(Item::Eof { at, checksum }) => {
                    self.done = true;
                    if checksum != 0 && crate::config::get_int("rdbchecksum") != 0 && self.src.crc_before(at) != checksum {
                        return Err(LoadError { offset: self.src.pos() as usize + at, what: "Wrong RDB checksum".into() });
                    }
                    self.src.consume(read);
                }
                // The item goes on past what is read: read more, try again.
                Err(_) if need.is_some_and(|n| self.src.data().len() < n && self.src.holds(n)) => {
                    let n = need.expect("checked");
                    self.src.fill(n).map_err(|e| LoadError { offset: self.src.pos() as usize, what: e.to_string() })?;
                }
                Err(mut e) => {
                    e.offset += self.src.pos() as usize;
                    return Err(e);
                }
            }
        }
        Ok(None)
    }

}

impl State {
    /// Reads one opcode and what follows it, or one key; offsets in errors
    /// are relative to `r`'s start.
    fn item(&mut self, r: &mut Reader) -> Result<Item, LoadError> {
        let bad = |r: &Reader| LoadError { offset: r.pos(), what: "Bad data format (unexpected end of file or invalid encoding)".into() };
        let t = r.byte().map_err(|_| bad(r))?;
        match t {
            op::AUX => {
                r.string().map_err(|_| bad(r))?;
                r.string().map_err(|_| bad(r))?;
            }
            op::RESIZEDB => {
                r.length().map_err(|_| bad(r))?;
                r.length().map_err(|_| bad(r))?;
            }
            op::EXPIRETIME_MS => {
                let b = r.bytes(8).map_err(|_| bad(r))?;
                self.expire_at = u64::from_le_bytes(b.try_into().expect("8 bytes"));
            }
            op::EXPIRETIME => {
                let b = r.bytes(4).map_err(|_| bad(r))?;
                self.expire_at = u32::from_le_bytes(b.try_into().expect("4 bytes")) as u64 * 1000;
            }
            op::SELECTDB => {
                let db = r.length().map_err(|_| bad(r))?;
                if db >= self.databases as u64 {
                    return Err(LoadError {
                        offset: r.pos(),
                        what: format!("FATAL: Data file was created with a Redis server configured to handle more than {} databases. Exiting", self.databases),
                    });
                }
                self.db = db as usize;
            }
            // LRU and LFU hints: kvick keeps its own clock.
            op::IDLE => {
                r.length().map_err(|_| bad(r))?;
            }
            op::FREQ => {
                r.byte().map_err(|_| bad(r))?;
            }
            op::FUNCTION2 => {
                let code = r.string().map_err(|_| bad(r))?.into_owned();
                self.functions.push(code);
            }
            op::FUNCTION => return Err(LoadError { offset: 0, what: "Pre-release function format not supported".into() }),
            op::MODULE_AUX => return Err(LoadError { offset: 0, what: "Module auxiliary data is not supported (kvick has no modules)".into() }),
            // From version 5 the file ends with the CRC-64 of all before
            // it; 0 means it was written with `rdbchecksum no`.
            op::EOF if self.version < 5 => return Ok(Item::Eof { at: 1, checksum: 0 }),
            op::EOF => {
                let b = r.bytes(8).map_err(|_| LoadError { offset: r.pos(), what: "Unexpected end of file reading the checksum".into() })?;
                return Ok(Item::Eof { at: 1, checksum: u64::from_le_bytes(b.try_into().expect("8 bytes")) });
            }
            t => {
                if matches!(t, kind::MODULE_2 | kind::STREAM_LISTPACKS) || t == 6 || t == 21 {
                    return Err(LoadError { offset: 0, what: format!("Unsupported object type {t} (modules and pre-7.0 streams are not loaded)") });
                }
                let key = r.string().map_err(|_| bad(r))?.into_owned();
                let obj = rdb::read_object(r, t).map_err(|_| LoadError { offset: 0, what: "Bad data format in a key's value".into() })?;
                let value = crate::commands::keys::value_from_rdb(obj).map_err(|_| LoadError { offset: 0, what: "Bad data format in a key's value".into() })?;
                return Ok(Item::Key(Loaded { db: self.db, key, value, expire_at: self.expire_at }));
            }
        }
        Ok(Item::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::StrValue;

    /// Keys of an in-memory file, read `chunk` bytes at a time.
    fn keys(f: &[u8], chunk: usize) -> Result<Keys<&[u8]>, LoadError> {
        Keys::new(Chunks::new(f, f.len() as u64, chunk), 16)
    }

    fn entry(v: &[u8], expire_at: u64) -> Entry {
        Entry { value: Value::Str(StrValue::from_bytes(v)), expire_at, lru: 0, saved: Default::default() }
    }

    /// A file as a snapshot writes it: two sections of db 0, one of db 3.
    #[test]
    fn round_trip_with_repeated_selects() {
        let mut f = Vec::new();
        header(&mut f, 1234, false);
        select_db(&mut f, 0, Some((1, 0)));
        write_entry(&mut f, b"a", &entry(b"1", 0), true);
        select_db(&mut f, 3, None);
        write_entry(&mut f, b"b", &entry(&[b'x'; 100], 42), true);
        select_db(&mut f, 0, None);
        write_entry(&mut f, b"c", &entry(b"hello", 0), false);
        f.push(op::EOF);
        let crc = crate::persistence::crc64::crc64(0, &f);
        f.extend_from_slice(&crc.to_le_bytes());
        // Every chunk size: items span chunks, and outgrow them.
        for chunk in [1, 2, 3, 7, 16, 64, f.len()] {
            let mut keys = keys(&f, chunk).unwrap();
            let mut got = Vec::new();
            while let Some(k) = keys.next_key().unwrap() {
                got.push((k.db, k.key, k.expire_at));
            }
            assert_eq!(got, vec![(0, b"a".to_vec(), 0), (3, b"b".to_vec(), 42), (0, b"c".to_vec(), 0)]);
        }
        // A flipped byte is caught by the checksum, with its offset.
        let n = f.len();
        f[n - 12] ^= 1;
        for chunk in [1, 5, f.len()] {
            let mut keys = keys(&f, chunk).unwrap();
            let err = loop {
                match keys.next_key() {
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("corruption not detected"),
                    Err(e) => break e,
                }
            };
            assert_eq!(err.offset, n - 8, "{err:?}");
        }
        // A file cut anywhere is refused, at an offset inside it.
        f[n - 12] ^= 1;
        for cut in 9..n {
            let mut keys = keys(&f[..cut], 4).unwrap();
            let err = loop {
                match keys.next_key() {
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("a file cut at {cut} loaded"),
                    Err(e) => break e,
                }
            };
            assert!(err.offset <= cut, "{err:?} cut at {cut}");
        }
    }

    #[test]
    fn refuses_bad_headers_and_too_many_databases() {
        assert!(keys(b"REDIS0011", 4).is_err_and(|e| e.what.contains("version 11")));
        assert!(keys(b"RUDIS0010", 4).is_err_and(|e| e.what.contains("signature")));
        let mut f = b"REDIS0010".to_vec();
        select_db(&mut f, 20, None);
        f.push(op::EOF);
        f.extend_from_slice(&[0; 8]);
        let Err(e) = keys(&f, 4).unwrap().next_key() else { panic!("SELECTDB 20 of 16 accepted") };
        assert!(e.what.contains("more than 16 databases"), "{e:?}");
    }
}
