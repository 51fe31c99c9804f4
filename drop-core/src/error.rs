//! The one error type every store returns.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::{DropId, PurchaseId, Reservation, ReservationId, VariantId};

/// A boxed source error kept for diagnostics.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The underlying failure of an [`Unavailable`](DropError::Unavailable) or
/// [`Internal`](DropError::Internal) error, shared so that a [`DropError`]
/// can be cloned: one failure may answer many callers (a group-commit
/// batch), each with the original error, not a text copy of it.
///
/// It is transparent in the error chain: `DropError::source()` yields the
/// original error itself, so `downcast_ref` finds it. Built with `.into()`
/// from a string, a [`BoxError`], or with [`ErrorSource::new`].
#[derive(Clone)]
pub struct ErrorSource(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl ErrorSource {
    /// Keeps `error` as the source.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(error))
    }
}

// Not `std::error::Error` itself, on purpose: thiserror then reaches the
// wrapped error through `Deref`, so the chain skips this wrapper (as it
// skipped the `Box` this type replaced).
impl std::ops::Deref for ErrorSource {
    type Target = dyn std::error::Error + Send + Sync + 'static;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl fmt::Display for ErrorSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl fmt::Debug for ErrorSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<BoxError> for ErrorSource {
    fn from(error: BoxError) -> Self {
        Self(Arc::from(error))
    }
}

impl From<&str> for ErrorSource {
    fn from(message: &str) -> Self {
        Self::from(BoxError::from(message))
    }
}

impl From<String> for ErrorSource {
    fn from(message: String) -> Self {
        Self::from(BoxError::from(message))
    }
}

/// Why a drop does not take reservations right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotActiveReason {
    /// `now < startsAt`.
    NotStarted,
    /// `now ≥ endsAt`.
    Ended,
}

/// Everything that can go wrong in dropkit. Each variant has a stable
/// machine [`code`](DropError::code); transport layers map codes to their
/// own statuses (drop-ws maps them to HTTP).
///
/// Cloning is cheap and keeps everything, the source error included (it is
/// shared, see [`ErrorSource`]).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DropError {
    /// No unit is free.
    #[error("drop {drop_id} is sold out")]
    OutOfStock {
        /// The drop.
        drop_id: DropId,
    },
    /// No such drop.
    #[error("drop {drop_id} not found")]
    DropNotFound {
        /// The drop asked for.
        drop_id: DropId,
    },
    /// The drop exists but is outside its sale window.
    #[error("drop {drop_id} is not active ({})", match reason { NotActiveReason::NotStarted => "not started yet", NotActiveReason::Ended => "ended" })]
    DropNotActive {
        /// The drop.
        drop_id: DropId,
        /// Before the start or after the end.
        reason: NotActiveReason,
    },
    /// No such reservation.
    #[error("reservation {reservation_id} not found")]
    ReservationNotFound {
        /// The reservation asked for.
        reservation_id: ReservationId,
    },
    /// The hold's window is over (whether or not a sweeper noticed yet).
    #[error("reservation {reservation_id} has expired")]
    ReservationExpired {
        /// The reservation.
        reservation_id: ReservationId,
    },
    /// Someone other than the holder tried to act on the hold.
    #[error("reservation {reservation_id} belongs to another user")]
    NotOwner {
        /// The reservation.
        reservation_id: ReservationId,
    },
    /// The hold was already turned into a purchase.
    #[error("reservation {reservation_id} was already purchased")]
    AlreadyPurchased {
        /// The reservation.
        reservation_id: ReservationId,
    },
    /// The hold was already given back by its owner.
    #[error("reservation {reservation_id} was already released")]
    AlreadyReleased {
        /// The reservation.
        reservation_id: ReservationId,
    },
    /// The buyer already holds other units of this drop (another variant
    /// or quantity): one active hold per buyer and drop. Carries that hold.
    #[error("you already hold {} of this drop (reservation {})", reservation.quantity, reservation.id)]
    HoldExists {
        /// The buyer's existing hold.
        reservation: Box<Reservation>,
    },
    /// The units asked for, with those the buyer bought already, are more
    /// than the drop's `maxPerBuyer`.
    #[error("at most {max_per_buyer} per buyer in drop {drop_id}; you have {taken} already")]
    BuyerLimitReached {
        /// The drop.
        drop_id: DropId,
        /// Its limit.
        max_per_buyer: u32,
        /// Units the buyer holds or bought (not cancelled) already.
        taken: u32,
    },
    /// The drop is paused: no new holds for now.
    #[error("drop {drop_id} is paused")]
    DropPaused {
        /// The drop.
        drop_id: DropId,
    },
    /// A variant's new total would be below its held plus sold units.
    #[error(
        "variant {variant_id} has {committed} units held or sold; its stock cannot go below that"
    )]
    StockBelowCommitted {
        /// The drop.
        drop_id: DropId,
        /// The variant.
        variant_id: VariantId,
        /// Its reserved + sold units.
        committed: u32,
    },
    /// The price cannot change once the sale has started.
    #[error("drop {drop_id} has started: its price is locked")]
    PriceLocked {
        /// The drop.
        drop_id: DropId,
    },
    /// No such purchase.
    #[error("purchase {purchase_id} not found")]
    PurchaseNotFound {
        /// The purchase asked for.
        purchase_id: PurchaseId,
    },
    /// The drop has no such variant.
    #[error("drop {drop_id} has no variant {variant_id}")]
    VariantNotFound {
        /// The drop.
        drop_id: DropId,
        /// The variant asked for.
        variant_id: VariantId,
    },
    /// A buyer asked to join a line although a reserve of the same request
    /// would succeed now: they should reserve instead.
    #[error("variant {variant_id} of drop {drop_id} has units free: reserve instead of waiting")]
    WaitlistNotNeeded {
        /// The drop.
        drop_id: DropId,
        /// The variant.
        variant_id: VariantId,
    },
    /// The drop's waiting list is off.
    #[error("drop {drop_id} has no waiting list")]
    WaitlistClosed {
        /// The drop.
        drop_id: DropId,
    },
    /// The buyer already stands in a line of this drop, for another
    /// variant or quantity: one place per buyer and drop. Carries it.
    #[error("you already wait for {} of this drop (position {})", place.quantity, place.position)]
    AlreadyInLine {
        /// The buyer's place.
        place: Box<crate::WaitlistPlace>,
    },
    /// The drop gives its units out by a draw that has not been made yet:
    /// enter the draw instead of reserving or joining a line.
    #[error("drop {drop_id} sells by draw: enter the draw instead")]
    DrawOnly {
        /// The drop.
        drop_id: DropId,
    },
    /// The draw takes no more entries (or withdrawals): `drawAt` has come,
    /// or the draw was made.
    #[error("entries to the draw of drop {drop_id} are closed")]
    EntriesClosed {
        /// The drop.
        drop_id: DropId,
    },
    /// The drop sells first come, first served: it has no draw.
    #[error("drop {drop_id} has no draw")]
    NotADraw {
        /// The drop.
        drop_id: DropId,
    },
    /// Log entries after the cursor asked for were pruned (retention):
    /// the consumer missed them and must re-read current state, then go
    /// on from `oldest - 1` or from the log's head.
    #[error("log entries after {after} were pruned; the oldest kept is {oldest}")]
    EventsPruned {
        /// The cursor asked for.
        after: u64,
        /// The oldest entry still kept (or the next to be written).
        oldest: u64,
    },
    /// The idempotency key was used before with a different request.
    #[error("idempotency key {key:?} was used for a different request")]
    IdempotencyKeyReused {
        /// The key.
        key: String,
    },
    /// A request with the same idempotency key is still being answered.
    #[error("a request with idempotency key {key:?} is still in progress")]
    IdempotencyInProgress {
        /// The key.
        key: String,
    },
    /// A caller-supplied value breaks a rule.
    #[error("invalid {field}: {message}")]
    InvalidInput {
        /// The offending field, as named on the wire (camelCase).
        field: Cow<'static, str>,
        /// What the rule is.
        message: Cow<'static, str>,
    },
    /// The store cannot be reached or gave up for a transient reason
    /// (lost connection, deadlock, serialization failure, pool timeout).
    /// Nothing was changed; the call may be retried.
    #[error("{store} store unavailable: {source}")]
    Unavailable {
        /// Which store (`"postgres"`, …).
        store: &'static str,
        /// The underlying failure.
        #[source]
        source: ErrorSource,
    },
    /// A fault that retrying will not fix (a broken invariant, a bug, a
    /// schema mismatch). Reported as a server fault.
    #[error("{store} store failed: {source}")]
    Internal {
        /// Which store.
        store: &'static str,
        /// The underlying failure.
        #[source]
        source: ErrorSource,
    },
}

impl DropError {
    /// Shorthand for [`DropError::InvalidInput`].
    pub fn invalid(
        field: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The stable machine code of this error, e.g. `OUT_OF_STOCK`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::OutOfStock { .. } => "OUT_OF_STOCK",
            Self::DropNotFound { .. } => "DROP_NOT_FOUND",
            Self::DropNotActive { .. } => "DROP_NOT_ACTIVE",
            Self::ReservationNotFound { .. } => "RESERVATION_NOT_FOUND",
            Self::ReservationExpired { .. } => "RESERVATION_EXPIRED",
            Self::NotOwner { .. } => "NOT_OWNER",
            Self::AlreadyPurchased { .. } => "ALREADY_PURCHASED",
            Self::AlreadyReleased { .. } => "ALREADY_RELEASED",
            Self::HoldExists { .. } => "HOLD_EXISTS",
            Self::BuyerLimitReached { .. } => "BUYER_LIMIT_REACHED",
            Self::DropPaused { .. } => "DROP_PAUSED",
            Self::StockBelowCommitted { .. } => "STOCK_BELOW_COMMITTED",
            Self::PriceLocked { .. } => "PRICE_LOCKED",
            Self::PurchaseNotFound { .. } => "PURCHASE_NOT_FOUND",
            Self::VariantNotFound { .. } => "VARIANT_NOT_FOUND",
            Self::WaitlistNotNeeded { .. } => "WAITLIST_NOT_NEEDED",
            Self::WaitlistClosed { .. } => "WAITLIST_CLOSED",
            Self::AlreadyInLine { .. } => "ALREADY_IN_LINE",
            Self::DrawOnly { .. } => "DRAW_ONLY",
            Self::EntriesClosed { .. } => "ENTRIES_CLOSED",
            Self::NotADraw { .. } => "NOT_A_DRAW",
            Self::EventsPruned { .. } => "EVENTS_PRUNED",
            Self::IdempotencyKeyReused { .. } => "IDEMPOTENCY_KEY_REUSED",
            Self::IdempotencyInProgress { .. } => "IDEMPOTENCY_IN_PROGRESS",
            Self::InvalidInput { .. } => "INVALID_INPUT",
            Self::Unavailable { .. } => "UNAVAILABLE",
            Self::Internal { .. } => "INTERNAL",
        }
    }

    /// Whether retrying the same call may succeed (only [`DropError::Unavailable`]).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// The field an [`DropError::InvalidInput`] names.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidInput { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// Every code [`DropError::code`] can return, for documentation and tests.
pub const ERROR_CODES: &[&str] = &[
    "OUT_OF_STOCK",
    "DROP_NOT_FOUND",
    "DROP_NOT_ACTIVE",
    "RESERVATION_NOT_FOUND",
    "RESERVATION_EXPIRED",
    "NOT_OWNER",
    "ALREADY_PURCHASED",
    "ALREADY_RELEASED",
    "HOLD_EXISTS",
    "BUYER_LIMIT_REACHED",
    "DROP_PAUSED",
    "STOCK_BELOW_COMMITTED",
    "PRICE_LOCKED",
    "PURCHASE_NOT_FOUND",
    "VARIANT_NOT_FOUND",
    "WAITLIST_NOT_NEEDED",
    "WAITLIST_CLOSED",
    "ALREADY_IN_LINE",
    "DRAW_ONLY",
    "ENTRIES_CLOSED",
    "NOT_A_DRAW",
    "EVENTS_PRUNED",
    "IDEMPOTENCY_KEY_REUSED",
    "IDEMPOTENCY_IN_PROGRESS",
    "INVALID_INPUT",
    "UNAVAILABLE",
    "INTERNAL",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant has its own code, and `ERROR_CODES` lists exactly them.
    #[test]
    fn codes_are_distinct_and_listed() {
        let (d, r, v) = (DropId::new(), ReservationId::new(), VariantId::new());
        let source = || -> ErrorSource { "boom".into() };
        let all = [
            DropError::OutOfStock { drop_id: d },
            DropError::DropNotFound { drop_id: d },
            DropError::DropNotActive {
                drop_id: d,
                reason: NotActiveReason::Ended,
            },
            DropError::ReservationNotFound { reservation_id: r },
            DropError::ReservationExpired { reservation_id: r },
            DropError::NotOwner { reservation_id: r },
            DropError::AlreadyPurchased { reservation_id: r },
            DropError::AlreadyReleased { reservation_id: r },
            DropError::HoldExists {
                reservation: Box::new(crate::Reservation::new(
                    r,
                    d,
                    v,
                    crate::Buyer::new("b".parse().unwrap(), crate::Username::parse("bob").unwrap()),
                    crate::ReservationStatus::Active,
                    chrono::DateTime::UNIX_EPOCH,
                    chrono::DateTime::UNIX_EPOCH,
                )),
            },
            DropError::BuyerLimitReached {
                drop_id: d,
                max_per_buyer: 1,
                taken: 1,
            },
            DropError::DropPaused { drop_id: d },
            DropError::StockBelowCommitted {
                drop_id: d,
                variant_id: v,
                committed: 1,
            },
            DropError::PriceLocked { drop_id: d },
            DropError::PurchaseNotFound {
                purchase_id: PurchaseId::new(),
            },
            DropError::VariantNotFound {
                drop_id: d,
                variant_id: v,
            },
            DropError::WaitlistNotNeeded {
                drop_id: d,
                variant_id: v,
            },
            DropError::WaitlistClosed { drop_id: d },
            DropError::AlreadyInLine {
                place: Box::new(crate::WaitlistPlace::new(
                    d,
                    v,
                    crate::Buyer::new("b".parse().unwrap(), crate::Username::parse("bob").unwrap()),
                    1,
                    1,
                    chrono::DateTime::UNIX_EPOCH,
                )),
            },
            DropError::DrawOnly { drop_id: d },
            DropError::EntriesClosed { drop_id: d },
            DropError::NotADraw { drop_id: d },
            DropError::EventsPruned {
                after: 1,
                oldest: 5,
            },
            DropError::IdempotencyKeyReused { key: "k".into() },
            DropError::IdempotencyInProgress { key: "k".into() },
            DropError::invalid("name", "bad"),
            DropError::Unavailable {
                store: "test",
                source: source(),
            },
            DropError::Internal {
                store: "test",
                source: source(),
            },
        ];
        let codes: Vec<&str> = all.iter().map(DropError::code).collect();
        assert_eq!(codes, ERROR_CODES);
        let retryable: Vec<bool> = all.iter().map(DropError::is_retryable).collect();
        assert_eq!(retryable.iter().filter(|r| **r).count(), 1);
        assert!(all[ERROR_CODES.len() - 2].is_retryable());
    }

    /// A clone is the same error: same code, same text, and the same
    /// source, reachable through the chain as its own type.
    #[test]
    fn a_clone_keeps_the_code_the_text_and_the_source() {
        #[derive(Debug, thiserror::Error)]
        #[error("connection reset")]
        struct Reset;

        let original = DropError::Unavailable {
            store: "test",
            source: ErrorSource::new(Reset),
        };
        let copy = original.clone();
        assert_eq!(copy.code(), original.code());
        assert_eq!(copy.to_string(), "test store unavailable: connection reset");
        assert_eq!(copy.to_string(), original.to_string());
        let source = std::error::Error::source(&copy).expect("a source");
        assert!(source.downcast_ref::<Reset>().is_some(), "{source:?}");
        let domain = DropError::invalid("name", "empty");
        assert_eq!(domain.clone().to_string(), "invalid name: empty");
    }
}
