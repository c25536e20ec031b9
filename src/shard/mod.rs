//! The per-core shard: every key of the core's hash slots, in all databases,
//! with its expiry, locks and statistics. Only the owning core touches it.

pub mod access;
pub mod blocking;
pub mod db;
pub mod expire;
pub mod journal;
pub mod key;
pub mod locks;
pub mod notify;
pub mod table;
pub mod tracking;

use db::Db;
use locks::LockTable;

#[derive(Default, Clone, Copy)]
pub struct ShardStats {
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys: u64,
    /// Running average (weight 1/20 per step, as Redis') of the share of
    /// keys with a TTL that were due when an active expiry step began.
    pub expired_stale_perc: f64,
    /// Active expiry steps that stopped at their time budget with due keys left.
    pub expired_time_cap_reached_count: u64,
    /// Time spent in active expiry steps, in microseconds.
    pub expire_cycle_us: u64,
}

pub struct Shard {
    pub id: usize,
    pub dbs: Vec<Db>,
    pub locks: LockTable,
    pub stats: ShardStats,
    /// Registrations of blocked clients on this shard (`blocking`).
    pub waiting: usize,
    /// Every change of this shard's data, as commands (`journal`).
    pub journal: journal::Journal,
    rng: u64,
}

impl Shard {
    pub fn new(id: usize, databases: usize) -> Self {
        Shard {
            id,
            dbs: (0..databases).map(Db::numbered).collect(),
            locks: LockTable::default(),
            stats: ShardStats::default(),
            waiting: 0,
            journal: journal::Journal::default(),
            rng: 0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407) ^ crate::util::now_us(),
        }
    }

    /// Statistics for INFO: expired keys count both active and lazy expiry.
    pub fn stats_snapshot(&self) -> ShardStats {
        let mut s = self.stats;
        s.expired_keys += self.dbs.iter().map(|d| d.lazy_expired).sum::<u64>();
        s
    }

    pub fn reset_stats(&mut self) {
        self.stats = ShardStats::default();
        self.dbs.iter_mut().for_each(|d| d.lazy_expired = 0);
    }

    /// xorshift64*: cheap randomness for RANDOMKEY and sampling.
    pub fn rand(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}
