//! Small helpers shared by commands: clocks, number formats, glob matching.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (the unit of every expiry in kvick).
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Starts loading the cache lines a lookup of `key` in `map` touches first
/// (its control group and first candidate slot, in hashbrown's layout), so
/// that lookups of a pipeline overlap their cache misses instead of paying
/// them one after another. Only a hint: it reads nothing.
#[inline]
pub fn prefetch_slot<K, V, S: std::hash::BuildHasher, Q: std::hash::Hash + ?Sized>(map: &hashbrown::HashMap<K, V, S>, key: &Q) {
    prefetch_hashed(map, map.hasher().hash_one(key));
}

/// `prefetch_slot` for a key whose hash is already known.
#[inline]
pub fn prefetch_hashed<K, V, S>(map: &hashbrown::HashMap<K, V, S>, hash: u64) {
    let table = map.raw_table();
    if table.is_empty() {
        return;
    }
    let pos = hash as usize & (table.buckets() - 1);
    let end = table.data_end().as_ptr();
    // Control bytes start at `data_end`; slot i ends i slots before it.
    prefetch((end as *const u8).wrapping_add(pos));
    prefetch(end.wrapping_sub(pos + 1) as *const u8);
}

/// The step after `prefetch_slot`, once its lines have arrived: starts
/// loading the bytes of the first stored key whose hash tag matches `key`'s
/// (almost always `key` itself when it is there), which the lookup's
/// comparison would otherwise wait for: for a large set or hash those bytes
/// are a cache miss of their own. Returns that entry's value.
#[inline]
pub fn prefetch_stored_key<'a, V, S: std::hash::BuildHasher>(map: &'a hashbrown::HashMap<Box<[u8]>, V, S>, key: &[u8]) -> Option<&'a V> {
    let hash = map.hasher().hash_one(key);
    map.raw_entry()
        .from_hash(hash, |stored| {
            prefetch(stored.as_ptr());
            true
        })
        .map(|(_, v)| v)
}

/// Starts loading the cache line at `p`; only a hint.
#[inline]
pub fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch is a hint and accepts any address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
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
    let body = s.strip_prefix(b"+").or_else(|| s.strip_prefix(b"-")).unwrap_or(s);
    if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        return Some(if s[0] == b'-' { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    if body.len() >= 3 && body[..3].eq_ignore_ascii_case(b"nan") {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse::<f64>().ok()
}

/// A double as Redis reads a float argument (getDoubleFromObject: strtod,
/// no surrounding spaces, no NaN): like `parse_f64`, except that a number
/// beyond a double's range is an error (strtod's ERANGE) instead of an
/// infinity or a zero.
pub fn parse_double(s: &[u8]) -> Option<f64> {
    let v = parse_f64(s)?;
    let mantissa = s.split(|&c| c == b'e' || c == b'E').next().unwrap_or(s);
    let overflow = v.is_infinite() && s.iter().any(u8::is_ascii_digit);
    let underflow = v == 0.0 && mantissa.iter().any(|&c| (b'1'..=b'9').contains(&c));
    (!overflow && !underflow).then_some(v)
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

/// A uniformly random entry of `map`: probes random buckets until a full one
/// is hit. hashbrown shrinks only on demand, so after mass deletion it falls
/// back to a linear pick after some misses.
pub fn table_random<'a, K, V, S>(map: &'a hashbrown::HashMap<K, V, S>, rand: &mut impl FnMut() -> u64) -> Option<(&'a K, &'a V)> {
    if map.is_empty() {
        return None;
    }
    let table = map.raw_table();
    let buckets = table.buckets();
    for _ in 0..64 {
        let i = (rand() % buckets as u64) as usize;
        // SAFETY: i < buckets(); a full bucket holds an initialized element.
        unsafe {
            if table.is_bucket_full(i) {
                let (k, v) = table.bucket(i).as_ref();
                return Some((k, v));
            }
        }
    }
    map.iter().nth((rand() % map.len() as u64) as usize)
}

/// A generator (splitmix64) seeded from the shard's, for commands that draw
/// while they hold a borrow of the shard's data.
pub fn rng_from(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// `count` distinct elements of a collection of `len` (count < len), drawn
/// uniformly: as Redis' SRANDMEMBER/HRANDFIELD, a partial shuffle of `all`
/// elements when they are a large share, else repeated `draw`s of one
/// random element until enough are distinct.
pub fn sample_distinct<T: Eq + std::hash::Hash, R: FnMut() -> u64>(count: usize, len: usize, rand: &mut R, all: impl FnOnce() -> Vec<T>, mut draw: impl FnMut(&mut R) -> T) -> Vec<T> {
    if count * 3 > len {
        let mut v = all();
        for i in 0..count {
            let j = i + (rand() % (v.len() - i) as u64) as usize;
            v.swap(i, j);
        }
        v.truncate(count);
        v
    } else {
        let mut seen = hashbrown::HashSet::with_capacity(count);
        while seen.len() < count {
            seen.insert(draw(rand));
        }
        seen.into_iter().collect()
    }
}

/// Glob-style matching as Redis' stringmatchlen: `*`, `?`, `[abc]`, `[^a-z]`,
/// `\\x`. A port of Redis 7.0.15's stringmatchlen_impl, quirks included (an
/// unterminated class ends at the pattern's end; an escape inside a class is
/// case-sensitive even with `nocase`), with its `skipLongerMatches` cut-off
/// that keeps patterns like `*a*a*a*a*b` polynomial (CVE-2022-36021).
///
/// The one pattern `*` matches everything, the empty string included: every
/// Redis caller (KEYS, SCAN MATCH, ...) tests for it before calling the matcher.
pub fn glob_match(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    if pattern == b"*" {
        return true;
    }
    let mut skip_longer = false;
    glob_inner(pattern, s, nocase, &mut skip_longer, 0)
}

/// Recursion bound (one level per `*`), as later Redis versions have: a
/// pattern with thousands of stars must not overflow the stack.
const GLOB_MAX_NESTING: u32 = 1000;

fn glob_inner(pat: &[u8], s: &[u8], nocase: bool, skip_longer: &mut bool, nesting: u32) -> bool {
    if nesting > GLOB_MAX_NESTING {
        return false;
    }
    // Redis reads one byte past the pattern's end (the sds terminator, NUL).
    let at = |i: usize| pat.get(i).copied().unwrap_or(0);
    let lower = |c: u8| if nocase { c.to_ascii_lowercase() } else { c };
    let (mut p, mut si) = (0usize, 0usize);
    while p < pat.len() && si < s.len() {
        match pat[p] {
            b'*' => {
                while p < pat.len() && at(p + 1) == b'*' {
                    p += 1;
                }
                if pat.len() - p == 1 {
                    return true;
                }
                while si < s.len() {
                    if glob_inner(&pat[p + 1..], &s[si..], nocase, skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    si += 1;
                }
                // The rest of the pattern matches nowhere in the rest of the
                // string, so no earlier star needs to try a longer match.
                *skip_longer = true;
                return false;
            }
            b'?' => si += 1,
            b'[' => {
                p += 1;
                let not = at(p) == b'^';
                if not {
                    p += 1;
                }
                let mut matched = false;
                loop {
                    let left = pat.len().saturating_sub(p);
                    if at(p) == b'\\' && left >= 2 {
                        p += 1;
                        if pat[p] == s[si] {
                            matched = true;
                        }
                    } else if at(p) == b']' && left > 0 {
                        break;
                    } else if left == 0 {
                        // Unterminated class: step back so the common
                        // advance below lands on the pattern's end.
                        p -= 1;
                        break;
                    } else if left >= 3 && pat[p + 1] == b'-' {
                        // Redis compares C `char`s here: signed, so bytes
                        // from 0x80 sort before ASCII.
                        let (mut lo, mut hi) = (pat[p] as i8, pat[p + 2] as i8);
                        if lo > hi {
                            std::mem::swap(&mut lo, &mut hi);
                        }
                        let c = lower(s[si]) as i8;
                        let (lo, hi) = (lower(lo as u8) as i8, lower(hi as u8) as i8);
                        p += 2;
                        if c >= lo && c <= hi {
                            matched = true;
                        }
                    } else if lower(pat[p]) == lower(s[si]) {
                        matched = true;
                    }
                    p += 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                si += 1;
            }
            c => {
                let c = if c == b'\\' && pat.len() - p >= 2 {
                    p += 1;
                    pat[p]
                } else {
                    c
                };
                if lower(c) != lower(s[si]) {
                    return false;
                }
                si += 1;
            }
        }
        p += 1;
        if si == s.len() {
            while at(p) == b'*' {
                p += 1;
            }
            break;
        }
    }
    p >= pat.len() && si == s.len()
}

/// The C library's text of an error (Rust appends " (os error N)").
pub fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
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
    fn doubles_as_strtod() {
        assert_eq!(parse_double(b"1.5"), Some(1.5));
        assert_eq!(parse_double(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_double(b"1e400"), None);
        assert_eq!(parse_double(b"1e-400"), None);
        assert_eq!(parse_double(b"0e-400"), Some(0.0));
        assert_eq!(parse_double(b"nan"), None);
        assert_eq!(parse_double(b" 1"), None);
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

    #[test]
    fn glob_redis_quirks() {
        // Only the exact pattern "*" matches the empty string (callers' shortcut).
        assert!(!glob_match(b"**", b"", false));
        assert!(!glob_match(b"?", b"", false));
        // An unterminated class ends at the pattern's end.
        assert!(glob_match(b"por[t", b"port", true));
        assert!(glob_match(b"h[^", b"hx", false));
        assert!(!glob_match(b"[", b"[", false));
        // An escape inside a class is case-sensitive even with nocase.
        assert!(!glob_match(b"[\\P]ort", b"port", true));
        assert!(glob_match(b"[\\p]ort", b"port", true));
        assert!(glob_match(b"P[O-O]rt", b"port", true));
        // A range's bounds are swapped if reversed; `]` can end a range.
        assert!(glob_match(b"[r-p]ort", b"port", false));
        assert!(!glob_match(b"po[r-]t", b"port", false));
        assert!(glob_match(b"po[-r]t", b"port", false));
        // A trailing backslash is a literal.
        assert!(glob_match(b"a\\", b"a\\", false));
        assert!(!glob_match(b"*\\", b"port", false));
        // Ranges compare signed chars, as Redis' C code does.
        assert!(!glob_match(b"[a-\xff]", b"b", false));
        assert!(glob_match(b"[a-\xff]", b"0", false));
        assert!(glob_match(b"a*b*c", b"axxbyyc", false));
        assert!(!glob_match(b"a*b*c", b"axxbyy", false));
        assert!(glob_match(b"*a*", b"xxaxx", false));
    }

    #[test]
    fn glob_no_exponential_backtracking() {
        // CVE-2022-36021: exponential in a naive matcher.
        let pattern = b"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*ab";
        let s = [b'a'; 60];
        let t = std::time::Instant::now();
        assert!(!glob_match(pattern, &s, false));
        assert!(!glob_match(b"*a*a*a*a*a*a*a*a*a*a*a*a*a*ab", &s, true));
        assert!(t.elapsed() < std::time::Duration::from_millis(100), "took {:?}", t.elapsed());
        let mut s2 = s.to_vec();
        s2.push(b'b');
        assert!(glob_match(pattern, &s2, false));
    }
}
