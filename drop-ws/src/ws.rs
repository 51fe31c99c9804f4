//! `GET /api/ws`: one task per client, sending the snapshot and then the
//! hub's frames; the client only ever needs to listen.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use std::collections::HashMap;
use std::sync::Arc;

use drop_core::DropId;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::{BroadcastStream, WatchStream};

use crate::error::ErrorBody;
use crate::hub::{Frame, Hub, StockBoard};
use crate::state::AppState;

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

/// The live feed. Each text frame the server sends is one `WsMessage`
/// (see the schema of that name: `snapshot`, `stock`, `purchase`,
/// `dropCreated`); clients send nothing.
#[utoipa::path(
    get, path = "/api/ws", operation_id = "liveFeed",
    responses(
        (status = 101, description = "Switching to WebSocket. Every text frame is a \
            [`WsMessage`](#/components/schemas/WsMessage): first a `snapshot`, then `stock`, \
            `purchase` and `dropCreated` as they happen (an expiry shows as `stock`)."),
        (status = 400, description = "`BAD_REQUEST`: not a WebSocket handshake", body = ErrorBody),
        (status = 426, description = "`UPGRADE_REQUIRED`: the connection cannot be upgraded", body = ErrorBody),
    )
)]
pub(crate) async fn upgrade(State(app): State<AppState>, ws: WebSocketUpgrade) -> Response {
    // Tracked, so that shutdown waits until every socket has been told
    // the server is going away.
    let tasks = app.tasks.clone();
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| tasks.track_future(client(socket, app)))
}

/// What a client task listens to. Streams rather than one-shot `recv()`
/// futures: a pending registration survives the loop's other branches
/// firing, so each wake-up costs no re-registration on channels that
/// every client shares.
struct Live {
    snapshot: Frame,
    events: BroadcastStream<Frame>,
    stock: WatchStream<Arc<StockBoard>>,
    seen: HashMap<DropId, u64>,
}

impl Live {
    fn join(hub: &Hub) -> Live {
        let sub = hub.subscribe();
        Live {
            snapshot: sub.snapshot,
            events: BroadcastStream::new(sub.frames),
            stock: WatchStream::from_changes(sub.stock),
            seen: sub.seen,
        }
    }
}

async fn client(mut socket: WebSocket, app: AppState) {
    let hub = app.hub.clone();
    hub.metrics().ws_connected();
    let _guard = Disconnect(hub.clone());
    let cancelled = app.cancel.clone().cancelled_owned();
    tokio::pin!(cancelled);
    let mut live = Live::join(&hub);
    if !send(&mut socket, Message::Text(live.snapshot.clone())).await {
        return;
    }
    loop {
        tokio::select! {
            () = &mut cancelled => {
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
            board = live.stock.next() => {
                let Some(board) = board else {
                    // The hub stopped.
                    return;
                };
                // Only the newest value of each drop: whatever changed
                // while this client was busy is skipped, not queued.
                for (id, (version, frame)) in board.iter() {
                    let seen = live.seen.entry(*id).or_insert(0);
                    if *version > *seen {
                        *seen = *version;
                        if !send(&mut socket, Message::Text(frame.clone())).await {
                            return;
                        }
                    }
                }
            }
            frame = live.events.next() => match frame {
                Some(Ok(frame)) => {
                    if !send(&mut socket, Message::Text(frame)).await {
                        return;
                    }
                }
                Some(Err(BroadcastStreamRecvError::Lagged(missed))) => {
                    // Too far behind to catch up event by event: start
                    // again from a fresh snapshot.
                    tracing::debug!(missed, "slow WebSocket client resynchronised");
                    hub.metrics().resync();
                    live = Live::join(&hub);
                    if !send(&mut socket, Message::Text(live.snapshot.clone())).await {
                        return;
                    }
                }
                None => {
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
