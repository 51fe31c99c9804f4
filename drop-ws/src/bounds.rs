//! The edge bounds configured on the builder: on plain HTTP connections
//! (applied by the server) and on WebSockets (applied at the upgrade).

use std::time::Duration;

use crate::caps::Caps;

/// The bounds on plain HTTP connections, from the builder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnSettings {
    /// How long a request's headers may take; `None` for no limit.
    pub(crate) header_timeout: Option<Duration>,
    /// Connections open at once per client address (0 = no cap).
    pub(crate) per_ip: usize,
    /// Connections open at once in all (0 = no cap).
    pub(crate) total: usize,
}

/// Who may open a WebSocket, how many may be open, and how the server
/// notices the ones whose client is gone.
#[derive(Debug)]
pub(crate) struct WsSettings {
    /// Per client address and in total.
    pub(crate) caps: Caps,
    /// Time between two pings.
    pub(crate) ping_interval: Duration,
    /// Close a socket silent for this long; `None` keeps it.
    pub(crate) idle_timeout: Option<Duration>,
}
