//! Streams: what the differential corpus cannot show. Consumers of a group
//! racing over streams on two cores each get every entry exactly once, and
//! BLOCK (which would wait on redis-server) is refused, not ignored.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use common::KvickServer;

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

#[test]
fn block_is_refused() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = KvickServer::start(&["--threads", "2"]);
    let mut raw = server.raw();
    raw.cmd(&["XADD", "{a}s", "1-1", "f", "v"]);
    raw.cmd(&["XGROUP", "CREATE", "{a}s", "g", "0"]);
    assert_eq!(raw.cmd(&["XREAD", "BLOCK", "0", "STREAMS", "{a}s", "$"]), b"-ERR the BLOCK option of XREAD is not supported yet\r\n");
    assert_eq!(
        raw.cmd(&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "100", "STREAMS", "{a}s", "{b}s", ">", ">"]),
        b"-ERR the BLOCK option of XREADGROUP is not supported yet\r\n"
    );
    // Refused before anything is read: nothing was delivered.
    assert_eq!(raw.cmd(&["XPENDING", "{a}s", "g", "-", "+", "10"]), b"*0\r\n");
}
