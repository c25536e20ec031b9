//! CLUSTER commands. kvick has no cluster mode yet: as a non-cluster Redis
//! 7.0, every subcommand replies "cluster support disabled" once dispatch has
//! checked its name and arity against Redis' table. The one exception is
//! KEYSLOT, which kvick answers (its cores own hash slots).

use super::{cmd, flags::*, Args, Command, Ctx, Run};
use crate::cluster::key_slot;
use crate::resp::Reply;

const G: &str = "cluster";
/// Flags of the subcommands that change a node (Redis also marks most of
/// them no_async_loading, which kvick's table does not have).
const ADMIN_STALE: u32 = ADMIN | STALE;

pub static COMMANDS: &[Command] =
    &[cmd("cluster", -2, 0, (0, 0, 0), G, "3.0.0", "A container for cluster commands", Run::Shard(disabled)).with_subs(CLUSTER)];

/// Redis 7.0's CLUSTER subcommands: names, arities and flags.
static CLUSTER: &[Command] = &[
    cmd("cluster|addslots", -3, ADMIN_STALE, (0, 0, 0), G, "3.0.0", "Assign new hash slots to receiving node", Run::Shard(disabled)),
    cmd("cluster|addslotsrange", -4, ADMIN_STALE, (0, 0, 0), G, "7.0.0", "Assign new hash slots to receiving node", Run::Shard(disabled)),
    cmd("cluster|bumpepoch", 2, ADMIN_STALE, (0, 0, 0), G, "3.0.0", "Advance the cluster config epoch", Run::Shard(disabled)),
    cmd("cluster|count-failure-reports", 3, ADMIN_STALE, (0, 0, 0), G, "3.0.0", "Return the number of failure reports active for a given node", Run::Shard(disabled)),
    cmd("cluster|countkeysinslot", 3, STALE, (0, 0, 0), G, "3.0.0", "Return the number of local keys in the specified hash slot", Run::Shard(disabled)),
    cmd("cluster|delslots", -3, ADMIN_STALE, (0, 0, 0), G, "3.0.0", "Set hash slots as unbound in receiving node", Run::Shard(disabled)),
    cmd("cluster|delslotsrange", -4, ADMIN_STALE, (0, 0, 0), G, "7.0.0", "Set hash slots as unbound in receiving node", Run::Shard(disabled)),
    cmd("cluster|failover", -2, ADMIN_STALE, (0, 0, 0), G, "3.0.0", "Forces a replica to perform a manual failover of its master.", Run::Shard(disabled)),
    cmd("cluster|flushslots", 2, ADMIN_STALE, (0, 0, 0), G, "3.0.0", "Delete a node's own slots information", Run::Shard(disabled)),
    cmd("cluster|forget", 3, ADMIN_STALE, (0, 0, 0), G, "3.0.0", "Remove a node from the nodes table", Run::Shard(disabled)),
    cmd("cluster|getkeysinslot", 4, STALE, (0, 0, 0), G, "3.0.0", "Return local key names in the specified hash slot", Run::Shard(disabled)),
    cmd("cluster|help", 2, LOADING | STALE, (0, 0, 0), G, "5.0.0", "Show helpful text about the different subcommands", Run::Shard(disabled)),
    cmd("cluster|info", 2, STALE, (0, 0, 0), G, "3.0.0", "Provides info about Redis Cluster node state", Run::Shard(disabled)),
    cmd("cluster|keyslot", 3, STALE, (0, 0, 0), G, "3.0.0", "Returns the hash slot of the specified key", Run::Shard(keyslot)),
    cmd("cluster|links", 2, STALE, (0, 0, 0), G, "7.0.0", "Returns a list of all TCP links to and from peer nodes in cluster", Run::Shard(disabled)),
    cmd("cluster|meet", -4, ADMIN_STALE, (0, 0, 0), G, "3.0.0", "Force a node cluster to handshake with another node", Run::Shard(disabled)),
    cmd("cluster|myid", 2, STALE, (0, 0, 0), G, "3.0.0", "Return the node id", Run::Shard(disabled)),
    cmd("cluster|nodes", 2, STALE, (0, 0, 0), G, "3.0.0", "Get Cluster config for the node", Run::Shard(disabled)),
    cmd("cluster|replicas", 3, ADMIN_STALE, (0, 0, 0), G, "5.0.0", "List replica nodes of the specified master node", Run::Shard(disabled)),
    cmd("cluster|replicate", 3, ADMIN_STALE, (0, 0, 0), G, "3.0.0", "Reconfigure a node as a replica of the specified master node", Run::Shard(disabled)),
    cmd("cluster|reset", -2, ADMIN | NOSCRIPT | STALE, (0, 0, 0), G, "3.0.0", "Reset a Redis Cluster node", Run::Shard(disabled)),
    cmd("cluster|saveconfig", 2, ADMIN_STALE, (0, 0, 0), G, "3.0.0", "Forces the node to save cluster state on disk", Run::Shard(disabled)),
    cmd("cluster|set-config-epoch", 3, ADMIN_STALE, (0, 0, 0), G, "3.0.0", "Set the configuration epoch in a new node", Run::Shard(disabled)),
    cmd("cluster|setslot", -4, ADMIN_STALE, (0, 0, 0), G, "3.0.0", "Bind a hash slot to a specific node", Run::Shard(disabled)),
    cmd("cluster|shards", 2, STALE, (0, 0, 0), G, "7.0.0", "Get array of cluster slots to node mappings", Run::Shard(disabled)),
    cmd("cluster|slaves", 3, ADMIN_STALE, (0, 0, 0), G, "3.0.0", "List replica nodes of the specified master node", Run::Shard(disabled)),
    cmd("cluster|slots", 2, STALE, (0, 0, 0), G, "3.0.0", "Get array of Cluster slot to node mappings", Run::Shard(disabled)),
];

/// What a non-cluster Redis 7.0 answers to every CLUSTER subcommand.
fn disabled(_: &mut Ctx, r: &mut Reply, _: Args) {
    r.error("ERR This instance has cluster support disabled");
}

fn keyslot(_: &mut Ctx, r: &mut Reply, a: Args) {
    r.int(key_slot(a.get(2)) as i64);
}
