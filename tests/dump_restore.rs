//! DUMP payloads move between redis-server and kvick in both directions:
//! strings of every encoding (int, embstr, raw, LZF-compressed, binary),
//! on keys of both cores, with a TTL carried along.

mod common;

use common::{KvickServer, RedisServer};
use redis::Commands;

/// Values covering every RDB string encoding Redis writes.
fn values() -> Vec<Vec<u8>> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut v: Vec<Vec<u8>> = ["0", "-1", "127", "-129", "40000", "-2147483648", "2147483648", "9223372036854775807", "007", "hello", ""]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    v.push(b"x".repeat(21));
    v.push("kvick and redis ".repeat(500).into_bytes());
    v.push((0..10_000).map(|_| rand() as u8).collect());
    v.push((0..100_000).map(|_| b"ab"[(rand() % 2) as usize]).collect());
    v
}

/// Dumps every value from `from` and restores it into `to` under another
/// name; both servers must then hold the same bytes, and kvick's DUMP must
/// equal Redis' byte for byte.
fn transfer(from: &mut redis::Connection, to: &mut redis::Connection) {
    for (i, v) in values().iter().enumerate() {
        // Names on both cores of a two-thread kvick ("a" core 1, "b" core 0).
        for key in [format!("a{i}"), format!("b{i}")] {
            let _: () = from.set(&key, v).unwrap();
            let payload: Vec<u8> = redis::cmd("DUMP").arg(&key).query(from).unwrap();
            let copy = format!("{key}:copy");
            let _: () = redis::cmd("RESTORE").arg(&copy).arg(100_000).arg(&payload).arg("REPLACE").query(to).unwrap();
            let got: Vec<u8> = to.get(&copy).unwrap();
            assert_eq!(&got, v, "value {i} under {copy}");
            let ttl: i64 = to.ttl(&copy).unwrap();
            assert!((1..=100).contains(&ttl), "ttl {ttl}");
            let again: Vec<u8> = redis::cmd("DUMP").arg(&copy).query(to).unwrap();
            assert_eq!(again, payload, "DUMP of value {i} differs between servers");
        }
    }
}

#[test]
fn payloads_move_between_redis_and_kvick() {
    let redis = RedisServer::start();
    let kvick = KvickServer::start(&["--threads", "2"]);
    let (mut r, mut k) = (redis.client(), kvick.client());
    transfer(&mut r, &mut k);
    transfer(&mut k, &mut r);
}
