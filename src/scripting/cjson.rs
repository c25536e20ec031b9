//! `cjson` for scripts: lua-cjson 2.1.0 as Redis ships it. Numbers are
//! written with "%.14g" (`encode_number_precision`), "/" is escaped, an
//! empty table is an object, arrays may have holes up to the sparse ratio,
//! `cjson.null` is a NULL light userdata; decoding reads numbers with C's
//! strtod (so hex, NaN and Infinity are accepted unless
//! `decode_invalid_numbers(false)`) and stops at a NUL byte, as the C code
//! reads a C string. The settings belong to a module table and last as long
//! as the Lua state; `cjson.new()` makes a table with settings of its own.

use std::cell::Cell;
use std::rc::Rc;

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

use super::convert::fmt_g;
use super::libs::{argerror, c_function, checkint, checkstring, exact, typename, Out};

/// The settings of one module table (json_config_t).
#[derive(Clone, Copy)]
struct Config {
    sparse_convert: i32,
    sparse_ratio: i32,
    sparse_safe: i32,
    encode_max_depth: i32,
    decode_max_depth: i32,
    /// 0: refuse NaN and Inf, 1: write them ("nan", "inf"), 2: write null.
    encode_invalid_numbers: i32,
    encode_number_precision: i32,
    /// Only reported: kvick builds every result in a fresh buffer.
    encode_keep_buffer: i32,
    decode_invalid_numbers: i32,
}

const DEFAULTS: Config = Config {
    sparse_convert: 0,
    sparse_ratio: 2,
    sparse_safe: 10,
    encode_max_depth: 1000,
    decode_max_depth: 1000,
    encode_invalid_numbers: 0,
    encode_number_precision: 14,
    encode_keep_buffer: 1,
    decode_invalid_numbers: 1,
};

type Cfg = Rc<Cell<Config>>;

/// The settings of the global `cjson` table, in the state's app data.
struct GlobalCfg(Cfg);

/// The global `cjson` table.
pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let (t, cfg) = module(lua)?;
    lua.set_app_data(GlobalCfg(cfg));
    Ok(t)
}

/// SCRIPT FLUSH: Redis starts a new Lua state, so the global table's
/// settings are the defaults again.
pub fn reset(lua: &Lua) {
    if let Some(g) = lua.app_data_ref::<GlobalCfg>() {
        g.0.set(DEFAULTS);
    }
}

/// A fresh module table (lua_cjson_new) and its settings.
fn module(lua: &Lua) -> mlua::Result<(Table, Cfg)> {
    let cfg: Cfg = Rc::new(Cell::new(DEFAULTS));
    let t = lua.create_table()?;
    let c = cfg.clone();
    t.raw_set(
        "encode",
        c_function(lua, move |lua, f, args| -> Out {
            if args.len() != 1 {
                return Err(argerror(1, f, "expected 1 argument"));
            }
            let mut out = Vec::new();
            encode(&c.get(), &args[0], &mut out, 0)?;
            let s = lua.create_string(&out).map_err(|e| e.to_string())?;
            Ok(MultiValue::from_vec(vec![Value::String(s)]))
        })?,
    )?;
    let c = cfg.clone();
    t.raw_set(
        "decode",
        c_function(lua, move |lua, f, args| -> Out {
            if args.len() != 1 {
                return Err(argerror(1, f, "expected 1 argument"));
            }
            let mut text = checkstring(&args, 1, f, "no value")?;
            if text.len() >= 2 && (text[0] == 0 || text[1] == 0) {
                return Err("JSON parser does not support UTF-16 or UTF-32".into());
            }
            // The C parser reads a NUL-terminated string.
            text.push(0);
            let mut p = Parser { s: &text, at: 0, lua, cfg: c.get(), depth: 0 };
            let v = p.document()?;
            Ok(MultiValue::from_vec(vec![v]))
        })?,
    )?;
    let setting = |get: fn(&Config) -> i32, set: fn(&mut Config, i32), min: i32, max: i32| {
        let c = cfg.clone();
        c_function(lua, move |_, f, args| -> Out {
            arg_init(&args, 1, f)?;
            let mut conf = c.get();
            let mut v = get(&conf);
            let out = integer_option(&args, 1, &mut v, min, max, f)?;
            set(&mut conf, v);
            c.set(conf);
            Ok(MultiValue::from_vec(vec![out]))
        })
    };
    t.raw_set(
        "encode_max_depth",
        setting(|c| c.encode_max_depth, |c, v| c.encode_max_depth = v, 1, i32::MAX)?,
    )?;
    t.raw_set(
        "decode_max_depth",
        setting(|c| c.decode_max_depth, |c, v| c.decode_max_depth = v, 1, i32::MAX)?,
    )?;
    t.raw_set(
        "encode_number_precision",
        setting(|c| c.encode_number_precision, |c, v| c.encode_number_precision = v, 1, 14)?,
    )?;
    let toggle = |get: fn(&Config) -> i32, set: fn(&mut Config, i32), options: &'static [&'static str]| {
        let c = cfg.clone();
        c_function(lua, move |lua, f, args| -> Out {
            arg_init(&args, 1, f)?;
            let mut conf = c.get();
            let mut v = get(&conf);
            let out = enum_option(lua, &args, 1, &mut v, options, f)?;
            set(&mut conf, v);
            c.set(conf);
            Ok(MultiValue::from_vec(vec![out]))
        })
    };
    t.raw_set(
        "encode_keep_buffer",
        toggle(|c| c.encode_keep_buffer, |c, v| c.encode_keep_buffer = v, OFF_ON)?,
    )?;
    t.raw_set(
        "encode_invalid_numbers",
        toggle(|c| c.encode_invalid_numbers, |c, v| c.encode_invalid_numbers = v, &["off", "on", "null"])?,
    )?;
    t.raw_set(
        "decode_invalid_numbers",
        toggle(|c| c.decode_invalid_numbers, |c, v| c.decode_invalid_numbers = v, OFF_ON)?,
    )?;
    let c = cfg.clone();
    t.raw_set(
        "encode_sparse_array",
        c_function(lua, move |lua, f, args| -> Out {
            arg_init(&args, 3, f)?;
            let mut conf = c.get();
            let convert = enum_option(lua, &args, 1, &mut conf.sparse_convert, OFF_ON, f)?;
            let ratio = integer_option(&args, 2, &mut conf.sparse_ratio, 0, i32::MAX, f)?;
            let safe = integer_option(&args, 3, &mut conf.sparse_safe, 0, i32::MAX, f)?;
            c.set(conf);
            Ok(MultiValue::from_vec(vec![convert, ratio, safe]))
        })?,
    )?;
    t.raw_set("new", lua.create_function(|lua, ()| Ok(module(lua)?.0))?)?;
    t.raw_set("null", Value::LightUserData(LightUserData(std::ptr::null_mut())))?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    Ok((t, cfg))
}

const OFF_ON: &[&str] = &["off", "on"];

/// json_arg_init: at most `n` arguments.
fn arg_init(args: &MultiValue, n: usize, f: &str) -> Result<(), String> {
    if args.len() > n {
        return Err(argerror(n + 1, f, "found too many arguments"));
    }
    Ok(())
}

fn given(args: &MultiValue, n: usize) -> bool {
    !matches!(args.get(n - 1), None | Some(Value::Nil))
}

/// json_integer_option: sets `setting` from argument `n` if given (the
/// range error names argument 1 whatever `n` is, as lua-cjson's does), and
/// returns the setting.
fn integer_option(args: &MultiValue, n: usize, setting: &mut i32, min: i32, max: i32, f: &str) -> Result<Value, String> {
    if given(args, n) {
        let v = checkint(args, n, f)?;
        if v < min || v > max {
            return Err(argerror(1, f, &format!("expected integer between {} and {}", min, max)));
        }
        *setting = v;
    }
    Ok(Value::Number(*setting as f64))
}

/// json_enum_option with booleans for 0 and 1: sets `setting` from argument
/// `n` if given (a boolean, or one of `options` by name), and returns it as
/// a boolean, or by name past 1.
fn enum_option(lua: &Lua, args: &MultiValue, n: usize, setting: &mut i32, options: &[&str], f: &str) -> Result<Value, String> {
    if given(args, n) {
        *setting = match &args[n - 1] {
            Value::Boolean(b) => *b as i32,
            _ => {
                let name = checkstring(args, n, f, "no value")?;
                match options.iter().position(|o| o.as_bytes() == name.as_slice()) {
                    Some(i) => i as i32,
                    None => {
                        let msg = format!("invalid option '{}'", String::from_utf8_lossy(&name));
                        return Err(argerror(n, f, &msg));
                    }
                }
            }
        };
    }
    Ok(match *setting {
        0 | 1 => Value::Boolean(*setting == 1),
        s => Value::String(lua.create_string(options[s as usize]).map_err(|e| e.to_string())?),
    })
}

fn number(cfg: &Config, n: f64, out: &mut Vec<u8>) -> Result<(), String> {
    match cfg.encode_invalid_numbers {
        0 if !n.is_finite() => return Err("Cannot serialise number: must not be NaN or Inf".into()),
        // "%g" would write "-nan" for some NaNs.
        1 if n.is_nan() => return Ok(out.extend_from_slice(b"nan")),
        2 if !n.is_finite() => return Ok(out.extend_from_slice(b"null")),
        _ => {}
    }
    let mut buf = [0u8; 64];
    out.extend_from_slice(fmt_g(n, cfg.encode_number_precision, &mut buf));
    Ok(())
}

fn encode(cfg: &Config, v: &Value, out: &mut Vec<u8>, depth: i32) -> Result<(), String> {
    let lua_err = |e: mlua::Error| e.to_string();
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        // mlua's integers are Lua numbers too.
        Value::Integer(i) => number(cfg, *i as f64, out)?,
        Value::Number(n) => number(cfg, *n, out)?,
        Value::String(s) => string(&s.as_bytes(), out),
        Value::Table(t) => {
            let depth = depth + 1;
            if depth > cfg.encode_max_depth {
                return Err(format!("Cannot serialise, excessive nesting ({})", depth));
            }
            match array_len(cfg, t)? {
                Some(n) if n > 0 => {
                    out.push(b'[');
                    for i in 1..=n {
                        if i > 1 {
                            out.push(b',');
                        }
                        let v = t.raw_get::<Value>(i).map_err(lua_err)?;
                        let v = exact(t, Value::Number(i as f64), v).map_err(lua_err)?;
                        encode(cfg, &v, out, depth)?;
                    }
                    out.push(b']');
                }
                _ => {
                    out.push(b'{');
                    let mut first = true;
                    for pair in t.clone().pairs::<Value, Value>() {
                        let (k, v) = pair.map_err(lua_err)?;
                        let v = exact(t, k.clone(), v).map_err(lua_err)?;
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match &k {
                            Value::String(s) => string(&s.as_bytes(), out),
                            Value::Number(_) | Value::Integer(_) => {
                                let n = match k {
                                    Value::Number(n) => n,
                                    Value::Integer(i) => i as f64,
                                    _ => unreachable!("matched a number"),
                                };
                                out.push(b'"');
                                number(cfg, n, out)?;
                                out.push(b'"');
                            }
                            other => {
                                return Err(format!(
                                    "Cannot serialise {}: table key must be a number or string",
                                    typename(Some(other))
                                ))
                            }
                        }
                        out.push(b':');
                        encode(cfg, &v, out, depth)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => {
            return Err(format!(
                "Cannot serialise {}: type not supported",
                typename(Some(other))
            ))
        }
    }
    Ok(())
}

/// lua-cjson's lua_array_length: Some(max index) if every key is a positive
/// integer and the array is not excessively sparse, None for an object.
fn array_len(cfg: &Config, t: &Table) -> Result<Option<usize>, String> {
    let keys = super::libs::positive_integer_keys(t).map_err(|e| e.to_string())?;
    let Some((max, items)) = keys else { return Ok(None) };
    // lua-cjson keeps the largest key in a C int: past INT_MAX it goes
    // negative and the table is written as an object.
    if max > i32::MAX as usize {
        return Ok(None);
    }
    let ratio = cfg.sparse_ratio as usize;
    if ratio > 0 && max > items * ratio && max > cfg.sparse_safe as usize {
        if cfg.sparse_convert == 0 {
            return Err("Cannot serialise table: excessively sparse array".into());
        }
        return Ok(None);
    }
    Ok(Some(max))
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            c if c < 0x20 || c == 0x7f => out.extend_from_slice(format!("\\u{:04x}", c).as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
}

/// A token of lua-cjson's lexer.
enum Token {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str(Vec<u8>),
    Num(f64),
    Bool(bool),
    Null,
    Colon,
    Comma,
    End,
    /// What was wrong, as the error message names it.
    Error(&'static str),
}

impl Token {
    fn name(&self) -> &'static str {
        match self {
            Token::ObjBegin => "T_OBJ_BEGIN",
            Token::ObjEnd => "T_OBJ_END",
            Token::ArrBegin => "T_ARR_BEGIN",
            Token::ArrEnd => "T_ARR_END",
            Token::Str(_) => "T_STRING",
            Token::Num(_) => "T_NUMBER",
            Token::Bool(_) => "T_BOOLEAN",
            Token::Null => "T_NULL",
            Token::Colon => "T_COLON",
            Token::Comma => "T_COMMA",
            Token::End => "T_END",
            Token::Error(e) => e,
        }
    }
}

/// The decoder over a NUL-terminated copy of the text, as lua-cjson's over
/// a C string: `s[at]` is always in bounds up to the NUL.
struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    lua: &'a Lua,
    cfg: Config,
    depth: i32,
}

fn hex_digit(c: u8) -> Option<u32> {
    (c as char).to_digit(16)
}

impl Parser<'_> {
    fn document(&mut self) -> Result<Value, String> {
        let (t, i) = self.token();
        let v = self.value(t, i)?;
        let (t, i) = self.token();
        if !matches!(t, Token::End) {
            return Err(Self::expected("the end", &t, i));
        }
        Ok(v)
    }

    fn expected(what: &str, t: &Token, index: usize) -> String {
        format!("Expected {} but found {} at character {}", what, t.name(), index + 1)
    }

    fn lua_err(e: mlua::Error) -> String {
        e.to_string()
    }

    /// The next token and the index it starts at (where an error was found
    /// for an error token).
    fn token(&mut self) -> (Token, usize) {
        while matches!(self.s[self.at], b' ' | b'\t' | b'\n' | b'\r') {
            self.at += 1;
        }
        let start = self.at;
        let c = self.s[start];
        let single = match c {
            b'{' => Some(Token::ObjBegin),
            b'}' => Some(Token::ObjEnd),
            b'[' => Some(Token::ArrBegin),
            b']' => Some(Token::ArrEnd),
            b',' => Some(Token::Comma),
            b':' => Some(Token::Colon),
            _ => None,
        };
        if let Some(t) = single {
            self.at += 1;
            return (t, start);
        }
        let rest = &self.s[start..];
        match c {
            0 => (Token::End, start),
            b'"' => self.string(),
            b'-' | b'0'..=b'9' => {
                if self.cfg.decode_invalid_numbers == 0 && self.invalid_number() {
                    return (Token::Error("invalid number"), start);
                }
                self.number()
            }
            b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'+' => {
                if rest.starts_with(b"true") {
                    self.at += 4;
                    (Token::Bool(true), start)
                } else if rest.starts_with(b"false") {
                    self.at += 5;
                    (Token::Bool(false), start)
                } else if rest.starts_with(b"null") {
                    self.at += 4;
                    (Token::Null, start)
                } else if self.cfg.decode_invalid_numbers != 0 && self.invalid_number() {
                    self.number()
                } else {
                    (Token::Error("invalid token"), start)
                }
            }
            _ => (Token::Error("invalid token"), start),
        }
    }

    /// json_is_invalid_number: what strtod takes but JSON does not (a
    /// leading "+" or zero, hex, Inf, NaN).
    fn invalid_number(&self) -> bool {
        let mut p = self.at;
        if self.s[p] == b'+' {
            return true;
        }
        if self.s[p] == b'-' {
            p += 1;
        }
        let c = self.s[p];
        if c == b'0' {
            let c2 = self.s[p + 1];
            return c2 | 0x20 == b'x' || c2.is_ascii_digit();
        }
        if c <= b'9' {
            return false;
        }
        let word = |w: &[u8]| self.s.len() - p >= 3 && self.s[p..p + 3].eq_ignore_ascii_case(w);
        word(b"inf") || word(b"nan")
    }

    fn number(&mut self) -> (Token, usize) {
        let start = self.at;
        let mut end: *mut libc::c_char = std::ptr::null_mut();
        // SAFETY: `s` is NUL-terminated, so strtod stops inside it; `end`
        // points into it afterwards.
        let (n, used) = unsafe {
            let p = self.s.as_ptr().add(start) as *const libc::c_char;
            let n = libc::strtod(p, &mut end);
            (n, end.offset_from(p) as usize)
        };
        if used == 0 {
            return (Token::Error("invalid number"), start);
        }
        self.at += used;
        (Token::Num(n), start)
    }

    /// A string token, `at` on its opening quote.
    fn string(&mut self) -> (Token, usize) {
        let start = self.at;
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let c = self.s[self.at];
            match c {
                b'"' => break,
                0 => return (Token::Error("unexpected end of string"), self.at),
                b'\\' => {
                    let e = match self.s[self.at + 1] {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b't' => b'\t',
                        b'n' => b'\n',
                        b'f' => 0x0c,
                        b'r' => b'\r',
                        b'u' => {
                            if self.unicode_escape(&mut out) {
                                continue;
                            }
                            return (Token::Error("invalid unicode escape code"), self.at);
                        }
                        _ => return (Token::Error("invalid escape code"), self.at),
                    };
                    out.push(e);
                    self.at += 2;
                }
                c => {
                    out.push(c);
                    self.at += 1;
                }
            }
        }
        self.at += 1;
        (Token::Str(out), start)
    }

    /// Four hex digits at `at`, stopping at the first that is not one (so
    /// never past the NUL).
    fn hex4(&self, at: usize) -> Option<u32> {
        let mut v = 0;
        for i in 0..4 {
            v = (v << 4) | hex_digit(self.s[at + i])?;
        }
        Some(v)
    }

    /// `\uXXXX` (or a surrogate pair of them) at `at`, appended as UTF-8.
    fn unicode_escape(&mut self, out: &mut Vec<u8>) -> bool {
        let Some(mut cp) = self.hex4(self.at + 2) else { return false };
        let mut len = 6;
        if cp & 0xF800 == 0xD800 {
            if cp & 0x400 != 0 {
                return false;
            }
            if self.s[self.at + 6] != b'\\' || self.s[self.at + 7] != b'u' {
                return false;
            }
            let Some(low) = self.hex4(self.at + 8) else { return false };
            if low & 0xFC00 != 0xDC00 {
                return false;
            }
            cp = (((cp & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            len = 12;
        }
        if cp <= 0x7F {
            out.push(cp as u8);
        } else if cp <= 0x7FF {
            out.extend_from_slice(&[(cp >> 6) as u8 | 0xC0, (cp & 0x3F) as u8 | 0x80]);
        } else if cp <= 0xFFFF {
            out.extend_from_slice(&[
                (cp >> 12) as u8 | 0xE0,
                ((cp >> 6) & 0x3F) as u8 | 0x80,
                (cp & 0x3F) as u8 | 0x80,
            ]);
        } else {
            out.extend_from_slice(&[
                (cp >> 18) as u8 | 0xF0,
                ((cp >> 12) & 0x3F) as u8 | 0x80,
                ((cp >> 6) & 0x3F) as u8 | 0x80,
                (cp & 0x3F) as u8 | 0x80,
            ]);
        }
        self.at += len;
        true
    }

    /// json_decode_descend: one level deeper, within decode_max_depth.
    fn descend(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > self.cfg.decode_max_depth {
            return Err(format!(
                "Found too many nested data structures ({}) at character {}",
                self.depth, self.at
            ));
        }
        Ok(())
    }

    fn value(&mut self, t: Token, index: usize) -> Result<Value, String> {
        let lua = self.lua;
        Ok(match t {
            Token::Str(s) => Value::String(lua.create_string(&s).map_err(Self::lua_err)?),
            Token::Num(n) => Value::Number(n),
            Token::Bool(b) => Value::Boolean(b),
            Token::Null => Value::LightUserData(LightUserData(std::ptr::null_mut())),
            Token::ObjBegin => {
                self.descend()?;
                let obj = lua.create_table().map_err(Self::lua_err)?;
                let (mut t, mut i) = self.token();
                if !matches!(t, Token::ObjEnd) {
                    loop {
                        let Token::Str(k) = t else {
                            return Err(Self::expected("object key string", &t, i));
                        };
                        let (c, ci) = self.token();
                        if !matches!(c, Token::Colon) {
                            return Err(Self::expected("colon", &c, ci));
                        }
                        let (vt, vi) = self.token();
                        let v = self.value(vt, vi)?;
                        obj.raw_set(lua.create_string(&k).map_err(Self::lua_err)?, v)
                            .map_err(Self::lua_err)?;
                        let (n, ni) = self.token();
                        match n {
                            Token::ObjEnd => break,
                            Token::Comma => (t, i) = self.token(),
                            n => return Err(Self::expected("comma or object end", &n, ni)),
                        }
                    }
                }
                self.depth -= 1;
                Value::Table(obj)
            }
            Token::ArrBegin => {
                self.descend()?;
                let arr = lua.create_table().map_err(Self::lua_err)?;
                let (mut t, mut i) = self.token();
                if !matches!(t, Token::ArrEnd) {
                    for k in 1.. {
                        let v = self.value(t, i)?;
                        arr.raw_set(k, v).map_err(Self::lua_err)?;
                        let (n, ni) = self.token();
                        match n {
                            Token::ArrEnd => break,
                            Token::Comma => (t, i) = self.token(),
                            n => return Err(Self::expected("comma or array end", &n, ni)),
                        }
                    }
                }
                self.depth -= 1;
                Value::Table(arr)
            }
            t => return Err(Self::expected("value", &t, index)),
        })
    }
}
