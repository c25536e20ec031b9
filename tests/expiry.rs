//! Active expiry: keys nobody touches again still go away, on every core, and
//! the server keeps answering while it removes them.

mod common;

use std::time::{Duration, Instant};

use common::KvickServer;

#[test]
fn mass_expiry_removes_untouched_keys_on_every_core() {
    for threads in ["1", "2"] {
        let server = KvickServer::start(&["--threads", threads]);
        let mut con = server.client();
        const N: usize = 200_000;
        // Pipelined in chunks: keys with a short TTL and a few without.
        for chunk in 0..(N / 10_000) {
            let mut pipe = redis::pipe();
            for i in 0..10_000 {
                pipe.cmd("SET").arg(format!("exp:{}", chunk * 10_000 + i)).arg("v").arg("PX").arg(300).ignore();
            }
            pipe.query::<()>(&mut con).unwrap();
        }
        let () = redis::cmd("MSET").arg("keep:a").arg(1).arg("keep:b").arg(2).query(&mut con).unwrap();
        let start = Instant::now();
        loop {
            let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
            if n == 2 {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "threads {threads}: {n} keys left 30 s after they expired"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let kept: Vec<Option<i64>> = redis::cmd("MGET").arg("keep:a").arg("keep:b").query(&mut con).unwrap();
        assert_eq!(kept, vec![Some(1), Some(2)]);
    }
}

#[test]
fn expired_key_is_gone_on_access_and_ttl_reports_it() {
    let server = KvickServer::start(&["--threads", "2"]);
    let mut con = server.client();
    let () = redis::cmd("SET").arg("short").arg("v").arg("PX").arg(50).query(&mut con).unwrap();
    let pttl: i64 = redis::cmd("PTTL").arg("short").query(&mut con).unwrap();
    assert!((1..=50).contains(&pttl), "pttl {pttl}");
    std::thread::sleep(Duration::from_millis(80));
    let v: Option<String> = redis::cmd("GET").arg("short").query(&mut con).unwrap();
    assert_eq!(v, None);
    let ttl: i64 = redis::cmd("TTL").arg("short").query(&mut con).unwrap();
    assert_eq!(ttl, -2);
}
