//! The admin audit view, `GET /api/admin/events`, over HTTP: a sequence of
//! operations then the log's answer, entry by entry; paging one at a
//! time reaches the same list; one drop's history; who may read it; bad
//! parameters.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::store_tests;
use crate::support::{As, StoreFactory, TestServer};

/// Generous: a hold's expiry is noticed by the server's scheduler, on a
/// loaded machine.
const WAIT: Duration = Duration::from_secs(20);

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn admin(server: &TestServer, method: Method, path: &str, body: Option<Value>) -> Value {
    let a = server.call(method, path, As::Admin, body, None).await;
    assert_eq!(a.status, 200, "{path}: {}", a.body);
    a.body
}

/// One page of the log.
async fn page(server: &TestServer, query: &str) -> Value {
    admin(
        server,
        Method::GET,
        &format!("/api/admin/events{query}"),
        None,
    )
    .await
}

/// Every entry, read a page at a time with `limit`, checking on the way
/// that each page says truly whether another follows.
async fn read_all(server: &TestServer, filter: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0u64;
    loop {
        let p = page(server, &format!("?after={after}&limit={limit}{filter}")).await;
        let events = p["events"].as_array().unwrap().clone();
        assert!(events.len() <= limit, "{p}");
        let next = p["next"].as_u64().unwrap();
        match events.last() {
            Some(last) => assert_eq!(next, last["seq"].as_u64().unwrap(), "{p}"),
            None => assert_eq!(next, after, "{p}"),
        }
        if !events.is_empty() {
            // The head is read after the page: never behind what it holds.
            assert!(p["head"].as_u64().unwrap() >= next, "{p}");
        }
        let got = events.len();
        out.extend(events);
        if !p["more"].as_bool().unwrap() {
            // Nothing is left past the end the page reported.
            let rest = page(server, &format!("?after={next}{filter}")).await;
            assert_eq!(rest["events"], json!([]), "{rest}");
            assert_eq!(rest["next"], next);
            assert_eq!(rest["more"], false);
            return out;
        }
        assert_eq!(got, limit, "a page short of its limit said more: {p}");
        after = next;
    }
}

/// The entries as (type, dropId) pairs, for comparing sequences.
fn kinds(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["dropId"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Polls the log until an entry of `kind` shows up for `drop`.
async fn wait_for_entry(server: &TestServer, kind: &str, drop: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let p = page(server, &format!("?dropId={drop}&limit=1000")).await;
        if let Some(e) = p["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == kind)
        {
            return e.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {kind} for {drop} within {WAIT:?}: {p}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A sale's whole story is in the log, in order, with every field; the
/// refusals and repeats along the way left nothing. Paging one entry at a
/// time reaches the same list, and a drop's history is its part of it.
async fn the_log_tells_the_story(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let empty = page(&server, "").await;
    assert_eq!(empty["events"], json!([]));
    assert_eq!(empty["next"], 0);
    assert_eq!(empty["more"], false);

    let a = server.create_drop("Story", 5, 60.0).await;
    let da = id(&a);
    let variant = a["variants"][0]["id"].as_str().unwrap().to_owned();

    let (status, alice_hold) = server.reserve(&da, "alice").await;
    assert_eq!(status, 201, "{alice_hold}");
    let (status, bought) = server.purchase(&id(&alice_hold), "alice").await;
    assert_eq!(status, 201, "{bought}");
    // Buying a bought hold again answers the same purchase and logs nothing.
    assert_eq!(server.purchase(&id(&alice_hold), "alice").await.0, 200);

    let (status, bob_hold) = server.reserve(&da, "bob_b").await;
    assert_eq!(status, 201, "{bob_hold}");
    let released = server
        .delete_as(&format!("/api/reservations/{}", id(&bob_hold)), "bob_b")
        .await;
    assert_eq!(released.0, 200, "{}", released.1);

    let pause = format!("/api/admin/drops/{da}/pause");
    admin(&server, Method::POST, &pause, None).await;
    // Refused while paused, and pausing again: nothing logged.
    assert_eq!(server.reserve(&da, "carol").await.0, 409);
    admin(&server, Method::POST, &pause, None).await;
    admin(
        &server,
        Method::POST,
        &format!("/api/admin/drops/{da}/resume"),
        None,
    )
    .await;
    admin(
        &server,
        Method::PATCH,
        &format!("/api/admin/drops/{da}"),
        Some(json!({ "name": "Story, told" })),
    )
    .await;
    let cancel = format!("/api/admin/purchases/{}/cancel", id(&bought));
    admin(&server, Method::POST, &cancel, None).await;
    admin(&server, Method::POST, &cancel, None).await;
    admin(
        &server,
        Method::POST,
        &format!("/api/admin/drops/{da}/end"),
        None,
    )
    .await;

    // A second drop, whose hold runs out on its own.
    let b = server.create_drop("Brief", 2, 0.3).await;
    let db = id(&b);
    let (status, dave_hold) = server.reserve(&db, "dave").await;
    assert_eq!(status, 201, "{dave_hold}");
    let expired = wait_for_entry(&server, "holdExpired", &db).await;

    let all = read_all(&server, "", 1000).await;
    let expected: Vec<(String, String)> = [
        ("dropCreated", &da),
        ("holdCreated", &da),
        ("purchaseCompleted", &da),
        ("holdCreated", &da),
        ("holdReleased", &da),
        ("dropUpdated", &da),
        ("dropUpdated", &da),
        ("dropUpdated", &da),
        ("purchaseCancelled", &da),
        ("dropUpdated", &da),
        ("dropCreated", &db),
        ("holdCreated", &db),
        ("holdExpired", &db),
    ]
    .iter()
    .map(|(k, d)| ((*k).to_owned(), (*d).clone()))
    .collect();
    assert_eq!(kinds(&all), expected, "{all:#?}");
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    for e in &all {
        assert!(e["at"].as_str().unwrap().ends_with('Z'), "{e}");
    }

    // Every field, entry by entry.
    assert_eq!(all[0]["drop"]["name"], "Story");
    assert_eq!(all[0]["drop"]["totalStock"], 5);
    assert_eq!(all[0]["drop"]["variants"][0]["id"], variant.as_str());
    let alice = &all[1];
    assert_eq!(alice["reservationId"], alice_hold["id"]);
    assert_eq!(alice["displayName"], "alice");
    assert_eq!(alice["variantId"], variant.as_str());
    assert_eq!(alice["quantity"], 1);
    assert_eq!(alice["expiresAt"], alice_hold["expiresAt"]);
    let alice_id = alice["buyerId"].as_str().unwrap();
    assert!(!alice_id.is_empty());
    let purchase = &all[2];
    assert_eq!(purchase["purchaseId"], bought["id"]);
    assert_eq!(purchase["reservationId"], alice_hold["id"]);
    assert_eq!(purchase["buyerId"], alice_id);
    assert_eq!(purchase["displayName"], "alice");
    assert_eq!(purchase["amount"], a["price"]);
    assert_eq!(all[3]["displayName"], "bob_b");
    assert_ne!(all[3]["buyerId"], alice_id);
    let release = &all[4];
    assert_eq!(release["reservationId"], bob_hold["id"]);
    assert_eq!(release["buyerId"], all[3]["buyerId"]);
    assert_eq!(release["quantity"], 1);
    let actions: Vec<&Value> = [5, 6, 7, 9].iter().map(|&i| &all[i]["action"]).collect();
    assert_eq!(
        actions,
        [
            &json!("paused"),
            &json!("resumed"),
            &json!("edited"),
            &json!("ended")
        ]
    );
    assert_eq!(all[5]["drop"]["paused"], true);
    assert_eq!(all[6]["drop"]["paused"], false);
    assert_eq!(all[7]["drop"]["name"], "Story, told");
    assert!(all[9]["drop"]["endsAt"].is_string(), "{}", all[9]);
    let cancelled = &all[8];
    assert_eq!(cancelled["purchaseId"], bought["id"]);
    assert_eq!(cancelled["reservationId"], alice_hold["id"]);
    assert_eq!(cancelled["buyerId"], alice_id);
    assert_eq!(cancelled["amount"], a["price"]);
    assert_eq!(all[11]["displayName"], "dave");
    assert_eq!(all[12], expired);
    assert_eq!(expired["reservationId"], dave_hold["id"]);
    assert_eq!(expired["buyerId"], all[11]["buyerId"]);

    // One at a time, and from the middle: the same entries.
    assert_eq!(read_all(&server, "", 1).await, all);
    assert_eq!(read_all(&server, "", 5).await, all);
    let from = all[6]["seq"].as_u64().unwrap();
    let rest = page(&server, &format!("?after={from}")).await;
    assert_eq!(rest["events"].as_array().unwrap()[..], all[7..]);
    assert_eq!(rest["next"], all[12]["seq"]);
    let default_page = page(&server, "").await;
    assert_eq!(default_page["events"], json!(all));
    assert_eq!(default_page["head"], all[12]["seq"]);

    // One drop's history: its part of the log, in the same order.
    let of_a: Vec<Value> = all
        .iter()
        .filter(|e| e["dropId"] == da.as_str())
        .cloned()
        .collect();
    assert_eq!(
        read_all(&server, &format!("&dropId={da}"), 1000).await,
        of_a
    );
    assert_eq!(read_all(&server, &format!("&dropId={da}"), 2).await, of_a);
    let of_b: Vec<Value> = all
        .iter()
        .filter(|e| e["dropId"] == db.as_str())
        .cloned()
        .collect();
    assert_eq!(read_all(&server, &format!("&dropId={db}"), 1).await, of_b);
    server.stop().await;
}

/// Only the admin reads the log: no token is 401 with a challenge, a
/// buyer's session is 403, whether as a token or as the cookie.
async fn only_the_admin_reads_the_log(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let drop = server.create_drop("Private", 3, 60.0).await;
    let d = id(&drop);
    assert_eq!(server.reserve(&d, "alice").await.0, 201);
    for path in [
        "/api/admin/events".to_owned(),
        format!("/api/admin/events?dropId={d}&limit=5"),
    ] {
        let nobody = server
            .call(Method::GET, &path, As::Nobody, None, None)
            .await;
        assert_eq!(
            (nobody.status, nobody.code()),
            (401, "UNAUTHORIZED"),
            "{path}"
        );
        assert_eq!(nobody.headers["www-authenticate"], "Bearer");
        let buyer = server
            .call(Method::GET, &path, As::Buyer("alice"), None, None)
            .await;
        assert_eq!((buyer.status, buyer.code()), (403, "FORBIDDEN"), "{path}");
        assert!(buyer.body.get("events").is_none());
    }
    let cookie = server
        .http
        .get(server.url("/api/admin/events"))
        .header(
            "cookie",
            format!("dropkit_session={}", server.token("alice").await),
        )
        .send()
        .await
        .unwrap();
    assert!(
        matches!(cookie.status().as_u16(), 401 | 403),
        "{}",
        cookie.status()
    );
    let body: Value = cookie.json().await.unwrap();
    assert!(body.get("events").is_none(), "{body}");
    server.stop().await;
}

/// Bad parameters name their field; an unknown drop is 404, not an empty
/// history.
async fn bad_parameters_are_named(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let drop = server.create_drop("Checked", 3, 60.0).await;
    let d = id(&drop);
    for (query, field) in [
        ("after=-1", "after"),
        ("after=x", "after"),
        ("after=99999999999999999999", "after"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=2.5", "limit"),
        ("dropId=nope", "dropId"),
    ] {
        let a = server
            .call(
                Method::GET,
                &format!("/api/admin/events?{query}"),
                As::Admin,
                None,
                None,
            )
            .await;
        assert_eq!(
            (a.status, a.code()),
            (400, "INVALID_INPUT"),
            "{query}: {}",
            a.body
        );
        assert_eq!(a.body["field"], field, "{query}");
    }
    let unknown = server
        .call(
            Method::GET,
            &format!("/api/admin/events?dropId={}", uuid::Uuid::new_v4()),
            As::Admin,
            None,
            None,
        )
        .await;
    assert_eq!((unknown.status, unknown.code()), (404, "DROP_NOT_FOUND"));
    // The edges are accepted: the largest page, and a cursor past the end.
    let edge = page(
        &server,
        &format!("?limit=1000&after=18446744073709551615&dropId={d}"),
    )
    .await;
    assert_eq!(edge["events"], json!([]));
    assert_eq!(edge["next"], json!(u64::MAX));
    assert_eq!(edge["more"], false);
    server.stop().await;
}

/// The log's cursors over HTTP: listed with their positions and the head
/// (a webhook endpoint's among them), removed by name (percent-encoded,
/// idempotently) so retention prunes past them again; a name that is not
/// UTF-8 is refused; only the admin may do either.
async fn cursors_are_listed_and_removed(factory: StoreFactory) {
    let backend = factory().await;
    let store = backend.store.clone();
    let server = TestServer::on(backend, Default::default()).await;
    let drop = server.create_drop("Followed", 3, 60.0).await;
    let hold = server.reserve(&id(&drop), "alice").await.1;
    server.purchase(&id(&hold), "alice").await;
    let gone = "webhook:https://gone.example/hook";
    let holder = uuid::Uuid::new_v4();
    let lease = Duration::from_secs(600);
    store.claim_cursor(gone, holder, lease).await.unwrap();
    store.release_cursor(gone, holder).await.unwrap();
    store.claim_cursor("audit", holder, lease).await.unwrap();
    let head = store.log_head().await.unwrap();
    assert!(store.advance_cursor("audit", holder, head).await.unwrap());

    let listed = admin(&server, Method::GET, "/api/admin/cursors", None).await;
    assert_eq!(listed["head"], head, "{listed}");
    assert_eq!(
        listed["cursors"],
        json!([
            { "name": "audit", "position": head, "held": true,
              "leaseUntil": listed["cursors"][0]["leaseUntil"] },
            { "name": gone, "position": 0, "held": false },
        ]),
        "{listed}"
    );
    assert!(listed["cursors"][0]["leaseUntil"].is_string(), "{listed}");

    let path = "/api/admin/cursors/webhook%3Ahttps%3A%2F%2Fgone.example%2Fhook";
    for who in [As::Nobody, As::Buyer("alice")] {
        let refused = server.call(Method::DELETE, path, who, None, None).await;
        assert!(matches!(refused.status, 401 | 403), "{}", refused.body);
        let refused = server
            .call(Method::GET, "/api/admin/cursors", who, None, None)
            .await;
        assert!(matches!(refused.status, 401 | 403), "{}", refused.body);
    }
    for _ in 0..2 {
        let removed = server
            .call(Method::DELETE, path, As::Admin, None, None)
            .await;
        assert_eq!(removed.status, 204, "{}", removed.body);
    }
    let listed = admin(&server, Method::GET, "/api/admin/cursors", None).await;
    let names: Vec<&str> = listed["cursors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["audit"]);

    // A name no cursor can have (a control character) names none.
    let none = server
        .call(
            Method::DELETE,
            "/api/admin/cursors/a%0Ab",
            As::Admin,
            None,
            None,
        )
        .await;
    assert_eq!(none.status, 204, "{}", none.body);
    let not_utf8 = server
        .call(
            Method::DELETE,
            "/api/admin/cursors/%FF",
            As::Admin,
            None,
            None,
        )
        .await;
    assert_eq!(
        (not_utf8.status, not_utf8.code()),
        (400, "INVALID_INPUT"),
        "{}",
        not_utf8.body
    );
    assert_eq!(not_utf8.body["field"], "name", "{}", not_utf8.body);
    let names_after: Vec<String> = store
        .cursors()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names_after, ["audit"], "neither removed anything");
    server.stop().await;
}

store_tests!(
    the_log_tells_the_story,
    only_the_admin_reads_the_log,
    bad_parameters_are_named,
    cursors_are_listed_and_removed,
);

/// Reading below what retention pruned answers 410 `EVENTS_PRUNED` with the
/// oldest entry kept, for the whole log and for one drop's history, and
/// reading on from just below it works (the memory store on a manual
/// clock, so that the retention passes without waiting).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruned_positions_answer_410_with_the_oldest_kept() {
    let clock = drop_core::ManualClock::new(chrono::Utc::now());
    let store = drop_store_memory::MemoryStore::builder()
        .clock(std::sync::Arc::new(clock.clone()))
        .event_retention(Duration::from_secs(3_600))
        .build();
    let backend = crate::support::Backend {
        store: std::sync::Arc::new(store),
        clock: std::sync::Arc::new(clock.clone()),
        database_url: None,
    };
    let server = TestServer::on(backend, Default::default()).await;
    let drop = server.create_drop("Kept a while", 5, 60.0).await;
    let d = id(&drop);
    let hold = server.reserve(&d, "alice").await.1;
    server.purchase(&id(&hold), "alice").await;
    let before = page(&server, "?after=0").await["head"].as_u64().unwrap();
    assert!(before >= 3, "created, held, bought: {before}");

    // Past the retention, the next change prunes what came before.
    clock.advance(Duration::from_secs(2 * 3_600));
    let hold = server.reserve(&d, "bob").await.1;
    assert_eq!(hold["status"], "active", "{hold}");

    for query in ["?after=0".to_owned(), format!("?after=0&dropId={d}")] {
        let a = server
            .call(
                Method::GET,
                &format!("/api/admin/events{query}"),
                As::Admin,
                None,
                None,
            )
            .await;
        assert_eq!(
            (a.status, a.code()),
            (410, "EVENTS_PRUNED"),
            "{query}: {}",
            a.body
        );
        assert_eq!(a.body["oldest"], before + 1, "{query}: {}", a.body);
    }
    let on = page(&server, &format!("?after={before}")).await;
    let kinds: Vec<&str> = on["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["holdCreated"], "{on}");
    server.stop().await;
}
