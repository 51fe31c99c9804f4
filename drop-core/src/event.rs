//! Committed changes, announced to subscribers.

use std::pin::Pin;
use std::task::{Context, Poll};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_stream::Stream;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::{
    BuyerId, DropId, DropState, Money, PurchaseId, ReservationId, Stock, TopPurchaser, Username,
    VariantId, VariantStock,
};

/// Something that changed, announced only after it committed.
///
/// Events are for the embedding application and the web layer, not for
/// the public: the hold events and [`PurchaseCompleted`](Self::PurchaseCompleted)
/// name the buyer by [`BuyerId`], so an application can tell a buyer of
/// their own holds. The web layer builds its own public frames from them
/// and never shows a buyer id publicly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
#[non_exhaustive]
pub enum DropEvent {
    /// A drop was created.
    DropCreated {
        /// The new drop and its (full) stock.
        drop: DropState,
    },
    /// A hold was taken. Carries its expiry so an expiry scheduler can wake
    /// early for a hold due sooner than the one it sleeps on.
    HoldCreated {
        /// The drop.
        drop_id: DropId,
        /// The new hold.
        reservation_id: ReservationId,
        /// Who holds it.
        buyer_id: BuyerId,
        /// The variant held.
        variant_id: VariantId,
        /// How many units.
        quantity: u32,
        /// When it runs out.
        expires_at: DateTime<Utc>,
        /// Whether it was offered from the waiting list.
        #[serde(default)]
        offered: bool,
    },
    /// A buyer joined a variant's waiting list.
    WaitlistJoined {
        /// The drop.
        drop_id: DropId,
        /// The variant waited for.
        variant_id: VariantId,
        /// Who joined.
        buyer_id: BuyerId,
        /// How many units they want.
        quantity: u32,
        /// Their place's ticket (orders the line).
        ticket: u64,
    },
    /// A buyer left a variant's waiting list: they left, were offered a
    /// hold, or were skipped.
    WaitlistLeft {
        /// The drop.
        drop_id: DropId,
        /// The variant.
        variant_id: VariantId,
        /// Who left.
        buyer_id: BuyerId,
        /// The ticket of the place they had.
        ticket: u64,
        /// Why.
        reason: crate::LeaveReason,
    },
    /// A draw drop drew (see [`crate::entry`]): every entrant's outcome
    /// is readable now. Winners' offered holds each have their own
    /// [`HoldCreated`](Self::HoldCreated); a
    /// [`StockChanged`](Self::StockChanged) follows.
    DrawCompleted {
        /// The drop.
        drop_id: DropId,
        /// When it was drawn.
        drawn_at: DateTime<Utc>,
        /// Entries drawn from.
        entries: u32,
        /// Entries that won a unit.
        winners: u32,
        /// Entries put in a line.
        waiting: u32,
    },
    /// A drop's counters changed; `stock` is the state after the change.
    StockChanged {
        /// The drop.
        drop_id: DropId,
        /// Counters after the change (sums over the variants).
        stock: Stock,
        /// Every variant's counters after the change, in the drop's order.
        variants: Vec<VariantStock>,
    },
    /// A hold was purchased.
    PurchaseCompleted {
        /// The drop.
        drop_id: DropId,
        /// The purchase made.
        purchase_id: PurchaseId,
        /// The completed hold.
        reservation_id: ReservationId,
        /// Who bought it.
        buyer_id: BuyerId,
        /// The variant bought.
        variant_id: VariantId,
        /// How many units.
        quantity: u32,
        /// What was paid.
        amount_paid: Money,
        /// The buyer's display name, as public feeds show them.
        display_name: Username,
        /// The drop's most recent buyers after this purchase, newest first.
        top_purchasers: Vec<TopPurchaser>,
    },
    /// A hold ran out of time.
    HoldExpired {
        /// The drop.
        drop_id: DropId,
        /// The expired hold.
        reservation_id: ReservationId,
    },
    /// A hold was given back by its owner.
    HoldReleased {
        /// The drop.
        drop_id: DropId,
        /// The released hold.
        reservation_id: ReservationId,
        /// Who held it (and gave it back).
        buyer_id: BuyerId,
    },
    /// An admin changed a drop: edited it, paused or resumed it, or ended
    /// it. `drop` is its state after the change.
    DropUpdated {
        /// The drop and its stock after the change.
        drop: DropState,
    },
    /// An admin cancelled a purchase; its units went back on sale (a
    /// [`StockChanged`](Self::StockChanged) follows).
    PurchaseCancelled {
        /// The drop.
        drop_id: DropId,
        /// The cancelled purchase.
        purchase_id: PurchaseId,
        /// The hold it had completed.
        reservation_id: ReservationId,
        /// Who had bought it.
        buyer_id: BuyerId,
        /// The variant.
        variant_id: VariantId,
        /// How many units went back.
        quantity: u32,
    },
}

impl DropEvent {
    /// The drop the event concerns.
    pub fn drop_id(&self) -> DropId {
        match self {
            Self::DropCreated { drop } | Self::DropUpdated { drop } => drop.drop.id,
            Self::HoldCreated { drop_id, .. }
            | Self::PurchaseCancelled { drop_id, .. }
            | Self::StockChanged { drop_id, .. }
            | Self::PurchaseCompleted { drop_id, .. }
            | Self::HoldExpired { drop_id, .. }
            | Self::HoldReleased { drop_id, .. }
            | Self::WaitlistJoined { drop_id, .. }
            | Self::WaitlistLeft { drop_id, .. }
            | Self::DrawCompleted { drop_id, .. } => *drop_id,
        }
    }
}

/// Some events never reached this subscriber (it fell behind, or the store
/// lost its feed for a while). State may have changed in ways it did not
/// hear of: re-read what it shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{missed} events were missed; re-read the current state")]
pub struct EventsLost {
    /// How many were missed (0 when unknown).
    pub missed: u64,
}

/// Where an event's change committed, as far as this process can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// In this process (through this store instance).
    Local,
    /// In another instance, relayed here (e.g. through PostgreSQL
    /// `LISTEN/NOTIFY`). Counting such an event again here would count
    /// the change once per instance.
    Remote,
}

type BusItem = Result<(Origin, DropEvent), EventsLost>;

/// The in-process fan-out every store uses for its event stream: a bounded
/// broadcast channel. Publishing never blocks; a subscriber that falls
/// more than `capacity` events behind is told so with [`EventsLost`].
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<BusItem>,
}

/// Default per-subscriber backlog of an [`EventBus`].
pub const DEFAULT_EVENT_CAPACITY: usize = 4096;

impl Default for EventBus {
    fn default() -> Self {
        Self::new(DEFAULT_EVENT_CAPACITY)
    }
}

impl EventBus {
    /// A bus keeping up to `capacity` events for a slow subscriber.
    pub fn new(capacity: usize) -> Self {
        Self {
            tx: broadcast::channel(capacity.max(1)).0,
        }
    }

    /// Announces committed events, in order. Call only after the change
    /// they describe has committed, in this process.
    pub fn publish(&self, events: impl IntoIterator<Item = DropEvent>) {
        self.publish_from(Origin::Local, events);
    }

    /// Announces events that committed in another instance and were
    /// relayed here, in order.
    pub fn publish_remote(&self, events: impl IntoIterator<Item = DropEvent>) {
        self.publish_from(Origin::Remote, events);
    }

    fn publish_from(&self, origin: Origin, events: impl IntoIterator<Item = DropEvent>) {
        for event in events {
            // No subscriber is not an error: nobody is listening yet.
            let _ = self.tx.send(Ok((origin, event)));
        }
    }

    /// Tells every subscriber that events may have been lost (e.g. after a
    /// reconnect of a cross-process feed).
    pub fn publish_lost(&self) {
        let _ = self.tx.send(Err(EventsLost { missed: 0 }));
    }

    /// A stream of everything published from now on.
    pub fn subscribe(&self) -> EventStream {
        EventStream {
            inner: BroadcastStream::new(self.tx.subscribe()),
        }
    }

    /// How many subscribers are listening.
    pub fn subscriber_count(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// A stream of committed events (`Ok`) and notices of lost events (`Err`).
pub struct EventStream {
    inner: BroadcastStream<BusItem>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}

impl EventStream {
    /// The same stream with each event's [`Origin`], for consumers that
    /// must count a change once across instances (metrics).
    pub fn with_origin(self) -> OriginEventStream {
        OriginEventStream { inner: self.inner }
    }
}

fn poll_bus(
    inner: &mut BroadcastStream<BusItem>,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<(Origin, DropEvent), EventsLost>>> {
    Pin::new(inner).poll_next(cx).map(|item| {
        item.map(|r| match r {
            Ok(item) => item,
            Err(BroadcastStreamRecvError::Lagged(missed)) => Err(EventsLost { missed }),
        })
    })
}

impl Stream for EventStream {
    type Item = Result<DropEvent, EventsLost>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        poll_bus(&mut self.inner, cx).map(|item| item.map(|r| r.map(|(_, event)| event)))
    }
}

/// An [`EventStream`] whose events carry their [`Origin`].
pub struct OriginEventStream {
    inner: BroadcastStream<BusItem>,
}

impl std::fmt::Debug for OriginEventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginEventStream").finish_non_exhaustive()
    }
}

impl Stream for OriginEventStream {
    type Item = Result<(Origin, DropEvent), EventsLost>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        poll_bus(&mut self.inner, cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt;

    use super::*;

    fn expired() -> DropEvent {
        DropEvent::HoldExpired {
            drop_id: DropId::new(),
            reservation_id: ReservationId::new(),
        }
    }

    /// The hold events name their buyer by id in JSON too (how they
    /// travel between instances), and read back as they were.
    #[test]
    fn hold_events_carry_the_buyer_id_through_json() {
        let buyer_id = BuyerId::parse("auth0|ann \"quoted\"").unwrap();
        let (drop_id, reservation_id) = (DropId::new(), ReservationId::new());
        let events = [
            DropEvent::HoldCreated {
                drop_id,
                reservation_id,
                buyer_id: buyer_id.clone(),
                variant_id: crate::VariantId::new(),
                quantity: 2,
                expires_at: DateTime::UNIX_EPOCH,
                offered: true,
            },
            DropEvent::HoldReleased {
                drop_id,
                reservation_id,
                buyer_id: buyer_id.clone(),
            },
            DropEvent::PurchaseCompleted {
                drop_id,
                purchase_id: crate::PurchaseId::new(),
                reservation_id,
                buyer_id: buyer_id.clone(),
                variant_id: crate::VariantId::new(),
                quantity: 2,
                amount_paid: crate::Money::from_minor(250).unwrap(),
                display_name: Username::parse("ann").unwrap(),
                top_purchasers: vec![],
            },
        ];
        for event in events {
            let json = serde_json::to_value(&event).unwrap();
            assert_eq!(json["buyerId"], buyer_id.as_str(), "{json}");
            assert_eq!(serde_json::from_value::<DropEvent>(json).unwrap(), event);
        }
    }

    #[tokio::test]
    async fn events_keep_their_origin() {
        let bus = EventBus::new(8);
        let mut plain = bus.subscribe();
        let mut tagged = bus.subscribe().with_origin();
        let (here, there) = (expired(), expired());
        bus.publish([here.clone()]);
        bus.publish_remote([there.clone()]);
        assert_eq!(plain.next().await, Some(Ok(here.clone())));
        assert_eq!(plain.next().await, Some(Ok(there.clone())));
        assert_eq!(tagged.next().await, Some(Ok((Origin::Local, here))));
        assert_eq!(tagged.next().await, Some(Ok((Origin::Remote, there))));
    }
}
