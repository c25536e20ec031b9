//! Generic key commands (Redis' db.c and expire.c).

use std::sync::Arc;

use super::{cmd, flags::*, Args, BoxFuture, Command, Ctx, OwnedArgs, Run};
use crate::resp::Reply;
use crate::server::session::Session;
use crate::server::txn::{group_keys, run_grouped};
use crate::shard::locks::Mode;

const G: &str = "generic";

pub static COMMANDS: &[Command] = &[
    cmd("del", -2, WRITE, (1, -1, 1), G, "1.0.0", "Delete a key", Run::Span(del, del_span)),
    cmd("unlink", -2, WRITE | FAST, (1, -1, 1), G, "4.0.0", "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.", Run::Span(del, del_span)),
    cmd("exists", -2, READONLY | FAST, (1, -1, 1), G, "1.0.0", "Determine if a key exists", Run::Span(exists, exists_span)),
];

fn count_deleted(ctx: &mut Ctx, keys: impl Iterator<Item = impl AsRef<[u8]>>) -> i64 {
    let now = ctx.now;
    keys.filter(|k| {
        let db = ctx.db();
        db.expire_if_due(k.as_ref(), now);
        db.remove(k.as_ref()).is_some()
    })
    .count() as i64
}

fn count_existing(ctx: &mut Ctx, keys: impl Iterator<Item = impl AsRef<[u8]>>) -> i64 {
    keys.filter(|k| ctx.read(k.as_ref()).is_some()).count() as i64
}

fn del(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    r.int(count_deleted(ctx, a.iter().skip(1)));
}

fn exists(ctx: &mut Ctx, r: &mut Reply, a: Args) {
    r.int(count_existing(ctx, a.iter().skip(1)));
}

/// Runs a per-shard counting step over every key argument and replies the sum.
async fn sum_over_shards(s: &mut Session, a: OwnedArgs, mode: Mode, step: fn(&mut Ctx, &[(usize, Vec<u8>)], &OwnedArgs) -> i64) {
    let groups = group_keys(&s.core, a.0.iter().cloned().enumerate().skip(1));
    let counts = run_grouped(&s.core, s.db, groups, mode, Arc::new(a), step).await;
    s.reply().int(counts.into_iter().sum());
}

fn del_span(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(sum_over_shards(s, a, Mode::Exclusive, |ctx, keys, _| count_deleted(ctx, keys.iter().map(|(_, k)| k))))
}

fn exists_span(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(sum_over_shards(s, a, Mode::Shared, |ctx, keys, _| count_existing(ctx, keys.iter().map(|(_, k)| k))))
}
