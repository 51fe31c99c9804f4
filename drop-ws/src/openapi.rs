//! The OpenAPI document, generated from the handlers and wire types, and
//! the route that serves it.

use axum::Json;
use axum::extract::NestedPath;
use axum::extract::rejection::NestedPathRejection;
use axum::response::IntoResponse;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;
use crate::wire::{
    CreateDropBody, DropView, HealthView, PurchaseBody, PurchaseView, ReleaseBody, ReservationView,
    ReserveBody, TopPurchaserView, UserHoldView, WsMessage,
};
use crate::{health, routes, ws};

/// The API's OpenAPI 3 description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "dropkit",
        description = "Limited-edition drops: reserve, hold, purchase; live stock over `GET /api/ws` \
            (frames: see `WsMessage`).\n\nThis document is the API's contract: every limit the server \
            enforces is stated in the schemas, and every status a route answers is listed with it. \
            A 400 means the request breaks its schema; a 422 means it fits the schema but breaks a rule \
            between fields or against the clock, named in the route's 422 description."
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
        ws::upgrade,
    ),
    components(schemas(
        DropView, TopPurchaserView, UserHoldView, ReservationView, PurchaseView,
        CreateDropBody, ReserveBody, PurchaseBody, ReleaseBody, HealthView, ErrorBody, WsMessage
    )),
    modifiers(&BearerAuth, &CommonResponses, &FlowLinks)
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

/// The answers any route may give besides its own: a request over the
/// time limit (408), a body over the size limit (413, routes with a body),
/// a server fault (500) and, where the store is asked, an unavailable
/// store (503 with `Retry-After`). Added here once rather than on each
/// route, so no route can forget one.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let store_free = matches!(path.as_str(), "/api/health/live" | "/api/ws");
            for op in [
                item.get.as_mut(),
                item.post.as_mut(),
                item.delete.as_mut(),
                item.put.as_mut(),
                item.patch.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                let has_body = op.request_body.is_some();
                let responses = &mut op.responses.responses;
                let mut add = |status: &str, response: Response| {
                    responses
                        .entry(status.to_owned())
                        .or_insert(RefOr::T(response));
                };
                add("408", error("`TIMEOUT`: the request took too long", false));
                if has_body {
                    add(
                        "413",
                        error("`PAYLOAD_TOO_LARGE`: the body is over the limit", false),
                    );
                }
                add("500", error("`INTERNAL`: a server fault (logged)", false));
                if !store_free {
                    add(
                        "503",
                        error("`UNAVAILABLE`: the store cannot answer now", true),
                    );
                }
            }
        }
    }
}

/// OpenAPI links between operations, so that a client (or a fuzzer's
/// stateful phase) can walk the real flow: create a drop, reserve a unit
/// of it, then read, buy or release that hold. Releasing has no link to
/// reading on purpose: a released hold stays readable (status
/// `released`), it is not deleted.
///
/// Written as JSON rather than with utoipa's `Link`, which serializes its
/// fields in snake_case (`operation_id`), a name OpenAPI does not know.
struct FlowLinks;

impl FlowLinks {
    fn links(path: &str, status: &str) -> Option<serde_json::Value> {
        let hold = || {
            serde_json::json!({
                "getReservation": {
                    "operationId": "getReservation",
                    "parameters": {"path.id": "$response.body#/id"},
                    "description": "Check the hold",
                },
                "purchase": {
                    "operationId": "purchase",
                    "requestBody": {
                        "reservationId": "$response.body#/id",
                        "username": "$response.body#/username",
                    },
                    "description": "Buy the held unit",
                },
                "release": {
                    "operationId": "release",
                    "parameters": {
                        "path.id": "$response.body#/id",
                        "query.username": "$response.body#/username",
                    },
                    "description": "Give the hold back",
                },
            })
        };
        Some(match (path, status) {
            ("/api/drops", "201") => serde_json::json!({
                "reserve": {
                    "operationId": "reserve",
                    "requestBody": {"dropId": "$response.body#/id"},
                    "description": "Reserve a unit of the new drop",
                },
            }),
            ("/api/reservations", "200" | "201") => hold(),
            ("/api/purchases", "201") => serde_json::json!({
                "getReservation": {
                    "operationId": "getReservation",
                    "parameters": {"path.id": "$response.body#/reservationId"},
                    "description": "The hold, now `purchased`",
                },
            }),
            _ => return None,
        })
    }
}

impl Modify for FlowLinks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let Some(op) = item.post.as_mut() else {
                continue;
            };
            for (status, response) in op.responses.responses.iter_mut() {
                let (RefOr::T(response), Some(links)) = (response, Self::links(path, status))
                else {
                    continue;
                };
                response
                    .extensions
                    .get_or_insert_with(Default::default)
                    .insert("links".to_owned(), links);
            }
        }
    }
}

fn error(description: &str, retry_after: bool) -> Response {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    );
    if retry_after {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(0)),
                )
                .description(Some("Seconds to wait before retrying"))
                .build(),
        );
    }
    response.build()
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
pub(crate) async fn serve(
    nested: Result<NestedPath, NestedPathRejection>,
) -> axum::response::Response {
    let prefix = nested.as_ref().map_or("", NestedPath::as_str);
    Json(openapi_document(prefix)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{STATUSES, error_codes, name_pattern, username_pattern};
    use drop_core::{MAX_HOLD, MAX_STOCK, MIN_HOLD};

    /// The document's numbers are drop-core's constants.
    #[test]
    fn limits_are_the_cores() {
        let doc = serde_json::to_value(openapi_document("")).unwrap();
        let body = &doc["components"]["schemas"]["CreateDropBody"]["properties"];
        assert_eq!(body["totalStock"]["minimum"], 1);
        assert_eq!(body["totalStock"]["maximum"], MAX_STOCK);
        assert_eq!(body["holdSeconds"]["minimum"], MIN_HOLD.as_secs_f64());
        assert_eq!(body["holdSeconds"]["maximum"], MAX_HOLD.as_secs());
        assert_eq!(body["name"]["pattern"], name_pattern());
        let reserve = &doc["components"]["schemas"]["ReserveBody"]["properties"];
        assert_eq!(reserve["username"]["pattern"], username_pattern());
        assert_eq!(reserve["dropId"]["format"], "uuid");
        let status = &doc["components"]["schemas"]["ReservationView"]["properties"]["status"];
        let statuses: Vec<_> = STATUSES.iter().map(|s| s.as_str()).collect();
        assert_eq!(status["enum"], serde_json::json!(statuses));
        let codes = &doc["components"]["schemas"]["ErrorBody"]["properties"]["error"]["enum"];
        assert_eq!(codes, &serde_json::json!(error_codes()));
    }
}
