//! The `struct` library Redis gives scripts (deps/lua/src/lua_struct.c,
//! Roberto Ierusalimschy's struct 0.2): `struct.pack`, `struct.unpack` and
//! `struct.size` over formats such as `>I2`, `<!4ih`, `c0`, `s`.
//!
//! Options: `>`/`<` big/little endian (default: native, little here), `!n`
//! maximum alignment (default 1, `!` alone 8), `x` a zero byte, `b B h H l L
//! T i I [n]` integers (lowercase signed; `n` bytes for `i`/`I`, up to 32),
//! `f d` floats, `c[n]` n chars (`c0`: the whole string when packing, the
//! length from the previous result when unpacking), `s` a zero-terminated
//! string. Numbers are Lua's doubles, so integers round-trip up to 2^53.
//!
//! Errors carry the position of the calling script line, as luaL_error
//! does in Redis: the functions are C functions (so a script's frame stays
//! on the stack even for `return struct.pack(...)`), which call the Rust
//! halves and raise the error they report.

use mlua::{Lua, MultiValue, Value};

use super::libs::{argerror, c_function, checkstring, typename, Out};

const MAXINTSIZE: usize = 32;
const MAXALIGN: usize = 8;

struct Header {
    big: bool,
    align: usize,
}

impl Header {
    fn new() -> Header {
        Header {
            big: false,
            align: 1,
        }
    }
}

/// Reads the digits at `fmt[*i..]`, or returns `df` if there are none.
fn getnum(fmt: &[u8], i: &mut usize, df: usize) -> Result<usize, String> {
    if !fmt.get(*i).is_some_and(u8::is_ascii_digit) {
        return Ok(df);
    }
    let mut a: i32 = 0;
    while let Some(&d) = fmt.get(*i).filter(|d| d.is_ascii_digit()) {
        let d = (d - b'0') as i32;
        if a > i32::MAX / 10 || a * 10 > i32::MAX - d {
            return Err("integral size overflow".into());
        }
        a = a * 10 + d;
        *i += 1;
    }
    Ok(a as usize)
}

fn optsize(opt: u8, fmt: &[u8], i: &mut usize) -> Result<usize, String> {
    Ok(match opt {
        b'B' | b'b' => 1,
        b'H' | b'h' => 2,
        b'L' | b'l' | b'T' => 8,
        b'f' => 4,
        b'd' => 8,
        b'x' => 1,
        b'c' => getnum(fmt, i, 1)?,
        b'i' | b'I' => {
            let sz = getnum(fmt, i, 4)?;
            if sz > MAXINTSIZE {
                return Err(format!(
                    "integral size {} is larger than limit of {}",
                    sz, MAXINTSIZE
                ));
            }
            sz
        }
        _ => 0,
    })
}

fn gettoalign(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    (size - (len & (size - 1))) & (size - 1)
}

fn controloptions(opt: u8, fmt: &[u8], i: &mut usize, h: &mut Header, f: &str) -> Result<(), String> {
    match opt {
        b' ' => {}
        b'>' => h.big = true,
        b'<' => h.big = false,
        b'!' => {
            let a = getnum(fmt, i, MAXALIGN)?;
            if !a.is_power_of_two() {
                return Err(format!("alignment {} is not a power of 2", a));
            }
            h.align = a;
        }
        _ => {
            return Err(argerror(
                1,
                f,
                &format!("invalid format option '{}'", opt as char),
            ))
        }
    }
    Ok(())
}

/// luaL_checknumber of argument `n` (1-based): numbers and numeric strings.
fn checknumber(args: &MultiValue, n: usize, f: &str, absent: &str) -> Result<f64, String> {
    let v = args.get(n - 1);
    let num = match v {
        Some(Value::Number(x)) => Some(*x),
        Some(Value::Integer(x)) => Some(*x as f64),
        Some(Value::String(s)) => parse_lua_number(&s.as_bytes()),
        _ => None,
    };
    num.ok_or_else(|| {
        let got = if v.is_none() { absent } else { typename(v) };
        argerror(n, f, &format!("number expected, got {}", got))
    })
}

/// Lua 5.1's string-to-number coercion (lua_str2number: strtod, or hex).
pub(super) fn parse_lua_number(s: &[u8]) -> Option<f64> {
    let t = std::str::from_utf8(s).ok()?.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok().map(|v| v as f64);
    }
    if t.is_empty() || t.eq_ignore_ascii_case("inf") || t.eq_ignore_ascii_case("nan") {
        return None;
    }
    t.parse::<f64>().ok()
}

fn pack(lua: &Lua, f: &str, args: &MultiValue) -> Out {
    let fmt = checkstring(args, 1, f, "no value")?;
    let mut h = Header::new();
    let mut out: Vec<u8> = Vec::new();
    let mut arg = 2;
    let mut i = 0;
    // Redis' b_pack pushes a nil before reading the values: a missing one
    // is reported as nil.
    let absent = "nil";
    while i < fmt.len() {
        let opt = fmt[i];
        i += 1;
        let mut size = optsize(opt, &fmt, &mut i)?;
        let toalign = gettoalign(out.len(), &h, opt, size);
        out.resize(out.len() + toalign, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = checknumber(args, arg, f, absent)?;
                arg += 1;
                let mut value = if n < 0.0 { n as i64 as u64 } else { n as u64 };
                let mut buf = [0u8; MAXINTSIZE];
                for k in 0..size {
                    let at = if h.big { size - 1 - k } else { k };
                    buf[at] = value as u8;
                    value >>= 8;
                }
                out.extend_from_slice(&buf[..size]);
            }
            b'x' => out.push(0),
            b'f' => {
                let n = checknumber(args, arg, f, absent)? as f32;
                arg += 1;
                out.extend_from_slice(&if h.big { n.to_be_bytes() } else { n.to_le_bytes() });
            }
            b'd' => {
                let n = checknumber(args, arg, f, absent)?;
                arg += 1;
                out.extend_from_slice(&if h.big { n.to_be_bytes() } else { n.to_le_bytes() });
            }
            b'c' | b's' => {
                let s = checkstring(args, arg, f, absent)?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    return Err(argerror(arg, f, "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => controloptions(opt, &fmt, &mut i, &mut h, f)?,
        }
    }
    let s = lua.create_string(&out).map_err(|e| e.to_string())?;
    Ok(MultiValue::from_vec(vec![Value::String(s)]))
}

fn getinteger(buf: &[u8], big: bool, signed: bool) -> f64 {
    let mut l: u64 = 0;
    let size = buf.len();
    for k in 0..size {
        let b = if big { buf[k] } else { buf[size - 1 - k] };
        l = (l << 8) | b as u64;
    }
    if !signed {
        return l as f64;
    }
    // The C code's shift, whose count x86 takes modulo 64.
    let mask = u64::MAX << ((size * 8 - 1) & 63);
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

fn unpack(lua: &Lua, f: &str, args: &MultiValue) -> Out {
    let fmt = checkstring(args, 1, f, "no value")?;
    let data = checkstring(args, 2, f, "no value")?;
    let ld = data.len();
    let start = match args.get(2) {
        None | Some(Value::Nil) => 1,
        _ => checknumber(args, 3, f, "no value")? as i64,
    };
    if start < 1 {
        return Err(argerror(3, f, "offset must be 1 or greater"));
    }
    let mut pos = (start - 1) as usize;
    let mut h = Header::new();
    let mut out: Vec<Value> = Vec::new();
    let mut i = 0;
    while i < fmt.len() {
        let opt = fmt[i];
        i += 1;
        let mut size = optsize(opt, &fmt, &mut i)?;
        pos += gettoalign(pos, &h, opt, size);
        let short = || argerror(2, f, "data string too short");
        if size > ld || pos > ld - size {
            return Err(short());
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let signed = opt.is_ascii_lowercase();
                out.push(Value::Number(getinteger(&data[pos..pos + size], h.big, signed)));
            }
            b'x' => {}
            b'f' => {
                let b: [u8; 4] = data[pos..pos + 4].try_into().expect("4 bytes");
                let v = if h.big { f32::from_be_bytes(b) } else { f32::from_le_bytes(b) };
                out.push(Value::Number(v as f64));
            }
            b'd' => {
                let b: [u8; 8] = data[pos..pos + 8].try_into().expect("8 bytes");
                let v = if h.big { f64::from_be_bytes(b) } else { f64::from_le_bytes(b) };
                out.push(Value::Number(v));
            }
            b'c' => {
                if size == 0 {
                    let prev = match out.last() {
                        Some(Value::Number(n)) => *n,
                        Some(Value::String(s)) => parse_lua_number(&s.as_bytes())
                            .ok_or("format 'c0' needs a previous size")?,
                        _ => return Err("format 'c0' needs a previous size".into()),
                    };
                    out.pop();
                    size = prev as usize;
                    if size > ld || pos > ld - size {
                        return Err(short());
                    }
                }
                let s = lua.create_string(&data[pos..pos + size]).map_err(|e| e.to_string())?;
                out.push(Value::String(s));
            }
            b's' => {
                let Some(end) = data[pos..].iter().position(|&b| b == 0) else {
                    return Err("unfinished string in data".into());
                };
                size = end + 1;
                let s = lua.create_string(&data[pos..pos + end]).map_err(|e| e.to_string())?;
                out.push(Value::String(s));
            }
            _ => controloptions(opt, &fmt, &mut i, &mut h, f)?,
        }
        pos += size;
    }
    out.push(Value::Number((pos + 1) as f64));
    Ok(MultiValue::from_vec(out))
}

fn size(_: &Lua, f: &str, args: &MultiValue) -> Out {
    let fmt = checkstring(args, 1, f, "no value")?;
    let mut h = Header::new();
    let mut pos = 0usize;
    let mut i = 0;
    while i < fmt.len() {
        let opt = fmt[i];
        i += 1;
        let size = optsize(opt, &fmt, &mut i)?;
        pos += gettoalign(pos, &h, opt, size);
        if opt == b's' {
            return Err(argerror(1, f, "option 's' has no fixed size"));
        } else if opt == b'c' && size == 0 {
            return Err(argerror(1, f, "option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            controloptions(opt, &fmt, &mut i, &mut h, f)?;
        }
        pos += size;
    }
    Ok(MultiValue::from_vec(vec![Value::Number(pos as f64)]))
}

/// The `struct` table.
pub fn library(lua: &Lua) -> mlua::Result<mlua::Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", c_function(lua, |lua, f, args| pack(lua, f, &args))?)?;
    t.raw_set("unpack", c_function(lua, |lua, f, args| unpack(lua, f, &args))?)?;
    t.raw_set("size", c_function(lua, |lua, f, args| size(lua, f, &args))?)?;
    Ok(t)
}
