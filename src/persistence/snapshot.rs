//! Forkless, point-in-time RDB snapshots, one file per core.
//!
//! Redis forks and lets copy-on-write keep the child's view fixed, which can
//! double memory. Here every shard serializes its own table in slices between
//! requests, and keeps the snapshot point-in-time itself: a snapshot has an
//! epoch number; an entry carries the epoch in which it was last saved or
//! created (`Entry::saved`). The scan writes and stamps every entry not yet
//! stamped; every path that changes or removes an entry first does the same
//! (`Db::before_change` → `DbSnap::save`), into a small pending buffer the
//! scan drains; keys created meanwhile are stamped at insert and so are not
//! part of the snapshot. Memory grows by the changed entries only, and the
//! file is streamed out in chunks.
//!
//! All shards begin under one whole-keyspace lock (`server::txn`), so the set
//! of files is one point in time across cores. Each file is written to a
//! temporary name, fsynced and renamed; a manifest naming the set is written
//! last, atomically, so a crash mid-save leaves the previous set usable.
//! With `rdb-single-file yes` the per-core bodies are instead joined into one
//! Redis-compatible `dbfilename` (which redis-server and redis-check-rdb read).
//!
//! An AOF rewrite writes its RDB base with the same scan, on its own core's
//! shard (`write_rewrite_base`). A shard has one epoch, so snapshots and
//! rewrites take turns (`USERS`).
//!
//! Function libraries are on every core, so they are written once per set:
//! core 0's file carries them (FUNCTION2 records before its keys, inside
//! the part the single-file writer copies), as they were when its scan
//! began, the snapshot's point in time. Core 0's AOF journals library
//! changes, so its rewrite base is the one that must hold them.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering::AcqRel, Ordering::Relaxed};

use futures_channel::oneshot;
use glommio::io::BufferedFile;

use super::crc64::crc64;
use super::rdbfile;
use crate::config;
use crate::scripting::functions::{self, Sources};
use crate::server::core::Core;
use crate::server::txn::{Step, Txn};
use crate::shard::db::{Entry, Key};
use crate::shard::locks::{LockSet, Mode};
use crate::shard::Shard;
use crate::util::now_ms;

/// Bytes buffered before a write to the file.
const CHUNK: usize = 1 << 20;
/// Table buckets a scan step visits before the core serves requests again.
const SLICE: usize = 512;
/// After a failed save, save points wait this long before trying again (as Redis).
const RETRY_SECS: u64 = 5;

/// Redis' reply to writes while snapshots fail (stop-writes-on-bgsave-error).
pub const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// A database's share of snapshotting: its change counter for save points
/// and the running snapshot's state.
#[derive(Default)]
pub struct DbSnap {
    /// The running snapshot's epoch; 0 when none runs.
    pub epoch: u32,
    compress: bool,
    /// Entries saved ahead of the scan (they were about to change), as RDB
    /// key records; the scan moves them to the file.
    pending: Vec<u8>,
    /// Changes ever made (save points count them).
    pub dirty: u64,
    dirty_at_start: u64,
    dirty_saved: u64,
}

impl DbSnap {
    /// Saves `e` as it is now unless this snapshot already has it.
    #[inline]
    pub fn save(&mut self, key: &[u8], e: &Entry) {
        if self.epoch != 0 && e.saved.get() != self.epoch {
            e.saved.set(self.epoch);
            rdbfile::write_entry(&mut self.pending, key, e, self.compress);
        }
    }

    /// Saves every one of `entries` not saved yet (before FLUSHDB or SWAPDB
    /// takes them away from the scan).
    pub fn save_all<'a>(&mut self, entries: impl Iterator<Item = (&'a Key, &'a Entry)>) {
        if self.epoch != 0 {
            entries.for_each(|(k, e)| self.save(k, e));
        }
    }
}

// Server-wide save status (not shard data: one save runs at a time).
static IN_PROGRESS: AtomicBool = AtomicBool::new(false);
static SCHEDULED: AtomicBool = AtomicBool::new(false);
static LAST_OK: AtomicBool = AtomicBool::new(true);
static LAST_SAVE: AtomicU64 = AtomicU64::new(0);
static LAST_TRY: AtomicU64 = AtomicU64::new(0);
static LAST_SECS: AtomicI64 = AtomicI64::new(-1);
static STARTED_MS: AtomicU64 = AtomicU64::new(0);
static SAVES: AtomicU64 = AtomicU64::new(0);
static EPOCH: AtomicU32 = AtomicU32::new(0);
/// Who scans the shards with their epochs: a snapshot (`SAVING`, every
/// shard) or AOF rewrites (a bit per core, each its own shard, `aof`). A
/// shard has one epoch, so a snapshot and a rewrite take turns: BGSAVE
/// refuses or is scheduled, a rewrite waits (is scheduled) as in Redis.
static USERS: AtomicU64 = AtomicU64::new(0);
const SAVING: u64 = 1 << 63;
pub(super) static LOADED_KEYS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Core 0's libraries at its running scan's point in time (`begin_epoch`).
    static LIBRARIES: RefCell<Option<Sources>> = const { RefCell::new(None) };
}
pub(super) static LOADED_EXPIRED: AtomicU64 = AtomicU64::new(0);

/// The time of the last successful save (LASTSAVE); the start until then.
pub fn last_save() -> u64 {
    LAST_SAVE.load(Relaxed)
}

pub(super) fn set_last_save(secs: u64) {
    LAST_SAVE.store(secs, Relaxed);
}

/// Whether writes get MISCONF: the last background save failed, save points are set
/// and stop-writes-on-bgsave-error is on. One relaxed load while saves work.
#[inline]
pub fn writes_refused() -> bool {
    !LAST_OK.load(Relaxed) && refused_by_config()
}

#[cold]
fn refused_by_config() -> bool {
    config::get_int("stop-writes-on-bgsave-error") != 0 && !save_points().is_empty()
}

/// The `save` directive as (seconds, changes) pairs.
pub fn save_points() -> Vec<(u64, u64)> {
    let text = config::get_text("save");
    let n: Vec<u64> = text.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    n.chunks_exact(2).map(|p| (p[0], p[1])).collect()
}

/// Changes of this shard since its last successful save.
pub fn changes_since_save(shard: &Shard) -> u64 {
    shard.dbs.iter().map(|d| d.snap.dirty - d.snap.dirty_saved).sum()
}

/// Forgets the changes loading made.
pub(super) fn clear_changes(shard: &mut Shard) {
    shard.dbs.iter_mut().for_each(|d| d.snap = DbSnap::default());
}

/// INFO persistence's RDB fields; `changes` summed over the shards.
pub fn info_fields(out: &mut String, changes: u64) {
    use std::fmt::Write;
    let started = STARTED_MS.load(Relaxed);
    let current = if IN_PROGRESS.load(Relaxed) && started != 0 { (now_ms().saturating_sub(started) / 1000) as i64 } else { -1 };
    let _ = write!(
        out,
        "loading:0\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\n\
         current_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\n\
         rdb_changes_since_last_save:{changes}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\n\
         rdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{current}\r\n\
         rdb_saves:{}\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\n",
        IN_PROGRESS.load(Relaxed) as u8,
        last_save(),
        if LAST_OK.load(Relaxed) { "ok" } else { "err" },
        LAST_SECS.load(Relaxed),
        SAVES.load(Relaxed),
        LOADED_EXPIRED.load(Relaxed),
        LOADED_KEYS.load(Relaxed),
    );
}

/// Who asked for a save, which decides what its outcome changes. As in
/// Redis, only a background save's failure sets the error state behind
/// MISCONF (rdb_last_bgsave_status); any save that works clears it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SaveKind {
    /// SAVE: counted in rdb_saves; a failure only answers -ERR.
    Command,
    /// SHUTDOWN and FLUSHALL: as SAVE, not counted.
    Internal,
    /// BGSAVE and save points: counted and timed; a failure refuses writes.
    Background,
}

/// Why a save did not happen.
pub enum SaveError {
    InProgress,
    Failed,
}

/// Claims the right to save; false while another save or a rewrite runs.
pub fn try_claim() -> bool {
    let claimed = USERS.compare_exchange(0, SAVING, AcqRel, Relaxed).is_ok();
    if claimed {
        IN_PROGRESS.store(true, Relaxed);
    }
    claimed
}

/// Whether some core's AOF rewrite is scanning its shard.
pub fn rewrites_running() -> bool {
    USERS.load(Relaxed) & !SAVING != 0
}

fn rewrite_bit(core: usize) -> u64 {
    1 << (core % 63)
}

/// An AOF rewrite of `core`'s shard claims its epoch; false while a
/// snapshot runs.
pub(super) fn claim_rewrite(core: usize) -> bool {
    USERS.fetch_update(AcqRel, Relaxed, |u| (u & SAVING == 0).then_some(u | rewrite_bit(core))).is_ok()
}

/// The rewrite's scan will not run after all (claimed, not begun or ended).
pub(super) fn release_rewrite(core: usize) {
    USERS.fetch_and(!rewrite_bit(core), AcqRel);
}

/// After `claim_rewrite`, at the rewrite's point in time: from here on this
/// shard's changes save old values first (`write_rewrite_base` scans).
pub(super) fn begin_rewrite(shard: &mut Shard) {
    begin_epoch(shard, next_epoch(), config::get_int("rdbcompression") != 0);
}

/// A rewrite that claimed and began but will not scan.
pub(super) fn cancel_rewrite(core: usize, shard: &mut Shard) {
    end(shard);
    release_rewrite(core);
}

/// Streams this core's shard, as of `begin_rewrite`, into `path` as an AOF
/// base (an RDB file marked aof-base), between requests like a snapshot;
/// releases the claim. Returns the file's size.
pub(super) async fn write_rewrite_base(core: Rc<Core>, path: PathBuf) -> Result<u64, String> {
    let checksum = config::get_int("rdbchecksum") != 0;
    let id = core.id;
    let written = write_core(core, path, checksum, true).await;
    release_rewrite(id);
    // The body, EOF and the 8-byte checksum.
    written.map(|(_, end)| end + 9)
}

pub fn in_progress() -> bool {
    IN_PROGRESS.load(Relaxed)
}

/// BGSAVE SCHEDULE (or BGSAVE inside EXEC): the save points loop starts it.
pub fn schedule() {
    SCHEDULED.store(true, Relaxed);
}

/// SAVE, SHUTDOWN, FLUSHALL and save points: claims, saves, and returns
/// when done.
pub async fn save(core: &Rc<Core>, kind: SaveKind) -> Result<(), SaveError> {
    // An AOF rewrite's scan is bounded: wait for it.
    while !try_claim() {
        if in_progress() {
            return Err(SaveError::InProgress);
        }
        glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
    }
    let start = begin_all(core).await;
    if finish(core.clone(), start, kind).await {
        Ok(())
    } else {
        Err(SaveError::Failed)
    }
}

/// After `try_claim`: the snapshot's point in time. Every shard begins it
/// under a shared whole-keyspace lock, so no multi-shard write is half in
/// the set; writes acknowledged after this returns are not in it. Returns
/// the start time, which `finish` takes.
pub async fn begin_all(core: &Rc<Core>) -> u64 {
    let start = now_ms();
    STARTED_MS.store(start, Relaxed);
    LAST_TRY.store(start / 1000, Relaxed);
    let compress = config::get_int("rdbcompression") != 0;
    let epoch = next_epoch();
    let n = core.nshards();
    let whole = |i| (i, LockSet { db: 0, keys: Vec::new(), mode: Mode::Shared, whole_shard: true });
    let txn = Txn::acquire(core, 0, (0..n).map(whole).collect()).await;
    let steps = (0..n).map(|i| (i, Box::new(move |sh: &mut Shard| begin(sh, epoch, compress)) as Step<()>)).collect();
    txn.on_many(steps).await;
    txn.release().await;
    start
}

/// Writes the snapshot `begin_all` started, records the outcome and
/// releases the claim; true on success.
pub async fn finish(core: Rc<Core>, start: u64, kind: SaveKind) -> bool {
    // Redis counts saves tried, not saves done.
    if kind != SaveKind::Internal {
        SAVES.fetch_add(1, Relaxed);
    }
    let result = save_set(&core, start).await;
    if kind == SaveKind::Background {
        LAST_SECS.store(((now_ms() - start + 500) / 1000) as i64, Relaxed);
    }
    let ok = match result {
        Ok(()) => {
            LAST_SAVE.store(now_ms() / 1000, Relaxed);
            LAST_OK.store(true, Relaxed);
            core.call_all(|c| c.shard.borrow_mut().dbs.iter_mut().for_each(|d| d.snap.dirty_saved = d.snap.dirty_at_start)).await;
            eprintln!("DB saved on disk");
            true
        }
        Err(e) if kind == SaveKind::Background => {
            eprintln!("Background saving error: {e}");
            LAST_OK.store(false, Relaxed);
            false
        }
        Err(e) => {
            eprintln!("Error saving DB on disk: {e}");
            false
        }
    };
    IN_PROGRESS.store(false, Relaxed);
    USERS.fetch_and(!SAVING, AcqRel);
    ok
}

/// The files of a set: `dir`, `dbfilename`, and the manifest's path.
pub(super) fn paths() -> (PathBuf, String, PathBuf) {
    let dir = PathBuf::from(config::get_text("dir"));
    let name = config::get_text("dbfilename");
    let manifest = dir.join(format!("{name}.manifest"));
    (dir, name, manifest)
}

/// One core's file: where it is and the byte range of its keys (after the
/// header, before EOF), which the single-file writer copies.
pub(super) struct CoreFile {
    pub name: String,
    pub body: (u64, u64),
}

async fn save_set(core: &Rc<Core>, seq: u64) -> Result<(), String> {
    let (dir, name, manifest) = paths();
    let checksum = config::get_int("rdbchecksum") != 0;
    let n = core.nshards();
    // Each core streams its shard into its own file.
    let mut pending = Vec::with_capacity(n);
    for i in 0..n {
        let file = format!("{name}.{seq}.{i}");
        let tmp = dir.join(format!("{file}.tmp"));
        let rx = core
            .call(i, move |c| {
                let (tx, rx) = oneshot::channel();
                let c = c.clone();
                glommio::spawn_local(async move {
                    let _ = tx.send(write_core(c, tmp, checksum, false).await.map(|body| CoreFile { name: file, body }));
                })
                .detach();
                rx
            })
            .await;
        pending.push(rx);
    }
    let mut files = Vec::with_capacity(n);
    let mut failure = None;
    for rx in pending {
        match rx.await {
            Ok(Ok(f)) => files.push(f),
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(_) => failure = failure.or(Some("a core dropped its snapshot".to_string())),
        }
    }
    let tmp_of = |f: &CoreFile| dir.join(format!("{}.tmp", f.name));
    if let Some(e) = failure {
        files.iter().for_each(|f| drop(std::fs::remove_file(tmp_of(f))));
        return Err(e);
    }
    let old = read_manifest(&manifest).ok().flatten().unwrap_or_default();
    if config::get_int("rdb-single-file") != 0 {
        let joined = write_single(&dir, &name, &files, checksum).await;
        files.iter().for_each(|f| drop(std::fs::remove_file(tmp_of(f))));
        joined?;
        // The single file is now the newest: the old set must not win at startup.
        let _ = std::fs::remove_file(&manifest);
    } else {
        for f in &files {
            std::fs::rename(tmp_of(f), dir.join(&f.name)).map_err(|e| format!("rename {}: {e}", f.name))?;
        }
        let mut text = String::from("# kvick RDB snapshot set: one file per core, and the byte range of its keys\n");
        for f in &files {
            text.push_str(&format!("file {} {} {}\n", f.name, f.body.0, f.body.1));
        }
        write_atomic(&manifest, text.into_bytes()).await?;
    }
    sync_dir(&dir)?;
    for f in old.iter().filter(|o| !files.iter().any(|f| f.name == o.name)) {
        let _ = std::fs::remove_file(dir.join(&f.name));
    }
    Ok(())
}

fn next_epoch() -> u32 {
    // 0 means "no scan runs".
    match EPOCH.fetch_add(1, Relaxed).wrapping_add(1) {
        0 => EPOCH.fetch_add(1, Relaxed).wrapping_add(1),
        e => e,
    }
}

/// A shard starts a snapshot: from here on, changes save old values first.
fn begin(shard: &mut Shard, epoch: u32, compress: bool) {
    begin_epoch(shard, epoch, compress);
    shard.dbs.iter_mut().for_each(|d| d.snap.dirty_at_start = d.snap.dirty);
}

fn begin_epoch(shard: &mut Shard, epoch: u32, compress: bool) {
    if shard.id == 0 {
        LIBRARIES.with(|l| *l.borrow_mut() = Some(functions::sources()));
    }
    for d in &mut shard.dbs {
        d.snap.epoch = epoch;
        d.snap.compress = compress;
        d.snap.pending.clear();
    }
}

fn end(shard: &mut Shard) {
    LIBRARIES.with(|l| l.borrow_mut().take());
    for d in &mut shard.dbs {
        d.snap.epoch = 0;
        d.snap.pending = Vec::new();
    }
}

/// Streams this core's shard into `tmp` (an AOF base if `aof_base`);
/// returns the keys' byte range.
async fn write_core(core: Rc<Core>, tmp: PathBuf, checksum: bool, aof_base: bool) -> Result<(u64, u64), String> {
    let result = scan_to_file(&core, &tmp, checksum, aof_base).await;
    // Whatever happened, this shard's snapshot is over.
    end(&mut core.shard.borrow_mut());
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

async fn scan_to_file(core: &Rc<Core>, tmp: &Path, checksum: bool, aof_base: bool) -> Result<(u64, u64), String> {
    let mut out = Out::create(tmp, checksum).await?;
    rdbfile::header(&mut out.buf, 0, aof_base);
    let body_start = out.len();
    let (epoch, ndbs) = {
        let sh = core.shard.borrow();
        if let Some(libs) = LIBRARIES.with(|l| l.borrow_mut().take()) {
            functions::write_rdb(&mut out.buf, &libs, sh.dbs[0].snap.compress);
        }
        (sh.dbs[0].snap.epoch, sh.dbs.len())
    };
    // The database the file's last SELECTDB named.
    let mut selected: Option<usize> = None;
    let (mut db, mut cursor, mut buckets) = (0usize, 0usize, None);
    // Entries the current pass over all databases wrote. hashbrown may also
    // rehash in place (same bucket count), moving entries behind the
    // cursor, so passes repeat until one finds nothing left to save.
    let mut written = 0u64;
    loop {
        {
            let mut shard = core.shard.borrow_mut();
            for (i, d) in shard.dbs.iter_mut().enumerate() {
                if !d.snap.pending.is_empty() {
                    if selected != Some(i) {
                        rdbfile::select_db(&mut out.buf, i, None);
                        selected = Some(i);
                    }
                    out.buf.extend_from_slice(&d.snap.pending);
                    d.snap.pending.clear();
                }
            }
            if db == ndbs && written == 0 {
                // Every entry is stamped: nothing can be pending any more.
                end(&mut shard);
                break;
            }
            if db == ndbs {
                (db, written) = (0, 0);
            }
            let d = &shard.dbs[db];
            // A resize may move entries behind the cursor: start the table
            // again (saved entries are skipped, so this costs only the walk).
            if buckets != Some(d.buckets()) {
                buckets = Some(d.buckets());
                cursor = 0;
            }
            let (buf, compress) = (&mut out.buf, d.snap.compress);
            let mut here = selected == Some(db);
            cursor = d.scan(cursor, SLICE, |k, e| {
                if e.saved.get() != epoch {
                    e.saved.set(epoch);
                    written += 1;
                    if !here {
                        rdbfile::select_db(buf, db, Some((d.len(), d.expires_len())));
                        here = true;
                    }
                    rdbfile::write_entry(buf, k, e, compress);
                }
            });
            if here {
                selected = Some(db);
            }
            if cursor == 0 {
                db += 1;
                buckets = None;
            }
        }
        out.flush(CHUNK).await?;
        // Let the core's requests run between slices.
        futures_lite::future::yield_now().await;
    }
    let body_end = out.len();
    out.finish().await?;
    Ok((body_start, body_end))
}

/// An RDB file being written: buffered, checksummed as it goes.
struct Out {
    file: BufferedFile,
    path: PathBuf,
    pos: u64,
    crc: Option<u64>,
    buf: Vec<u8>,
}

impl Out {
    async fn create(path: &Path, checksum: bool) -> Result<Out, String> {
        let file = BufferedFile::create(path).await.map_err(|e| format!("Failed opening the temp RDB file {} for saving: {e}", path.display()))?;
        Ok(Out { file, path: path.to_path_buf(), pos: 0, crc: checksum.then_some(0), buf: Vec::with_capacity(CHUNK + CHUNK / 4) })
    }

    fn len(&self) -> u64 {
        self.pos + self.buf.len() as u64
    }

    /// Writes the buffer out once it holds at least `min` bytes.
    async fn flush(&mut self, min: usize) -> Result<(), String> {
        if self.buf.is_empty() || self.buf.len() < min {
            return Ok(());
        }
        if let Some(c) = &mut self.crc {
            *c = crc64(*c, &self.buf);
        }
        let buf = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + CHUNK / 4));
        let n = buf.len();
        let written = self.file.write_at(buf, self.pos).await.map_err(|e| format!("Write error saving DB on disk ({}): {e}", self.path.display()))?;
        if written != n {
            return Err(format!("Write error saving DB on disk ({}): short write (No space left on device?)", self.path.display()));
        }
        self.pos += n as u64;
        Ok(())
    }

    /// EOF, the checksum, fsync.
    async fn finish(mut self) -> Result<(), String> {
        self.buf.push(rdbfile::op::EOF);
        let crc = self.crc.take().map_or(0, |c| crc64(c, &self.buf));
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.flush(1).await?;
        let what = |e: glommio::GlommioError<()>| format!("fsync of {}: {e}", self.path.display());
        self.file.fdatasync().await.map_err(what)?;
        self.file.close().await.map_err(|e| format!("close: {e}"))
    }
}

/// Joins the per-core files' keys into one Redis-compatible file `name`.
async fn write_single(dir: &Path, name: &str, files: &[CoreFile], checksum: bool) -> Result<(), String> {
    let tmp = dir.join(format!("temp-{}.rdb", std::process::id()));
    let mut out = Out::create(&tmp, checksum).await?;
    rdbfile::header(&mut out.buf, 0, false);
    let copy = async {
        for f in files {
            let path = dir.join(format!("{}.tmp", f.name));
            let src = BufferedFile::open(&path).await.map_err(|e| format!("open {}: {e}", path.display()))?;
            let (mut pos, end) = f.body;
            while pos < end {
                let want = ((end - pos) as usize).min(CHUNK);
                let chunk = src.read_at(pos, want).await.map_err(|e| format!("read {}: {e}", path.display()))?;
                if chunk.is_empty() {
                    return Err(format!("{} is shorter than its snapshot", path.display()));
                }
                out.buf.extend_from_slice(&chunk);
                pos += chunk.len() as u64;
                out.flush(CHUNK).await?;
            }
            let _ = src.close().await;
        }
        Ok(())
    };
    let result = match copy.await {
        Ok(()) => out.finish().await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => std::fs::rename(&tmp, dir.join(name)).map_err(|e| format!("rename to {name}: {e}")),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Writes `bytes` to `path` so that a crash leaves the old or the new file:
/// a temporary file, fsync, rename.
async fn write_atomic(path: &Path, bytes: Vec<u8>) -> Result<(), String> {
    let tmp = path.with_extension("manifest.tmp");
    let what = |e: glommio::GlommioError<()>| format!("writing {}: {e}", tmp.display());
    let f = BufferedFile::create(&tmp).await.map_err(what)?;
    let n = bytes.len();
    if f.write_at(bytes, 0).await.map_err(what)? != n {
        return Err(format!("writing {}: short write", tmp.display()));
    }
    f.fdatasync().await.map_err(what)?;
    f.close().await.map_err(what)?;
    std::fs::rename(&tmp, path).map_err(|e| format!("rename {}: {e}", path.display()))
}

/// Makes the renames in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), String> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| format!("fsync of {}: {e}", dir.display()))
}

/// The files of a manifest, Ok(None) if there is none.
pub(super) fn read_manifest(path: &Path) -> Result<Option<Vec<CoreFile>>, String> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(None) };
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.as_slice() {
                ["file", name, a, b] => Some(CoreFile { name: name.to_string(), body: (a.parse().ok()?, b.parse().ok()?) }),
                _ => None,
            }
        })
        .collect::<Option<Vec<_>>>()
        .map(Some)
        .ok_or_else(|| format!("Bad RDB manifest {}", path.display()))
}

/// Save points, BGSAVE SCHEDULE: runs on one core for the life of the server.
pub async fn save_points_loop(core: Rc<Core>) {
    // As Redis: LASTSAVE is the start until a save happens. An AOF start
    // loads no RDB to set it, and save points count from it ("3600 1").
    if last_save() == 0 {
        set_last_save(now_ms() / 1000);
    }
    loop {
        glommio::timer::sleep(std::time::Duration::from_millis(100)).await;
        if in_progress() || rewrites_running() {
            continue;
        }
        let scheduled = SCHEDULED.swap(false, Relaxed);
        let points = save_points();
        if points.is_empty() && !scheduled {
            continue;
        }
        let now = now_ms() / 1000;
        let since_save = now.saturating_sub(last_save());
        // After a failure, wait before retrying (as Redis).
        let may_retry = LAST_OK.load(Relaxed) || now.saturating_sub(LAST_TRY.load(Relaxed)) >= RETRY_SECS;
        if !scheduled && (!may_retry || !points.iter().any(|&(secs, _)| since_save >= secs)) {
            continue;
        }
        let changes: u64 = core.call_all(|c| changes_since_save(&c.shard.borrow())).await.into_iter().sum();
        if scheduled || points.iter().any(|&(secs, n)| changes >= n && since_save >= secs) {
            if !scheduled {
                eprintln!("{changes} changes in {since_save} seconds. Saving...");
            }
            let _ = save(&core, SaveKind::Background).await;
        }
    }
}
