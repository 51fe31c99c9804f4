//! Request extractors that turn every malformed input into a 400 naming
//! the field, instead of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::ApiError;

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
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PAYLOAD_TOO_LARGE",
                    "request body is too large",
                )
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", rej.body_text())
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses `bytes` as `T`; syntax errors are `INVALID_JSON`, shape errors
/// `INVALID_INPUT` naming the field.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
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

fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

impl<T: DeserializeOwned> JsonBody<T> {
    /// Parses the body of a whole request (for handlers that also read
    /// its extensions).
    pub(crate) async fn from_req(req: Request) -> Result<Self, ApiError> {
        Self::from_request(req, &()).await
    }
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
