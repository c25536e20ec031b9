//! INFO, DEBUG SLEEP and CLUSTER KEYSLOT against redis-server 7.0: INFO's
//! field names per section, its keyspace and errorstats sections summed over
//! cores (`--threads 2`), DEBUG SLEEP stopping every core, and hash slots of
//! hash-tag edge cases through a real client.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{keys_on_both_cores, KvickServer, RawConn, RedisServer, TestServer};

/// INFO's reply (a bulk string) as (section in lowercase, [(field, value)]),
/// in order.
fn sections(info: &[u8]) -> Vec<(String, Vec<(String, String)>)> {
    assert_eq!(
        info.first(),
        Some(&b'$'),
        "INFO replied {}",
        common::escape(info)
    );
    let text = String::from_utf8_lossy(info);
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for line in text.lines().skip(1) {
        if let Some(title) = line.strip_prefix("# ") {
            out.push((title.to_ascii_lowercase(), Vec::new()));
        } else if let Some((name, value)) = line.split_once(':') {
            let (_, fields) = out
                .last_mut()
                .unwrap_or_else(|| panic!("field {name} before any section"));
            fields.push((name.to_string(), value.to_string()));
        }
    }
    out
}

fn section<'a>(info: &'a [(String, Vec<(String, String)>)], name: &str) -> &'a [(String, String)] {
    &info
        .iter()
        .find(|(s, _)| s == name)
        .unwrap_or_else(|| panic!("INFO has no section {name}"))
        .1
}

fn value<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    &fields
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no field {name}"))
        .1
}

/// Fields redis-server 7.0 prints that kvick does not, each with the reason.
const MISSING_FIELDS: &[(&str, &str)] = &[
    // Redis counts resizes of its reply blocks in serverCron; kvick's reply
    // buffer is a vector that grows as it is written, with no resize events.
    ("reply_buffer_shrinks", "no reply-block resizing"),
    ("reply_buffer_expands", "no reply-block resizing"),
];

/// Sections of `INFO everything` that kvick leaves out.
const MISSING_SECTIONS: &[(&str, &str)] = &[
    (
        "commandstats",
        "timing each command would cost the hot path two clock reads",
    ),
    ("latencystats", "as commandstats"),
];

/// The same commands on both servers: keys on both of kvick's cores, one
/// with a TTL, and error replies of several codes.
fn populate(c: &mut RawConn) {
    for k in keys_on_both_cores("info:", 4) {
        c.cmd(&["SET", &k, "v"]);
    }
    c.cmd(&["SET", "info:ttl", "v", "EX", "1000"]);
    c.cmd(&["NOSUCHCOMMAND"]);
    c.cmd(&["LPUSH", "info:0", "x"]);
}

#[test]
fn info_has_every_redis_field() {
    let redis = RedisServer::start();
    let kvick = KvickServer::start(&["--threads", "2", "--save", ""]);
    let (mut r, mut k) = (redis.raw(), kvick.raw());
    populate(&mut r);
    populate(&mut k);
    let theirs = sections(&r.cmd(&["INFO", "everything"]));
    let ours = sections(&k.cmd(&["INFO", "everything"]));

    // Sections in Redis' order, but for the ones kvick does not keep.
    let names = |info: &[(String, Vec<(String, String)>)]| {
        info.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>()
    };
    let expected: Vec<String> = names(&theirs)
        .into_iter()
        .filter(|s| !MISSING_SECTIONS.iter().any(|(m, _)| m == s))
        .collect();
    assert_eq!(names(&ours), expected, "INFO everything's sections");

    for name in [
        "server",
        "clients",
        "memory",
        "persistence",
        "stats",
        "cpu",
        "keyspace",
        "errorstats",
    ] {
        let ours = section(&ours, name);
        let missing: Vec<&str> = section(&theirs, name)
            .iter()
            .map(|(f, _)| f.as_str())
            .filter(|f| {
                !ours.iter().any(|(o, _)| o == f) && !MISSING_FIELDS.iter().any(|(m, _)| m == f)
            })
            .collect();
        assert!(
            missing.is_empty(),
            "INFO {name} lacks Redis' fields {missing:?}"
        );
    }
    // The exceptions are still exceptions (remove them once kvick has them).
    for (f, _) in MISSING_FIELDS {
        assert!(
            ours.iter()
                .all(|(_, fields)| fields.iter().all(|(n, _)| n != f)),
            "kvick now prints {f}"
        );
    }

    // The default sections are Redis' (errorstats included).
    assert_eq!(
        names(&sections(&k.cmd(&["INFO"]))),
        names(&sections(&r.cmd(&["INFO"]))),
        "default INFO's sections"
    );
}

/// Errorstats and total_error_replies count the same errors as Redis, from
/// both cores and from inside MULTI/EXEC; CONFIG RESETSTAT clears them.
#[test]
fn errorstats_match_redis() {
    let redis = RedisServer::start_with(&["--enable-debug-command", "yes"]);
    let kvick = KvickServer::start(&[
        "--threads",
        "2",
        "--save",
        "",
        "--enable-debug-command",
        "yes",
    ]);
    let mut replies = Vec::new();
    let mut stats = Vec::new();
    for server in [&redis, &kvick] {
        let mut c = server.raw();
        let mut got = Vec::new();
        for k in keys_on_both_cores("err:", 4) {
            got.push(c.cmd(&["SET", &k, "v"]));
            got.push(c.cmd(&["LPUSH", &k, "x"]));
            got.push(c.cmd(&["INCR", &k]));
        }
        got.push(c.cmd(&["GET"]));
        got.push(c.cmd(&["NOSUCHCOMMAND", "x"]));
        got.push(c.cmd(&["SET", "a", "b", "NX", "XX"]));
        got.push(c.cmd(&["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"]));
        got.push(c.cmd(&["DEBUG", "ERROR", "MYCODE some text"]));
        got.push(c.cmd(&["MULTI"]));
        got.push(c.cmd(&["NOSUCHCOMMAND"]));
        got.push(c.cmd(&["EXEC"]));
        got.push(c.cmd(&["MULTI"]));
        got.push(c.cmd(&["INCR", "err:0"]));
        got.push(c.cmd(&["EXEC"]));
        replies.push(got.iter().map(|r| common::escape(r)).collect::<Vec<_>>());
        let info = sections(&c.cmd(&["INFO", "errorstats", "stats"]));
        let total = value(section(&info, "stats"), "total_error_replies").to_string();
        stats.push((section(&info, "errorstats").to_vec(), total));
        // Counted per core; reset on every core.
        assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), b"+OK\r\n");
        let info = sections(&c.cmd(&["INFO", "errorstats", "stats"]));
        assert!(
            section(&info, "errorstats").is_empty(),
            "{}: errorstats after RESETSTAT",
            server.name()
        );
        assert_eq!(value(section(&info, "stats"), "total_error_replies"), "0");
    }
    assert_eq!(replies[1], replies[0], "the replies differ");
    assert_eq!(
        stats[1], stats[0],
        "errorstats and total_error_replies differ"
    );
    let codes: BTreeMap<&str, &str> = stats[1]
        .0
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        codes.get("errorstat_WRONGTYPE"),
        Some(&"count=4"),
        "{codes:?}"
    );
    assert_eq!(codes.get("errorstat_ERR"), Some(&"count=9"), "{codes:?}");
}

/// An error a script gets from redis.call/pcall counts once in errorstats
/// and total_error_replies, as in Redis 7.0, whether the command ran on the
/// script's core or on the other one (a declared key, an undeclared one).
#[test]
fn script_errors_count_once_as_redis_does() {
    let redis = RedisServer::start();
    let kvick = KvickServer::start(&["--threads", "2", "--save", ""]);
    let mut replies = Vec::new();
    let mut stats = Vec::new();
    for server in [&redis, &kvick] {
        let mut c = server.raw();
        let mut got = Vec::new();
        let keys = keys_on_both_cores("serr:", 2);
        for k in &keys {
            got.push(c.cmd(&["SET", k, "x"]));
        }
        assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), b"+OK\r\n");
        for k in &keys {
            got.push(c.cmd(&["EVAL", "return redis.call('incr', KEYS[1])", "1", k]));
            got.push(c.cmd(&["EVAL", "return redis.pcall('incr', KEYS[1])", "1", k]));
            got.push(c.cmd(&["EVAL", "return {redis.pcall('hget', KEYS[1], 'f')}", "1", k]));
            got.push(c.cmd(&["EVAL", "local ok, e = pcall(redis.call, 'incr', KEYS[1]) error(e)", "1", k]));
            // Undeclared: every shard locked, or locked on the way.
            got.push(c.cmd(&["EVAL", "return redis.call('incr', ARGV[1])", "0", k]));
            got.push(c.cmd(&["EVAL", "return redis.call('incr', ARGV[1])", "1", &keys[0], k]));
        }
        got.push(c.cmd(&["EVAL", "redis.pcall('nosuchcmd') return redis.call('get')", "0"]));
        replies.push(got.iter().map(|r| common::escape(r)).collect::<Vec<_>>());
        let info = sections(&c.cmd(&["INFO", "errorstats", "stats"]));
        let total = value(section(&info, "stats"), "total_error_replies").to_string();
        stats.push((section(&info, "errorstats").to_vec(), total));
    }
    assert_eq!(replies[1], replies[0], "the replies differ");
    assert_eq!(stats[1], stats[0], "errorstats and total_error_replies differ");
    // Per key: 1 + 1 + 1 + 2 (pcall made a string of it) + 1 + 1; then 2.
    assert_eq!(stats[1].1, "16", "{:?}", stats[1]);
}

/// INFO keyspace sums both cores' keys and expires per database, as
/// redis-server counts the same keys.
#[test]
fn info_keyspace_sums_cores() {
    let redis = RedisServer::start();
    let kvick = KvickServer::start(&["--threads", "2", "--save", ""]);
    let mut lines = Vec::new();
    for server in [&redis, &kvick] {
        let mut c = server.raw();
        for (i, k) in keys_on_both_cores("ks:", 10).iter().enumerate() {
            c.cmd(&["SET", k, "v"]);
            if i < 4 {
                c.cmd(&["EXPIRE", k, "1000"]);
            }
        }
        c.cmd(&["SELECT", "3"]);
        for k in keys_on_both_cores("ks3:", 6) {
            c.cmd(&["SET", &k, "v", "PX", "500000"]);
        }
        let info = sections(&c.cmd(&["INFO", "keyspace"]));
        let fields = section(&info, "keyspace").to_vec();
        // avg_ttl is an estimate (redis-server's stays 0 until its expiry
        // cycle samples): check kvick's is in range.
        for (db, max) in [("db0", 1_000_000u64), ("db3", 500_000)]
            .into_iter()
            .filter(|_| server.name() != "redis-server")
        {
            let avg: u64 = value(&fields, db)
                .rsplit_once("avg_ttl=")
                .unwrap()
                .1
                .parse()
                .unwrap();
            assert!(
                avg > max - 60_000 && avg <= max,
                "{}: {db} avg_ttl {avg}",
                server.name()
            );
        }
        let counts: Vec<(String, String)> = fields
            .into_iter()
            .map(|(db, v)| (db, v.rsplit_once(",avg_ttl=").unwrap().0.to_string()))
            .collect();
        lines.push(counts);
    }
    assert_eq!(lines[1], lines[0]);
    assert_eq!(
        lines[1],
        vec![
            ("db0".to_string(), "keys=10,expires=4".to_string()),
            ("db3".to_string(), "keys=6,expires=6".to_string())
        ]
    );
}

/// DEBUG SLEEP stops the whole server: PINGs sent during it from other
/// connections (on either core: several connections spread over both) wait
/// for its end. DEBUG SLEEP 0 replies at once.
#[test]
fn debug_sleep_stops_every_core() {
    for threads in ["1", "2"] {
        let kvick = KvickServer::start(&["--threads", threads, "--enable-debug-command", "yes"]);
        check_debug_sleep(&kvick);
    }
}

fn check_debug_sleep(server: &TestServer) {
    let mut others: Vec<RawConn> = (0..6).map(|_| server.raw()).collect();
    let mut sleeper = server.raw();
    let start = Instant::now();
    assert_eq!(sleeper.cmd(&["DEBUG", "SLEEP", "0"]), b"+OK\r\n");
    assert!(
        start.elapsed() < Duration::from_millis(300),
        "DEBUG SLEEP 0 took {:?}",
        start.elapsed()
    );

    sleeper.send(&["DEBUG", "SLEEP", "0.5"]).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let sent = Instant::now();
    for c in &mut others {
        c.send(&["PING"]).unwrap();
    }
    for c in &mut others {
        assert_eq!(c.read_reply().unwrap(), b"+PONG\r\n");
        // Sent 50 ms into the sleep: at least 0.4 s remained.
        assert!(
            sent.elapsed() >= Duration::from_millis(400),
            "{}: a PING answered after {:?} during DEBUG SLEEP 0.5",
            server.name(),
            sent.elapsed()
        );
    }
    assert_eq!(sleeper.read_reply().unwrap(), b"+OK\r\n");
}

/// CLUSTER KEYSLOT through the redis crate: Redis' slots for hash-tag edge
/// cases, compared with a cluster-enabled redis-server (a non-cluster one
/// refuses the command).
#[test]
fn cluster_keyslot_matches_redis() {
    let nodes =
        std::env::temp_dir().join(format!("kvick-keyslot-nodes-{}.conf", std::process::id()));
    let redis = RedisServer::start_with(&[
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        nodes.to_str().unwrap(),
    ]);
    let kvick = KvickServer::start(&["--threads", "2"]);
    let (mut r, mut k) = (redis.client(), kvick.client());
    let keys: &[&[u8]] = &[
        b"foo",
        b"{user1}.a",
        b"{}",
        b"{}foo",
        b"foo{}",
        b"{foo",
        b"foo}",
        b"{{foo}}",
        b"{a}{b}",
        b"{}{a}",
        b"",
        b"a{b}c{d}",
        b"}{a}",
        b"{\xff\x00}x",
    ];
    for key in keys {
        let slot = |c: &mut redis::Connection| -> i64 {
            redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(*key)
                .query(c)
                .unwrap()
        };
        assert_eq!(
            slot(&mut k),
            slot(&mut r),
            "CLUSTER KEYSLOT {}",
            common::escape(key)
        );
    }
    let mut slot = |key: &str| -> i64 {
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut k)
            .unwrap()
    };
    assert_eq!(slot("foo"), 12182);
    assert_eq!(slot("{user1}.a"), 8106);
    drop(redis);
    let _ = std::fs::remove_file(nodes);
}
