//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT (Redis' eval.c). The
//! scripting mechanism itself (Lua states, sandbox, conversions, atomicity)
//! is `crate::scripting`.

use super::{cmd, flags::*, numkeys_at, ArgList, BoxFuture, Command, OwnedArgs, Run, NOKEYS};
use crate::scripting;
use crate::server::session::Session;

const G: &str = "scripting";

fn eval_keys(a: &dyn ArgList) -> [std::ops::Range<usize>; 2] {
    numkeys_at(a, 2, 0..0)
}

pub static COMMANDS: &[Command] = &[
    cmd(
        "eval",
        -3,
        NOSCRIPT | STALE | MAY_REPLICATE,
        NOKEYS,
        G,
        "2.6.0",
        "Execute a Lua script server side",
        Run::Conn(eval),
    )
    .with_keys(eval_keys),
    cmd(
        "evalsha",
        -3,
        NOSCRIPT | STALE | MAY_REPLICATE,
        NOKEYS,
        G,
        "2.6.0",
        "Execute a Lua script server side",
        Run::Conn(evalsha),
    )
    .with_keys(eval_keys),
    cmd(
        "eval_ro",
        -3,
        NOSCRIPT | STALE | READONLY,
        NOKEYS,
        G,
        "7.0.0",
        "Execute a read-only Lua script server side",
        Run::Conn(eval_ro),
    )
    .with_keys(eval_keys),
    cmd(
        "evalsha_ro",
        -3,
        NOSCRIPT | STALE | READONLY,
        NOKEYS,
        G,
        "7.0.0",
        "Execute a read-only Lua script server side",
        Run::Conn(evalsha_ro),
    )
    .with_keys(eval_keys),
    cmd(
        "script",
        -2,
        0,
        NOKEYS,
        G,
        "2.6.0",
        "A container for Lua scripts management commands",
        Run::Conn(script_help),
    )
    .with_subs(SCRIPT),
];

static SCRIPT: &[Command] = &[
    cmd(
        "script|load",
        3,
        NOSCRIPT | STALE,
        NOKEYS,
        G,
        "2.6.0",
        "Load the specified Lua script into the script cache.",
        Run::Conn(script_load),
    ),
    cmd(
        "script|exists",
        -3,
        NOSCRIPT,
        NOKEYS,
        G,
        "2.6.0",
        "Check existence of scripts in the script cache.",
        Run::Conn(script_exists),
    ),
    cmd(
        "script|flush",
        -2,
        NOSCRIPT,
        NOKEYS,
        G,
        "2.6.0",
        "Remove all the scripts from the script cache.",
        Run::Conn(script_flush),
    ),
    cmd(
        "script|kill",
        2,
        NOSCRIPT | ALLOW_BUSY,
        NOKEYS,
        G,
        "2.6.0",
        "Kill the script currently in execution.",
        Run::Conn(script_kill),
    ),
    cmd(
        "script|help",
        2,
        LOADING | STALE,
        NOKEYS,
        G,
        "5.0.0",
        "Show helpful text about the different subcommands",
        Run::Conn(script_help),
    ),
];

fn eval(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(scripting::eval(s, a, false, false))
}

fn evalsha(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(scripting::eval(s, a, true, false))
}

fn eval_ro(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(scripting::eval(s, a, false, true))
}

fn evalsha_ro(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(scripting::eval(s, a, true, true))
}

fn script_load(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        match scripting::load_everywhere(&s.core, a.get(2).to_vec()).await {
            Ok(sha) => s.reply().bulk(&sha),
            Err(e) => s.reply().error(&e),
        }
    })
}

fn script_exists(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        s.reply().array(a.len() - 2);
        for i in 2..a.len() {
            let found = scripting::exists(a.get(i));
            s.reply().int(found as i64);
        }
    })
}

fn script_flush(s: &mut Session, a: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        if a.len() > 3 || (a.len() == 3 && !a.is(2, "sync") && !a.is(2, "async")) {
            return s
                .reply()
                .error("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
        }
        s.core.call_all(|_| scripting::flush_local()).await;
        s.reply().ok();
    })
}

fn script_kill(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        match scripting::kill(true) {
            None => s.reply().ok(),
            Some(e) => s.reply().error(e),
        }
    })
}

const HELP: &[&str] = &[
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
];

fn script_help(s: &mut Session, _: OwnedArgs) -> BoxFuture<'_> {
    Box::pin(async move {
        s.reply().array(HELP.len());
        for line in HELP {
            s.reply().simple(line);
        }
    })
}
