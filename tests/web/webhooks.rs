//! Webhooks against a real HTTP receiver (axum on an ephemeral port): every
//! purchase and cancellation arrives at least once, signed, in log order,
//! through failures, timeouts and a receiver restart; a new deliverer goes
//! on from the stored cursor; two deliverers of one endpoint never deliver
//! at once. And `web_drop`'s webhook options.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use clap::Parser;
use drop_core::{Change, InventoryStore, LogEntry};
use drop_ws::webhooks::{self, DEFAULT_TOLERANCE};
use drop_ws::{WebhookDeliveries, Webhooks};
use reqwest::Method;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store_tests;
use crate::support::{As, Settings, StoreFactory, TestServer};

// `options.rs` loads it too, privately; these cases test its webhook
// options beside the rest of the webhooks.
#[path = "../../examples/web_drop/options.rs"]
#[allow(dead_code, clippy::duplicate_mod)]
mod web_drop_options;

store_tests!(
    deliveries_survive_failures_timeouts_and_restarts,
    a_new_deliverer_resumes_from_the_stored_cursor,
    a_new_endpoint_may_start_from_now,
    two_deliverers_never_deliver_at_once,
    webhooks_run_and_stop_with_the_api,
);

const SECRET: &str = "test-webhook-secret-0123456789abcdef";
/// The deliverers' timeout here; a hanging answer sleeps well past it.
const TIMEOUT: Duration = Duration::from_secs(1);
/// Generous, for a loaded machine: the cases finish far sooner.
const WITHIN: Duration = Duration::from_secs(90);
/// Names the deliverer a request came from (a header of the test's own).
const INSTANCE_HEADER: &str = "x-test-instance";

/// What the receiver does with its `n`th request (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Ok,
    /// 500.
    Fail,
    /// Sleeps past the deliverer's timeout, then answers 200 to nobody:
    /// processed, but the sender never learns it.
    Hang,
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    seq: u64,
    kind: String,
    body: Bytes,
    instance: String,
    answer: Answer,
}

/// What a receiver keeps across restarts.
struct Inbox {
    plan: fn(u64) -> Answer,
    /// Time spent on each request that is answered.
    work: Duration,
    requests: AtomicU64,
    received: Mutex<Vec<Received>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Requests whose headers or signature were wrong.
    refused: Mutex<Vec<String>>,
}

impl Inbox {
    fn new(plan: fn(u64) -> Answer, work: Duration) -> Arc<Self> {
        Arc::new(Self {
            plan,
            work,
            requests: AtomicU64::new(0),
            received: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            refused: Mutex::default(),
        })
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The seqs answered 2xx, each once.
    fn accepted(&self) -> BTreeSet<u64> {
        self.received()
            .iter()
            .filter(|r| r.answer != Answer::Fail)
            .map(|r| r.seq)
            .collect()
    }
}

/// Counts a request in flight until it is answered or abandoned.
struct InFlight<'a>(&'a Inbox);

impl<'a> InFlight<'a> {
    fn enter(inbox: &'a Inbox) -> Self {
        let now = inbox.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        inbox.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(inbox)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn receive(State(inbox): State<Arc<Inbox>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let _in_flight = InFlight::enter(&inbox);
    let n = inbox.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let now = chrono::Utc::now().timestamp();
    let checked = webhooks::verify(
        SECRET.as_bytes(),
        &header("dropkit-signature"),
        &body,
        now,
        DEFAULT_TOLERANCE,
    );
    let entry: Option<LogEntry> = serde_json::from_slice(&body).ok();
    let problem = match (&checked, &entry) {
        (Err(err), _) => Some(format!("signature: {err}")),
        (_, None) => Some("body is not a log entry".to_owned()),
        (Ok(_), Some(entry)) if header("dropkit-event-id") != entry.seq.to_string() => {
            Some("event id header differs from the body".to_owned())
        }
        (Ok(_), Some(entry)) if header("dropkit-event-type") != entry.change.kind() => {
            Some("event type header differs from the body".to_owned())
        }
        _ if header("content-type") != "application/json" => Some("content type".to_owned()),
        _ => None,
    };
    if let Some(problem) = problem {
        inbox.refused.lock().unwrap().push(problem);
        return StatusCode::BAD_REQUEST;
    }
    let entry = entry.expect("checked above");
    let answer = (inbox.plan)(n);
    inbox.received.lock().unwrap().push(Received {
        seq: entry.seq,
        kind: entry.change.kind().to_owned(),
        body: body.clone(),
        instance: header(INSTANCE_HEADER),
        answer,
    });
    match answer {
        Answer::Ok => {
            tokio::time::sleep(inbox.work).await;
            StatusCode::OK
        }
        Answer::Fail => StatusCode::INTERNAL_SERVER_ERROR,
        Answer::Hang => {
            tokio::time::sleep(TIMEOUT * 3).await;
            StatusCode::OK
        }
    }
}

/// A receiver serving on `addr` until stopped.
struct Receiver {
    addr: SocketAddr,
    stop: CancellationToken,
    served: JoinHandle<()>,
}

impl Receiver {
    async fn start(inbox: Arc<Inbox>, addr: SocketAddr) -> Self {
        // The port of a receiver just stopped may take a moment to free.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => break listener,
                Err(err) if tokio::time::Instant::now() < deadline => {
                    eprintln!("rebinding {addr}: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(err) => panic!("bind {addr}: {err}"),
            }
        };
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(inbox);
        let stop = CancellationToken::new();
        let served = tokio::spawn({
            let stop = stop.clone();
            async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
                    .expect("receiver serves");
            }
        });
        Self { addr, stop, served }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Stops listening at once; returns when the requests it had are done.
    async fn stop(self) -> SocketAddr {
        self.stop.cancel();
        self.served.await.unwrap();
        self.addr
    }
}

/// Deliverers for `url` as the test `instance`, with short waits.
fn deliverer(
    store: &Arc<dyn InventoryStore>,
    url: &str,
    instance: &str,
) -> (WebhookDeliveries, CancellationToken) {
    deliverer_from(store, url, instance, true)
}

/// [`deliverer`], with where a new cursor starts.
fn deliverer_from(
    store: &Arc<dyn InventoryStore>,
    url: &str,
    instance: &str,
    backfill: bool,
) -> (WebhookDeliveries, CancellationToken) {
    let shutdown = CancellationToken::new();
    let running = Webhooks::builder()
        .backfill(backfill)
        .endpoint(url)
        .unwrap()
        .secret(SECRET)
        .unwrap()
        .timeout(TIMEOUT)
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .poll_interval(Duration::from_millis(100))
        // Long beside every wait here: a lease never runs out by itself
        // on a slow machine, only by release.
        .lease(Duration::from_secs(10))
        .header(INSTANCE_HEADER, instance)
        .unwrap()
        .spawn(store.clone(), shutdown.clone())
        .unwrap();
    (running, shutdown)
}

/// Buyers `0..n` each buy one unit of a new drop: the purchase ids.
async fn purchases(server: &TestServer, drop_id: &str, from: usize, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in from..from + n {
        let user = format!("buyer{i}");
        let (status, hold) = server.reserve(drop_id, &user).await;
        assert_eq!(status, 201, "{hold}");
        let (status, bought) = server.purchase(hold["id"].as_str().unwrap(), &user).await;
        assert_eq!(status, 201, "{bought}");
        ids.push(bought["id"].as_str().unwrap().to_owned());
    }
    ids
}

/// The log's entries of the delivered kinds, oldest first.
async fn deliverable(store: &Arc<dyn InventoryStore>) -> Vec<LogEntry> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = store.events_after(after, 1000).await.expect("log reads");
        let Some(last) = page.last() else { break };
        after = last.seq;
        all.extend(page);
    }
    all.into_iter()
        .filter(|e| {
            matches!(
                e.change,
                Change::PurchaseCompleted { .. } | Change::PurchaseCancelled { .. }
            )
        })
        .collect()
}

/// Waits until the receiver has accepted `want` entries (or panics).
async fn wait_accepted(inbox: &Inbox, want: usize) {
    let deadline = tokio::time::Instant::now() + WITHIN;
    while inbox.accepted().len() < want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {want} entries accepted within {WITHIN:?}; refused: {:?}",
            inbox.accepted().len(),
            inbox.refused.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The checks every case makes: nothing refused, every deliverable entry
/// accepted and nothing else sent, requests in log order (`seq` never
/// going back, so a retry repeats the same entry and nothing is skipped
/// past), and a repeated `seq` always the same body.
fn check_order_and_completeness(inbox: &Inbox, log: &[LogEntry]) {
    assert!(
        inbox.refused.lock().unwrap().is_empty(),
        "refused: {:?}",
        inbox.refused.lock().unwrap()
    );
    let received = inbox.received();
    let want: BTreeSet<u64> = log.iter().map(|e| e.seq).collect();
    assert_eq!(inbox.accepted(), want, "accepted entries vs the log");
    let sent: BTreeSet<u64> = received.iter().map(|r| r.seq).collect();
    assert_eq!(sent, want, "nothing but deliverable entries is sent");
    for pair in received.windows(2) {
        assert!(
            pair[0].seq <= pair[1].seq,
            "out of order: {} then {}",
            pair[0].seq,
            pair[1].seq
        );
    }
    let mut bodies: HashMap<u64, &Bytes> = HashMap::new();
    for r in &received {
        let first = bodies.entry(r.seq).or_insert(&r.body);
        assert_eq!(*first, &r.body, "seq {} re-sent with another body", r.seq);
        let entry = log.iter().find(|e| e.seq == r.seq).unwrap();
        assert_eq!(r.kind, entry.change.kind());
        let sent: LogEntry = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(&sent, entry, "the body is the log entry");
    }
}

/// Fails every 4th request, hangs every 7th (unless it fails).
fn unreliable(n: u64) -> Answer {
    if n % 4 == 2 {
        Answer::Fail
    } else if n % 7 == 3 {
        Answer::Hang
    } else {
        Answer::Ok
    }
}

async fn deliveries_survive_failures_timeouts_and_restarts(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let store = server.api.store().clone();
    let inbox = Inbox::new(unreliable, Duration::ZERO);
    let receiver = Receiver::start(inbox.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let (webhooks, _) = deliverer(&store, &receiver.url(), "only");

    let drop = server.create_drop("Hooked", 1_000, 60.0).await;
    let drop_id = drop["id"].as_str().unwrap().to_owned();
    let mut bought = purchases(&server, &drop_id, 0, 12).await;
    // The receiver goes away mid-run (connections refused meanwhile) and
    // comes back on the same port.
    let addr = receiver.stop().await;
    bought.extend(purchases(&server, &drop_id, 12, 6).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let receiver = Receiver::start(inbox.clone(), addr).await;
    bought.extend(purchases(&server, &drop_id, 18, 12).await);
    let mut cancelled = Vec::new();
    for id in [&bought[3], &bought[20]] {
        let path = format!("/api/admin/purchases/{id}/cancel");
        let answer = server
            .call(Method::POST, &path, As::Admin, None, None)
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        cancelled.push(id.clone());
    }

    let log = deliverable(&store).await;
    assert_eq!(log.len(), bought.len() + cancelled.len());
    wait_accepted(&inbox, log.len()).await;
    // The last answer reaches the deliverer a little after the receiver
    // took the request.
    let last = log.last().unwrap().seq;
    let deadline = tokio::time::Instant::now() + WITHIN;
    while webhooks.status()[0].position < Some(last) {
        assert!(tokio::time::Instant::now() < deadline, "cursor stuck");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    webhooks.shutdown().await;
    let status = &webhooks.status()[0];
    assert!(!status.delivering);
    assert_eq!(status.lag(), Some(0));

    check_order_and_completeness(&inbox, &log);
    let received = inbox.received();
    // The receiver was unreliable: each kind of trouble happened.
    assert!(received.iter().any(|r| r.answer == Answer::Fail));
    assert!(received.iter().any(|r| r.answer == Answer::Hang));
    assert!(status.failed_attempts > 0);
    // Every purchase and cancellation made is among what arrived.
    let arrived: Vec<Value> = received
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    for id in &bought {
        assert!(
            arrived
                .iter()
                .any(|v| v["type"] == "purchaseCompleted" && v["purchaseId"] == id.as_str()),
            "purchase {id} never arrived"
        );
    }
    for id in &cancelled {
        assert!(
            arrived
                .iter()
                .any(|v| v["type"] == "purchaseCancelled" && v["purchaseId"] == id.as_str()),
            "cancellation of {id} never arrived"
        );
    }
    receiver.stop().await;
    server.stop().await;
}

async fn a_new_deliverer_resumes_from_the_stored_cursor(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let store = server.api.store().clone();
    let drop = server.create_drop("Resumed", 1_000, 60.0).await;
    let drop_id = drop["id"].as_str().unwrap().to_owned();
    purchases(&server, &drop_id, 0, 30).await;
    let log = deliverable(&store).await;
    assert_eq!(log.len(), 30);

    // Slow enough that stopping comes mid-stream.
    let inbox = Inbox::new(|_| Answer::Ok, Duration::from_millis(50));
    let receiver = Receiver::start(inbox.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let (first, _) = deliverer(&store, &receiver.url(), "first");
    wait_accepted(&inbox, 8).await;
    first.shutdown().await;
    let stopped_at = first.status()[0].position.expect("first held the cursor");
    let sent_by_first = inbox.received().len();
    assert!(sent_by_first < log.len(), "stopped mid-stream");

    let (second, _) = deliverer(&store, &receiver.url(), "second");
    wait_accepted(&inbox, log.len()).await;
    second.shutdown().await;

    check_order_and_completeness(&inbox, &log);
    let received = inbox.received();
    let from_second: Vec<&Received> = received.iter().filter(|r| r.instance == "second").collect();
    // The second went on after the cursor: at most the entry in flight at
    // the stop is sent again, never the whole log.
    assert!(
        from_second.iter().all(|r| r.seq > stopped_at),
        "the second re-sent entries the cursor had passed ({stopped_at})"
    );
    assert!(
        received.len() <= log.len() + 1,
        "{} requests for {} entries",
        received.len(),
        log.len()
    );
    assert_eq!(
        received.iter().filter(|r| r.instance == "first").count(),
        sent_by_first
    );
    receiver.stop().await;
    server.stop().await;
}

/// An endpoint set to start from now receives none of the purchases made
/// before its cursor existed, every one made after, and, once its cursor
/// exists, goes on from it like any other (the purchases made while no
/// instance delivered included).
async fn a_new_endpoint_may_start_from_now(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let store = server.api.store().clone();
    let drop = server.create_drop("From now on", 100, 60.0).await;
    let drop_id = drop["id"].as_str().unwrap().to_owned();
    purchases(&server, &drop_id, 0, 3).await;
    let head = store.log_head().await.unwrap();

    let inbox = Inbox::new(|_| Answer::Ok, Duration::ZERO);
    let receiver = Receiver::start(inbox.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let (first, _) = deliverer_from(&store, &receiver.url(), "first", false);
    let deadline = tokio::time::Instant::now() + WITHIN;
    while first.status()[0].position.is_none_or(|p| p < head) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            first.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    purchases(&server, &drop_id, 3, 2).await;
    wait_accepted(&inbox, 2).await;
    first.shutdown().await;
    purchases(&server, &drop_id, 5, 2).await;
    let (second, _) = deliverer_from(&store, &receiver.url(), "second", false);
    wait_accepted(&inbox, 4).await;
    second.shutdown().await;

    let log = deliverable(&store).await;
    assert_eq!(log.len(), 7);
    check_order_and_completeness(&inbox, &log[3..]);
    assert!(
        inbox.received().iter().all(|r| r.seq > head),
        "a purchase from before the endpoint was sent"
    );
    receiver.stop().await;
    server.stop().await;
}

async fn two_deliverers_never_deliver_at_once(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let store = server.api.store().clone();
    let drop = server.create_drop("Shared", 1_000, 60.0).await;
    let drop_id = drop["id"].as_str().unwrap().to_owned();
    purchases(&server, &drop_id, 0, 30).await;
    let log = deliverable(&store).await;

    // Each request takes a while, so two senders at once would overlap.
    let inbox = Inbox::new(|_| Answer::Ok, Duration::from_millis(30));
    let receiver = Receiver::start(inbox.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let (a, _) = deliverer(&store, &receiver.url(), "a");
    let (b, _) = deliverer(&store, &receiver.url(), "b");
    wait_accepted(&inbox, 10).await;

    // Both are running; one holds the cursor and only it has sent.
    let senders: BTreeSet<String> = inbox
        .received()
        .iter()
        .map(|r| r.instance.clone())
        .collect();
    assert_eq!(senders.len(), 1, "both delivered: {senders:?}");
    let holder = senders.into_iter().next().unwrap();
    let (holding, other, other_name) = if holder == "a" {
        (a, b, "b")
    } else {
        (b, a, "a")
    };
    assert!(holding.status()[0].delivering);
    assert!(!other.status()[0].delivering);

    // The holder stops and gives the cursor up: the other takes over.
    holding.shutdown().await;
    wait_accepted(&inbox, log.len()).await;
    other.shutdown().await;

    check_order_and_completeness(&inbox, &log);
    let received = inbox.received();
    assert_eq!(
        inbox.max_in_flight.load(Ordering::SeqCst),
        1,
        "two requests were in flight at once"
    );
    // One run from the holder, then one from the other: never interleaved.
    let switches = received
        .windows(2)
        .filter(|w| w[0].instance != w[1].instance)
        .count();
    assert_eq!(switches, 1, "senders interleaved");
    assert_eq!(received.last().unwrap().instance, other_name);
    assert!(received.len() <= log.len() + 1);
    receiver.stop().await;
    server.stop().await;
}

fn options(args: &[&str]) -> web_drop_options::Options {
    web_drop_options::Options::try_parse_from(
        std::iter::once("web_drop").chain(args.iter().copied()),
    )
    .expect("options parse")
}

#[test]
fn web_drop_needs_a_secret_for_webhooks() {
    assert!(options(&[]).webhooks().unwrap().is_none());
    let err = options(&["--webhook", "https://shop.example/hook"])
        .webhooks()
        .unwrap_err();
    assert!(err.contains("--webhook-secret"), "{err}");
    let err = options(&[
        "--webhook",
        "https://shop.example/hook",
        "--webhook-secret",
        "short",
    ])
    .webhooks()
    .unwrap_err();
    assert!(err.contains("at least 32 bytes"), "{err}");
    assert!(
        options(&[
            "--webhook",
            "https://shop.example/a",
            "--webhook",
            "http://127.0.0.1:9000/b",
            "--webhook-secret",
            SECRET,
        ])
        .webhooks()
        .unwrap()
        .is_some()
    );
}

#[test]
fn web_drop_starts_new_webhooks_where_told() {
    let with = |start: &str| {
        web_drop_options::Options::try_parse_from([
            "web_drop",
            "--webhook",
            "https://shop.example/hook",
            "--webhook-secret",
            SECRET,
            "--webhook-start",
            start,
        ])
    };
    for start in ["oldest", "now"] {
        assert!(with(start).expect(start).webhooks().unwrap().is_some());
    }
    assert!(with("yesterday").is_err());
}

#[test]
fn web_drop_refuses_bad_webhook_urls_without_echoing_them() {
    for bad in ["ftp://shop.example/hook?token=hush", "not a url hush"] {
        let err = options(&[
            "--webhook",
            "https://shop.example/ok",
            "--webhook",
            bad,
            "--webhook-secret",
            SECRET,
        ])
        .webhooks()
        .unwrap_err();
        assert!(err.starts_with("--webhook #2"), "{err}");
        assert!(!err.contains("hush"), "{err}");
    }
    let err = options(&[
        "--webhook",
        "https://shop.example/hook",
        "--webhook-secret",
        SECRET,
        "--webhook-timeout-seconds",
        "0",
    ])
    .webhooks()
    .unwrap_err();
    assert!(err.contains("--webhook-timeout-seconds"), "{err}");
    // The secret never shows in the options' debug output.
    let opts = options(&["--webhook-secret", SECRET]);
    assert!(!format!("{opts:?}").contains(SECRET));
}

/// Given to the API's builder, deliverers start with it, report their
/// figures on its `/metrics`, and its shutdown stops them after they gave
/// their cursor up: another holder claims it at once, although the lease
/// is far from over.
async fn webhooks_run_and_stop_with_the_api(factory: StoreFactory) {
    let inbox = Inbox::new(|_| Answer::Ok, Duration::ZERO);
    let receiver = Receiver::start(inbox.clone(), "127.0.0.1:0".parse().unwrap()).await;
    let backend = factory().await;
    let database_url = backend.database_url.clone();
    let store = backend.store.clone();
    let hooks = Webhooks::builder()
        .endpoint(&receiver.url())
        .unwrap()
        .secret(SECRET)
        .unwrap()
        .poll_interval(Duration::from_millis(100))
        .lease(Duration::from_secs(600))
        .header(INSTANCE_HEADER, "api")
        .unwrap();
    let server = TestServer::configured(backend, Settings::default(), |b| b.webhooks(hooks)).await;
    let drop = server.create_drop("With the API", 10, 60.0).await;
    purchases(&server, drop["id"].as_str().unwrap(), 0, 3).await;
    wait_accepted(&inbox, 3).await;
    check_order_and_completeness(&inbox, &deliverable(&store).await);

    // The cursor moves after the endpoint's answer arrives: wait for it,
    // since a delivery still in flight at shutdown is sent again later (as
    // documented), and this test is about what shutdown keeps.
    let last = *inbox.accepted().last().unwrap();
    let deadline = tokio::time::Instant::now() + WITHIN;
    let status = loop {
        let status = server.api.webhooks().expect("the API runs them").status();
        assert_eq!(status.len(), 1);
        if status[0].position >= Some(last) {
            break status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "cursor not at {last} within {WITHIN:?}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status[0].delivering, "{status:?}");
    let cursor = status[0].cursor.clone();
    let metrics = server
        .http
        .get(format!("http://{}/metrics", server.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("dropkit_webhook_deliveries_total"),
        "the API's metrics lack the webhooks':\n{metrics}"
    );

    server.stop().await;
    // The server's store is closed now; a PostgreSQL one is read again
    // through a store of its own.
    let after: Arc<dyn InventoryStore> = match database_url {
        Some(url) => Arc::new(
            drop_store_postgres::PgStore::connect(&url)
                .await
                .expect("the database is still there"),
        ),
        None => store,
    };
    let claim = after
        .claim_cursor(&cursor, uuid::Uuid::new_v4(), Duration::from_secs(60))
        .await
        .expect("claims");
    let claim = claim.expect("the API's shutdown gave the cursor up");
    assert!(claim.position >= last, "{claim:?} behind {last}");
    after.close().await;
    receiver.stop().await;
}
