//! Prometheus metrics: in a registry of the API's own (so several
//! instances, e.g. in tests, never share counters), or in the host
//! application's registry; the `/metrics` handler and the latency
//! middleware.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: String,
    status: u16,
}

/// The label of a request method: one of the standard methods, or `other`
/// for any extension method, so that a client inventing methods cannot
/// add a series per name it invents.
fn method_label(method: &str) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    STANDARD
        .into_iter()
        .find(|m| *m == method)
        .unwrap_or("other")
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// The counters, gauges and histograms `GET /metrics` exposes, all named
/// `dropkit_*`.
pub struct Metrics {
    /// `None` when the metrics live in the host application's registry,
    /// which the host exposes itself.
    registry: Option<Registry>,
    operations: Family<OpLabels, Counter>,
    http: Family<HttpLabels, Histogram, fn() -> Histogram>,
    ws_clients: Gauge,
    hub_flush_delay: Histogram,
    hub_resyncs: Counter,
    hub_frames: Counter,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry of its own with every metric registered.
    pub fn new() -> Self {
        Self::new_with(|_| {})
    }

    /// A fresh registry of its own with every metric registered, and
    /// whatever `more` registers beside them (the webhooks').
    pub(crate) fn new_with(more: impl FnOnce(&mut Registry)) -> Self {
        let mut registry = Registry::default();
        let mut metrics = Self::registered_in(&mut registry);
        more(&mut registry);
        metrics.registry = Some(registry);
        metrics
    }

    /// Registers every metric in the host application's `registry` (under
    /// the `dropkit` prefix), for the host to expose with its own metrics.
    /// [`encode`](Self::encode) then answers an empty string, and the API
    /// serves no `/metrics` route of its own.
    pub fn registered_in(registry: &mut Registry) -> Self {
        let registry = registry.sub_registry_with_prefix("dropkit");
        let operations = Family::<OpLabels, Counter>::default();
        registry.register(
            "operations",
            "Reserve, purchase, release and expire outcomes (ok or an error code)",
            operations.clone(),
        );
        let http = Family::<HttpLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route and status",
            http.clone(),
        );
        let ws_clients = Gauge::default();
        registry.register(
            "ws_clients",
            "Connected WebSocket clients",
            ws_clients.clone(),
        );
        let hub_flush_delay = latency_histogram();
        registry.register(
            "hub_flush_delay_seconds",
            "Hub lag: time from a committed stock change to its broadcast",
            hub_flush_delay.clone(),
        );
        let hub_resyncs = Counter::default();
        registry.register(
            "hub_resyncs",
            "Clients that fell behind and were resent a snapshot",
            hub_resyncs.clone(),
        );
        let hub_frames = Counter::default();
        registry.register(
            "hub_frames",
            "Messages the hub broadcast (each goes to every client)",
            hub_frames.clone(),
        );
        Self {
            registry: None,
            operations,
            http,
            ws_clients,
            hub_flush_delay,
            hub_resyncs,
            hub_frames,
        }
    }

    /// Counts one operation's outcome (`"ok"` or an error code).
    pub fn operation(&self, op: &'static str, outcome: &'static str) {
        self.operations
            .get_or_create(&OpLabels { op, outcome })
            .inc();
    }

    /// Records one HTTP request. Any non-standard method is labelled
    /// `other`; `route` must come from a fixed set (the matched route).
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.http
            .get_or_create(&HttpLabels {
                method: method_label(method),
                route: route.to_owned(),
                status,
            })
            .observe(took.as_secs_f64());
    }

    pub(crate) fn ws_connected(&self) {
        self.ws_clients.inc();
    }

    pub(crate) fn ws_disconnected(&self) {
        self.ws_clients.dec();
    }

    /// Connected WebSocket clients right now.
    pub fn ws_clients(&self) -> i64 {
        self.ws_clients.get()
    }

    pub(crate) fn flushed(&self, delay: Duration, frames: u64) {
        self.hub_flush_delay.observe(delay.as_secs_f64());
        self.hub_frames.inc_by(frames);
    }

    pub(crate) fn frame(&self) {
        self.hub_frames.inc();
    }

    pub(crate) fn resync(&self) {
        self.hub_resyncs.inc();
    }

    /// Whether the metrics live in a registry of their own (and are served
    /// by the API's `/metrics` route).
    pub fn has_own_registry(&self) -> bool {
        self.registry.is_some()
    }

    /// The Prometheus / OpenMetrics text exposition of the API's own
    /// registry; empty when the metrics were registered in the host's.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Some(registry) = &self.registry {
            prometheus_client::encoding::text::encode(&mut out, registry)
                .expect("writing to a String cannot fail");
        }
        out
    }
}

/// `GET /metrics`: the Prometheus text exposition.
pub(crate) async fn expose(State(metrics): State<Arc<Metrics>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
        .into_response()
}

/// Records the latency of every request by matched route.
pub(crate) async fn record_latency(
    State(metrics): State<Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let res = next.run(req).await;
    metrics.request(
        method.as_str(),
        &route,
        res.status().as_u16(),
        started.elapsed(),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        let m = Metrics::new();
        for i in 0..100 {
            m.request(&format!("INVENTED{i}"), "/api/drops", 405, Duration::ZERO);
        }
        m.request("GET", "/api/drops", 200, Duration::ZERO);
        m.request("get", "/api/drops", 405, Duration::ZERO);
        let text = m.encode();
        let series = text
            .lines()
            .filter(|l| l.starts_with("dropkit_http_request_duration_seconds_count"))
            .count();
        assert_eq!(series, 2, "{text}");
        assert!(
            text.contains(r#"method="other",route="/api/drops",status="405"} 101"#),
            "{text}"
        );
        assert!(text.contains(r#"method="GET""#));
        assert!(!text.contains("INVENTED"));
    }

    #[test]
    fn a_host_registry_gets_every_metric() {
        let mut host = Registry::default();
        let m = Metrics::registered_in(&mut host);
        m.operation("reserve", "ok");
        assert!(!m.has_own_registry());
        assert_eq!(m.encode(), "");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &host).unwrap();
        assert!(
            text.contains(r#"dropkit_operations_total{op="reserve",outcome="ok"} 1"#),
            "{text}"
        );
        assert!(text.contains("dropkit_ws_clients"), "{text}");
    }
}
