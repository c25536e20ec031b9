//! Long-running scripts (Redis' busy-reply-threshold, alias lua-time-limit).
//!
//! A Lua count hook looks at the clock every `HOOK_EVERY` instructions. Once a
//! script has run longer than the threshold it is registered here as busy:
//! from then on every core answers commands without the allow-busy flag with
//! -BUSY (one relaxed atomic load per command while nothing is busy), and
//! SCRIPT KILL can stop it unless it has written. Connections of the
//! script's own core wait for it, as the core's thread runs the script.

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::commands::OwnedArgs;
use crate::config;

/// Instructions between two looks at the clock.
pub const HOOK_EVERY: u32 = 100_000;

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
}

impl Watch {
    pub fn new(eval: bool, caller: Option<Rc<OwnedArgs>>) -> Watch {
        Watch {
            start: crate::util::now_ms(),
            eval,
            caller,
            wrote: Default::default(),
            entry: Default::default(),
        }
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
