//! Loading at startup, on every core in parallel: the per-core set a
//! manifest names (`snapshot`), or else a single `dbfilename` such as
//! redis-server writes. Files are shared out among the cores; each core reads
//! its files and sends keys of other cores' slots to their owners in batches,
//! so the thread count may differ from the one that saved. Keys already
//! expired are skipped (as a Redis master does). Files are read in chunks
//! (`chunks`), so loading needs memory for the data, not for the files.
//! Function libraries in a file are created on every core
//! (`scripting::functions::change`). A file that cannot be read stops the
//! server with its name and the offset of the problem.

use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use super::chunks::Chunks;
use super::rdbfile::{Keys, Loaded};
use super::snapshot::{self, LOADED_EXPIRED, LOADED_KEYS};
use crate::scripting::functions::{self, Op};
use crate::server::core::Core;
use crate::server::fatal;
use crate::util::now_ms;

/// Keys sent to another core per message.
const BATCH: usize = 1024;
/// Keys of this core whose table slots are prefetched before they go in:
/// each insert into a large table is otherwise a cache miss or two (5M
/// keys of 100 bytes loaded in 5.2-5.6 s against 5.5-6.2 s without).
const AHEAD: usize = 8;

/// Cores done loading; no core serves clients before all are.
static DONE: AtomicUsize = AtomicUsize::new(0);

/// Loads this core's share of the files, then waits for the other cores.
pub async fn load_at_startup(core: &Rc<Core>) {
    let (dir, name, manifest) = snapshot::paths();
    let files: Vec<String> = match snapshot::read_manifest(&manifest) {
        Ok(Some(set)) => set.into_iter().map(|f| f.name).collect(),
        Ok(None) if dir.join(&name).exists() => vec![name],
        Ok(None) => Vec::new(),
        Err(e) => fatal(&format!("{e}: remove it to start from {} or empty", snapshot_name())),
    };
    let start = Instant::now();
    let n = core.nshards();
    if core.id == 0 && !files.is_empty() {
        eprintln!("Loading RDB files: {}", files.join(" "));
    }
    for file in files.iter().skip(core.id).step_by(n) {
        load_file(core, &dir.join(file)).await;
    }
    DONE.fetch_add(1, Relaxed);
    // Other cores may still send this one keys: keep serving them.
    while DONE.load(Relaxed) < n {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
    // Loading is not a change to save.
    snapshot::clear_changes(&mut core.shard.borrow_mut());
    if core.id == 0 {
        snapshot::set_last_save(now_ms() / 1000);
        if !files.is_empty() {
            eprintln!(
                "DB loaded from disk: {:.3} seconds ({} keys, {} expired keys skipped)",
                start.elapsed().as_secs_f64(),
                LOADED_KEYS.load(Relaxed),
                LOADED_EXPIRED.load(Relaxed)
            );
        }
    }
}

fn snapshot_name() -> String {
    crate::config::get_text("dbfilename")
}

async fn load_file(core: &Rc<Core>, path: &Path) {
    let src = Chunks::open(path).unwrap_or_else(|e| fatal(&format!("Fatal error loading the DB {}: {e}. Exiting.", path.display())));
    let databases = core.shard.borrow().dbs.len();
    let bad = |e: super::rdbfile::LoadError| -> ! { fatal(&format!("Fatal error loading the DB {} at offset {}: {}. Exiting.", path.display(), e.offset, e.what)) };
    let mut keys = Keys::new(src, databases).unwrap_or_else(|e| bad(e));
    let mut router = Router::new(core);
    let now = now_ms();
    let (mut loaded, mut expired) = (0u64, 0u64);
    while let Some(k) = keys.next_key().unwrap_or_else(|e| bad(e)) {
        if k.expire_at != 0 && k.expire_at <= now {
            expired += 1;
            continue;
        }
        loaded += 1;
        router.add(k).await;
    }
    router.finish().await;
    // The libraries, on every core before any client is served (as Redis,
    // a library that fails to load stops startup).
    let ops = keys.take_functions().into_iter().map(|code| Op::Load { code, replace: false }).collect();
    if let Err(e) = functions::change(core, ops, None).await {
        fatal(&format!("Fatal error loading the DB {}: Failed loading library, {e}. Exiting.", path.display()));
    }
    LOADED_KEYS.fetch_add(loaded, Relaxed);
    LOADED_EXPIRED.fetch_add(expired, Relaxed);
}

/// Puts loaded keys on the cores that own their slots: this core's at
/// once, the others' in batches (the owner may be loading too).
pub(super) struct Router<'a> {
    core: &'a Rc<Core>,
    batches: Vec<Vec<Loaded>>,
    /// This core's next keys, prefetched.
    ahead: std::collections::VecDeque<Loaded>,
}

impl<'a> Router<'a> {
    pub(super) fn new(core: &'a Rc<Core>) -> Self {
        Router { core, batches: (0..core.nshards()).map(|_| Vec::new()).collect(), ahead: Default::default() }
    }

    pub(super) async fn add(&mut self, k: Loaded) {
        let owner = self.core.slots.shard_of_key(&k.key);
        if owner == self.core.id {
            let mut shard = self.core.shard.borrow_mut();
            if let Some(db) = shard.dbs.get(k.db) {
                db.prefetch(&k.key);
            }
            self.ahead.push_back(k);
            if self.ahead.len() > AHEAD {
                insert(&mut shard, self.ahead.pop_front().expect("queued"));
            }
            return;
        }
        self.batches[owner].push(k);
        if self.batches[owner].len() >= BATCH {
            send(self.core, owner, std::mem::take(&mut self.batches[owner])).await;
        }
    }

    /// Sends what is left; every key is in place when this returns.
    pub(super) async fn finish(mut self) {
        let mut shard = self.core.shard.borrow_mut();
        self.ahead.drain(..).for_each(|k| insert(&mut shard, k));
        drop(shard);
        for (owner, batch) in self.batches.into_iter().enumerate() {
            if !batch.is_empty() {
                send(self.core, owner, batch).await;
            }
        }
    }
}

fn insert(shard: &mut crate::shard::Shard, k: Loaded) {
    shard.dbs[k.db].insert(&k.key, k.value, k.expire_at);
}

async fn send(core: &Rc<Core>, owner: usize, batch: Vec<Loaded>) {
    core.call(owner, move |c| {
        let mut shard = c.shard.borrow_mut();
        batch.into_iter().for_each(|k| insert(&mut shard, k));
    })
    .await;
}
