//! The edge bounds configured on the builder: on plain HTTP connections
//! (applied by the server) and on WebSockets (applied at the upgrade).

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};

use crate::caps::Caps;

/// The bounds on plain HTTP connections, from the builder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnSettings {
    /// How long a request's headers may take; `None` for no limit.
    pub(crate) header_timeout: Option<Duration>,
    /// Connections open at once per client address (0 = no cap).
    pub(crate) per_ip: usize,
    /// Connections open at once in all (0 = no cap).
    pub(crate) total: usize,
}

/// Who may open a WebSocket, how many may be open, and how the server
/// notices the ones whose client is gone.
#[derive(Debug)]
pub(crate) struct WsSettings {
    /// Per client address and in total.
    pub(crate) caps: Caps,
    /// Cross-origin pages allowed to connect (the CORS origins).
    pub(crate) origins: Vec<HeaderValue>,
    /// Time between two pings.
    pub(crate) ping_interval: Duration,
    /// Close a socket silent for this long; `None` keeps it.
    pub(crate) idle_timeout: Option<Duration>,
}

impl WsSettings {
    /// Browsers send `Origin` on every WebSocket handshake and let any
    /// page open one (CORS does not apply), so a page elsewhere could
    /// otherwise hold sockets open from its visitors' browsers. Allowed:
    /// no `Origin` (not a browser), an origin configured for CORS, or the
    /// page's own origin (`Origin` naming the `Host` the request went to).
    pub(crate) fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        if self.origins.iter().any(|allowed| allowed == origin) {
            return true;
        }
        let (Ok(origin), Some(Ok(host))) = (
            origin.to_str(),
            headers.get(header::HOST).map(HeaderValue::to_str),
        ) else {
            return false;
        };
        let Some((scheme, authority)) = origin.split_once("://") else {
            return false;
        };
        let default_port = match scheme {
            "http" => ":80",
            "https" => ":443",
            _ => return false,
        };
        let host = host.strip_suffix(default_port).unwrap_or(host);
        authority.eq_ignore_ascii_case(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(origins: &[&'static str]) -> WsSettings {
        WsSettings {
            caps: Caps::new(0, 0),
            origins: origins
                .iter()
                .map(|o| HeaderValue::from_static(o))
                .collect(),
            ping_interval: Duration::from_secs(1),
            idle_timeout: None,
        }
    }

    fn headers(origin: Option<&'static str>, host: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static(host));
        if let Some(origin) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_static(origin));
        }
        h
    }

    #[test]
    fn origins_allowed_are_the_configured_ones_the_sites_own_and_none() {
        let s = settings(&["https://shop.example"]);
        assert!(s.origin_allowed(&headers(None, "api.example")));
        assert!(s.origin_allowed(&headers(Some("https://shop.example"), "api.example")));
        assert!(s.origin_allowed(&headers(
            Some("http://api.example:8080"),
            "api.example:8080"
        )));
        assert!(s.origin_allowed(&headers(Some("https://API.example"), "api.example:443")));
        assert!(!s.origin_allowed(&headers(Some("https://evil.example"), "api.example")));
        assert!(!s.origin_allowed(&headers(
            Some("http://api.example:8081"),
            "api.example:8080"
        )));
        assert!(!s.origin_allowed(&headers(Some("null"), "api.example")));
        assert!(!s.origin_allowed(&headers(Some("ftp://api.example"), "api.example")));
    }
}
