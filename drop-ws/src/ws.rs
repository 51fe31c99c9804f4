//! `GET /api/ws`: one task per client, sending the snapshot and then the
//! hub's frames; the client only ever needs to listen.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use tokio::sync::broadcast::error::RecvError;

use crate::app::AppState;
use crate::hub::Hub;

/// Read buffer per connection. Clients send nothing but control frames, so
/// a small buffer keeps idle connections cheap (the default is 128 KiB).
const READ_BUFFER: usize = 4 * 1024;
/// Largest message a client may send.
const MAX_CLIENT_MESSAGE: usize = 4 * 1024;
/// A client whose socket takes longer than this to accept a frame is
/// stalled; it is closed so its buffers do not grow.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// WebSocket close code for "going away" (server shutting down).
const GOING_AWAY: u16 = 1001;
/// WebSocket close code for "try again later" (too slow to keep up).
const TRY_AGAIN_LATER: u16 = 1013;

pub(crate) async fn upgrade(State(app): State<AppState>, ws: WebSocketUpgrade) -> Response {
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| client(socket, app))
}

async fn client(mut socket: WebSocket, app: AppState) {
    let hub = app.hub.clone();
    hub.metrics().ws_connected();
    let _guard = Disconnect(hub.clone());
    let cancel = app.cancel.clone();
    let mut sub = hub.subscribe();
    if !send(&mut socket, Message::Text(sub.snapshot.clone())).await {
        return;
    }
    loop {
        tokio::select! {
            () = cancel.cancelled() => {
                let _ = socket
                    .send(Message::Close(Some(CloseFrame {
                        code: GOING_AWAY,
                        reason: "server shutting down".into(),
                    })))
                    .await;
                return;
            }
            incoming = socket.recv() => match incoming {
                // Pings are answered by the protocol layer; text is ignored.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            changed = sub.stock.changed() => {
                if changed.is_err() {
                    // The hub stopped.
                    return;
                }
                // Only the newest value of each drop: whatever changed
                // while this client was busy is skipped, not queued.
                for frame in sub.fresh_stock() {
                    if !send(&mut socket, Message::Text(frame)).await {
                        return;
                    }
                }
            }
            frame = sub.frames.recv() => match frame {
                Ok(frame) => {
                    if !send(&mut socket, Message::Text(frame)).await {
                        return;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    // Too far behind to catch up frame by frame: start
                    // again from a fresh snapshot.
                    tracing::debug!(missed, "slow WebSocket client resynchronised");
                    hub.metrics().resync();
                    sub = hub.subscribe();
                    if !send(&mut socket, Message::Text(sub.snapshot.clone())).await {
                        return;
                    }
                }
                Err(RecvError::Closed) => {
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame {
                            code: TRY_AGAIN_LATER,
                            reason: "live updates stopped".into(),
                        })))
                        .await;
                    return;
                }
            },
        }
    }
}

/// Sends one message; `false` when the client is gone or stalled.
async fn send(socket: &mut WebSocket, msg: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(msg)).await,
        Ok(Ok(()))
    )
}

struct Disconnect(Hub);

impl Drop for Disconnect {
    fn drop(&mut self) {
        self.0.metrics().ws_disconnected();
    }
}
