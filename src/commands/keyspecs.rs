//! Redis 7.0's key specifications and documentation-only command flags, by
//! command name: what COMMAND INFO prints and what COMMAND GETKEYS and
//! GETKEYSANDFLAGS find with, so the two can never disagree. Dispatch does not
//! use them: it finds keys with `Command::key_indexes` (the unit tests check
//! that both find the same keys).
//!
//! A command's specs are one string, specs separated by `;`. A spec is
//! `FLAGS BEGIN [FIND] [-- NOTES]`:
//! - FLAGS: the key-spec flags as COMMAND INFO prints them (`RW access delete`).
//! - BEGIN: `@N` (the keys start at argument N), `WORD@N` (after keyword WORD,
//!   searched from argument N; from the end if N < 0) or `?` (unknown).
//! - FIND: `range LASTKEY KEYSTEP LIMIT` (the default is `range 0 1 0`: one
//!   key), `keynum KEYNUMIDX FIRSTKEY KEYSTEP` or `?` (unknown).
//! - NOTES: Redis' free-text note on the spec.
//!
//! Taken from `COMMAND INFO` of redis-server 7.0.15.

use super::{ArgList, Command};
use crate::resp::Reply;

/// The key specs of every command that has keys, sorted by name (FCALL's
/// are ready for when kvick has functions).
const SPECS: &[(&str, &str)] = &[
    ("append", "RW insert @1"),
    ("bitcount", "RO access @1"),
    ("bitfield", "RW access update variable_flags @1 -- This command allows both access and modification of the key"),
    ("bitfield_ro", "RO access @1"),
    ("bitop", "OW update @2; RO access @3 range -1 1 0"),
    ("bitpos", "RO access @1"),
    ("blmove", "RW access delete @1; RW insert @2"),
    ("blmpop", "RW access delete @2 keynum 0 1 1"),
    ("blpop", "RW access delete @1 range -2 1 0"),
    ("brpop", "RW access delete @1 range -2 1 0"),
    ("brpoplpush", "RW access delete @1; RW insert @2"),
    ("bzmpop", "RW access delete @2 keynum 0 1 1"),
    ("bzpopmax", "RW access delete @1 range -2 1 0"),
    ("bzpopmin", "RW access delete @1 range -2 1 0"),
    ("copy", "RO access @1; OW update @2"),
    ("decr", "RW access update @1"),
    ("decrby", "RW access update @1"),
    ("del", "RM delete @1 range -1 1 0"),
    ("dump", "RO access @1"),
    ("eval", "RW access update @2 keynum 0 1 1 -- We cannot tell how the keys will be used so we assume the worst, RW and UPDATE"),
    ("eval_ro", "RO access @2 keynum 0 1 1 -- We cannot tell how the keys will be used so we assume the worst, RO and ACCESS"),
    ("evalsha", "RW access update @2 keynum 0 1 1"),
    ("evalsha_ro", "RO access @2 keynum 0 1 1"),
    ("exists", "RO @1 range -1 1 0"),
    ("expire", "RW update @1"),
    ("expireat", "RW update @1"),
    ("expiretime", "RO access @1"),
    ("fcall", "RW access update @2 keynum 0 1 1 -- We cannot tell how the keys will be used so we assume the worst, RW and UPDATE"),
    ("fcall_ro", "RO access @2 keynum 0 1 1 -- We cannot tell how the keys will be used so we assume the worst, RO and ACCESS"),
    ("geoadd", "RW update @1"),
    ("geodist", "RO access @1"),
    ("geohash", "RO access @1"),
    ("geopos", "RO access @1"),
    ("georadius", "RO access @1; OW update STORE@6; OW update STOREDIST@6"),
    ("georadius_ro", "RO access @1"),
    ("georadiusbymember", "RO access @1; OW update STORE@5; OW update STOREDIST@5"),
    ("georadiusbymember_ro", "RO access @1"),
    ("geosearch", "RO access @1"),
    ("geosearchstore", "OW update @1; RO access @2"),
    ("get", "RO access @1"),
    ("getbit", "RO access @1"),
    ("getdel", "RW access delete @1"),
    ("getex", "RW access update @1 -- RW and UPDATE because it changes the TTL"),
    ("getrange", "RO access @1"),
    ("getset", "RW access update @1"),
    ("hdel", "RW delete @1"),
    ("hexists", "RO @1"),
    ("hget", "RO access @1"),
    ("hgetall", "RO access @1"),
    ("hincrby", "RW access update @1"),
    ("hincrbyfloat", "RW access update @1"),
    ("hkeys", "RO access @1"),
    ("hlen", "RO @1"),
    ("hmget", "RO access @1"),
    ("hmset", "RW update @1"),
    ("hrandfield", "RO access @1"),
    ("hscan", "RO access @1"),
    ("hset", "RW update @1"),
    ("hsetnx", "RW insert @1"),
    ("hstrlen", "RO @1"),
    ("hvals", "RO access @1"),
    ("incr", "RW access update @1"),
    ("incrby", "RW access update @1"),
    ("incrbyfloat", "RW access update @1"),
    ("lcs", "RO access @1 range 1 1 0"),
    ("lindex", "RO access @1"),
    ("linsert", "RW insert @1"),
    ("llen", "RO @1"),
    ("lmove", "RW access delete @1; RW insert @2"),
    ("lmpop", "RW access delete @1 keynum 0 1 1"),
    ("lpop", "RW access delete @1"),
    ("lpos", "RO access @1"),
    ("lpush", "RW insert @1"),
    ("lpushx", "RW insert @1"),
    ("lrange", "RO access @1"),
    ("lrem", "RW delete @1"),
    ("lset", "RW update @1"),
    ("ltrim", "RW delete @1"),
    ("mget", "RO access @1 range -1 1 0"),
    ("move", "RW access update @1"),
    ("mset", "OW update @1 range -1 2 0"),
    ("msetnx", "OW insert @1 range -1 2 0"),
    ("object|encoding", "RO @2"),
    ("object|freq", "RO @2"),
    ("object|idletime", "RO @2"),
    ("object|refcount", "RO @2"),
    ("persist", "RW update @1"),
    ("pexpire", "RW update @1"),
    ("pexpireat", "RW update @1"),
    ("pexpiretime", "RO access @1"),
    ("pfadd", "RW insert @1"),
    ("pfcount", "RW access @1 range -1 1 0 -- RW because it may change the internal representation of the key, and propagate to replicas"),
    ("pfdebug", "RW access @2"),
    ("pfmerge", "RW access insert @1; RO access @2 range -1 1 0"),
    ("psetex", "OW update @1"),
    ("pttl", "RO access @1"),
    ("rename", "RW access delete @1; OW update @2"),
    ("renamenx", "RW access delete @1; OW insert @2"),
    ("restore", "OW update @1"),
    ("rpop", "RW access delete @1"),
    ("rpoplpush", "RW access delete @1; RW insert @2"),
    ("rpush", "RW insert @1"),
    ("rpushx", "RW insert @1"),
    ("sadd", "RW insert @1"),
    ("scard", "RO @1"),
    ("sdiff", "RO access @1 range -1 1 0"),
    ("sdiffstore", "OW update @1; RO access @2 range -1 1 0"),
    ("set", "RW access update variable_flags @1 -- RW and ACCESS due to the optional `GET` argument"),
    ("setbit", "RW access update @1"),
    ("setex", "OW update @1"),
    ("setnx", "OW insert @1"),
    ("setrange", "RW update @1"),
    ("sinter", "RO access @1 range -1 1 0"),
    ("sintercard", "RO access @1 keynum 0 1 1"),
    ("sinterstore", "RW update @1; RO access @2 range -1 1 0"),
    ("sismember", "RO @1"),
    ("smembers", "RO access @1"),
    ("smismember", "RO access @1"),
    ("smove", "RW access delete @1; RW insert @2"),
    ("sort", "RO access @1; RO access ? ? -- For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort; OW update ? ? -- For the optional STORE keyword. It is marked 'unknown' because the keyword can appear anywhere in the argument array"),
    ("sort_ro", "RO access @1; RO access ? ? -- For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort"),
    ("spop", "RW access delete @1"),
    ("spublish", "not_key @1"),
    ("srandmember", "RO access @1"),
    ("srem", "RW delete @1"),
    ("sscan", "RO access @1"),
    ("ssubscribe", "not_key @1 range -1 1 0"),
    ("strlen", "RO @1"),
    ("substr", "RO access @1"),
    ("sunion", "RO access @1 range -1 1 0"),
    ("sunionstore", "OW update @1; RO access @2 range -1 1 0"),
    ("sunsubscribe", "not_key @1 range -1 1 0"),
    ("touch", "RO @1 range -1 1 0"),
    ("ttl", "RO access @1"),
    ("type", "RO @1"),
    ("unlink", "RM delete @1 range -1 1 0"),
    ("watch", "RO @1 range -1 1 0"),
    ("xack", "RW update @1"),
    ("xadd", "RW update @1 -- UPDATE instead of INSERT because of the optional trimming feature"),
    ("xautoclaim", "RW delete @1"),
    ("xclaim", "RW update @1"),
    ("xdel", "RW delete @1"),
    ("xgroup|create", "RW insert @2"),
    ("xgroup|createconsumer", "RW insert @2"),
    ("xgroup|delconsumer", "RW delete @2"),
    ("xgroup|destroy", "RW delete @2"),
    ("xgroup|setid", "RW update @2"),
    ("xinfo|consumers", "RO access @2"),
    ("xinfo|groups", "RO access @2"),
    ("xinfo|stream", "RO access @2"),
    ("xlen", "RO @1"),
    ("xpending", "RO access @1"),
    ("xrange", "RO access @1"),
    ("xread", "RO access STREAMS@1 range -1 1 2"),
    ("xreadgroup", "RO access STREAMS@4 range -1 1 2"),
    ("xrevrange", "RO access @1"),
    ("xsetid", "RW update @1"),
    ("xtrim", "RW delete @1"),
    ("zadd", "RW update @1"),
    ("zcard", "RO @1"),
    ("zcount", "RO access @1"),
    ("zdiff", "RO access @1 keynum 0 1 1"),
    ("zdiffstore", "OW update @1; RO access @2 keynum 0 1 1"),
    ("zincrby", "RW access update @1"),
    ("zinter", "RO access @1 keynum 0 1 1"),
    ("zintercard", "RO access @1 keynum 0 1 1"),
    ("zinterstore", "OW update @1; RO access @2 keynum 0 1 1"),
    ("zlexcount", "RO access @1"),
    ("zmpop", "RW access delete @1 keynum 0 1 1"),
    ("zmscore", "RO access @1"),
    ("zpopmax", "RW access delete @1"),
    ("zpopmin", "RW access delete @1"),
    ("zrandmember", "RO access @1"),
    ("zrange", "RO access @1"),
    ("zrangebylex", "RO access @1"),
    ("zrangebyscore", "RO access @1"),
    ("zrangestore", "OW update @1; RO access @2"),
    ("zrank", "RO access @1"),
    ("zrem", "RW delete @1"),
    ("zremrangebylex", "RW delete @1"),
    ("zremrangebyrank", "RW delete @1"),
    ("zremrangebyscore", "RW delete @1"),
    ("zrevrange", "RO access @1"),
    ("zrevrangebylex", "RO access @1"),
    ("zrevrangebyscore", "RO access @1"),
    ("zrevrank", "RO access @1"),
    ("zscan", "RO access @1"),
    ("zscore", "RO access @1"),
    ("zunion", "RO access @1 keynum 0 1 1"),
    ("zunionstore", "OW update @1; RO access @2 keynum 0 1 1"),
];

/// Command flags that only documentation shows: kvick's table needs them for
/// nothing (there is no async loading, MONITOR or module), but COMMAND INFO
/// prints them. `no_mandatory_keys` also makes COMMAND GETKEYS answer an
/// empty list where it would report an error.
const DOC_FLAGS: &[(&str, &str)] = &[
    ("bgrewriteaof", "no_async_loading"),
    ("bgsave", "no_async_loading"),
    ("cluster|addslots", "no_async_loading"),
    ("cluster|addslotsrange", "no_async_loading"),
    ("cluster|bumpepoch", "no_async_loading"),
    ("cluster|delslots", "no_async_loading"),
    ("cluster|delslotsrange", "no_async_loading"),
    ("cluster|failover", "no_async_loading"),
    ("cluster|flushslots", "no_async_loading"),
    ("cluster|forget", "no_async_loading"),
    ("cluster|meet", "no_async_loading"),
    ("cluster|replicate", "no_async_loading"),
    ("cluster|saveconfig", "no_async_loading"),
    ("cluster|set-config-epoch", "no_async_loading"),
    ("cluster|setslot", "no_async_loading"),
    ("eval", "skip_monitor no_mandatory_keys"),
    ("eval_ro", "skip_monitor no_mandatory_keys"),
    ("evalsha", "skip_monitor no_mandatory_keys"),
    ("evalsha_ro", "skip_monitor no_mandatory_keys"),
    ("fcall", "skip_monitor no_mandatory_keys"),
    ("fcall_ro", "skip_monitor no_mandatory_keys"),
    ("save", "no_async_loading"),
    // Redis finds SORT_RO's key with a function (its BY/GET spec is unknown);
    // kvick's legacy range finds it.
    ("sort_ro", "movablekeys"),
];

/// Where a spec's keys begin.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Begin {
    Index(usize),
    /// After the keyword, searched from the argument (from the end if negative).
    Keyword(&'static str, i64),
    Unknown,
}

/// How a spec's keys continue from where they begin.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Find {
    /// The last key relative to the first (or counted from the end when
    /// negative, or as a share `1/limit` of what remains when limit > 0).
    Range {
        last: i64,
        step: i64,
        limit: i64,
    },
    /// The key count at `index` after the beginning, the first key `first`
    /// after the beginning.
    Keynum {
        index: i64,
        first: i64,
        step: i64,
    },
    Unknown,
}

#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// Space-separated flag words.
    pub flags: &'static str,
    pub begin: Begin,
    pub find: Find,
    pub notes: Option<&'static str>,
}

impl Spec {
    fn has(&self, flag: &str) -> bool {
        self.flags.split(' ').any(|f| f == flag)
    }

    /// Whether Redis must fall back to a command's own key finder for it.
    fn unsure(&self) -> bool {
        self.has("variable_flags") || self.has("incomplete") || self.begin == Begin::Unknown || self.find == Find::Unknown
    }
}

/// The key specs of a command (by full name: "object|encoding").
pub fn specs(name: &str) -> impl Iterator<Item = Spec> {
    let text = SPECS.binary_search_by(|(n, _)| (*n).cmp(name)).map_or("", |i| SPECS[i].1);
    text.split("; ").filter(|s| !s.is_empty()).map(parse)
}

/// One spec of the notation above. The table is constant and the unit tests
/// parse all of it, so a malformed row cannot reach a client.
fn parse(spec: &'static str) -> Spec {
    let (spec, notes) = match spec.split_once(" -- ") {
        Some((s, n)) => (s, Some(n)),
        None => (spec, None),
    };
    let mut words = spec.split(' ');
    let mut flags_len = 0;
    let begin = loop {
        let w = words.next().expect("a key spec has a begin_search");
        if w == "?" || w.contains('@') {
            break w;
        }
        flags_len += w.len() + 1;
    };
    let begin = match begin.split_once('@') {
        None => Begin::Unknown,
        Some(("", i)) => Begin::Index(i.parse().expect("an index")),
        Some((keyword, from)) => Begin::Keyword(keyword, from.parse().expect("a startfrom")),
    };
    let kind = words.next();
    let mut num = || words.next().and_then(|w| w.parse::<i64>().ok()).expect("three numbers");
    let find = match kind {
        None => Find::Range { last: 0, step: 1, limit: 0 },
        Some("?") => Find::Unknown,
        Some("range") => Find::Range { last: num(), step: num(), limit: num() },
        Some("keynum") => Find::Keynum { index: num(), first: num(), step: num() },
        Some(w) => panic!("unknown find_keys {w}"),
    };
    assert!(words.next().is_none(), "trailing words in key spec {spec}");
    Spec { flags: spec[..flags_len].trim_end(), begin, find, notes }
}

/// Redis' order of command flags in COMMAND INFO (kvick-internal flags such
/// as may_replicate are not listed: Redis hides them too).
const FLAG_ORDER: &[&str] = &[
    "write",
    "readonly",
    "denyoom",
    "module",
    "admin",
    "pubsub",
    "noscript",
    "blocking",
    "loading",
    "stale",
    "skip_monitor",
    "skip_slowlog",
    "asking",
    "fast",
    "no_auth",
    "no_mandatory_keys",
    "no_async_loading",
    "no_multi",
    "movablekeys",
    "allow_busy",
];

/// The command flags COMMAND INFO lists: the table's, the documentation-only
/// ones, and movablekeys for a command with its own key finder.
pub fn command_flags(c: &Command) -> impl Iterator<Item = &'static str> + '_ {
    let doc = DOC_FLAGS.iter().find(|(n, _)| *n == c.name).map_or("", |(_, f)| *f);
    let has = move |name: &str| {
        super::flags::NAMES.iter().any(|(f, n)| c.flags & f != 0 && *n == name)
            || doc.split(' ').any(|d| d == name)
            || (name == "movablekeys" && c.keys_fn.is_some())
    };
    FLAG_ORDER.iter().copied().filter(move |n| has(n))
}

fn no_mandatory_keys(c: &Command) -> bool {
    command_flags(c).any(|f| f == "no_mandatory_keys")
}

/// Redis' doesCommandHaveKeys: a spec that names real keys.
pub fn has_keys(c: &Command) -> bool {
    specs(c.name).any(|s| !s.has("not_key"))
}

/// Writes the key specs of COMMAND INFO.
pub fn reply_specs(r: &mut Reply, c: &Command) {
    r.set(specs(c.name).count());
    for s in specs(c.name) {
        r.map(3 + s.notes.is_some() as usize);
        if let Some(notes) = s.notes {
            r.bulk(b"notes");
            r.bulk(notes.as_bytes());
        }
        r.bulk(b"flags");
        reply_flags(r, s.flags);
        r.bulk(b"begin_search");
        r.map(2);
        r.bulk(b"type");
        match s.begin {
            Begin::Index(i) => {
                r.bulk(b"index");
                r.bulk(b"spec");
                r.map(1);
                r.bulk(b"index");
                r.int(i as i64);
            }
            Begin::Keyword(keyword, from) => {
                r.bulk(b"keyword");
                r.bulk(b"spec");
                r.map(2);
                r.bulk(b"keyword");
                r.bulk(keyword.as_bytes());
                r.bulk(b"startfrom");
                r.int(from);
            }
            Begin::Unknown => {
                r.bulk(b"unknown");
                r.bulk(b"spec");
                r.map(0);
            }
        }
        r.bulk(b"find_keys");
        r.map(2);
        r.bulk(b"type");
        let fields: [(&[u8], i64); 3] = match s.find {
            Find::Range { last, step, limit } => {
                r.bulk(b"range");
                [(b"lastkey", last), (b"keystep", step), (b"limit", limit)]
            }
            Find::Keynum { index, first, step } => {
                r.bulk(b"keynum");
                [(b"keynumidx", index), (b"firstkey", first), (b"keystep", step)]
            }
            Find::Unknown => {
                r.bulk(b"unknown");
                r.bulk(b"spec");
                r.map(0);
                continue;
            }
        };
        r.bulk(b"spec");
        r.map(3);
        for (name, v) in fields {
            r.bulk(name);
            r.int(v);
        }
    }
}

/// Key-spec flags as a set of status strings (COMMAND INFO, GETKEYSANDFLAGS).
pub fn reply_flags(r: &mut Reply, flags: &str) {
    r.set(flags.split(' ').filter(|f| !f.is_empty()).count());
    flags.split(' ').filter(|f| !f.is_empty()).for_each(|f| r.simple(f));
}

/// COMMAND GETKEYS(ANDFLAGS): the positions of the keys of invocation `argv`
/// (arity already checked) and their flags, as Redis finds them: by the specs
/// when they are all sure, otherwise (or when one does not apply) by the
/// command's own finder, `key_indexes`, as Redis falls back to its getkeys
/// functions. None: no keys in a command whose keys are not optional (Redis'
/// "Invalid arguments"); a command without specs has none.
pub fn getkeys(c: &Command, argv: &dyn ArgList) -> Option<Vec<(usize, &'static str)>> {
    let specs: Vec<Spec> = specs(c.name).collect();
    let (Some(first), Some(last)) = (specs.first(), specs.last()) else {
        return None;
    };
    let keys = match specs.iter().any(Spec::unsure) {
        false => by_specs(&specs, argv),
        true => Err(Invalid::Other),
    };
    let keys = match keys {
        Ok(keys) => keys,
        // Redis' numkeys finders reject what the keynum spec rejects.
        Err(Invalid::Keynum) => Vec::new(),
        Err(Invalid::Other) => {
            // Redis' getkeys functions give the first key the first spec's
            // flags and the rest (a STORE destination) the last one's.
            let variable = variable_flags(c.name, argv);
            let (first, rest) = (first.flags, last.flags);
            c.key_indexes(argv).enumerate().map(|(i, k)| (k, variable.unwrap_or(if i == 0 { first } else { rest }))).collect()
        }
    };
    (!keys.is_empty() || no_mandatory_keys(c)).then_some(keys)
}

/// A spec that does not apply to an invocation.
enum Invalid {
    Keynum,
    Other,
}

/// Redis' getKeysUsingKeySpecs: the keys of every spec, in spec order.
fn by_specs(specs: &[Spec], argv: &dyn ArgList) -> Result<Vec<(usize, &'static str)>, Invalid> {
    let argc = argv.argc() as i64;
    let mut keys = Vec::new();
    for s in specs.iter().filter(|s| !s.has("not_key")) {
        let first = match s.begin {
            Begin::Index(i) => i as i64,
            Begin::Keyword(keyword, from) => {
                let at = |i: &i64| argv.arg(*i as usize).eq_ignore_ascii_case(keyword.as_bytes());
                // Redis' search stops before the last argument when it goes
                // forward, before argument 0 when it goes backward.
                let found = match from > 0 {
                    true => (from..argc - 1).find(at),
                    false => (1..=argc + from).rev().find(at),
                };
                match found {
                    Some(i) => i + 1,
                    // An optional keyword (STORE) that is absent: no keys.
                    None => continue,
                }
            }
            Begin::Unknown => return Err(Invalid::Other),
        };
        let (first, last, step, invalid) = match s.find {
            Find::Range { last, step, limit } => {
                let last = match (last >= 0, limit) {
                    (true, _) => first + last,
                    (false, 0) => argc + last,
                    (false, limit) => first + ((argc - first) / limit + last),
                };
                (first, last, step, Invalid::Other)
            }
            Find::Keynum { index, first: offset, step } => {
                let n = match first + index < argc {
                    true => crate::resp::parser::parse_i64(argv.arg((first + index) as usize)),
                    false => None,
                };
                let n = n.filter(|n| *n >= 0 && *n <= argc).ok_or(Invalid::Keynum)?;
                (first + offset, first + offset + n - 1, step, Invalid::Keynum)
            }
            Find::Unknown => return Err(Invalid::Other),
        };
        if last >= argc || last < first || first >= argc {
            return Err(invalid);
        }
        keys.extend((first..=last).step_by(step.max(1) as usize).map(|i| (i as usize, s.flags)));
    }
    Ok(keys)
}

/// The flags Redis' getkeys functions give the key of a command whose specs
/// say `variable_flags`: SET writes blindly unless it returns the old value
/// (GET); BITFIELD only reads when all its operations are GETs.
fn variable_flags(name: &str, argv: &dyn ArgList) -> Option<&'static str> {
    let is = |i: usize, w: &str| argv.arg(i).eq_ignore_ascii_case(w.as_bytes());
    let argc = argv.argc();
    match name {
        "set" => Some(if (3..argc).any(|i| is(i, "get")) { "RW access update" } else { "OW update" }),
        "bitfield" => {
            let mut i = 2;
            while i < argc {
                let rest = argc - i - 1;
                match () {
                    _ if is(i, "get") && rest >= 2 => i += 3,
                    _ if is(i, "overflow") && rest >= 1 => i += 2,
                    // SET, INCRBY or a syntax error: assume a write.
                    _ => return Some("RW access update"),
                }
            }
            Some("RO access")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::{all, flags, OwnedArgs};

    const KEY_FLAGS: &[&str] = &["RO", "RW", "OW", "RM", "access", "update", "insert", "delete", "not_key", "incomplete", "variable_flags"];

    fn argv(words: &str) -> OwnedArgs {
        OwnedArgs(words.split(' ').map(|w| w.as_bytes().to_vec()).collect())
    }

    fn every_command() -> impl Iterator<Item = &'static Command> {
        all().iter().flat_map(|c| std::iter::once(*c).chain(c.subs.iter()))
    }

    #[test]
    fn tables_parse_and_are_sorted() {
        assert!(SPECS.windows(2).all(|w| w[0].0 < w[1].0), "SPECS must be sorted for binary search");
        for (name, _) in SPECS {
            for s in specs(name) {
                assert!(s.flags.split(' ').all(|f| KEY_FLAGS.contains(&f)), "{name}: flags {:?}", s.flags);
            }
        }
        for (name, doc) in DOC_FLAGS {
            assert!(doc.split(' ').all(|f| FLAG_ORDER.contains(&f)), "{name}: {doc}");
        }
        // Every flag of kvick's table is listed, but the one Redis hides.
        for (_, name) in flags::NAMES {
            assert!(FLAG_ORDER.contains(name) || *name == "may_replicate", "{name} missing from FLAG_ORDER");
        }
    }

    #[test]
    fn specs_match_the_commands_with_keys() {
        for c in every_command() {
            let named = c.first_key > 0 || c.keys_fn.is_some();
            assert_eq!(named, specs(c.name).next().is_some(), "{}: keys in the table but no specs, or the reverse", c.name);
        }
    }

    /// Runs `Command::key_indexes` and the specs on `words` and checks they
    /// find the same keys (when the specs apply to it).
    fn agree(words: &str) -> bool {
        let a = argv(words);
        let parts = words.split(' ').collect::<Vec<_>>();
        let ci = crate::commands::lookup(parts[0].as_bytes()).expect("a command");
        let c = match crate::commands::by_index(ci).subs.is_empty() {
            true => crate::commands::by_index(ci),
            false => crate::commands::by_index(crate::commands::lookup_sub(ci, parts[1].as_bytes()).expect("a subcommand")),
        };
        let specs: Vec<Spec> = specs(c.name).collect();
        let Ok(found) = by_specs(&specs, &a) else { return false };
        let mut found: Vec<usize> = found.into_iter().map(|(i, _)| i).collect();
        let mut runtime: Vec<usize> = c.key_indexes(&a).collect();
        found.sort();
        runtime.sort();
        assert_eq!(found, runtime, "{words}: specs vs key_indexes");
        true
    }

    #[test]
    fn runtime_finder_agrees_with_specs_for_fixed_positions() {
        let mut checked = 0;
        for c in every_command() {
            let specs: Vec<Spec> = specs(c.name).collect();
            if c.keys_fn.is_some() || specs.is_empty() || specs.iter().any(|s| s.unsure() || s.has("not_key")) {
                continue;
            }
            let min = c.arity.unsigned_abs() as usize;
            let max = if c.arity < 0 { min + 4 } else { min };
            for argc in min..=max {
                let name = c.name.replace('|', " ");
                let named = name.split(' ').count();
                let words: Vec<String> = std::iter::once(name).chain((named..argc).map(|i| format!("a{i}"))).collect();
                checked += agree(&words.join(" ")) as usize;
            }
        }
        assert!(checked > 300, "only {checked} invocations checked");
    }

    #[test]
    fn runtime_finder_agrees_with_specs_for_movable_keys() {
        for words in [
            "zunionstore d 2 a b weights 1 2",
            "zinterstore d 1 a",
            "zdiffstore d 3 a b c",
            "zunion 2 a b withscores",
            "zinter 1 a",
            "zdiff 2 a b",
            "zintercard 2 a b limit 3",
            "sintercard 3 a b c",
            "lmpop 2 a b left count 2",
            "blmpop 0 2 a b right",
            "zmpop 1 a min",
            "bzmpop 1.5 2 a b max count 3",
            "eval s 2 a b x y",
            "evalsha s 1 a",
            "eval_ro s 3 a b c",
            "evalsha_ro s 1 a x",
            "xread count 2 streams a b 0 0",
            "xread streams a 0",
            "xreadgroup group g c count 1 streams a b > >",
            "georadius k 0 0 1 km store d",
            "georadius k 0 0 1 km storedist d",
            "georadius k 0 0 1 km withdist",
            "georadiusbymember k m 1 km store d",
            "georadiusbymember k m 1 km",
        ] {
            assert!(agree(words), "{words}: the specs do not apply");
        }
    }

    #[test]
    fn variable_flags_follow_the_arguments() {
        let set = crate::commands::by_index(crate::commands::lookup(b"set").unwrap());
        assert_eq!(getkeys(set, &argv("set k v")), Some(vec![(1, "OW update")]));
        assert_eq!(getkeys(set, &argv("set k v nx GET")), Some(vec![(1, "RW access update")]));
        let bitfield = crate::commands::by_index(crate::commands::lookup(b"bitfield").unwrap());
        assert_eq!(getkeys(bitfield, &argv("bitfield k get u8 0 overflow sat")), Some(vec![(1, "RO access")]));
        assert_eq!(getkeys(bitfield, &argv("bitfield k get u8 0 incrby u8 0 1")), Some(vec![(1, "RW access update")]));
        assert_eq!(getkeys(bitfield, &argv("bitfield k get u8")), Some(vec![(1, "RW access update")]));
    }
}
