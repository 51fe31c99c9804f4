//! The JSON error every endpoint answers with, and how core errors map to
//! HTTP statuses.

use std::borrow::Cow;
use std::num::NonZeroU32;

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use drop_core::DropError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer: a stable machine code and a sentence.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine code, e.g. `OUT_OF_STOCK`, `INVALID_INPUT`, `RATE_LIMITED`.
    #[schema(schema_with = crate::schema::error_code)]
    pub error: Cow<'static, str>,
    /// What went wrong, for people.
    pub message: String,
    /// The offending request field (camelCase), for input errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// With `HOLD_EXISTS`: the caller's existing hold on the drop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation: Option<Box<crate::wire::ReservationView>>,
    /// With `ALREADY_IN_LINE`: the caller's place in the drop's line
    /// (for another variant or quantity than asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::wire::WaitlistPlaceView>)]
    pub place: Option<Box<crate::wire::WaitlistPlaceView>>,
    /// With `EVENTS_PRUNED`: the oldest log entry still kept (or the next
    /// to be written); read the current state again, then go on from
    /// `oldest - 1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest: Option<u64>,
}

/// The `Retry-After` (seconds) of a 503: outages worth answering fast are
/// worth retrying soon.
pub(crate) const RETRY_UNAVAILABLE_SECS: u32 = 1;

/// A `Retry-After` of `secs` seconds, at least 1: asking to retry at once
/// would only invite a stampede.
fn retry_secs(secs: u32) -> Option<NonZeroU32> {
    NonZeroU32::new(secs.max(1))
}

/// An error answer: status, body and the odd header.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    // Boxed: the error travels in every `Result`, and the body's optional
    // extras (a hold, a place in line) would make it large.
    body: Box<ErrorBody>,
    // Seconds, never 0; a non-zero u32 keeps the error small (it travels
    // in every `Result`).
    retry_after: Option<NonZeroU32>,
    bearer_challenge: bool,
    /// What the operator needs to know of a server fault and the client
    /// must not see; the error middleware logs it. A boxed `str` keeps
    /// the error small.
    detail: Option<Box<str>>,
}

/// The operator's side of a 5xx answer, carried from the handler to the
/// middleware that logs it (response extensions never reach the client).
#[derive(Debug, Clone)]
pub(crate) struct FaultDetail(pub(crate) String);

impl ApiError {
    /// An error with any status and code.
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            body: Box::new(ErrorBody {
                error: code.into(),
                message: message.into(),
                field: None,
                reservation: None,
                place: None,
                oldest: None,
            }),
            retry_after: None,
            bearer_challenge: false,
            detail: None,
        }
    }

    /// `400 INVALID_INPUT` naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        let mut err = Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            format!("{field}: {message}"),
        );
        err.body.field = Some(field);
        err
    }

    /// `429 RATE_LIMITED` with a `Retry-After` of `secs` seconds.
    pub fn rate_limited(scope: &str, secs: u64) -> Self {
        let mut err = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            format!("too many requests for this {scope}; retry in {secs} s"),
        );
        err.retry_after = retry_secs(u32::try_from(secs).unwrap_or(u32::MAX));
        err
    }

    /// `503 UNAVAILABLE` with a `Retry-After` of one second.
    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut err = Self::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", message);
        err.retry_after = retry_secs(RETRY_UNAVAILABLE_SECS);
        err
    }

    /// `401 UNAUTHORIZED` with a bearer challenge.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        let mut err = Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message);
        err.bearer_challenge = true;
        err
    }

    /// The same error with another status: `422` for a rule between
    /// fields or against the clock, which the request's schema cannot state.
    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Keeps `detail` for the server's log (never sent to the client).
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into().into_boxed_str());
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine code.
    pub fn code(&self) -> &str {
        &self.body.error
    }

    /// The sentence for people.
    pub fn message(&self) -> &str {
        &self.body.message
    }

    /// The request field an input error names.
    pub fn field(&self) -> Option<&str> {
        self.body.field.as_deref()
    }
}

/// The HTTP status of a core error code.
pub fn status_of(err: &DropError) -> StatusCode {
    match err {
        DropError::InvalidInput { .. } => StatusCode::BAD_REQUEST,
        DropError::DropNotFound { .. }
        | DropError::ReservationNotFound { .. }
        | DropError::PurchaseNotFound { .. }
        | DropError::VariantNotFound { .. } => StatusCode::NOT_FOUND,
        // Gone for good: what was asked for no longer exists.
        DropError::ReservationExpired { .. } | DropError::EventsPruned { .. } => StatusCode::GONE,
        DropError::NotOwner { .. } => StatusCode::FORBIDDEN,
        DropError::OutOfStock { .. }
        | DropError::DropNotActive { .. }
        | DropError::AlreadyPurchased { .. }
        | DropError::AlreadyReleased { .. }
        | DropError::HoldExists { .. }
        | DropError::BuyerLimitReached { .. }
        | DropError::DropPaused { .. }
        | DropError::StockBelowCommitted { .. }
        | DropError::PriceLocked { .. }
        | DropError::WaitlistNotNeeded { .. }
        | DropError::WaitlistClosed { .. }
        | DropError::AlreadyInLine { .. }
        | DropError::DrawOnly { .. }
        | DropError::EntriesClosed { .. }
        | DropError::NotADraw { .. }
        | DropError::IdempotencyInProgress { .. } => StatusCode::CONFLICT,
        DropError::IdempotencyKeyReused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        DropError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<DropError> for ApiError {
    fn from(err: DropError) -> Self {
        let status = status_of(&err);
        if status.is_server_error() {
            // The source may name hosts or queries: kept for the log, not sent.
            let detail = match std::error::Error::source(&err) {
                Some(source) => format!("{err} (source: {source:?})"),
                None => err.to_string(),
            };
            let message = if err.is_retryable() {
                "the store is unavailable; retry shortly"
            } else {
                "internal error"
            };
            let mut out = Self::new(status, err.code(), message).with_detail(detail);
            if status == StatusCode::SERVICE_UNAVAILABLE {
                out.retry_after = retry_secs(RETRY_UNAVAILABLE_SECS);
            }
            return out;
        }
        let mut out = Self::new(status, err.code(), err.to_string());
        out.body.field = err.field().map(str::to_owned);
        if let DropError::HoldExists { reservation } = &err {
            out.body.reservation =
                Some(Box::new(crate::wire::ReservationView::from(&**reservation)));
        }
        if let DropError::AlreadyInLine { place } = &err {
            out.body.place = Some(Box::new(crate::wire::WaitlistPlaceView::from(&**place)));
        }
        if let DropError::EventsPruned { oldest, .. } = &err {
            out.body.oldest = Some(*oldest);
        }
        out
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(*self.body)).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.get()));
        }
        if self.bearer_challenge {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(detail) = self.detail {
            res.extensions_mut().insert(FaultDetail(detail.into()));
        }
        res
    }
}

/// The one place error answers are finished: a 5xx is logged (with the
/// detail its handler kept, which the client never sees), and an error
/// some layer produced without a JSON body (unknown route, wrong method,
/// timeout, body over the limit, a failed WebSocket upgrade) gets the same
/// `{error, message}` shape as the rest.
pub(crate) async fn error_responses(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let res = next.run(req).await;
    let status = res.status();
    if status.is_server_error() {
        let detail = res
            .extensions()
            .get::<FaultDetail>()
            .map_or("", |d| d.0.as_str());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(%method, path, status = status.as_u16(), detail, "unavailable");
        } else {
            tracing::error!(%method, path, status = status.as_u16(), detail, "server fault");
        }
    }
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return res;
    }
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("NOT_FOUND", "no such endpoint"),
        StatusCode::METHOD_NOT_ALLOWED => ("METHOD_NOT_ALLOWED", "method not allowed here"),
        StatusCode::PAYLOAD_TOO_LARGE => ("PAYLOAD_TOO_LARGE", "request body is too large"),
        StatusCode::REQUEST_TIMEOUT => ("TIMEOUT", "the request took too long"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("UNSUPPORTED_MEDIA_TYPE", "send JSON"),
        StatusCode::UPGRADE_REQUIRED => ("UPGRADE_REQUIRED", "this endpoint speaks WebSocket"),
        s if s.is_server_error() => ("INTERNAL", "internal error"),
        _ => ("BAD_REQUEST", "bad request"),
    };
    let (mut parts, _) = res.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let rebuilt = ApiError::new(status, code, message).into_response();
    let (new_parts, body) = rebuilt.into_parts();
    for (name, value) in &new_parts.headers {
        parts.headers.insert(name, value.clone());
    }
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use drop_core::{DropId, ReservationId};

    #[test]
    fn codes_map_to_statuses() {
        let r = ReservationId::new();
        let d = DropId::new();
        let table = [
            (DropError::invalid("name", "x"), 400),
            (DropError::DropNotFound { drop_id: d }, 404),
            (DropError::ReservationNotFound { reservation_id: r }, 404),
            (DropError::ReservationExpired { reservation_id: r }, 410),
            (
                DropError::EventsPruned {
                    after: 1,
                    oldest: 5,
                },
                410,
            ),
            (DropError::NotOwner { reservation_id: r }, 403),
            (DropError::OutOfStock { drop_id: d }, 409),
            (DropError::AlreadyPurchased { reservation_id: r }, 409),
            (DropError::AlreadyReleased { reservation_id: r }, 409),
            (DropError::DropPaused { drop_id: d }, 409),
            (DropError::PriceLocked { drop_id: d }, 409),
            (
                DropError::BuyerLimitReached {
                    drop_id: d,
                    max_per_buyer: 1,
                    taken: 1,
                },
                409,
            ),
            (
                DropError::StockBelowCommitted {
                    drop_id: d,
                    variant_id: drop_core::VariantId::new(),
                    committed: 1,
                },
                409,
            ),
            (DropError::IdempotencyInProgress { key: "k".into() }, 409),
            (
                DropError::WaitlistNotNeeded {
                    drop_id: d,
                    variant_id: drop_core::VariantId::new(),
                },
                409,
            ),
            (DropError::WaitlistClosed { drop_id: d }, 409),
            (DropError::DrawOnly { drop_id: d }, 409),
            (DropError::EntriesClosed { drop_id: d }, 409),
            (DropError::NotADraw { drop_id: d }, 409),
            (DropError::IdempotencyKeyReused { key: "k".into() }, 422),
            (
                DropError::PurchaseNotFound {
                    purchase_id: drop_core::PurchaseId::new(),
                },
                404,
            ),
            (
                DropError::VariantNotFound {
                    drop_id: d,
                    variant_id: drop_core::VariantId::new(),
                },
                404,
            ),
        ];
        for (err, status) in table {
            assert_eq!(status_of(&err).as_u16(), status, "{err}");
        }
    }

    #[test]
    fn already_in_line_carries_the_place() {
        let place = drop_core::WaitlistPlace::new(
            DropId::new(),
            drop_core::VariantId::new(),
            drop_core::Buyer::new(
                "b1".parse().unwrap(),
                drop_core::Username::parse("bob").unwrap(),
            ),
            2,
            7,
            chrono::DateTime::UNIX_EPOCH,
        );
        let err = ApiError::from(DropError::AlreadyInLine {
            place: Box::new(place.clone()),
        });
        assert_eq!(err.status(), StatusCode::CONFLICT);
        assert_eq!(err.code(), "ALREADY_IN_LINE");
        let body = serde_json::to_value(&err.body).unwrap();
        assert_eq!(body["place"]["ticket"], 7);
        assert_eq!(body["place"]["quantity"], 2);
        assert_eq!(body["place"]["variantId"], place.variant_id.to_string());
        // The place is shown to its buyer, still without their id.
        assert!(body["place"].get("buyerId").is_none(), "{body}");
        assert!(body.get("reservation").is_none(), "{body}");
    }

    #[test]
    fn pruned_events_name_the_oldest_kept() {
        let err = ApiError::from(DropError::EventsPruned {
            after: 3,
            oldest: 9,
        });
        assert_eq!(err.status(), StatusCode::GONE);
        assert_eq!(err.code(), "EVENTS_PRUNED");
        let body = serde_json::to_value(&err.body).unwrap();
        assert_eq!(body["oldest"], 9);
    }

    #[test]
    fn unavailable_answers_503_with_retry_after() {
        let err = DropError::Unavailable {
            store: "test",
            source: "down".into(),
        };
        let res = ApiError::from(err).into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
        // The source is kept for the log, apart from the body.
        let detail = res.extensions().get::<FaultDetail>().expect("detail kept");
        assert!(detail.0.contains("down"), "{detail:?}");
    }
}
