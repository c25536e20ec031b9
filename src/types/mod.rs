//! Value types stored in the keyspace and their encodings.

pub mod hyperloglog;
pub mod string;

pub use string::StrValue;

/// A value stored under a key. Each Redis type gets a variant (and a module).
pub enum Value {
    Str(StrValue),
}

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
        }
    }

    pub fn as_str(&self) -> Option<&StrValue> {
        match self {
            Value::Str(s) => Some(s),
        }
    }

    pub fn as_str_mut(&mut self) -> Option<&mut StrValue> {
        match self {
            Value::Str(s) => Some(s),
        }
    }

    /// Approximate heap bytes, for INFO memory and eviction.
    pub fn mem_size(&self) -> usize {
        match self {
            Value::Str(s) => s.mem_size(),
        }
    }
}

impl Clone for Value {
    fn clone(&self) -> Self {
        match self {
            Value::Str(s) => Value::Str(s.clone()),
        }
    }
}
