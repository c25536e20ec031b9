//! Function libraries persist as Redis persists them, with real processes:
//! through SAVE and a restart (1 and 2 cores, and another core count), the
//! AOF (FUNCTION LOAD/DELETE/FLUSH/RESTORE journaled; after BGREWRITEAOF
//! with an RDB or a command base), a dump.rdb with a library written by
//! redis-server loads into kvick, kvick's single-file dump with a library
//! loads into redis-server, and a library that does not compile stops
//! startup naming the file.

mod common;

use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use common::{keys_on_both_cores, kvick_exits, kvick_in, q, RedisServer, TestServer};

/// Two functions: one writes two keys (on both cores with `--threads 2`),
/// one reads, declared no-writes.
const LIB_A: &str = "#!lua name=liba\n\
    redis.register_function('incr2', function(keys, args) redis.call('incr', keys[1]) return redis.call('incr', keys[2]) end)\n\
    redis.register_function{function_name='getro', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}";
const LIB_B: &str = "#!lua name=libb\nredis.register_function('hello', function() return 'hello' end)";
const LIB_B2: &str = "#!lua name=libb\nredis.register_function('hello', function() return 'hello again' end)";
const LIB_C: &str = "#!lua name=libc\nredis.register_function('gone', function() return 1 end)";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kvick-fn-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// FUNCTION LIST WITHCODE, as a comparable value: libraries and their
/// functions sorted (redis-server lists both in its hash tables' order).
fn libraries(c: &mut redis::Connection) -> redis::Value {
    fn sorted(v: redis::Value) -> redis::Value {
        let redis::Value::Array(items) = v else { return v };
        let mut items: Vec<redis::Value> = items.into_iter().map(sorted).collect();
        // Lists of maps (RESP2 arrays): libraries, a library's functions.
        if items.iter().all(|i| matches!(i, redis::Value::Array(_))) {
            items.sort_by_key(|i| format!("{i:?}"));
        }
        redis::Value::Array(items)
    }
    sorted(q(c, &["FUNCTION", "LIST", "WITHCODE"]))
}

/// Loads LIB_A, LIB_B (then REPLACE with LIB_B2) and LIB_C (then deleted),
/// and calls incr2 on two keys (of both cores).
fn populate(c: &mut redis::Connection, keys: &[String]) {
    assert_eq!(q::<String>(c, &["FUNCTION", "LOAD", LIB_A]), "liba");
    assert_eq!(q::<String>(c, &["FUNCTION", "LOAD", LIB_B]), "libb");
    assert_eq!(q::<String>(c, &["FUNCTION", "LOAD", "REPLACE", LIB_B2]), "libb");
    assert_eq!(q::<String>(c, &["FUNCTION", "LOAD", LIB_C]), "libc");
    assert_eq!(q::<String>(c, &["FUNCTION", "DELETE", "libc"]), "OK");
    assert_eq!(q::<i64>(c, &["FCALL", "incr2", "2", &keys[0], &keys[1]]), 1);
}

/// What a restarted server must answer: the libraries as before, FCALL
/// and FCALL_RO working on the data as before.
fn check(s: &TestServer, keys: &[String], libs: &redis::Value, next: i64, what: &str) {
    let mut c = s.client();
    assert_eq!(&libraries(&mut c), libs, "{what}: FUNCTION LIST");
    assert_eq!(q::<String>(&mut c, &["FCALL", "hello", "0"]), "hello again", "{what}");
    assert_eq!(q::<i64>(&mut c, &["FCALL", "incr2", "2", &keys[0], &keys[1]]), next, "{what}");
    assert_eq!(q::<String>(&mut c, &["FCALL_RO", "getro", "1", &keys[0]]), next.to_string(), "{what}");
    let err = redis::cmd("FCALL").arg("gone").arg(0).query::<i64>(&mut c).unwrap_err();
    assert!(err.to_string().contains("Function not found"), "{what}: {err}");
}

fn rdb_round_trip(name: &str, save_threads: usize, load_threads: usize) {
    let dir = scratch(name);
    let keys = keys_on_both_cores("fk", 2);
    let libs = {
        let s = kvick_in(&dir, save_threads, &[]);
        let mut c = s.client();
        populate(&mut c, &keys);
        assert_eq!(q::<String>(&mut c, &["SAVE"]), "OK");
        libraries(&mut c)
    };
    let s = kvick_in(&dir, load_threads, &[]);
    check(&s, &keys, &libs, 2, &format!("saved on {save_threads}, loaded on {load_threads}"));
    // Saved again (now by the loading server) and loaded again.
    assert_eq!(q::<String>(&mut s.client(), &["SAVE"]), "OK");
    drop(s);
    let s = kvick_in(&dir, save_threads, &[]);
    check(&s, &keys, &libs, 3, "second round");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn libraries_survive_save_and_restart() {
    rdb_round_trip("rdb1", 1, 1);
    rdb_round_trip("rdb2", 2, 2);
    rdb_round_trip("rdb21", 2, 1);
}

/// The AOF: library changes journaled (restart), then in a rewrite's RDB
/// base, then in a command base; FUNCTION FLUSH and RESTORE journaled too.
/// Each server is dropped with SIGKILL: only what the AOF holds comes back.
fn aof_round_trip(name: &str, threads: usize) {
    let dir = scratch(name);
    let keys = keys_on_both_cores("fk", 2);
    let aof = ["--appendonly", "yes", "--save", ""];
    let libs = {
        let s = kvick_in(&dir, threads, &aof);
        let mut c = s.client();
        populate(&mut c, &keys);
        libraries(&mut c)
    };
    let mut next = 2;
    for (seq, preamble, ext) in [(2, "yes", "rdb"), (3, "no", "aof")] {
        let s = kvick_in(&dir, threads, &aof);
        check(&s, &keys, &libs, next, &format!("before the rewrite to a .{ext} base"));
        next += 1;
        let mut c = s.client();
        q::<()>(&mut c, &["CONFIG", "SET", "aof-use-rdb-preamble", preamble]);
        q::<()>(&mut c, &["BGREWRITEAOF"]);
        wait_rewrites(&mut c);
        drop(s);
        let base = dir.join(format!("appendonlydir/appendonly.aof.core0.{seq}.base.{ext}"));
        assert!(base.exists(), "{}", base.display());
    }
    let s = kvick_in(&dir, threads, &aof);
    check(&s, &keys, &libs, next, "after the rewrites");
    let mut c = s.client();
    let dump: Vec<u8> = q(&mut c, &["FUNCTION", "DUMP"]);
    q::<()>(&mut c, &["FUNCTION", "FLUSH"]);
    drop(s);
    let s = kvick_in(&dir, threads, &aof);
    let mut c = s.client();
    assert_eq!(libraries(&mut c), redis::Value::Array(vec![]), "FUNCTION FLUSH journaled");
    let _: () = redis::cmd("FUNCTION").arg("RESTORE").arg(&dump).query(&mut c).unwrap();
    drop(s);
    let s = kvick_in(&dir, threads, &aof);
    check(&s, &keys, &libs, next + 1, "FUNCTION RESTORE journaled");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

fn info_field(c: &mut redis::Connection, name: &str) -> String {
    let info: String = q(c, &["INFO", "persistence"]);
    info.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).unwrap_or_else(|| panic!("no {name} in {info}")).to_string()
}

/// Waits until the one rewrite asked for (scheduled, then in progress) has
/// finished.
fn wait_rewrites(c: &mut redis::Connection) {
    assert_eq!(info_field(c, "aof_rewrites"), "1");
    let deadline = Instant::now() + Duration::from_secs(30);
    while info_field(c, "aof_rewrite_scheduled") != "0" || info_field(c, "aof_rewrite_in_progress") != "0" {
        assert!(Instant::now() < deadline, "rewrites did not finish");
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(info_field(c, "aof_last_bgrewrite_status"), "ok");
}

#[test]
fn libraries_survive_the_aof_one_thread() {
    aof_round_trip("aof1", 1);
}

#[test]
fn libraries_survive_the_aof_two_threads() {
    aof_round_trip("aof2", 2);
}

#[test]
fn a_redis_dump_with_a_library_loads() {
    let dir = scratch("from-redis");
    let keys = keys_on_both_cores("fk", 2);
    let libs = {
        let r = RedisServer::start_with(&["--dir", dir.to_str().unwrap()]);
        let mut c = r.client();
        populate(&mut c, &keys);
        assert_eq!(q::<String>(&mut c, &["SAVE"]), "OK");
        libraries(&mut c)
    };
    for threads in [1, 2] {
        let s = kvick_in(&dir, threads, &["--save", ""]);
        check(&s, &keys, &libs, 2, &format!("redis-server's dump on {threads} threads"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_single_file_dump_with_a_library_loads_into_redis() {
    for threads in [1, 2] {
        let dir = scratch(&format!("to-redis{threads}"));
        let keys = keys_on_both_cores("fk", 2);
        let libs = {
            let s = kvick_in(&dir, threads, &["--rdb-single-file", "yes"]);
            let mut c = s.client();
            populate(&mut c, &keys);
            assert_eq!(q::<String>(&mut c, &["SAVE"]), "OK");
            libraries(&mut c)
        };
        let check_rdb = std::process::Command::new("redis-check-rdb").arg(dir.join("dump.rdb")).output().expect("run redis-check-rdb");
        let text = String::from_utf8_lossy(&check_rdb.stdout);
        assert!(check_rdb.status.success() && text.contains("RDB looks OK"), "redis-check-rdb: {text}");
        let r = RedisServer::start_with(&["--dir", dir.to_str().unwrap(), "--dbfilename", "dump.rdb"]);
        check(&r, &keys, &libs, 2, &format!("kvick's dump ({threads} threads) in redis-server"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_library_that_does_not_compile_stops_startup() {
    let dir = scratch("bad-lib");
    // An RDB file with one FUNCTION2 record (opcode 245, the code as an RDB
    // string) whose code is not Lua, and no checksum (zero).
    let code = b"#!lua name=bad\nthis is not lua";
    let mut f = b"REDIS0010".to_vec();
    f.push(0xf5);
    f.push(code.len() as u8);
    f.extend_from_slice(code);
    f.push(0xff);
    f.extend_from_slice(&[0; 8]);
    std::fs::write(dir.join("dump.rdb"), &f).unwrap();
    let err = kvick_exits(&dir, &["--threads", "2"]);
    assert!(err.contains("dump.rdb") && err.contains("Failed loading library") && err.contains("Error compiling function"), "{err}");
    // The same through the AOF: a FUNCTION LOAD that does not compile.
    let _ = std::fs::remove_file(dir.join("dump.rdb"));
    let aof = dir.join("appendonlydir");
    std::fs::create_dir_all(&aof).unwrap();
    std::fs::write(aof.join("appendonly.aof.core0.manifest"), "file appendonly.aof.core0.1.incr.aof seq 1 type i\n").unwrap();
    let load = common::encode_command(&["FUNCTION", "LOAD", std::str::from_utf8(code).unwrap()]);
    std::fs::write(aof.join("appendonly.aof.core0.1.incr.aof"), load).unwrap();
    // With 2 threads the one set is resharded: the same check on that path.
    for threads in ["1", "2"] {
        let err = kvick_exits(&dir, &["--threads", threads, "--appendonly", "yes"]);
        assert!(err.contains("appendonly.aof.core0.1.incr.aof") && err.contains("Error compiling function"), "{threads}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
