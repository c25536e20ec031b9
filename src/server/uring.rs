//! The completion-based network path for client connections (`io-engine
//! uring`), beside glommio's executor.
//!
//! Why: glommio's `TcpStream` is readiness-based. Every read that does not fill
//! the buffer arms a one-shot poll on glommio's main ring, and that ring has no
//! setup flags, so each poll completion arrives as task_work with TWA_SIGNAL
//! (a reschedule IPI when the core is busy). At pipeline 1 that costs more CPU
//! per request than Redis' epoll loop (see shared/GLOMMIO-NOTES.md).
//!
//! What: each core owns one extra io_uring ([`Ring`]), created on the
//! executor thread with SINGLE_ISSUER | COOP_TASKRUN | TASKRUN_FLAG, so the
//! kernel never interrupts a running core to deliver completions: they wait
//! for its next system call, and the TASKRUN flag says when to ask for them.
//! (Not DEFER_TASKRUN: on Linux 6.18 a DEFER_TASKRUN ring's eventfd signal
//! reaches a READ of that eventfd on glommio's ring only when glommio next
//! wakes for something else — a timer, up to 10-16 ms later — so every
//! request that found the core asleep waited that long; measured with
//! redis-benchmark -c 1: 16 ms per PING, against 0.04 ms with COOP_TASKRUN.)
//! On that ring:
//! - every connection has one multishot RECV into a ring of provided buffers
//!   (armed once, it stays armed); a completion's bytes are copied into the
//!   connection's input queue and the buffer goes back to the kernel at once,
//!   so the buffers never run out because a connection task is slow;
//! - replies go out as SEND requests, at most one in flight per connection
//!   (more output queues behind it), all submitted together with the next
//!   reap in one `io_uring_enter` per turn.
//!
//! glommio stays the executor: the ring is driven by a glommio task
//! ([`drive`]). A turn submits what connections queued, runs the pending
//! completions, copies data out and wakes the connection tasks. After a turn
//! that did something the driver waits for glommio's next reactor poll (a
//! 1 µs glommio timer), so glommio's own I/O, timers and cross-core channels
//! keep being served and new data is picked up without any wakeup from the
//! kernel. After a turn that found nothing it sleeps: the ring's eventfd is
//! enabled and the driver awaits an io_uring READ of that eventfd issued
//! through glommio (a `BufferedFile` whose descriptor is pointed at the
//! eventfd — glommio has no public fd-readiness API, but reads any descriptor
//! it owns). Connection tasks that queue a request wake the driver directly.
//!
//! Bounds: at most [`IN_HIGH`] unread input bytes per connection before its
//! receive is cancelled (re-armed once the task has taken the input), and a
//! writer waits for its output to drain once more than [`OUT_HIGH`] bytes are
//! unsent. A connection's slot (and the buffers the kernel may still be
//! reading from) lives until every request on it has completed.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{fence, AtomicU16, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types, IoUring};

/// Size of one provided receive buffer.
const BUF_SIZE: usize = 4096;
/// Provided buffers per core (a power of two).
const BUF_COUNT: u16 = 1024;
const BUF_GROUP: u16 = 0;
const SQ_ENTRIES: u32 = 1024;
const CQ_ENTRIES: u32 = 8192;
/// Unread input per connection at which its receive is paused.
pub const IN_HIGH: usize = 1 << 20;
/// Unsent output per connection above which a writer waits for it to drain.
pub const OUT_HIGH: usize = 256 * 1024;
/// Connection buffers larger than this are released once empty.
const SHRINK_ABOVE: usize = 64 * 1024;

const OP_RECV: u64 = 1;
const OP_SEND: u64 = 2;
const OP_CANCEL: u64 = 3;
const GEN_MASK: u32 = 0xff_ffff;

fn user_data(slot: u32, gen: u32, op: u64) -> u64 {
    ((slot as u64) << 32) | ((gen as u64) << 8) | op
}

/// The provided-buffer ring: BUF_COUNT entries shared with the kernel and the
/// memory they point into.
struct BufRing {
    entries: *mut types::BufRingEntry,
    mem: *mut u8,
    tail: u16,
}

impl BufRing {
    fn entries_layout() -> std::alloc::Layout {
        std::alloc::Layout::from_size_align(BUF_COUNT as usize * std::mem::size_of::<types::BufRingEntry>(), 4096)
            .expect("buffer ring layout")
    }
    fn mem_layout() -> std::alloc::Layout {
        std::alloc::Layout::from_size_align(BUF_COUNT as usize * BUF_SIZE, 4096).expect("buffer memory layout")
    }

    fn new() -> BufRing {
        // SAFETY: non-zero sizes; failures are checked.
        let (entries, mem) = unsafe {
            (std::alloc::alloc_zeroed(Self::entries_layout()), std::alloc::alloc(Self::mem_layout()))
        };
        if entries.is_null() || mem.is_null() {
            std::alloc::handle_alloc_error(Self::mem_layout());
        }
        let mut ring = BufRing { entries: entries.cast(), mem, tail: 0 };
        for bid in 0..BUF_COUNT {
            ring.recycle(bid);
        }
        ring.publish();
        ring
    }

    fn buf(&self, bid: u16, len: usize) -> &[u8] {
        debug_assert!(bid < BUF_COUNT && len <= BUF_SIZE);
        // SAFETY: the kernel handed buffer `bid` back with `len` bytes written;
        // it does not touch it again until it is recycled.
        unsafe { std::slice::from_raw_parts(self.mem.add(bid as usize * BUF_SIZE), len) }
    }

    /// Gives buffer `bid` back to the kernel (visible after `publish`).
    fn recycle(&mut self, bid: u16) {
        let idx = (self.tail & (BUF_COUNT - 1)) as usize;
        // SAFETY: idx < BUF_COUNT; the kernel reads entries only up to the
        // published tail, and this one is past it.
        let e = unsafe { &mut *self.entries.add(idx) };
        e.set_addr(self.mem as u64 + bid as u64 * BUF_SIZE as u64);
        e.set_len(BUF_SIZE as u32);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail shares the first entry's reserved field; the kernel
        // reads it with acquire semantics.
        unsafe {
            let tail = types::BufRingEntry::tail(self.entries) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with these layouts; the ring that used
        // them (dropped first, see `Inner`) no longer exists.
        unsafe {
            std::alloc::dealloc(self.entries.cast(), Self::entries_layout());
            std::alloc::dealloc(self.mem, Self::mem_layout());
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Recv {
    Off,
    Armed,
    /// A cancel is on its way; the final completion turns it Off.
    Cancelling,
}

/// One connection's state on the ring. The slot outlives its task until the
/// kernel has finished every request that refers to it.
struct Conn {
    gen: u32,
    in_use: bool,
    fd: RawFd,
    /// Received, not yet read by the task: `input[pos..]`.
    input: Vec<u8>,
    pos: usize,
    recv: Recv,
    paused: bool,
    eof: bool,
    err: Option<i32>,
    reader: Option<Waker>,
    /// Output the kernel is sending (`sending[sent..]`); untouched while a
    /// SEND is in flight.
    sending: Vec<u8>,
    sent: usize,
    send_inflight: bool,
    /// Output written while a SEND is in flight.
    queued: Vec<u8>,
    writer: Option<Waker>,
    /// The task is gone (the descriptor is closed).
    released: bool,
    /// Requests the kernel still holds for this slot.
    inflight: u32,
}

impl Conn {
    fn empty() -> Conn {
        Conn {
            gen: 0,
            in_use: false,
            fd: -1,
            input: Vec::new(),
            pos: 0,
            recv: Recv::Off,
            paused: false,
            eof: false,
            err: None,
            reader: None,
            sending: Vec::new(),
            sent: 0,
            send_inflight: false,
            queued: Vec::new(),
            writer: None,
            released: false,
            inflight: 0,
        }
    }

    fn unread(&self) -> usize {
        self.input.len() - self.pos
    }

    fn unsent(&self) -> usize {
        self.sending.len() - self.sent + self.queued.len()
    }
}

struct Inner {
    // Field order matters: the ring is dropped (and the kernel lets go of the
    // buffer ring) before the buffers are freed.
    uring: IoUring,
    bufs: BufRing,
    evfd: RawFd,
    conns: Vec<Conn>,
    free: Vec<u32>,
    /// Requests not yet in the submission queue.
    pending: Vec<squeue::Entry>,
    driver: Option<Waker>,
    kicked: bool,
}

/// One core's connection ring.
pub struct Ring {
    inner: RefCell<Inner>,
}

impl Ring {
    /// Creates the ring; must run on the executor thread that will drive it
    /// (the ring accepts requests from its creating thread only).
    pub fn new() -> io::Result<Rc<Ring>> {
        let uring = IoUring::builder()
            .setup_single_issuer()
            .setup_coop_taskrun()
            .setup_taskrun_flag()
            .setup_submit_all()
            .setup_cqsize(CQ_ENTRIES)
            .build(SQ_ENTRIES)?;
        let bufs = BufRing::new();
        // SAFETY: the entries stay allocated until after the ring is dropped.
        unsafe {
            uring.submitter().register_buf_ring_with_flags(bufs.entries as u64, BUF_COUNT, BUF_GROUP, 0)?;
        }
        // SAFETY: plain eventfd(2); blocking, so that an io_uring READ of it
        // waits for a signal instead of failing with EAGAIN.
        let evfd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if evfd < 0 {
            return Err(io::Error::last_os_error());
        }
        uring.submitter().register_eventfd(evfd)?;
        let mut uring = uring;
        uring.completion().disable_eventfd();
        Ok(Rc::new(Ring {
            inner: RefCell::new(Inner {
                uring,
                bufs,
                evfd,
                conns: Vec::new(),
                free: Vec::new(),
                pending: Vec::new(),
                driver: None,
                kicked: false,
            }),
        }))
    }

    /// Takes over a connected socket (the ring closes it) and starts
    /// receiving on it.
    pub fn register(self: &Rc<Self>, fd: RawFd) -> RingStream {
        let mut inner = self.inner.borrow_mut();
        let slot = match inner.free.pop() {
            Some(s) => s,
            None => {
                inner.conns.push(Conn::empty());
                (inner.conns.len() - 1) as u32
            }
        };
        let c = &mut inner.conns[slot as usize];
        let gen = c.gen;
        *c = Conn { gen, in_use: true, fd, ..Conn::empty() };
        inner.arm_recv(slot);
        inner.kick();
        RingStream { ring: self.clone(), slot, gen, released: false }
    }

    /// One turn: submit queued requests, run pending completions, dispatch
    /// them. Returns whether anything happened.
    fn turn(&self, waker: &Waker) -> bool {
        let mut inner = self.inner.borrow_mut();
        let inner = &mut *inner;
        inner.kicked = false;
        if !inner.driver.as_ref().is_some_and(|w| w.will_wake(waker)) {
            inner.driver = Some(waker.clone());
        }
        let mut busy = false;
        for _ in 0..64 {
            inner.flush_pending();
            let (sq_len, flags) = {
                let sq = inner.uring.submission();
                let mut flags = 0;
                if sq.taskrun() || sq.cq_overflow() {
                    flags |= io_uring::EnterFlags::GETEVENTS.bits();
                }
                (sq.len(), flags)
            };
            if sq_len > 0 || flags != 0 {
                busy = true;
                // SAFETY: plain io_uring_enter on our own ring.
                let r = unsafe { inner.uring.submitter().enter::<libc::sigset_t>(sq_len as u32, 0, flags, None) };
                if let Err(e) = r {
                    match e.raw_os_error() {
                        // Interrupted, or the completion queue is full:
                        // reap below and come back.
                        Some(libc::EINTR) | Some(libc::EAGAIN) | Some(libc::EBUSY) => {}
                        _ => panic!("io_uring_enter on the connection ring failed: {e}"),
                    }
                }
            }
            let reaped = inner.reap();
            busy |= reaped > 0;
            if reaped == 0 && inner.pending.is_empty() && inner.uring.submission().is_empty() && !inner.uring.submission().taskrun() {
                break;
            }
        }
        busy
    }

    /// Before sleeping: enables the eventfd signal, then re-checks for work
    /// that arrived while it was off (that work signalled nothing). Returns
    /// whether the driver may sleep.
    fn arm_sleep(&self) -> bool {
        let mut inner = self.inner.borrow_mut();
        inner.uring.completion().enable_eventfd();
        fence(Ordering::SeqCst);
        let has_work = !inner.pending.is_empty() || inner.kicked || {
            let sq = inner.uring.submission();
            !sq.is_empty() || sq.taskrun() || sq.cq_overflow()
        } || !inner.uring.completion().is_empty();
        if has_work {
            inner.uring.completion().disable_eventfd();
        }
        !has_work
    }

    fn wake_up(&self) {
        self.inner.borrow_mut().uring.completion().disable_eventfd();
    }

    fn evfd(&self) -> RawFd {
        self.inner.borrow().evfd
    }

    fn poll_read(&self, slot: u32, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut inner = self.inner.borrow_mut();
        let inner = &mut *inner;
        let c = &mut inner.conns[slot as usize];
        if c.unread() > 0 {
            let n = c.unread().min(buf.len());
            buf[..n].copy_from_slice(&c.input[c.pos..c.pos + n]);
            c.pos += n;
            if c.pos == c.input.len() {
                c.input.clear();
                c.pos = 0;
                if c.input.capacity() > SHRINK_ABOVE {
                    c.input = Vec::new();
                }
                if c.paused {
                    c.paused = false;
                    if c.recv == Recv::Off && !c.eof && c.err.is_none() {
                        inner.arm_recv(slot);
                        inner.kick();
                    }
                }
            }
            return Poll::Ready(Ok(n));
        }
        if let Some(e) = c.err {
            return Poll::Ready(Err(io::Error::from_raw_os_error(e)));
        }
        if c.eof {
            return Poll::Ready(Ok(0));
        }
        if !c.reader.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            c.reader = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Queues `out` for sending and leaves it empty; returns whether the
    /// writer should wait for the output to drain.
    fn queue_write(&self, slot: u32, out: &mut Vec<u8>) -> io::Result<bool> {
        let mut inner = self.inner.borrow_mut();
        let inner = &mut *inner;
        let c = &mut inner.conns[slot as usize];
        if let Some(e) = c.err {
            out.clear();
            return Err(io::Error::from_raw_os_error(e));
        }
        if out.is_empty() {
            return Ok(false);
        }
        if !c.send_inflight && c.sending.is_empty() {
            std::mem::swap(out, &mut c.sending);
            c.sent = 0;
            inner.send_next(slot);
            inner.kick();
        } else if c.queued.is_empty() {
            std::mem::swap(out, &mut c.queued);
        } else {
            c.queued.extend_from_slice(out);
            out.clear();
        }
        Ok(inner.conns[slot as usize].unsent() > OUT_HIGH)
    }

    /// Ready once every byte written so far is sent (or sending failed).
    fn poll_drained(&self, slot: u32, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut inner = self.inner.borrow_mut();
        let c = &mut inner.conns[slot as usize];
        if let Some(e) = c.err {
            return Poll::Ready(Err(io::Error::from_raw_os_error(e)));
        }
        if c.unsent() == 0 {
            return Poll::Ready(Ok(()));
        }
        c.writer = Some(cx.waker().clone());
        Poll::Pending
    }

    /// The task is done with the connection: close the descriptor, cancel
    /// the receive; the slot is freed once the kernel has let go of it.
    fn release(&self, slot: u32) {
        let mut inner = self.inner.borrow_mut();
        let inner = &mut *inner;
        let c = &mut inner.conns[slot as usize];
        c.released = true;
        c.reader = None;
        c.writer = None;
        // The descriptor is closed only when the slot is freed: a request
        // queued but not yet submitted names it by number, and a number
        // closed early could already belong to the next accepted socket.
        if c.recv == Recv::Armed {
            inner.cancel_recv(slot);
            inner.kick();
        }
        inner.maybe_free(slot);
    }
}

impl Inner {
    fn kick(&mut self) {
        if !self.kicked {
            self.kicked = true;
            if let Some(w) = &self.driver {
                w.wake_by_ref();
            }
        }
    }

    fn push(&mut self, e: squeue::Entry) {
        self.pending.push(e);
    }

    fn flush_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut sq = self.uring.submission();
        let room = sq.capacity() - sq.len();
        let n = room.min(self.pending.len());
        // SAFETY: every entry points at memory that outlives its request
        // (connection buffers live in slots freed only after completion).
        unsafe {
            sq.push_multiple(&self.pending[..n]).expect("room was checked");
        }
        drop(sq);
        self.pending.drain(..n);
    }

    fn arm_recv(&mut self, slot: u32) {
        let c = &mut self.conns[slot as usize];
        let e = opcode::RecvMulti::new(types::Fd(c.fd), BUF_GROUP).build().user_data(user_data(slot, c.gen, OP_RECV));
        c.recv = Recv::Armed;
        c.inflight += 1;
        self.push(e);
    }

    fn cancel_recv(&mut self, slot: u32) {
        let c = &mut self.conns[slot as usize];
        let e = opcode::AsyncCancel::new(user_data(slot, c.gen, OP_RECV))
            .build()
            .user_data(user_data(slot, c.gen, OP_CANCEL));
        c.recv = Recv::Cancelling;
        c.inflight += 1;
        self.push(e);
    }

    /// Starts a SEND of `sending[sent..]`.
    fn send_next(&mut self, slot: u32) {
        let c = &mut self.conns[slot as usize];
        let rest = &c.sending[c.sent..];
        // SAFETY (of the pointer's lifetime): `sending` is not touched while
        // the SEND is in flight, and the slot keeps it until completion.
        let e = opcode::Send::new(types::Fd(c.fd), rest.as_ptr(), rest.len() as u32)
            .flags(libc::MSG_NOSIGNAL | libc::MSG_WAITALL)
            .build()
            .user_data(user_data(slot, c.gen, OP_SEND));
        c.send_inflight = true;
        c.inflight += 1;
        self.push(e);
    }

    fn maybe_free(&mut self, slot: u32) {
        let c = &mut self.conns[slot as usize];
        if c.released && c.inflight == 0 && c.in_use {
            // SAFETY: the descriptor is ours and no request refers to it.
            unsafe { libc::close(c.fd) };
            let gen = (c.gen + 1) & GEN_MASK;
            *c = Conn { gen, ..Conn::empty() };
            self.free.push(slot);
        }
    }

    /// Dispatches every completion in the queue; returns how many.
    fn reap(&mut self) -> usize {
        let mut n = 0;
        let mut recycled = false;
        loop {
            // Copy the entries out so that handling them may touch the ring.
            let mut batch: [std::mem::MaybeUninit<cqueue::Entry>; 64] = [const { std::mem::MaybeUninit::uninit() }; 64];
            let got = {
                let mut cq = self.uring.completion();
                cq.fill(&mut batch).len()
            };
            if got == 0 {
                break;
            }
            for e in &batch[..got] {
                // SAFETY: `fill` initialised the first `got` entries.
                let e = unsafe { e.assume_init_ref() };
                recycled |= self.complete(e.user_data(), e.result(), e.flags());
            }
            n += got;
        }
        if recycled {
            self.bufs.publish();
        }
        n
    }

    /// Handles one completion; returns whether it recycled a buffer.
    fn complete(&mut self, ud: u64, res: i32, flags: u32) -> bool {
        let slot = (ud >> 32) as usize;
        let gen = ((ud >> 8) as u32) & GEN_MASK;
        let op = ud & 0xff;
        let bid = cqueue::buffer_select(flags);
        let live = slot < self.conns.len() && self.conns[slot].in_use && self.conns[slot].gen == gen;
        if !live {
            // Cannot happen (slots live until their last completion), but a
            // buffer must never leak.
            if let Some(bid) = bid {
                self.bufs.recycle(bid);
                return true;
            }
            return false;
        }
        let slot32 = slot as u32;
        match op {
            OP_RECV => {
                let more = cqueue::more(flags);
                let c = &mut self.conns[slot];
                if res > 0 {
                    if let Some(bid) = bid {
                        if !c.released {
                            c.input.extend_from_slice(self.bufs.buf(bid, res as usize));
                        }
                        self.bufs.recycle(bid);
                    }
                } else if res == 0 {
                    c.eof = true;
                } else if res != -libc::ECANCELED && res != -libc::ENOBUFS && c.err.is_none() {
                    // A real error (running out of buffers only ends the
                    // receive, which is re-armed below).
                    c.err = Some(-res);
                }
                let c = &mut self.conns[slot];
                if let Some(w) = c.reader.take() {
                    w.wake();
                }
                if !more {
                    c.inflight -= 1;
                    c.recv = Recv::Off;
                    if !c.released && !c.paused && !c.eof && c.err.is_none() {
                        self.arm_recv(slot32);
                    }
                } else if c.unread() > IN_HIGH && c.recv == Recv::Armed && !c.released {
                    c.paused = true;
                    self.cancel_recv(slot32);
                }
                self.maybe_free(slot32);
                return bid.is_some();
            }
            OP_SEND => {
                let c = &mut self.conns[slot];
                c.inflight -= 1;
                c.send_inflight = false;
                if res < 0 {
                    if c.err.is_none() {
                        c.err = Some(-res);
                    }
                    c.sending.clear();
                    c.queued.clear();
                    c.sent = 0;
                    if let Some(w) = c.reader.take() {
                        w.wake();
                    }
                } else {
                    c.sent += res as usize;
                    if c.sent < c.sending.len() && !c.released {
                        self.send_next(slot32);
                    } else if c.sent < c.sending.len() {
                        // The task dropped the stream without closing it:
                        // nobody waits for this output any more.
                        c.sending.clear();
                        c.queued.clear();
                        c.sent = 0;
                    } else {
                        c.sending.clear();
                        c.sent = 0;
                        if c.sending.capacity() > SHRINK_ABOVE {
                            c.sending = Vec::new();
                        }
                        if !c.queued.is_empty() && !c.released {
                            std::mem::swap(&mut c.sending, &mut c.queued);
                            self.send_next(slot32);
                        }
                    }
                }
                let c = &mut self.conns[slot];
                if c.err.is_some() || c.unsent() == 0 {
                    if let Some(w) = c.writer.take() {
                        w.wake();
                    }
                }
            }
            OP_CANCEL => {
                self.conns[slot].inflight -= 1;
            }
            _ => unreachable!("unknown connection ring op {op}"),
        }
        self.maybe_free(slot32);
        bid.is_some()
    }
}

/// A client connection served through its core's [`Ring`].
pub struct RingStream {
    ring: Rc<Ring>,
    slot: u32,
    gen: u32,
    released: bool,
}

impl RingStream {
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.ring.poll_read(self.slot, cx, buf)).await
    }

    /// Queues all of `out` (leaving it empty, possibly with another
    /// allocation) and waits only when too much output is unsent.
    pub async fn write_all(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        if self.ring.queue_write(self.slot, out)? {
            std::future::poll_fn(|cx| self.ring.poll_drained(self.slot, cx)).await?;
        }
        Ok(())
    }

    /// Sends what is queued, then closes the connection.
    pub async fn close(mut self) {
        let _ = std::future::poll_fn(|cx| self.ring.poll_drained(self.slot, cx)).await;
        self.released = true;
        self.ring.release(self.slot);
    }
}

impl Drop for RingStream {
    fn drop(&mut self) {
        if !self.released {
            debug_assert_eq!(self.ring.inner.borrow().conns[self.slot as usize].gen, self.gen);
            self.ring.release(self.slot);
        }
    }
}

/// Opens a glommio file whose descriptor reads the ring's eventfd: glommio
/// opens only paths, so open an always-present one and point the descriptor
/// at the eventfd (same open file description, so reads see its counter).
async fn eventfd_file(evfd: RawFd) -> io::Result<glommio::io::BufferedFile> {
    let file = match glommio::io::BufferedFile::open("/dev/null").await {
        Ok(f) => f,
        Err(_) => glommio::io::BufferedFile::open("/").await.map_err(|e| io::Error::other(e.to_string()))?,
    };
    // SAFETY: replaces the descriptor glommio owns by a duplicate of ours;
    // glommio keeps using (and finally closes) the same number.
    if unsafe { libc::dup3(evfd, file.as_raw_fd(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

/// Drives one core's ring for ever (spawn it on that core).
pub async fn drive(ring: Rc<Ring>) {
    let file = match eventfd_file(ring.evfd()).await {
        Ok(f) => Rc::new(f),
        Err(e) => {
            eprintln!("kvick: cannot wait on the connection ring's eventfd: {e}");
            std::process::exit(1);
        }
    };
    Driver { ring, file, sleep: None, timer: None }.await
}

struct Driver {
    ring: Rc<Ring>,
    file: Rc<glommio::io::BufferedFile>,
    /// The pending READ of the eventfd (kept across turns once issued).
    sleep: Option<Pin<Box<dyn Future<Output = ()>>>>,
    /// Wakes the driver at glommio's next reactor poll.
    timer: Option<glommio::timer::Timer>,
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        for _ in 0..8 {
            if this.ring.turn(cx.waker()) {
                // Something happened: come back after glommio's next reactor
                // poll, without any signal from the kernel.
                let timer = this.timer.get_or_insert_with(|| glommio::timer::Timer::new(Duration::from_micros(1)));
                match Pin::new(timer).poll(cx) {
                    Poll::Ready(_) => {
                        this.timer = None;
                        continue;
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
            this.timer = None;
            if !this.ring.arm_sleep() {
                continue;
            }
            let file = this.file.clone();
            let sleep = this.sleep.get_or_insert_with(|| {
                Box::pin(async move {
                    let _ = file.read_at(0, 8).await;
                })
            });
            match sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.sleep = None;
                    this.ring.wake_up();
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        // Still busy after several rounds: yield to the rest of the core.
        let timer = this.timer.get_or_insert_with(|| glommio::timer::Timer::new(Duration::from_micros(1)));
        match Pin::new(timer).poll(cx) {
            Poll::Ready(_) => {
                this.timer = None;
                cx.waker().wake_by_ref();
            }
            Poll::Pending => {}
        }
        Poll::Pending
    }
}
