//! Connection-level settings and limits, with real sockets: idle `timeout`,
//! `tcp-keepalive`, `protected-mode`, `pidfile`, and a query buffer that does
//! not trust a frame's announced length.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::time::Duration;

use common::{KvickServer, RawConn};

/// Whether the server closed `conn` (a read returns end of stream).
fn closed_by_server(conn: &mut TcpStream) -> bool {
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 64];
    matches!(conn.read(&mut b), Ok(0) | Err(_))
}

#[test]
fn idle_clients_are_closed_after_timeout_and_busy_ones_are_not() {
    let server = KvickServer::start(&["--threads", "2", "--timeout", "1"]);
    let mut idle = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    let mut busy = server.raw();
    // The busy client sends a command every 300 ms for 3 s: never idle 1 s.
    for _ in 0..10 {
        assert_eq!(busy.cmd(&["PING"]), b"+PONG\r\n");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(closed_by_server(&mut idle), "an idle client outlived `timeout 1`");
    assert_eq!(busy.cmd(&["PING"]), b"+PONG\r\n");
    // timeout 0 (CONFIG SET at runtime) keeps idle clients forever.
    assert_eq!(busy.cmd(&["CONFIG", "SET", "timeout", "0"]), b"+OK\r\n");
    let mut idle = server.raw();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(idle.cmd(&["PING"]), b"+PONG\r\n");
}

/// The keepalive timer of the server side of a connection, from
/// /proc/net/tcp: the `tr` field is 2 while a keepalive timer is armed.
fn server_side_timer(server_port: u16, client_port: u16) -> Option<u8> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let want = (format!(":{server_port:04X}"), format!(":{client_port:04X}"));
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f[1].ends_with(&want.0) && f[2].ends_with(&want.1)).then(|| f[5].split(':').next().unwrap().parse().unwrap())
    })
}

#[test]
fn tcp_keepalive_arms_the_socket_timer() {
    for (setting, expected) in [("300", 2), ("0", 0)] {
        let server = KvickServer::start(&["--threads", "1", "--tcp-keepalive", setting]);
        let mut conn = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        conn.write_all(b"PING\r\n").unwrap();
        let mut b = [0u8; 7];
        conn.read_exact(&mut b).unwrap();
        let port = conn.local_addr().unwrap().port();
        assert_eq!(server_side_timer(server.port(), port), Some(expected), "tcp-keepalive {setting}");
    }
}

/// A local address that is not loopback, to connect from as an outsider.
fn non_loopback_ipv4() -> IpAddr {
    let out = std::process::Command::new("hostname").arg("-I").output().expect("run hostname -I");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .find(|a| a.is_ipv4() && !a.is_loopback())
        .expect("this test needs a non-loopback IPv4 address on the machine (hostname -I)")
}

#[test]
fn protected_mode_refuses_outsiders_without_a_password() {
    let outside = non_loopback_ipv4();
    let server = KvickServer::start_bound(&["--threads", "1"], &format!("127.0.0.1 {outside}"));
    let mut conn = TcpStream::connect((outside, server.port())).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply).unwrap();
    assert!(reply.starts_with(b"-DENIED Redis is running in protected mode"), "{}", String::from_utf8_lossy(&reply));
    // Loopback clients are served; with a password set outsiders are too.
    let mut local = server.raw();
    assert_eq!(local.cmd(&["CONFIG", "SET", "requirepass", "pw"]), b"+OK\r\n");
    let mut conn = TcpStream::connect((outside, server.port())).unwrap();
    conn.write_all(b"PING\r\n").unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 34];
    conn.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"-NOAUTH Authentication required.\r\n");
}

#[test]
fn pidfile_is_written_at_startup_and_removed_by_shutdown() {
    let path = std::env::temp_dir().join(format!("kvick-test-{}.pid", std::process::id()));
    let server = KvickServer::start(&["--threads", "1", "--pidfile", path.to_str().unwrap()]);
    let written = std::fs::read_to_string(&path).expect("pidfile written");
    assert_eq!(written.trim(), server.pid().to_string());
    let mut conn = server.raw();
    conn.send(&["SHUTDOWN", "NOSAVE"]).unwrap();
    assert!(conn.read_reply().is_err(), "SHUTDOWN closes the connection");
    for _ in 0..100 {
        if !path.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("pidfile {} still there after SHUTDOWN", path.display());
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn an_announced_bulk_is_not_allocated_before_it_arrives() {
    let server = KvickServer::start(&["--threads", "1"]);
    let before = rss_kb(server.pid());
    // Ten clients each announce a 500 MB argument and send 1 MB of it.
    let mut conns: Vec<RawConn> = (0..10).map(|_| server.raw()).collect();
    for c in &mut conns {
        c.send_raw(b"*2\r\n$4\r\nECHO\r\n$500000000\r\n").unwrap();
        c.send_raw(&vec![b'x'; 1 << 20]).unwrap();
    }
    // Let the server read what was sent, then check it holds about that.
    let mut probe = server.raw();
    assert_eq!(probe.cmd(&["PING"]), b"+PONG\r\n");
    std::thread::sleep(Duration::from_millis(300));
    let grown_mb = rss_kb(server.pid()).saturating_sub(before) / 1024;
    assert!(grown_mb < 200, "RSS grew {grown_mb} MB for 10 MB received");
}

/// INFO's connected_clients as seen by `con` (which counts itself).
fn connected_clients(con: &mut RawConn) -> usize {
    let info = String::from_utf8(con.cmd(&["INFO", "clients"])).unwrap();
    let line = info.lines().find(|l| l.starts_with("connected_clients:")).expect("connected_clients in INFO");
    line["connected_clients:".len()..].trim().parse().unwrap()
}

#[test]
fn maxclients_is_one_limit_for_all_cores() {
    // However the kernel spreads the connections over the two cores'
    // listeners, exactly `maxclients` are served at once.
    let server = KvickServer::start(&["--threads", "2", "--maxclients", "6"]);
    let mut first = server.raw();
    // The harness's readiness probe may still be counted for a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while connected_clients(&mut first) != 1 {
        assert!(std::time::Instant::now() < deadline, "the probe connection lingers");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut held = vec![first];
    for _ in 1..6 {
        let mut c = server.raw();
        assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
        held.push(c);
    }
    for _ in 0..4 {
        let mut extra = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        extra.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        extra.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"-ERR max number of clients reached\r\n");
    }
    drop(held.pop());
    // Once the server has seen the close, a new client gets in.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while connected_clients(&mut held[0]) != 5 {
        assert!(std::time::Instant::now() < deadline, "the closed client is still counted");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut again = server.raw();
    assert_eq!(again.cmd(&["PING"]), b"+PONG\r\n");
}

/// A pipeline sent in one write is parsed ahead (for prefetching) and run
/// from that parse: commands that change how later frames apply (SELECT,
/// MULTI, HELLO, CONFIG SET) must still act in order, among empty frames,
/// inline commands and a frame split across writes. Replies compared with
/// redis-server's.
#[test]
fn a_pipeline_parsed_ahead_runs_as_redis_runs_it() {
    use common::{encode_command, RedisServer};
    let cmds: &[&[&str]] = &[
        &["SET", "k", "db0"],
        &["SELECT", "1"],
        &["SET", "k", "db1"],
        &["LPUSH", "l", "a", "b"],
        &["GET", "k"],
        &["SELECT", "0"],
        &["GET", "k"],
        &["MULTI"],
        &["INCR", "n"],
        &["SADD", "s", "m"],
        &["EXEC"],
        &["HELLO", "3"],
        &["HSET", "h", "f", "v"],
        &["HGETALL", "h"],
        &["CONFIG", "SET", "hash-max-listpack-entries", "0"],
        &["HSET", "h", "g", "w"],
        &["OBJECT", "ENCODING", "h"],
        &["HELLO", "2"],
        // A hashtable's order is each server's own (Redis seeds its hash).
        &["HMGET", "h", "f", "g"],
    ];
    let mut pipeline = Vec::new();
    for (i, c) in cmds.iter().enumerate() {
        pipeline.extend(encode_command(c));
        if i == 3 {
            pipeline.extend_from_slice(b"*0\r\n");
        }
        if i == 6 {
            pipeline.extend_from_slice(b"GET k\r\n");
        }
    }
    let tail = encode_command(&["LRANGE", "l", "0", "-1"]);
    let replies = cmds.len() + 2;
    let run = |port: u16| -> Vec<Vec<u8>> {
        let mut c = RawConn::connect(port).unwrap();
        c.set_timeout(Duration::from_secs(10)).unwrap();
        // The last frame's first half goes with the pipeline, its rest after.
        let mut first = pipeline.clone();
        first.extend_from_slice(&tail[..7]);
        c.send_raw(&first).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        c.send_raw(&tail[7..]).unwrap();
        (0..replies).map(|_| without_client_id(c.read_reply().unwrap())).collect()
    };
    let redis = RedisServer::start();
    let want = run(redis.port());
    for threads in ["1", "2"] {
        let server = KvickServer::start(&["--threads", threads]);
        let got = run(server.port());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(common::escape(g), common::escape(w), "reply {i} with --threads {threads}");
        }
    }
}

/// A reply with the value of HELLO's `id` field (the servers count
/// connections differently) left out.
fn without_client_id(mut reply: Vec<u8>) -> Vec<u8> {
    let field = b"$2\r\nid\r\n:";
    if let Some(at) = reply.windows(field.len()).position(|w| w == field) {
        let from = at + field.len();
        let to = from + reply[from..].iter().position(|&b| b == b'\r').unwrap_or(0);
        reply.drain(from..to);
    }
    reply
}
