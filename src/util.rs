//! Small helpers shared by commands: clocks, number formats, glob matching.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (the unit of every expiry in kvick).
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Formats `v` as C's `%.17g` (what Redis 7.0 uses for double replies) into `buf`.
pub fn fmt_double<'a>(v: f64, buf: &'a mut [u8; 64]) -> &'a [u8] {
    let s: String = if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else if v.is_nan() {
        "nan".into()
    } else if v == 0.0 {
        if v.is_sign_negative() { "-0".into() } else { "0".into() }
    } else {
        let sci = format!("{:.16e}", v);
        let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        if (-4..17).contains(&exp) {
            let decimals = (16 - exp).max(0) as usize;
            trim_fraction(format!("{:.*}", decimals, v))
        } else {
            let mant = trim_fraction(mant.to_string());
            format!("{}e{}{:02}", mant, if exp < 0 { '-' } else { '+' }, exp.abs())
        }
    };
    let n = s.len().min(buf.len());
    buf[..n].copy_from_slice(&s.as_bytes()[..n]);
    &buf[..n]
}

fn trim_fraction(mut s: String) -> String {
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    s
}

/// Parses a float the way Redis' string2ld/strtold accept it: no surrounding
/// spaces, no NaN. `inf`/`-inf` are accepted.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s[0].is_ascii_whitespace() || s[s.len() - 1].is_ascii_whitespace() {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let lower = text.to_ascii_lowercase();
    let v = match lower.trim_start_matches(['+', '-']) {
        "inf" | "infinity" => {
            if lower.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY }
        }
        body if body.starts_with("nan") => return None,
        _ => text.parse::<f64>().ok()?,
    };
    Some(v)
}

extern "C" {
    fn kvick_ld_add(cur: *const u8, cur_len: usize, incr: *const u8, incr_len: usize, out: *mut u8, out_cap: usize) -> std::os::raw::c_long;
}

#[derive(Debug, PartialEq, Eq)]
pub enum LdAddError {
    /// The current value is not a float.
    Current,
    /// The increment is not a float.
    Increment,
    /// The result is NaN or infinite.
    NotFinite,
}

/// `current + incr` in C long double, printed as Redis prints INCRBYFLOAT
/// results (`%.17Lf` without trailing zeros). `current` None means 0.
pub fn long_double_add(current: Option<&[u8]>, incr: &[u8]) -> Result<Vec<u8>, LdAddError> {
    let mut out = vec![0u8; 5200];
    let (cp, cl) = current.map_or((std::ptr::null(), 0), |c| (c.as_ptr(), c.len()));
    // SAFETY: pointers and lengths describe live buffers; the C side writes
    // at most `out.len()` bytes and returns how many.
    let n = unsafe { kvick_ld_add(cp, cl, incr.as_ptr(), incr.len(), out.as_mut_ptr(), out.len()) };
    match n {
        -1 => Err(LdAddError::Current),
        -2 => Err(LdAddError::Increment),
        n if n < 0 => Err(LdAddError::NotFinite),
        n => {
            out.truncate(n as usize);
            Ok(out)
        }
    }
}

/// Glob-style matching as Redis' stringmatchlen: `*`, `?`, `[abc]`, `[^a-z]`, `\x`.
pub fn glob_match(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    glob_inner(pattern, s, nocase, 0)
}

fn glob_inner(mut p: &[u8], mut s: &[u8], nocase: bool, depth: u32) -> bool {
    // Bound recursion like Redis does against pathological patterns.
    if depth > 1000 {
        return false;
    }
    let eq = |a: u8, b: u8| if nocase { a.eq_ignore_ascii_case(&b) } else { a == b };
    while !p.is_empty() && !s.is_empty() || (!p.is_empty() && p[0] == b'*') {
        match p[0] {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                for i in 0..=s.len() {
                    if glob_inner(&p[1..], &s[i..], nocase, depth + 1) {
                        return true;
                    }
                }
                return false;
            }
            b'?' => s = &s[1..],
            b'[' => {
                p = &p[1..];
                let not = p.first() == Some(&b'^');
                if not {
                    p = &p[1..];
                }
                let mut matched = false;
                loop {
                    if p.is_empty() {
                        break;
                    }
                    if p[0] == b'\\' && p.len() >= 2 {
                        p = &p[1..];
                        if eq(p[0], s[0]) {
                            matched = true;
                        }
                    } else if p[0] == b']' {
                        break;
                    } else if p.len() >= 3 && p[1] == b'-' {
                        let (mut lo, mut hi) = (p[0], p[2]);
                        if lo > hi {
                            std::mem::swap(&mut lo, &mut hi);
                        }
                        let c = if nocase { s[0].to_ascii_lowercase() } else { s[0] };
                        let (lo, hi) = if nocase { (lo.to_ascii_lowercase(), hi.to_ascii_lowercase()) } else { (lo, hi) };
                        if c >= lo && c <= hi {
                            matched = true;
                        }
                        p = &p[2..];
                    } else if eq(p[0], s[0]) {
                        matched = true;
                    }
                    p = &p[1..];
                }
                if p.is_empty() {
                    // Unterminated class: Redis treats the end as the close.
                    p = &p[..0];
                    if not {
                        matched = !matched;
                    }
                    if !matched {
                        return false;
                    }
                    s = &s[1..];
                    continue;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s = &s[1..];
            }
            b'\\' if p.len() >= 2 => {
                p = &p[1..];
                if !eq(p[0], s[0]) {
                    return false;
                }
                s = &s[1..];
            }
            c => {
                if !eq(c, s[0]) {
                    return false;
                }
                s = &s[1..];
            }
        }
        if s.is_empty() {
            p = &p[1..];
            while !p.is_empty() && p[0] == b'*' {
                p = &p[1..];
            }
            break;
        }
        p = &p[1..];
    }
    p.is_empty() && s.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g17() {
        let mut b = [0u8; 64];
        assert_eq!(fmt_double(1.1, &mut b), b"1.1000000000000001");
        assert_eq!(fmt_double(3.0, &mut b), b"3");
        assert_eq!(fmt_double(1e20, &mut b), b"1e+20");
        assert_eq!(fmt_double(0.0001, &mut b), b"0.0001");
        assert_eq!(fmt_double(1.5e-5, &mut b), b"1.5e-05");
        assert_eq!(fmt_double(f64::INFINITY, &mut b), b"inf");
    }

    #[test]
    fn long_double() {
        assert_eq!(long_double_add(Some(b"0.1"), b"0.2").unwrap(), b"0.3");
        assert_eq!(long_double_add(Some(b"10.50"), b"0.1").unwrap(), b"10.6");
        assert_eq!(long_double_add(None, b"5.0e3").unwrap(), b"5000");
        assert_eq!(long_double_add(Some(b"abc"), b"1"), Err(LdAddError::Current));
        assert_eq!(long_double_add(Some(b"1"), b" 1"), Err(LdAddError::Increment));
        assert_eq!(long_double_add(Some(b"1"), b"nan"), Err(LdAddError::Increment));
        assert_eq!(long_double_add(Some(b"-1"), b"1").unwrap(), b"0");
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"*", b"", false));
        assert!(glob_match(b"h?llo", b"hello", false));
        assert!(glob_match(b"h*llo", b"heeeello", false));
        assert!(glob_match(b"h[ae]llo", b"hallo", false));
        assert!(!glob_match(b"h[^e]llo", b"hello", false));
        assert!(glob_match(b"h[a-b]llo", b"hbllo", false));
        assert!(glob_match(b"key:*", b"key:1", false));
        assert!(!glob_match(b"key:*", b"kez:1", false));
        assert!(glob_match(b"a\\*b", b"a*b", false));
        assert!(glob_match(b"*b", b"ab", false));
        assert!(!glob_match(b"a*c", b"ab", false));
        assert!(glob_match(b"HELLO", b"hello", true));
    }
}
