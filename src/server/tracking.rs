//! Client-side caching, the connection's half (Redis' tracking.c): the
//! tracking mode of each client, remembering the keys a tracking client
//! reads, and delivering the invalidations that shards owe
//! (`shard::tracking`) to the client, or to the client it redirects to.
//!
//! A client's mode lives in its `ClientInfo` on its own core. Shards only
//! know client ids and cores: an invalidation travels to the client's core
//! (one message per core and executor turn), which checks the mode then
//! (tracking may have been turned off or switched to BCAST meanwhile, as
//! Redis checks at send time) and writes a RESP3 `invalidate` push, or, for
//! a redirecting client, forwards it to the redirect target's core, where a
//! RESP2 target subscribed to anything gets a `__redis__:invalidate`
//! message. A target that went away makes the client's mode "broken
//! redirect" and sends it a `tracking-redir-broken` push.
//!
//! Keys are remembered before the read runs, by a message to the key's shard
//! sent ahead of the command on the same ordered channel (or inline for the
//! home shard), so a write between the two can only cause an extra
//! invalidation, never a missed one. Inside EXEC and scripts they are
//! remembered as each command runs (`transactions::run_queued`).

use std::rc::Rc;

use futures_channel::oneshot;

use crate::commands::{ArgList, Command};
use crate::resp::{Proto, Reply};
use crate::server::clients::ClientInfo;
use crate::server::core::{AnyBox, Core, Msg};
use crate::server::pubsub;
use crate::server::session::Session;
use crate::shard::tracking::{self as table, Client, Invalidation};

/// A client's tracking mode (CLIENT TRACKING, CLIENT CACHING).
#[derive(Default, Clone)]
pub struct Mode {
    pub on: bool,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// CLIENT CACHING YES (OPTIN) or NO (OPTOUT) holds for the next command
    /// or transaction.
    pub caching: bool,
    pub broken_redirect: bool,
    /// The client invalidations go to (0: this one), and its core.
    pub redirect: u64,
    pub redirect_core: usize,
    /// BCAST prefixes, sorted (as Redis lists them).
    pub prefixes: Vec<Vec<u8>>,
}

/// The options of CLIENT TRACKING ON.
pub struct Options {
    /// The redirect target's id and core (`find_client`).
    pub redirect: Option<(u64, usize)>,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    pub prefixes: Vec<Vec<u8>>,
}

/// Redis' stringCheckPrefix: one of the two is a prefix of the other.
fn overlap(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// CLIENT TRACKING ON: checks `o` against each other and the current mode,
/// with Redis' errors, then enables tracking.
pub async fn enable(s: &mut Session, o: Options) -> Result<(), String> {
    let mode = s.info.tracking.borrow().clone();
    if !o.bcast && !o.prefixes.is_empty() {
        return Err("ERR PREFIX option requires BCAST mode to be enabled".into());
    }
    if mode.on && mode.bcast != o.bcast {
        return Err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.".into());
    }
    if o.bcast && (o.optin || o.optout) {
        return Err("ERR OPTIN and OPTOUT are not compatible with BCAST".into());
    }
    if o.optin && o.optout {
        return Err("ERR You can't specify both OPTIN mode and OPTOUT mode".into());
    }
    if (o.optin && mode.optout) || (o.optout && mode.optin) {
        return Err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.".into());
    }
    if o.bcast {
        for (i, p) in o.prefixes.iter().enumerate() {
            if let Some(old) = mode.prefixes.iter().find(|old| overlap(old, p)) {
                return Err(format!(
                    "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(old)
                ));
            }
            if let Some(other) = o.prefixes[i + 1..].iter().find(|q| overlap(p, q)) {
                return Err(format!(
                    "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(other)
                ));
            }
        }
    }
    // BCAST without prefixes tracks the empty prefix: every key.
    let mut new_prefixes = o.prefixes;
    if o.bcast && new_prefixes.is_empty() {
        new_prefixes.push(Vec::new());
    }
    new_prefixes.retain(|p| !mode.prefixes.contains(p));
    if !new_prefixes.is_empty() {
        set_prefixes(&s.core, s.info.id, new_prefixes.clone(), true).await;
    }
    let mut m = s.info.tracking.borrow_mut();
    m.on = true;
    m.bcast = o.bcast;
    m.optin = o.optin;
    m.optout = o.optout;
    m.noloop = o.noloop;
    m.broken_redirect = false;
    (m.redirect, m.redirect_core) = o.redirect.unwrap_or((0, 0));
    m.prefixes.extend(new_prefixes);
    m.prefixes.sort_unstable();
    s.tracking = true;
    Ok(())
}

/// CLIENT TRACKING OFF (also RESET and disconnection): forgets the mode and
/// unregisters the client's prefixes on every core. Remembered keys are
/// dropped when they next change (client ids are never reused).
pub async fn disable(s: &mut Session) {
    if !s.tracking {
        return;
    }
    let prefixes = std::mem::take(&mut s.info.tracking.borrow_mut().prefixes);
    if !prefixes.is_empty() {
        set_prefixes(&s.core, s.info.id, prefixes, false).await;
    }
    *s.info.tracking.borrow_mut() = Mode::default();
    s.tracking = false;
}

/// The core of client `id`, if it is connected.
pub async fn find_client(core: &Rc<Core>, id: u64) -> Option<usize> {
    let found = core
        .call_all(move |c| c.clients.borrow().map.contains_key(&id))
        .await;
    found.iter().position(|f| *f)
}

async fn set_prefixes(core: &Rc<Core>, id: u64, prefixes: Vec<Vec<u8>>, add: bool) {
    let client = Client { id, core: core.id };
    core.call_all(move |_| {
        prefixes
            .iter()
            .for_each(|p| table::set_prefix(client, p, add))
    })
    .await;
}

/// CLIENT CACHING YES|NO: Err is Redis' error.
pub fn caching(info: &ClientInfo, yes: bool) -> Result<(), &'static str> {
    let mut m = info.tracking.borrow_mut();
    if !m.on {
        return Err("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
    }
    match yes {
        true if !m.optin => {
            Err("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.")
        }
        false if !m.optout => {
            Err("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.")
        }
        _ => {
            m.caching = true;
            Ok(())
        }
    }
}

/// Before each command of a tracking client: CLIENT CACHING holds for one
/// command (or transaction) after it, as Redis' resetClient clears it after
/// any command but CLIENT ones, outside MULTI. `previous` is the last
/// command's name.
pub fn before_command(s: &Session, previous: &str) {
    if s.multi.is_none() && !previous.starts_with("client") {
        s.info.tracking.borrow_mut().caching = false;
    }
}

/// CLIENT TRACKINGINFO's reply.
pub fn info_reply(r: &mut Reply, m: &Mode) {
    let mut flags: Vec<&str> = vec![if m.on { "on" } else { "off" }];
    if m.bcast {
        flags.push("bcast");
    }
    if m.optin {
        flags.push("optin");
        if m.caching {
            flags.push("caching-yes");
        }
    }
    if m.optout {
        flags.push("optout");
        if m.caching {
            flags.push("caching-no");
        }
    }
    if m.noloop {
        flags.push("noloop");
    }
    if m.broken_redirect {
        flags.push("broken_redirect");
    }
    r.map(3);
    r.bulk(b"flags");
    r.set(flags.len());
    flags.iter().for_each(|f| r.bulk(f.as_bytes()));
    r.bulk(b"redirect");
    r.int(redirection(m));
    r.bulk(b"prefixes");
    r.array(m.prefixes.len());
    m.prefixes.iter().for_each(|p| r.bulk(p));
}

/// CLIENT GETREDIR (and CLIENT LIST's redir): -1 when not tracking.
pub fn redirection(m: &Mode) -> i64 {
    if m.on {
        m.redirect as i64
    } else {
        -1
    }
}

/// Whether the session's reads are remembered now (tracking in default
/// mode, and OPTIN/OPTOUT's CLIENT CACHING says so): the client and the
/// table bound per shard to remember them with.
pub fn reader(s: &Session) -> Option<(Client, usize)> {
    let m = s.info.tracking.borrow();
    if !m.on || m.bcast || (m.optin && !m.caching) || (m.optout && m.caching) {
        return None;
    }
    let max = match crate::config::get_int("tracking-table-max-keys") {
        0 => 0,
        n => (n as usize / s.core.nshards()).max(1),
    };
    Some((
        Client {
            id: s.info.id,
            core: s.core.id,
        },
        max,
    ))
}

/// Remembers the keys of read-only command `cmd` for the session's client,
/// on their shards, before the command runs (see the module comment).
pub async fn remember(s: &Session, cmd: &Command, args: &dyn ArgList) {
    if cmd.flags & crate::commands::flags::READONLY == 0 {
        return;
    }
    let Some((client, max)) = reader(s) else {
        return;
    };
    let core = &s.core;
    let mut groups: Vec<(usize, Vec<Vec<u8>>)> = Vec::new();
    for i in cmd.key_indexes(args) {
        let key = args.arg(i);
        let owner = core.slots.shard_of_key(key);
        match groups.iter_mut().find(|(o, _)| *o == owner) {
            Some((_, keys)) => keys.push(key.to_vec()),
            None => groups.push((owner, vec![key.to_vec()])),
        }
    }
    for (owner, keys) in groups {
        if owner == core.id {
            table::remember(client, &keys, max);
            continue;
        }
        // No reply is awaited: the channel's order puts this before the read.
        let (tx, _) = oneshot::channel();
        let f = move |_: &Rc<Core>| {
            table::remember(client, &keys, max);
            Box::new(()) as AnyBox
        };
        core.send(owner, Msg::Call(Box::new(f), tx)).await;
    }
}

/// Delivers the invalidations this core's shard owes, for ever: its own
/// clients' at once, one message per other core with the rest.
pub async fn forward(core: Rc<Core>) {
    loop {
        let (flushed, pending) = std::future::poll_fn(table::poll_pending).await;
        let mut by_core: Vec<Vec<Invalidation>> = (0..core.nshards()).map(|_| Vec::new()).collect();
        for (to, inv) in pending {
            by_core[to].push(inv);
        }
        for (to, invs) in by_core.into_iter().enumerate() {
            if to == core.id {
                deliver(&core, flushed, invs);
            } else if !invs.is_empty() {
                let (tx, _) = oneshot::channel();
                let f = move |c: &Rc<Core>| {
                    deliver(c, false, invs);
                    Box::new(()) as AnyBox
                };
                core.send(to, Msg::Call(Box::new(f), tx)).await;
            }
        }
    }
}

/// An invalidation on its way to a redirect target on another core.
struct Redirected {
    target: u64,
    from: u64,
    from_core: usize,
    /// The tracking client's protocol is RESP3 (its null is `_`).
    from_resp3: bool,
    keys: Option<Vec<Vec<u8>>>,
}

/// Delivers invalidations to clients of this core (on this core); with
/// `flushed`, first a null one to every tracking client of the core.
fn deliver(core: &Rc<Core>, flushed: bool, invs: Vec<Invalidation>) {
    let mut remote: Vec<(usize, Redirected)> = Vec::new();
    {
        let clients = core.clients.borrow();
        if flushed {
            for info in clients.map.values().filter(|i| i.tracking.borrow().on) {
                send(core, &clients.map, info, None, &mut remote);
            }
        }
        for inv in invs {
            let Some(info) = clients.map.get(&inv.client) else {
                continue;
            };
            let Some(mut keys) = inv.keys else { continue };
            {
                let m = info.tracking.borrow();
                if !m.on || m.bcast != inv.bcast {
                    continue;
                }
                if m.noloop {
                    let mut writers = inv.writers.iter();
                    keys.retain(|_| writers.next() != Some(&inv.client));
                }
            }
            if !keys.is_empty() {
                send(core, &clients.map, info, Some(keys), &mut remote);
            }
        }
    }
    if remote.is_empty() {
        return;
    }
    let core = core.clone();
    glommio::spawn_local(async move {
        for (to, r) in remote {
            let (tx, _) = oneshot::channel();
            let f = move |c: &Rc<Core>| {
                deliver_redirected(c, r);
                Box::new(()) as AnyBox
            };
            core.send(to, Msg::Call(Box::new(f), tx)).await;
        }
    })
    .detach();
}

type ClientMap = hashbrown::HashMap<u64, Rc<ClientInfo>>;

/// Redis' sendTrackingMessage: to the client, or to its redirect target.
fn send(
    core: &Core,
    map: &ClientMap,
    info: &ClientInfo,
    keys: Option<Vec<Vec<u8>>>,
    remote: &mut Vec<(usize, Redirected)>,
) {
    let (redirect, redirect_core) = {
        let m = info.tracking.borrow();
        (m.redirect, m.redirect_core)
    };
    let from_resp3 = info.proto.get() == Proto::Resp3;
    if redirect == 0 {
        write(info, keys.as_deref(), false, from_resp3);
    } else if redirect_core != core.id {
        remote.push((
            redirect_core,
            Redirected {
                target: redirect,
                from: info.id,
                from_core: core.id,
                from_resp3,
                keys,
            },
        ));
    } else {
        match map.get(&redirect) {
            Some(target) => write(target, keys.as_deref(), true, from_resp3),
            None => broken(info, redirect),
        }
    }
}

/// On the redirect target's core.
fn deliver_redirected(core: &Rc<Core>, r: Redirected) {
    if let Some(target) = core.clients.borrow().map.get(&r.target) {
        return write(target, r.keys.as_deref(), true, r.from_resp3);
    }
    let (tx, _) = oneshot::channel();
    let (from, target) = (r.from, r.target);
    let f = move |c: &Rc<Core>| {
        if let Some(info) = c.clients.borrow().map.get(&from) {
            broken(info, target);
        }
        Box::new(()) as AnyBox
    };
    let core = core.clone();
    glommio::spawn_local(async move { core.send(r.from_core, Msg::Call(Box::new(f), tx)).await })
        .detach();
}

/// The redirect target is gone: the client is told (RESP3 only), as Redis.
fn broken(info: &ClientInfo, redirect: u64) {
    {
        let mut m = info.tracking.borrow_mut();
        if !m.on || m.redirect != redirect {
            return;
        }
        m.broken_redirect = true;
    }
    if info.proto.get() == Proto::Resp3 {
        pubsub::deliver(info, |r| {
            r.push(2);
            r.bulk(b"tracking-redir-broken");
            r.int(redirect as i64);
        });
    }
}

/// Writes one invalidation to `target`: a push in RESP3; in RESP2 only to a
/// redirect target in pub/sub mode, as a `__redis__:invalidate` message.
/// None (a flush) is a null in the tracking client's protocol, as Redis.
fn write(target: &ClientInfo, keys: Option<&[Vec<u8>]>, redirected: bool, from_resp3: bool) {
    let resp3 = target.proto.get() == Proto::Resp3;
    // RESP2 has no pushes: only a redirect target in pub/sub mode hears.
    if !(resp3 || redirected && target.outbox.subscribed()) {
        return;
    }
    pubsub::deliver(target, |r| {
        if resp3 {
            r.push(2);
            r.bulk(b"invalidate");
        } else {
            r.array(3);
            r.bulk(b"message");
            r.bulk(b"__redis__:invalidate");
        }
        match keys {
            Some(keys) => {
                r.array(keys.len());
                keys.iter().for_each(|k| r.bulk(k));
            }
            None => r.raw(if from_resp3 { b"_\r\n" } else { b"$-1\r\n" }),
        }
    });
}

/// (clients, keys, items, prefixes) of this core, for INFO.
pub fn counts(core: &Core) -> (usize, usize, usize, usize) {
    let clients = core
        .clients
        .borrow()
        .map
        .values()
        .filter(|i| i.tracking.borrow().on)
        .count();
    let (keys, items, prefixes) = table::counts();
    (clients, keys, items, prefixes)
}
