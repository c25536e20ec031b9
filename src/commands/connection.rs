//! Connection commands: PING, ECHO, SELECT, AUTH, HELLO, RESET, QUIT, CLIENT.
//!
//! Authentication is Redis' `requirepass` model (the "default" user only, no
//! ACL yet): with an empty requirepass every connection is authenticated;
//! otherwise a connection must AUTH (or HELLO ... AUTH) before any command
//! without the no_auth flag, which dispatch checks.

use super::{cmd, flags::*, printable, Args, BoxFuture, Command, Ctx, OwnedArgs, Run};
use crate::config;
use crate::resp::parser::parse_i64;
use crate::resp::{err, Proto, Reply};
use crate::server::session::Session;
use crate::server::tracking;

const G: &str = "connection";
/// Flags of the commands a client may send before authenticating.
const HANDSHAKE: u32 = NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY;
/// Flags of most CLIENT subcommands.
const CLIENT_FLAGS: u32 = NOSCRIPT | LOADING | STALE;

pub static COMMANDS: &[Command] = &[
    cmd("ping", -1, FAST, (0, 0, 0), G, "1.0.0", "Ping the server", Run::Shard(ping)),
    cmd("echo", 2, LOADING | STALE | FAST, (0, 0, 0), G, "1.0.0", "Echo the given string", Run::Shard(echo)),
    cmd("select", 2, LOADING | STALE | FAST, (0, 0, 0), G, "1.0.0", "Change the selected database for the current connection", Run::Conn(select)),
    cmd("quit", -1, HANDSHAKE, (0, 0, 0), G, "1.0.0", "Close the connection", Run::Conn(quit)),
    cmd("hello", -1, HANDSHAKE, (0, 0, 0), G, "6.0.0", "Handshake with Redis", Run::Conn(hello)),
    cmd("auth", -2, HANDSHAKE, (0, 0, 0), G, "1.0.0", "Authenticate to the server", Run::Conn(auth)),
    cmd("reset", 1, HANDSHAKE, (0, 0, 0), G, "6.2.0", "Reset the connection", Run::Conn(reset)),
    cmd("client", -2, 0, (0, 0, 0), G, "2.4.0", "A container for client connection commands", Run::Conn(client_help)).with_subs(CLIENT),
];

static CLIENT: &[Command] = &[
    cmd("client|id", 2, CLIENT_FLAGS, (0, 0, 0), G, "5.0.0", "Returns the client ID for the current connection", Run::Conn(client_id)),
    cmd("client|info", 2, CLIENT_FLAGS, (0, 0, 0), G, "6.2.0", "Returns information about the current client connection.", Run::Conn(client_info)),
    cmd("client|list", -2, ADMIN | CLIENT_FLAGS, (0, 0, 0), G, "2.4.0", "Get the list of client connections", Run::Conn(client_list)),
    cmd("client|kill", -3, ADMIN | CLIENT_FLAGS, (0, 0, 0), G, "2.4.0", "Kill the connection of a client", Run::Conn(client_kill)),
    cmd("client|setname", 3, CLIENT_FLAGS, (0, 0, 0), G, "2.6.9", "Set the current connection name", Run::Conn(client_setname)),
    cmd("client|getname", 2, CLIENT_FLAGS, (0, 0, 0), G, "2.6.9", "Get the current connection name", Run::Conn(client_getname)),
    cmd("client|unblock", -3, ADMIN | CLIENT_FLAGS, (0, 0, 0), G, "5.0.0", "Unblock a client blocked in a blocking command from a different connection", Run::Conn(client_unblock)),
    cmd("client|getredir", 2, CLIENT_FLAGS, (0, 0, 0), G, "6.0.0", "Get tracking notifications redirection client ID if any", Run::Conn(client_getredir)),
    cmd("client|tracking", -3, CLIENT_FLAGS, (0, 0, 0), G, "6.0.0", "Enable or disable server assisted client side caching support", Run::Conn(client_tracking)),
    cmd("client|caching", 3, CLIENT_FLAGS, (0, 0, 0), G, "6.0.0", "Instruct the server about tracking or not keys in the next request", Run::Conn(client_caching)),
    cmd("client|trackinginfo", 2, CLIENT_FLAGS, (0, 0, 0), G, "6.2.0", "Return information about server assisted client side caching for the current connection", Run::Conn(client_trackinginfo)),
    cmd("client|no-evict", 3, ADMIN | CLIENT_FLAGS, (0, 0, 0), G, "7.0.0", "Set client eviction mode for the current connection", Run::Conn(client_no_evict)),
    cmd("client|help", 2, LOADING | STALE, (0, 0, 0), G, "5.0.0", "Show helpful text about the different subcommands", Run::Conn(client_help)),
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

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Whether `user`/`pass` log in as Redis' default user: any password when
/// requirepass is empty (the user is "nopass"), else exactly requirepass.
fn password_ok(user: &[u8], pass: &[u8]) -> bool {
    if user != b"default" {
        return false;
    }
    let want = config::get_text("requirepass");
    if want.is_empty() {
        return true;
    }
    // Compare in time independent of where the first difference is.
    let want = want.as_bytes();
    want.len() == pass.len() && want.iter().zip(pass).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn auth(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        if a.len() > 3 {
            return s.reply().error(err::SYNTAX);
        }
        let (user, pass): (&[u8], &[u8]) = if a.len() == 2 {
            if config::get_text("requirepass").is_empty() {
                return s.reply().error(
                    "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
                );
            }
            (b"default", a.get(1))
        } else {
            (a.get(1), a.get(2))
        };
        // A failed attempt leaves an authenticated connection authenticated.
        if password_ok(user, pass) {
            s.authenticated = true;
            s.reply().ok();
        } else {
            s.reply().error(WRONGPASS);
        }
    })
}

/// Redis' validateClientName: printable ASCII without spaces (CLIENT LIST
/// splits on spaces); empty clears the name.
fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

const BAD_CLIENT_NAME: &str = "ERR Client names cannot contain spaces, newlines or special characters.";

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
        // Options apply as they are read (Redis 7.0): a later bad option
        // leaves an earlier AUTH or SETNAME done.
        let mut i = 2;
        while i < a.len() {
            let more = a.len() - 1 - i;
            if a.is(i, "auth") && more >= 2 {
                if !password_ok(a.get(i + 1), a.get(i + 2)) {
                    return s.reply().error(WRONGPASS);
                }
                s.authenticated = true;
                i += 3;
            } else if a.is(i, "setname") && more >= 1 {
                if !valid_client_name(a.get(i + 1)) {
                    return s.reply().error(BAD_CLIENT_NAME);
                }
                *s.info.name.borrow_mut() = a.get(i + 1).to_vec();
                i += 2;
            } else {
                return s.reply().error(&format!("ERR Syntax error in HELLO option '{}'", printable(a.get(i), 128)));
            }
        }
        if !s.authenticated {
            return s.reply().error(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
            );
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

/// RESET: the connection state of a fresh connection (database 0, RESP2, no
/// name, authenticated only if no password is set).
fn reset(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        s.set_db(0);
        s.set_proto(Proto::Resp2);
        s.info.name.borrow_mut().clear();
        s.authenticated = config::get_text("requirepass").is_empty();
        s.multi = None;
        super::transactions::forget_watches(s).await;
        crate::server::pubsub::forget(s);
        tracking::disable(s).await;
        s.reply().simple("RESET");
    })
}

fn client_id(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let id = s.info.id as i64;
        s.reply().int(id);
    })
}

fn client_info(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        // A client asking about itself is not blocked.
        let mut line = s.info.line(crate::util::now_ms(), false);
        line.push('\n');
        s.reply().verbatim(line.as_bytes());
    })
}

fn client_setname(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        if !valid_client_name(a.get(2)) {
            return s.reply().error(BAD_CLIENT_NAME);
        }
        *s.info.name.borrow_mut() = a.get(2).to_vec();
        s.reply().ok();
    })
}

fn client_getname(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let name = s.info.name.borrow().clone();
        if name.is_empty() {
            s.reply().null();
        } else {
            s.reply().bulk(&name);
        }
    })
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: ends another client's blocking
/// command as if it timed out, or with an error (`server::blocking`).
fn client_unblock(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        if a.len() > 4 {
            let sub = printable(a.get(1), 128);
            return s.reply().error(&format!("ERR unknown subcommand or wrong number of arguments for '{sub}'. Try CLIENT HELP."));
        }
        let error = match a.len() {
            4 if a.is(3, "timeout") => false,
            4 if a.is(3, "error") => true,
            4 => return s.reply().error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
            _ => false,
        };
        let Some(id) = parse_i64(a.get(2)) else { return s.reply().error(err::NOT_INT) };
        let id = id as u64;
        let woken = s.core.call_all(move |c| crate::server::blocking::unblock_client(c, id, error)).await;
        s.reply().int(woken.contains(&true) as i64);
    })
}

/// The client invalidations go to: 0 for itself, -1 when not tracking.
fn client_getredir(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let id = tracking::redirection(&s.info.tracking.borrow());
        s.reply().int(id)
    })
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST] [PREFIX p]... [OPTIN]
/// [OPTOUT] [NOLOOP] (`server::tracking`).
fn client_tracking(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let mut o = tracking::Options { redirect: None, bcast: false, optin: false, optout: false, noloop: false, prefixes: Vec::new() };
        let mut i = 3;
        while i < a.len() {
            let more = i + 1 < a.len();
            if a.is(i, "redirect") && more {
                i += 1;
                if o.redirect.is_some() {
                    return s.reply().error("ERR A client can only redirect to a single other client");
                }
                let Some(id) = parse_i64(a.get(i)) else { return s.reply().error(err::NOT_INT) };
                // The target must exist now (it may go away later), as in Redis.
                match tracking::find_client(&s.core, id as u64).await {
                    Some(core) => o.redirect = Some((id as u64, core)),
                    None => return s.reply().error("ERR The client ID you want redirect to does not exist"),
                }
            } else if a.is(i, "bcast") {
                o.bcast = true;
            } else if a.is(i, "optin") {
                o.optin = true;
            } else if a.is(i, "optout") {
                o.optout = true;
            } else if a.is(i, "noloop") {
                o.noloop = true;
            } else if a.is(i, "prefix") && more {
                i += 1;
                o.prefixes.push(a.get(i).to_vec());
            } else {
                return s.reply().error(err::SYNTAX);
            }
            i += 1;
        }
        if a.is(2, "on") {
            if let Err(e) = tracking::enable(s, o).await {
                return s.reply().error(&e);
            }
        } else if a.is(2, "off") {
            tracking::disable(s).await;
        } else {
            return s.reply().error(err::SYNTAX);
        }
        s.reply().ok();
    })
}

fn client_caching(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let r = if a.is(2, "yes") {
            tracking::caching(&s.info, true)
        } else if a.is(2, "no") {
            tracking::caching(&s.info, false)
        } else {
            Err(err::SYNTAX)
        };
        match r {
            Ok(()) => s.reply().ok(),
            Err(e) => s.reply().error(e),
        }
    })
}

fn client_trackinginfo(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let mode = s.info.tracking.borrow().clone();
        tracking::info_reply(&mut s.reply(), &mode);
    })
}

/// kvick never evicts clients (no maxmemory-clients), so both modes hold.
fn client_no_evict(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        if a.is(2, "on") || a.is(2, "off") {
            s.reply().ok();
        } else {
            s.reply().error(err::SYNTAX);
        }
    })
}

/// Redis' client types, for the TYPE filters: a client subscribed to
/// anything is "pubsub", the others "normal" (kvick has no replicas or
/// masters yet, so those match nobody).
#[derive(Clone, Copy, PartialEq)]
enum ClientType {
    /// No TYPE filter.
    Any,
    Normal,
    Pubsub,
    Other,
}

impl ClientType {
    fn matches(self, info: &crate::server::clients::ClientInfo) -> bool {
        match self {
            ClientType::Any => true,
            ClientType::Normal => !info.outbox.subscribed(),
            ClientType::Pubsub => info.outbox.subscribed(),
            ClientType::Other => false,
        }
    }
}

fn client_type(name: &[u8]) -> Result<ClientType, String> {
    match name.to_ascii_lowercase().as_slice() {
        b"normal" => Ok(ClientType::Normal),
        b"pubsub" => Ok(ClientType::Pubsub),
        b"slave" | b"replica" | b"master" => Ok(ClientType::Other),
        _ => Err(format!("ERR Unknown client type '{}'", printable(name, 128))),
    }
}

fn client_list(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let mut ids: Option<Vec<u64>> = None;
        let mut kind = ClientType::Any;
        if a.len() == 4 && a.is(2, "type") {
            match client_type(a.get(3)) {
                Ok(t) => kind = t,
                Err(e) => return s.reply().error(&e),
            }
        } else if a.len() > 3 && a.is(2, "id") {
            let mut v = Vec::with_capacity(a.len() - 3);
            for i in 3..a.len() {
                match parse_i64(a.get(i)) {
                    Some(id) => v.push(id as u64),
                    None => return s.reply().error("ERR Invalid client ID"),
                }
            }
            ids = Some(v);
        } else if a.len() != 2 {
            return s.reply().error(err::SYNTAX);
        }
        let mut text = String::new();
        if kind != ClientType::Other {
            let now = crate::util::now_ms();
            let wanted = ids.clone();
            let per_core = s
                .core
                .call_all(move |c| {
                    let clients = c.clients.borrow();
                    let live = clients.map.values().filter(|i| !i.killed.get() && kind.matches(i));
                    live.filter(|i| wanted.as_ref().is_none_or(|w| w.contains(&i.id))).map(|i| (i.id, i.line(now, clients.blocked.contains_key(&i.id)))).collect::<Vec<_>>()
                })
                .await;
            let mut lines: Vec<(u64, String)> = per_core.into_iter().flatten().collect();
            lines.sort_unstable_by_key(|(id, _)| *id);
            // With ID, Redis lists in the order (and multiplicity) asked.
            let order = ids.unwrap_or_else(|| lines.iter().map(|(id, _)| *id).collect());
            for id in order {
                if let Ok(at) = lines.binary_search_by_key(&id, |(i, _)| *i) {
                    text.push_str(&lines[at].1);
                    text.push('\n');
                }
            }
        }
        s.reply().verbatim(text.as_bytes());
    })
}

fn client_kill(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let (mut addr, mut laddr, mut id, mut kind) = (None, None, 0u64, ClientType::Any);
        // CLIENT KILL ip:port (old form) may kill the caller; the filter form skips it by default.
        let old_form = a.len() == 3;
        let mut skipme = !old_form;
        if old_form {
            addr = Some(text(a.get(2)));
        } else {
            let mut i = 2;
            while i < a.len() {
                if i + 1 >= a.len() {
                    return s.reply().error(err::SYNTAX);
                }
                let v = a.get(i + 1);
                if a.is(i, "id") {
                    match parse_i64(v) {
                        Some(n) if n >= 1 => id = n as u64,
                        _ => return s.reply().error("ERR client-id should be greater than 0"),
                    }
                } else if a.is(i, "type") {
                    match client_type(v) {
                        Ok(t) => kind = t,
                        Err(e) => return s.reply().error(&e),
                    }
                } else if a.is(i, "addr") {
                    addr = Some(text(v));
                } else if a.is(i, "laddr") {
                    laddr = Some(text(v));
                } else if a.is(i, "user") {
                    if v != b"default" {
                        return s.reply().error(&format!("ERR No such user '{}'", printable(v, 128)));
                    }
                } else if a.is(i, "skipme") {
                    if v.eq_ignore_ascii_case(b"yes") {
                        skipme = true;
                    } else if v.eq_ignore_ascii_case(b"no") {
                        skipme = false;
                    } else {
                        return s.reply().error(err::SYNTAX);
                    }
                } else {
                    return s.reply().error(err::SYNTAX);
                }
                i += 2;
            }
        }
        let me = s.info.id;
        let (mut killed, mut kill_me) = (0i64, false);
        if kind != ClientType::Other {
            let results = s
                .core
                .call_all(move |c| {
                    let (mut n, mut me_too) = (0i64, false);
                    for info in c.clients.borrow().map.values() {
                        let matches = !info.killed.get()
                            && kind.matches(info)
                            && addr.as_ref().is_none_or(|a| *a == info.addr.to_string())
                            && laddr.as_ref().is_none_or(|a| *a == info.laddr.to_string())
                            && (id == 0 || info.id == id);
                        if !matches || (info.id == me && skipme) {
                            continue;
                        }
                        n += 1;
                        // The caller closes after its reply is written.
                        if info.id == me {
                            me_too = true;
                        } else {
                            info.kill();
                        }
                    }
                    (n, me_too)
                })
                .await;
            for (n, me_too) in results {
                killed += n;
                kill_me |= me_too;
            }
        }
        if !old_form {
            s.reply().int(killed);
        } else if killed == 0 {
            s.reply().error("ERR No such client");
        } else {
            s.reply().ok();
        }
        s.close |= kill_me;
    })
}

fn client_help(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        help(
            &mut s.reply(),
            "CLIENT",
            &[
                "CACHING (YES|NO)",
                "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
                "GETREDIR",
                "    Return the client ID we are redirecting to when tracking is enabled.",
                "GETNAME",
                "    Return the name of the current connection.",
                "ID",
                "    Return the ID of the current connection.",
                "INFO",
                "    Return information about the current client connection.",
                "KILL <ip:port>",
                "    Kill connection made from <ip:port>.",
                "KILL <option> <value> [<option> <value> [...]]",
                "    Kill connections. Options are:",
                "    * ADDR (<ip:port>|<unixsocket>:0)",
                "      Kill connections made from the specified address",
                "    * LADDR (<ip:port>|<unixsocket>:0)",
                "      Kill connections made to specified local address",
                "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                "      Kill connections by type.",
                "    * USER <username>",
                "      Kill connections authenticated by <username>.",
                "    * SKIPME (YES|NO)",
                "      Skip killing current connection (default: yes).",
                "LIST [options ...]",
                "    Return information about client connections. Options:",
                "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                "      Return clients of specified type.",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
                "UNBLOCK <clientid> [TIMEOUT|ERROR]",
                "    Unblock the specified blocked client.",
                "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
                "         [OPTIN] [OPTOUT] [NOLOOP]",
                "    Control server assisted client side caching.",
                "TRACKINGINFO",
                "    Report tracking status for the current connection.",
                "NO-EVICT (ON|OFF)",
                "    Protect current client connection from eviction.",
            ],
        )
    })
}

/// Redis' addReplyHelp: a header, the lines, and the HELP entry, as status replies.
pub(super) fn help(r: &mut Reply, cmd: &str, lines: &[&str]) {
    r.array(lines.len() + 3);
    r.simple(&format!("{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"));
    for l in lines {
        r.simple(l);
    }
    r.simple("HELP");
    r.simple("    Prints this help.");
}
