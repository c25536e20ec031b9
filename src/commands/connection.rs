//! Connection commands: PING, ECHO, SELECT, HELLO, QUIT, CLIENT, ...

use super::{cmd, flags::*, Args, BoxFuture, Command, Ctx, OwnedArgs, Run};
use crate::resp::parser::parse_i64;
use crate::resp::{err, Proto, Reply};
use crate::server::session::Session;

const G: &str = "connection";

pub static COMMANDS: &[Command] = &[
    cmd("ping", -1, FAST | STALE, (0, 0, 0), G, "1.0.0", "Ping the server", Run::Shard(ping)),
    cmd("echo", 2, FAST, (0, 0, 0), G, "1.0.0", "Echo the given string", Run::Shard(echo)),
    cmd("select", 2, FAST | LOADING | STALE, (0, 0, 0), G, "1.0.0", "Change the selected database for the current connection", Run::Conn(select)),
    cmd("quit", -1, FAST | NO_AUTH | LOADING | STALE, (0, 0, 0), G, "1.0.0", "Close the connection", Run::Conn(quit)),
    cmd("hello", -1, FAST | NO_AUTH | LOADING | STALE, (0, 0, 0), G, "6.0.0", "Handshake with Redis", Run::Conn(hello)),
];

fn ping(_: &mut Ctx, r: &mut Reply, a: Args) {
    match a.len() {
        1 => r.simple("PONG"),
        2 => r.bulk(a.get(1)),
        _ => r.error(&super::arity_error("ping")),
    }
}

fn echo(_: &mut Ctx, r: &mut Reply, a: Args) {
    r.bulk(a.get(1));
}

fn select(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let dbs = s.core.shard.borrow().dbs.len() as i64;
        match parse_i64(a.get(1)) {
            None => s.reply().error(err::NOT_INT),
            Some(n) if n < 0 || n >= dbs => s.reply().error(err::DB_INDEX),
            Some(n) => {
                s.set_db(n as usize);
                s.reply().ok();
            }
        }
    })
}

fn quit(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        s.reply().ok();
        s.close = true;
    })
}

fn hello(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let mut proto = s.proto;
        if a.len() >= 2 {
            match parse_i64(a.get(1)) {
                Some(2) => proto = Proto::Resp2,
                Some(3) => proto = Proto::Resp3,
                Some(_) => return s.reply().error("NOPROTO unsupported protocol version"),
                None => return s.reply().error("ERR Protocol version is not an integer or out of range"),
            }
        }
        let mut i = 2;
        while i < a.len() {
            if a.is(i, "auth") && i + 2 < a.len() {
                // No requirepass/ACL yet: only the default user with any password.
                i += 3;
            } else if a.is(i, "setname") && i + 1 < a.len() {
                *s.info.name.borrow_mut() = a.get(i + 1).to_vec();
                i += 2;
            } else {
                return s.reply().error(&format!("ERR Syntax error in HELLO option '{}'", super::printable(a.get(i), 128)));
            }
        }
        s.set_proto(proto);
        let id = s.info.id as i64;
        let mut r = s.reply();
        r.map(7);
        r.bulk(b"server");
        r.bulk(b"redis");
        r.bulk(b"version");
        r.bulk(crate::commands::server::REDIS_VERSION.as_bytes());
        r.bulk(b"proto");
        r.int(if proto == Proto::Resp3 { 3 } else { 2 });
        r.bulk(b"id");
        r.int(id);
        r.bulk(b"mode");
        r.bulk(b"standalone");
        r.bulk(b"role");
        r.bulk(b"master");
        r.bulk(b"modules");
        r.array(0);
    })
}
