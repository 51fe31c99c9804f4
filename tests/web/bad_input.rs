//! Every bad request gets a 4xx JSON error with a stable code and, for
//! input errors, the field it is about. Never a 500, never a panic.
//!
//! The table lives with drop-ws's router tests, which run it in-process
//! on the memory store; here it runs over real sockets on PostgreSQL,
//! whose store answers some of the cases itself.

use reqwest::Method;

use crate::support::{TOKEN, TestServer, postgres_store};

#[path = "../../drop-ws/tests/cases/bad_input.rs"]
mod cases;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_on_postgres() {
    let server = TestServer::start(postgres_store).await;
    let drop = server.create_drop("Target", 10, 60.0).await;
    let drop_id = drop["id"].as_str().unwrap().to_owned();
    let (_, hold) = server.reserve(&drop_id, "alice").await;
    let res_id = hold["id"].as_str().unwrap().to_owned();
    let cases = cases::table();
    assert!(cases.len() >= 30);
    let mut failures = Vec::new();
    for c in &cases {
        let method = Method::from_bytes(c.method.as_bytes()).unwrap();
        let url = server.url(&cases::fill(c.path, &drop_id, &res_id));
        let mut req = server.http.request(method, url);
        if let Some(body) = c.body {
            req = req
                .header("content-type", "application/json")
                .body(cases::fill(body, &drop_id, &res_id));
        }
        if c.admin {
            req = req.bearer_auth(TOKEN);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        failures.extend(cases::mismatch(c, status, &text));
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
