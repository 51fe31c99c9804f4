//! The OpenAPI document, generated from the handlers and wire types, and
//! the route that serves it.

use axum::Json;
use axum::extract::rejection::NestedPathRejection;
use axum::extract::{NestedPath, State};
use axum::response::IntoResponse;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::server::Server;
use utoipa::openapi::{Ref, RefOr, Schema};
use utoipa::{Modify, OpenApi};

use crate::admin_routes::{
    CursorList, CursorView, EventPage, LogDropView, LogEntryView, LogVariantView,
};
use crate::error::ErrorBody;
use crate::identity::DEFAULT_SESSION_COOKIE;
use crate::wire::{
    BuyerView, CreateDropBody, DrawEntryDoc, DrawStockDoc, DrawView, DrawWinnersDoc, DropView,
    EnterDrawBody, EntryAnswer, EntryView, HealthView, JoinWaitlistBody, NewVariantBody,
    PatchDropBody, PublishedDrawDoc, PurchaseBody, PurchaseBuyerView, PurchasePage, PurchaseView,
    ReleaseBody, ReservationView, ReserveBody, SessionView, SignInBody, TopPurchaserView,
    UserHoldView, VariantPatchBody, VariantStockView, VariantView, WaitlistAnswer,
    WaitlistPlaceView, WsMessage,
};
use crate::{
    admin_routes, draw_routes, health, purchase_routes, routes, session_routes, waitlist_routes, ws,
};

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
        waitlist_routes::join,
        waitlist_routes::place,
        waitlist_routes::leave,
        draw_routes::enter,
        draw_routes::entry,
        draw_routes::withdraw,
        draw_routes::draw,
        routes::get_reservation,
        routes::release,
        routes::purchase,
        purchase_routes::get_purchase,
        purchase_routes::my_purchases,
        admin_routes::list_all_drops,
        admin_routes::update_drop,
        admin_routes::pause,
        admin_routes::resume,
        admin_routes::end,
        admin_routes::cancel_purchase,
        admin_routes::events,
        admin_routes::cursors,
        admin_routes::remove_cursor,
        session_routes::sign_in,
        session_routes::get_session,
        session_routes::sign_out,
        health::health,
        health::live,
        health::ready,
        ws::upgrade,
    ),
    components(schemas(
        DropView, TopPurchaserView, UserHoldView, ReservationView, PurchaseView,
        CreateDropBody, ReserveBody, PurchaseBody, ReleaseBody, HealthView, ErrorBody, WsMessage,
        SessionView, BuyerView, SignInBody, VariantView, VariantStockView, PurchaseBuyerView,
        PurchasePage, NewVariantBody, PatchDropBody, VariantPatchBody, EventPage, LogEntryView,
        LogDropView, LogVariantView, CursorList, CursorView, JoinWaitlistBody, WaitlistPlaceView,
        WaitlistAnswer, EnterDrawBody, EntryView, EntryAnswer, DrawView, PublishedDrawDoc,
        DrawEntryDoc, DrawStockDoc, DrawWinnersDoc
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
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some("The admin token"))
                        .build(),
                ),
            );
            components.add_security_scheme(
                "session",
                SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                    DEFAULT_SESSION_COOKIE,
                    "The session cookie `POST /api/session` sets",
                ))),
            );
            components.add_security_scheme(
                "sessionToken",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some("The `token` `POST /api/session` answers"))
                        .build(),
                ),
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
                // Joining a line and entering a draw take no key (each is
                // idempotent by itself).
                let doc = match op.operation_id.as_deref() {
                    Some("joinWaitlist") => crate::idempotency::IGNORED_KEY_DOC,
                    Some("enterDraw") => crate::idempotency::ENTRY_IGNORED_KEY_DOC,
                    _ => crate::idempotency::KEY_DOC,
                };
                for param in op.parameters.iter_mut().flatten() {
                    if param.name == "Idempotency-Key" {
                        param.description = Some(doc.to_owned());
                    }
                }
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
/// of it, then read, buy or release that hold; or wait in its line, then
/// read or leave the place. Releasing has no link to
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
                "joinWaitlist": {
                    "operationId": "joinWaitlist",
                    "parameters": {"path.id": "$response.body#/id"},
                    "description": "Wait in line for the new drop",
                },
                "enterDraw": {
                    "operationId": "enterDraw",
                    "parameters": {"path.id": "$response.body#/id"},
                    "description": "Enter the new drop's draw",
                },
                "getDraw": {
                    "operationId": "getDraw",
                    "parameters": {"path.id": "$response.body#/id"},
                    "description": "See the new drop's draw record",
                },
            }),
            ("/api/drops/{id}/entries", "200" | "201") => serde_json::json!({
                "getEntry": {
                    "operationId": "getEntry",
                    "parameters": {"path.id": "$response.body#/dropId"},
                    "description": "See the entry",
                },
                "withdrawEntry": {
                    "operationId": "withdrawEntry",
                    "parameters": {"path.id": "$response.body#/dropId"},
                    "description": "Withdraw the entry",
                },
            }),
            ("/api/drops/{id}/waitlist", "200" | "201") => serde_json::json!({
                "getWaitlistPlace": {
                    "operationId": "getWaitlistPlace",
                    "parameters": {"path.id": "$response.body#/dropId"},
                    "description": "See the place",
                },
                "leaveWaitlist": {
                    "operationId": "leaveWaitlist",
                    "parameters": {"path.id": "$response.body#/dropId"},
                    "description": "Leave the line",
                },
            }),
            ("/api/reservations", "200" | "201") => hold(),
            ("/api/purchases", "201") => serde_json::json!({
                "getReservation": {
                    "operationId": "getReservation",
                    "parameters": {"path.id": "$response.body#/reservationId"},
                    "description": "The hold, now `purchased`",
                },
                "getPurchase": {
                    "operationId": "getPurchase",
                    "parameters": {"path.id": "$response.body#/id"},
                    "description": "The purchase record",
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

/// What the document says depends on how buyers are identified.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DocShape {
    /// Signed sessions: `/api/session` exists and buyer routes take the
    /// session cookie or token.
    pub(crate) sessions: bool,
    /// Claimed identity: requests name their buyer (`username` in
    /// bodies, `?username=`), and nothing answers 401, 415 or `FORBIDDEN`.
    pub(crate) claimed: bool,
}

/// The buyer routes: (path, method).
const BUYER_OPS: &[(&str, &str)] = &[
    ("/api/reservations", "post"),
    ("/api/reservations/{id}", "get"),
    ("/api/reservations/{id}", "delete"),
    ("/api/purchases", "post"),
    ("/api/purchases/{id}", "get"),
    ("/api/me/purchases", "get"),
    ("/api/drops/{id}/waitlist", "post"),
    ("/api/drops/{id}/waitlist", "get"),
    ("/api/drops/{id}/waitlist", "delete"),
    ("/api/drops/{id}/entries", "post"),
    ("/api/drops/{id}/entries", "get"),
    ("/api/drops/{id}/entries", "delete"),
];

/// The buyer routes that, under claimed identity, need `?username=`.
const CLAIMED_READS: &[&str] = &[
    "/api/purchases/{id}",
    "/api/me/purchases",
    "/api/drops/{id}/waitlist",
    "/api/drops/{id}/entries",
];

/// The bodies that name their buyer under claimed identity.
const CLAIMED_BODIES: [&str; 4] = [
    "ReserveBody",
    "PurchaseBody",
    "JoinWaitlistBody",
    "EnterDrawBody",
];

/// The OpenAPI document of the API with its default identity (signed
/// sessions) mounted at `prefix` (e.g. `"/shop"` for
/// `Router::nest("/shop", api.router())`; `""` at the root). Paths are
/// relative to the prefix, which the document names as its one server.
/// [`DropApi::openapi_document`](crate::DropApi::openapi_document) gives
/// the document of an API as configured.
pub fn openapi_document(prefix: &str) -> utoipa::openapi::OpenApi {
    document(
        prefix,
        DocShape {
            sessions: true,
            claimed: false,
        },
    )
}

/// The document for `shape` at `prefix`.
pub(crate) fn document(prefix: &str, shape: DocShape) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    shape.apply(&mut doc);
    let prefix = prefix.trim_end_matches('/');
    if !prefix.is_empty() {
        doc.servers = Some(vec![Server::new(prefix)]);
    }
    doc
}

impl DocShape {
    /// Cuts the full document (every identity's parts) down to this shape.
    fn apply(self, doc: &mut utoipa::openapi::OpenApi) {
        if !self.sessions {
            doc.paths.paths.remove("/api/session");
            if let Some(c) = doc.components.as_mut() {
                for name in ["SessionView", "BuyerView", "SignInBody"] {
                    c.schemas.remove(name);
                }
                c.security_schemes.remove("session");
                c.security_schemes.remove("sessionToken");
            }
        }
        let schemas = doc.components.as_mut().map(|c| &mut c.schemas);
        if let Some(schemas) = schemas {
            if self.claimed {
                for body in CLAIMED_BODIES {
                    if let Some(RefOr::T(Schema::Object(o))) = schemas.get_mut(body) {
                        o.required.push("username".to_owned());
                    }
                }
            } else {
                for body in CLAIMED_BODIES {
                    if let Some(RefOr::T(Schema::Object(o))) = schemas.get_mut(body) {
                        o.properties.remove("username");
                    }
                }
                schemas.remove("ReleaseBody");
            }
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, op) in [
                ("get", item.get.as_mut()),
                ("post", item.post.as_mut()),
                ("delete", item.delete.as_mut()),
            ] {
                let Some(op) = op else { continue };
                let buyer_op = BUYER_OPS.contains(&(path.as_str(), method));
                if !self.claimed {
                    if let Some(params) = op.parameters.as_mut() {
                        params.retain(|p| p.name != "username");
                    }
                    if path == "/api/reservations/{id}" && method == "delete" {
                        op.request_body = None;
                        op.responses.responses.remove("422");
                    }
                    if let Some(links) = op
                        .responses
                        .responses
                        .values_mut()
                        .filter_map(|r| match r {
                            RefOr::T(r) => r.extensions.as_mut()?.get_mut("links"),
                            RefOr::Ref(_) => None,
                        })
                        .next()
                    {
                        strip_username_links(links);
                    }
                }
                if self.claimed && buyer_op {
                    for status in ["401", "415"] {
                        op.responses.responses.remove(status);
                    }
                    if CLAIMED_READS.contains(&path.as_str())
                        && let Some(params) = op.parameters.as_mut()
                    {
                        for p in params.iter_mut().filter(|p| p.name == "username") {
                            // Required, and never blank: it names the reader.
                            p.required = utoipa::openapi::Required::True;
                            p.schema = Some(RefOr::T(crate::schema::username()));
                        }
                    }
                }
                if self.sessions && (buyer_op || (path == "/api/drops" && method == "get")) {
                    let mut security = vec![
                        SecurityRequirement::new("session", Vec::<String>::new()),
                        SecurityRequirement::new("sessionToken", Vec::<String>::new()),
                    ];
                    if !buyer_op {
                        // Optional: the list is public, and names the
                        // caller's own hold when signed in.
                        security.insert(0, SecurityRequirement::default());
                    }
                    if path == "/api/purchases/{id}" {
                        // Admins read any purchase.
                        security.push(SecurityRequirement::new("bearer", Vec::<String>::new()));
                    }
                    op.security = Some(security);
                }
            }
        }
    }
}

/// Links pass `username` along only under claimed identity.
fn strip_username_links(links: &mut serde_json::Value) {
    fn strip(v: &mut serde_json::Value) {
        if let Some(map) = v.as_object_mut() {
            map.remove("username");
            map.remove("query.username");
            for child in map.values_mut() {
                strip(child);
            }
        }
    }
    strip(links);
}

/// `GET /api/openapi.json`: the document, with the prefix the router was
/// nested at (if any) as its server.
pub(crate) async fn serve(
    State(shape): State<DocShape>,
    nested: Result<NestedPath, NestedPathRejection>,
) -> axum::response::Response {
    let prefix = nested.as_ref().map_or("", NestedPath::as_str);
    Json(document(prefix, shape)).into_response()
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
        assert_eq!(reserve["dropId"]["format"], "uuid");
        let sign_in = &doc["components"]["schemas"]["SignInBody"]["properties"];
        assert_eq!(sign_in["username"]["pattern"], username_pattern());
        let status = &doc["components"]["schemas"]["ReservationView"]["properties"]["status"];
        let statuses: Vec<_> = STATUSES.iter().map(|s| s.as_str()).collect();
        assert_eq!(status["enum"], serde_json::json!(statuses));
        let codes = &doc["components"]["schemas"]["ErrorBody"]["properties"]["error"]["enum"];
        assert_eq!(codes, &serde_json::json!(error_codes()));
    }

    /// The document's `PublishedDraw` (and its parts) names exactly the
    /// fields drop-core serializes, `beacon` being optional: the draw is
    /// served as drop-core writes it, and only described here.
    #[test]
    fn the_published_draw_is_described_as_served() {
        use drop_core::{Beacon, DrawEntry, DrawStock, Receipt, Seed, VariantId};
        let variant = VariantId::new();
        let entries = vec![
            DrawEntry::new(Receipt::from_bytes([1; 16]), variant),
            DrawEntry::new(Receipt::from_bytes([2; 16]), variant),
        ];
        let stock = vec![DrawStock::new(variant, 1)];
        let beacon: Beacon = "abcd".parse().unwrap();
        let (_, published) =
            drop_core::draw_and_publish(Seed::from_bytes([7; 32]), Some(beacon), entries, stock)
                .unwrap();
        let served = serde_json::to_value(&published).unwrap();
        let doc = serde_json::to_value(openapi_document("")).unwrap();
        let schemas = &doc["components"]["schemas"];
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        let check = |name: &str, value: &serde_json::Value, optional: &[&str]| {
            let schema = &schemas[name];
            assert_eq!(keys(&schema["properties"]), keys(value), "{name}");
            let mut required: Vec<String> =
                serde_json::from_value(schema["required"].clone()).unwrap_or_default();
            required.sort();
            let want: Vec<String> = keys(value)
                .into_iter()
                .filter(|k| !optional.contains(&k.as_str()))
                .collect();
            assert_eq!(required, want, "{name}");
        };
        check("PublishedDraw", &served, &["beacon"]);
        check("DrawEntry", &served["entries"][0], &[]);
        check("DrawStock", &served["stock"][0], &[]);
        check("DrawWinners", &served["winners"][0], &[]);
        // The hex patterns accept what is served.
        for (field, schema) in [
            ("seed", "seed"),
            ("seedHash", "seedHash"),
            ("entryListHash", "entryListHash"),
            ("beacon", "beacon"),
        ] {
            let pattern = schemas["PublishedDraw"]["properties"][schema]["pattern"]
                .as_str()
                .unwrap();
            let value = served[field].as_str().unwrap();
            assert!(
                regex::Regex::new(pattern).unwrap().is_match(value),
                "{field}: {value} against {pattern}"
            );
        }
        let receipt = schemas["DrawEntry"]["properties"]["receipt"]["pattern"]
            .as_str()
            .unwrap();
        let served_receipt = served["entries"][0]["receipt"].as_str().unwrap();
        assert!(regex::Regex::new(receipt).unwrap().is_match(served_receipt));
    }

    /// The entry routes name their buyer as the waiting list's do.
    #[test]
    fn the_entry_routes_follow_the_identity() {
        let claimed = serde_json::to_value(document(
            "",
            DocShape {
                sessions: false,
                claimed: true,
            },
        ))
        .unwrap();
        let body = &claimed["components"]["schemas"]["EnterDrawBody"];
        assert!(
            body["required"]
                .as_array()
                .unwrap()
                .contains(&"username".into())
        );
        let sessions = serde_json::to_value(openapi_document("")).unwrap();
        let body = &sessions["components"]["schemas"]["EnterDrawBody"];
        assert!(body["properties"].get("username").is_none(), "{body}");
        let entries = &sessions["paths"]["/api/drops/{id}/entries"];
        for method in ["post", "get", "delete"] {
            assert!(
                entries[method]["responses"].get("401").is_some(),
                "{method}"
            );
            assert!(
                entries[method]["security"]
                    .as_array()
                    .is_some_and(|s| !s.is_empty()),
                "{method}"
            );
        }
        let draw = &sessions["paths"]["/api/drops/{id}/draw"]["get"];
        assert!(draw.get("security").is_none(), "the draw is public: {draw}");
        for code in ["DRAW_ONLY", "ENTRIES_CLOSED", "NOT_A_DRAW"] {
            assert!(
                sessions["components"]["schemas"]["ErrorBody"]["properties"]["error"]["enum"]
                    .as_array()
                    .unwrap()
                    .contains(&code.into()),
                "{code}"
            );
        }
    }

    /// The waiting list's routes name their buyer as the identity does:
    /// under claimed identity in the join's body and the other two's
    /// query (required), under sessions nowhere; the join's key is
    /// documented as ignored.
    #[test]
    fn the_waitlist_routes_follow_the_identity() {
        let doc = |claimed: bool| {
            serde_json::to_value(document(
                "",
                DocShape {
                    sessions: !claimed,
                    claimed,
                },
            ))
            .unwrap()
        };
        let line = |doc: &serde_json::Value, method: &str| {
            doc["paths"]["/api/drops/{id}/waitlist"][method].clone()
        };
        let username = |op: &serde_json::Value| {
            op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "username")
                .cloned()
        };

        let claimed = doc(true);
        let body = &claimed["components"]["schemas"]["JoinWaitlistBody"];
        assert!(
            body["required"]
                .as_array()
                .unwrap()
                .contains(&"username".into())
        );
        for method in ["get", "delete"] {
            let param = username(&line(&claimed, method)).expect("?username=");
            assert_eq!(param["required"], true, "{method}");
            assert_eq!(param["schema"]["pattern"], username_pattern(), "{method}");
            assert!(line(&claimed, method)["responses"].get("401").is_none());
        }

        let sessions = doc(false);
        let body = &sessions["components"]["schemas"]["JoinWaitlistBody"];
        assert!(body["properties"].get("username").is_none(), "{body}");
        for method in ["post", "get", "delete"] {
            let op = line(&sessions, method);
            assert!(username(&op).is_none(), "{method}");
            assert!(op["responses"].get("401").is_some(), "{method}");
            assert!(op["security"].as_array().is_some_and(|s| !s.is_empty()));
        }
        let key = line(&sessions, "post")["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .cloned()
            .expect("the key is listed");
        assert!(
            key["description"].as_str().unwrap().contains("ignored"),
            "{key}"
        );
        let reserve_key = &sessions["paths"]["/api/reservations"]["post"]["parameters"][0];
        assert_eq!(reserve_key["description"], crate::idempotency::KEY_DOC);
    }
}
