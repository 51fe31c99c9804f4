//! The broadcast hub: turns the store's committed events into WebSocket
//! frames, coalescing stock updates, and hands every new client a snapshot
//! and a place in the stream with nothing falling in between.
//!
//! One task reads the store's events and keeps a copy of every live drop
//! (stock, top buyers). Frames are serialized once and shared by all
//! clients, on two paths:
//!
//! - **stock** goes on a *board* holding only the latest frame per drop
//!   (a `watch` channel), republished at most once per tick. A client sends
//!   whatever is newest when it gets to run, so a slow client skips stale
//!   values instead of queueing them, and the work per tick is bounded by
//!   the number of clients, never by the number of changes;
//! - **discrete events** (purchase, dropCreated) go through a bounded
//!   broadcast queue. A client that falls more than its capacity behind
//!   rejoins with a fresh snapshot.
//!
//! Either way a slow client costs the others nothing.
//!
//! Expired holds make no public frames of their own: what every client
//! needs to know of them is the stock they free, which the drop's next
//! stock frame carries (coalesced with everything else in its tick). The
//! holder's own sockets (those opened with their session) are told on a
//! private feed: `holdExpired`, and `holdReleased` / `holdPurchased` when
//! the hold ended from another of their pages. The hub learns whose hold
//! is whose from the hold's creation, or from the socket, which lists its
//! buyer's holds when it opens; a page also ends its hold at `expiresAt`
//! by the server's clock, so a private frame lost to a resync costs only
//! promptness.
//!
//! Drops that have ended are forgotten (checked every second), so the
//! hub's copy and the board hold only live and upcoming drops however many
//! drops a long-running server has seen. Late events for a forgotten drop
//! (a sweep of its last holds) are ignored.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use drop_core::{
    BuyerId, Clock, DropError, DropEvent, DropId, DropState, EventsLost, InventoryStore, Origin,
    OriginEventStream, ReservationId, TopPurchaser,
};
use futures::FutureExt;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior, interval, sleep_until};
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::Metrics;
use crate::names::FeedNames;
use crate::wire::{DropView, TopPurchaserView, WsMessage, time};

/// A serialized message, shared by every client that sends it.
pub(crate) type Frame = Utf8Bytes;

/// Most events handled before the hub looks at its flush timer again.
const DRAIN_BATCH: usize = 1024;
/// How often the hub looks for drops that have ended.
const FORGET_EVERY: Duration = Duration::from_secs(1);
/// How long the hub remembers that it forgot a drop, so late events for it
/// are ignored instead of making it reload. Renewed by each such event.
const REMEMBER_FORGOTTEN: Duration = Duration::from_secs(600);

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
    /// The buyers with a socket open here, and their sockets' private feeds.
    private: HashMap<BuyerId, PrivateFeeds>,
    /// The holder of each active hold of those buyers.
    owners: HashMap<ReservationId, BuyerId>,
    /// The next private feed's id.
    next_feed: u64,
}

/// A buyer's sockets on this instance, and the holds they are told about.
#[derive(Default)]
struct PrivateFeeds {
    senders: Vec<(u64, mpsc::Sender<Frame>)>,
    holds: HashSet<ReservationId>,
}

/// Frames a private feed may hold unsent; beyond that they are dropped
/// (the page also ends a hold by its own clock).
const PRIVATE_QUEUE: usize = 16;

/// One socket's private frames: its buyer's holds ending. Leaves the hub
/// when dropped.
pub(crate) struct PrivateFeed {
    pub(crate) frames: mpsc::Receiver<Frame>,
    hub: Hub,
    buyer: BuyerId,
    id: u64,
}

impl PrivateFeed {
    /// Adds holds the buyer had before the feed was joined.
    pub(crate) fn know(&self, holds: impl IntoIterator<Item = ReservationId>) {
        let mut state = self.hub.lock();
        let State {
            private, owners, ..
        } = &mut *state;
        if let Some(feeds) = private.get_mut(&self.buyer) {
            for hold in holds {
                feeds.holds.insert(hold);
                owners.insert(hold, self.buyer.clone());
            }
        }
    }
}

impl Drop for PrivateFeed {
    fn drop(&mut self) {
        let mut state = self.hub.lock();
        let State {
            private, owners, ..
        } = &mut *state;
        if let Some(feeds) = private.get_mut(&self.buyer) {
            feeds.senders.retain(|(id, _)| *id != self.id);
            if feeds.senders.is_empty() {
                for hold in &feeds.holds {
                    owners.remove(hold);
                }
                private.remove(&self.buyer);
            }
        }
    }
}

/// The latest stock frame of every drop whose stock changed since start:
/// `(version, frame)`.
pub(crate) type StockBoard = HashMap<DropId, (u64, Frame)>;

struct Shared {
    state: Mutex<State>,
    names: FeedNames,
    tx: broadcast::Sender<Frame>,
    board: watch::Sender<Arc<StockBoard>>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    tick: Duration,
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

/// A client's place in the stream: the snapshot to send first, then the
/// stock board's newer frames and every discrete event.
#[derive(Debug)]
pub(crate) struct Subscription {
    /// The `snapshot` message.
    pub(crate) snapshot: Frame,
    /// Every discrete event broadcast after the snapshot was taken.
    pub(crate) frames: broadcast::Receiver<Frame>,
    /// The stock board; a frame on it is news when its version is above
    /// [`seen`](Self::seen)'s.
    pub(crate) stock: watch::Receiver<Arc<StockBoard>>,
    /// The stock version of each drop as the snapshot showed it.
    pub(crate) seen: HashMap<DropId, u64>,
}

/// How the hub paces and names what it sends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HubSettings {
    /// The coalescing window: each drop's stock is broadcast at most once
    /// per tick, always the latest value.
    pub(crate) tick: Duration,
    /// How many frames a client may fall behind before it is
    /// resynchronised.
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
        // Subscribe before loading, so no change falls in between.
        let events = store.subscribe().with_origin();
        let hub = Hub {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                names: settings.names,
                tx: broadcast::channel(settings.queue.max(1)).0,
                board: watch::channel(Arc::new(StockBoard::new())).0,
                clock,
                metrics,
                tick: settings.tick,
            }),
        };
        hub.reload(&*store).await?;
        tasks.spawn(hub.clone().run(store, events, cancel));
        Ok(hub)
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
        drop(state);
        // The views are immutable and the instant taken: serializing needs
        // no lock, so a crowd joining at once does not hold up the events.
        Subscription {
            snapshot: snapshot.to_json().into(),
            frames,
            stock,
            seen,
        }
    }

    /// A private feed for one of `buyer`'s sockets, told when a hold they
    /// take from now on, or one it is told of ([`PrivateFeed::know`]),
    /// ends.
    pub(crate) fn private_feed(&self, buyer: &BuyerId) -> PrivateFeed {
        let (tx, frames) = mpsc::channel(PRIVATE_QUEUE);
        let mut state = self.lock();
        let id = state.next_feed;
        state.next_feed += 1;
        state
            .private
            .entry(buyer.clone())
            .or_default()
            .senders
            .push((id, tx));
        drop(state);
        PrivateFeed {
            frames,
            hub: self.clone(),
            buyer: buyer.clone(),
            id,
        }
    }

    /// Tells `hold`'s holder, if they have a socket here, that it ended.
    fn hold_ended(&self, state: &mut State, hold: ReservationId, msg: impl FnOnce() -> WsMessage) {
        let Some(buyer) = state.owners.remove(&hold) else {
            return;
        };
        let Some(feeds) = state.private.get_mut(&buyer) else {
            return;
        };
        feeds.holds.remove(&hold);
        let frame: Frame = msg().to_json().into();
        for (_, tx) in &feeds.senders {
            // A socket that is this far behind ends the hold by its clock.
            let _ = tx.try_send(frame.clone());
        }
    }

    /// The drops the hub keeps a copy of: live and upcoming ones (ended
    /// drops are forgotten within about a second).
    pub(crate) fn drop_ids(&self) -> Vec<DropId> {
        self.lock().drops.keys().copied().collect()
    }

    /// How many drops the hub keeps a copy of.
    #[cfg(test)]
    pub(crate) fn drop_count(&self) -> usize {
        self.lock().drops.len()
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
            drops,
        }
    }

    fn broadcast(&self, msg: &WsMessage) {
        // No receiver is fine: nobody is connected.
        let _ = self.shared.tx.send(msg.to_json().into());
        self.shared.metrics.frame();
    }

    /// Re-reads every live drop and resynchronises every client.
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
        state.dirty.clear();
        state.dirty_since = None;
        // What an event named and the store does not list as live has ended
        // (or never was): forget it, so its next event does not reload again.
        let at = Instant::now();
        for id in std::mem::take(&mut state.unknown) {
            if !state.drops.contains_key(&id) {
                state.forgotten.insert(id, at);
            }
        }
        if self.shared.tx.receiver_count() > 0 {
            let frame: Frame = self.snapshot(&mut state).to_json().into();
            let _ = self.shared.tx.send(frame);
            self.shared.metrics.frame();
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

    /// Applies one event; `false` when the hub's copy can no longer be
    /// trusted and must be reloaded.
    fn apply(&self, state: &mut State, event: Result<(Origin, DropEvent), EventsLost>) -> bool {
        let now = self.shared.clock.now();
        let (origin, event) = match event {
            Err(lost) => {
                tracing::warn!(%lost, "hub missed store events; reloading");
                return false;
            }
            Ok(tagged) => tagged,
        };
        // Clients learn of an expiry from the stock it frees. Counted only
        // where it committed, so that the instances' counters add up to the
        // number of expiries (those of ended drops included).
        if matches!(event, DropEvent::HoldExpired { .. }) && origin == Origin::Local {
            self.shared.metrics.operation("expire", "ok");
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
                let view = DropView::new(&drop, &[], None, self.shared.names);
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
                self.broadcast(&WsMessage::DropCreated {
                    server_time: time(now),
                    drop: view,
                });
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
                let view = DropView::new(&entry.state, &entry.top, None, self.shared.names);
                state.views = None;
                self.broadcast(&WsMessage::DropUpdated {
                    server_time: time(now),
                    drop: view,
                });
            }
            DropEvent::PurchaseCancelled {
                drop_id,
                purchase_id,
                buyer_id,
                ..
            } => {
                // The units coming back show in the drop's next `stock`
                // frame; the buyer's own sockets are told why.
                if let Some(feeds) = state.private.get(&buyer_id) {
                    let frame: Frame = WsMessage::PurchaseCancelled {
                        server_time: time(now),
                        purchase_id: purchase_id.as_uuid(),
                        drop_id: drop_id.as_uuid(),
                    }
                    .to_json()
                    .into();
                    for (_, tx) in &feeds.senders {
                        let _ = tx.try_send(frame.clone());
                    }
                }
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
                reservation_id,
                variant_id,
                quantity,
                display_name,
                top_purchasers,
                ..
            } => {
                if let Some(entry) = state.drops.get_mut(&drop_id) {
                    entry.top = top_purchasers.clone();
                    state.views = None;
                }
                let names = self.shared.names;
                let shown = names.shown(&display_name);
                self.broadcast(&WsMessage::Purchase {
                    server_time: time(now),
                    drop_id: drop_id.as_uuid(),
                    variant_id: variant_id.as_uuid(),
                    quantity,
                    display_name: shown.clone(),
                    username: shown,
                    top_purchasers: top_purchasers
                        .iter()
                        .map(|t| TopPurchaserView::new(t, names))
                        .collect(),
                });
                self.hold_ended(state, reservation_id, || WsMessage::HoldPurchased {
                    server_time: time(now),
                    drop_id: drop_id.as_uuid(),
                    reservation_id: reservation_id.as_uuid(),
                });
            }
            DropEvent::HoldCreated {
                reservation_id,
                buyer_id,
                ..
            } => {
                let State {
                    private, owners, ..
                } = state;
                if let Some(feeds) = private.get_mut(&buyer_id) {
                    feeds.holds.insert(reservation_id);
                    owners.insert(reservation_id, buyer_id);
                }
            }
            DropEvent::HoldExpired {
                drop_id,
                reservation_id,
            } => self.hold_ended(state, reservation_id, || WsMessage::HoldExpired {
                server_time: time(now),
                drop_id: drop_id.as_uuid(),
                reservation_id: reservation_id.as_uuid(),
            }),
            DropEvent::HoldReleased {
                drop_id,
                reservation_id,
                ..
            } => self.hold_ended(state, reservation_id, || WsMessage::HoldReleased {
                server_time: time(now),
                drop_id: drop_id.as_uuid(),
                reservation_id: reservation_id.as_uuid(),
            }),
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
                _ = forget.tick() => self.forget_ended(),
                () = sleep_until(next_flush.unwrap_or_else(Instant::now)), if next_flush.is_some() => {
                    self.flush();
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
                    let has_dirty = !self.lock().dirty.is_empty();
                    if has_dirty && next_flush.is_none() {
                        // Leading edge: the first change after a quiet tick
                        // goes out at once; later ones wait for the tick.
                        let due = last_flush + tick;
                        if Instant::now() >= due {
                            self.flush();
                            last_flush = Instant::now();
                        } else {
                            next_flush = Some(due);
                        }
                    }
                }
            }
        }
        tracing::debug!("hub stopped");
    }
}

#[cfg(test)]
#[path = "hub_tests.rs"]
mod tests;
