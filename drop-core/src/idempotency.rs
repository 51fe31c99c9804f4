//! Idempotency keys: a retried write acts once.
//!
//! A caller that may retry a write (its answer was lost) sends a key with
//! it. The store records (caller, key, request fingerprint, the entity the
//! write made or changed) **in the same transaction as the change**, so a
//! crash between the two cannot let a retry act twice. A later write with
//! the same caller and key does not act again:
//!
//! - same fingerprint: the store answers the recorded entity as it is now,
//!   marked as a replay (`replayed: true`);
//! - another fingerprint: `IDEMPOTENCY_KEY_REUSED`.
//!
//! Only writes that succeed are recorded: a refused write changed nothing,
//! so retrying it with the same key is evaluated afresh. Records are kept
//! at least [`IDEMPOTENCY_RETENTION`].
//!
//! What the fingerprint covers is the caller's business: the web layer
//! hashes the route and the request body, so the same key on another
//! request is a reuse.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{DropError, DropId, PurchaseId, ReservationId};

/// Longest idempotency key, in bytes.
pub const IDEMPOTENCY_KEY_MAX: usize = 255;
/// Longest caller a record names, in bytes.
pub const IDEMPOTENCY_CALLER_MAX: usize = 200;
/// How long a store keeps an idempotency record at least (24 h).
pub const IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// The key of one write: who sent it, the key they chose, and a
/// fingerprint of the request it guards.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    caller: String,
    key: String,
    fingerprint: [u8; 32],
}

impl IdempotencyKey {
    /// A key for a write by `caller` (an opaque name of the caller's
    /// identity, 1–200 bytes: the web layer uses the buyer id or the
    /// admin's name), `key` as the caller sent it (1–255 visible ASCII
    /// characters, `INVALID_INPUT` with field `Idempotency-Key`
    /// otherwise), and `fingerprint`, a hash of the request.
    pub fn new(
        caller: impl Into<String>,
        key: impl Into<String>,
        fingerprint: [u8; 32],
    ) -> Result<Self, DropError> {
        let caller = caller.into();
        let key = key.into();
        check_key(&key)?;
        if caller.is_empty() || caller.len() > IDEMPOTENCY_CALLER_MAX {
            return Err(DropError::invalid(
                "caller",
                format!("must be 1 to {IDEMPOTENCY_CALLER_MAX} bytes"),
            ));
        }
        Ok(Self {
            caller,
            key,
            fingerprint,
        })
    }

    /// Who sent the write.
    pub fn caller(&self) -> &str {
        &self.caller
    }

    /// The key they chose.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The request's fingerprint.
    pub fn fingerprint(&self) -> &[u8; 32] {
        &self.fingerprint
    }
}

/// `Ok` when `key` is a valid idempotency key: 1–255 visible ASCII
/// characters (`!` to `~`).
pub fn check_key(key: &str) -> Result<(), DropError> {
    if key.is_empty()
        || key.len() > IDEMPOTENCY_KEY_MAX
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(DropError::invalid(
            "Idempotency-Key",
            format!("must be 1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters"),
        ));
    }
    Ok(())
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdempotencyKey")
            .field("caller", &self.caller)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// The entity a recorded write made or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "camelCase")]
pub enum Recorded {
    /// A drop (created, edited, paused, resumed or ended).
    Drop(DropId),
    /// A hold (taken).
    Reservation(ReservationId),
    /// A purchase (made or cancelled).
    Purchase(PurchaseId),
}

/// A write recorded under its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdempotencyRecord {
    /// Who sent it.
    pub caller: String,
    /// The key.
    pub key: String,
    /// The fingerprint of the request it answered.
    pub fingerprint: [u8; 32],
    /// What it made or changed.
    pub entity: Recorded,
    /// Whether it created the entity (a 201 rather than a 200).
    pub created: bool,
    /// When it was recorded, on the store's clock.
    pub recorded_at: DateTime<Utc>,
}

impl IdempotencyRecord {
    /// A record as a store keeps it.
    pub fn new(
        key: &IdempotencyKey,
        entity: Recorded,
        created: bool,
        recorded_at: DateTime<Utc>,
    ) -> Self {
        Self {
            caller: key.caller.clone(),
            key: key.key.clone(),
            fingerprint: key.fingerprint,
            entity,
            created,
            recorded_at,
        }
    }

    /// Whether `key` asks for this record's request again: `Ok` for
    /// the same fingerprint, `IDEMPOTENCY_KEY_REUSED` for another.
    pub fn matches(&self, key: &IdempotencyKey) -> Result<(), DropError> {
        if self.fingerprint == key.fingerprint {
            Ok(())
        } else {
            Err(DropError::IdempotencyKeyReused {
                key: key.key.clone(),
            })
        }
    }
}

/// The answer to an admin write: the entity after it, whether the write
/// changed anything (pausing a paused drop does not), and whether it was
/// a replay of an earlier write with the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Applied<T> {
    /// The entity as it is now.
    pub value: T,
    /// Whether this call changed it.
    pub changed: bool,
    /// Whether this call replayed an earlier one instead of acting.
    pub replayed: bool,
}

impl<T> Applied<T> {
    /// The answer to a write that acted (`changed` says whether it had
    /// anything to do).
    pub fn new(value: T, changed: bool) -> Self {
        Self {
            value,
            changed,
            replayed: false,
        }
    }

    /// The answer to a write that replayed an earlier one.
    pub fn replay(value: T) -> Self {
        Self {
            value,
            changed: false,
            replayed: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii() {
        for bad in ["", " a", "a b", "é", "\u{7f}", &"k".repeat(256)] {
            let err = IdempotencyKey::new("b", bad, [0; 32]).unwrap_err();
            assert_eq!(err.field(), Some("Idempotency-Key"), "{bad:?}");
        }
        for good in ["a", "~!", &"k".repeat(255), "3f1c2b9e-uuid-like"] {
            assert!(IdempotencyKey::new("b", good, [0; 32]).is_ok(), "{good:?}");
        }
        assert!(IdempotencyKey::new("", "k", [0; 32]).is_err());
    }

    #[test]
    fn a_record_matches_its_own_fingerprint_only() {
        let key = IdempotencyKey::new("b", "k", [1; 32]).unwrap();
        let rec = IdempotencyRecord::new(
            &key,
            Recorded::Drop(DropId::new()),
            true,
            DateTime::UNIX_EPOCH,
        );
        assert!(rec.matches(&key).is_ok());
        let other = IdempotencyKey::new("b", "k", [2; 32]).unwrap();
        assert_eq!(
            rec.matches(&other).unwrap_err().code(),
            "IDEMPOTENCY_KEY_REUSED"
        );
    }
}
