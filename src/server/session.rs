//! A client's session: its database, protocol, name, and the reply buffer that
//! connection-level commands write into.

use std::rc::Rc;

use crate::resp::{Proto, Reply};
use crate::server::clients::ClientInfo;
use crate::commands::transactions::{Multi, Watching};
use crate::server::core::Core;
use crate::server::txn::ExecScope;

pub struct Session {
    pub core: Rc<Core>,
    pub info: Rc<ClientInfo>,
    pub db: usize,
    pub proto: Proto,
    pub out: Vec<u8>,
    /// Close the connection once the pending replies are written (QUIT).
    pub close: bool,
    /// Passed AUTH (or no password was set when it connected or last RESET).
    pub authenticated: bool,
    /// Between MULTI and EXEC/DISCARD: the queued commands.
    pub multi: Option<Multi>,
    /// WATCHed keys, until EXEC, DISCARD, UNWATCH or RESET.
    pub watching: Option<Watching>,
    /// While EXEC runs its queue: the transaction its commands join.
    pub exec: Option<ExecScope>,
    /// Set by a blocking command that found no data (`server::blocking`).
    pub blocked: Option<crate::server::blocking::Blocked>,
    /// Channels, patterns and shard channels subscribed to (`server::pubsub`).
    pub subs: crate::server::pubsub::Subscriptions,
    /// CLIENT TRACKING is on (its mode is in `info.tracking`): spares the
    /// common path a look at it.
    pub tracking: bool,
}

impl Session {
    pub fn new(core: Rc<Core>, info: Rc<ClientInfo>) -> Self {
        let authenticated = crate::config::get_text("requirepass").is_empty();
        Session { core, info, db: 0, proto: Proto::Resp2, out: Vec::with_capacity(16 * 1024), close: false, authenticated, multi: None, watching: None, exec: None, blocked: None, subs: Default::default(), tracking: false }
    }

    /// A session standing in for client `id` of another core while a
    /// command of it runs here (a script on the core of its keys).
    pub fn proxy(core: Rc<Core>, id: u64, db: usize, proto: Proto) -> Self {
        let info = Rc::new(ClientInfo::detached(id));
        Session { core, info, db, proto, out: Vec::new(), close: false, authenticated: true, multi: None, watching: None, exec: None, blocked: None, subs: Default::default(), tracking: false }
    }

    pub fn reply(&mut self) -> Reply<'_> {
        Reply::new(&mut self.out, self.proto)
    }

    pub fn set_db(&mut self, db: usize) {
        self.db = db;
        self.info.db.set(db);
    }

    pub fn set_proto(&mut self, proto: Proto) {
        self.proto = proto;
        self.info.proto.set(proto);
    }
}
