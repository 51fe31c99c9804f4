//! Shared by the web benches: one HTTP/1.1 keep-alive connection per
//! caller (so "N connections" means N sockets), and number formatting.

#![allow(dead_code)]

use std::net::SocketAddr;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;

/// One keep-alive HTTP/1.1 connection.
pub(crate) struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

impl Conn {
    pub(crate) async fn open(addr: SocketAddr) -> Conn {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Conn {
            sender,
            host: addr.to_string(),
        }
    }

    /// Sends one request and reads the whole answer; returns the status.
    pub(crate) async fn send(&mut self, method: Method, path: &str, body: Option<String>) -> u16 {
        self.send_read(method, path, body).await.0
    }

    /// Sends one request; returns the status and the body.
    pub(crate) async fn send_read(
        &mut self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> (u16, String) {
        self.send_as(method, path, body, None).await
    }

    /// Sends one request with `Authorization: Bearer <token>` when given;
    /// returns the status and the body.
    pub(crate) async fn send_as(
        &mut self,
        method: Method,
        path: &str,
        body: Option<String>,
        token: Option<&str>,
    ) -> (u16, String) {
        self.sender.ready().await.expect("connection ready");
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host);
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("request");
        let res = self.sender.send_request(req).await.expect("response");
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// Serves `api`'s router on an ephemeral loopback port (with the peer
/// address, as `web_drop` serves it) until the returned token is
/// cancelled; the task then stops the API's background work too.
pub(crate) async fn serve(
    api: drop_ws::DropApi,
) -> (
    SocketAddr,
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = api.router();
    let stop = tokio_util::sync::CancellationToken::new();
    let until = stop.clone();
    let served = tokio::spawn(async move {
        let api = api;
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(until.cancelled_owned())
        .await
        .unwrap();
        api.cancel_token().cancel();
    });
    (addr, stop, served)
}

/// Microseconds as milliseconds with two decimals.
pub(crate) fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}
