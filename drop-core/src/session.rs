//! Revoked sign-in sessions, shared by every instance through the store.
//!
//! A signed session token is checked without the store: its signature and
//! its expiry say whether it is valid. Signing out must still end it on
//! every instance, so the store keeps a list of revoked session ids until
//! the tokens would have expired anyway
//! ([`InventoryStore::revoke_session`](crate::InventoryStore::revoke_session)),
//! and each instance follows that list
//! ([`InventoryStore::revoked_sessions`](crate::InventoryStore::revoked_sessions)).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One revoked session, as the store recorded it.
///
/// New fields may be added in minor releases: build one with
/// [`RevokedSession::new`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RevokedSession {
    /// The session's id, as its token carries it.
    pub id: Uuid,
    /// When the token expires anyway; the store forgets the revocation
    /// from then on.
    pub expires_at: DateTime<Utc>,
    /// When the store recorded the (latest) revocation, by its own clock.
    pub revoked_at: DateTime<Utc>,
}

impl RevokedSession {
    /// A revocation from its parts.
    pub fn new(id: Uuid, expires_at: DateTime<Utc>, revoked_at: DateTime<Utc>) -> Self {
        Self {
            id,
            expires_at,
            revoked_at,
        }
    }
}

/// What [`InventoryStore::revoked_sessions`](crate::InventoryStore::revoked_sessions)
/// answers: the revocations asked for, and the store's time of the read.
///
/// New fields may be added in minor releases: build one with
/// [`RevokedSessions::new`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RevokedSessions {
    /// The revocations, oldest `revoked_at` first.
    pub sessions: Vec<RevokedSession>,
    /// The store's time when it read them: the next poll asks from a few
    /// seconds before it.
    pub now: DateTime<Utc>,
}

impl RevokedSessions {
    /// An answer from its parts.
    pub fn new(sessions: Vec<RevokedSession>, now: DateTime<Utc>) -> Self {
        Self { sessions, now }
    }
}
