//! Loading streams its files: a dataset of some hundreds of MB, as an RDB
//! file (2 cores) and as an AOF (1 core), each with a value larger than the
//! loader's chunk, loads with a peak RSS (VmHWM) that is not the data plus
//! the file, as it would be if the file were read whole.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{KvickServer, TestServer};

/// Keys of `VALUE` bytes each, and one key of `HUGE` bytes (more than a chunk).
const KEYS: usize = 280;
const VALUE: usize = 1 << 20;
const HUGE: usize = 40 << 20;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kvick-load-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Incompressible bytes, different per key (xorshift), so neither LZF nor
/// the allocator shares anything.
fn value(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn key(i: usize) -> String {
    format!("key:{i}")
}

/// A `(kB)` field of /proc/<pid>/status, in bytes.
fn status_bytes(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// Checks the data, then that the peak RSS is within a fraction of the file
/// size of the RSS after loading (reading the file whole would add all of it).
fn check_loaded(server: &TestServer, file_size: u64) {
    let mut c = server.client();
    let n: usize = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, KEYS + 1);
    for i in [0, KEYS / 2, KEYS - 1] {
        let v: Vec<u8> = redis::cmd("GET").arg(key(i)).query(&mut c).unwrap();
        assert!(v == value(i as u64, VALUE), "{} differs", key(i));
    }
    let v: Vec<u8> = redis::cmd("GET").arg("huge").query(&mut c).unwrap();
    assert!(v == value(u64::MAX, HUGE), "the huge value differs");
    drop(v);
    let (peak, now) = (status_bytes(server.pid(), "VmHWM:"), status_bytes(server.pid(), "VmRSS:"));
    eprintln!("file {} MB, peak RSS {} MB, RSS after loading {} MB", file_size >> 20, peak >> 20, now >> 20);
    assert!(now > file_size / 2, "the data is not in memory? RSS {now}");
    assert!(peak < now + file_size / 4, "loading raised the peak RSS to {peak} with {now} after, for a file of {file_size}");
}

/// An RDB string key: type 0, key, value (raw: no LZF, no integer encoding).
fn rdb_string(out: &mut impl Write, k: &[u8], v: &[u8]) {
    fn len(out: &mut impl Write, n: usize) {
        if n < 64 {
            out.write_all(&[n as u8]).unwrap();
        } else {
            out.write_all(&[0x80]).unwrap();
            out.write_all(&(n as u32).to_be_bytes()).unwrap();
        }
    }
    out.write_all(&[0]).unwrap();
    len(out, k.len());
    out.write_all(k).unwrap();
    len(out, v.len());
    out.write_all(v).unwrap();
}

/// Writes the dataset as a dump.rdb with its checksum; returns its size.
fn write_rdb(path: &Path) -> u64 {
    let mut f = Vec::with_capacity(64 << 20);
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut crc = 0;
    let mut size = 0;
    let mut flush = |f: &mut Vec<u8>, crc: &mut u64| {
        *crc = kvick::persistence::crc64::crc64(*crc, f);
        size += f.len() as u64;
        file.write_all(f).unwrap();
        f.clear();
    };
    f.extend_from_slice(b"REDIS0010\xfe\x00");
    for i in 0..KEYS {
        rdb_string(&mut f, key(i).as_bytes(), &value(i as u64, VALUE));
        if i == KEYS / 2 {
            rdb_string(&mut f, b"huge", &value(u64::MAX, HUGE));
        }
        flush(&mut f, &mut crc);
    }
    f.push(0xff);
    flush(&mut f, &mut crc);
    f.extend_from_slice(&crc.to_le_bytes());
    flush(&mut f, &mut crc);
    drop(flush);
    file.flush().unwrap();
    size
}

#[test]
fn a_large_rdb_file_loads_without_holding_the_file_in_memory() {
    let dir = temp_dir("rdb");
    let size = write_rdb(&dir.join("dump.rdb"));
    let server = KvickServer::start(&["--dir", dir.to_str().unwrap(), "--threads", "2", "--save", ""]);
    check_loaded(&server, size);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// One RESP command.
fn resp(out: &mut impl Write, args: &[&[u8]]) {
    write!(out, "*{}\r\n", args.len()).unwrap();
    for a in args {
        write!(out, "${}\r\n", a.len()).unwrap();
        out.write_all(a).unwrap();
        out.write_all(b"\r\n").unwrap();
    }
}

#[test]
fn a_large_aof_loads_without_holding_the_file_in_memory() {
    let dir = temp_dir("aof");
    let aof = dir.join("appendonlydir");
    std::fs::create_dir_all(&aof).unwrap();
    let incr = "appendonly.aof.core0.1.incr.aof";
    std::fs::write(aof.join("appendonly.aof.core0.manifest"), format!("file {incr} seq 1 type i\n")).unwrap();
    let mut file = std::io::BufWriter::new(std::fs::File::create(aof.join(incr)).unwrap());
    resp(&mut file, &[b"SELECT", b"0"]);
    for i in 0..KEYS {
        resp(&mut file, &[b"SET", key(i).as_bytes(), &value(i as u64, VALUE)]);
        if i == KEYS / 2 {
            resp(&mut file, &[b"SET", b"huge", &value(u64::MAX, HUGE)]);
        }
    }
    file.flush().unwrap();
    drop(file);
    let size = std::fs::metadata(aof.join(incr)).unwrap().len();
    let server = KvickServer::start(&["--dir", dir.to_str().unwrap(), "--threads", "1", "--appendonly", "yes", "--save", ""]);
    check_loaded(&server, size);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
