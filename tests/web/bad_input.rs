//! Every bad request gets a 4xx JSON error with a stable code and, for
//! input errors, the field it is about. Never a 500, never a panic.

use reqwest::Method;
use serde_json::Value;

use crate::store_tests;
use crate::support::{StoreFactory, TOKEN, TestServer};

struct Case {
    method: Method,
    path: &'static str,
    body: Option<&'static str>,
    admin: bool,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
}

const fn case(
    method: Method,
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
        method: Method::POST,
        path: "/api/drops",
        body: Some(body),
        admin: true,
        status,
        code,
        field,
    }
}

const UNKNOWN: &str = "6f1c1d2e-8a7b-4c3d-9e0f-112233445566";

fn table() -> Vec<Case> {
    use Method as M;
    const R: &str = "/api/reservations";
    const P: &str = "/api/purchases";
    let bad = "INVALID_INPUT";
    vec![
        // Reserve: malformed JSON, wrong shapes, missing fields, bad values.
        case(M::POST, R, Some("{"), 400, "INVALID_JSON", None),
        case(M::POST, R, Some(""), 400, "INVALID_JSON", None),
        case(
            M::POST,
            R,
            Some(r#"{"dropId":"{drop}","username":"alice"} x"#),
            400,
            "INVALID_JSON",
            None,
        ),
        case(M::POST, R, Some("[]"), 400, bad, Some("body")),
        case(M::POST, R, Some("42"), 400, bad, Some("body")),
        case(
            M::POST,
            R,
            Some(r#"{"username":"alice"}"#),
            400,
            bad,
            Some("dropId"),
        ),
        case(
            M::POST,
            R,
            Some(r#"{"dropId":"{drop}"}"#),
            400,
            bad,
            Some("username"),
        ),
        case(
            M::POST,
            R,
            Some(r#"{"dropId":42,"username":"alice"}"#),
            400,
            bad,
            Some("dropId"),
        ),
        case(
            M::POST,
            R,
            Some(r#"{"dropId":"not-a-uuid","username":"alice"}"#),
            400,
            bad,
            Some("dropId"),
        ),
        case(
            M::POST,
            R,
            Some(r#"{"dropId":"{drop}","username":"al"}"#),
            400,
            bad,
            Some("username"),
        ),
        case(
            M::POST,
            R,
            Some(r#"{"dropId":"{drop}","username":"has space"}"#),
            400,
            bad,
            Some("username"),
        ),
        case(
            M::POST,
            R,
            Some(r#"{"dropId":"{drop}","username":"émile"}"#),
            400,
            bad,
            Some("username"),
        ),
        case(
            M::POST,
            R,
            Some(
                r#"{"dropId":"{drop}","username":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#,
            ),
            400,
            bad,
            Some("username"),
        ),
        case(
            M::POST,
            R,
            Some(r#"{"dropId":"{drop}","username":null}"#),
            400,
            bad,
            Some("username"),
        ),
        case(
            M::POST,
            R,
            Some(r#"{"dropId":"{drop}","username":["alice"]}"#),
            400,
            bad,
            Some("username"),
        ),
        case(
            M::POST,
            R,
            Some(r#"{"dropId":"{unknown}","username":"alice"}"#),
            404,
            "DROP_NOT_FOUND",
            None,
        ),
        // Purchase.
        case(
            M::POST,
            P,
            Some(r#"{"reservationId":"x","username":"alice"}"#),
            400,
            bad,
            Some("reservationId"),
        ),
        case(
            M::POST,
            P,
            Some(r#"{"reservationId":"{res}"}"#),
            400,
            bad,
            Some("username"),
        ),
        case(
            M::POST,
            P,
            Some(r#"{"reservationId":true,"username":"alice"}"#),
            400,
            bad,
            Some("reservationId"),
        ),
        case(
            M::POST,
            P,
            Some(r#"{"reservationId":"{unknown}","username":"alice"}"#),
            404,
            "RESERVATION_NOT_FOUND",
            None,
        ),
        case(
            M::POST,
            P,
            Some(r#"{"reservationId":"{res}","username":"bob_x"}"#),
            403,
            "NOT_OWNER",
            None,
        ),
        // Holds by id.
        case(M::GET, "/api/reservations/42", None, 400, bad, Some("id")),
        case(
            M::GET,
            "/api/reservations/{unknown}",
            None,
            404,
            "RESERVATION_NOT_FOUND",
            None,
        ),
        case(
            M::DELETE,
            "/api/reservations/{res}",
            None,
            400,
            bad,
            Some("username"),
        ),
        case(
            M::DELETE,
            "/api/reservations/{res}",
            Some("{nope"),
            400,
            "INVALID_JSON",
            None,
        ),
        case(
            M::DELETE,
            "/api/reservations/{unknown}?username=alice",
            None,
            404,
            "RESERVATION_NOT_FOUND",
            None,
        ),
        // Listing.
        case(
            M::GET,
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
            400,
            bad,
            Some("endsAt"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"startsAt":"2030-01-01T00:00:00Z","endsAt":"2030-01-01T00:00:00Z"}"#,
            400,
            bad,
            Some("endsAt"),
        ),
        // Instants no store keeps (PostgreSQL's timestamps stop at 4713 BC)
        // and a sale that is already over: refused before any store.
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"startsAt":"-5000-01-01T00:00:00Z"}"#,
            400,
            bad,
            Some("startsAt"),
        ),
        admin(
            r#"{"name":"A","price":1,"totalStock":5,"endsAt":"2000-01-01T00:00:00Z"}"#,
            400,
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
            M::POST,
            "/api/drops",
            Some(r#"{"totalStock":0}"#),
            401,
            "UNAUTHORIZED",
            None,
        ),
        // Routing.
        case(M::GET, "/api/nope", None, 404, "NOT_FOUND", None),
        case(M::PUT, "/api/drops", None, 405, "METHOD_NOT_ALLOWED", None),
        case(M::GET, "/api/ws", None, 400, "BAD_REQUEST", None),
    ]
}

async fn bad_requests_get_clear_errors(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let drop = server.create_drop("Target", 10, 60.0).await;
    let drop_id = drop["id"].as_str().unwrap().to_owned();
    let (_, hold) = server.reserve(&drop_id, "alice").await;
    let res_id = hold["id"].as_str().unwrap().to_owned();
    let fill = |s: &str| {
        s.replace("{drop}", &drop_id)
            .replace("{res}", &res_id)
            .replace("{unknown}", UNKNOWN)
    };
    let cases = table();
    assert!(cases.len() >= 30);
    let mut failures = Vec::new();
    for c in &cases {
        let mut req = server
            .http
            .request(c.method.clone(), server.url(&fill(c.path)));
        if let Some(body) = c.body {
            req = req
                .header("content-type", "application/json")
                .body(fill(body));
        }
        if c.admin {
            req = req.bearer_auth(TOKEN);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let body: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(_) => {
                failures.push(format!("{} {}: not JSON: {text}", c.method, c.path));
                continue;
            }
        };
        let field_ok = c.field.is_none_or(|f| body["field"] == f);
        if status != c.status
            || body["error"] != c.code
            || !body["message"].is_string()
            || !field_ok
        {
            failures.push(format!(
                "{} {} {:?}: want {} {} {:?}, got {status} {body}",
                c.method, c.path, c.body, c.status, c.code, c.field
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // Nothing above changed the drop.
    assert_eq!(server.drop_view(&drop_id).await["reservedStock"], 1);
    server.stop().await;
}

store_tests!(bad_requests_get_clear_errors);
