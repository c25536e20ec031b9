//! Lua scripts across cores (`--threads 2`): concurrent scripts moving value
//! between keys of different cores keep the sum, scripts reaching undeclared
//! keys work, EVALSHA finds a script from any core, the lock-release script,
//! and a busy script answered with -BUSY and stopped by SCRIPT KILL; the
//! same for functions (FCALL, FUNCTION KILL), whose libraries every core
//! gets from FUNCTION LOAD on any one.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{keys_on_both_cores, KvickServer};

const RUN_FOR: Duration = Duration::from_secs(3);
const START: i64 = 1000;

const TRANSFER: &str = "local n = tonumber(ARGV[1])
redis.call('decrby', KEYS[1], n)
redis.call('incrby', KEYS[2], n)
return redis.call('get', KEYS[2])";

const SUM_ALL: &str = "local s = 0
for i = 1, #KEYS do s = s + tonumber(redis.call('get', KEYS[i])) end
return s";

/// The library of `Via::Fcall`: TRANSFER and SUM_ALL as functions.
const LIBRARY: &str = "#!lua name=bank
redis.register_function('transfer', function(KEYS, ARGV)
  local n = tonumber(ARGV[1])
  redis.call('decrby', KEYS[1], n)
  redis.call('incrby', KEYS[2], n)
  return redis.call('get', KEYS[2])
end)
redis.register_function{function_name='sum_all', flags={'no-writes'}, callback=function(KEYS)
  local s = 0
  for i = 1, #KEYS do s = s + tonumber(redis.call('get', KEYS[i])) end
  return s
end}";

#[derive(Clone, Copy, PartialEq)]
enum Via {
    Eval,
    /// EVAL with the keys in ARGV.
    EvalUndeclared,
    /// EVAL declaring the source, a key of core 0, and naming the
    /// destination, a key of core 1, only in ARGV: reached after a write.
    EvalDestUndeclared,
    Fcall,
}

/// Transfers by script between keys of both cores, in parallel with
/// scripts that read every key: the sum never changes.
fn transfers_keep_the_sum(via: Via) {
    let server = KvickServer::start(&["--threads", "2"]);
    let keys = keys_on_both_cores("acct:", 6);
    let mut con = server.client();
    if via == Via::Fcall {
        let name: String = redis::cmd("FUNCTION").arg("LOAD").arg(LIBRARY).query(&mut con).unwrap();
        assert_eq!(name, "bank");
    }
    for k in &keys {
        let _: () = redis::cmd("SET").arg(k).arg(START).query(&mut con).unwrap();
    }
    let total = START * keys.len() as i64;
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4u64 {
        let (keys, stop, mut con) = (keys.clone(), stop.clone(), server.client());
        workers.push(thread::spawn(move || {
            let mut n = 0u64;
            let mut x = w * 7 + 1;
            while !stop.load(Ordering::Relaxed) {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let (mut from, mut to) = ((x >> 33) as usize % keys.len(), (x >> 17) as usize % keys.len());
                if via == Via::EvalDestUndeclared {
                    // keys_on_both_cores alternates: even ones are core 0's.
                    (from, to) = (from & !1, to | 1);
                }
                let (from, to) = (&keys[from], &keys[to]);
                let amount = (x >> 50) as i64 % 50 + 1;
                let _: i64 = if via == Via::Fcall {
                    redis::cmd("FCALL")
                        .arg("transfer")
                        .arg(2)
                        .arg(from)
                        .arg(to)
                        .arg(amount)
                        .query(&mut con)
                        .unwrap()
                } else if via == Via::EvalUndeclared {
                    // Key names in ARGV: the script must lock every shard.
                    let script = TRANSFER
                        .replace("KEYS[1]", "ARGV[2]")
                        .replace("KEYS[2]", "ARGV[3]");
                    redis::cmd("EVAL")
                        .arg(script)
                        .arg(0)
                        .arg(amount)
                        .arg(from)
                        .arg(to)
                        .query(&mut con)
                        .unwrap()
                } else if via == Via::EvalDestUndeclared {
                    redis::cmd("EVAL")
                        .arg(TRANSFER.replace("KEYS[2]", "ARGV[2]"))
                        .arg(1)
                        .arg(from)
                        .arg(amount)
                        .arg(to)
                        .query(&mut con)
                        .unwrap()
                } else {
                    redis::cmd("EVAL")
                        .arg(TRANSFER)
                        .arg(2)
                        .arg(from)
                        .arg(to)
                        .arg(amount)
                        .query(&mut con)
                        .unwrap()
                };
                n += 1;
            }
            n
        }));
    }
    let (keys_r, stop_r, mut reader) = (keys.clone(), stop.clone(), server.client());
    let checker = thread::spawn(move || {
        let mut checks = 0u64;
        while !stop_r.load(Ordering::Relaxed) {
            let mut sum = redis::cmd(if via == Via::Fcall { "FCALL_RO" } else { "EVAL" });
            sum.arg(if via == Via::Fcall { "sum_all" } else { SUM_ALL });
            let seen: i64 = sum
                .arg(keys_r.len())
                .arg(&keys_r)
                .query(&mut reader)
                .unwrap();
            assert_eq!(seen, total, "a script saw a transfer half done");
            let seen: Vec<i64> = redis::cmd("MGET").arg(&keys_r).query(&mut reader).unwrap();
            assert_eq!(
                seen.iter().sum::<i64>(),
                total,
                "MGET saw a transfer half done: {seen:?}"
            );
            checks += 1;
        }
        checks
    });
    thread::sleep(RUN_FOR);
    stop.store(true, Ordering::Relaxed);
    let done: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let checks = checker.join().unwrap();
    assert!(
        done > 50 && checks > 10,
        "too little ran: {done} transfers, {checks} checks"
    );
    let end: Vec<i64> = redis::cmd("MGET").arg(&keys).query(&mut con).unwrap();
    assert_eq!(end.iter().sum::<i64>(), total);
}

#[test]
fn script_transfers_keep_the_sum_across_cores() {
    transfers_keep_the_sum(Via::Eval);
}

#[test]
fn script_transfers_on_undeclared_keys_keep_the_sum() {
    transfers_keep_the_sum(Via::EvalUndeclared);
}

/// The undeclared destination lives on a shard above the source's: the
/// script waits for its lock (`Txn::add`), never fails, and stays atomic.
#[test]
fn script_transfers_to_undeclared_keys_after_a_write_keep_the_sum() {
    transfers_keep_the_sum(Via::EvalDestUndeclared);
}

#[test]
fn function_transfers_keep_the_sum_across_cores() {
    transfers_keep_the_sum(Via::Fcall);
}

/// FUNCTION LOAD, DELETE and RESTORE from one connection reach every core:
/// connections (spread over both cores) see the change as soon as the
/// changing one has its reply.
#[test]
fn function_changes_reach_every_core() {
    let server = KvickServer::start(&["--threads", "2"]);
    let mut conns: Vec<_> = (0..8).map(|_| server.raw()).collect();
    for round in 0..3 {
        let lib = format!("#!lua name=lib\nredis.register_function('f', function() return {round} end)");
        let reply = conns[round].cmd(&["FUNCTION", "LOAD", "REPLACE", &lib]);
        assert_eq!(reply, b"$3\r\nlib\r\n");
        for c in conns.iter_mut() {
            assert_eq!(c.cmd(&["FCALL", "f", "0"]), format!(":{round}\r\n").into_bytes());
        }
    }
    let dump = conns[0].cmd(&["FUNCTION", "DUMP"]);
    for c in conns.iter_mut() {
        assert_eq!(c.cmd(&["FUNCTION", "DUMP"]), dump);
    }
    // `$<len>\r\n<payload>\r\n`
    let start = dump.iter().position(|&b| b == b'\n').unwrap() + 1;
    let payload = dump[start..dump.len() - 2].to_vec();
    assert_eq!(conns[1].cmd(&["FUNCTION", "DELETE", "lib"]), b"+OK\r\n");
    for c in conns.iter_mut() {
        assert_eq!(c.cmd(&["FCALL", "f", "0"]), b"-ERR Function not found\r\n");
    }
    let mut restore = vec![b"FUNCTION".to_vec(), b"RESTORE".to_vec(), payload];
    assert_eq!(conns[2].cmd(&restore), b"+OK\r\n");
    restore.push(b"APPEND".to_vec());
    assert_eq!(conns[3].cmd(&restore), b"-ERR Library lib already exists\r\n");
    for c in conns.iter_mut() {
        assert_eq!(c.cmd(&["FCALL", "f", "0"]), b":2\r\n");
    }
}

/// A busy function is answered with -BUSY naming FUNCTION KILL; SCRIPT
/// KILL does not stop it, FUNCTION KILL does.
#[test]
fn busy_function_and_function_kill() {
    let server = KvickServer::start(&["--threads", "2", "--busy-reply-threshold", "200"]);
    let port = server.port();
    let mut c = server.raw();
    let lib = "#!lua name=spin\nredis.register_function('spin', function() local i = 0 while true do i = i + 1 end end)";
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", lib]), b"$4\r\nspin\r\n");
    let runner = thread::spawn(move || {
        let mut c = common::RawConn::connect(port).unwrap();
        c.set_timeout(Duration::from_secs(30)).unwrap();
        c.command(&["FCALL", "spin", "0"]).unwrap()
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut killed = false;
    while Instant::now() < deadline && !killed {
        let mut c = common::RawConn::connect(port).unwrap();
        c.set_timeout(Duration::from_millis(500)).unwrap();
        let reply = c.command(&["GET", "x"]).unwrap_or_default();
        if reply.starts_with(b"-BUSY") {
            let busy = b"-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.\r\n";
            assert_eq!(reply, busy);
            assert_eq!(c.command(&["SCRIPT", "KILL"]).unwrap(), busy);
            assert_eq!(c.command(&["FUNCTION", "KILL"]).unwrap(), b"+OK\r\n");
            killed = true;
        } else {
            thread::sleep(Duration::from_millis(50));
        }
    }
    assert!(killed, "no client saw -BUSY");
    let reply = String::from_utf8(runner.join().unwrap()).unwrap();
    assert!(
        reply.starts_with("-ERR Script killed by user with SCRIPT KILL... script: spin, on @user_function:2."),
        "{reply}"
    );
    assert_eq!(
        c.cmd(&["FUNCTION", "KILL"]),
        b"-NOTBUSY No scripts in execution right now.\r\n"
    );
}

/// FUNCTION STATS describes a busy function (name, the command as sent,
/// duration), as redis-server 7.0 does; while an EVAL script is busy it
/// answers -BUSY naming SCRIPT KILL, as Redis does. Asked from connections
/// until one lands on the core not running the script.
#[test]
fn function_stats_shows_a_busy_function() {
    let server = KvickServer::start(&["--threads", "2", "--busy-reply-threshold", "200"]);
    let port = server.port();
    let mut c = server.raw();
    let lib = "#!lua name=spin\nredis.register_function('Spin', function() local i = 0 while true do i = i + 1 end end)";
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", lib]), b"$4\r\nspin\r\n");
    // The reply, and the connection that got it (on a core that is free).
    let stats = |want: &dyn Fn(&[u8]) -> bool| -> (common::RawConn, Vec<u8>) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let mut c = common::RawConn::connect(port).unwrap();
            c.set_timeout(Duration::from_millis(500)).unwrap();
            let reply = c.command(&["FUNCTION", "STATS"]).unwrap_or_default();
            if want(&reply) {
                return (c, reply);
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("FUNCTION STATS never answered as expected");
    };
    let (_, idle) = stats(&|r| !r.is_empty());
    assert!(idle.starts_with(b"*4\r\n$14\r\nrunning_script\r\n$-1\r\n"), "{}", common::escape(&idle));
    let runner = thread::spawn(move || {
        let mut c = common::RawConn::connect(port).unwrap();
        c.set_timeout(Duration::from_secs(30)).unwrap();
        c.command(&["fcall", "SPIN", "1", "k1", "a1"]).unwrap()
    });
    let (mut free, busy) = stats(&|r| r.starts_with(b"*4\r\n$14\r\nrunning_script\r\n*6"));
    let fields = common::frame_strings(&busy);
    assert_eq!(fields[..10], ["running_script", "name", "Spin", "command", "fcall", "SPIN", "1", "k1", "a1", "duration_ms"], "{fields:?}");
    let ms: u64 = fields[10].parse().unwrap();
    assert!((200..20_000).contains(&ms), "duration_ms {ms}");
    assert_eq!(fields[11..], ["engines", "LUA", "libraries_count", "1", "functions_count", "1"], "{fields:?}");
    assert_eq!(free.cmd(&["FUNCTION", "KILL"]), b"+OK\r\n");
    let reply = String::from_utf8(runner.join().unwrap()).unwrap();
    assert!(reply.starts_with("-ERR Script killed by user"), "{reply}");
    let runner = thread::spawn(move || {
        let mut c = common::RawConn::connect(port).unwrap();
        c.set_timeout(Duration::from_secs(30)).unwrap();
        c.command(&["EVAL", "while true do end", "0"]).unwrap()
    });
    let (mut free, busy) = stats(&|r| r.starts_with(b"-"));
    assert_eq!(busy, b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n");
    assert_eq!(free.cmd(&["SCRIPT", "KILL"]), b"+OK\r\n");
    runner.join().unwrap();
}

/// A script that declares one key but reads and writes others, on both cores.
#[test]
fn undeclared_keys_work() {
    let server = KvickServer::start(&["--threads", "2"]);
    let keys = keys_on_both_cores("u:", 4);
    let mut con = server.client();
    for k in &keys {
        let _: () = redis::cmd("SET").arg(k).arg("v").query(&mut con).unwrap();
    }
    // Reads an undeclared key before any write: restarted with every shard locked.
    let script = "local a = redis.call('get', ARGV[1]) redis.call('set', KEYS[1], a .. '!') return redis.call('get', KEYS[1])";
    for i in 0..3 {
        let got: String = redis::cmd("EVAL")
            .arg(script)
            .arg(1)
            .arg(&keys[0])
            .arg(&keys[1 + i % 3])
            .query(&mut con)
            .unwrap();
        assert_eq!(got, "v!");
    }
    // No keys declared at all, writes on both cores.
    let script = "for i = 1, #ARGV do redis.call('set', ARGV[i], 'w' .. i) end return redis.call('mget', unpack(ARGV))";
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script).arg(0).arg(&keys);
    let got: Vec<String> = cmd.query(&mut con).unwrap();
    assert_eq!(got, vec!["w1", "w2", "w3", "w4"]);
}

/// asynq's dequeue: RPOPLPUSH between declared lists, then HSET of a task
/// key built from the popped id (undeclared), from concurrent clients. The
/// lists live on core 1, the task keys on both cores: the ones of core 0
/// are below the held shard (taken without waiting, `Txn::add`), and no
/// other script holds them, so no run fails.
#[test]
fn dequeue_scripts_reach_task_keys_they_do_not_declare() {
    let server = KvickServer::start(&["--threads", "2"]);
    let lists: Vec<String> = keys_on_both_cores("q:", 4).into_iter().skip(1).step_by(2).collect();
    let tasks = keys_on_both_cores("t:", 400);
    let mut con = server.client();
    let mut push = redis::cmd("RPUSH");
    push.arg(&lists[0]).arg(&tasks);
    let _: i64 = push.query(&mut con).unwrap();
    let dequeue = "local id = redis.call('rpoplpush', KEYS[1], KEYS[2])
if not id then return false end
redis.call('hset', id, 'state', 'active', 'by', ARGV[1])
return id";
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (lists, mut con) = (lists.clone(), server.client());
            thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    let id: Option<String> =
                        redis::cmd("EVAL").arg(dequeue).arg(2).arg(&lists[0]).arg(&lists[1]).arg(w).query(&mut con).unwrap();
                    match id {
                        Some(id) => got.push(id),
                        None => return got,
                    }
                }
            })
        })
        .collect();
    let mut all: Vec<String> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    all.sort();
    let mut want = tasks.clone();
    want.sort();
    assert_eq!(all, want, "every task dequeued once");
    let active: i64 = redis::cmd("LLEN").arg(&lists[1]).query(&mut con).unwrap();
    assert_eq!(active, tasks.len() as i64);
    for t in &tasks {
        let state: Option<String> = redis::cmd("HGET").arg(t).arg("state").query(&mut con).unwrap();
        assert_eq!(state.as_deref(), Some("active"), "{t}");
    }
}

/// Scripts that write their own key (one per core) and then read an
/// undeclared key of the same core while another script holds it for
/// `hold_ms` (that one yields at every call, so neither core is blocked).
/// Returns the two replies.
fn reach_held_keys(server: &common::TestServer, mine: &[String], held: &[String], hold_ms: u64) -> Vec<Vec<u8>> {
    let port = server.port();
    let reach = "redis.call('set', KEYS[1], 'w') return redis.call('get', ARGV[1])";
    let sha = String::from_utf8(server.raw().cmd(&["SCRIPT", "LOAD", reach])[5..45].to_vec()).unwrap();
    let both = held.to_vec();
    let holder = thread::spawn(move || {
        let mut c = common::RawConn::connect(port).unwrap();
        c.set_timeout(Duration::from_secs(30)).unwrap();
        let spin = "local t = redis.call('time') local start = t[1] * 1000 + t[2] / 1000
while true do
  redis.call('get', KEYS[1]) redis.call('get', KEYS[2])
  local n = redis.call('time')
  if n[1] * 1000 + n[2] / 1000 - start > tonumber(ARGV[1]) then return 1 end
end";
        c.command(&["EVAL", spin, "2", &both[0], &both[1], &hold_ms.to_string()]).unwrap()
    });
    thread::sleep(Duration::from_millis(100));
    let runners: Vec<_> = (0..2)
        .map(|i| {
            let (mine, held, sha) = (mine[i].clone(), held[i].clone(), sha.clone());
            thread::spawn(move || {
                let mut c = common::RawConn::connect(port).unwrap();
                c.set_timeout(Duration::from_secs(30)).unwrap();
                c.command(&["EVALSHA", &sha, "1", &mine, &held]).unwrap()
            })
        })
        .collect();
    let replies = runners.into_iter().map(|r| r.join().unwrap()).collect();
    assert_eq!(holder.join().unwrap(), b":1\r\n");
    replies
}

/// A script that wrote and then reaches an undeclared key another
/// transaction holds, on a shard where it may not queue for it, polls for
/// it: a holder that lets go within half a second is waited for; one that
/// holds it longer makes that call fail (writes are not rolled back, as in
/// Redis), and the core runs the script with every shard locked from then
/// on, so it succeeds next time.
#[test]
fn undeclared_key_held_by_another_script_after_a_write() {
    let server = KvickServer::start(&["--threads", "2"]);
    let held = keys_on_both_cores("held:", 2);
    let mine = keys_on_both_cores("mine:", 2);
    let replies = reach_held_keys(&server, &mine, &held, 300);
    assert_eq!(replies, vec![b"$-1\r\n".to_vec(); 2], "both waited for the holder");

    let (mine, held) = (keys_on_both_cores("mine2:", 2), keys_on_both_cores("held2:", 2));
    let replies = reach_held_keys(&server, &mine, &held, 1500);
    for (i, r) in replies.iter().enumerate() {
        assert!(
            r.starts_with(b"-ERR kvick: a script reached a key missing from KEYS after writing while another transaction held it"),
            "{i}: {}",
            String::from_utf8_lossy(r)
        );
    }
    // The failed calls' earlier writes stay, and the script now works.
    let mut c = server.raw();
    let reach = "redis.call('set', KEYS[1], 'w') return redis.call('get', ARGV[1])";
    for i in 0..2 {
        assert_eq!(c.cmd(&["GET", &mine[i]]), b"$1\r\nw\r\n");
        assert_eq!(c.cmd(&["SET", &held[i], "v"]), b"+OK\r\n");
        for _ in 0..4 {
            let mut c = server.raw();
            assert_eq!(c.cmd(&["EVAL", reach, "1", &mine[i], &held[i]]), b"$1\r\nv\r\n");
        }
    }
}

/// The lock-release script of Redis' distributed-lock recipe, through
/// EVALSHA from connections that land on either core.
#[test]
fn compare_and_delete_lock_release() {
    let server = KvickServer::start(&["--threads", "2"]);
    let release = "if redis.call(\"get\",KEYS[1]) == ARGV[1] then return redis.call(\"del\",KEYS[1]) else return 0 end";
    let mut con = server.client();
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(release)
        .query(&mut con)
        .unwrap();
    for (i, lock) in keys_on_both_cores("lock:", 6).iter().enumerate() {
        // A fresh connection each time: SO_REUSEPORT spreads them over the cores.
        let mut c = server.client();
        let ok: Option<String> = redis::cmd("SET")
            .arg(lock)
            .arg(format!("token{i}"))
            .arg("NX")
            .arg("PX")
            .arg(30000)
            .query(&mut c)
            .unwrap();
        assert_eq!(ok.as_deref(), Some("OK"));
        let wrong: i64 = redis::cmd("EVALSHA")
            .arg(&sha)
            .arg(1)
            .arg(lock)
            .arg("other")
            .query(&mut c)
            .unwrap();
        assert_eq!(wrong, 0);
        let right: i64 = redis::cmd("EVALSHA")
            .arg(&sha)
            .arg(1)
            .arg(lock)
            .arg(format!("token{i}"))
            .query(&mut c)
            .unwrap();
        assert_eq!(right, 1);
        let exists: i64 = redis::cmd("EXISTS").arg(lock).query(&mut c).unwrap();
        assert_eq!(exists, 0);
    }
}

/// A script looping past busy-reply-threshold: other clients get -BUSY,
/// SCRIPT KILL stops it and its caller gets Redis' error; a script that
/// wrote cannot be killed.
#[test]
fn busy_script_and_script_kill() {
    let server = KvickServer::start(&["--threads", "2", "--busy-reply-threshold", "200"]);
    let port = server.port();
    let runner = thread::spawn(move || {
        let mut c = common::RawConn::connect(port).unwrap();
        c.set_timeout(Duration::from_secs(30)).unwrap();
        c.command(&["EVAL", "local i = 0 while true do i = i + 1 end", "0"])
            .unwrap()
    });
    // Once it is busy, every connection, on either core (the script's own
    // core included: the script lets it in), gets -BUSY. (A command admitted
    // before that waits for the script's locks instead: fresh connections.)
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "no -BUSY");
        let mut c = common::RawConn::connect(port).unwrap();
        c.set_timeout(Duration::from_millis(500)).unwrap();
        if c.command(&["PING"]).is_ok_and(|r| r.starts_with(b"-BUSY")) {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let mut conns: Vec<_> = (0..8).map(|_| common::RawConn::connect(port).unwrap()).collect();
    for c in conns.iter_mut() {
        c.set_timeout(Duration::from_secs(5)).unwrap();
        let reply = c.command(&["GET", "x"]).unwrap();
        assert_eq!(reply, b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n");
    }
    // SCRIPT KILL from the last one, whichever core it is on.
    assert_eq!(conns[7].command(&["SCRIPT", "KILL"]).unwrap(), b"+OK\r\n");
    let reply = String::from_utf8(runner.join().unwrap()).unwrap();
    assert!(
        reply.starts_with("-ERR Script killed by user with SCRIPT KILL... script: "),
        "{reply}"
    );
    let mut c = common::RawConn::connect(port).unwrap();
    assert_eq!(c.command(&["PING"]).unwrap(), b"+PONG\r\n");
    assert_eq!(
        c.command(&["SCRIPT", "KILL"]).unwrap(),
        b"-NOTBUSY No scripts in execution right now.\r\n"
    );

    // A script that wrote and then loops for 5 s cannot be killed.
    let runner = thread::spawn(move || {
        let mut c = common::RawConn::connect(port).unwrap();
        c.set_timeout(Duration::from_secs(30)).unwrap();
        let script = "redis.call('set', KEYS[1], 'x') local t = redis.call('time') local start = t[1] * 1000 + t[2] / 1000
local i = 0 while true do i = i + 1 if i % 100000 == 0 then local n = redis.call('time') if n[1] * 1000 + n[2] / 1000 - start > 5000 then return i end end end";
        c.command(&["EVAL", script, "1", "w"]).unwrap()
    });
    let mut saw_unkillable = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && !runner.is_finished() {
        let mut c = common::RawConn::connect(port).unwrap();
        c.set_timeout(Duration::from_millis(500)).unwrap();
        if c.command(&["SCRIPT", "KILL"])
            .unwrap_or_default()
            .starts_with(b"-UNKILLABLE Sorry the script already executed write commands")
        {
            saw_unkillable = true;
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let reply = runner.join().unwrap();
    assert!(saw_unkillable, "SCRIPT KILL never answered UNKILLABLE; the script: {}", String::from_utf8_lossy(&reply));
    assert!(reply.starts_with(b":"), "{}", String::from_utf8_lossy(&reply));
}

/// A busy loop inside a metamethod or a C function's callback cannot yield
/// (Lua 5.1): that script does not let its core in, but it runs on
/// unharmed and SCRIPT KILL from the other core stops it.
#[test]
fn busy_script_that_cannot_yield_is_still_killed() {
    let server = KvickServer::start(&["--threads", "2", "--busy-reply-threshold", "100"]);
    let port = server.port();
    for body in [
        "return setmetatable({}, {__index = function() while true do end end}).x",
        "local t = {3, 2, 1} table.sort(t, function(a, b) while true do end end) return 1",
    ] {
        let runner = thread::spawn(move || {
            let mut c = common::RawConn::connect(port).unwrap();
            c.set_timeout(Duration::from_secs(30)).unwrap();
            c.command(&["EVAL", body, "0"]).unwrap()
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < deadline, "SCRIPT KILL never reached the script");
            let mut c = common::RawConn::connect(port).unwrap();
            c.set_timeout(Duration::from_millis(300)).unwrap();
            if c.command(&["SCRIPT", "KILL"]).is_ok_and(|r| r == b"+OK\r\n") {
                break;
            }
        }
        let reply = String::from_utf8(runner.join().unwrap()).unwrap();
        assert!(reply.starts_with("-ERR Script killed by user with SCRIPT KILL..."), "{reply}");
    }
}

/// SHUTDOWN NOSAVE while a script that wrote loops (it cannot be killed, and
/// its core cannot answer): the server exits, as Redis does.
#[test]
fn shutdown_nosave_during_an_unkillable_script() {
    let mut server = KvickServer::start(&["--threads", "2", "--busy-reply-threshold", "100"]);
    let port = server.port();
    let runner = thread::spawn(move || {
        let mut c = common::RawConn::connect(port).unwrap();
        c.set_timeout(Duration::from_secs(60)).unwrap();
        let _ = c.command(&["EVAL", "redis.call('set', KEYS[1], 'x') while true do end", "1", "w"]);
    });
    // Some connection on the other core sees BUSY, then shuts down.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut sent = false;
    while Instant::now() < deadline && !sent {
        let mut c = common::RawConn::connect(port).unwrap();
        c.set_timeout(Duration::from_millis(500)).unwrap();
        if c.command(&["GET", "x"]).unwrap_or_default().starts_with(b"-BUSY") {
            let _ = c.command(&["SHUTDOWN", "NOSAVE"]);
            sent = true;
        } else {
            thread::sleep(Duration::from_millis(50));
        }
    }
    assert!(sent, "no client saw -BUSY");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.exited() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(server.exited(), "SHUTDOWN NOSAVE left the server running: {}", server.log());
    runner.join().unwrap();
}
