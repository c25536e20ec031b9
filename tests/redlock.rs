//! The Redlock recipe (examples/redlock.rs, included here as is) over five
//! kvick processes with two cores each: concurrent clients increment a
//! counter only while they hold the lock, and the test checks mutual
//! exclusion (never two holders at once) and that no increment is lost; one
//! of the five servers is killed (SIGKILL) midway, and the remaining four
//! keep granting the lock with their quorum of three.

mod common;

#[allow(dead_code)]
#[path = "../examples/redlock.rs"]
mod redlock;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{KvickServer, TestServer};
use redlock::Redlock;

const CLIENTS: usize = 6;
const ROUNDS: u64 = 30;
/// Far beyond a round's critical section, so that a holder never outlives
/// its validity time on this shared, loaded machine.
const TTL: Duration = Duration::from_secs(2);

#[test]
fn redlock_mutual_exclusion_survives_a_killed_server() {
    let servers: Vec<TestServer> = (0..5).map(|_| KvickServer::start(&["--threads", "2"])).collect();
    let addrs: Vec<SocketAddr> = servers.iter().map(|s| SocketAddr::from(([127, 0, 0, 1], s.port()))).collect();
    let servers = Arc::new(Mutex::new(servers));
    // The counter is read, then written back incremented: two holders at
    // once would lose an increment. `holders` catches the overlap itself.
    let counter = Arc::new(AtomicU64::new(0));
    let holders = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let killed_at = Arc::new(Mutex::new(None::<u64>));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (addrs, servers) = (addrs.clone(), servers.clone());
            let (counter, holders, overlaps, killed_at) = (counter.clone(), holders.clone(), overlaps.clone(), killed_at.clone());
            std::thread::spawn(move || {
                let mut rl = Redlock::new(&addrs);
                rl.retry_delay = Duration::from_millis(20);
                let start = Instant::now();
                for _ in 0..ROUNDS {
                    let lock = loop {
                        if let Some(lock) = rl.lock("counter-lock", TTL) {
                            break lock;
                        }
                        assert!(start.elapsed() < Duration::from_secs(120), "the lock could not be acquired for two minutes");
                    };
                    if holders.fetch_add(1, Ordering::SeqCst) != 0 {
                        overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    let v = counter.load(Ordering::SeqCst);
                    std::thread::sleep(Duration::from_micros(300));
                    counter.store(v + 1, Ordering::SeqCst);
                    // Halfway through, the lock holder kills the first
                    // server (dropping a TestServer sends SIGKILL).
                    if v + 1 == CLIENTS as u64 * ROUNDS / 2 {
                        drop(servers.lock().unwrap().remove(0));
                        *killed_at.lock().unwrap() = Some(v + 1);
                    }
                    assert!(Instant::now() < lock.valid_until, "a critical section outlived the lock's validity");
                    holders.fetch_sub(1, Ordering::SeqCst);
                    rl.unlock(lock);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a client failed");
    }
    assert_eq!(overlaps.load(Ordering::SeqCst), 0, "two clients held the lock at once");
    assert_eq!(counter.load(Ordering::SeqCst), CLIENTS as u64 * ROUNDS, "increments were lost");
    assert_eq!(*killed_at.lock().unwrap(), Some(CLIENTS as u64 * ROUNDS / 2), "a server was killed midway");
    assert_eq!(servers.lock().unwrap().len(), 4);
    // After the kill the lock still works on the four left, and a released
    // lock leaves no key behind on any of them.
    for s in servers.lock().unwrap().iter_mut() {
        s.assert_alive();
        let mut c = s.raw();
        assert_eq!(c.cmd(&["EXISTS", "counter-lock"]), b":0\r\n");
    }
}
