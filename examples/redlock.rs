//! The Redlock distributed lock (https://redis.io/docs/manual/patterns/distributed-locks/)
//! over N independent kvick (or Redis) servers, with the `redis` crate.
//!
//!     cargo run --release --example redlock -- 127.0.0.1:7001 127.0.0.1:7002 \
//!         127.0.0.1:7003 127.0.0.1:7004 127.0.0.1:7005
//!
//! acquires the lock `redlock-example` on a majority of the servers, holds it
//! for a moment, and releases it everywhere.
//!
//! The algorithm, as the Redis documentation gives it:
//! - to acquire, set the resource on every server with `SET resource token
//!   NX PX ttl`, a random token, and a per-server timeout small next to the
//!   TTL, so that a dead server costs little;
//! - the lock is held if a majority (the quorum, N/2 + 1) said OK and the
//!   time this took, plus an allowance for clock drift (1% of the TTL plus
//!   2 ms), is below the TTL; what remains is the validity time, the only
//!   time during which the holder may assume it is alone;
//! - otherwise release on every server (one may have set the key though
//!   its reply was lost) and retry after a random delay, so that clients
//!   racing for the lock do not keep splitting the votes;
//! - to release, delete the key on every server, but only where it still
//!   holds this holder's token (the compare-and-delete script): never
//!   another client's lock that replaced an expired one.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Deletes KEYS[1] only if it holds ARGV[1] (the token of the holder).
pub const RELEASE_SCRIPT: &str = r#"if redis.call("get",KEYS[1]) == ARGV[1] then
    return redis.call("del",KEYS[1])
else
    return 0
end"#;

/// Clock drift allowance: this fraction of the TTL, plus 2 ms.
const CLOCK_DRIFT_FACTOR: f64 = 0.01;

/// A lock held on a quorum of the servers.
pub struct Lock {
    pub resource: String,
    pub token: String,
    /// Until when the holder may assume it holds the lock.
    pub valid_until: Instant,
}

/// One server: its address and, while it answers, a connection to it.
struct Server {
    addr: SocketAddr,
    conn: Option<redis::Connection>,
}

pub struct Redlock {
    servers: Vec<Server>,
    /// How long one server may take to answer (connect, or one command).
    timeout: Duration,
    pub retry_count: u32,
    /// The upper bound of the random delay between attempts.
    pub retry_delay: Duration,
    release: redis::Script,
    rng: u64,
}

impl Redlock {
    pub fn new(addrs: &[SocketAddr]) -> Redlock {
        let seed = random_u64();
        Redlock {
            servers: addrs.iter().map(|&addr| Server { addr, conn: None }).collect(),
            timeout: Duration::from_millis(50),
            retry_count: 3,
            retry_delay: Duration::from_millis(200),
            release: redis::Script::new(RELEASE_SCRIPT),
            rng: seed | 1,
        }
    }

    pub fn quorum(&self) -> usize {
        self.servers.len() / 2 + 1
    }

    /// Tries `retry_count` times to take `resource` for `ttl`.
    pub fn lock(&mut self, resource: &str, ttl: Duration) -> Option<Lock> {
        let ttl_ms = ttl.as_millis() as u64;
        for attempt in 0..self.retry_count {
            if attempt > 0 {
                let delay = self.next_random() % (self.retry_delay.as_millis() as u64).max(1);
                std::thread::sleep(Duration::from_millis(delay));
            }
            let token = format!("{:016x}{:016x}", random_u64(), self.next_random());
            let start = Instant::now();
            let mut acquired = 0;
            for i in 0..self.servers.len() {
                let set = redis::cmd("SET").arg(resource).arg(&token).arg("NX").arg("PX").arg(ttl_ms).clone();
                if let Some(Some(())) = self.on_server(i, |c| set.query::<Option<()>>(c)) {
                    acquired += 1;
                }
            }
            let drift = Duration::from_millis((ttl_ms as f64 * CLOCK_DRIFT_FACTOR) as u64 + 2);
            let elapsed = start.elapsed();
            if acquired >= self.quorum() && elapsed + drift < ttl {
                return Some(Lock { resource: resource.to_string(), token, valid_until: start + ttl - drift });
            }
            self.release_everywhere(resource, &token);
        }
        None
    }

    /// Releases `lock` on every server.
    pub fn unlock(&mut self, lock: Lock) {
        self.release_everywhere(&lock.resource, &lock.token);
    }

    fn release_everywhere(&mut self, resource: &str, token: &str) {
        for i in 0..self.servers.len() {
            let release = self.release.clone();
            self.on_server(i, |c| release.key(resource).arg(token).invoke::<i64>(c));
        }
    }

    /// Runs `f` on server `i`, connecting first if needed. None if the
    /// server does not answer in time; the connection is then dropped (a
    /// late reply would otherwise be read as the next command's).
    fn on_server<T>(&mut self, i: usize, f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>) -> Option<T> {
        let timeout = self.timeout;
        let server = &mut self.servers[i];
        if server.conn.is_none() {
            server.conn = connect(server.addr, timeout);
        }
        let result = f(server.conn.as_mut()?);
        match result {
            Ok(v) => Some(v),
            Err(e) if e.kind() == redis::ErrorKind::ResponseError => None,
            Err(_) => {
                server.conn = None;
                None
            }
        }
    }

    /// xorshift64: the retry delays need spread, not quality.
    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }
}

fn connect(addr: SocketAddr, timeout: Duration) -> Option<redis::Connection> {
    let client = redis::Client::open(format!("redis://{addr}/")).ok()?;
    let conn = client.get_connection_with_timeout(timeout).ok()?;
    conn.set_read_timeout(Some(timeout)).ok()?;
    conn.set_write_timeout(Some(timeout)).ok()?;
    Some(conn)
}

/// 64 bits from the kernel, for tokens that no other client can guess.
fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    u64::from_ne_bytes(b)
}

fn main() {
    let addrs: Vec<SocketAddr> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap_or_else(|e| panic!("{a}: not an address ({e})")))
        .collect();
    if addrs.is_empty() {
        eprintln!("usage: redlock HOST:PORT... (e.g. five independent servers)");
        std::process::exit(2);
    }
    let mut redlock = Redlock::new(&addrs);
    let ttl = Duration::from_secs(10);
    match redlock.lock("redlock-example", ttl) {
        Some(lock) => {
            let left = lock.valid_until.saturating_duration_since(Instant::now());
            println!(
                "acquired redlock-example on a quorum of {}/{} servers, valid for {} ms",
                redlock.quorum(),
                addrs.len(),
                left.as_millis()
            );
            std::thread::sleep(Duration::from_millis(100));
            redlock.unlock(lock);
            println!("released");
        }
        None => {
            eprintln!("could not acquire redlock-example (fewer than {} servers agreed)", redlock.quorum());
            std::process::exit(1);
        }
    }
}
