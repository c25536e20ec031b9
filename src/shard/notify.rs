//! Keyspace notifications (Redis' notify.c): a write site calls `event` with
//! the event's class, name, database and key; when `notify-keyspace-events`
//! enables the class, the notifications are queued and the core's
//! forwarding task publishes them through the pub/sub fan-out
//! (`server::pubsub::forward_notifications`). Notifications of a key are
//! thus raised on the core that owns the key, in the order of its writes.
//!
//! The queue is per thread, which is per core: shard code raises events from
//! wherever they happen (a command, lazy or active expiry) without a handle
//! on the core. With notifications off, `event` costs one relaxed load.
//!
//! The queues are bounded by pushing back on the writers, not by dropping:
//! a core publishes to other cores' subscribers at the pace those cores
//! take its messages, and writes can raise events faster than that. A
//! dropped event would be a change a subscriber silently never hears of;
//! instead, while more than `BACKLOG_LIMIT` events wait on all cores
//! together, connections stop reading commands (`connection::serve` checks
//! `backlogged` after each read and awaits `drained`), so writers slow down
//! through TCP as they do against a busy Redis, and memory stays bounded by
//! the limit plus what the commands already read can raise. Subscribers
//! that then do not keep up are cut off by `client-output-buffer-limit`
//! like any pub/sub client.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

pub const KEYSPACE: u32 = 1 << 0;
pub const KEYEVENT: u32 = 1 << 1;
pub const GENERIC: u32 = 1 << 2;
pub const STRING: u32 = 1 << 3;
pub const LIST: u32 = 1 << 4;
pub const SET: u32 = 1 << 5;
pub const HASH: u32 = 1 << 6;
pub const ZSET: u32 = 1 << 7;
pub const EXPIRED: u32 = 1 << 8;
pub const EVICTED: u32 = 1 << 9;
pub const STREAM: u32 = 1 << 10;
pub const KEY_MISS: u32 = 1 << 11;
pub const MODULE: u32 = 1 << 12;
pub const NEW: u32 = 1 << 13;
/// The 'A' alias: every class but key-miss and new.
const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// The enabled classes; K or E must be among them for anything to be sent.
static FLAGS: AtomicU32 = AtomicU32::new(0);

/// Events queued on every core, not yet published. Written only while
/// notifications flow, so with them off the check after each read is a load
/// of a line no core writes.
static BACKLOG: AtomicUsize = AtomicUsize::new(0);
/// About 10 MB of queued events (channel and message of ~80 bytes each).
const BACKLOG_LIMIT: usize = 1 << 17;

/// Flag letters in the order Redis prints them (after 'A').
const LETTERS: &[(u8, u32)] = &[
    (b'g', GENERIC),
    (b'$', STRING),
    (b'l', LIST),
    (b's', SET),
    (b'h', HASH),
    (b'z', ZSET),
    (b'x', EXPIRED),
    (b'e', EVICTED),
    (b't', STREAM),
    (b'd', MODULE),
    (b'n', NEW),
];

/// Redis' keyspaceEventsStringToFlags; None on an unknown character.
pub fn parse_flags(s: &str) -> Option<u32> {
    let mut flags = 0;
    for c in s.bytes() {
        flags |= match c {
            b'A' => ALL,
            b'K' => KEYSPACE,
            b'E' => KEYEVENT,
            b'm' => KEY_MISS,
            c => LETTERS.iter().find(|(l, _)| *l == c)?.1,
        };
    }
    Some(flags)
}

/// Redis' keyspaceEventsFlagsToString (CONFIG GET's form). As in Redis,
/// 'A' hides 'n'.
pub fn flags_text(flags: u32) -> String {
    let mut s = String::new();
    if flags & ALL == ALL {
        s.push('A');
    } else {
        s.extend(
            LETTERS
                .iter()
                .filter(|(_, f)| flags & f != 0)
                .map(|(l, _)| *l as char),
        );
    }
    for (l, f) in [('K', KEYSPACE), ('E', KEYEVENT), ('m', KEY_MISS)] {
        if flags & f != 0 {
            s.push(l);
        }
    }
    s
}

pub fn set_flags(flags: u32) {
    FLAGS.store(flags, Ordering::Relaxed);
}

/// Notifications raised on this core, waiting to be published.
#[derive(Default)]
struct Queue {
    pending: Vec<(Vec<u8>, Vec<u8>)>,
    waker: Option<Waker>,
    /// Notifications ever raised here, and ever delivered to every core's
    /// subscribers (`published`): `barrier` waits for the second to reach
    /// the first.
    raised: u64,
    delivered: u64,
    barriers: Vec<Waker>,
}

thread_local! {
    static QUEUE: RefCell<Queue> = RefCell::new(Queue::default());
}

/// Raises event `name` of `class` on `key` of database `db`.
#[inline]
pub fn event(class: u32, name: &str, db: usize, key: &[u8]) {
    let flags = FLAGS.load(Ordering::Relaxed);
    if flags & class == 0 || flags & (KEYSPACE | KEYEVENT) == 0 {
        return;
    }
    raise(flags, name, db, key);
}

#[cold]
fn raise(flags: u32, name: &str, db: usize, key: &[u8]) {
    QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        if flags & KEYSPACE != 0 {
            let mut channel = format!("__keyspace@{db}__:").into_bytes();
            channel.extend_from_slice(key);
            q.pending.push((channel, name.as_bytes().to_vec()));
        }
        if flags & KEYEVENT != 0 {
            q.pending.push((
                format!("__keyevent@{db}__:{name}").into_bytes(),
                key.to_vec(),
            ));
        }
        let queued = (flags & KEYSPACE != 0) as usize + (flags & KEYEVENT != 0) as usize;
        q.raised += queued as u64;
        BACKLOG.fetch_add(queued, Ordering::Relaxed);
        if let Some(w) = q.waker.take() {
            w.wake();
        }
    })
}

/// Whether connections should stop reading commands until `drained`.
#[inline]
pub fn backlogged() -> bool {
    BACKLOG.load(Ordering::Relaxed) > BACKLOG_LIMIT
}

/// Resolves once the backlog is down to half the limit (half, so that a
/// connection resumes for a while rather than at every published event).
/// Polled by timer: queues drain on other cores, which have no waker of
/// this one, and the wait happens only under overload.
pub async fn drained() {
    while BACKLOG.load(Ordering::Relaxed) > BACKLOG_LIMIT / 2 {
        glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Whether keyspace notifications are on (some class, K or E).
#[inline]
pub fn enabled() -> bool {
    FLAGS.load(Ordering::Relaxed) & (KEYSPACE | KEYEVENT) != 0
}

/// Every notification (channel, message) queued on this core, in order;
/// once they reached every core's subscribers, `published` says so.
pub fn poll_pending(cx: &mut Context) -> Poll<Vec<(Vec<u8>, Vec<u8>)>> {
    QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        if q.pending.is_empty() {
            q.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        BACKLOG.fetch_sub(q.pending.len(), Ordering::Relaxed);
        Poll::Ready(std::mem::take(&mut q.pending))
    })
}

/// `n` notifications taken by `poll_pending` were delivered everywhere.
pub fn published(n: usize) {
    QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        q.delivered += n as u64;
        q.barriers.drain(..).for_each(Waker::wake);
    })
}

/// Resolves once every notification raised on this core so far has reached
/// the subscribers of every core. PUBLISH waits for it on every core, so a
/// client's `SET k v` then `PUBLISH ch m` reach a subscriber of both in that
/// order, as in Redis, wherever k lives.
pub async fn barrier() {
    let target = QUEUE.with(|q| q.borrow().raised);
    std::future::poll_fn(|cx| {
        QUEUE.with(|q| {
            let mut q = q.borrow_mut();
            if q.delivered >= target {
                return Poll::Ready(());
            }
            q.barriers.push(cx.waker().clone());
            Poll::Pending
        })
    })
    .await
}
