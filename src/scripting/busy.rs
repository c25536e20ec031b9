//! Long-running scripts (Redis' busy-reply-threshold, alias lua-time-limit).
//!
//! A Lua count hook looks at the clock every `HOOK_EVERY` instructions. Once a
//! script has run longer than the threshold it is registered here as busy:
//! from then on every core answers commands without the allow-busy flag with
//! -BUSY (one relaxed atomic load per command while nothing is busy), and
//! SCRIPT KILL can stop it unless it has written. So that connections of
//! the script's own core get -BUSY too (and can send SCRIPT KILL), a busy
//! script's hook yields its coroutine every `PAUSE_EVERY_MS` when Lua allows
//! it (`yieldable`), and the driver lets the core's other tasks run for a
//! moment with the script's keys locked (`scripting::drive`).

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::commands::OwnedArgs;
use crate::config;

/// Instructions between two looks at the clock.
pub const HOOK_EVERY: u32 = 100_000;
/// How often a busy script lets its core serve other connections.
const PAUSE_EVERY_MS: u64 = 5;

/// The head of Lua 5.1's `lua_State` (lstate.h), up to the two C-call
/// counters that tell whether a coroutine may yield from here: Lua raises
/// "attempt to yield across metamethod/C-call boundary" when
/// nCcalls > baseCcalls (a metamethod or a C function such as table.sort
/// between the hook and the coroutine's start). `calibrate` checks the
/// layout once on the real library before any yield relies on it.
#[repr(C)]
struct StateHead {
    next: *mut std::ffi::c_void,
    tt: u8,
    marked: u8,
    status: u8,
    top: *mut std::ffi::c_void,
    base: *mut std::ffi::c_void,
    l_g: *mut std::ffi::c_void,
    ci: *mut std::ffi::c_void,
    savedpc: *const std::ffi::c_void,
    stack_last: *mut std::ffi::c_void,
    stack: *mut std::ffi::c_void,
    end_ci: *mut std::ffi::c_void,
    base_ci: *mut std::ffi::c_void,
    stacksize: std::ffi::c_int,
    size_ci: std::ffi::c_int,
    n_ccalls: u16,
    base_ccalls: u16,
}

thread_local! {
    static LAYOUT_OK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static PROBED: std::cell::RefCell<Vec<(u16, u16)>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn counters(l: *mut mlua::ffi::lua_State) -> (u16, u16) {
    // SAFETY: `l` is a live lua_State of the vendored Lua 5.1, whose layout
    // `StateHead` mirrors (checked by `calibrate` before `yieldable` trusts it).
    let head = unsafe { &*(l as *const StateHead) };
    (head.n_ccalls, head.base_ccalls)
}

unsafe extern "C-unwind" fn probe(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    PROBED.with(|p| p.borrow_mut().push(counters(l)));
    0
}

/// Checks `StateHead` against this Lua: a C function called straight from a
/// coroutine's Lua code sees equal counters, one called through pcall one
/// more. Without that, busy scripts never yield (their core's connections
/// wait for them instead).
pub fn calibrate(lua: &mlua::Lua) -> mlua::Result<()> {
    // SAFETY: `probe` only reads the state.
    let probe = unsafe { lua.create_c_function(probe)? };
    PROBED.with(|p| p.borrow_mut().clear());
    lua.load("local probe = ... coroutine.resume(coroutine.create(function() probe() pcall(probe) end))")
        .call::<()>(probe)?;
    let seen = PROBED.with(|p| std::mem::take(&mut *p.borrow_mut()));
    let ok = matches!(seen[..], [(a, b), (c, d)] if a == b && c == a + 1 && d == b && a > 0);
    LAYOUT_OK.with(|l| l.set(ok));
    Ok(())
}

/// Whether the coroutine `l` may yield from a hook right now.
pub fn yieldable(l: *mut mlua::ffi::lua_State) -> bool {
    LAYOUT_OK.with(|ok| ok.get()) && {
        let (n, base) = counters(l);
        n == base
    }
}

/// One busy script, as SCRIPT KILL sees it from any core.
#[derive(Default)]
struct Entry {
    kill: AtomicBool,
    wrote: AtomicBool,
    /// An EVAL script (SCRIPT KILL), not a function (FUNCTION KILL).
    eval: bool,
    /// A function: what FUNCTION STATS shows of it.
    running: Option<Running>,
}

/// A busy function as FUNCTION STATS describes it.
#[derive(Clone)]
pub struct Running {
    pub name: String,
    /// The command that called it, as sent.
    pub command: Vec<Vec<u8>>,
    /// When it began (Unix ms).
    pub start: u64,
}

/// FUNCTION STATS' `running_script`: the busy function, if one is (the
/// first registered, if several cores run one). While an EVAL script is
/// busy, Redis answers with -BUSY instead, and so does this (the error).
pub fn running_function() -> Result<Option<Running>, &'static str> {
    let busy = BUSY.lock().expect("busy registry");
    if busy.iter().any(|e| e.eval) {
        return Err(BUSY_EVAL);
    }
    Ok(busy.iter().find_map(|e| e.running.clone()))
}

static BUSY_COUNT: AtomicUsize = AtomicUsize::new(0);
/// Touched only when a script turns busy, ends busy, or by SCRIPT KILL.
static BUSY: Mutex<Vec<Arc<Entry>>> = Mutex::new(Vec::new());

/// Whether some script on some core is past the threshold.
pub fn busy() -> bool {
    BUSY_COUNT.load(Ordering::Relaxed) > 0
}

const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

/// The -BUSY error line for a command refused while a script is busy: it
/// names the KILL that stops it.
pub fn busy_error() -> &'static str {
    let busy = BUSY.lock().expect("busy registry");
    if busy.iter().any(|e| e.eval) {
        BUSY_EVAL
    } else {
        BUSY_FUNCTION
    }
}

/// SCRIPT KILL (`eval`) and FUNCTION KILL: the reply's error line, or None
/// for OK. Each stops only its own kind, as in Redis.
pub fn kill(eval: bool) -> Option<&'static str> {
    let busy = BUSY.lock().expect("busy registry");
    if busy.is_empty() {
        return Some("NOTBUSY No scripts in execution right now.");
    }
    if busy.iter().any(|e| e.wrote.load(Ordering::Acquire)) {
        return Some("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.");
    }
    if busy.iter().any(|e| e.eval != eval) {
        return Some(if eval { BUSY_FUNCTION } else { BUSY_EVAL });
    }
    for e in busy.iter() {
        e.kill.store(true, Ordering::Release);
    }
    None
}

/// A script run's clock and its busy registration.
pub struct Watch {
    start: u64,
    eval: bool,
    /// A function's FCALL command (for FUNCTION STATS once it is busy).
    caller: Option<Rc<OwnedArgs>>,
    wrote: std::cell::Cell<bool>,
    entry: std::cell::RefCell<Option<Arc<Entry>>>,
    /// When the script last let its core serve others (Unix ms).
    paused_at: std::cell::Cell<u64>,
}

impl Watch {
    pub fn new(eval: bool, caller: Option<Rc<OwnedArgs>>) -> Watch {
        Watch {
            start: crate::util::now_ms(),
            eval,
            caller,
            wrote: Default::default(),
            entry: Default::default(),
            paused_at: Default::default(),
        }
    }

    /// Whether the busy script should let its core serve others now.
    pub fn pause_due(&self) -> bool {
        if self.entry.borrow().is_none() {
            return false;
        }
        let now = crate::util::now_ms();
        if now.saturating_sub(self.paused_at.get()) < PAUSE_EVERY_MS {
            return false;
        }
        self.paused_at.set(now);
        true
    }

    pub fn wrote(&self) {
        self.wrote.set(true);
        if let Some(e) = self.entry.borrow().as_ref() {
            e.wrote.store(true, Ordering::Release);
        }
    }

    pub fn killed(&self) -> bool {
        self.entry
            .borrow()
            .as_ref()
            .is_some_and(|e| e.kill.load(Ordering::Acquire))
    }

    /// The hook's check: registers the script once it is past the
    /// threshold; Err once SCRIPT KILL asked it to stop.
    pub fn check(&self) -> mlua::Result<()> {
        if self.entry.borrow().is_none() {
            let limit = config::busy_reply_threshold();
            if limit <= 0 || crate::util::now_ms().saturating_sub(self.start) < limit as u64 {
                return Ok(());
            }
            let e = Arc::new(Entry {
                kill: AtomicBool::new(false),
                wrote: AtomicBool::new(self.wrote.get()),
                eval: self.eval,
                running: self.caller.as_ref().map(|c| Running {
                    // As registered (FCALL finds it in any case).
                    name: super::functions::lookup(c.get(1))
                        .map_or_else(|| String::from_utf8_lossy(c.get(1)).into_owned(), |f| f.name.clone()),
                    command: c.0.clone(),
                    start: self.start,
                }),
            });
            BUSY.lock().expect("busy registry").push(e.clone());
            BUSY_COUNT.fetch_add(1, Ordering::Relaxed);
            *self.entry.borrow_mut() = Some(e);
        }
        if self.killed() {
            return Err(mlua::Error::runtime(
                "Script killed by user with SCRIPT KILL...",
            ));
        }
        Ok(())
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(e) = self.entry.get_mut().take() {
            BUSY.lock()
                .expect("busy registry")
                .retain(|x| !Arc::ptr_eq(x, &e));
            BUSY_COUNT.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
