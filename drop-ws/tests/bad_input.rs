//! Every bad request gets a 4xx JSON error with a stable code and, for
//! input errors, the field it is about, straight from the router (no
//! sockets). `tests/web/bad_input.rs` runs the same table over a real
//! server on PostgreSQL.

#[path = "cases/bad_input.rs"]
mod cases;
mod support;

use support::{builder, call, json};

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let api = builder().build().await.unwrap();
    let app = api.router();
    let create = r#"{"name":"Target","price":"19.99","totalStock":10}"#;
    let (status, drop) = json(&app, "POST", "/api/drops", Some(create.into()), true).await;
    assert_eq!(status, 201, "{drop}");
    let drop_id = drop["id"].as_str().unwrap().to_owned();
    let reserve = format!(r#"{{"dropId":"{drop_id}","username":"alice"}}"#);
    let (status, hold) = json(&app, "POST", "/api/reservations", Some(reserve), false).await;
    assert_eq!(status, 201, "{hold}");
    let res_id = hold["id"].as_str().unwrap().to_owned();

    let cases = cases::table();
    assert!(cases.len() >= 30);
    let mut failures = Vec::new();
    for c in &cases {
        let path = cases::fill(c.path, &drop_id, &res_id);
        let body = c.body.map(|b| cases::fill(b, &drop_id, &res_id));
        let (status, text) = call(&app, c.method, &path, body, c.admin).await;
        failures.extend(cases::mismatch(c, status, &text));
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
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
    // Nothing above changed the drop.
    let (_, drops) = json(&app, "GET", "/api/drops", None, false).await;
    let target = drops
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == drop_id.as_str())
        .unwrap();
    assert_eq!(target["reservedStock"], 1);
}
