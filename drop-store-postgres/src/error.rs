//! From sqlx errors to [`DropError`]s.

use drop_core::{DropError, ErrorSource};

/// The store name carried by infrastructure errors.
pub(crate) const STORE: &str = "postgres";

/// SQLSTATEs after which the same call may succeed: serialization failure,
/// deadlock, the backend terminated (admin shutdown, crash, cannot connect
/// now) and every connection exception (class 08).
fn retryable_sqlstate(code: &str) -> bool {
    matches!(
        code,
        "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "53300"
    ) || code.starts_with("08")
}

/// Whether `err` is transient: retrying the same call may succeed.
pub(crate) fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db.code().is_some_and(|c| retryable_sqlstate(&c)),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        _ => false,
    }
}

/// Whether a call that failed with `err` is worth repeating at once. Not
/// after a pool timeout: the pool already waited its whole acquire timeout
/// for a connection, and waiting again would only make the caller's answer
/// later (the database is down or saturated: answer `UNAVAILABLE` now).
pub(crate) fn should_retry(err: &sqlx::Error) -> bool {
    is_transient(err) && !matches!(err, sqlx::Error::PoolTimedOut)
}

/// Whether a write that failed with `err` may have committed anyway: the
/// connection broke while the statement was out (its answer, a commit or
/// not, was lost). Errors the server answered the statement with (a
/// deadlock, a cancel, a constraint) roll it back, and a call that never
/// got a connection sent nothing.
pub(crate) fn outcome_unknown(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| matches!(&*c, "57P01" | "57P02") || c.starts_with("08")),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        _ => false,
    }
}

/// Whether `err` is a unique violation of the constraint `name`.
pub(crate) fn violates(err: &sqlx::Error, name: &str) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") && db.constraint() == Some(name))
}

/// Maps a sqlx error to the store's error. Constraint names that guard an
/// invariant become the domain error the invariant stands for; transient
/// faults become [`DropError::Unavailable`]; the rest is
/// [`DropError::Internal`].
pub(crate) fn map_sqlx(err: sqlx::Error) -> DropError {
    // The database refused an oversell, a negative counter or a second
    // active hold: only a bug in the write paths can get here, so it is a
    // fault, but a named one.
    if let sqlx::Error::Database(db) = &err
        && let Some(
            name @ ("dropkit_drops_no_oversell"
            | "dropkit_drops_reserved_nonneg"
            | "dropkit_drops_sold_nonneg"
            | "dropkit_reservations_one_active"
            | "dropkit_purchases_one_per_hold"),
        ) = db.constraint()
    {
        return DropError::Internal {
            store: STORE,
            source: format!("invariant guard {name} refused a write: {err}").into(),
        };
    }
    if is_transient(&err) || matches!(err, sqlx::Error::PoolClosed) {
        DropError::Unavailable {
            store: STORE,
            source: ErrorSource::new(err),
        }
    } else {
        DropError::Internal {
            store: STORE,
            source: ErrorSource::new(err),
        }
    }
}

/// A fault that is neither the caller's nor transient.
pub(crate) fn internal(message: impl Into<String>) -> DropError {
    DropError::Internal {
        store: STORE,
        source: message.into().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates() {
        for code in ["40001", "40P01", "57P01", "08006", "08003"] {
            assert!(retryable_sqlstate(code), "{code}");
        }
        for code in ["23505", "23514", "42P01", "22P02"] {
            assert!(!retryable_sqlstate(code), "{code}");
        }
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        assert!(!should_retry(&sqlx::Error::PoolTimedOut));
        assert!(!outcome_unknown(&sqlx::Error::PoolTimedOut));
        assert!(outcome_unknown(&sqlx::Error::WorkerCrashed));
        assert!(!is_transient(&sqlx::Error::RowNotFound));
        assert_eq!(map_sqlx(sqlx::Error::PoolTimedOut).code(), "UNAVAILABLE");
        assert_eq!(map_sqlx(sqlx::Error::RowNotFound).code(), "INTERNAL");
    }
}
