//! A real server on an ephemeral port, and clients for it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drop_core::{Clock, ExpiryScheduler, InventoryStore};
use drop_store_memory::MemoryStore;
use drop_ws::{DropApi, DropApiBuilder, DropServer, SessionIdentity, SessionKey};
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

/// How the test server identifies buyers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Identity {
    /// Signed guest sessions (`web_drop`'s default): the helpers below
    /// sign each named buyer in once and send their bearer token.
    Session,
    /// The original wire: `username` in the body.
    Claimed,
}

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) rate_limit: u32,
    pub(crate) tick: Duration,
    pub(crate) cors_origins: Vec<&'static str>,
    pub(crate) client_queue: usize,
    pub(crate) identity: Identity,
    /// Guest sign-ins per minute per address (0 = off, the default here:
    /// tests sign many buyers in from one address).
    pub(crate) sign_ins_per_minute: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            rate_limit: 0,
            tick: Duration::from_millis(50),
            cors_origins: Vec::new(),
            client_queue: drop_ws::DEFAULT_CLIENT_QUEUE,
            identity: Identity::Session,
            sign_ins_per_minute: 0,
        }
    }
}

pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    pub(crate) http: reqwest::Client,
    pub(crate) api: DropApi,
    pub(crate) database_url: Option<String>,
    pub(crate) identity: Identity,
    /// Each named buyer's session token, signed in on first use.
    tokens: Mutex<HashMap<String, String>>,
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
        Self::configured(backend, settings, |b| b).await
    }

    /// [`on`](Self::on), with `configure` applied to the builder last (a
    /// hook of the test's own, say).
    pub(crate) async fn configured(
        backend: Backend,
        settings: Settings,
        configure: impl FnOnce(DropApiBuilder) -> DropApiBuilder,
    ) -> Self {
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
        builder = match settings.identity {
            Identity::Session => builder.sessions(
                SessionIdentity::new(SessionKey::generate())
                    .sign_ins_per_minute(settings.sign_ins_per_minute),
            ),
            Identity::Claimed => builder.claimed_identity(),
        };
        let api = configure(builder).build().await.expect("api builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = api.serve(listener, api.router()).expect("server starts");
        Self {
            addr: server.local_addr(),
            http: reqwest::Client::new(),
            api,
            database_url: backend.database_url,
            identity: settings.identity,
            tokens: Mutex::default(),
            server,
        }
    }

    /// Signs a new guest named `name` in: (status, answer).
    pub(crate) async fn sign_in(&self, name: &str) -> (u16, Value) {
        let res = self
            .http
            .post(self.url("/api/session"))
            .json(&json!({ "username": name }))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    /// The session token of the buyer the tests call `user` (signed in on
    /// first use, then reused, so the same name is the same buyer).
    pub(crate) async fn token(&self, user: &str) -> String {
        if let Some(token) = self.tokens.lock().unwrap().get(user) {
            return token.clone();
        }
        let (status, answer) = self.sign_in(user).await;
        assert_eq!(status, 200, "sign in {user}: {answer}");
        let token = answer["token"].as_str().expect("a token").to_owned();
        self.tokens
            .lock()
            .unwrap()
            .entry(user.to_owned())
            .or_insert(token)
            .clone()
    }

    /// A request as `user`: their bearer token under sessions; under
    /// claimed identity the name goes in the body (`body` gains
    /// `username`) or the query, as the caller builds it.
    pub(crate) async fn as_user(
        &self,
        req: reqwest::RequestBuilder,
        user: &str,
    ) -> reqwest::RequestBuilder {
        match self.identity {
            Identity::Session => req.bearer_auth(self.token(user).await),
            Identity::Claimed => req,
        }
    }

    /// `body` with `username` added under claimed identity.
    pub(crate) fn named(&self, mut body: Value, user: &str) -> Value {
        if self.identity == Identity::Claimed {
            body["username"] = json!(user);
        }
        body
    }

    /// A POST of `body` as `user`: (status, answer).
    pub(crate) async fn post_as(&self, path: &str, body: Value, user: &str) -> (u16, Value) {
        let req = self.http.post(self.url(path)).json(&self.named(body, user));
        let res = self.as_user(req, user).await.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    /// A GET as `user` (under claimed identity, `?username=` is added to
    /// `/api/drops`): (status, answer).
    pub(crate) async fn get_as(&self, path: &str, user: &str) -> (u16, Value) {
        let named = path == "/api/drops";
        self.request_as(reqwest::Method::GET, path, user, named)
            .await
    }

    /// A DELETE as `user` (under claimed identity, with `?username=`).
    pub(crate) async fn delete_as(&self, path: &str, user: &str) -> (u16, Value) {
        self.request_as(reqwest::Method::DELETE, path, user, true)
            .await
    }

    /// A bodiless request as `user`; under claimed identity `named` adds
    /// `?username=`.
    async fn request_as(
        &self,
        method: reqwest::Method,
        path: &str,
        user: &str,
        named: bool,
    ) -> (u16, Value) {
        let url = if self.identity == Identity::Claimed && named {
            self.url(&format!("{path}?username={user}"))
        } else {
            self.url(path)
        };
        let req = self.as_user(self.http.request(method, url), user).await;
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
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
        self.post_as("/api/reservations", json!({ "dropId": drop_id }), user)
            .await
    }

    pub(crate) async fn purchase(&self, reservation_id: &str, user: &str) -> (u16, Value) {
        self.post_as(
            "/api/purchases",
            json!({ "reservationId": reservation_id }),
            user,
        )
        .await
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
        self.ws_with(None).await
    }

    /// A WebSocket client signed in as `user` (their session token as a
    /// bearer), after it has read its snapshot.
    pub(crate) async fn ws_as(&self, user: &str) -> (WsClient, Value) {
        let token = self.token(user).await;
        self.ws_with(Some(token)).await
    }

    async fn ws_with(&self, token: Option<String>) -> (WsClient, Value) {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = format!("ws://{}/api/ws", self.addr)
            .into_client_request()
            .unwrap();
        if let Some(token) = token {
            req.headers_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        let (stream, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("websocket connects");
        let mut client = WsClient { stream };
        let snapshot = client.next(Duration::from_secs(5)).await.expect("snapshot");
        assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
        assert!(snapshot["serverTime"].is_string());
        (client, snapshot)
    }
}

/// Who sends a request of [`TestServer::call`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum As<'a> {
    /// No credentials.
    Nobody,
    /// The named buyer (their session token).
    Buyer(&'a str),
    /// The admin token.
    Admin,
}

/// An answer: status, headers and JSON body (`null` when empty).
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Value,
}

impl Answer {
    /// Whether it carries `Idempotent-Replayed: true`.
    pub(crate) fn replayed(&self) -> bool {
        self.headers
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true")
    }

    /// The error code of an error answer.
    pub(crate) fn code(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

impl TestServer {
    /// Any request, as `who`, with an optional JSON body and
    /// `Idempotency-Key`.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        who: As<'_>,
        body: Option<Value>,
        key: Option<&str>,
    ) -> Answer {
        let mut req = self.http.request(method, self.url(path));
        req = match who {
            As::Nobody => req,
            As::Buyer(user) => req.bearer_auth(self.token(user).await),
            As::Admin => req.bearer_auth(TOKEN),
        };
        if let Some(body) = body {
            req = req.json(&body);
        }
        if let Some(key) = key {
            req = req.header("idempotency-key", key);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status} {text}: {e}"))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Creates a drop from a full body (admin): its view.
    pub(crate) async fn create_drop_from(&self, body: Value) -> Value {
        let answer = self
            .call(
                reqwest::Method::POST,
                "/api/drops",
                As::Admin,
                Some(body),
                None,
            )
            .await;
        assert_eq!(answer.status, 201, "create drop: {}", answer.body);
        answer.body
    }

    /// A drop of sizes `40`… with the stock given for each, at 10.00 a
    /// unit, `maxPerBuyer` as given: its view.
    pub(crate) async fn sized_drop(&self, stock: &[u32], max_per_buyer: u32) -> Value {
        let variants: Vec<Value> = stock
            .iter()
            .enumerate()
            .map(|(i, n)| json!({ "name": (40 + i).to_string(), "totalStock": n }))
            .collect();
        self.create_drop_from(json!({
            "name": "Sized", "price": "10.00", "variants": variants,
            "maxPerBuyer": max_per_buyer, "holdSeconds": 60
        }))
        .await
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
