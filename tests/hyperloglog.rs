//! HyperLogLogs built by kvick are byte-for-byte the ones redis-server builds
//! from the same elements, at every size up to 100k distinct elements
//! (sparse, promotion, dense), and move between the two servers with GET/SET.
//! Keys live on both cores of `kvick --threads 2`, so PFCOUNT and PFMERGE of
//! several keys run across cores.

mod common;

use common::{KvickServer, RedisServer};

/// "a" hashes to core 1, "b" to core 0 (slots 15495 and 3300).
const KEYS: [&str; 2] = ["a", "b"];

fn both<T: redis::FromRedisValue + PartialEq + std::fmt::Debug>(cons: &mut [redis::Connection; 2], cmd: &redis::Cmd) -> T {
    let r: T = cmd.query(&mut cons[0]).expect("redis-server");
    let k: T = cmd.query(&mut cons[1]).expect("kvick");
    assert_eq!(r, k, "{:?}", String::from_utf8_lossy(&cmd.get_packed_command()[..cmd.get_packed_command().len().min(80)]));
    r
}

#[test]
fn hll_bytes_and_counts_match_redis_up_to_100k_elements() {
    let redis_server = RedisServer::start();
    let kvick = KvickServer::start(&["--threads", "2"]);
    let mut cons = [redis_server.client(), kvick.client()];
    let mut added = 0usize;
    let checkpoints = [1, 10, 100, 300, 1000, 3000, 10_000, 30_000, 100_000];
    for &target in &checkpoints {
        // Small batches while sparse (every opcode split matters), large after.
        let batch = if target <= 3000 { 7 } else { 1000 };
        while added < target {
            let n = batch.min(target - added);
            for (i, key) in KEYS.iter().enumerate() {
                let mut cmd = redis::cmd("PFADD");
                cmd.arg(*key);
                for e in added..added + n {
                    // The two keys share half of their elements.
                    cmd.arg(format!("element:{}:{}", i * (e % 2), e));
                }
                let _: i64 = both(&mut cons, &cmd);
            }
            added += n;
        }
        for key in KEYS {
            let before: Vec<u8> = both(&mut cons, redis::cmd("GET").arg(key));
            let count: u64 = both(&mut cons, redis::cmd("PFCOUNT").arg(key));
            let after: Vec<u8> = both(&mut cons, redis::cmd("GET").arg(key));
            assert_ne!(before, after, "PFCOUNT caches the cardinality in the header");
            let err = (count as f64 - target as f64).abs() / target as f64;
            assert!(err < 0.05, "{key}: {count} for {target}");
        }
        let _: u64 = both(&mut cons, redis::cmd("PFCOUNT").arg("a").arg("b"));
        let _: () = both(&mut cons, redis::cmd("PFMERGE").arg("merged").arg("a").arg("b"));
        let _: Vec<u8> = both(&mut cons, redis::cmd("GET").arg("merged"));
        let _: u64 = both(&mut cons, redis::cmd("PFCOUNT").arg("merged"));
        let _: String = both(&mut cons, redis::cmd("PFDEBUG").arg("ENCODING").arg("a"));
    }
    // Redis' bytes load into kvick and count the same, and the other way round.
    for key in KEYS {
        let from_redis: Vec<u8> = redis::cmd("GET").arg(key).query(&mut cons[0]).unwrap();
        let from_kvick: Vec<u8> = redis::cmd("GET").arg(key).query(&mut cons[1]).unwrap();
        let () = redis::cmd("SET").arg("copy").arg(&from_redis).query(&mut cons[1]).unwrap();
        let () = redis::cmd("SET").arg("copy").arg(&from_kvick).query(&mut cons[0]).unwrap();
        let _: i64 = both(&mut cons, redis::cmd("PFADD").arg("copy").arg("one more"));
        let _: u64 = both(&mut cons, redis::cmd("PFCOUNT").arg("copy"));
        let _: Vec<u8> = both(&mut cons, redis::cmd("GET").arg("copy"));
    }
}
