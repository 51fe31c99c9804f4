//! The OpenAPI document, generated from the handlers and wire types, and
//! the route that serves it.

use axum::Json;
use axum::extract::NestedPath;
use axum::extract::rejection::NestedPathRejection;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;
use crate::wire::{
    CreateDropBody, DropView, HealthView, PurchaseBody, PurchaseView, ReleaseBody, ReservationView,
    ReserveBody, TopPurchaserView, UserHoldView, WsMessage,
};
use crate::{health, routes};

/// The API's OpenAPI 3 description.
#[derive(OpenApi)]
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
        health::health,
        health::live,
        health::ready,
    ),
    components(schemas(
        DropView, TopPurchaserView, UserHoldView, ReservationView, PurchaseView,
        CreateDropBody, ReserveBody, PurchaseBody, ReleaseBody, HealthView, ErrorBody, WsMessage
    )),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

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

/// The OpenAPI document of the API mounted at `prefix` (e.g. `"/shop"`
/// for `Router::nest("/shop", api.router())`; `""` at the root). Paths are
/// relative to the prefix, which the document names as its one server.
pub fn openapi_document(prefix: &str) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let prefix = prefix.trim_end_matches('/');
    if !prefix.is_empty() {
        doc.servers = Some(vec![Server::new(prefix)]);
    }
    doc
}

/// `GET /api/openapi.json`: the document, with the prefix the router was
/// nested at (if any) as its server.
pub(crate) async fn serve(nested: Result<NestedPath, NestedPathRejection>) -> Response {
    let prefix = nested.as_ref().map_or("", NestedPath::as_str);
    Json(openapi_document(prefix)).into_response()
}
