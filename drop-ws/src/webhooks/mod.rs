//! Signed, at-least-once webhooks driven by the store's event log.
//!
//! Each endpoint gets the log's `purchaseCompleted` and
//! `purchaseCancelled` entries (or the [kinds you
//! choose](WebhooksBuilder::event_types)) as `POST`s of the entry's JSON,
//! one at a time, in log order, each signed with HMAC-SHA256
//! ([`sign`], [`verify`]). An entry is retried, with exponential backoff
//! and full jitter, until the endpoint answers 2xx; it is never skipped.
//!
//! Where delivery stands is a [cursor](drop_core::InventoryStore::claim_cursor)
//! in the store, named `webhook:<url>`, leased to one instance at a time:
//! a restart, or another instance, goes on where delivery stopped, and
//! several instances sharing a store deliver each endpoint once, not once
//! each. Receivers dedupe by `Dropkit-Event-Id` (the entry's `seq`),
//! since a delivery whose answer was lost is sent again.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn drop_core::InventoryStore>) -> Result<(), drop_core::DropError> {
//! use std::time::Duration;
//! use tokio_util::sync::CancellationToken;
//!
//! let shutdown = CancellationToken::new();
//! let webhooks = drop_ws::Webhooks::builder()
//!     .endpoint("https://shop.example/hooks/dropkit")?
//!     .secret("whsec_a-long-random-string-of-32-bytes-or-more")?
//!     .timeout(Duration::from_secs(10))
//!     .spawn(store, shutdown.clone())?;
//! // … and at shutdown, before the store closes: stop delivering and
//! // give the cursors up, so another instance takes over at once.
//! webhooks.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The request, headers and how a receiver checks them are in
//! `docs/webhooks.md`.

mod deliver;
mod signature;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drop_core::{CHANGE_KINDS, DropError, InventoryStore, check_cursor_name};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sha2::Digest as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

pub use signature::{DEFAULT_TOLERANCE, SignatureError, sign, verify};

/// The header carrying the entry's `seq`: the same on every re-send of
/// one entry, so receivers dedupe by it.
pub const EVENT_ID_HEADER: &str = "Dropkit-Event-Id";
/// The header carrying the entry's `type`, e.g. `purchaseCompleted`.
pub const EVENT_TYPE_HEADER: &str = "Dropkit-Event-Type";
/// The header carrying the signature: `t=<unix seconds>,v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "Dropkit-Signature";
/// The header counting attempts at one entry from this instance (1, 2, …).
pub const ATTEMPT_HEADER: &str = "Dropkit-Delivery-Attempt";

/// The entry kinds delivered by default.
pub const DEFAULT_EVENT_TYPES: &[&str] = &["purchaseCompleted", "purchaseCancelled"];
/// How long an endpoint has to answer by default: 10 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The first retry's longest wait by default: 1 s.
pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_secs(1);
/// The longest wait between two attempts by default: 5 minutes.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(5 * 60);
/// How long a cursor lease lasts by default: 30 s (renewed every third).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// How often an idle deliverer reads the log by default: 1 s (it also
/// wakes at once on this instance's own purchases).
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);
/// The shortest secret accepted: 32 bytes, HMAC-SHA256's own strength.
pub const MIN_SECRET_BYTES: usize = 32;

/// Entries read from the log at once.
const PAGE: usize = 100;

/// Webhook delivery, configured by [`Webhooks::builder`] and started by
/// [`WebhooksBuilder::spawn`].
#[derive(Debug)]
pub struct Webhooks;

impl Webhooks {
    /// Starts configuring webhooks: give at least one
    /// [`endpoint`](WebhooksBuilder::endpoint) and the
    /// [`secret`](WebhooksBuilder::secret).
    pub fn builder() -> WebhooksBuilder {
        WebhooksBuilder {
            endpoints: Vec::new(),
            secret: None,
            timeout: DEFAULT_TIMEOUT,
            backoff: (DEFAULT_BACKOFF_MIN, DEFAULT_BACKOFF_MAX),
            lease: DEFAULT_LEASE,
            poll: DEFAULT_POLL,
            kinds: DEFAULT_EVENT_TYPES.to_vec(),
            instance: Uuid::new_v4(),
            headers: HeaderMap::new(),
            metrics: None,
            backfill: true,
        }
    }
}

/// The secret bodies are signed with; its `Debug` never shows it.
#[derive(Clone)]
struct Secret(Arc<[u8]>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Configures [`Webhooks`]. Setters that check their input answer
/// `INVALID_INPUT` (with the field) for a bad one.
#[derive(Debug)]
pub struct WebhooksBuilder {
    endpoints: Vec<Endpoint>,
    secret: Option<Secret>,
    timeout: Duration,
    backoff: (Duration, Duration),
    lease: Duration,
    poll: Duration,
    kinds: Vec<&'static str>,
    instance: Uuid,
    headers: HeaderMap,
    metrics: Option<WebhookMetrics>,
    backfill: bool,
}

impl WebhooksBuilder {
    /// Adds an endpoint: an absolute `http` or `https` URL. Its cursor is
    /// named `webhook:<url>` (the URL as parsed, so equal URLs written
    /// differently share it; one too long for a cursor name is named by
    /// its SHA-256 instead). The same URL twice is refused.
    pub fn endpoint(mut self, url: &str) -> Result<Self, DropError> {
        let endpoint = Endpoint::parse(url)?;
        if self.endpoints.iter().any(|e| e.url == endpoint.url) {
            return Err(DropError::invalid(
                "webhook",
                format!("{} is listed twice", endpoint.shown),
            ));
        }
        self.endpoints.push(endpoint);
        Ok(self)
    }

    /// The secret every body is signed with, at least
    /// [`MIN_SECRET_BYTES`] (e.g. `openssl rand -hex 32`); receivers
    /// check signatures with the same. Required.
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Result<Self, DropError> {
        let secret = secret.as_ref();
        if secret.len() < MIN_SECRET_BYTES || secret.iter().all(u8::is_ascii_whitespace) {
            return Err(DropError::invalid(
                "webhookSecret",
                format!("must be at least {MIN_SECRET_BYTES} bytes"),
            ));
        }
        self.secret = Some(Secret(secret.into()));
        Ok(self)
    }

    /// How long an endpoint has to answer (connecting included) before
    /// the attempt counts as failed and is retried. Defaults to
    /// [`DEFAULT_TIMEOUT`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The retry waits: after the `n`th failed attempt at an entry, a
    /// random wait between 0 and `min(max, min × 2ⁿ⁻¹)` ("full jitter",
    /// so that many senders do not retry in step). Defaults to
    /// [`DEFAULT_BACKOFF_MIN`] and [`DEFAULT_BACKOFF_MAX`].
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff = (min, max);
        self
    }

    /// How long this instance's claim on a cursor lasts without renewal
    /// (it renews every third of it): how long another instance waits
    /// to take over an endpoint after this one died. A clean
    /// [`shutdown`](WebhookDeliveries::shutdown) hands over at once.
    /// Defaults to [`DEFAULT_LEASE`].
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Where an endpoint that has no cursor yet (never delivered to, or
    /// whose cursor was removed) starts: `true` (the default) at the
    /// oldest entry the store keeps, so it first receives the purchases
    /// still in the log; `false` at the log's head, so it receives only
    /// what happens from then on. An endpoint with a cursor always goes on
    /// from it. Whichever instance makes the cursor decides, once.
    pub fn backfill(mut self, backfill: bool) -> Self {
        self.backfill = backfill;
        self
    }

    /// How often an idle deliverer reads the log for new entries; it also
    /// wakes at once on every matching change the store announces.
    /// Defaults to [`DEFAULT_POLL`].
    pub fn poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Which log entries are delivered, by `type` (one of
    /// [`CHANGE_KINDS`]); others are passed over. Defaults to
    /// [`DEFAULT_EVENT_TYPES`].
    pub fn event_types<'a>(
        mut self,
        kinds: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, DropError> {
        let mut chosen = Vec::new();
        for kind in kinds {
            let known = CHANGE_KINDS
                .iter()
                .find(|k| **k == kind)
                .ok_or_else(|| DropError::invalid("eventTypes", format!("unknown type {kind}")))?;
            if !chosen.contains(known) {
                chosen.push(*known);
            }
        }
        if chosen.is_empty() {
            return Err(DropError::invalid("eventTypes", "must name at least one"));
        }
        self.kinds = chosen;
        Ok(self)
    }

    /// This instance's id as a cursor holder. Defaults to a fresh random
    /// one; two deliverers given the same id would share one lease.
    pub fn instance_id(mut self, id: Uuid) -> Self {
        self.instance = id;
        self
    }

    /// A header sent with every delivery besides dropkit's own (say, an
    /// `Authorization` the receiver wants). Dropkit's headers and
    /// `Content-Type` cannot be replaced.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, DropError> {
        let name = HeaderName::try_from(name)
            .map_err(|_| DropError::invalid("webhookHeader", "not a header name"))?;
        let reserved = [
            EVENT_ID_HEADER,
            EVENT_TYPE_HEADER,
            SIGNATURE_HEADER,
            ATTEMPT_HEADER,
            "content-type",
            "content-length",
            "host",
        ];
        if reserved
            .iter()
            .any(|r| name.as_str().eq_ignore_ascii_case(r))
        {
            return Err(DropError::invalid(
                "webhookHeader",
                format!("{name} is set by dropkit"),
            ));
        }
        let mut value = HeaderValue::try_from(value)
            .map_err(|_| DropError::invalid("webhookHeader", "not a header value"))?;
        value.set_sensitive(true);
        self.headers.append(name, value);
        Ok(self)
    }

    /// Registers the delivery metrics in `registry` (under the `dropkit`
    /// prefix): `dropkit_webhook_deliveries_total{endpoint, outcome}`
    /// (`ok` or `failed`, one per attempt) and `dropkit_webhook_lag{endpoint}`
    /// (log head minus the cursor, as last seen). Endpoints are labelled
    /// without credentials or query. Defaults to none (the figures are
    /// still in [`WebhookDeliveries::status`]).
    pub fn metrics_registry(mut self, registry: &mut Registry) -> Self {
        self.metrics = Some(WebhookMetrics::registered_in(registry));
        self
    }

    /// Whether [`metrics_registry`](Self::metrics_registry) was called.
    pub(crate) fn has_metrics(&self) -> bool {
        self.metrics.is_some()
    }

    /// Starts one deliverer per endpoint on the current runtime, each
    /// stopping when `shutdown` is cancelled (or at
    /// [`WebhookDeliveries::shutdown`]), giving its cursor up on the way
    /// out. Refuses a configuration without a secret or endpoint, or with
    /// a zero period or a backoff whose minimum is above its maximum.
    pub fn spawn(
        self,
        store: Arc<dyn InventoryStore>,
        shutdown: CancellationToken,
    ) -> Result<WebhookDeliveries, DropError> {
        let secret = self
            .secret
            .ok_or_else(|| DropError::invalid("webhookSecret", "is required"))?;
        if self.endpoints.is_empty() {
            return Err(DropError::invalid("webhook", "give at least one endpoint"));
        }
        let (min, max) = self.backoff;
        if min.is_zero() || min > max {
            return Err(DropError::invalid(
                "webhookBackoff",
                "the minimum must be above 0 and at most the maximum",
            ));
        }
        for (field, period) in [
            ("webhookTimeout", self.timeout),
            ("webhookLease", self.lease),
            ("webhookPoll", self.poll),
        ] {
            if period.is_zero() {
                return Err(DropError::invalid(field, "must be above 0"));
            }
        }
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            // A redirect is an answer that is not 2xx: retried, not
            // followed to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("dropkit-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| DropError::Internal {
                store: "webhooks",
                source: drop_core::ErrorSource::new(err),
            })?;
        let settings = Arc::new(deliver::Settings {
            secret: secret.0,
            backoff_min: min,
            backoff_max: max,
            lease: self.lease,
            poll: self.poll,
            kinds: self.kinds,
            instance: self.instance,
            headers: self.headers,
            backfill: self.backfill,
        });
        let metrics = self.metrics.map(Arc::new);
        let tasks = TaskTracker::new();
        let mut statuses = Vec::new();
        for endpoint in self.endpoints {
            let status = Arc::new(Mutex::new(EndpointStatus {
                endpoint: endpoint.shown.clone(),
                cursor: endpoint.cursor.clone(),
                delivering: false,
                position: None,
                head: None,
                delivered: 0,
                failed_attempts: 0,
            }));
            statuses.push(status.clone());
            let deliverer = deliver::Deliverer {
                store: store.clone(),
                settings: settings.clone(),
                endpoint,
                client: client.clone(),
                status,
                metrics: metrics.clone(),
                cancel: shutdown.clone(),
            };
            tasks.spawn(deliverer.run());
        }
        let configured: Vec<String> = statuses
            .iter()
            .map(|s| s.lock().expect("status lock").cursor.clone())
            .collect();
        tasks.spawn(warn_of_stale_cursors(store, configured, shutdown.clone()));
        tasks.close();
        Ok(WebhookDeliveries {
            tasks,
            cancel: shutdown,
            statuses,
        })
    }
}

/// Warns, once at start, of webhook cursors in the store that no endpoint
/// here delivers from: an endpoint taken out of every instance's
/// configuration leaves its cursor behind, and retention keeps every entry
/// after it until it is removed.
async fn warn_of_stale_cursors(
    store: Arc<dyn InventoryStore>,
    configured: Vec<String>,
    shutdown: CancellationToken,
) {
    let listed = tokio::select! {
        () = shutdown.cancelled() => return,
        listed = store.cursors() => listed,
    };
    match listed {
        Ok(cursors) => {
            for c in cursors {
                if c.name.starts_with("webhook:") && !c.held && !configured.contains(&c.name) {
                    tracing::warn!(
                        cursor = %c.name,
                        position = c.position,
                        "a webhook cursor no endpoint here delivers from keeps the event log \
                         from being pruned past it; if that endpoint is gone for good, remove \
                         it (DELETE /api/admin/cursors/{{name}})"
                    );
                }
            }
        }
        Err(err) => tracing::debug!(error = %err, "could not list the log's cursors"),
    }
}

/// One endpoint: its URL, how logs and metrics show it, its cursor.
#[derive(Debug, Clone)]
struct Endpoint {
    url: Url,
    /// Without credentials, query or fragment, which may hold secrets.
    shown: String,
    cursor: String,
}

impl Endpoint {
    fn parse(text: &str) -> Result<Self, DropError> {
        let url = Url::parse(text.trim())
            .map_err(|err| DropError::invalid("webhook", format!("not a URL: {err}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(DropError::invalid(
                "webhook",
                "must be an http:// or https:// URL with a host",
            ));
        }
        let mut shown = url.clone();
        // Setting these cannot fail on an http(s) URL with a host.
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        shown.set_query(None);
        shown.set_fragment(None);
        // The name is listed to admins and logged: it names the endpoint
        // as shown, and a URL with credentials, query or fragment (which
        // may hold secrets) by a digest of the whole, so that two such
        // URLs still get cursors of their own.
        let digest = sha2::Sha256::digest(url.as_str().as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let named = if shown == url {
            format!("webhook:{url}")
        } else {
            format!("webhook:{shown}#{}", &hex[..16])
        };
        let cursor = if check_cursor_name(&named).is_ok() {
            named
        } else {
            format!("webhook:sha256:{hex}")
        };
        Ok(Self {
            url,
            shown: shown.to_string(),
            cursor,
        })
    }
}

/// Where one endpoint's delivery stands, as this instance sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStatus {
    /// The endpoint, without credentials or query.
    pub endpoint: String,
    /// Its cursor's name in the store.
    pub cursor: String,
    /// Whether this instance holds the cursor and delivers; `false` while
    /// another instance does (or the store is unreachable).
    pub delivering: bool,
    /// The last entry finished with (delivered, or passed over), when
    /// this instance has held the cursor.
    pub position: Option<u64>,
    /// The highest log number seen when the log was last read.
    pub head: Option<u64>,
    /// Entries this instance delivered (answered 2xx).
    pub delivered: u64,
    /// Attempts that failed (non-2xx, timeout, connection error).
    pub failed_attempts: u64,
}

impl EndpointStatus {
    /// How far delivery trails the log, in entry numbers (holes count):
    /// `head - position`, when both are known.
    pub fn lag(&self) -> Option<u64> {
        Some(self.head?.saturating_sub(self.position?))
    }
}

/// Running webhook deliverers, one per endpoint. Clones are handles to
/// the same deliverers.
#[derive(Debug, Clone)]
pub struct WebhookDeliveries {
    tasks: TaskTracker,
    cancel: CancellationToken,
    statuses: Vec<Arc<Mutex<EndpointStatus>>>,
}

impl WebhookDeliveries {
    /// Each endpoint's status, in the order they were given.
    pub fn status(&self) -> Vec<EndpointStatus> {
        self.statuses
            .iter()
            .map(|s| s.lock().expect("status lock").clone())
            .collect()
    }

    /// Stops every deliverer and waits until they have stopped and given
    /// their cursors up (a delivery in flight is abandoned and will be
    /// sent again, by whoever takes the cursor next). Call it before the
    /// store closes. Calling it again waits for the same end.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.tasks.wait().await;
    }

    /// Waits until every deliverer has stopped (after the shutdown token
    /// was cancelled).
    pub async fn stopped(&self) {
        self.tasks.wait().await;
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    endpoint: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
}

/// The delivery counters and the lag gauge.
#[derive(Debug)]
struct WebhookMetrics {
    deliveries: Family<DeliveryLabels, Counter>,
    lag: Family<EndpointLabels, Gauge>,
}

impl WebhookMetrics {
    fn registered_in(registry: &mut Registry) -> Self {
        let registry = registry.sub_registry_with_prefix("dropkit");
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts by endpoint and outcome (ok or failed)",
            deliveries.clone(),
        );
        let lag = Family::<EndpointLabels, Gauge>::default();
        registry.register(
            "webhook_lag",
            "Log entries an endpoint's delivery trails the log by (head minus cursor)",
            lag.clone(),
        );
        Self { deliveries, lag }
    }

    fn attempt(&self, endpoint: &str, ok: bool) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                endpoint: endpoint.to_owned(),
                outcome: if ok { "ok" } else { "failed" },
            })
            .inc();
    }

    fn lag(&self, endpoint: &str, lag: u64) {
        self.lag
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.to_owned(),
            })
            .set(i64::try_from(lag).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn field(err: DropError) -> String {
        assert_eq!(err.code(), "INVALID_INPUT");
        err.field().unwrap_or_default().to_owned()
    }

    #[test]
    fn endpoints_must_be_http_urls() {
        for bad in [
            "",
            "shop.example/hook",
            "ftp://shop.example/hook",
            "file:///etc/passwd",
            "http://",
            "javascript:alert(1)",
        ] {
            let err = Webhooks::builder().endpoint(bad).unwrap_err();
            assert_eq!(field(err), "webhook", "{bad}");
        }
        let ok = Webhooks::builder()
            .endpoint("https://shop.example/hook")
            .unwrap()
            .endpoint("http://127.0.0.1:9000/a?token=t")
            .unwrap();
        assert_eq!(ok.endpoints.len(), 2);
        let twice = ok.endpoint("https://SHOP.example/hook").unwrap_err();
        assert_eq!(field(twice), "webhook");
    }

    #[test]
    fn endpoints_are_shown_without_secrets() {
        let e = Endpoint::parse("https://user:pw@shop.example:8443/hook?token=abc#x").unwrap();
        assert_eq!(e.shown, "https://shop.example:8443/hook");
        assert!(
            e.cursor
                .starts_with("webhook:https://shop.example:8443/hook#"),
            "{}",
            e.cursor
        );
        for secret in ["user", "pw", "token", "abc"] {
            assert!(!e.cursor.contains(secret), "{}", e.cursor);
        }
        let other = Endpoint::parse("https://shop.example:8443/hook?token=abd").unwrap();
        assert_ne!(e.cursor, other.cursor, "two secrets, two cursors");
        let plain = Endpoint::parse("https://shop.example:8443/hook").unwrap();
        assert_eq!(plain.cursor, "webhook:https://shop.example:8443/hook");
        let long = format!("https://shop.example/{}", "a".repeat(300));
        let e = Endpoint::parse(&long).unwrap();
        assert!(e.cursor.starts_with("webhook:sha256:"), "{}", e.cursor);
        assert!(check_cursor_name(&e.cursor).is_ok());
        assert_ne!(
            e.cursor,
            Endpoint::parse(&format!("{long}b")).unwrap().cursor
        );
    }

    #[test]
    fn short_secrets_are_refused_and_never_shown() {
        for bad in ["", "short", &" ".repeat(40)] {
            let err = Webhooks::builder().secret(bad).unwrap_err();
            assert_eq!(field(err), "webhookSecret");
        }
        let builder = Webhooks::builder().secret(SECRET).unwrap();
        assert!(!format!("{builder:?}").contains(SECRET));
    }

    #[test]
    fn event_types_are_known_ones() {
        let err = Webhooks::builder().event_types(["purchased"]).unwrap_err();
        assert_eq!(field(err), "eventTypes");
        let err = Webhooks::builder().event_types([]).unwrap_err();
        assert_eq!(field(err), "eventTypes");
        let b = Webhooks::builder()
            .event_types(["holdCreated", "holdCreated", "purchaseCompleted"])
            .unwrap();
        assert_eq!(b.kinds, ["holdCreated", "purchaseCompleted"]);
    }

    #[test]
    fn dropkit_headers_cannot_be_replaced() {
        for name in ["Dropkit-Signature", "content-type", "dropkit-event-id"] {
            let err = Webhooks::builder().header(name, "x").unwrap_err();
            assert_eq!(field(err), "webhookHeader", "{name}");
        }
        assert!(Webhooks::builder().header("bad name", "x").is_err());
        assert!(Webhooks::builder().header("x-a", "a\nb").is_err());
        let b = Webhooks::builder()
            .header("Authorization", "Bearer t0ken")
            .unwrap();
        assert!(!format!("{b:?}").contains("t0ken"));
    }

    #[tokio::test]
    async fn spawn_refuses_an_incomplete_configuration() {
        let store: Arc<dyn InventoryStore> = Arc::new(drop_store_memory::MemoryStore::new());
        let spawn = |b: WebhooksBuilder| b.spawn(store.clone(), CancellationToken::new());
        let endpoint = || Webhooks::builder().endpoint("http://127.0.0.1:9/").unwrap();
        assert_eq!(field(spawn(endpoint()).unwrap_err()), "webhookSecret");
        assert_eq!(
            field(spawn(Webhooks::builder().secret(SECRET).unwrap()).unwrap_err()),
            "webhook"
        );
        let complete = || endpoint().secret(SECRET).unwrap();
        let backwards = complete().backoff(Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(field(spawn(backwards).unwrap_err()), "webhookBackoff");
        let zero = complete().timeout(Duration::ZERO);
        assert_eq!(field(spawn(zero).unwrap_err()), "webhookTimeout");
        let zero = complete().lease(Duration::ZERO);
        assert_eq!(field(spawn(zero).unwrap_err()), "webhookLease");
    }

    #[test]
    fn lag_is_head_minus_position() {
        let mut s = EndpointStatus {
            endpoint: String::new(),
            cursor: String::new(),
            delivering: true,
            position: None,
            head: Some(10),
            delivered: 0,
            failed_attempts: 0,
        };
        assert_eq!(s.lag(), None);
        s.position = Some(7);
        assert_eq!(s.lag(), Some(3));
    }
}
