//! One core of the server: its shard, its clients, and its links to the other
//! cores. Cores talk only by messages over a glommio channel mesh; a reply
//! comes back on a oneshot carried in the message (so a core draining its
//! inbox never blocks sending on the same mesh).

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;

use futures_channel::oneshot;
use glommio::channels::channel_mesh::{Receivers, Senders};

use crate::cluster::SlotMap;
use crate::commands::{self, Args, Ctx};
use crate::resp::Proto;
use crate::server::clients::Clients;
use crate::commands::flags;
use crate::shard::journal;
use crate::shard::tracking;
use crate::shard::locks::{LockSet, LockTable, Mode};
use crate::shard::Shard;

pub type AnyBox = Box<dyn Any + Send>;
pub type CallFn = Box<dyn FnOnce(&Rc<Core>) -> AnyBox + Send>;
/// Starts a task on the receiving core (work that may wait there, such as a
/// script under its locks).
pub type TaskFn = Box<dyn FnOnce(Rc<Core>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> + Send>;

/// Single-shard commands from one pipeline, forwarded together to their shard.
pub struct Batch {
    pub db: usize,
    pub proto: Proto,
    /// The sending client's id (NOLOOP tracking, `shard::tracking`).
    pub client: u64,
    pub bufs: BatchBufs,
    /// Gets `bufs` back with the replies filled in.
    pub reply: oneshot::Sender<BatchBufs>,
}

/// A batch's commands and, once it has run, their replies. Every buffer is
/// allocated by the sending core and goes back to it with the replies, to be
/// reused: cores never free what another core allocated, which glibc's
/// malloc serializes on the allocating arena's lock (futex waits under
/// `--threads 2`).
#[derive(Default)]
pub struct BatchBufs {
    /// All argument bytes of all commands, back to back.
    pub data: Vec<u8>,
    /// Argument ranges into `data`.
    pub ranges: Vec<std::ops::Range<usize>>,
    /// Per command: table index and number of arguments.
    pub cmds: Vec<(u16, u32)>,
    /// The encoded replies, back to back, and where each one ends.
    pub out: Vec<u8>,
    pub ends: Vec<usize>,
}

impl BatchBufs {
    /// Empties the buffers for reuse, keeping their memory unless a large
    /// batch left them big (a connection keeps its buffers while it lives).
    pub fn clear(&mut self) {
        const KEEP: usize = 64 * 1024;
        if self.data.capacity() > KEEP || self.out.capacity() > KEEP {
            *self = BatchBufs::default();
            return;
        }
        self.data.clear();
        self.ranges.clear();
        self.cmds.clear();
        self.out.clear();
        self.ends.clear();
    }
}

pub enum Msg {
    Batch(Batch),
    /// Run a closure on the receiving core (fan-out, transaction steps).
    Call(CallFn, oneshot::Sender<AnyBox>),
    Task(TaskFn),
    /// Take a transaction's locks; the sender fires once they are held.
    Lock(u64, LockSet, oneshot::Sender<()>),
    /// Take a transaction's locks, run a step once they are held and answer
    /// its result; then release them if `release` (`Txn::run_locked`).
    LockRun { txid: u64, set: LockSet, step: CallFn, release: bool, reply: oneshot::Sender<AnyBox> },
    Unlock(u64),
}

pub struct Core {
    pub id: usize,
    pub slots: SlotMap,
    pub shard: RefCell<Shard>,
    pub clients: RefCell<Clients>,
    /// Subscriptions of this core's connections (`server::pubsub`).
    pub pubsub: RefCell<crate::server::pubsub::PubSub>,
    peers: Senders<Msg>,
    next_txid: std::cell::Cell<u64>,
}

impl Core {
    pub fn new(id: usize, slots: SlotMap, shard: Shard, peers: Senders<Msg>) -> Rc<Core> {
        Rc::new(Core {
            id,
            slots,
            shard: RefCell::new(shard),
            clients: RefCell::new(Clients::default()),
            pubsub: Default::default(),
            peers,
            next_txid: std::cell::Cell::new(1),
        })
    }

    pub fn nshards(&self) -> usize {
        self.slots.shards()
    }

    /// A transaction id unique across cores (core id in the top bits).
    pub fn new_txid(&self) -> u64 {
        let n = self.next_txid.get();
        self.next_txid.set(n + 1);
        ((self.id as u64) << 48) | n
    }

    pub async fn send(&self, to: usize, msg: Msg) {
        if self.peers.send_to(to, msg).await.is_err() {
            panic!("core {} lost its channel to core {}", self.id, to);
        }
    }

    /// Runs `f` on core `to` (inline when it is this core) and returns its result.
    pub async fn call<T: Send + 'static>(self: &Rc<Self>, to: usize, f: impl FnOnce(&Rc<Core>) -> T + Send + 'static) -> T {
        if to == self.id {
            return f(self);
        }
        let (tx, rx) = oneshot::channel();
        self.send(to, Msg::Call(Box::new(move |c| Box::new(f(c)) as AnyBox), tx)).await;
        let any = rx.await.expect("peer core dropped a call");
        *any.downcast::<T>().expect("call result type")
    }

    /// Runs the future `f` builds as a task on core `to` (this core
    /// included) and returns its output.
    pub async fn run_on<T, F>(self: &Rc<Self>, to: usize, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(Rc<Core>) -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>> + Send + 'static,
    {
        if to == self.id {
            return f(self.clone()).await;
        }
        let (tx, rx) = oneshot::channel();
        let task: TaskFn = Box::new(move |c| {
            Box::pin(async move {
                let _ = tx.send(f(c).await);
            })
        });
        self.send(to, Msg::Task(task)).await;
        rx.await.expect("peer core dropped a task")
    }

    /// Runs `f` on every core, concurrently, and returns the results by core id.
    pub async fn call_all<T: Send + 'static>(self: &Rc<Self>, f: impl Fn(&Rc<Core>) -> T + Send + Clone + 'static) -> Vec<T> {
        let mut pending = Vec::with_capacity(self.nshards());
        for to in 0..self.nshards() {
            if to == self.id {
                continue;
            }
            let (tx, rx) = oneshot::channel();
            let g = f.clone();
            self.send(to, Msg::Call(Box::new(move |c| Box::new(g(c)) as AnyBox), tx)).await;
            pending.push((to, rx));
        }
        let mine = f(self);
        let mut out: Vec<Option<T>> = (0..self.nshards()).map(|_| None).collect();
        out[self.id] = Some(mine);
        for (to, rx) in pending {
            let any = rx.await.expect("peer core dropped a call");
            out[to] = Some(*any.downcast::<T>().expect("call result type"));
        }
        out.into_iter().map(|o| o.expect("every core answered")).collect()
    }

    /// Serves one peer's inbox for ever.
    pub async fn serve_peer(self: Rc<Self>, receivers: Rc<Receivers<Msg>>, peer: usize) {
        while let Ok(Some(msg)) = receivers.recv_from(peer).await {
            match msg {
                Msg::Batch(b) => self.run_batch(b),
                Msg::Call(f, reply) => {
                    let _ = reply.send(f(&self));
                }
                Msg::Task(f) => {
                    glommio::spawn_local(f(self.clone())).detach();
                }
                Msg::Lock(txid, set, granted) => {
                    let rx = self.shard.borrow_mut().locks.acquire(txid, set);
                    // Forward the grant without blocking this inbox.
                    glommio::spawn_local(async move {
                        if rx.await.is_ok() {
                            let _ = granted.send(());
                        }
                    })
                    .detach();
                }
                Msg::LockRun { txid, set, step, release, reply } => {
                    let mut granted = self.shard.borrow_mut().locks.acquire(txid, set);
                    if let Ok(Some(())) = granted.try_recv() {
                        let _ = reply.send(self.step_locked(txid, step, release));
                    } else {
                        let core = self.clone();
                        glommio::spawn_local(async move {
                            if granted.await.is_ok() {
                                let _ = reply.send(core.step_locked(txid, step, release));
                            }
                        })
                        .detach();
                    }
                }
                Msg::Unlock(txid) => {
                    let mut shard = self.shard.borrow_mut();
                    shard.locks.release(txid);
                    shard.serve_blocked();
                }
            }
        }
    }

    /// Runs a transaction's step under its granted locks, releasing them after if `release`.
    fn step_locked(self: &Rc<Self>, txid: u64, step: CallFn, release: bool) -> AnyBox {
        let out = step(self);
        if release {
            let mut shard = self.shard.borrow_mut();
            shard.locks.release(txid);
            shard.serve_blocked();
        }
        out
    }

    /// Executes a forwarded batch. Commands whose keys are locked by an
    /// in-flight transaction wait for it on a separate task, so this inbox
    /// (which may carry that transaction's next step) keeps moving.
    fn run_batch(self: &Rc<Self>, mut b: Batch) {
        self.prefetch_batch(&b);
        // One clock read for the batch: it runs without a pause.
        let now = crate::util::now_ms();
        let mut out = std::mem::take(&mut b.bufs.out);
        let mut at = 0;
        for (i, &(ci, argc)) in b.bufs.cmds.iter().enumerate() {
            let args = Args::new(&b.bufs.data, &b.bufs.ranges[at..at + argc as usize]);
            if !self.try_run_local(ci, args, b.db, b.proto, b.client, now, &mut out) {
                let core = self.clone();
                glommio::spawn_local(async move { core.finish_batch(b, i, at, out).await }).detach();
                return;
            }
            b.bufs.ends.push(out.len());
            at += argc as usize;
        }
        b.bufs.out = out;
        let _ = b.reply.send(b.bufs);
    }

    /// Prefetches the table slots, then the values, of the batch's first
    /// keys (as `connection::prefetch_keys` does for a local pipeline).
    fn prefetch_batch(&self, b: &Batch) {
        const MAX: usize = 32;
        if b.bufs.cmds.len() < 2 {
            return;
        }
        let Ok(shard) = self.shard.try_borrow() else { return };
        let Some(db) = shard.dbs.get(b.db) else { return };
        let mut keys: [&[u8]; MAX] = [&[]; MAX];
        let (mut n, mut at) = (0, 0);
        for &(ci, argc) in b.bufs.cmds.iter().take(MAX) {
            let args = Args::new(&b.bufs.data, &b.bufs.ranges[at..at + argc as usize]);
            if let Some(k) = commands::by_index(ci).key_indexes(&args).next() {
                let r = &b.bufs.ranges[at + k];
                keys[n] = &b.bufs.data[r.clone()];
                db.prefetch(keys[n]);
                n += 1;
            }
            at += argc as usize;
        }
        for key in &keys[..n] {
            db.prefetch_value(key);
        }
    }

    async fn finish_batch(self: Rc<Self>, mut b: Batch, from: usize, mut at: usize, mut out: Vec<u8>) {
        for &(ci, argc) in &b.bufs.cmds[from..] {
            let args = Args::new(&b.bufs.data, &b.bufs.ranges[at..at + argc as usize]);
            self.run_local(ci, args, b.db, b.proto, b.client, crate::util::now_ms(), &mut out).await;
            b.bufs.ends.push(out.len());
            at += argc as usize;
        }
        b.bufs.out = out;
        let _ = b.reply.send(b.bufs);
    }

    /// Runs a single-shard command on this core's shard unless a held or
    /// queued lock conflicts with it; returns false (having done nothing) then.
    /// `client` is the id of the client that sent it. `now` is the request's
    /// clock (`Ctx::now`): read by the caller since it last paused, so that
    /// no command another task ran meanwhile is later than it; a pipeline
    /// reads it once per turn rather than once per command.
    #[allow(clippy::too_many_arguments)]
    pub fn try_run_local(&self, ci: u16, args: Args, db: usize, proto: Proto, client: u64, now: u64, out: &mut Vec<u8>) -> bool {
        let cmd = commands::by_index(ci);
        let mut shard = self.shard.borrow_mut();
        if !shard.locks.is_idle() && !may_run(&shard.locks, cmd, args, db) {
            return false;
        }
        tracking::as_caller(client, || journal::run(f_of(cmd), cmd, &mut Ctx::at(&mut shard, db, now), out, proto, args));
        shard.serve_blocked();
        true
    }

    /// Runs a single-shard command here, waiting for conflicting locks first
    /// (`now` as for `try_run_local`; after a wait the clock is read again).
    #[allow(clippy::too_many_arguments)]
    pub async fn run_local(&self, ci: u16, args: Args<'_>, db: usize, proto: Proto, client: u64, now: u64, out: &mut Vec<u8>) {
        if self.try_run_local(ci, args, db, proto, client, now, out) {
            return;
        }
        let cmd = commands::by_index(ci);
        let txid = self.new_txid();
        let set = LockSet {
            db,
            keys: cmd.key_indexes(&args).map(|i| args.get(i).into()).collect(),
            mode: lock_mode(cmd),
            whole_shard: cmd.flags & flags::OTHER_DB != 0,
        };
        let rx = self.shard.borrow_mut().locks.acquire(txid, set);
        let _ = rx.await;
        // Holding the locks, nothing can conflict; run, then let others in.
        let mut shard = self.shard.borrow_mut();
        tracking::as_caller(client, || journal::run(f_of(cmd), cmd, &mut Ctx::new(&mut shard, db), out, proto, args));
        shard.locks.release(txid);
        shard.serve_blocked();
    }
}

fn f_of(cmd: &commands::Command) -> commands::ShardFn {
    match cmd.run {
        commands::Run::Shard(f) | commands::Run::Span(f, _) => f,
        commands::Run::Conn(_) => unreachable!("connection commands are not routed to shards"),
    }
}

/// Lock check of a single-shard command. Keyless ones (PING, TIME, ...) touch
/// no data and always run; MOVE/COPY reach into other databases and run only
/// when no lock is in flight on the shard.
fn may_run(locks: &LockTable, cmd: &commands::Command, args: Args, db: usize) -> bool {
    if !cmd.has_keys() {
        return true;
    }
    if cmd.flags & flags::OTHER_DB != 0 {
        return locks.is_idle();
    }
    let mut keys: [&[u8]; 8] = [&[]; 8];
    let mut n = 0;
    for i in cmd.key_indexes(&args) {
        if n == keys.len() {
            // Many keys: check them in chunks without allocating.
            if !locks.may_run(db, &keys, lock_mode(cmd)) {
                return false;
            }
            n = 0;
        }
        keys[n] = args.get(i);
        n += 1;
    }
    locks.may_run(db, &keys[..n], lock_mode(cmd))
}

pub fn lock_mode(cmd: &commands::Command) -> Mode {
    if cmd.is_write() {
        Mode::Exclusive
    } else {
        Mode::Shared
    }
}
