//! Value types stored in the keyspace and their encodings.

pub mod hash;
pub mod hyperloglog;
pub mod list;
pub mod set;
pub mod stream;
pub mod string;
pub mod zset;

pub use hash::HashValue;
pub use list::ListValue;
pub use set::SetValue;
pub use stream::StreamValue;
pub use string::StrValue;
pub use zset::Zset;

/// A value stored under a key. Each Redis type gets a variant (and a module).
pub enum Value {
    Str(StrValue),
    Hash(HashValue),
    List(Box<ListValue>),
    Set(Box<SetValue>),
    Stream(Box<StreamValue>),
    Zset(Box<Zset>),
}

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Stream(_) => "stream",
            Value::Zset(_) => "zset",
        }
    }

    /// Starts loading where member (or field) `m` would be in a set or hash
    /// encoded as a hashtable (`util::prefetch_slot`); nothing otherwise.
    pub fn prefetch_member(&self, m: &[u8]) {
        match self {
            Value::Hash(HashValue::Table(t)) => crate::util::prefetch_slot(t, m),
            Value::Set(s) => {
                if let SetValue::Table(t) = &**s {
                    crate::util::prefetch_slot(t, m);
                }
            }
            _ => {}
        }
    }

    /// After `prefetch_member`: starts loading the stored member's bytes
    /// (and a hash field's value, which HSET frees or HGET reads).
    pub fn prefetch_member_bytes(&self, m: &[u8]) {
        match self {
            Value::Hash(HashValue::Table(t)) => {
                if let Some(v) = crate::util::prefetch_stored_key(t, m) {
                    crate::util::prefetch(v.as_ptr());
                }
            }
            Value::Set(s) => {
                if let SetValue::Table(t) = &**s {
                    crate::util::prefetch_stored_key(t, m);
                }
            }
            _ => {}
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
            Value::Hash(h) => h.encoding(),
            Value::List(_) => "quicklist",
            Value::Set(s) => s.encoding(),
            Value::Stream(_) => "stream",
            Value::Zset(z) => z.encoding(),
        }
    }

    pub fn as_str(&self) -> Option<&StrValue> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_str_mut(&mut self) -> Option<&mut StrValue> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_hash(&self) -> Option<&HashValue> {
        match self {
            Value::Hash(h) => Some(h),
            _ => None,
        }
    }

    pub fn as_hash_mut(&mut self) -> Option<&mut HashValue> {
        match self {
            Value::Hash(h) => Some(h),
            _ => None,
        }
    }

    pub fn as_list_mut(&mut self) -> Option<&mut ListValue> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_set(&self) -> Option<&SetValue> {
        match self {
            Value::Set(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_set_mut(&mut self) -> Option<&mut SetValue> {
        match self {
            Value::Set(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_stream(&self) -> Option<&StreamValue> {
        match self {
            Value::Stream(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_stream_mut(&mut self) -> Option<&mut StreamValue> {
        match self {
            Value::Stream(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_zset(&self) -> Option<&Zset> {
        match self {
            Value::Zset(z) => Some(z),
            _ => None,
        }
    }

    pub fn as_zset_mut(&mut self) -> Option<&mut Zset> {
        match self {
            Value::Zset(z) => Some(z),
            _ => None,
        }
    }

    /// Approximate heap bytes, for INFO memory and eviction.
    pub fn mem_size(&self) -> usize {
        match self {
            Value::Str(s) => s.mem_size(),
            Value::Hash(h) => h.mem_size(),
            Value::List(l) => l.mem_size(),
            Value::Set(s) => s.mem_size(),
            Value::Stream(s) => s.mem_size(),
            Value::Zset(z) => z.mem_size(),
        }
    }
}

/// A collection type as commands update it: found inside a `Value`, created
/// empty when the key is missing, and deleted when a command empties it.
pub trait Collection: Default {
    fn of(v: &mut Value) -> Option<&mut Self>;
    fn into_value(self) -> Value;
    fn is_empty(&self) -> bool;
}

impl Collection for HashValue {
    fn of(v: &mut Value) -> Option<&mut Self> {
        v.as_hash_mut()
    }
    fn into_value(self) -> Value {
        Value::Hash(self)
    }
    fn is_empty(&self) -> bool {
        HashValue::is_empty(self)
    }
}

impl Collection for SetValue {
    fn of(v: &mut Value) -> Option<&mut Self> {
        v.as_set_mut()
    }
    fn into_value(self) -> Value {
        Value::Set(Box::new(self))
    }
    fn is_empty(&self) -> bool {
        SetValue::is_empty(self)
    }
}

impl Clone for Value {
    fn clone(&self) -> Self {
        match self {
            Value::Str(s) => Value::Str(s.clone()),
            Value::Hash(h) => Value::Hash(h.clone()),
            Value::List(l) => Value::List(l.clone()),
            Value::Set(s) => Value::Set(s.clone()),
            Value::Stream(s) => Value::Stream(s.clone()),
            Value::Zset(z) => Value::Zset(z.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn value_stays_small() {
        // Entries sit in the key table's slots: big encodings are boxed.
        assert_eq!(std::mem::size_of::<super::Value>(), 24);
    }
}
