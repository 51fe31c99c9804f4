#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use drop_core::*;

/// The in-memory store (feature `memory`, on by default).
#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
pub use drop_store_memory::{MemoryStore, MemoryStoreBuilder};

/// The PostgreSQL store (feature `postgres`).
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use drop_store_postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgStore, PgStoreBuilder};

/// The web layer: the REST + WebSocket API as axum routers, and a server with one shutdown (feature `web`).
#[cfg(feature = "web")]
#[cfg_attr(docsrs, doc(cfg(feature = "web")))]
pub use drop_ws as web;
#[cfg(feature = "web")]
#[cfg_attr(docsrs, doc(cfg(feature = "web")))]
pub use drop_ws::{DropApi, DropApiBuilder, DropServer};
