//! Blocking list and sorted set commands with several clients on a two-core kvick: FIFO
//! service, wake-ups across cores, multi-key waits, BLMOVE across cores,
//! timeouts, CLIENT UNBLOCK, disconnects that leave nothing behind, and many
//! waiters at once. A client is known to be blocked when INFO's
//! blocked_clients says so (no sleeps decide anything).

mod common;

use std::thread;

use common::{keys_on_both_cores, KvickServer, RawConn, TestServer};

fn start() -> TestServer {
    KvickServer::start(&["--threads", "2"])
}

/// Waits until INFO reports `n` blocked clients (`RawConn::wait_blocked`).
fn wait_blocked(c: &mut RawConn, n: usize) {
    c.wait_blocked(n);
}

fn bulk(s: &str) -> String {
    format!("${}\r\n{}\r\n", s.len(), s)
}

fn pair(key: &str, v: &str) -> Vec<u8> {
    format!("*2\r\n{}{}", bulk(key), bulk(v)).into_bytes()
}

/// Sends a blocking command on a fresh connection and waits until the
/// server counts `now_blocked` clients.
fn block<A: AsRef<[u8]>>(server: &TestServer, ctl: &mut RawConn, args: &[A], now_blocked: usize) -> RawConn {
    let mut c = server.raw();
    c.send(args).unwrap();
    wait_blocked(ctl, now_blocked);
    c
}

#[test]
fn blocked_clients_are_served_first_come_first_served() {
    let server = start();
    let mut ctl = server.raw();
    for key in keys_on_both_cores("fifo:", 2) {
        let mut waiters: Vec<RawConn> = (1..=3).map(|i| block(&server, &mut ctl, &["BLPOP", key.as_str(), "0"], i)).collect();
        // One push of three elements serves the three in arrival order.
        assert_eq!(ctl.cmd(&["RPUSH", key.as_str(), "1", "2", "3"]), b":3\r\n");
        for (i, w) in waiters.iter_mut().enumerate() {
            assert_eq!(w.read_reply().unwrap(), pair(&key, &(i + 1).to_string()));
        }
        assert_eq!(ctl.cmd(&["EXISTS", key.as_str()]), b":0\r\n");
        wait_blocked(&mut ctl, 0);
    }
}

#[test]
fn the_pushers_next_command_sees_the_list_already_popped() {
    let server = start();
    let mut ctl = server.raw();
    for key in keys_on_both_cores("next:", 2) {
        let mut w = block(&server, &mut ctl, &["BRPOP", key.as_str(), "0"], 1);
        // One write: the push and a read right behind it.
        let mut pipe = common::encode_command(&["LPUSH", key.as_str(), "v"]);
        pipe.extend(common::encode_command(&["LLEN", key.as_str()]));
        ctl.send_raw(&pipe).unwrap();
        assert_eq!(ctl.read_reply().unwrap(), b":1\r\n");
        assert_eq!(ctl.read_reply().unwrap(), b":0\r\n");
        assert_eq!(w.read_reply().unwrap(), pair(&key, "v"));
    }
}

#[test]
fn a_multi_key_wait_is_served_by_the_key_that_gets_data_on_either_core() {
    let server = start();
    let mut ctl = server.raw();
    let keys = keys_on_both_cores("multi:", 2);
    for (got, other) in [(&keys[0], &keys[1]), (&keys[1], &keys[0])] {
        let mut w = block(&server, &mut ctl, &["BLPOP", "multi:none", keys[0].as_str(), keys[1].as_str(), "0"], 1);
        ctl.cmd(&["RPUSH", got.as_str(), "x"]);
        assert_eq!(w.read_reply().unwrap(), pair(got, "x"));
        wait_blocked(&mut ctl, 0);
        // Its registration on the other key is gone: a push there stays.
        ctl.cmd(&["RPUSH", other.as_str(), "kept"]);
        assert_eq!(ctl.cmd(&["LLEN", other.as_str()]), b":1\r\n");
        ctl.cmd(&["DEL", other.as_str()]);
    }
}

#[test]
fn blmpop_serves_up_to_count_from_the_ready_key() {
    let server = start();
    let mut ctl = server.raw();
    let keys = keys_on_both_cores("mpop:", 2);
    let mut w = block(&server, &mut ctl, &["BLMPOP", "0", "2", keys[0].as_str(), keys[1].as_str(), "RIGHT", "COUNT", "2"], 1);
    ctl.cmd(&["RPUSH", keys[1].as_str(), "a", "b", "c"]);
    let want = format!("*2\r\n{}*2\r\n{}{}", bulk(&keys[1]), bulk("c"), bulk("b"));
    assert_eq!(w.read_reply().unwrap(), want.as_bytes());
    assert_eq!(ctl.cmd(&["LRANGE", keys[1].as_str(), "0", "-1"]), format!("*1\r\n{}", bulk("a")).as_bytes());
}

#[test]
fn blmove_moves_atomically_within_and_across_cores() {
    let server = start();
    let mut ctl = server.raw();
    let k0 = keys_on_both_cores("src0:", 2);
    let k1 = keys_on_both_cores("dst1:", 2);
    // (source, destination): same core, then each direction across cores.
    for (src, dst) in [(&k0[0], &k1[0]), (&k0[0], &k1[1]), (&k0[1], &k1[0])] {
        let mut w = block(&server, &mut ctl, &["BLMOVE", src.as_str(), dst.as_str(), "LEFT", "RIGHT", "0"], 1);
        ctl.cmd(&["RPUSH", src.as_str(), "one", "two"]);
        assert_eq!(w.read_reply().unwrap(), bulk("one").as_bytes());
        assert_eq!(ctl.cmd(&["LRANGE", dst.as_str(), "0", "-1"]), format!("*1\r\n{}", bulk("one")).as_bytes());
        assert_eq!(ctl.cmd(&["LRANGE", src.as_str(), "0", "-1"]), format!("*1\r\n{}", bulk("two")).as_bytes());
        ctl.cmd(&["DEL", src.as_str(), dst.as_str()]);
        // BRPOPLPUSH, same shape.
        let mut w = block(&server, &mut ctl, &["BRPOPLPUSH", src.as_str(), dst.as_str(), "0"], 1);
        ctl.cmd(&["RPUSH", src.as_str(), "a", "b"]);
        assert_eq!(w.read_reply().unwrap(), bulk("b").as_bytes());
        assert_eq!(ctl.cmd(&["LRANGE", dst.as_str(), "0", "-1"]), format!("*1\r\n{}", bulk("b")).as_bytes());
        ctl.cmd(&["DEL", src.as_str(), dst.as_str()]);
    }
}

#[test]
fn a_cross_core_blmove_and_a_pop_share_a_push_without_losing_an_element() {
    let server = start();
    let mut ctl = server.raw();
    let k = keys_on_both_cores("turn:", 2);
    let (src, dst) = (&k[0], &k[1]);
    let mut mover = block(&server, &mut ctl, &["BLMOVE", src.as_str(), dst.as_str(), "LEFT", "LEFT", "0"], 1);
    let mut popper = block(&server, &mut ctl, &["BLPOP", src.as_str(), "0"], 2);
    ctl.cmd(&["RPUSH", src.as_str(), "first", "second"]);
    let moved = mover.read_reply().unwrap();
    let popped = popper.read_reply().unwrap();
    // Both are served, each element exactly once.
    let mut got = vec![String::from_utf8(moved).unwrap(), String::from_utf8(popped).unwrap()];
    got.sort();
    let mut want = vec![bulk("first"), String::from_utf8(pair(src, "second")).unwrap()];
    want.sort();
    if got != want {
        let mut other = vec![bulk("second"), String::from_utf8(pair(src, "first")).unwrap()];
        other.sort();
        assert_eq!(got, other);
    }
    assert_eq!(ctl.cmd(&["EXISTS", src.as_str()]), b":0\r\n");
    assert_eq!(ctl.cmd(&["LLEN", dst.as_str()]), b":1\r\n");
}

#[test]
fn timeouts_reply_null_and_leave_nothing_registered() {
    let server = start();
    let mut ctl = server.raw();
    for key in keys_on_both_cores("tmo:", 2) {
        let mut c = server.raw();
        assert_eq!(c.cmd(&["BLPOP", key.as_str(), "0.05"]), b"*-1\r\n");
        assert_eq!(c.cmd(&["BLMOVE", key.as_str(), "tmo:dst", "LEFT", "LEFT", "0.02"]), b"*-1\r\n");
        assert_eq!(c.cmd(&["BLMPOP", "0.02", "1", key.as_str(), "LEFT"]), b"*-1\r\n");
        c.cmd(&["HELLO", "3"]);
        assert_eq!(c.cmd(&["BRPOP", key.as_str(), "0.02"]), b"_\r\n");
        assert_eq!(ctl.info_number("clients", "blocked_clients"), 0);
        ctl.cmd(&["RPUSH", key.as_str(), "stays"]);
        assert_eq!(ctl.cmd(&["LLEN", key.as_str()]), b":1\r\n");
    }
}

#[test]
fn client_unblock_ends_a_wait_as_timeout_or_error() {
    let server = start();
    let mut ctl = server.raw();
    let key = "unblock:k";
    for (how, want) in [("TIMEOUT", &b"*-1\r\n"[..]), ("ERROR", &b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"[..])] {
        let mut c = server.raw();
        let id = String::from_utf8(c.cmd(&["CLIENT", "ID"])).unwrap();
        let id = id.trim_start_matches(':').trim().to_string();
        c.send(&["BLPOP", key, "0"]).unwrap();
        wait_blocked(&mut ctl, 1);
        assert_eq!(ctl.cmd(&["CLIENT", "UNBLOCK", id.as_str(), how]), b":1\r\n");
        assert_eq!(c.read_reply().unwrap(), want);
        assert_eq!(ctl.cmd(&["CLIENT", "UNBLOCK", id.as_str()]), b":0\r\n");
        assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
    }
    ctl.cmd(&["RPUSH", key, "stays"]);
    assert_eq!(ctl.cmd(&["LLEN", key]), b":1\r\n");
}

#[test]
fn a_client_that_disconnects_while_blocked_leaves_nothing_behind() {
    let server = start();
    let mut ctl = server.raw();
    let keys = keys_on_both_cores("gone:", 2);
    let c = block(&server, &mut ctl, &["BLPOP", keys[0].as_str(), keys[1].as_str(), "0"], 1);
    drop(c);
    wait_blocked(&mut ctl, 0);
    for k in &keys {
        ctl.cmd(&["RPUSH", k.as_str(), "stays"]);
        assert_eq!(ctl.cmd(&["LLEN", k.as_str()]), b":1\r\n");
    }
}

#[test]
fn commands_pipelined_behind_a_blocking_one_wait_for_it() {
    let server = start();
    let mut ctl = server.raw();
    let key = "pipe:k";
    let mut c = server.raw();
    let mut pipe = common::encode_command(&["BLPOP", key, "0"]);
    pipe.extend(common::encode_command(&["LLEN", key]));
    pipe.extend(common::encode_command(&["PING"]));
    c.send_raw(&pipe).unwrap();
    wait_blocked(&mut ctl, 1);
    ctl.cmd(&["RPUSH", key, "a", "b"]);
    assert_eq!(c.read_reply().unwrap(), pair(key, "a"));
    assert_eq!(c.read_reply().unwrap(), b":1\r\n");
    assert_eq!(c.read_reply().unwrap(), b"+PONG\r\n");
}

#[test]
fn many_blocked_clients_each_get_exactly_one_element() {
    let server = start();
    let mut ctl = server.raw();
    let keys = keys_on_both_cores("many:", 4);
    const N: usize = 200;
    let mut waiters = Vec::with_capacity(N);
    for i in 0..N {
        let mut c = server.raw();
        // Each waits on two keys, one per core.
        let (a, b) = (&keys[i % 2], &keys[3 - i % 2]);
        c.send(&["BRPOP", a.as_str(), b.as_str(), "0"]).unwrap();
        waiters.push(c);
    }
    wait_blocked(&mut ctl, N);
    let mut pushers = Vec::new();
    for k in keys.clone() {
        let port = server.port();
        pushers.push(thread::spawn(move || {
            let mut p = RawConn::connect(port).unwrap();
            for j in 0..N / 4 {
                p.cmd(&["LPUSH", k.as_str(), &format!("{k}-{j}")]);
            }
        }));
    }
    pushers.into_iter().for_each(|p| p.join().unwrap());
    let mut got: Vec<Vec<u8>> = waiters.iter_mut().map(|w| w.read_reply().unwrap()).collect();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), N, "every element went to exactly one client");
    wait_blocked(&mut ctl, 0);
    for k in &keys {
        assert_eq!(ctl.cmd(&["EXISTS", k.as_str()]), b":0\r\n");
    }
}

#[test]
fn blocking_works_with_the_glommio_engine_too() {
    let server = KvickServer::start(&["--threads", "2", "--io-engine", "glommio"]);
    let mut ctl = server.raw();
    let keys = keys_on_both_cores("ring:", 2);
    let mut w = block(&server, &mut ctl, &["BLPOP", keys[0].as_str(), keys[1].as_str(), "0"], 1);
    ctl.cmd(&["RPUSH", keys[1].as_str(), "v"]);
    assert_eq!(w.read_reply().unwrap(), pair(&keys[1], "v"));
    let gone = block(&server, &mut ctl, &["BRPOP", keys[0].as_str(), "0"], 1);
    drop(gone);
    wait_blocked(&mut ctl, 0);
    ctl.cmd(&["RPUSH", keys[0].as_str(), "stays"]);
    assert_eq!(ctl.cmd(&["LLEN", keys[0].as_str()]), b":1\r\n");
}

// --- Sorted sets: BZPOPMIN, BZPOPMAX, BZMPOP --------------------------------------

fn triple(key: &str, member: &str, score: &str) -> Vec<u8> {
    format!("*3\r\n{}{}{}", bulk(key), bulk(member), bulk(score)).into_bytes()
}

#[test]
fn bzpop_waiters_are_served_in_order_on_either_core() {
    let server = start();
    let mut ctl = server.raw();
    for key in keys_on_both_cores("bz:", 2) {
        let k = key.as_str();
        let mut min = block(&server, &mut ctl, &["BZPOPMIN", "bz:none", k, "0"], 1);
        let mut max = block(&server, &mut ctl, &["BZPOPMAX", k, "0"], 2);
        let mut third = block(&server, &mut ctl, &["BZPOPMIN", k, "0"], 3);
        assert_eq!(ctl.cmd(&["ZADD", k, "1", "a", "2", "b"]), b":2\r\n");
        assert_eq!(min.read_reply().unwrap(), triple(k, "a", "1"));
        assert_eq!(max.read_reply().unwrap(), triple(k, "b", "2"));
        // The set is gone (emptied), the third one still waits.
        assert_eq!(ctl.cmd(&["EXISTS", k]), b":0\r\n");
        wait_blocked(&mut ctl, 1);
        ctl.cmd(&["ZADD", k, "5", "c"]);
        assert_eq!(third.read_reply().unwrap(), triple(k, "c", "5"));
        wait_blocked(&mut ctl, 0);
    }
}

#[test]
fn a_list_does_not_wake_a_zset_waiter_nor_hold_up_the_ones_behind() {
    let server = start();
    let mut ctl = server.raw();
    for key in keys_on_both_cores("mix:", 2) {
        let k = key.as_str();
        let mut list = block(&server, &mut ctl, &["BLPOP", k, "0"], 1);
        let mut zset = block(&server, &mut ctl, &["BZPOPMIN", k, "0"], 2);
        // A sorted set appears: the BLPOP ahead keeps waiting, BZPOPMIN is served.
        ctl.cmd(&["ZADD", k, "3", "m"]);
        assert_eq!(zset.read_reply().unwrap(), triple(k, "m", "3"));
        wait_blocked(&mut ctl, 1);
        ctl.cmd(&["RPUSH", k, "v"]);
        assert_eq!(list.read_reply().unwrap(), pair(k, "v"));
        wait_blocked(&mut ctl, 0);
    }
}

#[test]
fn bzmpop_pops_up_to_count_from_the_key_that_gets_data() {
    let server = start();
    let mut ctl = server.raw();
    let keys = keys_on_both_cores("bzm:", 2);
    for (got, other) in [(&keys[0], &keys[1]), (&keys[1], &keys[0])] {
        let mut w = block(&server, &mut ctl, &["BZMPOP", "0", "2", keys[0].as_str(), keys[1].as_str(), "MAX", "COUNT", "2"], 1);
        ctl.cmd(&["ZADD", got.as_str(), "1", "a", "2", "b", "3", "c"]);
        let want = format!("*2\r\n{}*2\r\n*2\r\n{}{}*2\r\n{}{}", bulk(got), bulk("c"), bulk("3"), bulk("b"), bulk("2"));
        assert_eq!(w.read_reply().unwrap(), want.as_bytes());
        assert_eq!(ctl.cmd(&["ZCARD", got.as_str()]), b":1\r\n");
        wait_blocked(&mut ctl, 0);
        // Its registration on the other key is gone.
        ctl.cmd(&["ZADD", other.as_str(), "1", "kept"]);
        assert_eq!(ctl.cmd(&["ZCARD", other.as_str()]), b":1\r\n");
        ctl.cmd(&["DEL", got.as_str(), other.as_str()]);
    }
}

#[test]
fn bzpop_replies_at_once_with_data_times_out_and_does_not_block_in_multi() {
    let server = start();
    let mut ctl = server.raw();
    for key in keys_on_both_cores("bzt:", 2) {
        let k = key.as_str();
        let mut c = server.raw();
        assert_eq!(c.cmd(&["BZPOPMIN", k, "0.05"]), b"*-1\r\n");
        assert_eq!(c.cmd(&["BZMPOP", "0.02", "1", k, "MIN"]), b"*-1\r\n");
        c.cmd(&["HELLO", "3"]);
        assert_eq!(c.cmd(&["BZPOPMAX", k, "0.02"]), b"_\r\n");
        assert_eq!(ctl.info_number("clients", "blocked_clients"), 0);
        c.cmd(&["MULTI"]);
        c.cmd(&["BZPOPMIN", k, "0"]);
        assert_eq!(c.cmd(&["EXEC"]), b"*1\r\n_\r\n");
        ctl.cmd(&["ZADD", k, "1.5", "x"]);
        assert_eq!(c.cmd(&["BZPOPMIN", k, "0"]), format!("*3\r\n{}{},1.5\r\n", bulk(k), bulk("x")).as_bytes());
        ctl.cmd(&["SET", k, "str"]);
        assert!(c.cmd(&["BZPOPMIN", k, "0"]).starts_with(b"-WRONGTYPE"));
        ctl.cmd(&["DEL", k]);
    }
}

#[test]
fn a_zset_waiter_that_disconnects_leaves_nothing_behind() {
    let server = start();
    let mut ctl = server.raw();
    let keys = keys_on_both_cores("zgone:", 2);
    let c = block(&server, &mut ctl, &["BZPOPMIN", keys[0].as_str(), keys[1].as_str(), "0"], 1);
    drop(c);
    wait_blocked(&mut ctl, 0);
    for k in &keys {
        ctl.cmd(&["ZADD", k.as_str(), "1", "stays"]);
        assert_eq!(ctl.cmd(&["ZCARD", k.as_str()]), b":1\r\n");
    }
}

#[test]
fn client_list_flags_blocked_clients_with_b() {
    let server = start();
    let mut ctl = server.raw();
    for key in keys_on_both_cores("flagb:", 2) {
        let mut w = block(&server, &mut ctl, &["BZPOPMIN", key.as_str(), "0"], 1);
        let list = String::from_utf8(ctl.cmd(&["CLIENT", "LIST"])).unwrap();
        assert_eq!(list.matches("flags=b ").count(), 1, "{list}");
        ctl.cmd(&["ZADD", key.as_str(), "1", "m"]);
        w.read_reply().unwrap();
        let list = String::from_utf8(ctl.cmd(&["CLIENT", "LIST"])).unwrap();
        assert_eq!(list.matches("flags=b ").count(), 0, "{list}");
    }
}
