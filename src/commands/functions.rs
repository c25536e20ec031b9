//! FUNCTION and FCALL / FCALL_RO (Redis' functions.c). The libraries and
//! how a change reaches every core are `crate::scripting::functions`.

use super::{cmd, flags::*, numkeys_at, ArgList, BoxFuture, Command, OwnedArgs, Run, NOKEYS};
use crate::config;
use crate::scripting::functions::{self, Op, Policy};
use crate::server::session::Session;

const G: &str = "scripting";

fn fcall_keys(a: &dyn ArgList) -> [std::ops::Range<usize>; 2] {
    numkeys_at(a, 2, 0..0)
}

pub static COMMANDS: &[Command] = &[
    cmd(
        "fcall",
        -3,
        NOSCRIPT | STALE | MAY_REPLICATE,
        NOKEYS,
        G,
        "7.0.0",
        "Invoke a function",
        Run::Conn(fcall),
    )
    .with_keys(fcall_keys),
    cmd(
        "fcall_ro",
        -3,
        NOSCRIPT | STALE | READONLY,
        NOKEYS,
        G,
        "7.0.0",
        "Invoke a read-only function",
        Run::Conn(fcall_ro),
    )
    .with_keys(fcall_keys),
    cmd(
        "function",
        -2,
        0,
        NOKEYS,
        G,
        "7.0.0",
        "A container for function commands",
        Run::Conn(function_help),
    )
    .with_subs(FUNCTION),
];

static FUNCTION: &[Command] = &[
    cmd(
        "function|load",
        -3,
        WRITE | DENYOOM | NOSCRIPT,
        NOKEYS,
        G,
        "7.0.0",
        "Create a function with the given arguments (name, code, description)",
        Run::Conn(function_change),
    ),
    cmd(
        "function|delete",
        3,
        WRITE | NOSCRIPT,
        NOKEYS,
        G,
        "7.0.0",
        "Delete a function by name",
        Run::Conn(function_change),
    ),
    cmd(
        "function|flush",
        -2,
        WRITE | NOSCRIPT,
        NOKEYS,
        G,
        "7.0.0",
        "Deleting all functions",
        Run::Conn(function_change),
    ),
    cmd(
        "function|restore",
        -3,
        WRITE | DENYOOM | NOSCRIPT,
        NOKEYS,
        G,
        "7.0.0",
        "Restore all the functions on the given payload",
        Run::Conn(function_change),
    ),
    cmd(
        "function|dump",
        2,
        NOSCRIPT,
        NOKEYS,
        G,
        "7.0.0",
        "Dump all functions into a serialized binary payload",
        Run::Conn(function_dump),
    ),
    cmd(
        "function|list",
        -2,
        NOSCRIPT,
        NOKEYS,
        G,
        "7.0.0",
        "List information about all the functions",
        Run::Conn(function_list),
    ),
    cmd(
        "function|stats",
        2,
        NOSCRIPT | ALLOW_BUSY,
        NOKEYS,
        G,
        "7.0.0",
        "Return information about the function currently running (name, description, duration)",
        Run::Conn(function_stats),
    ),
    cmd(
        "function|kill",
        2,
        NOSCRIPT | ALLOW_BUSY,
        NOKEYS,
        G,
        "7.0.0",
        "Kill the function currently in execution.",
        Run::Conn(function_kill),
    ),
    cmd(
        "function|help",
        2,
        LOADING | STALE,
        NOKEYS,
        G,
        "7.0.0",
        "Show helpful text about the different subcommands",
        Run::Conn(function_help),
    ),
];

fn fcall(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(functions::fcall(s, a, false))
}

fn fcall_ro(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(functions::fcall(s, a, true))
}

/// The change a FUNCTION LOAD/DELETE/FLUSH/RESTORE command asks for (its
/// options checked), also for replaying it from the AOF.
pub fn parse_op(a: &OwnedArgs) -> Result<Op, String> {
    if a.is(1, "load") {
        let mut replace = false;
        for i in 2..a.len() - 1 {
            if !a.is(i, "replace") {
                return Err(format!("ERR Unknown option given: {}", String::from_utf8_lossy(a.get(i))));
            }
            replace = true;
        }
        Ok(Op::Load { code: a.get(a.len() - 1).to_vec(), replace })
    } else if a.is(1, "delete") {
        Ok(Op::Delete(a.get(2).to_vec()))
    } else if a.is(1, "flush") {
        if a.len() > 3 {
            return Err(subcommand_syntax(a));
        }
        if a.len() == 3 && !a.is(2, "sync") && !a.is(2, "async") {
            return Err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option".into());
        }
        Ok(Op::Flush)
    } else if a.is(1, "restore") {
        if a.len() > 4 {
            return Err(subcommand_syntax(a));
        }
        let policy = if a.len() < 4 || a.is(3, "append") {
            Policy::Append
        } else if a.is(3, "replace") {
            Policy::Replace
        } else if a.is(3, "flush") {
            Policy::Flush
        } else {
            return Err("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.".into());
        };
        Ok(Op::Restore { payload: a.get(2).to_vec(), policy })
    } else {
        Err(subcommand_syntax(a))
    }
}

/// FUNCTION LOAD (replies the library's name), DELETE, FLUSH and RESTORE:
/// applied on core 0 and journaled as sent, as Redis propagates them.
fn function_change(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let op = match parse_op(&a) {
            Ok(op) => op,
            Err(e) => return s.reply().error(&e),
        };
        let load = matches!(op, Op::Load { .. });
        match functions::change(&s.core, vec![op], Some(a.0)).await {
            Ok(name) if load => s.reply().bulk(name.unwrap_or_default().as_bytes()),
            Ok(_) => s.reply().ok(),
            Err(e) => s.reply().error(&e),
        }
    })
}

fn function_dump(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let payload = functions::dump(config::get_int("rdbcompression") != 0);
        s.reply().bulk(&payload);
    })
}

fn function_list(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let (mut with_code, mut pattern) = (false, None);
        let mut i = 2;
        while i < a.len() {
            if !with_code && a.is(i, "withcode") {
                with_code = true;
            } else if pattern.is_none() && a.is(i, "libraryname") {
                if i + 1 >= a.len() {
                    return s.reply().error("ERR library name argument was not given");
                }
                i += 1;
                pattern = Some(a.get(i));
            } else {
                let e = format!("ERR Unknown argument {}", String::from_utf8_lossy(a.get(i)));
                return s.reply().error(&e);
            }
            i += 1;
        }
        let libs: Vec<_> = functions::libraries()
            .into_iter()
            .filter(|l| pattern.is_none_or(|p| crate::util::glob_match(p, l.name.as_bytes(), true)))
            .collect();
        let mut r = s.reply();
        r.array(libs.len());
        for lib in libs {
            r.map(if with_code { 4 } else { 3 });
            r.bulk(b"library_name");
            r.bulk(lib.name.as_bytes());
            r.bulk(b"engine");
            r.bulk(b"LUA");
            r.bulk(b"functions");
            r.array(lib.funcs.len());
            for f in &lib.funcs {
                r.map(3);
                r.bulk(b"name");
                r.bulk(f.name.as_bytes());
                r.bulk(b"description");
                match &f.desc {
                    Some(d) => r.bulk(d),
                    None => r.null(),
                }
                r.bulk(b"flags");
                let names = || {
                    functions::FLAGS
                        .iter()
                        .enumerate()
                        .filter(|(bit, _)| f.flags & (1 << bit) != 0)
                };
                r.set(names().count());
                for (_, name) in names() {
                    r.simple(name);
                }
            }
            if with_code {
                r.bulk(b"library_code");
                r.bulk(&lib.code);
            }
        }
    })
}

fn function_stats(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        let libs = functions::libraries();
        let nfuncs: usize = libs.iter().map(|l| l.funcs.len()).sum();
        // A function shows once it is past busy-reply-threshold: before,
        // it is just a command in flight on some core (Redis' clients can
        // only ask while one is busy too). Clients of its own core wait.
        let running = match crate::scripting::running_function() {
            Ok(running) => running,
            Err(busy_eval) => return s.reply().error(busy_eval),
        };
        let mut r = s.reply();
        r.map(2);
        r.bulk(b"running_script");
        match running {
            None => r.null(),
            Some(f) => {
                r.map(3);
                r.bulk(b"name");
                r.bulk(f.name.as_bytes());
                r.bulk(b"command");
                r.array(f.command.len());
                for arg in &f.command {
                    r.bulk(arg);
                }
                r.bulk(b"duration_ms");
                r.int(crate::util::now_ms().saturating_sub(f.start) as i64);
            }
        }
        r.bulk(b"engines");
        r.map(1);
        r.bulk(b"LUA");
        r.map(2);
        r.bulk(b"libraries_count");
        r.int(libs.len() as i64);
        r.bulk(b"functions_count");
        r.int(nfuncs as i64);
    })
}

fn function_kill(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        match crate::scripting::kill(false) {
            None => s.reply().ok(),
            Some(e) => s.reply().error(e),
        }
    })
}

/// Redis' addReplySubcommandSyntaxError: names the subcommand as sent.
fn subcommand_syntax(a: &OwnedArgs) -> String {
    format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
        String::from_utf8_lossy(a.get(1))
    )
}

const HELP: &[&str] = &[
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
];

fn function_help(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        s.reply().array(HELP.len());
        for line in HELP {
            s.reply().simple(line);
        }
    })
}
