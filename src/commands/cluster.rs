//! CLUSTER commands. Outside cluster mode only KEYSLOT answers.

use super::{cmd, flags::*, Args, Command, Ctx, Run};
use crate::cluster::key_slot;
use crate::resp::{err, Reply};

pub static COMMANDS: &[Command] = &[cmd(
    "cluster",
    -2,
    STALE,
    (0, 0, 0),
    "cluster",
    "3.0.0",
    "A container for Redis Cluster commands",
    Run::Shard(cluster),
)];

fn cluster(_: &mut Ctx, r: &mut Reply, a: Args) {
    if a.is(1, "keyslot") {
        if a.len() != 3 {
            return r.error(&super::arity_error("cluster|keyslot"));
        }
        return r.int(key_slot(a.get(2)) as i64);
    }
    if a.is(1, "help") {
        return r.error(err::SYNTAX);
    }
    r.error("ERR This instance has cluster support disabled");
}
