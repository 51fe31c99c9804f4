//! The reservation state machine, free of any store.
//!
//! ```text
//!             purchase (owner, now < expiresAt)
//!   Active ───────────────────────────────────▶ Purchased
//!     │  ╲ release (owner, now < expiresAt)
//!     │   ╲────────────────────────────────────▶ Released
//!     │ expire (now ≥ expiresAt)
//!     └────────────────────────────────────────▶ Expired
//! ```
//!
//! Terminal states never change. Time decides before any sweeper does: an
//! active hold at or past `expiresAt` is already expired for every purpose,
//! so a purchase then fails with `RESERVATION_EXPIRED` whether or not the
//! sweeper has run. Stores call [`next_status`] inside their critical
//! section and then write what it returns.

use chrono::{DateTime, Utc};

use crate::{BuyerId, DropError, Reservation, ReservationStatus};

/// A move a hold can be asked to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The owner buys the held unit.
    Purchase,
    /// The owner gives the unit back.
    Release,
    /// Time ran out.
    Expire,
}

impl Reservation {
    /// Whether the hold is active but its time is up at `now`.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.status == ReservationStatus::Active && now >= self.expires_at
    }

    /// The status as time sees it: an active hold past its expiry reads as
    /// [`ReservationStatus::Expired`] even before a store records it.
    pub fn effective_status(&self, now: DateTime<Utc>) -> ReservationStatus {
        if self.is_due(now) {
            ReservationStatus::Expired
        } else {
            self.status
        }
    }
}

/// The error that describes `status` to someone trying to move the hold.
fn terminal_error(res: &Reservation, status: ReservationStatus) -> DropError {
    let reservation_id = res.id;
    match status {
        ReservationStatus::Purchased => DropError::AlreadyPurchased { reservation_id },
        ReservationStatus::Released => DropError::AlreadyReleased { reservation_id },
        ReservationStatus::Expired | ReservationStatus::Active => {
            DropError::ReservationExpired { reservation_id }
        }
    }
}

/// Decides a transition: the status the hold moves to, or why it may not.
///
/// `actor` is the buyer asking (ignored for [`Transition::Expire`]). Owners
/// are checked first, so a stranger learns nothing about someone else's
/// hold beyond `NOT_OWNER`.
pub fn next_status(
    res: &Reservation,
    transition: Transition,
    actor: Option<&BuyerId>,
    now: DateTime<Utc>,
) -> Result<ReservationStatus, DropError> {
    if transition != Transition::Expire && actor != Some(&res.buyer_id) {
        return Err(DropError::NotOwner {
            reservation_id: res.id,
        });
    }
    let current = res.effective_status(now);
    if current != ReservationStatus::Active {
        // An expire of a hold that time already expired is the one legal
        // move out of a "terminal-looking" state.
        if transition == Transition::Expire && res.status == ReservationStatus::Active {
            return Ok(ReservationStatus::Expired);
        }
        return Err(terminal_error(res, current));
    }
    match transition {
        Transition::Purchase => Ok(ReservationStatus::Purchased),
        Transition::Release => Ok(ReservationStatus::Released),
        Transition::Expire => Err(DropError::invalid(
            "reservationId",
            "the hold is not due to expire yet",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DropId, ReservationId};

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000 + secs, 0).unwrap()
    }

    fn hold(status: ReservationStatus) -> Reservation {
        Reservation {
            id: ReservationId::new(),
            drop_id: DropId::new(),
            variant_id: crate::VariantId::new(),
            quantity: 1,
            buyer_id: BuyerId::parse("alice").unwrap(),
            display_name: crate::Username::parse("alice").unwrap(),
            status,
            created_at: t(0),
            expires_at: t(60),
            offered: false,
        }
    }

    #[test]
    fn every_transition_from_every_state() {
        use ReservationStatus::*;
        use Transition::*;
        let alice = BuyerId::parse("alice").unwrap();
        let bob = BuyerId::parse("bob").unwrap();
        // (from, transition, actor, now, expected status or error code)
        type Row<'a> = (
            ReservationStatus,
            Transition,
            &'a BuyerId,
            i64,
            Result<ReservationStatus, &'static str>,
        );
        let table: &[Row<'_>] = &[
            (Active, Purchase, &alice, 59, Ok(Purchased)),
            (Active, Purchase, &alice, 60, Err("RESERVATION_EXPIRED")),
            (Active, Purchase, &bob, 10, Err("NOT_OWNER")),
            (Active, Release, &alice, 10, Ok(Released)),
            (Active, Release, &alice, 61, Err("RESERVATION_EXPIRED")),
            (Active, Release, &bob, 10, Err("NOT_OWNER")),
            (Active, Expire, &alice, 60, Ok(Expired)),
            (Active, Expire, &alice, 59, Err("INVALID_INPUT")),
            (Purchased, Purchase, &alice, 10, Err("ALREADY_PURCHASED")),
            (Purchased, Release, &alice, 10, Err("ALREADY_PURCHASED")),
            (Purchased, Expire, &alice, 99, Err("ALREADY_PURCHASED")),
            (Purchased, Purchase, &bob, 10, Err("NOT_OWNER")),
            (Released, Purchase, &alice, 10, Err("ALREADY_RELEASED")),
            (Released, Release, &alice, 10, Err("ALREADY_RELEASED")),
            (Released, Expire, &alice, 99, Err("ALREADY_RELEASED")),
            (Expired, Purchase, &alice, 10, Err("RESERVATION_EXPIRED")),
            (Expired, Release, &alice, 10, Err("RESERVATION_EXPIRED")),
            (Expired, Expire, &alice, 99, Err("RESERVATION_EXPIRED")),
        ];
        for (from, tr, actor, now, want) in table {
            let got = next_status(&hold(*from), *tr, Some(actor), t(*now)).map_err(|e| e.code());
            assert_eq!(&got, want, "{from:?} --{tr:?} by {actor} at {now}");
        }
    }

    #[test]
    fn effective_status_follows_time() {
        let h = hold(ReservationStatus::Active);
        assert_eq!(h.effective_status(t(59)), ReservationStatus::Active);
        assert_eq!(h.effective_status(t(60)), ReservationStatus::Expired);
        assert!(h.is_due(t(60)));
        assert!(!hold(ReservationStatus::Purchased).is_due(t(99)));
    }
}
