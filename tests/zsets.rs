//! Sorted set behaviour a differential corpus cannot express: random draws
//! (ZRANDMEMBER) and ZMPOP across cores under concurrent clients. Keys "a"
//! and "b" live on cores 1 and 0 of `--threads 2`.

mod common;

use std::collections::{HashMap, HashSet};
use std::thread;

use common::KvickServer;

#[test]
fn zrandmember_draws_are_uniform_and_distinct() {
    let server = KvickServer::start(&["--threads", "2"]);
    let mut c = server.client();
    let members: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    for (i, m) in members.iter().enumerate() {
        let _: i64 = redis::cmd("ZADD").arg("a").arg(i).arg(m).query(&mut c).unwrap();
    }
    // With repetitions: 10000 draws, about 1000 per member (σ ≈ 30).
    let draws: Vec<String> = redis::cmd("ZRANDMEMBER").arg("a").arg(-10000).query(&mut c).unwrap();
    assert_eq!(draws.len(), 10000);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    draws.iter().for_each(|d| *counts.entry(d.as_str()).or_default() += 1);
    for m in &members {
        let n = counts.get(m.as_str()).copied().unwrap_or(0);
        assert!((800..1200).contains(&n), "{m} drawn {n} times of 10000");
    }
    // Without: distinct members, and every member turns up over many draws.
    let mut seen = HashSet::new();
    for _ in 0..200 {
        let pick: Vec<String> = redis::cmd("ZRANDMEMBER").arg("a").arg(5).query(&mut c).unwrap();
        let distinct: HashSet<&String> = pick.iter().collect();
        assert_eq!((pick.len(), distinct.len()), (5, 5), "{pick:?}");
        seen.extend(pick);
    }
    assert_eq!(seen.len(), 10);
    // A large set (the B+tree encoding) draws from everywhere too.
    let args: Vec<String> = (0..1000).flat_map(|i| [i.to_string(), format!("big{i}")]).collect();
    let _: i64 = redis::cmd("ZADD").arg("b").arg(&args).query(&mut c).unwrap();
    let draws: Vec<String> = redis::cmd("ZRANDMEMBER").arg("b").arg(-20000).query(&mut c).unwrap();
    let distinct: HashSet<&String> = draws.iter().collect();
    assert!(distinct.len() > 990, "only {} of 1000 members drawn", distinct.len());
}

#[test]
fn zmpop_across_cores_pops_each_member_once() {
    let server = KvickServer::start(&["--threads", "2"]);
    let mut c = server.client();
    for key in ["a", "b"] {
        let args: Vec<String> = (0..500).flat_map(|i| [i.to_string(), format!("{key}{i}")]).collect();
        let _: i64 = redis::cmd("ZADD").arg(key).arg(&args).query(&mut c).unwrap();
    }
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let mut c = server.client();
            thread::spawn(move || {
                let mut popped = Vec::new();
                loop {
                    let reply: Option<(String, Vec<(String, f64)>)> =
                        redis::cmd("ZMPOP").arg(2).arg("b").arg("a").arg("MIN").arg("COUNT").arg(7).query(&mut c).unwrap();
                    let Some((key, members)) = reply else { break };
                    assert!(!members.is_empty() && members.len() <= 7);
                    // Members come from the key the reply names, lowest first.
                    assert!(members.iter().all(|(m, _)| m.starts_with(&key)));
                    assert!(members.windows(2).all(|w| w[0].1 < w[1].1));
                    popped.extend(members.into_iter().map(|(m, _)| m));
                }
                popped
            })
        })
        .collect();
    let all: Vec<String> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!((all.len(), distinct.len()), (1000, 1000));
    let left: i64 = redis::cmd("EXISTS").arg("a").arg("b").query(&mut c).unwrap();
    assert_eq!(left, 0);
}
