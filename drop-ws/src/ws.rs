//! `GET /api/ws`: one task per client, sending the snapshot and then the
//! hub's frames; the client only ever needs to listen.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use drop_core::{Buyer, BuyerId, DropId};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::{BroadcastStream, WatchStream};

use crate::caller::{Head, Viewer};
use crate::caps::{Over, Slot};
use crate::error::{ApiError, ErrorBody};
use crate::extract::QueryParams;
use crate::hub::{Batch, Frame, Hub, StockBoard, Subscription};
use crate::state::AppState;
use crate::wire::WsQuery;

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
/// `dropCreated`, `dropUpdated`, `waitlistMoved`, `resumed`, and to a
/// signed-in buyer's own sockets `holdExpired`, `holdReleased`,
/// `holdPurchased`, `purchaseCancelled`, `holdOffered`, `waitlistJoined`,
/// `waitlistLeft`); clients send nothing.
#[utoipa::path(
    get, path = "/api/ws", operation_id = "liveFeed",
    params(WsQuery),
    responses(
        (status = 101, description = "Switching to WebSocket. Every text frame is a \
            [`WsMessage`](#/components/schemas/WsMessage): first a `snapshot`, then `stock`, \
            `purchase`, `dropCreated`, `dropUpdated` and `waitlistMoved` as they happen (an \
            expiry shows as `stock`). A socket opened with a session (its cookie, or \
            `Authorization: Bearer`) also receives its buyer's own `holdExpired`, `holdReleased`, \
            `holdPurchased`, `purchaseCancelled`, `holdOffered` (units freed while they waited in \
            line, now held for them), `waitlistJoined` and `waitlistLeft`. Every frame but `stock` carries the `seq` of the change it \
            tells of (a snapshot, the position it shows). Opened with `?after=<the highest seq \
            seen>` when at most 1000 changes behind and none of them pruned, the socket starts \
            instead with the frames of the changes it missed, the `stock` of every live drop and \
            a `resumed` frame; otherwise with a `snapshot` as usual."),
        (status = 400, description = "`INVALID_INPUT`: `after` is not a whole number; \
            `BAD_REQUEST`: not a WebSocket handshake", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: the page's `Origin` is neither this site nor \
            one of the configured CORS origins", body = ErrorBody),
        (status = 426, description = "`UPGRADE_REQUIRED`: the connection cannot be upgraded", body = ErrorBody),
        (status = 503, description = "`UNAVAILABLE`: as many WebSockets are open as the server \
            takes, from this address or in all; try again after `Retry-After` seconds",
            body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
    )
)]
pub(crate) async fn upgrade(
    State(app): State<AppState>,
    head: Head,
    QueryParams(query): QueryParams<WsQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let after = match query.after.as_deref() {
        None => None,
        Some(text) => Some(text.parse::<u64>().map_err(|_| {
            ApiError::invalid("after", "must be a whole number (a `seq` the server sent)")
        })?),
    };
    if !app.origins.allows(head.headers()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "WebSockets from this origin are not allowed",
        ));
    }
    let slot = match head.client_ip {
        Some(client) => app.ws.caps.acquire(client, false),
        // Served without client addresses: only the total can be counted.
        None => app
            .ws
            .caps
            .acquire(std::net::Ipv6Addr::UNSPECIFIED.into(), true),
    }
    .map_err(|over| {
        ApiError::unavailable(match over {
            Over::PerIp => "too many WebSockets open from this address",
            Over::Total => "too many WebSockets open",
        })
    })?;
    // A socket opened with a session also hears of its buyer's own holds.
    let Viewer(viewer) = Viewer::of(&app, head.request(None)).await?;
    // Tracked, so that shutdown waits until every socket has been told
    // the server is going away.
    let tasks = app.tasks.clone();
    Ok(ws
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| tasks.track_future(client(socket, app, viewer, after, slot))))
}

/// What a client task listens to. Streams rather than one-shot `recv()`
/// futures: a pending registration survives the loop's other branches
/// firing, so each wake-up costs no re-registration on channels that
/// every client shares.
struct Live {
    first: Vec<Frame>,
    events: BroadcastStream<Arc<Batch>>,
    stock: WatchStream<Arc<StockBoard>>,
    seen: HashMap<DropId, u64>,
    floor: u64,
}

impl From<Subscription> for Live {
    fn from(sub: Subscription) -> Self {
        Live {
            first: sub.first,
            events: BroadcastStream::new(sub.frames),
            stock: WatchStream::from_changes(sub.stock),
            seen: sub.seen,
            floor: sub.floor,
        }
    }
}

/// Joins the stream where the client left it when it can (`after`), from
/// a snapshot otherwise.
async fn join(app: &AppState, after: Option<u64>, viewer: Option<&BuyerId>) -> Live {
    app.hub.caught_up().await;
    if let Some(after) = after
        && let Some(sub) = app.hub.resume(&*app.store, after, viewer).await
    {
        return sub.into();
    }
    app.hub.subscribe().into()
}

/// Sends the frames a (re)joined client starts with; `false` when it is
/// gone.
async fn send_first(socket: &mut WebSocket, live: &mut Live) -> bool {
    for frame in std::mem::take(&mut live.first) {
        if !send(socket, Message::Text(frame)).await {
            return false;
        }
    }
    true
}

/// Serves one socket until it closes; `_slot` holds its place under the
/// caps until then.
async fn client(
    mut socket: WebSocket,
    app: AppState,
    viewer: Option<Buyer>,
    after: Option<u64>,
    _slot: Slot,
) {
    let hub = app.hub.clone();
    hub.metrics().ws_connected();
    let _guard = Disconnect(hub.clone());
    let cancelled = app.cancel.clone().cancelled_owned();
    tokio::pin!(cancelled);
    // The buyer's own frames travel with the public ones; this socket
    // sends those of its buyer.
    let viewer = viewer.map(|b| b.id);
    let mut live = join(&app, after, viewer.as_ref()).await;
    if !send_first(&mut socket, &mut live).await {
        return;
    }
    let every = app.ws.ping_interval;
    let mut pings = tokio::time::interval_at(Instant::now() + every, every);
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut heard = Instant::now();
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
                // Pings are answered by the protocol layer; text is
                // ignored; a frame over the size limit is an error.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => heard = Instant::now(),
            },
            _ = pings.tick() => {
                // A client that answers nothing (gone without a FIN, or
                // holding a socket open without reading it) is let go.
                if app.ws.idle_timeout.is_some_and(|idle| heard.elapsed() >= idle) {
                    tracing::debug!("WebSocket closed: no answer to pings");
                    return;
                }
                if !send(&mut socket, Message::Ping(Default::default())).await {
                    return;
                }
            }
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
            batch = live.events.next() => match batch {
                Some(Ok(batch)) => match &*batch {
                    Batch::Frames(frames) => {
                        for f in frames {
                            if f.seq > live.floor
                                && f.is_for(viewer.as_ref())
                                && !send(&mut socket, Message::Text(f.frame.clone())).await
                            {
                                return;
                            }
                        }
                    }
                    Batch::Resync => {
                        live = hub.subscribe().into();
                        if !send_first(&mut socket, &mut live).await {
                            return;
                        }
                    }
                },
                Some(Err(BroadcastStreamRecvError::Lagged(missed))) => {
                    // Too far behind to catch up frame by frame: start
                    // again from a fresh snapshot.
                    tracing::debug!(missed, "slow WebSocket client resynchronised");
                    hub.metrics().resync();
                    live = hub.subscribe().into();
                    if !send_first(&mut socket, &mut live).await {
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
