//! Blocking commands (BLPOP, BRPOP, BLMPOP, BLMOVE, BRPOPLPUSH; sorted sets'
//! BZPOPMIN/BZPOPMAX/BZMPOP and streams' XREAD/XREADGROUP BLOCK plug in the
//! same way): the connection's half. The shard's half, which serves waiters
//! when a key gets data, is `shard::blocking`.
//!
//! # How a blocking command runs
//!
//! It is a `Run::Conn` command (so it may wait) that:
//! 1. parses its arguments and calls `prepare` with its timeout argument and
//!    its `ServeFn`; errors are Redis' ("timeout is negative", ...);
//! 2. locks its keys with a transaction (`Txn::lock`, exclusive), and in one
//!    step per shard looks for data, exactly as its non-blocking form would;
//! 3. if some key can serve it, does so under the locks and replies (the
//!    `Pending` is dropped); otherwise registers `pending.waiter` on every
//!    shard owning one of its keys, in that same step
//!    (`Shard::block(db, key, waiter, pending.front)`), releases, and calls
//!    `pending.block(s, registrations)`.
//!
//! The connection (`server::connection`) then waits in `wait_blocked`, not
//! inside the command, so it can watch the socket: input that arrives is
//! kept for after the wait; a closed connection abandons it. The wait ends
//! when a shard serves the waiter (its reply arrives over a oneshot), at the
//! timeout, or by CLIENT UNBLOCK; whoever `claim`s the waiter first decides,
//! and the connection then removes its other registrations, so nothing is
//! left behind.
//!
//! # The `ServeFn`
//!
//! `fn(&mut Ctx, key, &Waiter) -> bool` runs on the shard right after the
//! command (or transaction) that created `key`, before the next command
//! there, once per waiter in FIFO order; one that returns false (nothing
//! for it) keeps waiting in its place. It re-reads its options from `waiter.args`,
//! checks the key can serve it, `claim`s (if that fails the waiter is gone:
//! return true), changes data and `reply`s. If serving would also write a
//! key of another shard (BLMOVE whose destination lives elsewhere), it
//! claims and wakes with `Wake::Retry` instead: the connection runs the
//! command again under a transaction over all its keys (atomic, as LMOVE
//! across cores), and registers first in line again if the data is gone.
//! Unlike Redis, the waiters behind it may meanwhile take from the same
//! push, and another client's command may run before the retry.

use std::sync::Arc;
use std::time::Duration;

use futures_channel::oneshot;

use crate::commands::{self, OwnedArgs, Run};
use crate::server::session::Session;
use crate::server::txn::{Step, Txn};
use crate::shard::blocking::{ServeFn, Wake, Waiter};
use crate::util::{now_ms, parse_f64};

const UNBLOCKED: &str = "UNBLOCKED client unblocked via CLIENT UNBLOCK";

/// A blocking command that found no data, between `prepare` and `block`.
pub struct Pending {
    pub waiter: Arc<Waiter>,
    /// Register first in line: this is a retry that lost its turn.
    pub front: bool,
    rx: oneshot::Receiver<Wake>,
    /// Unix ms; 0 = for ever.
    deadline: u64,
}

/// A connection blocked on keys: what `wait_blocked` waits for.
pub struct Blocked {
    waiter: Arc<Waiter>,
    rx: oneshot::Receiver<Wake>,
    deadline: u64,
    /// Shards it is registered on, with its keys there.
    keys: Vec<(usize, Vec<Vec<u8>>)>,
    /// Set while the command runs again after `Wake::Retry`.
    retrying: bool,
}

/// How a wait ended.
pub enum Event {
    Woken(Wake),
    TimedOut,
}

/// Redis' timeout argument: seconds as a float, 0 = for ever; gives the
/// deadline in unix ms (0 = none). A positive timeout under a millisecond
/// is 0 too, as in Redis.
pub fn parse_timeout(arg: &[u8]) -> Result<u64, &'static str> {
    let secs = parse_f64(arg).ok_or("ERR timeout is not a float or out of range")?;
    let ms = secs * 1000.0;
    // Redis converts to a C long long; beyond its range x86 yields LLONG_MIN,
    // which then reads as negative.
    if ms >= 2f64.powi(63) || ms <= -1.0 {
        return Err("ERR timeout is negative");
    }
    match ms as u64 {
        0 => Ok(0),
        // Redis 7.0 does not bound the sum; a huge one means for ever.
        ms => Ok(now_ms().saturating_add(ms)),
    }
}

/// Parses the timeout and makes the waiter of a blocking command (`args`
/// as sent; `writes_elsewhere`: see `Waiter`). A retry keeps its first
/// deadline and its place in line.
pub fn prepare(s: &mut Session, args: &OwnedArgs, timeout: &[u8], serve: ServeFn, writes_elsewhere: bool) -> Result<Pending, &'static str> {
    let deadline = match &s.blocked {
        Some(b) if b.retrying => b.deadline,
        _ => parse_timeout(timeout)?,
    };
    Ok(prepare_until(s, args, deadline, serve, writes_elsewhere))
}

/// `prepare` with the deadline known (unix ms, 0 = none): XREAD's BLOCK
/// counts milliseconds.
pub fn prepare_until(s: &mut Session, args: &OwnedArgs, deadline: u64, serve: ServeFn, writes_elsewhere: bool) -> Pending {
    let (deadline, front) = match s.blocked.take() {
        Some(b) if b.retrying => (b.deadline, true),
        _ => (deadline, false),
    };
    let (waiter, rx) = Waiter::new(s.db, s.proto, OwnedArgs(args.0.clone()), serve, writes_elsewhere);
    Pending { waiter, front, rx, deadline }
}

impl Pending {
    /// Registers the waiter on the keys of every shard in `regs`, under the
    /// command's transaction (so no write can slip in between its look for
    /// data and the registration).
    pub async fn register(&self, txn: &Txn, db: usize, regs: &[(usize, Vec<Vec<u8>>)]) {
        let steps = regs
            .iter()
            .map(|(shard, keys)| {
                let (w, keys, front) = (self.waiter.clone(), keys.clone(), self.front);
                let f: Step<()> = Box::new(move |sh| keys.iter().for_each(|k| sh.block(db, k, w.clone(), front)));
                (*shard, f)
            })
            .collect();
        txn.on_many(steps).await;
    }

    /// The command registered the waiter on the shards of `keys`: the
    /// connection waits once the command returns.
    pub fn block(self, s: &mut Session, keys: Vec<(usize, Vec<Vec<u8>>)>) {
        s.core.clients.borrow_mut().blocked.insert(s.info.id, self.waiter.clone());
        s.blocked = Some(Blocked { waiter: self.waiter, rx: self.rx, deadline: self.deadline, keys, retrying: false });
    }
}

/// The next thing that happens to a blocked connection.
pub async fn next(b: &mut Blocked) -> Event {
    let woken = async { Event::Woken((&mut b.rx).await.unwrap_or(Wake::Unblocked(false))) };
    if b.deadline == 0 {
        return woken.await;
    }
    let left = b.deadline.saturating_sub(now_ms());
    let timer = async {
        glommio::timer::sleep(Duration::from_millis(left)).await;
        Event::TimedOut
    };
    futures_lite::future::or(woken, timer).await
}

/// Ends the wait with `ev`: writes the reply, or runs the command again.
pub async fn finish(s: &mut Session, ev: Event) {
    let Some(mut b) = s.blocked.take() else { return };
    let wake = match ev {
        Event::Woken(w) => w,
        // Claimed elsewhere meanwhile: a reply is on its way.
        Event::TimedOut if !b.waiter.claim() => (&mut b.rx).await.unwrap_or(Wake::Unblocked(false)),
        Event::TimedOut => Wake::Unblocked(false),
    };
    unregister(s, &b).await;
    match wake {
        Wake::Reply(out) => s.out.extend_from_slice(&out),
        Wake::Unblocked(false) => s.reply().null_array(),
        Wake::Unblocked(true) => s.reply().error(UNBLOCKED),
        Wake::Retry => {
            let args = OwnedArgs(b.waiter.args.0.clone());
            let Some(Run::Conn(f)) = commands::lookup(args.get(0)).map(|ci| commands::by_index(ci).run) else {
                unreachable!("blocking commands are connection commands")
            };
            b.retrying = true;
            s.blocked = Some(b);
            f(s, args).await;
            // Served at once: the retry state was not taken over.
            if s.blocked.as_ref().is_some_and(|b| b.retrying) {
                s.blocked = None;
            }
        }
    }
}

/// The client went away while blocked: nothing of it may stay behind.
pub async fn abandon(s: &mut Session) {
    if let Some(b) = s.blocked.take() {
        b.waiter.claim();
        unregister(s, &b).await;
    }
}

async fn unregister(s: &mut Session, b: &Blocked) {
    s.core.clients.borrow_mut().blocked.remove(&s.info.id);
    let db = b.waiter.db;
    for (shard, keys) in &b.keys {
        let (w, keys) = (b.waiter.clone(), keys.clone());
        s.core
            .call(*shard, move |c| {
                let mut sh = c.shard.borrow_mut();
                keys.iter().for_each(|k| sh.unblock(db, k, &w));
            })
            .await;
    }
}

/// CLIENT UNBLOCK on this core: wakes client `id` if it is blocked here.
pub fn unblock_client(core: &crate::server::core::Core, id: u64, error: bool) -> bool {
    let Some(w) = core.clients.borrow().blocked.get(&id).cloned() else { return false };
    if !w.claim() {
        return false;
    }
    w.wake(Wake::Unblocked(error));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_as_redis_reads_them() {
        assert_eq!(parse_timeout(b"0"), Ok(0));
        assert_eq!(parse_timeout(b"0.0001"), Ok(0));
        assert!(parse_timeout(b"0.01").unwrap() >= now_ms());
        assert_eq!(parse_timeout(b"-1"), Err("ERR timeout is negative"));
        assert_eq!(parse_timeout(b"inf"), Err("ERR timeout is negative"));
        assert_eq!(parse_timeout(b"1e30"), Err("ERR timeout is negative"));
        assert_eq!(parse_timeout(b"abc"), Err("ERR timeout is not a float or out of range"));
        assert_eq!(parse_timeout(b"nan"), Err("ERR timeout is not a float or out of range"));
        assert!(parse_timeout(b"9.2233720368547e15").is_ok());
    }
}
