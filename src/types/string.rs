//! The string type with Redis' three encodings: `int` (a 64-bit integer),
//! `embstr` (short, never modified in place) and `raw` (appendable).

use crate::resp::parser::parse_i64;

/// Strings up to this length are embstr in Redis (OBJ_ENCODING_EMBSTR_SIZE_LIMIT).
const EMBSTR_MAX: usize = 44;

#[derive(Clone, Debug)]
pub enum StrValue {
    Int(i64),
    Emb(Box<[u8]>),
    Raw(Vec<u8>),
}

impl StrValue {
    /// Encodes a value as Redis' SET does (tryObjectEncoding): integers as int,
    /// short strings as embstr, the rest raw.
    pub fn from_bytes(b: &[u8]) -> StrValue {
        if b.len() <= 20 {
            if let Some(v) = parse_i64(b) {
                return StrValue::Int(v);
            }
        }
        Self::from_bytes_no_int(b)
    }

    /// As Redis' createStringObject: no integer detection.
    pub fn from_bytes_no_int(b: &[u8]) -> StrValue {
        if b.len() <= EMBSTR_MAX {
            StrValue::Emb(b.into())
        } else {
            StrValue::Raw(b.to_vec())
        }
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            StrValue::Int(_) => "int",
            StrValue::Emb(_) => "embstr",
            StrValue::Raw(_) => "raw",
        }
    }

    /// The value's bytes; integers are formatted into `scratch`.
    pub fn bytes<'a>(&'a self, scratch: &'a mut itoa::Buffer) -> &'a [u8] {
        match self {
            StrValue::Int(v) => scratch.format(*v).as_bytes(),
            StrValue::Emb(b) => b,
            StrValue::Raw(v) => v,
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes(&mut itoa::Buffer::new()).to_vec()
    }

    pub fn len(&self) -> usize {
        match self {
            StrValue::Int(v) => itoa::Buffer::new().format(*v).len(),
            StrValue::Emb(b) => b.len(),
            StrValue::Raw(v) => v.len(),
        }
    }

    /// The value as an integer, if it is one (INCR and friends).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            StrValue::Int(v) => Some(*v),
            StrValue::Emb(b) => parse_i64(b),
            StrValue::Raw(v) => parse_i64(v),
        }
    }

    /// Turns the value into the appendable raw encoding (APPEND, SETRANGE).
    pub fn make_raw(&mut self) -> &mut Vec<u8> {
        if !matches!(self, StrValue::Raw(_)) {
            *self = StrValue::Raw(self.to_vec());
        }
        match self {
            StrValue::Raw(v) => v,
            _ => unreachable!(),
        }
    }

    pub fn mem_size(&self) -> usize {
        match self {
            StrValue::Int(_) => 0,
            StrValue::Emb(b) => b.len(),
            StrValue::Raw(v) => v.capacity(),
        }
    }
}
