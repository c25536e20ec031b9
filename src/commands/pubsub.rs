//! Pub/sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH,
//! PUBSUB. The tables and the fan-out across cores are `server::pubsub`.
//!
//! Shard channels (SSUBSCRIBE, SPUBLISH) are Redis' cluster-scoped channels.
//! kvick is one server, so a shard channel is a name space of its own with
//! the same fan-out as plain channels (no pattern subscriptions reach it).

use super::{cmd, flags::*, BoxFuture, Command, OwnedArgs, Run, NOKEYS};
use crate::server::pubsub::{self, Space};
use crate::server::session::Session;

const G: &str = "pubsub";
const SUB_FLAGS: u32 = PUBSUB | NOSCRIPT | LOADING | STALE;

pub static COMMANDS: &[Command] = &[
    cmd(
        "subscribe",
        -2,
        SUB_FLAGS,
        NOKEYS,
        G,
        "2.0.0",
        "Listen for messages published to the given channels",
        Run::Conn(subscribe),
    ),
    cmd(
        "psubscribe",
        -2,
        SUB_FLAGS,
        NOKEYS,
        G,
        "2.0.0",
        "Listen for messages published to channels matching the given patterns",
        Run::Conn(psubscribe),
    ),
    cmd(
        "ssubscribe",
        -2,
        SUB_FLAGS,
        (1, -1, 1),
        G,
        "7.0.0",
        "Listen for messages published to the given shard channels",
        Run::Conn(ssubscribe),
    ),
    cmd(
        "unsubscribe",
        -1,
        SUB_FLAGS,
        NOKEYS,
        G,
        "2.0.0",
        "Stop listening for messages posted to the given channels",
        Run::Conn(unsubscribe),
    ),
    cmd(
        "punsubscribe",
        -1,
        SUB_FLAGS,
        NOKEYS,
        G,
        "2.0.0",
        "Stop listening for messages posted to channels matching the given patterns",
        Run::Conn(punsubscribe),
    ),
    cmd(
        "sunsubscribe",
        -1,
        SUB_FLAGS,
        (1, -1, 1),
        G,
        "7.0.0",
        "Stop listening for messages posted to the given shard channels",
        Run::Conn(sunsubscribe),
    ),
    cmd(
        "publish",
        3,
        PUBSUB | LOADING | STALE | FAST,
        NOKEYS,
        G,
        "2.0.0",
        "Post a message to a channel",
        Run::Conn(publish),
    ),
    cmd(
        "spublish",
        3,
        PUBSUB | LOADING | STALE | FAST,
        (1, 1, 1),
        G,
        "7.0.0",
        "Post a message to a shard channel",
        Run::Conn(spublish),
    ),
    cmd(
        "pubsub",
        -2,
        0,
        NOKEYS,
        G,
        "2.8.0",
        "A container for Pub/Sub commands",
        Run::Conn(pubsub_help),
    )
    .with_subs(PUBSUB_SUBS),
];

const INTROSPECT: u32 = PUBSUB | LOADING | STALE;

static PUBSUB_SUBS: &[Command] = &[
    cmd(
        "pubsub|channels",
        -2,
        INTROSPECT,
        NOKEYS,
        G,
        "2.8.0",
        "List active channels",
        Run::Conn(channels),
    ),
    cmd(
        "pubsub|numpat",
        2,
        INTROSPECT,
        NOKEYS,
        G,
        "2.8.0",
        "Get the count of unique patterns pattern subscriptions",
        Run::Conn(numpat),
    ),
    cmd(
        "pubsub|numsub",
        -2,
        INTROSPECT,
        NOKEYS,
        G,
        "2.8.0",
        "Get the count of subscribers for channels",
        Run::Conn(numsub),
    ),
    cmd(
        "pubsub|shardchannels",
        -2,
        INTROSPECT,
        NOKEYS,
        G,
        "7.0.0",
        "List active shard channels",
        Run::Conn(shardchannels),
    ),
    cmd(
        "pubsub|shardnumsub",
        -2,
        INTROSPECT,
        NOKEYS,
        G,
        "7.0.0",
        "Get the count of subscribers for shard channels",
        Run::Conn(shardnumsub),
    ),
    cmd(
        "pubsub|help",
        2,
        LOADING | STALE,
        NOKEYS,
        G,
        "6.2.0",
        "Show helpful text about the different subcommands",
        Run::Conn(pubsub_help),
    ),
];

fn names(a: OwnedArgs) -> Vec<Vec<u8>> {
    a.0.into_iter().skip(1).collect()
}

fn subscribe(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move { pubsub::subscribe(s, Space::Channel, names(a)) })
}

fn psubscribe(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move { pubsub::subscribe(s, Space::Pattern, names(a)) })
}

fn ssubscribe(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move { pubsub::subscribe(s, Space::Shard, names(a)) })
}

fn unsubscribe(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move { pubsub::unsubscribe(s, Space::Channel, names(a), true) })
}

fn punsubscribe(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move { pubsub::unsubscribe(s, Space::Pattern, names(a), true) })
}

fn sunsubscribe(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move { pubsub::unsubscribe(s, Space::Shard, names(a), true) })
}

fn publish(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(publish_in(s, a, false))
}

fn spublish(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(publish_in(s, a, true))
}

async fn publish_in(s: &mut Session, a: OwnedArgs, shard: bool) {
    let n = pubsub::publish(&s.core, shard, a.get(1), a.get(2)).await;
    // A client that receives its own message gets it before the reply, as
    // Redis writes both into one buffer.
    if !s.info.outbox.is_empty() {
        s.info.outbox.drain_into(&mut s.out);
    }
    s.reply().int(n as i64);
}

async fn list_names(s: &mut Session, a: OwnedArgs, space: Space) {
    if a.len() > 3 {
        return s.reply().error(&unknown_sub(&a));
    }
    let pattern = (a.len() == 3).then(|| a.get(2).to_vec());
    let names = pubsub::names(&s.core, space, pattern).await;
    let mut r = s.reply();
    r.array(names.len());
    for n in &names {
        r.bulk(n);
    }
}

fn channels(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(list_names(s, a, Space::Channel))
}

fn shardchannels(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(list_names(s, a, Space::Shard))
}

/// Unique patterns over every core, as Redis counts its pattern dict.
fn numpat(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let n = pubsub::names(&s.core, Space::Pattern, None).await.len();
        s.reply().int(n as i64);
    })
}

async fn count_subscribers(s: &mut Session, a: OwnedArgs, space: Space) {
    let counts = pubsub::counts(&s.core, space, a.0.into_iter().skip(2).collect()).await;
    let mut r = s.reply();
    r.array(2 * counts.len());
    for (name, n) in &counts {
        r.bulk(name);
        r.int(*n as i64);
    }
}

fn numsub(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(count_subscribers(s, a, Space::Channel))
}

fn shardnumsub(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(count_subscribers(s, a, Space::Shard))
}

fn unknown_sub(a: &OwnedArgs) -> String {
    format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
        super::printable(a.get(1), 128)
    )
}

fn pubsub_help(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        super::connection::help(
            &mut s.reply(),
            "PUBSUB",
            &[
                "CHANNELS [<pattern>]",
                "    Return the currently active channels matching a <pattern> (default: '*').",
                "NUMPAT",
                "    Return number of subscriptions to patterns.",
                "NUMSUB [<channel> ...]",
                "    Return the number of subscribers for the specified channels, excluding",
                "    pattern subscriptions(default: no channels).",
                "SHARDCHANNELS [<pattern>]",
                "    Return the currently active shard level channels matching a <pattern> (default: '*').",
                "SHARDNUMSUB [<shardchannel> ...]",
                "    Return the number of subscribers for the specified shard level channel(s)",
            ],
        )
    })
}
