//! The clients connected to one core, for CLIENT LIST/KILL/INFO and INFO's
//! clients and stats sections.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;

use hashbrown::HashMap;

use crate::resp::Proto;

/// What other tasks on the core may read or change about a connection.
pub struct ClientInfo {
    pub id: u64,
    pub fd: i32,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub created_ms: u64,
    pub last_ms: Cell<u64>,
    pub name: RefCell<Vec<u8>>,
    pub db: Cell<usize>,
    pub proto: Cell<Proto>,
    pub last_cmd: Cell<&'static str>,
    pub qbuf: Cell<usize>,
    pub killed: Cell<bool>,
    /// Pushes waiting for the connection (`server::pubsub`).
    pub outbox: crate::server::pubsub::Outbox,
    /// Client-side caching mode (`server::tracking`).
    pub tracking: RefCell<crate::server::tracking::Mode>,
}

impl ClientInfo {
    /// A new connection's information.
    pub fn new(id: u64, fd: i32, addr: SocketAddr, laddr: SocketAddr, now_ms: u64) -> Self {
        ClientInfo {
            id,
            fd,
            addr,
            laddr,
            created_ms: now_ms,
            last_ms: now_ms.into(),
            name: Default::default(),
            db: 0.into(),
            proto: crate::resp::Proto::Resp2.into(),
            last_cmd: "NULL".into(),
            qbuf: 0.into(),
            killed: false.into(),
            outbox: Default::default(),
            tracking: Default::default(),
        }
    }

    /// The information of client `id` where no connection of it is (see
    /// `Session::proxy`).
    pub fn detached(id: u64) -> Self {
        let nowhere = SocketAddr::from(([0, 0, 0, 0], 0));
        ClientInfo::new(id, -1, nowhere, nowhere, 0)
    }

    /// One line of CLIENT LIST / CLIENT INFO, with Redis 7.0's fields
    /// (`blocked`: waiting in a blocking command, flag `b`).
    pub fn line(&self, now_ms: u64, blocked: bool) -> String {
        let tracking = self.tracking.borrow();
        // Redis' flag letters, in its order.
        let mut flags = String::new();
        for (on, letter) in [
            (self.outbox.subscribed(), 'P'),
            (blocked, 'b'),
            (tracking.on, 't'),
            (tracking.broken_redirect, 'R'),
            (tracking.bcast, 'B'),
        ] {
            if on {
                flags.push(letter);
            }
        }
        if flags.is_empty() {
            flags.push('N');
        }
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi=-1 qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir={} resp={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            String::from_utf8_lossy(&self.name.borrow()),
            now_ms.saturating_sub(self.created_ms) / 1000,
            now_ms.saturating_sub(self.last_ms.get()) / 1000,
            flags,
            self.db.get(),
            self.outbox.channels.get(),
            self.outbox.patterns.get(),
            self.outbox.shard_channels.get(),
            self.qbuf.get(),
            self.last_cmd.get(),
            crate::server::tracking::redirection(&tracking),
            if self.proto.get() == Proto::Resp3 { 3 } else { 2 },
        )
    }

    /// Closes the connection: its pending read returns end-of-file.
    pub fn kill(&self) {
        self.killed.set(true);
        // SAFETY: shutdown(2) on a descriptor owned by a live connection task.
        unsafe {
            libc::shutdown(self.fd, libc::SHUT_RDWR);
        }
    }
}

#[derive(Default, Clone, Copy)]
pub struct CoreStats {
    pub connections_received: u64,
    pub commands_processed: u64,
    pub rejected_connections: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
}

#[derive(Default)]
pub struct Clients {
    pub map: HashMap<u64, Rc<ClientInfo>>,
    pub stats: CoreStats,
    /// Clients of this core blocked on keys, by id (CLIENT UNBLOCK, INFO).
    pub blocked: HashMap<u64, std::sync::Arc<crate::shard::blocking::Waiter>>,
}

/// Turns on TCP keepalive as Redis' anetKeepAlive does: first probe after
/// `secs` idle seconds, then every secs/3, dropping the peer after 3 misses.
pub fn set_keepalive(fd: i32, secs: i64) {
    if secs <= 0 {
        return;
    }
    let secs = secs.min(i32::MAX as i64) as libc::c_int;
    let set = |level, opt, v: libc::c_int| {
        // SAFETY: setsockopt on a socket we own, with an int-sized value.
        unsafe { libc::setsockopt(fd, level, opt, &v as *const _ as *const libc::c_void, std::mem::size_of::<libc::c_int>() as libc::socklen_t) };
    };
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, (secs / 3).max(1));
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3);
}

/// Closes clients idle for longer than `timeout` seconds (0: never), checked
/// once a second on each core for its own clients, as Redis' clientsCron.
pub async fn close_idle_clients(core: Rc<crate::server::core::Core>) {
    loop {
        glommio::timer::sleep(std::time::Duration::from_secs(1)).await;
        let timeout = crate::config::get_int("timeout");
        if timeout <= 0 {
            continue;
        }
        let now = crate::util::now_ms();
        let limit = timeout as u64 * 1000;
        let clients = core.clients.borrow();
        for info in clients.map.values() {
            // A blocked client waits by its own timeout, as in Redis.
            if now.saturating_sub(info.last_ms.get()) > limit && !info.killed.get() && !clients.blocked.contains_key(&info.id) {
                info.kill();
            }
        }
    }
}
