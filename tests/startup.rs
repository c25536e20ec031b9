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
