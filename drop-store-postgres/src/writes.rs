//! The write paths: each is one call of a function from the migrations,
//! retried as a whole on transient faults, with events published after the
//! commit. The same code serves one caller or a batch of them.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use drop_core::{
    Buyer, BuyerId, DropError, DropEvent, DropId, Purchase, PurchaseId, Reservation, ReservationId,
    ReservationStatus, Reserved, Stock, TOP_PURCHASERS, TopPurchaser,
};
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::error::{internal, map_sqlx, outcome_unknown, should_retry, violates};
use crate::fanout::Fanout;
use crate::rows::{ExpiryRow, HoldRow, Outcome, PurchaseRow, ReleaseRow, ReserveRow, decode};

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
            Err(e) => Err(internal(format!("a write task failed: {e}"))),
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

    /// Runs a read-only `op` (or an idempotent write that announces
    /// nothing) with the same retry budget: nothing to resync.
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

fn fail_all<T>(n: usize, err: &DropError) -> Vec<Result<T, DropError>> {
    (0..n).map(|_| Err(err.clone())).collect()
}

/// Decodes a write function's answer. The write committed, so a row that
/// does not fit leaves its events unknown: subscribers are told to resync.
fn answer<T>(shared: &Shared, row: &PgRow) -> Result<T, DropError>
where
    T: for<'r> sqlx::FromRow<'r, PgRow>,
{
    decode(row).inspect_err(|_| shared.fanout.publish_lost())
}

/// Reserves one unit of `drop_id` for each of `users` (in arrival order,
/// possibly repeating) in one transaction.
pub(crate) async fn reserve(
    shared: &Shared,
    drop_id: DropId,
    users: Vec<Buyer>,
) -> Vec<Result<Reserved, DropError>> {
    // The same buyer twice gets one hold: send each buyer id once (under
    // the name it came with first).
    let mut slot_of: HashMap<&str, usize> = HashMap::new();
    let mut distinct: Vec<&Buyer> = Vec::new();
    let slots: Vec<usize> = users
        .iter()
        .map(|u| {
            *slot_of.entry(u.id.as_str()).or_insert_with(|| {
                distinct.push(u);
                distinct.len() - 1
            })
        })
        .collect();
    let buyers: Vec<&str> = distinct.iter().map(|u| u.id.as_str()).collect();
    let names: Vec<&str> = distinct.iter().map(|u| u.display_name.as_str()).collect();
    // Ids are chosen once, so a retry of a call that did commit finds its
    // own holds and reports them as created.
    let ids: Vec<Uuid> = distinct.iter().map(|_| Uuid::new_v4()).collect();
    let (buyers_ref, names_ref, ids_ref) = (&buyers, &names, &ids);
    let attempt = shared
        .retry(move |mut conn| async move {
            let called = sqlx::query("SELECT * FROM dropkit_reserve($1, $2, $3, $4)")
                .bind(drop_id.as_uuid())
                .bind(buyers_ref)
                .bind(names_ref)
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
                    let rows = sqlx::query_as::<_, HoldRow>(SQL)
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
        ReserveAttempt::Answered(row) => {
            answer(shared, &row).and_then(|row| read_reserve(shared, drop_id, &distinct, &ids, row))
        }
        ReserveAttempt::Recognised(rows) => recognise_reserve(shared, drop_id, &ids, rows),
    });
    let per_slot = match answers {
        Ok(a) => a,
        Err(e) => return fail_all(users.len(), &e),
    };
    let mut seen = vec![false; per_slot.len()];
    slots
        .into_iter()
        .map(|slot| match &per_slot[slot] {
            Ok(reservation) => {
                let created = reservation.id.as_uuid() == ids[slot] && !seen[slot];
                seen[slot] = true;
                Ok(Reserved::new(reservation.clone(), created))
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
    Recognised(Vec<HoldRow>),
}

/// Answers a reserve from the holds its lost attempt committed: those users
/// got a hold (announced now, since the lost commit announced nothing);
/// what the others got is unknown, so they are told to retry.
fn recognise_reserve(
    shared: &Shared,
    drop_id: DropId,
    ids: &[Uuid],
    rows: Vec<HoldRow>,
) -> Result<Vec<Result<Reservation, DropError>>, DropError> {
    let holds = rows
        .into_iter()
        .map(Reservation::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    let mut events = Vec::new();
    let out = ids
        .iter()
        .map(|id| match holds.iter().find(|h| h.id.as_uuid() == *id) {
            Some(hold) => {
                events.push(DropEvent::HoldCreated {
                    drop_id,
                    reservation_id: hold.id,
                    buyer_id: hold.buyer_id.clone(),
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
    users: &[&Buyer],
    ids: &[Uuid],
    row: ReserveRow,
) -> Result<Vec<Result<Reservation, DropError>>, DropError> {
    row.outcome.accept(Some(drop_id), None)?;
    if row.answers.len() != ids.len() {
        return Err(internal("reserve answered for a different number of users"));
    }
    let mut events: Vec<DropEvent> = row
        .expired
        .iter()
        .map(|id| DropEvent::HoldExpired {
            drop_id,
            reservation_id: ReservationId::from_uuid(*id),
        })
        .collect();
    let mut out = Vec::with_capacity(ids.len());
    for ((answer, user), id) in row.answers.iter().zip(users).zip(ids) {
        out.push(match answer.outcome.accept(Some(drop_id), None) {
            Ok(Outcome::Created | Outcome::Existing) => {
                let hold = answer.hold(drop_id, user.id.clone())?;
                // An existing hold with the id this call chose is one an
                // earlier attempt committed without an answer (so without
                // its event): announce it now.
                if answer.outcome == Outcome::Created || hold.id.as_uuid() == *id {
                    events.push(DropEvent::HoldCreated {
                        drop_id,
                        reservation_id: hold.id,
                        buyer_id: hold.buyer_id.clone(),
                        expires_at: hold.expires_at,
                    });
                }
                Ok(hold)
            }
            Ok(other) => return Err(other.unexpected("a reserve")),
            Err(refused) => Err(refused),
        });
    }
    shared.publish_with_stock(drop_id, events, row.after.stock()?);
    Ok(out)
}

/// Purchases holds of `drop_id` in one transaction: `(hold, buyer)` pairs,
/// each buyer with the display name its hold was taken under.
pub(crate) async fn purchase(
    shared: &Shared,
    drop_id: DropId,
    reqs: Vec<(ReservationId, Buyer)>,
) -> Vec<Result<Purchase, DropError>> {
    let res: Vec<Uuid> = reqs.iter().map(|(r, _)| r.as_uuid()).collect();
    let users: Vec<&str> = reqs.iter().map(|(_, u)| u.id.as_str()).collect();
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
    let answers = row
        .and_then(|row| answer(shared, &row))
        .and_then(|row| read_purchase(shared, drop_id, &reqs, &pids, row));
    match answers {
        Ok(answers) => answers,
        Err(e) => fail_all(reqs.len(), &e),
    }
}

fn read_purchase(
    shared: &Shared,
    drop_id: DropId,
    reqs: &[(ReservationId, Buyer)],
    pids: &[Uuid],
    row: PurchaseRow,
) -> Result<Vec<Result<Purchase, DropError>>, DropError> {
    if row.outcome == Outcome::DropNotFound {
        // The hold named a drop that is gone: so is, to the caller, the hold.
        return Ok(reqs
            .iter()
            .map(|(r, _)| Err(DropError::ReservationNotFound { reservation_id: *r }))
            .collect());
    }
    row.outcome.accept(Some(drop_id), None)?;
    if row.answers.len() != reqs.len() {
        return Err(internal(
            "purchase answered for a different number of holds",
        ));
    }
    let price = row.price()?;
    let mut top = row.latest()?;
    let mut events = Vec::new();
    let mut out = Vec::with_capacity(reqs.len());
    for (((reservation_id, user), answer), pid) in reqs.iter().zip(&row.answers).zip(pids) {
        let reservation_id = *reservation_id;
        out.push(
            match answer.outcome.accept(Some(drop_id), Some(reservation_id)) {
                Ok(said @ (Outcome::Purchased | Outcome::Repeated)) => {
                    let p = Purchase::new(
                        PurchaseId::from_uuid(*pid),
                        reservation_id,
                        drop_id,
                        user.clone(),
                        price,
                        answer.purchased_at()?,
                    );
                    // Repeated: this call's own purchase, committed by an
                    // earlier attempt whose answer (and event) was lost; the
                    // latest buyers read by this call already include it.
                    if said == Outcome::Purchased {
                        top.insert(0, TopPurchaser::new(p.display_name.clone(), p.created_at));
                        top.truncate(TOP_PURCHASERS);
                    }
                    events.push(DropEvent::PurchaseCompleted {
                        drop_id,
                        reservation_id,
                        buyer_id: p.buyer_id.clone(),
                        display_name: p.display_name.clone(),
                        top_purchasers: top.clone(),
                    });
                    Ok(p)
                }
                Ok(other) => return Err(other.unexpected("a purchase")),
                Err(refused) => Err(refused),
            },
        );
    }
    shared.publish_with_stock(drop_id, events, row.after.stock()?);
    Ok(out)
}

/// The owner gives a hold back.
pub(crate) async fn release(
    shared: &Shared,
    reservation_id: ReservationId,
    user: &BuyerId,
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
    let row: ReleaseRow = answer(shared, &row)?;
    match row.outcome.accept(None, Some(reservation_id)) {
        Ok(Outcome::Released) => {
            let released = row.hold(reservation_id, user.clone(), ReservationStatus::Released)?;
            shared.publish_with_stock(
                released.drop_id,
                vec![DropEvent::HoldReleased {
                    drop_id: released.drop_id,
                    reservation_id,
                    buyer_id: released.buyer_id.clone(),
                }],
                row.after.stock()?,
            );
            Ok(released)
        }
        // Only the owner can have released it; after a retry, a release
        // found done is this call's own.
        Err(DropError::AlreadyReleased { .. }) if attempt > 1 => {
            row.hold(reservation_id, user.clone(), ReservationStatus::Released)
        }
        Ok(other) => Err(other.unexpected("a release")),
        Err(refused) => Err(refused),
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
        let row: ExpiryRow = answer(shared, row)?;
        let drop_id = row.drop_id();
        n += row.expired.len();
        events.extend(row.expired.iter().map(|id| DropEvent::HoldExpired {
            drop_id,
            reservation_id: ReservationId::from_uuid(*id),
        }));
        events.push(DropEvent::StockChanged {
            drop_id,
            stock: row.after.stock()?,
        });
    }
    shared.fanout.publish(events);
    Ok(n)
}
