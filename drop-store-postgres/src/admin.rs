//! Drop creation and the admin writes (edit, pause, end, cancel a
//! purchase): one transaction each, the drop row locked first, the rules
//! decided in Rust ([`DropPatch::apply`]) on the counters read under that
//! lock, the idempotency key recorded before the commit, events after it.

use chrono::{DateTime, Utc};
use drop_core::{
    Applied, Change, DropAction, DropError, DropEvent, DropId, DropPatch, DropState,
    IdempotencyKey, NewDrop, Purchase, PurchaseId, Stock, VariantStock,
};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::error::{internal, violates};
use crate::keys;
use crate::rows::{Counters, DropRow, LineStep, PurchaseRecordRow};
use crate::writes::Shared;

/// A drop as clients see it.
pub(crate) async fn read_drop(shared: &Shared, drop_id: DropId) -> Result<DropState, DropError> {
    const SQL: &str = concat!(
        "SELECT ",
        visible_drop_columns!(),
        " FROM dropkit_drops d WHERE d.id = $1"
    );
    let row = shared
        .read(|| {
            sqlx::query_as::<_, DropRow>(SQL)
                .bind(drop_id.as_uuid())
                .fetch_optional(&shared.pool)
        })
        .await?;
    match row {
        Some(row) => DropState::try_from(row),
        None => Err(DropError::DropNotFound { drop_id }),
    }
}

/// What one attempt of an admin transaction came to.
enum Attempt<T> {
    /// Committed: the answer, and whether anything changed.
    Done(T),
    /// Refused by a rule; nothing was written.
    Refused(DropError),
    /// The key is recorded (by an earlier call, or by another transaction
    /// meanwhile): answer from the record.
    Recorded,
}

/// Records `key` for entity `kind`/`id` in the transaction on `conn`;
/// `false` when it is recorded already.
async fn record(
    conn: &mut PgConnection,
    key: &IdempotencyKey,
    kind: &str,
    id: Uuid,
    created: bool,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO dropkit_idempotency (caller, key, fingerprint, entity_kind, entity_id, created) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(key.caller())
    .bind(key.key())
    .bind(key.fingerprint().as_slice())
    .bind(kind)
    .bind(id)
    .bind(created)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Serves the drop's lines in the transaction on `conn`, which holds the
/// drop's row: what it did, in order.
async fn serve(conn: &mut PgConnection, drop_id: Uuid) -> Result<Vec<LineStep>, sqlx::Error> {
    sqlx::query_scalar("SELECT dropkit_serve_line($1, clock_timestamp())")
        .bind(drop_id)
        .fetch_one(conn)
        .await
}

/// Whether `key` is recorded (read under the lock the caller holds).
async fn recorded(conn: &mut PgConnection, key: &IdempotencyKey) -> Result<bool, sqlx::Error> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM dropkit_idempotency WHERE caller = $1 AND key = $2")
            .bind(key.caller())
            .bind(key.key())
            .fetch_optional(conn)
            .await?;
    Ok(found.is_some())
}

/// Creates a drop, its variants and its key's record in one transaction.
pub(crate) async fn create(
    shared: &Shared,
    new: NewDrop,
    key: Option<IdempotencyKey>,
) -> Result<Applied<DropState>, DropError> {
    new.validate()?;
    if let Some(key) = &key
        && let Some(done) = keys::drop_replay(shared, key).await?
    {
        return Ok(done);
    }
    let now: DateTime<Utc> = shared
        .read(|| sqlx::query_scalar("SELECT clock_timestamp()").fetch_one(&shared.pool))
        .await?;
    // Ids are chosen once: a retry of an attempt that committed meets its
    // own drop id and is recognised.
    let (info, variants) = new.into_drop(DropId::new(), now)?;
    let hold_micros = i64::try_from(info.hold.as_micros())
        .map_err(|_| DropError::invalid("holdSeconds", "too long"))?;
    let to_i32 = |v: u32| i32::try_from(v).map_err(|_| internal("a count out of range"));
    let ids: Vec<Uuid> = variants.iter().map(|v| v.id.as_uuid()).collect();
    let names: Vec<&str> = info.variants.iter().map(|v| v.name.as_str()).collect();
    let totals = variants
        .iter()
        .map(|v| to_i32(v.total))
        .collect::<Result<Vec<_>, _>>()?;
    let total = to_i32(info.total_stock)?;
    let max = to_i32(info.max_per_buyer)?;
    // Drawn once, before any attempt: only its hash is shown until the
    // draw, so a retry must not change it.
    let seed = (info.mode == drop_core::SaleMode::Draw).then(|| shared.draw_random.seed());
    let seed_bytes = seed.as_ref().map(|s| s.as_bytes().as_slice());
    let mode = crate::draws::mode_column(info.mode);
    let (info_ref, key_ref) = (&info, &key);
    let (ids_ref, names_ref, totals_ref) = (&ids, &names, &totals);
    let log_on = shared.log;
    let attempt = shared
        .retry(move |mut conn| async move {
            let mut tx = conn.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO dropkit_drops (id, name, price_minor, total_stock, starts_at, ends_at, \
                                            hold_micros, max_per_buyer, max_per_buyer_high, created_at, \
                                            waitlist, mode, draw_at, beacon_name, seed) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(info_ref.id.as_uuid())
            .bind(&info_ref.name)
            .bind(info_ref.price.minor())
            .bind(total)
            .bind(info_ref.starts_at)
            .bind(info_ref.ends_at)
            .bind(hold_micros)
            .bind(max)
            .bind(info_ref.created_at)
            .bind(info_ref.waitlist)
            .bind(mode)
            .bind(info_ref.draw_at)
            .bind(info_ref.beacon_name.as_deref())
            .bind(seed_bytes)
            .execute(&mut *tx)
            .await;
            match inserted {
                // The id is this call's own: an earlier attempt committed
                // it and lost the answer.
                Err(e) if violates(&e, "dropkit_drops_pkey") => return Ok(Attempt::Done(true)),
                other => other?,
            };
            sqlx::query(
                "INSERT INTO dropkit_variants (id, drop_id, position, name, total_stock) \
                 SELECT t.id, $1, t.pos - 1, t.name, t.total \
                   FROM unnest($2::uuid[], $3::text[], $4::integer[]) WITH ORDINALITY \
                        AS t(id, name, total, pos)",
            )
            .bind(info_ref.id.as_uuid())
            .bind(ids_ref)
            .bind(names_ref)
            .bind(totals_ref)
            .execute(&mut *tx)
            .await?;
            if let Some(key) = key_ref
                && !record(&mut tx, key, "drop", info_ref.id.as_uuid(), true).await?
            {
                return Ok(Attempt::Recorded);
            }
            if log_on {
                let created = Change::DropCreated {
                    drop: info_ref.clone(),
                };
                crate::log::append(&mut tx, &[(info_ref.id, created)]).await?;
            }
            tx.commit().await?;
            Ok(Attempt::Done(false))
        })
        .await?;
    let state = match attempt {
        Attempt::Done(recognised) => {
            if recognised {
                tracing::debug!(drop = %info.id, "a create whose answer was lost had committed");
            }
            DropState::new(
                info.clone(),
                Stock::new(info.total_stock, 0, 0, 1),
                variants,
            )
        }
        Attempt::Refused(e) => return Err(e),
        Attempt::Recorded => {
            let Some(key) = &key else {
                return Err(internal("a create without a key was answered by one"));
            };
            return keys::drop_replay(shared, key)
                .await?
                .ok_or_else(|| internal("a recorded drop write vanished"));
        }
    };
    // Either way this is the first announcement of the drop.
    shared.fanout.publish(vec![DropEvent::DropCreated {
        drop: state.clone(),
    }]);
    Ok(Applied::new(state, true))
}

/// An admin change to a drop.
#[derive(Debug, Clone)]
pub(crate) enum DropChange {
    /// Edit it.
    Patch(DropPatch),
    /// Pause (`true`) or resume it.
    Pause(bool),
    /// End its sale now.
    End,
}

impl DropChange {
    /// What the log calls this change.
    fn action(&self) -> DropAction {
        match self {
            DropChange::Patch(_) => DropAction::Edited,
            DropChange::Pause(true) => DropAction::Paused,
            DropChange::Pause(false) => DropAction::Resumed,
            DropChange::End => DropAction::Ended,
        }
    }

    /// The drop and its variants' counters after the change, or `None`
    /// when it changes nothing.
    fn decide(
        &self,
        state: &DropState,
        now: DateTime<Utc>,
    ) -> Result<Option<(drop_core::DropInfo, Vec<VariantStock>)>, DropError> {
        let mut next = state.drop.clone();
        match self {
            DropChange::Patch(patch) => {
                if patch.is_empty() {
                    return Ok(None);
                }
                let (after, stock) = patch.apply(&state.drop, &state.variants, now)?;
                if after == state.drop && stock == state.variants {
                    return Ok(None);
                }
                return Ok(Some((after, stock)));
            }
            DropChange::Pause(paused) => {
                if state.drop.paused == *paused {
                    return Ok(None);
                }
                next.paused = *paused;
            }
            DropChange::End => {
                if state.drop.is_ended(now) {
                    return Ok(None);
                }
                next.ends_at = Some(now);
                // A drop ended before it opened never opens: its window
                // closes now, and a start at or after that is dropped.
                if next.starts_at.is_some_and(|s| s >= now) {
                    next.starts_at = None;
                }
            }
        }
        Ok(Some((next, state.variants.clone())))
    }
}

/// Applies `change` to `drop_id` in one transaction.
pub(crate) async fn change(
    shared: &Shared,
    drop_id: DropId,
    change: DropChange,
    key: Option<IdempotencyKey>,
) -> Result<Applied<DropState>, DropError> {
    if let Some(key) = &key
        && let Some(done) = keys::drop_replay(shared, key).await?
    {
        return Ok(done);
    }
    let (change_ref, key_ref) = (&change, &key);
    let log_on = shared.log;
    let attempt = shared
        .retry(move |mut conn| async move {
            let mut tx = conn.begin().await?;
            // The lock first, then the read: a statement that waited for
            // the lock would read the variants as they were before the
            // holder's commit.
            let locked: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM dropkit_drops WHERE id = $1 FOR NO KEY UPDATE")
                    .bind(drop_id.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await?;
            if locked.is_none() {
                return Ok(Attempt::Refused(DropError::DropNotFound { drop_id }));
            }
            const READ_LOCKED: &str = concat!(
                "SELECT ",
                drop_columns!(),
                " FROM dropkit_drops d WHERE d.id = $1"
            );
            let row = sqlx::query_as::<_, DropRow>(READ_LOCKED)
                .bind(drop_id.as_uuid())
                .fetch_one(&mut *tx)
                .await?;
            if let Some(key) = key_ref
                && recorded(&mut tx, key).await?
            {
                return Ok(Attempt::Recorded);
            }
            let now: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
                .fetch_one(&mut *tx)
                .await?;
            let state = match DropState::try_from(row) {
                Ok(state) => state,
                Err(e) => return Ok(Attempt::Refused(e)),
            };
            let decided = match change_ref.decide(&state, now) {
                Ok(decided) => decided,
                Err(e) => return Ok(Attempt::Refused(e)),
            };
            let mut stock_changed = false;
            if let Some((next, stock)) = &decided {
                stock_changed = *stock != state.variants;
                let hold_micros = i64::try_from(next.hold.as_micros()).unwrap_or(i64::MAX);
                sqlx::query(
                    "UPDATE dropkit_drops SET name = $2, price_minor = $3, total_stock = $4, \
                            starts_at = $5, ends_at = $6, hold_micros = $7, max_per_buyer = $8, \
                            max_per_buyer_high = greatest(max_per_buyer_high, $8), \
                            paused = $9, version = version + 1 \
                      WHERE id = $1",
                )
                .bind(drop_id.as_uuid())
                .bind(&next.name)
                .bind(next.price.minor())
                .bind(i32::try_from(next.total_stock).unwrap_or(i32::MAX))
                .bind(next.starts_at)
                .bind(next.ends_at)
                .bind(hold_micros)
                .bind(i32::try_from(next.max_per_buyer).unwrap_or(i32::MAX))
                .bind(next.paused)
                .execute(&mut *tx)
                .await?;
                if stock_changed {
                    let ids: Vec<Uuid> = stock.iter().map(|v| v.id.as_uuid()).collect();
                    let totals: Vec<i32> = stock
                        .iter()
                        .map(|v| i32::try_from(v.total).unwrap_or(i32::MAX))
                        .collect();
                    sqlx::query(
                        "UPDATE dropkit_variants v SET total_stock = t.total \
                           FROM unnest($1::uuid[], $2::integer[]) AS t(id, total) \
                          WHERE v.id = t.id AND v.total_stock <> t.total",
                    )
                    .bind(&ids)
                    .bind(&totals)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            // Added stock, or a sale window opened again: the lines' turn,
            // in this transaction, under the drop's lock.
            let steps = if decided.is_some() {
                serve(&mut tx, drop_id.as_uuid()).await?
            } else {
                Vec::new()
            };
            if let Some(key) = key_ref
                && !record(&mut tx, key, "drop", drop_id.as_uuid(), false).await?
            {
                return Ok(Attempt::Recorded);
            }
            const READ: &str = concat!(
                "SELECT ",
                visible_drop_columns!(),
                " FROM dropkit_drops d WHERE d.id = $1"
            );
            let after = sqlx::query_as::<_, DropRow>(READ)
                .bind(drop_id.as_uuid())
                .fetch_one(&mut *tx)
                .await?;
            if log_on && decided.is_some() {
                let drop = match DropState::try_from(after.clone()) {
                    Ok(state) => state.drop,
                    Err(e) => return Ok(Attempt::Refused(e)),
                };
                let updated = Change::DropUpdated {
                    action: change_ref.action(),
                    drop,
                };
                let mut entries = vec![(drop_id, updated)];
                match crate::waitlist::step_changes(drop_id, &steps) {
                    Ok(served) => entries.extend(served),
                    Err(e) => return Ok(Attempt::Refused(e)),
                }
                crate::log::append(&mut tx, &entries).await?;
            }
            tx.commit().await?;
            Ok(Attempt::Done((
                after,
                decided.is_some(),
                stock_changed,
                steps,
            )))
        })
        .await?;
    let (row, changed, stock_changed, steps) = match attempt {
        Attempt::Done(done) => done,
        Attempt::Refused(e) => return Err(e),
        Attempt::Recorded => {
            let Some(key) = &key else {
                return Err(internal("a drop write without a key was answered by one"));
            };
            return keys::drop_replay(shared, key)
                .await?
                .ok_or_else(|| internal("a recorded drop write vanished"));
        }
    };
    let state = DropState::try_from(row)?;
    if changed {
        let mut events = vec![DropEvent::DropUpdated {
            drop: state.clone(),
        }];
        events.extend(crate::waitlist::step_events(drop_id, &steps)?);
        if stock_changed || !steps.is_empty() {
            events.push(DropEvent::StockChanged {
                drop_id,
                stock: state.stock,
                variants: state.variants.clone(),
            });
        }
        shared.fanout.publish(events);
    }
    Ok(Applied::new(state, changed))
}

/// Cancels a purchase in one transaction: its units go back on sale.
pub(crate) async fn cancel(
    shared: &Shared,
    purchase_id: PurchaseId,
    key: Option<IdempotencyKey>,
) -> Result<Applied<Purchase>, DropError> {
    if let Some(key) = &key
        && let Some(done) = keys::cancel_replay(shared, key).await?
    {
        return Ok(done);
    }
    let key_ref = &key;
    let log_on = shared.log;
    let attempt = shared
        .retry(move |mut conn| async move {
            let mut tx = conn.begin().await?;
            let drop: Option<Uuid> =
                sqlx::query_scalar("SELECT drop_id FROM dropkit_purchases WHERE id = $1")
                    .bind(purchase_id.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(drop) = drop else {
                return Ok(Attempt::Refused(DropError::PurchaseNotFound { purchase_id }));
            };
            // The drop row first, as on every path; then the purchase,
            // which nobody else changes while the lock is held.
            sqlx::query("SELECT 1 FROM dropkit_drops WHERE id = $1 FOR NO KEY UPDATE")
                .bind(drop)
                .execute(&mut *tx)
                .await?;
            if let Some(key) = key_ref
                && recorded(&mut tx, key).await?
            {
                return Ok(Attempt::Recorded);
            }
            const CANCEL: &str = concat!(
                "UPDATE dropkit_purchases SET status = 'cancelled', cancelled_at = clock_timestamp() \
                  WHERE id = $1 AND status = 'completed' RETURNING ",
                purchase_columns!()
            );
            let cancelled = sqlx::query_as::<_, PurchaseRecordRow>(CANCEL)
                .bind(purchase_id.as_uuid())
                .fetch_optional(&mut *tx)
                .await?;
            let (row, counters) = match cancelled {
                Some(row) => {
                    sqlx::query(
                        "UPDATE dropkit_variants SET sold = sold - p.quantity \
                           FROM dropkit_purchases p \
                          WHERE p.id = $1 AND dropkit_variants.id = p.variant_id",
                    )
                    .bind(purchase_id.as_uuid())
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "UPDATE dropkit_drops d SET sold = d.sold - p.quantity, version = d.version + 1 \
                           FROM dropkit_purchases p \
                          WHERE p.id = $1 AND d.id = p.drop_id",
                    )
                    .bind(purchase_id.as_uuid())
                    .execute(&mut *tx)
                    .await?;
                    // The units came back: the line's, if people wait.
                    let steps = serve(&mut tx, drop).await?;
                    let counters = sqlx::query_as::<_, Counters>(
                        "SELECT d.total_stock AS o_total, d.reserved AS o_reserved, \
                                d.sold AS o_sold, d.version AS o_version, \
                                dropkit_variants_of(d.id) AS o_variants \
                           FROM dropkit_drops d WHERE d.id = $1",
                    )
                    .bind(drop)
                    .fetch_one(&mut *tx)
                    .await?;
                    (row, Some((counters, steps)))
                }
                None => {
                    const GET: &str = concat!(
                        "SELECT ",
                        purchase_columns!(),
                        " FROM dropkit_purchases WHERE id = $1"
                    );
                    let row = sqlx::query_as::<_, PurchaseRecordRow>(GET)
                        .bind(purchase_id.as_uuid())
                        .fetch_one(&mut *tx)
                        .await?;
                    (row, None)
                }
            };
            if let Some(key) = key_ref
                && !record(&mut tx, key, "purchase", purchase_id.as_uuid(), false).await?
            {
                return Ok(Attempt::Recorded);
            }
            if log_on && counters.is_some() {
                let p = match Purchase::try_from(row.clone()) {
                    Ok(p) => p,
                    Err(e) => return Ok(Attempt::Refused(e)),
                };
                let cancelled = Change::PurchaseCancelled {
                    purchase_id,
                    reservation_id: p.reservation_id,
                    buyer_id: p.buyer_id,
                    variant_id: p.variant_id,
                    quantity: p.quantity,
                    amount: p.amount_paid,
                };
                let mut entries = vec![(p.drop_id, cancelled)];
                if let Some((_, steps)) = &counters {
                    match crate::waitlist::step_changes(p.drop_id, steps) {
                        Ok(served) => entries.extend(served),
                        Err(e) => return Ok(Attempt::Refused(e)),
                    }
                }
                crate::log::append(&mut tx, &entries).await?;
            }
            tx.commit().await?;
            Ok(Attempt::Done((row, counters)))
        })
        .await?;
    let (row, counters) = match attempt {
        Attempt::Done(done) => done,
        Attempt::Refused(e) => return Err(e),
        Attempt::Recorded => {
            let Some(key) = &key else {
                return Err(internal("a cancel without a key was answered by one"));
            };
            return keys::cancel_replay(shared, key)
                .await?
                .ok_or_else(|| internal("a recorded cancel vanished"));
        }
    };
    let purchase = Purchase::try_from(row)?;
    let Some((counters, steps)) = counters else {
        return Ok(Applied::new(purchase, false));
    };
    let mut events = vec![DropEvent::PurchaseCancelled {
        drop_id: purchase.drop_id,
        purchase_id,
        reservation_id: purchase.reservation_id,
        buyer_id: purchase.buyer_id.clone(),
        variant_id: purchase.variant_id,
        quantity: purchase.quantity,
    }];
    events.extend(crate::waitlist::step_events(purchase.drop_id, &steps)?);
    events.push(counters.event(purchase.drop_id)?);
    shared.fanout.publish(events);
    Ok(Applied::new(purchase, true))
}
