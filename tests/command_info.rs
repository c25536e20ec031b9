//! COMMAND INFO, DOCS and LIST FILTERBY against redis-server 7.0, for every
//! command and subcommand kvick has, in RESP2 and RESP3. (COMMAND GETKEYS
//! and GETKEYSANDFLAGS are in the differential corpus, `getkeys.txt`.)
//!
//! Replies are compared byte for byte (COMMAND DOCS with every field:
//! complexity, arguments, history, ...), except the subcommands of a
//! container, whose order comes from a hash table in Redis: they are compared
//! as sets, and Redis' may include ones kvick lacks (`NOT_IN_KVICK`).

mod common;

use common::{escape, parse_frame, Frame, KvickServer, RawConn, RedisServer};

/// Redis 7.0 subcommands kvick does not have (yet).
const NOT_IN_KVICK: &[&str] = &["client|pause", "client|reply", "client|unpause", "config|rewrite", "script|debug"];

const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
    "nosuch",
];

const PATTERNS: &[&str] = &["*", "z*", "*range*", "get?", "client|*", "*|help", "[a-c]*", "nosuch"];

fn frame(bytes: &[u8]) -> Frame<'_> {
    parse_frame(bytes).expect("valid RESP").expect("a complete reply")
}

fn text(f: &Frame) -> String {
    escape(f.raw)
}

/// The payload of a bulk string frame.
fn bulk<'a>(f: &Frame<'a>) -> &'a [u8] {
    &f.raw[f.head.len()..f.raw.len() - 2]
}

/// The elements of a flat array reply of bulk strings.
fn names(reply: &[u8]) -> Vec<String> {
    frame(reply).children.iter().map(|c| String::from_utf8_lossy(bulk(c)).into_owned()).collect()
}

struct Pair {
    redis: RawConn,
    kvick: RawConn,
    errors: Vec<String>,
}

impl Pair {
    fn both(&mut self, args: &[&str]) -> (Vec<u8>, Vec<u8>) {
        (self.redis.cmd(args), self.kvick.cmd(args))
    }

    fn fail(&mut self, what: String) {
        self.errors.push(what);
    }

    /// One COMMAND INFO entry (a 10-element array): the first nine fields
    /// exactly, the subcommands as sets.
    fn compare_entry(&mut self, name: &str, redis: &Frame, kvick: &Frame) {
        if redis.head != kvick.head || redis.children.len() != 10 || kvick.children.len() != 10 {
            return self.fail(format!("{name}: redis {} kvick {}", text(redis), text(kvick)));
        }
        for i in 0..9 {
            if redis.children[i].raw != kvick.children[i].raw {
                self.fail(format!("{name} field {i}: redis {} kvick {}", text(&redis.children[i]), text(&kvick.children[i])));
            }
        }
        let (rs, ks) = (&redis.children[9].children, &kvick.children[9].children);
        for k in ks {
            if !rs.iter().any(|r| r.raw == k.raw) {
                self.fail(format!("{name}: kvick's subcommand {} is not one of redis-server's", text(k)));
            }
        }
        for r in rs {
            let sub = String::from_utf8_lossy(bulk(&r.children[0])).into_owned();
            if !ks.iter().any(|k| k.raw == r.raw) && !NOT_IN_KVICK.contains(&sub.as_str()) {
                self.fail(format!("{name}: redis-server's subcommand {sub} is missing or differs in kvick"));
            }
        }
    }

    /// A COMMAND DOCS entry (a map, or in RESP2 an array of alternating
    /// names and values): Redis' fields in Redis' order (complexity,
    /// arguments, history, ...), each with Redis' exact value, except the
    /// subcommands, compared by name as in `compare_entry`.
    fn compare_docs(&mut self, name: &str, redis: &Frame, kvick: &Frame) {
        let fields = |f: &Frame| f.children.chunks(2).map(|p| escape(bulk(&p[0]))).collect::<Vec<_>>();
        if fields(redis) != fields(kvick) {
            return self.fail(format!("{name} docs fields: redis {:?} kvick {:?}", fields(redis), fields(kvick)));
        }
        for (theirs, ours) in redis.children.chunks(2).zip(kvick.children.chunks(2)) {
            if bulk(&theirs[0]) != b"subcommands" {
                if theirs[1].raw != ours[1].raw {
                    self.fail(format!("{name} docs {}: redis {} kvick {}", text(&theirs[0]), text(&theirs[1]), text(&ours[1])));
                }
                continue;
            }
            for sub in ours[1].children.chunks(2) {
                match theirs[1].children.chunks(2).find(|r| r[0].raw == sub[0].raw) {
                    Some(r) => self.compare_docs(&String::from_utf8_lossy(bulk(&sub[0])), &r[1], &sub[1]),
                    None => self.fail(format!("{name} docs: redis-server has no subcommand {}", text(&sub[0]))),
                }
            }
            for r in theirs[1].children.chunks(2) {
                let sub = String::from_utf8_lossy(bulk(&r[0])).into_owned();
                if !ours[1].children.chunks(2).any(|k| k[0].raw == r[0].raw) && !NOT_IN_KVICK.contains(&sub.as_str()) {
                    self.fail(format!("{name} docs: kvick lacks redis-server's subcommand {sub}"));
                }
            }
        }
    }

    /// COMMAND LIST FILTERBY `args`: kvick's names are exactly Redis' names
    /// that kvick has.
    fn compare_list(&mut self, all: &[String], args: &[&str]) {
        let (r, k) = self.both(&[&["COMMAND", "LIST", "FILTERBY"], args].concat());
        let mut theirs: Vec<String> = names(&r).into_iter().filter(|n| all.contains(n)).collect();
        let mut ours = names(&k);
        theirs.sort();
        ours.sort();
        if theirs != ours {
            self.fail(format!("COMMAND LIST FILTERBY {}: redis {theirs:?} kvick {ours:?}", args.join(" ")));
        }
    }
}

fn run(resp3: bool) {
    let redis = RedisServer::start();
    let kvick = KvickServer::start(&["--threads", "2"]);
    let mut p = Pair { redis: redis.raw(), kvick: kvick.raw(), errors: Vec::new() };
    if resp3 {
        p.both(&["HELLO", "3"]);
    }
    let all = names(&p.kvick.cmd(&["COMMAND", "LIST"]));
    assert!(all.len() > 250, "kvick lists {} commands", all.len());
    for name in &all {
        let (r, k) = p.both(&["COMMAND", "INFO", name]);
        let (r, k) = (frame(&r), frame(&k));
        match r.children.first() {
            Some(entry) if entry.kind() == b'*' => p.compare_entry(name, entry, &k.children[0]),
            _ => p.fail(format!("kvick has {name}, redis-server does not")),
        }
    }
    // COMMAND lists the same entries as COMMAND INFO.
    let every = p.kvick.cmd(&["COMMAND"]);
    let every = frame(&every);
    let count = p.kvick.cmd(&["COMMAND", "COUNT"]);
    assert_eq!(count, format!(":{}\r\n", every.children.len()).into_bytes());
    for entry in &every.children {
        let name = String::from_utf8_lossy(bulk(&entry.children[0])).into_owned();
        let info = p.kvick.cmd(&["COMMAND", "INFO", &name]);
        assert_eq!(frame(&info).children[0].raw, entry.raw, "COMMAND and COMMAND INFO {name}");
    }
    // Every command and, by full name, every subcommand.
    for name in &all {
        let (r, k) = p.both(&["COMMAND", "DOCS", name]);
        let (r, k) = (frame(&r), frame(&k));
        if r.children.len() != 2 || k.children.len() != 2 || r.children[0].raw != k.children[0].raw {
            p.fail(format!("COMMAND DOCS {name}: redis {} kvick {}", text(&r), text(&k)));
            continue;
        }
        p.compare_docs(name, &r.children[1], &k.children[1]);
    }
    for cat in CATEGORIES {
        p.compare_list(&all, &["ACLCAT", cat]);
    }
    for pattern in PATTERNS {
        p.compare_list(&all, &["PATTERN", pattern]);
    }
    let (r, k) = p.both(&["COMMAND", "LIST", "FILTERBY", "MODULE", "nosuch"]);
    assert_eq!(escape(&r), escape(&k));
    assert!(p.errors.is_empty(), "{} differences (RESP{}):\n{}", p.errors.len(), if resp3 { 3 } else { 2 }, p.errors.join("\n"));
}

#[test]
fn command_info_docs_and_list_match_redis_resp2() {
    run(false);
}

#[test]
fn command_info_docs_and_list_match_redis_resp3() {
    run(true);
}

/// What starts a command's block in redis-cli's help: its title, indented
/// and bold.
const HELP_TITLE: &str = "  \x1b[1m";

/// redis-cli's help text without the blocks (from a title to the next) of
/// the subcommands kvick lacks (`NOT_IN_KVICK`).
fn without_missing(help: &str) -> String {
    let mut blocks = help.split(HELP_TITLE);
    let mut kept = blocks.next().unwrap_or("").to_string();
    for block in blocks {
        let title = block.split("\x1b[0m").next().unwrap_or("").to_ascii_lowercase().replace(' ', "|");
        if !NOT_IN_KVICK.contains(&title.as_str()) {
            kept.push_str(HELP_TITLE);
            kept.push_str(block);
        }
    }
    kept
}

/// redis-cli 7.0 builds `help CMD` from the server's COMMAND DOCS
/// (arguments included): for every command and subcommand kvick has, it
/// prints the same against kvick as against redis-server.
#[test]
fn redis_cli_help_matches_redis() {
    let redis = RedisServer::start();
    let kvick = KvickServer::start(&["--threads", "2"]);
    let help = |port: u16, name: &str| {
        let out = std::process::Command::new("redis-cli").args(["-p", &port.to_string(), "help"]).args(name.split('|')).output().expect("redis-cli runs");
        assert!(out.status.success(), "redis-cli help {name}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let all = names(&kvick.raw().cmd(&["COMMAND", "LIST"]));
    assert!(all.len() > 250, "kvick lists {} commands", all.len());
    let mut errors = Vec::new();
    for name in &all {
        let (theirs, ours) = (help(redis.port(), name), help(kvick.port(), name));
        assert!(theirs.contains("summary:"), "redis-cli help {name} against redis-server: {theirs}");
        // `help client` lists every CLIENT subcommand: not those kvick lacks.
        let theirs = without_missing(&theirs);
        if theirs != ours {
            errors.push(format!("help {name}:\nredis-server:\n{theirs}kvick:\n{ours}"));
        }
    }
    assert!(errors.is_empty(), "{} differences:\n{}", errors.len(), errors.join("\n"));
}
