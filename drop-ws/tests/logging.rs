//! A server fault is logged once, by the error middleware, with its
//! cause; turning an error into an answer logs nothing.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::response::IntoResponse;
use drop_core::DropError;
use support::{builder, call};

/// Log lines at `WARN` and above, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

#[tokio::test(flavor = "current_thread")]
async fn a_5xx_is_logged_once_with_its_cause() {
    let api = builder().build().await.unwrap();
    let app = api.router();
    api.drain();
    let (captured, _guard) = capture();
    let (status, body) = call(&app, "GET", "/api/health/ready", None, false).await;
    assert_eq!(status, 503, "{body}");
    let lines = captured.lines();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains("/api/health/ready"), "{}", lines[0]);
    assert!(lines[0].contains("status=503"), "{}", lines[0]);
    assert!(lines[0].contains("draining"), "the cause: {}", lines[0]);
    assert!(
        !body.contains("draining"),
        "the cause stays out of the answer"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn converting_an_error_logs_nothing() {
    let (captured, _guard) = capture();
    let err = DropError::Unavailable {
        store: "test",
        source: "connection refused by 10.1.2.3".into(),
    };
    let res = drop_ws::ApiError::from(err).into_response();
    assert_eq!(res.status(), 503);
    assert_eq!(captured.lines(), Vec::<String>::new());
}
