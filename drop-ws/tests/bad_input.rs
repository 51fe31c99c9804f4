//! Every bad request gets a 4xx JSON error with a stable code and, for
//! input errors, the field it is about, straight from the router (no
//! sockets). `tests/web/bad_input.rs` runs the same tables over a real
//! server on PostgreSQL.

#[path = "cases/bad_input.rs"]
mod cases;
mod support;

use axum::Router;
use cases::{Case, Tokens};
use drop_ws::{SessionIdentity, SessionKey};
use support::{TOKEN, builder, json, post_as, send, sign_in};

/// A drop and its id.
async fn target(app: &Router) -> String {
    let create = r#"{"name":"Target","price":"19.99","totalStock":10}"#;
    let (status, drop) = json(app, "POST", "/api/drops", Some(create.into()), true).await;
    assert_eq!(status, 201, "{drop}");
    drop["id"].as_str().unwrap().to_owned()
}

/// Sends every case; the ones answered otherwise than the table says.
async fn run(
    app: &Router,
    cases: &[Case],
    drop_id: &str,
    res_id: &str,
    tokens: &Tokens,
) -> Vec<String> {
    let mut failures = Vec::new();
    for c in cases {
        let path = cases::fill(c.path, drop_id, res_id);
        let body = c.body.map(|b| cases::fill(b, drop_id, res_id));
        let headers = cases::headers(c, tokens, TOKEN);
        let (status, text) = send(app, c.method, &path, body, &headers).await;
        failures.extend(cases::mismatch(c, status, &text));
    }
    failures
}

/// The drop's reserved stock, as anyone sees it.
async fn reserved(app: &Router, drop_id: &str) -> serde_json::Value {
    let (_, drops) = json(app, "GET", "/api/drops", None, false).await;
    drops
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == drop_id)
        .unwrap()["reservedStock"]
        .clone()
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let api = builder()
        .sessions(SessionIdentity::new(SessionKey::generate()).sign_ins_per_minute(0))
        .build()
        .await
        .unwrap();
    let app = api.router();
    let drop_id = target(&app).await;
    let tokens = Tokens {
        owner: sign_in(&app, "alice").await,
        other: sign_in(&app, "bob_x").await,
    };
    let reserve = format!(r#"{{"dropId":"{drop_id}"}}"#);
    let (status, hold) = post_as(&app, "/api/reservations", reserve, &tokens.owner).await;
    assert_eq!(status, 201, "{hold}");
    let res_id = hold["id"].as_str().unwrap().to_owned();

    let cases = cases::table();
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let failures = run(&app, &cases, &drop_id, &res_id, &tokens).await;
    cases::assert_all_answered(&failures, cases.len());
    // JSON Schema's `integer` includes `5.0`; so does the server.
    let whole = r#"{"name":"Whole","price":1,"totalStock":5.0}"#;
    let (status, drop) = json(&app, "POST", "/api/drops", Some(whole.into()), true).await;
    assert_eq!(
        (status, &drop["totalStock"]),
        (201, &serde_json::json!(5)),
        "{drop}"
    );
    let part = r#"{"name":"Part","price":1,"totalStock":5.5}"#;
    let (status, err) = json(&app, "POST", "/api/drops", Some(part.into()), true).await;
    assert_eq!(
        (status, &err["field"]),
        (400, &serde_json::json!("totalStock")),
        "{err}"
    );
    // Nothing above changed the drop: alice still holds her unit.
    assert_eq!(reserved(&app, &drop_id).await, 1);
    let path = format!("/api/reservations/{res_id}");
    let (status, hold) = support::json_as(&app, "GET", &path, &tokens.owner).await;
    assert_eq!(
        (status, &hold["status"]),
        (200, &serde_json::json!("active")),
        "{hold}"
    );
}

#[tokio::test]
async fn the_claimed_wire_keeps_its_errors() {
    let api = builder().claimed_identity().build().await.unwrap();
    let app = api.router();
    let drop_id = target(&app).await;
    let reserve = format!(r#"{{"dropId":"{drop_id}","username":"alice"}}"#);
    let (status, hold) = json(&app, "POST", "/api/reservations", Some(reserve), false).await;
    assert_eq!(status, 201, "{hold}");
    let res_id = hold["id"].as_str().unwrap().to_owned();

    let cases = cases::claimed_table();
    let tokens = Tokens {
        owner: String::new(),
        other: String::new(),
    };
    let failures = run(&app, &cases, &drop_id, &res_id, &tokens).await;
    cases::assert_all_answered(&failures, cases.len());
    assert_eq!(reserved(&app, &drop_id).await, 1);
}
