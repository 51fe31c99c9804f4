//! Committed events, to this process and to every other instance.
//!
//! Locally, events go to an [`EventBus`] right after commit. Across
//! instances they travel through PostgreSQL `LISTEN/NOTIFY`, off the hot
//! path: writers hand events to a channel and return; one notifier task per
//! store drains whatever piled up while its previous `NOTIFY` was in flight
//! and sends it as one payload (stock snapshots of the same drop coalesced
//! to the newest). So a storm of reservations costs a handful of
//! notifications, not one each. Payloads carry the sending instance's id so
//! an instance skips its own.
//!
//! The channel is the store's ([`PgStoreBuilder::channel`](crate::PgStoreBuilder::channel)):
//! stores in different schemas of one database use different channels and
//! never hear each other. Notifications are sent through the store's pool
//! (`pg_notify` works through a transaction-pooling proxy); the listener
//! holds a connection of its own, from a pool of one that may point
//! elsewhere ([`PgStoreBuilder::listener_url`](crate::PgStoreBuilder::listener_url)).
//! The notifier, the listener and its heartbeats run on the feed's
//! [`TaskTracker`], which the store's shutdown waits for.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use drop_core::{DropEvent, DropId, EventBus};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

/// The notification channel of a store in the default schema, the one
/// every earlier version used.
pub(crate) const DEFAULT_CHANNEL: &str = "dropkit_events";

/// PostgreSQL refuses payloads of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7_000;

/// How long one `NOTIFY` may take before it counts as failed.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many events one drain of the queue takes at most.
const MAX_DRAIN: usize = 4_096;

/// What travels in one notification.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    /// The sending instance.
    i: Uuid,
    /// The sender dropped events (its queue overflowed): resync.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    lost: bool,
    /// Committed events, in commit order.
    #[serde(default)]
    e: Vec<DropEvent>,
}

/// Where writers hand committed events.
#[derive(Debug, Clone)]
pub(crate) struct Fanout {
    /// Every committed change: this instance's (published as local) and,
    /// heard through the database, the others' (published as remote, so
    /// per-instance counts can tell them apart).
    bus: EventBus,
    remote: Option<mpsc::Sender<DropEvent>>,
    lost: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Whether the listener is connected and listening (always true for a
    /// store that does not listen).
    listening: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Fanout {
    pub(crate) fn local_only(bus: EventBus) -> Self {
        Self {
            bus,
            remote: None,
            lost: Default::default(),
            listening: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }

    /// Whether events from other instances are being heard right now.
    pub(crate) fn listening(&self) -> bool {
        self.listening.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// Announces committed events here and (soon) to other instances.
    pub(crate) fn publish(&self, events: Vec<DropEvent>) {
        if events.is_empty() {
            return;
        }
        if let Some(remote) = &self.remote {
            for event in &events {
                if remote.try_send(event.clone()).is_err() {
                    // Full (the database is slow or gone): other instances
                    // will be told to resync rather than be slowed down.
                    self.lost.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        self.bus.publish(events);
    }

    /// Tells local subscribers (and other instances) that events may have
    /// been missed, e.g. after a write whose commit is unknown.
    pub(crate) fn publish_lost(&self) {
        self.lost.store(true, std::sync::atomic::Ordering::Relaxed);
        self.bus.publish_lost();
    }
}

/// How the cross-instance feed is run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FeedSettings {
    /// Events waiting to be sent before the oldest are dropped.
    pub(crate) queue: usize,
    /// How long events gather before one `NOTIFY`.
    pub(crate) interval: Duration,
    /// How often the listener sends itself a heartbeat.
    pub(crate) heartbeat: Duration,
    /// How long the listener may hear nothing (not even its own heartbeat)
    /// before it takes its connection for dead and reconnects.
    pub(crate) silence: Duration,
}

/// Where the feed's tasks run and how they are stopped.
#[derive(Debug, Clone)]
pub(crate) struct FeedTasks {
    /// The notifier, the listener and the heartbeats run here.
    pub(crate) tracker: TaskTracker,
    /// Stops the listener; makes the notifier send what is queued and end.
    pub(crate) stop: CancellationToken,
}

/// Starts the notifier and the listener on `tasks`; resolves once the
/// listener listens on `channel`, so events sent after this returns are
/// heard. `pool` sends notifications; `listener_pool` (of one connection)
/// holds the listening one.
pub(crate) async fn start(
    pool: PgPool,
    listener_pool: PgPool,
    channel: Arc<str>,
    bus: EventBus,
    instance: Uuid,
    settings: FeedSettings,
    tasks: FeedTasks,
) -> Result<Fanout, sqlx::Error> {
    let (tx, rx) = mpsc::channel(settings.queue.max(1));
    let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let listening = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (ready_tx, ready_rx) = oneshot::channel();
    tasks.tracker.spawn(listen(
        Listener {
            pool: pool.clone(),
            listener_pool,
            channel: Arc::clone(&channel),
            bus: bus.clone(),
            instance,
            listening: listening.clone(),
            heartbeat: settings.heartbeat,
            silence: settings.silence,
            tasks: tasks.tracker.clone(),
        },
        tasks.stop.clone(),
        ready_tx,
    ));
    match ready_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(sqlx::Error::WorkerCrashed),
    }
    tasks.tracker.spawn(notify(
        Sender {
            pool,
            channel,
            instance,
        },
        rx,
        lost.clone(),
        settings.interval,
        tasks.stop.clone(),
    ));
    Ok(Fanout {
        bus,
        remote: Some(tx),
        lost,
        listening,
    })
}

/// Where the notifier sends, and as whom.
struct Sender {
    pool: PgPool,
    channel: Arc<str>,
    instance: Uuid,
}

/// Keeps the newest stock snapshot per drop; everything else in order.
fn coalesce(events: Vec<DropEvent>) -> Vec<DropEvent> {
    let mut newest: HashMap<DropId, u64> = HashMap::new();
    for e in &events {
        if let DropEvent::StockChanged { drop_id, stock, .. } = e {
            let v = newest.entry(*drop_id).or_default();
            *v = (*v).max(stock.version);
        }
    }
    let mut kept: HashMap<DropId, bool> = HashMap::new();
    events
        .into_iter()
        .filter(|e| match e {
            DropEvent::StockChanged { drop_id, stock, .. } => {
                let first = !kept.get(drop_id).copied().unwrap_or(false);
                if stock.version == newest[drop_id] && first {
                    kept.insert(*drop_id, true);
                    true
                } else {
                    false
                }
            }
            _ => true,
        })
        .collect()
}

/// Splits events into payloads under PostgreSQL's size limit.
///
/// An event that alone exceeds the limit (a drop of many variants with
/// long names: its state or its stock) cannot travel: it is left out and
/// the payloads say events were lost, so the other instances' subscribers
/// resync from the store instead.
fn payloads(instance: Uuid, lost: bool, events: Vec<DropEvent>) -> Vec<String> {
    let mut lost = lost;
    let events: Vec<String> = events
        .iter()
        .filter_map(|event| {
            let json = serde_json::to_string(event).ok()?;
            if json.len() > MAX_PAYLOAD {
                lost = true;
                return None;
            }
            Some(json)
        })
        .collect();
    let mut out = Vec::new();
    let mut chunk: Vec<String> = Vec::new();
    let mut size = 0;
    let flush = |chunk: &mut Vec<String>, lost: bool, out: &mut Vec<String>| {
        let head = serde_json::json!({ "i": instance, "lost": lost }).to_string();
        // {"i":..,"lost":..,"e":[a,b]}
        let mut s = String::with_capacity(head.len() + 8);
        s.push_str(&head[..head.len() - 1]);
        s.push_str(",\"e\":[");
        s.push_str(&chunk.join(","));
        s.push_str("]}");
        out.push(s);
        chunk.clear();
    };
    let mut first = true;
    for json in events {
        if !chunk.is_empty() && size + json.len() > MAX_PAYLOAD {
            flush(&mut chunk, lost && first, &mut out);
            first = false;
            size = 0;
        }
        size += json.len() + 1;
        chunk.push(json);
    }
    if !chunk.is_empty() || (lost && first) {
        flush(&mut chunk, lost && first, &mut out);
    }
    out
}

async fn notify(
    to: Sender,
    mut rx: mpsc::Receiver<DropEvent>,
    lost: std::sync::Arc<std::sync::atomic::AtomicBool>,
    interval: Duration,
    cancel: CancellationToken,
) {
    let mut batch = Vec::new();
    loop {
        let stopping = tokio::select! {
            () = cancel.cancelled() => true,
            n = rx.recv_many(&mut batch, MAX_DRAIN) => if n == 0 { true } else {
                // Each NOTIFY is a commit competing with the store's own:
                // let events gather for a moment so a storm costs a few
                // per second.
                if interval.is_zero() {
                    false
                } else {
                    tokio::select! {
                        () = cancel.cancelled() => true,
                        () = tokio::time::sleep(interval) => false,
                    }
                }
            },
        };
        // Shutting down: what is queued still goes out (the writes that
        // made it have committed), then the notifier ends.
        while stopping || batch.len() < MAX_DRAIN {
            match rx.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        let was_lost = lost.swap(false, std::sync::atomic::Ordering::Relaxed);
        for payload in payloads(to.instance, was_lost, coalesce(std::mem::take(&mut batch))) {
            if !send(&to.pool, &to.channel, &payload, &lost).await {
                return;
            }
        }
        if stopping {
            return;
        }
    }
}

/// Sends one payload, retrying a little; false once the pool is closed.
async fn send(
    pool: &PgPool,
    channel: &str,
    payload: &str,
    lost: &std::sync::atomic::AtomicBool,
) -> bool {
    let mut attempt = 0;
    loop {
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(pool);
        // A connection that went silent must not stall every later
        // notification: give up on this one and tell the others to resync.
        let sent = match tokio::time::timeout(NOTIFY_TIMEOUT, sent).await {
            Ok(sent) => sent,
            Err(_) => Err(sqlx::Error::Io(std::io::ErrorKind::TimedOut.into())),
        };
        match sent {
            Ok(_) => return true,
            Err(sqlx::Error::PoolClosed) => return false,
            Err(e) if attempt < 3 && !matches!(e, sqlx::Error::PoolTimedOut) => {
                attempt += 1;
                tracing::debug!(error = %e, attempt, "NOTIFY failed; retrying");
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "NOTIFY failed; other instances will resync");
                lost.store(true, std::sync::atomic::Ordering::Relaxed);
                return true;
            }
        }
    }
}

/// What the listener task needs.
struct Listener {
    /// The store's pool, for the heartbeats.
    pool: PgPool,
    /// The listening connection's own pool (of one).
    listener_pool: PgPool,
    channel: Arc<str>,
    bus: EventBus,
    instance: Uuid,
    listening: std::sync::Arc<std::sync::atomic::AtomicBool>,
    heartbeat: Duration,
    silence: Duration,
    /// Where heartbeats are spawned (the feed's tracker).
    tasks: TaskTracker,
}

/// The payload of a heartbeat: from this instance, so every instance but
/// this one skips it; this one counts it as proof its connection works.
fn heartbeat_payload(instance: Uuid) -> String {
    serde_json::json!({ "i": instance, "e": [] }).to_string()
}

async fn listen(
    me: Listener,
    cancel: CancellationToken,
    ready: oneshot::Sender<Result<(), sqlx::Error>>,
) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(50);
    loop {
        let connected = async {
            let mut listener = PgListener::connect_with(&me.listener_pool).await?;
            listener.listen(&me.channel).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            () = cancel.cancelled() => return,
            l = connected => match l {
                Ok(l) => l,
                Err(e) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Err(e));
                        return;
                    }
                    if matches!(e, sqlx::Error::PoolClosed) {
                        return;
                    }
                    tracing::warn!(error = %e, ?backoff, "event listener cannot reconnect yet");
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    // Capped low: readiness waits on the listener, so it
                    // must come back soon after the database does.
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        backoff = Duration::from_millis(50);
        me.listening
            .store(true, std::sync::atomic::Ordering::Relaxed);
        match ready.take() {
            Some(ready) => {
                let _ = ready.send(Ok(()));
            }
            // Reconnected: whatever was sent meanwhile is gone.
            None => {
                tracing::info!("event listener reconnected; subscribers resync");
                me.bus.publish_lost();
            }
        }
        // A connection that died without a word (a half-open TCP
        // connection: no reset, no close) never ends try_recv. The
        // listener sends itself a heartbeat now and then, through the
        // pool; hearing nothing at all for `silence` means the connection
        // is gone.
        let mut beat = tokio::time::interval(me.heartbeat);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut heard = tokio::time::Instant::now();
        loop {
            let next = tokio::select! {
                () = cancel.cancelled() => return,
                n = listener.try_recv() => n,
                _ = beat.tick() => {
                    if heard.elapsed() >= me.silence {
                        tracing::warn!(silence = ?me.silence, "event listener heard nothing, not even its heartbeat; reconnecting");
                        break;
                    }
                    let (pool, payload) = (me.pool.clone(), heartbeat_payload(me.instance));
                    let (bound, channel) = (me.silence, Arc::clone(&me.channel));
                    me.tasks.spawn(async move {
                        // Bounded: on a half-open connection it would
                        // never end, and hold that connection forever.
                        let sent = tokio::time::timeout(
                            bound,
                            sqlx::query("SELECT pg_notify($1, $2)")
                                .bind(&*channel)
                                .bind(payload)
                                .execute(&pool),
                        )
                        .await;
                        if !matches!(sent, Ok(Ok(_))) {
                            tracing::debug!("heartbeat NOTIFY failed");
                        }
                    });
                    continue;
                }
            };
            match next {
                Ok(Some(n)) => {
                    heard = tokio::time::Instant::now();
                    deliver(&me.bus, me.instance, n.payload());
                }
                Ok(None) => break,
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "event listener lost its connection");
                    break;
                }
            }
        }
        me.listening
            .store(false, std::sync::atomic::Ordering::Relaxed);
        // Events may be missed from here until the reconnect: say so now
        // as well, so consumers do not wait for the reconnect to resync.
        me.bus.publish_lost();
    }
}

fn deliver(bus: &EventBus, instance: Uuid, payload: &str) {
    match serde_json::from_str::<Envelope>(payload) {
        Ok(env) if env.i == instance => {}
        Ok(env) => {
            if env.lost {
                bus.publish_lost();
            }
            // Marked as another instance's, so counts kept per instance
            // (the hub's expiry metric) count each change once.
            bus.publish_remote(env.e);
        }
        Err(e) => tracing::warn!(error = %e, "ignoring a malformed event notification"),
    }
}

#[cfg(test)]
mod tests {
    use drop_core::{ReservationId, Stock};

    use super::*;

    fn stock(drop_id: DropId, version: u64) -> DropEvent {
        DropEvent::StockChanged {
            drop_id,
            stock: Stock::new(10, version as u32, 0, version),
            variants: Vec::new(),
        }
    }

    #[test]
    fn coalesces_stock_per_drop_and_keeps_the_rest() {
        let (a, b) = (DropId::new(), DropId::new());
        let hold = DropEvent::HoldExpired {
            drop_id: a,
            reservation_id: ReservationId::new(),
        };
        let out = coalesce(vec![
            stock(a, 1),
            hold.clone(),
            stock(b, 4),
            stock(a, 3),
            stock(a, 2),
        ]);
        assert_eq!(out, vec![hold, stock(b, 4), stock(a, 3)]);
    }

    /// A stock snapshot of a drop of 100 variants is too large for one
    /// notification: it is left out, the payload says events were lost
    /// (the other instances resync), and the rest still travels.
    #[test]
    fn an_event_too_large_for_a_payload_is_reported_lost() {
        use drop_core::{VariantId, VariantStock};

        let big = DropEvent::StockChanged {
            drop_id: DropId::new(),
            stock: Stock::new(100, 0, 0, 1),
            variants: (0..100)
                .map(|_| VariantStock::new(VariantId::new(), 1, 0, 0))
                .collect(),
        };
        assert!(serde_json::to_string(&big).unwrap().len() > MAX_PAYLOAD);
        let small = stock(DropId::new(), 1);
        let out = payloads(Uuid::new_v4(), false, vec![big, small.clone()]);
        assert_eq!(out.len(), 1);
        let env: Envelope = serde_json::from_str(&out[0]).unwrap();
        assert!(env.lost);
        assert_eq!(env.e, vec![small]);
    }

    /// The largest events that travel: a purchase by a buyer whose id is
    /// the longest there is and doubles in JSON (every byte escaped), with
    /// the longest names in its latest buyers. Each fits a payload with
    /// room to spare, and payloads of many stay under the limit.
    #[test]
    fn the_largest_events_fit_a_payload() {
        use drop_core::{BUYER_ID_MAX, BuyerId, TopPurchaser, Username};

        let buyer_id = BuyerId::parse(&"\"".repeat(BUYER_ID_MAX)).unwrap();
        let name = Username::parse(&"n".repeat(50)).unwrap();
        let at = chrono::DateTime::UNIX_EPOCH;
        let purchase = DropEvent::PurchaseCompleted {
            drop_id: DropId::new(),
            purchase_id: drop_core::PurchaseId::new(),
            reservation_id: ReservationId::new(),
            buyer_id: buyer_id.clone(),
            variant_id: drop_core::VariantId::new(),
            quantity: drop_core::MAX_PER_BUYER,
            amount_paid: drop_core::Money::from_minor(drop_core::money::MONEY_MAX_MINOR).unwrap(),
            display_name: name.clone(),
            top_purchasers: vec![TopPurchaser::new(name, at); drop_core::TOP_PURCHASERS],
        };
        let held = DropEvent::HoldCreated {
            drop_id: DropId::new(),
            reservation_id: ReservationId::new(),
            buyer_id: buyer_id.clone(),
            variant_id: drop_core::VariantId::new(),
            quantity: drop_core::MAX_PER_BUYER,
            expires_at: at,
            offered: true,
        };
        let released = DropEvent::HoldReleased {
            drop_id: DropId::new(),
            reservation_id: ReservationId::new(),
            buyer_id,
        };
        for event in [&purchase, &held, &released] {
            let json = serde_json::to_string(event).unwrap();
            assert!(json.len() < MAX_PAYLOAD / 4, "{} bytes: {json}", json.len());
        }
        let events: Vec<DropEvent> = (0..100)
            .flat_map(|_| [purchase.clone(), held.clone(), released.clone()])
            .collect();
        let me = Uuid::new_v4();
        let mut back = Vec::new();
        for p in payloads(me, false, events.clone()) {
            assert!(p.len() < 8000, "{} bytes", p.len());
            back.extend(serde_json::from_str::<Envelope>(&p).unwrap().e);
        }
        assert_eq!(back, events);
    }

    #[test]
    fn payloads_stay_under_the_limit_and_round_trip() {
        let a = DropId::new();
        let events: Vec<DropEvent> = (0..500).map(|v| stock(a, v)).collect();
        let me = Uuid::new_v4();
        let out = payloads(me, true, events.clone());
        assert!(out.len() > 1);
        let mut back = Vec::new();
        for (n, p) in out.iter().enumerate() {
            assert!(p.len() < 8000);
            let env: Envelope = serde_json::from_str(p).unwrap();
            assert_eq!(env.i, me);
            assert_eq!(env.lost, n == 0);
            back.extend(env.e);
        }
        assert_eq!(back, events);
    }
}
