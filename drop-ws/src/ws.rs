//! `GET /api/ws`: one task per client, sending the snapshot and then the
//! hub's frames; the client only ever needs to listen.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use drop_core::{Buyer, DropId};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::{BroadcastStream, WatchStream};

use crate::caller::{Head, Viewer};
use crate::caps::{Over, Slot};
use crate::error::{ApiError, ErrorBody};
use crate::hub::{Frame, Hub, PrivateFeed, StockBoard};
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
/// `dropCreated`, and to a signed-in buyer's own sockets `holdExpired`,
/// `holdReleased`, `holdPurchased`); clients send nothing.
#[utoipa::path(
    get, path = "/api/ws", operation_id = "liveFeed",
    responses(
        (status = 101, description = "Switching to WebSocket. Every text frame is a \
            [`WsMessage`](#/components/schemas/WsMessage): first a `snapshot`, then `stock`, \
            `purchase` and `dropCreated` as they happen (an expiry shows as `stock`). A socket \
            opened with a session (its cookie, or `Authorization: Bearer`) also receives its \
            buyer's own `holdExpired`, `holdReleased` and `holdPurchased`."),
        (status = 400, description = "`BAD_REQUEST`: not a WebSocket handshake", body = ErrorBody),
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
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
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
        .on_upgrade(move |socket| tasks.track_future(client(socket, app, viewer, slot))))
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

/// The private feed of `buyer`'s socket, knowing their active holds.
async fn private_feed(app: &AppState, buyer: &Buyer) -> PrivateFeed {
    // Joined before the holds are listed, so a hold taken in between is
    // learnt from its creation; one that ends in between is only told by
    // the page's own clock.
    // Only the buyer's hold on each drop the hub keeps (live and
    // upcoming ones): one indexed lookup each, not a whole listing.
    let feed = app.hub.private_feed(&buyer.id);
    let lookups = app
        .hub
        .drop_ids()
        .into_iter()
        .map(|drop_id| app.store.active_hold(drop_id, &buyer.id));
    let mut holds = Vec::new();
    for found in futures::future::join_all(lookups).await {
        match found {
            Ok(hold) => holds.extend(hold.map(|h| h.id)),
            Err(err) => {
                tracing::debug!(error = %err, "socket opened without one of its buyer's holds")
            }
        }
    }
    feed.know(holds);
    feed
}

/// Serves one socket until it closes; `_slot` holds its place under the
/// caps until then.
async fn client(mut socket: WebSocket, app: AppState, viewer: Option<Buyer>, _slot: Slot) {
    let hub = app.hub.clone();
    hub.metrics().ws_connected();
    let _guard = Disconnect(hub.clone());
    let cancelled = app.cancel.clone().cancelled_owned();
    tokio::pin!(cancelled);
    let mut private = match &viewer {
        Some(buyer) => Some(private_feed(&app, buyer).await),
        None => None,
    };
    let mut live = Live::join(&hub);
    if !send(&mut socket, Message::Text(live.snapshot.clone())).await {
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
            Some(frame) = next_private(&mut private) => {
                if !send(&mut socket, Message::Text(frame)).await {
                    return;
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

/// The next private frame; pending forever for a socket without a feed.
async fn next_private(private: &mut Option<PrivateFeed>) -> Option<Frame> {
    match private {
        Some(feed) => feed.frames.recv().await,
        None => std::future::pending().await,
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
