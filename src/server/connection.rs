//! A client connection: read, parse every complete command in the buffer,
//! route each one, then write all replies of the read in one write.
//!
//! Routing within one read (a pipeline):
//! - commands whose keys live on this core run inline, at once;
//! - commands for another core are appended to that core's batch; all batches
//!   go out together when the read is parsed, and their replies are stitched
//!   back in request order;
//! - a command that needs the session or spans cores (SELECT, MGET over two
//!   cores, INFO, ...) first waits for the batches before it, so it observes
//!   every earlier command of the connection.
//!
//! Reads for different cores may run in parallel (as Dragonfly's pipeline
//! squashing), but a write never runs beside an earlier command of the
//! pipeline on another core, nor any command beside an earlier write: others
//! see a pipeline's writes in request order, as in Redis. Replies always come
//! back in request order.

use std::ops::Range;
use std::rc::Rc;

use futures_channel::oneshot;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use crate::commands::{self, transactions, Args, Run};
use crate::config;
use crate::resp::parser::{Parsed, Parser, Source};
use crate::resp::Reply;
use crate::server::{blocking, pubsub, tracking};
use crate::server::core::{Batch, BatchBufs, Core, Msg};
use crate::server::session::Session;

/// A connection's byte stream, as `serve` needs it. Two implementations:
/// glommio's `TcpStream` (`io-engine glommio`) and a stream on the core's
/// completion ring (`io-engine uring`, see `server::uring`).
#[allow(async_fn_in_trait)] // used on one thread only; no Send bound wanted
pub trait Transport {
    /// Reads at least one byte into `buf`; `Ok(0)` at end of stream.
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize>;
    /// Writes all of `out`, leaving it empty. The transport may keep the
    /// allocation and hand back another one, and may return before the bytes
    /// reach the socket (they are then sent in order before anything later).
    async fn write_all(&mut self, out: &mut Vec<u8>) -> std::io::Result<()>;
    /// Sends anything still queued, then closes the connection.
    async fn close(self);
}

impl Transport for TcpStream {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        AsyncReadExt::read(self, buf).await
    }

    async fn write_all(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        let r = AsyncWriteExt::write_all(self, out).await;
        out.clear();
        r
    }

    async fn close(mut self) {
        let _ = AsyncWriteExt::close(&mut self).await;
    }
}

impl Transport for crate::server::uring::RingStream {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        crate::server::uring::RingStream::read(self, buf).await
    }

    async fn write_all(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        crate::server::uring::RingStream::write_all(self, out).await
    }

    async fn close(self) {
        crate::server::uring::RingStream::close(self).await
    }
}

const READ_CHUNK: usize = 16 * 1024;
/// Replies are written out early once this much is pending, bounding memory.
const OUT_FLUSH: usize = 256 * 1024;

/// One destination core's share of a pipeline.
#[derive(Default)]
struct Outgoing {
    /// Reused from batch to batch (see `BatchBufs`).
    bufs: BatchBufs,
    /// Some command of the batch writes.
    writes: bool,
}

enum Piece {
    Local(Range<usize>),
    Remote(usize, usize),
}

/// The replies of a pipeline that forwards to other cores, in request order.
#[derive(Default)]
struct Pipeline {
    outgoing: Vec<Outgoing>,
    /// Replies of local commands that follow the first forwarded one.
    local: Vec<u8>,
    order: Vec<Piece>,
    forwarded: bool,
    /// Shards (a bit per core) this pipeline wrote on since its replies were
    /// last sent: with `appendfsync always` the replies wait until those
    /// writes are in the AOF (`persistence::aof::wait_durable`).
    wrote: u64,
    /// The connection's client id, sent with its batches.
    client: u64,
}

impl Pipeline {
    fn new(cores: usize, client: u64) -> Self {
        Pipeline { outgoing: (0..cores).map(|_| Outgoing::default()).collect(), client, ..Default::default() }
    }

    /// Whether a command for `target` must first wait for the batches before
    /// it: a write never runs beside another command of the pipeline on
    /// another core, nor a command beside an earlier write, so no client can
    /// see the pipeline's writes in another order than Redis would apply them.
    /// Reads alone may run in parallel.
    fn must_wait(&self, target: usize, write: bool) -> bool {
        self.forwarded && self.outgoing.iter().enumerate().any(|(i, o)| i != target && !o.bufs.cmds.is_empty() && (write || o.writes))
    }

    fn forward(&mut self, to: usize, ci: u16, args: Args, write: bool) {
        let o = &mut self.outgoing[to];
        o.writes |= write;
        let b = &mut o.bufs;
        for a in args.iter() {
            let start = b.data.len();
            b.data.extend_from_slice(a);
            b.ranges.push(start..b.data.len());
        }
        b.cmds.push((ci, args.len() as u32));
        self.order.push(Piece::Remote(to, b.cmds.len() - 1));
        self.forwarded = true;
    }

    /// Sends the batches, waits for their replies and appends every reply of
    /// the pipeline to `out` in request order.
    async fn finish(&mut self, core: &Core, s_db: usize, proto: crate::resp::Proto, out: &mut Vec<u8>) {
        if !self.forwarded {
            return;
        }
        let mut waiting: Vec<(usize, oneshot::Receiver<BatchBufs>)> = Vec::new();
        let client = self.client;
        for (to, o) in self.outgoing.iter_mut().enumerate() {
            if o.bufs.cmds.is_empty() {
                continue;
            }
            let (tx, rx) = oneshot::channel();
            o.writes = false;
            let mut bufs = std::mem::take(&mut o.bufs);
            // Room for typical replies, allocated here (see `BatchBufs`).
            bufs.out.reserve(64 * bufs.cmds.len());
            bufs.ends.reserve(bufs.cmds.len());
            core.send(to, Msg::Batch(Batch { db: s_db, proto, client, bufs, reply: tx })).await;
            waiting.push((to, rx));
        }
        for (to, rx) in waiting {
            self.outgoing[to].bufs = rx.await.expect("peer core dropped a batch");
        }
        for piece in self.order.drain(..) {
            match piece {
                Piece::Local(r) => out.extend_from_slice(&self.local[r]),
                Piece::Remote(to, i) => {
                    let b = &self.outgoing[to].bufs;
                    let start = if i == 0 { 0 } else { b.ends[i - 1] };
                    out.extend_from_slice(&b.out[start..b.ends[i]]);
                }
            }
        }
        for o in &mut self.outgoing {
            o.bufs.clear();
        }
        self.local.clear();
        self.forwarded = false;
    }
}

pub async fn serve<T: Transport>(core: Rc<Core>, mut stream: T, mut session: Session) {
    let mut buf = vec![0u8; READ_CHUNK];
    let (mut start, mut end) = (0usize, 0usize);
    let mut need = 0usize;
    let mut parser = Parser::new();
    let mut lookahead = Parser::new();
    let mut ahead = Lookahead::default();
    let mut pipe = Pipeline::new(core.nshards(), session.info.id);
    'conn: loop {
        // Make room: drop consumed bytes, and grow once for a large frame.
        if start == end {
            (start, end) = (0, 0);
            if buf.len() > 4 * READ_CHUNK {
                buf = vec![0u8; READ_CHUNK];
            }
        }
        // A frame announced as large grows the buffer as its bytes arrive (at
        // most doubling per read, so copying stays linear), never up front:
        // a header alone must not make the server allocate its length.
        let missing = need.saturating_sub(end - start);
        let want_free = missing.min(buf.len().max(READ_CHUNK)).max(READ_CHUNK / 2);
        if buf.len() - end < want_free {
            if start > 0 {
                buf.copy_within(start..end, 0);
                end -= start;
                start = 0;
            }
            if buf.len() - end < want_free {
                buf.resize(end + want_free, 0);
            }
        }
        let n = match read_input(&core, &mut stream, &mut session, &mut buf[end..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Keyspace notifications waiting to be published past their bound:
        // hold these commands back until they drain (`shard::notify`).
        if crate::shard::notify::backlogged() {
            crate::shard::notify::drained().await;
        }
        end += n;
        session.info.qbuf.set(end - start);
        if (end - start) as i64 > config::client_query_buffer_limit() {
            break;
        }
        {
            let stats = &mut core.clients.borrow_mut().stats;
            stats.net_input_bytes += n as u64;
            stats.reads_processed += 1;
        }
        // The clock of this turn: commands that run without a pause share
        // it; it is read again after anything that may pause the task (other
        // tasks run meanwhile, and no command may see a time before theirs).
        let mut now = crate::util::now_ms();
        session.info.last_ms.set(now);

        let max_bulk = config::proto_max_bulk_len() as usize;
        // Not while the first frame is known to be incomplete: a large one
        // arriving in many reads must not be parsed from its start each time.
        if end - start >= PREFETCH_MIN_INPUT && need <= end - start && session.authenticated {
            ahead.fill(&core, &buf[start..end], session.db, &mut lookahead, max_bulk);
            if ahead.pending() {
                // The queued frames start at `start`, a frame boundary: any
                // progress the parser kept on the first one is moot.
                parser.reset();
            }
        }
        loop {
            // A frame parsed by `ahead.fill`, else the next one parsed here.
            let parsed = match ahead.pop() {
                Some((len, r, ci)) => Ok((len, Args::new(&buf[start..end], &ahead.ranges[r]), ci)),
                None => {
                    parser.unauthenticated = !session.authenticated;
                    match parser.parse(&buf[start..end], max_bulk) {
                        Ok(Parsed::Command { len, source }) => {
                            let base: &[u8] = match source {
                                Source::Buffer => &buf[start..end],
                                Source::Inline => &parser.inline,
                            };
                            Ok((len, Args::new(base, &parser.args), Known::default()))
                        }
                        Ok(other) => Err(Ok(other)),
                        Err(e) => Err(Err(e)),
                    }
                }
            };
            match parsed {
                Ok((len, args, known)) => {
                    dispatch(&core, &mut session, &mut pipe, args, known, &mut now).await;
                    // A long pipeline must not keep the core from its other
                    // connections and peers.
                    if glommio::executor().need_preempt() {
                        glommio::yield_if_needed().await;
                        now = crate::util::now_ms();
                    }
                    start += len;
                    need = 0;
                    if session.blocked.is_some() {
                        if pipe.wrote != 0 {
                            crate::persistence::aof::wait_durable(&core, pipe.wrote).await;
                        }
                        if !wait_blocked(&core, &mut stream, &mut session, &mut buf, &mut end).await {
                            break 'conn;
                        }
                        // Serving it wrote on some shard.
                        pipe.wrote = u64::MAX;
                        now = crate::util::now_ms();
                    }
                    if session.close {
                        break;
                    }
                    if !pipe.forwarded && session.out.len() >= OUT_FLUSH {
                        if reply_out(&core, &mut stream, &mut session.out, &mut pipe).await.is_err() {
                            break 'conn;
                        }
                        now = crate::util::now_ms();
                    }
                }
                Err(Ok(Parsed::Empty { len })) => start += len,
                Err(Ok(Parsed::Incomplete { need: n })) => {
                    need = n;
                    break;
                }
                Err(Ok(Parsed::Command { .. })) => unreachable!("commands are Ok above"),
                Err(Err(e)) => {
                    pipe.finish(&core, session.db, session.proto, &mut session.out).await;
                    session.reply().error(&e.reply());
                    let _ = write_out(&core, &mut stream, &mut session.out).await;
                    break 'conn;
                }
            }
        }
        pipe.finish(&core, session.db, session.proto, &mut session.out).await;
        if !session.info.outbox.is_empty() {
            session.info.outbox.drain_into(&mut session.out);
        }
        if !session.out.is_empty() {
            session.info.obuf.set(session.out.len());
            if reply_out(&core, &mut stream, &mut session.out, &mut pipe).await.is_err() {
                break;
            }
        }
        if session.close || session.info.killed.get() {
            break;
        }
    }
    transactions::forget_watches(&mut session).await;
    pubsub::forget(&mut session);
    tracking::disable(&mut session).await;
    core.clients.borrow_mut().map.remove(&session.info.id);
    super::CONNECTED_CLIENTS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    stream.close().await;
}

/// Reads more input into `buf`. Meanwhile pushes (pub/sub messages) that
/// arrive for the connection are written out as they come.
async fn read_input<T: Transport>(core: &Core, stream: &mut T, s: &mut Session, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        let outbox = &s.info.outbox;
        if !outbox.is_empty() {
            outbox.drain_into(&mut s.out);
            write_out(core, stream, &mut s.out).await?;
            continue;
        }
        // Tracking clients get invalidations while idle too.
        if !outbox.subscribed() && !s.tracking {
            return stream.read(buf).await;
        }
        let read = stream.read(buf);
        let input = futures_lite::future::or(async { Some(read.await) }, async {
            outbox.ready().await;
            None
        });
        if let Some(r) = input.await {
            return r;
        }
    }
}

/// A blocking command (BLPOP, ...) that found no data waits here rather
/// than in its command function, so the socket is watched meanwhile: input
/// is kept in `buf` for after the wait, and a closed connection abandons it.
/// Returns false if the client went away.
async fn wait_blocked<T: Transport>(core: &Core, stream: &mut T, s: &mut Session, buf: &mut Vec<u8>, end: &mut usize) -> bool {
    if !s.out.is_empty() && write_out(core, stream, &mut s.out).await.is_err() {
        blocking::abandon(s).await;
        return false;
    }
    while let Some(b) = s.blocked.as_mut() {
        if buf.len() - *end < READ_CHUNK / 2 {
            buf.resize(*end + READ_CHUNK, 0);
        }
        let read = stream.read(&mut buf[*end..]);
        let event = futures_lite::future::or(async { Err(read.await) }, async { Ok(blocking::next(b).await) }).await;
        match event {
            Ok(ev) => blocking::finish(s, ev).await,
            Err(Ok(n)) if n > 0 && (*end + n) as i64 <= config::client_query_buffer_limit() => *end += n,
            Err(_) => {
                blocking::abandon(s).await;
                return false;
            }
        }
    }
    true
}

/// Input at least this long is likely a pipeline: prefetch its keys.
const PREFETCH_MIN_INPUT: usize = 96;
/// Commands of one read whose keys are prefetched.
const PREFETCH_MAX: usize = 32;

/// What the lookahead learned of a frame.
#[derive(Clone, Copy, Default)]
struct Known {
    /// The command's table index, if it exists.
    ci: Option<u16>,
    /// The core owning the command's first key, if it has keys.
    first_owner: Option<usize>,
}

/// The first complete commands of a read, parsed once for prefetching and
/// then run from here (the main parser resumes after them).
#[derive(Default)]
struct Lookahead {
    /// Each frame's length, its argument ranges in `ranges` (relative to
    /// the frame's start, as `Parser::args`) and what is known of it here,
    /// so dispatch need not find it again.
    frames: Vec<(usize, Range<usize>, Known)>,
    ranges: Vec<Range<usize>>,
    next: usize,
}

impl Lookahead {
    /// Parses ahead through the first complete commands of `whole` and
    /// prefetches the table slots (then the values) of their first keys on
    /// this core, so that executing the pipeline overlaps its cache misses
    /// (the table is far larger than the caches; each lookup otherwise waits
    /// for memory in turn). Stops after a command that runs on the
    /// connection or a container (AUTH, HELLO, SELECT, CONFIG SET, ...): it may change how the
    /// frames after it parse, or which database their keys are in.
    fn fill(&mut self, core: &Core, whole: &[u8], db: usize, p: &mut Parser, max_bulk: usize) {
        self.frames.clear();
        self.ranges.clear();
        self.next = 0;
        let shard = core.shard.try_borrow().ok();
        let db = shard.as_ref().and_then(|s| s.dbs.get(db));
        let many_cores = core.nshards() > 1;
        // Each command's first key, the argument after it, whether the
        // command is on a set or hash (where that argument is a member), and
        // whether the key differs from the previous command's.
        let mut keys: [(&[u8], &[u8], bool, bool); PREFETCH_MAX] = [(&[], &[], false, false); PREFETCH_MAX];
        let mut n = 0;
        let mut at = 0;
        // At most PREFETCH_MAX frames: the queue stays small.
        for _ in 0..PREFETCH_MAX {
            let Ok(Parsed::Command { len, source: Source::Buffer }) = p.parse(&whole[at..], max_bulk) else {
                break;
            };
            let frame = &whole[at..at + len];
            at += len;
            let first = self.ranges.len();
            self.ranges.extend_from_slice(&p.args);
            let args = Args::new(frame, &p.args);
            let ci = commands::lookup(args.get(0));
            self.frames.push((len, first..self.ranges.len(), Known { ci, first_owner: None }));
            let Some(ci) = ci else { break };
            let cmd = commands::by_index(ci);
            if let (Some(db), Some(k)) = (db, cmd.key_indexes(&args).next()) {
                let key = &frame[p.args[k].clone()];
                let owner = core.slots.shard_of_key(key);
                // (A container's subcommand may have other keys.)
                if cmd.subs.is_empty() {
                    self.frames.last_mut().expect("pushed").2.first_owner = Some(owner);
                }
                if !many_cores || owner == core.id {
                    // A pipeline on one key (LPUSH mylist ...) needs it once.
                    let new_key = n == 0 || keys[n - 1].0 != key;
                    if new_key {
                        db.prefetch(key);
                    }
                    let member = p.args.get(k + 1).map_or(&[][..], |r| &frame[r.clone()]);
                    keys[n] = (key, member, matches!(cmd.group, "set" | "hash"), new_key);
                    n += 1;
                }
            }
            if matches!(cmd.run, Run::Conn(_)) || !cmd.subs.is_empty() {
                break;
            }
        }
        p.reset();
        // Second stage: the slots are arriving; start loading the values, and
        // for a set or hash the slot of the member (SADD, HSET, SISMEMBER,
        // HGET, ... name it right after the key; a wrong guess costs a hash).
        let Some(db) = db else { return };
        // The value last looked up: a pipeline on one set looks it up once.
        let mut value: Option<&crate::types::Value> = None;
        let mut values: [Option<&crate::types::Value>; PREFETCH_MAX] = [None; PREFETCH_MAX];
        for (i, &(key, member, collection, new_key)) in keys[..n].iter().enumerate() {
            if !collection {
                if new_key {
                    db.prefetch_value(key);
                }
                continue;
            }
            // `value` is this key's if the command before was on a
            // collection at the same key.
            if new_key || !keys[i - 1].2 {
                value = db.get_ref(key, 0).map(|e| &e.value);
            }
            if let Some(v) = value {
                v.prefetch_member(member);
                values[i] = Some(v);
            }
        }
        // Third stage: the members' slots are arriving; start loading the
        // stored members' bytes, which the commands will compare.
        for (v, &(_, member, _, _)) in values[..n].iter().zip(&keys[..n]) {
            if let Some(v) = v {
                v.prefetch_member_bytes(member);
            }
        }
    }

    fn pending(&self) -> bool {
        self.next < self.frames.len()
    }

    /// The next queued frame: its length, its ranges in `self.ranges` and
    /// what is known of it.
    fn pop(&mut self) -> Option<(usize, Range<usize>, Known)> {
        let f = self.frames.get(self.next)?.clone();
        self.next += 1;
        Some(f)
    }
}

/// Sends the replies, after the writes they acknowledge are durable.
async fn reply_out<T: Transport>(core: &Rc<Core>, stream: &mut T, out: &mut Vec<u8>, pipe: &mut Pipeline) -> std::io::Result<()> {
    if pipe.wrote != 0 {
        crate::persistence::aof::wait_durable(core, pipe.wrote).await;
        pipe.wrote = 0;
    }
    write_out(core, stream, out).await
}

async fn write_out<T: Transport>(core: &Core, stream: &mut T, out: &mut Vec<u8>) -> std::io::Result<()> {
    let len = out.len();
    let r = stream.write_all(out).await;
    {
        let stats = &mut core.clients.borrow_mut().stats;
        stats.net_output_bytes += len as u64;
        stats.writes_processed += 1;
    }
    out.clear();
    if out.capacity() > 4 * OUT_FLUSH {
        *out = Vec::with_capacity(16 * 1024);
    }
    r
}

/// Routes one command: inline, into a batch for another core, or (after the
/// batches before it complete) through its connection-level or multi-shard
/// path. `known` is what the lookahead found of it already; `now` is the
/// turn's clock (see `serve`), read again here after any pause.
async fn dispatch(core: &Rc<Core>, s: &mut Session, pipe: &mut Pipeline, args: Args<'_>, known: Known, now: &mut u64) {
    let Some(mut ci) = known.ci.or_else(|| commands::lookup(args.get(0))) else {
        reject(s, pipe, &commands::unknown_command_error(&args));
        return;
    };
    let mut cmd = commands::by_index(ci);
    // A container's subcommand has its own arity, flags and keys, as in Redis.
    if !cmd.subs.is_empty() && args.len() >= 2 {
        let Some(sub) = commands::lookup_sub(ci, args.get(1)) else {
            reject(s, pipe, &commands::unknown_subcommand_error(&args));
            return;
        };
        ci = sub;
        cmd = commands::by_index(ci);
    }
    if s.tracking {
        tracking::before_command(s, s.info.last_cmd.get());
    }
    s.info.last_cmd.set(cmd.name);
    if !cmd.arity_ok(args.len()) {
        reject(s, pipe, &commands::arity_error(cmd.name));
        return;
    }
    // Redis' authRequired(): a connection that has not authenticated while a
    // password is set (sessions start authenticated when there is none, and
    // stay so if one is set later). The config read is off the common path.
    if !s.authenticated && cmd.flags & commands::flags::NO_AUTH == 0 && !config::get_text("requirepass").is_empty() {
        reject(s, pipe, "NOAUTH Authentication required.");
        return;
    }
    // A RESP2 client in subscribed mode reads pushes, not replies.
    if s.proto == crate::resp::Proto::Resp2 && s.info.outbox.subscribed() && !pubsub::allowed_when_subscribed(cmd.name) {
        let msg = format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            cmd.name
        );
        reject(s, pipe, &msg);
        return;
    }
    if s.proto == crate::resp::Proto::Resp2 && s.info.outbox.subscribed() && cmd.name == "ping" && s.multi.is_none() {
        local_reply(s, pipe, |r| pubsub::subscribed_ping(r, &args));
        return;
    }
    // Redis refuses writes, and PING (so that a health check notices),
    // while background saves fail or the AOF cannot be written (disk full):
    // its processCommand's "is_write_command || pingCommand".
    if crate::persistence::snapshot::writes_refused() && (cmd.is_write() || cmd.name == "ping") {
        reject(s, pipe, crate::persistence::snapshot::MISCONF);
        return;
    }
    if let Some(e) = crate::persistence::aof::misconf() {
        if cmd.is_write() || cmd.name == "ping" {
            reject(s, pipe, &e);
            return;
        }
    }
    // A script past busy-reply-threshold on some core (one relaxed load).
    if crate::scripting::busy() && cmd.flags & commands::flags::ALLOW_BUSY == 0 {
        reject(s, pipe, crate::scripting::busy_error());
        return;
    }
    if s.multi.is_some() && !transactions::runs_inside_multi(cmd.name) {
        if cmd.flags & commands::flags::NO_MULTI != 0 {
            reject(s, pipe, "ERR Command not allowed inside a transaction");
            return;
        }
        transactions::queue(s, ci, &args);
        local_reply(s, pipe, |r| r.simple("QUEUED"));
        return;
    }
    // Like Redis, count only commands that run (not rejected ones), and a
    // connection-level one once done (INFO does not count itself).
    let span_fn = match cmd.run {
        Run::Conn(f) => {
            // Connection-level commands that write may write on any shard
            // (EXEC and blocking commands too, not flagged as writes).
            if cmd.is_write() || cmd.name == "exec" || cmd.flags & (commands::flags::BLOCKING | commands::flags::MAY_REPLICATE) != 0 {
                pipe.wrote = u64::MAX;
            }
            pipe.finish(core, s.db, s.proto, &mut s.out).await;
            f(s, args.to_owned()).await;
            core.clients.borrow_mut().stats.commands_processed += 1;
            *now = crate::util::now_ms();
            return;
        }
        Run::Shard(_) => None,
        Run::Span(_, span) => Some(span),
    };
    if s.tracking {
        tracking::remember(s, cmd, &args).await;
        *now = crate::util::now_ms();
    }
    core.clients.borrow_mut().stats.commands_processed += 1;
    let mut target: Option<usize> = None;
    let mut spans = false;
    for (n, i) in cmd.key_indexes(&args).enumerate() {
        let owner = match known.first_owner {
            Some(o) if n == 0 => o,
            _ => core.slots.shard_of_key(args.get(i)),
        };
        match target {
            None => target = Some(owner),
            Some(t) if t != owner => spans = true,
            _ => {}
        }
    }
    if cmd.is_write() {
        pipe.wrote |= if spans { u64::MAX } else { 1 << (target.unwrap_or(core.id) % 64) };
    }
    // XREAD/XREADGROUP BLOCK: only the coordinator can make the client wait.
    if spans || (cmd.flags & commands::flags::BLOCKING != 0 && commands::streams::read_blocks(&args)) {
        let span = span_fn.expect("multi-key commands that can span cores have a coordinator");
        pipe.finish(core, s.db, s.proto, &mut s.out).await;
        span(s, args.to_owned()).await;
        *now = crate::util::now_ms();
        return;
    }
    let target = target.unwrap_or(core.id);
    // Keyless commands (PING, TIME, ...) observe no data and never wait.
    if cmd.has_keys() && pipe.must_wait(target, cmd.is_write()) {
        pipe.finish(core, s.db, s.proto, &mut s.out).await;
        *now = crate::util::now_ms();
    }
    if target != core.id {
        pipe.forward(target, ci, args, cmd.is_write());
        return;
    }
    let out = if pipe.forwarded { &mut pipe.local } else { &mut s.out };
    let start = out.len();
    if !core.try_run_local(ci, args, s.db, s.proto, s.info.id, *now, out) {
        core.run_local(ci, args, s.db, s.proto, s.info.id, *now, out).await;
        *now = crate::util::now_ms();
    }
    if pipe.forwarded {
        pipe.order.push(Piece::Local(start..pipe.local.len()));
    }
}

/// A reply written on the connection's task, in order with the pipeline's
/// forwarded commands.
fn local_reply(s: &mut Session, pipe: &mut Pipeline, write: impl FnOnce(&mut Reply)) {
    if pipe.forwarded {
        let start = pipe.local.len();
        write(&mut Reply::new(&mut pipe.local, s.proto));
        pipe.order.push(Piece::Local(start..pipe.local.len()));
    } else {
        write(&mut s.reply());
    }
}

/// Refuses a command before it runs; inside MULTI that dooms the EXEC.
fn reject(s: &mut Session, pipe: &mut Pipeline, msg: &str) {
    transactions::flag_error(s);
    local_reply(s, pipe, |r| r.error(msg));
}
