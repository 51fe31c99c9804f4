//! Which web pages may act on the API from a browser: the site's own and
//! the configured CORS origins. Checked on WebSocket upgrades and on
//! writes a browser sends with credentials it adds by itself (a session
//! cookie), the two ways a page elsewhere could act for its visitors.

use axum::http::{HeaderMap, HeaderValue, header};

/// The allow-list of cross-origin pages, besides the site's own.
#[derive(Debug, Clone, Default)]
pub(crate) struct AllowedOrigins(pub(crate) Vec<HeaderValue>);

impl AllowedOrigins {
    /// Allowed: no `Origin` (not a browser, or a browser that does not
    /// send one for a same-origin request), an origin configured for
    /// CORS, or the page's own origin (`Origin` naming the `Host` the
    /// request went to). `Origin: null` (sandboxed frames, some
    /// redirects) is refused.
    pub(crate) fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        if self.0.iter().any(|allowed| allowed == origin) {
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
        let s = AllowedOrigins(vec![HeaderValue::from_static("https://shop.example")]);
        assert!(s.allows(&headers(None, "api.example")));
        assert!(s.allows(&headers(Some("https://shop.example"), "api.example")));
        assert!(s.allows(&headers(
            Some("http://api.example:8080"),
            "api.example:8080"
        )));
        assert!(s.allows(&headers(Some("https://API.example"), "api.example:443")));
        assert!(!s.allows(&headers(Some("https://evil.example"), "api.example")));
        assert!(!s.allows(&headers(
            Some("http://api.example:8081"),
            "api.example:8080"
        )));
        assert!(!s.allows(&headers(Some("null"), "api.example")));
        assert!(!s.allows(&headers(Some("ftp://api.example"), "api.example")));
    }
}
