//! The write paths: each is one call of a function from the migrations,
//! retried as a whole on transient faults, with events published after the
//! commit. The same code serves one caller or a batch of them.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drop_core::{
    Buyer, BuyerId, DrawRandom, DropError, DropEvent, DropId, IdempotencyKey, Purchased,
    Reservation, ReservationId, ReservationStatus, ReserveRequest, Reserved, TOP_PURCHASERS,
    TopPurchaser,
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
    /// When this instance last pruned old idempotency records.
    pub(crate) pruned: Arc<Mutex<Option<tokio::time::Instant>>>,
    /// Whether writes append to the event log (the `*_logged` functions).
    pub(crate) log: bool,
    /// How long log entries are kept.
    pub(crate) retention: Duration,
    /// Where draw drops' seeds and entries' receipts come from.
    pub(crate) draw_random: Arc<dyn DrawRandom>,
}

impl Shared {
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

/// One caller's reserve, as the batch carries it.
#[derive(Debug, Clone)]
pub(crate) struct ReserveCall {
    /// Who asks.
    pub(crate) buyer: Buyer,
    /// What they ask for.
    pub(crate) request: ReserveRequest,
    /// Their idempotency key, if they sent one.
    pub(crate) key: Option<IdempotencyKey>,
}

/// One caller's purchase, as the batch carries it.
#[derive(Debug, Clone)]
pub(crate) struct PurchaseCall {
    /// The hold.
    pub(crate) reservation_id: ReservationId,
    /// Its owner, as the caller names them.
    pub(crate) buyer: BuyerId,
    /// The caller's idempotency key, if they sent one.
    pub(crate) key: Option<IdempotencyKey>,
}

/// The key columns of a batch: per caller, the caller, key and
/// fingerprint, or NULLs.
type KeyColumns<'a> = (
    Vec<Option<&'a str>>,
    Vec<Option<&'a str>>,
    Vec<Option<Vec<u8>>>,
);

fn key_columns<'a>(keys: impl Iterator<Item = Option<&'a IdempotencyKey>>) -> KeyColumns<'a> {
    let mut out: KeyColumns<'a> = (Vec::new(), Vec::new(), Vec::new());
    for key in keys {
        out.0.push(key.map(IdempotencyKey::caller));
        out.1.push(key.map(IdempotencyKey::key));
        out.2.push(key.map(|k| k.fingerprint().to_vec()));
    }
    out
}

/// Reserves for each of `calls` (in arrival order, a buyer possibly more
/// than once) in one transaction.
pub(crate) async fn reserve(
    shared: &Shared,
    drop_id: DropId,
    calls: Vec<ReserveCall>,
) -> Vec<Result<Reserved, DropError>> {
    let buyers: Vec<&str> = calls.iter().map(|c| c.buyer.id.as_str()).collect();
    let names: Vec<&str> = calls
        .iter()
        .map(|c| c.buyer.display_name.as_str())
        .collect();
    let variants: Vec<Option<Uuid>> = calls
        .iter()
        .map(|c| c.request.variant_id.map(|v| v.as_uuid()))
        .collect();
    let quantities: Vec<i32> = calls
        .iter()
        .map(|c| i32::try_from(c.request.quantity).unwrap_or(i32::MAX))
        .collect();
    let (callers, keys, prints) = key_columns(calls.iter().map(|c| c.key.as_ref()));
    // Ids are chosen once, so a retry of a call that did commit finds its
    // own holds and reports them as created.
    let ids: Vec<Uuid> = calls.iter().map(|_| Uuid::new_v4()).collect();
    let args = (
        &buyers,
        &names,
        &variants,
        &quantities,
        &ids,
        &callers,
        &keys,
        &prints,
    );
    let attempt = shared
        .retry(move |mut conn| async move {
            let (buyers, names, variants, quantities, ids, callers, keys, prints) = args;
            let called = sqlx::query(if shared.log {
                "SELECT * FROM dropkit_reserve_logged($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            } else {
                "SELECT * FROM dropkit_reserve_units($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            })
            .bind(drop_id.as_uuid())
            .bind(buyers)
            .bind(names)
            .bind(variants)
            .bind(quantities)
            .bind(ids)
            .bind(callers)
            .bind(keys)
            .bind(prints)
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
                        .bind(ids)
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
            answer(shared, &row).and_then(|row| read_reserve(shared, drop_id, &calls, &ids, row))
        }
        ReserveAttempt::Recognised(rows) => recognise_reserve(shared, drop_id, &ids, rows),
    });
    let answers = match answers {
        Ok(a) => a,
        Err(e) => return fail_all(calls.len(), &e),
    };
    let mut out = Vec::with_capacity(answers.len());
    for (call, answer) in calls.iter().zip(answers) {
        out.push(match answer {
            Answer::Done(a) => a,
            // Answered from the record, after the batch's commit.
            Answer::FromRecord => match &call.key {
                Some(key) => crate::keys::replay_reserve(shared, key).await,
                None => Err(internal("a reserve without a key was answered by one")),
            },
        });
    }
    out
}

/// One caller's answer from a batch: final, or to be read from the
/// caller's idempotency record.
pub(crate) enum Answer<T> {
    /// The answer.
    Done(Result<T, DropError>),
    /// The caller's key is recorded: answer from the record.
    FromRecord,
}

/// What one attempt of a reserve came back with.
enum ReserveAttempt {
    /// The function's answer row.
    Answered(PgRow),
    /// The holds an earlier attempt (whose answer was lost) committed with
    /// this call's ids.
    Recognised(Vec<HoldRow>),
}

fn hold_created(drop_id: DropId, hold: &Reservation) -> DropEvent {
    DropEvent::HoldCreated {
        drop_id,
        reservation_id: hold.id,
        buyer_id: hold.buyer_id.clone(),
        variant_id: hold.variant_id,
        quantity: hold.quantity,
        expires_at: hold.expires_at,
        offered: hold.offered,
    }
}

/// Answers a reserve from the holds its lost attempt committed: those
/// callers got a hold (announced now, since the lost commit announced
/// nothing); what the others got is unknown, so they are told to retry.
fn recognise_reserve(
    shared: &Shared,
    drop_id: DropId,
    ids: &[Uuid],
    rows: Vec<HoldRow>,
) -> Result<Vec<Answer<Reserved>>, DropError> {
    let holds = rows
        .into_iter()
        .map(Reservation::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    let mut events = Vec::new();
    let out = ids
        .iter()
        .map(|id| match holds.iter().find(|h| h.id.as_uuid() == *id) {
            Some(hold) => {
                events.push(hold_created(drop_id, hold));
                Answer::Done(Ok(Reserved::new(hold.clone(), true)))
            }
            None => Answer::Done(Err(DropError::Unavailable {
                store: crate::error::STORE,
                source: "the answer to this reserve was lost; retry".into(),
            })),
        })
        .collect();
    shared.fanout.publish(events);
    Ok(out)
}

/// One answer per caller, and the events, published.
fn read_reserve(
    shared: &Shared,
    drop_id: DropId,
    calls: &[ReserveCall],
    ids: &[Uuid],
    row: ReserveRow,
) -> Result<Vec<Answer<Reserved>>, DropError> {
    row.outcome.accept(Some(drop_id), None)?;
    if row.answers.len() != ids.len() {
        return Err(internal(
            "reserve answered for a different number of callers",
        ));
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
    for ((answer, call), id) in row.answers.iter().zip(calls).zip(ids) {
        let buyer = || call.buyer.id.clone();
        out.push(match answer.outcome {
            Outcome::Created | Outcome::Existing => {
                let hold = answer.hold(drop_id, buyer())?;
                // An existing hold with the id this call chose is one an
                // earlier attempt committed without an answer (so without
                // its event): announce it now.
                let created = hold.id.as_uuid() == *id;
                if created {
                    events.push(hold_created(drop_id, &hold));
                }
                Answer::Done(Ok(Reserved::new(hold, created)))
            }
            Outcome::HoldExists => Answer::Done(Err(DropError::HoldExists {
                reservation: Box::new(answer.hold(drop_id, buyer())?),
            })),
            Outcome::BuyerLimit => Answer::Done(Err(DropError::BuyerLimitReached {
                drop_id,
                max_per_buyer: row.max_per_buyer()?,
                taken: answer.taken()?,
            })),
            Outcome::VariantNotFound => Answer::Done(Err(DropError::VariantNotFound {
                drop_id,
                variant_id: call
                    .request
                    .variant_id
                    .ok_or_else(|| internal("an unnamed variant was not found"))?,
            })),
            Outcome::BadQuantity => {
                let max = row.max_per_buyer()?;
                let message = if (1..=max).contains(&call.request.quantity) {
                    // Within the limit: refused for its total.
                    "the total would be above the largest amount (1000000000)".to_owned()
                } else {
                    format!("must be between 1 and the drop's maxPerBuyer ({max})")
                };
                Answer::Done(Err(DropError::invalid("quantity", message)))
            }
            Outcome::KeyTaken => Answer::FromRecord,
            other => match other.accept(Some(drop_id), None) {
                Ok(other) => return Err(other.unexpected("a reserve")),
                Err(refused) => Answer::Done(Err(refused)),
            },
        });
    }
    // Serving the lines comes after the callers' own changes, as logged.
    events.extend(crate::waitlist::step_events(drop_id, &row.steps)?);
    let stock = row.after.event(drop_id)?;
    if !events.is_empty() {
        events.push(stock);
    }
    shared.fanout.publish(events);
    Ok(out)
}

/// Purchases holds of `drop_id` in one transaction.
pub(crate) async fn purchase(
    shared: &Shared,
    drop_id: DropId,
    calls: Vec<PurchaseCall>,
) -> Vec<Result<Purchased, DropError>> {
    let res: Vec<Uuid> = calls.iter().map(|c| c.reservation_id.as_uuid()).collect();
    let buyers: Vec<&str> = calls.iter().map(|c| c.buyer.as_str()).collect();
    let pids: Vec<Uuid> = calls.iter().map(|_| Uuid::new_v4()).collect();
    let (callers, keys, prints) = key_columns(calls.iter().map(|c| c.key.as_ref()));
    let args = (&res, &buyers, &pids, &callers, &keys, &prints);
    let row = shared
        .retry(move |mut conn| async move {
            let (res, buyers, pids, callers, keys, prints) = args;
            sqlx::query(if shared.log {
                "SELECT * FROM dropkit_purchase_logged($1, $2, $3, $4, $5, $6, $7)"
            } else {
                "SELECT * FROM dropkit_purchase_units($1, $2, $3, $4, $5, $6, $7)"
            })
            .bind(drop_id.as_uuid())
            .bind(res)
            .bind(buyers)
            .bind(pids)
            .bind(callers)
            .bind(keys)
            .bind(prints)
            .fetch_one(&mut *conn)
            .await
        })
        .await;
    let answers = row
        .and_then(|row| answer(shared, &row))
        .and_then(|row| read_purchase(shared, drop_id, &calls, &pids, row));
    let answers = match answers {
        Ok(a) => a,
        Err(e) => return fail_all(calls.len(), &e),
    };
    let mut out = Vec::with_capacity(answers.len());
    for (call, answer) in calls.iter().zip(answers) {
        out.push(match answer {
            Answer::Done(a) => a,
            Answer::FromRecord => match &call.key {
                Some(key) => crate::keys::replay_purchase(shared, key).await,
                None => Err(internal("a purchase without a key was answered by one")),
            },
        });
    }
    out
}

fn read_purchase(
    shared: &Shared,
    drop_id: DropId,
    calls: &[PurchaseCall],
    pids: &[Uuid],
    row: PurchaseRow,
) -> Result<Vec<Answer<Purchased>>, DropError> {
    if row.outcome == Outcome::DropNotFound {
        // The hold named a drop that is gone: so is, to the caller, the hold.
        return Ok(calls
            .iter()
            .map(|c| {
                Answer::Done(Err(DropError::ReservationNotFound {
                    reservation_id: c.reservation_id,
                }))
            })
            .collect());
    }
    row.outcome.accept(Some(drop_id), None)?;
    if row.answers.len() != calls.len() {
        return Err(internal(
            "purchase answered for a different number of holds",
        ));
    }
    let mut top = row.latest()?;
    let mut events = Vec::new();
    let mut out = Vec::with_capacity(calls.len());
    for ((call, answer), pid) in calls.iter().zip(&row.answers).zip(pids) {
        let reservation_id = call.reservation_id;
        out.push(match answer.outcome {
            Outcome::Purchased | Outcome::Repeated => {
                let p = answer.purchase(drop_id, reservation_id, call.buyer.clone())?;
                // This call's own purchase (made now, or by an earlier
                // attempt whose answer and event were lost) is announced;
                // the owner's repeat of a purchase made before is not.
                let created = p.id.as_uuid() == *pid;
                if answer.outcome == Outcome::Purchased {
                    top.insert(0, TopPurchaser::new(p.display_name.clone(), p.created_at));
                    top.truncate(TOP_PURCHASERS);
                }
                if created {
                    events.push(DropEvent::PurchaseCompleted {
                        drop_id,
                        purchase_id: p.id,
                        reservation_id,
                        buyer_id: p.buyer_id.clone(),
                        variant_id: p.variant_id,
                        quantity: p.quantity,
                        amount_paid: p.amount_paid,
                        display_name: p.display_name.clone(),
                        top_purchasers: top.clone(),
                    });
                }
                Answer::Done(Ok(Purchased::new(p, created)))
            }
            Outcome::KeyTaken => Answer::FromRecord,
            other => match other.accept(Some(drop_id), Some(reservation_id)) {
                Ok(other) => return Err(other.unexpected("a purchase")),
                Err(refused) => Answer::Done(Err(refused)),
            },
        });
    }
    let stock = row.after.event(drop_id)?;
    if !events.is_empty() {
        events.push(stock);
    }
    shared.fanout.publish(events);
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
                sqlx::query(if shared.log {
                    "SELECT * FROM dropkit_release_logged($1, $2)"
                } else {
                    "SELECT * FROM dropkit_release($1, $2)"
                })
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
            let mut events = vec![DropEvent::HoldReleased {
                drop_id: released.drop_id,
                reservation_id,
                buyer_id: released.buyer_id.clone(),
            }];
            events.extend(crate::waitlist::step_events(
                released.drop_id,
                row.steps.as_deref().unwrap_or(&[]),
            )?);
            events.push(row.after.event(released.drop_id)?);
            shared.fanout.publish(events);
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
            sqlx::query(if shared.log {
                "SELECT * FROM dropkit_expire_due_logged($1)"
            } else {
                "SELECT * FROM dropkit_expire_due($1)"
            })
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
        events.extend(crate::waitlist::step_events(drop_id, &row.steps)?);
        events.push(row.after.event(drop_id)?);
    }
    shared.fanout.publish(events);
    crate::keys::prune(shared).await;
    Ok(n)
}
