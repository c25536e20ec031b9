//! Client-side caching, the shard's half (Redis' tracking.c): which clients
//! may cache which keys of this shard, and the invalidations its writes owe
//! them. The connection's half (modes, delivery) is `server::tracking`.
//!
//! - Default mode: before a tracking client's read runs here, its keys are
//!   remembered (`remember`) with the client's id and core. The next change
//!   of such a key (any write, expiry or eviction: `Db::touch` and lazy
//!   expiry call `key_changed`) queues one invalidation per client and
//!   forgets them, so a key is invalidated once per read.
//! - BCAST mode: the prefixes of every BCAST client of the server are
//!   registered on every core (they are few); a change of a key under a
//!   prefix queues it for that prefix's clients. Keys of one executor turn
//!   are sent together, one message per client and prefix.
//! - A flush forgets the table and owes every tracking client of this core a
//!   null invalidation (each core's shard is flushed, so each core tells its
//!   own clients).
//!
//! The table is per thread, which is per core, like the notification queue:
//! the `Db` raises changes from wherever they happen without a handle on the
//! core. With nobody tracking, `key_changed` costs one thread-local load.
//! The queue is drained every turn by `server::tracking::forward`, which
//! sends each core's share in one message. The table is bounded by
//! `tracking-table-max-keys` (its share per core): past it, keys are
//! invalidated to make room, as Redis does. Entries of clients that went
//! away are dropped when their key changes or is evicted that way.

use std::cell::{Cell, RefCell};
use std::task::{Context, Poll, Waker};

use hashbrown::HashMap;

use super::key::Key;

/// A tracking client: its id and the core its connection lives on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Client {
    pub id: u64,
    pub core: usize,
}

/// What one client is told.
#[derive(Debug)]
pub struct Invalidation {
    pub client: u64,
    /// Keys changed; None: everything (a flush).
    pub keys: Option<Vec<Vec<u8>>>,
    /// Per key, the client whose command changed it (0: none, e.g.
    /// expiry), for NOLOOP.
    pub writers: Vec<u64>,
    /// Raised for a BCAST prefix (only BCAST clients take it), or for a
    /// remembered key (only default-mode clients take it).
    pub bcast: bool,
}

/// Keys changed, and the client that changed each (0: none).
type Changed = (Vec<Vec<u8>>, Vec<u64>);

#[derive(Default)]
struct Table {
    keys: HashMap<Key, Vec<Client>>,
    /// Sum of the clients over `keys` (INFO tracking_total_items).
    items: usize,
    /// BCAST prefixes and their clients.
    prefixes: Vec<(Vec<u8>, Vec<Client>)>,
    /// Keys changed under a prefix this turn, by (client, prefix).
    bcast: HashMap<(Client, usize), Changed>,
    /// Invalidations owed, with the core of their client.
    pending: Vec<(usize, Invalidation)>,
    /// Every tracking client of this core is owed a null invalidation.
    flushed: bool,
    waker: Option<Waker>,
}

thread_local! {
    static TABLE: RefCell<Table> = RefCell::new(Table::default());
    /// Someone may need an invalidation from this shard: keys are
    /// remembered or prefixes registered.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    /// The client whose command runs on this shard now (0: none), for NOLOOP.
    static CALLER: Cell<u64> = const { Cell::new(0) };
    /// Keys the running command looked up for writing, not yet known to
    /// have changed (`key_written`).
    static WRITTEN: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` (a command's execution on this shard) as client `id`'s: changes
/// it makes carry the id, for NOLOOP.
#[inline]
pub fn as_caller<R>(id: u64, f: impl FnOnce() -> R) -> R {
    // Nested runs (a transaction step running a queued command) keep the
    // outer caller once they end.
    let outer = CALLER.with(|c| c.replace(id));
    // A key looked up for writing by an earlier command and left as it
    // was is not this command's change.
    if ACTIVE.with(Cell::get) {
        WRITTEN.with(|w| w.borrow_mut().clear());
    }
    let r = f();
    CALLER.with(|c| c.set(outer));
    r
}

fn update_active(t: &Table) {
    let active = !t.keys.is_empty() || !t.prefixes.is_empty();
    ACTIVE.with(|a| a.set(active));
    if !active {
        WRITTEN.with(|w| w.borrow_mut().clear());
    }
}

fn wake(t: &mut Table) {
    if let Some(w) = t.waker.take() {
        w.wake();
    }
}

/// Remembers that `client` may cache `keys` (a read it is about to do here).
/// `max_keys` is this shard's share of `tracking-table-max-keys` (0: none).
pub fn remember(client: Client, keys: &[Vec<u8>], max_keys: usize) {
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        for key in keys {
            let clients = t.keys.entry_ref(key.as_slice()).or_default();
            if !clients.contains(&client) {
                clients.push(client);
                t.items += 1;
            }
        }
        if max_keys > 0 && t.keys.len() > max_keys {
            evict(&mut t, max_keys);
        }
        update_active(&t);
    });
}

/// Redis' trackingLimitUsedSlots: keys past the limit are invalidated (their
/// clients drop them from their caches) and forgotten.
fn evict(t: &mut Table, max_keys: usize) {
    let over = t.keys.len() - max_keys;
    let victims: Vec<Key> = t.keys.keys().take(over).cloned().collect();
    for key in victims {
        if let Some(clients) = t.keys.remove(&key) {
            owe(t, &key, clients, 0);
        }
    }
    wake(t);
}

/// Queues one invalidation of `key` per client and counts them out.
fn owe(t: &mut Table, key: &[u8], clients: Vec<Client>, writer: u64) {
    t.items -= clients.len();
    for c in clients {
        let inv = Invalidation {
            client: c.id,
            keys: Some(vec![key.to_vec()]),
            writers: vec![writer],
            bcast: false,
        };
        t.pending.push((c.core, inv));
    }
}

/// A key of this shard changed (written, deleted, expired or evicted).
#[inline]
pub fn key_changed(key: &[u8]) {
    if ACTIVE.with(Cell::get) {
        changed(key);
    }
}

/// `key` is looked up to be written in place, which may change nothing
/// (SADD of a member already there, LPUSHX on a missing key). Redis
/// invalidates only when a command signals a modification, which it does
/// where it raises the key's keyspace event; so the invalidation waits for
/// `key_notified` within the same command (`as_caller` forgets the rest).
/// Insertions, deletions and expiry changes call `key_changed` at once.
#[inline]
pub fn key_written(key: &[u8]) {
    if ACTIVE.with(Cell::get) {
        WRITTEN.with(|w| w.borrow_mut().push(key.to_vec()));
    }
}

/// The running command raised a keyspace event on `key` (`Ctx::notify`): a
/// write of it noted by `key_written` changed it.
#[inline]
pub fn key_notified(key: &[u8]) {
    if ACTIVE.with(Cell::get) {
        confirm(key);
    }
}

#[cold]
fn confirm(key: &[u8]) {
    let written = WRITTEN.with(|w| w.borrow().iter().any(|k| k == key));
    if written {
        changed(key);
    }
}

#[cold]
fn changed(key: &[u8]) {
    // Told now, so a later event of the same command does not tell again.
    WRITTEN.with(|w| w.borrow_mut().retain(|k| k != key));
    let writer = CALLER.with(Cell::get);
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        let t = &mut *t;
        let mut queued = false;
        if let Some(clients) = t.keys.remove(key) {
            owe(t, key, clients, writer);
            queued = true;
        }
        for (i, (prefix, clients)) in t.prefixes.iter().enumerate() {
            if key.starts_with(prefix) {
                for &c in clients {
                    let (keys, writers) = t.bcast.entry((c, i)).or_default();
                    keys.push(key.to_vec());
                    writers.push(writer);
                }
                queued = true;
            }
        }
        if queued {
            update_active(t);
            wake(t);
        }
    });
}

/// The keyspace was flushed: forget every key, owe the core's tracking
/// clients a null invalidation.
pub fn flushed() {
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        t.keys = HashMap::new();
        t.items = 0;
        t.flushed = true;
        update_active(&t);
        wake(&mut t);
    });
}

/// Registers (or, with `add` false, unregisters) `client` for `prefix`.
pub fn set_prefix(client: Client, prefix: &[u8], add: bool) {
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        let at = t.prefixes.iter().position(|(p, _)| p == prefix);
        match (at, add) {
            (Some(i), true) => {
                if !t.prefixes[i].1.contains(&client) {
                    t.prefixes[i].1.push(client);
                }
            }
            (None, true) => t.prefixes.push((prefix.to_vec(), vec![client])),
            (Some(i), false) => {
                t.prefixes[i].1.retain(|c| *c != client);
                if t.prefixes[i].1.is_empty() {
                    // Keys queued under later prefixes keep their indexes.
                    flush_bcast(&mut t);
                    t.prefixes.remove(i);
                }
            }
            (None, false) => {}
        }
        update_active(&t);
    });
}

/// Moves the keys changed under prefixes into `pending`.
fn flush_bcast(t: &mut Table) {
    for ((c, _), (keys, writers)) in t.bcast.drain() {
        t.pending.push((
            c.core,
            Invalidation {
                client: c.id,
                keys: Some(keys),
                writers,
                bcast: true,
            },
        ));
    }
}

/// The invalidations owed now, with their clients' cores; whether this
/// core's clients are owed a flush's null invalidation first.
pub fn poll_pending(cx: &mut Context) -> Poll<(bool, Vec<(usize, Invalidation)>)> {
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        flush_bcast(&mut t);
        if t.pending.is_empty() && !t.flushed {
            t.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let flushed = std::mem::take(&mut t.flushed);
        Poll::Ready((flushed, std::mem::take(&mut t.pending)))
    })
}

/// (keys, items, prefixes) for INFO.
pub fn counts() -> (usize, usize, usize) {
    TABLE.with(|t| {
        let t = t.borrow();
        (t.keys.len(), t.items, t.prefixes.len())
    })
}
