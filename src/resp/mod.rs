//! The Redis serialization protocol: request parsing and reply encoding.

pub mod parser;
pub mod reply;

pub use reply::{err, Proto, Reply};
