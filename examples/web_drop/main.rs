//! The dropkit web app: the REST + WebSocket API, the expiry scheduler, the
//! draw runner and the React client, in one process.
//!
//! ```text
//! cargo run --example web_drop                     # in-memory store, http://127.0.0.1:3000
//! cargo run --example web_drop -- --store postgres \
//!     --database-url postgres://postgres@127.0.0.1:5432/dropkit
//! cargo run --example web_drop -- --help           # every option (and its DROPKIT_* variable)
//! ```
//!
//! Buyers sign in as guests (`--identity session`, the default); behind an
//! authenticating proxy, `--identity header`; for load tools that name
//! their buyers in the body, `--identity claimed` (insecure).
//!
//! With `--webhook URL` (repeatable) and `--webhook-secret`, purchases and
//! cancellations are also POSTed to each URL, signed, at least once and in
//! log order, by one instance at a time (docs/webhooks.md).
//!
//! SIGINT or SIGTERM stops it in one step ([`drop_ws::DropServer`]):
//! readiness fails (for `--drain-seconds`, while it goes on serving), then
//! WebSockets are closed with 1001, in-flight requests are answered, the
//! expiry scheduler, the draw runner and the webhook deliverers stop (the deliverers give
//! their cursors up), and the store closes last.
//!
//! The client is served from `examples/web_drop/client/dist/` (embedded in
//! the binary in release builds), so no Node.js is needed to run it.

mod assets;
mod options;
mod stores;

use std::sync::Arc;

use axum::Router;
use clap::Parser;
use drop_core::{DrawRunner, ExpiryScheduler, InventoryStore, Money, NewDrop, NewVariant};
use drop_ws::{DropApi, DropApiBuilder, HeaderIdentity, SessionIdentity, SessionKey};
use tracing_subscriber::EnvFilter;

use crate::options::{IdentityKind, LogFormat, Options};

#[tokio::main]
async fn main() {
    if let Err(err) = run().await {
        eprintln!("web_drop: {err}");
        std::process::exit(1);
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut opts = Options::parse();
    init_logging(opts.log_format);
    for old in opts.apply_legacy_env(|name| std::env::var(name).ok()) {
        tracing::warn!(
            variable = old,
            "deprecated environment variable; use its DROPKIT_ name (see --help)"
        );
    }
    let hold = opts.hold()?;
    let drain = opts.drain()?;
    let header_timeout = opts.header_timeout()?;
    let ws_ping = opts.ws_ping()?;
    let ws_idle = opts.ws_idle()?;
    let webhooks = opts.webhooks()?;
    let beacons = opts.draw_beacons()?;

    let opened = stores::open(&opts).await?;
    let store: Arc<dyn InventoryStore> = opened.store;

    let admin_token = opts.admin_token();
    let scheduler = ExpiryScheduler::new(store.clone()).clock(opened.clock.clone());
    // Every instance runs one: each draw is made exactly once, by whichever
    // instance gets to it first. A drop that names a beacon whose value
    // was not given (--draw-beacon) waits for a runner that has it.
    let draw_runner = DrawRunner::new(store.clone())
        .clock(opened.clock.clone())
        .beacons(Arc::new(beacons));
    let mut builder = DropApi::builder(store.clone())
        .admin_token(admin_token.value())
        .rate_limit_per_minute(opts.rate_limit)
        .default_hold(hold)
        .header_timeout(header_timeout)
        .conn_max_per_ip(opts.conn_max_per_ip)
        .conn_max(opts.conn_max)
        .ws_max_per_ip(opts.ws_max_per_ip)
        .ws_max(opts.ws_max)
        .ws_ping_interval(ws_ping)
        .ws_idle_timeout(ws_idle)
        .clock(opened.clock)
        .expiry_scheduler(scheduler)
        .draw_runner(draw_runner);
    if let Some(webhooks) = webhooks {
        // Run as the API's tasks: its shutdown stops them, and they give
        // their cursors up before the store closes.
        builder = builder.webhooks(webhooks);
    }
    for origin in &opts.cors_origin {
        builder = builder.cors_origin(origin)?;
    }
    for proxy in &opts.trusted_proxy {
        builder = builder.trusted_proxy(proxy)?;
    }
    let (builder, identity_banner) = identity(&opts, builder)?;
    let api = builder.feed_names(opts.feed_names.into()).build().await?;

    if !opts.no_demo && store.list_drops().await?.is_empty() {
        // Sizes 40–44, two pairs at most per buyer: the client has sizes
        // and quantities to show.
        let sizes = (40..=44).map(|size| NewVariant::new(size.to_string(), 5));
        let demo = NewDrop::with_variants(
            "Air Drop 1 — Limited",
            Money::parse_decimal("199.99")?,
            sizes,
        )
        .max_per_buyer(2)
        .hold(hold);
        let created = store.create_drop(demo).await?;
        tracing::info!(drop = %created.drop.id, "created the demo drop");
    }

    let app = Router::new().merge(api.router()).fallback(assets::serve);
    let listener = tokio::net::TcpListener::bind(opts.bind).await?;
    let server = api.serve(listener, app)?.drain_for(drain);

    println!(
        "dropkit web_drop listening on http://{}",
        server.local_addr()
    );
    println!("store: {}", opts.store);
    println!("{}", admin_token.banner());
    println!("{identity_banner}");
    if let Some(webhooks) = api.webhooks() {
        for endpoint in webhooks.status() {
            println!("webhook: {}", endpoint.endpoint);
        }
    }

    let served = server
        .run_until(async {
            shutdown_signal().await;
            tracing::info!(
                drain_seconds = drain.as_secs_f64(),
                "shutting down: unready, then closing WebSockets and finishing in-flight requests"
            );
        })
        .await;
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// Configures how buyers are identified; returns the start-up line about it.
fn identity(
    opts: &Options,
    builder: DropApiBuilder,
) -> Result<(DropApiBuilder, String), Box<dyn std::error::Error>> {
    Ok(match opts.identity {
        IdentityKind::Session => {
            let (key, about) = match &opts.session_key {
                Some(secret) => (
                    SessionKey::from_secret(secret.expose().as_bytes())?,
                    "signed with the configured key",
                ),
                None => (
                    SessionKey::generate(),
                    "signed with a generated key: they end when this process does \
                     (set --session-key to keep them, and on every instance)",
                ),
            };
            let sessions = SessionIdentity::new(key)
                .ttl(opts.session_ttl()?)
                .secure_cookie(opts.secure_cookie)
                .sign_ins_per_minute(opts.sign_ins_per_minute);
            (
                builder.sessions(sessions),
                format!("identity: guest sessions, {about}"),
            )
        }
        IdentityKind::Header => {
            if opts.identity_proxy.is_empty() {
                return Err(
                    "--identity header needs --identity-proxy (who sets the headers)".into(),
                );
            }
            let mut hook = HeaderIdentity::new()
                .id_header(&opts.identity_id_header)
                .name_header(&opts.identity_name_header);
            for proxy in &opts.identity_proxy {
                hook = hook.proxy(proxy)?;
            }
            let banner = format!(
                "identity: header {} from {}",
                opts.identity_id_header,
                opts.identity_proxy.join(", ")
            );
            (builder.identity(hook), banner)
        }
        IdentityKind::Claimed => (
            builder.claimed_identity(),
            "identity: CLAIMED — INSECURE, anyone can act as any buyer (load tests only)"
                .to_owned(),
        ),
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
