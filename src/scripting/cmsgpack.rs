//! `cmsgpack` for scripts: lua-cmsgpack 0.4.0 as Redis ships it.
//! `pack(...)` encodes each argument (integral numbers as the smallest
//! integer type, others as float or double; a table whose keys are exactly
//! 1..n is an array, any other a map; deeper than 16 tables packs nil);
//! `unpack(s)` returns every object of `s`; `unpack_one(s [, offset])` and
//! `unpack_limit(s, limit [, offset])` return the offset to go on from (-1
//! at the end), then one or `limit` objects.
//!
//! The C library pushes its results on the Lua stack of a C function,
//! which holds at most LUAI_MAXCSTACK (8000) slots: `Unpacker::used`
//! counts them as the C code fills them, so that too many objects (or
//! nesting at the limit) fail with Redis' stack overflow errors.

use mlua::{Lua, MultiValue, Table, Value};

use super::convert::c_i64;
use super::libs::{argerror, c_function, checkint, checkstring, exact, Raise};

const MAX_NESTING: usize = 16;
/// LUAI_MAXCSTACK: the slots a C function may fill.
const MAX_STACK: usize = 8000;

pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        c_function(lua, |lua, f, args| -> Result<MultiValue, Raise> {
            if args.is_empty() {
                return Err(argerror(0, f, "MessagePack pack needs input.").into());
            }
            let mut out = Vec::new();
            for v in args.iter() {
                pack(v, &mut out, 0).map_err(|e| e.to_string())?;
            }
            let s = lua.create_string(&out).map_err(|e| e.to_string())?;
            Ok(MultiValue::from_vec(vec![Value::String(s)]))
        })?,
    )?;
    t.raw_set(
        "unpack",
        c_function(lua, |lua, f, args| unpack_full(lua, f, &args, args.len(), 0, 0))?,
    )?;
    t.raw_set(
        "unpack_one",
        c_function(lua, |lua, f, args| {
            let offset = optint(&args, 2, f)?;
            unpack_full(lua, f, &args, 1, 1, offset)
        })?,
    )?;
    t.raw_set(
        "unpack_limit",
        c_function(lua, |lua, f, args| {
            let limit = checkint(&args, 2, f)?;
            let offset = optint(&args, 3, f)?;
            unpack_full(lua, f, &args, 1, limit, offset)
        })?,
    )?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

/// luaL_optinteger with default 0.
fn optint(args: &MultiValue, n: usize, f: &str) -> Result<i32, String> {
    match args.get(n - 1) {
        None | Some(Value::Nil) => Ok(0),
        _ => checkint(args, n, f),
    }
}

/// mp_unpack_full: `limit` 0 and `offset` 0 decode everything and return
/// no offset. `args` slots of the stack are taken by the arguments.
fn unpack_full(lua: &Lua, f: &str, args: &MultiValue, slots: usize, limit: i32, offset: i32) -> Result<MultiValue, Raise> {
    let s = checkstring(args, 1, f, "no value")?;
    let len = s.len();
    if offset < 0 || limit < 0 {
        // Redis prints the length where it means the limit.
        return Err(Raise::At(format!(
            "Invalid request to unpack with offset of {} and limit of {}.",
            offset, len as i32
        )));
    }
    if offset as usize > len {
        return Err(Raise::At(format!(
            "Start offset {} greater than input length {}.",
            offset, len as i32
        )));
    }
    let all = limit == 0 && offset == 0;
    let limit = if all { i32::MAX } else { limit };
    let mut u = Unpacker { lua, b: &s, at: offset as usize, used: slots };
    let mut out = MultiValue::new();
    let mut count = 0;
    while u.at < len && count < limit {
        out.push_back(u.value()?);
        count += 1;
    }
    if !all {
        u.push("mp_unpack_full")?;
        let next = if u.at == len { -1.0 } else { u.at as f64 };
        out.push_front(Value::Number(next));
    }
    Ok(out)
}

fn pack(v: &Value, out: &mut Vec<u8>, depth: usize) -> mlua::Result<()> {
    match v {
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => int(*i as i64, out),
        Value::Number(n) => {
            // C's test: the (int64_t) cast (see `c_i64`) gives the number back.
            if n.is_finite() && c_i64(*n) as f64 == *n {
                int(c_i64(*n), out);
            } else if (*n as f32) as f64 == *n {
                out.push(0xca);
                out.extend_from_slice(&(*n as f32).to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        Value::String(s) => {
            let b = s.as_bytes();
            let len = b.len();
            if len < 32 {
                out.push(0xa0 | len as u8);
            } else if len <= 0xff {
                out.extend_from_slice(&[0xd9, len as u8]);
            } else if len <= 0xffff {
                out.push(0xda);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(len as u32).to_be_bytes());
            }
            out.extend_from_slice(&b);
        }
        Value::Table(t) if depth < MAX_NESTING => match array_len(t)? {
            Some(n) => {
                header(n, 0x90, 0xdc, out);
                for i in 1..=n {
                    let v = exact(t, Value::Number(i as f64), t.raw_get::<Value>(i)?)?;
                    pack(&v, out, depth + 1)?;
                }
            }
            None => {
                let pairs: Vec<(Value, Value)> = t.clone().pairs::<Value, Value>().collect::<mlua::Result<_>>()?;
                header(pairs.len(), 0x80, 0xde, out);
                for (k, v) in &pairs {
                    pack(k, out, depth + 1)?;
                    pack(&exact(t, k.clone(), v.clone())?, out, depth + 1)?;
                }
            }
        },
        _ => out.push(0xc0),
    }
    Ok(())
}

/// A fix, 16-bit or 32-bit array or map header.
fn header(n: usize, fix: u8, wide: u8, out: &mut Vec<u8>) {
    if n < 16 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(wide);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(wide + 1);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn int(i: i64, out: &mut Vec<u8>) {
    if i >= 0 {
        if i < 128 {
            out.push(i as u8);
        } else if i < 256 {
            out.extend_from_slice(&[0xcc, i as u8]);
        } else if i < 65536 {
            out.push(0xcd);
            out.extend_from_slice(&(i as u16).to_be_bytes());
        } else if i < 1 << 32 {
            out.push(0xce);
            out.extend_from_slice(&(i as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(i as u64).to_be_bytes());
        }
    } else if i >= -32 {
        out.push(i as i8 as u8);
    } else if i >= -128 {
        out.extend_from_slice(&[0xd0, i as i8 as u8]);
    } else if i >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= -(1 << 31) {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

/// lua-cmsgpack's table_is_an_array: every key a positive integer and
/// as many keys as the largest one.
fn array_len(t: &Table) -> mlua::Result<Option<usize>> {
    let Some((max, count)) = super::libs::positive_integer_keys(t)? else { return Ok(None) };
    Ok((max == count).then_some(max))
}

/// A decoding cursor over `b`, and the stack slots the C code would use.
struct Unpacker<'a> {
    lua: &'a Lua,
    b: &'a [u8],
    at: usize,
    used: usize,
}

const TOO_MANY: &str =
    "stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)";

fn eof() -> Raise {
    Raise::At("Missing bytes in input.".into())
}

fn lua_err(e: mlua::Error) -> Raise {
    Raise::At(e.to_string())
}

impl Unpacker<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Raise> {
        if self.b.len() - self.at < n {
            return Err(eof());
        }
        self.at += n;
        Ok(&self.b[self.at - n..self.at])
    }

    fn be(&mut self, n: usize) -> Result<u64, Raise> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64))
    }

    /// A push that is not a decoded value (an array index, the offset).
    fn push(&mut self, func: &str) -> Result<(), Raise> {
        if self.used + 1 > MAX_STACK {
            return Err(Raise::At(format!("stack overflow (in function {})", func)));
        }
        self.used += 1;
        Ok(())
    }

    fn str_of(&mut self, n: usize) -> Result<Value, Raise> {
        let lua = self.lua;
        let s = self.take(n)?;
        Ok(Value::String(lua.create_string(s).map_err(lua_err)?))
    }

    /// One object, which takes one more stack slot.
    fn value(&mut self) -> Result<Value, Raise> {
        if self.at >= self.b.len() {
            return Err(eof());
        }
        if self.used + 1 > MAX_STACK {
            return Err(Raise::At(TOO_MANY.into()));
        }
        let c = self.take(1)?[0];
        let num = |n: f64| Ok(Value::Number(n));
        let v = match c {
            0x00..=0x7f => num(c as f64),
            0xe0..=0xff => num(c as i8 as f64),
            0x80..=0x8f => self.map((c & 0x0f) as usize),
            0x90..=0x9f => self.array((c & 0x0f) as usize),
            0xa0..=0xbf => self.str_of((c & 0x1f) as usize),
            0xc0 => Ok(Value::Nil),
            0xc2 => Ok(Value::Boolean(false)),
            0xc3 => Ok(Value::Boolean(true)),
            0xd9 => {
                let n = self.be(1)? as usize;
                self.str_of(n)
            }
            0xda => {
                let n = self.be(2)? as usize;
                self.str_of(n)
            }
            0xdb => {
                let n = self.be(4)? as usize;
                self.str_of(n)
            }
            0xca => num(f32::from_bits(self.be(4)? as u32) as f64),
            0xcb => num(f64::from_bits(self.be(8)?)),
            0xcc => num(self.be(1)? as f64),
            0xcd => num(self.be(2)? as f64),
            0xce => num(self.be(4)? as f64),
            // Pushed as a lua_Integer (signed).
            0xcf => num(self.be(8)? as i64 as f64),
            0xd0 => num(self.be(1)? as u8 as i8 as f64),
            0xd1 => num(self.be(2)? as u16 as i16 as f64),
            0xd2 => num(self.be(4)? as u32 as i32 as f64),
            0xd3 => num(self.be(8)? as i64 as f64),
            0xdc => {
                let n = self.be(2)? as usize;
                self.array(n)
            }
            0xdd => {
                let n = self.be(4)? as usize;
                self.array(n)
            }
            0xde => {
                let n = self.be(2)? as usize;
                self.map(n)
            }
            0xdf => {
                let n = self.be(4)? as usize;
                self.map(n)
            }
            _ => Err(Raise::At("Bad data format in input.".into())),
        }?;
        self.used += 1;
        Ok(v)
    }

    /// The table's slot is taken while its elements are decoded above it.
    fn array(&mut self, n: usize) -> Result<Value, Raise> {
        // Each element takes at least one byte: a bad count cannot allocate much.
        let t = self
            .lua
            .create_table_with_capacity(n.min(self.b.len() - self.at), 0)
            .map_err(lua_err)?;
        self.used += 1;
        for i in 1..=n {
            self.push("mp_decode_to_lua_array")?;
            let v = self.value()?;
            t.raw_set(i, v).map_err(lua_err)?;
            self.used -= 2;
        }
        self.used -= 1;
        Ok(Value::Table(t))
    }

    fn map(&mut self, n: usize) -> Result<Value, Raise> {
        let t = self.lua.create_table().map_err(lua_err)?;
        self.used += 1;
        for _ in 0..n {
            let k = self.value()?;
            let v = self.value()?;
            match k {
                Value::Nil => return Err(Raise::Plain("table index is nil".into())),
                Value::Number(x) if x.is_nan() => return Err(Raise::Plain("table index is NaN".into())),
                k => t.raw_set(k, v).map_err(lua_err)?,
            }
            self.used -= 2;
        }
        self.used -= 1;
        Ok(Value::Table(t))
    }
}
