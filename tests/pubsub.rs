//! Pub/sub on a two-core kvick: fan-out to subscribers on both cores in
//! publish order per publisher, patterns and shard channels, RESP3 pushes
//! mixed with replies, the subscription counts, slow subscribers cut off by
//! `client-output-buffer-limit pubsub`, and keyspace notifications raised on
//! the core that owns each key. Connections spread over both cores by the
//! kernel (SO_REUSEPORT), so several of each are opened.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{keys_on_both_cores, KvickServer, RawConn, TestServer};

fn start() -> TestServer {
    KvickServer::start(&["--threads", "2"])
}

/// The elements of a flat array or push of bulk strings and integers.
fn items(raw: &[u8]) -> Vec<String> {
    let head = raw.first().copied().unwrap_or_default();
    assert!(head == b'*' || head == b'>', "not an array: {:?}", String::from_utf8_lossy(raw));
    common::frame_strings(raw)
}

fn subscriber(port: u16, resp3: bool, cmd: &[&str]) -> RawConn {
    let mut c = RawConn::connect(port).unwrap();
    if resp3 {
        c.cmd(&["HELLO", "3"]);
    }
    c.send(cmd).unwrap();
    for _ in 1..cmd.len() {
        let r = items(&c.read_reply().unwrap());
        assert_eq!(r[0], cmd[0].to_ascii_lowercase());
    }
    c
}

fn int(r: &[u8]) -> i64 {
    let s = String::from_utf8_lossy(r);
    s.trim_start_matches(':')
        .trim_end()
        .parse()
        .unwrap_or_else(|_| panic!("not an integer: {s:?}"))
}

#[test]
fn messages_reach_every_core_in_publish_order() {
    let server = start();
    let port = server.port();
    let subs: Vec<RawConn> = (0..8)
        .map(|i| subscriber(port, i % 2 == 1, &["SUBSCRIBE", "news"]))
        .collect();
    const PUBLISHERS: usize = 4;
    const EACH: usize = 300;
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            thread::spawn(move || {
                let mut c = RawConn::connect(port).unwrap();
                for n in 0..EACH {
                    let r = c.cmd(&["PUBLISH", "news", &format!("{p}:{n}")]);
                    assert_eq!(int(&r), 8, "every subscriber, on both cores, counts");
                }
            })
        })
        .collect();
    for p in publishers {
        p.join().unwrap();
    }
    for (i, mut s) in subs.into_iter().enumerate() {
        let mut next = [0usize; PUBLISHERS];
        for _ in 0..PUBLISHERS * EACH {
            let m = items(&s.read_reply().unwrap());
            assert_eq!(m[..2], ["message", "news"], "subscriber {i}");
            let (p, n) = m[2].split_once(':').unwrap();
            let (p, n): (usize, usize) = (p.parse().unwrap(), n.parse().unwrap());
            assert_eq!(
                n, next[p],
                "subscriber {i}: publisher {p}'s messages out of order"
            );
            next[p] += 1;
        }
        assert_eq!(next, [EACH; PUBLISHERS]);
    }
}

#[test]
fn patterns_shard_channels_and_counts() {
    let server = start();
    let port = server.port();
    let mut plain: Vec<RawConn> = (0..4)
        .map(|i| subscriber(port, i % 2 == 0, &["SUBSCRIBE", "news.a", "other"]))
        .collect();
    let mut pattern: Vec<RawConn> = (0..4)
        .map(|_| subscriber(port, false, &["PSUBSCRIBE", "news.*"]))
        .collect();
    let mut shard: Vec<RawConn> = (0..4)
        .map(|_| subscriber(port, false, &["SSUBSCRIBE", "{s}1"]))
        .collect();
    let mut c = RawConn::connect(port).unwrap();
    assert_eq!(int(&c.cmd(&["PUBLISH", "news.a", "one"])), 8);
    assert_eq!(int(&c.cmd(&["PUBLISH", "news.b", "two"])), 4);
    assert_eq!(int(&c.cmd(&["SPUBLISH", "{s}1", "three"])), 4);
    assert_eq!(int(&c.cmd(&["SPUBLISH", "news.a", "nobody"])), 0);
    for s in &mut plain {
        assert_eq!(
            items(&s.read_reply().unwrap()),
            ["message", "news.a", "one"]
        );
    }
    for s in &mut pattern {
        assert_eq!(
            items(&s.read_reply().unwrap()),
            ["pmessage", "news.*", "news.a", "one"]
        );
        assert_eq!(
            items(&s.read_reply().unwrap()),
            ["pmessage", "news.*", "news.b", "two"]
        );
    }
    for s in &mut shard {
        assert_eq!(
            items(&s.read_reply().unwrap()),
            ["smessage", "{s}1", "three"]
        );
    }
    assert_eq!(
        items(&c.cmd(&["PUBSUB", "NUMSUB", "news.a", "other", "none"])),
        ["news.a", "4", "other", "4", "none", "0"]
    );
    assert_eq!(int(&c.cmd(&["PUBSUB", "NUMPAT"])), 1);
    let mut chans = items(&c.cmd(&["PUBSUB", "CHANNELS"]));
    chans.sort();
    assert_eq!(chans, ["news.a", "other"]);
    assert_eq!(items(&c.cmd(&["PUBSUB", "CHANNELS", "n*"])), ["news.a"]);
    assert_eq!(items(&c.cmd(&["PUBSUB", "SHARDCHANNELS"])), ["{s}1"]);
    assert_eq!(
        items(&c.cmd(&["PUBSUB", "SHARDNUMSUB", "{s}1"])),
        ["{s}1", "4"]
    );
    let list = String::from_utf8(c.cmd(&["CLIENT", "LIST"])).unwrap();
    assert_eq!(
        list.matches("flags=P db=0 sub=2 psub=0 ssub=0").count(),
        4,
        "{list}"
    );
    assert_eq!(
        list.matches("flags=P db=0 sub=0 psub=1 ssub=0").count(),
        4,
        "{list}"
    );
    assert_eq!(
        list.matches("flags=P db=0 sub=0 psub=0 ssub=1").count(),
        4,
        "{list}"
    );
    assert_eq!(
        list.matches("flags=N db=0 sub=0 psub=0 ssub=0").count(),
        1,
        "{list}"
    );
    let of_type = |c: &mut RawConn, t: &str| {
        String::from_utf8(c.cmd(&["CLIENT", "LIST", "TYPE", t]))
            .unwrap()
            .matches("id=")
            .count()
    };
    assert_eq!(of_type(&mut c, "pubsub"), 12);
    assert_eq!(of_type(&mut c, "normal"), 1);
    // Unsubscribing and disconnecting both leave the tables.
    let mut first = plain.remove(0);
    first.send(&["UNSUBSCRIBE", "other"]).unwrap();
    assert_eq!(
        items(&first.read_reply().unwrap()),
        ["unsubscribe", "other", "1"]
    );
    drop(plain);
    drop(pattern);
    let deadline = Instant::now() + Duration::from_secs(10);
    while items(&c.cmd(&["PUBSUB", "NUMSUB", "news.a", "other"])) != ["news.a", "1", "other", "0"]
        || int(&c.cmd(&["PUBSUB", "NUMPAT"])) != 0
    {
        assert!(
            Instant::now() < deadline,
            "closed subscribers stayed subscribed"
        );
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(int(&c.cmd(&["PUBLISH", "news.a", "last"])), 1);
    assert_eq!(
        items(&first.read_reply().unwrap()),
        ["message", "news.a", "last"]
    );
}

#[test]
fn resp3_client_mixes_pushes_and_commands() {
    let server = start();
    let port = server.port();
    let mut subs: Vec<RawConn> = (0..4)
        .map(|_| subscriber(port, true, &["SUBSCRIBE", "ch"]))
        .collect();
    let mut publisher = RawConn::connect(port).unwrap();
    let keys = keys_on_both_cores("mix", 4);
    for (round, key) in keys.iter().enumerate() {
        assert_eq!(
            int(&publisher.cmd(&["PUBLISH", "ch", &format!("m{round}")])),
            4
        );
        for s in &mut subs {
            // The push may come before or after the replies, never inside one.
            s.send(&["SET", key, "v"]).unwrap();
            s.send(&["GET", key]).unwrap();
            let mut seen = Vec::new();
            for _ in 0..3 {
                seen.push(s.read_reply().unwrap());
            }
            let push = seen
                .iter()
                .position(|r| r.starts_with(b">"))
                .expect("the message arrived");
            assert_eq!(items(&seen[push]), ["message", "ch", &format!("m{round}")]);
            seen.remove(push);
            assert_eq!(seen, [b"+OK\r\n".to_vec(), b"$1\r\nv\r\n".to_vec()]);
        }
    }
}

#[test]
fn resp2_subscribed_mode_refuses_other_commands() {
    let server = start();
    let mut s = subscriber(server.port(), false, &["SUBSCRIBE", "a"]);
    assert_eq!(
        s.cmd(&["GET", "x"]),
        b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"
    );
    assert_eq!(s.cmd(&["PING"]), b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    assert_eq!(s.cmd(&["RESET"]), b"+RESET\r\n");
    assert_eq!(s.cmd(&["GET", "x"]), b"$-1\r\n");
}

/// A subscriber that does not read is disconnected once its pending
/// messages pass the hard limit; the server keeps serving everyone else.
#[test]
fn slow_subscriber_is_disconnected_by_the_hard_limit() {
    let server = start();
    let port = server.port();
    let mut c = RawConn::connect(port).unwrap();
    assert_eq!(
        c.cmd(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 2mb 1mb 60"
        ]),
        b"+OK\r\n"
    );
    let mut fast = subscriber(port, false, &["SUBSCRIBE", "big"]);
    let mut slow = subscriber(port, false, &["SUBSCRIBE", "big"]);
    let payload = "x".repeat(64 * 1024);
    let reader = thread::spawn(move || {
        let mut n = 0;
        while n < 400 {
            let m = fast.read_reply().unwrap();
            assert!(m.len() > 64 * 1024);
            n += 1;
        }
        fast
    });
    // 400 × 64 KiB = 25 MiB for the slow one, far past its 2 MiB limit and
    // the socket buffers.
    for _ in 0..400 {
        let n = int(&c.cmd(&["PUBLISH", "big", &payload]));
        assert!(n == 1 || n == 2);
    }
    let mut fast = reader.join().unwrap();
    assert_gone(&mut c, &mut slow, "big");
    assert_eq!(int(&c.cmd(&["PUBLISH", "big", "after"])), 1);
    assert_eq!(
        items(&fast.read_reply().unwrap()),
        ["message", "big", "after"]
    );
}

/// The slow subscriber's connection ends (after whatever it was sent) and
/// only one subscriber of `channel` is left.
fn assert_gone(c: &mut RawConn, slow: &mut RawConn, channel: &str) {
    loop {
        match slow.read_reply() {
            Ok(m) => assert!(m.starts_with(b"*3\r\n$7\r\nmessage")),
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
                break;
            }
        }
    }
    assert_eq!(
        items(&c.cmd(&["PUBSUB", "NUMSUB", channel])),
        [channel, "1"]
    );
    let list = String::from_utf8(c.cmd(&["CLIENT", "LIST"])).unwrap();
    assert_eq!(
        list.lines().filter(|l| l.starts_with("id=")).count(),
        2,
        "{list}"
    );
}

/// Over the soft limit for longer than its seconds: disconnected at the
/// next message, with no hard limit set.
#[test]
fn slow_subscriber_is_disconnected_by_the_soft_limit() {
    let server = start();
    let port = server.port();
    let mut c = RawConn::connect(port).unwrap();
    assert_eq!(
        c.cmd(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 0 1mb 1"
        ]),
        b"+OK\r\n"
    );
    let mut fast = subscriber(port, true, &["SUBSCRIBE", "soft"]);
    let mut slow = subscriber(port, false, &["SUBSCRIBE", "soft"]);
    let payload = "y".repeat(64 * 1024);
    let publish = |c: &mut RawConn, fast: &mut RawConn, n: usize| {
        for _ in 0..n {
            c.cmd(&["PUBLISH", "soft", &payload]);
            assert!(fast.read_reply().unwrap().len() > 64 * 1024);
        }
    };
    publish(&mut c, &mut fast, 200);
    assert_eq!(
        items(&c.cmd(&["PUBSUB", "NUMSUB", "soft"])),
        ["soft", "2"],
        "within the soft period"
    );
    thread::sleep(Duration::from_millis(1500));
    publish(&mut c, &mut fast, 2);
    assert_gone(&mut c, &mut slow, "soft");
}

/// Every notification class kvick raises, for keys on both cores, seen by
/// subscribers on both cores; `expired` comes from active expiry (the key
/// is never touched again).
#[test]
fn keyspace_notifications() {
    let server = start();
    let port = server.port();
    let mut c = RawConn::connect(port).unwrap();
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA$nm"]),
        b"+OK\r\n"
    );
    assert_eq!(
        items(&c.cmd(&["CONFIG", "GET", "notify-keyspace-events"])),
        ["notify-keyspace-events", "AKEm"]
    );
    let mut subs: Vec<RawConn> = (0..4)
        .map(|i| subscriber(port, i % 2 == 0, &["PSUBSCRIBE", "__key*@0__:*"]))
        .collect();
    let keys = keys_on_both_cores("ev", 2);
    let mut expected: Vec<(String, String)> = Vec::new();
    let mut run = |c: &mut RawConn, args: &[&str], events: &[&str]| {
        c.cmd(args);
        for e in events {
            expected.push((format!("__keyspace@0__:{}", args[1]), e.to_string()));
            expected.push((format!("__keyevent@0__:{e}"), args[1].to_string()));
        }
    };
    for k in &keys {
        let (s, l, h, z, x, t, m) = (
            format!("{k}s"),
            format!("{k}l"),
            format!("{k}h"),
            format!("{k}z"),
            format!("{k}x"),
            format!("{k}t"),
            format!("{k}m"),
        );
        run(&mut c, &["SET", &s, "1"], &["new", "set"]);
        run(&mut c, &["INCRBY", &s, "2"], &["incrby"]);
        run(&mut c, &["EXPIRE", &s, "100"], &["expire"]);
        run(&mut c, &["DEL", &s], &["del"]);
        run(&mut c, &["RPUSH", &l, "a", "b"], &["new", "rpush"]);
        run(&mut c, &["LPOP", &l], &["lpop"]);
        run(&mut c, &["HSET", &h, "f", "v"], &["new", "hset"]);
        let set = h.replace('h', "S");
        run(&mut c, &["SADD", &set, "m", "n"], &["new", "sadd"]);
        run(&mut c, &["SPOP", &set, "5"], &["spop", "del"]);
        run(&mut c, &["SETBIT", &s, "3", "1"], &["new", "setbit"]);
        run(&mut c, &["ZADD", &z, "1", "m"], &["new", "zadd"]);
        run(&mut c, &["XADD", &t, "*", "f", "v"], &["new", "xadd"]);
        run(&mut c, &["GET", &m], &["keymiss"]);
        run(
            &mut c,
            &["SET", &x, "v", "PX", "30"],
            &["new", "set", "expire"],
        );
    }
    for k in &keys {
        let x = format!("{k}x");
        expected.push((format!("__keyspace@0__:{x}"), "expired".into()));
        expected.push((format!("__keyevent@0__:expired"), x));
    }
    for (i, s) in subs.iter_mut().enumerate() {
        let mut got = Vec::new();
        while got.len() < expected.len() {
            let m = items(&s.read_reply().unwrap());
            assert_eq!(m[0], "pmessage");
            got.push((m[2].clone(), m[3].clone()));
        }
        // Each key's events come in order from its core; the two cores'
        // streams interleave, so compare per key (the exact key: names
        // made from one prefix live on either core).
        let per_key = |v: &Vec<(String, String)>| {
            let mut m: std::collections::BTreeMap<String, Vec<(String, String)>> = Default::default();
            for (ch, msg) in v {
                let key = ch.strip_prefix("__keyspace@0__:").unwrap_or(msg);
                m.entry(key.to_string()).or_default().push((ch.clone(), msg.clone()));
            }
            m
        };
        assert_eq!(per_key(&got), per_key(&expected), "subscriber {i}");
    }
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", ""]),
        b"+OK\r\n"
    );
    c.cmd(&["SET", "quiet", "1"]);
    assert_eq!(int(&c.cmd(&["PUBLISH", "marker", "x"])), 0);
}

/// INFO's pubsub_channels, pubsub_patterns and pubsubshard_channels count
/// the names subscribed on any core once each, however many clients (on
/// however many cores) subscribe to them.
#[test]
fn info_counts_subscriptions_over_cores() {
    let server = start();
    let mut c = server.raw();
    let info = |c: &mut RawConn| {
        ["pubsub_channels", "pubsub_patterns", "pubsubshard_channels"].map(|f| c.info_number("stats", f))
    };
    assert_eq!(info(&mut c), [0, 0, 0]);
    // Eight clients of each kind: on both cores, whatever the kernel does.
    let subs: Vec<RawConn> = (0..8)
        .flat_map(|i| {
            [
                subscriber(server.port(), false, &["SUBSCRIBE", "news", &format!("own{i}")]),
                subscriber(server.port(), false, &["PSUBSCRIBE", "n*"]),
                subscriber(server.port(), false, &["SSUBSCRIBE", "shard"]),
            ]
        })
        .collect();
    assert_eq!(info(&mut c), [9, 1, 1]);
    drop(subs);
    let start = Instant::now();
    while info(&mut c) != [0, 0, 0] {
        assert!(start.elapsed() < Duration::from_secs(20), "closed subscriptions still counted");
        thread::sleep(Duration::from_millis(5));
    }
}

/// One pipeline `SET k v` then `PUBLISH ch m`: a client subscribed to both
/// `__keyspace@0__:k` and `ch` hears the keyspace notification first, as
/// from redis-server, with k on either core and subscribers on both (and
/// with one core).
#[test]
fn keyspace_notification_precedes_a_later_publish() {
    for threads in ["1", "2"] {
        let server = KvickServer::start(&["--threads", threads]);
        let port = server.port();
        let mut c = RawConn::connect(port).unwrap();
        assert_eq!(c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "K$"]), b"+OK\r\n");
        let keys = keys_on_both_cores("ord", 4);
        let mut subs: Vec<RawConn> = (0..4)
            .map(|i| {
                let mut args = vec!["SUBSCRIBE", "ch"];
                let channels: Vec<String> = keys.iter().map(|k| format!("__keyspace@0__:{k}")).collect();
                args.extend(channels.iter().map(String::as_str));
                subscriber(port, i % 2 == 1, &args)
            })
            .collect();
        for round in 0..20 {
            for k in &keys {
                let mut pipeline = common::encode_command(&["SET", k.as_str(), "v"]);
                pipeline.extend(common::encode_command(&["PUBLISH", "ch", &format!("{round}{k}")]));
                c.send_raw(&pipeline).unwrap();
                assert_eq!(c.read_reply().unwrap(), b"+OK\r\n");
                assert_eq!(int(&c.read_reply().unwrap()), 4);
                for (i, s) in subs.iter_mut().enumerate() {
                    let first = items(&s.read_reply().unwrap());
                    let second = items(&s.read_reply().unwrap());
                    assert_eq!(first[1..], [format!("__keyspace@0__:{k}"), "set".to_string()], "threads {threads}, subscriber {i}");
                    assert_eq!(second[1..], ["ch".to_string(), format!("{round}{k}")], "threads {threads}, subscriber {i}");
                }
            }
        }
    }
}
