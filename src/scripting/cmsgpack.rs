//! `cmsgpack` for scripts: lua-cmsgpack as Redis ships it. `pack(...)`
//! encodes each argument (integral numbers as the smallest integer type,
//! others as float or double; a table whose keys are exactly 1..n is an
//! array, any other a map; deeper than 16 tables packs nil); `unpack(s)`
//! returns every object of `s`.

use mlua::{Lua, MultiValue, Table, Value};

const MAX_NESTING: usize = 16;

pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|_, args: MultiValue| {
            if args.is_empty() {
                return Err(mlua::Error::runtime("MessagePack pack needs input."));
            }
            let mut out = Vec::new();
            for v in args.iter() {
                pack(v, &mut out, 0)?;
            }
            Ok(mlua::BString::from(out))
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, s: mlua::String| {
            let bytes = s.as_bytes();
            let mut at = 0;
            let mut out = MultiValue::new();
            while at < bytes.len() {
                out.push_back(unpack(lua, &bytes, &mut at)?);
            }
            Ok(out)
        })?,
    )?;
    Ok(t)
}

fn pack(v: &Value, out: &mut Vec<u8>, depth: usize) -> mlua::Result<()> {
    match v {
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => int(*i as i64, out),
        Value::Number(n) => {
            if n.is_finite() && *n == (*n as i64) as f64 {
                int(*n as i64, out);
            } else if (*n as f32) as f64 == *n || n.is_nan() {
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
                    pack(&t.raw_get::<Value>(i)?, out, depth + 1)?;
                }
            }
            None => {
                let pairs: Vec<(Value, Value)> = t.clone().pairs::<Value, Value>().collect::<mlua::Result<_>>()?;
                header(pairs.len(), 0x80, 0xde, out);
                for (k, v) in &pairs {
                    pack(k, out, depth + 1)?;
                    pack(v, out, depth + 1)?;
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

fn take<'a>(b: &'a [u8], at: &mut usize, n: usize) -> mlua::Result<&'a [u8]> {
    if b.len() - *at < n {
        return Err(mlua::Error::runtime("Missing bytes in input."));
    }
    *at += n;
    Ok(&b[*at - n..*at])
}

fn be(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64)
}

fn unpack(lua: &Lua, b: &[u8], at: &mut usize) -> mlua::Result<Value> {
    let c = take(b, at, 1)?[0];
    let str_of = |n: usize, at: &mut usize| -> mlua::Result<Value> { Ok(Value::String(lua.create_string(take(b, at, n)?)?)) };
    Ok(match c {
        0x00..=0x7f => Value::Number(c as f64),
        0xe0..=0xff => Value::Number(c as i8 as f64),
        0x80..=0x8f => map(lua, b, at, (c & 0x0f) as usize)?,
        0x90..=0x9f => array(lua, b, at, (c & 0x0f) as usize)?,
        0xa0..=0xbf => str_of((c & 0x1f) as usize, at)?,
        0xc0 => Value::Nil,
        0xc2 => Value::Boolean(false),
        0xc3 => Value::Boolean(true),
        0xc4 | 0xd9 => {
            let n = take(b, at, 1)?[0] as usize;
            str_of(n, at)?
        }
        0xc5 | 0xda => {
            let n = be(take(b, at, 2)?) as usize;
            str_of(n, at)?
        }
        0xc6 | 0xdb => {
            let n = be(take(b, at, 4)?) as usize;
            str_of(n, at)?
        }
        0xca => Value::Number(f32::from_be_bytes(take(b, at, 4)?.try_into().expect("4 bytes")) as f64),
        0xcb => Value::Number(f64::from_be_bytes(take(b, at, 8)?.try_into().expect("8 bytes"))),
        0xcc => Value::Number(be(take(b, at, 1)?) as f64),
        0xcd => Value::Number(be(take(b, at, 2)?) as f64),
        0xce => Value::Number(be(take(b, at, 4)?) as f64),
        0xcf => Value::Number(be(take(b, at, 8)?) as f64),
        0xd0 => Value::Number(take(b, at, 1)?[0] as i8 as f64),
        0xd1 => Value::Number(be(take(b, at, 2)?) as u16 as i16 as f64),
        0xd2 => Value::Number(be(take(b, at, 4)?) as u32 as i32 as f64),
        0xd3 => Value::Number(be(take(b, at, 8)?) as i64 as f64),
        0xdc => {
            let n = be(take(b, at, 2)?) as usize;
            array(lua, b, at, n)?
        }
        0xdd => {
            let n = be(take(b, at, 4)?) as usize;
            array(lua, b, at, n)?
        }
        0xde => {
            let n = be(take(b, at, 2)?) as usize;
            map(lua, b, at, n)?
        }
        0xdf => {
            let n = be(take(b, at, 4)?) as usize;
            map(lua, b, at, n)?
        }
        _ => return Err(mlua::Error::runtime("Bad data format in input.")),
    })
}

fn array(lua: &Lua, b: &[u8], at: &mut usize, n: usize) -> mlua::Result<Value> {
    // Each element takes at least one byte: a bad count cannot allocate much.
    let t = lua.create_table_with_capacity(n.min(b.len() - *at), 0)?;
    for i in 1..=n {
        t.raw_set(i, unpack(lua, b, at)?)?;
    }
    Ok(Value::Table(t))
}

fn map(lua: &Lua, b: &[u8], at: &mut usize, n: usize) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    for _ in 0..n {
        let k = unpack(lua, b, at)?;
        let v = unpack(lua, b, at)?;
        if k != Value::Nil {
            t.raw_set(k, v)?;
        }
    }
    Ok(Value::Table(t))
}
