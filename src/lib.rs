//! kvick: a Redis-compatible, thread-per-core, shared-nothing data store.
//!
//! How a request travels: `server` (executors, listeners, connections) →
//! `resp::parser` → `commands` (the table: arity, flags, keys) → routed by
//! `cluster::key_slot` to the owning core's `shard` (inline, or as a message
//! between cores; multi-shard commands through `server::txn`) → `resp::reply`.

pub mod cluster;
pub mod commands;
pub mod config;
pub mod geohash;
pub mod persistence;
pub mod resp;
pub mod scripting;
pub mod server;
pub mod shard;
pub mod table_scan;
pub mod types;
pub mod util;
