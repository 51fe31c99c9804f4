//! Revoked sign-in sessions, shared by every instance.

use super::*;
use std::collections::HashSet;

use futures::future::join_all;
use uuid::Uuid;

use crate::RevokedSession;

/// A session expiring `secs` seconds after `now`, to the microsecond (the
/// precision every store keeps).
fn session_expiry(now: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    let at = now + chrono::Duration::seconds(secs);
    DateTime::from_timestamp_micros(at.timestamp_micros()).expect("valid instant")
}

/// A revoked session is listed, with its expiry and the store's time of
/// the revocation; the answer carries the store's time of the read.
pub async fn revoked_sessions_are_listed(h: &dyn Harness) {
    let store = h.store();
    let empty = store.revoked_sessions(None).await.unwrap();
    assert!(empty.sessions.is_empty(), "{empty:?}");
    let before = h.now().await;
    let id = Uuid::new_v4();
    let expires_at = session_expiry(before, 86_400);
    store.revoke_session(id, expires_at).await.unwrap();
    let after = h.now().await;
    let listed = store.revoked_sessions(None).await.unwrap();
    assert_eq!(listed.sessions.len(), 1, "{listed:?}");
    let r = &listed.sessions[0];
    assert_eq!((r.id, r.expires_at), (id, expires_at));
    assert!(
        before <= r.revoked_at && r.revoked_at <= after,
        "revoked at {} by the store's clock, between {before} and {after}",
        r.revoked_at
    );
    assert!(
        listed.now >= r.revoked_at && listed.now >= after,
        "{listed:?}"
    );
    assert!(empty.now <= before, "{empty:?}");
    // Revoking a session ends nothing else.
    let d = new_drop(h, 1).await;
    store.reserve(d.drop.id, &user("alice")).await.unwrap();
    verify(h).await;
}

/// `since` lists the revocations recorded at or after it, oldest first;
/// a poller asking from the previous answer's `now` hears of the newer.
pub async fn revoked_sessions_since(h: &dyn Harness) {
    let store = h.store();
    let now = h.now().await;
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    store
        .revoke_session(a, session_expiry(now, 3600))
        .await
        .unwrap();
    h.advance(Duration::from_millis(20)).await;
    let first = store.revoked_sessions(None).await.unwrap();
    let ids = |r: &[RevokedSession]| r.iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(ids(&first.sessions), [a]);
    h.advance(Duration::from_millis(20)).await;
    store
        .revoke_session(b, session_expiry(now, 3600))
        .await
        .unwrap();
    h.advance(Duration::from_millis(20)).await;
    store
        .revoke_session(c, session_expiry(now, 3600))
        .await
        .unwrap();
    let next = store.revoked_sessions(Some(first.now)).await.unwrap();
    assert_eq!(ids(&next.sessions), [b, c], "recorded since the first read");
    assert!(next.sessions[0].revoked_at < next.sessions[1].revoked_at);
    let all = store.revoked_sessions(None).await.unwrap();
    assert_eq!(ids(&all.sessions), [a, b, c], "oldest first");
    // The bound is inclusive.
    let from_b = store
        .revoked_sessions(Some(all.sessions[1].revoked_at))
        .await
        .unwrap();
    assert_eq!(ids(&from_b.sessions), [b, c]);
    let later = next.now + chrono::Duration::seconds(1);
    let none = store.revoked_sessions(Some(later)).await.unwrap();
    assert!(none.sessions.is_empty(), "{none:?}");
}

/// A revocation is listed until its session's expiry, then no more; one
/// whose session had already expired is never listed.
pub async fn expired_revocations_are_not_listed(h: &dyn Harness) {
    let store = h.store();
    let now = h.now().await;
    let hold = i64::try_from(h.hold().as_secs())
        .expect("short hold")
        .max(1);
    let (soon, later, past) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let soon_at = session_expiry(now, hold);
    store.revoke_session(soon, soon_at).await.unwrap();
    store
        .revoke_session(later, session_expiry(now, 86_400))
        .await
        .unwrap();
    store
        .revoke_session(past, session_expiry(now, -60))
        .await
        .unwrap();
    let ids = |r: Vec<RevokedSession>| r.into_iter().map(|s| s.id).collect::<HashSet<_>>();
    let listed = store.revoked_sessions(None).await.unwrap();
    assert!(listed.now < soon_at, "the case ran slower than {hold} s");
    assert_eq!(ids(listed.sessions), HashSet::from([soon, later]));
    advance_to(h, soon_at).await;
    let left = store.revoked_sessions(None).await.unwrap();
    assert_eq!(ids(left.sessions), HashSet::from([later]));
    // A revoke after the expiry (which may prune) keeps the others.
    let another = Uuid::new_v4();
    store
        .revoke_session(another, session_expiry(now, 86_400))
        .await
        .unwrap();
    let since_start = store.revoked_sessions(Some(now)).await.unwrap();
    assert_eq!(ids(since_start.sessions), HashSet::from([later, another]));
}

/// Revoking a session again is fine: it stays listed once, with the later
/// expiry, and is listed again to a poller that already heard of it.
pub async fn revoking_twice_is_fine(h: &dyn Harness) {
    let store = h.store();
    let now = h.now().await;
    let (id, other) = (Uuid::new_v4(), Uuid::new_v4());
    let (early, late) = (session_expiry(now, 3600), session_expiry(now, 7200));
    store.revoke_session(id, early).await.unwrap();
    store.revoke_session(other, late).await.unwrap();
    h.advance(Duration::from_millis(20)).await;
    let first = store.revoked_sessions(None).await.unwrap();
    assert_eq!(first.sessions.len(), 2);
    h.advance(Duration::from_millis(20)).await;
    store.revoke_session(id, early).await.unwrap();
    store.revoke_session(id, late).await.unwrap();
    // An earlier expiry than the one recorded does not shorten it.
    store.revoke_session(id, early).await.unwrap();
    let all = store.revoked_sessions(None).await.unwrap();
    assert_eq!(all.sessions.len(), 2, "{all:?}");
    let again = all.sessions.iter().find(|s| s.id == id).expect("listed");
    assert_eq!(again.expires_at, late);
    let was = first.sessions.iter().find(|s| s.id == id).expect("listed");
    assert!(again.revoked_at > was.revoked_at, "{again:?} after {was:?}");
    let news = store.revoked_sessions(Some(first.now)).await.unwrap();
    let news: Vec<Uuid> = news.sessions.iter().map(|s| s.id).collect();
    assert_eq!(news, [id]);
    // Many at once, of one session: still one record.
    let results = join_all((0..16).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.revoke_session(id, late).await })
    }))
    .await;
    for r in results {
        r.expect("task").expect("revoke");
    }
    let all = store.revoked_sessions(None).await.unwrap();
    assert_eq!(all.sessions.iter().filter(|s| s.id == id).count(), 1);
}
