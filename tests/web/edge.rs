//! Bounds at the edge, on a real server over real sockets: header
//! timeouts, connection caps, and the WebSocket's origin check, caps,
//! pings and frame size limit.
//!
//! Clients come from several addresses of this machine (any address in
//! 127.0.0.0/8 is the loopback), so "one address" and "another address"
//! are real peers to the server.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use drop_ws::{DropApi, DropApiBuilder, DropServer};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{WebSocketStream, client_async};

use crate::support::{TOKEN, memory_store};

/// Far above what anything here takes; only a failure waits this long.
const WAIT: Duration = Duration::from_secs(30);

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const BUYER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// A request whose headers never end.
const HALF_SENT: &[u8] = b"GET /api/drops HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1\r\n";

struct Edge {
    addr: SocketAddr,
    server: DropServer,
}

impl Edge {
    /// A server over the in-memory store, configured by `configure`,
    /// served by `DropApi::serve`.
    async fn start(configure: impl FnOnce(DropApiBuilder) -> DropApiBuilder) -> Self {
        let backend = memory_store().await;
        let builder = DropApi::builder(backend.store)
            .admin_token(TOKEN)
            .clock(backend.clock);
        let api = configure(builder).build().await.expect("api builds");
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = api.serve(listener, api.router()).expect("server starts");
        Self {
            addr: SocketAddr::new(ATTACKER, port),
            server,
        }
    }

    async fn stop(self) {
        self.server.shutdown().await.expect("server ran");
    }

    /// A TCP connection from `from`.
    async fn connect_from(&self, from: IpAddr) -> TcpStream {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(from, 0)).unwrap();
        socket.connect(self.addr).await.expect("connects")
    }

    /// Opens `n` connections from `from`, each with a half-sent request.
    async fn slowloris(&self, from: IpAddr, n: usize) -> Vec<TcpStream> {
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            let mut conn = self.connect_from(from).await;
            // The server may have closed it already (over a cap).
            let _ = conn.write_all(HALF_SENT).await;
            conns.push(conn);
        }
        conns
    }

    /// `GET path` on a fresh connection from `from`: the status, or
    /// `None` when the server closed the connection without answering.
    async fn get_from(&self, from: IpAddr, path: &str) -> Option<u16> {
        let mut conn = self.connect_from(from).await;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        conn.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        tokio::time::timeout(WAIT, conn.read_to_end(&mut answer))
            .await
            .expect("the server answers or closes")
            .ok()?;
        let answer = String::from_utf8_lossy(&answer);
        answer.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
    }

    /// Like [`get_from`](Self::get_from), retried until it is answered:
    /// the server sees a connection's end only some time after it.
    async fn get_from_eventually(&self, from: IpAddr, path: &str) -> u16 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.get_from(from, path).await {
                return status;
            }
            assert!(Instant::now() < deadline, "never answered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A WebSocket handshake from `from` with `origin`.
    async fn ws_from(
        &self,
        from: IpAddr,
        origin: Option<&str>,
    ) -> Result<WebSocketStream<TcpStream>, WsError> {
        let mut request = format!("ws://{}/api/ws", self.addr)
            .into_client_request()
            .unwrap();
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("Origin", HeaderValue::from_str(origin).unwrap());
        }
        let tcp = self.connect_from(from).await;
        client_async(request, tcp).await.map(|(ws, _)| ws)
    }
}

/// Whether the server closes `conn` within `within` (end of stream or a
/// reset); whatever it sends first is read and skipped.
async fn closed_within(conn: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// How many of `conns` the server still holds open: those it closed have
/// their end already waiting, so a short look tells them apart.
async fn still_open(conns: &mut [TcpStream]) -> usize {
    let looks = conns
        .iter_mut()
        .map(|conn| closed_within(conn, Duration::from_millis(500)));
    futures::future::join_all(looks)
        .await
        .into_iter()
        .filter(|closed| !closed)
        .count()
}

/// The status and error code of a refused handshake.
fn refusal(result: Result<WebSocketStream<TcpStream>, WsError>) -> (u16, String, Option<String>) {
    let Err(WsError::Http(response)) = result else {
        panic!("the handshake should be refused");
    };
    let body: serde_json::Value =
        serde_json::from_slice(response.body().as_deref().unwrap_or_default()).expect("JSON error");
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        response.status().as_u16(),
        body["error"].as_str().unwrap_or_default().to_owned(),
        retry_after,
    )
}

#[tokio::test]
async fn half_sent_requests_from_one_address_are_capped_and_others_still_served() {
    let edge = Edge::start(|b| {
        b.conn_max_per_ip(20)
            .conn_max(1_000)
            .header_timeout(Duration::from_secs(600))
    })
    .await;
    let mut flood = edge.slowloris(ATTACKER, 300).await;

    // Connections are accepted in order, so once this one is answered the
    // server has dealt with every one before it.
    assert_eq!(edge.get_from(BUYER, "/api/drops").await, Some(200));
    assert_eq!(still_open(&mut flood).await, 20, "the per-IP cap holds");
    assert_eq!(
        edge.get_from(ATTACKER, "/api/drops").await,
        None,
        "one more from the same address is closed unanswered"
    );

    // Its slots come back once its connections close.
    drop(flood);
    assert_eq!(edge.get_from_eventually(ATTACKER, "/api/drops").await, 200);
    edge.stop().await;
}

#[tokio::test]
async fn connections_over_the_total_cap_are_closed_until_some_close() {
    let edge = Edge::start(|b| {
        b.conn_max_per_ip(0)
            .conn_max(30)
            .header_timeout(Duration::from_secs(600))
    })
    .await;
    let mut flood = edge.slowloris(ATTACKER, 100).await;
    assert_eq!(edge.get_from(BUYER, "/api/drops").await, None, "full");
    assert_eq!(still_open(&mut flood).await, 30, "the total cap holds");

    flood.truncate(20);
    assert_eq!(edge.get_from_eventually(BUYER, "/api/drops").await, 200);
    // Shutdown lets requests in flight finish, half-sent ones too (until
    // the header timeout).
    drop(flood);
    edge.stop().await;
}

#[tokio::test]
async fn a_half_sent_request_and_an_idle_connection_are_closed_after_the_header_timeout() {
    let timeout = Duration::from_millis(500);
    let edge = Edge::start(|b| b.header_timeout(timeout)).await;

    let mut slow = edge.connect_from(ATTACKER).await;
    let started = Instant::now();
    slow.write_all(HALF_SENT).await.unwrap();
    assert!(
        closed_within(&mut slow, WAIT).await,
        "half-sent request closed"
    );
    assert!(started.elapsed() >= timeout, "not before the timeout");

    // A kept-alive connection waiting for its next request is closed too.
    let mut idle = edge.connect_from(BUYER).await;
    idle.write_all(b"GET /api/health/live HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&answer).contains("\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, idle.read(&mut buf))
            .await
            .expect("answered")
            .unwrap();
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&buf[..n]);
    }
    let answered = Instant::now();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    assert!(
        closed_within(&mut idle, WAIT).await,
        "idle connection closed"
    );
    assert!(answered.elapsed() >= timeout, "not before the timeout");
    edge.stop().await;
}

#[tokio::test]
async fn websockets_from_foreign_origins_are_refused() {
    let edge = Edge::start(|b| b.cors_origin("http://shop.example").unwrap()).await;
    let (status, code, _) = refusal(edge.ws_from(BUYER, Some("http://evil.example")).await);
    assert_eq!((status, code.as_str()), (403, "FORBIDDEN"));
    let (status, _, _) = refusal(edge.ws_from(BUYER, Some("null")).await);
    assert_eq!(status, 403);

    // Allowed: a configured origin, the site's own, and non-browsers.
    edge.ws_from(BUYER, Some("http://shop.example"))
        .await
        .expect("configured origin");
    let own = format!("http://{}", edge.addr);
    edge.ws_from(BUYER, Some(&own)).await.expect("same origin");
    edge.ws_from(BUYER, None).await.expect("no Origin");
    edge.stop().await;
}

#[tokio::test]
async fn websockets_over_the_caps_are_refused_with_503_while_others_connect() {
    let edge = Edge::start(|b| b.ws_max_per_ip(3).ws_max(5)).await;
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(edge.ws_from(ATTACKER, None).await.expect("under the cap"));
    }
    let (status, code, retry_after) = refusal(edge.ws_from(ATTACKER, None).await);
    assert_eq!((status, code.as_str()), (503, "UNAVAILABLE"));
    assert!(retry_after.is_some(), "with Retry-After");

    // Another address still connects, up to the total.
    let _second: Vec<_> = futures::future::join_all((0..2).map(|_| edge.ws_from(BUYER, None)))
        .await
        .into_iter()
        .map(|ws| ws.expect("another address connects"))
        .collect();
    let (status, _, _) = refusal(edge.ws_from(OTHER, None).await);
    assert_eq!(status, 503, "over the total");

    // A socket that closes gives its place back.
    let mut gone = first.pop().unwrap();
    gone.close(None).await.unwrap();
    let deadline = Instant::now() + WAIT;
    while edge.ws_from(OTHER, None).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the closed socket's place never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    edge.stop().await;
}

#[tokio::test]
async fn a_websocket_that_never_answers_pings_is_closed_and_one_that_does_stays() {
    let idle = Duration::from_secs(2);
    let edge = Edge::start(|b| {
        b.ws_ping_interval(Duration::from_millis(250))
            .ws_idle_timeout(idle)
    })
    .await;

    // A raw socket: it completes the handshake, then never reads, so it
    // never answers a ping.
    let mut silent = edge.connect_from(ATTACKER).await;
    silent
        .write_all(
            b"GET /api/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    let opened = Instant::now();
    let mut answering = edge.ws_from(BUYER, None).await.expect("connects");

    // The answering client reads (and so answers pings) for twice the
    // idle timeout; the server must keep it.
    let mut pings = 0;
    let until = Instant::now() + idle * 2;
    while let Ok(msg) = tokio::time::timeout_at(until, answering.next()).await {
        match msg {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(Message::Text(_))) => {}
            other => panic!("a client answering pings was closed: {other:?}"),
        }
    }
    assert!(pings >= 2, "the server pings ({pings} pings)");

    let mut received = Vec::new();
    tokio::time::timeout(WAIT, silent.read_to_end(&mut received))
        .await
        .expect("the silent socket is closed")
        .ok();
    assert!(opened.elapsed() >= idle, "not before the idle timeout");
    let frames = &received[find(&received, b"\r\n\r\n").expect("handshake answered") + 4..];
    assert!(
        opcodes(frames).contains(&0x9),
        "it was pinged before being closed"
    );
    edge.stop().await;
}

#[tokio::test]
async fn an_oversized_inbound_frame_closes_the_websocket() {
    let edge = Edge::start(|b| b).await;

    let mut small = edge.ws_from(BUYER, None).await.expect("connects");
    small.send(Message::text("x".repeat(100))).await.unwrap();
    small
        .send(Message::Ping(b"still here".to_vec().into()))
        .await
        .unwrap();
    let answered = tokio::time::timeout(WAIT, async {
        loop {
            match small.next().await {
                Some(Ok(Message::Pong(payload))) => return payload.as_ref() == b"still here",
                Some(Ok(_)) => {}
                _ => return false,
            }
        }
    })
    .await
    .expect("an answer");
    assert!(answered, "a small frame leaves the socket open");

    let mut big = edge.ws_from(BUYER, None).await.expect("connects");
    big.send(Message::text("x".repeat(64 * 1024)))
        .await
        .unwrap();
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match big.next().await {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a 64 KiB frame closes the socket");
    edge.stop().await;
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The opcodes of the unmasked frames in `bytes` (a cut-off last frame
/// counts too).
fn opcodes(mut bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while bytes.len() >= 2 {
        out.push(bytes[0] & 0x0f);
        let (len, header) = match bytes[1] & 0x7f {
            126 if bytes.len() >= 4 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 if bytes.len() >= 10 => (
                usize::try_from(u64::from_be_bytes(bytes[2..10].try_into().unwrap())).unwrap(),
                10,
            ),
            126 | 127 => break,
            n => (usize::from(n), 2),
        };
        bytes = bytes.get(header + len..).unwrap_or_default();
    }
    out
}
