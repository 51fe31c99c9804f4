//! The bad-request table: every malformed request, the status, the stable
//! error code and the field it must answer with. Shared by the router
//! tests (`drop-ws/tests/bad_input.rs`, in-process on the memory store)
//! and the end-to-end tests (`tests/web/bad_input.rs`, a real server on
//! PostgreSQL).
//!
//! `{drop}` is an existing drop, `{res}` alice's hold on it, `{unknown}` an
//! id nothing has.

pub(crate) struct Case {
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    pub(crate) body: Option<&'static str>,
    pub(crate) admin: bool,
    pub(crate) status: u16,
    pub(crate) code: &'static str,
    pub(crate) field: Option<&'static str>,
}

const fn case(
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
        admin: false,
        status,
        code,
        field,
    }
}

const fn admin(
    body: &'static str,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
) -> Case {
    Case {
        method: "POST",
        path: "/api/drops",
        body: Some(body),
        admin: true,
        status,
        code,
        field,
    }
}

pub(crate) const UNKNOWN: &str = "6f1c1d2e-8a7b-4c3d-9e0f-112233445566";

pub(crate) fn table() -> Vec<Case> {
    const R: &str = "/api/reservations";
    const P: &str = "/api/purchases";
    let bad = "INVALID_INPUT";
    vec![
        // Reserve: malformed JSON, wrong shapes, missing fields, bad values.
        case("POST", R, Some("{"), 400, "INVALID_JSON", None),
        case("POST", R, Some(""), 400, "INVALID_JSON", None),
        case(
            "POST",
            R,
            Some(r#"{"dropId":"{drop}","username":"alice"} x"#),
            400,
            "INVALID_JSON",
            None,
        ),
        case("POST", R, Some("[]"), 400, bad, Some("body")),
        case("POST", R, Some("42"), 400, bad, Some("body")),
        case(
            "POST",
            R,
            Some(r#"{"username":"alice"}"#),
            400,
            bad,
            Some("dropId"),
        ),
        case(
            "POST",
            R,
            Some(r#"{"dropId":"{drop}"}"#),
            400,
            bad,
            Some("username"),
        ),
        case(
            "POST",
            R,
            Some(r#"{"dropId":42,"username":"alice"}"#),
            400,
            bad,
            Some("dropId"),
        ),
        case(
            "POST",
            R,
            Some(r#"{"dropId":"not-a-uuid","username":"alice"}"#),
            400,
            bad,
            Some("dropId"),
        ),
        case(
            "POST",
            R,
            Some(r#"{"dropId":"{drop}","username":"al"}"#),
            400,
            bad,
            Some("username"),
        ),
        case(
            "POST",
            R,
            Some(r#"{"dropId":"{drop}","username":"has space"}"#),
            400,
            bad,
            Some("username"),
        ),
        case(
            "POST",
            R,
            Some(r#"{"dropId":"{drop}","username":"émile"}"#),
            400,
            bad,
            Some("username"),
        ),
        case(
            "POST",
            R,
            Some(
                r#"{"dropId":"{drop}","username":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#,
            ),
            400,
            bad,
            Some("username"),
        ),
        case(
            "POST",
            R,
            Some(r#"{"dropId":"{drop}","username":null}"#),
            400,
            bad,
            Some("username"),
        ),
        case(
            "POST",
            R,
            Some(r#"{"dropId":"{drop}","username":["alice"]}"#),
            400,
            bad,
            Some("username"),
        ),
        case(
            "POST",
            R,
            Some(r#"{"dropId":"{unknown}","username":"alice"}"#),
            404,
            "DROP_NOT_FOUND",
            None,
        ),
        // Purchase.
        case(
            "POST",
            P,
            Some(r#"{"reservationId":"x","username":"alice"}"#),
            400,
            bad,
            Some("reservationId"),
        ),
        case(
            "POST",
            P,
            Some(r#"{"reservationId":"{res}"}"#),
            400,
            bad,
            Some("username"),
        ),
        case(
            "POST",
            P,
            Some(r#"{"reservationId":true,"username":"alice"}"#),
            400,
            bad,
            Some("reservationId"),
        ),
        case(
            "POST",
            P,
            Some(r#"{"reservationId":"{unknown}","username":"alice"}"#),
            404,
            "RESERVATION_NOT_FOUND",
            None,
        ),
        case(
            "POST",
            P,
            Some(r#"{"reservationId":"{res}","username":"bob_x"}"#),
            403,
            "NOT_OWNER",
            None,
        ),
        // Holds by id.
        case("GET", "/api/reservations/42", None, 400, bad, Some("id")),
        case(
            "GET",
            "/api/reservations/{unknown}",
            None,
            404,
            "RESERVATION_NOT_FOUND",
            None,
        ),
        // The owner named nowhere: each part fits its schema, together
        // they do not (422, not 400).
        case(
            "DELETE",
            "/api/reservations/{res}",
            None,
            422,
            bad,
            Some("username"),
        ),
        // A bad `?username=` is refused even when the body names the owner.
        case(
            "DELETE",
            "/api/reservations/{res}?username=x!",
            Some(r#"{"username":"alice"}"#),
            400,
            bad,
            Some("username"),
        ),
        // Bodies are JSON objects; serde alone would read an array as the
        // struct's fields in order.
        case(
            "DELETE",
            "/api/reservations/{res}?username=alice",
            Some("[]"),
            400,
            bad,
            Some("body"),
        ),
        case(
            "POST",
            "/api/reservations",
            Some(r#"["{drop}","alice"]"#),
            400,
            bad,
            Some("body"),
        ),
        case(
            "DELETE",
            "/api/reservations/{res}",
            Some("{nope"),
            400,
            "INVALID_JSON",
            None,
        ),
        case(
            "DELETE",
            "/api/reservations/{unknown}?username=alice",
            None,
            404,
            "RESERVATION_NOT_FOUND",
            None,
        ),
        // Listing.
        case(
            "GET",
            "/api/drops?username=x!",
            None,
            400,
            bad,
            Some("username"),
        ),
        // Creating drops (with the admin token).
        admin(
            r#"{"name":"A","price":10,"totalStock":0}"#,
            400,
            bad,
            Some("totalStock"),
        ),
        admin(
            r#"{"name":"A","price":10,"totalStock":1000001}"#,
            400,
            bad,
            Some("totalStock"),
        ),
        admin(
            r#"{"name":"A","price":10,"totalStock":-5}"#,
            400,
            bad,
            Some("totalStock"),
        ),
        admin(
            r#"{"name":"A","price":10,"totalStock":"ten"}"#,
            400,
            bad,
            Some("totalStock"),
        ),
        admin(
            r#"{"name":"A","price":10,"totalStock":2.5}"#,
            400,
            bad,
            Some("totalStock"),
        ),
        admin(
            r#"{"name":"A","price":-1,"totalStock":5}"#,
            400,
            bad,
            Some("price"),
        ),
        admin(
            r#"{"name":"A","price":1.234,"totalStock":5}"#,
            400,
            bad,
            Some("price"),
        ),
        admin(
            r#"{"name":"A","price":"12.345","totalStock":5}"#,
            400,
            bad,
            Some("price"),
        ),
        admin(
            r#"{"name":"A","price":"abc","totalStock":5}"#,
            400,
            bad,
            Some("price"),
        ),
        admin(r#"{"name":"A","totalStock":5}"#, 400, bad, Some("price")),
        admin(
            r#"{"name":"","price":1,"totalStock":5}"#,
            400,
            bad,
            Some("name"),
        ),
        admin(r#"{"price":1,"totalStock":5}"#, 400, bad, Some("name")),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"startsAt":"yesterday"}"#,
            400,
            bad,
            Some("startsAt"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"endsAt":"2030-13-45T00:00:00Z"}"#,
            400,
            bad,
            Some("endsAt"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"startsAt":"2030-01-02T00:00:00Z","endsAt":"2030-01-01T00:00:00Z"}"#,
            422,
            bad,
            Some("endsAt"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"startsAt":"2030-01-01T00:00:00Z","endsAt":"2030-01-01T00:00:00Z"}"#,
            422,
            bad,
            Some("endsAt"),
        ),
        // Instants no store keeps (PostgreSQL's timestamps stop at 4713 BC)
        // and a sale that is already over: refused before any store. These
        // and the order of the two instants are rules no schema states: 422.
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"startsAt":"-5000-01-01T00:00:00Z"}"#,
            422,
            bad,
            Some("startsAt"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"endsAt":"2000-01-01T00:00:00Z"}"#,
            422,
            bad,
            Some("endsAt"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"holdSeconds":-1}"#,
            400,
            bad,
            Some("holdSeconds"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"holdSeconds":"x"}"#,
            400,
            bad,
            Some("holdSeconds"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"holdSeconds":999999}"#,
            400,
            bad,
            Some("holdSeconds"),
        ),
        // The token is checked before the body is looked at.
        case(
            "POST",
            "/api/drops",
            Some(r#"{"totalStock":0}"#),
            401,
            "UNAUTHORIZED",
            None,
        ),
        // Routing.
        case("GET", "/api/nope", None, 404, "NOT_FOUND", None),
        case("PUT", "/api/drops", None, 405, "METHOD_NOT_ALLOWED", None),
        case("GET", "/api/ws", None, 400, "BAD_REQUEST", None),
    ]
}

/// `s` with the placeholders replaced.
pub(crate) fn fill(s: &str, drop_id: &str, res_id: &str) -> String {
    s.replace("{drop}", drop_id)
        .replace("{res}", res_id)
        .replace("{unknown}", UNKNOWN)
}

/// What is wrong with an answer to `c`, if anything.
pub(crate) fn mismatch(c: &Case, status: u16, text: &str) -> Option<String> {
    let Ok(body) = serde_json::from_str::<serde_json::Value>(text) else {
        return Some(format!("{} {}: not JSON: {text}", c.method, c.path));
    };
    let field_ok = c.field.is_none_or(|f| body["field"] == f);
    if status != c.status || body["error"] != c.code || !body["message"].is_string() || !field_ok {
        return Some(format!(
            "{} {} {:?}: want {} {} {:?}, got {status} {body}",
            c.method, c.path, c.body, c.status, c.code, c.field
        ));
    }
    None
}
