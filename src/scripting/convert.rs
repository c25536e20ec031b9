//! Redis' conversions between Lua values and RESP (script_lua.c): a command's
//! reply becomes a Lua value for `redis.call`, and a script's return value
//! becomes the client's reply.

use mlua::{Lua, Table, Value};

use super::{ST_ERR, ST_OK};
use crate::resp::Reply;

/// A number as C's "%.<digits>g": Redis passes numbers to commands with 17
/// digits, cjson encodes them with 14 (as Lua prints them).
pub fn fmt_number(n: f64, digits: i32) -> String {
    let mut buf = [0u8; 64];
    String::from_utf8_lossy(fmt_g(n, digits, &mut buf)).into_owned()
}

/// `fmt_number` into a caller's buffer, for paths that should not allocate.
pub fn fmt_g(n: f64, digits: i32, buf: &mut [u8; 64]) -> &[u8] {
    // SAFETY: the buffer is large enough for any %.*g output of a double with
    // at most 17 digits, and the format string is NUL-terminated; snprintf
    // never writes past the given size.
    let len = unsafe {
        libc::snprintf(
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
            c"%.*g".as_ptr(),
            digits,
            n,
        )
    };
    &buf[..(len.max(0) as usize).min(buf.len() - 1)]
}

/// C's `(long long)` cast of a double as x86-64 does it (cvttsd2si): a
/// number out of the i64 range, or NaN, gives i64::MIN, where Rust's `as`
/// saturates. Redis converts a script's numbers to integer replies so.
pub fn c_i64(n: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if (-LIMIT..LIMIT).contains(&n) {
        n as i64
    } else {
        i64::MIN
    }
}

/// Converts one encoded reply to a Lua value, with the status code the
/// prelude's `redis.call` expects (errors become `{err=...}` tables).
pub fn reply_to_lua(lua: &Lua, reply: &[u8]) -> mlua::Result<(i64, Value)> {
    let mut at = 0;
    let status = if reply.first() == Some(&b'-') {
        ST_ERR
    } else {
        ST_OK
    };
    let v = parse(lua, reply, &mut at)?;
    Ok((status, v))
}

fn line<'a>(buf: &'a [u8], at: &mut usize) -> mlua::Result<&'a [u8]> {
    let rest = &buf[*at..];
    let end = rest
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or_else(|| mlua::Error::runtime("truncated reply"))?;
    *at += end + 2;
    Ok(&rest[..end])
}

fn int_of(b: &[u8]) -> mlua::Result<i64> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| mlua::Error::runtime("bad reply length"))
}

fn tagged(lua: &Lua, tag: &str, v: impl mlua::IntoLua) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(tag, v)?;
    Ok(Value::Table(t))
}

fn parse(lua: &Lua, buf: &[u8], at: &mut usize) -> mlua::Result<Value> {
    let kind = *buf
        .get(*at)
        .ok_or_else(|| mlua::Error::runtime("truncated reply"))?;
    *at += 1;
    let head = line(buf, at)?;
    Ok(match kind {
        b'+' => tagged(lua, "ok", lua.create_string(head)?)?,
        b'-' => {
            let t = lua.create_table()?;
            t.raw_set("err", lua.create_string(head)?)?;
            // Counted when the command replied (Redis marks the table so).
            t.raw_set(NOT_COUNTED, true)?;
            Value::Table(t)
        }
        b':' => Value::Number(int_of(head)? as f64),
        b'$' | b'=' => {
            let n = int_of(head)?;
            if n < 0 {
                return Ok(Value::Boolean(false));
            }
            let data = &buf[*at..*at + n as usize];
            *at += n as usize + 2;
            if kind == b'=' {
                let t = lua.create_table()?;
                t.raw_set("format", lua.create_string(&data[..3.min(data.len())])?)?;
                t.raw_set("string", lua.create_string(data.get(4..).unwrap_or(&[]))?)?;
                tagged(lua, "verbatim_string", t)?
            } else {
                Value::String(lua.create_string(data)?)
            }
        }
        b'*' => {
            let n = int_of(head)?;
            if n < 0 {
                return Ok(Value::Boolean(false));
            }
            let t = lua.create_table()?;
            for i in 1..=n {
                t.raw_set(i, parse(lua, buf, at)?)?;
            }
            Value::Table(t)
        }
        b'%' | b'~' => {
            let n = int_of(head)?;
            let t = lua.create_table()?;
            for _ in 0..n {
                let k = parse(lua, buf, at)?;
                let v = if kind == b'%' {
                    parse(lua, buf, at)?
                } else {
                    Value::Boolean(true)
                };
                t.raw_set(k, v)?;
            }
            tagged(lua, if kind == b'%' { "map" } else { "set" }, t)?
        }
        b'_' => Value::Nil,
        b'#' => Value::Boolean(head == b"t"),
        b',' => {
            let d: f64 = std::str::from_utf8(head)
                .ok()
                .and_then(|s| crate::util::parse_f64(s.as_bytes()))
                .unwrap_or(0.0);
            tagged(lua, "double", d)?
        }
        b'(' => tagged(lua, "big_number", lua.create_string(head)?)?,
        _ => return Err(mlua::Error::runtime("unknown reply type")),
    })
}

/// The field of an error table that says INFO errorstats counted the error
/// already (a command's error reply, a call the script checks refused): a
/// script that returns or raises it replies it uncounted, as Redis 7.0's
/// `ignore_error_stats_update`, which scripts can see and set too.
pub const NOT_COUNTED: &str = "ignore_error_stats_update";

/// Whether an error table carries `NOT_COUNTED` = true.
pub fn not_counted(t: &Table) -> bool {
    matches!(t.raw_get::<Value>(NOT_COUNTED), Ok(Value::Boolean(true)))
}

/// Nesting deeper than this (a table that contains itself) is cut with an error.
const MAX_DEPTH: usize = 256;

/// Writes a script's return value as the client's reply. `resp3` is the
/// script's `redis.setresp` choice (Redis' lua client protocol).
pub fn lua_to_reply(v: &Value, r: &mut Reply, resp3: bool, depth: usize) {
    if depth > MAX_DEPTH {
        return r.error("ERR reached lua stack limit");
    }
    match v {
        Value::String(s) => r.bulk(&s.as_bytes()),
        Value::Boolean(b) if !resp3 => {
            if *b {
                r.int(1)
            } else {
                r.null()
            }
        }
        Value::Boolean(b) => r.boolean(*b),
        Value::Number(n) => r.int(c_i64(*n)),
        Value::Integer(n) => r.int(*n as i64),
        Value::Table(t) => table_to_reply(t, r, resp3, depth),
        _ => r.null(),
    }
}

fn table_to_reply(t: &Table, r: &mut Reply, resp3: bool, depth: usize) {
    if let Ok(Value::String(e)) = t.raw_get::<Value>("err") {
        if not_counted(t) {
            return r.error_uncounted(&e.to_string_lossy());
        }
        return r.error(&e.to_string_lossy());
    }
    if let Ok(Value::String(s)) = t.raw_get::<Value>("ok") {
        let s = s.to_string_lossy().replace(['\r', '\n'], " ");
        return r.simple(&s);
    }
    match t.raw_get::<Value>("double") {
        Ok(Value::Number(d)) => return double(r, d),
        Ok(Value::Integer(d)) => return r.double(d as f64),
        _ => {}
    }
    if let Ok(Value::String(s)) = t.raw_get::<Value>("big_number") {
        let s = s.to_string_lossy().replace(['\r', '\n'], " ");
        if r.is_resp3() {
            r.raw(format!("({}\r\n", s).as_bytes());
        } else {
            r.bulk(s.as_bytes());
        }
        return;
    }
    if let Ok(Value::Table(v)) = t.raw_get::<Value>("verbatim_string") {
        if let (Ok(Value::String(format)), Ok(Value::String(text))) =
            (v.raw_get::<Value>("format"), v.raw_get::<Value>("string"))
        {
            return verbatim(r, &format.as_bytes(), &text.as_bytes());
        }
    }
    if let Ok(Value::Table(m)) = t.raw_get::<Value>("map") {
        let pairs: Vec<(Value, Value)> = m.pairs::<Value, Value>().filter_map(Result::ok).collect();
        r.map(pairs.len());
        for (k, v) in &pairs {
            lua_to_reply(k, r, resp3, depth + 1);
            lua_to_reply(v, r, resp3, depth + 1);
        }
        return;
    }
    if let Ok(Value::Table(m)) = t.raw_get::<Value>("set") {
        let members: Vec<Value> = m
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, _)| k)
            .collect();
        r.set(members.len());
        for k in &members {
            lua_to_reply(k, r, resp3, depth + 1);
        }
        return;
    }
    // An array: up to the first nil.
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(v),
        }
    }
    r.array(items.len());
    for v in &items {
        lua_to_reply(v, r, resp3, depth + 1);
    }
}

/// Redis' addReplyVerbatim: RESP2 gets the text as a bulk string, RESP3 a
/// `=` reply whose three-byte format is the first bytes of `format` (a C
/// string: a shorter one is padded with its NUL).
fn verbatim(r: &mut Reply, format: &[u8], text: &[u8]) {
    if !r.is_resp3() {
        return r.bulk(text);
    }
    let mut ext = [0u8; 3];
    for (d, s) in ext.iter_mut().zip(format) {
        *d = *s;
    }
    r.raw(format!("={}\r\n", text.len() + 4).as_bytes());
    r.raw(&ext);
    r.raw(b":");
    r.raw(text);
    r.raw(b"\r\n");
}

/// Redis' addReplyDouble: "%.17g", which writes a NaN with its sign ("-nan"
/// for 0/0 on x86), where `Reply::double` writes "nan".
fn double(r: &mut Reply, d: f64) {
    if !d.is_nan() {
        return r.double(d);
    }
    let mut buf = [0u8; 64];
    let s = fmt_g(d, 17, &mut buf);
    if r.is_resp3() {
        r.raw(b",");
        r.raw(s);
        r.raw(b"\r\n");
    } else {
        r.bulk(s);
    }
}
