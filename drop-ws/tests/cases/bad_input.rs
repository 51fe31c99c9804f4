//! The bad-request tables: every malformed request, who sends it, the
//! status, the stable error code and the field it must answer with.
//! Shared by the router tests (`drop-ws/tests/bad_input.rs`, in-process
//! on the memory store) and the end-to-end tests
//! (`tests/web/bad_input.rs`, a real server on PostgreSQL).
//!
//! `{drop}` is an existing drop, `{res}` alice's hold on it, `{unknown}` an
//! id nothing has. [`table`] runs under signed guest sessions (the
//! default), [`claimed_table`] under claimed identity (the original wire,
//! where the username travels in the request).

/// Who sends a case, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Who {
    /// No credentials.
    Nobody,
    /// Alice, the owner of `{res}`, with her session as a bearer token.
    Owner,
    /// Alice's session as the cookie a browser sends by itself.
    OwnerCookie,
    /// Bob, another signed-in buyer, with his bearer token.
    Other,
    /// A bearer token no server signed.
    Forged,
    /// The admin token.
    Admin,
}

pub(crate) struct Case {
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    pub(crate) body: Option<&'static str>,
    pub(crate) who: Who,
    /// The body's `Content-Type` (when there is a body).
    pub(crate) content_type: &'static str,
    /// An `Origin` header, as a browser page elsewhere would send.
    pub(crate) origin: Option<&'static str>,
    pub(crate) status: u16,
    pub(crate) code: &'static str,
    pub(crate) field: Option<&'static str>,
    /// An `Idempotency-Key` header, sent as given.
    pub(crate) key: Option<&'static str>,
}

const JSON: &str = "application/json";

/// The bearer token [`Who::Forged`] sends.
pub(crate) const FORGED: &str = "v1.not-a-session.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// The page [`Case::origin`] names: never the server's own.
pub(crate) const FOREIGN_ORIGIN: &str = "https://evil.example";

const fn case(
    who: Who,
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
) -> Case {
    Case {
        method,
        path,
        body,
        who,
        content_type: JSON,
        origin: None,
        status,
        code,
        field,
        key: None,
    }
}

const fn admin(
    body: &'static str,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
) -> Case {
    case(
        Who::Admin,
        "POST",
        "/api/drops",
        Some(body),
        status,
        code,
        field,
    )
}

/// A sign-in with `body`.
const fn sign_in(
    body: &'static str,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
) -> Case {
    case(
        Who::Nobody,
        "POST",
        "/api/session",
        Some(body),
        status,
        code,
        field,
    )
}

impl Case {
    const fn content_type(mut self, content_type: &'static str) -> Self {
        self.content_type = content_type;
        self
    }

    const fn sent_from_elsewhere(mut self) -> Self {
        self.origin = Some(FOREIGN_ORIGIN);
        self
    }

    const fn keyed(mut self, key: &'static str) -> Self {
        self.key = Some(key);
        self
    }
}

pub(crate) const UNKNOWN: &str = "6f1c1d2e-8a7b-4c3d-9e0f-112233445566";

const R: &str = "/api/reservations";
const P: &str = "/api/purchases";
const BAD: &str = "INVALID_INPUT";
const LONG_NAME: &str = r#"{"username":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#;

/// The table under signed guest sessions.
pub(crate) fn table() -> Vec<Case> {
    use Who::{Forged, Nobody, Other, Owner, OwnerCookie};
    let mut cases = vec![
        // Signing in: the name is 3–50 of `A–Z a–z 0–9 _`, in a JSON object.
        sign_in(r#"{"username":"al"}"#, 400, BAD, Some("username")),
        sign_in(r#"{"username":"has space"}"#, 400, BAD, Some("username")),
        sign_in(r#"{"username":"émile"}"#, 400, BAD, Some("username")),
        sign_in(LONG_NAME, 400, BAD, Some("username")),
        sign_in(r#"{"username":null}"#, 400, BAD, Some("username")),
        sign_in(r#"{"username":["alice"]}"#, 400, BAD, Some("username")),
        sign_in(r#"{"username":42}"#, 400, BAD, Some("username")),
        sign_in("{}", 400, BAD, Some("username")),
        sign_in("[]", 400, BAD, Some("body")),
        sign_in("{", 400, "INVALID_JSON", None),
        sign_in(r#"{"username":"alice"} x"#, 400, "INVALID_JSON", None),
        // A cross-site form can send `text/plain` without asking first.
        sign_in(
            r#"{"username":"alice"}"#,
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            None,
        )
        .content_type("text/plain"),
        sign_in(r#"{"username":"alice"}"#, 403, "FORBIDDEN", None).sent_from_elsewhere(),
        // Who is signed in.
        case(
            Nobody,
            "GET",
            "/api/session",
            None,
            401,
            "UNAUTHENTICATED",
            None,
        ),
        case(
            Forged,
            "GET",
            "/api/session",
            None,
            401,
            "UNAUTHENTICATED",
            None,
        ),
        // Buyer routes without credentials: 401 before the body is read,
        // so a stranger learns nothing of its rules.
        case(
            Nobody,
            "POST",
            R,
            Some(r#"{"dropId":"{drop}"}"#),
            401,
            "UNAUTHENTICATED",
            None,
        ),
        case(Nobody, "POST", R, Some("{"), 401, "UNAUTHENTICATED", None),
        case(
            Nobody,
            "POST",
            P,
            Some(r#"{"reservationId":"{res}"}"#),
            401,
            "UNAUTHENTICATED",
            None,
        ),
        case(
            Nobody,
            "GET",
            "/api/reservations/{res}",
            None,
            401,
            "UNAUTHENTICATED",
            None,
        ),
        case(
            Nobody,
            "DELETE",
            "/api/reservations/{res}",
            None,
            401,
            "UNAUTHENTICATED",
            None,
        ),
        // A body naming the owner is no credential.
        case(
            Nobody,
            "POST",
            P,
            Some(r#"{"reservationId":"{res}","username":"alice"}"#),
            401,
            "UNAUTHENTICATED",
            None,
        ),
        // A token no server signed, or the admin's, is no session.
        case(
            Forged,
            "POST",
            R,
            Some(r#"{"dropId":"{drop}"}"#),
            401,
            "UNAUTHENTICATED",
            None,
        ),
        case(
            Forged,
            "DELETE",
            "/api/reservations/{res}",
            None,
            401,
            "UNAUTHENTICATED",
            None,
        ),
        case(
            Who::Admin,
            "GET",
            "/api/reservations/{res}",
            None,
            401,
            "UNAUTHENTICATED",
            None,
        ),
        // Another buyer's hold is simply not there.
        case(
            Other,
            "GET",
            "/api/reservations/{res}",
            None,
            404,
            "RESERVATION_NOT_FOUND",
            None,
        ),
        case(
            Other,
            "DELETE",
            "/api/reservations/{res}",
            None,
            404,
            "RESERVATION_NOT_FOUND",
            None,
        ),
        case(
            Other,
            "POST",
            P,
            Some(r#"{"reservationId":"{res}"}"#),
            404,
            "RESERVATION_NOT_FOUND",
            None,
        ),
        // ...whatever name the body gives.
        case(
            Other,
            "POST",
            P,
            Some(r#"{"reservationId":"{res}","username":"alice"}"#),
            404,
            "RESERVATION_NOT_FOUND",
            None,
        ),
        // The cookie a browser adds by itself needs a JSON body and an
        // allowed page; checked before the body, so nothing is bought.
        case(
            OwnerCookie,
            "POST",
            P,
            Some(r#"{"reservationId":"{res}"}"#),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            None,
        )
        .content_type("text/plain"),
        case(
            OwnerCookie,
            "POST",
            P,
            Some(r#"{"reservationId":"{res}"}"#),
            403,
            "FORBIDDEN",
            None,
        )
        .sent_from_elsewhere(),
        case(
            OwnerCookie,
            "DELETE",
            "/api/reservations/{res}",
            None,
            403,
            "FORBIDDEN",
            None,
        )
        .sent_from_elsewhere(),
        // Reserve: malformed JSON, wrong shapes, missing fields, bad values.
        case(Owner, "POST", R, Some("{"), 400, "INVALID_JSON", None),
        case(Owner, "POST", R, Some(""), 400, "INVALID_JSON", None),
        case(
            Owner,
            "POST",
            R,
            Some(r#"{"dropId":"{drop}"} x"#),
            400,
            "INVALID_JSON",
            None,
        ),
        case(Owner, "POST", R, Some("[]"), 400, BAD, Some("body")),
        case(Owner, "POST", R, Some("42"), 400, BAD, Some("body")),
        // Bodies are JSON objects; serde alone would read an array as the
        // struct's fields in order.
        case(
            Owner,
            "POST",
            R,
            Some(r#"["{drop}"]"#),
            400,
            BAD,
            Some("body"),
        ),
        case(Owner, "POST", R, Some("{}"), 400, BAD, Some("dropId")),
        case(
            Owner,
            "POST",
            R,
            Some(r#"{"username":"alice"}"#),
            400,
            BAD,
            Some("dropId"),
        ),
        case(
            Owner,
            "POST",
            R,
            Some(r#"{"dropId":42}"#),
            400,
            BAD,
            Some("dropId"),
        ),
        case(
            Owner,
            "POST",
            R,
            Some(r#"{"dropId":"not-a-uuid"}"#),
            400,
            BAD,
            Some("dropId"),
        ),
        case(
            Owner,
            "POST",
            R,
            Some(r#"{"dropId":"{unknown}"}"#),
            404,
            "DROP_NOT_FOUND",
            None,
        ),
        // Purchase.
        case(
            Owner,
            "POST",
            P,
            Some("{}"),
            400,
            BAD,
            Some("reservationId"),
        ),
        case(
            Owner,
            "POST",
            P,
            Some(r#"{"reservationId":"x"}"#),
            400,
            BAD,
            Some("reservationId"),
        ),
        case(
            Owner,
            "POST",
            P,
            Some(r#"{"reservationId":true}"#),
            400,
            BAD,
            Some("reservationId"),
        ),
        case(
            Owner,
            "POST",
            P,
            Some(r#"{"reservationId":"{unknown}"}"#),
            404,
            "RESERVATION_NOT_FOUND",
            None,
        ),
        // Holds by id.
        case(
            Owner,
            "GET",
            "/api/reservations/42",
            None,
            400,
            BAD,
            Some("id"),
        ),
        case(
            Owner,
            "DELETE",
            "/api/reservations/42",
            None,
            400,
            BAD,
            Some("id"),
        ),
        case(
            Owner,
            "GET",
            "/api/reservations/{unknown}",
            None,
            404,
            "RESERVATION_NOT_FOUND",
            None,
        ),
        case(
            Owner,
            "DELETE",
            "/api/reservations/{unknown}",
            None,
            404,
            "RESERVATION_NOT_FOUND",
            None,
        ),
        case(
            Owner,
            "DELETE",
            "/api/reservations/{res}",
            Some("[]"),
            400,
            BAD,
            Some("body"),
        ),
        case(
            Owner,
            "DELETE",
            "/api/reservations/{res}",
            Some("{nope"),
            400,
            "INVALID_JSON",
            None,
        ),
        // A buyer's session is not the admin token.
        case(
            Owner,
            "POST",
            "/api/drops",
            Some(r#"{"name":"A","price":1,"totalStock":5}"#),
            403,
            "FORBIDDEN",
            None,
        ),
    ];
    cases.extend(sale());
    cases.extend(common());
    cases.extend(waitlist());
    cases.extend(entries());
    cases
}

const E: &str = "/api/drops/{drop}/entries";

/// Entering, reading and withdrawing a draw entry, and the draw's record:
/// what the web layer refuses before the store is asked, and the store's
/// refusals on `{drop}`, a first-come drop.
fn entries() -> Vec<Case> {
    use Who::{Forged, Nobody, Other, OwnerCookie};
    let enter = |body, status, code, field| case(Other, "POST", E, Some(body), status, code, field);
    vec![
        case(Nobody, "POST", E, Some("{}"), 401, "UNAUTHENTICATED", None),
        case(Nobody, "POST", E, Some("{"), 401, "UNAUTHENTICATED", None),
        case(Forged, "POST", E, Some("{}"), 401, "UNAUTHENTICATED", None),
        case(Nobody, "GET", E, None, 401, "UNAUTHENTICATED", None),
        case(Nobody, "DELETE", E, None, 401, "UNAUTHENTICATED", None),
        enter(r#"{"variantId":"size-9"}"#, 400, BAD, Some("variantId")),
        enter(r#"{"variantId":7}"#, 400, BAD, Some("variantId")),
        enter("[]", 400, BAD, Some("body")),
        enter("{", 400, "INVALID_JSON", None),
        enter(
            r#"{"variantId":"{unknown}"}"#,
            404,
            "VARIANT_NOT_FOUND",
            None,
        ),
        enter("{}", 409, "NOT_A_DRAW", None),
        case(Other, "DELETE", E, None, 409, "NOT_A_DRAW", None),
        case(
            Other,
            "POST",
            "/api/drops/{unknown}/entries",
            Some("{}"),
            404,
            "DROP_NOT_FOUND",
            None,
        ),
        case(
            Other,
            "GET",
            "/api/drops/{unknown}/entries",
            None,
            404,
            "DROP_NOT_FOUND",
            None,
        ),
        case(
            Other,
            "POST",
            "/api/drops/not-a-uuid/entries",
            Some("{}"),
            400,
            BAD,
            Some("id"),
        ),
        case(
            Other,
            "GET",
            "/api/drops/not-a-uuid/entries",
            None,
            400,
            BAD,
            Some("id"),
        ),
        case(
            Other,
            "DELETE",
            "/api/drops/not-a-uuid/entries",
            None,
            400,
            BAD,
            Some("id"),
        ),
        case(
            OwnerCookie,
            "POST",
            E,
            Some("{}"),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            None,
        )
        .content_type("text/plain"),
        case(OwnerCookie, "POST", E, Some("{}"), 403, "FORBIDDEN", None).sent_from_elsewhere(),
        case(OwnerCookie, "DELETE", E, None, 403, "FORBIDDEN", None).sent_from_elsewhere(),
        // The draw's record is public: no credentials needed to be refused.
        case(
            Nobody,
            "GET",
            "/api/drops/{drop}/draw",
            None,
            409,
            "NOT_A_DRAW",
            None,
        ),
        case(
            Nobody,
            "GET",
            "/api/drops/{unknown}/draw",
            None,
            404,
            "DROP_NOT_FOUND",
            None,
        ),
        case(
            Nobody,
            "GET",
            "/api/drops/not-a-uuid/draw",
            None,
            400,
            BAD,
            Some("id"),
        ),
        // Creating a draw drop: the shape is the schema's (400), the rules
        // between fields and against the clock are not (422).
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"mode":"lottery"}"#,
            400,
            BAD,
            Some("mode"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"mode":null}"#,
            400,
            BAD,
            Some("mode"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"mode":7}"#,
            400,
            BAD,
            Some("mode"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"drawAt":"soon"}"#,
            400,
            BAD,
            Some("drawAt"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"drawAt":"2999-01-01T00:00:00Z","beaconName":" "}"#,
            400,
            BAD,
            Some("beaconName"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"mode":"draw"}"#,
            422,
            BAD,
            Some("drawAt"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"mode":"draw","drawAt":"2001-01-01T00:00:00Z"}"#,
            422,
            BAD,
            Some("drawAt"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"startsAt":"2999-01-01T00:00:00Z","drawAt":"2998-01-01T00:00:00Z"}"#,
            422,
            BAD,
            Some("drawAt"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"beaconName":"drand"}"#,
            422,
            BAD,
            Some("beaconName"),
        ),
    ]
}

const W: &str = "/api/drops/{drop}/waitlist";

/// Joining, reading and leaving a line: what the web layer refuses before
/// the store is asked.
fn waitlist() -> Vec<Case> {
    use Who::{Forged, Nobody, OwnerCookie};
    let join =
        |body, status, code, field| case(Who::Other, "POST", W, Some(body), status, code, field);
    vec![
        case(Nobody, "POST", W, Some("{}"), 401, "UNAUTHENTICATED", None),
        case(Nobody, "POST", W, Some("{"), 401, "UNAUTHENTICATED", None),
        case(Forged, "POST", W, Some("{}"), 401, "UNAUTHENTICATED", None),
        case(Nobody, "GET", W, None, 401, "UNAUTHENTICATED", None),
        case(Nobody, "DELETE", W, None, 401, "UNAUTHENTICATED", None),
        join(r#"{"quantity":0}"#, 400, BAD, Some("quantity")),
        join(r#"{"quantity":1.5}"#, 400, BAD, Some("quantity")),
        join(r#"{"quantity":"2"}"#, 400, BAD, Some("quantity")),
        join(r#"{"variantId":"size-9"}"#, 400, BAD, Some("variantId")),
        join(r#"{"variantId":7}"#, 400, BAD, Some("variantId")),
        join("[]", 400, BAD, Some("body")),
        join("{", 400, "INVALID_JSON", None),
        case(
            Who::Other,
            "POST",
            "/api/drops/not-a-uuid/waitlist",
            Some("{}"),
            400,
            BAD,
            Some("id"),
        ),
        case(
            Who::Other,
            "GET",
            "/api/drops/not-a-uuid/waitlist",
            None,
            400,
            BAD,
            Some("id"),
        ),
        case(
            Who::Other,
            "DELETE",
            "/api/drops/not-a-uuid/waitlist",
            None,
            400,
            BAD,
            Some("id"),
        ),
        case(
            OwnerCookie,
            "POST",
            W,
            Some("{}"),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            None,
        )
        .content_type("text/plain"),
        case(OwnerCookie, "POST", W, Some("{}"), 403, "FORBIDDEN", None).sent_from_elsewhere(),
        case(OwnerCookie, "DELETE", W, None, 403, "FORBIDDEN", None).sent_from_elsewhere(),
    ]
}

/// A key of 256 characters, one over the limit.
const LONG_KEY: &str = "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\
kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\
kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk";

/// Variants, quantities, idempotency keys, purchase records and the
/// admin operations, under signed guest sessions. None of them changes
/// anything: alice keeps her one-unit hold on `{drop}` (a drop of one
/// variant, `maxPerBuyer` 1).
fn sale() -> Vec<Case> {
    use Who::{Admin, Forged, Nobody, Other, Owner};
    let reserve =
        |body, status, code, field| case(Owner, "POST", R, Some(body), status, code, field);
    let patch = |body, status, code, field| {
        case(
            Admin,
            "PATCH",
            "/api/admin/drops/{drop}",
            Some(body),
            status,
            code,
            field,
        )
    };
    let key = Some("Idempotency-Key");
    vec![
        // Reserve: the variant and the quantity.
        reserve(
            r#"{"dropId":"{drop}","variantId":"x"}"#,
            400,
            BAD,
            Some("variantId"),
        ),
        reserve(
            r#"{"dropId":"{drop}","variantId":42}"#,
            400,
            BAD,
            Some("variantId"),
        ),
        reserve(
            r#"{"dropId":"{drop}","variantId":"{unknown}"}"#,
            404,
            "VARIANT_NOT_FOUND",
            None,
        ),
        reserve(
            r#"{"dropId":"{drop}","quantity":0}"#,
            400,
            BAD,
            Some("quantity"),
        ),
        reserve(
            r#"{"dropId":"{drop}","quantity":101}"#,
            400,
            BAD,
            Some("quantity"),
        ),
        // Above the drop's `maxPerBuyer` (1), within the schema's 1–100.
        reserve(
            r#"{"dropId":"{drop}","quantity":2}"#,
            400,
            BAD,
            Some("quantity"),
        ),
        reserve(
            r#"{"dropId":"{drop}","quantity":"2"}"#,
            400,
            BAD,
            Some("quantity"),
        ),
        reserve(
            r#"{"dropId":"{drop}","quantity":-1}"#,
            400,
            BAD,
            Some("quantity"),
        ),
        reserve(
            r#"{"dropId":"{drop}","quantity":1.5}"#,
            400,
            BAD,
            Some("quantity"),
        ),
        reserve(
            r#"{"dropId":"{drop}","quantity":null}"#,
            400,
            BAD,
            Some("quantity"),
        ),
        // Idempotency keys: 1–255 visible ASCII characters.
        reserve(r#"{"dropId":"{drop}"}"#, 400, BAD, key).keyed(""),
        reserve(r#"{"dropId":"{drop}"}"#, 400, BAD, key).keyed("a b"),
        reserve(r#"{"dropId":"{drop}"}"#, 400, BAD, key).keyed(LONG_KEY),
        case(
            Owner,
            "POST",
            P,
            Some(r#"{"reservationId":"{res}"}"#),
            400,
            BAD,
            key,
        )
        .keyed("tab\there"),
        case(Admin, "POST", "/api/drops", Some("{}"), 400, BAD, key).keyed(" "),
        case(
            Admin,
            "POST",
            "/api/admin/drops/{drop}/pause",
            None,
            400,
            BAD,
            key,
        )
        .keyed(""),
        // Without credentials the key is not looked at.
        case(
            Nobody,
            "POST",
            R,
            Some(r#"{"dropId":"{drop}"}"#),
            401,
            "UNAUTHENTICATED",
            None,
        )
        .keyed(""),
        // Purchase records.
        case(
            Nobody,
            "GET",
            "/api/purchases/{unknown}",
            None,
            401,
            "UNAUTHENTICATED",
            None,
        ),
        case(Owner, "GET", "/api/purchases/x", None, 400, BAD, Some("id")),
        case(
            Owner,
            "GET",
            "/api/purchases/{unknown}",
            None,
            404,
            "PURCHASE_NOT_FOUND",
            None,
        ),
        case(
            Admin,
            "GET",
            "/api/purchases/{unknown}",
            None,
            404,
            "PURCHASE_NOT_FOUND",
            None,
        ),
        case(
            Nobody,
            "GET",
            "/api/me/purchases",
            None,
            401,
            "UNAUTHENTICATED",
            None,
        ),
        case(
            Owner,
            "GET",
            "/api/me/purchases?limit=0",
            None,
            400,
            BAD,
            Some("limit"),
        ),
        case(
            Owner,
            "GET",
            "/api/me/purchases?limit=101",
            None,
            400,
            BAD,
            Some("limit"),
        ),
        case(
            Owner,
            "GET",
            "/api/me/purchases?limit=x",
            None,
            400,
            BAD,
            Some("limit"),
        ),
        case(
            Owner,
            "GET",
            "/api/me/purchases?limit=-1",
            None,
            400,
            BAD,
            Some("limit"),
        ),
        case(
            Owner,
            "GET",
            "/api/me/purchases?before=x",
            None,
            400,
            BAD,
            Some("before"),
        ),
        case(
            Other,
            "GET",
            "/api/me/purchases?before={unknown}",
            None,
            404,
            "PURCHASE_NOT_FOUND",
            None,
        ),
        // Admin routes: the token first, then the path, then the body.
        case(
            Nobody,
            "GET",
            "/api/admin/drops",
            None,
            401,
            "UNAUTHORIZED",
            None,
        ),
        case(
            Owner,
            "GET",
            "/api/admin/drops",
            None,
            403,
            "FORBIDDEN",
            None,
        ),
        case(
            Nobody,
            "PATCH",
            "/api/admin/drops/{drop}",
            Some("{"),
            401,
            "UNAUTHORIZED",
            None,
        ),
        case(
            Owner,
            "PATCH",
            "/api/admin/drops/{drop}",
            Some(r#"{"name":"B"}"#),
            403,
            "FORBIDDEN",
            None,
        ),
        case(
            Owner,
            "POST",
            "/api/admin/drops/{drop}/pause",
            None,
            403,
            "FORBIDDEN",
            None,
        ),
        case(
            Nobody,
            "POST",
            "/api/admin/drops/{drop}/end",
            None,
            401,
            "UNAUTHORIZED",
            None,
        ),
        case(
            Owner,
            "POST",
            "/api/admin/purchases/{unknown}/cancel",
            None,
            403,
            "FORBIDDEN",
            None,
        ),
        case(
            Admin,
            "PATCH",
            "/api/admin/drops/x",
            Some(r#"{"name":"B"}"#),
            400,
            BAD,
            Some("id"),
        ),
        case(
            Admin,
            "PATCH",
            "/api/admin/drops/{unknown}",
            Some(r#"{"name":"B"}"#),
            404,
            "DROP_NOT_FOUND",
            None,
        ),
        case(
            Admin,
            "POST",
            "/api/admin/drops/x/pause",
            None,
            400,
            BAD,
            Some("id"),
        ),
        case(
            Admin,
            "POST",
            "/api/admin/drops/{unknown}/pause",
            None,
            404,
            "DROP_NOT_FOUND",
            None,
        ),
        case(
            Admin,
            "POST",
            "/api/admin/drops/{unknown}/resume",
            None,
            404,
            "DROP_NOT_FOUND",
            None,
        ),
        case(
            Admin,
            "POST",
            "/api/admin/drops/{unknown}/end",
            None,
            404,
            "DROP_NOT_FOUND",
            None,
        ),
        // The event log: the token first, then each parameter.
        case(
            Nobody,
            "GET",
            "/api/admin/events",
            None,
            401,
            "UNAUTHORIZED",
            None,
        ),
        case(
            Owner,
            "GET",
            "/api/admin/events?dropId={drop}",
            None,
            403,
            "FORBIDDEN",
            None,
        ),
        case(
            Forged,
            "GET",
            "/api/admin/events",
            None,
            403,
            "FORBIDDEN",
            None,
        ),
        case(
            Admin,
            "GET",
            "/api/admin/events?after=-1",
            None,
            400,
            BAD,
            Some("after"),
        ),
        case(
            Admin,
            "GET",
            "/api/admin/events?after=abc",
            None,
            400,
            BAD,
            Some("after"),
        ),
        case(
            Admin,
            "GET",
            "/api/admin/events?after=1.5",
            None,
            400,
            BAD,
            Some("after"),
        ),
        case(
            Admin,
            "GET",
            "/api/admin/events?after=18446744073709551616",
            None,
            400,
            BAD,
            Some("after"),
        ),
        case(
            Admin,
            "GET",
            "/api/admin/events?after=",
            None,
            400,
            BAD,
            Some("after"),
        ),
        case(
            Admin,
            "GET",
            "/api/admin/events?limit=0",
            None,
            400,
            BAD,
            Some("limit"),
        ),
        case(
            Admin,
            "GET",
            "/api/admin/events?limit=1001",
            None,
            400,
            BAD,
            Some("limit"),
        ),
        case(
            Admin,
            "GET",
            "/api/admin/events?limit=ten",
            None,
            400,
            BAD,
            Some("limit"),
        ),
        case(
            Admin,
            "GET",
            "/api/admin/events?limit=-5",
            None,
            400,
            BAD,
            Some("limit"),
        ),
        case(
            Admin,
            "GET",
            "/api/admin/events?dropId=x",
            None,
            400,
            BAD,
            Some("dropId"),
        ),
        case(
            Admin,
            "GET",
            "/api/admin/events?dropId={drop}x",
            None,
            400,
            BAD,
            Some("dropId"),
        ),
        case(
            Admin,
            "GET",
            "/api/admin/events?after=0&limit=0",
            None,
            400,
            BAD,
            Some("limit"),
        ),
        case(
            Admin,
            "GET",
            "/api/admin/events?dropId={unknown}",
            None,
            404,
            "DROP_NOT_FOUND",
            None,
        ),
        case(
            Admin,
            "POST",
            "/api/admin/purchases/x/cancel",
            None,
            400,
            BAD,
            Some("id"),
        ),
        case(
            Admin,
            "POST",
            "/api/admin/purchases/{unknown}/cancel",
            None,
            404,
            "PURCHASE_NOT_FOUND",
            None,
        ),
        case(
            Admin,
            "GET",
            "/api/admin/drops/{drop}/pause",
            None,
            405,
            "METHOD_NOT_ALLOWED",
            None,
        ),
        // Edits: unknown fields, wrong types, out of range, against the drop.
        patch("{", 400, "INVALID_JSON", None),
        patch("[]", 400, BAD, Some("body")),
        patch(r#"{"bogus":1}"#, 400, BAD, Some("bogus")),
        patch(r#"{"name":null}"#, 400, BAD, Some("name")),
        patch(r#"{"name":""}"#, 400, BAD, Some("name")),
        patch(r#"{"name":5}"#, 400, BAD, Some("name")),
        patch(r#"{"price":"abc"}"#, 400, BAD, Some("price")),
        patch(r#"{"maxPerBuyer":"2"}"#, 400, BAD, Some("maxPerBuyer")),
        patch(r#"{"maxPerBuyer":0}"#, 400, BAD, Some("maxPerBuyer")),
        patch(r#"{"maxPerBuyer":101}"#, 400, BAD, Some("maxPerBuyer")),
        patch(r#"{"holdSeconds":"x"}"#, 400, BAD, Some("holdSeconds")),
        patch(r#"{"holdSeconds":0}"#, 400, BAD, Some("holdSeconds")),
        patch(r#"{"startsAt":"yesterday"}"#, 400, BAD, Some("startsAt")),
        patch(
            r#"{"endsAt":"2000-01-01T00:00:00Z"}"#,
            422,
            BAD,
            Some("endsAt"),
        ),
        patch(r#"{"totalStock":-1}"#, 400, BAD, Some("totalStock")),
        patch(r#"{"totalStock":1000001}"#, 400, BAD, Some("totalStock")),
        patch(r#"{"variants":{}}"#, 400, BAD, Some("variants")),
        patch(r#"{"variants":null}"#, 400, BAD, Some("variants")),
        patch(
            r#"{"variants":[{"id":"x","totalStock":1}]}"#,
            400,
            BAD,
            Some("variants[0].id"),
        ),
        patch(
            r#"{"variants":[{"id":"{unknown}","totalStock":1,"extra":true}]}"#,
            400,
            BAD,
            Some("variants[0].extra"),
        ),
        patch(
            r#"{"variants":[{"id":"{unknown}","totalStock":1}]}"#,
            404,
            "VARIANT_NOT_FOUND",
            None,
        ),
        // Alice holds the one unit: below that is below what is committed.
        patch(r#"{"totalStock":0}"#, 409, "STOCK_BELOW_COMMITTED", None),
        // The drop has been on sale since it was made.
        patch(r#"{"price":"1.00"}"#, 409, "PRICE_LOCKED", None),
        // Creating with variants.
        admin(
            r#"{"name":"A","price":1,"variants":[]}"#,
            400,
            BAD,
            Some("variants"),
        ),
        admin(
            r#"{"name":"A","price":1,"variants":null}"#,
            400,
            BAD,
            Some("variants"),
        ),
        admin(
            r#"{"name":"A","price":1,"variants":[{"name":"","totalStock":1}]}"#,
            400,
            BAD,
            Some("variants[0].name"),
        ),
        admin(
            r#"{"name":"A","price":1,"variants":[{"name":"M","totalStock":-1}]}"#,
            400,
            BAD,
            Some("variants[0].totalStock"),
        ),
        admin(
            r#"{"name":"A","price":1,"variants":[{"name":"M","totalStock":1},{"name":" M","totalStock":1}]}"#,
            422,
            BAD,
            Some("variants[1].name"),
        ),
        admin(
            r#"{"name":"A","price":1,"variants":[{"name":"M","totalStock":0}]}"#,
            422,
            BAD,
            Some("variants"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":3,"variants":[{"name":"M","totalStock":1}]}"#,
            422,
            BAD,
            Some("totalStock"),
        ),
        admin(r#"{"name":"A","price":1}"#, 422, BAD, Some("totalStock")),
        admin(
            r#"{"name":"A","price":1,"totalStock":1,"maxPerBuyer":0}"#,
            400,
            BAD,
            Some("maxPerBuyer"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":1,"maxPerBuyer":101}"#,
            400,
            BAD,
            Some("maxPerBuyer"),
        ),
    ]
}

/// The username cases under claimed identity: the original wire keeps
/// its errors.
pub(crate) fn claimed_table() -> Vec<Case> {
    use Who::Nobody;
    let reserve =
        |body, status, code, field| case(Nobody, "POST", R, Some(body), status, code, field);
    vec![
        reserve(r#"{"dropId":"{drop}"}"#, 400, BAD, Some("username")),
        reserve(
            r#"{"dropId":"{drop}","username":"al"}"#,
            400,
            BAD,
            Some("username"),
        ),
        reserve(
            r#"{"dropId":"{drop}","username":"has space"}"#,
            400,
            BAD,
            Some("username"),
        ),
        reserve(
            r#"{"dropId":"{drop}","username":"émile"}"#,
            400,
            BAD,
            Some("username"),
        ),
        reserve(
            r#"{"dropId":"{drop}","username":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#,
            400,
            BAD,
            Some("username"),
        ),
        reserve(
            r#"{"dropId":"{drop}","username":null}"#,
            400,
            BAD,
            Some("username"),
        ),
        reserve(
            r#"{"dropId":"{drop}","username":["alice"]}"#,
            400,
            BAD,
            Some("username"),
        ),
        reserve(r#"{"username":"alice"}"#, 400, BAD, Some("dropId")),
        reserve(
            r#"{"dropId":"{unknown}","username":"alice"}"#,
            404,
            "DROP_NOT_FOUND",
            None,
        ),
        case(
            Nobody,
            "POST",
            P,
            Some(r#"{"reservationId":"{res}"}"#),
            400,
            BAD,
            Some("username"),
        ),
        case(
            Nobody,
            "POST",
            P,
            Some(r#"{"reservationId":"{res}","username":"bob_x"}"#),
            403,
            "NOT_OWNER",
            None,
        ),
        // The owner named nowhere: each part fits its schema, together
        // they do not (422, not 400).
        case(
            Nobody,
            "DELETE",
            "/api/reservations/{res}",
            None,
            422,
            BAD,
            Some("username"),
        ),
        // A bad `?username=` is refused even when the body names the owner.
        case(
            Nobody,
            "DELETE",
            "/api/reservations/{res}?username=x!",
            Some(r#"{"username":"alice"}"#),
            400,
            BAD,
            Some("username"),
        ),
        case(
            Nobody,
            "DELETE",
            "/api/reservations/{res}?username=alice",
            Some("[]"),
            400,
            BAD,
            Some("body"),
        ),
        case(
            Nobody,
            "DELETE",
            "/api/reservations/{unknown}?username=alice",
            None,
            404,
            "RESERVATION_NOT_FOUND",
            None,
        ),
        case(
            Nobody,
            "GET",
            "/api/drops?username=x!",
            None,
            400,
            BAD,
            Some("username"),
        ),
        // An entry's buyer is named in the body (enter) or the query.
        case(Nobody, "POST", E, Some("{}"), 400, BAD, Some("username")),
        case(Nobody, "GET", E, None, 400, BAD, Some("username")),
        case(Nobody, "DELETE", E, None, 400, BAD, Some("username")),
        // A line's buyer is named in the body (join) or the query.
        case(Nobody, "POST", W, Some("{}"), 400, BAD, Some("username")),
        case(
            Nobody,
            "POST",
            W,
            Some(r#"{"username":"al"}"#),
            400,
            BAD,
            Some("username"),
        ),
        case(Nobody, "GET", W, None, 400, BAD, Some("username")),
        case(Nobody, "DELETE", W, None, 400, BAD, Some("username")),
        case(
            Nobody,
            "GET",
            "/api/drops/{drop}/waitlist?username=x!",
            None,
            400,
            BAD,
            Some("username"),
        ),
        // There are no sessions to sign in to.
        sign_in(r#"{"username":"alice"}"#, 404, "NOT_FOUND", None),
    ]
}

/// Cases that do not depend on who the buyer is: creating drops and
/// routing.
fn common() -> Vec<Case> {
    vec![
        // The token is checked before the body is looked at.
        case(
            Who::Nobody,
            "POST",
            "/api/drops",
            Some(r#"{"totalStock":0}"#),
            401,
            "UNAUTHORIZED",
            None,
        ),
        admin(
            r#"{"name":"A","price":10,"totalStock":0}"#,
            400,
            BAD,
            Some("totalStock"),
        ),
        admin(r#"{"name":"A","totalStock":5}"#, 400, BAD, Some("price")),
        admin(
            r#"{"name":"A","price":10,"totalStock":1000001}"#,
            400,
            BAD,
            Some("totalStock"),
        ),
        admin(
            r#"{"name":"A","price":10,"totalStock":-5}"#,
            400,
            BAD,
            Some("totalStock"),
        ),
        admin(
            r#"{"name":"A","price":10,"totalStock":"ten"}"#,
            400,
            BAD,
            Some("totalStock"),
        ),
        admin(
            r#"{"name":"A","price":10,"totalStock":2.5}"#,
            400,
            BAD,
            Some("totalStock"),
        ),
        admin(
            r#"{"name":"A","price":-1,"totalStock":5}"#,
            400,
            BAD,
            Some("price"),
        ),
        admin(
            r#"{"name":"A","price":1.234,"totalStock":5}"#,
            400,
            BAD,
            Some("price"),
        ),
        admin(
            r#"{"name":"A","price":"12.345","totalStock":5}"#,
            400,
            BAD,
            Some("price"),
        ),
        admin(
            r#"{"name":"A","price":"abc","totalStock":5}"#,
            400,
            BAD,
            Some("price"),
        ),
        admin(
            r#"{"name":"","price":1,"totalStock":5}"#,
            400,
            BAD,
            Some("name"),
        ),
        admin(r#"{"price":1,"totalStock":5}"#, 400, BAD, Some("name")),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"startsAt":"yesterday"}"#,
            400,
            BAD,
            Some("startsAt"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"endsAt":"2030-13-45T00:00:00Z"}"#,
            400,
            BAD,
            Some("endsAt"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"startsAt":"2030-01-02T00:00:00Z","endsAt":"2030-01-01T00:00:00Z"}"#,
            422,
            BAD,
            Some("endsAt"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"startsAt":"2030-01-01T00:00:00Z","endsAt":"2030-01-01T00:00:00Z"}"#,
            422,
            BAD,
            Some("endsAt"),
        ),
        // Instants no store keeps (PostgreSQL's timestamps stop at 4713 BC)
        // and a sale that is already over: refused before any store. These
        // and the order of the two instants are rules no schema states: 422.
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"startsAt":"-5000-01-01T00:00:00Z"}"#,
            422,
            BAD,
            Some("startsAt"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"endsAt":"2000-01-01T00:00:00Z"}"#,
            422,
            BAD,
            Some("endsAt"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"holdSeconds":-1}"#,
            400,
            BAD,
            Some("holdSeconds"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"holdSeconds":"x"}"#,
            400,
            BAD,
            Some("holdSeconds"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"holdSeconds":999999}"#,
            400,
            BAD,
            Some("holdSeconds"),
        ),
        // Routing.
        case(
            Who::Nobody,
            "GET",
            "/api/nope",
            None,
            404,
            "NOT_FOUND",
            None,
        ),
        case(
            Who::Nobody,
            "PUT",
            "/api/drops",
            None,
            405,
            "METHOD_NOT_ALLOWED",
            None,
        ),
        case(
            Who::Nobody,
            "GET",
            "/api/ws",
            None,
            400,
            "BAD_REQUEST",
            None,
        ),
    ]
}

/// `s` with the placeholders replaced.
pub(crate) fn fill(s: &str, drop_id: &str, res_id: &str) -> String {
    s.replace("{drop}", drop_id)
        .replace("{res}", res_id)
        .replace("{unknown}", UNKNOWN)
}

/// The session tokens of the two buyers the cases name.
pub(crate) struct Tokens {
    /// Alice's, the owner of `{res}`.
    pub(crate) owner: String,
    /// Bob's.
    pub(crate) other: String,
}

/// The headers `c` is sent with, besides the ones every client adds.
pub(crate) fn headers(c: &Case, tokens: &Tokens, admin_token: &str) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if c.body.is_some() {
        out.push(("content-type", c.content_type.to_owned()));
    }
    if let Some(origin) = c.origin {
        out.push(("origin", origin.to_owned()));
    }
    if let Some(key) = c.key {
        out.push(("idempotency-key", key.to_owned()));
    }
    let bearer = |token: &str| ("authorization", format!("Bearer {token}"));
    match c.who {
        Who::Nobody => {}
        Who::Owner => out.push(bearer(&tokens.owner)),
        Who::OwnerCookie => out.push(("cookie", format!("dropkit_session={}", tokens.owner))),
        Who::Other => out.push(bearer(&tokens.other)),
        Who::Forged => out.push(bearer(FORGED)),
        Who::Admin => out.push(bearer(admin_token)),
    }
    out
}

/// Fails the test with every case answered otherwise than the table says.
#[track_caller]
pub(crate) fn assert_all_answered(failures: &[String], total: usize) {
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        total,
        failures.join("\n")
    );
}

/// What is wrong with an answer to `c`, if anything.
pub(crate) fn mismatch(c: &Case, status: u16, text: &str) -> Option<String> {
    let Ok(body) = serde_json::from_str::<serde_json::Value>(text) else {
        return Some(format!(
            "{:?} {} {}: {status}, not JSON: {text}",
            c.who, c.method, c.path
        ));
    };
    let field_ok = c.field.is_none_or(|f| body["field"] == f);
    if status != c.status || body["error"] != c.code || !body["message"].is_string() || !field_ok {
        return Some(format!(
            "{:?} {} {} {:?} ({}{}): want {} {} {:?}, got {status} {body}",
            c.who,
            c.method,
            c.path,
            c.body,
            c.content_type,
            c.origin
                .map(|o| format!(", Origin {o}"))
                .unwrap_or_default(),
            c.status,
            c.code,
            c.field
        ));
    }
    None
}
