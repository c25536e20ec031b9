//! Hash slots: `slot = CRC16(key) mod 16384`, with Redis hash tags, and the
//! static map from slots to the cores (shards) that own them.

pub const SLOTS: usize = 16384;

/// The hash slot of a key; only the part inside the first non-empty `{...}` is
/// hashed, so `{user:1}.a` and `{user:1}.b` share a slot (and a core).
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(0) | None => key,
            Some(len) => &key[open + 1..open + 1 + len],
        },
        None => key,
    };
    crc16::State::<crc16::XMODEM>::calculate(hashed) % SLOTS as u16
}

/// Slots are split into `shards` contiguous ranges of near-equal size.
#[derive(Clone, Copy, Debug)]
pub struct SlotMap {
    shards: usize,
}

impl SlotMap {
    pub fn new(shards: usize) -> Self {
        assert!(shards >= 1 && shards <= SLOTS);
        SlotMap { shards }
    }

    pub fn shards(&self) -> usize {
        self.shards
    }

    pub fn shard_of_slot(&self, slot: u16) -> usize {
        slot as usize * self.shards / SLOTS
    }

    pub fn shard_of_key(&self, key: &[u8]) -> usize {
        if self.shards == 1 {
            return 0;
        }
        self.shard_of_slot(key_slot(key))
    }

    /// The first and last slot owned by `shard`.
    pub fn slot_range(&self, shard: usize) -> (u16, u16) {
        let first = (shard * SLOTS).div_ceil(self.shards);
        let last = ((shard + 1) * SLOTS).div_ceil(self.shards) - 1;
        (first as u16, last as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from `CLUSTER KEYSLOT` on redis-server 7.0.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"{user1000}.followers"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(key_slot(b"{}foo"), crc16::State::<crc16::XMODEM>::calculate(b"{}foo") % 16384);
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
    }

    #[test]
    fn ranges_cover_every_slot_once() {
        for n in 1..=7 {
            let m = SlotMap::new(n);
            let mut next = 0u32;
            for s in 0..n {
                let (a, b) = m.slot_range(s);
                assert_eq!(a as u32, next);
                for slot in a..=b {
                    assert_eq!(m.shard_of_slot(slot), s);
                }
                next = b as u32 + 1;
            }
            assert_eq!(next, SLOTS as u32);
        }
    }
}
