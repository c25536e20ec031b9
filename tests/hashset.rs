//! Hashes and sets: what the differential corpus cannot check exactly.
//! Random picks (SRANDMEMBER, SPOP, HRANDFIELD) are members, distinct when
//! the count is positive, and reach every member; SMOVE between cores is
//! atomic, seen through SUNION/SINTER (themselves atomic across cores).

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use common::KvickServer;
use redis::Commands;

/// A key whose hash slot belongs to core `core` of two (slots below 8192 are core 0's).
fn key_on_core(prefix: &str, core: u16) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|k| (crc16::State::<crc16::XMODEM>::calculate(k.as_bytes()) % 16384 >= 8192) == (core == 1))
        .expect("some key lands on each core")
}

fn query<T: redis::FromRedisValue>(con: &mut redis::Connection, args: &[&str]) -> T {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

#[test]
fn random_set_members_are_members_and_distinct() {
    let server = KvickServer::start(&["--threads", "1"]);
    let mut con = server.client();
    // An intset and a hashtable.
    let sets: [(&str, Vec<String>); 2] = [("ints", (0..50).map(|i| i.to_string()).collect()), ("words", (0..1000).map(|i| format!("w{i}")).collect())];
    for (key, members) in &sets {
        let () = con.sadd(*key, members).map(|_: i64| ()).unwrap();
        let all: HashSet<&String> = members.iter().collect();
        let n = members.len() as i64;
        for count in [1, 2, 10, n / 3, n / 2, n - 1, n, n + 5] {
            let got: Vec<String> = query(&mut con, &["SRANDMEMBER", key, &count.to_string()]);
            assert_eq!(got.len() as i64, count.min(n), "SRANDMEMBER {key} {count}");
            assert_eq!(got.iter().collect::<HashSet<_>>().len(), got.len(), "distinct: SRANDMEMBER {key} {count}");
            assert!(got.iter().all(|m| all.contains(m)));
        }
        let got: Vec<String> = query(&mut con, &["SRANDMEMBER", key, "-3000"]);
        assert_eq!(got.len(), 3000);
        assert!(got.iter().all(|m| all.contains(m)));
        // Enough single draws reach every member of the small set.
        if n == 50 {
            let seen: HashSet<String> = (0..2000).map(|_| query::<String>(&mut con, &["SRANDMEMBER", key])).collect();
            assert_eq!(seen.len(), 50, "some member is never drawn");
        }
        // SPOP: distinct members, removed, together the whole set.
        let mut popped: Vec<String> = Vec::new();
        for count in [1, 3, n / 4, n / 2] {
            let got: Vec<String> = query(&mut con, &["SPOP", key, &count.to_string()]);
            assert_eq!(got.len() as i64, count);
            popped.extend(got);
        }
        let rest: Vec<String> = con.smembers(*key).unwrap();
        let mut everything: Vec<&String> = popped.iter().chain(&rest).collect();
        everything.sort();
        let mut expected: Vec<&String> = members.iter().collect();
        expected.sort();
        assert_eq!(everything, expected, "SPOP lost or duplicated members of {key}");
    }
}

#[test]
fn random_hash_fields_are_fields_and_distinct() {
    let server = KvickServer::start(&["--threads", "1"]);
    let mut con = server.client();
    // A listpack and a hashtable.
    for (key, n) in [("small", 20i64), ("large", 1000)] {
        let pairs: Vec<(String, String)> = (0..n).map(|i| (format!("f{i}"), format!("v{i}"))).collect();
        let () = con.hset_multiple(key, &pairs).unwrap();
        for count in [1, 2, 5, n / 3, n / 2, n - 1, n, n + 5] {
            let got: Vec<String> = query(&mut con, &["HRANDFIELD", key, &count.to_string(), "WITHVALUES"]);
            assert_eq!(got.len() as i64, 2 * count.min(n), "HRANDFIELD {key} {count}");
            let fields: HashSet<&String> = got.iter().step_by(2).collect();
            assert_eq!(fields.len() as i64, count.min(n), "distinct: HRANDFIELD {key} {count}");
            for pair in got.chunks(2) {
                assert_eq!(pair[1], pair[0].replace('f', "v"), "a field with another's value");
            }
        }
        let got: Vec<String> = query(&mut con, &["HRANDFIELD", key, "-500"]);
        assert_eq!(got.len(), 500);
        assert!(got.iter().all(|f| f[1..].parse::<i64>().is_ok_and(|i| i < n)));
    }
}

#[test]
fn smove_across_cores_is_atomic() {
    let server = KvickServer::start(&["--threads", "2"]);
    let (left, right) = (key_on_core("left:", 0), key_on_core("right:", 1));
    let members: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    let mut con = server.client();
    let () = con.sadd(&left, &members).map(|_: i64| ()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let movers: Vec<_> = [(left.clone(), right.clone()), (right.clone(), left.clone())]
        .into_iter()
        .map(|(from, to)| {
            let mut con = server.client();
            let (members, stop) = (members.clone(), stop.clone());
            thread::spawn(move || {
                let mut moved = 0;
                for m in members.iter().cycle() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    moved += con.smove::<_, _, _, i64>(&from, &to, m).unwrap();
                }
                moved
            })
        })
        .collect();
    for _ in 0..2000 {
        let union: Vec<String> = con.sunion(&[&left, &right]).unwrap();
        assert_eq!(union.len(), members.len(), "a member was in neither set or counted twice");
        let inter: Vec<String> = con.sinter(&[&left, &right]).unwrap();
        assert!(inter.is_empty(), "a member in both sets: {inter:?}");
    }
    stop.store(true, Ordering::Relaxed);
    let moved: i64 = movers.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(moved > 100, "too few moves to mean anything: {moved}");
    let left_n: i64 = con.scard(&left).unwrap();
    let right_n: i64 = con.scard(&right).unwrap();
    assert_eq!(left_n + right_n, members.len() as i64);
}
