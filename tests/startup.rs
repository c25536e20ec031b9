//! Startup: configuration from a file and the command line, and refusals that
//! must be loud (a port already served, bad directives).

mod common;

use std::process::Command;

use common::KvickServer;

fn kvick(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kvick")).args(args).output().expect("run kvick")
}

#[test]
fn refuses_a_port_that_is_already_served() {
    let first = KvickServer::start(&["--threads", "1"]);
    let out = kvick(&["--port", &first.port().to_string(), "--bind", "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Could not create server TCP listening socket"), "{err}");
}

#[test]
fn rejects_bad_directives() {
    let out = kvick(&["--no-such-directive", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Bad directive"));
    let out = kvick(&["--port", "notanumber"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("argument couldn't be parsed into an integer"));
}

#[test]
fn config_file_then_command_line_overrides() {
    let dir = std::env::temp_dir().join(format!("kvick-startup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("kvick.conf");
    std::fs::write(&conf, "# a comment\nmaxclients 4242\nhz 20\nproto-max-bulk-len 1mb\n").unwrap();
    let server = KvickServer::start(&[conf.to_str().unwrap(), "--hz", "15", "--threads", "2"]);
    let mut con = server.client();
    let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("maxclients").query(&mut con).unwrap();
    assert_eq!(got, vec!["maxclients", "4242"]);
    let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("hz").query(&mut con).unwrap();
    assert_eq!(got, vec!["hz", "15"]);
    // proto-max-bulk-len from the file is enforced: a 2 MB bulk is refused.
    let mut raw = server.raw();
    let reply = raw.command(&[b"SET".to_vec(), b"k".to_vec(), vec![b'x'; 2 << 20]]);
    assert!(
        matches!(&reply, Ok(r) if r.starts_with(b"-ERR Protocol error: invalid bulk length")) || reply.is_err(),
        "{reply:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The locked-memory limit io_uring needs (as a user without
/// CAP_SYS_RESOURCE: under root the test drops to `nobody`): too low a hard
/// limit stops startup with a message saying what to change; a low soft
/// limit under a sufficient hard one is raised and the server starts.
#[test]
fn memlock_limit_is_raised_or_explained() {
    // A copy anyone may run (`nobody` may not reach the build directory).
    let dir = std::env::temp_dir().join(format!("kvick-memlock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("kvick");
    std::fs::copy(env!("CARGO_BIN_EXE_kvick"), &bin).unwrap();
    use std::os::unix::fs::PermissionsExt;
    for p in [&dir, &bin] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let limited = |limit: &str, port: u16| {
        let mut c = if unsafe { libc::geteuid() } == 0 {
            let mut c = Command::new("setpriv");
            c.args(["--reuid", "65534", "--regid", "65534", "--clear-groups", "prlimit"]);
            c
        } else {
            Command::new("prlimit")
        };
        c.arg(format!("--memlock={limit}"))
            .arg(&bin)
            .args(["--port", &port.to_string(), "--threads", "2", "--save", "", "--dir", dir.to_str().unwrap()]);
        c
    };

    let out = limited("65536:65536", common::pick_free_port()).output().expect("run kvick under prlimit");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "kvick started under a 64 KiB memlock limit: {err}");
    assert!(err.contains("locked-memory limit is 64 KiB") && err.contains("need at least 1024 KiB") && err.contains("ulimit -l 1024"), "{err}");

    let port = common::pick_free_port();
    let mut child = limited("16384:8388608", port).stderr(std::process::Stdio::piped()).spawn().expect("run kvick under prlimit");
    let mut answered = false;
    for _ in 0..100 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            s.write_all(b"PING\r\n").unwrap();
            let mut buf = [0u8; 7];
            answered = s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n";
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(answered, "kvick did not start with a 16 KiB soft / 8 MiB hard memlock limit: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&dir).ok();
}

fn config_get(server: &common::TestServer, name: &str) -> String {
    let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(&mut server.client()).unwrap();
    assert_eq!(got.len(), 2, "{got:?}");
    got[1].clone()
}

/// `save` lines accumulate as in redis-server 7.0 (each result below is
/// what it answers): the first replaces the default, later ones add,
/// `save ""` clears what came before; CONFIG SET replaces.
#[test]
fn save_lines_accumulate() {
    let dir = std::env::temp_dir().join(format!("kvick-startup-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("save.conf");
    std::fs::write(&conf, "save 900 1\nsave 300 10\n").unwrap();
    let c = conf.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&[c], "900 1 300 10"),
        (&[c, "--save", "7", "7"], "900 1 300 10 7 7"),
        (&["--save", "900", "1", "--save", "300 10"], "900 1 300 10"),
        (&["--save", "900", "1", "--save", ""], ""),
        (&["--save", "", "--save", "5", "5"], "5 5"),
        (&[], "3600 1 300 100 60 10000"),
    ];
    for (args, expected) in cases {
        let server = KvickServer::start(&[*args, &["--threads", "1"]].concat());
        assert_eq!(config_get(&server, "save"), *expected, "{args:?}");
        if args.is_empty() {
            let mut con = server.client();
            let _: () = redis::cmd("CONFIG").arg("SET").arg("save").arg("100 1 200 2").query(&mut con).unwrap();
            assert_eq!(config_get(&server, "save"), "100 1 200 2");
        }
    }
    std::fs::write(&conf, "save 900\n").unwrap();
    let out = kvick(&[c]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Invalid save parameters"));
    std::fs::remove_dir_all(&dir).ok();
}

/// dir and dbfilename are protected configs (Redis 7.0): CONFIG SET needs
/// `enable-protected-configs yes` (or `local` and a local client). dir is
/// shown absolute and must exist; dbfilename is not a path.
#[test]
fn protected_configs() {
    let protected = |name: &str| format!("-ERR CONFIG SET failed (possibly related to argument '{name}') - can't set protected config\r\n");
    let server = KvickServer::start(&["--threads", "1"]);
    let mut raw = server.raw();
    assert_eq!(raw.cmd(&["CONFIG", "SET", "dir", "/tmp"]), protected("dir").into_bytes());
    assert_eq!(raw.cmd(&["CONFIG", "SET", "dbfilename", "x.rdb"]), protected("dbfilename").into_bytes());
    assert_eq!(
        raw.cmd(&["CONFIG", "SET", "enable-protected-configs", "yes"]),
        b"-ERR CONFIG SET failed (possibly related to argument 'enable-protected-configs') - can't set immutable config\r\n"
    );
    drop(server);
    let base = std::env::temp_dir().join(format!("kvick-startup-dir-{}", std::process::id()));
    std::fs::create_dir_all(base.join("sub")).unwrap();
    let base = std::fs::canonicalize(&base).unwrap();
    for mode in ["yes", "local"] {
        let dotted = format!("{}/../{}", base.display(), base.file_name().unwrap().to_str().unwrap());
        let server = KvickServer::start(&["--threads", "1", "--enable-protected-configs", mode, "--dir", &dotted]);
        assert_eq!(config_get(&server, "dir"), base.display().to_string());
        let mut raw = server.raw();
        assert_eq!(raw.cmd(&["CONFIG", "SET", "dir", "sub"]), b"+OK\r\n", "relative to the current dir");
        assert_eq!(config_get(&server, "dir"), base.join("sub").display().to_string());
        assert_eq!(
            raw.cmd(&["CONFIG", "SET", "dir", "/no/such/dir"]),
            b"-ERR CONFIG SET failed (possibly related to argument 'dir') - No such file or directory\r\n"
        );
        assert_eq!(
            raw.cmd(&["CONFIG", "SET", "dbfilename", "a/b.rdb"]),
            b"-ERR CONFIG SET failed (possibly related to argument 'dbfilename') - dbfilename can't be a path, just a filename\r\n"
        );
        assert_eq!(raw.cmd(&["CONFIG", "SET", "dbfilename", "x.rdb"]), b"+OK\r\n");
        assert_eq!(raw.cmd(&["SAVE"]), b"+OK\r\n");
        assert!(base.join("sub/x.rdb.manifest").exists());
    }
    let out = kvick(&["--dbfilename", "a/b.rdb"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("dbfilename can't be a path, just a filename"));
    let out = kvick(&["--dir", "/no/such/dir"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such file or directory"));
    std::fs::remove_dir_all(&base).ok();
}
