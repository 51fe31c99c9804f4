//! The write paths: each is one call of a function from the migrations,
//! retried as a whole on transient faults, with events published after the
//! commit. The same code serves one caller or a batch of them.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use drop_core::{
    DropError, DropEvent, DropId, Money, NotActiveReason, Purchase, PurchaseId, Reservation,
    ReservationId, ReservationStatus, Reserved, Stock, TOP_PURCHASERS, TopPurchaser, Username,
};
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Row};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::error::{map_sqlx, outcome_unknown, should_retry, violates};
use crate::fanout::Fanout;
use crate::rows::{Times, nth, stock, username};

/// What the write paths share: the pool, the event fan-out, the retry
/// budget, and the tasks writes run on.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) pool: PgPool,
    pub(crate) fanout: Fanout,
    pub(crate) retries: u32,
    /// Every write runs on a task tracked here, so shutdown can wait for
    /// writes in flight (and their events) before it stops the notifier.
    pub(crate) tasks: TaskTracker,
    /// Cancelled when the store shuts down: new writes are refused.
    pub(crate) closing: CancellationToken,
}

impl Shared {
    /// Publishes a write's events followed by the drop's new stock; a write
    /// that changed nothing publishes nothing.
    fn publish_with_stock(&self, drop_id: DropId, mut events: Vec<DropEvent>, after: Stock) {
        if !events.is_empty() {
            events.push(DropEvent::StockChanged {
                drop_id,
                stock: after,
            });
        }
        self.fanout.publish(events);
    }

    /// Runs a write (`fut`: the statement and the publishing of its
    /// events) on a task of its own and waits for its answer. Dropping the
    /// returned future (a client that went away, a request timeout) gives
    /// up on the answer only: a statement that was sent still commits and
    /// its events are still published.
    pub(crate) async fn detached<T, Fut>(&self, fut: Fut) -> Result<T, DropError>
    where
        T: Send + 'static,
        Fut: Future<Output = Result<T, DropError>> + Send + 'static,
    {
        if self.closing.is_cancelled() {
            return Err(shut_down());
        }
        match self.tasks.spawn(fut).await {
            Ok(answer) => answer,
            Err(e) => Err(crate::error::internal(format!("a write task failed: {e}"))),
        }
    }

    /// Runs `op`, retrying transient faults up to the budget with a short
    /// growing pause. Every retried call here is safe to repeat: a write
    /// that did commit before its answer was lost is recognised on the
    /// retry (its ids are reused). Whenever a fault leaves a commit's
    /// outcome unknown (the connection broke with the statement out, on
    /// any attempt, the last one included), subscribers are told to resync:
    /// that commit's events, if it happened, were never published.
    pub(crate) async fn retry<T, F, Fut>(&self, mut op: F) -> Result<T, DropError>
    where
        F: FnMut(PoolConnection<Postgres>) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let mut attempt = 0;
        loop {
            let failed = match self.pool.acquire().await {
                // No connection, nothing sent: nothing can have committed.
                Err(e) => (e, false),
                Ok(conn) => match op(conn).await {
                    Ok(v) => return Ok(v),
                    Err(e) => {
                        let unknown = outcome_unknown(&e);
                        (e, unknown)
                    }
                },
            };
            let (e, unknown) = failed;
            if unknown {
                self.fanout.publish_lost();
            }
            if !(should_retry(&e) && attempt < self.retries) {
                return Err(map_sqlx(e));
            }
            attempt += 1;
            tracing::debug!(error = %e, attempt, "transient database fault; retrying");
            tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt))).await;
        }
    }

    /// Runs a read-only `op` with the same retry budget (nothing to resync).
    pub(crate) async fn read<T, F, Fut>(&self, mut op: F) -> Result<T, DropError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if should_retry(&e) && attempt < self.retries => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt))).await;
                }
                Err(e) => return Err(map_sqlx(e)),
            }
        }
    }
}

/// The answer to a call made after the store began to shut down.
pub(crate) fn shut_down() -> DropError {
    DropError::Unavailable {
        store: crate::error::STORE,
        source: "the store is shut down".into(),
    }
}

fn not_active(drop_id: DropId, outcome: &str) -> Option<DropError> {
    let reason = match outcome {
        "not_started" => NotActiveReason::NotStarted,
        "ended" => NotActiveReason::Ended,
        _ => return None,
    };
    Some(DropError::DropNotActive { drop_id, reason })
}

/// The refusal a hold function reports for one hold, as a `DropError`.
fn refusal(outcome: &str, reservation_id: ReservationId) -> Option<DropError> {
    Some(match outcome {
        "not_found" => DropError::ReservationNotFound { reservation_id },
        "not_owner" => DropError::NotOwner { reservation_id },
        "expired" => DropError::ReservationExpired { reservation_id },
        "already_purchased" => DropError::AlreadyPurchased { reservation_id },
        "already_released" => DropError::AlreadyReleased { reservation_id },
        _ => return None,
    })
}

/// The drop's counters after a write, from the `o_total`, `o_reserved`,
/// `o_sold` and `o_version` columns every write function returns.
fn stock_after(row: &PgRow) -> Result<Stock, DropError> {
    stock(
        row.try_get("o_total").map_err(map_sqlx)?,
        row.try_get("o_reserved").map_err(map_sqlx)?,
        row.try_get("o_sold").map_err(map_sqlx)?,
        row.try_get("o_version").map_err(map_sqlx)?,
    )
}

fn fail_all<T>(n: usize, err: &DropError) -> Vec<Result<T, DropError>> {
    (0..n).map(|_| Err(err.clone())).collect()
}

/// Reserves one unit of `drop_id` for each of `users` (in arrival order,
/// possibly repeating) in one transaction.
pub(crate) async fn reserve(
    shared: &Shared,
    drop_id: DropId,
    users: Vec<Username>,
) -> Vec<Result<Reserved, DropError>> {
    // The same user twice gets one hold: send each user once.
    let mut slot_of: HashMap<&str, usize> = HashMap::new();
    let mut distinct: Vec<&str> = Vec::new();
    let slots: Vec<usize> = users
        .iter()
        .map(|u| {
            *slot_of.entry(u.as_str()).or_insert_with(|| {
                distinct.push(u.as_str());
                distinct.len() - 1
            })
        })
        .collect();
    // Ids are chosen once, so a retry of a call that did commit finds its
    // own holds and reports them as created.
    let ids: Vec<Uuid> = distinct.iter().map(|_| Uuid::new_v4()).collect();
    let (distinct_ref, ids_ref) = (&distinct, &ids);
    let attempt = shared
        .retry(move |mut conn| async move {
            let called = sqlx::query("SELECT * FROM dropkit_reserve($1, $2, $3)")
                .bind(drop_id.as_uuid())
                .bind(distinct_ref)
                .bind(ids_ref)
                .fetch_one(&mut *conn)
                .await;
            match called {
                // Only a retry can meet a hold with an id this call chose:
                // the attempt whose answer was lost committed it, and it is
                // no longer active (so it was not answered as existing).
                Err(e) if violates(&e, "dropkit_reservations_pkey") => {
                    const SQL: &str = concat!(
                        "SELECT ",
                        hold_columns!(),
                        " FROM dropkit_reservations WHERE id = ANY ($1)"
                    );
                    let rows = sqlx::query(SQL)
                        .bind(ids_ref)
                        .fetch_all(&shared.pool)
                        .await?;
                    Ok(ReserveAttempt::Recognised(rows))
                }
                other => other.map(ReserveAttempt::Answered),
            }
        })
        .await;
    let answers = attempt.and_then(|attempt| match attempt {
        ReserveAttempt::Answered(row) => read_reserve(shared, drop_id, &ids, &row),
        ReserveAttempt::Recognised(rows) => recognise_reserve(shared, drop_id, &ids, &rows),
    });
    let per_slot = match answers {
        Ok(a) => a,
        Err(e) => return fail_all(users.len(), &e),
    };
    let mut seen = vec![false; per_slot.len()];
    slots
        .into_iter()
        .zip(&users)
        .map(|(slot, user)| match &per_slot[slot] {
            Ok(reservation) => {
                let created = reservation.id.as_uuid() == ids[slot] && !seen[slot];
                seen[slot] = true;
                Ok(Reserved {
                    reservation: Reservation {
                        username: user.clone(),
                        ..reservation.clone()
                    },
                    created,
                })
            }
            Err(e) => Err(e.clone()),
        })
        .collect()
}

/// What one attempt of a reserve came back with.
enum ReserveAttempt {
    /// The function's answer row.
    Answered(PgRow),
    /// The holds an earlier attempt (whose answer was lost) committed with
    /// this call's ids.
    Recognised(Vec<PgRow>),
}

/// Answers a reserve from the holds its lost attempt committed: those users
/// got a hold (announced now, since the lost commit announced nothing);
/// what the others got is unknown, so they are told to retry.
fn recognise_reserve(
    shared: &Shared,
    drop_id: DropId,
    ids: &[Uuid],
    rows: &[PgRow],
) -> Result<Vec<Result<Reservation, DropError>>, DropError> {
    let holds = rows
        .iter()
        .map(crate::rows::reservation)
        .collect::<Result<Vec<_>, _>>()?;
    let mut events = Vec::new();
    let out = ids
        .iter()
        .map(|id| match holds.iter().find(|h| h.id.as_uuid() == *id) {
            Some(hold) => {
                events.push(DropEvent::HoldCreated {
                    drop_id,
                    reservation_id: hold.id,
                    expires_at: hold.expires_at,
                });
                Ok(hold.clone())
            }
            None => Err(DropError::Unavailable {
                store: crate::error::STORE,
                source: "the answer to this reserve was lost; retry".into(),
            }),
        })
        .collect();
    shared.fanout.publish(events);
    Ok(out)
}

/// One answer per distinct user, and the events, published.
fn read_reserve(
    shared: &Shared,
    drop_id: DropId,
    ids: &[Uuid],
    row: &PgRow,
) -> Result<Vec<Result<Reservation, DropError>>, DropError> {
    let outcome: String = row.try_get("o_outcome").map_err(map_sqlx)?;
    if outcome == "not_found" {
        return Err(DropError::DropNotFound { drop_id });
    }
    if let Some(e) = not_active(drop_id, &outcome) {
        return Err(e);
    }
    let results: Vec<String> = row.try_get("o_results").map_err(map_sqlx)?;
    let hold_ids: Vec<Option<Uuid>> = row.try_get("o_hold_ids").map_err(map_sqlx)?;
    let created_at: Times = row.try_get("o_created_at").map_err(map_sqlx)?;
    let expires_at: Times = row.try_get("o_expires_at").map_err(map_sqlx)?;
    let expired: Vec<Uuid> = row.try_get("o_expired_ids").map_err(map_sqlx)?;
    let after = stock_after(row)?;
    if results.len() != ids.len() {
        return Err(crate::error::internal(
            "reserve answered for a different number of users",
        ));
    }
    let mut events: Vec<DropEvent> = expired
        .iter()
        .map(|id| DropEvent::HoldExpired {
            drop_id,
            reservation_id: ReservationId::from_uuid(*id),
        })
        .collect();
    let mut out = Vec::with_capacity(results.len());
    for (i, result) in results.iter().enumerate() {
        out.push(match result.as_str() {
            "created" | "existing" => {
                let hold = Reservation {
                    id: ReservationId::from_uuid(nth(&hold_ids, i, "hold id")?),
                    drop_id,
                    // Filled in by the caller, who knows the typed name.
                    username: placeholder_user(),
                    status: ReservationStatus::Active,
                    created_at: nth(&created_at, i, "createdAt")?,
                    expires_at: nth(&expires_at, i, "expiresAt")?,
                };
                // An existing hold with the id this call chose is one an
                // earlier attempt committed without an answer (so without
                // its event): announce it now.
                if result == "created" || hold.id.as_uuid() == ids[i] {
                    events.push(DropEvent::HoldCreated {
                        drop_id,
                        reservation_id: hold.id,
                        expires_at: hold.expires_at,
                    });
                }
                Ok(hold)
            }
            "out_of_stock" => Err(DropError::OutOfStock { drop_id }),
            other => {
                return Err(crate::error::internal(format!(
                    "unknown reserve result {other:?}"
                )));
            }
        });
    }
    shared.publish_with_stock(drop_id, events, after);
    Ok(out)
}

fn placeholder_user() -> Username {
    Username::parse("___").expect("a valid placeholder")
}

/// Purchases holds of `drop_id` in one transaction: `(hold, buyer)` pairs.
pub(crate) async fn purchase(
    shared: &Shared,
    drop_id: DropId,
    reqs: Vec<(ReservationId, Username)>,
) -> Vec<Result<Purchase, DropError>> {
    let res: Vec<Uuid> = reqs.iter().map(|(r, _)| r.as_uuid()).collect();
    let users: Vec<&str> = reqs.iter().map(|(_, u)| u.as_str()).collect();
    let pids: Vec<Uuid> = reqs.iter().map(|_| Uuid::new_v4()).collect();
    let (res_ref, users_ref, pids_ref) = (&res, &users, &pids);
    let row = shared
        .retry(move |mut conn| async move {
            sqlx::query("SELECT * FROM dropkit_purchase($1, $2, $3, $4)")
                .bind(drop_id.as_uuid())
                .bind(res_ref)
                .bind(users_ref)
                .bind(pids_ref)
                .fetch_one(&mut *conn)
                .await
        })
        .await;
    match row.and_then(|row| read_purchase(shared, drop_id, &reqs, &pids, &row)) {
        Ok(answers) => answers,
        Err(e) => fail_all(reqs.len(), &e),
    }
}

fn read_purchase(
    shared: &Shared,
    drop_id: DropId,
    reqs: &[(ReservationId, Username)],
    pids: &[Uuid],
    row: &PgRow,
) -> Result<Vec<Result<Purchase, DropError>>, DropError> {
    let outcome: String = row.try_get("o_outcome").map_err(map_sqlx)?;
    match outcome.as_str() {
        "ok" => {}
        "not_found" => {
            return Ok(reqs
                .iter()
                .map(|(r, _)| Err(DropError::ReservationNotFound { reservation_id: *r }))
                .collect());
        }
        other => {
            return Err(not_active(drop_id, other).unwrap_or_else(|| {
                crate::error::internal(format!("unknown purchase outcome {other:?}"))
            }));
        }
    }
    let results: Vec<String> = row.try_get("o_results").map_err(map_sqlx)?;
    let at: Times = row.try_get("o_purchased_at").map_err(map_sqlx)?;
    let price: i64 = row.try_get("o_price").map_err(map_sqlx)?;
    let price = Money::from_minor(price)?;
    let top_users: Vec<String> = row.try_get("o_top_users").map_err(map_sqlx)?;
    let top_times: Times = row.try_get("o_top_times").map_err(map_sqlx)?;
    let after = stock_after(row)?;
    if results.len() != reqs.len() {
        return Err(crate::error::internal(
            "purchase answered for a different number of holds",
        ));
    }
    let mut top: Vec<TopPurchaser> = Vec::new();
    for (i, name) in top_users.iter().enumerate() {
        top.push(TopPurchaser {
            username: username(name)?,
            purchased_at: nth(&top_times, i, "top purchaser time")?,
        });
    }
    let mut events = Vec::new();
    let mut out = Vec::with_capacity(reqs.len());
    for (i, ((reservation_id, user), result)) in reqs.iter().zip(&results).enumerate() {
        let reservation_id = *reservation_id;
        out.push(match result.as_str() {
            "purchased" | "repeated" => {
                let p = Purchase {
                    id: PurchaseId::from_uuid(pids[i]),
                    reservation_id,
                    drop_id,
                    username: user.clone(),
                    amount_paid: price,
                    created_at: nth(&at, i, "purchase time")?,
                };
                // "repeated": this call's own purchase, committed by an
                // earlier attempt whose answer (and event) was lost; the
                // latest buyers read by this call already include it.
                if result == "purchased" {
                    top.insert(
                        0,
                        TopPurchaser {
                            username: user.clone(),
                            purchased_at: p.created_at,
                        },
                    );
                    top.truncate(TOP_PURCHASERS);
                }
                events.push(DropEvent::PurchaseCompleted {
                    drop_id,
                    reservation_id,
                    username: user.clone(),
                    top_purchasers: top.clone(),
                });
                Ok(p)
            }
            other => match refusal(other, reservation_id) {
                Some(e) => Err(e),
                None => {
                    return Err(crate::error::internal(format!(
                        "unknown purchase result {other:?}"
                    )));
                }
            },
        });
    }
    shared.publish_with_stock(drop_id, events, after);
    Ok(out)
}

/// The owner gives a hold back.
pub(crate) async fn release(
    shared: &Shared,
    reservation_id: ReservationId,
    user: &Username,
) -> Result<Reservation, DropError> {
    let mut attempt = 0u32;
    let row = shared
        .retry(|mut conn| {
            attempt += 1;
            let user = user.as_str();
            async move {
                sqlx::query("SELECT * FROM dropkit_release($1, $2)")
                    .bind(reservation_id.as_uuid())
                    .bind(user)
                    .fetch_one(&mut *conn)
                    .await
            }
        })
        .await?;
    let outcome: String = row.try_get("o_outcome").map_err(map_sqlx)?;
    let hold = |status| -> Result<Reservation, DropError> {
        Ok(Reservation {
            id: reservation_id,
            drop_id: DropId::from_uuid(row.try_get("o_drop").map_err(map_sqlx)?),
            username: user.clone(),
            status,
            created_at: row.try_get("o_created_at").map_err(map_sqlx)?,
            expires_at: row.try_get("o_expires_at").map_err(map_sqlx)?,
        })
    };
    match outcome.as_str() {
        "released" => {
            let released = hold(ReservationStatus::Released)?;
            shared.publish_with_stock(
                released.drop_id,
                vec![DropEvent::HoldReleased {
                    drop_id: released.drop_id,
                    reservation_id,
                }],
                stock_after(&row)?,
            );
            Ok(released)
        }
        // Only the owner can have released it; after a retry, a release
        // found done is this call's own.
        "already_released" if attempt > 1 => hold(ReservationStatus::Released),
        other => Err(refusal(other, reservation_id).unwrap_or_else(|| {
            crate::error::internal(format!("unknown release outcome {other:?}"))
        })),
    }
}

/// Expires up to `limit` due holds; returns how many.
pub(crate) async fn expire_due(shared: &Shared, limit: usize) -> Result<usize, DropError> {
    if limit == 0 {
        return Ok(0);
    }
    let limit = i32::try_from(limit).unwrap_or(i32::MAX);
    let rows = shared
        .retry(|mut conn| async move {
            sqlx::query("SELECT * FROM dropkit_expire_due($1)")
                .bind(limit)
                .fetch_all(&mut *conn)
                .await
        })
        .await?;
    let mut events = Vec::new();
    let mut n = 0;
    for row in &rows {
        let drop_id = DropId::from_uuid(row.try_get("o_drop").map_err(map_sqlx)?);
        let expired: Vec<Uuid> = row.try_get("o_expired").map_err(map_sqlx)?;
        n += expired.len();
        events.extend(expired.into_iter().map(|id| DropEvent::HoldExpired {
            drop_id,
            reservation_id: ReservationId::from_uuid(id),
        }));
        events.push(DropEvent::StockChanged {
            drop_id,
            stock: stock_after(row)?,
        });
    }
    shared.fanout.publish(events);
    Ok(n)
}
