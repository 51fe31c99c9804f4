//! dropkit placeholder
pub use drop_core::*;
