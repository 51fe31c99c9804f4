//! # drop-core
//!
//! The domain of [dropkit](https://docs.rs/dropkit): limited-edition drops,
//! the holds buyers take on their units, and the purchases that complete
//! them.
//!
//! - [`model`]: [`DropInfo`], [`Reservation`], [`Purchase`], [`Stock`] and their
//!   validated parts ([`Money`], ids).
//! - [`variant`]: a drop's variants ([`VariantInfo`], [`VariantStock`]) and
//!   what a reserve asks for ([`ReserveRequest`]).
//! - [`waitlist`]: the line freed units go to ([`WaitlistPlace`]), and its
//!   rules.
//! - [`admin`]: editing a drop ([`DropPatch`]).
//! - [`idempotency`]: keys that make a retried write act once.
//! - [`buyer`]: [`BuyerId`], the store's key for a buyer, and [`Buyer`]: an
//!   id with the display name ([`Username`]'s rules) public feeds show.
//! - [`state`]: the reservation state machine, as plain functions.
//! - [`InventoryStore`]: the async, object-safe trait every store
//!   implements, with the invariants it must keep.
//! - [`DropError`]: the one error type, with a stable code per variant.
//! - [`DropEvent`], [`EventBus`]: committed changes, fanned out in process.
//! - [`log`]: the durable event log ([`LogEntry`], [`Change`]) every store
//!   keeps, and the named cursors that follow it.
//! - [`entry`]: draw drops ([`Entry`], [`DrawStatus`]) and their rules.
//! - [`draw`](mod@draw): the arithmetic of a verifiable draw ([`draw()`](fn@draw), [`verify_draw`]):
//!   the seed's commitment, the hashed entry list, the ranking, and the check
//!   anyone can run on a published draw (docs/draws.md).
//! - [`session`]: revoked sign-in sessions ([`RevokedSession`]), which
//!   the store shares between instances.
//! - [`Clock`]: the system clock and a manual one for tests.
//! - [`ExpiryScheduler`]: expires holds when they are due, without polling;
//!   [`DrawRunner`]: makes each draw at its `drawAt`.
//! - `testkit` (feature): the conformance suite every store runs.
//!
//! ## Implementing a store
//!
//! Implement [`InventoryStore`], use [`state::next_status`] to decide every
//! transition inside your critical section, publish events through an
//! [`EventBus`] only after the change commits, and stamp the conformance
//! suite into your tests with [`conformance_suite!`](crate::conformance_suite)
//! (feature `testkit`).
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod admin;
pub mod buyer;
pub mod clock;
pub mod draw;
pub mod draw_runner;
pub mod entry;
pub mod error;
pub mod event;
pub mod idempotency;
pub mod ids;
pub mod log;
pub mod model;
pub mod money;
pub mod scheduler;
pub mod session;
pub mod state;
pub mod store;
pub mod username;
pub mod variant;
pub mod waitlist;

#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;

pub use admin::{DropPatch, VariantPatch};
pub use buyer::{BUYER_ID_MAX, Buyer, BuyerId};
pub use clock::{Clock, ManualClock, SystemClock};
pub use draw::{
    Beacon, DrawEntry, DrawError, DrawKey, DrawResult, DrawStock, DrawWinners, EntryListHash,
    MAX_BEACON, PublishedDraw, Receipt, Seed, SeedHash, VariantDraw, VerifyError, draw,
    draw_and_publish, verify_draw,
};
pub use draw_runner::{BeaconSource, DrawRunner, RecordedBeacons};
pub use entry::{DrawRandom, DrawStatus, DrawSummary, Entry, EntryOutcome, OsRandom, SeededRandom};
pub use error::{BoxError, DropError, ERROR_CODES, ErrorSource, NotActiveReason};
pub use event::{
    DEFAULT_EVENT_CAPACITY, DropEvent, EventBus, EventStream, EventsLost, Origin, OriginEventStream,
};
pub use idempotency::{
    Applied, IDEMPOTENCY_KEY_MAX, IDEMPOTENCY_RETENTION, IdempotencyKey, IdempotencyRecord,
    Recorded,
};
pub use ids::{DropId, PurchaseId, ReservationId, VariantId};
pub use log::{
    CHANGE_KINDS, CURSOR_NAME_MAX, Change, CursorClaim, CursorInfo, DEFAULT_EVENT_RETENTION,
    DropAction, LogEntry, MAX_LOG_PAGE, check_cursor_name,
};
pub use model::{
    DEFAULT_HOLD, DropInfo, DropState, EARLIEST_INSTANT, LATEST_INSTANT, MAX_BEACON_NAME, MAX_HOLD,
    MAX_NAME, MAX_STOCK, MIN_HOLD, NewDrop, Purchase, PurchaseStatus, Purchased, Reservation,
    ReservationStatus, Reserved, SaleMode, Stock, TopPurchaser,
};
pub use money::Money;
pub use scheduler::{ExpiryScheduler, SchedulerHandle};
pub use session::{RevokedSession, RevokedSessions};
pub use state::{Transition, next_status};
pub use store::{
    DropOverview, InventoryStore, InventoryStoreExt, MAX_PAGE, TOP_PURCHASERS, overview_by_parts,
};
pub use username::Username;
pub use variant::{
    DEFAULT_MAX_PER_BUYER, DEFAULT_VARIANT_NAME, MAX_PER_BUYER, MAX_VARIANT_NAME, MAX_VARIANTS,
    NewVariant, ReserveRequest, VariantInfo, VariantStock,
};
pub use waitlist::{LeaveReason, WaitlistPlace};

/// Re-exported so implementors use the same version.
pub use async_trait::async_trait;
/// Re-exported: [`ExpiryScheduler::spawn`] and the web layer stop on one,
/// and a host app needs no `tokio-util` dependency of its own to make it.
pub use tokio_util::sync::CancellationToken;
