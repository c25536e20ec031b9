//! Pub/sub: subscription tables per core, and the fan-out of a message to
//! the subscribers on every core.
//!
//! A connection lives on one core, and so do its subscriptions: each core
//! keeps tables of its own connections' channels, patterns and shard
//! channels. A publish delivers to the publishing core's subscribers at once
//! and sends one message to every other core that has any subscription
//! (`ACTIVE`), which delivers to its own and answers with its receiver count.
//! Messages from one core to another travel over one ordered channel of the
//! mesh and a publisher waits for PUBLISH's counts before its next command,
//! so one publisher's messages reach every subscriber in publish order.
//!
//! `ACTIVE` is the one piece of state cores share here: a per-core count of
//! subscriptions, read (never written) by publishers on other cores. It only
//! spares a message to cores that have no subscriber at all; a subscription
//! racing with a publish may or may not see it, as in Redis. Broadcasting
//! every message to every core instead would cost a round trip per core per
//! PUBLISH even when nobody listens there.
//!
//! Delivery appends the encoded message to the subscriber's `Outbox` and wakes
//! its connection, which writes it out after its current commands or while
//! waiting for input (`connection::serve`). A subscriber that does not read
//! fast enough is disconnected by `client-output-buffer-limit` as Redis does,
//! so an outbox never grows past the hard limit.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Poll, Waker};

use futures_channel::oneshot;
use hashbrown::{HashMap, HashSet};

use crate::config::{self, ClientClass};
use crate::resp::Reply;
use crate::server::clients::ClientInfo;
use crate::server::core::{AnyBox, Core, Msg};
use crate::server::session::Session;

/// Subscriptions (of any kind) of the connections of each core.
static ACTIVE: [AtomicU32; 1024] = [const { AtomicU32::new(0) }; 1024];

/// The three name spaces of pub/sub.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Space {
    Channel,
    Pattern,
    Shard,
}

impl Space {
    /// The words of the confirmation replies: (subscribe, unsubscribe).
    fn verbs(self) -> (&'static str, &'static str) {
        match self {
            Space::Channel => ("subscribe", "unsubscribe"),
            Space::Pattern => ("psubscribe", "punsubscribe"),
            Space::Shard => ("ssubscribe", "sunsubscribe"),
        }
    }
}

/// Messages waiting to be written to one connection (pub/sub messages,
/// invalidations), and its subscription counts for CLIENT LIST.
#[derive(Default)]
pub struct Outbox {
    buf: RefCell<Vec<u8>>,
    waker: Cell<Option<Waker>>,
    /// Since when (ms) the pending bytes exceed the soft limit; 0: they do not.
    soft_since: Cell<u64>,
    pub channels: Cell<usize>,
    pub patterns: Cell<usize>,
    pub shard_channels: Cell<usize>,
}

impl Outbox {
    /// Whether the connection is subscribed to anything (Redis' CLIENT_PUBSUB).
    pub fn subscribed(&self) -> bool {
        self.channels.get() + self.patterns.get() + self.shard_channels.get() > 0
    }

    /// Moves the pending messages to the end of `out`.
    pub fn drain_into(&self, out: &mut Vec<u8>) {
        let mut buf = self.buf.borrow_mut();
        if out.is_empty() {
            std::mem::swap(&mut *buf, out);
        } else {
            out.extend_from_slice(&buf);
            buf.clear();
        }
        self.soft_since.set(0);
    }

    pub fn is_empty(&self) -> bool {
        self.buf.borrow().is_empty()
    }

    /// Resolves once a message is pending.
    pub async fn ready(&self) {
        std::future::poll_fn(|cx| {
            if self.buf.borrow().is_empty() {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await
    }
}

/// Appends a message, written by `write` in the client's protocol, to its
/// outbox. A client over its output buffer limit is disconnected instead.
pub fn deliver(info: &ClientInfo, write: impl FnOnce(&mut Reply)) {
    if info.killed.get() {
        return;
    }
    let ob = &info.outbox;
    let len = {
        let mut buf = ob.buf.borrow_mut();
        write(&mut Reply::new(&mut buf, info.proto.get()));
        buf.len()
    };
    let class = if ob.subscribed() {
        ClientClass::Pubsub
    } else {
        ClientClass::Normal
    };
    if over_limit(ob, len as i64, config::output_buffer_limit(class)) {
        *ob.buf.borrow_mut() = Vec::new();
        info.kill();
    }
    if let Some(w) = ob.waker.take() {
        w.wake();
    }
}

/// Redis' checkClientOutputBufferLimits: over the hard limit, or over the
/// soft one for longer than its seconds.
fn over_limit(ob: &Outbox, len: i64, (hard, soft, secs): (i64, i64, i64)) -> bool {
    if hard > 0 && len >= hard {
        return true;
    }
    if soft > 0 && len >= soft {
        let now = crate::util::now_ms();
        match ob.soft_since.get() {
            0 => ob.soft_since.set(now),
            since => return now.saturating_sub(since) > secs as u64 * 1000,
        }
    } else {
        ob.soft_since.set(0);
    }
    false
}

type Subscribers = HashMap<u64, Rc<ClientInfo>>;

/// The subscriptions of one core's connections.
#[derive(Default)]
pub struct PubSub {
    channels: HashMap<Vec<u8>, Subscribers>,
    patterns: HashMap<Vec<u8>, Subscribers>,
    shard_channels: HashMap<Vec<u8>, Subscribers>,
}

impl PubSub {
    fn table(&mut self, space: Space) -> &mut HashMap<Vec<u8>, Subscribers> {
        match space {
            Space::Channel => &mut self.channels,
            Space::Pattern => &mut self.patterns,
            Space::Shard => &mut self.shard_channels,
        }
    }

    fn table_ref(&self, space: Space) -> &HashMap<Vec<u8>, Subscribers> {
        match space {
            Space::Channel => &self.channels,
            Space::Pattern => &self.patterns,
            Space::Shard => &self.shard_channels,
        }
    }

    /// Delivers a message published on `channel` (a shard channel when
    /// `shard`) to this core's subscribers; returns how many received it.
    pub fn deliver(&self, shard: bool, channel: &[u8], msg: &[u8]) -> usize {
        if shard {
            let Some(subs) = self.shard_channels.get(channel) else {
                return 0;
            };
            for info in subs.values() {
                deliver(info, |r| message(r, "smessage", None, channel, msg));
            }
            return subs.len();
        }
        let mut n = 0;
        if let Some(subs) = self.channels.get(channel) {
            for info in subs.values() {
                deliver(info, |r| message(r, "message", None, channel, msg));
            }
            n += subs.len();
        }
        for (pattern, subs) in &self.patterns {
            if crate::util::glob_match(pattern, channel, false) {
                for info in subs.values() {
                    deliver(info, |r| {
                        message(r, "pmessage", Some(pattern), channel, msg)
                    });
                }
                n += subs.len();
            }
        }
        n
    }

    /// Names in `space` (matching `pattern` if given), for PUBSUB CHANNELS/NUMPAT.
    fn names(&self, space: Space, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        let t = self.table_ref(space);
        t.keys()
            .filter(|n| pattern.is_none_or(|p| crate::util::glob_match(p, n, false)))
            .cloned()
            .collect()
    }

    fn count(&self, space: Space, name: &[u8]) -> usize {
        self.table_ref(space).get(name).map_or(0, |s| s.len())
    }
}

fn message(r: &mut Reply, kind: &str, pattern: Option<&[u8]>, channel: &[u8], msg: &[u8]) {
    r.push(if pattern.is_some() { 4 } else { 3 });
    r.bulk(kind.as_bytes());
    if let Some(p) = pattern {
        r.bulk(p);
    }
    r.bulk(channel);
    r.bulk(msg);
}

/// A connection's own subscriptions (the core's tables hold the reverse).
#[derive(Default)]
pub struct Subscriptions {
    channels: HashSet<Vec<u8>>,
    patterns: HashSet<Vec<u8>>,
    shard_channels: HashSet<Vec<u8>>,
}

impl Subscriptions {
    fn set(&mut self, space: Space) -> &mut HashSet<Vec<u8>> {
        match space {
            Space::Channel => &mut self.channels,
            Space::Pattern => &mut self.patterns,
            Space::Shard => &mut self.shard_channels,
        }
    }
}

/// The count a confirmation reports: channels and patterns together, shard
/// channels apart (as Redis 7.0).
fn reported_count(s: &Session, space: Space) -> usize {
    match space {
        Space::Shard => s.subs.shard_channels.len(),
        _ => s.subs.channels.len() + s.subs.patterns.len(),
    }
}

fn sync_counts(s: &Session) {
    let ob = &s.info.outbox;
    ob.channels.set(s.subs.channels.len());
    ob.patterns.set(s.subs.patterns.len());
    ob.shard_channels.set(s.subs.shard_channels.len());
}

fn confirm(s: &mut Session, verb: &str, name: Option<&[u8]>, count: usize) {
    let mut r = s.reply();
    r.push(3);
    r.bulk(verb.as_bytes());
    match name {
        Some(n) => r.bulk(n),
        None => r.null(),
    }
    r.int(count as i64);
}

/// (P|S)SUBSCRIBE: one confirmation per name, with the running count.
pub fn subscribe(s: &mut Session, space: Space, names: Vec<Vec<u8>>) {
    let core = s.core.clone();
    for name in names {
        if s.subs.set(space).insert(name.clone()) {
            let mut ps = core.pubsub.borrow_mut();
            ps.table(space)
                .entry(name.clone())
                .or_default()
                .insert(s.info.id, s.info.clone());
            ACTIVE[core.id].fetch_add(1, Ordering::Release);
        }
        sync_counts(s);
        let count = reported_count(s, space);
        confirm(s, space.verbs().0, Some(&name), count);
    }
}

/// (P|S)UNSUBSCRIBE: the given names, or every one of the space; a client
/// with none gets a single confirmation with a null name.
pub fn unsubscribe(s: &mut Session, space: Space, names: Vec<Vec<u8>>, reply: bool) {
    let names = if names.is_empty() {
        s.subs.set(space).drain().collect::<Vec<_>>()
    } else {
        names
    };
    let all = names.is_empty();
    for name in names {
        s.subs.set(space).remove(&name);
        let core = s.core.clone();
        let mut ps = core.pubsub.borrow_mut();
        let t = ps.table(space);
        if let Some(subs) = t.get_mut(&name) {
            if subs.remove(&s.info.id).is_some() {
                ACTIVE[core.id].fetch_sub(1, Ordering::Release);
            }
            if subs.is_empty() {
                t.remove(&name);
            }
        }
        drop(ps);
        sync_counts(s);
        if reply {
            let count = reported_count(s, space);
            confirm(s, space.verbs().1, Some(&name), count);
        }
    }
    if all && reply {
        let count = reported_count(s, space);
        confirm(s, space.verbs().1, None, count);
    }
}

/// Drops every subscription of a closing or RESET connection.
pub fn forget(s: &mut Session) {
    for space in [Space::Channel, Space::Pattern, Space::Shard] {
        if !s.subs.set(space).is_empty() {
            unsubscribe(s, space, Vec::new(), false);
        }
    }
}

/// Publishes on every core; returns the number of receivers.
pub async fn publish(core: &Rc<Core>, shard: bool, channel: &[u8], msg: &[u8]) -> usize {
    notifications_first(core).await;
    let mut pending = Vec::new();
    for to in 0..core.nshards() {
        if to == core.id || ACTIVE[to].load(Ordering::Acquire) == 0 {
            continue;
        }
        let (ch, m) = (channel.to_vec(), msg.to_vec());
        let (tx, rx) = oneshot::channel();
        let f = move |c: &Rc<Core>| Box::new(c.pubsub.borrow().deliver(shard, &ch, &m)) as AnyBox;
        core.send(to, Msg::Call(Box::new(f), tx)).await;
        pending.push(rx);
    }
    let mut n = core.pubsub.borrow().deliver(shard, channel, msg);
    for rx in pending {
        let any = rx.await.expect("peer core dropped a publish");
        n += *any.downcast::<usize>().expect("receiver count");
    }
    n
}

/// Publishes the keyspace notifications that shard code queued
/// (`shard::notify`), in order: all of those queued at once to this core's
/// subscribers, then in one message to each other core with subscribers,
/// and waits for those to be delivered before taking the next ones (so
/// `notify::barrier` knows when a notification has reached everyone).
pub async fn forward_notifications(core: Rc<Core>) {
    loop {
        let batch = std::future::poll_fn(crate::shard::notify::poll_pending).await;
        let n = batch.len();
        {
            let ps = core.pubsub.borrow();
            batch.iter().for_each(|(ch, m)| {
                ps.deliver(false, ch, m);
            });
        }
        let batch = std::sync::Arc::new(batch);
        let mut acks = Vec::new();
        for to in 0..core.nshards() {
            if to == core.id || ACTIVE[to].load(Ordering::Acquire) == 0 {
                continue;
            }
            let batch = batch.clone();
            let (tx, rx) = oneshot::channel();
            let f = move |c: &Rc<Core>| {
                let ps = c.pubsub.borrow();
                batch.iter().for_each(|(ch, m)| {
                    ps.deliver(false, ch, m);
                });
                Box::new(()) as AnyBox
            };
            core.send(to, Msg::Call(Box::new(f), tx)).await;
            acks.push(rx);
        }
        for rx in acks {
            let _ = rx.await;
        }
        crate::shard::notify::published(n);
    }
}

/// With keyspace notifications on, a PUBLISH first waits until the
/// notifications already raised on every core have been delivered: the
/// client's earlier writes may have raised them on other cores (or on this
/// one, whose forwarding task has not run yet), and Redis delivers them
/// before the message. With notifications off this costs one load.
async fn notifications_first(core: &Rc<Core>) {
    if !crate::shard::notify::enabled() {
        return;
    }
    for to in 0..core.nshards() {
        if to != core.id {
            core.run_on(to, |_| Box::pin(crate::shard::notify::barrier())).await;
        }
    }
    crate::shard::notify::barrier().await;
}

/// Names of `space` on every core, deduplicated (PUBSUB CHANNELS,
/// SHARDCHANNELS, NUMPAT).
pub async fn names(core: &Rc<Core>, space: Space, pattern: Option<Vec<u8>>) -> Vec<Vec<u8>> {
    let per_core = core
        .call_all(move |c| c.pubsub.borrow().names(space, pattern.as_deref()))
        .await;
    let mut all: Vec<Vec<u8>> = per_core.into_iter().flatten().collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// INFO's pubsub_channels, pubsub_patterns and pubsubshard_channels: the
/// names subscribed on any core, each counted once as Redis counts the keys
/// of its tables (a sum over cores would count a name twice when clients on
/// two cores subscribe to it).
pub async fn info_counts(core: &Rc<Core>) -> [usize; 3] {
    let mut counts = [0; 3];
    for (n, space) in counts.iter_mut().zip([Space::Channel, Space::Pattern, Space::Shard]) {
        *n = names(core, space, None).await.len();
    }
    counts
}

/// Subscribers of each name over every core (PUBSUB NUMSUB, SHARDNUMSUB).
pub async fn counts(core: &Rc<Core>, space: Space, names: Vec<Vec<u8>>) -> Vec<(Vec<u8>, usize)> {
    let n = names.clone();
    let per_core = core
        .call_all(move |c| {
            n.iter()
                .map(|name| c.pubsub.borrow().count(space, name))
                .collect::<Vec<_>>()
        })
        .await;
    names
        .into_iter()
        .enumerate()
        .map(|(i, name)| (name, per_core.iter().map(|v| v[i]).sum()))
        .collect()
}

/// The commands a RESP2 client may send in subscribed mode.
pub fn allowed_when_subscribed(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "ssubscribe"
            | "psubscribe"
            | "unsubscribe"
            | "sunsubscribe"
            | "punsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

/// PING in RESP2 subscribed mode: a ["pong", message] array, as Redis sends.
pub fn subscribed_ping(r: &mut Reply, a: &crate::commands::Args) {
    match a.len() {
        1 | 2 => {
            r.array(2);
            r.bulk(b"pong");
            r.bulk(if a.len() == 2 { a.get(1) } else { b"" });
        }
        _ => r.error(&crate::commands::arity_error("ping")),
    }
}
