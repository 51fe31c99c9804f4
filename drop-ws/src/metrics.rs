//! Prometheus metrics, one registry per API instance (so several
//! instances, e.g. in tests, never share counters).

use std::fmt;
use std::time::Duration;

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

/// The counters, gauges and histograms `GET /metrics` exposes.
pub struct Metrics {
    registry: Registry,
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
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("dropkit");
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
            registry,
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

    /// The Prometheus / OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
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
}
