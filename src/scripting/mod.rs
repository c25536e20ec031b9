//! Lua scripting (Redis' eval.c and script_lua.c): one Lua 5.1 state per
//! core, the scripts it has compiled, the sandbox, the conversions between
//! Lua values and RESP, and the driver that runs one script.
//!
//! A script runs as a coroutine on the core of the calling connection, inside
//! one multi-shard transaction (`server::txn`) that locks its declared KEYS
//! (or every shard whole, see `Locked`). `redis.call` runs a command whose
//! keys live on this core at once, inside the Lua call; a command for another
//! core (or one that spans cores, or needs the session) makes the coroutine
//! yield, the driver runs it through EXEC's path (`transactions::run_queued`)
//! under the held locks, and resumes the coroutine with the reply. So a
//! script is atomic across cores, and Lua never blocks the executor on a
//! message. Lua 5.1 cannot yield across a C call such as its `pcall`, so
//! the prelude's `pcall` runs its function in a coroutine of its own and
//! passes a parked call's yield up to the driver (and the reply back down),
//! so `pcall(redis.call, ...)` of a command for another core works too.
//!
//! Undeclared keys: a script that names a key outside KEYS (or declares no
//! keys) must still work. Scripts without KEYS lock every shard whole. A
//! script that reaches a key missing from KEYS locks it before that call
//! runs (`lock_undeclared`): waiting for it on a shard above every shard it
//! holds (ascending order, as every transaction locks), taking it at once
//! elsewhere if no other transaction holds it. It never releases before
//! its end, so it stays atomic. If the key is held where it may not wait:
//! before any write the script reruns from the start holding every shard
//! (its reads had no effect); after a write it polls for the key, and only
//! if another transaction still holds it after half a second (a cycle of
//! waits) does that call fail (writes are not rolled back); either way this
//! core locks that script whole from then on.
//! Commands that reach beyond keys (SELECT, KEYS, FLUSHALL) do the same.

pub(crate) mod busy;
mod cjson;
mod cmsgpack;
mod convert;
pub mod functions;
mod libs;
mod structlib;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use hashbrown::HashMap;
use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, ThreadStatus, Value};

use crate::commands::{self, flags, transactions, Args, Ctx, OwnedArgs, Run};
use crate::resp::{Proto, Reply};
use crate::server::core::Core;
use crate::server::session::Session;
use crate::server::txn::Txn;
use crate::shard::locks::{LockSet, Mode};

pub use busy::{busy, busy_error, kill, running_function};

/// A script's SHA1 in lowercase hex: its name in EVALSHA and SCRIPT EXISTS.
pub type Sha = [u8; 40];

pub fn sha1_hex(body: &[u8]) -> Sha {
    let hex = sha1_smol::Sha1::from(body).digest().to_string();
    let mut out = [0u8; 40];
    out.copy_from_slice(hex.as_bytes());
    out
}

/// What a script's shebang line (`#!lua flags=...`) declares.
#[derive(Clone, Copy, Default)]
pub struct ScriptFlags {
    pub no_writes: bool,
}

/// A compiled script or function of this core.
struct Script {
    func: Function,
    flags: ScriptFlags,
    /// A function of a library (FCALL): called with KEYS and ARGV as its
    /// arguments, where an EVAL script finds them as globals.
    function: bool,
    /// The script reached an undeclared key once: lock every shard whole.
    whole: Cell<bool>,
}

/// The Lua state of one core and the scripts compiled into it.
struct Engine {
    lua: Lua,
    /// The real globals: the libraries, `redis`, and KEYS/ARGV of the running script.
    globals: Table,
    /// The environment scripts run in: empty, reads fall through to the
    /// globals, writes are refused (Redis' global protection).
    env: Table,
    /// The prelude's helper: the source and line of the innermost script
    /// frame of a coroutine that failed.
    where_fn: Function,
    /// The prelude's helpers for libraries (`functions`): a library's
    /// environment while it loads, and turning it into its run-time one.
    lib_env: Function,
    lib_ready: Function,
    scripts: RefCell<HashMap<Sha, Rc<Script>>>,
    /// Coroutines of scripts that returned, reused (a fresh one per run is
    /// an allocation and garbage for Lua's collector).
    idle: RefCell<Vec<mlua::Thread>>,
    /// Bytes of the cached EVAL scripts' bodies and SHAs (INFO's
    /// used_memory_scripts_eval).
    eval_bytes: Cell<usize>,
}

thread_local! {
    static ENGINE: Rc<Engine> = Rc::new(Engine::new().expect("the Lua state starts"));
    /// The script being resumed on this core (several can be in flight,
    /// each parked while another core runs one of its commands).
    static CURRENT: RefCell<Option<Rc<RunState>>> = const { RefCell::new(None) };
    /// `redis.call`'s argument and reply buffers, reused from call to call.
    static CALL_BUF: RefCell<CallBuf> = RefCell::default();
}

impl Engine {
    /// A coroutine that will call `func`: an idle one if there is one.
    fn coroutine(&self, func: &Function) -> mlua::Result<mlua::Thread> {
        match self.idle.borrow_mut().pop() {
            Some(t) => t.reset(func.clone()).map(|_| t),
            None => self.lua.create_thread(func.clone()),
        }
    }

    /// Keeps a coroutine whose script returned, for `coroutine`.
    fn recycle(&self, thread: mlua::Thread) {
        const KEEP: usize = 16;
        let mut idle = self.idle.borrow_mut();
        if thread.status() == ThreadStatus::Finished && idle.len() < KEEP {
            idle.push(thread);
        }
    }
}

fn engine() -> Rc<Engine> {
    ENGINE.with(|e| e.clone())
}

/// Lua code run once per state: the sandbox and the `redis` table. The
/// native helpers come in as arguments, so scripts cannot reach them.
const PRELUDE: &str = r#"
local ccall, cpcall, seterr, setresp, rlog, sha1hex, register, hook_co, set_repl, acl_check_cmd, sandbox = ...
local G = _G
local raw_error, type, tostring, getinfo, rawget = error, type, tostring, debug.getinfo, rawget
loadfile = nil
dofile = nil

-- pcall that a parked redis.call can yield through (Lua 5.1's cannot):
-- the function runs in a coroutine of its own. A parked call yields it with
-- nothing; this pcall then yields its own coroutine with `true`, up to the
-- driver, which resumes with the reply and whether redis.call raises it.
-- The innermost pcall raises it (returns false and the error), outer ones
-- pass both down. The coroutine gets the busy hook (`hook_co`). As Redis
-- 7.0's pcall (luaRedisPcall), an error table gives its `err` text.
local raw_pcall, co_create, co_resume, co_status, co_yield = pcall, coroutine.create, coroutine.resume, coroutine.status, coroutine.yield
local select, unpack = select, unpack
local function pack(...) return {n = select('#', ...), ...} end
local function caught(ok, ...)
  if ok then return ok, ... end
  local e = ...
  if type(e) == 'table' then
    local m = e.err
    if type(m) == 'string' or type(m) == 'number' then e = m end
  end
  return false, e
end
pcall = function(f, ...)
  -- Only Lua functions and redis.call/pcall can park; other C functions
  -- keep Lua's pcall (their errors name no caller, as in Redis).
  if type(f) ~= 'function' or (f ~= ccall and f ~= cpcall and getinfo(f, 'S').what == 'C') then
    return caught(raw_pcall(f, ...))
  end
  -- A tail call: error levels see no frame of this pcall, as with Lua's.
  local co = co_create(function(...) return f(...) end)
  hook_co(co)
  local r = pack(co_resume(co, ...))
  while co_status(co) == 'suspended' do
    local nested = r.n > 1
    local v, raise = co_yield(true)
    if nested then
      r = pack(co_resume(co, v, raise))
    elseif raise then
      return caught(false, v)
    else
      r = pack(co_resume(co, v))
    end
  end
  return caught(unpack(r, 1, r.n))
end

-- A table raised as an error is kept aside: the driver only sees its text.
error = function(e, level)
  if type(e) == 'table' then
    seterr(e)
    raw_error(e)
  elseif level == 0 then
    raw_error(e, 0)
  end
  raw_error(e, (level or 1) + 1)
end

redis = {
  call = ccall,
  pcall = cpcall,
  -- Redis' luaPushErrorBuff: "-CODE msg" keeps its code, anything else gets ERR.
  error_reply = function(msg)
    if type(msg) ~= 'string' then return {err = 'ERR wrong number or type of arguments'} end
    if msg:sub(1, 1) ~= '-' then msg = '-' .. msg end
    local sp = msg:find(' ', 1, true)
    if sp then msg = msg:sub(2, sp - 1) .. ' ' .. msg:sub(sp + 1) else msg = 'ERR ' .. msg:sub(2) end
    return {err = (msg:gsub('[\r\n]+$', ''))}
  end,
  status_reply = function(msg)
    if type(msg) ~= 'string' then return {err = 'ERR wrong number or type of arguments'} end
    return {ok = msg}
  end,
  sha1hex = sha1hex,
  setresp = setresp,
  log = rlog,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REDIS_VERSION = '7.0.0', REDIS_VERSION_NUM = 0x00070000,
  -- Effects are always what gets replicated (Redis 7): the flags are
  -- checked, then have nothing to choose.
  REPL_NONE = 0, REPL_AOF = 1, REPL_SLAVE = 2, REPL_REPLICA = 2, REPL_ALL = 3,
  set_repl = set_repl,
  acl_check_cmd = acl_check_cmd,
}
-- EVAL's API only (not a function's): Lua debugging (LDB) is not offered.
local eval_only = {
  replicate_commands = function() return true end,
  breakpoint = function() return false end,
  debug = function() end,
}

local function nonexistent(name)
  raw_error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 3)
end
local function readonly() raw_error('Attempt to modify a readonly table', 2) end
local rawset = rawset

-- Redis 7.0 makes the globals and every library read-only (a flag of its
-- patched Lua). Here each library is an empty proxy that reads through to
-- it and refuses writes, a script's _G is its environment, and rawset,
-- setmetatable, rawget, getmetatable, next and pairs see through the
-- proxies, so nothing a script does reaches the next one.
local ipairs = ipairs
local real = setmetatable({}, {__mode = 'k'})
local function protect(p, t) real[p] = t return p end
local function proxy(t, index)
  return protect(setmetatable({}, {__index = index or t, __newindex = readonly, __metatable = false}), t)
end
for _, name in ipairs({'redis', 'string', 'table', 'math', 'bit', 'cjson', 'cmsgpack', 'struct', 'coroutine'}) do
  rawset(G, name, proxy(rawget(G, name)))
end
-- Table chains, not __index functions: a field lookup stays inside the VM.
local eval_redis = proxy(real[rawget(G, 'redis')], setmetatable(eval_only, {__index = real[rawget(G, 'redis')]}))
-- getmetatable('') gives a read-only view of the strings' metatable.
do
  local smt, string_proxy = getmetatable(''), G.string
  smt.__metatable = proxy(smt, function(_, k)
    if k == '__index' then return string_proxy end
    return rawget(smt, k)
  end)
end
for _, name in ipairs({'debug', 'getfenv', 'setfenv', 'newproxy', 'print'}) do
  rawset(G, name, nil)
end

-- A script's globals: its own `_G` and `redis`, then the real globals, whose
-- misses raise (Redis' scriptingEnableGlobalsProtection).
local script_view = {redis = eval_redis}
local env = protect(setmetatable({}, {
  __index = setmetatable(script_view, {__index = G}),
  __newindex = function() raw_error('Attempt to modify a readonly table', 2) end,
  __metatable = false,
}), G)
script_view._G = env
setmetatable(G, {
  __index = function(_, name) nonexistent(name) end,
  __newindex = function() raw_error('Attempt to modify a readonly table', 2) end,
  __metatable = false,
})

-- rawset, rawget, setmetatable, getmetatable, next and pairs see through
-- the proxies. They are C functions (`sandbox`), as Lua's own: a script's
-- frame stays on the stack when it tail-calls one, so their argument
-- errors name the script's line and the function, as in Redis.
do
  local c_rawset, c_rawget, c_setmetatable, c_getmetatable, c_next, c_pairs = sandbox(real, G, proxy({}))
  rawset(G, 'rawset', c_rawset)
  rawset(G, 'rawget', c_rawget)
  rawset(G, 'setmetatable', c_setmetatable)
  rawset(G, 'getmetatable', c_getmetatable)
  rawset(G, 'next', c_next)
  rawset(G, 'pairs', c_pairs)
end

local function where(co)
  for level = 0, 200 do
    local i = getinfo(co, level, 'Sl')
    if not i then return nil end
    if i.what ~= 'C' and i.source ~= '=kvick' then return i.source, i.currentline end
  end
end

-- Functions (FUNCTION LOAD): while a library's code runs, its globals are
-- only this `redis`; afterwards they are the globals of EVAL minus KEYS and
-- ARGV (Redis' luaEngineCreate). Either way they cannot be written.
local load_api = setmetatable({
  register_function = register,
  log = rlog,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REDIS_VERSION = redis.REDIS_VERSION, REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM,
}, {__index = function(_, name) nonexistent(name) end, __newindex = readonly, __metatable = false})
local loading = setmetatable({}, {__mode = 'k'})
local lib_mt = {
  __index = function(t, name)
    if name == '_G' then return t end
    local v = nil
    if not loading[t] and name ~= 'KEYS' and name ~= 'ARGV' then v = rawget(G, name) end
    if v == nil then nonexistent(name) end
    return v
  end,
  __newindex = readonly,
  __metatable = false,
}
local function lib_env()
  local t = protect(setmetatable({redis = load_api}, lib_mt), G)
  loading[t] = true
  return t
end
local function lib_ready(t)
  rawset(t, 'redis', nil)
  loading[t] = nil
end

return env, where, lib_env, lib_ready
"#;

impl Engine {
    fn new() -> mlua::Result<Engine> {
        // SAFETY: `debug` is the only unsafe library loaded; Redis gives it to
        // scripts too, and the prelude needs debug.getinfo for error lines.
        let lua = unsafe {
            Lua::unsafe_new_with(
                StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG,
                LuaOptions::default(),
            )
        };
        libs::register(&lua)?;
        busy::calibrate(&lua)?;
        let rcall =
            lua.create_function(|lua, args: MultiValue| with_run(|run| run.call(lua, args)))?;
        lua.set_named_registry_value(RCALL_KEY, rcall)?;
        // SAFETY: plain C functions over the Lua API (see `redis_call`).
        let (ccall, cpcall) = unsafe {
            (
                lua.create_c_function(redis_call::<true>)?,
                lua.create_c_function(redis_call::<false>)?,
            )
        };
        let seterr = lua.create_function(|_, t: Value| {
            with_run(|run| {
                if let Value::Table(t) = t {
                    *run.err.borrow_mut() = Some(t);
                }
                Ok(())
            })
        })?;
        let setresp = lua.create_function(|_, args: MultiValue| {
            let v = match args.front() {
                Some(Value::Number(n)) if args.len() == 1 => *n as i64,
                Some(Value::Integer(n)) if args.len() == 1 => *n as i64,
                _ => {
                    return Err(mlua::Error::runtime(
                        "redis.setresp() requires one argument.",
                    ))
                }
            };
            if v != 2 && v != 3 {
                return Err(mlua::Error::runtime("RESP version must be 2 or 3."));
            }
            with_run(|run| {
                run.resp3.set(v == 3);
                Ok(())
            })
        })?;
        let rlog = lua.create_function(|_, args: MultiValue| {
            if args.len() < 2 {
                return Err(mlua::Error::runtime(
                    "redis.log() requires two arguments or more.",
                ));
            }
            let level = match args.front() {
                Some(Value::Number(n)) => *n as i64,
                Some(Value::Integer(n)) => *n as i64,
                _ => {
                    return Err(mlua::Error::runtime(
                        "First argument must be a number (log level).",
                    ))
                }
            };
            if !(0..=3).contains(&level) {
                return Err(mlua::Error::runtime("Invalid debug level."));
            }
            // kvick keeps no log file; the message is dropped.
            Ok(())
        })?;
        let sha1hex = lua.create_function(|lua, s: mlua::String| {
            let sha = sha1_hex(&s.as_bytes());
            lua.create_string(sha)
        })?;
        let register = lua.create_function(functions::register)?;
        // Effects are always what gets replicated (Redis 7): redis.set_repl
        // checks its flags, then has nothing to choose.
        let set_repl = lua.create_function(|_, args: MultiValue| {
            if args.len() != 1 {
                return Err(mlua::Error::runtime("redis.set_repl() requires two arguments."));
            }
            let flags = match args.front() {
                Some(Value::Integer(n)) => *n as i64,
                Some(Value::Number(n)) => *n as i64,
                Some(Value::String(s)) => s.to_str().ok().and_then(|t| t.trim().parse::<f64>().ok()).map_or(0, |n| n as i64),
                _ => 0,
            };
            if flags & !3 != 0 {
                return Err(mlua::Error::runtime("Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE."));
            }
            Ok(())
        })?;
        // Every client may run every command (no ACL users yet), so only the
        // command (and subcommand) must exist.
        let acl_check_cmd = lua.create_function(|_, args: MultiValue| {
            if args.is_empty() {
                return Err(mlua::Error::runtime("Please specify at least one argument for this redis lib call"));
            }
            let name = |v: Option<&Value>| match v {
                Some(Value::String(s)) => Some(s.as_bytes().to_vec()),
                _ => None,
            };
            let known = name(args.front()).and_then(|n| crate::commands::lookup(&n)).is_some_and(|ci| {
                crate::commands::by_index(ci).subs.is_empty()
                    || args.len() < 2
                    || name(args.get(1)).and_then(|n| crate::commands::lookup_sub(ci, &n)).is_some()
            });
            if !known {
                return Err(mlua::Error::runtime("Invalid command passed to redis.acl_check_cmd()"));
            }
            Ok(true)
        })?;
        // SAFETY: a plain C function over the Lua API (see `hook_co`).
        let hook_co = unsafe { lua.create_c_function(hook_co)? };
        // SAFETY: plain C functions over the Lua API (see `sandbox`).
        let sandbox = unsafe { lua.create_c_function(sandbox)? };
        let prelude = lua.load(PRELUDE).set_name("=kvick").into_function()?;
        let (env, where_fn, lib_env, lib_ready): (Table, Function, Function, Function) =
            prelude.call((ccall, cpcall, seterr, setresp, rlog, sha1hex, register, hook_co, set_repl, acl_check_cmd, sandbox))?;
        let globals = lua.globals();
        Ok(Engine {
            lua,
            globals,
            env,
            where_fn,
            lib_env,
            lib_ready,
            scripts: RefCell::new(HashMap::new()),
            idle: RefCell::new(Vec::new()),
            eval_bytes: Cell::new(0),
        })
    }

    /// Compiles `body` (Redis' luaCreateFunction): the shebang line is cut
    /// but its newline kept, so line numbers match the text the client sent.
    fn compile(&self, body: &[u8]) -> Result<(Function, ScriptFlags), String> {
        let (flags, skip) = parse_shebang(body)?;
        let f = self
            .lua
            .load(&body[skip..])
            .set_name("@user_script")
            .into_function()
            .map_err(|e| {
                format!(
                    "ERR Error compiling script (new function): {}",
                    lua_error_text(&e)
                )
            })?;
        f.set_environment(self.env.clone())
            .map_err(|e| e.to_string())?;
        Ok((f, flags))
    }
}

/// The message of a Lua error without mlua's decorations.
fn lua_error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::CallbackError { cause, .. } => lua_error_text(cause),
        other => other.to_string(),
    }
}

/// Parses a `#!lua flags=a,b` first line (Redis' evalExtractShebangFlags).
/// Returns the flags and how many bytes of the body the line takes, newline excluded.
fn parse_shebang(body: &[u8]) -> Result<(ScriptFlags, usize), String> {
    let mut flags = ScriptFlags::default();
    if !body.starts_with(b"#!") {
        return Ok((flags, 0));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let mut parts = line.split_ascii_whitespace();
    let engine = parts.next().unwrap_or("#!");
    if engine != "#!lua" {
        return Err(format!(
            "ERR Unexpected engine in script shebang: {}",
            engine
        ));
    }
    for part in parts {
        let Some(list) = part
            .get(..6)
            .filter(|p| p.eq_ignore_ascii_case("flags="))
            .map(|_| &part[6..])
        else {
            return Err(format!("ERR Unknown lua shebang option: {}", part));
        };
        for flag in list.split(',').filter(|f| !f.is_empty()) {
            match flag {
                "no-writes" => flags.no_writes = true,
                "allow-oom" | "allow-stale" | "no-cluster" | "allow-cross-slot-keys" => {}
                other => return Err(format!("ERR Unexpected flag in script shebang: {}", other)),
            }
        }
    }
    Ok((flags, end))
}

/// Whether this core has the script.
pub fn exists(sha: &[u8]) -> bool {
    let Ok(sha) = <&Sha>::try_from(sha) else {
        return false;
    };
    let sha = sha.to_ascii_lowercase();
    let e = engine();
    let found = e.scripts.borrow().contains_key(&sha[..40]);
    found
}

/// Compiles `body` into this core's state (a no-op if it is there).
pub fn load_local(body: &[u8]) -> Result<Sha, String> {
    let sha = sha1_hex(body);
    let e = engine();
    if e.scripts.borrow().contains_key(&sha) {
        return Ok(sha);
    }
    let (func, flags) = e.compile(body)?;
    e.eval_bytes.set(e.eval_bytes.get() + body.len() + sha.len());
    e.scripts.borrow_mut().insert(
        sha,
        Rc::new(Script {
            func,
            flags,
            function: false,
            whole: Cell::new(false),
        }),
    );
    Ok(sha)
}

/// SCRIPT LOAD and a first EVAL: compile here, then on every other core,
/// so EVALSHA finds it from any connection.
pub async fn load_everywhere(core: &Rc<Core>, body: Vec<u8>) -> Result<Sha, String> {
    if let Some(sha) = Some(sha1_hex(&body)).filter(|s| exists(s)) {
        return Ok(sha);
    }
    let sha = load_local(&body)?;
    let body = Arc::new(body);
    // The same text compiled here, so it compiles there.
    core.call_all(move |_| {
        let _ = load_local(&body);
    })
    .await;
    Ok(sha)
}

/// SCRIPT FLUSH on this core.
pub fn flush_local() {
    let e = engine();
    e.scripts.borrow_mut().clear();
    e.eval_bytes.set(0);
    cjson::reset(&e.lua);
}

/// INFO memory's view of this core's scripting: the Lua state's memory,
/// the cached EVAL scripts and their bytes.
pub fn memory_info() -> (usize, usize, usize) {
    let e = engine();
    let scripts = e.scripts.borrow().len();
    (e.lua.used_memory(), scripts, e.eval_bytes.get())
}

/// What a running script holds locked.
enum Locked {
    /// Every shard whole.
    Whole,
    /// The declared keys.
    Keys(Rc<[Vec<u8>]>),
}

#[derive(Default)]
struct CallBuf {
    data: Vec<u8>,
    ranges: Vec<std::ops::Range<usize>>,
    out: Vec<u8>,
}

/// A `redis.call` the coroutine yielded for: run by the driver.
struct Pending {
    ci: u16,
    args: OwnedArgs,
    /// redis.call (raise an error reply) rather than redis.pcall.
    raise: bool,
    /// Its keys missing from KEYS: the driver locks them first (`lock_undeclared`).
    lock: Vec<Vec<u8>>,
}

/// The state of one script run, reachable from Lua callbacks through `CURRENT`.
struct RunState {
    core: Rc<Core>,
    db: Cell<usize>,
    readonly: bool,
    locked: Locked,
    wrote: Cell<bool>,
    resp3: Cell<bool>,
    /// An undeclared key was reached before any write and could not be
    /// locked: stop and run again with every shard locked.
    restart: Cell<bool>,
    /// The hook yielded to let the core serve others (a busy script).
    paused: Cell<bool>,
    /// Keys missing from KEYS that the script reached and has locked since.
    undeclared: RefCell<hashbrown::HashSet<Vec<u8>>>,
    /// It reached beyond its KEYS after writing and failed there: this core
    /// runs the script with every shard locked from now on.
    lock_whole_next: Cell<bool>,
    pending: RefCell<Option<Pending>>,
    /// A parked redis.call got an error reply: raise it (from the hook) as
    /// soon as the coroutine resumes.
    raise_next: Cell<bool>,
    /// The last table raised as an error.
    err: RefCell<Option<Table>>,
    busy: busy::Watch,
    /// The caller's client id, and, if it tracks its reads
    /// (`server::tracking::reader`), how to remember them.
    client: u64,
    tracker: Option<(crate::shard::tracking::Client, usize)>,
}

fn with_run<R>(f: impl FnOnce(&RunState) -> mlua::Result<R>) -> mlua::Result<R> {
    let run = CURRENT.with(|c| c.borrow().clone());
    match run {
        Some(run) => f(&run),
        None => Err(mlua::Error::runtime(
            "redis calls are only possible inside a script",
        )),
    }
}

/// Status codes of `RunState::call`, for `redis_call`.
const ST_OK: i64 = 0;
const ST_ERR: i64 = 1;
const ST_PENDING: i64 = 2;

fn err_table(lua: &Lua, msg: &str) -> mlua::Result<(i64, Value)> {
    let t = lua.create_table()?;
    t.raw_set("err", msg)?;
    Ok((ST_ERR, Value::Table(t)))
}

/// A call refused by the checks of Redis' scriptCall (unknown command,
/// arity, not allowed, writes refused): INFO errorstats count it now, as
/// Redis does, whatever the script does with it, so its table is marked
/// not to be counted again. (Argument errors, Redis' luaPushError, are
/// `err_table`s: counted only if the script replies them.)
fn refused(lua: &Lua, msg: &str) -> mlua::Result<(i64, Value)> {
    crate::server::clients::count_error(msg);
    let out = err_table(lua, msg)?;
    if let Value::Table(t) = &out.1 {
        t.raw_set(convert::NOT_COUNTED, true)?;
    }
    Ok(out)
}

impl RunState {
    fn proto(&self) -> Proto {
        if self.resp3.get() {
            Proto::Resp3
        } else {
            Proto::Resp2
        }
    }

    /// `redis.call` / `redis.pcall`: checks the command as Redis' scriptCall
    /// does, runs it here if its keys are on this core, or parks it for the
    /// driver.
    fn call(&self, lua: &Lua, mut args: MultiValue) -> mlua::Result<(i64, Value)> {
        let raise = matches!(args.pop_front(), Some(Value::Boolean(true)));
        let out = self.call_checked(lua, args, raise)?;
        if out.0 == ST_ERR && raise {
            if let Value::Table(t) = &out.1 {
                *self.err.borrow_mut() = Some(t.clone());
            }
        }
        Ok(out)
    }

    fn call_checked(&self, lua: &Lua, args: MultiValue, raise: bool) -> mlua::Result<(i64, Value)> {
        if self.restart.get() {
            return err_table(lua, "ERR script restarts with every shard locked");
        }
        if args.is_empty() {
            return err_table(
                lua,
                "ERR Please specify at least one argument for this redis lib call",
            );
        }
        // The arguments in one reused buffer, as a pipeline's are.
        let mut buf = CALL_BUF.with(|b| b.take());
        buf.data.clear();
        buf.ranges.clear();
        for v in args.iter() {
            let start = buf.data.len();
            match v {
                // Numbers arrive as strings (Redis' "%.17g"): see `redis_call`.
                Value::String(s) => buf.data.extend_from_slice(&s.as_bytes()),
                _ => {
                    CALL_BUF.with(|b| b.replace(buf));
                    return err_table(
                        lua,
                        "ERR Lua redis lib command arguments must be strings or integers",
                    );
                }
            }
            buf.ranges.push(start..buf.data.len());
        }
        let out = self.call_args(lua, Args::new(&buf.data, &buf.ranges), &mut buf.out, raise);
        CALL_BUF.with(|b| b.replace(buf));
        out
    }

    fn call_args(&self, lua: &Lua, a: Args, out: &mut Vec<u8>, raise: bool) -> mlua::Result<(i64, Value)> {
        let Some(mut ci) = commands::lookup(a.get(0)) else {
            return refused(lua, "ERR Unknown Redis command called from script");
        };
        let mut cmd = commands::by_index(ci);
        if !cmd.subs.is_empty() && a.len() >= 2 {
            let Some(sub) = commands::lookup_sub(ci, a.get(1)) else {
                return refused(lua, "ERR Unknown Redis command called from script");
            };
            ci = sub;
            cmd = commands::by_index(ci);
        }
        if !cmd.arity_ok(a.len()) {
            return refused(
                lua,
                "ERR Wrong number of args calling Redis command from script",
            );
        }
        if cmd.flags & flags::NOSCRIPT != 0 {
            return refused(lua, "ERR This Redis command is not allowed from script");
        }
        if cmd.is_write() && self.readonly {
            return refused(
                lua,
                "ERR Write commands are not allowed from read-only scripts.",
            );
        }
        // A script's writes are refused like a client's while saves or AOF
        // writes fail (Redis' scriptVerifyWriteCommandAllow).
        if cmd.is_write() {
            if crate::persistence::snapshot::writes_refused() {
                return refused(lua, crate::persistence::snapshot::MISCONF);
            }
            if let Some(e) = crate::persistence::aof::misconf() {
                return refused(lua, &e);
            }
        }
        let core = &self.core;
        // Where the command runs, and its keys the held locks do not cover.
        let mut target: Option<usize> = None;
        let mut spans = false;
        let mut missing: Vec<Vec<u8>> = Vec::new();
        for i in cmd.key_indexes(&a) {
            let key = a.get(i);
            let owner = core.slots.shard_of_key(key);
            if let Locked::Keys(keys) = &self.locked {
                let held = |k: &Vec<u8>| k.as_slice() == key;
                if !keys.iter().any(held) && !self.undeclared.borrow().contains(key) && !missing.iter().any(held) {
                    missing.push(key.to_vec());
                }
            }
            match target {
                None => target = Some(owner),
                Some(t) if t != owner => spans = true,
                _ => {}
            }
        }
        if let Locked::Keys(_) = self.locked {
            // Connection-level commands may reach beyond the keys (SELECT,
            // KEYS, FLUSHALL), which no key lock covers; those that touch no
            // data at all may run.
            let dataless = matches!(cmd.name, "time" | "ping" | "echo");
            if (!dataless && matches!(cmd.run, Run::Conn(_))) || cmd.flags & flags::OTHER_DB != 0 {
                if self.wrote.get() {
                    self.lock_whole_next.set(true);
                    return refused(lua, "ERR kvick: a script reached beyond its KEYS (another database, or every key) after writing; list its keys in KEYS or declare none (it will lock every shard from its next run)");
                }
                self.restart.set(true);
                return err_table(lua, "ERR script restarts with every shard locked");
            }
            if !missing.is_empty() {
                *self.pending.borrow_mut() = Some(Pending { ci, args: a.to_owned(), raise, lock: missing });
                return Ok((ST_PENDING, Value::Nil));
            }
        }
        if cmd.is_write() {
            self.wrote.set(true);
            self.busy.wrote();
        }
        let local = !spans && target.is_none_or(|t| t == core.id);
        match cmd.run {
            Run::Shard(f) | Run::Span(f, _) if local => {
                out.clear();
                // Keys read here are this core's: remembered inline.
                if let Some((client, max)) = self.tracker.filter(|_| cmd.flags & flags::READONLY != 0) {
                    let keys: Vec<Vec<u8>> = cmd.key_indexes(&a).map(|i| a.get(i).to_vec()).collect();
                    crate::shard::tracking::remember(client, &keys, max);
                }
                // Through the journal, as every shard command (AOF).
                crate::shard::tracking::as_caller(self.client, || {
                    crate::shard::journal::run(
                        f,
                        cmd,
                        &mut Ctx::new(&mut core.shard.borrow_mut(), self.db.get()),
                        out,
                        self.proto(),
                        a,
                    )
                });
                convert::reply_to_lua(lua, out)
            }
            _ => {
                *self.pending.borrow_mut() = Some(Pending { ci, args: a.to_owned(), raise, lock: Vec::new() });
                Ok((ST_PENDING, Value::Nil))
            }
        }
    }
}

/// EVAL, EVALSHA and their _RO forms: `a` is the whole command.
pub async fn eval(s: &mut Session, a: OwnedArgs, by_sha: bool, ro: bool) {
    let numkeys = match crate::resp::parser::parse_i64(a.get(2)) {
        Some(n) if n < 0 => return s.reply().error("ERR Number of keys can't be negative"),
        Some(n) if n as usize > a.len() - 3 => {
            return s
                .reply()
                .error("ERR Number of keys can't be greater than number of args")
        }
        Some(n) => n as usize,
        None => return s.reply().error(crate::resp::reply::err::NOT_INT),
    };
    let sha = if by_sha {
        let sha = a.get(1).to_ascii_lowercase();
        if sha.len() != 40 || !exists(&sha) {
            return s
                .reply()
                .error("NOSCRIPT No matching script. Please use EVAL.");
        }
        let mut out = [0u8; 40];
        out.copy_from_slice(&sha);
        out
    } else {
        match load_everywhere(&s.core, a.get(1).to_vec()).await {
            Ok(sha) => sha,
            Err(e) => return s.reply().error(&e),
        }
    };
    let script = engine().scripts.borrow().get(&sha).cloned();
    // SCRIPT FLUSH from another connection may have run meanwhile.
    let Some(script) = script else {
        return s
            .reply()
            .error("NOSCRIPT No matching script. Please use EVAL.");
    };
    let keys: Vec<Vec<u8>> = (3..3 + numkeys).map(|i| a.get(i).to_vec()).collect();
    let argv: Vec<Vec<u8>> = (3 + numkeys..a.len()).map(|i| a.get(i).to_vec()).collect();
    let name = std::str::from_utf8(&sha).expect("hex");
    run(s, name, &script, Source::Script(sha), keys, argv, ro || script.flags.no_writes, None).await;
}

/// A script by what names it on every core, each of which has its own
/// compiled copy: its SHA, or a function's name.
pub(crate) enum Source {
    Script(Sha),
    Function(String),
}

impl Source {
    /// This core's copy and its name (a SCRIPT FLUSH or FUNCTION DELETE may
    /// have removed it meanwhile).
    fn resolve(&self) -> Result<(String, Rc<Script>), &'static str> {
        match self {
            Source::Script(sha) => engine()
                .scripts
                .borrow()
                .get(sha)
                .map(|sc| (String::from_utf8_lossy(sha).into_owned(), sc.clone()))
                .ok_or("NOSCRIPT No matching script. Please use EVAL."),
            Source::Function(name) => functions::lookup(name.as_bytes())
                .map(|f| (f.name.clone(), f.script.clone()))
                .ok_or("ERR Function not found"),
        }
    }
}

/// The core a script runs on: the one that owns all of its declared keys if
/// that is another core, so the script and its locks stay on that core
/// instead of every `redis.call` and lock being a message away. Inside EXEC
/// (which holds the locks here) and for tracking clients (their reads are
/// remembered on this core) it runs here.
fn owner_elsewhere(s: &Session, keys: &[Vec<u8>]) -> Option<usize> {
    let core = &s.core;
    let owner = core.slots.shard_of_key(keys.first()?);
    let elsewhere = owner != core.id && s.exec.is_none() && !s.tracking;
    (elsewhere && keys[1..].iter().all(|k| core.slots.shard_of_key(k) == owner)).then_some(owner)
}

/// Runs a script (or function, by `name`) under its locks, again with every
/// shard locked if it must (see the module's doc), and writes
/// its reply; on the core of its keys (`owner_elsewhere`). `caller`: a
/// function's FCALL command, for FUNCTION STATS.
#[allow(clippy::too_many_arguments)]
async fn run(
    s: &mut Session,
    name: &str,
    script: &Rc<Script>,
    source: Source,
    keys: Vec<Vec<u8>>,
    argv: Vec<Vec<u8>>,
    readonly: bool,
    caller: Option<OwnedArgs>,
) {
    if let Some(owner) = owner_elsewhere(s, &keys) {
        let (id, db, proto) = (s.info.id, s.db, s.proto);
        let out = s
            .core
            .run_on(owner, move |core| {
                Box::pin(async move {
                    let mut proxy = Session::proxy(core, id, db, proto);
                    match source.resolve() {
                        Ok((name, script)) => run_here(&mut proxy, &name, &script, keys, argv, readonly, caller).await,
                        Err(e) => proxy.reply().error(e),
                    }
                    proxy.out
                })
            })
            .await;
        s.out.extend_from_slice(&out);
        return;
    }
    run_here(s, name, script, keys, argv, readonly, caller).await
}

/// `run` on this core.
async fn run_here(
    s: &mut Session,
    name: &str,
    script: &Rc<Script>,
    keys: Vec<Vec<u8>>,
    argv: Vec<Vec<u8>>,
    readonly: bool,
    caller: Option<OwnedArgs>,
) {
    let core = s.core.clone();
    let caller = caller.map(Rc::new);
    let mode = if readonly {
        Mode::Shared
    } else {
        Mode::Exclusive
    };
    let keys: Rc<[Vec<u8>]> = keys.into();
    loop {
        let whole = script.whole.get() || keys.is_empty() || s.exec.is_some();
        // Every declared key on this core and none locked by a transaction:
        // the script runs to its end without waiting (each redis.call runs
        // at once, or stops it for a rerun with every shard locked), so no
        // other task can come between its calls and it takes no locks.
        let inline = !whole && keys.iter().all(|k| core.slots.shard_of_key(k) == core.id) && {
            let shard = core.shard.borrow();
            keys.iter().all(|k| shard.locks.may_run(s.db, &[&k[..]], mode))
        };
        let mut txn = if inline {
            None
        } else {
            let sets: Vec<(usize, LockSet)> = if whole {
                (0..core.nshards())
                    .map(|i| (i, LockSet { db: 0, keys: Vec::new(), mode, whole_shard: true }))
                    .collect()
            } else {
                let groups = crate::server::txn::group_keys(&core, keys.iter().cloned().enumerate());
                crate::server::txn::lock_sets(s.db, &groups, mode)
            };
            Some(Txn::lock(s, sets).await)
        };
        let outer_exec = s.exec.clone();
        if let (None, Some(txn)) = (&outer_exec, &txn) {
            s.exec = Some(txn.scope());
        }
        let st = Rc::new(RunState {
            core: core.clone(),
            db: Cell::new(s.db),
            readonly,
            locked: if whole { Locked::Whole } else { Locked::Keys(keys.clone()) },
            wrote: Cell::new(false),
            resp3: Cell::new(false),
            restart: Cell::new(false),
            undeclared: RefCell::new(hashbrown::HashSet::new()),
            paused: Cell::new(false),
            lock_whole_next: Cell::new(false),
            pending: RefCell::new(None),
            raise_next: Cell::new(false),
            err: RefCell::new(None),
            busy: busy::Watch::new(!script.function, caller.clone()),
            client: s.info.id,
            tracker: if s.tracking { crate::server::tracking::reader(s) } else { None },
        });
        let outcome = drive(s, &mut txn, &st, script, &keys, &argv).await;
        s.exec = outer_exec;
        if let Some(txn) = txn {
            txn.release().await;
        }
        if st.restart.get() {
            script.whole.set(true);
            continue;
        }
        if st.lock_whole_next.get() {
            script.whole.set(true);
        }
        let proto = s.proto;
        match outcome {
            Ok(out) => s.out.extend_from_slice(&out),
            Err(f) => {
                let line = f.line.replace("{sha}", name);
                let mut r = Reply::new(&mut s.out, proto);
                if f.counted {
                    r.error(&line)
                } else {
                    r.error_uncounted(&line)
                }
            }
        }
        return;
    }
}

/// The registry key of the Rust half of `redis.call`.
const RCALL_KEY: &str = "kvick.rcall";
/// The message of an error raised by the hook for a parked call's error reply.
const RAISED: &str = "kvick: raised reply";

/// `redis.call` (RAISE) and `redis.pcall`: C functions, so that a script's
/// frame stays on the stack when it tail-calls them (`return
/// redis.call(...)`) and errors name the script's line, as in Redis. They
/// run `RunState::call`; a command parked for another core makes them yield
/// (a C function may yield in Lua 5.1 as `return lua_yield(...)`), and the
/// driver resumes the coroutine with the reply as their result.
unsafe extern "C-unwind" fn redis_call<const RAISE: bool>(
    l: *mut mlua::ffi::lua_State,
) -> std::ffi::c_int {
    use mlua::ffi;
    let n = ffi::lua_gettop(l);
    // Numbers become strings here, from the exact double: mlua's Value
    // would round -0.0 and numbers within f64::EPSILON of 0 to Integer(0).
    for i in 1..=n {
        if ffi::lua_type(l, i) == ffi::LUA_TNUMBER {
            let mut buf = [0u8; 64];
            let text = convert::fmt_g(ffi::lua_tonumber(l, i), 17, &mut buf);
            ffi::lua_pushlstring(l, text.as_ptr() as *const std::ffi::c_char, text.len());
            ffi::lua_replace(l, i);
        }
    }
    ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, c"kvick.rcall".as_ptr());
    ffi::lua_insert(l, 1);
    ffi::lua_pushboolean(l, RAISE as std::ffi::c_int);
    ffi::lua_insert(l, 2);
    ffi::lua_call(l, n + 1, 2);
    let status = ffi::lua_tointeger(l, -2) as i64;
    match status {
        ST_PENDING => ffi::lua_yield(l, 0),
        ST_ERR if RAISE => ffi::lua_error(l),
        _ => 1,
    }
}

/// `hook_co(co)` (the prelude's pcall): gives a coroutine the busy check.
/// mlua hooks one thread at a time (`drive` hooks the script's), so these
/// get a hook of their own, straight from the Lua API.
unsafe extern "C-unwind" fn hook_co(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    let co = ffi::lua_tothread(l, 1);
    if !co.is_null() {
        ffi::lua_sethook(co, Some(co_hook), ffi::LUA_MASKCOUNT, busy::HOOK_EVERY as std::ffi::c_int);
    }
    0
}

/// The busy check of `hook_co`'s coroutines: past busy-reply-threshold the
/// script is registered busy, and once killed this raises Redis' error.
unsafe extern "C-unwind" fn co_hook(l: *mut mlua::ffi::lua_State, _: *mut mlua::ffi::lua_Debug) {
    let killed = CURRENT.with(|c| c.borrow().as_ref().is_some_and(|run| run.busy.check().is_err()));
    if killed {
        // Nothing here needs dropping: lua_error does not return.
        mlua::ffi::lua_pushstring(l, c"Script killed by user with SCRIPT KILL...".as_ptr());
        mlua::ffi::lua_error(l);
    }
}

/// `sandbox(real, G, globals_meta)` (the prelude): rawset, rawget,
/// setmetatable, getmetatable, next and pairs for scripts, as C closures over
/// the prelude's `real` (proxy -> the table it stands for). They are Lua's
/// own (lbaselib.c) checks and steps, so their errors read the same (the
/// caller's position, the function's name as the caller spelled it), plus
/// the proxies: writes through them are refused as Redis refuses writes to
/// its read-only tables, reads see the real table.
unsafe extern "C-unwind" fn sandbox(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    ffi::lua_settop(l, 3);
    for f in [sandbox_rawset, sandbox_rawget, sandbox_setmetatable, sandbox_next] {
        ffi::lua_pushvalue(l, 1);
        ffi::lua_pushcclosure(l, f, 1);
    }
    // getmetatable's upvalues: `real`, the globals and what they show as
    // their metatable (Redis' globals have one, its libraries none).
    ffi::lua_pushvalue(l, 1);
    ffi::lua_pushvalue(l, 2);
    ffi::lua_pushvalue(l, 3);
    ffi::lua_pushcclosure(l, sandbox_getmetatable, 3);
    ffi::lua_insert(l, -2);
    // pairs hands out a `next` of its own, as Lua's (not the global one).
    ffi::lua_pushvalue(l, 1);
    ffi::lua_pushcclosure(l, sandbox_next, 1);
    ffi::lua_pushcclosure(l, sandbox_pairs, 1);
    6
}

/// Replaces the table at `idx` with the one it stands for, if a proxy.
unsafe fn see_through(l: *mut mlua::ffi::lua_State, idx: std::ffi::c_int) {
    use mlua::ffi;
    ffi::lua_pushvalue(l, idx);
    if ffi::lua_rawget(l, ffi::lua_upvalueindex(1)) == ffi::LUA_TNIL {
        ffi::lua_pop(l, 1);
    } else {
        ffi::lua_replace(l, idx);
    }
}

/// Raises Redis' read-only table error if the table at 1 is a proxy. As
/// Redis' (raised inside lua_rawset), it carries no position.
unsafe fn refuse_proxy(l: *mut mlua::ffi::lua_State) {
    use mlua::ffi;
    ffi::lua_pushvalue(l, 1);
    if ffi::lua_rawget(l, ffi::lua_upvalueindex(1)) != ffi::LUA_TNIL {
        ffi::lua_pushstring(l, c"Attempt to modify a readonly table".as_ptr());
        ffi::lua_error(l);
    }
    ffi::lua_pop(l, 1);
}

unsafe extern "C-unwind" fn sandbox_rawset(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
    ffi::luaL_checkany(l, 2);
    ffi::luaL_checkany(l, 3);
    refuse_proxy(l);
    ffi::lua_settop(l, 3);
    ffi::lua_rawset(l, 1);
    1
}

unsafe extern "C-unwind" fn sandbox_rawget(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
    ffi::luaL_checkany(l, 2);
    see_through(l, 1);
    ffi::lua_settop(l, 2);
    ffi::lua_rawget(l, 1);
    1
}

unsafe extern "C-unwind" fn sandbox_setmetatable(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    let t = ffi::lua_type(l, 2);
    ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
    ffi::luaL_argcheck(l, (t == ffi::LUA_TNIL || t == ffi::LUA_TTABLE) as std::ffi::c_int, 2, c"nil or table expected".as_ptr());
    refuse_proxy(l);
    if ffi::luaL_getmetafield(l, 1, c"__metatable".as_ptr()) != ffi::LUA_TNIL {
        ffi::luaL_error(l, c"cannot change a protected metatable".as_ptr());
    }
    ffi::lua_settop(l, 2);
    ffi::lua_setmetatable(l, 1);
    1
}

unsafe extern "C-unwind" fn sandbox_getmetatable(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    ffi::luaL_checkany(l, 1);
    ffi::lua_pushvalue(l, 1);
    if ffi::lua_rawget(l, ffi::lua_upvalueindex(1)) != ffi::LUA_TNIL {
        if ffi::lua_rawequal(l, -1, ffi::lua_upvalueindex(2)) != 0 {
            ffi::lua_pushvalue(l, ffi::lua_upvalueindex(3));
        } else {
            ffi::lua_pushnil(l);
        }
        return 1;
    }
    if ffi::lua_getmetatable(l, 1) == 0 {
        ffi::lua_pushnil(l);
        return 1;
    }
    // The __metatable field if there is one, else the metatable.
    ffi::luaL_getmetafield(l, 1, c"__metatable".as_ptr());
    1
}

unsafe extern "C-unwind" fn sandbox_next(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
    see_through(l, 1);
    ffi::lua_settop(l, 2);
    if ffi::lua_next(l, 1) != 0 {
        2
    } else {
        ffi::lua_pushnil(l);
        1
    }
}

unsafe extern "C-unwind" fn sandbox_pairs(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
    ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
    ffi::lua_pushvalue(l, 1);
    ffi::lua_pushnil(l);
    3
}

/// The script coroutine's hook: raises a parked call's error reply, watches
/// the clock for busy-reply-threshold and SCRIPT KILL, and once the script
/// is busy yields now and then so that its core serves others (`drive`).
/// Straight from the Lua API, as `co_hook`: mlua's hooks cannot yield in
/// Lua 5.1, whose VM can.
unsafe extern "C-unwind" fn script_hook(l: *mut mlua::ffi::lua_State, _: *mut mlua::ffi::lua_Debug) {
    use mlua::ffi;
    // Decided first, so that nothing needing a drop is alive at lua_error.
    let action = CURRENT.with(|c| {
        let run = c.borrow();
        let Some(run) = run.as_ref() else { return 0 };
        if run.raise_next.replace(false) {
            return 1;
        }
        if run.busy.check().is_err() {
            return 2;
        }
        if run.busy.pause_due() && busy::yieldable(l) {
            run.paused.set(true);
            return 3;
        }
        0
    });
    match action {
        1 => {
            ffi::lua_pushstring(l, c"kvick: raised reply".as_ptr());
            ffi::lua_error(l);
        }
        2 => {
            ffi::lua_pushstring(l, c"Script killed by user with SCRIPT KILL...".as_ptr());
            ffi::lua_error(l);
        }
        3 => {
            ffi::lua_yield(l, 0);
        }
        _ => {}
    }
}

/// Resumes the script's coroutine until it finishes, running the commands
/// it yields for. Returns the encoded reply, or the script's failure.
async fn drive(
    s: &mut Session,
    txn: &mut Option<Txn>,
    st: &Rc<RunState>,
    script: &Script,
    keys: &[Vec<u8>],
    argv: &[Vec<u8>],
) -> Result<Vec<u8>, Failure> {
    let e = engine();
    let seq = |items: &[Vec<u8>]| -> mlua::Result<Value> {
        let t = e.lua.create_table_with_capacity(items.len(), 0)?;
        for (i, item) in items.iter().enumerate() {
            t.raw_set(i + 1, e.lua.create_string(item)?)?;
        }
        Ok(Value::Table(t))
    };
    let kt = seq(keys).map_err(|e| format!("ERR {}", e))?;
    let at = seq(argv).map_err(|e| format!("ERR {}", e))?;
    let thread = e.coroutine(&script.func).map_err(|e| format!("ERR {}", e))?;
    let (saved_db, saved_proto) = (s.db, s.proto);
    let mut resume_with = if script.function {
        MultiValue::from_vec(vec![kt.clone(), at.clone()])
    } else {
        MultiValue::new()
    };
    let mut result;
    loop {
        // Another script of this core may have run while this one was parked.
        if !script.function {
            let _ = e.globals.raw_set("KEYS", kt.clone());
            let _ = e.globals.raw_set("ARGV", at.clone());
        }
        let every = if st.raise_next.get() {
            1
        } else {
            busy::HOOK_EVERY
        };
        // SAFETY: a thread value's pointer is its lua_State.
        unsafe {
            mlua::ffi::lua_sethook(thread.to_pointer() as *mut mlua::ffi::lua_State, Some(script_hook), mlua::ffi::LUA_MASKCOUNT, every as std::ffi::c_int);
        }
        CURRENT.with(|c| *c.borrow_mut() = Some(st.clone()));
        result = thread.resume::<Value>(std::mem::replace(&mut resume_with, MultiValue::new()));
        CURRENT.with(|c| *c.borrow_mut() = None);
        if result.is_err() || thread.status() != ThreadStatus::Resumable {
            break;
        }
        if st.paused.replace(false) {
            // Busy: let this core's other connections in (they get -BUSY,
            // SCRIPT KILL reaches the script). A script running inline
            // locks its keys first, as nothing else may touch them.
            if txn.is_none() {
                if let Locked::Keys(_) = st.locked {
                    let _ = lock_undeclared(s, txn, st, Vec::new()).await;
                }
            }
            glommio::timer::sleep(std::time::Duration::from_micros(200)).await;
            continue;
        }
        // Yielded by the prelude's pcall rather than by redis.call itself.
        let via_pcall = matches!(result, Ok(Value::Boolean(true)));
        let Some(p) = st.pending.borrow_mut().take() else {
            // The script body itself called coroutine.yield.
            result = Err(mlua::Error::runtime(
                "attempt to yield from outside a coroutine",
            ));
            break;
        };
        let saved_out = std::mem::take(&mut s.out);
        s.db = st.db.get();
        s.proto = st.proto();
        let mut refused = None;
        if !p.lock.is_empty() {
            refused = lock_undeclared(s, txn, st, p.lock).await.err();
            if refused.is_none() && commands::by_index(p.ci).is_write() {
                st.wrote.set(true);
                st.busy.wrote();
            }
        }
        match txn {
            _ if let Some(e) = refused => Reply::new(&mut s.out, s.proto).error(e),
            Some(txn) => transactions::run_queued(s, txn, p.ci, p.args).await,
            // Run inline (see `run_here`), a script parks only commands that
            // touch no data (PING, ECHO, TIME), which finish without waiting.
            None => {
                let Run::Conn(f) = commands::by_index(p.ci).run else {
                    unreachable!("an inline script runs its shard commands itself")
                };
                s.core.clients.borrow_mut().stats.commands_processed += 1;
                f(s, p.args).await
            }
        }
        st.db.set(s.db);
        let reply = std::mem::replace(&mut s.out, saved_out);
        (s.db, s.proto) = (saved_db, saved_proto);
        let (status, v) =
            convert::reply_to_lua(&e.lua, &reply).map_err(|e| format!("ERR {}", e))?;
        if via_pcall {
            // That pcall raises it, as Lua's would catch redis.call's error.
            let raise = status == ST_ERR && p.raise;
            resume_with = MultiValue::from_vec(vec![v, Value::Boolean(raise)]);
            continue;
        }
        if status == ST_ERR && p.raise {
            if let Value::Table(t) = &v {
                *st.err.borrow_mut() = Some(t.clone());
            }
            st.raise_next.set(true);
        }
        resume_with = MultiValue::from_vec(vec![v]);
    }
    if st.restart.get() {
        return Err(String::new().into());
    }
    match result {
        Ok(v) => {
            let mut out = Vec::new();
            let mut r = Reply::new(&mut out, s.proto);
            convert::lua_to_reply(&v, &mut r, st.resp3.get(), 0);
            e.recycle(thread);
            Ok(out)
        }
        Err(err) => Err(error_reply(&e, &thread, st, &err)),
    }
}

/// A failed script: its error line (with `{sha}` where the script's SHA
/// goes), and whether INFO errorstats count it (not if it is a command's
/// error the script raised or returned, counted when the command replied).
struct Failure {
    line: String,
    counted: bool,
}

impl From<String> for Failure {
    fn from(line: String) -> Self {
        Failure { line, counted: true }
    }
}

/// Locks `keys`, which a script of `Locked::Keys` reached without declaring
/// them, before the call that names them runs (`Txn::add`: waiting only
/// above every shard the script holds, so growing the transaction cannot
/// deadlock). A script that ran inline so far gets its transaction here: it
/// ran synchronously, so no other task came between its calls and its
/// declared keys (all of this core) are locked now as if from its start.
/// Nothing is released before the end (two-phase locking), so the script
/// stays atomic. If another transaction holds a key it may not wait for:
/// before any write the script reruns with every shard locked (`restart`);
/// after one it polls for the key, and only if it is still held after
/// UNDECLARED_WAIT does that call fail, and this core runs the script with
/// every shard locked from then on.
async fn lock_undeclared(s: &mut Session, txn: &mut Option<Txn>, st: &RunState, keys: Vec<Vec<u8>>) -> Result<(), &'static str> {
    let Locked::Keys(declared) = &st.locked else {
        unreachable!("a script holding every shard has no undeclared keys")
    };
    let core = s.core.clone();
    let (db, mode) = (st.db.get(), if st.readonly { Mode::Shared } else { Mode::Exclusive });
    let mut added = true;
    let t = match txn {
        Some(t) => t,
        None => {
            let t = txn.insert(Txn::empty(&core, s.info.id));
            let groups = crate::server::txn::group_keys(&core, declared.iter().cloned().enumerate());
            for (shard, set) in crate::server::txn::lock_sets(db, &groups, mode) {
                added &= t.add(shard, set).await;
            }
            t
        }
    };
    if added {
        // Ascending, so that each shard above the held ones may wait.
        let mut groups = crate::server::txn::group_keys(&core, keys.iter().cloned().enumerate());
        groups.sort_by_key(|(shard, _)| *shard);
        'sets: for (shard, set) in crate::server::txn::lock_sets(db, &groups, mode) {
            let wanted = set.keys.clone();
            if t.add(shard, set).await {
                continue;
            }
            // Held by another transaction. Before any write a rerun with
            // every shard locked costs nothing. After one, wait for the
            // holder to let go, polling rather than queueing (a queued
            // request could close a cycle of waits), for at most
            // UNDECLARED_WAIT: a cycle (the holder waiting for one of this
            // script's keys) ends there.
            if !st.wrote.get() {
                added = false;
                break;
            }
            let deadline = std::time::Instant::now() + UNDECLARED_WAIT;
            let mut pause = std::time::Duration::from_micros(20);
            loop {
                if std::time::Instant::now() >= deadline {
                    added = false;
                    break 'sets;
                }
                glommio::timer::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_millis(1));
                if t.add(shard, LockSet { db, keys: wanted.clone(), mode, whole_shard: false }).await {
                    break;
                }
            }
        }
    }
    // Spanning commands join the transaction through the session's scope.
    s.exec = Some(t.scope());
    if added {
        st.undeclared.borrow_mut().extend(keys);
        return Ok(());
    }
    if !st.wrote.get() {
        st.restart.set(true);
        return Err("ERR script restarts with every shard locked");
    }
    st.lock_whole_next.set(true);
    Err("ERR kvick: a script reached a key missing from KEYS after writing while another transaction held it; list every key the script uses in KEYS (it will lock every shard from its next run)")
}

/// How long a script that wrote waits for an undeclared key another
/// transaction holds (`lock_undeclared`).
const UNDECLARED_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// The error line of a failed script, as Redis' error handler builds it:
/// a raised table's `err`, or "ERR " and Lua's message, followed by the
/// script and the line it failed at; uncounted if the table says so.
fn error_reply(e: &Engine, thread: &mlua::Thread, st: &RunState, err: &mlua::Error) -> Failure {
    let text = lua_error_text(err);
    let text = text.split("\nstack traceback:").next().unwrap_or_default();
    let raised = st
        .err
        .borrow_mut()
        .take()
        .filter(|_| text.starts_with("table: ") || text == RAISED);
    let (msg, counted) = match raised {
        Some(t) => match t.raw_get::<Value>("err") {
            Ok(Value::String(s)) => (s.to_string_lossy(), !convert::not_counted(&t)),
            _ => ("ERR unknown error".to_string(), true),
        },
        None => (format!("ERR {}", text), true),
    };
    let line = match e
        .where_fn
        .call::<(Option<String>, Option<i64>)>(thread.clone())
    {
        Ok((Some(source), Some(line))) => {
            format!("{} script: {{sha}}, on {}:{}.", msg, source, line)
        }
        _ => msg,
    };
    Failure { line, counted }
}
