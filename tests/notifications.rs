//! Differential tests of keyspace notifications: each script below runs
//! against redis-server (the oracle) and kvick with
//! `notify-keyspace-events KEA`, while another connection is subscribed to
//! every keyspace and keyevent channel; the (channel, message) streams must
//! match.
//!
//! With `--threads 1` the streams must be identical, in order. With
//! `--threads 2` the keys of a script live on both cores, whose
//! notifications reach a subscriber over different paths, so only what
//! Redis makes observable there is compared: the order of the events of
//! each key, and the events as a multiset.
//!
//! A script is a list of commands, split on whitespace. Redis' stream ends
//! with a PUBLISH on a marker channel the subscriber also listens to (Redis
//! delivers in order); kvick's is read until it has as many events as
//! Redis', then for a short quiet period, so an extra event is seen too.

mod common;

use common::{escape, parse_frame, KvickServer, RawConn, RedisServer, TestServer};
use std::collections::BTreeMap;
use std::time::Duration;

const MARKER: &str = "notifications-test-end";

/// Waits this long after the last expected event for unexpected ones.
const QUIET: Duration = Duration::from_millis(150);

type Event = (Vec<u8>, Vec<u8>);

const SCRIPTS: &[(&str, &[&str])] = &[
    (
        "strings",
        &[
            "SET s1 a", "SET s1 b EX 100", "APPEND s1 c", "SETRANGE s1 0 x", "INCR n1", "INCRBY n1 3",
            "DECR n1", "INCRBYFLOAT n1 1.5", "GETDEL s1", "SETEX s2 100 v", "PSETEX s3 100000 v",
            "GETEX s2 PERSIST", "GETEX s3 EX 50", "GETSET s2 w", "MSET m1 1 m2 2 m3 3",
            "MSETNX m4 4 m5 5", "SETNX m1 9", "SETNX m6 6", "SET m1 x KEEPTTL GET", "SETBIT b1 3 1",
            "SETBIT b1 3 1", "SET b2 abc", "BITOP AND b3 b1 b2", "BITOP OR b4 b1 b2",
            "BITOP XOR b1 b1 b1", "BITOP NOT b5 nosuch", "BITFIELD b6 SET u8 0 200 GET u8 0",
            "BITFIELD b6 GET u8 0", "BITFIELD b6 INCRBY u8 0 100 OVERFLOW FAIL INCRBY u8 0 200",
            "BITFIELD b6 OVERFLOW FAIL INCRBY u8 0 255",
        ],
    ),
    (
        "generic",
        &[
            "SET k1 v", "SET k2 v", "SET k3 v", "EXPIRE k1 100", "PEXPIRE k1 200000", "EXPIREAT k1 99999999999",
            "PERSIST k1", "EXPIRE k2 0", "RENAME k3 k4", "SET k5 v", "RENAMENX k4 k5", "RENAMENX k4 k6",
            "COPY k6 k7", "COPY k6 k7", "COPY k6 k7 REPLACE", "COPY k6 k8 DB 1", "MOVE k7 2", "MOVE k6 2",
            "DEL k5 k8 k9", "SET k10 v", "UNLINK k10 k4", "SET k11 v", "DUMP k11", "EXPIRE k11 -1",
            "SET k12 v", "SET k14 v", "SWAPDB 0 3", "SWAPDB 0 3",
        ],
    ),
    (
        "restore",
        &["SET r1 v", "RPUSH r2 a b", "!dump-restore r1 r3", "!dump-restore r2 r4", "!dump-restore r2 r1"],
    ),
    (
        "lists",
        &[
            "RPUSH l1 a b c d e", "LPUSH l1 z", "LPUSHX l1 y", "RPUSHX l1 x", "LPUSHX l9 y", "LSET l1 0 q",
            "LINSERT l1 BEFORE q w", "LREM l1 1 w", "LTRIM l1 0 4", "LPOP l1", "RPOP l1 2", "LMOVE l1 l2 LEFT RIGHT",
            "RPOPLPUSH l1 l2", "LMPOP 2 l9 l1 LEFT COUNT 5", "BLMPOP 0 2 l9 l2 RIGHT COUNT 1",
            "BLPOP l2 0", "RPUSH l8 a b", "LMPOP 2 l9 l8 LEFT COUNT 5", "RPUSH l2 m n", "BRPOPLPUSH l2 l3 0", "BLMOVE l3 l4 LEFT LEFT 0", "RPUSH l5 a b c", "LTRIM l5 5 10",
            "RPUSH l6 a", "LREM l6 0 a", "SORT l4 ALPHA STORE l7", "SORT nosuch STORE l7",
        ],
    ),
    (
        "hashes",
        &[
            "HSET h1 a 1 b 2", "HMSET h1 c 3", "HSETNX h1 a 9", "HSETNX h1 d 4", "HINCRBY h1 a 5",
            "HINCRBYFLOAT h1 a 0.5", "HDEL h1 a b nosuch", "HDEL h1 nosuch", "HDEL h1 c d",
            "HSET h2 x 1", "HDEL h2 x",
        ],
    ),
    (
        "sets",
        &[
            "SADD s1 a b c d", "SADD s2 c d e", "SADD s1 a", "SREM s1 a", "SREM s1 zz", "SMOVE s1 s2 b",
            "SMOVE s2 s3 e", "SINTERSTORE s4 s1 s2", "SUNIONSTORE s5 s1 s2", "SDIFFSTORE s6 s1 s2",
            "SINTERSTORE s5 s1 nosuch", "SDIFFSTORE s6 nosuch s1", "SUNIONSTORE s7 nosuch", "SADD s8 x",
            "SMOVE s8 s9 x", "SPOP s9", "SADD s10 a b", "SPOP s10 5", "SREM s3 e",
        ],
    ),
    (
        "zsets",
        &[
            "ZADD z1 1 a 2 b 3 c 4 d 5 e", "ZADD z1 INCR 2 a", "ZINCRBY z1 1 b", "ZADD z2 1 c 9 x",
            "ZREM z1 nosuch", "ZREM z1 e", "ZUNIONSTORE z3 2 z1 z2", "ZINTERSTORE z4 2 z1 z2",
            "ZDIFFSTORE z5 2 z1 z2", "ZINTERSTORE z4 2 z1 nosuch", "ZDIFFSTORE z5 1 nosuch",
            "ZRANGESTORE z6 z1 0 1", "ZRANGESTORE z6 z1 5 9", "ZREMRANGEBYRANK z3 0 0",
            "ZREMRANGEBYSCORE z3 100 200", "ZREMRANGEBYSCORE z3 0 3", "ZADD z7 0 a 0 b 0 c",
            "ZREMRANGEBYLEX z7 [a [b", "ZREMRANGEBYLEX z7 - +", "ZPOPMIN z1", "ZPOPMAX z1 1",
            "ZMPOP 2 nosuch z1 MIN COUNT 1", "BZPOPMIN z1 0", "BZPOPMAX z2 0", "BZMPOP 0 1 z2 MAX COUNT 5",
            "ZPOPMIN z9", "ZADD z8 1 a", "ZREM z8 a", "ZADD z10 1 a", "ZREMRANGEBYRANK z10 0 -1",
        ],
    ),
    (
        "geo",
        &[
            "GEOADD g1 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
            "GEOSEARCHSTORE g2 g1 FROMLONLAT 15 37 BYRADIUS 200 km ASC",
            "GEOSEARCHSTORE g3 g1 FROMLONLAT 15 37 BYRADIUS 200 km ASC STOREDIST",
            "GEOSEARCHSTORE g2 g1 FROMLONLAT 0 0 BYRADIUS 1 km", "GEORADIUS g1 15 37 200 km STORE g4",
        ],
    ),
    (
        "hyperloglog",
        &["PFADD p1 a b c", "PFADD p1 a", "PFADD p2", "PFADD p2", "PFADD p3 x", "PFMERGE p4 p1 p3", "PFMERGE p5"],
    ),
    (
        "streams",
        &[
            "XADD x1 1-1 f v", "XADD x1 2-1 f v", "XADD x1 3-1 f v", "XADD x1 4-1 f v", "XDEL x1 9-9",
            "XDEL x1 1-1", "XTRIM x1 MAXLEN 2", "XTRIM x1 MAXLEN 5", "XADD x1 MAXLEN 2 5-1 f v",
            "XGROUP CREATE x1 g1 0", "XGROUP CREATE x2 g1 $ MKSTREAM", "XGROUP SETID x1 g1 3-1",
            "XGROUP CREATECONSUMER x1 g1 c1", "XGROUP CREATECONSUMER x1 g1 c1",
            "XREADGROUP GROUP g1 c2 COUNT 1 STREAMS x1 >", "XREADGROUP GROUP g1 c2 COUNT 1 STREAMS x1 >",
            "XCLAIM x1 g1 c3 0 4-1", "XCLAIM x1 g1 c3 0 9-9", "XAUTOCLAIM x1 g1 c4 0 0", "XACK x1 g1 4-1",
            "XGROUP DELCONSUMER x1 g1 c4", "XGROUP DELCONSUMER x1 g1 c9", "XGROUP DESTROY x1 g1",
            "XGROUP DESTROY x1 g1", "XSETID x1 9-9",
        ],
    ),
    (
        "transaction",
        &["MULTI", "SET t1 a", "RPUSH t2 a", "HSET t3 f v", "EXEC", "SET t4 a", "DEL t1 t2 t3 t4"],
    ),
    (
        "scripting",
        &[
            "SET lock tok",
            "EVAL \"if redis.call('get',KEYS[1])==ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end\" 1 lock tok",
        ],
    ),
];

/// A connection subscribed to every keyspace and keyevent channel of every
/// database, and to the marker channel.
fn subscriber(server: &TestServer) -> RawConn {
    let mut sub = server.raw();
    sub.send(&["PSUBSCRIBE", "__key*__:*"]).unwrap();
    sub.read_reply().unwrap();
    sub.send(&["SUBSCRIBE", MARKER]).unwrap();
    sub.read_reply().unwrap();
    sub
}

/// The (channel, message) of a pmessage/message push, None for the marker.
fn event(raw: &[u8]) -> Option<Event> {
    let frame = parse_frame(raw).unwrap().expect("a whole frame");
    let bulk = |i: usize| {
        let f: &common::Frame = &frame.children[i];
        f.raw[f.head.len()..f.raw.len() - 2].to_vec()
    };
    match bulk(0).as_slice() {
        b"pmessage" => Some((bulk(2), bulk(3))),
        b"message" => None,
        other => panic!("unexpected push {}", escape(other)),
    }
}

/// Splits a script line on whitespace, keeping "double quoted" runs
/// (only the Lua script needs it).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        if let Some(q) = rest.strip_prefix('"') {
            let end = q.find('"').expect("closing quote");
            out.push(q[..end].to_string());
            rest = q[end + 1..].trim_start();
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            out.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
    }
    out
}

fn run_script(server: &TestServer, script: &[&str]) {
    let mut c = server.raw();
    for line in script {
        let w = words(line);
        if w[0] == "!dump-restore" {
            let dump = c.cmd(&["DUMP", &w[1]]);
            let frame = parse_frame(&dump).unwrap().unwrap();
            let payload = &dump[frame.head.len()..dump.len() - 2];
            let reply = c.cmd(&[b"RESTORE".as_slice(), w[2].as_bytes(), b"0", payload, b"REPLACE"]);
            assert_eq!(reply, b"+OK\r\n", "{} RESTORE", server.name());
        } else {
            c.cmd(&w);
        }
    }
}

/// Redis' events: everything before the marker.
fn redis_events(redis: &TestServer, script: &[&str]) -> Vec<Event> {
    let mut sub = subscriber(redis);
    run_script(redis, script);
    redis.raw().cmd(&["PUBLISH", MARKER, "x"]);
    let mut events = Vec::new();
    while let Some(e) = event(&sub.read_reply().unwrap()) {
        events.push(e);
    }
    events
}

/// kvick's events: `expected` of them, then whatever arrives while quiet.
fn kvick_events(kvick: &TestServer, script: &[&str], expected: usize) -> Vec<Event> {
    let mut sub = subscriber(kvick);
    run_script(kvick, script);
    let mut events = Vec::new();
    loop {
        if events.len() >= expected {
            sub.set_timeout(QUIET).unwrap();
        }
        match sub.read_reply() {
            Ok(raw) => events.extend(event(&raw)),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
            Err(e) => panic!("subscriber: {e}"),
        }
    }
    events
}

/// The key an event is about: a keyspace channel's suffix, a keyevent's message.
fn key_of((channel, msg): &Event) -> Vec<u8> {
    if channel.starts_with(b"__keyspace@") {
        let colon = channel.windows(3).position(|w| w == b"__:").unwrap();
        channel[colon + 3..].to_vec()
    } else {
        msg.clone()
    }
}

fn per_key(events: &[Event]) -> BTreeMap<Vec<u8>, Vec<Event>> {
    let mut m: BTreeMap<Vec<u8>, Vec<Event>> = BTreeMap::new();
    for e in events {
        m.entry(key_of(e)).or_default().push(e.clone());
    }
    m
}

fn show(events: &[Event]) -> String {
    events.iter().map(|(c, m)| format!("  {} {}\n", escape(c), escape(m))).collect()
}

fn differential(threads: &str) {
    let redis = RedisServer::start();
    let kvick = KvickServer::start(&["--threads", threads]);
    let mut failures = Vec::new();
    for server in [&redis, &kvick] {
        server.raw().cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    }
    for (name, script) in SCRIPTS {
        for server in [&redis, &kvick] {
            server.raw().cmd(&["FLUSHALL"]);
        }
        let want = redis_events(&redis, script);
        let got = kvick_events(&kvick, script, want.len());
        let same = if threads == "1" { want == got } else { per_key(&want) == per_key(&got) };
        if !same {
            failures.push(format!("script {name}:\nredis-server:\n{}kvick:\n{}", show(&want), show(&got)));
        }
    }
    assert!(failures.is_empty(), "{} script(s) differ:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn notifications_match_redis_threads_1() {
    differential("1");
}

#[test]
fn notifications_match_redis_threads_2() {
    differential("2");
}
