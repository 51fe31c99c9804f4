//! Fan-out: 1,000 and 10,000 WebSocket clients connected while reserves
//! arrive at a steady rate; dropkit's hub against two plain axum servers
//! measured in the same run on the same machine:
//!
//! - **baseline**: tokio broadcast, one frame per change per client
//!   (default settings), the way most apps start;
//! - **floor**: the least a ticked fan-out can do here: a counter behind a
//!   mutex, one frame serialized per tick (the same 50 ms) into a `watch`,
//!   and per client a task that sends the latest frame, with nothing else
//!   (no store, no events, no hub, no middleware). Its p99 is what this
//!   machine's sockets and scheduler cost for one round of writes to every
//!   client, plus the tick.
//!
//! ```text
//! cargo bench --bench fanout
//! FANOUT_CLIENTS=1000 FANOUT_RATE=2000 FANOUT_SECS=3 cargo bench --bench fanout
//! FANOUT_SERVERS=dropkit cargo bench --bench fanout   # one server only (no ratios)
//! ```
//!
//! Each server runs in a child process (this binary again, told its role
//! by `FANOUT_ROLE`), so its memory can be read from `/proc` apart from
//! the clients'. Reported per case:
//!
//! - **commit → last client**: for a sample of reserves, the time from
//!   sending the reserve to the moment the *last* client holds a stock
//!   value at least that new (p50, p99); a reserve some client never saw
//!   counts as undelivered;
//! - **msgs/client/s**: stock messages each client received per second
//!   of storm;
//! - **latest**: clients that ended the storm holding the final stock;
//! - **kB/conn**: server resident memory per idle connection.

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use hyper::Method;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use support::{Conn, ms};

const TOTAL: u32 = 1_000_000;
/// How many clients connect at once.
const CONNECT_PARALLEL: usize = 200;
/// How long clients get to catch up after the storm.
const DRAIN: Duration = Duration::from_secs(5);
/// Reserves sampled for the latency figures.
const SAMPLES: usize = 400;

fn main() {
    match std::env::var("FANOUT_ROLE").as_deref() {
        Ok("dropkit") => server::dropkit(),
        Ok("baseline") => server::baseline(),
        Ok("floor") => server::floor(),
        _ => driver(),
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Case {
    clients: usize,
    rate: u32,
    secs: f64,
}

struct Figures {
    p50_us: Option<u64>,
    p99_us: Option<u64>,
    undelivered: usize,
    sampled: usize,
    msgs_per_client_s: f64,
    latest: usize,
    clients: usize,
    kb_per_conn: f64,
    achieved_rate: f64,
    /// dropkit only: mean time from a committed stock change to the hub
    /// putting it on the board (its `hub_flush_delay_seconds`), the first
    /// stage of commit → last client; the rest is the round of writes.
    flush_mean_us: Option<u64>,
}

fn driver() {
    let clients: Vec<usize> = std::env::var("FANOUT_CLIENTS")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rate: u32 = env_or("FANOUT_RATE", 1000);
    let secs: f64 = env_or("FANOUT_SECS", 3.0);
    let most = clients.iter().copied().max().unwrap_or(0) as u64;
    raise_open_files(most + 1024);

    println!(
        "fanout: reserves at {rate}/s for {secs} s; dropkit tick {} ms; each server a child process",
        drop_ws::DEFAULT_TICK.as_millis()
    );
    println!(
        "{:<9} {:>7} {:>9} {:>9} {:>12} {:>14} {:>13} {:>9} {:>8}",
        "server",
        "clients",
        "p50 ms",
        "p99 ms",
        "undelivered",
        "msgs/client/s",
        "latest",
        "kB/conn",
        "rate/s"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut results = Vec::new();
    for &n in &clients {
        let case = Case {
            clients: n,
            rate,
            secs,
        };
        let mut pair = Vec::new();
        let roles =
            std::env::var("FANOUT_SERVERS").unwrap_or_else(|_| "baseline,floor,dropkit".into());
        for role in roles.split(',').map(str::trim) {
            let f = rt.block_on(run_case(role, &case));
            println!(
                "{:<9} {:>7} {:>9} {:>9} {:>12} {:>14.1} {:>13} {:>9.1} {:>8.0}",
                role,
                n,
                f.p50_us.map_or("-".into(), ms),
                f.p99_us.map_or("-".into(), ms),
                format!("{}/{}", f.undelivered, f.sampled),
                f.msgs_per_client_s,
                format!("{}/{}", f.latest, f.clients),
                f.kb_per_conn,
                f.achieved_rate
            );
            pair.push((role.to_owned(), f));
        }
        results.push((n, pair));
    }
    println!();
    let tick_cap = 1000.0 / drop_ws::DEFAULT_TICK.as_millis() as f64;
    for (n, pair) in &results {
        let find = |role: &str| pair.iter().find(|(r, _)| r == role).map(|(_, f)| f);
        let Some(ours) = find("dropkit") else {
            continue;
        };
        let ratio = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => format!("{:.2}x", a as f64 / b.max(1) as f64),
            _ => "n/a (left updates undelivered)".into(),
        };
        if let Some(base) = find("baseline") {
            println!(
                "{n} clients: dropkit p99 = {} of baseline's; memory per connection {:.2}x; messages per client {:.2}x",
                ratio(ours.p99_us, base.p99_us),
                ours.kb_per_conn / base.kb_per_conn.max(0.001),
                ours.msgs_per_client_s / base.msgs_per_client_s.max(0.001),
            );
        }
        if let Some(flush) = ours.flush_mean_us {
            println!(
                "{n} clients: dropkit stages: commit → board (hub, incl. the tick) mean {} ms; board → last client the rest of p50 {} / p99 {} ms",
                ms(flush),
                ours.p50_us.map_or("-".into(), ms),
                ours.p99_us.map_or("-".into(), ms),
            );
        }
        if let Some(floor) = find("floor") {
            println!(
                "{n} clients: dropkit p99 = {} of the floor's, p50 = {} (floor p99 {} ms: one tick plus one round of writes to every client on this machine)",
                ratio(ours.p99_us, floor.p99_us),
                ratio(ours.p50_us, floor.p50_us),
                floor.p99_us.map_or("-".into(), ms),
            );
        }
        let p99_ok = ours.p99_us.is_some_and(|p| p < 200_000) && ours.undelivered == 0;
        let msgs_ok = ours.msgs_per_client_s <= tick_cap + 1.0;
        let latest_ok = ours.latest == ours.clients;
        let mem_ok = ours.kb_per_conn <= 16.0;
        println!(
            "  targets: p99 < 200 ms {}; msgs/client/s ≤ 1/tick ({tick_cap:.0}) {}; every client ends on the latest stock {}; ≤ 16 kB/conn {}",
            yes(p99_ok),
            yes(msgs_ok),
            yes(latest_ok),
            yes(mem_ok)
        );
    }
}

fn yes(ok: bool) -> &'static str {
    if ok { "REACHED" } else { "NOT reached" }
}

/// Each client and each child server needs a descriptor per connection.
fn raise_open_files(needed: u64) {
    let (soft, hard) = rlimit::Resource::NOFILE.get().expect("read RLIMIT_NOFILE");
    if soft >= needed {
        return;
    }
    if hard < needed {
        panic!(
            "the open-files limit is {soft} (hard {hard}) but this bench needs {needed}: \
             raise it (ulimit -n) or set FANOUT_CLIENTS lower"
        );
    }
    rlimit::Resource::NOFILE
        .set(needed, hard)
        .expect("raise RLIMIT_NOFILE");
}

struct ServerProc {
    child: Child,
    addr: SocketAddr,
    drop_id: String,
}

impl ServerProc {
    fn spawn(role: &str) -> ServerProc {
        let exe = std::env::current_exe().expect("own path");
        let mut child = Command::new(exe)
            .env("FANOUT_ROLE", role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("server says ready");
        let mut parts = line.split_whitespace();
        assert_eq!(parts.next(), Some("READY"), "server said {line:?}");
        let addr = parts.next().unwrap().parse().unwrap();
        let drop_id = parts.next().unwrap().to_owned();
        ServerProc {
            child,
            addr,
            drop_id,
        }
    }

    fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read server status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        // Closing its stdin tells the server to exit.
        drop(self.child.stdin.take());
        if self.child.try_wait().ok().flatten().is_none() {
            std::thread::sleep(Duration::from_millis(200));
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// What one client heard: (when, in wall-clock µs, availableStock) of every stock value.
type Heard = Vec<(u64, u32)>;

/// Load connections sending reserves in parallel.
const LANES: usize = 16;

fn wall_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_micros() as u64
}

/// `createdAt` of a reserve answer, in µs since the epoch.
fn created_at_us(answer: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(answer).expect("JSON answer");
    let at: chrono::DateTime<chrono::Utc> = v["createdAt"]
        .as_str()
        .expect("createdAt")
        .parse()
        .expect("RFC 3339");
    at.timestamp_micros() as u64
}

fn available_in(text: &str) -> Option<u32> {
    let at = text.find("\"availableStock\":")? + "\"availableStock\":".len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

async fn run_case(role: &str, case: &Case) -> Figures {
    let server = ServerProc::spawn(role);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = server.rss_kb();

    // Connect every client.
    let stop = CancellationToken::new();
    let ready = Arc::new(AtomicU32::new(0));
    let url = format!("ws://{}/api/ws", server.addr);
    let mut handles = Vec::with_capacity(case.clients);
    let gate = Arc::new(tokio::sync::Semaphore::new(CONNECT_PARALLEL));
    for _ in 0..case.clients {
        let url = url.clone();
        let stop = stop.clone();
        let ready = ready.clone();
        let gate = gate.clone();
        handles.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.unwrap();
            let config = WebSocketConfig::default().read_buffer_size(4096);
            let (mut ws, _) =
                tokio_tungstenite::connect_async_with_config(&url, Some(config), false)
                    .await
                    .expect("client connects");
            drop(permit);
            ready.fetch_add(1, Ordering::SeqCst);
            let mut heard: Heard = Vec::new();
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    msg = ws.next() => match msg {
                        Some(Ok(Message::Text(text))) => {
                            if let Some(v) = available_in(text.as_str()) {
                                heard.push((wall_us(), v));
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                }
            }
            heard
        }));
    }
    while (ready.load(Ordering::SeqCst) as usize) < case.clients {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let the connections settle into idle, then weigh them.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = server.rss_kb();
    let kb_per_conn = rss_idle.saturating_sub(rss_before) as f64 / case.clients as f64;

    // The storm: reserves paced at the rate over a few connections, each a
    // new buyer. Every answer carries its commit time (`createdAt`, on the
    // wall clock this process shares with the server), so the k-th commit
    // in time is the one that left the stock at TOTAL - k.
    let storm_start = Instant::now();
    let storm_end = storm_start + Duration::from_secs_f64(case.secs);
    let storm_wall = wall_us();
    let per_lane = Duration::from_secs_f64(LANES as f64 / case.rate as f64);
    let serial = Arc::new(AtomicU32::new(0));
    let mut lanes = Vec::new();
    for lane in 0..LANES {
        let addr = server.addr;
        let drop_id = server.drop_id.clone();
        let serial = serial.clone();
        lanes.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            let mut commits = Vec::new();
            let mut next = storm_start + per_lane.mul_f64(lane as f64 / LANES as f64);
            while Instant::now() < storm_end {
                let now = Instant::now();
                if now < next {
                    tokio::time::sleep(next - now).await;
                }
                next += per_lane;
                let n = serial.fetch_add(1, Ordering::Relaxed);
                let body = format!(r#"{{"dropId":"{drop_id}","username":"user{n}"}}"#);
                let (status, answer) = conn
                    .send_read(Method::POST, "/api/reservations", Some(body))
                    .await;
                assert_eq!(status, 201, "reserve failed: {answer}");
                commits.push(created_at_us(&answer));
            }
            commits
        }));
    }
    let mut commits: Vec<u64> = Vec::new();
    for lane in lanes {
        commits.extend(lane.await.expect("load lane"));
    }
    commits.sort_unstable();
    let storm_took = storm_start.elapsed();
    let storm_end_wall = wall_us();
    let sent = commits;
    let final_value = TOTAL - sent.len() as u32;

    // Give clients time to catch up, then collect what they heard.
    let drain_end = Instant::now() + DRAIN;
    tokio::time::sleep(Duration::from_millis(300)).await;
    while Instant::now() < drain_end {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    let flush_mean_us = if role == "dropkit" {
        let mut conn = Conn::open(server.addr).await;
        let (_, text) = conn.send_read(Method::GET, "/metrics", None).await;
        let value = |name: &str| -> Option<f64> {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
        };
        match (
            value("dropkit_hub_flush_delay_seconds_sum "),
            value("dropkit_hub_flush_delay_seconds_count "),
        ) {
            (Some(sum), Some(n)) if n > 0.0 => Some((sum / n * 1e6) as u64),
            _ => None,
        }
    } else {
        None
    };
    let mut heard_all = Vec::with_capacity(case.clients);
    for h in handles {
        heard_all.push(h.await.expect("client task"));
    }
    drop(server);

    let window_msgs: usize = heard_all
        .iter()
        .map(|h| {
            h.iter()
                .filter(|(t, _)| *t >= storm_wall && *t <= storm_end_wall + 100_000)
                .count()
        })
        .sum();
    let msgs_per_client_s = window_msgs as f64 / case.clients as f64 / storm_took.as_secs_f64();
    let latest = heard_all
        .iter()
        .filter(|h| h.last().is_some_and(|(_, v)| *v == final_value))
        .count();

    // Latency to the last client, for a sample of reserves.
    let step = (sent.len() / SAMPLES).max(1);
    let mut lat = Vec::new();
    let mut undelivered = 0;
    let mut sampled = 0;
    for i in (0..sent.len()).step_by(step) {
        sampled += 1;
        let value = TOTAL - i as u32 - 1;
        let mut worst = 0u64;
        let mut missing = false;
        for h in &heard_all {
            // Values only fall during the storm: the first one at or below
            // `value` is the first time this client knew of reserve i.
            let at = h.partition_point(|(_, v)| *v > value);
            match h.get(at) {
                Some((t, _)) => worst = worst.max(t.saturating_sub(sent[i])),
                None => {
                    missing = true;
                    break;
                }
            }
        }
        if missing {
            undelivered += 1;
        } else {
            lat.push(worst);
        }
    }
    lat.sort_unstable();
    let pct = |q: f64| -> Option<u64> {
        if lat.is_empty() || undelivered * 100 > sampled {
            return None;
        }
        // Undelivered reserves count as slowest.
        let rank = ((sampled as f64 * q).ceil() as usize).saturating_sub(1);
        lat.get(rank).copied()
    };
    Figures {
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        undelivered,
        sampled,
        msgs_per_client_s,
        latest,
        clients: case.clients,
        kb_per_conn,
        achieved_rate: sent.len() as f64 / storm_took.as_secs_f64(),
        flush_mean_us,
    }
}

/// The two servers, each run as a child process.
mod server {
    use super::*;

    use axum::Router;
    use axum::extract::State;
    use axum::extract::ws::{Message as AxMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
    use axum::http::StatusCode;
    use axum::response::Response;
    use axum::routing::{get, post};
    use axum::serve::ListenerExt;
    use drop_core::{ExpiryScheduler, InventoryStore, Money, NewDrop};
    use drop_store_memory::MemoryStore;
    use drop_ws::DropApi;
    use futures::SinkExt;
    use tokio::sync::broadcast;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// Exits when the driver closes our stdin (or dies).
    fn exit_with_parent() {
        std::thread::spawn(|| {
            let mut sink = [0u8; 64];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            std::process::exit(0);
        });
    }

    fn announce(addr: SocketAddr, drop_id: &str) {
        let mut out = std::io::stdout();
        writeln!(out, "READY {addr} {drop_id}").unwrap();
        out.flush().unwrap();
    }

    pub(super) fn dropkit() {
        exit_with_parent();
        runtime().block_on(async {
            let store = Arc::new(MemoryStore::new());
            let clock = store.clock();
            let drop = store
                .create_drop(
                    NewDrop::new("Fanout", Money::from_minor(100).unwrap(), TOTAL)
                        .hold(Duration::from_secs(3600)),
                )
                .await
                .unwrap();
            let store: Arc<dyn InventoryStore> = store;
            // Every client comes from this machine: no per-address caps.
            let api = DropApi::builder(store.clone())
                .admin_token("bench")
                // The load names its buyers in the body, as load tools do.
                .claimed_identity()
                .ws_max_per_ip(0)
                .ws_max(0)
                .clock(clock.clone())
                .build()
                .await
                .unwrap();
            ExpiryScheduler::new(store)
                .clock(clock)
                .spawn(CancellationToken::new());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            announce(listener.local_addr().unwrap(), &drop.drop.id.to_string());
            // Small frames must not wait for the previous one's ACK.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(
                listener,
                api.router()
                    .into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
    }

    #[derive(Clone)]
    struct Plain {
        available: Arc<std::sync::Mutex<u32>>,
        tx: broadcast::Sender<String>,
        drop_id: Arc<str>,
    }

    /// The plain way: every change becomes one frame for every client.
    pub(super) fn baseline() {
        exit_with_parent();
        runtime().block_on(async {
            let drop_id: Arc<str> = uuid::Uuid::new_v4().to_string().into();
            let state = Plain {
                available: Arc::new(std::sync::Mutex::new(TOTAL)),
                tx: broadcast::channel(1024).0,
                drop_id: drop_id.clone(),
            };
            let app = Router::new()
                .route("/api/reservations", post(reserve))
                .route("/api/ws", get(ws))
                .with_state(state);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            announce(listener.local_addr().unwrap(), &drop_id);
            axum::serve(listener, app).await.unwrap();
        });
    }

    #[derive(Clone)]
    struct Floor {
        available: Arc<std::sync::Mutex<u32>>,
        board: tokio::sync::watch::Sender<Utf8Bytes>,
        drop_id: Arc<str>,
    }

    /// The least a ticked fan-out does: one frame per tick, the latest
    /// value, serialized once; per client, a task that sends it.
    pub(super) fn floor() {
        exit_with_parent();
        runtime().block_on(async {
            let drop_id: Arc<str> = uuid::Uuid::new_v4().to_string().into();
            let state = Floor {
                available: Arc::new(std::sync::Mutex::new(TOTAL)),
                board: tokio::sync::watch::channel(Utf8Bytes::from_static("")).0,
                drop_id: drop_id.clone(),
            };
            let ticker = state.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(drop_ws::DEFAULT_TICK);
                let mut last = TOTAL;
                loop {
                    tick.tick().await;
                    let available = *ticker.available.lock().unwrap();
                    if available != last {
                        last = available;
                        let frame = stock_frame(&ticker.drop_id, available);
                        ticker.board.send_replace(frame.into());
                    }
                }
            });
            let app = Router::new()
                .route("/api/reservations", post(floor_reserve))
                .route("/api/ws", get(floor_ws))
                .with_state(state);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            announce(listener.local_addr().unwrap(), &drop_id);
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, app).await.unwrap();
        });
    }

    /// A `stock` frame of the real server's shape (a drop of one variant,
    /// its stock listed per variant too), so the baselines send as many
    /// bytes per frame as the server does.
    fn stock_frame(drop_id: &str, available: u32) -> String {
        let reserved = TOTAL - available;
        format!(
            r#"{{"type":"stock","serverTime":"2030-01-01T00:00:00.000Z","dropId":"{drop_id}","availableStock":{available},"reservedStock":{reserved},"soldStock":0,"totalStock":{TOTAL},"variants":[{{"id":"{drop_id}","availableStock":{available},"reservedStock":{reserved},"soldStock":0,"totalStock":{TOTAL}}}]}}"#
        )
    }

    async fn floor_reserve(State(s): State<Floor>) -> (StatusCode, String) {
        // Stamped under the lock, so commit times order the stock values.
        let created_at = {
            let mut available = s.available.lock().unwrap();
            *available -= 1;
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        };
        (
            StatusCode::CREATED,
            format!(r#"{{"createdAt":"{created_at}"}}"#),
        )
    }

    async fn floor_ws(State(s): State<Floor>, ws: WebSocketUpgrade) -> Response {
        ws.read_buffer_size(4096)
            .write_buffer_size(0)
            .on_upgrade(move |mut socket| async move {
                let mut board = s.board.subscribe();
                while board.changed().await.is_ok() {
                    let frame = board.borrow_and_update().clone();
                    if socket.send(AxMessage::Text(frame)).await.is_err() {
                        break;
                    }
                }
            })
    }

    async fn reserve(State(s): State<Plain>) -> (StatusCode, String) {
        let mut available = s.available.lock().unwrap();
        *available -= 1;
        let created_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let msg = stock_frame(&s.drop_id, *available);
        let _ = s.tx.send(msg);
        (
            StatusCode::CREATED,
            format!(r#"{{"createdAt":"{created_at}"}}"#),
        )
    }

    async fn ws(State(s): State<Plain>, ws: WebSocketUpgrade) -> Response {
        ws.on_upgrade(move |socket| client(socket, s))
    }

    async fn client(socket: WebSocket, s: Plain) {
        let (mut sender, mut receiver) = socket.split();
        let mut rx = s.tx.subscribe();
        let mut send_task = tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(msg) => {
                        if sender.send(AxMessage::text(msg)).await.is_err() {
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        let mut recv_task =
            tokio::spawn(async move { while let Some(Ok(_)) = receiver.next().await {} });
        tokio::select! {
            _ = &mut send_task => recv_task.abort(),
            _ = &mut recv_task => send_task.abort(),
        }
    }
}
