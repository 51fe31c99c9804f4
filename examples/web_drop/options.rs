//! Command-line options (each also readable from the environment).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use drop_core::{MAX_HOLD, MIN_HOLD};

/// Which store keeps the inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StoreKind {
    /// In this process; lost on exit.
    Memory,
    /// PostgreSQL (build with `--features postgres`).
    Postgres,
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Memory => "memory",
            Self::Postgres => "postgres",
        })
    }
}

/// dropkit web_drop: limited-edition drops with live stock.
#[derive(Debug, Parser)]
#[command(version, about)]
pub(crate) struct Options {
    /// Where the inventory lives.
    #[arg(long, env = "DROPKIT_STORE", value_enum, default_value_t = StoreKind::Memory)]
    pub(crate) store: StoreKind,

    /// PostgreSQL URL (with --store postgres).
    #[arg(long, env = "DATABASE_URL")]
    pub(crate) database_url: Option<String>,

    /// Turn off the PostgreSQL store's group commit (with --store postgres):
    /// one transaction per reserve and purchase instead of one per batch.
    #[arg(long, env = "DROPKIT_NO_GROUP_COMMIT")]
    pub(crate) no_group_commit: bool,

    /// How long a PostgreSQL call waits for a connection before answering
    /// 503 (with --store postgres), in milliseconds: while the database is
    /// unreachable, requests fail this fast.
    #[arg(long, env = "DROPKIT_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 1_000)]
    pub(crate) db_acquire_timeout_ms: u64,

    /// Address to listen on.
    #[arg(long, env = "DROPKIT_BIND", default_value = "127.0.0.1:3000")]
    pub(crate) bind: SocketAddr,

    /// Hold length of new drops, in seconds (fractions allowed).
    #[arg(long, env = "DROPKIT_HOLD_SECONDS", default_value_t = 60.0)]
    pub(crate) hold_seconds: f64,

    /// Bearer token for creating drops (one is generated and printed when absent).
    #[arg(long, env = "ADMIN_TOKEN")]
    pub(crate) admin_token: Option<String>,

    /// Browser origin allowed by CORS, e.g. http://localhost:5173 (repeatable).
    #[arg(long, env = "CORS_ORIGIN", value_delimiter = ',')]
    pub(crate) cors_origin: Vec<String>,

    /// Reserve and purchase requests per minute per IP and per username (0 = off).
    #[arg(long, env = "DROPKIT_RATE_LIMIT", default_value_t = 120)]
    pub(crate) rate_limit: u32,

    /// Do not create the demo drop on start-up.
    #[arg(long)]
    pub(crate) no_demo: bool,
}

impl Options {
    pub(crate) fn hold(&self) -> Result<Duration, String> {
        Duration::try_from_secs_f64(self.hold_seconds)
            .ok()
            .filter(|d| (MIN_HOLD..=MAX_HOLD).contains(d))
            .ok_or_else(|| {
                format!(
                    "--hold-seconds must be between {} and {}",
                    MIN_HOLD.as_secs_f64(),
                    MAX_HOLD.as_secs()
                )
            })
    }
}
