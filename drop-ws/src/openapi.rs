//! The OpenAPI document, generated from the handlers and wire types.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::wire::{
    CreateDropBody, DropView, HealthView, PurchaseBody, PurchaseView, ReleaseBody, ReservationView,
    ReserveBody, TopPurchaserView, UserHoldView, WsMessage,
};
use crate::{ErrorBody, routes};

/// The API's OpenAPI 3 description (served at `GET /api/openapi.json`).
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "dropkit",
        description = "Limited-edition drops: reserve, hold, purchase; live stock over `GET /api/ws` (messages: see `WsMessage`)."
    ),
    paths(
        routes::list_drops,
        routes::create_drop,
        routes::reserve,
        routes::get_reservation,
        routes::release,
        routes::purchase,
        routes::health,
        routes::live,
        routes::ready,
    ),
    components(schemas(
        DropView, TopPurchaserView, UserHoldView, ReservationView, PurchaseView,
        CreateDropBody, ReserveBody, PurchaseBody, ReleaseBody, HealthView, ErrorBody, WsMessage
    )),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}
