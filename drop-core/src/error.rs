//! The one error type every store returns.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::{DropId, ReservationId};

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
        let (d, r) = (DropId::new(), ReservationId::new());
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
        assert!(all[9].is_retryable());
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
