//! Redis 7.0's command documentation beyond summary, since and group: the
//! complexity, the arguments, the history and the deprecation of every
//! command and subcommand, for COMMAND DOCS. redis-cli 7.0 builds `help CMD`
//! and its interactive argument hints from `arguments`, so they must have
//! Redis' exact shape. Built only when COMMAND DOCS asks; dispatch never
//! looks here.
//!
//! A command's arguments are one synopsis line, close to the one in Redis'
//! manual but naming everything COMMAND DOCS names:
//! - `name:T` is an argument of type T: none for string (`s` when the name
//!   itself holds a `:`), `i` integer, `d` double, `p` pattern, `t`
//!   unix-time, `k` key; a number after the letter is the argument's
//!   key-spec index (`k0`, and SORT's `BY pattern:p1`), which keys need.
//! - `name:(A | B)` is a oneof of A and B, `name:{A B}` a block of A then B.
//! - An uppercase word is a token: before a named argument it is that
//!   argument's token (`EX seconds:i`), alone a pure-token named as the token
//!   in lowercase (`NX`); `name=TOKEN` is a pure-token with another name
//!   (`change=CH`), which never binds to the argument after it.
//! - Suffixes: `@V` since version V, `!V` deprecated since V, `...` multiple,
//!   `+...` multiple with the token repeated (`[GET pattern [GET pattern ...]]`);
//!   `[...]` around an argument makes it optional.
//!
//! Taken from COMMAND DOCS of redis-server 7.0.15.

use crate::resp::Reply;

/// One argument of COMMAND DOCS.
struct Arg {
    name: String,
    kind: &'static str,
    key_spec: Option<i64>,
    token: Option<&'static str>,
    since: Option<&'static str>,
    deprecated: Option<&'static str>,
    optional: bool,
    multiple: bool,
    multiple_token: bool,
    args: Vec<Arg>,
}

impl Arg {
    fn new(name: String, kind: &'static str) -> Arg {
        Arg {
            name,
            kind,
            key_spec: None,
            token: None,
            since: None,
            deprecated: None,
            optional: false,
            multiple: false,
            multiple_token: false,
            args: Vec::new(),
        }
    }

    fn reply(&self, r: &mut Reply) {
        let flags = [(self.optional, "optional"), (self.multiple, "multiple"), (self.multiple_token, "multiple_token")];
        let nflags = flags.iter().filter(|f| f.0).count();
        let nested = self.kind == "oneof" || self.kind == "block";
        let fields = [self.key_spec.is_some(), self.token.is_some(), self.since.is_some(), self.deprecated.is_some(), nflags > 0, nested];
        r.map(2 + fields.iter().filter(|f| **f).count());
        r.bulk(b"name");
        r.bulk(self.name.as_bytes());
        r.bulk(b"type");
        r.bulk(self.kind.as_bytes());
        if let Some(k) = self.key_spec {
            r.bulk(b"key_spec_index");
            r.int(k);
        }
        for (field, value) in [(&b"token"[..], self.token), (b"since", self.since), (b"deprecated_since", self.deprecated)] {
            if let Some(v) = value {
                r.bulk(field);
                r.bulk(v.as_bytes());
            }
        }
        if nflags > 0 {
            r.bulk(b"flags");
            r.set(nflags);
            flags.iter().filter(|f| f.0).for_each(|f| r.simple(f.1));
        }
        if nested {
            r.bulk(b"arguments");
            reply_args(r, &self.args);
        }
    }
}

fn reply_args(r: &mut Reply, args: &[Arg]) {
    r.array(args.len());
    args.iter().for_each(|a| a.reply(r));
}

/// Reads a synopsis line (see the module comment). The lines are constants
/// the unit tests parse in full, so a malformed one panics there.
struct Parser {
    s: &'static str,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let yes = self.peek() == Some(c);
        self.at += yes as usize;
        yes
    }

    fn eat_str(&mut self, s: &str) -> bool {
        let yes = self.s[self.at..].starts_with(s);
        self.at += if yes { s.len() } else { 0 };
        yes
    }

    fn skip_space(&mut self) {
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
    }

    /// A name, token or type: up to a space, bracket, `|` or suffix.
    fn word(&mut self) -> &'static str {
        let start = self.at;
        while self.peek().is_some_and(|c| !b" []{}()|@!.+".contains(&c)) {
            self.at += 1;
        }
        &self.s[start..self.at]
    }

    /// A version, `7.0.0` (its dots are not `...`).
    fn version(&mut self) -> &'static str {
        let start = self.at;
        while let Some(c) = self.peek() {
            let dot = c == b'.' && self.s.as_bytes().get(self.at + 1).is_some_and(u8::is_ascii_digit);
            if !c.is_ascii_digit() && !dot {
                break;
            }
            self.at += 1;
        }
        &self.s[start..self.at]
    }

    /// Arguments up to `close` (0: the end of the line), separated by `|`
    /// in a oneof.
    fn list(&mut self, close: u8, oneof: bool) -> Vec<Arg> {
        let mut args = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                None if close == 0 => return args,
                None => panic!("unclosed {} in {}", close as char, self.s),
                Some(c) if c == close => {
                    self.at += 1;
                    return args;
                }
                Some(b'|') if oneof && !args.is_empty() => self.at += 1,
                _ => args.push(self.arg()),
            }
        }
    }

    fn arg(&mut self) -> Arg {
        let optional = self.eat(b'[');
        let word = self.word();
        let mut arg = if let Some((name, token)) = word.split_once('=') {
            let mut a = Arg::new(name.to_string(), "pure-token");
            a.token = Some(token);
            a
        } else if !word.bytes().any(|c| c.is_ascii_lowercase()) {
            let back = self.at;
            self.skip_space();
            let next = self.s[self.at..].split(|c: char| " []{}()|".contains(c)).next().unwrap_or("");
            let binds = next.starts_with(|c: char| c.is_ascii_lowercase()) && !next.contains('=');
            let mut a = if binds {
                self.named()
            } else {
                self.at = back;
                Arg::new(word.to_ascii_lowercase(), "pure-token")
            };
            a.token = Some(word);
            a
        } else {
            self.at -= word.len();
            self.named()
        };
        loop {
            if self.eat(b'@') {
                arg.since = Some(self.version());
            } else if self.eat(b'!') {
                arg.deprecated = Some(self.version());
            } else if self.eat_str("+...") {
                (arg.multiple, arg.multiple_token) = (true, true);
            } else if self.eat_str("...") {
                arg.multiple = true;
            } else {
                break;
            }
        }
        if optional {
            assert!(self.eat(b']'), "unclosed [ in {}", self.s);
            arg.optional = true;
        }
        arg
    }

    /// `name:T`, `name:(...)` or `name:{...}`.
    fn named(&mut self) -> Arg {
        let word = self.word();
        let (name, code) = word.rsplit_once(':').unwrap_or((word, "s"));
        let mut arg = Arg::new(name.to_string(), "string");
        if code.is_empty() && self.eat(b'(') {
            (arg.kind, arg.args) = ("oneof", self.list(b')', true));
        } else if code.is_empty() && self.eat(b'{') {
            (arg.kind, arg.args) = ("block", self.list(b'}', false));
        } else {
            let (letter, index) = code.split_at(code.len().min(1));
            arg.kind = match letter {
                "s" => "string",
                "i" => "integer",
                "d" => "double",
                "p" => "pattern",
                "t" => "unix-time",
                "k" => "key",
                _ => panic!("bad type {code:?} in {}", self.s),
            };
            arg.key_spec = (!index.is_empty()).then(|| index.parse().unwrap_or_else(|_| panic!("bad key-spec index in {}", self.s)));
            assert!(arg.kind != "key" || arg.key_spec.is_some(), "a key needs a key-spec index: {}", self.s);
        }
        arg
    }
}

fn parse(synopsis: &'static str) -> Vec<Arg> {
    Parser { s: synopsis, at: 0 }.list(0, false)
}

fn find<T>(table: &'static [(&'static str, T)], name: &str) -> Option<&'static T> {
    table.binary_search_by(|e| e.0.cmp(name)).ok().map(|i| &table[i].1)
}

/// The fields of a command's COMMAND DOCS entry after summary, since and
/// group, and before subcommands.
pub struct Docs {
    complexity: &'static str,
    flag: Option<&'static str>,
    deprecated: Option<&'static (&'static str, &'static str)>,
    history: &'static [(&'static str, &'static str)],
    args: Vec<Arg>,
}

impl Docs {
    /// Command `name`'s ("client|kill" for a subcommand).
    pub fn of(name: &str) -> Option<Docs> {
        let (complexity, synopsis) = *find(DOCS, name)?;
        let deprecated = find(DEPRECATED, name);
        let flag = if deprecated.is_some() { Some("deprecated") } else { SYSCMD.contains(&name).then_some("syscmd") };
        Some(Docs { complexity, flag, deprecated, history: find(HISTORY, name).copied().unwrap_or(&[]), args: parse(synopsis) })
    }

    /// How many fields `reply` writes.
    pub fn fields(&self) -> usize {
        1 + self.flag.is_some() as usize + 2 * self.deprecated.is_some() as usize + !self.history.is_empty() as usize + !self.args.is_empty() as usize
    }

    pub fn reply(&self, r: &mut Reply) {
        r.bulk(b"complexity");
        r.bulk(self.complexity.as_bytes());
        if let Some(flag) = self.flag {
            r.bulk(b"doc_flags");
            r.set(1);
            r.simple(flag);
        }
        if let Some((since, by)) = self.deprecated {
            r.bulk(b"deprecated_since");
            r.bulk(since.as_bytes());
            r.bulk(b"replaced_by");
            r.bulk(by.as_bytes());
        }
        if !self.history.is_empty() {
            r.bulk(b"history");
            r.set(self.history.len());
            for (version, what) in self.history {
                r.array(2);
                r.bulk(version.as_bytes());
                r.bulk(what.as_bytes());
            }
        }
        if !self.args.is_empty() {
            r.bulk(b"arguments");
            reply_args(r, &self.args);
        }
    }
}

/// Every command and subcommand by name, sorted: (complexity, synopsis).
const DOCS: &[(&str, (&str, &str))] = &[
    ("append", ("O(1). The amortized time complexity is O(1) assuming the appended value is small and the already present value is of any size, since the dynamic string library used by Redis will double the free space available on every reallocation.", "key:k0 value")),
    ("auth", ("O(N) where N is the number of passwords defined for the user", "[username@6.0.0] password")),
    ("bgrewriteaof", ("O(1)", "")),
    ("bgsave", ("O(1)", "[SCHEDULE@3.2.2]")),
    ("bitcount", ("O(N)", "key:k0 [index:{start:i end:i [index_unit:(BYTE | BIT)@7.0.0]}]")),
    ("bitfield", ("O(1) for each subcommand specified", "key:k0 [operation:(GET encoding_offset:{encoding offset:i} | write:{[OVERFLOW wrap_sat_fail:(WRAP | SAT | FAIL)] write_operation:(SET encoding_offset_value:{encoding offset:i value:i} | INCRBY encoding_offset_increment:{encoding offset:i increment:i})})...]")),
    ("bitfield_ro", ("O(1) for each subcommand specified", "key:k0 [GET encoding_offset:{encoding offset:i}+...]")),
    ("bitop", ("O(N)", "operation destkey:k0 key:k1...")),
    ("bitpos", ("O(N)", "key:k0 bit:i [index:{start:i [end_index:{end:i [index_unit:(BYTE | BIT)@7.0.0]}]}]")),
    ("blmove", ("O(1)", "source:k0 destination:k1 wherefrom:(LEFT | RIGHT) whereto:(LEFT | RIGHT) timeout:d")),
    ("blmpop", ("O(N+M) where N is the number of provided keys and M is the number of elements returned.", "timeout:d numkeys:i key:k0... where:(LEFT | RIGHT) [COUNT count:i]")),
    ("blpop", ("O(N) where N is the number of provided keys.", "key:k0... timeout:d")),
    ("brpop", ("O(N) where N is the number of provided keys.", "key:k0... timeout:d")),
    ("brpoplpush", ("O(1)", "source:k0 destination:k1 timeout:d")),
    ("bzmpop", ("O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.", "timeout:d numkeys:i key:k0... where:(MIN | MAX) [COUNT count:i]")),
    ("bzpopmax", ("O(log(N)) with N being the number of elements in the sorted set.", "key:k0... timeout:d")),
    ("bzpopmin", ("O(log(N)) with N being the number of elements in the sorted set.", "key:k0... timeout:d")),
    ("client", ("Depends on subcommand.", "")),
    ("client|caching", ("O(1)", "mode:(YES | NO)")),
    ("client|getname", ("O(1)", "")),
    ("client|getredir", ("O(1)", "")),
    ("client|help", ("O(1)", "")),
    ("client|id", ("O(1)", "")),
    ("client|info", ("O(1)", "")),
    ("client|kill", ("O(N) where N is the number of client connections", "filter:(ip:port:s!2.8.12 | new-format:([ID client-id:i@2.8.12] | [TYPE normal_master_slave_pubsub:(NORMAL | MASTER@3.2.0 | SLAVE | REPLICA@5.0.0 | PUBSUB)@2.8.12] | [USER username] | [ADDR ip:port:s] | [LADDR ip:port:s@6.2.0] | [SKIPME yes/no])...)")),
    ("client|list", ("O(N) where N is the number of client connections", "[TYPE normal_master_replica_pubsub:(NORMAL | MASTER | REPLICA | PUBSUB)@5.0.0] [ID id:{client-id:i...}@6.2.0]")),
    ("client|no-evict", ("O(1)", "enabled:(ON | OFF)")),
    ("client|setname", ("O(1)", "connection-name")),
    ("client|tracking", ("O(1). Some options may introduce additional complexity.", "status:(ON | OFF) [REDIRECT client-id:i] [PREFIX prefix+...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]")),
    ("client|trackinginfo", ("O(1)", "")),
    ("client|unblock", ("O(log N) where N is the number of client connections", "client-id:i [timeout_error:(TIMEOUT | ERROR)]")),
    ("cluster", ("Depends on subcommand.", "")),
    ("cluster|addslots", ("O(N) where N is the total number of hash slot arguments", "slot:i...")),
    ("cluster|addslotsrange", ("O(N) where N is the total number of the slots between the start slot and end slot arguments.", "start-slot_end-slot:{start-slot:i end-slot:i}...")),
    ("cluster|bumpepoch", ("O(1)", "")),
    ("cluster|count-failure-reports", ("O(N) where N is the number of failure reports", "node-id")),
    ("cluster|countkeysinslot", ("O(1)", "slot:i")),
    ("cluster|delslots", ("O(N) where N is the total number of hash slot arguments", "slot:i...")),
    ("cluster|delslotsrange", ("O(N) where N is the total number of the slots between the start slot and end slot arguments.", "start-slot_end-slot:{start-slot:i end-slot:i}...")),
    ("cluster|failover", ("O(1)", "[options:(FORCE | TAKEOVER)]")),
    ("cluster|flushslots", ("O(1)", "")),
    ("cluster|forget", ("O(1)", "node-id")),
    ("cluster|getkeysinslot", ("O(log(N)) where N is the number of requested keys", "slot:i count:i")),
    ("cluster|help", ("O(1)", "")),
    ("cluster|info", ("O(1)", "")),
    ("cluster|keyslot", ("O(N) where N is the number of bytes in the key", "key")),
    ("cluster|links", ("O(N) where N is the total number of Cluster nodes", "")),
    ("cluster|meet", ("O(1)", "ip port:i [cluster_bus_port:i@4.0.0]")),
    ("cluster|myid", ("O(1)", "")),
    ("cluster|nodes", ("O(N) where N is the total number of Cluster nodes", "")),
    ("cluster|replicas", ("O(1)", "node-id")),
    ("cluster|replicate", ("O(1)", "node-id")),
    ("cluster|reset", ("O(N) where N is the number of known nodes. The command may execute a FLUSHALL as a side effect.", "[hard_soft:(HARD | SOFT)]")),
    ("cluster|saveconfig", ("O(1)", "")),
    ("cluster|set-config-epoch", ("O(1)", "config-epoch:i")),
    ("cluster|setslot", ("O(1)", "slot:i subcommand:(IMPORTING node-id | MIGRATING node-id | NODE node-id | STABLE)")),
    ("cluster|shards", ("O(N) where N is the total number of cluster nodes", "")),
    ("cluster|slaves", ("O(1)", "node-id")),
    ("cluster|slots", ("O(N) where N is the total number of Cluster nodes", "")),
    ("command", ("O(N) where N is the total number of Redis commands", "")),
    ("command|count", ("O(1)", "")),
    ("command|docs", ("O(N) where N is the number of commands to look up", "[command-name...]")),
    ("command|getkeys", ("O(N) where N is the number of arguments to the command", "")),
    ("command|getkeysandflags", ("O(N) where N is the number of arguments to the command", "")),
    ("command|help", ("O(1)", "")),
    ("command|info", ("O(N) where N is the number of commands to look up", "[command-name...]")),
    ("command|list", ("O(N) where N is the total number of Redis commands", "[FILTERBY filterby:(MODULE module-name | ACLCAT category | PATTERN pattern:p)]")),
    ("config", ("Depends on subcommand.", "")),
    ("config|get", ("O(N) when N is the number of configuration parameters provided", "parameter:{parameter}...")),
    ("config|help", ("O(1)", "")),
    ("config|resetstat", ("O(1)", "")),
    ("config|set", ("O(N) when N is the number of configuration parameters provided", "parameter_value:{parameter value}...")),
    ("copy", ("O(N) worst case for collections, where N is the number of nested items. O(1) for string values.", "source:k0 destination:k1 [DB destination-db:i] [REPLACE]")),
    ("dbsize", ("O(1)", "")),
    ("debug", ("Depends on subcommand.", "")),
    ("decr", ("O(1)", "key:k0")),
    ("decrby", ("O(1)", "key:k0 decrement:i")),
    ("del", ("O(N) where N is the number of keys that will be removed. When a key to remove holds a value other than a string, the individual complexity for this key is O(M) where M is the number of elements in the list, set, sorted set or hash. Removing a single key that holds a string value is O(1).", "key:k0...")),
    ("discard", ("O(N), when N is the number of queued commands", "")),
    ("dump", ("O(1) to access the key and additional O(N*M) to serialize it, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1).", "key:k0")),
    ("echo", ("O(1)", "message")),
    ("eval", ("Depends on the script that is executed.", "script numkeys:i [key:k0...] [arg...]")),
    ("eval_ro", ("Depends on the script that is executed.", "script numkeys:i [key:k0...] [arg...]")),
    ("evalsha", ("Depends on the script that is executed.", "sha1 numkeys:i [key:k0...] [arg...]")),
    ("evalsha_ro", ("Depends on the script that is executed.", "sha1 numkeys:i [key:k0...] [arg...]")),
    ("exec", ("Depends on commands in the transaction", "")),
    ("exists", ("O(N) where N is the number of keys to check.", "key:k0...")),
    ("expire", ("O(1)", "key:k0 seconds:i [condition:(NX | XX | GT | LT)@7.0.0]")),
    ("expireat", ("O(1)", "key:k0 unix-time-seconds:t [condition:(NX | XX | GT | LT)@7.0.0]")),
    ("expiretime", ("O(1)", "key:k0")),
    ("fcall", ("Depends on the function that is executed.", "function numkeys:i [key:k0...] [arg...]")),
    ("fcall_ro", ("Depends on the function that is executed.", "function numkeys:i [key:k0...] [arg...]")),
    ("flushall", ("O(N) where N is the total number of keys in all databases", "[async:(ASYNC@4.0.0 | SYNC@6.2.0)]")),
    ("flushdb", ("O(N) where N is the number of keys in the selected database", "[async:(ASYNC@4.0.0 | SYNC@6.2.0)]")),
    ("function", ("Depends on subcommand.", "")),
    ("function|delete", ("O(1)", "library-name")),
    ("function|dump", ("O(N) where N is the number of functions", "")),
    ("function|flush", ("O(N) where N is the number of functions deleted", "[async:(ASYNC | SYNC)]")),
    ("function|help", ("O(1)", "")),
    ("function|kill", ("O(1)", "")),
    ("function|list", ("O(N) where N is the number of functions", "[LIBRARYNAME library-name-pattern] [WITHCODE]")),
    ("function|load", ("O(1) (considering compilation time is redundant)", "[replace=REPLACE] function-code")),
    ("function|restore", ("O(N) where N is the number of functions on the payload", "serialized-value [policy:(FLUSH | APPEND | REPLACE)]")),
    ("function|stats", ("O(1)", "")),
    ("geoadd", ("O(log(N)) for each item added, where N is the number of elements in the sorted set.", "key:k0 [condition:(NX | XX)@6.2.0] [change=CH@6.2.0] longitude_latitude_member:{longitude:d latitude:d member}...")),
    ("geodist", ("O(log(N))", "key:k0 member1 member2 [unit:(M | KM | FT | MI)]")),
    ("geohash", ("O(log(N)) for each member requested, where N is the number of elements in the sorted set.", "key:k0 member...")),
    ("geopos", ("O(N) where N is the number of members requested.", "key:k0 member...")),
    ("georadius", ("O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index.", "key:k0 longitude:d latitude:d radius:d unit:(M | KM | FT | MI) [WITHCOORD] [WITHDIST] [WITHHASH] [count:{COUNT count:i [ANY@6.2.0]}] [order:(ASC | DESC)] [STORE key:k1] [STOREDIST key:k2]")),
    ("georadius_ro", ("O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index.", "key:k0 longitude:d latitude:d radius:d unit:(M | KM | FT | MI) [WITHCOORD] [WITHDIST] [WITHHASH] [count:{COUNT count:i [ANY@6.2.0]}] [order:(ASC | DESC)]")),
    ("georadiusbymember", ("O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index.", "key:k0 member radius:d unit:(M | KM | FT | MI) [WITHCOORD] [WITHDIST] [WITHHASH] [count:{COUNT count:i [ANY]}] [order:(ASC | DESC)] [STORE key:k1] [STOREDIST key:k2]")),
    ("georadiusbymember_ro", ("O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index.", "key:k0 member radius:d unit:(M | KM | FT | MI) [WITHCOORD] [WITHDIST] [WITHHASH] [count:{COUNT count:i [ANY]}] [order:(ASC | DESC)]")),
    ("geosearch", ("O(N+log(M)) where N is the number of elements in the grid-aligned bounding box area around the shape provided as the filter and M is the number of items inside the shape", "key:k0 from:(FROMMEMBER member | FROMLONLAT longitude_latitude:{longitude:d latitude:d}) by:(circle:{BYRADIUS radius:d unit:(M | KM | FT | MI)} | box:{BYBOX width:d height:d unit:(M | KM | FT | MI)}) [order:(ASC | DESC)] [count:{COUNT count:i [ANY]}] [WITHCOORD] [WITHDIST] [WITHHASH]")),
    ("geosearchstore", ("O(N+log(M)) where N is the number of elements in the grid-aligned bounding box area around the shape provided as the filter and M is the number of items inside the shape", "destination:k0 source:k1 from:(FROMMEMBER member | FROMLONLAT longitude_latitude:{longitude:d latitude:d}) by:(circle:{BYRADIUS radius:d unit:(M | KM | FT | MI)} | box:{BYBOX width:d height:d unit:(M | KM | FT | MI)}) [order:(ASC | DESC)] [count:{COUNT count:i [ANY]}] [STOREDIST]")),
    ("get", ("O(1)", "key:k0")),
    ("getbit", ("O(1)", "key:k0 offset:i")),
    ("getdel", ("O(1)", "key:k0")),
    ("getex", ("O(1)", "key:k0 [expiration:(EX seconds:i | PX milliseconds:i | EXAT unix-time-seconds:t | PXAT unix-time-milliseconds:t | PERSIST)]")),
    ("getrange", ("O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.", "key:k0 start:i end:i")),
    ("getset", ("O(1)", "key:k0 value")),
    ("hdel", ("O(N) where N is the number of fields to be removed.", "key:k0 field...")),
    ("hello", ("O(1)", "[arguments:{protover:i [AUTH username_password:{username password}] [SETNAME clientname]}]")),
    ("hexists", ("O(1)", "key:k0 field")),
    ("hget", ("O(1)", "key:k0 field")),
    ("hgetall", ("O(N) where N is the size of the hash.", "key:k0")),
    ("hincrby", ("O(1)", "key:k0 field increment:i")),
    ("hincrbyfloat", ("O(1)", "key:k0 field increment:d")),
    ("hkeys", ("O(N) where N is the size of the hash.", "key:k0")),
    ("hlen", ("O(1)", "key:k0")),
    ("hmget", ("O(N) where N is the number of fields being requested.", "key:k0 field...")),
    ("hmset", ("O(N) where N is the number of fields being set.", "key:k0 field_value:{field value}...")),
    ("hrandfield", ("O(N) where N is the number of fields returned", "key:k0 [options:{count:i [WITHVALUES]}]")),
    ("hscan", ("O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..", "key:k0 cursor:i [MATCH pattern:p] [COUNT count:i]")),
    ("hset", ("O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with multiple field/value pairs.", "key:k0 field_value:{field value}...")),
    ("hsetnx", ("O(1)", "key:k0 field value")),
    ("hstrlen", ("O(1)", "key:k0 field")),
    ("hvals", ("O(N) where N is the size of the hash.", "key:k0")),
    ("incr", ("O(1)", "key:k0")),
    ("incrby", ("O(1)", "key:k0 increment:i")),
    ("incrbyfloat", ("O(1)", "key:k0 increment:d")),
    ("info", ("O(1)", "[section...]")),
    ("keys", ("O(N) with N being the number of keys in the database, under the assumption that the key names in the database and the given pattern have limited length.", "pattern:p")),
    ("lastsave", ("O(1)", "")),
    ("lcs", ("O(N*M) where N and M are the lengths of s1 and s2, respectively", "key1:k0 key2:k0 [LEN] [IDX] [MINMATCHLEN len:i] [WITHMATCHLEN]")),
    ("lindex", ("O(N) where N is the number of elements to traverse to get to the element at index. This makes asking for the first or the last element of the list O(1).", "key:k0 index:i")),
    ("linsert", ("O(N) where N is the number of elements to traverse before seeing the value pivot. This means that inserting somewhere on the left end on the list (head) can be considered O(1) and inserting somewhere on the right end (tail) is O(N).", "key:k0 where:(BEFORE | AFTER) pivot element")),
    ("llen", ("O(1)", "key:k0")),
    ("lmove", ("O(1)", "source:k0 destination:k1 wherefrom:(LEFT | RIGHT) whereto:(LEFT | RIGHT)")),
    ("lmpop", ("O(N+M) where N is the number of provided keys and M is the number of elements returned.", "numkeys:i key:k0... where:(LEFT | RIGHT) [COUNT count:i]")),
    ("lpop", ("O(N) where N is the number of elements returned", "key:k0 [count:i@6.2.0]")),
    ("lpos", ("O(N) where N is the number of elements in the list, for the average case. When searching for elements near the head or the tail of the list, or when the MAXLEN option is provided, the command may run in constant time.", "key:k0 element [RANK rank:i] [COUNT num-matches:i] [MAXLEN len:i]")),
    ("lpush", ("O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", "key:k0 element...")),
    ("lpushx", ("O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", "key:k0 element...")),
    ("lrange", ("O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end (HEAD or TAIL) for large lists; and N is the number of elements in the specified range.", "key:k0 start:i stop:i")),
    ("lrem", ("O(N+M) where N is the length of the list and M is the number of elements removed.", "key:k0 count:i element")),
    ("lset", ("O(N) where N is the length of the list. Setting either the first or the last element of the list is O(1).", "key:k0 index:i element")),
    ("ltrim", ("O(N) where N is the number of elements to be removed by the operation.", "key:k0 start:i stop:i")),
    ("mget", ("O(N) where N is the number of keys to retrieve.", "key:k0...")),
    ("move", ("O(1)", "key:k0 db:i")),
    ("mset", ("O(N) where N is the number of keys to set.", "key_value:{key:k0 value}...")),
    ("msetnx", ("O(N) where N is the number of keys to set.", "key_value:{key:k0 value}...")),
    ("multi", ("O(1)", "")),
    ("object", ("Depends on subcommand.", "")),
    ("object|encoding", ("O(1)", "key:k0")),
    ("object|freq", ("O(1)", "key:k0")),
    ("object|help", ("O(1)", "")),
    ("object|idletime", ("O(1)", "key:k0")),
    ("object|refcount", ("O(1)", "key:k0")),
    ("persist", ("O(1)", "key:k0")),
    ("pexpire", ("O(1)", "key:k0 milliseconds:i [condition:(NX | XX | GT | LT)@7.0.0]")),
    ("pexpireat", ("O(1)", "key:k0 unix-time-milliseconds:t [condition:(NX | XX | GT | LT)@7.0.0]")),
    ("pexpiretime", ("O(1)", "key:k0")),
    ("pfadd", ("O(1) to add every element.", "key:k0 [element...]")),
    ("pfcount", ("O(1) with a very small average constant time when called with a single key. O(N) with N being the number of keys, and much bigger constant times, when called with multiple keys.", "key:k0...")),
    ("pfdebug", ("N/A", "subcommand key:k0")),
    ("pfmerge", ("O(N) to merge N HyperLogLogs, but with high constant times.", "destkey:k0 sourcekey:k1...")),
    ("pfselftest", ("N/A", "")),
    ("ping", ("O(1)", "[message]")),
    ("psetex", ("O(1)", "key:k0 milliseconds:i value")),
    ("psubscribe", ("O(N) where N is the number of patterns the client is already subscribed to.", "pattern:{pattern:p}...")),
    ("pttl", ("O(1)", "key:k0")),
    ("publish", ("O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client).", "channel message")),
    ("pubsub", ("Depends on subcommand.", "")),
    ("pubsub|channels", ("O(N) where N is the number of active channels, and assuming constant time pattern matching (relatively short channels and patterns)", "[pattern:p]")),
    ("pubsub|help", ("O(1)", "")),
    ("pubsub|numpat", ("O(1)", "")),
    ("pubsub|numsub", ("O(N) for the NUMSUB subcommand, where N is the number of requested channels", "[channel...]")),
    ("pubsub|shardchannels", ("O(N) where N is the number of active shard channels, and assuming constant time pattern matching (relatively short shard channels).", "[pattern:p]")),
    ("pubsub|shardnumsub", ("O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard channels", "[shardchannel...]")),
    ("punsubscribe", ("O(N+M) where N is the number of patterns the client is already subscribed and M is the number of total patterns subscribed in the system (by any client).", "[pattern:p...]")),
    ("quit", ("O(1)", "")),
    ("randomkey", ("O(1)", "")),
    ("rename", ("O(1)", "key:k0 newkey:k1")),
    ("renamenx", ("O(1)", "key:k0 newkey:k1")),
    ("reset", ("O(1)", "")),
    ("restore", ("O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N)).", "key:k0 ttl:i serialized-value [REPLACE@3.0.0] [ABSTTL@5.0.0] [IDLETIME seconds:i@5.0.0] [FREQ frequency:i@5.0.0]")),
    ("rpop", ("O(N) where N is the number of elements returned", "key:k0 [count:i@6.2.0]")),
    ("rpoplpush", ("O(1)", "source:k0 destination:k1")),
    ("rpush", ("O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", "key:k0 element...")),
    ("rpushx", ("O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", "key:k0 element...")),
    ("sadd", ("O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", "key:k0 member...")),
    ("save", ("O(N) where N is the total number of keys in all databases", "")),
    ("scan", ("O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.", "cursor:i [MATCH pattern:p] [COUNT count:i] [TYPE type@6.0.0]")),
    ("scard", ("O(1)", "key:k0")),
    ("script", ("Depends on subcommand.", "")),
    ("script|exists", ("O(N) with N being the number of scripts to check (so checking a single script is an O(1) operation).", "sha1...")),
    ("script|flush", ("O(N) with N being the number of scripts in cache", "[async:(ASYNC | SYNC)@6.2.0]")),
    ("script|help", ("O(1)", "")),
    ("script|kill", ("O(1)", "")),
    ("script|load", ("O(N) with N being the length in bytes of the script body.", "script")),
    ("sdiff", ("O(N) where N is the total number of elements in all given sets.", "key:k0...")),
    ("sdiffstore", ("O(N) where N is the total number of elements in all given sets.", "destination:k0 key:k1...")),
    ("select", ("O(1)", "index:i")),
    ("set", ("O(1)", "key:k0 value [condition:(NX | XX)@2.6.12] [GET@6.2.0] [expiration:(EX seconds:i@2.6.12 | PX milliseconds:i@2.6.12 | EXAT unix-time-seconds:t@6.2.0 | PXAT unix-time-milliseconds:t@6.2.0 | KEEPTTL@6.0.0)]")),
    ("setbit", ("O(1)", "key:k0 offset:i value:i")),
    ("setex", ("O(1)", "key:k0 seconds:i value")),
    ("setnx", ("O(1)", "key:k0 value")),
    ("setrange", ("O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument.", "key:k0 offset:i value")),
    ("shutdown", ("O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)", "[nosave_save:(NOSAVE | SAVE)] [NOW@7.0.0] [FORCE@7.0.0] [ABORT@7.0.0]")),
    ("sinter", ("O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.", "key:k0...")),
    ("sintercard", ("O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.", "numkeys:i key:k0... [LIMIT limit:i]")),
    ("sinterstore", ("O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.", "destination:k0 key:k1...")),
    ("sismember", ("O(1)", "key:k0 member")),
    ("smembers", ("O(N) where N is the set cardinality.", "key:k0")),
    ("smismember", ("O(N) where N is the number of elements being checked for membership", "key:k0 member...")),
    ("smove", ("O(1)", "source:k0 destination:k1 member")),
    ("sort", ("O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N).", "key:k0 [BY pattern:p1] [LIMIT offset_count:{offset:i count:i}] [GET pattern:p1+...] [order:(ASC | DESC)] [sorting=ALPHA] [STORE destination:k2]")),
    ("sort_ro", ("O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N).", "key:k0 [BY pattern:p1] [LIMIT offset_count:{offset:i count:i}] [GET pattern:p1+...] [order:(ASC | DESC)] [sorting=ALPHA]")),
    ("spop", ("Without the count argument O(1), otherwise O(N) where N is the value of the passed count.", "key:k0 [count:i@3.2.0]")),
    ("spublish", ("O(N) where N is the number of clients subscribed to the receiving shard channel.", "shardchannel message")),
    ("srandmember", ("Without the count argument O(1), otherwise O(N) where N is the absolute value of the passed count.", "key:k0 [count:i@2.6.0]")),
    ("srem", ("O(N) where N is the number of members to be removed.", "key:k0 member...")),
    ("sscan", ("O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..", "key:k0 cursor:i [MATCH pattern:p] [COUNT count:i]")),
    ("ssubscribe", ("O(N) where N is the number of shard channels to subscribe to.", "shardchannel...")),
    ("strlen", ("O(1)", "key:k0")),
    ("subscribe", ("O(N) where N is the number of channels to subscribe to.", "channel...")),
    ("substr", ("O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.", "key:k0 start:i end:i")),
    ("sunion", ("O(N) where N is the total number of elements in all given sets.", "key:k0...")),
    ("sunionstore", ("O(N) where N is the total number of elements in all given sets.", "destination:k0 key:k1...")),
    ("sunsubscribe", ("O(N) where N is the number of clients already subscribed to a shard channel.", "[shardchannel...]")),
    ("swapdb", ("O(N) where N is the count of clients watching or blocking on keys from both databases.", "index1:i index2:i")),
    ("time", ("O(1)", "")),
    ("touch", ("O(N) where N is the number of keys that will be touched.", "key:k0...")),
    ("ttl", ("O(1)", "key:k0")),
    ("type", ("O(1)", "key:k0")),
    ("unlink", ("O(1) for each key removed regardless of its size. Then the command does O(N) work in a different thread in order to reclaim memory, where N is the number of allocations the deleted objects where composed of.", "key:k0...")),
    ("unsubscribe", ("O(N) where N is the number of clients already subscribed to a channel.", "[channel...]")),
    ("unwatch", ("O(1)", "")),
    ("watch", ("O(1) for every key.", "key:k0...")),
    ("xack", ("O(1) for each message ID processed.", "key:k0 group id...")),
    ("xadd", ("O(1) when adding a new entry, O(N) when trimming where N being the number of entries evicted.", "key:k0 [NOMKSTREAM@6.2.0] [trim:{strategy:(MAXLEN | MINID@6.2.0) [operator:(equal== | approximately=~)] threshold [LIMIT count:i@6.2.0]}] id_or_auto:(auto_id=* | id) field_value:{field value}...")),
    ("xautoclaim", ("O(1) if COUNT is small.", "key:k0 group consumer min-idle-time start [COUNT count:i] [JUSTID]")),
    ("xclaim", ("O(log N) with N being the number of messages in the PEL of the consumer group.", "key:k0 group consumer min-idle-time id... [IDLE ms:i] [TIME unix-time-milliseconds:t] [RETRYCOUNT count:i] [FORCE] [JUSTID] [LASTID id]")),
    ("xdel", ("O(1) for each single item to delete in the stream, regardless of the stream size.", "key:k0 id...")),
    ("xgroup", ("Depends on subcommand.", "")),
    ("xgroup|create", ("O(1)", "key:k0 groupname id:(id | new_id=$) [MKSTREAM] [ENTRIESREAD entries_read:i]")),
    ("xgroup|createconsumer", ("O(1)", "key:k0 groupname consumername")),
    ("xgroup|delconsumer", ("O(1)", "key:k0 groupname consumername")),
    ("xgroup|destroy", ("O(N) where N is the number of entries in the group's pending entries list (PEL).", "key:k0 groupname")),
    ("xgroup|help", ("O(1)", "")),
    ("xgroup|setid", ("O(1)", "key:k0 groupname id:(id | new_id=$) [ENTRIESREAD entries_read:i]")),
    ("xinfo", ("Depends on subcommand.", "")),
    ("xinfo|consumers", ("O(1)", "key:k0 groupname")),
    ("xinfo|groups", ("O(1)", "key:k0")),
    ("xinfo|help", ("O(1)", "")),
    ("xinfo|stream", ("O(1)", "key:k0 [FULL full:{[COUNT count:i]}]")),
    ("xlen", ("O(1)", "key:k0")),
    ("xpending", ("O(N) with N being the number of elements returned, so asking for a small fixed number of entries per call is O(1). O(M), where M is the total number of entries scanned when used with the IDLE filter. When the command returns just the summary and the list of consumers is small, it runs in O(1) time; otherwise, an additional O(N) time for iterating every consumer.", "key:k0 group [filters:{[IDLE min-idle-time:i@6.2.0] start end count:i [consumer]}]")),
    ("xrange", ("O(N) with N being the number of elements being returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1).", "key:k0 start end [COUNT count:i]")),
    ("xread", ("For each stream mentioned: O(N) with N being the number of elements being returned, it means that XREAD-ing with a fixed COUNT is O(1). Note that when the BLOCK option is used, XADD will pay O(M) time in order to serve the M clients blocked on the stream getting new data.", "[COUNT count:i] [BLOCK milliseconds:i] STREAMS streams:{key:k0... id...}")),
    ("xreadgroup", ("For each stream mentioned: O(M) with M being the number of elements returned. If M is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1). On the other side when XREADGROUP blocks, XADD will pay the O(N) time in order to serve the N clients blocked on the stream getting new data.", "GROUP group_consumer:{group consumer} [COUNT count:i] [BLOCK milliseconds:i] [NOACK] STREAMS streams:{key:k0... id...}")),
    ("xrevrange", ("O(N) with N being the number of elements returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1).", "key:k0 end start [COUNT count:i]")),
    ("xsetid", ("O(1)", "key:k0 last-id [ENTRIESADDED entries_added:i@7.0.0] [MAXDELETEDID max_deleted_entry_id@7.0.0]")),
    ("xtrim", ("O(N), with N being the number of evicted entries. Constant times are very small however, since entries are organized in macro nodes containing multiple entries that can be released with a single deallocation.", "key:k0 trim:{strategy:(MAXLEN | MINID@6.2.0) [operator:(equal== | approximately=~)] threshold [LIMIT count:i@6.2.0]}")),
    ("zadd", ("O(log(N)) for each item added, where N is the number of elements in the sorted set.", "key:k0 [condition:(NX | XX)@3.0.2] [comparison:(GT | LT)@6.2.0] [change=CH@3.0.2] [increment=INCR@3.0.2] score_member:{score:d member}...")),
    ("zcard", ("O(1)", "key:k0")),
    ("zcount", ("O(log(N)) with N being the number of elements in the sorted set.", "key:k0 min:d max:d")),
    ("zdiff", ("O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.", "numkeys:i key:k0... [WITHSCORES]")),
    ("zdiffstore", ("O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.", "destination:k0 numkeys:i key:k1...")),
    ("zincrby", ("O(log(N)) where N is the number of elements in the sorted set.", "key:k0 increment:i member")),
    ("zinter", ("O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.", "numkeys:i key:k0... [WEIGHTS weight:i...] [AGGREGATE aggregate:(SUM | MIN | MAX)] [WITHSCORES]")),
    ("zintercard", ("O(N*K) worst case with N being the smallest input sorted set, K being the number of input sorted sets.", "numkeys:i key:k0... [LIMIT limit:i]")),
    ("zinterstore", ("O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.", "destination:k0 numkeys:i key:k1... [WEIGHTS weight:i...] [AGGREGATE aggregate:(SUM | MIN | MAX)]")),
    ("zlexcount", ("O(log(N)) with N being the number of elements in the sorted set.", "key:k0 min max")),
    ("zmpop", ("O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.", "numkeys:i key:k0... where:(MIN | MAX) [COUNT count:i]")),
    ("zmscore", ("O(N) where N is the number of members being requested.", "key:k0 member...")),
    ("zpopmax", ("O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.", "key:k0 [count:i]")),
    ("zpopmin", ("O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.", "key:k0 [count:i]")),
    ("zrandmember", ("O(N) where N is the number of elements returned", "key:k0 [options:{count:i [WITHSCORES]}]")),
    ("zrange", ("O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.", "key:k0 start stop [sortby:(BYSCORE | BYLEX)@6.2.0] [REV@6.2.0] [LIMIT offset_count:{offset:i count:i}@6.2.0] [WITHSCORES]")),
    ("zrangebylex", ("O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", "key:k0 min max [LIMIT offset_count:{offset:i count:i}]")),
    ("zrangebyscore", ("O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", "key:k0 min:d max:d [WITHSCORES@2.0.0] [LIMIT offset_count:{offset:i count:i}]")),
    ("zrangestore", ("O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements stored into the destination key.", "dst:k0 src:k1 min max [sortby:(BYSCORE | BYLEX)] [REV] [LIMIT offset_count:{offset:i count:i}]")),
    ("zrank", ("O(log(N))", "key:k0 member")),
    ("zrem", ("O(M*log(N)) with N being the number of elements in the sorted set and M the number of elements to be removed.", "key:k0 member...")),
    ("zremrangebylex", ("O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.", "key:k0 min max")),
    ("zremrangebyrank", ("O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.", "key:k0 start:i stop:i")),
    ("zremrangebyscore", ("O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.", "key:k0 min:d max:d")),
    ("zrevrange", ("O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.", "key:k0 start:i stop:i [WITHSCORES]")),
    ("zrevrangebylex", ("O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", "key:k0 max min [LIMIT offset_count:{offset:i count:i}]")),
    ("zrevrangebyscore", ("O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", "key:k0 max:d min:d [WITHSCORES] [LIMIT offset_count:{offset:i count:i}]")),
    ("zrevrank", ("O(log(N))", "key:k0 member")),
    ("zscan", ("O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..", "key:k0 cursor:i [MATCH pattern:p] [COUNT count:i]")),
    ("zscore", ("O(1)", "key:k0 member")),
    ("zunion", ("O(N)+O(M*log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.", "numkeys:i key:k0... [WEIGHTS weight:i...] [AGGREGATE aggregate:(SUM | MIN | MAX)] [WITHSCORES]")),
    ("zunionstore", ("O(N)+O(M log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.", "destination:k0 numkeys:i key:k1... [WEIGHTS weight:i...] [AGGREGATE aggregate:(SUM | MIN | MAX)]")),
];

/// What changed in which version, sorted by name.
const HISTORY: &[(&str, &[(&str, &str)])] = &[
    ("auth", &[("6.0.0", "Added ACL style (username and password).")]),
    ("bgsave", &[("3.2.2", "Added the `SCHEDULE` option.")]),
    ("bitcount", &[("7.0.0", "Added the `BYTE|BIT` option.")]),
    ("bitpos", &[("7.0.0", "Added the `BYTE|BIT` option.")]),
    ("blpop", &[("6.0.0", "`timeout` is interpreted as a double instead of an integer.")]),
    ("brpop", &[("6.0.0", "`timeout` is interpreted as a double instead of an integer.")]),
    ("brpoplpush", &[("6.0.0", "`timeout` is interpreted as a double instead of an integer.")]),
    ("bzpopmax", &[("6.0.0", "`timeout` is interpreted as a double instead of an integer.")]),
    ("bzpopmin", &[("6.0.0", "`timeout` is interpreted as a double instead of an integer.")]),
    (
        "client|kill",
        &[
            ("2.8.12", "Added new filter format."),
            ("2.8.12", "`ID` option."),
            ("3.2.0", "Added `master` type in for `TYPE` option."),
            ("5.0.0", "Replaced `slave` `TYPE` with `replica`. `slave` still supported for backward compatibility."),
            ("6.2.0", "`LADDR` option."),
        ],
    ),
    (
        "client|list",
        &[
            ("2.8.12", "Added unique client `id` field."),
            ("5.0.0", "Added optional `TYPE` filter."),
            ("6.0.0", "Added `user` field."),
            ("6.2.0", "Added `argv-mem`, `tot-mem`, `laddr` and `redir` fields and the optional `ID` filter."),
            ("7.0.0", "Added `resp`, `multi-mem`, `rbs` and `rbp` fields."),
            ("7.0.3", "Added `ssub` field."),
        ],
    ),
    ("cluster|meet", &[("4.0.0", "Added the optional `cluster_bus_port` argument.")]),
    ("cluster|slots", &[("4.0.0", "Added node IDs."), ("7.0.0", "Added additional networking metadata field.")]),
    ("command|info", &[("7.0.0", "Allowed to be called with no argument to get info on all commands.")]),
    ("config|get", &[("7.0.0", "Added the ability to pass multiple pattern parameters in one call")]),
    ("config|set", &[("7.0.0", "Added the ability to set multiple parameters in one call.")]),
    ("exists", &[("3.0.3", "Accepts multiple `key` arguments.")]),
    ("expire", &[("7.0.0", "Added options: `NX`, `XX`, `GT` and `LT`.")]),
    ("expireat", &[("7.0.0", "Added options: `NX`, `XX`, `GT` and `LT`.")]),
    ("flushall", &[("4.0.0", "Added the `ASYNC` flushing mode modifier."), ("6.2.0", "Added the `SYNC` flushing mode modifier.")]),
    ("flushdb", &[("4.0.0", "Added the `ASYNC` flushing mode modifier."), ("6.2.0", "Added the `SYNC` flushing mode modifier.")]),
    ("geoadd", &[("6.2.0", "Added the `CH`, `NX` and `XX` options.")]),
    ("georadius", &[("6.2.0", "Added the `ANY` option for `COUNT`."), ("7.0.0", "Added support for uppercase unit names.")]),
    ("georadius_ro", &[("6.2.0", "Added the `ANY` option for `COUNT`.")]),
    ("georadiusbymember", &[("7.0.0", "Added support for uppercase unit names.")]),
    ("geosearch", &[("7.0.0", "Added support for uppercase unit names.")]),
    ("geosearchstore", &[("7.0.0", "Added support for uppercase unit names.")]),
    ("hdel", &[("2.4.0", "Accepts multiple `field` arguments.")]),
    ("hello", &[("6.2.0", "`protover` made optional; when called without arguments the command reports the current connection's context.")]),
    ("hset", &[("4.0.0", "Accepts multiple `field` and `value` arguments.")]),
    ("info", &[("7.0.0", "Added support for taking multiple section arguments.")]),
    ("lpop", &[("6.2.0", "Added the `count` argument.")]),
    ("lpush", &[("2.4.0", "Accepts multiple `element` arguments.")]),
    ("lpushx", &[("4.0.0", "Accepts multiple `element` arguments.")]),
    ("pexpire", &[("7.0.0", "Added options: `NX`, `XX`, `GT` and `LT`.")]),
    ("pexpireat", &[("7.0.0", "Added options: `NX`, `XX`, `GT` and `LT`.")]),
    ("pttl", &[("2.8.0", "Added the -2 reply.")]),
    ("renamenx", &[("3.2.0", "The command no longer returns an error when source and destination names are the same.")]),
    (
        "restore",
        &[("3.0.0", "Added the `REPLACE` modifier."), ("5.0.0", "Added the `ABSTTL` modifier."), ("5.0.0", "Added the `IDLETIME` and `FREQ` options.")],
    ),
    ("rpop", &[("6.2.0", "Added the `count` argument.")]),
    ("rpush", &[("2.4.0", "Accepts multiple `element` arguments.")]),
    ("rpushx", &[("4.0.0", "Accepts multiple `element` arguments.")]),
    ("sadd", &[("2.4.0", "Accepts multiple `member` arguments.")]),
    ("scan", &[("6.0.0", "Added the `TYPE` subcommand.")]),
    ("script|flush", &[("6.2.0", "Added the `ASYNC` and `SYNC` flushing mode modifiers.")]),
    (
        "set",
        &[
            ("2.6.12", "Added the `EX`, `PX`, `NX` and `XX` options."),
            ("6.0.0", "Added the `KEEPTTL` option."),
            ("6.2.0", "Added the `GET`, `EXAT` and `PXAT` option."),
            ("7.0.0", "Allowed the `NX` and `GET` options to be used together."),
        ],
    ),
    ("shutdown", &[("7.0.0", "Added the `NOW`, `FORCE` and `ABORT` modifiers.")]),
    ("spop", &[("3.2.0", "Added the `count` argument.")]),
    ("srandmember", &[("2.6.0", "Added the optional `count` argument.")]),
    ("srem", &[("2.4.0", "Accepts multiple `member` arguments.")]),
    ("ttl", &[("2.8.0", "Added the -2 reply.")]),
    (
        "xadd",
        &[
            ("6.2.0", "Added the `NOMKSTREAM` option, `MINID` trimming strategy and the `LIMIT` option."),
            ("7.0.0", "Added support for the `<ms>-*` explicit ID form."),
        ],
    ),
    ("xautoclaim", &[("7.0.0", "Added an element to the reply array, containing deleted entries the command cleared from the PEL")]),
    ("xgroup|create", &[("7.0.0", "Added the `entries_read` named argument.")]),
    ("xgroup|setid", &[("7.0.0", "Added the optional `entries_read` argument.")]),
    ("xinfo|groups", &[("7.0.0", "Added the `entries-read` and `lag` fields")]),
    (
        "xinfo|stream",
        &[
            ("6.0.0", "Added the `FULL` modifier."),
            ("7.0.0", "Added the `max-deleted-entry-id`, `entries-added`, `recorded-first-entry-id`, `entries-read` and `lag` fields"),
        ],
    ),
    ("xpending", &[("6.2.0", "Added the `IDLE` option and exclusive range intervals.")]),
    ("xrange", &[("6.2.0", "Added exclusive ranges.")]),
    ("xrevrange", &[("6.2.0", "Added exclusive ranges.")]),
    ("xsetid", &[("7.0.0", "Added the `entries_added` and `max_deleted_entry_id` arguments.")]),
    ("xtrim", &[("6.2.0", "Added the `MINID` trimming strategy and the `LIMIT` option.")]),
    (
        "zadd",
        &[("2.4.0", "Accepts multiple elements."), ("3.0.2", "Added the `XX`, `NX`, `CH` and `INCR` options."), ("6.2.0", "Added the `GT` and `LT` options.")],
    ),
    ("zrange", &[("6.2.0", "Added the `REV`, `BYSCORE`, `BYLEX` and `LIMIT` options.")]),
    ("zrangebyscore", &[("2.0.0", "Added the `WITHSCORES` modifier.")]),
    ("zrem", &[("2.4.0", "Accepts multiple elements.")]),
    ("zrevrangebyscore", &[("2.1.6", "`min` and `max` can be exclusive.")]),
];

/// Deprecated commands, sorted: (since, replaced by).
const DEPRECATED: &[(&str, (&str, &str))] = &[
    ("brpoplpush", ("6.2.0", "`BLMOVE` with the `RIGHT` and `LEFT` arguments")),
    ("cluster|slaves", ("5.0.0", "`CLUSTER REPLICAS`")),
    ("cluster|slots", ("7.0.0", "`CLUSTER SHARDS`")),
    ("georadius", ("6.2.0", "`GEOSEARCH` and `GEOSEARCHSTORE` with the `BYRADIUS` argument")),
    ("georadius_ro", ("6.2.0", "`GEOSEARCH` with the `BYRADIUS` argument")),
    ("georadiusbymember", ("6.2.0", "`GEOSEARCH` and `GEOSEARCHSTORE` with the `BYRADIUS` and `FROMMEMBER` arguments")),
    ("georadiusbymember_ro", ("6.2.0", "`GEOSEARCH` with the `BYRADIUS` and `FROMMEMBER` arguments")),
    ("getset", ("6.2.0", "`SET` with the `!GET` argument")),
    ("hmset", ("4.0.0", "`HSET` with multiple field-value pairs")),
    ("rpoplpush", ("6.2.0", "`LMOVE` with the `RIGHT` and `LEFT` arguments")),
    ("substr", ("2.0.0", "`GETRANGE`")),
    ("zrangebylex", ("6.2.0", "`ZRANGE` with the `BYLEX` argument")),
    ("zrangebyscore", ("6.2.0", "`ZRANGE` with the `BYSCORE` argument")),
    ("zrevrange", ("6.2.0", "`ZRANGE` with the `REV` argument")),
    ("zrevrangebylex", ("6.2.0", "`ZRANGE` with the `REV` and `BYLEX` arguments")),
    ("zrevrangebyscore", ("6.2.0", "`ZRANGE` with the `REV` and `BYSCORE` arguments")),
];

/// Commands for the system, not for users (doc flag `syscmd`).
const SYSCMD: &[&str] = &["debug", "pfdebug", "pfselftest"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::all;

    fn sorted<T>(table: &[(&str, T)]) -> bool {
        table.windows(2).all(|w| w[0].0 < w[1].0)
    }

    #[test]
    fn every_command_has_docs_that_parse() {
        assert!(sorted(DOCS) && sorted(HISTORY) && sorted(DEPRECATED));
        let names: Vec<&str> = all().iter().flat_map(|c| std::iter::once(*c).chain(c.subs.iter())).map(|c| c.name).collect();
        for name in &names {
            assert!(Docs::of(name).is_some(), "{name} has no docs");
        }
        let documented = DOCS.iter().map(|e| e.0).chain(DEPRECATED.iter().map(|e| e.0)).chain(HISTORY.iter().map(|e| e.0));
        for name in documented.chain(SYSCMD.iter().copied()) {
            assert!(names.contains(&name), "docs for {name}, which kvick does not have");
        }
    }

    /// The notation's corners: a token binding to the argument after it,
    /// a named pure-token that does not, nesting, suffixes.
    #[test]
    fn synopsis_parses_to_redis_shape() {
        let args = parse("key:k1 [NX@2.6.12] [GET p:p2] [EX seconds:i] c=CH value [BY g:{x:d [y:p...]}+...] o:(A | b:t!1.0.0)");
        let show = |a: &Arg| {
            format!(
                "{}/{}/{:?}/{:?}/{:?}/{:?}/{}{}{}/{}",
                a.name,
                a.kind,
                a.key_spec,
                a.token,
                a.since,
                a.deprecated,
                a.optional as u8,
                a.multiple as u8,
                a.multiple_token as u8,
                a.args.len()
            )
        };
        let got: Vec<String> = args.iter().map(show).collect();
        assert_eq!(
            got,
            [
                "key/key/Some(1)/None/None/None/000/0",
                "nx/pure-token/None/Some(\"NX\")/Some(\"2.6.12\")/None/100/0",
                "p/pattern/Some(2)/Some(\"GET\")/None/None/100/0",
                "seconds/integer/None/Some(\"EX\")/None/None/100/0",
                "c/pure-token/None/Some(\"CH\")/None/None/000/0",
                "value/string/None/None/None/None/000/0",
                "g/block/None/Some(\"BY\")/None/None/111/2",
                "o/oneof/None/None/None/None/000/2",
            ]
        );
        assert_eq!(show(&args[6].args[1]), "y/pattern/None/None/None/None/110/0");
        assert_eq!(show(&args[7].args[1]), "b/unix-time/None/None/None/Some(\"1.0.0\")/000/0");
    }
}
