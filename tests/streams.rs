//! Streams: what the differential corpus cannot show. Consumers of a group
//! racing over streams on two cores each get every entry exactly once;
//! XREAD/XREADGROUP BLOCK with several clients, across cores.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use common::{KvickServer, RawConn, TestServer};

/// "{a}..." lives on core 1 and "{b}..." on core 0 with two threads.
const STREAMS: [&str; 2] = ["{a}jobs", "{b}jobs"];
const ENTRIES: usize = 2000;
const CONSUMERS: usize = 4;

/// The tests run one at a time: while the delivery test kept both CPUs busy,
/// a second server started beside it once left its first forwarded command
/// unanswered for 10 s (seen in about one run in six on the shared 2-core
/// machine; not reproduced with other load, see the report).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn group_delivers_each_entry_once_across_cores() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = KvickServer::start(&["--threads", "2"]);
    let mut con = server.client();
    for s in STREAMS {
        let _: () = redis::cmd("XGROUP").arg("CREATE").arg(s).arg("g").arg("0").arg("MKSTREAM").query(&mut con).unwrap();
    }
    // The producer and the consumers run at once; a consumer stops at an
    // empty read that started after the producer had finished.
    let produced = Arc::new(AtomicBool::new(false));
    let producer = {
        let mut con = server.client();
        thread::spawn(move || {
            for i in 1..=ENTRIES {
                for s in STREAMS {
                    let _: String = redis::cmd("XADD").arg(s).arg(format!("{i}-1")).arg("n").arg(i).query(&mut con).unwrap();
                }
            }
        })
    };
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|c| {
            let mut con = server.client();
            let produced = produced.clone();
            thread::spawn(move || {
                let mut got: Vec<(String, String)> = Vec::new();
                loop {
                    let finished = produced.load(Ordering::SeqCst);
                    let reply: redis::Value = redis::cmd("XREADGROUP")
                        .arg("GROUP")
                        .arg("g")
                        .arg(format!("c{c}"))
                        .arg("COUNT")
                        .arg(7)
                        .arg("STREAMS")
                        .arg(STREAMS[0])
                        .arg(STREAMS[1])
                        .arg(">")
                        .arg(">")
                        .query(&mut con)
                        .unwrap();
                    let read = entry_ids(&reply);
                    if read.is_empty() && finished {
                        return got;
                    }
                    got.extend(read);
                }
            })
        })
        .collect();
    producer.join().unwrap();
    produced.store(true, Ordering::SeqCst);
    let mut seen = HashSet::new();
    for c in consumers {
        for e in c.join().unwrap() {
            assert!(seen.insert(e.clone()), "{e:?} delivered twice");
        }
    }
    assert_eq!(seen.len(), 2 * ENTRIES);
    for s in STREAMS {
        let pending: (usize, String, String, redis::Value) = redis::cmd("XPENDING").arg(s).arg("g").query(&mut con).unwrap();
        assert_eq!(pending.0, ENTRIES);
    }
}

/// (stream, id) of every entry in an XREADGROUP reply (RESP2).
fn entry_ids(reply: &redis::Value) -> Vec<(String, String)> {
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("expected a bulk string, got {other:?}"),
    };
    let mut out = Vec::new();
    if let redis::Value::Array(streams) = reply {
        for s in streams {
            let redis::Value::Array(pair) = s else { panic!("stream reply {s:?}") };
            let redis::Value::Array(entries) = &pair[1] else { panic!("entries {pair:?}") };
            for e in entries {
                let redis::Value::Array(e) = e else { panic!("entry {e:?}") };
                out.push((text(&pair[0]), text(&e[0])));
            }
        }
    }
    out
}

/// Waits until INFO reports `n` blocked clients (`RawConn::wait_blocked`).
fn wait_blocked(c: &mut RawConn, n: usize) {
    c.wait_blocked(n);
}

/// Sends a blocking read on a fresh connection; returns once it waits.
fn block(server: &TestServer, ctl: &mut RawConn, args: &[&str], now_blocked: usize) -> RawConn {
    let mut c = server.raw();
    c.send(args).unwrap();
    wait_blocked(ctl, now_blocked);
    c
}

fn bulk(s: &str) -> String {
    format!("${}\r\n{}\r\n", s.len(), s)
}

/// The reply of a woken read: one stream with one entry `id` of field f.
fn one_entry(key: &str, id: &str, value: &str) -> Vec<u8> {
    format!("*1\r\n*2\r\n{}*1\r\n*2\r\n{}*2\r\n{}{}", bulk(key), bulk(id), bulk("f"), bulk(value)).into_bytes()
}

#[test]
fn xread_block_wakes_every_reader_of_the_stream_on_either_core() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = KvickServer::start(&["--threads", "2"]);
    let mut ctl = server.raw();
    ctl.cmd(&["XADD", STREAMS[0], "1-1", "f", "old"]);
    for (n, key) in STREAMS.iter().enumerate() {
        let other = STREAMS[1 - n];
        let mut readers = vec![
            block(&server, &mut ctl, &["XREAD", "BLOCK", "0", "STREAMS", key, "$"], 1),
            block(&server, &mut ctl, &["XREAD", "COUNT", "5", "BLOCK", "0", "STREAMS", other, key, "$", "$"], 2),
            block(&server, &mut ctl, &["XREAD", "BLOCK", "0", "STREAMS", "{a}none", key, "0", "$"], 3),
        ];
        // A reader after an ID the stream has not reached keeps waiting.
        let mut later = block(&server, &mut ctl, &["XREAD", "BLOCK", "0", "STREAMS", key, "9-0"], 4);
        let id = format!("{}-1", n + 5);
        ctl.cmd(&["XADD", key, id.as_str(), "f", "new"]);
        for r in &mut readers {
            assert_eq!(r.read_reply().unwrap(), one_entry(key, &id, "new"));
        }
        wait_blocked(&mut ctl, 1);
        ctl.cmd(&["XADD", key, "9-1", "f", "late"]);
        assert_eq!(later.read_reply().unwrap(), one_entry(key, "9-1", "late"));
        wait_blocked(&mut ctl, 0);
    }
}

#[test]
fn xreadgroup_block_gives_each_new_entry_to_one_waiting_consumer() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = KvickServer::start(&["--threads", "2"]);
    let mut ctl = server.raw();
    for key in STREAMS {
        ctl.cmd(&["XGROUP", "CREATE", key, "g", "$", "MKSTREAM"]);
        let mut alice = block(&server, &mut ctl, &["XREADGROUP", "GROUP", "g", "alice", "BLOCK", "0", "STREAMS", key, ">"], 1);
        let mut bob = block(&server, &mut ctl, &["XREADGROUP", "GROUP", "g", "bob", "BLOCK", "0", "NOACK", "STREAMS", key, ">"], 2);
        ctl.cmd(&["XADD", key, "1-1", "f", "one"]);
        assert_eq!(alice.read_reply().unwrap(), one_entry(key, "1-1", "one"));
        wait_blocked(&mut ctl, 1);
        ctl.cmd(&["XADD", key, "2-1", "f", "two"]);
        assert_eq!(bob.read_reply().unwrap(), one_entry(key, "2-1", "two"));
        wait_blocked(&mut ctl, 0);
        // Alice's entry is pending; Bob read with NOACK.
        let summary = ctl.cmd(&["XPENDING", key, "g"]);
        assert!(summary.starts_with(format!("*4\r\n:1\r\n{}{}", bulk("1-1"), bulk("1-1")).as_bytes()), "{}", String::from_utf8_lossy(&summary));
    }
}

#[test]
fn blocked_group_readers_learn_that_their_group_or_stream_is_gone() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = KvickServer::start(&["--threads", "2"]);
    let mut ctl = server.raw();
    for key in STREAMS {
        ctl.cmd(&["XGROUP", "CREATE", key, "g", "$", "MKSTREAM"]);
        let mut plain = block(&server, &mut ctl, &["XREAD", "BLOCK", "0", "STREAMS", key, "$"], 1);
        let mut group = block(&server, &mut ctl, &["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", key, ">"], 2);
        ctl.cmd(&["XGROUP", "DESTROY", key, "g"]);
        assert_eq!(group.read_reply().unwrap(), b"-NOGROUP the consumer group this client was blocked on no longer exists\r\n");
        ctl.cmd(&["XGROUP", "CREATE", key, "g", "$"]);
        let mut group = block(&server, &mut ctl, &["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", key, ">"], 2);
        ctl.cmd(&["DEL", key]);
        assert_eq!(group.read_reply().unwrap(), b"-UNBLOCKED the stream key no longer exists\r\n");
        // The plain reader waits on through the deletion.
        wait_blocked(&mut ctl, 1);
        ctl.cmd(&["XADD", key, "3-3", "f", "v"]);
        assert_eq!(plain.read_reply().unwrap(), one_entry(key, "3-3", "v"));
        ctl.cmd(&["DEL", key]);
    }
}

#[test]
fn block_times_out_answers_at_once_with_data_and_not_at_all_in_multi() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = KvickServer::start(&["--threads", "2"]);
    let mut ctl = server.raw();
    let mut c = server.raw();
    for key in STREAMS {
        assert_eq!(c.cmd(&["XREAD", "BLOCK", "30", "STREAMS", key, "$"]), b"*-1\r\n");
        assert_eq!(c.cmd(&["XREAD", "BLOCK", "20", "STREAMS", STREAMS[0], STREAMS[1], "$", "$"]), b"*-1\r\n");
        ctl.cmd(&["XGROUP", "CREATE", key, "g", "$", "MKSTREAM"]);
        assert_eq!(c.cmd(&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "20", "STREAMS", key, ">"]), b"*-1\r\n");
        assert_eq!(ctl.info_number("clients", "blocked_clients"), 0);
        ctl.cmd(&["XADD", key, "1-1", "f", "v"]);
        assert_eq!(c.cmd(&["XREAD", "BLOCK", "0", "STREAMS", key, "0"]), one_entry(key, "1-1", "v"));
        c.cmd(&["MULTI"]);
        c.cmd(&["XREAD", "BLOCK", "0", "STREAMS", key, "$"]);
        assert_eq!(c.cmd(&["EXEC"]), b"*1\r\n*-1\r\n");
        // A disconnected reader leaves nothing behind.
        let gone = block(&server, &mut ctl, &["XREAD", "BLOCK", "0", "STREAMS", STREAMS[0], STREAMS[1], "$", "$"], 1);
        drop(gone);
        wait_blocked(&mut ctl, 0);
        ctl.cmd(&["XADD", key, "2-1", "f", "w"]);
        assert_eq!(ctl.info_number("clients", "blocked_clients"), 0);
    }
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.cmd(&["XREAD", "BLOCK", "20", "STREAMS", STREAMS[0], "$"]), b"_\r\n");
}
