//! End-to-end tests of the web API: a real server on an ephemeral port,
//! real HTTP (reqwest) and WebSocket (tokio-tungstenite) clients.
//!
//! Every case is written once over a store factory and stamped for each
//! store by `store_tests!`.

mod support;

#[path = "../../drop-store-postgres/tests/common/proxy.rs"]
mod proxy;

mod admin;
mod admin_events;
mod admin_ops;
mod bad_input;
mod concurrency;
mod custom_identity;
mod draws;
mod edge;
mod health;
mod hostile;
mod idempotency;
mod live;
mod options;
mod prefix;
mod resume;
mod sale;
mod shutdown;
mod waitlist;
mod webhooks;
