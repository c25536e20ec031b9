//! Server commands: DBSIZE, FLUSHDB, FLUSHALL, INFO, CONFIG, COMMAND, ...

use super::{cmd, flags::*, BoxFuture, Command, OwnedArgs, Run};
use crate::server::session::Session;

const G: &str = "server";

/// The Redis version kvick reports (the command set it implements).
pub const REDIS_VERSION: &str = "7.0.15";

pub static COMMANDS: &[Command] = &[
    cmd("dbsize", 1, READONLY | FAST, (0, 0, 0), "server", "1.0.0", "Return the number of keys in the selected database", Run::Conn(dbsize)),
    cmd("flushall", -1, WRITE, (0, 0, 0), G, "1.0.0", "Remove all keys from all databases", Run::Conn(flushall)),
];

fn dbsize(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let db = s.db;
        let sizes = s.core.call_all(move |c| c.shard.borrow().dbs[db].len()).await;
        s.reply().int(sizes.into_iter().sum::<usize>() as i64);
    })
}

fn flushall(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        s.core.call_all(|c| c.shard.borrow_mut().dbs.iter_mut().for_each(|d| d.clear())).await;
        s.reply().ok();
    })
}
