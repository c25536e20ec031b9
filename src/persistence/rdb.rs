//! RDB, Redis' serialization of values (format version 10, Redis 7.0): the
//! body of DUMP payloads and of RDB snapshot files.
//!
//! This module knows the bytes, not kvick's value types: `Object` is a value
//! as Redis serializes it (a string, a list as quicklist nodes, a set as an
//! intset or a plain set, ...). `commands::keys::{value_to_rdb,
//! value_from_rdb}` convert between `Object` and `types::Value`.
//!
//! Primitives: lengths are 6-, 14-, 32- or 64-bit (two top bits of the first
//! byte select; `11` marks a specially encoded string instead); strings are
//! raw, an int8/16/32 (canonical integers of at most 11 characters) or LZF
//! (when compression is on, longer than 20 bytes and at least 4 bytes
//! smaller); scores are binary doubles (ZSET_2) or text (old ZSET).

use std::borrow::Cow;

use super::{intset, listpack, lzf, ziplist};
use crate::resp::parser::parse_i64;
use crate::types::stream::StreamId;

/// The RDB format version Redis 7.0 writes (DUMP payloads carry it too).
pub const RDB_VERSION: u16 = 10;

/// Object types, as the first byte of a DUMP payload or of a key in an RDB file.
pub mod kind {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
}

/// Quicklist node containers (LIST_QUICKLIST_2): one huge element, or a listpack.
const NODE_PLAIN: u64 = 1;
const NODE_PACKED: u64 = 2;

const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// A value as Redis serializes it. Strings may borrow what is written.
#[derive(Clone, Debug, PartialEq)]
pub enum Object<'a> {
    Str(Cow<'a, [u8]>),
    /// Quicklist nodes, each written as one listpack (in order).
    List(Vec<Vec<Vec<u8>>>),
    /// A set in Redis' intset encoding (SET_INTSET).
    IntSet(Vec<i64>),
    /// A set in Redis' hashtable encoding (plain SET).
    Set(Vec<Vec<u8>>),
    /// `listpack`: written as HASH_LISTPACK, else as a plain HASH.
    Hash { pairs: Vec<(Vec<u8>, Vec<u8>)>, listpack: bool },
    /// Members in score order. `listpack`: ZSET_LISTPACK, else ZSET_2.
    Zset { members: Vec<(Vec<u8>, f64)>, listpack: bool },
    /// STREAM_LISTPACKS_2 (boxed: far larger than the other variants).
    Stream(Box<StreamObject>),
}

/// A stream as Redis 7.0 serializes it. The listpacks are Redis' stream
/// nodes as is (`types::stream` encodes and decodes them); the reader only
/// checks what ties the parts together (PEL entries and their consumers).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamObject {
    /// Nodes in ID order: master ID (the rax key) and listpack.
    pub nodes: Vec<(StreamId, Vec<u8>)>,
    pub length: u64,
    pub last_id: StreamId,
    pub first_id: StreamId,
    pub max_deleted_id: StreamId,
    pub entries_added: u64,
    pub groups: Vec<StreamGroup>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StreamGroup {
    pub name: Vec<u8>,
    pub last_id: StreamId,
    /// -1 when unknown (Redis' SCG_INVALID_ENTRIES_READ).
    pub entries_read: i64,
    /// The group's PEL in ID order: ID, delivery time (unix ms), delivery count.
    pub pending: Vec<(StreamId, u64, u64)>,
    pub consumers: Vec<StreamConsumer>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StreamConsumer {
    pub name: Vec<u8>,
    pub seen_time: u64,
    /// IDs of the group's pending entries this consumer owns, in order.
    pub pending: Vec<StreamId>,
}

/// Why a payload could not be read: Redis answers every such case with
/// "Bad data format".
#[derive(Debug, PartialEq)]
pub struct BadFormat;

type Result<T> = std::result::Result<T, BadFormat>;

// --- writing -------------------------------------------------------------------

pub fn write_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.extend_from_slice(&[0x40 | (n >> 8) as u8, n as u8]);
    } else if n <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Writes an integer-valued string in the int8/16/32 encodings when it fits,
/// else as its decimal text (rdbSaveLongLongAsStringObject).
pub fn write_int(out: &mut Vec<u8>, v: i64) {
    if let Ok(b) = i8::try_from(v) {
        out.extend_from_slice(&[0xc0 | ENC_INT8, b as u8]);
    } else if let Ok(h) = i16::try_from(v) {
        out.push(0xc0 | ENC_INT16);
        out.extend_from_slice(&h.to_le_bytes());
    } else if let Ok(w) = i32::try_from(v) {
        out.push(0xc0 | ENC_INT32);
        out.extend_from_slice(&w.to_le_bytes());
    } else {
        let mut buf = itoa::Buffer::new();
        let s = buf.format(v).as_bytes();
        write_len(out, s.len() as u64);
        out.extend_from_slice(s);
    }
}

/// Writes a string as rdbSaveRawString does: short canonical integers as
/// integers, long compressible strings as LZF (when `compress`), else raw.
pub fn write_string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= 11 {
        if let Some(v) = parse_i64(s).filter(|v| i32::try_from(*v).is_ok()) {
            return write_int(out, v);
        }
    }
    if compress && s.len() > 20 {
        if let Some(c) = lzf::compress(s, s.len() - 4) {
            out.push(0xc0 | ENC_LZF);
            write_len(out, c.len() as u64);
            write_len(out, s.len() as u64);
            out.extend_from_slice(&c);
            return;
        }
    }
    write_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// A double as ZSET_2 stores it: 8 bytes little-endian.
pub fn write_binary_double(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// The type byte `obj` is written with.
pub fn object_kind(obj: &Object) -> u8 {
    match obj {
        Object::Str(_) => kind::STRING,
        Object::List(_) => kind::LIST_QUICKLIST_2,
        Object::IntSet(_) => kind::SET_INTSET,
        Object::Set(_) => kind::SET,
        Object::Hash { listpack: true, .. } => kind::HASH_LISTPACK,
        Object::Hash { .. } => kind::HASH,
        Object::Zset { listpack: true, .. } => kind::ZSET_LISTPACK,
        Object::Zset { .. } => kind::ZSET_2,
        Object::Stream(_) => kind::STREAM_LISTPACKS_2,
    }
}

/// Writes an object's type byte and body, as Redis 7.0's rdbSaveObjectType
/// and rdbSaveObject.
pub fn write_object(out: &mut Vec<u8>, obj: &Object, compress: bool) {
    out.push(object_kind(obj));
    write_body(out, obj, compress);
}

/// Writes an object without its type byte (an RDB file puts the key between).
pub fn write_body(out: &mut Vec<u8>, obj: &Object, compress: bool) {
    match obj {
        Object::Str(s) => write_string(out, s, compress),
        Object::List(nodes) => {
            write_len(out, nodes.len() as u64);
            for node in nodes {
                write_len(out, NODE_PACKED);
                write_string(out, &listpack::encode(node.iter().map(Vec::as_slice)), compress);
            }
        }
        Object::IntSet(ints) => write_string(out, &intset::encode(ints), compress),
        Object::Set(members) => {
            write_len(out, members.len() as u64);
            for m in members {
                write_string(out, m, compress);
            }
        }
        Object::Hash { pairs, listpack: true } => {
            let lp = listpack::encode(pairs.iter().flat_map(|(f, v)| [f.as_slice(), v.as_slice()]));
            write_string(out, &lp, compress);
        }
        Object::Hash { pairs, .. } => {
            write_len(out, pairs.len() as u64);
            for (f, v) in pairs {
                write_string(out, f, compress);
                write_string(out, v, compress);
            }
        }
        Object::Zset { members, listpack: true } => {
            let mut w = listpack::Writer::new();
            let mut buf = [0u8; 64];
            for (m, score) in members {
                w.push(m);
                // Scores as Redis formats them into a listpack (d2string):
                // integral values become integer entries.
                w.push(crate::util::fmt_double(*score, &mut buf));
            }
            write_string(out, &w.finish(), compress);
        }
        Object::Zset { members, .. } => {
            write_len(out, members.len() as u64);
            // From the highest score down, so that loading appends in order.
            for (m, score) in members.iter().rev() {
                write_string(out, m, compress);
                write_binary_double(out, *score);
            }
        }
        Object::Stream(st) => write_stream(out, st, compress),
    }
}

/// A stream ID as the rax and the PELs key it: 16 bytes, big-endian.
fn raw_id(id: StreamId) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&id.ms.to_be_bytes());
    b[8..].copy_from_slice(&id.seq.to_be_bytes());
    b
}

fn write_id(out: &mut Vec<u8>, id: StreamId) {
    write_len(out, id.ms);
    write_len(out, id.seq);
}

/// As Redis 7.0's rdbSaveObject for streams.
fn write_stream(out: &mut Vec<u8>, st: &StreamObject, compress: bool) {
    write_len(out, st.nodes.len() as u64);
    for (master, lp) in &st.nodes {
        // The rax key is saved raw: 16 bytes are never an integer nor compressed.
        write_string(out, &raw_id(*master), false);
        write_string(out, lp, compress);
    }
    write_len(out, st.length);
    write_id(out, st.last_id);
    write_id(out, st.first_id);
    write_id(out, st.max_deleted_id);
    write_len(out, st.entries_added);
    write_len(out, st.groups.len() as u64);
    for g in &st.groups {
        write_string(out, &g.name, compress);
        write_id(out, g.last_id);
        write_len(out, g.entries_read as u64);
        write_len(out, g.pending.len() as u64);
        for &(id, time, count) in &g.pending {
            out.extend_from_slice(&raw_id(id));
            out.extend_from_slice(&time.to_le_bytes());
            write_len(out, count);
        }
        write_len(out, g.consumers.len() as u64);
        for c in &g.consumers {
            write_string(out, &c.name, compress);
            out.extend_from_slice(&c.seen_time.to_le_bytes());
            write_len(out, c.pending.len() as u64);
            for &id in &c.pending {
                out.extend_from_slice(&raw_id(id));
            }
        }
    }
}

/// A DUMP payload: the object, the RDB version (u16 LE) and the CRC-64 of
/// everything before it (u64 LE).
pub fn dump_payload(obj: &Object, compress: bool) -> Vec<u8> {
    let mut out = Vec::new();
    write_object(&mut out, obj, compress);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = super::crc64::crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Whether a DUMP payload has a version this reader knows and a matching
/// checksum (Redis' verifyDumpPayload).
pub fn verify_payload(p: &[u8]) -> bool {
    let Some(body) = p.len().checked_sub(10) else { return false };
    let version = u16::from_le_bytes([p[body], p[body + 1]]);
    let crc = u64::from_le_bytes(p[body + 2..].try_into().expect("8 bytes"));
    version <= RDB_VERSION && super::crc64::crc64(0, &p[..body + 2]) == crc
}

// --- reading -------------------------------------------------------------------

/// Reads RDB primitives from a buffer, never past its end.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Set when a read failed for want of bytes: the buffer length that
    /// read needed. A file loaded in chunks (`rdbfile::Keys`) then reads
    /// more and tries again, where a whole payload would be corrupt.
    need: Option<usize>,
}

/// A length, or the special encoding of a string.
enum Len {
    Plain(u64),
    Encoded(u8),
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0, need: None }
    }

    /// The buffer length a read that ran past the end needed, if one did.
    pub fn needs(&self) -> Option<usize> {
        self.need
    }

    /// Bytes read so far (error messages name the offset).
    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(BadFormat)?;
        if end > self.buf.len() {
            self.need = Some(end);
            return Err(BadFormat);
        }
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub fn byte(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }

    fn len_or_encoding(&mut self) -> Result<Len> {
        let b = self.byte()?;
        Ok(match b >> 6 {
            0 => Len::Plain((b & 0x3f) as u64),
            1 => Len::Plain((((b & 0x3f) as u64) << 8) | self.byte()? as u64),
            3 => Len::Encoded(b & 0x3f),
            _ if b == 0x80 => Len::Plain(u32::from_be_bytes(self.bytes(4)?.try_into().expect("4 bytes")) as u64),
            _ if b == 0x81 => Len::Plain(u64::from_be_bytes(self.bytes(8)?.try_into().expect("8 bytes"))),
            _ => return Err(BadFormat),
        })
    }

    /// An RDB length (not a specially encoded string).
    pub fn length(&mut self) -> Result<u64> {
        match self.len_or_encoding()? {
            Len::Plain(n) => Ok(n),
            Len::Encoded(_) => Err(BadFormat),
        }
    }

    /// A length used to size a collection: it cannot exceed the bytes left,
    /// since every element takes at least one byte (no huge allocation from
    /// a forged length).
    fn count(&mut self) -> Result<usize> {
        let n = self.length()?;
        if n > (self.buf.len() - self.pos) as u64 {
            self.need = usize::try_from(n).ok().and_then(|n| n.checked_add(self.pos));
            return Err(BadFormat);
        }
        Ok(n as usize)
    }

    pub fn string(&mut self) -> Result<Cow<'a, [u8]>> {
        match self.len_or_encoding()? {
            Len::Plain(n) => Ok(Cow::Borrowed(self.bytes(usize::try_from(n).map_err(|_| BadFormat)?)?)),
            Len::Encoded(ENC_INT8) => Ok(int_text(self.byte()? as i8 as i64)),
            Len::Encoded(ENC_INT16) => Ok(int_text(i16::from_le_bytes(self.bytes(2)?.try_into().expect("2 bytes")) as i64)),
            Len::Encoded(ENC_INT32) => Ok(int_text(i32::from_le_bytes(self.bytes(4)?.try_into().expect("4 bytes")) as i64)),
            Len::Encoded(ENC_LZF) => {
                let clen = usize::try_from(self.length()?).map_err(|_| BadFormat)?;
                let len = self.length()?;
                let data = self.bytes(clen)?;
                // LZF expands at most ~256x (a 3-byte back reference yields 264 bytes).
                if len == 0 || len > (clen as u64).saturating_mul(264) {
                    return Err(BadFormat);
                }
                lzf::decompress(data, len as usize).map(Cow::Owned).ok_or(BadFormat)
            }
            Len::Encoded(_) => Err(BadFormat),
        }
    }

    pub fn binary_double(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.bytes(8)?.try_into().expect("8 bytes")))
    }

    /// A millisecond time (rdbLoadMillisecondTime): 8 bytes little-endian.
    pub fn millis(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.bytes(8)?.try_into().expect("8 bytes")))
    }

    /// A 16-byte big-endian stream ID (rax keys, PEL entries).
    fn raw_id(&mut self) -> Result<StreamId> {
        let b = self.bytes(16)?;
        Ok(StreamId::new(u64::from_be_bytes(b[..8].try_into().expect("8 bytes")), u64::from_be_bytes(b[8..].try_into().expect("8 bytes"))))
    }

    fn id(&mut self) -> Result<StreamId> {
        Ok(StreamId::new(self.length()?, self.length()?))
    }

    /// A score of the old ZSET type: a length byte and text; 253, 254 and
    /// 255 stand for NaN, +inf and -inf.
    pub fn text_double(&mut self) -> Result<f64> {
        match self.byte()? {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let s = std::str::from_utf8(self.bytes(n as usize)?).map_err(|_| BadFormat)?;
                s.trim().parse().map_err(|_| BadFormat)
            }
        }
    }
}

fn int_text(v: i64) -> Cow<'static, [u8]> {
    Cow::Owned(itoa::Buffer::new().format(v).as_bytes().to_vec())
}

/// The elements of a listpack or ziplist blob, as strings.
fn blob_items(blob: &[u8], is_listpack: bool) -> Result<Vec<Vec<u8>>> {
    let entries = if is_listpack { listpack::decode(blob) } else { ziplist::decode(blob) };
    Ok(entries.ok_or(BadFormat)?.into_iter().map(listpack::Entry::to_vec).collect())
}

fn pairs(items: Vec<Vec<u8>>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    if !items.len().is_multiple_of(2) {
        return Err(BadFormat);
    }
    let mut it = items.into_iter();
    Ok(std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect())
}

fn score(s: &[u8]) -> Result<f64> {
    crate::util::parse_f64(s).filter(|v| !v.is_nan()).ok_or(BadFormat)
}

fn unique<T: AsRef<[u8]>>(items: impl Iterator<Item = T>) -> Result<()> {
    let mut seen = hashbrown::HashSet::new();
    for i in items {
        if !seen.insert(i.as_ref().to_vec()) {
            return Err(BadFormat);
        }
    }
    Ok(())
}

/// As Redis 7.0's rdbLoadObject for STREAM_LISTPACKS_2, with its checks:
/// node keys of 16 bytes in increasing order, no empty listpack, unique
/// group names and PEL IDs, and every consumer's PEL entry in its group's
/// PEL, owned once. kvick also refuses a PEL entry with no consumer (deep
/// sanitization does in Redis).
fn read_stream(r: &mut Reader) -> Result<StreamObject> {
    let mut st = StreamObject::default();
    let n = r.count()?;
    for _ in 0..n {
        let key = r.string()?;
        let key: [u8; 16] = key.as_ref().try_into().map_err(|_| BadFormat)?;
        let master = Reader::new(&key).raw_id()?;
        let lp = r.string()?.into_owned();
        // An empty listpack (header and end byte only) is refused.
        if lp.len() <= 7 || st.nodes.last().is_some_and(|(m, _)| *m >= master) {
            return Err(BadFormat);
        }
        st.nodes.push((master, lp));
    }
    st.length = r.length()?;
    st.last_id = r.id()?;
    st.first_id = r.id()?;
    st.max_deleted_id = r.id()?;
    st.entries_added = r.length()?;
    let groups = r.count()?;
    let mut names = hashbrown::HashSet::new();
    for _ in 0..groups {
        let name = r.string()?.into_owned();
        if !names.insert(name.clone()) {
            return Err(BadFormat);
        }
        let last_id = r.id()?;
        let entries_read = r.length()? as i64;
        let npel = r.count()?;
        let mut pending = Vec::with_capacity(npel);
        for _ in 0..npel {
            pending.push((r.raw_id()?, r.millis()?, r.length()?));
        }
        pending.sort_by_key(|p| p.0);
        if pending.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(BadFormat);
        }
        let mut owned = vec![false; pending.len()];
        let ncons = r.count()?;
        let mut consumers: Vec<StreamConsumer> = Vec::with_capacity(ncons);
        let mut consumer_names = hashbrown::HashSet::new();
        for _ in 0..ncons {
            let name = r.string()?.into_owned();
            if !consumer_names.insert(name.clone()) {
                return Err(BadFormat);
            }
            let seen_time = r.millis()?;
            let np = r.count()?;
            let mut ids = Vec::with_capacity(np);
            for _ in 0..np {
                let id = r.raw_id()?;
                let i = pending.binary_search_by_key(&id, |p| p.0).map_err(|_| BadFormat)?;
                if std::mem::replace(&mut owned[i], true) {
                    return Err(BadFormat);
                }
                ids.push(id);
            }
            ids.sort();
            consumers.push(StreamConsumer { name, seen_time, pending: ids });
        }
        if owned.contains(&false) {
            return Err(BadFormat);
        }
        st.groups.push(StreamGroup { name, last_id, entries_read, pending, consumers });
    }
    Ok(st)
}

/// Reads one object of type `t` (the byte before it). Accepts every type
/// Redis 7.0 loads except modules, pre-7.0 streams and the pre-2.6 zipmap
/// hashes.
/// Empty collections and duplicate members are rejected, as Redis does.
pub fn read_object<'a>(r: &mut Reader<'a>, t: u8) -> Result<Object<'a>> {
    let obj = match t {
        kind::STRING => Object::Str(r.string()?),
        kind::LIST => {
            let n = r.count()?;
            let items = (0..n).map(|_| r.string().map(Cow::into_owned)).collect::<Result<Vec<_>>>()?;
            Object::List(vec![items])
        }
        kind::LIST_ZIPLIST => Object::List(vec![blob_items(&r.string()?, false)?]),
        kind::LIST_QUICKLIST | kind::LIST_QUICKLIST_2 => {
            let n = r.count()?;
            let mut nodes = Vec::with_capacity(n);
            for _ in 0..n {
                let container = if t == kind::LIST_QUICKLIST_2 { r.length()? } else { NODE_PACKED };
                let blob = r.string()?;
                let node = match container {
                    NODE_PLAIN => vec![blob.into_owned()],
                    NODE_PACKED => blob_items(&blob, t == kind::LIST_QUICKLIST_2)?,
                    _ => return Err(BadFormat),
                };
                // Redis skips empty nodes.
                if !node.is_empty() {
                    nodes.push(node);
                }
            }
            Object::List(nodes)
        }
        kind::SET => {
            let n = r.count()?;
            let members = (0..n).map(|_| r.string().map(Cow::into_owned)).collect::<Result<Vec<_>>>()?;
            unique(members.iter())?;
            Object::Set(members)
        }
        kind::SET_INTSET => Object::IntSet(intset::decode(&r.string()?).ok_or(BadFormat)?),
        kind::HASH => {
            let n = r.count()?;
            let mut pairs = Vec::with_capacity(n);
            for _ in 0..n {
                pairs.push((r.string()?.into_owned(), r.string()?.into_owned()));
            }
            unique(pairs.iter().map(|p| &p.0))?;
            Object::Hash { pairs, listpack: false }
        }
        kind::HASH_ZIPLIST | kind::HASH_LISTPACK => {
            let pairs = pairs(blob_items(&r.string()?, t == kind::HASH_LISTPACK)?)?;
            unique(pairs.iter().map(|p| &p.0))?;
            Object::Hash { pairs, listpack: true }
        }
        kind::ZSET | kind::ZSET_2 => {
            let n = r.count()?;
            let mut members = Vec::with_capacity(n);
            for _ in 0..n {
                let m = r.string()?.into_owned();
                let s = if t == kind::ZSET_2 { r.binary_double()? } else { r.text_double()? };
                if s.is_nan() {
                    return Err(BadFormat);
                }
                members.push((m, s));
            }
            unique(members.iter().map(|p| &p.0))?;
            members.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            Object::Zset { members, listpack: false }
        }
        kind::ZSET_ZIPLIST | kind::ZSET_LISTPACK => {
            let members = pairs(blob_items(&r.string()?, t == kind::ZSET_LISTPACK)?)?
                .into_iter()
                .map(|(m, s)| Ok((m, score(&s)?)))
                .collect::<Result<Vec<_>>>()?;
            unique(members.iter().map(|p| &p.0))?;
            Object::Zset { members, listpack: true }
        }
        kind::STREAM_LISTPACKS_2 => Object::Stream(Box::new(read_stream(r)?)),
        _ => return Err(BadFormat),
    };
    let empty = match &obj {
        Object::Str(_) => false,
        Object::List(nodes) => nodes.is_empty(),
        Object::IntSet(ints) => ints.is_empty(),
        Object::Set(members) => members.is_empty(),
        Object::Hash { pairs, .. } => pairs.is_empty(),
        Object::Zset { members, .. } => members.is_empty(),
        // A stream may be empty (its groups and IDs remain).
        Object::Stream(_) => false,
    };
    if empty {
        return Err(BadFormat);
    }
    Ok(obj)
}

/// Reads the object of a verified DUMP payload (type byte, then the
/// object). Like Redis, the reader is not stopped before the version and
/// checksum, and bytes after the object are ignored.
pub fn read_payload(p: &[u8]) -> Result<Object<'_>> {
    let mut r = Reader::new(p);
    let t = r.byte()?;
    read_object(&mut r, t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::hex;

    /// DUMP payloads from redis-server 7.0.15 (`redis-cli --raw DUMP key |
    /// head -c -1 | xxd -p`) after, with default settings unless noted:
    /// SET s1 hello; SET s2 12345; SET s3 -100; SET s4 70000;
    /// SET s5 <'a'*100>; SET s6 12345678901; SET s7 -2147483648; SET s8 0123;
    /// SET lz <'abcdefghij'*30 'xyz' '0123456789'*20>;
    /// RPUSH l1 a 1 bb 300 -5 70000 1234567890123;
    /// list-max-listpack-size 2, RPUSH l2 a b c;
    /// SADD i1 1 2 3; SADD i2 5 70000; SADD i3 1 5000000000; SADD st x y;
    /// set-max-intset-entries 1, SADD s9 1 2; HSET h1 f1 v1 f2 2;
    /// hash-max-listpack-entries 1, HSET h2 f1 v1 f2 v2;
    /// HSET h3 k <'b'*100> n 5000 m -5000 big 9223372036854775807;
    /// ZADD z1 1 a 2.5 b; zset-max-listpack-entries 1, ZADD z2 1 a 2.5 b;
    /// XADD x1 1-1 f v n 5; XADD x1 1-2 f w n 300; XADD x1 2-0 x y;
    /// XDEL x1 1-2; XGROUP CREATE x1 g 0; XREADGROUP GROUP g c COUNT 1 STREAMS x1 >;
    const VECTORS: &[(&str, &str)] = &[
        ("s1", "000568656c6c6f0a006372df766534200a"),
        ("s2", "00c139300a009d94ea2793fc08b9"),
        ("s3", "00c09c0a00ff77a3b766addee4"),
        ("s4", "00c2701101000a0001a408fe953095a5"),
        ("s5", "00c3094064016161e057000161610a00e8a3b507b06df271"),
        ("s6", "000b31323334353637383930310a00304e52d727176510"),
        ("s7", "00c2000000800a00c74f873e33558187"),
        ("s8", "0004303132330a000ae40c929e3b6422"),
        ("lz", "00c32641f70a6162636465666768696a61e0ff09e1100d0c78797a30313233343536373839e0b3090138390a009c534f04fdc14996"),
        ("l1", "12010225250000000700816102010182626203c12c02dffb02f270110104f4cb04fb711f01000009ff0a0092c24e44df0a4516"),
        ("l2", "1202020d0d0000000200816102816202ff020a0a0000000100816302ff0a00a60192a8f736b5c0"),
        ("i1", "0b0e02000000030000000100020003000a00a5025ce26d6e4d1b"),
        ("i2", "0b10040000000200000005000000701101000a00c108697164e28f2c"),
        ("i3", "0b180800000002000000010000000000000000f2052a010000000a0054f5a26ae707b5fc"),
        ("st", "0202017901780a000cdf6b3db330bcf0"),
        ("s9", "0202c002c0010a000b850052aea91fa1"),
        ("h1", "10151500000004008266310382763103826632030201ff0a005c5ea813feec1ff5"),
        ("h2", "04020266320276320266310276310a008b6523ec6bc03cf6"),
        ("h3", "10c32d408e0b8e0000000800816b02e06462e05a001566816e02f1881303816d02f178ec038362696704f4ff8000027f09ff0a005a0b0f80b119c8de"),
        ("z1", "1114140000000400816102010181620283322e3504ff0a00d44c6ea4f644d9d7"),
        ("z2", "0502016200000000000004400161000000000000f03f0a00f46eb73919767291"),
        ("x1", "130110000000000000000100000000000000014041410000001900020101010201816602816e02000102010001000181760205010501030100010101817702c12c02050100010101dfff0201018178028179020601ff0202000101010203010167010181ffffffffffffffff010000000000000001000000000000000199d8263ca20100000101016399d8263ca201000001000000000000000100000000000000010a00d3c9407485333af2"),
    ];

    fn vector(name: &str) -> Vec<u8> {
        hex(VECTORS.iter().find(|v| v.0 == name).expect("vector").1)
    }

    fn strs(items: &[&str]) -> Vec<Vec<u8>> {
        items.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn load(name: &str) -> Object<'static> {
        let p: &'static [u8] = Box::leak(vector(name).into_boxed_slice());
        assert!(verify_payload(p));
        read_payload(p).expect("readable")
    }

    #[test]
    fn reads_every_redis_payload() {
        let s = |v: &str| Object::Str(Cow::Owned(v.as_bytes().to_vec()));
        assert_eq!(load("s1"), s("hello"));
        assert_eq!(load("s2"), s("12345"));
        assert_eq!(load("s3"), s("-100"));
        assert_eq!(load("s4"), s("70000"));
        assert_eq!(load("s5"), s(&"a".repeat(100)));
        assert_eq!(load("s6"), s("12345678901"));
        assert_eq!(load("s7"), s("-2147483648"));
        assert_eq!(load("s8"), s("0123"));
        assert_eq!(load("l1"), Object::List(vec![strs(&["a", "1", "bb", "300", "-5", "70000", "1234567890123"])]));
        assert_eq!(load("l2"), Object::List(vec![strs(&["a", "b"]), strs(&["c"])]));
        assert_eq!(load("i1"), Object::IntSet(vec![1, 2, 3]));
        assert_eq!(load("i3"), Object::IntSet(vec![1, 5_000_000_000]));
        assert_eq!(load("st"), Object::Set(strs(&["y", "x"])));
        assert_eq!(load("s9"), Object::Set(strs(&["2", "1"])));
        let pair = |f: &str, v: &str| (f.as_bytes().to_vec(), v.as_bytes().to_vec());
        assert_eq!(load("h1"), Object::Hash { pairs: vec![pair("f1", "v1"), pair("f2", "2")], listpack: true });
        assert_eq!(load("h2"), Object::Hash { pairs: vec![pair("f2", "v2"), pair("f1", "v1")], listpack: false });
        let b100 = "b".repeat(100);
        let h3 = vec![pair("k", &b100), pair("n", "5000"), pair("m", "-5000"), pair("big", "9223372036854775807")];
        assert_eq!(load("h3"), Object::Hash { pairs: h3, listpack: true });
        let zs = vec![(b"a".to_vec(), 1.0), (b"b".to_vec(), 2.5)];
        assert_eq!(load("z1"), Object::Zset { members: zs.clone(), listpack: true });
        assert_eq!(load("z2"), Object::Zset { members: zs, listpack: false });
        let Object::Stream(x1) = load("x1") else { panic!("a stream") };
        let id = StreamId::new;
        assert_eq!(x1.nodes.len(), 1);
        assert_eq!(x1.nodes[0].0, id(1, 1));
        assert_eq!((x1.length, x1.last_id, x1.first_id, x1.max_deleted_id, x1.entries_added), (2, id(2, 0), id(1, 1), id(1, 2), 3));
        // entries_read -1: the deletion leaves the group's read count unknown.
        let g = &x1.groups[0];
        assert_eq!((g.name.as_slice(), g.last_id, g.entries_read), (&b"g"[..], id(1, 1), -1));
        assert_eq!((g.pending.len(), g.pending[0].0, g.pending[0].2), (1, id(1, 1), 1));
        assert_eq!(g.consumers, vec![StreamConsumer { name: b"c".to_vec(), seen_time: g.pending[0].1, pending: vec![id(1, 1)] }]);
        // As kvick's stream: the deleted entry is gone, the rest is there.
        let Ok(crate::types::Value::Stream(v)) = crate::commands::keys::value_from_rdb(Object::Stream(x1)) else { panic!("a stream value") };
        let mut got = Vec::new();
        v.range(StreamId::MIN, StreamId::MAX, false, |e| {
            got.push((e.id, e.items().map(<[u8]>::to_vec).collect::<Vec<_>>()));
            true
        });
        assert_eq!(got, vec![(id(1, 1), strs(&["f", "v", "n", "5"])), (id(2, 0), strs(&["x", "y"]))]);
    }

    #[test]
    fn corrupt_streams_are_refused_without_panics() {
        let p = vector("x1");
        let body = &p[..p.len() - 10];
        for cut in 0..body.len() {
            assert_eq!(read_payload(&body[..cut]), Err(BadFormat));
        }
        // Any byte changed: refused, or loaded into a consistent stream.
        for i in 1..body.len() {
            for x in [1u8, 0x80, 0xff] {
                let mut b = body.to_vec();
                b[i] ^= x;
                if let Ok(obj) = read_payload(&b) {
                    let _ = crate::commands::keys::value_from_rdb(obj.clone());
                }
            }
        }
    }

    #[test]
    fn writes_the_same_bytes_as_redis() {
        for (name, _) in VECTORS {
            let payload = vector(name);
            let obj = load(name);
            assert_eq!(dump_payload(&obj, true), payload, "{name}");
        }
    }

    #[test]
    fn primitives_round_trip() {
        for n in [0u64, 63, 64, 16383, 16384, u32::MAX as u64, u32::MAX as u64 + 1, u64::MAX] {
            let mut out = Vec::new();
            write_len(&mut out, n);
            assert_eq!(Reader::new(&out).length(), Ok(n));
        }
        for v in [0i64, -128, 127, 128, -32768, 32767, 32768, i32::MIN as i64, i32::MAX as i64, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            write_int(&mut out, v);
            assert_eq!(Reader::new(&out).string().unwrap().as_ref(), v.to_string().as_bytes());
        }
        let long = b"x".repeat(1000);
        for (s, compress) in [(&b""[..], true), (b"-0", true), (b"007", true), (&long, true), (&long, false)] {
            let mut out = Vec::new();
            write_string(&mut out, s, compress);
            assert_eq!(Reader::new(&out).string().unwrap().as_ref(), s);
        }
    }

    #[test]
    fn bad_payloads_are_rejected() {
        let p = vector("l1");
        // Any truncation or flipped byte fails the checksum.
        for cut in 0..p.len() {
            assert!(!verify_payload(&p[..cut]));
        }
        let mut flipped = p.clone();
        flipped[3] ^= 1;
        assert!(!verify_payload(&flipped));
        // A newer RDB version is refused.
        let mut body = p[..p.len() - 10].to_vec();
        body.extend_from_slice(&11u16.to_le_bytes());
        let crc = crate::persistence::crc64::crc64(0, &body);
        body.extend_from_slice(&crc.to_le_bytes());
        assert!(!verify_payload(&body));
        // Truncated bodies (with a valid checksum) are bad data, not panics.
        let body = &p[..p.len() - 10];
        for cut in 0..body.len() {
            assert_eq!(read_payload(&body[..cut]), Err(BadFormat));
        }
        // A truncated stream; forged lengths do not allocate.
        assert_eq!(read_payload(&[kind::STREAM_LISTPACKS_2, 1, 0x10]), Err(BadFormat));
        assert_eq!(read_payload(&[kind::SET, 0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), Err(BadFormat));
        assert_eq!(read_payload(&[kind::STRING, 0xc3, 0x01, 0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00]), Err(BadFormat));
        // Empty collections and duplicates.
        assert_eq!(read_payload(&[kind::SET, 0]), Err(BadFormat));
        assert_eq!(read_payload(&[kind::SET, 2, 1, b'a', 1, b'a']), Err(BadFormat));
    }
}
