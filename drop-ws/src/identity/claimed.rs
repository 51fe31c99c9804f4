//! The original API's identity: whoever the request says it is.

use async_trait::async_trait;
use drop_core::{Buyer, Username};

use super::{Identity, IdentityError, IdentityHook, IdentityRequest};

/// The buyer is the `username` the request names (in its JSON body, or
/// `?username=` on `GET /api/drops` and `DELETE /api/reservations/{id}`),
/// unchecked: it is both the store's [`BuyerId`](drop_core::BuyerId) and
/// the display name ([`Buyer::claimed`]). Anyone can act as anyone, so
/// this is for load tests and demos only; the API logs a warning at start.
/// The wire format is the original's exactly, so load tools and old
/// clients work unchanged.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClaimedIdentity;

#[async_trait]
impl IdentityHook for ClaimedIdentity {
    async fn identify(
        &self,
        request: &IdentityRequest<'_>,
    ) -> Result<Option<Identity>, IdentityError> {
        // The name's shape was checked when the body was read (a 400
        // naming the field); what reaches here is only ever valid.
        Ok(request
            .claimed_username()
            .map(str::trim)
            .filter(|raw| !raw.is_empty())
            .and_then(|raw| Username::parse(raw).ok())
            .map(|name| Identity::new(Buyer::claimed(name))))
    }

    fn reads_claimed_username(&self) -> bool {
        true
    }
}
