//! Differential tests: every line of `tests/corpus/*.txt` is sent to a
//! reference redis-server and to kvick, and the replies must be identical
//! byte for byte.
//!
//! # Corpus format
//!
//! One step per line. Leading whitespace is ignored, blank lines are skipped,
//! and a line whose first non-blank character is `#` is a comment (`#`
//! anywhere else is an ordinary character).
//!
//! A plain line is a command, split into arguments like redis-cli does:
//! - bare words are separated by whitespace and taken verbatim;
//! - `"double quoted"` arguments understand `\"` `\\` `\n` `\r` `\t` and
//!   `\xHH`; any other escape is a corpus error;
//! - `'single quoted'` arguments are verbatim except for `\'`;
//! - a closing quote must be followed by whitespace or the end of the line,
//!   so `''` is an empty argument and `a"b"` is an error.
//!
//! A line may start with one of these prefixes, changing how its reply is
//! compared:
//! - `~` compares only the reply's type byte: for time-dependent replies
//!   (PTTL just after setting, TIME, HELLO's server fields).
//! - `^` compares every array, set and map in the reply as an unordered
//!   collection, recursively: for KEYS, SCAN and other replies whose order is
//!   up to the server's hash table.
//!
//! Lines starting with `!` are directives:
//! - `!sleep MS` sleeps MS milliseconds (both servers see the same pause).
//! - `!raw "BYTES"` sends BYTES as they are (inline commands, malformed
//!   protocol) and compares the one reply that follows.
//! - `!send "BYTES"` sends BYTES without reading anything: for commands split
//!   across writes, or pipelines whose replies are then read with `!read`.
//! - `!read` reads and compares one more reply.
//! - `!reconnect` replaces both connections with fresh ones (RESP2, DB 0, no
//!   client name). Needed after a protocol error, when servers close the
//!   connection.
//!
//! `!raw` and `!read` accept the `~` and `^` prefixes.
//!
//! If a server closes the connection, that is compared too (shown as
//! `<connection closed>`): both must close at the same step. If only one does,
//! or a server does not reply within 5 s, the two connections are out of step
//! and the rest of that file is skipped (and reported).
//!
//! # Running
//!
//! One redis-server and one kvick serve all files; before each file the test
//! opens fresh connections and sends `FLUSHALL`, `HELLO 2` and `SELECT 0`.
//! The corpus runs twice, against `kvick --threads 1` and
//! `kvick --threads 2`, so that keys owned by another core are exercised.
//! All mismatches are collected and reported together as `file:line`.
//!
//! Environment variables:
//! - `KVICK_DIFF_ONLY=a.txt,b.txt` runs only these corpus files.
//! - `KVICK_DIFF_TRACE=1` prints every step with both replies (use
//!   `cargo test --test differential -- --nocapture`).
//! - `KVICK_DIFF_AGAINST_REDIS=1` replaces kvick with a second redis-server.
//!   Every line must pass that way: it proves the corpus is deterministic, so
//!   a mismatch against kvick is kvick's fault. Run it after editing the
//!   corpus.

mod common;

use common::{escape, parse_frame, Frame, KvickServer, RawConn, RedisServer, TestServer};
use std::io;
use std::path::Path;
use std::time::Duration;

const CORPUS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");

/// Any reply in the corpus comes back in milliseconds; a server that takes
/// this long is hung, and the file is abandoned rather than the suite stalled.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Replies longer than this are cut in mismatch reports.
const SHOW_MAX: usize = 400;

#[test]
fn corpus_kvick_threads_1() {
    run_corpus(&["--threads", "1"]);
}

#[test]
fn corpus_kvick_threads_2() {
    run_corpus(&["--threads", "2"]);
}

// ---------------------------------------------------------------------------
// Corpus parsing
// ---------------------------------------------------------------------------

struct CorpusFile {
    name: String,
    steps: Vec<Step>,
}

struct Step {
    line: usize,
    /// The line as written, for reports.
    text: String,
    compare: Compare,
    action: Action,
}

#[derive(Clone, Copy, PartialEq)]
enum Compare {
    Exact,
    TypeOnly,
    Unordered,
}

enum Action {
    Command(Vec<Vec<u8>>),
    Raw(Vec<u8>),
    Send(Vec<u8>),
    Read,
    Sleep(Duration),
    Reconnect,
}

/// Loads the corpus files to run (all, or those named by KVICK_DIFF_ONLY),
/// sorted by name. Panics on any syntax error, before servers are started.
fn load_corpus() -> Vec<CorpusFile> {
    let mut names: Vec<String> = std::fs::read_dir(CORPUS_DIR)
        .unwrap_or_else(|e| panic!("read {CORPUS_DIR}: {e}"))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".txt"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no corpus files in {CORPUS_DIR}");
    if let Ok(only) = std::env::var("KVICK_DIFF_ONLY") {
        let wanted: Vec<String> = only
            .split(',')
            .map(|n| n.trim())
            .filter(|n| !n.is_empty())
            .map(|n| {
                if n.ends_with(".txt") {
                    n.to_string()
                } else {
                    format!("{n}.txt")
                }
            })
            .collect();
        for name in &wanted {
            assert!(
                names.contains(name),
                "KVICK_DIFF_ONLY names {name}, which is not among {names:?}"
            );
        }
        names = wanted;
    }
    names
        .into_iter()
        .map(|name| {
            let text = std::fs::read_to_string(Path::new(CORPUS_DIR).join(&name))
                .unwrap_or_else(|e| panic!("read {name}: {e}"));
            let steps =
                parse_corpus(&text).unwrap_or_else(|(line, e)| panic!("{name}:{line}: {e}"));
            CorpusFile { name, steps }
        })
        .collect()
}

/// Parses a corpus file; errors carry the 1-based line number.
fn parse_corpus(text: &str) -> Result<Vec<Step>, (usize, String)> {
    let mut steps = Vec::new();
    for (i, raw_line) in text.lines().enumerate() {
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let step = parse_step(line).map_err(|e| (i + 1, e))?;
        steps.push(Step {
            line: i + 1,
            text: line.to_string(),
            compare: step.0,
            action: step.1,
        });
    }
    Ok(steps)
}

fn parse_step(line: &str) -> Result<(Compare, Action), String> {
    let (compare, rest) = match line.as_bytes()[0] {
        b'~' => (Compare::TypeOnly, line[1..].trim_start()),
        b'^' => (Compare::Unordered, line[1..].trim_start()),
        _ => (Compare::Exact, line),
    };
    let Some(directive) = rest.strip_prefix('!') else {
        let args = tokenize(rest)?;
        if args.is_empty() {
            return Err("a compare prefix without a command".into());
        }
        return Ok((compare, Action::Command(args)));
    };
    let (name, arg) = directive
        .split_once(char::is_whitespace)
        .unwrap_or((directive, ""));
    let action = match name {
        "raw" => Action::Raw(single_token(arg)?),
        "send" => Action::Send(single_token(arg)?),
        "read" if arg.trim().is_empty() => Action::Read,
        "reconnect" if arg.trim().is_empty() => Action::Reconnect,
        "sleep" => {
            let ms = arg
                .trim()
                .parse()
                .map_err(|_| format!("bad sleep time {arg:?}"))?;
            Action::Sleep(Duration::from_millis(ms))
        }
        _ => return Err(format!("unknown directive or bad arguments: !{directive}")),
    };
    let compares_reply = matches!(action, Action::Raw(_) | Action::Read);
    if compare != Compare::Exact && !compares_reply {
        return Err(format!(
            "!{name} reads no reply, so it takes no compare prefix"
        ));
    }
    Ok((compare, action))
}

fn single_token(arg: &str) -> Result<Vec<u8>, String> {
    let mut tokens = tokenize(arg)?;
    match tokens.len() {
        1 => Ok(tokens.pop().unwrap()),
        n => Err(format!("expected exactly one (quoted) argument, got {n}")),
    }
}

/// Splits a line into arguments; see the format description at the top.
fn tokenize(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let b = line.as_bytes();
    let mut i = 0;
    let mut tokens = Vec::new();
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == b.len() {
            return Ok(tokens);
        }
        let mut token = Vec::new();
        match b[i] {
            quote @ (b'"' | b'\'') => {
                i += 1;
                loop {
                    let Some(&c) = b.get(i) else {
                        return Err("unterminated quote".into());
                    };
                    i += 1;
                    match c {
                        c if c == quote => break,
                        b'\\' if quote == b'\'' && b.get(i) == Some(&b'\'') => {
                            token.push(b'\'');
                            i += 1;
                        }
                        b'\\' if quote == b'"' => {
                            let Some(&e) = b.get(i) else {
                                return Err("unterminated quote".into());
                            };
                            i += 1;
                            match e {
                                b'"' | b'\\' => token.push(e),
                                b'n' => token.push(b'\n'),
                                b'r' => token.push(b'\r'),
                                b't' => token.push(b'\t'),
                                b'x' => {
                                    let hex = b
                                        .get(i..i + 2)
                                        .and_then(|h| std::str::from_utf8(h).ok())
                                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                                        .ok_or("\\x must be followed by two hex digits")?;
                                    token.push(hex);
                                    i += 2;
                                }
                                _ => return Err(format!("unknown escape \\{}", e as char)),
                            }
                        }
                        _ => token.push(c),
                    }
                }
                if i < b.len() && !b[i].is_ascii_whitespace() {
                    return Err("closing quote must be followed by a space".into());
                }
            }
            _ => {
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    if b[i] == b'"' || b[i] == b'\'' {
                        return Err("quote inside an unquoted argument".into());
                    }
                    token.push(b[i]);
                    i += 1;
                }
            }
        }
        tokens.push(token);
    }
}

// ---------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------

/// What one server did in answer to a step.
#[derive(PartialEq)]
enum Outcome {
    Reply(Vec<u8>),
    Closed,
    TimedOut,
    Error(String),
}

impl Outcome {
    fn from_io(result: io::Result<Vec<u8>>) -> Outcome {
        use io::ErrorKind::*;
        match result {
            Ok(reply) => Outcome::Reply(reply),
            Err(e) => match e.kind() {
                UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe => Outcome::Closed,
                TimedOut => Outcome::TimedOut,
                _ => Outcome::Error(e.to_string()),
            },
        }
    }

    fn show(&self) -> String {
        match self {
            Outcome::Reply(reply) => {
                let mut shown = escape(&reply[..reply.len().min(SHOW_MAX)]);
                if reply.len() > SHOW_MAX {
                    shown.push_str(&format!("... ({} bytes in all)", reply.len()));
                }
                shown
            }
            Outcome::Closed => "<connection closed>".into(),
            Outcome::TimedOut => format!("<no reply within {REPLY_TIMEOUT:?}>"),
            Outcome::Error(e) => format!("<error: {e}>"),
        }
    }
}

/// A connection to one of the two servers under comparison.
struct Side<'a> {
    label: &'a str,
    server: &'a TestServer,
    conn: RawConn,
}

impl<'a> Side<'a> {
    fn connect(label: &'a str, server: &'a TestServer) -> Side<'a> {
        let conn = server.raw();
        conn.set_timeout(REPLY_TIMEOUT).expect("set socket timeout");
        Side {
            label,
            server,
            conn,
        }
    }

    /// Opens a fresh connection and resets the server to an empty DB 0 with
    /// RESP2. Returns a description of what went wrong, if anything.
    fn prepare(label: &'a str, server: &'a TestServer) -> Result<Side<'a>, String> {
        let mut side = Side::connect(label, server);
        side.expect(&["FLUSHALL"], |r| r == b"+OK\r\n")?;
        // HELLO's reply names the server and its version, so it differs
        // between servers; a map (an array in RESP2) is all that counts.
        side.expect(&["HELLO", "2"], |r| r.starts_with(b"*"))?;
        side.expect(&["SELECT", "0"], |r| r == b"+OK\r\n")?;
        Ok(side)
    }

    fn expect(&mut self, cmd: &[&str], ok: impl Fn(&[u8]) -> bool) -> Result<(), String> {
        match self.conn.command(cmd) {
            Ok(reply) if ok(&reply) => Ok(()),
            result => Err(format!(
                "{}: {} -> {}",
                self.label,
                cmd.join(" "),
                Outcome::from_io(result).show()
            )),
        }
    }
}

struct Totals {
    files: usize,
    steps: usize,
    failures: Vec<String>,
}

fn run_corpus(kvick_args: &[&str]) {
    let corpus = load_corpus();
    let against_redis =
        std::env::var("KVICK_DIFF_AGAINST_REDIS").is_ok_and(|v| !v.is_empty() && v != "0");
    let trace = std::env::var("KVICK_DIFF_TRACE").is_ok_and(|v| !v.is_empty() && v != "0");

    let mut reference = RedisServer::start();
    let (mut subject, subject_label) = if against_redis {
        (RedisServer::start(), "redis-server #2".to_string())
    } else {
        // Configured as the reference is (`--save ""`).
        let args: Vec<&str> = ["--save", ""].iter().chain(kvick_args).copied().collect();
        let server = KvickServer::start(&args);
        let label = server.name().to_string();
        (server, label)
    };
    let reference_label = "redis-server";

    let mut totals = Totals {
        files: 0,
        steps: 0,
        failures: Vec::new(),
    };
    for file in &corpus {
        // A dead server would make every later file fail confusingly; stop
        // at once with its output instead.
        reference.assert_alive();
        subject.assert_alive();
        run_file(
            file,
            (reference_label, &reference),
            (&subject_label, &subject),
            trace,
            &mut totals,
        );
    }
    reference.assert_alive();
    subject.assert_alive();

    let summary = format!(
        "differential, {reference_label} vs {subject_label}: {} files, {} steps, {} failures",
        totals.files,
        totals.steps,
        totals.failures.len()
    );
    if !totals.failures.is_empty() {
        panic!("{summary}\n\n{}", totals.failures.join("\n"));
    }
    eprintln!("{summary}");
}

fn run_file(
    file: &CorpusFile,
    reference: (&str, &TestServer),
    subject: (&str, &TestServer),
    trace: bool,
    totals: &mut Totals,
) {
    totals.files += 1;
    let prepared = Side::prepare(reference.0, reference.1)
        .and_then(|a| Side::prepare(subject.0, subject.1).map(|b| (a, b)));
    let (mut a, mut b) = match prepared {
        Ok(sides) => sides,
        Err(e) => {
            totals.failures.push(format!(
                "{}: setup before the first line failed: {e}",
                file.name
            ));
            return;
        }
    };
    for (index, step) in file.steps.iter().enumerate() {
        totals.steps += 1;
        let (out_a, out_b) = match &step.action {
            Action::Command(args) => exchange(&mut a, &mut b, &common::encode_command(args)),
            Action::Raw(bytes) => exchange(&mut a, &mut b, bytes),
            Action::Send(bytes) => {
                // Errors here (a closed connection) show up at the next read.
                let _ = a.conn.send_raw(bytes);
                let _ = b.conn.send_raw(bytes);
                continue;
            }
            Action::Read => (
                Outcome::from_io(a.conn.read_reply()),
                Outcome::from_io(b.conn.read_reply()),
            ),
            Action::Sleep(duration) => {
                std::thread::sleep(*duration);
                continue;
            }
            Action::Reconnect => {
                a = Side::connect(a.label, a.server);
                b = Side::connect(b.label, b.server);
                continue;
            }
        };
        let mut report = format!(
            "{}:{}: {}\n    {:<20} {}\n    {:<20} {}",
            file.name,
            step.line,
            step.text,
            a.label,
            out_a.show(),
            b.label,
            out_b.show()
        );
        if trace {
            eprintln!("{report}");
        }
        if same(step.compare, &out_a, &out_b) {
            continue;
        }
        // After a timeout, or when only one side closed, the two connections
        // no longer answer the same step, so every later reply would differ.
        let desync = [&out_a, &out_b]
            .iter()
            .any(|o| matches!(o, Outcome::TimedOut | Outcome::Error(_)))
            || (out_a == Outcome::Closed) != (out_b == Outcome::Closed);
        let remaining = file.steps.len() - index - 1;
        if desync && remaining > 0 {
            report.push_str(&format!(
                "\n    (connections out of step: the remaining {remaining} steps of {} were skipped)",
                file.name
            ));
        }
        totals.failures.push(report);
        if desync {
            return;
        }
    }
}

/// Sends the same bytes to both servers, then reads one reply from each.
/// Both are sent before either is read so that time-sensitive steps see
/// nearly the same clock on both servers.
fn exchange(a: &mut Side, b: &mut Side, bytes: &[u8]) -> (Outcome, Outcome) {
    let sent_a = a.conn.send_raw(bytes);
    let sent_b = b.conn.send_raw(bytes);
    (
        Outcome::from_io(sent_a.and_then(|_| a.conn.read_reply())),
        Outcome::from_io(sent_b.and_then(|_| b.conn.read_reply())),
    )
}

fn same(compare: Compare, a: &Outcome, b: &Outcome) -> bool {
    match (a, b) {
        (Outcome::Reply(x), Outcome::Reply(y)) => match compare {
            Compare::Exact => x == y,
            Compare::TypeOnly => x[0] == y[0],
            Compare::Unordered => canonical(x) == canonical(y),
        },
        (Outcome::Closed, Outcome::Closed) => true,
        // A timeout or error is never an expected outcome.
        _ => false,
    }
}

/// The reply with the elements of every array, set and map sorted, so that
/// two replies that differ only in element order compare equal.
fn canonical(reply: &[u8]) -> Vec<u8> {
    match parse_frame(reply) {
        Ok(Some(frame)) => canonical_frame(&frame),
        // read_reply only returns complete, valid frames.
        _ => unreachable!("invalid frame {}", escape(reply)),
    }
}

fn canonical_frame(frame: &Frame) -> Vec<u8> {
    if frame.children.is_empty() {
        return frame.raw.to_vec();
    }
    let mut children: Vec<Vec<u8>> = frame.children.iter().map(canonical_frame).collect();
    match frame.kind() {
        b'*' | b'~' => children.sort(),
        b'%' => {
            let mut pairs: Vec<Vec<u8>> = children.chunks(2).map(|kv| kv.concat()).collect();
            pairs.sort();
            children = pairs;
        }
        // Pushes and attributes have a fixed layout.
        _ => {}
    }
    let mut out = frame.head.to_vec();
    for child in children {
        out.extend_from_slice(&child);
    }
    out
}

/// Tests of the runner itself, so a corpus mismatch is never the runner's bug.
mod runner_tests {
    use super::*;

    fn args(line: &str) -> Vec<Vec<u8>> {
        tokenize(line).unwrap()
    }

    #[test]
    fn tokenizer_handles_quotes_and_escapes() {
        assert_eq!(
            args("SET  k v"),
            vec![b"SET".to_vec(), b"k".to_vec(), b"v".to_vec()]
        );
        assert_eq!(
            args(r#"SET "a b" ''"#),
            vec![b"SET".to_vec(), b"a b".to_vec(), Vec::new()]
        );
        assert_eq!(
            args(r#""\x00\xff\r\n\t\"\\""#),
            vec![b"\x00\xff\r\n\t\"\\".to_vec()]
        );
        assert_eq!(args(r"'it\'s \n'"), vec![b"it's \\n".to_vec()]);
        assert_eq!(args("#not-a-comment"), vec![b"#not-a-comment".to_vec()]);
        for bad in [r#""open"#, r#""a"b"#, r#"a"b""#, r#""\q""#, r#""\x4""#] {
            assert!(tokenize(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn directives_and_prefixes() {
        let steps =
            parse_corpus("# c\n\n~ TTL k\n^KEYS *\n!sleep 5\n!raw \"PING\\r\\n\"\n").unwrap();
        assert_eq!(steps.len(), 4);
        assert!(steps[0].compare == Compare::TypeOnly);
        assert!(steps[1].compare == Compare::Unordered);
        assert!(matches!(steps[2].action, Action::Sleep(d) if d == Duration::from_millis(5)));
        assert!(matches!(&steps[3].action, Action::Raw(b) if b == b"PING\r\n"));
        assert_eq!(steps[3].line, 6);
        assert!(parse_corpus("~!sleep 5").is_err());
        assert!(parse_corpus("!bogus").is_err());
        assert!(parse_corpus("!raw a b").is_err());
    }

    #[test]
    fn unordered_comparison_sorts_nested_aggregates() {
        let a = b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\nb\r\n$1\r\na\r\n";
        let b = b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n";
        assert_eq!(canonical(a), canonical(b));
        let map_a = b"%2\r\n+x\r\n:1\r\n+y\r\n:2\r\n";
        let map_b = b"%2\r\n+y\r\n:2\r\n+x\r\n:1\r\n";
        assert_eq!(canonical(map_a), canonical(map_b));
        assert_ne!(
            canonical(b"*2\r\n:1\r\n:2\r\n"),
            canonical(b"*2\r\n:1\r\n:3\r\n")
        );
    }

    #[test]
    fn frame_parser_finds_frame_boundaries() {
        let complete: &[&[u8]] = &[
            b"+OK\r\n",
            b"$-1\r\n",
            b"*-1\r\n",
            b"_\r\n",
            b"$0\r\n\r\n",
            b"$4\r\na\r\nb\r\n",
            b"*2\r\n:1\r\n*1\r\n,1.5\r\n",
            b"%1\r\n+k\r\n~1\r\n#t\r\n",
            b"=8\r\ntxt:abcd\r\n",
            b"!3\r\nERR\r\n",
            b"|1\r\n+key\r\n+val\r\n(12345678901234567890\r\n",
            b">2\r\n+message\r\n$1\r\nx\r\n",
        ];
        for frame in complete {
            let mut buf = frame.to_vec();
            buf.extend_from_slice(b"+NEXT\r\n");
            let parsed = parse_frame(&buf).unwrap().expect("complete frame");
            assert_eq!(parsed.raw, *frame, "{}", escape(frame));
            for cut in 0..frame.len() {
                assert!(
                    parse_frame(&frame[..cut]).unwrap().is_none(),
                    "{} cut at {cut}",
                    escape(frame)
                );
            }
        }
        assert!(parse_frame(b"?x\r\n").is_err());
        assert!(parse_frame(b"$2\r\nabc\r\n").is_err());
    }
}
