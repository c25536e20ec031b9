//! Redis functions (functions.c, function_lua.c): libraries of named Lua
//! functions, loaded with FUNCTION LOAD and run with FCALL.
//!
//! A library's code runs once when it loads, in an environment that holds
//! only a small `redis` table whose `register_function` names its
//! functions; afterwards the functions see the same globals as EVAL scripts
//! (but no KEYS/ARGV: they get keys and arguments as parameters). A function
//! runs like an EVAL script (`super::run`): under the locks of its declared
//! keys, atomic across cores.
//!
//! Every core holds every library, compiled into its own Lua state. Core 0
//! holds the authoritative set: each change (LOAD, DELETE, FLUSH, RESTORE)
//! is checked and applied there, one at a time, and numbers a new version
//! of the whole set of library sources; the changing connection then hands
//! that version to every core, which compiles the libraries it lacks. A core
//! ignores a version older than its own, so changes racing from different
//! connections leave every core with the last one.
//!
//! Persistence: core 0 journals each change as its command (its AOF), and
//! its snapshot file and AOF base carry the libraries as RDB FUNCTION2
//! records (`persistence::snapshot`, `persistence::aof`); at startup the
//! loaders hand the libraries they read to `change`.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use hashbrown::HashMap;
use mlua::{Function, Lua, MultiValue, Table, Value};

use super::{engine, lua_error_text, run, Script, ScriptFlags};
use crate::commands::OwnedArgs;
use crate::persistence::rdb::{self, Reader};
use crate::persistence::rdbfile::op;
use crate::server::core::Core;
use crate::server::session::Session;

/// Function flags, in the order Redis lists them (FUNCTION LIST).
pub const FLAGS: [&str; 5] = [
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];
const NO_WRITES: u8 = 1;

/// How long a library's code may run while it loads (Redis' LOAD_TIMEOUT_MS).
const LOAD_TIMEOUT_MS: u64 = 500;

const NAME_RULES: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// One registered function of this core.
pub struct Func {
    pub name: String,
    pub lib: String,
    pub desc: Option<Vec<u8>>,
    /// Bit i set: `FLAGS[i]`.
    pub flags: u8,
    pub(super) script: Rc<Script>,
}

/// One library of this core.
pub struct Library {
    pub name: String,
    /// The whole code FUNCTION LOAD got, metadata line included.
    pub code: Arc<Vec<u8>>,
    /// In registration order.
    pub funcs: Vec<Rc<Func>>,
}

/// The sources of every library at one version, by name: what a core compiles.
pub type Sources = Arc<Vec<(String, Arc<Vec<u8>>)>>;

#[derive(Default)]
struct Registry {
    version: u64,
    libs: BTreeMap<String, Rc<Library>>,
    /// By lowercase name: function names are case-insensitive in Redis.
    funcs: HashMap<String, Rc<Func>>,
}

impl Registry {
    fn reindex(&mut self) {
        self.funcs = index(&self.libs);
    }

    fn sources(&self) -> Sources {
        Arc::new(
            self.libs
                .values()
                .map(|l| (l.name.clone(), l.code.clone()))
                .collect(),
        )
    }
}

fn index(libs: &BTreeMap<String, Rc<Library>>) -> HashMap<String, Rc<Func>> {
    libs.values()
        .flat_map(|l| l.funcs.iter())
        .map(|f| (f.name.to_ascii_lowercase(), f.clone()))
        .collect()
}

/// The library being loaded: what `redis.register_function` adds to.
struct Loading {
    lib: String,
    funcs: Vec<Rc<Func>>,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
    static LOADING: RefCell<Option<Loading>> = const { RefCell::new(None) };
}

fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

/// Lua's lua_isstring + lua_tostring: strings, and numbers as Lua prints them.
fn lua_string(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Number(n) => Some(super::convert::fmt_number(*n, 14).into_bytes()),
        Value::Integer(n) => Some(n.to_string().into_bytes()),
        _ => None,
    }
}

fn fail<T>(msg: &str) -> mlua::Result<T> {
    Err(mlua::Error::runtime(msg))
}

/// `redis.register_function(name, callback)` or
/// `redis.register_function{function_name=, callback=, flags=, description=}`
/// (Redis' luaRegisterFunction), while a library loads.
pub(super) fn register(_: &Lua, args: MultiValue) -> mlua::Result<()> {
    if LOADING.with(|l| l.borrow().is_none()) {
        return fail("redis.register_function can only be called on FUNCTION LOAD command");
    }
    let (name, callback, desc, flags) = match args.len() {
        1 => named_args(&args[0])?,
        2 => {
            let Some(name) = lua_string(&args[0]) else {
                return fail("first argument to redis.register_function must be a string");
            };
            let Value::Function(f) = &args[1] else {
                return fail("second argument to redis.register_function must be a function");
            };
            (name, f.clone(), None, 0)
        }
        _ => return fail("wrong number of arguments to redis.register_function"),
    };
    if !valid_name(&name) {
        return fail(NAME_RULES);
    }
    let name = String::from_utf8(name).expect("checked ASCII");
    LOADING.with(|l| {
        let mut l = l.borrow_mut();
        let loading = l.as_mut().expect("checked above");
        if loading.funcs.iter().any(|f| f.name == name) {
            return fail("Function already exists in the library");
        }
        let script = Rc::new(Script {
            func: callback,
            flags: ScriptFlags {
                no_writes: flags & NO_WRITES != 0,
            },
            function: true,
            whole: Cell::new(false),
        });
        loading.funcs.push(Rc::new(Func {
            name,
            lib: loading.lib.clone(),
            desc,
            flags,
            script,
        }));
        Ok(())
    })
}

type Registration = (Vec<u8>, Function, Option<Vec<u8>>, u8);

/// The table form of register_function (luaRegisterFunctionReadNamedArgs).
fn named_args(v: &Value) -> mlua::Result<Registration> {
    let Value::Table(t) = v else {
        return fail("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).");
    };
    let (mut name, mut callback, mut desc, mut flags) = (None, None, None, 0u8);
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, v) = pair?;
        let Some(key) = lua_string(&k) else {
            return fail("named argument key given to redis.register_function is not a string");
        };
        if key.eq_ignore_ascii_case(b"function_name") {
            let Some(n) = lua_string(&v) else {
                return fail("function_name argument given to redis.register_function must be a string");
            };
            name = Some(n);
        } else if key.eq_ignore_ascii_case(b"description") {
            let Some(d) = lua_string(&v) else {
                return fail("description argument given to redis.register_function must be a string");
            };
            desc = Some(d);
        } else if key.eq_ignore_ascii_case(b"callback") {
            let Value::Function(f) = v else {
                return fail("callback argument given to redis.register_function must be a function");
            };
            callback = Some(f);
        } else if key.eq_ignore_ascii_case(b"flags") {
            let Value::Table(list) = v else {
                return fail("flags argument to redis.register_function must be a table representing function flags");
            };
            flags = read_flags(&list).ok_or_else(|| mlua::Error::runtime("unknown flag given"))?;
        } else {
            return fail("unknown argument given to redis.register_function");
        }
    }
    let Some(name) = name else {
        return fail("redis.register_function must get a function name argument");
    };
    let Some(callback) = callback else {
        return fail("redis.register_function must get a callback argument");
    };
    Ok((name, callback, desc, flags))
}

/// A flags table: t[1], t[2], ... up to the first nil, each a known flag
/// (case-insensitive). None if one is not.
fn read_flags(list: &Table) -> Option<u8> {
    let mut flags = 0u8;
    for i in 1.. {
        let v: Value = list.raw_get(i).ok()?;
        if v.is_nil() {
            break;
        }
        let name = lua_string(&v)?;
        let bit = FLAGS.iter().position(|f| f.as_bytes().eq_ignore_ascii_case(&name))?;
        flags |= 1 << bit;
    }
    Some(flags)
}

/// The `#!lua name=<lib>` line (Redis' functionExtractLibMetaData, with the
/// name and engine checks of functionsCreateWithLibraryCtx): the library's
/// name and where the line ends.
fn parse_meta(code: &[u8]) -> Result<(String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid library metadata".into());
    };
    let mut parts = code[..end]
        .split(|b| b.is_ascii_whitespace())
        .filter(|p| !p.is_empty());
    let engine = &parts.next().expect("starts with #!")[2..];
    let mut name = None;
    for part in parts {
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err(
                    "ERR Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(&part[5..]);
        } else {
            return Err(format!(
                "ERR Invalid metadata value given: {}",
                String::from_utf8_lossy(part)
            ));
        }
    }
    let Some(name) = name else {
        return Err("ERR Library name was not given".into());
    };
    if !valid_name(name) {
        return Err(format!("ERR {}", NAME_RULES));
    }
    if !engine.eq_ignore_ascii_case(b"lua") {
        return Err(format!(
            "ERR Engine '{}' not found",
            String::from_utf8_lossy(engine)
        ));
    }
    Ok((String::from_utf8(name.to_vec()).expect("checked ASCII"), end))
}

/// Compiles a library into this core's Lua state and runs its code, which
/// registers its functions (Redis' luaEngineCreate). The body keeps the
/// metadata line's newline, so line numbers match the code sent.
fn compile(name: &str, code: &Arc<Vec<u8>>, body_start: usize) -> Result<Library, String> {
    let e = engine();
    let internal = |err: mlua::Error| format!("ERR {}", err);
    let f = e
        .lua
        .load(&code[body_start..])
        .set_name("@user_function")
        .into_function()
        .map_err(|err| format!("ERR Error compiling function: {}", lua_error_text(&err)))?;
    let env: Table = e.lib_env.call(()).map_err(internal)?;
    f.set_environment(env.clone()).map_err(internal)?;
    let thread = e.lua.create_thread(f).map_err(internal)?;
    let start = crate::util::now_ms();
    thread.set_hook(
        mlua::HookTriggers::new().every_nth_instruction(super::busy::HOOK_EVERY),
        move |_, _| {
            if crate::util::now_ms().saturating_sub(start) > LOAD_TIMEOUT_MS {
                return fail("FUNCTION LOAD timeout");
            }
            Ok(mlua::VmState::Continue)
        },
    );
    LOADING.with(|l| {
        *l.borrow_mut() = Some(Loading {
            lib: name.to_string(),
            funcs: Vec::new(),
        })
    });
    let result = thread.resume::<MultiValue>(());
    let loaded = LOADING
        .with(|l| l.borrow_mut().take())
        .expect("set above");
    if let Err(err) = result {
        let text = lua_error_text(&err);
        let text = text.split("\nstack traceback:").next().unwrap_or_default();
        return Err(format!("ERR Error registering functions: ERR {}", text));
    }
    if loaded.funcs.is_empty() {
        return Err("ERR No functions registered".into());
    }
    e.lib_ready.call::<()>(env).map_err(internal)?;
    Ok(Library {
        name: name.to_string(),
        code: code.clone(),
        funcs: loaded.funcs,
    })
}

/// Creates a library from its code into `libs` (Redis'
/// functionsCreateWithLibraryCtx): the name, the engine, a clash with a
/// library of that name (unless `replace`), the code, clashes of its
/// functions with other libraries' functions.
fn create(
    libs: &mut BTreeMap<String, Rc<Library>>,
    funcs: &HashMap<String, Rc<Func>>,
    code: Arc<Vec<u8>>,
    replace: bool,
) -> Result<String, String> {
    let (name, body_start) = parse_meta(&code)?;
    if !replace && libs.contains_key(&name) {
        return Err(format!("ERR Library '{}' already exists", name));
    }
    let lib = compile(&name, &code, body_start)?;
    for f in &lib.funcs {
        if funcs
            .get(&f.name.to_ascii_lowercase())
            .is_some_and(|g| g.lib != name)
        {
            return Err(format!("ERR Function {} already exists", f.name));
        }
    }
    libs.insert(name.clone(), Rc::new(lib));
    Ok(name)
}

/// What FUNCTION RESTORE does with the libraries it already has.
#[derive(Clone, Copy)]
pub enum Policy {
    Append,
    Replace,
    Flush,
}

/// A change of the set of libraries, applied on core 0 (`apply`).
pub enum Op {
    Load { code: Vec<u8>, replace: bool },
    Delete(Vec<u8>),
    Flush,
    Restore { payload: Vec<u8>, policy: Policy },
}

/// An applied change: the loaded library's name (LOAD), and the new
/// version for every core (`sync`).
pub struct Change {
    pub loaded: Option<String>,
    pub version: u64,
    pub sources: Sources,
}

/// Checks and applies a change on this core, which must be core 0.
pub fn apply(op: Op) -> Result<Change, String> {
    REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        let mut loaded = None;
        match op {
            Op::Load { code, replace } => {
                let r = &mut *r;
                loaded = Some(create(&mut r.libs, &r.funcs, Arc::new(code), replace)?);
            }
            Op::Delete(name) => {
                let name = String::from_utf8_lossy(&name);
                if r.libs.remove(name.as_ref()).is_none() {
                    return Err("ERR Library not found".into());
                }
            }
            Op::Flush => r.libs.clear(),
            Op::Restore { payload, policy } => {
                let new = read_dump(&payload)?;
                join(&mut r.libs, new, policy)?;
            }
        }
        r.reindex();
        r.version += 1;
        Ok(Change {
            loaded,
            version: r.version,
            sources: r.sources(),
        })
    })
}

/// The libraries of a FUNCTION DUMP payload (Redis' functionRestoreCommand
/// and rdbFunctionLoad), compiled here.
fn read_dump(payload: &[u8]) -> Result<BTreeMap<String, Rc<Library>>, String> {
    if !rdb::verify_payload(payload) {
        return Err("ERR DUMP payload version or checksum are wrong".into());
    }
    let mut libs = BTreeMap::new();
    let mut funcs = HashMap::new();
    let mut r = Reader::new(payload);
    while payload.len() - r.pos() > 10 {
        match r.byte() {
            Ok(op::FUNCTION2) => {}
            Ok(op::FUNCTION) => return Err("ERR Pre-GA function format not supported".into()),
            _ => return Err("ERR given type is not a function".into()),
        }
        let code = r
            .string()
            .map_err(|_| "ERR Failed loading library payload".to_string())?
            .into_owned();
        create(&mut libs, &funcs, Arc::new(code), false)?;
        funcs = index(&libs);
    }
    Ok(libs)
}

/// Adds restored libraries to `libs` (Redis' libraryJoin); nothing changes
/// on an error.
fn join(
    libs: &mut BTreeMap<String, Rc<Library>>,
    new: BTreeMap<String, Rc<Library>>,
    policy: Policy,
) -> Result<(), String> {
    let replace = match policy {
        Policy::Flush => {
            *libs = new;
            return Ok(());
        }
        Policy::Append => false,
        Policy::Replace => true,
    };
    let mut kept = libs.clone();
    for name in new.keys() {
        if kept.remove(name).is_some() && !replace {
            return Err(format!("ERR Library {} already exists", name));
        }
    }
    let funcs = index(&kept);
    for f in new.values().flat_map(|l| l.funcs.iter()) {
        if funcs.contains_key(&f.name.to_ascii_lowercase()) {
            return Err(format!("ERR Function {} already exists", f.name));
        }
    }
    kept.extend(new);
    *libs = kept;
    Ok(())
}

/// Brings this core to `version` of the libraries (a no-op if it has that
/// or a later one): compiles the libraries it lacks, drops the others.
pub fn sync(version: u64, sources: &Sources) {
    REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        if version <= r.version {
            return;
        }
        let mut libs = BTreeMap::new();
        for (name, code) in sources.iter() {
            let lib = match r.libs.get(name) {
                Some(l) if l.code == *code => Some(l.clone()),
                // Compiled on core 0 already, so it compiles here.
                _ => parse_meta(code)
                    .and_then(|(n, start)| compile(&n, code, start))
                    .ok()
                    .map(Rc::new),
            };
            if let Some(lib) = lib {
                libs.insert(name.clone(), lib);
            }
        }
        r.libs = libs;
        r.reindex();
        r.version = version;
    })
}

/// Applies `ops` in order on core 0 (stopping at the first error), then
/// brings every core to the new version before returning, so that FCALL
/// finds the change from any connection. `journal`: the command to record
/// in core 0's journal once applied (the AOF of core 0 carries every
/// library change, and its base the libraries, `persistence::aof`).
/// Returns the name of the last library loaded.
pub async fn change(core: &Rc<Core>, ops: Vec<Op>, journal: Option<Vec<Vec<u8>>>) -> Result<Option<String>, String> {
    if ops.is_empty() {
        return Ok(None);
    }
    let c = core
        .call(0, move |c| {
            let mut last = None;
            for op in ops {
                last = Some(apply(op)?);
            }
            if let (Some(args), Some(_)) = (&journal, &last) {
                c.shard.borrow_mut().journal_global(args);
            }
            Ok::<_, String>(last)
        })
        .await?;
    let Some(c) = c else { return Ok(None) };
    let (version, sources) = (c.version, c.sources);
    core.call_all(move |_| sync(version, &sources)).await;
    Ok(c.loaded)
}

/// This core's libraries' sources, as of now (a snapshot's point in time).
pub fn sources() -> Sources {
    REGISTRY.with(|r| r.borrow().sources())
}

/// The libraries as RDB FUNCTION2 records (the library code as an RDB
/// string), as redis-server writes them in dump.rdb and FUNCTION DUMP.
pub fn write_rdb(out: &mut Vec<u8>, sources: &Sources, compress: bool) {
    for (_, code) in sources.iter() {
        out.push(op::FUNCTION2);
        rdb::write_string(out, code, compress);
    }
}

/// The function FCALL names, if this core has it.
pub fn lookup(name: &[u8]) -> Option<Rc<Func>> {
    let name = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
    REGISTRY.with(|r| r.borrow().funcs.get(&name).cloned())
}

/// This core's libraries, by name.
pub fn libraries() -> Vec<Rc<Library>> {
    REGISTRY.with(|r| r.borrow().libs.values().cloned().collect())
}

/// INFO memory's view of this core's functions: how many functions and
/// libraries, and the bytes of the libraries' code.
pub fn memory_info() -> (usize, usize, usize) {
    REGISTRY.with(|r| {
        let r = r.borrow();
        (r.funcs.len(), r.libs.len(), r.libs.values().map(|l| l.name.len() + l.code.len()).sum())
    })
}

/// FUNCTION DUMP: every library as an RDB FUNCTION2 record, then the RDB
/// version and a CRC-64, as redis-server writes it.
pub fn dump(compress: bool) -> Vec<u8> {
    let mut out = Vec::new();
    write_rdb(&mut out, &sources(), compress);
    out.extend_from_slice(&rdb::RDB_VERSION.to_le_bytes());
    let crc = crate::persistence::crc64::crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// FCALL and FCALL_RO: `a` is the whole command.
pub async fn fcall(s: &mut Session, a: OwnedArgs, ro: bool) {
    let Some(f) = lookup(a.get(1)) else {
        return s.reply().error("ERR Function not found");
    };
    let numkeys = match crate::resp::parser::parse_i64(a.get(2)) {
        Some(n) if n > (a.len() - 3) as i64 => {
            return s
                .reply()
                .error("ERR Number of keys can't be greater than number of args")
        }
        Some(n) if n < 0 => return s.reply().error("ERR Number of keys can't be negative"),
        Some(n) => n as usize,
        None => return s.reply().error("ERR Bad number of keys provided"),
    };
    let no_writes = f.flags & NO_WRITES != 0;
    if ro && !no_writes {
        return s
            .reply()
            .error("ERR Can not execute a script with write flag using *_ro command.");
    }
    let keys: Vec<Vec<u8>> = (3..3 + numkeys).map(|i| a.get(i).to_vec()).collect();
    let argv: Vec<Vec<u8>> = (3 + numkeys..a.len()).map(|i| a.get(i).to_vec()).collect();
    let source = super::Source::Function(f.name.clone());
    run(s, &f.name, &f.script, source, keys, argv, no_writes, Some(a)).await;
}
