//! The shard's write journal: every change of the shard's data, as the Redis
//! commands that redo it, in execution order. The AOF (`persistence::aof`)
//! is its first consumer; replication will read the same stream.
//!
//! Two ways a change gets in:
//! - A single-shard write command (inline, forwarded, inside EXEC, or a
//!   gathered span) goes through `run`: if it changed anything (some key was
//!   touched) and did not fail, its arguments are recorded as sent, or, for
//!   the commands whose effect depends on the clock or on chance, as their
//!   effect (see `record`). This covers nearly all traffic at the cost of
//!   one copy of the arguments.
//! - Everything else that changes keys (steps of multi-shard transactions,
//!   blocking pops served later, lazy and active expiry, connection-level
//!   commands) is caught generically: while the journal is on, `Db::touch`
//!   puts the key on its database's `changed` list, and before the next
//!   recorded command (and before the AOF takes the journal) each such key
//!   is recorded as its current state: DEL if it is gone, else SET or
//!   RESTORE ... ABSTTL (streams too, with their groups and PELs). This is always
//!   correct, costs the size of the value, and so stays off the common path.
//!
//! Expiry times are recorded absolute, so replaying later is exact; expired
//! keys reach the journal as DEL. A SELECT precedes a record whose database
//! differs from the previous one's.

use std::cell::Cell;
use std::task::Waker;

use super::Shard;
use crate::commands::{keys, Args, Command, Ctx, ShardFn};
use crate::persistence::rdb;
use crate::resp::{Proto, Reply};
use crate::types::Value;

/// Collection state of this core's thread: the shard's `Db`s ask it on
/// every touch, so it must cost a thread-local load.
const OFF: u8 = 0;
/// The journal is on: touched keys go on their database's `changed` list.
const COLLECT: u8 = 1;
/// A recorded command runs: touches are only counted (it records itself).
const INSIDE: u8 = 2;

thread_local! {
    static MODE: Cell<u8> = const { Cell::new(OFF) };
    static TOUCHES: Cell<u64> = const { Cell::new(0) };
}

/// Called by `Db` whenever a key changes (or is about to be written).
/// Returns whether the key must go on the database's `changed` list.
#[inline]
pub fn note_touch() -> bool {
    match MODE.with(Cell::get) {
        OFF => false,
        COLLECT => true,
        _ => {
            TOUCHES.with(|t| t.set(t.get() + 1));
            false
        }
    }
}

#[derive(Default)]
pub struct Journal {
    on: bool,
    /// Records not yet taken by the consumer, RESP-encoded.
    buf: Vec<u8>,
    /// Bytes ever appended (the journal offset at the end of `buf`).
    appended: u64,
    /// The database of the last record (SELECT is emitted on a change).
    selected: Option<usize>,
    /// While an EXEC runs here: where its records start in `buf`, so they
    /// get wrapped in MULTI/EXEC and are never taken half-way.
    multi_at: Option<usize>,
    /// The consumer waiting for records.
    waker: Option<Waker>,
}

impl Journal {
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// The offset after everything recorded so far.
    pub fn appended(&self) -> u64 {
        self.appended
    }

    /// Appends one command (in database `db`).
    pub fn command<'a>(&mut self, db: usize, args: impl ExactSizeIterator<Item = &'a [u8]>) {
        let before = self.buf.len();
        self.select(db);
        let mut r = Reply::new(&mut self.buf, Proto::Resp2);
        r.array(args.len());
        for a in args {
            r.bulk(a);
        }
        self.appended_since(before);
    }

    /// Appends an already encoded command.
    fn raw(&mut self, db: usize, encoded: &[u8]) {
        let before = self.buf.len();
        self.select(db);
        self.buf.extend_from_slice(encoded);
        self.appended_since(before);
    }

    fn select(&mut self, db: usize) {
        if self.selected != Some(db) {
            let mut r = Reply::new(&mut self.buf, Proto::Resp2);
            r.array(2);
            r.bulk(b"SELECT");
            r.bulk_int(db as i64);
            self.selected = Some(db);
        }
    }

    fn appended_since(&mut self, before: usize) {
        self.appended += (self.buf.len() - before) as u64;
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// The next record starts with a SELECT (it opens a new file).
    pub fn reselect(&mut self) {
        self.selected = None;
    }

    /// Puts taken records back in front (their write failed).
    pub fn unshift(&mut self, mut data: Vec<u8>) {
        data.extend_from_slice(&self.buf);
        if let Some(m) = self.multi_at.as_mut() {
            *m += data.len() - self.buf.len();
        }
        self.buf = data;
    }

    /// Takes the records that are complete (not inside a running EXEC) and
    /// their end offset; registers `waker` if there are none.
    pub fn take(&mut self, waker: &Waker) -> Option<(Vec<u8>, u64)> {
        let taken = self.take_ready();
        if taken.is_none() {
            self.waker = Some(waker.clone());
        }
        taken
    }

    /// Takes the complete records, if any, leaving the consumer's waker.
    pub fn take_ready(&mut self) -> Option<(Vec<u8>, u64)> {
        let end = self.multi_at.unwrap_or(self.buf.len());
        if end == 0 {
            return None;
        }
        let held = (self.buf.len() - end) as u64;
        let out = if end == self.buf.len() { std::mem::take(&mut self.buf) } else { self.buf.drain(..end).collect() };
        if let Some(m) = self.multi_at.as_mut() {
            *m = 0;
        }
        Some((out, self.appended - held))
    }
}

impl Shard {
    /// Starts recording (the consumer has just written a base of the data).
    pub fn journal_start(&mut self) {
        self.journal_stop();
        self.journal.on = true;
        MODE.with(|m| m.set(COLLECT));
    }

    /// Stops recording and drops what was not taken.
    pub fn journal_stop(&mut self) {
        self.journal = Journal::default();
        MODE.with(|m| m.set(OFF));
        self.dbs.iter_mut().for_each(|d| d.changed.clear());
    }

    /// Records the current state of every key changed outside a recorded
    /// command since the last call.
    pub fn journal_pending(&mut self) {
        if !self.journal.on {
            return;
        }
        for db in 0..self.dbs.len() {
            if self.dbs[db].changed.is_empty() {
                continue;
            }
            let mut changed = std::mem::take(&mut self.dbs[db].changed);
            changed.sort_unstable();
            changed.dedup();
            for key in &changed {
                record_state(self, db, key);
            }
            changed.clear();
            // Keep the allocation for next time.
            if self.dbs[db].changed.is_empty() {
                self.dbs[db].changed = changed;
            }
        }
    }

    /// A command that works on whole databases (FLUSHALL, FLUSHDB, SWAPDB):
    /// runs `f` and records `args` as sent (in database `db`).
    pub fn journal_whole(&mut self, db: usize, args: &[&[u8]], f: impl FnOnce(&mut Shard)) {
        self.journal_pending();
        // `f` itself puts no keys on the changed lists (whole databases are
        // taken or swapped); waiters it serves do, and are recorded after.
        f(self);
        if self.journal.on {
            self.journal.command(db, args.iter().copied());
        }
    }

    /// A change outside the keyspace (FUNCTION LOAD/DELETE/FLUSH/RESTORE,
    /// which Redis propagates as sent): records `args` in whatever database
    /// is selected, as it names none.
    pub fn journal_global(&mut self, args: &[Vec<u8>]) {
        if self.journal.on {
            let db = self.journal.selected.unwrap_or(0);
            self.journal.command(db, args.iter().map(Vec::as_slice));
        }
    }

    /// EXEC starts running on this shard: its records will be one unit.
    pub fn journal_begin_multi(&mut self) {
        if self.journal.on {
            self.journal_pending();
            self.journal.multi_at = Some(self.journal.buf.len());
        }
    }

    /// EXEC is done here: wraps its records (if any) in MULTI/EXEC.
    pub fn journal_end_multi(&mut self) {
        self.journal_pending();
        let Some(at) = self.journal.multi_at.take() else { return };
        let j = &mut self.journal;
        if at == j.buf.len() {
            return;
        }
        let tail = j.buf.split_off(at);
        let before = j.buf.len();
        // The records start with their own SELECT when needed; MULTI goes
        // first, so the database must be selected again inside.
        Reply::new(&mut j.buf, Proto::Resp2).array(1);
        Reply::new(&mut j.buf, Proto::Resp2).bulk(b"MULTI");
        j.buf.extend_from_slice(&tail);
        let mut r = Reply::new(&mut j.buf, Proto::Resp2);
        r.array(1);
        r.bulk(b"EXEC");
        j.appended += (j.buf.len() - before - tail.len()) as u64;
        j.appended_since(j.buf.len());
    }
}

/// Whether the running command is recorded by `run` (the journal is on, and
/// it is not a gathered span): XREADGROUP, XCLAIM and XAUTOCLAIM then
/// journal their effects themselves, as Redis propagates them.
pub fn recording(ctx: &Ctx) -> bool {
    ctx.shard.journal.on && ctx.remote.is_none() && MODE.with(Cell::get) == INSIDE
}

/// Runs a single-shard command, recording it when the journal is on and the
/// command wrote. Every path that runs a `ShardFn` goes through here.
pub fn run(f: ShardFn, cmd: &Command, ctx: &mut Ctx, out: &mut Vec<u8>, proto: Proto, args: Args) {
    if !ctx.shard.journal.on || !cmd.is_write() {
        return f(ctx, &mut Reply::new(out, proto), args);
    }
    ctx.shard.journal_pending();
    let start = out.len();
    let before = TOUCHES.with(Cell::get);
    MODE.with(|m| m.set(INSIDE));
    f(ctx, &mut Reply::new(out, proto), args);
    MODE.with(|m| m.set(COLLECT));
    if TOUCHES.with(Cell::get) == before {
        return; // nothing changed: not recorded
    }
    record(ctx, cmd, args, &out[start..]);
}

/// What a write command records. Deterministic commands: themselves. The
/// others: their effect, from the state they left (relative expiry becomes
/// absolute, a random pop the removal of what it popped, ...).
fn record(ctx: &mut Ctx, cmd: &Command, args: Args, reply: &[u8]) {
    let db = ctx.db;
    let failed = matches!(reply.first(), Some(b'-' | b'!'));
    // These journaled their effects themselves (`recording`): delivery and
    // claim times come from the clock.
    if !failed && ctx.remote.is_none() && matches!(cmd.name, "xreadgroup" | "xclaim" | "xautoclaim") {
        return;
    }
    // SET only with a relative expiry (the hot path records it as sent).
    let relative_set = || (3..args.len()).any(|i| args.is(i, "ex") || args.is(i, "px"));
    // A gathered run (`txn::gather_span`) read keys of other shards, which
    // a replay of this shard's journal would not have.
    let key_state = failed
        || ctx.remote.is_some()
        || (cmd.name == "set" && relative_set())
        || matches!(
            cmd.name,
            "setex" | "psetex" | "getex" | "restore" | "incrbyfloat" | "spop" | "hincrbyfloat"
                | "expire" | "pexpire" | "expireat" | "pexpireat"
        );
    if key_state {
        // A failed command that touched keys (a type check after a lookup)
        // usually changed nothing; recording their state is right anyway.
        for i in cmd.key_indexes(&args) {
            let key = args.get(i);
            if !is_remote(ctx, key) {
                record_state(ctx.shard, db, key);
            }
        }
        return;
    }
    if cmd.name == "xadd" {
        if let Some(at) = xadd_id_index(&args) {
            // The ID the entry got, instead of `*` or a partial one.
            let id = bulk_of(reply);
            let j = &mut ctx.shard.journal;
            j.command(db, (0..args.len()).map(|i| if i == at { id.unwrap_or(args.get(i)) } else { args.get(i) }));
            return;
        }
    }
    ctx.shard.journal.command(db, (0..args.len()).map(|i| args.get(i)));
}

fn is_remote(ctx: &Ctx, key: &[u8]) -> bool {
    ctx.remote.as_ref().is_some_and(|r| r.contains_key(key))
}

/// The payload of a RESP bulk string reply.
fn bulk_of(reply: &[u8]) -> Option<&[u8]> {
    let rest = reply.strip_prefix(b"$")?;
    let nl = rest.iter().position(|&b| b == b'\r')?;
    let n: usize = std::str::from_utf8(&rest[..nl]).ok()?.parse().ok()?;
    rest.get(nl + 2..nl + 2 + n)
}

/// Where XADD's ID argument is: after the key and the options.
fn xadd_id_index(a: &Args) -> Option<usize> {
    let mut i = 2;
    while i < a.len() {
        if a.is(i, "nomkstream") {
            i += 1;
        } else if a.is(i, "maxlen") || a.is(i, "minid") {
            i += 1;
            if i < a.len() && (a.get(i) == b"=" || a.get(i) == b"~") {
                i += 1;
            }
            i += 1;
        } else if a.is(i, "limit") {
            i += 2;
        } else {
            return Some(i);
        }
    }
    None
}

/// Records `key` of `db` as it is now: gone (DEL), or a command that
/// recreates it with its absolute expiry.
pub fn record_state(sh: &mut Shard, db: usize, key: &[u8]) {
    let mut scratch = itoa::Buffer::new();
    let mut out: Vec<Vec<u8>> = Vec::new();
    // Time 0: an entry that expired but is still stored is recorded too, with
    // its (past) expiry; replaying it ends in the same state.
    let entry = sh.dbs[db].get_ref(key, 0);
    entry_commands(key, entry.map(|e| (&e.value, e.expire_at)), &mut scratch, &mut |cmd| out.push(cmd));
    for cmd in out {
        sh.journal.raw(db, &cmd);
    }
}

/// The commands that recreate a key (None: DEL), each RESP-encoded, passed
/// to `emit`. Used for the journal's key states and for AOF base files.
pub fn entry_commands(key: &[u8], entry: Option<(&Value, u64)>, scratch: &mut itoa::Buffer, emit: &mut dyn FnMut(Vec<u8>)) {
    let encode = |args: &[&[u8]]| {
        let mut v = Vec::new();
        let mut r = Reply::new(&mut v, Proto::Resp2);
        r.array(args.len());
        for a in args {
            r.bulk(a);
        }
        v
    };
    let Some((value, expire_at)) = entry else {
        return emit(encode(&[b"DEL", key]));
    };
    let mut at = itoa::Buffer::new();
    let at = at.format(expire_at).as_bytes().to_vec();
    match value {
        Value::Str(s) => {
            let v = s.bytes(scratch);
            emit(if expire_at != 0 { encode(&[b"SET", key, v, b"PXAT", &at]) } else { encode(&[b"SET", key, v]) });
        }
        other => {
            let obj = keys::value_to_rdb(other, scratch);
            let payload = rdb::dump_payload(&obj, false);
            emit(encode(&[b"RESTORE", key, &at, &payload, b"REPLACE", b"ABSTTL"]));
        }
    }
}
