//! `Idempotency-Key` on writes: the header, the request's fingerprint,
//! and the requests of this process still being answered.
//!
//! The store records (caller, key, fingerprint, entity) with the change
//! itself and replays it (see [`drop_core::idempotency`]); this module only
//! prepares the key and keeps two requests with one key from running at
//! once in this process, so the second learns `IDEMPOTENCY_IN_PROGRESS`
//! instead of waiting on the first. Across instances the store serializes
//! them: the second then replays the first's record.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use drop_core::IdempotencyKey;
use drop_core::idempotency::check_key;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The request header naming a write's key.
pub(crate) const KEY_HEADER: HeaderName = HeaderName::from_static("idempotency-key");
/// The response header marking a replayed answer.
pub(crate) const REPLAYED_HEADER: HeaderName = HeaderName::from_static("idempotent-replayed");
/// The caller an admin's writes are recorded under (buyers are recorded
/// under their id, prefixed so the two never meet).
const ADMIN_CALLER: &str = "admin";

/// The `Idempotency-Key` a request sent, checked: 1–255 visible ASCII
/// characters, sent once. Anything else is `400 INVALID_INPUT` naming the
/// header.
#[derive(Debug)]
pub(crate) struct KeyHeader(pub(crate) Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for KeyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let mut values = parts.headers.get_all(&KEY_HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(Self(None));
        };
        if values.next().is_some() {
            return Err(ApiError::invalid("Idempotency-Key", "must be sent once"));
        }
        let key = value.to_str().map_err(|_| {
            ApiError::invalid("Idempotency-Key", "must be visible ASCII characters")
        })?;
        check_key(key)?;
        Ok(Self(Some(key.to_owned())))
    }
}

/// Who a keyed write is recorded for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum KeyOwner<'a> {
    /// A buyer, by id.
    Buyer(&'a drop_core::BuyerId),
    /// The admin.
    Admin,
}

impl KeyOwner<'_> {
    fn caller(self) -> String {
        match self {
            Self::Buyer(id) => format!("b:{id}"),
            Self::Admin => ADMIN_CALLER.to_owned(),
        }
    }
}

/// What the `Idempotency-Key` header does, as the OpenAPI document says it.
pub(crate) const KEY_DOC: &str = "Makes a retried write act once: the first answer for this key \
    (from this caller) is kept at least 24 h, and a repeat with the same body gets it again, as the \
    entity is now, with `Idempotent-Replayed: true`; the same key with another request is 422 \
    `IDEMPOTENCY_KEY_REUSED`, and while the first request is still being answered, 409 \
    `IDEMPOTENCY_IN_PROGRESS`.";

/// The `Idempotency-Key` header every write but `POST /api/session`
/// takes ([`KEY_DOC`]).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub(crate) struct IdempotencyKeyParam {
    /// See [`KEY_DOC`].
    #[param(rename = "Idempotency-Key", schema_with = crate::schema::idempotency_key)]
    #[allow(dead_code)]
    idempotency_key: Option<String>,
}

/// What the `Idempotency-Key` header does on a write that needs no key.
pub(crate) const IGNORED_KEY_DOC: &str = "Accepted and ignored: joining is naturally idempotent \
    (joining again with the same request answers the same place, 200), so a retry needs no key.";

/// What the `Idempotency-Key` of `POST /api/drops/{id}/entries` does.
pub(crate) const ENTRY_IGNORED_KEY_DOC: &str = "Accepted and ignored: entering is naturally \
    idempotent (entering again answers the same entry, 200), so a retry needs no key.";

/// The `Idempotency-Key` header of `POST /api/drops/{id}/waitlist` (and of
/// `POST /api/drops/{id}/entries`), which
/// a client sending keys on every write may send: accepted, never read
/// ([`IGNORED_KEY_DOC`]).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub(crate) struct IgnoredKeyParam {
    /// See [`IGNORED_KEY_DOC`].
    #[param(rename = "Idempotency-Key", schema_with = crate::schema::ignored_key)]
    #[allow(dead_code)]
    idempotency_key: Option<String>,
}

/// The keys of this process's requests that are still being answered.
#[derive(Debug, Default)]
pub(crate) struct InFlight(Mutex<HashSet<(String, String)>>);

/// A keyed write under way: its key for the store, and its place in the
/// in-flight set, left when this is dropped (the answer is ready, or the
/// request was abandoned).
#[derive(Debug)]
pub(crate) struct Keyed {
    pub(crate) key: IdempotencyKey,
    set: Arc<InFlight>,
}

impl Drop for Keyed {
    fn drop(&mut self) {
        let entry = (self.key.caller().to_owned(), self.key.key().to_owned());
        self.set
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&entry);
    }
}

impl InFlight {
    /// Starts the write `header` keys, if it does: `None` without a key;
    /// `409 IDEMPOTENCY_IN_PROGRESS` while a request with the same caller
    /// and key is being answered here. The fingerprint covers the method,
    /// the route and the body (see [`fingerprint`]).
    pub(crate) fn begin(
        self: &Arc<Self>,
        header: KeyHeader,
        owner: KeyOwner<'_>,
        method: &Method,
        route: &str,
        body: &[u8],
    ) -> Result<Option<Keyed>, ApiError> {
        let Some(raw) = header.0 else {
            return Ok(None);
        };
        let key = IdempotencyKey::new(owner.caller(), raw, fingerprint(method, route, body))?;
        let entry = (key.caller().to_owned(), key.key().to_owned());
        let fresh = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(entry);
        if !fresh {
            return Err(drop_core::DropError::IdempotencyInProgress {
                key: key.key().to_owned(),
            }
            .into());
        }
        Ok(Some(Keyed {
            key,
            set: self.clone(),
        }))
    }
}

/// SHA-256 over the method, the route and the body in canonical form (a
/// JSON body with its object keys sorted and no white space, so that key
/// order and spacing do not make two requests differ; any other body as
/// sent).
pub(crate) fn fingerprint(method: &Method, route: &str, body: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(method.as_str().as_bytes());
    hash.update(b"\n");
    hash.update(route.as_bytes());
    hash.update(b"\n");
    if !body.iter().all(u8::is_ascii_whitespace) {
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(value) => {
                let mut out = String::new();
                canonical(&value, &mut out);
                hash.update(out.as_bytes());
            }
            Err(_) => hash.update(body),
        }
    }
    hash.finalize().into()
}

/// Writes `value` with sorted object keys and no white space.
fn canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A write's answer: `status` and `body`, marked `Idempotent-Replayed:
/// true` when it replays an earlier request's.
pub(crate) fn answer<T: serde::Serialize>(status: StatusCode, replayed: bool, body: T) -> Response {
    let mut res = (status, axum::Json(body)).into_response();
    if replayed {
        res.headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_and_spacing_do_not_change_the_fingerprint() {
        let a = fingerprint(
            &Method::POST,
            "/api/reservations",
            br#"{"dropId":"x","quantity":2}"#,
        );
        let b = fingerprint(
            &Method::POST,
            "/api/reservations",
            b" { \"quantity\" : 2,\n \"dropId\":\"x\" } ",
        );
        assert_eq!(a, b);
        let other_body = fingerprint(
            &Method::POST,
            "/api/reservations",
            br#"{"dropId":"x","quantity":3}"#,
        );
        assert_ne!(a, other_body);
        let other_route = fingerprint(
            &Method::POST,
            "/api/purchases",
            br#"{"dropId":"x","quantity":2}"#,
        );
        assert_ne!(a, other_route);
        let nested = |raw: &[u8]| fingerprint(&Method::PATCH, "/d", raw);
        assert_eq!(
            nested(br#"{"variants":[{"id":"a","totalStock":1}]}"#),
            nested(br#"{"variants":[{"totalStock":1,"id":"a"}]}"#)
        );
        assert_eq!(nested(b""), nested(b"  \n"));
    }

    #[test]
    fn one_key_runs_once_at_a_time_per_caller() {
        let set = Arc::new(InFlight::default());
        let buyer: drop_core::BuyerId = "b1".parse().unwrap();
        let other: drop_core::BuyerId = "b2".parse().unwrap();
        let start = |owner| {
            set.begin(
                KeyHeader(Some("k".into())),
                owner,
                &Method::POST,
                "/r",
                b"{}",
            )
        };
        let first = start(KeyOwner::Buyer(&buyer)).unwrap().expect("keyed");
        let again = start(KeyOwner::Buyer(&buyer)).unwrap_err();
        assert_eq!(again.code(), "IDEMPOTENCY_IN_PROGRESS");
        assert_eq!(again.status(), StatusCode::CONFLICT);
        // Another buyer's key of the same name is theirs alone.
        let theirs = start(KeyOwner::Buyer(&other)).unwrap();
        assert!(theirs.is_some());
        drop(first);
        assert!(start(KeyOwner::Buyer(&buyer)).unwrap().is_some());
        assert!(
            set.begin(KeyHeader(None), KeyOwner::Admin, &Method::POST, "/r", b"")
                .unwrap()
                .is_none()
        );
    }
}
