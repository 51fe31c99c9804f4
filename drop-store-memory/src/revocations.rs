//! Revoked sessions, under a lock of their own: a sign-out or a poll of
//! the list never waits on a drop's lock, and a hot drop never waits on
//! them.
//!
//! Records are pruned once their session has expired, by every revoke and
//! every read, so the map holds only the sessions still worth refusing.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use drop_core::{RevokedSession, RevokedSessions};
use uuid::Uuid;

use crate::sync::{Mutex, lock};

#[derive(Debug)]
pub(crate) struct Revocations {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_id: HashMap<Uuid, RevokedSession>,
    /// `(revoked_at, id)`: the order reads answer in, and where a read
    /// from `since` starts.
    by_time: BTreeSet<(DateTime<Utc>, Uuid)>,
    /// `(expires_at, id)`: the order records are pruned in.
    by_expiry: BTreeSet<(DateTime<Utc>, Uuid)>,
}

impl Revocations {
    pub(crate) fn new() -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Records (or records again) that session `id` is revoked at `now`.
    pub(crate) fn revoke(&self, id: Uuid, expires_at: DateTime<Utc>, now: DateTime<Utc>) {
        let mut g = lock(&self.inner);
        g.prune(now);
        let expires_at = match g.remove(id) {
            Some(earlier) => earlier.expires_at.max(expires_at),
            None => expires_at,
        };
        // A session already expired needs no record: its token is refused
        // for its expiry alone.
        if expires_at > now {
            g.insert(RevokedSession::new(id, expires_at, now));
        }
    }

    /// The unexpired revocations recorded at or after `since`, oldest first.
    pub(crate) fn list(&self, since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> RevokedSessions {
        let mut g = lock(&self.inner);
        g.prune(now);
        let from = (since.unwrap_or(DateTime::<Utc>::MIN_UTC), Uuid::nil());
        let sessions = g
            .by_time
            .range(from..)
            .map(|(_, id)| g.by_id[id].clone())
            .collect();
        RevokedSessions::new(sessions, now)
    }

    /// How many records are kept (expired ones not yet pruned included).
    #[cfg(all(test, not(dropkit_loom)))]
    fn kept(&self) -> usize {
        lock(&self.inner).by_id.len()
    }
}

impl Inner {
    fn insert(&mut self, r: RevokedSession) {
        self.by_time.insert((r.revoked_at, r.id));
        self.by_expiry.insert((r.expires_at, r.id));
        self.by_id.insert(r.id, r);
    }

    fn remove(&mut self, id: Uuid) -> Option<RevokedSession> {
        let r = self.by_id.remove(&id)?;
        self.by_time.remove(&(r.revoked_at, id));
        self.by_expiry.remove(&(r.expires_at, id));
        Some(r)
    }

    /// Forgets every revocation whose session has expired at `now`.
    fn prune(&mut self, now: DateTime<Utc>) {
        while let Some(&(at, id)) = self.by_expiry.first() {
            if at > now {
                break;
            }
            self.remove(id);
        }
    }
}

#[cfg(all(test, not(dropkit_loom)))]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_893_456_000 + secs, 0).expect("valid instant")
    }

    #[test]
    fn expired_records_are_pruned_by_revokes_and_reads() {
        let r = Revocations::new();
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        r.revoke(a, at(10), at(0));
        r.revoke(b, at(20), at(0));
        assert_eq!(r.kept(), 2);
        // At a's expiry a revoke of another session forgets it.
        r.revoke(c, at(30), at(10));
        assert_eq!(r.kept(), 2);
        let listed: Vec<Uuid> = r.list(None, at(10)).sessions.iter().map(|s| s.id).collect();
        assert_eq!(listed, [b, c]);
        // A read alone prunes too.
        assert!(r.list(None, at(30)).sessions.is_empty());
        assert_eq!(r.kept(), 0);
    }

    #[test]
    fn a_session_already_expired_is_not_kept() {
        let r = Revocations::new();
        r.revoke(Uuid::new_v4(), at(5), at(5));
        r.revoke(Uuid::new_v4(), at(5) - TimeDelta::hours(1), at(5));
        assert_eq!(r.kept(), 0);
    }

    #[test]
    fn revoking_again_keeps_the_later_expiry_and_moves_to_the_end() {
        let r = Revocations::new();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        r.revoke(a, at(100), at(0));
        r.revoke(b, at(100), at(1));
        r.revoke(a, at(50), at(2));
        let list = r.list(None, at(3)).sessions;
        assert_eq!(list.len(), 2);
        assert_eq!(list[1], RevokedSession::new(a, at(100), at(2)));
        assert_eq!(r.list(Some(at(2)), at(3)).sessions, [list[1].clone()]);
    }
}
