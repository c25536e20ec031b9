//! Smoke tests: real clients (the `redis` crate and redis-cli) against kvick,
//! once with one executor thread and once with two, so that commands on keys
//! owned by the other core are covered.

mod common;

use common::{KvickServer, TestServer};
use redis::Commands;
use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `check` against a fresh kvick for each thread count.
fn with_each_thread_count(check: impl Fn(&TestServer)) {
    for threads in ["1", "2"] {
        let server = KvickServer::start(&["--threads", threads]);
        check(&server);
    }
}

#[test]
fn basic_string_and_key_commands() {
    with_each_thread_count(|server| {
        let mut con = server.client();
        let () = con.set("greeting", "hello").unwrap();
        let got: Option<String> = con.get("greeting").unwrap();
        assert_eq!(got.as_deref(), Some("hello"));
        let missing: Option<String> = con.get("missing").unwrap();
        assert_eq!(missing, None);

        // Several keys, so that with two threads some live on each core.
        let pairs: Vec<(String, String)> = (0..20)
            .map(|i| (format!("k{i}"), format!("v{i}")))
            .collect();
        let () = con.mset(&pairs).unwrap();
        let mut keys: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
        keys.push("missing".into());
        let values: Vec<Option<String>> = con.mget(&keys).unwrap();
        let mut expected: Vec<Option<String>> =
            pairs.iter().map(|(_, v)| Some(v.clone())).collect();
        expected.push(None);
        assert_eq!(values, expected);

        let deleted: i64 = con.del(&keys).unwrap();
        assert_eq!(deleted, 20);
        let values: Vec<Option<String>> = con.mget(&keys).unwrap();
        assert!(values.iter().all(Option::is_none), "{values:?}");

        let set: i64 = con.expire("greeting", 100).unwrap();
        assert_eq!(set, 1);
        let ttl: i64 = con.ttl("greeting").unwrap();
        assert!((99..=100).contains(&ttl), "TTL {ttl}");
        let ttl: i64 = con.ttl("missing").unwrap();
        assert_eq!(ttl, -2);
        let () = con.set("no-ttl", "x").unwrap();
        let ttl: i64 = con.ttl("no-ttl").unwrap();
        assert_eq!(ttl, -1);
    });
}

#[test]
fn pipeline_of_1000_commands() {
    with_each_thread_count(|server| {
        let mut con = server.client();
        let mut pipe = redis::pipe();
        for i in 0..500 {
            pipe.cmd("SET").arg(format!("p{i}")).arg(i).ignore();
        }
        for i in 0..500 {
            pipe.cmd("GET").arg(format!("p{i}"));
        }
        let values: Vec<i64> = pipe.query(&mut con).unwrap();
        assert_eq!(values, (0..500).collect::<Vec<i64>>());

        // Replies must come back in order even when consecutive commands
        // go to different cores.
        let mut pipe = redis::pipe();
        for i in 0..1000 {
            pipe.cmd("INCR").arg(format!("c{}", i % 7));
        }
        let counts: Vec<i64> = pipe.query(&mut con).unwrap();
        let expected: Vec<i64> = (0..1000).map(|i| i / 7 + 1).collect();
        assert_eq!(counts, expected);
    });
}

#[test]
fn ten_megabyte_value_round_trip() {
    with_each_thread_count(|server| {
        let mut con = server.client();
        // Every byte value, CR and LF included, in a pattern that does not
        // repeat on any short period, so truncation or reordering shows.
        let value: Vec<u8> = (0..10 * 1024 * 1024u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let () = con.set("big", &value).unwrap();
        let len: usize = con.strlen("big").unwrap();
        assert_eq!(len, value.len());
        let got: Vec<u8> = con.get("big").unwrap();
        assert!(
            got == value,
            "10 MB value came back different ({} bytes)",
            got.len()
        );
    });
}

/// Runs redis-cli against `port`, feeding it `stdin`.
fn redis_cli(port: u16, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run redis-cli ({e}); run scripts/setup.sh to install redis-tools")
        });
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "redis-cli {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn cli_stdout(port: u16, args: &[&str]) -> String {
    String::from_utf8(redis_cli(port, args, b"").stdout).unwrap()
}

#[test]
fn redis_cli_commands_and_pipe_mode() {
    with_each_thread_count(|server| {
        let port = server.port();
        assert_eq!(cli_stdout(port, &["ping"]), "PONG\n");
        assert_eq!(cli_stdout(port, &["set", "a", "b"]), "OK\n");
        assert_eq!(cli_stdout(port, &["get", "a"]), "b\n");

        // --pipe sends raw protocol, then an ECHO with a random marker to
        // know when all replies are in, and reports the counts.
        let mut input = Vec::new();
        for i in 0..10_000 {
            input.extend_from_slice(&common::encode_command(&[
                "SET".to_string(),
                format!("pipe:{i}"),
                format!("value-{i}"),
            ]));
        }
        let output = redis_cli(port, &["--pipe"], &input);
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            report.contains("errors: 0, replies: 10000"),
            "redis-cli --pipe reported:\n{report}"
        );

        let mut con = server.client();
        let last: String = con.get("pipe:9999").unwrap();
        assert_eq!(last, "value-9999");
        let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
        assert_eq!(size, 10_001, "10000 piped keys plus 'a'");
    });
}

/// Enough keys that a shard's key table stages its growth in a second
/// table (`shard::table`): every key is found, SCAN returns each once,
/// deletions and RANDOMKEY reach keys in both tables.
#[test]
fn a_large_keyspace_is_fully_reachable() {
    with_each_thread_count(|server| {
        let n = 40_000;
        let mut raw = server.raw();
        for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
            chunk.iter().for_each(|i| raw.send(&["SET", &format!("key:{i}"), &i.to_string()]).unwrap());
            chunk.iter().for_each(|_| assert_eq!(raw.read_reply().unwrap(), b"+OK\r\n"));
        }
        let mut con = server.client();
        let size: usize = redis::cmd("DBSIZE").query(&mut con).unwrap();
        assert_eq!(size, n);
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN").arg(cursor).arg("COUNT").arg(500).query(&mut con).unwrap();
            keys.into_iter().for_each(|k| assert!(seen.insert(k.clone()), "{k} returned twice"));
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), n);
        for i in (0..n).step_by(2) {
            raw.send(&["DEL", &format!("key:{i}")]).unwrap();
        }
        for _ in (0..n).step_by(2) {
            assert_eq!(raw.read_reply().unwrap(), b":1\r\n");
        }
        for i in 0..n {
            let want = if i % 2 == 0 { "$-1\r\n".to_string() } else { format!("${}\r\n{i}\r\n", i.to_string().len()) };
            assert_eq!(raw.cmd(&["GET", &format!("key:{i}")]), want.into_bytes(), "key:{i}");
        }
        for _ in 0..100 {
            let k: String = redis::cmd("RANDOMKEY").query(&mut con).unwrap();
            let i: usize = k.strip_prefix("key:").unwrap().parse().unwrap();
            assert_eq!(i % 2, 1, "{k} was deleted");
        }
    });
}
