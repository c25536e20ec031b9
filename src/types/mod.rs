//! Value types stored in the keyspace and their encodings.

pub mod string;
pub mod zset;

pub use string::StrValue;
pub use zset::Zset;

/// A value stored under a key. Each Redis type gets a variant (and a module).
pub enum Value {
    Str(StrValue),
    Zset(Box<Zset>),
}

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Zset(_) => "zset",
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
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
            Value::Zset(z) => z.mem_size(),
        }
    }
}

impl Clone for Value {
    fn clone(&self) -> Self {
        match self {
            Value::Str(s) => Value::Str(s.clone()),
            Value::Zset(z) => Value::Zset(z.clone()),
        }
    }
}
