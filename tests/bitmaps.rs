//! Seeded random sequences of bitmap commands (SETBIT, BITCOUNT, BITPOS with
//! BIT/BYTE ranges, BITFIELD with every overflow policy, BITOP across cores)
//! give redis-server's replies and leave redis-server's bytes: many more
//! combinations of offsets, widths and ranges than the corpus lists.

mod common;

use common::{KvickServer, RedisServer};

/// xorshift64*: a fixed sequence for a fixed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn index(&mut self) -> String {
        let fixed = ["0", "1", "7", "8", "9", "15", "16", "31", "-1", "-2", "-8", "-9", "-100", "100"];
        if self.below(2) == 0 {
            self.pick(&fixed).to_string()
        } else {
            (self.below(120) as i64 - 60).to_string()
        }
    }
}

#[test]
fn random_bitmap_commands_match_redis() {
    let redis_server = RedisServer::start();
    let kvick = KvickServer::start(&["--threads", "2"]);
    let mut cons = [redis_server.raw(), kvick.raw()];
    let mut rng = Rng(0x9e3779b97f4a7c15);
    // "a" and "d" are on core 1, "b" and "c" on core 0.
    let keys = ["a", "b", "c", "d"];
    let types = ["i1", "u1", "i5", "u7", "i8", "u8", "i13", "u16", "i32", "u33", "i63", "u63", "i64"];
    let values = ["0", "1", "-1", "127", "128", "-129", "255", "256", "70000", "9223372036854775807", "-9223372036854775808"];
    for step in 0..4000 {
        let key = rng.pick(&keys).to_string();
        let written = key.clone();
        let mut cmd: Vec<String> = match rng.below(8) {
            0 => vec!["SETBIT".into(), key, rng.below(200).to_string(), rng.below(2).to_string()],
            1 => vec!["BITCOUNT".into(), key, rng.index(), rng.index(), rng.pick(&["BIT", "BYTE"]).into()],
            2 | 3 => {
                let mut c = vec!["BITPOS".into(), key, rng.below(2).to_string()];
                let extra = rng.below(4) as usize;
                c.extend((0..extra.min(2)).map(|_| rng.index()));
                if extra == 3 {
                    c.push(rng.pick(&["BIT", "BYTE"]).into());
                }
                c
            }
            4 => {
                let mut c = vec!["BITOP".into(), rng.pick(&["AND", "OR", "XOR"]).into(), key];
                c.extend((0..1 + rng.below(3)).map(|_| rng.pick(&keys).to_string()));
                c
            }
            5 => vec!["SET".into(), key, (0..rng.below(6)).map(|_| char::from(b'A' + rng.below(60) as u8)).collect()],
            _ => {
                let mut c = vec!["BITFIELD".into(), key];
                for _ in 0..1 + rng.below(3) {
                    let t = rng.pick(&types).to_string();
                    let off = if rng.below(3) == 0 { format!("#{}", rng.below(8)) } else { rng.below(90).to_string() };
                    match rng.below(4) {
                        0 => c.extend(["GET".into(), t, off]),
                        1 => c.extend(["SET".into(), t, off, rng.pick(&values).into()]),
                        2 => c.extend(["INCRBY".into(), t, off, rng.pick(&values).into()]),
                        _ => c.extend(["OVERFLOW".into(), rng.pick(&["WRAP", "SAT", "FAIL"]).into()]),
                    }
                }
                c
            }
        };
        if step % 500 == 0 {
            cmd = vec!["FLUSHALL".into()];
        }
        let replies: Vec<Vec<u8>> = cons.iter_mut().map(|c| c.cmd(&cmd)).collect();
        assert_eq!(replies[0], replies[1], "step {step}: {cmd:?}");
        let gets: Vec<Vec<u8>> = cons.iter_mut().map(|c| c.cmd(&["GET", written.as_str()])).collect();
        assert_eq!(gets[0], gets[1], "value after step {step}: {cmd:?}");
    }
}
