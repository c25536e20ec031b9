//! Multi-key commands that span cores are atomic: concurrent clients never see
//! half of an MSET, MSETNX is all-or-nothing across cores, and DEL removes its
//! keys together. Runs kvick with two cores and keys chosen on each core.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{keys_on_both_cores, KvickServer};
use redis::Commands;

const RUN_FOR: Duration = Duration::from_secs(3);

#[test]
fn mset_mget_never_torn_across_cores() {
    let server = KvickServer::start(&["--threads", "2"]);
    let keys = keys_on_both_cores("torn:", 4);
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..2 {
        let mut con = server.client();
        let keys = keys.clone();
        let stop = stop.clone();
        writers.push(thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let v = format!("w{w}-{n}");
                let pairs: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), v.as_str())).collect();
                let () = con.mset(&pairs).unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..2 {
        let mut con = server.client();
        let keys = keys.clone();
        readers.push(thread::spawn(move || {
            let start = Instant::now();
            let mut reads = 0u64;
            while start.elapsed() < RUN_FOR {
                let vals: Vec<Option<String>> = con.mget(&keys).unwrap();
                if vals.iter().all(Option::is_none) {
                    continue;
                }
                let first = &vals[0];
                assert!(vals.iter().all(|v| v == first), "torn MGET: {vals:?}");
                reads += 1;
            }
            reads
        }));
    }
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    stop.store(true, Ordering::Relaxed);
    let writes: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(reads > 100 && writes > 100, "too little concurrency to mean anything: {reads} reads, {writes} writes");
}

#[test]
fn msetnx_is_all_or_nothing_across_cores() {
    let server = KvickServer::start(&["--threads", "2"]);
    let keys = keys_on_both_cores("nx:", 6);
    let mut con = server.client();
    for round in 0..200 {
        let _: () = redis::cmd("DEL").arg(&keys).query(&mut con).unwrap();
        // Clients race to claim overlapping key sets; each set spans cores.
        let sets: Vec<Vec<String>> = vec![keys[0..3].to_vec(), keys[2..5].to_vec(), keys[3..6].to_vec()];
        let handles: Vec<_> = sets
            .iter()
            .enumerate()
            .map(|(c, set)| {
                let mut con = server.client();
                let set = set.clone();
                thread::spawn(move || {
                    let pairs: Vec<(String, String)> = set.iter().map(|k| (k.clone(), format!("c{c}"))).collect();
                    let won: i64 = con.mset_nx(&pairs).unwrap();
                    (c, won)
                })
            })
            .collect();
        let results: Vec<(usize, i64)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        for (c, won) in results {
            let vals: Vec<Option<String>> = con.mget(&sets[c]).unwrap();
            let mine = Some(format!("c{c}"));
            if won == 1 {
                assert!(vals.iter().all(|v| *v == mine), "round {round}: client {c} won but its keys are {vals:?}");
            } else {
                assert!(vals.iter().all(|v| *v != mine), "round {round}: client {c} lost but wrote {vals:?}");
            }
        }
    }
}

#[test]
fn del_and_exists_span_cores() {
    let server = KvickServer::start(&["--threads", "2"]);
    let keys = keys_on_both_cores("del:", 8);
    let mut con = server.client();
    let pairs: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "x")).collect();
    let () = con.mset(&pairs).unwrap();
    let n: i64 = redis::cmd("EXISTS").arg(&keys).arg(&keys[0]).query(&mut con).unwrap();
    assert_eq!(n, 9);
    let n: i64 = con.del(&keys[..5]).unwrap();
    assert_eq!(n, 5);
    let n: i64 = redis::cmd("UNLINK").arg(&keys).query(&mut con).unwrap();
    assert_eq!(n, 3);
    let n: i64 = redis::cmd("EXISTS").arg(&keys).query(&mut con).unwrap();
    assert_eq!(n, 0);
}

#[test]
fn pipelined_writes_to_two_cores_are_seen_in_order() {
    let server = KvickServer::start(&["--threads", "2"]);
    // keys_on_both_cores alternates cores: pairs 0-1 write core 0 then core 1,
    // pairs 2-3 the other way round, so whichever core a writer's connection
    // lands on, some pair has its first write forwarded and its second local.
    let k = keys_on_both_cores("order:", 8);
    let pairs: Vec<(String, String)> =
        (0..4).map(|w| if w < 2 { (k[2 * w].clone(), k[2 * w + 1].clone()) } else { (k[2 * w + 1].clone(), k[2 * w].clone()) }).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = pairs
        .iter()
        .cloned()
        .map(|(x, y)| {
            let mut con = server.client();
            let stop = stop.clone();
            thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    // A big first value makes the forwarded write slow.
                    let big = format!("{i:020}{}", "p".repeat(64 * 1024));
                    redis::pipe().cmd("SET").arg(&x).arg(big).ignore().cmd("SET").arg(&y).arg(format!("{i:020}")).ignore().query::<()>(&mut con).unwrap();
                }
            })
        })
        .collect();
    let mut con = server.client();
    let n = |v: &Option<Vec<u8>>| v.as_ref().map_or(0, |v| String::from_utf8_lossy(&v[..20]).parse::<u64>().unwrap());
    let start = Instant::now();
    let mut checks = 0;
    while start.elapsed() < RUN_FOR {
        for (x, y) in &pairs {
            // MGET is atomic: both keys at one point in time.
            let (vx, vy): (Option<Vec<u8>>, Option<Vec<u8>>) = redis::cmd("MGET").arg(x).arg(y).query(&mut con).unwrap();
            assert!(n(&vx) >= n(&vy), "saw {y}={} before {x}={}: a pipeline's writes were reordered", n(&vy), n(&vx));
            checks += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    writers.into_iter().for_each(|w| w.join().unwrap());
    assert!(checks > 100, "only {checks} observations");
}

/// LMOVE, RPOPLPUSH and BLMOVE between lists on the two cores move one
/// element back and forth while readers look at both lists atomically
/// (MULTI/EXEC and a script): it is always in exactly one of them.
#[test]
fn lmove_across_cores_never_loses_the_element() {
    let server = KvickServer::start(&["--threads", "2"]);
    let k = keys_on_both_cores("mv:", 2);
    let (a, b) = (k[0].clone(), k[1].clone());
    let mut con = server.client();
    let () = con.rpush(&a, "x").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut movers = Vec::new();
    for m in 0..3 {
        let mut con = server.client();
        let (a, b) = (a.clone(), b.clone());
        let stop = stop.clone();
        movers.push(thread::spawn(move || {
            let mut moved = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for (src, dst) in [(&a, &b), (&b, &a)] {
                    let cmd = match m {
                        0 => redis::cmd("LMOVE").arg(src).arg(dst).arg("LEFT").arg("RIGHT").clone(),
                        1 => redis::cmd("RPOPLPUSH").arg(src).arg(dst).clone(),
                        _ => redis::cmd("BLMOVE").arg(src).arg(dst).arg("RIGHT").arg("LEFT").arg("0.01").clone(),
                    };
                    let v: Option<String> = cmd.query(&mut con).unwrap();
                    moved += v.is_some() as u64;
                }
            }
            moved
        }));
    }
    let mut readers = Vec::new();
    for r in 0..2 {
        let mut con = server.client();
        let (a, b) = (a.clone(), b.clone());
        readers.push(thread::spawn(move || {
            let start = Instant::now();
            let mut reads = 0u64;
            while start.elapsed() < RUN_FOR {
                let (la, lb): (usize, usize) = if r == 0 {
                    redis::pipe().atomic().llen(&a).llen(&b).query(&mut con).unwrap()
                } else {
                    redis::cmd("EVAL")
                        .arg("return {redis.call('llen', KEYS[1]), redis.call('llen', KEYS[2])}")
                        .arg(2)
                        .arg(&a)
                        .arg(&b)
                        .query(&mut con)
                        .unwrap()
                };
                assert_eq!(la + lb, 1, "the element is in {la} + {lb} lists");
                reads += 1;
            }
            reads
        }));
    }
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    stop.store(true, Ordering::Relaxed);
    let moved: u64 = movers.into_iter().map(|m| m.join().unwrap()).sum();
    assert!(reads > 100 && moved > 100, "too little concurrency to mean anything: {reads} reads, {moved} moves");
    let total: usize = con.llen(&a).unwrap();
    let total_b: usize = con.llen(&b).unwrap();
    assert_eq!(total + total_b, 1);
}
