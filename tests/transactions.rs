//! MULTI/EXEC and WATCH across cores under concurrency: transfers between
//! keys on different cores keep the total, readers in a transaction never see
//! a transfer half done, and WATCH-based optimistic increments lose nothing.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{keys_on_both_cores, KvickServer};

const RUN_FOR: Duration = Duration::from_secs(3);
const START: i64 = 1000;

#[test]
fn transfers_in_exec_keep_the_sum_across_cores() {
    let server = KvickServer::start(&["--threads", "2"]);
    let keys = keys_on_both_cores("acct:", 6);
    let mut con = server.client();
    for k in &keys {
        let _: () = redis::cmd("SET").arg(k).arg(START).query(&mut con).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let total = START * keys.len() as i64;
    let mut workers = Vec::new();
    for w in 0..4u64 {
        let (keys, stop, mut con) = (keys.clone(), stop.clone(), server.client());
        workers.push(thread::spawn(move || {
            let mut n = 0u64;
            let mut x = w * 7 + 1;
            while !stop.load(Ordering::Relaxed) {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let from = &keys[(x >> 33) as usize % keys.len()];
                let to = &keys[(x >> 17) as usize % keys.len()];
                let amount = (x >> 50) as i64 % 50 + 1;
                let _: (i64, i64) = redis::pipe().atomic().decr(from, amount).incr(to, amount).query(&mut con).unwrap();
                n += 1;
            }
            n
        }));
    }
    let (keys_r, stop_r, mut reader) = (keys.clone(), stop.clone(), server.client());
    let checker = thread::spawn(move || {
        let mut checks = 0u64;
        while !stop_r.load(Ordering::Relaxed) {
            // A transaction of GETs, and MGET: both must see a whole state.
            let mut p = redis::pipe();
            p.atomic();
            for k in &keys_r {
                p.get(k);
            }
            let seen: Vec<i64> = p.query(&mut reader).unwrap();
            assert_eq!(seen.iter().sum::<i64>(), total, "EXEC of GETs saw a transfer half done: {seen:?}");
            let seen: Vec<i64> = redis::cmd("MGET").arg(&keys_r).query(&mut reader).unwrap();
            assert_eq!(seen.iter().sum::<i64>(), total, "MGET saw a transfer half done: {seen:?}");
            checks += 1;
        }
        checks
    });
    thread::sleep(RUN_FOR);
    stop.store(true, Ordering::Relaxed);
    let transfers: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let checks = checker.join().unwrap();
    assert!(transfers > 100 && checks > 10, "too little ran: {transfers} transfers, {checks} checks");
    let end: Vec<i64> = redis::cmd("MGET").arg(&keys).query(&mut con).unwrap();
    assert_eq!(end.iter().sum::<i64>(), total);
}

#[test]
fn watch_based_increments_lose_no_update() {
    let server = KvickServer::start(&["--threads", "2"]);
    let keys = keys_on_both_cores("counter:", 2);
    const CLIENTS: usize = 6;
    const EACH: i64 = 150;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (keys, mut con) = (keys.clone(), server.client());
        clients.push(thread::spawn(move || {
            let mut retries = 0u64;
            for _ in 0..EACH {
                // Both counters move together, each on its own core.
                loop {
                    assert!(Instant::now() < deadline, "client {c} starved");
                    let _: () = redis::cmd("WATCH").arg(&keys).query(&mut con).unwrap();
                    let v: Vec<Option<i64>> = redis::cmd("MGET").arg(&keys).query(&mut con).unwrap();
                    let (a, b) = (v[0].unwrap_or(0), v[1].unwrap_or(0));
                    let r: Option<(String, String)> =
                        redis::pipe().atomic().set(&keys[0], a + 1).set(&keys[1], b + 1).query(&mut con).unwrap();
                    if r.is_some() {
                        break;
                    }
                    retries += 1;
                }
            }
            retries
        }));
    }
    let retries: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    let mut con = server.client();
    let v: Vec<i64> = redis::cmd("MGET").arg(&keys).query(&mut con).unwrap();
    assert_eq!(v, vec![CLIENTS as i64 * EACH; 2], "updates lost ({retries} retries)");
}
