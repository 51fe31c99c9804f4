//! Command-line options, each also readable from a `DROPKIT_*` environment
//! variable (a few older names are still accepted).

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use drop_core::{MAX_HOLD, MIN_HOLD};

/// Which store keeps the inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StoreKind {
    /// In this process; lost on exit.
    Memory,
    /// PostgreSQL, at `--database-url`.
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

/// How the server tells who a buyer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum IdentityKind {
    /// Signed guest sessions: buyers sign in with a name at
    /// `POST /api/session` (a cookie, or a bearer token).
    Session,
    /// Headers set by an authenticating proxy (--identity-proxy).
    Header,
    /// INSECURE: whatever username a request names (load tests, demos).
    Claimed,
}

/// How public feeds name buyers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FeedNamesArg {
    /// Their display name.
    Show,
    /// Their initial ("A.").
    Initials,
    /// No name.
    Hide,
}

impl From<FeedNamesArg> for drop_ws::FeedNames {
    fn from(arg: FeedNamesArg) -> Self {
        match arg {
            FeedNamesArg::Show => Self::Show,
            FeedNamesArg::Initials => Self::Initials,
            FeedNamesArg::Hide => Self::Hide,
        }
    }
}

/// Where a new webhook endpoint starts in the event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum WebhookStart {
    /// At the oldest entry kept: the purchases still in the log first.
    Oldest,
    /// At the log's head: only what happens from then on.
    Now,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// A value that must not reach a log or a terminal by accident: its
/// `Debug` shows only that it is set.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// dropkit web_drop: limited-edition drops with live stock.
#[derive(Debug, Parser)]
#[command(version, about)]
pub(crate) struct Options {
    /// Where the inventory lives.
    #[arg(long, env = "DROPKIT_STORE", value_enum, default_value_t = StoreKind::Memory)]
    pub(crate) store: StoreKind,

    /// PostgreSQL URL (with --store postgres). The older DATABASE_URL is
    /// read too when this is not set.
    #[arg(long, env = "DROPKIT_DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: Option<Secret>,

    /// Turn off the PostgreSQL store's group commit (with --store postgres):
    /// one transaction per reserve and purchase instead of one per batch.
    #[arg(long, env = "DROPKIT_NO_GROUP_COMMIT")]
    pub(crate) no_group_commit: bool,

    /// How long a PostgreSQL call waits for a connection before answering
    /// 503 (with --store postgres), in milliseconds: while the database is
    /// unreachable, requests fail this fast.
    #[arg(long, env = "DROPKIT_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 1_000)]
    pub(crate) db_acquire_timeout_ms: u64,

    /// Most PostgreSQL connections this instance opens (with --store
    /// postgres), its change listener included; at least 2. Every instance
    /// opens up to this many: keep instances × this below the server's
    /// max_connections.
    #[arg(long, env = "DROPKIT_DB_MAX_CONNECTIONS", default_value_t = 32)]
    pub(crate) db_max_connections: u32,

    /// Do not apply the store's migrations on start (with --store
    /// postgres), for deployments that run them in their own step.
    #[arg(long, env = "DROPKIT_NO_MIGRATE")]
    pub(crate) no_migrate: bool,

    /// Address to listen on.
    #[arg(long, env = "DROPKIT_BIND", default_value = "127.0.0.1:3000")]
    pub(crate) bind: SocketAddr,

    /// Hold length of new drops, in seconds (fractions allowed).
    #[arg(long, env = "DROPKIT_HOLD_SECONDS", default_value_t = 60.0)]
    pub(crate) hold_seconds: f64,

    /// Bearer token for creating drops. When absent one is generated and
    /// printed once; a token given here is never printed. The older
    /// ADMIN_TOKEN is read too when this is not set.
    #[arg(long, env = "DROPKIT_ADMIN_TOKEN", hide_env_values = true)]
    pub(crate) admin_token: Option<Secret>,

    /// Browser origin allowed by CORS, e.g. http://localhost:5173
    /// (repeatable, or comma-separated). The older CORS_ORIGIN is read too
    /// when this is not set.
    #[arg(long, env = "DROPKIT_CORS_ORIGIN", value_delimiter = ',')]
    pub(crate) cors_origin: Vec<String>,

    /// Load balancer or reverse proxy whose X-Forwarded-For is believed:
    /// an address or a network such as 10.0.0.0/8 (repeatable, or
    /// comma-separated). Behind one, set it, or every client shares the
    /// proxy's per-IP rate limit.
    #[arg(long, env = "DROPKIT_TRUSTED_PROXIES", value_delimiter = ',')]
    pub(crate) trusted_proxy: Vec<String>,

    /// How buyers are identified: signed guest sessions, headers from an
    /// authenticating proxy, or (insecure, for load tests) the username a
    /// request claims.
    #[arg(long, env = "DROPKIT_IDENTITY", value_enum, default_value_t = IdentityKind::Session)]
    pub(crate) identity: IdentityKind,

    /// The key sessions are signed with (--identity session): at least 32
    /// bytes, e.g. from `openssl rand -base64 32`. Give every instance the
    /// same one. When absent one is generated, and sessions end when the
    /// process does.
    #[arg(long, env = "DROPKIT_SESSION_KEY", hide_env_values = true)]
    pub(crate) session_key: Option<Secret>,

    /// How long a session lasts, in hours (fractions allowed).
    #[arg(long, env = "DROPKIT_SESSION_HOURS", default_value_t = 24.0)]
    pub(crate) session_hours: f64,

    /// Mark the session cookie Secure (HTTPS only). Set it whenever the
    /// site is served over HTTPS.
    #[arg(long, env = "DROPKIT_SECURE_COOKIE")]
    pub(crate) secure_cookie: bool,

    /// Guest sign-ins per minute per client address (0 = off).
    #[arg(long, env = "DROPKIT_SIGN_INS_PER_MINUTE", default_value_t = drop_ws::DEFAULT_SIGN_INS_PER_MINUTE)]
    pub(crate) sign_ins_per_minute: u32,

    /// The authenticating proxy whose identity headers are believed
    /// (--identity header): an address or a network (repeatable, or
    /// comma-separated). Required with --identity header.
    #[arg(long, env = "DROPKIT_IDENTITY_PROXIES", value_delimiter = ',')]
    pub(crate) identity_proxy: Vec<String>,

    /// The header carrying the buyer's id (--identity header).
    #[arg(long, env = "DROPKIT_IDENTITY_ID_HEADER", default_value = drop_ws::DEFAULT_ID_HEADER)]
    pub(crate) identity_id_header: String,

    /// The header carrying the buyer's display name (--identity header).
    #[arg(long, env = "DROPKIT_IDENTITY_NAME_HEADER", default_value = drop_ws::DEFAULT_NAME_HEADER)]
    pub(crate) identity_name_header: String,

    /// How public feeds (recent buyers, the live purchase feed) name buyers.
    #[arg(long, env = "DROPKIT_FEED_NAMES", value_enum, default_value_t = FeedNamesArg::Show)]
    pub(crate) feed_names: FeedNamesArg,

    /// Reserve and purchase requests per minute per client address and per
    /// buyer (0 = off). Counted per instance.
    #[arg(long, env = "DROPKIT_RATE_LIMIT", default_value_t = 120)]
    pub(crate) rate_limit: u32,

    /// Seconds to keep serving after SIGTERM with readiness failing, so
    /// load balancers stop sending new connections before the listener
    /// closes (fractions allowed).
    #[arg(long, env = "DROPKIT_DRAIN_SECONDS", default_value_t = 0.0)]
    pub(crate) drain_seconds: f64,

    /// Seconds a request's headers may take to arrive, which is also how
    /// long a kept-alive connection may wait idle for its next request
    /// (fractions allowed; 0 = no limit). Bounds half-sent requests.
    #[arg(long, env = "DROPKIT_HEADER_TIMEOUT_SECONDS", default_value_t = 10.0)]
    pub(crate) header_timeout_seconds: f64,

    /// Most HTTP connections (WebSockets included) open at once from one
    /// client address; more are closed on accept (0 = no cap). Trusted
    /// proxies count towards --conn-max only.
    #[arg(long, env = "DROPKIT_CONN_MAX_PER_IP", default_value_t = drop_ws::DEFAULT_CONN_MAX_PER_IP)]
    pub(crate) conn_max_per_ip: usize,

    /// Most HTTP connections (WebSockets included) open at once; more are
    /// closed on accept (0 = no cap). Keep it below the descriptor limit
    /// (ulimit -n).
    #[arg(long, env = "DROPKIT_CONN_MAX", default_value_t = drop_ws::DEFAULT_CONN_MAX)]
    pub(crate) conn_max: usize,

    /// Most WebSockets open at once from one client address (behind
    /// --trusted-proxy, the forwarded one); more get 503 (0 = no cap).
    #[arg(long, env = "DROPKIT_WS_MAX_PER_IP", default_value_t = drop_ws::DEFAULT_WS_MAX_PER_IP)]
    pub(crate) ws_max_per_ip: usize,

    /// Most WebSockets open at once; more get 503 (0 = no cap).
    #[arg(long, env = "DROPKIT_WS_MAX", default_value_t = drop_ws::DEFAULT_WS_MAX)]
    pub(crate) ws_max: usize,

    /// Seconds between two pings to each WebSocket (fractions allowed).
    #[arg(long, env = "DROPKIT_WS_PING_SECONDS", default_value_t = 20.0)]
    pub(crate) ws_ping_seconds: f64,

    /// Seconds after which a WebSocket that has answered nothing, not even
    /// a ping, is closed (fractions allowed; 0 = never).
    #[arg(long, env = "DROPKIT_WS_IDLE_SECONDS", default_value_t = 60.0)]
    pub(crate) ws_idle_seconds: f64,

    /// The value of a public randomness beacon that draw drops may name
    /// (`beaconName`), as NAME=HEX (repeatable, or comma-separated): a draw
    /// drop naming a beacon is drawn only once its value is known here.
    #[arg(
        long = "draw-beacon",
        env = "DROPKIT_DRAW_BEACONS",
        value_delimiter = ','
    )]
    pub(crate) draw_beacon: Vec<String>,

    /// Send purchase and cancellation events to this URL, signed, at least
    /// once and in order (http:// or https://; repeatable, or
    /// comma-separated). Needs --webhook-secret. See docs/webhooks.md.
    #[arg(long = "webhook", env = "DROPKIT_WEBHOOKS", value_delimiter = ',')]
    pub(crate) webhook: Vec<String>,

    /// The secret webhook bodies are signed with (HMAC-SHA256): at least
    /// 32 bytes, e.g. from `openssl rand -hex 32`. Receivers verify with
    /// the same; give every instance the same one.
    #[arg(long, env = "DROPKIT_WEBHOOK_SECRET", hide_env_values = true)]
    pub(crate) webhook_secret: Option<Secret>,

    /// Seconds a webhook receiver has to answer before the delivery is
    /// retried (fractions allowed).
    #[arg(long, env = "DROPKIT_WEBHOOK_TIMEOUT_SECONDS", default_value_t = 10.0)]
    pub(crate) webhook_timeout_seconds: f64,

    /// Where a webhook endpoint that has no cursor in the store yet starts:
    /// `oldest` (the purchases still in the log first) or `now` (only what
    /// happens from then on). An endpoint with a cursor goes on from it.
    #[arg(
        long,
        env = "DROPKIT_WEBHOOK_START",
        value_enum,
        default_value_t = WebhookStart::Oldest
    )]
    pub(crate) webhook_start: WebhookStart,

    /// Do not create the demo drop on start-up.
    #[arg(long, env = "DROPKIT_NO_DEMO")]
    pub(crate) no_demo: bool,

    /// How log lines are written (the level comes from RUST_LOG).
    #[arg(long, env = "DROPKIT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
}

/// The admin token and where it came from: only a generated one is ever
/// shown, since the operator already knows the one they gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AdminToken {
    /// From `--admin-token` or the environment.
    Supplied(Secret),
    /// Made at start-up.
    Generated(Secret),
}

impl AdminToken {
    pub(crate) fn value(&self) -> &str {
        match self {
            Self::Supplied(s) | Self::Generated(s) => s.expose(),
        }
    }

    /// The start-up line about the token.
    pub(crate) fn banner(&self) -> String {
        match self {
            Self::Supplied(_) => "admin token: as configured (not shown)".to_owned(),
            Self::Generated(s) => format!("admin token (generated): {}", s.expose()),
        }
    }
}

impl Options {
    /// Fills options left unset from the older variable names, read with
    /// `var`; returns the old names used, to warn about.
    pub(crate) fn apply_legacy_env(
        &mut self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Vec<&'static str> {
        let mut used = Vec::new();
        // DATABASE_URL is a common name that other tools set too: only
        // read (and warned about) when a database is wanted.
        if self.store == StoreKind::Postgres
            && self.database_url.is_none()
            && let Some(url) = var("DATABASE_URL")
        {
            self.database_url = Some(Secret(url));
            used.push("DATABASE_URL");
        }
        if self.admin_token.is_none()
            && let Some(token) = var("ADMIN_TOKEN")
        {
            self.admin_token = Some(Secret(token));
            used.push("ADMIN_TOKEN");
        }
        if self.cors_origin.is_empty()
            && let Some(origins) = var("CORS_ORIGIN")
        {
            self.cors_origin = origins
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect();
            used.push("CORS_ORIGIN");
        }
        used
    }

    /// The token to use: the one given, or a fresh random one.
    pub(crate) fn admin_token(&self) -> AdminToken {
        match self.admin_token.clone().filter(|t| !t.0.trim().is_empty()) {
            Some(token) => AdminToken::Supplied(token),
            None => AdminToken::Generated(Secret(uuid::Uuid::new_v4().simple().to_string())),
        }
    }

    pub(crate) fn drain(&self) -> Result<Duration, String> {
        Duration::try_from_secs_f64(self.drain_seconds)
            .ok()
            .filter(|d| *d <= Duration::from_secs(3600))
            .ok_or_else(|| "--drain-seconds must be between 0 and 3600".to_owned())
    }

    /// `--header-timeout-seconds`.
    pub(crate) fn header_timeout(&self) -> Result<Duration, String> {
        seconds(
            "--header-timeout-seconds",
            self.header_timeout_seconds,
            false,
        )
    }

    /// `--session-hours`: between a minute and a year.
    pub(crate) fn session_ttl(&self) -> Result<Duration, String> {
        Duration::try_from_secs_f64(self.session_hours * 3600.0)
            .ok()
            .filter(|d| {
                (Duration::from_secs(60)..=Duration::from_secs(366 * 24 * 3600)).contains(d)
            })
            .ok_or_else(|| "--session-hours must be between 1/60 and 8784".to_owned())
    }

    /// `--ws-ping-seconds`.
    pub(crate) fn ws_ping(&self) -> Result<Duration, String> {
        seconds("--ws-ping-seconds", self.ws_ping_seconds, true)
    }

    /// `--ws-idle-seconds`.
    pub(crate) fn ws_idle(&self) -> Result<Duration, String> {
        seconds("--ws-idle-seconds", self.ws_idle_seconds, false)
    }

    /// The webhooks to deliver (`--webhook`, `--webhook-secret`,
    /// `--webhook-timeout-seconds`), ready to spawn; `None` without any
    /// `--webhook`.
    /// The beacon values `--draw-beacon` gives, for the draw runner.
    pub(crate) fn draw_beacons(&self) -> Result<drop_core::RecordedBeacons, String> {
        let mut beacons = drop_core::RecordedBeacons::new();
        for given in &self.draw_beacon {
            let (name, hex) = given
                .split_once('=')
                .ok_or_else(|| format!("--draw-beacon {given}: expected NAME=HEX"))?;
            let value: drop_core::Beacon = hex
                .parse()
                .map_err(|err| format!("--draw-beacon {name}: {err}"))?;
            beacons = beacons.with(name.trim(), value);
        }
        Ok(beacons)
    }

    pub(crate) fn webhooks(&self) -> Result<Option<drop_ws::WebhooksBuilder>, String> {
        if self.webhook.is_empty() {
            return Ok(None);
        }
        let secret = self
            .webhook_secret
            .as_ref()
            .filter(|s| !s.expose().is_empty())
            .ok_or(
                "--webhook needs --webhook-secret (or DROPKIT_WEBHOOK_SECRET): \
                 the key receivers check signatures with",
            )?;
        let timeout = seconds(
            "--webhook-timeout-seconds",
            self.webhook_timeout_seconds,
            true,
        )?;
        let mut builder = drop_ws::Webhooks::builder()
            .secret(secret.expose())
            .map_err(|_| {
                format!(
                    "--webhook-secret must be at least {} bytes",
                    drop_ws::webhooks::MIN_SECRET_BYTES
                )
            })?
            .timeout(timeout)
            .backfill(self.webhook_start == WebhookStart::Oldest);
        // A URL may carry a token: errors name its place, not the URL.
        for (n, url) in self.webhook.iter().enumerate() {
            builder = builder.endpoint(url).map_err(|err| match err {
                drop_core::DropError::InvalidInput { message, .. } => {
                    format!("--webhook #{}: {message}", n + 1)
                }
                other => format!("--webhook #{}: {other}", n + 1),
            })?;
        }
        Ok(Some(builder))
    }

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

/// A period of at most an hour; zero only when `positive` is false.
fn seconds(flag: &str, value: f64, positive: bool) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| *d <= Duration::from_secs(3600) && !(positive && d.is_zero()))
        .ok_or_else(|| {
            let low = if positive { "above 0" } else { "between 0" };
            format!("{flag} must be {low} and at most 3600")
        })
}
