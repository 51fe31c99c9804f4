//! dropkit placeholder
pub use drop_core::*;

/// The web layer: REST + WebSocket API and the broadcast hub (feature `web`).
#[cfg(feature = "web")]
pub use drop_ws as web;
#[cfg(feature = "web")]
pub use drop_ws::{DropApi, DropApiBuilder, Hub};
