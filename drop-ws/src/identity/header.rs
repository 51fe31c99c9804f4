//! Buyers named by an authenticating proxy in front of the API.

use async_trait::async_trait;
use drop_core::{Buyer, BuyerId, Username};

use super::{Identity, IdentityError, IdentityHook, IdentityRequest};
use crate::proxy::{Network, TrustedProxies};

/// Default header carrying the buyer's id.
pub const DEFAULT_ID_HEADER: &str = "x-dropkit-buyer-id";
/// Default header carrying the buyer's display name.
pub const DEFAULT_NAME_HEADER: &str = "x-dropkit-buyer-name";

/// The buyer named by headers an authenticating proxy sets (for apps
/// behind oauth2-proxy, an API gateway, a service mesh): the id from one
/// header, the display name from another. The headers are believed only
/// on connections from the configured proxy addresses; from anyone else
/// they are ignored (the request is anonymous), so a client cannot name
/// itself. The proxy must remove or overwrite these headers on what
/// clients send it.
///
/// A name that is not a valid display name (3–50 of `A–Z a–z 0–9 _`) is
/// shown with its other characters as `_`; without a name header the
/// display name is `buyer`.
#[derive(Debug, Clone)]
pub struct HeaderIdentity {
    proxies: TrustedProxies,
    id_header: String,
    name_header: String,
}

impl HeaderIdentity {
    /// Headers `x-dropkit-buyer-id` and `x-dropkit-buyer-name`, believed
    /// from no one until [`proxy`](Self::proxy) names who sets them.
    pub fn new() -> Self {
        Self {
            proxies: TrustedProxies::default(),
            id_header: DEFAULT_ID_HEADER.to_owned(),
            name_header: DEFAULT_NAME_HEADER.to_owned(),
        }
    }

    /// Believes the headers from peers in `network` (an address such as
    /// `10.0.0.7` or a network such as `10.0.0.0/8`).
    pub fn proxy(mut self, network: &str) -> Result<Self, drop_core::DropError> {
        let network = Network::parse(network).ok_or_else(|| {
            drop_core::DropError::invalid(
                "identityProxy",
                "must be an IP address or a network such as 10.0.0.0/8",
            )
        })?;
        self.proxies.push(network);
        Ok(self)
    }

    /// The header carrying the buyer's id (case-insensitive).
    pub fn id_header(mut self, name: &str) -> Self {
        self.id_header = name.to_ascii_lowercase();
        self
    }

    /// The header carrying the buyer's display name (case-insensitive).
    pub fn name_header(mut self, name: &str) -> Self {
        self.name_header = name.to_ascii_lowercase();
        self
    }
}

impl Default for HeaderIdentity {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl IdentityHook for HeaderIdentity {
    async fn identify(
        &self,
        request: &IdentityRequest<'_>,
    ) -> Result<Option<Identity>, IdentityError> {
        // The peer, not the forwarded client: only the proxy itself may
        // speak for a buyer.
        let Some(peer) = request.peer_ip() else {
            return Ok(None);
        };
        if !self.proxies.trusts(peer) {
            return Ok(None);
        }
        let Some(raw) = request.header(&self.id_header) else {
            return Ok(None);
        };
        let id = BuyerId::parse(raw).map_err(|err| {
            IdentityError::Rejected(format!("the proxy's buyer id is not valid: {err}"))
        })?;
        let name = display_name(request.header(&self.name_header));
        Ok(Some(Identity::new(Buyer::new(id, name))))
    }
}

/// A display name from what the proxy sent, made valid.
fn display_name(raw: Option<&str>) -> Username {
    let cleaned: String = raw
        .unwrap_or_default()
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(drop_core::username::USERNAME_MAX)
        .collect();
    Username::parse(&cleaned)
        .unwrap_or_else(|_| Username::parse("buyer").expect("a valid display name"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, Method, Uri};

    async fn who(hook: &HeaderIdentity, peer: &str, headers: &[(&str, &str)]) -> Option<Buyer> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let (method, uri) = (Method::GET, Uri::from_static("/api/drops"));
        let req = IdentityRequest::new(&method, &uri, &h)
            .with_addresses(None, Some(peer.parse().unwrap()));
        hook.identify(&req)
            .await
            .unwrap()
            .map(|i| i.buyer().clone())
    }

    #[tokio::test]
    async fn headers_count_only_from_the_proxy() {
        let hook = HeaderIdentity::new().proxy("10.0.0.0/8").unwrap();
        let sent = [
            ("x-dropkit-buyer-id", "auth0|5f3a"),
            ("x-dropkit-buyer-name", "Jane Doe"),
        ];
        let buyer = who(&hook, "10.1.2.3", &sent).await.expect("from the proxy");
        assert_eq!(buyer.id.as_str(), "auth0|5f3a");
        assert_eq!(buyer.display_name.as_str(), "Jane_Doe");
        assert_eq!(
            who(&hook, "203.0.113.9", &sent).await,
            None,
            "from a client"
        );
        assert_eq!(who(&hook, "10.1.2.3", &[]).await, None, "no header");
        let unnamed = who(&hook, "10.1.2.3", &sent[..1]).await.unwrap();
        assert_eq!(unnamed.display_name.as_str(), "buyer");
    }
}
