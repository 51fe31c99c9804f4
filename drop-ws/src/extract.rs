//! Request extractors: every malformed input becomes a 400 naming the
//! field (instead of axum's plain-text rejections), through typed
//! extractors whose rejection is an [`ApiError`].

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use drop_core::{DropId, PurchaseId, ReservationId};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body, parsed with the failing field's path kept.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A JSON body, parsed, with the bytes it came as (a keyed write's
/// fingerprint covers them).
#[derive(Debug)]
pub(crate) struct RawJson<T>(pub(crate) T, pub(crate) Bytes);

impl<T, S> FromRequest<S> for RawJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        let value = parse_json(&bytes)?;
        Ok(RawJson(value, bytes))
    }
}

/// The body of a route that takes none (pause, resume, end, cancel): read
/// only to keep it in a keyed write's fingerprint, so the same key with
/// another body is a reuse.
#[derive(Debug)]
pub(crate) struct AnyBody(pub(crate) Bytes);

impl<S: Send + Sync> FromRequest<S> for AnyBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        body_bytes(req, state).await.map(AnyBody)
    }
}

/// A JSON body that may be left out: an empty (or all-blank) body is `None`.
#[derive(Debug)]
pub(crate) struct OptionalJsonBody<T>(pub(crate) Option<T>);

impl<T, S> FromRequest<S> for OptionalJsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(None));
        }
        parse_json(&bytes).map(|v| OptionalJsonBody(Some(v)))
    }
}

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "request body is too large",
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", rej.body_text())
        }
    })
}

/// Query parameters; a bad one is `INVALID_INPUT` on `query`.
#[derive(Debug)]
pub(crate) struct QueryParams<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| QueryParams(q))
            .map_err(|rej| ApiError::invalid("query", rej.body_text()))
    }
}

/// The `{id}` of a reservation route; anything but a UUID is
/// `INVALID_INPUT` on `id`.
#[derive(Debug)]
pub(crate) struct ReservationPath(pub(crate) ReservationId);

impl<S: Send + Sync> FromRequestParts<S> for ReservationPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rej| ApiError::invalid("id", rej.body_text()))?;
        raw.parse::<ReservationId>()
            .map(ReservationPath)
            .map_err(|_| ApiError::invalid("id", "must be a reservation id (UUID)"))
    }
}

/// The `{id}` of a drop route; anything but a UUID is `INVALID_INPUT`
/// on `id`.
#[derive(Debug)]
pub(crate) struct DropPath(pub(crate) DropId);

impl<S: Send + Sync> FromRequestParts<S> for DropPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        path_id(parts, state, "a drop id").await.map(DropPath)
    }
}

/// The `{id}` of a purchase route; anything but a UUID is
/// `INVALID_INPUT` on `id`.
#[derive(Debug)]
pub(crate) struct PurchasePath(pub(crate) PurchaseId);

impl<S: Send + Sync> FromRequestParts<S> for PurchasePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        path_id(parts, state, "a purchase id")
            .await
            .map(PurchasePath)
    }
}

/// The `{name}` of a cursor route, percent-decoded: any name the store
/// accepts (`webhook:https://…` encoded as one segment); one that is not
/// UTF-8 is `INVALID_INPUT` on `name`.
#[derive(Debug)]
pub(crate) struct CursorPath(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for CursorPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(name) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rej| ApiError::invalid("name", rej.body_text()))?;
        Ok(CursorPath(name))
    }
}

async fn path_id<S: Send + Sync, T: std::str::FromStr>(
    parts: &mut Parts,
    state: &S,
    what: &str,
) -> Result<T, ApiError> {
    let Path(raw) = Path::<String>::from_request_parts(parts, state)
        .await
        .map_err(|rej| ApiError::invalid("id", rej.body_text()))?;
    raw.parse::<T>()
        .map_err(|_| ApiError::invalid("id", format!("must be {what} (UUID)")))
}

/// Parses `bytes` as `T`; syntax errors are `INVALID_JSON`, shape errors
/// `INVALID_INPUT` naming the field. Every body is a JSON object: serde
/// would also read a struct from an array of its fields in order, a form
/// the API never documented, so anything but an object is refused.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| matches!(b, b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n')) {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_JSON",
                format!("the body is not valid JSON: {inner}"),
            );
        }
        let message = strip_position(&inner.to_string());
        // A missing field is reported at its parent; name the field itself.
        let field = if path == "." {
            missing_field(&message).unwrap_or_else(|| "body".to_owned())
        } else {
            path
        };
        ApiError::invalid(field, message)
    })?;
    de.end().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_JSON",
            "trailing characters after the JSON value",
        )
    })?;
    Ok(value)
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// The field a "missing field" or "unknown field" message names.
fn missing_field(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    Some(rest.split('`').next()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Body {
        drop_id: String,
        total_stock: u32,
    }

    #[test]
    fn errors_name_fields() {
        let cases = [
            (r#"{"dropId":"a""#, "INVALID_JSON", None),
            (r#"{"totalStock":1}"#, "INVALID_INPUT", Some("dropId")),
            (
                r#"{"dropId":"a","totalStock":-1}"#,
                "INVALID_INPUT",
                Some("totalStock"),
            ),
            (
                r#"{"dropId":5,"totalStock":1}"#,
                "INVALID_INPUT",
                Some("dropId"),
            ),
            (r#"[]"#, "INVALID_INPUT", Some("body")),
            (r#"["a", 1]"#, "INVALID_INPUT", Some("body")),
            (r#" 5"#, "INVALID_INPUT", Some("body")),
            (r#"{"dropId":"a","totalStock":1} x"#, "INVALID_JSON", None),
        ];
        for (raw, code, field) in cases {
            let err = parse_json::<Body>(raw.as_bytes()).unwrap_err();
            assert_eq!(err.code(), code, "{raw}");
            if let Some(field) = field {
                let body = format!("{err:?}");
                assert!(
                    body.contains(&format!("field: Some(\"{field}\")")),
                    "{raw}: {body}"
                );
            }
        }
    }
}
