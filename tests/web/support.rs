//! A real server on an ephemeral port, and clients for it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use drop_core::{Clock, ExpiryScheduler, InventoryStore};
use drop_store_memory::MemoryStore;
use drop_ws::{DropApi, DropServer};
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A store and the clock it keeps time by.
pub(crate) struct Backend {
    pub(crate) store: Arc<dyn InventoryStore>,
    pub(crate) clock: Arc<dyn Clock>,
    /// The PostgreSQL database, to look at it after the store has closed.
    pub(crate) database_url: Option<String>,
}

/// Makes a fresh, empty store for one test.
pub(crate) type StoreFactory = fn() -> BoxFuture<'static, Backend>;

pub(crate) fn memory_store() -> BoxFuture<'static, Backend> {
    Box::pin(async {
        let store = MemoryStore::new();
        let clock = store.clock();
        Backend {
            store: Arc::new(store),
            clock,
            database_url: None,
        }
    })
}

/// A fresh PostgreSQL database for one case, made on the server at
/// `DATABASE_URL`, so cases run in parallel without seeing each other's
/// drops. Databases left by earlier runs are dropped first.
pub(crate) fn postgres_store() -> BoxFuture<'static, Backend> {
    Box::pin(async {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let admin = sqlx::PgPool::connect(&url)
            .await
            .unwrap_or_else(|err| panic!("PostgreSQL at {url}: {err}"));
        drop_stale_databases(&admin).await;
        let name = format!("dropkit_web_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap_or_else(|err| panic!("create database {name}: {err}"));
        admin.close().await;
        let (base, _) = url.rsplit_once('/').expect("DATABASE_URL names a database");
        let database_url = format!("{base}/{name}");
        let store = drop_store_postgres::PgStore::connect(&database_url)
            .await
            .unwrap_or_else(|err| panic!("PostgreSQL database {name}: {err}"));
        Backend {
            store: Arc::new(store),
            // The database keeps the time; the scheduler only sleeps on ours.
            clock: Arc::new(drop_core::SystemClock),
            database_url: Some(database_url),
        }
    })
}

/// Drops the per-case databases of runs that have finished (no session is
/// connected to them), once per test process.
async fn drop_stale_databases(admin: &sqlx::PgPool) {
    static ONCE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ONCE.get_or_init(|| async {
        let stale: Vec<(String,)> = sqlx::query_as(
            "SELECT datname FROM pg_database d WHERE datname LIKE 'dropkit_web_%' \
             AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)",
        )
        .fetch_all(admin)
        .await
        .expect("list stale databases");
        for (name,) in stale {
            // Another process may be dropping it too; either way it is gone.
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name}"
            )))
            .execute(admin)
            .await;
        }
    })
    .await;
}

/// Stamps each named case (an `async fn(StoreFactory)` in the calling
/// module) once per store.
#[macro_export]
macro_rules! store_tests {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::support::memory_store).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::support::postgres_store).await
                }
            )*
        }
    };
}

pub(crate) const TOKEN: &str = "test-admin-token";

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) rate_limit: u32,
    pub(crate) tick: Duration,
    pub(crate) cors_origins: Vec<&'static str>,
    pub(crate) client_queue: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            rate_limit: 0,
            tick: Duration::from_millis(50),
            cors_origins: Vec::new(),
            client_queue: drop_ws::DEFAULT_CLIENT_QUEUE,
        }
    }
}

pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    pub(crate) http: reqwest::Client,
    pub(crate) api: DropApi,
    pub(crate) database_url: Option<String>,
    server: DropServer,
}

impl TestServer {
    pub(crate) async fn start(factory: StoreFactory) -> Self {
        Self::with(factory, Settings::default()).await
    }

    pub(crate) async fn with(factory: StoreFactory, settings: Settings) -> Self {
        Self::on(factory().await, settings).await
    }

    /// A server over a store the caller made, with the expiry scheduler,
    /// served as `web_drop` serves it.
    pub(crate) async fn on(backend: Backend, settings: Settings) -> Self {
        let scheduler = ExpiryScheduler::new(backend.store.clone()).clock(backend.clock.clone());
        let mut builder = DropApi::builder(backend.store.clone())
            .admin_token(TOKEN)
            .rate_limit_per_minute(settings.rate_limit)
            .tick(settings.tick)
            .client_queue(settings.client_queue)
            .clock(backend.clock)
            .expiry_scheduler(scheduler);
        for origin in settings.cors_origins {
            builder = builder.cors_origin(origin).expect("valid origin");
        }
        let api = builder.build().await.expect("api builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = api.serve(listener, api.router()).expect("server starts");
        Self {
            addr: server.local_addr(),
            http: reqwest::Client::new(),
            api,
            database_url: backend.database_url,
            server,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Shuts everything down (server, scheduler, store) and waits for it.
    pub(crate) async fn stop(self) {
        self.server.shutdown().await.expect("server ran");
    }

    pub(crate) async fn create_drop(&self, name: &str, stock: u32, hold_seconds: f64) -> Value {
        let res = self
            .http
            .post(self.url("/api/drops"))
            .bearer_auth(TOKEN)
            .json(&json!({
                "name": name, "price": "19.99", "totalStock": stock, "holdSeconds": hold_seconds
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "create drop");
        res.json().await.unwrap()
    }

    pub(crate) async fn reserve(&self, drop_id: &str, user: &str) -> (u16, Value) {
        self.post(
            "/api/reservations",
            json!({"dropId": drop_id, "username": user}),
        )
        .await
    }

    pub(crate) async fn purchase(&self, reservation_id: &str, user: &str) -> (u16, Value) {
        self.post(
            "/api/purchases",
            json!({"reservationId": reservation_id, "username": user}),
        )
        .await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        let res = self.http.get(self.url(path)).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    pub(crate) async fn drop_view(&self, drop_id: &str) -> Value {
        let (status, drops) = self.get("/api/drops").await;
        assert_eq!(status, 200);
        drops
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == drop_id)
            .cloned()
            .expect("drop listed")
    }

    /// A WebSocket client, after it has read its snapshot.
    pub(crate) async fn ws(&self) -> (WsClient, Value) {
        let (stream, _) = tokio_tungstenite::connect_async(format!("ws://{}/api/ws", self.addr))
            .await
            .expect("websocket connects");
        let mut client = WsClient { stream };
        let snapshot = client.next(Duration::from_secs(5)).await.expect("snapshot");
        assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
        assert!(snapshot["serverTime"].is_string());
        (client, snapshot)
    }
}

pub(crate) struct WsClient {
    pub(crate) stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    /// The next JSON message, or `None` on timeout or close.
    pub(crate) async fn next(&mut self, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??
                .ok()?;
            match msg {
                Message::Text(text) => {
                    return Some(serde_json::from_str(text.as_str()).expect("JSON message"));
                }
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// Reads until a message matches, or panics after `within`.
    pub(crate) async fn wait_for(
        &mut self,
        within: Duration,
        what: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(v) if what(&v) => return v,
                Some(_) => {}
                None => panic!("no matching WebSocket message within {within:?}"),
            }
        }
    }

    pub(crate) async fn close(mut self) {
        let _ = self.stream.send(Message::Close(None)).await;
    }
}
