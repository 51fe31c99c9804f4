//! The broadcast hub: turns the store's committed changes into WebSocket
//! frames, coalescing stock updates, and hands every new client a snapshot
//! (or the changes it missed) and a place in the stream with nothing
//! falling in between.
//!
//! One task follows the store's event bus and keeps a copy of every live
//! drop (stock, top buyers). Frames are serialized once and shared by all
//! clients, on two paths:
//!
//! - **stock** comes from the bus (`StockChanged`) and goes on a *board*
//!   holding only the latest frame per drop (a `watch` channel),
//!   republished at most once per tick. A client sends whatever is newest
//!   when it gets to run, so a slow client skips stale values instead of
//!   queueing them, and the work per tick is bounded by the number of
//!   clients, never by the number of changes;
//! - **discrete frames** (purchase, dropCreated, dropUpdated,
//!   waitlistMoved, and a buyer's own holdExpired / holdReleased /
//!   holdPurchased / purchaseCancelled / holdOffered / waitlistJoined /
//!   waitlistLeft) come from the store's durable event log, each carrying the `seq` of
//!   the entry it tells of. The bus only says *that* the log has news: any
//!   other bus event (or a lagged bus) marks the log dirty, and at most once
//!   per tick (at once after a quiet tick) the hub reads the entries after
//!   its cursor until it has caught up. So a lagging bus loses no discrete
//!   frame, and frames come in log order. Each read's frames go out as one
//!   batch on a bounded broadcast queue; a client that falls more than its
//!   capacity of batches behind rejoins with a fresh snapshot. A buyer's own
//!   frames travel in the same batches, marked with their buyer, so that
//!   one ordered stream carries everything with a `seq` and a socket sends
//!   only the ones meant for it.
//!
//! Either way a slow client costs the others nothing.
//!
//! The cost of following the log: one `events_after` per tick in which
//! something was logged, per instance (on PostgreSQL, one query), plus a
//! few follow-up reads each tick for about a second after the last one
//! that found something, because an entry may become readable a little
//! after its bus event (a concurrent transaction with a lower number still
//! committing). Holds taken by a reserve do not make the hub read: they
//! have no frame, and are read past with the next change that has one (a
//! hold offered from the waiting list has one: `holdOffered`).
//!
//! Every snapshot carries the hub's log position: every change numbered up
//! to it is reflected, every frame after it has a higher `seq`. A client
//! that reconnects with `?after=<the highest seq it saw>` is
//! [resumed](Hub::resume) instead, when the gap is small
//! ([`RESUME_MAX`]) and nothing in it was pruned: it gets the frames of the
//! entries it missed, the stock of every live drop, a `resumed` frame, and
//! then the live stream from the position it was caught up to. The missed
//! frames come from the latest ones the hub keeps ([`RECENT_FRAMES`]), so a
//! crowd reconnecting after a network blip costs the store nothing; only a
//! resume from before them (after this instance restarted, say) reads the
//! log, a few at a time ([`RESUME_READS`]).
//!
//! Expired holds make no public frames of their own: what every client
//! needs to know of them is the stock they free, which the drop's next
//! stock frame carries (coalesced with everything else in its tick).
//!
//! Public frames are made from the hub's copy of the drop (its current
//! stock and top buyers), so they show the drop as it is when sent. The
//! log lists no top buyers: a read that finds purchases asks the store for
//! the latest buyers of each drop bought from (one more query per such
//! drop and read), since the bus's list may come after the log is read. Drops
//! that have ended are forgotten (checked every second), so the hub's copy
//! and the board hold only live and upcoming drops however many drops a
//! long-running server has seen; changes to a forgotten drop make no public
//! frame (its buyer's own frames are still sent). Late bus events for a
//! forgotten drop (a sweep of its last holds) are ignored.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use chrono::{DateTime, Utc};
use drop_core::{
    BuyerId, Change, Clock, DropError, DropEvent, DropId, DropInfo, DropState, EventsLost,
    InventoryStore, LogEntry, MAX_LOG_PAGE, Origin, OriginEventStream, ReservationStatus,
    TOP_PURCHASERS, TopPurchaser,
};
use futures::FutureExt;
use tokio::sync::{Semaphore, broadcast, watch};
use tokio::time::{Instant, MissedTickBehavior, interval, sleep_until};
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::Metrics;
use crate::names::FeedNames;
use crate::wire::{DropView, ReservationView, TopPurchaserView, WsMessage, time};

/// A serialized message, shared by every client that sends it.
pub(crate) type Frame = Utf8Bytes;

/// Most events handled before the hub looks at its flush timer again.
const DRAIN_BATCH: usize = 1024;
/// How often the hub looks for drops that have ended.
const FORGET_EVERY: Duration = Duration::from_secs(1);
/// How long the hub remembers that it forgot a drop, so late events for it
/// are ignored instead of making it reload. Renewed by each such event.
const REMEMBER_FORGOTTEN: Duration = Duration::from_secs(600);
/// Reads of the log, one per tick, after the last one that was asked for
/// or found something: an entry may become readable shortly after its bus
/// event, and no further event may come to ask for it.
const LOG_FOLLOW_UP: u32 = 20;
/// How many log numbers behind the hub's position a client may resume
/// from; further behind, a snapshot is cheaper than the replay.
pub(crate) const RESUME_MAX: u64 = 1_000;
/// Longest a joining client waits for the hub to read what its bus has
/// told it of: about a tick when the store answers.
const CATCH_UP_WAIT: Duration = Duration::from_secs(1);
/// How many of the latest frames the hub keeps for resuming clients.
const RECENT_FRAMES: usize = 4 * RESUME_MAX as usize;
/// Resumes read from the store at once (those the hub's recent frames do
/// not cover, such as after a restart); the others wait their turn, so a
/// crowd reconnecting at once does not flood the store.
const RESUME_READS: usize = 4;

struct Entry {
    state: DropState,
    top: Vec<TopPurchaser>,
}

#[derive(Default)]
struct State {
    drops: HashMap<DropId, Entry>,
    /// The drops of the snapshot; `None` when stale.
    views: Option<Arc<Vec<DropView>>>,
    dirty: HashSet<DropId>,
    dirty_since: Option<Instant>,
    /// Ended drops dropped from `drops`, with when that was last confirmed.
    forgotten: HashMap<DropId, Instant>,
    /// Drops events named that the hub did not know, since the last reload.
    unknown: Vec<DropId>,
    /// The highest log number framed: every entry up to it has been
    /// broadcast (or made no frame).
    cursor: u64,
    /// Whether the bus said something that the log has frames for.
    log_dirty: bool,
    /// Follow-up reads of the log still to make.
    log_follow: u32,
    /// Whether a read of the log is under way.
    log_reading: bool,
    /// The latest frames read from the log, oldest first: a client
    /// resuming after [`recent_from`](Self::recent_from) is served from
    /// here, without asking the store.
    recent: VecDeque<LogFrame>,
    /// Every frame of the entries numbered above this one is in `recent`.
    recent_from: u64,
}

/// One frame made from a log entry.
#[derive(Debug, Clone)]
pub(crate) struct LogFrame {
    /// The entry's number.
    pub(crate) seq: u64,
    /// `None` for a public frame; otherwise only this buyer's sockets send
    /// it.
    pub(crate) to: Option<BuyerId>,
    /// The message.
    pub(crate) frame: Frame,
}

impl LogFrame {
    /// Whether a socket of `viewer` (`None`: not signed in) sends it.
    pub(crate) fn is_for(&self, viewer: Option<&BuyerId>) -> bool {
        match &self.to {
            None => true,
            Some(buyer) => viewer == Some(buyer),
        }
    }
}

/// What the discrete queue carries.
#[derive(Debug)]
pub(crate) enum Batch {
    /// The frames of one read of the log, in log order.
    Frames(Vec<LogFrame>),
    /// Entries were lost to the hub (pruned before it read them): every
    /// client starts again from a snapshot.
    Resync,
}

/// The latest stock frame of every drop whose stock changed since start:
/// `(version, frame)`.
pub(crate) type StockBoard = HashMap<DropId, (u64, Frame)>;

struct Shared {
    state: Mutex<State>,
    names: FeedNames,
    tx: broadcast::Sender<Arc<Batch>>,
    board: watch::Sender<Arc<StockBoard>>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    tick: Duration,
    /// How many reads of the log have ended.
    log_reads: watch::Sender<u64>,
    /// Turns to read the store for a resume.
    resume_reads: Semaphore,
}

/// A handle on the running hub. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Hub {
    shared: Arc<Shared>,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("tick", &self.shared.tick)
            .field("clients", &self.shared.tx.receiver_count())
            .finish_non_exhaustive()
    }
}

/// A client's place in the stream: what to send first, then the stock
/// board's newer frames and every discrete frame.
#[derive(Debug)]
pub(crate) struct Subscription {
    /// The frames to send before anything else: a `snapshot`; or, for a
    /// resumed client, the frames it missed, the stock of every live drop
    /// and `resumed`.
    pub(crate) first: Vec<Frame>,
    /// Every discrete frame broadcast after the first ones were made.
    pub(crate) frames: broadcast::Receiver<Arc<Batch>>,
    /// The stock board; a frame on it is news when its version is above
    /// [`seen`](Self::seen)'s.
    pub(crate) stock: watch::Receiver<Arc<StockBoard>>,
    /// The stock version of each drop as the first frames showed it.
    pub(crate) seen: HashMap<DropId, u64>,
    /// Discrete frames numbered up to this one are not to be sent: the
    /// client has them already.
    pub(crate) floor: u64,
}

/// How the hub paces and names what it sends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HubSettings {
    /// The coalescing window: each drop's stock is broadcast at most once
    /// per tick, always the latest value; the log is read at most once per
    /// tick too.
    pub(crate) tick: Duration,
    /// How many batches of discrete frames (at most one per tick) a client
    /// may fall behind before it is resynchronised.
    pub(crate) queue: usize,
    /// How public frames name buyers.
    pub(crate) names: FeedNames,
}

impl Hub {
    /// Loads the live drops from `store` and starts the hub task on
    /// `tasks`; it stops when `cancel` is cancelled.
    pub(crate) async fn start(
        store: Arc<dyn InventoryStore>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        settings: HubSettings,
        cancel: CancellationToken,
        tasks: &TaskTracker,
    ) -> Result<Hub, DropError> {
        // Subscribe before loading, so no change falls in between; take the
        // log position before loading too, so that whatever the load misses
        // is above it and is read.
        let events = store.subscribe().with_origin();
        let cursor = store.log_head().await?;
        let hub = Hub {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    cursor,
                    recent_from: cursor,
                    ..State::default()
                }),
                names: settings.names,
                tx: broadcast::channel(settings.queue.max(1)).0,
                board: watch::channel(Arc::new(StockBoard::new())).0,
                clock,
                metrics,
                tick: settings.tick,
                log_reads: watch::channel(0).0,
                resume_reads: Semaphore::new(RESUME_READS),
            }),
        };
        hub.reload(&*store).await?;
        tasks.spawn(hub.clone().run(store, events, cancel));
        Ok(hub)
    }

    /// Waits until the hub has read the log entries its bus has already
    /// told it of (at most [`CATCH_UP_WAIT`]), so that a client joining
    /// now does not get a snapshot that shows a change and then the
    /// change's frame. Returns at once when nothing is pending.
    pub(crate) async fn caught_up(&self) {
        let mut reads = self.shared.log_reads.subscribe();
        reads.borrow_and_update();
        let pending = {
            let state = self.lock();
            state.log_dirty || state.log_reading
        };
        if pending {
            // A read under way may not have seen the latest news: wait for
            // the one after it when the news is still pending then.
            let _ = tokio::time::timeout(CATCH_UP_WAIT, async {
                while reads.changed().await.is_ok() {
                    let state = self.lock();
                    if !state.log_dirty && !state.log_reading {
                        break;
                    }
                }
            })
            .await;
        }
    }

    /// Joins the stream: a snapshot of every live drop and the frames
    /// broadcast from that instant on.
    pub(crate) fn subscribe(&self) -> Subscription {
        let mut state = self.lock();
        let snapshot = self.snapshot(&mut state);
        // Subscribing under the lock that broadcasts are sent under keeps
        // the snapshot and the stream gapless and without overlap.
        let frames = self.shared.tx.subscribe();
        let stock = self.shared.board.subscribe();
        let seen = state
            .drops
            .iter()
            .map(|(id, e)| (*id, e.state.stock.version))
            .collect();
        let floor = state.cursor;
        drop(state);
        // The views are immutable and the instant taken: serializing needs
        // no lock, so a crowd joining at once does not hold up the events.
        Subscription {
            first: vec![snapshot.to_json().into()],
            frames,
            stock,
            seen,
            floor,
        }
    }

    /// Joins the stream where a client that saw every frame up to `after`
    /// left it: the frames of the entries since (public ones and
    /// `viewer`'s own), read from the log, then the current stock of every
    /// live drop, then `resumed`. `None` when that cannot be done exactly
    /// (too far behind, entries pruned, a position the log never had, the
    /// store failing): the client gets a snapshot instead.
    pub(crate) async fn resume(
        &self,
        store: &dyn InventoryStore,
        after: u64,
        viewer: Option<&BuyerId>,
    ) -> Option<Subscription> {
        let now = self.shared.clock.now();
        let (position, frames, stock, seen, stock_frames, recent) = {
            let state = self.lock();
            let position = state.cursor;
            if position.saturating_sub(after) > RESUME_MAX {
                return None;
            }
            let recent: Option<Vec<Frame>> = (after >= state.recent_from && after <= position)
                .then(|| {
                    state
                        .recent
                        .iter()
                        .filter(|f| f.seq > after && f.is_for(viewer))
                        .map(|f| f.frame.clone())
                        .collect()
                });
            // As in `subscribe`: under the broadcasting lock, so the live
            // frames start right after `position`.
            let frames = self.shared.tx.subscribe();
            let stock = self.shared.board.subscribe();
            let mut live: Vec<&Entry> = state
                .drops
                .values()
                .filter(|e| !e.state.drop.is_ended(now))
                .collect();
            live.sort_by_key(|e| (e.state.drop.starts_at, e.state.drop.created_at));
            let stock_frames: Vec<Frame> = live
                .iter()
                .map(|e| WsMessage::stock(now, &e.state).to_json().into())
                .collect();
            let seen: HashMap<DropId, u64> = state
                .drops
                .iter()
                .map(|(id, e)| (*id, e.state.stock.version))
                .collect();
            (position, frames, stock, seen, stock_frames, recent)
        };
        let mut first = Vec::new();
        if let Some(recent) = recent {
            first = recent;
        } else if after > position {
            // Another instance may be ahead of this one; the live frames
            // up to `after` are then skipped. A position beyond the log's
            // end is no position at all.
            match store.log_head().await {
                Ok(head) if after <= head => {}
                _ => return None,
            }
        } else {
            let _turn = self.shared.resume_reads.acquire().await.ok()?;
            let entries = match read_range(store, after, position).await {
                Ok(entries) => entries,
                Err(err) => {
                    tracing::debug!(error = %err, after, "resume impossible; sending a snapshot");
                    return None;
                }
            };
            let state = self.lock();
            for entry in &entries {
                for f in self.frames_of(&state, entry, now) {
                    if f.is_for(viewer) {
                        first.push(f.frame);
                    }
                }
            }
        }
        first.extend(stock_frames);
        first.push(
            WsMessage::Resumed {
                server_time: time(now),
                after,
                seq: position.max(after),
            }
            .to_json()
            .into(),
        );
        Some(Subscription {
            first,
            frames,
            stock,
            seen,
            floor: position.max(after),
        })
    }

    /// How many drops the hub keeps a copy of.
    #[cfg(test)]
    pub(crate) fn drop_count(&self) -> usize {
        self.lock().drops.len()
    }

    /// The hub's log position: every entry up to it has been framed.
    #[cfg(test)]
    pub(crate) fn cursor(&self) -> u64 {
        self.lock().cursor
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is rebuilt from the store on any doubt; a panic while
        // holding the lock leaves nothing half-written that matters.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The `snapshot` message as of now (its views are cached until the
    /// next change, and shared).
    fn snapshot(&self, state: &mut State) -> WsMessage {
        let now = self.shared.clock.now();
        let drops = match &state.views {
            Some(views) => views.clone(),
            None => {
                let mut live: Vec<&Entry> = state
                    .drops
                    .values()
                    .filter(|e| !e.state.drop.is_ended(now))
                    .collect();
                live.sort_by_key(|e| (e.state.drop.starts_at, e.state.drop.created_at));
                let views: Arc<Vec<DropView>> = Arc::new(
                    live.iter()
                        .map(|e| DropView::new(&e.state, &e.top, None, self.shared.names))
                        .collect(),
                );
                state.views = Some(views.clone());
                views
            }
        };
        WsMessage::Snapshot {
            server_time: time(now),
            seq: state.cursor,
            drops,
        }
    }

    /// The frames of one log entry: public ones (made from the hub's copy
    /// of the drop, so none for a drop it does not keep) and the private
    /// ones of the buyer it concerns.
    fn frames_of(&self, state: &State, entry: &LogEntry, now: DateTime<Utc>) -> Vec<LogFrame> {
        let seq = entry.seq;
        let server_time = time(now);
        let names = self.shared.names;
        let drop_id = entry.drop_id.as_uuid();
        let public = |msg: WsMessage| LogFrame {
            seq,
            to: None,
            frame: msg.to_json().into(),
        };
        let private = |buyer: &BuyerId, msg: WsMessage| LogFrame {
            seq,
            to: Some(buyer.clone()),
            frame: msg.to_json().into(),
        };
        let copy = state.drops.get(&entry.drop_id);
        let view = || copy.map(|e| DropView::new(&e.state, &e.top, None, names));
        let mut out = Vec::new();
        match &entry.change {
            Change::DropCreated { .. } => {
                if let Some(drop) = view() {
                    out.push(public(WsMessage::DropCreated {
                        server_time,
                        seq,
                        drop,
                    }));
                }
            }
            Change::DropUpdated { .. } => {
                if let Some(drop) = view() {
                    out.push(public(WsMessage::DropUpdated {
                        server_time,
                        seq,
                        drop,
                    }));
                }
            }
            Change::PurchaseCompleted {
                reservation_id,
                buyer_id,
                display_name,
                variant_id,
                quantity,
                ..
            } => {
                if let Some(e) = copy {
                    let shown = names.shown(display_name);
                    out.push(public(WsMessage::Purchase {
                        server_time: server_time.clone(),
                        seq,
                        drop_id,
                        variant_id: variant_id.as_uuid(),
                        quantity: *quantity,
                        display_name: shown.clone(),
                        username: shown,
                        top_purchasers: e
                            .top
                            .iter()
                            .map(|t| TopPurchaserView::new(t, names))
                            .collect(),
                    }));
                }
                out.push(private(
                    buyer_id,
                    WsMessage::HoldPurchased {
                        server_time,
                        seq,
                        drop_id,
                        reservation_id: reservation_id.as_uuid(),
                    },
                ));
            }
            Change::HoldExpired {
                reservation_id,
                buyer_id,
                ..
            } => out.push(private(
                buyer_id,
                WsMessage::HoldExpired {
                    server_time,
                    seq,
                    drop_id,
                    reservation_id: reservation_id.as_uuid(),
                },
            )),
            Change::HoldReleased {
                reservation_id,
                buyer_id,
                ..
            } => out.push(private(
                buyer_id,
                WsMessage::HoldReleased {
                    server_time,
                    seq,
                    drop_id,
                    reservation_id: reservation_id.as_uuid(),
                },
            )),
            Change::PurchaseCancelled {
                purchase_id,
                buyer_id,
                ..
            } => out.push(private(
                buyer_id,
                WsMessage::PurchaseCancelled {
                    server_time,
                    seq,
                    purchase_id: purchase_id.as_uuid(),
                    drop_id,
                },
            )),
            Change::HoldCreated {
                reservation_id,
                buyer_id,
                display_name,
                variant_id,
                quantity,
                expires_at,
                offered: true,
            } => {
                // The hold as the buyer would read it, made from the entry
                // alone: active, taken when the entry committed.
                let reservation = ReservationView {
                    id: reservation_id.as_uuid(),
                    drop_id,
                    variant_id: variant_id.as_uuid(),
                    quantity: *quantity,
                    display_name: display_name.to_string(),
                    username: display_name.to_string(),
                    status: ReservationStatus::Active.as_str(),
                    created_at: time(entry.at),
                    expires_at: time(*expires_at),
                    offered: true,
                };
                out.push(private(
                    buyer_id,
                    WsMessage::HoldOffered {
                        server_time,
                        seq,
                        drop_id,
                        reservation,
                    },
                ));
            }
            Change::WaitlistJoined {
                buyer_id,
                variant_id,
                quantity,
                ticket,
                ..
            } => out.push(private(
                buyer_id,
                WsMessage::WaitlistJoined {
                    server_time,
                    seq,
                    drop_id,
                    variant_id: variant_id.as_uuid(),
                    quantity: *quantity,
                    ticket: *ticket,
                },
            )),
            Change::WaitlistLeft {
                buyer_id,
                variant_id,
                ticket,
                reason,
                ..
            } => {
                // Everyone behind the ticket moved up: public, naming no
                // buyer, for the drops clients show.
                if copy.is_some() {
                    out.push(public(WsMessage::WaitlistMoved {
                        server_time: server_time.clone(),
                        seq,
                        drop_id,
                        variant_id: variant_id.as_uuid(),
                        ticket: *ticket,
                    }));
                }
                out.push(private(
                    buyer_id,
                    WsMessage::WaitlistLeft {
                        server_time,
                        seq,
                        drop_id,
                        variant_id: variant_id.as_uuid(),
                        ticket: *ticket,
                        reason: reason.as_str(),
                    },
                ));
            }
            // Public, naming no buyer: every client of a drop the hub
            // shows learns the draw is made (winners had their
            // `holdOffered` first).
            Change::DrawCompleted {
                drawn_at,
                entries,
                winners,
                waiting,
            } if copy.is_some() => out.push(public(WsMessage::DrawCompleted {
                server_time,
                seq,
                drop_id,
                drawn_at: time(*drawn_at),
                entries: *entries,
                winners: *winners,
                waiting: *waiting,
            })),
            // Holds taken by a reserve show as stock.
            _ => {}
        }
        out
    }

    /// Whether the log is to be read at the next occasion.
    fn log_wanted(&self) -> bool {
        let state = self.lock();
        state.log_dirty || state.log_follow > 0
    }

    /// Reads the log after the hub's cursor until caught up, and broadcasts
    /// the frames of what it finds, a batch per page.
    async fn read_log(&self, store: &dyn InventoryStore) {
        let asked = {
            let mut state = self.lock();
            state.log_reading = true;
            std::mem::replace(&mut state.log_dirty, false)
        };
        let found = self.read_pages(store).await;
        let mut state = self.lock();
        state.log_reading = false;
        state.log_follow = if asked || found {
            LOG_FOLLOW_UP
        } else {
            state.log_follow.saturating_sub(1)
        };
        drop(state);
        self.shared.log_reads.send_modify(|n| *n += 1);
    }

    /// [`read_log`](Self::read_log)'s pages; whether it found anything.
    async fn read_pages(&self, store: &dyn InventoryStore) -> bool {
        let mut found = false;
        loop {
            // Only this task moves the cursor.
            let after = self.lock().cursor;
            let entries = match store.events_after(after, MAX_LOG_PAGE).await {
                Ok(entries) => entries,
                Err(DropError::EventsPruned { oldest, .. }) => {
                    // The hub stalled for longer than the log is kept: what it
                    // missed is gone, so every client starts again.
                    tracing::warn!(
                        after,
                        oldest,
                        "hub's log position was pruned; resynchronising clients"
                    );
                    let head = store.log_head().await.unwrap_or(oldest).max(after);
                    {
                        let mut state = self.lock();
                        state.cursor = head;
                        state.recent.clear();
                        state.recent_from = head;
                    }
                    if let Err(err) = self.reload(store).await {
                        tracing::error!(error = %err, "hub reload failed; clients keep the last state");
                    }
                    let _ = self.shared.tx.send(Arc::new(Batch::Resync));
                    self.shared.metrics.resync();
                    return true;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "hub could not read the event log; retrying");
                    self.lock().log_dirty = true;
                    return found;
                }
            };
            let full = entries.len() >= MAX_LOG_PAGE;
            let tops = self.tops_of(store, after, &entries).await;
            let now = self.shared.clock.now();
            let missing = self.missing_drops(store, &entries, now).await;
            let mut state = self.lock();
            for found in missing {
                state.drops.entry(found.drop.id).or_insert_with(|| Entry {
                    state: found,
                    top: Vec::new(),
                });
            }
            for (id, top) in tops {
                if let Some(entry) = state.drops.get_mut(&id) {
                    entry.top = top;
                    state.views = None;
                }
            }
            let mut batch = Vec::new();
            for entry in &entries {
                if entry.seq <= state.cursor {
                    continue;
                }
                if let Change::DropCreated { drop } | Change::DropUpdated { drop, .. } =
                    &entry.change
                {
                    Self::apply_logged_drop(&mut state, drop, now);
                }
                // A draw read from the log before its bus event (another
                // instance made it) already shows in snapshots.
                if let Change::DrawCompleted { drawn_at, .. } = &entry.change
                    && let Some(copy) = state.drops.get_mut(&entry.drop_id)
                    && copy.state.drop.drawn_at.is_none()
                {
                    copy.state.drop.drawn_at = Some(*drawn_at);
                    state.views = None;
                }
                batch.extend(self.frames_of(&state, entry, now));
                state.cursor = entry.seq;
                found = true;
            }
            if !batch.is_empty() {
                for _ in &batch {
                    self.shared.metrics.frame();
                }
                state.recent.extend(batch.iter().cloned());
                while state.recent.len() > RECENT_FRAMES {
                    if let Some(old) = state.recent.pop_front() {
                        state.recent_from = state.recent_from.max(old.seq);
                    }
                }
                // Sent under the lock that subscribers join under. No
                // receiver is fine: nobody is connected.
                let _ = self.shared.tx.send(Arc::new(Batch::Frames(batch)));
            }
            drop(state);
            if !full {
                return found;
            }
        }
    }

    /// The drops that `entries` create or change, live, and missing from
    /// the hub's copy, as the store has them now. The log may be read
    /// before the bus event that brings a drop in (a follow-up read, or
    /// another instance's change), and its frame needs the drop's stock.
    async fn missing_drops(
        &self,
        store: &dyn InventoryStore,
        entries: &[LogEntry],
        now: DateTime<Utc>,
    ) -> Vec<DropState> {
        let wanted: HashSet<DropId> = {
            let state = self.lock();
            entries
                .iter()
                .filter(|e| e.seq > state.cursor)
                .filter_map(|e| match &e.change {
                    Change::DropCreated { drop } | Change::DropUpdated { drop, .. } => Some(drop),
                    _ => None,
                })
                .filter(|drop| !drop.is_ended(now) && !state.drops.contains_key(&drop.id))
                .map(|drop| drop.id)
                .collect()
        };
        let mut found = Vec::with_capacity(wanted.len());
        for id in wanted {
            match store.get_drop(id).await {
                Ok(drop) => found.push(drop),
                // No frame for it then; its next change brings it in.
                Err(err) => tracing::debug!(error = %err, "hub could not read a logged drop"),
            }
        }
        found
    }

    /// Puts a logged drop's definition into the hub's copy before its frame
    /// is made, so the frame shows the drop as of its entry even when the
    /// log is read before the bus event of the same change arrives (the bus
    /// event then writes the same definition again).
    fn apply_logged_drop(state: &mut State, drop: &DropInfo, now: DateTime<Utc>) {
        if !drop.is_ended(now) {
            state.forgotten.remove(&drop.id);
        }
        if let Some(entry) = state.drops.get_mut(&drop.id) {
            entry.state.drop = drop.clone();
            state.views = None;
        }
    }

    /// The latest buyers of each drop (kept here) bought from in
    /// `entries`. The log has no list of them, and the bus's list for a
    /// purchase may come after the purchase is read from the log (from
    /// another instance, say): the purchase frame shows the store's.
    async fn tops_of(
        &self,
        store: &dyn InventoryStore,
        after: u64,
        entries: &[LogEntry],
    ) -> Vec<(DropId, Vec<TopPurchaser>)> {
        let bought: HashSet<DropId> = {
            let state = self.lock();
            entries
                .iter()
                .filter(|e| e.seq > after && matches!(e.change, Change::PurchaseCompleted { .. }))
                .map(|e| e.drop_id)
                .filter(|id| state.drops.contains_key(id))
                .collect()
        };
        let mut tops = Vec::with_capacity(bought.len());
        for id in bought {
            match store.top_purchasers(id, TOP_PURCHASERS).await {
                Ok(top) => tops.push((id, top)),
                // The frame then shows the list the bus last brought.
                Err(err) => tracing::debug!(error = %err, "hub could not read a drop's buyers"),
            }
        }
        tops
    }

    /// Re-reads every live drop; their stock goes on the board at the next
    /// flush.
    async fn reload(&self, store: &dyn InventoryStore) -> Result<(), DropError> {
        let overview = store.overview(None).await?;
        let mut state = self.lock();
        state.drops = overview
            .into_iter()
            .map(|o| {
                (
                    o.state.drop.id,
                    Entry {
                        state: o.state,
                        top: o.top_purchasers,
                    },
                )
            })
            .collect();
        state.views = None;
        // Stock changes may have been lost with the bus events: republish
        // every drop's (a client sends only what is newer than it has).
        let ids: Vec<DropId> = state.drops.keys().copied().collect();
        state.dirty.extend(ids);
        state.dirty_since.get_or_insert_with(Instant::now);
        // What an event named and the store does not list as live has ended
        // (or never was): forget it, so its next event does not reload again.
        let at = Instant::now();
        for id in std::mem::take(&mut state.unknown) {
            if !state.drops.contains_key(&id) {
                state.forgotten.insert(id, at);
            }
        }
        Ok(())
    }

    /// Whether events about `id` are to be ignored: the drop ended and was
    /// forgotten. Renews the memory of having forgotten it.
    fn is_forgotten(state: &mut State, id: DropId) -> bool {
        match state.forgotten.get_mut(&id) {
            Some(at) => {
                *at = Instant::now();
                true
            }
            None => false,
        }
    }

    /// Applies one bus event to the hub's copy; `false` when the copy can
    /// no longer be trusted and must be reloaded.
    fn apply(&self, state: &mut State, event: Result<(Origin, DropEvent), EventsLost>) -> bool {
        let now = self.shared.clock.now();
        let (origin, event) = match event {
            Err(lost) => {
                tracing::warn!(%lost, "hub missed store events; reloading");
                // The log has whatever was lost that clients are told of.
                state.log_dirty = true;
                return false;
            }
            Ok(tagged) => tagged,
        };
        // Everything but stock and holds taken by a reserve has frames,
        // which the log gives (with their numbers).
        if !matches!(
            event,
            DropEvent::StockChanged { .. } | DropEvent::HoldCreated { offered: false, .. }
        ) {
            state.log_dirty = true;
        }
        // Clients learn of an expiry from the stock it frees. Counted only
        // where it committed, so that the instances' counters add up to the
        // number of expiries (those of ended drops included).
        if matches!(event, DropEvent::HoldExpired { .. }) && origin == Origin::Local {
            self.shared.metrics.operation("expire", "ok");
        }
        // Likewise each draw, counted once, where it was made.
        if matches!(event, DropEvent::DrawCompleted { .. }) && origin == Origin::Local {
            self.shared.metrics.operation("draw", "ok");
        }
        // An edit may bring an ended drop back (a later `endsAt`): such a
        // drop is known again, whatever the hub forgot.
        if let DropEvent::DropUpdated { drop } = &event
            && !drop.drop.is_ended(now)
        {
            state.forgotten.remove(&drop.drop.id);
        }
        if !matches!(event, DropEvent::DropCreated { .. })
            && Self::is_forgotten(state, event.drop_id())
        {
            return true;
        }
        match event {
            DropEvent::DropCreated { drop } => {
                let id = drop.drop.id;
                let fresh = match state.drops.get(&id) {
                    Some(e) => e.state.stock.version < drop.stock.version,
                    None => true,
                };
                if fresh {
                    state.drops.insert(
                        id,
                        Entry {
                            state: drop,
                            top: Vec::new(),
                        },
                    );
                    state.views = None;
                }
            }
            DropEvent::DropUpdated { drop } => {
                let id = drop.drop.id;
                // An edit of a drop that had ended before this hub knew it
                // (a rename after the sale) is nothing clients show.
                if drop.drop.is_ended(now) && !state.drops.contains_key(&id) {
                    return true;
                }
                let entry = state.drops.entry(id).or_insert_with(|| Entry {
                    state: drop.clone(),
                    top: Vec::new(),
                });
                // An edit's counters are news only when newer than the
                // copy's (a stock change may have overtaken it); its drop
                // (name, price, times, pause) always is.
                entry.state.drop = drop.drop.clone();
                if drop.stock.version >= entry.state.stock.version {
                    entry.state.stock = drop.stock;
                    entry.state.variants = drop.variants.clone();
                    state.dirty.insert(id);
                    state.dirty_since.get_or_insert_with(Instant::now);
                }
                state.views = None;
            }
            DropEvent::StockChanged {
                drop_id,
                stock,
                variants,
            } => {
                let Some(entry) = state.drops.get_mut(&drop_id) else {
                    // A drop this hub never heard created (another
                    // process made it while our feed was down), or one
                    // that ended before this hub started.
                    state.unknown.push(drop_id);
                    return false;
                };
                if stock.version > entry.state.stock.version {
                    entry.state.stock = stock;
                    entry.state.variants = variants;
                    state.views = None;
                    state.dirty.insert(drop_id);
                    state.dirty_since.get_or_insert_with(Instant::now);
                }
            }
            DropEvent::PurchaseCompleted {
                drop_id,
                top_purchasers,
                ..
            } => {
                // The list may be older than one read with the log (a
                // later purchase): only a newer one replaces it.
                if let Some(entry) = state.drops.get_mut(&drop_id) {
                    let newer = match (top_purchasers.first(), entry.top.first()) {
                        (Some(new), Some(old)) => new.purchased_at >= old.purchased_at,
                        (Some(_), None) => true,
                        (None, _) => false,
                    };
                    if newer {
                        entry.top = top_purchasers;
                        state.views = None;
                    }
                }
            }
            DropEvent::DrawCompleted {
                drop_id, drawn_at, ..
            } => {
                // The drop now sells first come: snapshots show `drawnAt`
                // (no `dropUpdated` follows a draw).
                if let Some(entry) = state.drops.get_mut(&drop_id)
                    && entry.state.drop.drawn_at.is_none()
                {
                    entry.state.drop.drawn_at = Some(drawn_at);
                    state.views = None;
                }
            }
            _ => {}
        }
        true
    }

    /// Puts the latest stock of every drop that changed on the board.
    fn flush(&self) {
        let now = self.shared.clock.now();
        let mut state = self.lock();
        if state.dirty.is_empty() {
            return;
        }
        let dirty: Vec<DropId> = state.dirty.drain().collect();
        let since = state.dirty_since.take();
        let mut board = StockBoard::clone(&self.shared.board.borrow());
        for id in &dirty {
            if let Some(entry) = state.drops.get(id) {
                let msg = WsMessage::stock(now, &entry.state);
                board.insert(*id, (entry.state.stock.version, msg.to_json().into()));
            }
        }
        // Ended drops never change again; keep the board small.
        board.retain(|id, _| {
            state
                .drops
                .get(id)
                .is_some_and(|e| !e.state.drop.is_ended(now))
        });
        self.shared.board.send_replace(Arc::new(board));
        if let Some(since) = since {
            self.shared
                .metrics
                .flushed(since.elapsed(), dirty.len() as u64);
        }
    }

    /// Drops every drop that has ended from the hub's copy and the board,
    /// and forgets, after a while, that it forgot them.
    fn forget_ended(&self) {
        let now = self.shared.clock.now();
        let at = Instant::now();
        let mut state = self.lock();
        let ended: Vec<DropId> = state
            .drops
            .iter()
            .filter(|(_, e)| e.state.drop.is_ended(now))
            .map(|(id, _)| *id)
            .collect();
        for id in &ended {
            state.drops.remove(id);
            state.dirty.remove(id);
            state.forgotten.insert(*id, at);
        }
        state
            .forgotten
            .retain(|_, seen| at.duration_since(*seen) < REMEMBER_FORGOTTEN);
        if ended.is_empty() {
            return;
        }
        state.views = None;
        // Nothing for clients to send: replace the board without waking them.
        self.shared.board.send_if_modified(|board| {
            if ended.iter().any(|id| board.contains_key(id)) {
                let mut kept = StockBoard::clone(board);
                kept.retain(|id, _| !ended.contains(id));
                *board = Arc::new(kept);
            }
            false
        });
    }

    /// Puts the stock on the board and reads the log.
    async fn publish(&self, store: &dyn InventoryStore) {
        self.flush();
        if self.log_wanted() {
            self.read_log(store).await;
        }
    }

    async fn run(
        self,
        store: Arc<dyn InventoryStore>,
        mut events: OriginEventStream,
        cancel: CancellationToken,
    ) {
        let tick = self.shared.tick;
        let mut last_flush = Instant::now()
            .checked_sub(tick)
            .unwrap_or_else(Instant::now);
        let mut next_flush: Option<Instant> = None;
        let mut forget = interval(FORGET_EVERY);
        forget.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                _ = forget.tick() => {
                    // A drop ended now is told of before it is forgotten.
                    if self.lock().log_dirty {
                        self.read_log(&*store).await;
                    }
                    self.forget_ended();
                }
                () = sleep_until(next_flush.unwrap_or_else(Instant::now)), if next_flush.is_some() => {
                    self.publish(&*store).await;
                    last_flush = Instant::now();
                    next_flush = None;
                }
                event = events.next() => {
                    let Some(event) = event else {
                        // The store closed its feed: nothing more will come.
                        cancel.cancelled().await;
                        break;
                    };
                    let mut trusted = true;
                    {
                        let mut state = self.lock();
                        trusted &= self.apply(&mut state, event);
                        // Take whatever else is already waiting, so a storm
                        // is handled in batches rather than one wake-up each.
                        for _ in 0..DRAIN_BATCH {
                            match events.next().now_or_never() {
                                Some(Some(event)) => trusted &= self.apply(&mut state, event),
                                _ => break,
                            }
                        }
                    }
                    if !trusted {
                        self.shared.metrics.resync();
                        if let Err(err) = self.reload(&*store).await {
                            tracing::error!(error = %err, "hub reload failed; clients keep the last state");
                        }
                    }
                }
            }
            // Leading edge: the first change after a quiet tick goes out at
            // once; later ones wait for the tick. Follow-up reads of the log
            // keep the timer going while they last.
            let wanted = !self.lock().dirty.is_empty() || self.log_wanted();
            if wanted && next_flush.is_none() {
                let due = last_flush + tick;
                if Instant::now() >= due {
                    self.publish(&*store).await;
                    last_flush = Instant::now();
                    if !self.lock().dirty.is_empty() || self.log_wanted() {
                        next_flush = Some(last_flush + tick);
                    }
                } else {
                    next_flush = Some(due);
                }
            }
        }
        tracing::debug!("hub stopped");
    }
}

/// The log entries numbered in `(after, to]`, read page by page.
async fn read_range(
    store: &dyn InventoryStore,
    after: u64,
    to: u64,
) -> Result<Vec<LogEntry>, DropError> {
    let mut out = Vec::new();
    let mut from = after;
    while from < to {
        let page = store.events_after(from, MAX_LOG_PAGE).await?;
        let full = page.len() >= MAX_LOG_PAGE;
        let Some(last) = page.last().map(|e| e.seq) else {
            break;
        };
        out.extend(page.into_iter().filter(|e| e.seq <= to));
        if !full {
            break;
        }
        from = last;
    }
    Ok(out)
}

#[cfg(test)]
#[path = "hub_tests.rs"]
mod tests;
