//! Value types stored in the keyspace and their encodings.

pub mod list;
pub mod string;

pub use list::ListValue;
pub use string::StrValue;

/// A value stored under a key. Each Redis type gets a variant (and a module).
pub enum Value {
    Str(StrValue),
    List(Box<ListValue>),
}

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
            Value::List(_) => "quicklist",
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

    pub fn as_list_mut(&mut self) -> Option<&mut ListValue> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// Approximate heap bytes, for INFO memory and eviction.
    pub fn mem_size(&self) -> usize {
        match self {
            Value::Str(s) => s.mem_size(),
            Value::List(l) => l.mem_size(),
        }
    }
}

impl Clone for Value {
    fn clone(&self) -> Self {
        match self {
            Value::Str(s) => Value::Str(s.clone()),
            Value::List(l) => Value::List(l.clone()),
        }
    }
}
