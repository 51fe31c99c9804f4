//! The dropkit web app: the REST + WebSocket API, the expiry scheduler and
//! the React client, in one process.
//!
//! ```text
//! cargo run --example web_drop                     # in-memory store, http://127.0.0.1:3000
//! cargo run --example web_drop --features postgres -- --store postgres \
//!     --database-url postgres://postgres@127.0.0.1:5432/dropkit
//! cargo run --example web_drop -- --help           # every option
//! ```
//!
//! The client is served from `examples/web_drop/client/dist/` (embedded in
//! the binary in release builds), so no Node.js is needed to run it.

mod assets;
mod options;
mod stores;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use clap::Parser;
use drop_core::{ExpiryScheduler, InventoryStore, Money, NewDrop};
use drop_ws::DropApi;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::options::Options;

#[tokio::main]
async fn main() {
    if let Err(err) = run().await {
        eprintln!("web_drop: {err}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn")),
        )
        .init();
    let opts = Options::parse();
    let hold = opts.hold()?;

    let opened = stores::open(&opts).await?;
    let store: Arc<dyn InventoryStore> = opened.store;

    let admin_token = opts
        .admin_token
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let mut builder = DropApi::builder(store.clone())
        .admin_token(admin_token.clone())
        .rate_limit_per_minute(opts.rate_limit)
        .default_hold(hold)
        .clock(opened.clock.clone());
    for origin in &opts.cors_origin {
        builder = builder.cors_origin(origin)?;
    }
    let api = builder.build().await?;

    if !opts.no_demo && store.list_drops().await?.is_empty() {
        let demo =
            NewDrop::new("Air Drop 1 — Limited", Money::parse_decimal("199.99")?, 25).hold(hold);
        let created = store.create_drop(demo).await?;
        tracing::info!(drop = %created.drop.id, "created the demo drop");
    }

    let scheduler_stop = CancellationToken::new();
    let scheduler = ExpiryScheduler::new(store.clone())
        .clock(opened.clock)
        .spawn(scheduler_stop.clone());

    let app = Router::new().merge(api.router()).fallback(assets::serve);
    let listener = tokio::net::TcpListener::bind(opts.bind).await?;
    let addr = listener.local_addr()?;
    // Live updates are small frames: send each at once rather than wait
    // for the previous one to be acknowledged.
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
    });
    println!("dropkit web_drop listening on http://{addr}");
    println!("store: {}", opts.store);
    println!("admin token: {admin_token}");

    let ws_stop = api.cancel_token().clone();
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        // WebSockets never finish on their own: close them now so the
        // server can drain the rest.
        ws_stop.cancel();
    })
    .await?;

    api.shutdown().await;
    scheduler_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), scheduler).await;
    // Last: writes still in flight finish, and their events reach the
    // other instances, before the store lets go of its connections.
    if tokio::time::timeout(Duration::from_secs(10), store.close())
        .await
        .is_err()
    {
        tracing::warn!("the store did not close within 10 s");
    }
    tracing::info!("stopped");
    Ok(())
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
