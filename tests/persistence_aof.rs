//! The append-only file with real processes: every type survives a restart
//! (1 and 2 cores), acknowledged writes survive kill -9 (with every
//! appendfsync policy), truncated and corrupt files are handled as Redis
//! does, rewrites lose nothing (even killed half-way) with an RDB base or a
//! command base, and a full disk gives MISCONF and recovers.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{keys_on_both_cores, kvick_exits, KvickServer, TestServer};

/// A fresh directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kvick-aof-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start(dir: &Path, threads: &str, fsync: &str, extra: &[&str]) -> TestServer {
    let mut args = vec!["--threads", threads, "--dir", dir.to_str().unwrap(), "--appendonly", "yes", "--appendfsync", fsync];
    args.extend_from_slice(extra);
    KvickServer::start(&args)
}

fn kill9(server: TestServer) {
    // Dropping a TestServer sends SIGKILL: no shutdown code runs.
    drop(server);
}

fn cmd(con: &mut redis::Connection, args: &[&str]) -> redis::Value {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Everything in databases 0..4: per key its type, whether it expires, and
/// its content (DUMP, or XRANGE and XINFO GROUPS for streams).
fn state(server: &TestServer) -> BTreeMap<String, String> {
    let mut con = server.client();
    let mut out = BTreeMap::new();
    for db in 0..4 {
        cmd(&mut con, &["SELECT", &db.to_string()]);
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(&mut con).unwrap();
        for k in keys {
            let ty: String = redis::cmd("TYPE").arg(&k).query(&mut con).unwrap();
            let pttl: i64 = redis::cmd("PTTL").arg(&k).query(&mut con).unwrap();
            let content = if ty == "stream" {
                let r: redis::Value = redis::cmd("XRANGE").arg(&k).arg("-").arg("+").query(&mut con).unwrap();
                let g: redis::Value = redis::cmd("XINFO").arg("GROUPS").arg(&k).query(&mut con).unwrap();
                // Per group: its consumers and their pending entries (the
                // summary form, which carries no times).
                let mut pels = Vec::new();
                if let redis::Value::Array(groups) = &g {
                    for group in groups {
                        let redis::Value::Array(fields) = group else { panic!("{group:?}") };
                        let name = fields[1].clone();
                        let name = match name {
                            redis::Value::BulkString(b) => b,
                            other => panic!("{other:?}"),
                        };
                        let p: redis::Value = redis::cmd("XPENDING").arg(&k).arg(&name).query(&mut con).unwrap();
                        let cs: Vec<Vec<redis::Value>> = redis::cmd("XINFO").arg("CONSUMERS").arg(&k).arg(&name).query(&mut con).unwrap();
                        // A consumer's name and pending count (not its idle time).
                        let cs: Vec<String> = cs.iter().map(|c| format!("{:?} {:?}", c[1], c[3])).collect();
                        pels.push(format!("{p:?} {cs:?}"));
                    }
                }
                format!("{r:?} {g:?} {pels:?}")
            } else if ty == "set" {
                // A set's member order is not part of its state.
                let mut m: Vec<Vec<u8>> = redis::cmd("SMEMBERS").arg(&k).query(&mut con).unwrap();
                m.sort();
                format!("{m:?}")
            } else {
                let d: Vec<u8> = redis::cmd("DUMP").arg(&k).query(&mut con).unwrap();
                format!("{d:?}")
            };
            out.insert(format!("{db}/{}", String::from_utf8_lossy(&k)), format!("{ty} expires:{} {content}", pttl > 0));
        }
    }
    out
}

/// Data of every type in several databases, written through the paths that
/// record effects rather than commands: relative expiry, SPOP, INCRBYFLOAT,
/// cross-core MSET/RENAME/SMOVE/SUNIONSTORE, MULTI/EXEC, a served BLPOP,
/// FLUSHDB, SWAPDB, XADD with `*` and consumer groups.
fn populate(server: &TestServer) {
    let mut con = server.client();
    let k = keys_on_both_cores("k", 16);
    let c = &mut con;
    cmd(c, &["SET", &k[0], "plain"]);
    cmd(c, &["SET", &k[1], "soon", "EX", "1000"]);
    cmd(c, &["SETEX", &k[2], "1000", "x"]);
    cmd(c, &["INCRBYFLOAT", &k[3], "2.5"]);
    cmd(c, &["INCRBYFLOAT", &k[3], "0.25"]);
    cmd(c, &["RPUSH", &k[4], "a", "b", "c", "d"]);
    cmd(c, &["LPOP", &k[4]]);
    cmd(c, &["BLPOP", &k[4], "1"]);
    cmd(c, &["HSET", &k[5], "f1", "v1", "f2", "v2"]);
    cmd(c, &["HINCRBYFLOAT", &k[5], "f3", "1.5"]);
    cmd(c, &["EXPIRE", &k[5], "5000"]);
    cmd(c, &["SADD", &k[6], "1", "2", "3", "4", "5"]);
    cmd(c, &["SPOP", &k[6]]);
    cmd(c, &["SPOP", &k[6], "2"]);
    cmd(c, &["SADD", &k[7], "a", "b", "c"]);
    cmd(c, &["SMOVE", &k[7], &k[8], "a"]);
    cmd(c, &["ZADD", &k[9], "1", "a", "2.5", "b", "3", "c"]);
    cmd(c, &["ZINCRBY", &k[9], "10", "a"]);
    cmd(c, &["PFADD", &k[10], "x", "y", "z"]);
    cmd(c, &["SETBIT", &k[11], "100", "1"]);
    cmd(c, &["XADD", &k[12], "*", "f", "v"]);
    cmd(c, &["XADD", &k[12], "MAXLEN", "10", "*", "g", "w"]);
    cmd(c, &["XGROUP", "CREATE", &k[12], "grp", "0"]);
    // Consumer groups: deliveries, claims, acks and ID changes, on one
    // core and across both (a read of two streams spans the cores).
    let x = keys_on_both_cores("x", 2);
    for s in &x {
        for id in ["1-1", "1-2", "1-3", "1-4", "1-5"] {
            cmd(c, &["XADD", s, id, "f", id]);
        }
        cmd(c, &["XGROUP", "CREATE", s, "g1", "0"]);
        cmd(c, &["XGROUP", "CREATE", s, "g2", "$"]);
        cmd(c, &["XGROUP", "CREATECONSUMER", s, "g1", "idle"]);
    }
    cmd(c, &["XREADGROUP", "GROUP", "g1", "alice", "COUNT", "2", "STREAMS", &x[0], ">"]);
    cmd(c, &["XREADGROUP", "GROUP", "g1", "bob", "COUNT", "1", "STREAMS", &x[0], &x[1], ">", ">"]);
    cmd(c, &["XREADGROUP", "GROUP", "g1", "carol", "NOACK", "COUNT", "1", "STREAMS", &x[1], ">"]);
    cmd(c, &["XREADGROUP", "GROUP", "g1", "alice", "STREAMS", &x[0], "0"]);
    cmd(c, &["XCLAIM", &x[0], "g1", "dave", "0", "1-1"]);
    cmd(c, &["XAUTOCLAIM", &x[1], "g1", "erin", "0", "0", "COUNT", "1"]);
    cmd(c, &["XACK", &x[0], "g1", "1-2"]);
    cmd(c, &["XGROUP", "SETID", &x[1], "g2", "1-3", "ENTRIESREAD", "3"]);
    cmd(c, &["XSETID", &x[1], "9-9"]);
    cmd(c, &["XGROUP", "DELCONSUMER", &x[0], "g1", "idle"]);
    // A blocked group read served by a later XADD.
    let mut blocked = server.client();
    let key = x[0].clone();
    let t = thread::spawn(move || redis::cmd("XREADGROUP").arg(&["GROUP", "g2", "frank", "BLOCK", "5000", "STREAMS", &key, ">"]).query::<redis::Value>(&mut blocked).unwrap());
    server.raw().wait_blocked(1);
    cmd(c, &["XADD", &x[0], "2-1", "f", "late"]);
    t.join().unwrap();
    cmd(c, &["MSET", &k[13], "m1", &k[14], "m2"]);
    cmd(c, &["RENAME", &k[13], &k[15]]);
    cmd(c, &["SUNIONSTORE", "{u}dest", &k[6], &k[7]]);
    cmd(c, &["SET", "gone", "x", "PX", "1"]);
    // Scripts write through the same journal: keys on both cores, an
    // undeclared key, and a random pop recorded as its effect.
    let moved = "redis.call('SET', KEYS[1], ARGV[1]); redis.call('RPUSH', KEYS[2], ARGV[1]); return redis.call('SPOP', KEYS[3])";
    cmd(c, &["SADD", "{s}pool", "p1", "p2", "p3"]);
    cmd(c, &["EVAL", moved, "3", "{s}a", "{s}b", "{s}pool", "v1"]);
    cmd(c, &["EVAL", moved, "3", &k[0], &k[4], "{s}pool", "v2"]);
    cmd(c, &["EVAL", "return redis.call('INCRBY', 'undeclared', 5)", "0"]);
    redis::pipe().atomic().cmd("SET").arg("t1").arg("1").cmd("INCR").arg("t1").cmd("LPUSH").arg(&k[4]).arg("z").query::<()>(c).unwrap();
    cmd(c, &["SELECT", "1"]);
    cmd(c, &["SET", &k[0], "db1"]);
    cmd(c, &["SELECT", "2"]);
    cmd(c, &["SET", &k[0], "db2"]);
    cmd(c, &["SWAPDB", "1", "2"]);
    cmd(c, &["SELECT", "3"]);
    cmd(c, &["SET", &k[1], "flushed"]);
    cmd(c, &["FLUSHDB"]);
    cmd(c, &["SET", &k[2], "kept"]);
    thread::sleep(Duration::from_millis(20));
}

fn round_trip(threads: &str, name: &str) {
    let dir = scratch(name);
    let server = start(&dir, threads, "always", &[]);
    populate(&server);
    let before = state(&server);
    assert!(before.len() >= 18, "{before:?}");
    kill9(server);
    let server = start(&dir, threads, "always", &[]);
    assert_eq!(state(&server), before);
    // A second generation: keys written after a restart land in the same
    // set of files and load again.
    let mut con = server.client();
    cmd(&mut con, &["SET", "after", "restart"]);
    let before = state(&server);
    kill9(server);
    let server = start(&dir, threads, "always", &[]);
    assert_eq!(state(&server), before);
}

#[test]
fn every_type_survives_a_restart_on_one_core() {
    round_trip("1", "rt1");
}

#[test]
fn every_type_survives_a_restart_on_two_cores() {
    round_trip("2", "rt2");
}

/// An AOF written with N threads loads into M: each old set's keys go to
/// the cores owning their slots, and the AOF is rewritten as M sets (the
/// extra old sets removed), which load again.
fn resharded(from: &str, to: &str, name: &str) {
    let dir = scratch(name);
    let server = start(&dir, from, "always", &[]);
    populate(&server);
    let before = state(&server);
    kill9(server);
    let server = start(&dir, to, "always", &[]);
    assert_eq!(state(&server), before);
    cmd(&mut server.client(), &["SET", "after", "resharding"]);
    let before = state(&server);
    kill9(server);
    let manifests = std::fs::read_dir(dir.join("appendonlydir")).unwrap().filter(|f| f.as_ref().unwrap().file_name().to_string_lossy().ends_with(".manifest")).count();
    assert_eq!(manifests.to_string(), to);
    let server = start(&dir, to, "always", &[]);
    assert_eq!(state(&server), before);
}

#[test]
fn an_aof_of_two_threads_loads_into_one() {
    resharded("2", "1", "2to1");
}

#[test]
fn an_aof_of_one_thread_loads_into_two() {
    resharded("1", "2", "1to2");
}

/// Clients SET their own keys in sequence and note each acknowledged one
/// (and when); the server is killed under that load.
fn write_load(server: &TestServer, clients: usize, run: Duration, during: impl FnOnce()) -> Vec<Vec<Instant>> {
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let mut con = server.client();
            let stop = stop.clone();
            thread::spawn(move || {
                let mut acked = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("c{c}:{}", acked.len());
                    if redis::cmd("SET").arg(&key).arg(acked.len()).query::<()>(&mut con).is_err() {
                        break;
                    }
                    acked.push(Instant::now());
                }
                acked
            })
        })
        .collect();
    thread::sleep(run / 2);
    during();
    thread::sleep(run / 2);
    stop.store(true, Ordering::Relaxed);
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Which acknowledged writes a restarted server lacks, with their ack times.
fn missing(server: &TestServer, acked: &[Vec<Instant>]) -> Vec<Instant> {
    let mut con = server.client();
    let mut lost = Vec::new();
    for (c, times) in acked.iter().enumerate() {
        for (i, t) in times.iter().enumerate() {
            let v: Option<String> = redis::cmd("GET").arg(format!("c{c}:{i}")).query(&mut con).unwrap();
            if v.as_deref() != Some(i.to_string().as_str()) {
                lost.push(*t);
            }
        }
    }
    lost
}

#[test]
fn acknowledged_writes_survive_kill_on_one_and_two_cores() {
    for threads in ["1", "2"] {
        let dir = scratch(&format!("always{threads}"));
        let server = start(&dir, threads, "always", &[]);
        let acked = write_load(&server, 8, Duration::from_millis(1500), || {});
        kill9(server);
        let total: usize = acked.iter().map(Vec::len).sum();
        assert!(total > 100, "only {total} writes");
        let server = start(&dir, threads, "always", &[]);
        assert_eq!(missing(&server, &acked).len(), 0);
    }
}

/// With every appendfsync policy a kill -9 loses no acknowledged write:
/// replies wait for the AOF write(2) (and its fsync with `always`); only
/// an OS crash could lose the page cache's tail.
#[test]
fn kill_mid_load_loses_no_acknowledged_write_with_any_fsync_policy() {
    for fsync in ["always", "everysec", "no"] {
        let dir = scratch(&format!("mid-{fsync}"));
        let server = start(&dir, "2", fsync, &[]);
        let pid = server.pid();
        let acked = write_load(&server, 8, Duration::from_millis(2000), move || {
            std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
        });
        drop(server);
        let total: usize = acked.iter().map(Vec::len).sum();
        assert!(total > 100, "only {total} writes");
        let server = start(&dir, "2", fsync, &[]);
        let lost = missing(&server, &acked);
        assert!(lost.is_empty(), "{fsync}: {} of {total} acknowledged writes lost", lost.len());
    }
}

fn incr_file(dir: &Path, core: usize) -> PathBuf {
    let manifest = std::fs::read_to_string(dir.join("appendonlydir").join(format!("appendonly.aof.core{core}.manifest"))).unwrap();
    let last = manifest.lines().filter(|l| l.ends_with("type i")).last().unwrap();
    dir.join("appendonlydir").join(last.split_whitespace().nth(1).unwrap())
}

#[test]
fn a_truncated_tail_loads_when_allowed_and_is_refused_otherwise() {
    let dir = scratch("trunc");
    let server = start(&dir, "1", "always", &[]);
    cmd(&mut server.client(), &["SET", "a", "1"]);
    cmd(&mut server.client(), &["RPUSH", "l", "x"]);
    kill9(server);
    let file = incr_file(&dir, 0);
    let good = std::fs::metadata(&file).unwrap().len();
    let mut data = std::fs::read(&file).unwrap();
    data.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1");
    std::fs::write(&file, &data).unwrap();

    let err = kvick_exits(&dir, &["--threads", "1", "--appendonly", "yes", "--aof-load-truncated", "no"]);
    assert!(err.contains("Unexpected end of file") && err.contains(&format!("offset {good}")), "{err}");

    let server = start(&dir, "1", "always", &["--aof-load-truncated", "yes"]);
    let mut con = server.client();
    assert_eq!(cmd(&mut con, &["GET", "a"]), redis::Value::BulkString(b"1".to_vec()));
    assert_eq!(cmd(&mut con, &["EXISTS", "b"]), redis::Value::Int(0));
    assert!(server.log().contains("short read"));
    // Truncated back, and appended to after.
    cmd(&mut con, &["SET", "c", "3"]);
    kill9(server);
    let server = start(&dir, "1", "always", &["--aof-load-truncated", "no"]);
    assert_eq!(cmd(&mut server.client(), &["GET", "c"]), redis::Value::BulkString(b"3".to_vec()));
}

#[test]
fn a_corrupt_file_stops_startup_naming_file_and_offset() {
    let dir = scratch("corrupt");
    let server = start(&dir, "1", "always", &[]);
    cmd(&mut server.client(), &["SET", "a", "1"]);
    kill9(server);
    let file = incr_file(&dir, 0);
    let good = std::fs::metadata(&file).unwrap().len();
    let mut data = std::fs::read(&file).unwrap();
    data.extend_from_slice(b"*2\r\n$3\r\nSET\r\n!!!garbage\r\n*1\r\n$4\r\nPING\r\n");
    std::fs::write(&file, &data).unwrap();
    let err = kvick_exits(&dir, &["--threads", "1", "--appendonly", "yes"]);
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(err.contains("Bad file format") && err.contains(name) && err.contains(&format!("offset {good}")), "{err}");
}

fn info_field(con: &mut redis::Connection, name: &str) -> String {
    let info: String = redis::cmd("INFO").arg("persistence").query(con).unwrap();
    info.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).unwrap_or_else(|| panic!("{name} in {info}")).to_string()
}

/// Waits until no rewrite is scheduled or running (BGREWRITEAOF's shows
/// from its reply on).
fn wait_rewrites_done(con: &mut redis::Connection) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while info_field(con, "aof_rewrite_in_progress") != "0" || info_field(con, "aof_rewrite_scheduled") != "0" {
        assert!(Instant::now() < deadline, "rewrite did not finish");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn bgrewriteaof_under_writes_loses_nothing() {
    let dir = scratch("rewrite");
    let server = start(&dir, "2", "always", &[]);
    populate(&server);
    let mut admin = server.client();
    let acked = write_load(&server, 4, Duration::from_millis(1500), || {
        assert_eq!(cmd(&mut admin, &["BGREWRITEAOF"]), redis::Value::SimpleString("Background append only file rewriting started".into()));
        wait_rewrites_done(&mut admin);
    });
    assert_eq!(info_field(&mut admin, "aof_last_bgrewrite_status"), "ok");
    assert_eq!(info_field(&mut admin, "aof_rewrites"), "1", "one, not one per core");
    let before = state(&server);
    kill9(server);
    // The manifest names the new base (seq 2) and its incremental file only;
    // the old files are gone. Both bases are RDB files (the default
    // aof-use-rdb-preamble yes), the stream's core's too.
    for (core, ext) in [(0, "rdb"), (1, "rdb")] {
        let m = std::fs::read_to_string(dir.join(format!("appendonlydir/appendonly.aof.core{core}.manifest"))).unwrap();
        assert_eq!(m, format!("file appendonly.aof.core{core}.2.base.{ext} seq 2 type b\nfile appendonly.aof.core{core}.2.incr.aof seq 2 type i\n"));
        assert!(!dir.join(format!("appendonlydir/appendonly.aof.core{core}.1.incr.aof")).exists());
    }
    let server = start(&dir, "2", "always", &[]);
    assert!(missing(&server, &acked).is_empty());
    assert_eq!(state(&server), before);
}

/// Waits until `n` rewrites have started (one per BGREWRITEAOF, whatever
/// the cores) and all have finished successfully.
fn wait_rewrites(con: &mut redis::Connection, n: &str) {
    assert_eq!(info_field(con, "aof_rewrites"), n);
    wait_rewrites_done(con);
    assert_eq!(info_field(con, "aof_last_bgrewrite_status"), "ok");
}

/// A rewrite with `aof-use-rdb-preamble` on or off, then more writes, a
/// kill and a restart: the base (RDB or commands) and the incremental file
/// load to the same data, and redis-check-aof accepts each core's set.
fn rewritten_round_trip(threads: &str, preamble: &str, name: &str) {
    let dir = scratch(name);
    let opts = ["--aof-use-rdb-preamble", preamble];
    let server = start(&dir, threads, "always", &opts);
    populate(&server);
    let mut con = server.client();
    cmd(&mut con, &["BGREWRITEAOF"]);
    wait_rewrites(&mut con, "1");
    cmd(&mut con, &["SET", "after", "rewrite"]);
    cmd(&mut con, &["RPUSH", &keys_on_both_cores("k", 16)[4], "later"]);
    let before = state(&server);
    assert!(before.len() >= 17, "{before:?}");
    kill9(server);
    let ext = if preamble == "yes" { "rdb" } else { "aof" };
    for core in 0..threads.parse().unwrap() {
        let base = dir.join(format!("appendonlydir/appendonly.aof.core{core}.2.base.{ext}"));
        let head = std::fs::read(&base).unwrap_or_else(|e| panic!("{}: {e}", base.display()));
        assert_eq!(head.starts_with(b"REDIS"), preamble == "yes");
        let manifest = dir.join(format!("appendonlydir/appendonly.aof.core{core}.manifest"));
        let check = std::process::Command::new("redis-check-aof").arg(&manifest).output().unwrap();
        let out = String::from_utf8_lossy(&check.stdout);
        assert!(check.status.success() && out.contains("is valid"), "{out}{}", String::from_utf8_lossy(&check.stderr));
    }
    let server = start(&dir, threads, "always", &opts);
    assert_eq!(state(&server), before);
    // The loaded set keeps growing and loads again.
    cmd(&mut server.client(), &["SET", "third", "generation"]);
    let before = state(&server);
    kill9(server);
    let server = start(&dir, threads, "always", &opts);
    assert_eq!(state(&server), before);
}

#[test]
fn rdb_base_round_trip_on_one_and_two_cores() {
    rewritten_round_trip("1", "yes", "rdb1");
    rewritten_round_trip("2", "yes", "rdb2");
}

#[test]
fn command_base_round_trip_on_one_and_two_cores() {
    rewritten_round_trip("1", "no", "cmd1");
    rewritten_round_trip("2", "no", "cmd2");
}

/// A set whose base is commands loads after the preamble is turned on (and
/// the other way round): the base is told by its content.
#[test]
fn either_base_loads_whatever_the_preamble_setting() {
    for (first, then) in [("no", "yes"), ("yes", "no")] {
        let dir = scratch(&format!("switch-{first}"));
        let server = start(&dir, "2", "always", &["--aof-use-rdb-preamble", first]);
        populate(&server);
        let mut con = server.client();
        cmd(&mut con, &["BGREWRITEAOF"]);
        wait_rewrites(&mut con, "1");
        let before = state(&server);
        kill9(server);
        let server = start(&dir, "2", "always", &["--aof-use-rdb-preamble", then]);
        assert_eq!(state(&server), before);
    }
}

#[test]
fn kill_during_rewrite_leaves_a_loadable_aof() {
    let dir = scratch("rewrite-kill");
    // The write acknowledged during the rewrite must be there.
    let server = start(&dir, "2", "always", &[]);
    let mut con = server.client();
    // Enough data that the base takes a moment to write.
    for chunk in 0..50 {
        let mut p = redis::pipe();
        for i in 0..2000 {
            p.cmd("SET").arg(format!("key:{chunk}:{i}")).arg(vec![b'v'; 100]).ignore();
        }
        p.query::<()>(&mut con).unwrap();
    }
    cmd(&mut con, &["BGREWRITEAOF"]);
    cmd(&mut con, &["SET", "during", "rewrite"]);
    kill9(server);
    let server = start(&dir, "2", "always", &[]);
    let mut con = server.client();
    assert_eq!(cmd(&mut con, &["DBSIZE"]), redis::Value::Int(100_001));
    assert_eq!(cmd(&mut con, &["GET", "during"]), redis::Value::BulkString(b"rewrite".to_vec()));
}

#[test]
fn appendonly_turned_on_at_runtime_writes_a_base_first() {
    let dir = scratch("runtime");
    let server = KvickServer::start(&["--threads", "2", "--dir", dir.to_str().unwrap()]);
    let mut con = server.client();
    cmd(&mut con, &["SET", "before", "1"]);
    cmd(&mut con, &["RPUSH", "list", "a", "b"]);
    cmd(&mut con, &["CONFIG", "SET", "appendonly", "yes"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&mut con, "aof_enabled") != "1" {
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(10));
    }
    cmd(&mut con, &["SET", "after", "2"]);
    let before = state(&server);
    thread::sleep(Duration::from_millis(50));
    kill9(server);
    let server = start(&dir, "2", "everysec", &[]);
    assert_eq!(state(&server), before);
}

/// A tmpfs of 2 MB: writes fill it, get MISCONF, and work again once
/// there is room.
#[test]
fn a_full_disk_gives_misconf_and_recovers() {
    let dir = scratch("full");
    let status = std::process::Command::new("mount").args(["-t", "tmpfs", "-o", "size=2m", "tmpfs", dir.to_str().unwrap()]).status().unwrap();
    assert!(status.success(), "mounting a tmpfs needs root");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(dir.clone());
    // Ballast to free later.
    std::fs::write(dir.join("ballast"), vec![0u8; 512 * 1024]).unwrap();
    let server = start(&dir, "1", "always", &[]);
    // 100 values of 16 KB do not fit beside the ballast, and do without it.
    let value = vec![b'x'; 16 * 1024];
    let mut con = server.client();
    let v = value.clone();
    let filler = thread::spawn(move || {
        for i in 0..100 {
            redis::cmd("SET").arg(format!("big:{i}")).arg(&v).query::<()>(&mut con).unwrap();
        }
    });
    let mut other = server.client();
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&mut other, "aof_last_write_status") != "err" {
        assert!(Instant::now() < deadline, "the disk never filled");
        thread::sleep(Duration::from_millis(10));
    }
    // The write that hit the full disk is held (not acknowledged); new
    // writes get MISCONF, reads still work.
    let err = redis::cmd("SET").arg("x").arg("y").query::<()>(&mut other).unwrap_err().to_string();
    assert!(err.contains("Errors writing to the AOF file: No space left on device"), "{err}");
    // As Redis' processCommand: PING is refused too, reads are not.
    let err = redis::cmd("PING").query::<String>(&mut other).unwrap_err().to_string();
    assert!(err.contains("Errors writing to the AOF file: No space left on device"), "{err}");
    assert_eq!(cmd(&mut other, &["EXISTS", "x"]), redis::Value::Int(0));
    assert!(!filler.is_finished());
    std::fs::remove_file(dir.join("ballast")).unwrap();
    filler.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while info_field(&mut other, "aof_last_write_status") != "ok" {
        assert!(Instant::now() < deadline, "no recovery");
        thread::sleep(Duration::from_millis(10));
    }
    cmd(&mut other, &["SET", "x", "y"]);
    let acked = 0..100;
    kill9(server);
    let server = start(&dir, "1", "always", &[]);
    let mut con = server.client();
    for i in acked {
        let n: i64 = redis::cmd("STRLEN").arg(format!("big:{i}")).query(&mut con).unwrap();
        assert_eq!(n, value.len() as i64);
    }
    assert_eq!(cmd(&mut con, &["GET", "x"]), redis::Value::BulkString(b"y".to_vec()));
}

/// A rewrite scans its shard in slices with the snapshot epoch, which a
/// BGSAVE needs too: asked for together under a write load, one waits for
/// the other, and both the rewritten AOF and the snapshot load back right.
#[test]
fn a_rewrite_and_a_bgsave_together_under_writes_are_both_correct() {
    let dir = scratch("rewrite-bgsave");
    let server = start(&dir, "2", "everysec", &[]);
    let mut con = server.client();
    for chunk in 0..10 {
        let mut p = redis::pipe();
        for i in 0..2000 {
            p.cmd("SET").arg(format!("bulk:{chunk}:{i}")).arg(vec![b'v'; 100]).ignore();
        }
        p.query::<()>(&mut con).unwrap();
    }
    populate(&server);
    let acked = write_load(&server, 4, Duration::from_millis(1500), || {
        assert_eq!(cmd(&mut con, &["BGREWRITEAOF"]), redis::Value::SimpleString("Background append only file rewriting started".into()));
        let bgsave = cmd(&mut con, &["BGSAVE", "SCHEDULE"]);
        assert!(
            matches!(&bgsave, redis::Value::SimpleString(s) if s == "Background saving started" || s == "Background saving scheduled"),
            "{bgsave:?}"
        );
        wait_rewrites(&mut con, "1");
        let deadline = Instant::now() + Duration::from_secs(60);
        while info_field(&mut con, "rdb_saves") == "0" || info_field(&mut con, "rdb_bgsave_in_progress") != "0" {
            if Instant::now() > deadline {
                let info: String = redis::cmd("INFO").arg("persistence").query(&mut con).unwrap();
                panic!("the save did not finish: {info}");
            }
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(info_field(&mut con, "rdb_last_bgsave_status"), "ok");
    });
    let before = state(&server);
    assert!(before.len() > 20_000);
    kill9(server);
    // The rewritten AOF: everything.
    let server = start(&dir, "2", "everysec", &[]);
    assert!(missing(&server, &acked).is_empty());
    assert_eq!(state(&server), before);
    drop(server);
    // The snapshot: everything but the load's keys, which it holds as of
    // some point during the load.
    let server = KvickServer::start(&["--threads", "2", "--dir", dir.to_str().unwrap()]);
    let not_load = |s: BTreeMap<String, String>| s.into_iter().filter(|(k, _)| !k.starts_with("0/c")).collect::<BTreeMap<_, _>>();
    assert_eq!(not_load(state(&server)), not_load(before));
}

/// An AOF start loads no RDB, yet LASTSAVE is the start (as in Redis), so
/// the default save point "3600 1" does not fire at the first write.
#[test]
fn lastsave_is_the_start_after_an_aof_load() {
    let dir = scratch("lastsave");
    let server = start(&dir, "1", "everysec", &[]);
    let mut con = server.client();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let last: i64 = redis::cmd("LASTSAVE").query(&mut con).unwrap();
    assert!((now - last).abs() < 60, "LASTSAVE {last}, now {now}");
    cmd(&mut con, &["SET", "k", "v"]);
    thread::sleep(Duration::from_millis(500));
    assert_eq!(info_field(&mut con, "rdb_bgsave_in_progress"), "0");
    assert_eq!(info_field(&mut con, "rdb_changes_since_last_save"), "1");
}

/// BGREWRITEAOF with appendonly no is accepted as by redis-server 7 (same
/// reply) and writes, per core, a base alone (RDB or commands as
/// `aof-use-rdb-preamble` says) named by the manifest; a start with
/// appendonly yes loads it and appends to a new incremental file.
#[test]
fn bgrewriteaof_with_appendonly_off_writes_a_base_alone() {
    let oracle_dir = scratch("offline-redis");
    let redis = common::RedisServer::start_with(&["--dir", oracle_dir.to_str().unwrap()]);
    let expected = cmd(&mut redis.client(), &["BGREWRITEAOF"]);
    assert_eq!(expected, redis::Value::SimpleString("Background append only file rewriting started".into()));
    drop(redis);
    for (preamble, ext) in [("yes", "rdb"), ("no", "aof")] {
        let dir = scratch(&format!("offline-{preamble}"));
        let server = KvickServer::start(&["--threads", "2", "--dir", dir.to_str().unwrap(), "--aof-use-rdb-preamble", preamble, "--save", ""]);
        populate(&server);
        let mut con = server.client();
        assert_eq!(cmd(&mut con, &["BGREWRITEAOF"]), expected);
        wait_rewrites(&mut con, "1");
        assert_eq!(info_field(&mut con, "aof_enabled"), "0");
        let before = state(&server);
        kill9(server);
        for core in 0..2 {
            let m = std::fs::read_to_string(dir.join(format!("appendonlydir/appendonly.aof.core{core}.manifest"))).unwrap();
            assert_eq!(m, format!("file appendonly.aof.core{core}.1.base.{ext} seq 1 type b\n"));
        }
        let server = start(&dir, "2", "always", &[]);
        assert_eq!(state(&server), before);
        cmd(&mut server.client(), &["SET", "after", "restart"]);
        kill9(server);
        let server = start(&dir, "2", "always", &[]);
        let after: String = redis::cmd("GET").arg("after").query(&mut server.client()).unwrap();
        assert_eq!(after, "restart");
    }
}

/// aof_rewrites as redis-server 7.0 counts it: `CONFIG SET appendonly yes`
/// is one rewrite and so is each BGREWRITEAOF, however many cores write
/// their files.
#[test]
fn aof_rewrites_counts_rewrites_not_cores() {
    let redis_dir = scratch("count-redis");
    let redis = common::RedisServer::start_with(&["--dir", redis_dir.to_str().unwrap()]);
    let dirs: Vec<PathBuf> = ["1", "2"].iter().map(|t| scratch(&format!("count-{t}"))).collect();
    let servers = [
        redis,
        KvickServer::start(&["--threads", "1", "--dir", dirs[0].to_str().unwrap()]),
        KvickServer::start(&["--threads", "2", "--dir", dirs[1].to_str().unwrap()]),
    ];
    for server in &servers {
        let mut con = server.client();
        cmd(&mut con, &["SET", "k", "v"]);
        assert_eq!(info_field(&mut con, "aof_rewrites"), "0", "{}", server.name());
        cmd(&mut con, &["CONFIG", "SET", "appendonly", "yes"]);
        wait_rewrites(&mut con, "1");
        cmd(&mut con, &["CONFIG", "SET", "appendonly", "yes"]);
        assert_eq!(info_field(&mut con, "aof_rewrites"), "1", "{}: already on", server.name());
        cmd(&mut con, &["BGREWRITEAOF"]);
        wait_rewrites(&mut con, "2");
    }
}

/// auto-aof-rewrite-percentage 50 and a small auto-aof-rewrite-min-size:
/// writes make the files grow, each core rewrites its own (a new base),
/// and the data loads back.
#[test]
fn automatic_rewrites_happen_under_writes() {
    for threads in ["1", "2"] {
        let dir = scratch(&format!("auto-{threads}"));
        let opts = ["--auto-aof-rewrite-percentage", "50", "--auto-aof-rewrite-min-size", "64kb"];
        let server = start(&dir, threads, "always", &opts);
        let mut con = server.client();
        let manifest = |core: usize| std::fs::read_to_string(dir.join(format!("appendonlydir/appendonly.aof.core{core}.manifest"))).unwrap();
        assert!(manifest(0).starts_with("file appendonly.aof.core0.1.base."), "{}", manifest(0));
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut round = 0;
        while info_field(&mut con, "aof_rewrites") == "0" {
            assert!(Instant::now() < deadline, "no automatic rewrite");
            let mut p = redis::pipe();
            for i in 0..500 {
                p.cmd("SET").arg(format!("key:{round}:{i}")).arg(vec![b'v'; 100]).ignore();
            }
            p.query::<()>(&mut con).unwrap();
            round += 1;
        }
        wait_rewrites_done(&mut con);
        assert_eq!(info_field(&mut con, "aof_last_bgrewrite_status"), "ok");
        let rewritten = (0..threads.parse().unwrap()).filter(|&c| !manifest(c).starts_with(&format!("file appendonly.aof.core{c}.1.base."))).count();
        assert!(rewritten >= 1, "a new base: {}", manifest(0));
        let before = state(&server);
        kill9(server);
        let server = start(&dir, threads, "always", &opts);
        assert_eq!(state(&server), before);
    }
}
