//! The libraries Redis gives scripts beyond Lua's own, written in Rust as
//! mlua's vendored Lua 5.1 has none of them: `bit` (LuaBitOp) here, `cjson`,
//! `cmsgpack` and `struct` in their own modules.

use mlua::{Function, Lua, MultiValue, Table, Value};

/// A library function's Rust half: given the name it was called by (for
/// luaL_argerror's messages) and its arguments, its results or the message
/// to raise (luaL_error's, with the caller's position).
pub(super) type Out = Result<MultiValue, String>;

/// An error a library function raises.
pub(super) enum Raise {
    /// luaL_error's: the message after the calling script's position.
    At(String),
    /// An error of the Lua core inside the C function ("table index is
    /// nil"): the message alone.
    Plain(String),
}

impl From<String> for Raise {
    fn from(m: String) -> Raise {
        Raise::At(m)
    }
}

/// A library function as Redis' C libraries have it: a C function (so a
/// script's frame stays on the stack even for `return cjson.encode(x)`)
/// that calls the Rust half `f` and raises its message with the caller's
/// position (luaL_error's `luaL_where(L, 1)`), as a plain string that
/// `pcall` returns as is.
pub(super) fn c_function<E: Into<Raise>>(
    lua: &Lua,
    f: impl Fn(&Lua, &str, MultiValue) -> Result<MultiValue, E> + 'static,
) -> mlua::Result<Function> {
    let half = lua.create_function(move |lua, mut args: MultiValue| {
        let name = match args.pop_front() {
            Some(Value::String(s)) => s.to_string_lossy(),
            _ => "?".to_string(),
        };
        Ok(match f(lua, &name, args) {
            Ok(mut values) => {
                values.push_front(Value::Boolean(true));
                values
            }
            Err(e) => {
                let (at, msg) = match e.into() {
                    Raise::At(m) => (Value::Boolean(false), m),
                    Raise::Plain(m) => (Value::Nil, m),
                };
                MultiValue::from_vec(vec![at, Value::String(lua.create_string(&msg)?)])
            }
        })
    })?;
    // SAFETY: pushes a C closure over the Rust half, its one upvalue.
    unsafe {
        lua.exec_raw(half, |l| mlua::ffi::lua_pushcclosure(l, trampoline, 1))
    }
}

/// The C half of `c_function`: calls the Rust half (upvalue 1) with the
/// name the function was called by ("?" when unknown) and the arguments;
/// it returns `true, values...`, or `false, message` to raise with the
/// caller's position, or `nil, message` to raise as it is.
unsafe extern "C-unwind" fn trampoline(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    let n = ffi::lua_gettop(l);
    let mut ar: ffi::lua_Debug = std::mem::zeroed();
    let named = ffi::lua_getstack(l, 0, &mut ar) != 0
        && ffi::lua_getinfo(l, c"n".as_ptr(), &mut ar) != 0
        && !ar.name.is_null();
    ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
    ffi::lua_insert(l, 1);
    if named {
        ffi::lua_pushstring(l, ar.name);
    } else {
        ffi::lua_pushnil(l);
    }
    ffi::lua_insert(l, 2);
    ffi::lua_call(l, n + 1, ffi::LUA_MULTRET);
    if ffi::lua_toboolean(l, 1) == 0 {
        if ffi::lua_isnil(l, 1) != 0 {
            ffi::lua_pushvalue(l, 2);
        } else {
            ffi::luaL_where(l, 1);
            ffi::lua_pushvalue(l, 2);
            ffi::lua_concat(l, 2);
        }
        ffi::lua_error(l);
    }
    ffi::lua_remove(l, 1);
    ffi::lua_gettop(l)
}

/// luaL_argerror's message.
pub(super) fn argerror(n: usize, f: &str, msg: &str) -> String {
    format!("bad argument #{} to '{}' ({})", n, f, msg)
}

/// luaL_typename, with "no value" past the arguments given.
pub(super) fn typename(v: Option<&Value>) -> &'static str {
    match v {
        None => "no value",
        Some(Value::Nil) => "nil",
        Some(Value::Boolean(_)) => "boolean",
        Some(Value::Number(_) | Value::Integer(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Table(_)) => "table",
        Some(Value::Function(_)) => "function",
        Some(Value::Thread(_)) => "thread",
        Some(_) => "userdata",
    }
}

/// luaL_checklstring of argument `n` (1-based): strings, and numbers as
/// Lua prints them.
pub(super) fn checkstring(args: &MultiValue, n: usize, f: &str, absent: &str) -> Result<Vec<u8>, String> {
    let v = args.get(n - 1);
    match v {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(Value::Number(x)) => Ok(super::convert::fmt_number(*x, 14).into_bytes()),
        Some(Value::Integer(x)) => Ok(x.to_string().into_bytes()),
        _ => {
            let got = if v.is_none() { absent } else { typename(v) };
            Err(argerror(n, f, &format!("string expected, got {}", got)))
        }
    }
}

/// luaL_checkinteger of argument `n` as the C int the libraries keep:
/// numbers (truncated) and numeric strings.
pub(super) fn checkint(args: &MultiValue, n: usize, f: &str) -> Result<i32, String> {
    let v = args.get(n - 1);
    let num = match v {
        Some(Value::Number(x)) => Some(super::convert::c_i64(*x)),
        Some(Value::Integer(x)) => Some(*x),
        Some(Value::String(s)) => super::structlib::parse_lua_number(&s.as_bytes()).map(super::convert::c_i64),
        _ => None,
    };
    match num {
        Some(i) => Ok(i as i32),
        None => Err(argerror(n, f, &format!("number expected, got {}", typename(v)))),
    }
}

/// Registers the libraries as globals of a fresh state.
pub fn register(lua: &Lua) -> mlua::Result<()> {
    lua.globals().raw_set("bit", bit(lua)?)?;
    lua.globals()
        .raw_set("cjson", super::cjson::library(lua)?)?;
    lua.globals().raw_set("cmsgpack", super::cmsgpack::library(lua)?)?;
    lua.globals().raw_set("struct", super::structlib::library(lua)?)?;
    Ok(())
}

/// A value read from table `t` at `k`, with its number exact: mlua's Value
/// turns a Lua 5.1 number within f64::EPSILON of zero (and -0.0) into
/// Integer(0), so such a number is read again as a double.
pub(super) fn exact(t: &Table, k: Value, v: Value) -> mlua::Result<Value> {
    match v {
        Value::Integer(0) => Ok(Value::Number(t.raw_get::<f64>(k)?)),
        v => Ok(v),
    }
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
