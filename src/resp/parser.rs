//! Incremental RESP request parser.
//!
//! Requests are parsed in place: a command's arguments are byte ranges into the
//! connection's read buffer, so nothing is copied or allocated per request. The
//! parser keeps its position inside a partially received frame, so a large
//! request arriving in many reads is scanned once (linear, never quadratic), and
//! it tells the caller how many bytes the frame still needs so the buffer can be
//! grown once for a large bulk string.
//!
//! Inline commands (`PING\r\n`, as typed in telnet) are decoded into a scratch
//! buffer because their quoting rules mean arguments need not be contiguous.

use std::ops::Range;

/// Redis refuses inline requests and multibulk/bulk headers longer than this.
const MAX_INLINE: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl ProtocolError {
    fn new(msg: &str) -> Self {
        ProtocolError(msg.to_string())
    }

    /// The error line Redis sends before closing the connection.
    pub fn reply(&self) -> String {
        format!("ERR Protocol error: {}", self.0)
    }
}

/// Where the arguments of a parsed frame live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// In the read buffer, starting at the frame's first byte.
    Buffer,
    /// In the parser's inline scratch buffer.
    Inline,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A complete command of `len` bytes; its argument ranges are in `Parser::args`
    /// (relative to the frame start, or to the inline buffer).
    Command { len: usize, source: Source },
    /// An empty command (`*0`, `*-1`, blank inline line): consume `len` bytes, run nothing.
    Empty { len: usize },
    /// More bytes are needed; at least `need` more bytes in total for this frame.
    Incomplete { need: usize },
}

#[derive(Default)]
pub struct Parser {
    /// Byte offset (relative to the frame start) of the next unparsed byte.
    pos: usize,
    /// Number of bulk strings announced by the multibulk header, once read.
    expected: Option<usize>,
    /// Argument ranges parsed so far in the current frame.
    pub args: Vec<Range<usize>>,
    /// Decoded inline arguments.
    pub inline: Vec<u8>,
    /// The client has not authenticated while a password is set: Redis then
    /// refuses frames longer than a handful of small arguments, so an
    /// unauthenticated peer cannot make the server buffer much.
    pub unauthenticated: bool,
}

/// Redis' limits for unauthenticated clients.
const UNAUTH_MAX_ARGS: i64 = 10;
const UNAUTH_MAX_BULK: usize = 16 * 1024;

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse the frame at the start of `buf`. `max_bulk` is proto-max-bulk-len.
    pub fn parse(&mut self, buf: &[u8], max_bulk: usize) -> Result<Parsed, ProtocolError> {
        if buf.is_empty() {
            return Ok(Parsed::Incomplete { need: 1 });
        }
        if buf[0] != b'*' {
            return self.parse_inline(buf);
        }
        if self.expected.is_none() {
            let Some((n, next)) = read_number(buf, 1, "too big mbulk count string")? else {
                return Ok(Parsed::Incomplete { need: buf.len() + 1 });
            };
            let n = n.ok_or_else(|| ProtocolError::new("invalid multibulk length"))?;
            if n > i32::MAX as i64 {
                return Err(ProtocolError::new("invalid multibulk length"));
            }
            if n > UNAUTH_MAX_ARGS && self.unauthenticated {
                return Err(ProtocolError::new("unauthenticated multibulk length"));
            }
            if n <= 0 {
                self.reset();
                return Ok(Parsed::Empty { len: next });
            }
            self.expected = Some(n as usize);
            self.args.clear();
            // Redis caps preallocation the same way: a header can claim anything.
            self.args.reserve((n as usize).min(1024));
            self.pos = next;
        }
        let expected = self.expected.unwrap_or(0);
        while self.args.len() < expected {
            let p = self.pos;
            if p >= buf.len() {
                return Ok(Parsed::Incomplete { need: p + 1 });
            }
            if buf[p] != b'$' {
                return Err(expected_dollar(buf[p]));
            }
            let Some((len, data)) = read_number(buf, p + 1, "too big bulk count string")? else {
                return Ok(Parsed::Incomplete { need: buf.len() + 1 });
            };
            let len = match len {
                Some(l) if l >= 0 && (l as u64) <= max_bulk as u64 => l as usize,
                _ => return Err(ProtocolError::new("invalid bulk length")),
            };
            if len > UNAUTH_MAX_BULK && self.unauthenticated {
                return Err(ProtocolError::new("unauthenticated bulk length"));
            }
            let end = data + len;
            if buf.len() < end + 2 {
                return Ok(Parsed::Incomplete { need: end + 2 });
            }
            // Redis does not check the CRLF after bulk data; it skips two bytes.
            self.args.push(data..end);
            self.pos = end + 2;
        }
        let len = self.pos;
        self.reset_keep_args();
        Ok(Parsed::Command { len, source: Source::Buffer })
    }

    fn reset_keep_args(&mut self) {
        self.pos = 0;
        self.expected = None;
    }

    /// Forgets any partly parsed frame.
    pub fn reset(&mut self) {
        self.reset_keep_args();
        self.args.clear();
    }

    fn parse_inline(&mut self, buf: &[u8]) -> Result<Parsed, ProtocolError> {
        let Some(nl) = memchr(b'\n', buf) else {
            if buf.len() > MAX_INLINE {
                return Err(ProtocolError::new("too big inline request"));
            }
            return Ok(Parsed::Incomplete { need: buf.len() + 1 });
        };
        let mut line = &buf[..nl];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        self.args.clear();
        self.inline.clear();
        split_inline(line, &mut self.inline, &mut self.args)?;
        if self.args.is_empty() {
            return Ok(Parsed::Empty { len: nl + 1 });
        }
        Ok(Parsed::Command { len: nl + 1, source: Source::Inline })
    }
}

fn expected_dollar(got: u8) -> ProtocolError {
    ProtocolError(format!("expected '$', got '{}'", got as char))
}

/// Reads a decimal number terminated by CRLF starting at `start`. Returns
/// `Ok(None)` when the line is not complete yet, `Some((None, _))` when it is not
/// a valid integer, else the number and the offset after the CRLF. Inlined
/// into `parse` so the fast path's answer is not built in memory.
#[inline(always)]
fn read_number(
    buf: &[u8],
    start: usize,
    too_big: &str,
) -> Result<Option<(Option<i64>, usize)>, ProtocolError> {
    let rest = &buf[start.min(buf.len())..];
    // Fast path, one pass: up to 17 digits without a leading zero, then CR
    // and one more byte (every header of a well-formed request). Anything
    // else takes the general path, which gives the same answer for these too.
    let mut v: i64 = 0;
    for (i, &c) in rest.iter().enumerate().take(18) {
        if c.is_ascii_digit() {
            v = v * 10 + (c - b'0') as i64;
            continue;
        }
        if c == b'\r' && i > 0 && (i == 1 || rest[0] != b'0') && i + 1 < rest.len() {
            return Ok(Some((Some(v), start + i + 2)));
        }
        break;
    }
    read_number_general(rest, start, too_big)
}

#[cold]
fn read_number_general(rest: &[u8], start: usize, too_big: &str) -> Result<Option<(Option<i64>, usize)>, ProtocolError> {
    let Some(cr) = memchr(b'\r', rest) else {
        if rest.len() > MAX_INLINE {
            return Err(ProtocolError::new(too_big));
        }
        return Ok(None);
    };
    if cr + 1 >= rest.len() {
        return Ok(None);
    }
    Ok(Some((parse_i64(&rest[..cr]), start + cr + 2)))
}

/// Strict decimal parse as Redis' string2ll: optional '-', no '+', no spaces,
/// no leading zeros.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let (neg, digits) = if s[0] == b'-' { (true, &s[1..]) } else { (false, s) };
    if digits.is_empty() || (digits[0] == b'0' && digits.len() > 1) {
        return None;
    }
    if neg && digits == b"0" {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

pub fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// Splits an inline line as Redis' sdssplitargs does: spaces separate words,
/// "double quotes" support \n \r \t \b \a \\ \" and \xHH, 'single quotes'
/// support \'. A closing quote must be followed by a space or the end.
fn split_inline(
    line: &[u8],
    out: &mut Vec<u8>,
    args: &mut Vec<Range<usize>>,
) -> Result<(), ProtocolError> {
    let unbalanced = || ProtocolError::new("unbalanced quotes in request");
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_space(line[i]) {
            i += 1;
        }
        // Redis splits a C string: a NUL byte ends the line.
        if i >= n || line[i] == 0 {
            return Ok(());
        }
        let start = out.len();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                if i >= n {
                    return Err(unbalanced());
                }
                let c = line[i];
                if c == 0 {
                    return Err(unbalanced());
                }
                if c == b'\\' && i + 3 < n && line[i + 1] == b'x' && is_hex(line[i + 2]) && is_hex(line[i + 3]) {
                    out.push(hex(line[i + 2]) * 16 + hex(line[i + 3]));
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    out.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return Err(unbalanced());
                    }
                    i += 1;
                    break;
                } else {
                    out.push(c);
                }
            } else if in_sq {
                if i >= n {
                    return Err(unbalanced());
                }
                let c = line[i];
                if c == 0 {
                    return Err(unbalanced());
                }
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    out.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return Err(unbalanced());
                    }
                    i += 1;
                    break;
                } else {
                    out.push(c);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    c if is_space(c) || c == 0 => break,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => out.push(c),
                }
            }
            i += 1;
        }
        args.push(start..out.len());
    }
}

/// C's isspace().
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args<'a>(p: &Parser, buf: &'a [u8], src: Source) -> Vec<&'a [u8]> {
        let base: &[u8] = match src {
            Source::Buffer => buf,
            Source::Inline => unreachable!(),
        };
        p.args.iter().map(|r| &base[r.clone()]).collect()
    }

    #[test]
    fn multibulk_in_pieces() {
        let full = b"*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n";
        let mut p = Parser::new();
        for cut in 0..full.len() {
            assert!(matches!(p.parse(&full[..cut], 512 << 20).unwrap(), Parsed::Incomplete { .. }));
        }
        let r = p.parse(full, 512 << 20).unwrap();
        assert_eq!(r, Parsed::Command { len: full.len(), source: Source::Buffer });
        assert_eq!(args(&p, full, Source::Buffer), vec![&b"GET"[..], b"hello"]);
    }

    #[test]
    fn incomplete_reports_bulk_size() {
        let mut p = Parser::new();
        let r = p.parse(b"*1\r\n$100\r\nab", 512 << 20).unwrap();
        assert_eq!(r, Parsed::Incomplete { need: 10 + 100 + 2 });
    }

    #[test]
    fn inline_quotes() {
        let mut p = Parser::new();
        let r = p.parse(b"set \"a b\" 'c\\'d' \"\\x41\\n\"\r\n", 1 << 20).unwrap();
        assert!(matches!(r, Parsed::Command { source: Source::Inline, .. }));
        let got: Vec<&[u8]> = p.args.iter().map(|r| &p.inline[r.clone()]).collect();
        assert_eq!(got, vec![&b"set"[..], b"a b", b"c'd", b"A\n"]);
        assert_eq!(p.parse(b"set \"a\r\n", 1 << 20), Err(ProtocolError::new("unbalanced quotes in request")));
        // A NUL ends the line, as in Redis' C-string split (found by fuzzing).
        assert_eq!(p.parse(b"\0.\n", 1 << 20), Ok(Parsed::Empty { len: 3 }));
        assert_eq!(p.parse(b"a\0b\n", 1 << 20), Ok(Parsed::Command { len: 4, source: Source::Inline }));
    }

    #[test]
    fn errors() {
        let mut p = Parser::new();
        assert_eq!(p.parse(b"*x\r\n", 100), Err(ProtocolError::new("invalid multibulk length")));
        let mut p = Parser::new();
        assert_eq!(p.parse(b"*1\r\n$-1\r\n", 100), Err(ProtocolError::new("invalid bulk length")));
        let mut p = Parser::new();
        assert_eq!(p.parse(b"*1\r\n$101\r\n", 100), Err(ProtocolError::new("invalid bulk length")));
        let mut p = Parser::new();
        assert_eq!(p.parse(b"*1\r\n+a\r\n", 100), Err(ProtocolError::new("expected '$', got '+'")));
        assert_eq!(Parser::new().parse(b"*0\r\n", 100), Ok(Parsed::Empty { len: 4 }));
    }

    #[test]
    fn integers() {
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"01"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b"-0"), None);
    }

    /// `read_number`'s one-pass fast path agrees with the general path
    /// (memchr, then `parse_i64`) around every edge it tests.
    #[test]
    fn header_numbers() {
        let general = |rest: &[u8]| -> Option<(Option<i64>, usize)> {
            let cr = memchr(b'\r', rest)?;
            (cr + 1 < rest.len()).then(|| (parse_i64(&rest[..cr]), cr + 2))
        };
        let cases: &[&[u8]] = &[
            b"0\r\n", b"00\r\n", b"01\r\n", b"1\r\n", b"10\r\n", b"\r\n", b"-1\r\n", b"-0\r\n", b"+1\r\n", b"1a\r\n",
            b"1\r", b"1", b"12\rx", b"12345678901234567\r\n", b"123456789012345678\r\n", b"9223372036854775807\r\n",
            b"9223372036854775808\r\n", b"99999999999999999999\r\n", b"1 \r\n",
        ];
        for &c in cases {
            let mut framed = b"$".to_vec();
            framed.extend_from_slice(c);
            assert_eq!(read_number(&framed, 1, "too big").unwrap(), general(c).map(|(n, at)| (n, at + 1)), "{:?}", String::from_utf8_lossy(c));
        }
    }
}
