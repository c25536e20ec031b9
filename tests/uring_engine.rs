//! The two network paths, the completion ring (`--io-engine uring`, the
//! default, src/server/uring.rs) and glommio's `TcpStream` (`--io-engine
//! glommio`, the fallback where io_uring lacks the ring's setup flags): what is
//! specific to them — connections that end (QUIT, CLIENT KILL, the
//! client going away), many connections coming and going (slots reused),
//! clients that do not read their replies (output and input bounds), large
//! values in both directions — on one and on two cores. The other suites
//! cover the commands themselves and run on the default engine.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{encode_command, KvickServer, TestServer};

fn with_each_thread_count(check: impl Fn(&TestServer)) {
    for engine in ["uring", "glommio"] {
        for threads in ["1", "2"] {
            let server = KvickServer::start(&["--io-engine", engine, "--threads", threads]);
            check(&server);
        }
    }
}

fn connected_clients(server: &TestServer) -> usize {
    let mut con = server.raw();
    let info = String::from_utf8(con.cmd(&["INFO", "clients"])).unwrap();
    let line = info.lines().find(|l| l.starts_with("connected_clients:")).expect("connected_clients in INFO");
    line["connected_clients:".len()..].trim().parse::<usize>().unwrap() - 1
}

/// Waits until `server` reports `want` connected clients besides the asking one.
fn wait_for_clients(server: &TestServer, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = connected_clients(server);
        if n == want {
            return;
        }
        assert!(Instant::now() < deadline, "{n} clients still connected, expected {want}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn commands_pipelines_and_large_values() {
    with_each_thread_count(|server| {
        let mut con = server.raw();
        assert_eq!(con.cmd(&["SET", "k", "v"]), b"+OK\r\n");
        assert_eq!(con.cmd(&["GET", "k"]), b"$1\r\nv\r\n");

        // A pipeline of 2000 commands in one write; keys on both cores.
        let mut batch = Vec::new();
        for i in 0..1000 {
            batch.extend(encode_command(&["SET", &format!("p{i}"), &i.to_string()]));
        }
        for i in 0..1000 {
            batch.extend(encode_command(&["GET", &format!("p{i}")]));
        }
        con.send_raw(&batch).unwrap();
        for _ in 0..1000 {
            assert_eq!(con.read_reply().unwrap(), b"+OK\r\n");
        }
        for i in 0..1000 {
            let v = i.to_string();
            assert_eq!(con.read_reply().unwrap(), format!("${}\r\n{v}\r\n", v.len()).into_bytes());
        }

        // 8 MB in, 8 MB out: far more than one provided buffer or one send.
        let value: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let mut set = b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n".to_vec();
        set.extend(format!("${}\r\n", value.len()).into_bytes());
        set.extend(&value);
        set.extend(b"\r\n");
        let mut raw = server.raw();
        raw.send_raw(&set).unwrap();
        assert_eq!(raw.read_reply().unwrap(), b"+OK\r\n");
        let got = raw.cmd(&["GET", "big"]);
        let header = format!("${}\r\n", value.len()).into_bytes();
        assert_eq!(&got[..header.len()], &header[..]);
        assert!(got[header.len()..got.len() - 2] == value[..], "8 MB value came back different");
    });
}

/// A lone client's request that finds the core asleep must wake it. When
/// the kernel's wake-up did not reach the core (a DEFER_TASKRUN ring's
/// eventfd read through glommio, Linux 6.18), the core woke only on its
/// 10 ms wake tick (server/mod.rs): a median round trip of 10-16 ms instead
/// of ~0.05 ms. Not a speed figure: the bound is 40 times what a round trip
/// needs, and below what a tick-bound core can reach.
#[test]
fn a_sleeping_core_wakes_for_a_lone_request() {
    with_each_thread_count(|server| {
        let mut con = server.raw();
        con.cmd(&["PING"]);
        let mut trips = Vec::new();
        for i in 0..60 {
            // Long enough for the core to go to sleep.
            std::thread::sleep(Duration::from_millis(2));
            let start = Instant::now();
            assert_eq!(con.cmd(&["ECHO", &i.to_string()]), format!("${}\r\n{i}\r\n", i.to_string().len()).into_bytes());
            trips.push(start.elapsed());
        }
        trips.sort();
        let median = trips[trips.len() / 2];
        assert!(median < Duration::from_millis(2), "median round trip {median:?} from an idle connection: the core waits for its wake tick");
    });
}

#[test]
fn quit_and_client_kill_end_the_connection() {
    with_each_thread_count(|server| {
        // QUIT: +OK, then end of stream.
        let mut con = server.raw();
        assert_eq!(con.cmd(&["QUIT"]), b"+OK\r\n");
        assert!(con.read_reply().is_err(), "QUIT must close the connection");

        // CLIENT KILL of a connection idle in a read.
        let mut victim = server.raw();
        let id = String::from_utf8(victim.cmd(&["CLIENT", "ID"])).unwrap();
        let id = id.trim_start_matches(':').trim().to_string();
        let mut killer = server.raw();
        assert_eq!(killer.cmd(&["CLIENT", "KILL", "ID", &id]), b":1\r\n");
        let err = victim.read_reply().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "killed connection: {err}");
        wait_for_clients(server, 1); // the killer only
        assert_eq!(killer.cmd(&["PING"]), b"+PONG\r\n");
    });
}

#[test]
fn many_connections_come_and_go() {
    with_each_thread_count(|server| {
        for round in 0..3 {
            let mut conns: Vec<_> = (0..150).map(|_| server.raw()).collect();
            for (i, c) in conns.iter_mut().enumerate() {
                assert_eq!(c.cmd(&["SET", &format!("m{round}:{i}"), "x"]), b"+OK\r\n");
            }
            // Half close politely, half just go away.
            for (i, c) in conns.iter_mut().enumerate() {
                if i % 2 == 0 {
                    assert_eq!(c.cmd(&["QUIT"]), b"+OK\r\n");
                }
            }
            drop(conns);
            wait_for_clients(server, 0);
        }
        let mut con = server.raw();
        assert_eq!(con.cmd(&["EXISTS", "m2:149"]), b":1\r\n");
    });
}

#[test]
fn client_that_does_not_read_its_replies() {
    const PINGS: usize = 400_000;
    with_each_thread_count(|server| {
        let mut con = server.raw();
        let value = vec![b'z'; 100 * 1024];
        con.send_raw(&encode_command(&[&b"SET"[..], &b"fat"[..], &value[..]])).unwrap();
        assert_eq!(con.read_reply().unwrap(), b"+OK\r\n");

        // 300 GETs of 100 KB (30 MB of replies), then 400k PINGs (2.4 MB of
        // input), written before reading any reply: the server must stop
        // sending while the client does not read, stop receiving while its
        // input piles up, and then deliver everything in order.
        let mut stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let get = encode_command(&["GET", "fat"]);
        let writer = {
            let mut s = stream.try_clone().unwrap();
            std::thread::spawn(move || {
                for _ in 0..300 {
                    s.write_all(&get).unwrap();
                }
                s.write_all(&b"PING\r\n".repeat(PINGS)).unwrap();
            })
        };
        std::thread::sleep(Duration::from_millis(500));
        let reply_len = format!("${}\r\n", value.len()).len() + value.len() + 2;
        let mut total = 0usize;
        let mut buf = vec![0u8; 256 * 1024];
        let mut first = Vec::new();
        let expected = 300 * reply_len + PINGS * b"+PONG\r\n".len();
        let mut tail = Vec::new();
        while total < expected {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed after {total} bytes");
            if first.len() < reply_len {
                first.extend_from_slice(&buf[..n.min(reply_len - first.len())]);
            }
            total += n;
            if total > expected - 64 {
                tail.extend_from_slice(&buf[..n]);
            }
        }
        writer.join().unwrap();
        assert_eq!(total, expected);
        assert!(tail.ends_with(b"+PONG\r\n+PONG\r\n"));
        assert!(first.ends_with(b"zzzz\r\n"));
        let mut con = server.raw();
        assert_eq!(con.cmd(&["PING"]), b"+PONG\r\n");
    });
}
