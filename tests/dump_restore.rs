//! DUMP payloads move between redis-server and kvick in both directions:
//! strings of every encoding (int, embstr, raw, LZF-compressed, binary),
//! on keys of both cores, with a TTL carried along.

mod common;

use common::{KvickServer, RedisServer};
use redis::Commands;

/// Values covering every RDB string encoding Redis writes.
fn values() -> Vec<Vec<u8>> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut v: Vec<Vec<u8>> = ["0", "-1", "127", "-129", "40000", "-2147483648", "2147483648", "9223372036854775807", "007", "hello", ""]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    v.push(b"x".repeat(21));
    v.push("kvick and redis ".repeat(500).into_bytes());
    v.push((0..10_000).map(|_| rand() as u8).collect());
    v.push((0..100_000).map(|_| b"ab"[(rand() % 2) as usize]).collect());
    v
}

/// Dumps every value from `from` and restores it into `to` under another
/// name; both servers must then hold the same bytes, and kvick's DUMP must
/// equal Redis' byte for byte.
fn transfer(from: &mut redis::Connection, to: &mut redis::Connection) {
    for (i, v) in values().iter().enumerate() {
        // Names on both cores of a two-thread kvick ("a" core 1, "b" core 0).
        for key in [format!("a{i}"), format!("b{i}")] {
            let _: () = from.set(&key, v).unwrap();
            let payload: Vec<u8> = redis::cmd("DUMP").arg(&key).query(from).unwrap();
            let copy = format!("{key}:copy");
            let _: () = redis::cmd("RESTORE").arg(&copy).arg(100_000).arg(&payload).arg("REPLACE").query(to).unwrap();
            let got: Vec<u8> = to.get(&copy).unwrap();
            assert_eq!(&got, v, "value {i} under {copy}");
            let ttl: i64 = to.ttl(&copy).unwrap();
            assert!((1..=100).contains(&ttl), "ttl {ttl}");
            let again: Vec<u8> = redis::cmd("DUMP").arg(&copy).query(to).unwrap();
            assert_eq!(again, payload, "DUMP of value {i} differs between servers");
        }
    }
}

#[test]
fn payloads_move_between_redis_and_kvick() {
    let redis = RedisServer::start();
    let kvick = KvickServer::start(&["--threads", "2"]);
    let (mut r, mut k) = (redis.client(), kvick.client());
    transfer(&mut r, &mut k);
    transfer(&mut k, &mut r);
}

/// Builds one collection of each type and encoding under `key` prefixes,
/// with the same commands on either server.
fn fill_collections(c: &mut redis::Connection) -> Vec<String> {
    let mut keys = Vec::new();
    let mut run = |key: &str, cmd: &str, args: Vec<String>| {
        let _: () = redis::cmd("DEL").arg(key).query(c).unwrap();
        let _: redis::Value = redis::cmd(cmd).arg(key).arg(args).query(c).unwrap();
        keys.push(key.to_string());
    };
    let many = |n: usize, f: &dyn Fn(usize) -> Vec<String>| (0..n).flat_map(f).collect::<Vec<String>>();
    run("list:small", "RPUSH", many(5, &|i| vec![format!("item{i}")]));
    run("list:big", "RPUSH", many(3000, &|i| vec![format!("element number {i}")]));
    run("set:ints", "SADD", many(100, &|i| vec![(i as i64 * 7919 - 300_000).to_string()]));
    run("set:table", "SADD", many(600, &|i| vec![format!("m{i}")]));
    run("hash:small", "HSET", many(10, &|i| vec![format!("f{i}"), format!("v{i}")]));
    run("hash:big", "HSET", many(700, &|i| vec![format!("f{i}"), "x".repeat(i % 80)]));
    run("zset:small", "ZADD", many(10, &|i| vec![(i as f64 * 1.5).to_string(), format!("z{i}")]));
    run("zset:big", "ZADD", many(500, &|i| vec![((i * 37) % 101).to_string(), format!("member{i}")]));
    keys
}

/// What a collection holds, in a form both servers answer identically.
fn contents(c: &mut redis::Connection, key: &str) -> Vec<Vec<u8>> {
    let kind: String = redis::cmd("TYPE").arg(key).query(c).unwrap();
    let mut v: Vec<Vec<u8>> = match kind.as_str() {
        "list" => redis::cmd("LRANGE").arg(key).arg(0).arg(-1).query(c).unwrap(),
        "set" => redis::cmd("SMEMBERS").arg(key).query(c).unwrap(),
        "hash" => redis::cmd("HGETALL").arg(key).query(c).unwrap(),
        "zset" => redis::cmd("ZRANGE").arg(key).arg(0).arg(-1).arg("WITHSCORES").query(c).unwrap(),
        other => panic!("unexpected type {other} of {key}"),
    };
    if kind == "set" || kind == "hash" {
        v.sort();
    }
    v
}

#[test]
fn collections_move_between_redis_and_kvick() {
    let redis = RedisServer::start();
    let kvick = KvickServer::start(&["--threads", "2"]);
    let (mut r, mut k) = (redis.client(), kvick.client());
    for kvick_first in [false, true] {
        let (from, to) = if kvick_first { (&mut k, &mut r) } else { (&mut r, &mut k) };
        for key in fill_collections(from) {
            let payload: Vec<u8> = redis::cmd("DUMP").arg(&key).query(from).unwrap();
            let _: () = redis::cmd("RESTORE").arg(&key).arg(0).arg(&payload).arg("REPLACE").query(to).unwrap();
            assert_eq!(contents(to, &key), contents(from, &key), "{key}");
            let enc_from: String = redis::cmd("OBJECT").arg("ENCODING").arg(&key).query(from).unwrap();
            let enc_to: String = redis::cmd("OBJECT").arg("ENCODING").arg(&key).query(to).unwrap();
            assert_eq!(enc_to, enc_from, "encoding of {key}");
        }
    }
    // Encodings that both write in one order give the same bytes.
    for key in ["list:small", "set:ints", "hash:small", "zset:small", "zset:big"] {
        let a: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut r).unwrap();
        let b: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut k).unwrap();
        assert_eq!(a, b, "DUMP of {key}");
    }
}

/// Builds streams with the same commands on either server: several nodes,
/// entries with and without the master's fields, deletions and trimming,
/// consumer groups with consumers and pending entries, and an empty stream
/// that keeps its group. Returns the keys.
fn fill_streams(c: &mut redis::Connection) -> Vec<&'static str> {
    let mut run = |args: &[&str]| {
        let _: redis::Value = redis::cmd(args[0]).arg(&args[1..]).query(c).unwrap();
    };
    for key in ["st:plain", "st:deleted", "st:empty", "st:big"] {
        run(&["DEL", key]);
    }
    for i in 1..=250 {
        let id = format!("{}-{}", 1_000 + i / 3, i % 3);
        let (v, n) = (format!("value {i}"), (i * 7919).to_string());
        if i % 10 == 0 {
            run(&["XADD", "st:plain", &id, "other", &v, "n", &n, "extra", "-5"]);
        } else {
            run(&["XADD", "st:plain", &id, "name", &v, "n", &n]);
        }
        run(&["XADD", "st:deleted", &id, "name", &v]);
    }
    run(&["XADD", "st:big", "5-1", "blob", &"x".repeat(5000), "n", "12345678901234"]);
    run(&["XADD", "st:big", "18446744073709551615-5", "f", "v"]);
    run(&["XGROUP", "CREATE", "st:plain", "g1", "0"]);
    run(&["XGROUP", "CREATE", "st:plain", "g2", "1050-0", "ENTRIESREAD", "40"]);
    run(&["XREADGROUP", "GROUP", "g1", "alice", "COUNT", "30", "STREAMS", "st:plain", ">"]);
    run(&["XREADGROUP", "GROUP", "g1", "bob", "COUNT", "5", "STREAMS", "st:plain", ">"]);
    run(&["XACK", "st:plain", "g1", "1000-1", "1003-0"]);
    run(&["XGROUP", "CREATECONSUMER", "st:plain", "g1", "idle"]);
    run(&["XREADGROUP", "GROUP", "g2", "carol", "COUNT", "3", "STREAMS", "st:plain", ">"]);
    run(&["XCLAIM", "st:plain", "g1", "bob", "0", "1002-2"]);
    for id in ["1001-0", "1020-1", "1040-2", "1083-2"] {
        run(&["XDEL", "st:deleted", id]);
    }
    run(&["XTRIM", "st:deleted", "MINID", "1010"]);
    run(&["XGROUP", "CREATE", "st:deleted", "g", "$"]);
    run(&["XADD", "st:empty", "7-7", "a", "1"]);
    run(&["XGROUP", "CREATE", "st:empty", "g", "0"]);
    run(&["XREADGROUP", "GROUP", "g", "dave", "STREAMS", "st:empty", ">"]);
    run(&["XDEL", "st:empty", "7-7"]);
    vec!["st:plain", "st:deleted", "st:empty", "st:big"]
}

fn stream_state(c: &mut redis::Connection, key: &str) -> (redis::Value, redis::Value) {
    let range = redis::cmd("XRANGE").arg(key).arg("-").arg("+").query(c).unwrap();
    let full = redis::cmd("XINFO").arg("STREAM").arg(key).arg("FULL").arg("COUNT").arg(0).query(c).unwrap();
    (range, full)
}

#[test]
fn streams_move_between_redis_and_kvick() {
    let redis = RedisServer::start();
    let kvick = KvickServer::start(&["--threads", "2"]);
    let (mut r, mut k) = (redis.client(), kvick.client());
    for kvick_first in [false, true] {
        let (from, to) = if kvick_first { (&mut k, &mut r) } else { (&mut r, &mut k) };
        for key in fill_streams(from) {
            let payload: Vec<u8> = redis::cmd("DUMP").arg(key).query(from).unwrap();
            // Under other names too, so that both cores of kvick restore.
            for copy in [format!("{key}:a"), format!("{key}:b")] {
                let _: () = redis::cmd("RESTORE").arg(&copy).arg(0).arg(&payload).arg("REPLACE").query(to).unwrap();
                assert_eq!(stream_state(to, &copy), stream_state(from, key), "{key} restored as {copy}");
            }
        }
    }
    // Streams built without deletions are the same bytes from both (once
    // the groups, with their clock times, are gone).
    fill_streams(&mut r);
    fill_streams(&mut k);
    for c in [&mut r, &mut k] {
        for g in ["g1", "g2"] {
            let _: i64 = redis::cmd("XGROUP").arg("DESTROY").arg("st:plain").arg(g).query(c).unwrap();
        }
    }
    for key in ["st:plain", "st:big"] {
        let a: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut r).unwrap();
        let b: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut k).unwrap();
        assert_eq!(a, b, "DUMP of {key}");
    }
}
