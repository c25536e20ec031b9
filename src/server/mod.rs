//! Startup: one pinned glommio executor per core, each with its own shard, its
//! own SO_REUSEPORT listener on the shared port (the kernel spreads
//! connections), and a channel mesh to every other core.

pub mod blocking;
pub mod clients;
pub mod connection;
pub mod core;
pub mod pubsub;
pub mod session;
pub mod tracking;
pub mod txn;
pub mod uring;

use std::net::{SocketAddr, TcpListener as StdListener};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement};
use socket2::{Domain, Socket, Type};

use crate::cluster::SlotMap;
use crate::config;
use crate::server::clients::ClientInfo;
use crate::server::core::{Core, Msg};
use crate::server::session::Session;
use crate::shard::Shard;

/// Messages in flight per pair of cores before a sender waits.
const MESH_CAPACITY: usize = 1024;
/// Memory glommio registers per ring for DMA I/O; kvick's network I/O does not
/// use it, so keep it small enough to fit ordinary memlock limits.
const IO_MEMORY: usize = 512 * 1024;

static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(1);
/// Clients connected on all cores, for maxclients: one limit for the server,
/// however the kernel spreads connections over the cores' listeners. Touched
/// only on connect and disconnect.
pub static CONNECTED_CLIENTS: AtomicUsize = AtomicUsize::new(0);

pub fn thread_count() -> usize {
    match config::get_int("threads") {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        n => n as usize,
    }
}

/// Starts every core and blocks until the server exits.
pub fn run() -> Result<(), String> {
    let threads = thread_count();
    let port = config::get_int("port") as u16;
    let addrs = bind_addrs(port)?;
    check_port_free(&addrs)?;
    let io_memory = memlock_budget(threads)?;
    probe_io_uring()?;
    let mesh: MeshBuilder<Msg, glommio::channels::channel_mesh::Full> = MeshBuilder::full(threads, MESH_CAPACITY);
    let slots = SlotMap::new(threads);
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let databases = config::get_int("databases") as usize;

    let mut handles = Vec::new();
    for id in 0..threads {
        let mesh = mesh.clone();
        let addrs = addrs.clone();
        let mut builder = LocalExecutorBuilder::new(Placement::Fixed(id % cpus))
            .name(&format!("kvick-{id}"))
            .io_memory(io_memory)
            .preempt_timer(Duration::from_millis(10));
        let spin = config::get_int("spin-before-park-us");
        if spin > 0 {
            builder = builder.spin_before_park(Duration::from_micros(spin as u64));
        }
        let handle = builder
            .spawn(move || async move {
                if threads > 1 {
                    glommio::spawn_local(wake_tick()).detach();
                }
                let (senders, receivers) = mesh.join().await.expect("joining the core mesh");
                let core = Core::new(id, slots, Shard::new(id, databases), senders);
                let receivers = Rc::new(receivers);
                for peer in 0..threads {
                    if peer != id {
                        glommio::spawn_local(core.clone().serve_peer(receivers.clone(), peer)).detach();
                    }
                }
                // The dataset is in place on every core before any client is
                // served: from the AOF when it is on (the more complete, as
                // in Redis), else from the RDB snapshot.
                if id == 0 {
                    crate::commands::server::note_startup_memory();
                }
                if config::get_int("appendonly") == 1 {
                    crate::persistence::aof::load_at_startup(&core).await;
                } else {
                    crate::persistence::load::load_at_startup(&core).await;
                }
                if id == 0 {
                    glommio::spawn_local(crate::persistence::snapshot::save_points_loop(core.clone())).detach();
                }
                glommio::spawn_local(crate::shard::expire::active_expiry_loop(core.clone())).detach();
                glommio::spawn_local(clients::close_idle_clients(core.clone())).detach();
                glommio::spawn_local(clients::sample_rates(core.clone())).detach();
                glommio::spawn_local(pubsub::forward_notifications(core.clone())).detach();
                glommio::spawn_local(crate::server::tracking::forward(core.clone())).detach();
                let ring = if config::get_text("io-engine") == "uring" {
                    match uring::Ring::new() {
                        Ok(ring) => {
                            glommio::spawn_local(uring::drive(ring.clone())).detach();
                            Some(ring)
                        }
                        // Older kernels lack DEFER_TASKRUN (6.1) or multishot
                        // receive (6.0): serve with glommio's streams instead.
                        Err(e) => {
                            eprintln!(
                                "core {id}: io-engine uring unavailable ({e}; it needs Linux 6.1+), \
                                 using io-engine glommio"
                            );
                            None
                        }
                    }
                } else {
                    None
                };
                let mut accepts = Vec::new();
                for addr in addrs {
                    let listener = listen(addr).unwrap_or_else(|e| fatal(&format!("Could not listen on {addr}: {e}")));
                    accepts.push(glommio::spawn_local(accept_loop(core.clone(), listener, ring.clone())));
                }
                for a in accepts {
                    a.await;
                }
            })
            .map_err(|e| io_uring_hint(&e.to_string()))?;
        handles.push(handle);
    }
    write_pidfile()?;
    eprintln!(
        "kvick {} ready: {} core(s), port {}, pid {}",
        env!("CARGO_PKG_VERSION"),
        threads,
        port,
        std::process::id()
    );
    for h in handles {
        h.join().map_err(|e| io_uring_hint(&e.to_string()))?;
    }
    Ok(())
}

/// Writes the process id to `pidfile`, if one is configured (SHUTDOWN removes it).
fn write_pidfile() -> Result<(), String> {
    let path = config::get_text("pidfile");
    if path.is_empty() {
        return Ok(());
    }
    std::fs::write(&path, format!("{}\n", std::process::id())).map_err(|e| format!("Failed to write PID file {path}: {e}"))
}

/// Removes the pid file on the way out.
pub fn remove_pidfile() {
    let path = config::get_text("pidfile");
    if !path.is_empty() {
        let _ = std::fs::remove_file(path);
    }
}

/// How often a core wakes even when idle, to pick up a wake-up from another
/// core that glommio lost. glommio 0.9 writes a sleeping core's eventfd only
/// if a Relaxed `should_notify` flag says it sleeps (ordered by membarrier);
/// under load on these machines a core was nonetheless seen asleep with a
/// wake-up queued: a 2-core kvick stuck in its mesh join (about 1 start in
/// 30 with the CPUs saturated), or not answering a forwarded command. Any
/// wake-up of the core drains its queued foreign wakers, so a periodic timer
/// bounds the delay of a lost one.
const WAKE_TICK: Duration = Duration::from_millis(10);

async fn wake_tick() {
    loop {
        glommio::timer::sleep(WAKE_TICK).await;
    }
}

pub fn fatal(msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(1);
}

fn io_uring_hint(err: &str) -> String {
    format!(
        "cannot start an io_uring executor: {err}\n\
         kvick needs io_uring: check `sysctl kernel.io_uring_disabled` (must be 0) and, in a \
         container, a seccomp profile that allows io_uring_setup/io_uring_enter (Docker 25+ \
         blocks them by default)."
    )
}

/// Creates and closes one io_uring, so that a kernel or sandbox without it
/// gets a clear message instead of a panic inside an executor thread.
fn probe_io_uring() -> Result<(), String> {
    // struct io_uring_params is 120 bytes; zeroed asks for defaults.
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup(2) with a valid params buffer; the fd is closed.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) };
    if fd < 0 {
        return Err(io_uring_hint(&std::io::Error::last_os_error().to_string()));
    }
    // SAFETY: closing the descriptor io_uring_setup just returned.
    unsafe { libc::close(fd as i32) };
    Ok(())
}

fn bind_addrs(port: u16) -> Result<Vec<SocketAddr>, String> {
    config::get_text("bind")
        .split_whitespace()
        .map(|a| {
            let a = a.trim_start_matches('-');
            let ip: std::net::IpAddr = a.parse().map_err(|_| format!("Invalid bind address '{a}'"))?;
            Ok(SocketAddr::new(ip, port))
        })
        .collect()
}

/// Every listener uses SO_REUSEPORT, so a second server on a used port would
/// bind silently and take part of its traffic. A plain bind first proves the
/// port is ours.
fn check_port_free(addrs: &[SocketAddr]) -> Result<(), String> {
    for a in addrs {
        StdListener::bind(a).map_err(|e| format!("Could not create server TCP listening socket {a}: {e}"))?;
    }
    Ok(())
}

fn listen(addr: SocketAddr) -> std::io::Result<glommio::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(config::get_int("tcp-backlog") as i32)?;
    // glommio uses another socket2 version; hand it the descriptor.
    Ok(unsafe { glommio::net::TcpListener::from_raw_fd(socket.into_raw_fd()) })
}

/// Makes sure the executors' io_uring rings fit the locked-memory limit:
/// raises the soft limit to the hard one, and refuses to start with a clear
/// message when even that is below what glommio needs.
fn memlock_budget(threads: usize) -> Result<usize, String> {
    const MIN_PER_EXECUTOR: u64 = 512 * 1024;
    // SAFETY: plain getrlimit/setrlimit on this process.
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) != 0 {
            return Ok(IO_MEMORY);
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        let root = libc::geteuid() == 0;
        let need = MIN_PER_EXECUTOR * threads as u64;
        if !root && lim.rlim_cur != libc::RLIM_INFINITY && lim.rlim_cur < need {
            return Err(format!(
                "locked-memory limit is {} KiB; kvick's io_uring executors need at least {} KiB \
                 ({} threads). Raise it with `ulimit -l {}` (or LimitMEMLOCK= in systemd, \
                 memlock in /etc/security/limits.conf), or start fewer threads (--threads).",
                lim.rlim_cur / 1024,
                need / 1024,
                threads,
                need / 1024
            ));
        }
    }
    let configured = config::get_int("io-memory") as usize;
    Ok(if configured > 0 { configured } else { IO_MEMORY })
}

/// Redis' reply to a non-loopback client while protected mode is on and no
/// password is set (sent, then the connection is closed).
const PROTECTED_MODE_DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Protected mode (Redis 7): with no password set, only loopback clients
/// may connect, whatever the bind address.
fn protected_mode_denies(peer: &SocketAddr) -> bool {
    let ip = match peer.ip() {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 => v4,
    };
    !ip.is_loopback() && config::get_int("protected-mode") == 1 && config::get_text("requirepass").is_empty()
}

async fn accept_loop(core: Rc<Core>, listener: glommio::net::TcpListener, ring: Option<Rc<uring::Ring>>) {
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(_) => {
                // Out of descriptors and the like: back off instead of spinning.
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (Ok(addr), Ok(laddr)) = (stream.peer_addr(), stream.local_addr()) else { continue };
        if protected_mode_denies(&addr) {
            let mut s = stream;
            let _ = futures_lite::AsyncWriteExt::write_all(&mut s, PROTECTED_MODE_DENIED).await;
            continue;
        }
        clients::set_keepalive(std::os::fd::AsRawFd::as_raw_fd(&stream), config::get_int("tcp-keepalive"));
        let maxclients = config::get_int("maxclients") as usize;
        {
            let mut clients = core.clients.borrow_mut();
            clients.stats.connections_received += 1;
            if CONNECTED_CLIENTS.load(Ordering::Relaxed) >= maxclients {
                clients.stats.rejected_connections += 1;
                drop(clients);
                let mut s = stream;
                let _ = futures_lite::AsyncWriteExt::write_all(&mut s, b"-ERR max number of clients reached\r\n").await;
                continue;
            }
        }
        // With the ring engine the ring takes over a duplicate of the socket
        // and glommio's stream (and the poll it armed) goes away.
        let ring_fd = match &ring {
            Some(_) => {
                // SAFETY: duplicating a descriptor we own.
                let fd = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&stream), libc::F_DUPFD_CLOEXEC, 0) };
                if fd < 0 {
                    continue;
                }
                Some(fd)
            }
            None => None,
        };
        let fd = ring_fd.unwrap_or_else(|| std::os::fd::AsRawFd::as_raw_fd(&stream));
        let now = crate::util::now_ms();
        let info = Rc::new(ClientInfo::new(NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed), fd, addr, laddr, now));
        core.clients.borrow_mut().map.insert(info.id, info.clone());
        CONNECTED_CLIENTS.fetch_add(1, Ordering::Relaxed);
        let session = Session::new(core.clone(), info);
        match (&ring, ring_fd) {
            (Some(ring), Some(fd)) => {
                drop(stream);
                glommio::spawn_local(connection::serve(core.clone(), ring.register(fd), session)).detach();
            }
            _ => {
                glommio::spawn_local(connection::serve(core.clone(), stream, session)).detach();
            }
        }
    }
}
