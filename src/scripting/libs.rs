//! The libraries Redis gives scripts beyond Lua's own, written in Rust as
//! mlua's vendored Lua 5.1 has none of them: `bit` (LuaBitOp) here, `cjson`,
//! `cmsgpack` and `struct` in their own modules.

use mlua::{Lua, MultiValue, Table, Value};

/// Registers the libraries as globals of a fresh state.
pub fn register(lua: &Lua) -> mlua::Result<()> {
    lua.globals().raw_set("bit", bit(lua)?)?;
    lua.globals()
        .raw_set("cjson", super::cjson::library(lua)?)?;
    lua.globals().raw_set("cmsgpack", super::cmsgpack::library(lua)?)?;
    lua.globals().raw_set("struct", super::structlib::library(lua)?)?;
    Ok(())
}

/// For the encoders' "is this table an array" tests: the largest key and the
/// number of keys when every key is a positive integer, None otherwise.
pub(super) fn positive_integer_keys(t: &Table) -> mlua::Result<Option<(usize, usize)>> {
    let (mut max, mut count) = (0usize, 0usize);
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair?;
        let n = match k {
            Value::Number(n) if n >= 1.0 && n.floor() == n => n as usize,
            Value::Integer(n) if n >= 1 => n as usize,
            _ => return Ok(None),
        };
        max = max.max(n);
        count += 1;
    }
    Ok(Some((max, count)))
}

/// LuaBitOp's argument conversion: a number to a 32-bit integer, modulo 2^32,
/// rounding to nearest as its FPU trick does.
fn tobit(v: &Value) -> mlua::Result<i32> {
    let n = match v {
        Value::Number(n) => *n,
        Value::Integer(i) => *i as f64,
        Value::String(s) => s
            .to_str()?
            .trim()
            .parse::<f64>()
            .map_err(|_| mlua::Error::runtime("bad argument (number expected)"))?,
        _ => return Err(mlua::Error::runtime("bad argument (number expected)")),
    };
    Ok(n.round_ties_even().rem_euclid(4294967296.0) as u32 as i32)
}

fn arg(args: &MultiValue, i: usize) -> mlua::Result<i32> {
    tobit(args.get(i).unwrap_or(&Value::Nil))
}

fn bit(lua: &Lua) -> mlua::Result<mlua::Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "tobit",
        lua.create_function(|_, a: MultiValue| Ok(arg(&a, 0)? as f64))?,
    )?;
    t.raw_set(
        "bnot",
        lua.create_function(|_, a: MultiValue| Ok(!arg(&a, 0)? as f64))?,
    )?;
    let fold = |lua: &Lua, f: fn(i32, i32) -> i32| {
        lua.create_function(move |_, a: MultiValue| {
            let mut acc = arg(&a, 0)?;
            for i in 1..a.len() {
                acc = f(acc, arg(&a, i)?);
            }
            Ok(acc as f64)
        })
    };
    t.raw_set("band", fold(lua, |x, y| x & y)?)?;
    t.raw_set("bor", fold(lua, |x, y| x | y)?)?;
    t.raw_set("bxor", fold(lua, |x, y| x ^ y)?)?;
    let shift = |lua: &Lua, f: fn(i32, u32) -> i32| {
        lua.create_function(move |_, a: MultiValue| {
            Ok(f(arg(&a, 0)?, arg(&a, 1)? as u32 & 31) as f64)
        })
    };
    t.raw_set("lshift", shift(lua, |x, n| ((x as u32) << n) as i32)?)?;
    t.raw_set("rshift", shift(lua, |x, n| ((x as u32) >> n) as i32)?)?;
    t.raw_set("arshift", shift(lua, |x, n| x >> n)?)?;
    t.raw_set("rol", shift(lua, |x, n| (x as u32).rotate_left(n) as i32)?)?;
    t.raw_set("ror", shift(lua, |x, n| (x as u32).rotate_right(n) as i32)?)?;
    t.raw_set(
        "bswap",
        lua.create_function(|_, a: MultiValue| Ok(arg(&a, 0)?.swap_bytes() as f64))?,
    )?;
    t.raw_set(
        "tohex",
        lua.create_function(|_, a: MultiValue| {
            let x = arg(&a, 0)? as u32;
            let n = if a.len() > 1 { arg(&a, 1)? } else { 8 };
            let (upper, n) = (n < 0, n.unsigned_abs().min(8) as usize);
            let s = if upper {
                format!("{:08X}", x)
            } else {
                format!("{:08x}", x)
            };
            Ok(s[8 - n..].to_string())
        })?,
    )?;
    Ok(t)
}
