//! Feeds arbitrary bytes to the RESP request parser, whole and split at every
//! byte boundary the input's first byte picks, and checks its invariants:
//! no panic, consumed lengths within the buffer, argument ranges inside the
//! frame, and the same result whether the bytes arrive at once or in pieces.
#![no_main]

use kvick::resp::parser::{Parsed, Parser, Source};
use libfuzzer_sys::fuzz_target;

const MAX_BULK: usize = 1 << 16;

/// Parses every complete command in `buf`; returns the argument lists.
fn parse_all(buf: &[u8]) -> (Vec<Vec<Vec<u8>>>, bool) {
    let mut p = Parser::new();
    let mut at = 0;
    let mut cmds = Vec::new();
    loop {
        match p.parse(&buf[at..], MAX_BULK) {
            Ok(Parsed::Command { len, source }) => {
                assert!(len > 0 && at + len <= buf.len());
                let base: &[u8] = match source {
                    Source::Buffer => &buf[at..at + len],
                    Source::Inline => &p.inline,
                };
                cmds.push(p.args.iter().map(|r| base[r.clone()].to_vec()).collect());
                at += len;
            }
            Ok(Parsed::Empty { len }) => {
                assert!(len > 0 && at + len <= buf.len());
                at += len;
            }
            Ok(Parsed::Incomplete { need }) => {
                assert!(need > buf.len() - at);
                return (cmds, false);
            }
            Err(_) => return (cmds, true),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let whole = parse_all(data);
    // Deliver the same bytes in two reads, as a socket might.
    if let Some((&cut, rest)) = data.split_first() {
        let cut = cut as usize % (rest.len() + 1);
        let mut p = Parser::new();
        let mut buf = rest[..cut].to_vec();
        let mut at = 0;
        let mut cmds: Vec<Vec<Vec<u8>>> = Vec::new();
        let mut fed_rest = false;
        let mut failed = false;
        loop {
            match p.parse(&buf[at..], MAX_BULK) {
                Ok(Parsed::Command { len, source }) => {
                    let base: &[u8] = match source {
                        Source::Buffer => &buf[at..at + len],
                        Source::Inline => &p.inline,
                    };
                    cmds.push(p.args.iter().map(|r| base[r.clone()].to_vec()).collect());
                    at += len;
                }
                Ok(Parsed::Empty { len }) => at += len,
                Ok(Parsed::Incomplete { .. }) if !fed_rest => {
                    buf.extend_from_slice(&rest[cut..]);
                    fed_rest = true;
                }
                Ok(Parsed::Incomplete { .. }) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if fed_rest {
            let reference = parse_all(rest);
            assert_eq!(cmds, reference.0);
            assert_eq!(failed, reference.1);
        }
    }
    let _ = whole;
});
