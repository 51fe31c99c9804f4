#![doc = include_str!("../README.md")]

pub use drop_core::*;

/// The in-memory store (feature `memory`, on by default).
#[cfg(feature = "memory")]
pub use drop_store_memory::{MemoryStore, MemoryStoreBuilder};

/// The PostgreSQL store (feature `postgres`).
#[cfg(feature = "postgres")]
pub use drop_store_postgres::{PgStore, PgStoreBuilder};

/// The web layer: REST + WebSocket API and the broadcast hub (feature `web`).
#[cfg(feature = "web")]
pub use drop_ws as web;
#[cfg(feature = "web")]
pub use drop_ws::{DropApi, DropApiBuilder, Hub};
