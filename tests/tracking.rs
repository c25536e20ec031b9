//! Client-side caching (CLIENT TRACKING) on kvick with two cores, and the
//! same sequences on redis-server where the replies are deterministic: RESP3
//! invalidation pushes and RESP2 redirection, keys owned by both cores, BCAST
//! prefixes, OPTIN/OPTOUT, NOLOOP, invalidation by expiry, FLUSHALL,
//! MULTI/EXEC and scripts, the table bound and INFO's counters.
//!
//! Invalidations travel asynchronously (from the key's core to the client's),
//! so tests wait for them by reading, and check that none arrived by waiting
//! a little and then reading a PING's reply.

mod common;

use std::thread;
use std::time::Duration;

use common::{escape, frame_strings as items, keys_on_both_cores, KvickServer, RawConn, RedisServer, TestServer};

fn kvick() -> TestServer {
    KvickServer::start(&["--threads", "2"])
}


/// A connection with `setup` done (each command must answer +OK or a
/// HELLO map, checked loosely).
fn conn(server: &TestServer, resp3: bool, setup: &[&[&str]]) -> RawConn {
    let mut c = server.raw();
    if resp3 {
        let r = c.cmd(&["HELLO", "3"]);
        assert_eq!(r[0], b'%', "HELLO 3: {}", escape(&r));
    }
    for cmd in setup {
        let r = c.cmd(cmd);
        assert_eq!(r, b"+OK\r\n", "{cmd:?} on {}", server.name());
    }
    c
}

/// Reads invalidation frames (RESP3 pushes or `__redis__:invalidate`
/// messages) until `n` keys have been invalidated; returns them sorted.
fn invalidated(c: &mut RawConn, n: usize) -> Vec<String> {
    let mut keys = Vec::new();
    while keys.len() < n {
        let f = c
            .read_reply()
            .unwrap_or_else(|e| panic!("waiting for {n} invalidations, got {keys:?}: {e}"));
        let it = items(&f);
        match it.first().map(String::as_str) {
            Some("invalidate") => keys.extend(it[1..].iter().cloned()),
            Some("message") if it[1] == "__redis__:invalidate" => {
                keys.extend(it[2..].iter().cloned())
            }
            _ => panic!("not an invalidation: {}", escape(&f)),
        }
    }
    keys.sort();
    keys
}

/// No invalidation is pending: after a pause, the next frame is PING's reply.
fn assert_quiet(c: &mut RawConn) {
    thread::sleep(Duration::from_millis(150));
    let r = c.cmd(&["PING"]);
    assert!(
        r == b"+PONG\r\n" || items(&r) == ["pong", ""],
        "unexpected frame: {}",
        escape(&r)
    );
}

fn client_id(c: &mut RawConn) -> String {
    String::from_utf8_lossy(&c.cmd(&["CLIENT", "ID"]))[1..]
        .trim()
        .to_string()
}

fn sorted(keys: &[String]) -> Vec<String> {
    let mut v = keys.to_vec();
    v.sort();
    v
}

/// Option checks and their errors, CLIENT CACHING, GETREDIR and
/// TRACKINGINFO replies, byte for byte as redis-server's (RESP2 and RESP3).
#[test]
fn commands_and_errors_match_redis() {
    let script: &[&[&str]] = &[
        &["CLIENT", "GETREDIR"],
        &["CLIENT", "TRACKINGINFO"],
        &["CLIENT", "CACHING", "yes"],
        &["CLIENT", "TRACKING", "maybe"],
        &["CLIENT", "TRACKING", "on", "bogus"],
        &["CLIENT", "TRACKING", "on", "prefix", "a"],
        &["CLIENT", "TRACKING", "on", "optin", "optout"],
        &["CLIENT", "TRACKING", "on", "bcast", "optin"],
        &["CLIENT", "TRACKING", "on", "redirect", "notanumber"],
        &["CLIENT", "TRACKING", "on", "redirect", "987654"],
        &["CLIENT", "TRACKING", "on", "redirect", "987654", "bogus"],
        &[
            "CLIENT", "TRACKING", "on", "bcast", "prefix", "ab", "prefix", "a",
        ],
        &[
            "CLIENT", "TRACKING", "on", "bcast", "prefix", "", "prefix", "x",
        ],
        &["CLIENT", "TRACKING"],
        &["CLIENT", "TRACKING", "on", "optin"],
        &["CLIENT", "GETREDIR"],
        &["CLIENT", "CACHING", "no"],
        &["CLIENT", "CACHING", "maybe"],
        &["CLIENT", "CACHING", "yes"],
        &["CLIENT", "TRACKINGINFO"],
        &["CLIENT", "TRACKING", "on", "optout"],
        &["CLIENT", "TRACKING", "on", "bcast"],
        &["CLIENT", "TRACKING", "on", "optin", "noloop"],
        &["CLIENT", "TRACKINGINFO"],
        &["CLIENT", "TRACKING", "off"],
        &["CLIENT", "TRACKINGINFO"],
        &[
            "CLIENT", "TRACKING", "on", "bcast", "prefix", "b", "prefix", "a", "noloop",
        ],
        &["CLIENT", "TRACKING", "on", "bcast", "prefix", "bc"],
        &["CLIENT", "TRACKING", "on", "bcast", "prefix", "c"],
        &["CLIENT", "TRACKINGINFO"],
        &["CLIENT", "TRACKING", "off"],
        &["CLIENT", "TRACKINGINFO"],
        &["CLIENT", "CACHING", "yes"],
    ];
    let servers = [RedisServer::start(), kvick()];
    for resp3 in [false, true] {
        let replies: Vec<Vec<Vec<u8>>> = servers
            .iter()
            .map(|s| {
                let mut c = conn(s, resp3, &[]);
                script.iter().map(|cmd| c.cmd(cmd)).collect()
            })
            .collect();
        for (i, cmd) in script.iter().enumerate() {
            assert_eq!(
                escape(&replies[1][i]),
                escape(&replies[0][i]),
                "{cmd:?} (RESP3: {resp3}): kvick vs redis-server"
            );
        }
    }
}

/// Default mode in RESP3: keys read on both cores are invalidated once by
/// another client's writes, each in its own push, as redis-server sends them.
#[test]
fn resp3_default_mode_on_both_cores() {
    let keys = keys_on_both_cores("cache:", 6);
    for server in [RedisServer::start(), kvick()] {
        // Several readers: the kernel spreads them over the cores.
        let mut readers: Vec<RawConn> = (0..3)
            .map(|_| conn(&server, true, &[&["CLIENT", "TRACKING", "on"]]))
            .collect();
        let mut writer = server.raw();
        for r in &mut readers {
            for k in &keys {
                assert_eq!(r.cmd(&["GET", k.as_str()]), b"_\r\n");
            }
            // A second read of the same key is remembered once.
            r.cmd(&["MGET", keys[0].as_str(), keys[1].as_str()]);
        }
        for k in &keys {
            writer.cmd(&["SET", k.as_str(), "v"]);
        }
        for r in &mut readers {
            assert_eq!(
                invalidated(r, keys.len()),
                sorted(&keys),
                "{}",
                server.name()
            );
        }
        // Forgotten after one invalidation.
        for k in &keys {
            writer.cmd(&["SET", k.as_str(), "w"]);
        }
        for r in &mut readers {
            assert_quiet(r);
        }
        // Exact push bytes of one invalidation.
        let r = &mut readers[0];
        r.cmd(&["GET", keys[1].as_str()]);
        writer.cmd(&["DEL", keys[1].as_str()]);
        let push = r.read_reply().unwrap();
        let want = format!(
            ">2\r\n$10\r\ninvalidate\r\n*1\r\n${}\r\n{}\r\n",
            keys[1].len(),
            keys[1]
        );
        assert_eq!(escape(&push), escape(want.as_bytes()), "{}", server.name());
    }
}

/// RESP2: invalidations go to the REDIRECT client as messages of
/// `__redis__:invalidate`; a RESP3 client whose target went away gets
/// `tracking-redir-broken` and TRACKINGINFO says `broken_redirect`.
#[test]
fn resp2_redirect_and_broken_redirect() {
    let keys = keys_on_both_cores("redir:", 4);
    for server in [RedisServer::start(), kvick()] {
        for _ in 0..2 {
            let mut target = server.raw();
            let id = client_id(&mut target);
            target.cmd(&["SUBSCRIBE", "__redis__:invalidate"]);
            let mut tracked = conn(
                &server,
                false,
                &[&["CLIENT", "TRACKING", "on", "REDIRECT", id.as_str()]],
            );
            assert_eq!(
                String::from_utf8_lossy(&tracked.cmd(&["CLIENT", "GETREDIR"])),
                format!(":{id}\r\n")
            );
            for k in &keys {
                tracked.cmd(&["GET", k.as_str()]);
            }
            let mut writer = server.raw();
            for k in &keys {
                writer.cmd(&["SET", k.as_str(), "1"]);
            }
            assert_eq!(
                invalidated(&mut target, keys.len()),
                sorted(&keys),
                "{}",
                server.name()
            );
            // One message's exact bytes.
            tracked.cmd(&["GET", keys[0].as_str()]);
            writer.cmd(&["INCR", keys[0].as_str()]);
            let msg = target.read_reply().unwrap();
            let want = format!(
                "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n${}\r\n{}\r\n",
                keys[0].len(),
                keys[0]
            );
            assert_eq!(escape(&msg), escape(want.as_bytes()), "{}", server.name());
            // The RESP2 tracked client itself gets nothing.
            assert_eq!(tracked.cmd(&["PING"]), b"+PONG\r\n");
        }

        // A RESP3 client whose redirect target disconnects.
        let mut target = server.raw();
        let id = client_id(&mut target);
        let mut tracked = conn(
            &server,
            true,
            &[&["CLIENT", "TRACKING", "on", "REDIRECT", id.as_str()]],
        );
        tracked.cmd(&["GET", keys[1].as_str()]);
        drop(target);
        thread::sleep(Duration::from_millis(100));
        server.raw().cmd(&["SET", keys[1].as_str(), "x"]);
        let push = tracked.read_reply().unwrap();
        assert_eq!(
            escape(&push),
            escape(format!(">2\r\n$21\r\ntracking-redir-broken\r\n:{id}\r\n").as_bytes()),
            "{}",
            server.name()
        );
        let info = items(&tracked.cmd(&["CLIENT", "TRACKINGINFO"]));
        assert_eq!(
            info[..4],
            ["flags", "on", "broken_redirect", "redirect"],
            "{}",
            server.name()
        );
    }
}

/// BCAST: every write of a key under a registered prefix is announced,
/// whether or not it was read; other keys are not. NOLOOP leaves out the
/// client's own writes.
#[test]
fn bcast_prefixes_and_noloop() {
    let server = kvick();
    let a = keys_on_both_cores("user:", 4);
    let b = keys_on_both_cores("order:", 4);
    let other = keys_on_both_cores("misc:", 4);
    let mut bcast = conn(
        &server,
        true,
        &[&[
            "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "user:", "PREFIX", "order:", "NOLOOP",
        ]],
    );
    let mut plain = conn(&server, true, &[&["CLIENT", "TRACKING", "on", "BCAST"]]);
    // Its own write is not announced to the NOLOOP client.
    assert_eq!(bcast.cmd(&["SET", "user:self", "1"]), b"+OK\r\n");
    let mut writer = server.raw();
    for k in a.iter().chain(&b).chain(&other) {
        writer.cmd(&["SET", k.as_str(), "1"]);
    }
    let mut want: Vec<String> = a.iter().chain(&b).cloned().collect();
    assert_eq!(invalidated(&mut bcast, want.len()), sorted(&want));
    assert_quiet(&mut bcast);
    // The empty prefix: every key, its own writes included.
    want.extend(other.iter().cloned());
    want.push("user:self".to_string());
    assert_eq!(invalidated(&mut plain, want.len()), sorted(&want));

    let mut info = server.raw();
    let stats = String::from_utf8_lossy(&info.cmd(&["INFO", "stats"])).to_string();
    assert!(stats.contains("tracking_total_prefixes:3\r\n"), "{stats}");
    // Prefixes go with their clients.
    drop(bcast);
    drop(plain);
    thread::sleep(Duration::from_millis(200));
    let stats = String::from_utf8_lossy(&info.cmd(&["INFO", "stats"])).to_string();
    assert!(stats.contains("tracking_total_prefixes:0\r\n"), "{stats}");
}

/// OPTIN tracks only reads after CLIENT CACHING YES, OPTOUT all but those
/// after CLIENT CACHING NO; the flag holds for one command or transaction.
#[test]
fn optin_and_optout() {
    let k = keys_on_both_cores("opt:", 6);
    for server in [RedisServer::start(), kvick()] {
        let mut optin = conn(&server, true, &[&["CLIENT", "TRACKING", "on", "OPTIN"]]);
        optin.cmd(&["GET", k[0].as_str()]);
        optin.cmd(&["CLIENT", "CACHING", "yes"]);
        optin.cmd(&["GET", k[1].as_str()]);
        optin.cmd(&["GET", k[2].as_str()]);
        optin.cmd(&["CLIENT", "CACHING", "yes"]);
        optin.cmd(&["MULTI"]);
        optin.cmd(&["GET", k[3].as_str()]);
        optin.cmd(&["GET", k[4].as_str()]);
        optin.cmd(&["EXEC"]);
        optin.cmd(&["GET", k[5].as_str()]);
        let mut optout = conn(&server, true, &[&["CLIENT", "TRACKING", "on", "OPTOUT"]]);
        optout.cmd(&["CLIENT", "CACHING", "no"]);
        optout.cmd(&["GET", k[0].as_str()]);
        optout.cmd(&["GET", k[1].as_str()]);
        let mut writer = server.raw();
        for key in &k {
            writer.cmd(&["SET", key.as_str(), "1"]);
        }
        assert_eq!(
            invalidated(&mut optin, 3),
            sorted(&[k[1].clone(), k[3].clone(), k[4].clone()]),
            "{}",
            server.name()
        );
        assert_quiet(&mut optin);
        assert_eq!(
            invalidated(&mut optout, 1),
            [k[1].clone()],
            "{}",
            server.name()
        );
        assert_quiet(&mut optout);
    }
}

/// NOLOOP in default mode: a client's own writes do not invalidate its
/// cache (without NOLOOP they do, after the write's reply).
#[test]
fn noloop_default_mode() {
    let k = keys_on_both_cores("loop:", 4);
    for server in [RedisServer::start(), kvick()] {
        let mut noloop = conn(&server, true, &[&["CLIENT", "TRACKING", "on", "NOLOOP"]]);
        let mut looped = conn(&server, true, &[&["CLIENT", "TRACKING", "on"]]);
        for key in &k {
            noloop.cmd(&["GET", key.as_str()]);
        }
        looped.cmd(&["GET", k[0].as_str()]);
        // Own writes, on both cores, one of them inside MULTI/EXEC.
        assert_eq!(noloop.cmd(&["SET", k[0].as_str(), "1"]), b"+OK\r\n");
        assert_eq!(noloop.cmd(&["SET", k[1].as_str(), "1"]), b"+OK\r\n");
        noloop.cmd(&["MULTI"]);
        noloop.cmd(&["INCR", k[2].as_str()]);
        let exec = noloop.cmd(&["EXEC"]);
        assert_eq!(items(&exec), ["1"], "{}", server.name());
        server.raw().cmd(&["SET", k[3].as_str(), "1"]);
        assert_eq!(
            invalidated(&mut noloop, 1),
            [k[3].clone()],
            "{}",
            server.name()
        );
        assert_quiet(&mut noloop);
        assert_eq!(
            invalidated(&mut looped, 1),
            [k[0].clone()],
            "{}",
            server.name()
        );
        // Without NOLOOP the client's own write comes back to it.
        looped.cmd(&["GET", k[1].as_str()]);
        assert_eq!(looped.cmd(&["SET", k[1].as_str(), "2"]), b"+OK\r\n");
        assert_eq!(
            invalidated(&mut looped, 1),
            [k[1].clone()],
            "{}",
            server.name()
        );
    }
}

/// Expiry (active and lazy) invalidates; FLUSHALL sends every tracking
/// client one null invalidation, in its protocol, and forgets the table.
#[test]
fn expiry_and_flushall() {
    let k = keys_on_both_cores("exp:", 4);
    for server in [RedisServer::start(), kvick()] {
        let mut writer = server.raw();
        for key in &k {
            writer.cmd(&["SET", key.as_str(), "1", "PX", "100"]);
        }
        let mut c = conn(&server, true, &[&["CLIENT", "TRACKING", "on"]]);
        for key in &k {
            c.cmd(&["GET", key.as_str()]);
        }
        thread::sleep(Duration::from_millis(150));
        // Lazy expiry of two (read by another client), active of the rest.
        writer.cmd(&["GET", k[0].as_str()]);
        writer.cmd(&["GET", k[1].as_str()]);
        assert_eq!(
            invalidated(&mut c, k.len()),
            sorted(&k),
            "{}",
            server.name()
        );

        let mut redirected_target = server.raw();
        let id = client_id(&mut redirected_target);
        redirected_target.cmd(&["SUBSCRIBE", "__redis__:invalidate"]);
        let _resp2 = conn(
            &server,
            false,
            &[&["CLIENT", "TRACKING", "on", "REDIRECT", id.as_str()]],
        );
        c.cmd(&["GET", k[2].as_str()]);
        assert_eq!(writer.cmd(&["FLUSHALL"]), b"+OK\r\n");
        assert_eq!(
            escape(&c.read_reply().unwrap()),
            escape(b">2\r\n$10\r\ninvalidate\r\n_\r\n"),
            "{}",
            server.name()
        );
        assert_quiet(&mut c);
        let msg = redirected_target.read_reply().unwrap();
        assert_eq!(
            escape(&msg),
            escape(b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n"),
            "{}",
            server.name()
        );
        // The table was forgotten: a write after the flush owes nothing.
        writer.cmd(&["SET", k[2].as_str(), "1"]);
        assert_quiet(&mut c);
    }
}

/// Reads inside MULTI/EXEC and scripts are remembered; writes by EXEC
/// and by scripts, on keys of both cores, invalidate.
#[test]
fn transactions_and_scripts() {
    let k = keys_on_both_cores("{t}x:", 1)
        .into_iter()
        .chain(keys_on_both_cores("tx:", 4))
        .collect::<Vec<_>>();
    for server in [RedisServer::start(), kvick()] {
        let mut c = conn(&server, true, &[&["CLIENT", "TRACKING", "on"]]);
        c.cmd(&["MULTI"]);
        for key in &k[..3] {
            c.cmd(&["GET", key.as_str()]);
        }
        c.cmd(&["EXEC"]);
        let r = c.cmd(&[
            "EVAL",
            "return redis.call('get', KEYS[1])",
            "1",
            k[3].as_str(),
        ]);
        assert_eq!(r, b"_\r\n");
        c.cmd(&["GET", k[4].as_str()]);
        let mut writer = server.raw();
        writer.cmd(&["MULTI"]);
        writer.cmd(&["SET", k[1].as_str(), "1"]);
        writer.cmd(&["SET", k[2].as_str(), "1"]);
        writer.cmd(&["EXEC"]);
        writer.cmd(&["EVAL", "redis.call('set', KEYS[1], 1) redis.call('set', KEYS[2], 1) redis.call('set', KEYS[3], 1)", "3", k[0].as_str(), k[3].as_str(), k[4].as_str()]);
        assert_eq!(invalidated(&mut c, 5), sorted(&k), "{}", server.name());
        assert_quiet(&mut c);
    }
}

/// `tracking-table-max-keys` bounds the table: past it, keys are
/// invalidated to make room. INFO counts clients, keys and items.
#[test]
fn table_bound_and_info() {
    let server = kvick();
    let mut admin = server.raw();
    admin.cmd(&["CONFIG", "SET", "tracking-table-max-keys", "10"]);
    let keys = keys_on_both_cores("bound:", 40);
    // Redirected, so that invalidations do not interleave with replies.
    let mut target = server.raw();
    let id = client_id(&mut target);
    target.cmd(&["SUBSCRIBE", "__redis__:invalidate"]);
    let mut c = conn(
        &server,
        false,
        &[&["CLIENT", "TRACKING", "on", "REDIRECT", id.as_str()]],
    );
    let mut d = conn(&server, true, &[&["CLIENT", "TRACKING", "on"]]);
    for k in &keys {
        c.cmd(&["GET", k.as_str()]);
    }
    d.cmd(&["GET", keys[39].as_str()]);
    let stats = String::from_utf8_lossy(&admin.cmd(&["INFO", "everything"])).to_string();
    let field = |name: &str| -> usize {
        let line = stats
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in INFO"));
        line[name.len() + 1..].trim().parse().unwrap()
    };
    assert_eq!(field("tracking_clients"), 2);
    let tracked = field("tracking_total_keys");
    assert!((1..=10).contains(&tracked), "{tracked} keys tracked");
    assert!(field("tracking_total_items") >= tracked);
    // The evicted keys were invalidated (at least 30 of 40).
    let evicted = invalidated(&mut target, 30);
    assert!(evicted.iter().all(|k| keys.contains(k)));
}

/// Whether a write that changes nothing invalidates, as in Redis: it does
/// only where Redis signals a modification (SET of the same value does;
/// SADD of a member already there, DEL of a missing key, LPUSHX on a
/// missing key do not). Each row's key is read by a tracking client, the
/// row's command runs from another client, then a sentinel key of the same
/// slot is written: the invalidations before the sentinel's say whether the
/// row's key was invalidated. kvick and redis-server must agree row by row.
#[test]
fn writes_that_change_nothing_match_redis() {
    // (setup, command): K is the tracked key, X another key of its slot.
    let rows: &[(&[&[&str]], &[&str])] = &[
        (&[&["SET", "K", "v"]], &["SET", "K", "v"]),
        (&[], &["DEL", "K"]),
        (&[&["SET", "K", "v"]], &["DEL", "K"]),
        (&[&["SET", "K", "1"]], &["SET", "K", "2", "NX"]),
        (&[&["SET", "K", "1"]], &["SET", "K", "2", "XX"]),
        (&[], &["SET", "K", "2", "XX"]),
        (&[&["SET", "K", "1"]], &["INCRBY", "K", "0"]),
        (&[&["SET", "K", "abc"]], &["APPEND", "K", ""]),
        (&[&["SET", "K", "abc"]], &["SETRANGE", "K", "0", ""]),
        (&[&["SET", "K", "a"]], &["SETBIT", "K", "0", "0"]),
        (&[&["SET", "K", "a"]], &["SETBIT", "K", "1", "1"]),
        (&[], &["GETDEL", "K"]),
        (&[&["SET", "K", "1"]], &["GETEX", "K"]),
        (&[&["SET", "K", "1"]], &["GETEX", "K", "PERSIST"]),
        (&[&["SET", "K", "1"]], &["PERSIST", "K"]),
        (&[&["SET", "K", "1"]], &["EXPIRE", "K", "100"]),
        (&[], &["EXPIRE", "K", "100"]),
        (&[&["SET", "K", "1"]], &["MSETNX", "K", "2", "X", "3"]),
        (&[&["SET", "K", "1"]], &["RENAME", "K", "K"]),
        (&[&["SET", "K", "1"], &["SET", "X", "2"]], &["COPY", "X", "K"]),
        (&[&["SADD", "K", "a"]], &["SADD", "K", "a"]),
        (&[&["SADD", "K", "a"]], &["SADD", "K", "b"]),
        (&[&["SADD", "K", "a"]], &["SREM", "K", "b"]),
        (&[&["SADD", "K", "a"]], &["SMOVE", "K", "X", "b"]),
        (&[&["SADD", "K", "a"]], &["SPOP", "K", "0"]),
        (&[], &["SINTERSTORE", "K", "X"]),
        (&[&["SADD", "K", "a"]], &["SINTERSTORE", "K", "X"]),
        (&[&["HSET", "K", "f", "v"]], &["HSET", "K", "f", "v"]),
        (&[&["HSET", "K", "f", "v"]], &["HDEL", "K", "g"]),
        (&[&["HSET", "K", "f", "v"]], &["HSETNX", "K", "f", "w"]),
        (&[&["HSET", "K", "f", "1"]], &["HINCRBY", "K", "f", "0"]),
        (&[], &["LPUSHX", "K", "a"]),
        (&[&["RPUSH", "K", "a"]], &["LREM", "K", "0", "b"]),
        (&[&["RPUSH", "K", "a"]], &["LSET", "K", "0", "a"]),
        (&[&["RPUSH", "K", "a"]], &["LTRIM", "K", "0", "-1"]),
        (&[&["RPUSH", "K", "a"]], &["LINSERT", "K", "BEFORE", "zz", "x"]),
        (&[&["RPUSH", "K", "a"]], &["LPOP", "K", "0"]),
        (&[], &["RPOPLPUSH", "X", "K"]),
        (&[&["RPUSH", "K", "a"]], &["LMOVE", "K", "K", "LEFT", "RIGHT"]),
        (&[&["ZADD", "K", "1", "a"]], &["ZADD", "K", "1", "a"]),
        (&[&["ZADD", "K", "1", "a"]], &["ZADD", "K", "2", "a"]),
        (&[&["ZADD", "K", "1", "a"]], &["ZREM", "K", "b"]),
        (&[&["ZADD", "K", "1", "a"]], &["ZINCRBY", "K", "0", "a"]),
        (&[&["ZADD", "K", "1", "a"]], &["ZREMRANGEBYSCORE", "K", "5", "6"]),
        (&[&["PFADD", "K", "a"]], &["PFADD", "K", "a"]),
        (&[&["XADD", "K", "1-1", "f", "v"]], &["XTRIM", "K", "MAXLEN", "100"]),
        (&[&["XADD", "K", "1-1", "f", "v"]], &["XDEL", "K", "9-9"]),
    ];
    let tags = keys_on_both_cores("row", rows.len());
    let mut outcomes: Vec<Vec<bool>> = Vec::new();
    for server in [RedisServer::start(), kvick()] {
        let mut target = server.raw();
        let id = client_id(&mut target);
        target.cmd(&["SUBSCRIBE", "__redis__:invalidate"]);
        let mut tracked = conn(&server, false, &[&["CLIENT", "TRACKING", "on", "REDIRECT", id.as_str()]]);
        let mut writer = server.raw();
        let mut seen = Vec::new();
        for ((setup, command), tag) in rows.iter().zip(&tags) {
            let (k, x, s) = (format!("{{{tag}}}k"), format!("{{{tag}}}x"), format!("{{{tag}}}s"));
            let fill = |c: &[&str]| -> Vec<String> {
                c.iter().map(|a| match *a { "K" => k.clone(), "X" => x.clone(), a => a.to_string() }).collect()
            };
            for c in setup.iter() {
                writer.cmd(&fill(c));
            }
            tracked.cmd(&["EXISTS", k.as_str()]);
            tracked.cmd(&["EXISTS", s.as_str()]);
            writer.cmd(&fill(command));
            writer.cmd(&["SET", s.as_str(), "1"]);
            let mut invalidated_k = false;
            loop {
                let keys = invalidated(&mut target, 1);
                if keys.contains(&k) {
                    invalidated_k = true;
                }
                if keys.contains(&s) {
                    break;
                }
            }
            seen.push(invalidated_k);
        }
        outcomes.push(seen);
    }
    let differ: Vec<String> = rows
        .iter()
        .enumerate()
        .filter(|(i, _)| outcomes[0][*i] != outcomes[1][*i])
        .map(|(i, (setup, command))| format!("{setup:?} {command:?}: redis {} kvick {}", outcomes[0][i], outcomes[1][i]))
        .collect();
    assert!(differ.is_empty(), "invalidation differs:\n{}", differ.join("\n"));
    // The table is not vacuous: some rows invalidate and some do not.
    assert!(outcomes[0].contains(&true) && outcomes[0].contains(&false));
}

/// NOLOOP when the client's own write spans both cores (MSET, DEL, RENAME,
/// SMOVE, LMOVE, SUNIONSTORE, MULTI/EXEC, a script): none of it comes back
/// to the client; another client's write does.
#[test]
fn noloop_spanning_writes() {
    let k = keys_on_both_cores("nl:", 2);
    let (a, b) = (k[0].as_str(), k[1].as_str());
    let writes: &[&[&str]] = &[
        &["MSET", a, "1", b, "2"],
        &["DEL", a, b],
        &["MSET", a, "1", b, "2"],
        &["RENAME", a, b],
        &["DEL", a, b],
        &["SADD", a, "m"],
        &["SMOVE", a, b, "m"],
        &["SUNIONSTORE", a, b],
        &["DEL", a, b],
        &["RPUSH", a, "x"],
        &["LMOVE", a, b, "LEFT", "RIGHT"],
        &["RPOPLPUSH", b, a],
        &["MULTI"],
        &["SET", a, "1"],
        &["SET", b, "1"],
        &["MSET", a, "2", b, "2"],
        &["EXEC"],
        &["EVAL", "redis.call('set', KEYS[1], 1) redis.call('del', KEYS[1], KEYS[2]) return 1", "2", a, b],
    ];
    for server in [RedisServer::start(), kvick()] {
        let mut target = server.raw();
        let id = client_id(&mut target);
        target.cmd(&["SUBSCRIBE", "__redis__:invalidate"]);
        let mut c = conn(&server, false, &[&["CLIENT", "TRACKING", "on", "REDIRECT", id.as_str(), "NOLOOP"]]);
        for w in writes {
            // Read both keys (of whatever type) before each write.
            c.cmd(&["EXISTS", a]);
            c.cmd(&["EXISTS", b]);
            let r = c.cmd(w);
            assert!(r[0] != b'-', "{w:?} on {}: {}", server.name(), escape(&r));
        }
        c.cmd(&["EXISTS", "nl:other"]);
        server.raw().cmd(&["SET", "nl:other", "1"]);
        assert_eq!(invalidated(&mut target, 1), ["nl:other"], "{}", server.name());
        assert_quiet(&mut target);
    }
}

/// Reads a tracking client makes in scripts and transactions, spanning
/// both cores (MGET of keys of two cores), are remembered like direct ones.
#[test]
fn script_and_exec_spanning_reads_are_remembered() {
    let k = keys_on_both_cores("sr:", 6);
    for server in [RedisServer::start(), kvick()] {
        let mut target = server.raw();
        let id = client_id(&mut target);
        target.cmd(&["SUBSCRIBE", "__redis__:invalidate"]);
        let mut c = conn(&server, false, &[&["CLIENT", "TRACKING", "on", "REDIRECT", id.as_str()]]);
        c.cmd(&["EVAL", "return redis.call('mget', KEYS[1], KEYS[2])", "2", k[0].as_str(), k[1].as_str()]);
        c.cmd(&["EVAL", "return redis.call('get', KEYS[1])", "1", k[2].as_str()]);
        c.cmd(&["MULTI"]);
        c.cmd(&["MGET", k[3].as_str(), k[4].as_str()]);
        c.cmd(&["EXEC"]);
        c.cmd(&["FUNCTION", "LOAD", "REPLACE", "#!lua name=srlib\nredis.register_function('rd', function(keys) return redis.call('get', keys[1]) end)"]);
        c.cmd(&["FCALL", "rd", "1", k[5].as_str()]);
        let mut writer = server.raw();
        for key in &k {
            writer.cmd(&["SET", key.as_str(), "1"]);
        }
        assert_eq!(invalidated(&mut target, k.len()), sorted(&k), "{}", server.name());
        assert_quiet(&mut target);
    }
}
