//! SCAN's guarantee (Redis' SCAN documentation): a full iteration returns
//! every element that is present from its start to its end, even when the
//! table grows, shrinks or rehashes in between. Here a scanner iterates with
//! COUNT 10 while a second client, between every two calls, adds elements
//! (the table doubles in the middle of the scan, and the keyspace's staged
//! overflow table fills and merges) and inserts and deletes short-lived
//! ones (deleted slots). Every element of a stable set,
//! present throughout, must come back. Run with one and two cores, so that
//! SCAN's cursor also crosses cores.

mod common;

use std::collections::HashSet;

use common::KvickServer;

/// What a round of the writer does to the collection under scan.
#[derive(Clone, Copy)]
enum Kind {
    Keys,
    Hash,
    Set,
    Zset,
}

impl Kind {
    /// The command that adds `members` (to `key` unless this is the keyspace).
    fn add(self, pipe: &mut redis::Pipeline, key: &str, members: &[String]) {
        let cmd = match self {
            Kind::Keys => {
                for m in members {
                    pipe.cmd("SET").arg(m).arg(1).ignore();
                }
                return;
            }
            Kind::Hash => {
                let mut c = redis::cmd("HSET");
                c.arg(key);
                members.iter().for_each(|m| {
                    c.arg(m).arg("v");
                });
                c
            }
            Kind::Set => {
                let mut c = redis::cmd("SADD");
                c.arg(key).arg(members);
                c
            }
            Kind::Zset => {
                let mut c = redis::cmd("ZADD");
                c.arg(key);
                members.iter().enumerate().for_each(|(i, m)| {
                    c.arg(i).arg(m);
                });
                c
            }
        };
        pipe.add_command(cmd).ignore();
    }

    fn remove(self, pipe: &mut redis::Pipeline, key: &str, members: &[String]) {
        let name = match self {
            Kind::Keys => {
                for m in members {
                    pipe.cmd("DEL").arg(m).ignore();
                }
                return;
            }
            Kind::Hash => "HDEL",
            Kind::Set => "SREM",
            Kind::Zset => "ZREM",
        };
        pipe.cmd(name).arg(key).arg(members).ignore();
    }

    /// One scan call from `cursor`: the next cursor and the elements.
    fn scan(self, con: &mut redis::Connection, key: &str, cursor: &str) -> (String, Vec<String>) {
        let mut c = match self {
            Kind::Keys => redis::cmd("SCAN"),
            Kind::Hash => redis::cmd("HSCAN"),
            Kind::Set => redis::cmd("SSCAN"),
            Kind::Zset => redis::cmd("ZSCAN"),
        };
        if !matches!(self, Kind::Keys) {
            c.arg(key);
        }
        let (next, items): (String, Vec<String>) = c.arg(cursor).arg("COUNT").arg(10).query(con).expect("scan");
        // HSCAN and ZSCAN reply field/value and member/score pairs.
        let items = match self {
            Kind::Hash | Kind::Zset => items.into_iter().step_by(2).collect(),
            _ => items,
        };
        (next, items)
    }
}

fn names(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}:{i}")).collect()
}

fn add_all(kind: Kind, con: &mut redis::Connection, key: &str, members: &[String]) {
    let mut pipe = redis::pipe();
    members.chunks(500).for_each(|c| kind.add(&mut pipe, key, c));
    let () = pipe.query(con).expect("add");
}

/// One full scan of a collection of `stable` elements, during which the
/// writer inserts and deletes short-lived elements every call (deleted
/// slots), adds `grow` elements for good every call, and
/// `burst` more at call `burst_at` (a doubling in the middle of the scan).
/// Returns the stable elements the scan missed.
struct Scenario {
    stable: usize,
    grow: usize,
    burst: usize,
    burst_at: usize,
}

fn missed_by_scan(server: &common::TestServer, kind: Kind, run: usize, sc: &Scenario) -> Vec<String> {
    let (mut scanner, mut writer) = (server.client(), server.client());
    let key = "coll";
    let () = redis::cmd("FLUSHALL").query(&mut writer).expect("flushall");
    let stable = names(&format!("stable{run}"), 0..sc.stable);
    add_all(kind, &mut writer, key, &stable);
    let (mut grown, mut tmp, mut calls) = (0, 0, 0);
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, items) = kind.scan(&mut scanner, key, &cursor);
        seen.extend(items);
        cursor = next;
        if cursor == "0" {
            break;
        }
        calls += 1;
        assert!(calls < 100_000, "the scan does not end");
        let mut pipe = redis::pipe();
        let fresh = names("tmp", tmp..tmp + 20);
        kind.add(&mut pipe, key, &fresh);
        kind.remove(&mut pipe, key, &fresh);
        tmp += 20;
        let n = sc.grow + if calls == sc.burst_at { sc.burst } else { 0 };
        if n > 0 {
            kind.add(&mut pipe, key, &names("grow", grown..grown + n));
            grown += n;
        }
        let () = pipe.query(&mut writer).expect("churn");
    }
    stable.into_iter().filter(|m| !seen.contains(m)).collect()
}

/// Scans of a table filled close to a doubling, which the writer crosses
/// at a different point of each scan.
fn scan_survives_growth_and_churn(threads: &str, kind: Kind) {
    let server = KvickServer::start(&["--threads", threads]);
    // 3500 elements fill 87% of a table of 4096 slots (two of 2048 when
    // the keys are spread over two cores).
    let mut missed = Vec::new();
    for run in 0..8 {
        let sc = Scenario { stable: 3500, grow: 1, burst: 400, burst_at: 40 + run * 37 };
        missed.extend(missed_by_scan(&server, kind, run, &sc));
    }
    assert!(missed.is_empty(), "{} stable elements missed: {:?}", missed.len(), &missed[..missed.len().min(5)]);
}

#[test]
fn scan_keys_one_core() {
    scan_survives_growth_and_churn("1", Kind::Keys);
}

#[test]
fn scan_keys_two_cores() {
    scan_survives_growth_and_churn("2", Kind::Keys);
}

#[test]
fn hscan_one_core() {
    scan_survives_growth_and_churn("1", Kind::Hash);
}

#[test]
fn hscan_two_cores() {
    scan_survives_growth_and_churn("2", Kind::Hash);
}

#[test]
fn sscan_one_core() {
    scan_survives_growth_and_churn("1", Kind::Set);
}

#[test]
fn sscan_two_cores() {
    scan_survives_growth_and_churn("2", Kind::Set);
}

#[test]
fn zscan_one_core() {
    scan_survives_growth_and_churn("1", Kind::Zset);
}

#[test]
fn zscan_two_cores() {
    scan_survives_growth_and_churn("2", Kind::Zset);
}

/// The keyspace's own growth past 16384 slots: new keys go to a staged
/// overflow table that later merges into a main table twice as large.
fn scan_survives_overflow_merge(threads: usize) {
    let server = KvickServer::start(&["--threads", &threads.to_string()]);
    // 17000 keys a core fill its main table (14336) and start the overflow;
    // the writer's keys merge it (at 14336 + 7168) before the scan ends.
    let sc = Scenario { stable: 17000 * threads, grow: 3 * threads, burst: 0, burst_at: 0 };
    let missed = missed_by_scan(&server, Kind::Keys, 0, &sc);
    assert!(missed.is_empty(), "{} stable keys missed: {:?}", missed.len(), &missed[..missed.len().min(5)]);
}

#[test]
fn scan_keys_overflow_merge_one_core() {
    scan_survives_overflow_merge(1);
}

#[test]
fn scan_keys_overflow_merge_two_cores() {
    scan_survives_overflow_merge(2);
}
