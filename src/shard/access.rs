//! An entry's access clock (Redis' 24-bit `lru` field). Under an LRU (or no
//! eviction) policy: the second of the last access, for OBJECT IDLETIME.
//! Under an LFU policy, as Redis: the minute of the last decrement in the
//! upper 16 bits and a logarithmic access counter in the low 8, which an
//! access first decays (one per `lfu-decay-time` minutes) and then raises
//! with probability 1 / ((counter - 5) * lfu-log-factor + 1).

use std::cell::Cell;

use crate::config;

/// Redis' LFU_INIT_VAL: the counter of a new object.
pub const LFU_INIT: u32 = 5;

/// Whether `maxmemory-policy` is volatile-lfu or allkeys-lfu.
pub fn lfu_policy() -> bool {
    config::lfu_policy()
}

fn minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) & 0xffff) as u32
}

/// The clock of an object created now.
pub fn fresh(now_ms: u64) -> u32 {
    if lfu_policy() {
        (minutes(now_ms) << 8) | LFU_INIT
    } else {
        (now_ms / 1000) as u32
    }
}

/// The clock after an access at `now_ms`.
pub fn touched(old: u32, now_ms: u64) -> u32 {
    if !lfu_policy() {
        return (now_ms / 1000) as u32;
    }
    let counter = log_incr(lfu_count(old, now_ms));
    (minutes(now_ms) << 8) | counter
}

/// The counter set explicitly (RESTORE ... FREQ).
pub fn with_count(count: u32, now_ms: u64) -> u32 {
    (minutes(now_ms) << 8) | count.min(255)
}

/// The counter, decayed by the minutes since its last decrement (Redis'
/// LFUDecrAndReturn; OBJECT FREQ).
pub fn lfu_count(clock: u32, now_ms: u64) -> u32 {
    let (ldt, counter) = ((clock >> 8) & 0xffff, clock & 0xff);
    let now = minutes(now_ms);
    let elapsed = if now >= ldt { now - ldt } else { 65535 - ldt + now };
    let decay = config::lfu_decay_time().max(0) as u32;
    let periods = elapsed.checked_div(decay).unwrap_or(0);
    counter.saturating_sub(periods)
}

fn log_incr(counter: u32) -> u32 {
    if counter == 255 {
        return 255;
    }
    let base = counter.saturating_sub(LFU_INIT) as f64;
    let p = 1.0 / (base * config::lfu_log_factor() as f64 + 1.0);
    if random_unit() < p {
        counter + 1
    } else {
        counter
    }
}

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0x9E37_79B9_7F4A_7C15) };
}

/// A number in [0, 1) from a per-thread xorshift generator.
fn random_unit() -> f64 {
    RNG.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}
