//! Every bad request gets a 4xx JSON error with a stable code and, for
//! input errors, the field it is about. Never a 500, never a panic.
//!
//! The tables live with drop-ws's router tests, which run them in-process
//! on the memory store; here they run over real sockets on PostgreSQL,
//! whose store answers some of the cases itself.

use reqwest::Method;

use crate::support::{Identity, Settings, TOKEN, TestServer, postgres_store};

#[path = "../../drop-ws/tests/cases/bad_input.rs"]
mod cases;

use cases::{Case, Tokens};

/// Sends every case; the ones answered otherwise than the table says.
async fn run(
    server: &TestServer,
    cases: &[Case],
    drop_id: &str,
    res_id: &str,
    tokens: &Tokens,
) -> Vec<String> {
    let mut failures = Vec::new();
    for c in cases {
        let method = Method::from_bytes(c.method.as_bytes()).unwrap();
        let url = server.url(&cases::fill(c.path, drop_id, res_id));
        let mut req = server.http.request(method, url);
        for (name, value) in cases::headers(c, tokens, TOKEN) {
            req = req.header(name, value);
        }
        if let Some(body) = c.body {
            req = req.body(cases::fill(body, drop_id, res_id));
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        failures.extend(cases::mismatch(c, status, &text));
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_on_postgres() {
    let server = TestServer::start(postgres_store).await;
    let drop = server.create_drop("Target", 10, 60.0).await;
    let drop_id = drop["id"].as_str().unwrap().to_owned();
    let (status, hold) = server.reserve(&drop_id, "alice").await;
    assert_eq!(status, 201, "{hold}");
    let res_id = hold["id"].as_str().unwrap().to_owned();
    let tokens = Tokens {
        owner: server.token("alice").await,
        other: server.token("bob_x").await,
    };
    let cases = cases::table();
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let failures = run(&server, &cases, &drop_id, &res_id, &tokens).await;
    cases::assert_all_answered(&failures, cases.len());
    // Nothing above changed the drop: alice still holds her unit.
    assert_eq!(server.drop_view(&drop_id).await["reservedStock"], 1);
    let (status, hold) = server
        .get_as(&format!("/api/reservations/{res_id}"), "alice")
        .await;
    assert_eq!(
        (status, &hold["status"]),
        (200, &serde_json::json!("active")),
        "{hold}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claimed_wire_keeps_its_errors_on_postgres() {
    let settings = Settings {
        identity: Identity::Claimed,
        ..Settings::default()
    };
    let server = TestServer::with(postgres_store, settings).await;
    let drop = server.create_drop("Target", 10, 60.0).await;
    let drop_id = drop["id"].as_str().unwrap().to_owned();
    let (status, hold) = server.reserve(&drop_id, "alice").await;
    assert_eq!(status, 201, "{hold}");
    let res_id = hold["id"].as_str().unwrap().to_owned();
    let tokens = Tokens {
        owner: String::new(),
        other: String::new(),
    };
    let cases = cases::claimed_table();
    let failures = run(&server, &cases, &drop_id, &res_id, &tokens).await;
    cases::assert_all_answered(&failures, cases.len());
    assert_eq!(server.drop_view(&drop_id).await["reservedStock"], 1);
    server.stop().await;
}
