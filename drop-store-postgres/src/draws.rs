//! Draw drops ([`drop_core::entry`]): entries, the draw, its public record,
//! and the `DRAW_ONLY` gate in front of reserves and joins.
//!
//! - **Entering** is one statement per batch of entries ([`ENTER_BATCH`]),
//!   which takes the drop row `FOR KEY SHARE` only: a storm of reserves holding the row `FOR NO KEY UPDATE` never
//!   delays an entry, and entries take no lock another entry waits for.
//!   With group commit on, the entries to one drop that arrive while a
//!   batch of them is in flight go as the next batch, one statement and one
//!   commit (commits, not locks, are what a storm of entries costs).
//! - **The draw** is one transaction that takes the drop row `FOR UPDATE`:
//!   that waits for the entries in flight and makes every later entry see
//!   `drawn_at`, so the list it reads is final. Entries are ranked in Rust
//!   ([`drop_core::draw_and_publish`]) and written back set-based (one
//!   statement per table, arrays unnested), however many there are. An
//!   instance that dies mid-draw leaves nothing: its transaction rolls back
//!   and releases the row, and the next `run_draw` draws.
//! - **Reserves and joins** of a draw drop not drawn yet are refused
//!   `DRAW_ONLY` here, before they are queued, so the landed SQL functions
//!   stay as they are. A drop's mode never changes and a drawn drop stays
//!   drawn, so each instance remembers the drops it saw selling first come
//!   and only draw drops not known drawn cost a read. A reserve sent in the
//!   instant the draw commits may be refused though the drop just drew:
//!   benign, the buyer asks again.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use drop_core::{
    Applied, Beacon, Buyer, BuyerId, Change, DrawEntry, DrawStatus, DrawStock, DrawSummary,
    DrawWinners, DropError, DropEvent, DropId, DropInfo, DropState, Entry, EntryListHash,
    EntryOutcome, Receipt, ReservationId, ReserveRequest, SaleMode, Seed, VariantId,
};
use sqlx::{Connection, FromRow};
use uuid::Uuid;

use crate::error::internal;
use crate::rows::{self, Counters, buyer_id, display_name, present};
use crate::writes::Shared;

/// The drops this instance saw selling first come (first-come drops, and
/// draw drops once drawn): both are final, so they are never read again
/// for the `DRAW_ONLY` check.
#[derive(Debug, Default)]
pub(crate) struct FirstCome {
    known: Mutex<HashSet<DropId>>,
    /// Taken (first come, first served: tokio's lock is fair) by the
    /// callers that must read the drop, so that they leave the check in
    /// the order they arrived and a drop's reserves still queue in arrival
    /// order while this instance learns it.
    reading: tokio::sync::Mutex<()>,
}

impl FirstCome {
    fn knows(&self, drop_id: DropId) -> bool {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&drop_id)
    }

    /// Notes a drop known to sell first come (a first-come drop made by
    /// this instance, or a drop seen drawn).
    pub(crate) fn learn(&self, drop_id: DropId) {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(drop_id);
    }
}

/// What a reserve or join is checked for before `DRAW_ONLY`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Gate {
    /// A plain reserve: the request, the window and the pause.
    Reserve,
    /// A join of the line: the request, the line being on, the window and
    /// the pause.
    Join,
}

/// Refuses a reserve or a join of a draw drop not drawn yet with the
/// error its function would answer first: the request's, the window's or
/// the pause's (those come before `DRAW_ONLY`), else `DRAW_ONLY`. `Ok`
/// for every other drop (a missing one too: the write answers it).
pub(crate) async fn first_come_gate(
    shared: &Shared,
    known: &FirstCome,
    drop_id: DropId,
    request: &ReserveRequest,
    gate: Gate,
) -> Result<(), DropError> {
    if known.knows(drop_id) {
        return Ok(());
    }
    let _turn = known.reading.lock().await;
    // Learnt by the caller before, meanwhile.
    if known.knows(drop_id) {
        return Ok(());
    }
    const SQL: &str = concat!(
        "SELECT ",
        visible_drop_columns!(),
        ", clock_timestamp() AS now FROM dropkit_drops d WHERE d.id = $1"
    );
    let row = shared
        .read(|| {
            sqlx::query_as::<_, rows::DropRowAt>(SQL)
                .bind(drop_id.as_uuid())
                .fetch_optional(&shared.pool)
        })
        .await?;
    let Some(row) = row else {
        return Ok(());
    };
    let now = row.now;
    let state = DropState::try_from(row.drop)?;
    let drop = &state.drop;
    if drop.check_first_come().is_ok() {
        known.learn(drop_id);
        return Ok(());
    }
    drop.check_request(request)?;
    if matches!(gate, Gate::Join) && !drop.waitlist {
        return Err(DropError::WaitlistClosed { drop_id });
    }
    drop.check_open(now)?;
    drop.check_first_come()
}

/// An entry's columns as the entry functions answer them.
#[derive(Debug, FromRow)]
struct EntryAnswer {
    o_outcome: String,
    o_variant: Option<Uuid>,
    o_display_name: Option<String>,
    o_receipt: Option<Vec<u8>>,
    o_entered_at: Option<DateTime<Utc>>,
    #[sqlx(default)]
    o_result: Option<String>,
    #[sqlx(default)]
    o_position: Option<i32>,
    #[sqlx(default)]
    o_reservation: Option<Uuid>,
}

impl EntryAnswer {
    fn entry(&self, drop_id: DropId, buyer: &BuyerId) -> Result<Entry, DropError> {
        entry_of(
            drop_id,
            buyer,
            EntryParts {
                variant: present(self.o_variant, "an entry's variant")?,
                display_name: present(self.o_display_name.as_deref(), "an entry's name")?,
                receipt: present(self.o_receipt.as_deref(), "an entry's receipt")?,
                entered_at: present(self.o_entered_at, "an entry's enteredAt")?,
                outcome: self.o_result.as_deref(),
                position: self.o_position,
                reservation: self.o_reservation,
            },
        )
    }
}

/// An entry's stored columns.
struct EntryParts<'a> {
    variant: Uuid,
    display_name: &'a str,
    receipt: &'a [u8],
    entered_at: DateTime<Utc>,
    outcome: Option<&'a str>,
    position: Option<i32>,
    reservation: Option<Uuid>,
}

fn receipt(raw: &[u8]) -> Result<Receipt, DropError> {
    let bytes: [u8; 16] = raw
        .try_into()
        .map_err(|_| internal("a stored receipt is not 16 bytes"))?;
    Ok(Receipt::from_bytes(bytes))
}

fn outcome(raw: &str) -> Result<EntryOutcome, DropError> {
    match raw {
        "won" => Ok(EntryOutcome::Won),
        "waiting" => Ok(EntryOutcome::Waiting),
        "lost" => Ok(EntryOutcome::Lost),
        other => Err(internal(format!(
            "stored entry outcome {other:?} is unknown"
        ))),
    }
}

fn entry_of(drop_id: DropId, buyer: &BuyerId, parts: EntryParts<'_>) -> Result<Entry, DropError> {
    let mut entry = Entry::new(
        drop_id,
        VariantId::from_uuid(parts.variant),
        Buyer::new(buyer.clone(), display_name(parts.display_name)?),
        receipt(parts.receipt)?,
        parts.entered_at,
    );
    entry.outcome = parts.outcome.map(outcome).transpose()?;
    entry.draw_position = parts
        .position
        .map(|p| u32::try_from(p).map_err(|_| internal("a negative draw position")))
        .transpose()?;
    entry.reservation_id = parts.reservation.map(ReservationId::from_uuid);
    Ok(entry)
}

/// The viewer's entry from the overview's `LEFT JOIN` (`entry_` columns).
#[derive(Debug, FromRow)]
pub(crate) struct MaybeEntry {
    entry_variant_id: Option<Uuid>,
    entry_display_name: Option<String>,
    entry_receipt: Option<Vec<u8>>,
    entry_entered_at: Option<DateTime<Utc>>,
    entry_outcome: Option<String>,
    entry_draw_position: Option<i32>,
    entry_reservation_id: Option<Uuid>,
}

impl MaybeEntry {
    /// `buyer`'s entry to `drop_id`, if the row holds one.
    pub(crate) fn entry(
        &self,
        drop_id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<Entry>, DropError> {
        let (Some(variant), Some(name), Some(raw), Some(at)) = (
            self.entry_variant_id,
            self.entry_display_name.as_deref(),
            self.entry_receipt.as_deref(),
            self.entry_entered_at,
        ) else {
            return Ok(None);
        };
        entry_of(
            drop_id,
            buyer,
            EntryParts {
                variant,
                display_name: name,
                receipt: raw,
                entered_at: at,
                outcome: self.entry_outcome.as_deref(),
                position: self.entry_draw_position,
                reservation: self.entry_reservation_id,
            },
        )
        .map(Some)
    }
}

/// One call to enter a draw, as the group-commit batch of entries carries
/// it.
#[derive(Debug, Clone)]
pub(crate) struct EnterCall {
    /// Who enters.
    pub(crate) buyer: Buyer,
    /// The variant asked for, if named.
    pub(crate) variant_id: Option<VariantId>,
}

/// Takes each caller's entry (see
/// [`drop_core::InventoryStore::enter_draw`]), all in one statement and so
/// one transaction: entries take no lock another entry waits for, but each
/// transaction is a commit, and a storm of entries to one drop is grouped
/// like reserves so that one commit carries many. The batch is decided as
/// a set ([`ENTER_BATCH`]): per entry a function call and its statements
/// cost more than twice what the set costs (`benches/postgres_draw.rs`).
/// A refusal is an answer row, so one caller's refusal never fails the
/// others.
pub(crate) async fn enter_batch(
    shared: &Shared,
    drop_id: DropId,
    calls: Vec<EnterCall>,
) -> Vec<Result<Applied<Entry>, DropError>> {
    // Chosen once: a retry of an attempt that committed finds each entry
    // by its receipt, and answers it as new.
    let mine: Vec<Receipt> = calls.iter().map(|_| shared.draw_random.receipt()).collect();
    let buyers: Vec<&str> = calls.iter().map(|c| c.buyer.id.as_str()).collect();
    let names: Vec<&str> = calls
        .iter()
        .map(|c| c.buyer.display_name.as_str())
        .collect();
    let variants: Vec<Option<Uuid>> = calls
        .iter()
        .map(|c| c.variant_id.map(|v| v.as_uuid()))
        .collect();
    let receipts: Vec<&[u8]> = mine.iter().map(|r| r.as_bytes().as_slice()).collect();
    let args = (&buyers, &names, &variants, &receipts);
    let rows = shared
        .retry(|mut conn| async move {
            let (buyers, names, variants, receipts) = args;
            sqlx::query_as::<_, EntryAnswer>(ENTER_BATCH)
                .bind(drop_id.as_uuid())
                .bind(buyers)
                .bind(names)
                .bind(variants)
                .bind(receipts)
                .fetch_all(&mut *conn)
                .await
        })
        .await;
    let rows = match rows {
        Ok(rows) if rows.len() == calls.len() => rows,
        Ok(rows) => {
            let e = internal(format!(
                "a batch of {} entries answered {} rows",
                calls.len(),
                rows.len()
            ));
            return calls.iter().map(|_| Err(e.clone())).collect();
        }
        Err(e) => return calls.iter().map(|_| Err(e.clone())).collect(),
    };
    let mut answers = Vec::with_capacity(calls.len());
    for ((row, call), mine) in rows.iter().zip(&calls).zip(&mine) {
        answers.push(match row.o_outcome.as_str() {
            // Committed by another instance after this batch's snapshot:
            // read now (it is never this call's own, which is in the
            // insert's rows).
            "entered" | "existing" if row.o_variant.is_none() => {
                match entry(shared, drop_id, &call.buyer.id).await {
                    Ok(Some(entry)) => Ok(Applied::new(entry, false)),
                    Ok(None) => Err(internal("an entry vanished as it was read")),
                    Err(e) => Err(e),
                }
            }
            "entered" | "existing" => row.entry(drop_id, &call.buyer.id).map(|entry| {
                let created = entry.receipt == *mine;
                Applied::new(entry, created)
            }),
            other => refusal(other, drop_id, call.variant_id).and_then(Err),
        });
    }
    answers
}

/// A batch of entries to drop `$1`, decided as a set: one key-share lock
/// on the drop row, the checks in the documented order for every call,
/// one insert of all that pass, and one answer row per call in call order.
/// The insert's own rows answer the calls it inserted (a buyer twice in
/// one batch gets the first one's row both times); the others read the
/// entry already there. An entry committed by another instance after this
/// statement's snapshot is not readable here: its row comes back without
/// columns, and the caller reads it afresh.
const ENTER_BATCH: &str = "\
WITH d AS ( \
    SELECT x.mode, x.starts_at, x.ends_at, x.drawn_at, x.draw_at, x.paused, \
           clock_timestamp() AS now \
      FROM dropkit_drops x WHERE x.id = $1 FOR KEY SHARE), \
vs AS (SELECT x.id, x.position FROM dropkit_variants x WHERE x.drop_id = $1), \
c AS ( \
    SELECT c.n, c.buyer, c.name, c.variant, c.receipt, \
           CASE WHEN c.variant IS NULL \
                THEN (SELECT vs.id FROM vs WHERE vs.position = 0 \
                         AND NOT EXISTS (SELECT 1 FROM vs y WHERE y.position = 1)) \
                ELSE (SELECT vs.id FROM vs WHERE vs.id = c.variant) END AS v \
      FROM unnest($2::text[], $3::text[], $4::uuid[], $5::bytea[]) \
           WITH ORDINALITY AS c(buyer, name, variant, receipt, n)), \
k AS ( \
    SELECT c.*, d.now, CASE \
        WHEN d.now IS NULL THEN 'drop_not_found' \
        WHEN c.v IS NULL AND c.variant IS NULL THEN 'variant_required' \
        WHEN c.v IS NULL THEN 'variant_not_found' \
        WHEN d.mode <> 'draw' THEN 'not_a_draw' \
        WHEN d.starts_at IS NOT NULL AND d.now < d.starts_at THEN 'not_started' \
        WHEN d.ends_at IS NOT NULL AND d.now >= d.ends_at THEN 'ended' \
        WHEN d.drawn_at IS NOT NULL OR d.now >= d.draw_at THEN 'entries_closed' \
        WHEN d.paused THEN 'paused' END AS refusal \
      FROM c LEFT JOIN d ON true), \
ins AS ( \
    INSERT INTO dropkit_entries (drop_id, buyer_id, display_name, variant_id, receipt, entered_at) \
    SELECT $1, k.buyer, k.name, k.v, k.receipt, k.now FROM k WHERE k.refusal IS NULL ORDER BY k.n \
    ON CONFLICT (drop_id, buyer_id) DO NOTHING \
    RETURNING buyer_id, variant_id, display_name, receipt, entered_at) \
SELECT coalesce(k.refusal, 'entered') AS o_outcome, \
       coalesce(i.variant_id, e.variant_id) AS o_variant, \
       coalesce(i.display_name, e.display_name) AS o_display_name, \
       coalesce(i.receipt, e.receipt) AS o_receipt, \
       coalesce(i.entered_at, e.entered_at) AS o_entered_at, \
       e.outcome AS o_result, e.draw_position AS o_position, e.reservation_id AS o_reservation \
  FROM k \
  LEFT JOIN ins i ON k.refusal IS NULL AND i.buyer_id = k.buyer \
  LEFT JOIN LATERAL ( \
      SELECT x.variant_id, x.display_name, x.receipt, x.entered_at, x.outcome, \
             x.draw_position, x.reservation_id \
        FROM dropkit_entries x \
       WHERE k.refusal IS NULL AND i.buyer_id IS NULL \
         AND x.drop_id = $1 AND x.buyer_id = k.buyer \
       LIMIT 1) e ON true \
 ORDER BY k.n";

/// The error an entry function's refusal stands for.
fn refusal(
    outcome: &str,
    drop_id: DropId,
    variant_id: Option<VariantId>,
) -> Result<DropError, DropError> {
    use drop_core::NotActiveReason;
    Ok(match outcome {
        "drop_not_found" => DropError::DropNotFound { drop_id },
        "variant_not_found" => DropError::VariantNotFound {
            drop_id,
            variant_id: variant_id.ok_or_else(|| internal("an unnamed variant was not found"))?,
        },
        "variant_required" => DropError::invalid(
            "variantId",
            "is required: the drop has more than one variant",
        ),
        "not_a_draw" => DropError::NotADraw { drop_id },
        "not_started" => DropError::DropNotActive {
            drop_id,
            reason: NotActiveReason::NotStarted,
        },
        "ended" => DropError::DropNotActive {
            drop_id,
            reason: NotActiveReason::Ended,
        },
        "entries_closed" => DropError::EntriesClosed { drop_id },
        "paused" => DropError::DropPaused { drop_id },
        other => return Err(internal(format!("an entry call answered {other:?}"))),
    })
}

/// Withdraws `buyer`'s entry (see
/// [`drop_core::InventoryStore::withdraw_entry`]).
pub(crate) async fn withdraw(
    shared: &Shared,
    drop_id: DropId,
    buyer: &BuyerId,
) -> Result<Option<Entry>, DropError> {
    let row = shared
        .retry(|mut conn| async move {
            sqlx::query_as::<_, EntryAnswer>("SELECT * FROM dropkit_withdraw_entry($1, $2)")
                .bind(drop_id.as_uuid())
                .bind(buyer.as_str())
                .fetch_one(&mut *conn)
                .await
        })
        .await?;
    match row.o_outcome.as_str() {
        "withdrawn" => row.entry(drop_id, buyer).map(Some),
        "none" => Ok(None),
        other => Err(refusal(other, drop_id, None)?),
    }
}

/// A drop's row with the buyer's entry, if any.
#[derive(Debug, FromRow)]
struct EntryOfDrop {
    #[sqlx(flatten)]
    entry: MaybeEntry,
}

/// `buyer`'s entry to the drop's draw (`None` on a first-come drop).
pub(crate) async fn entry(
    shared: &Shared,
    drop_id: DropId,
    buyer: &BuyerId,
) -> Result<Option<Entry>, DropError> {
    let row = shared
        .read(|| {
            sqlx::query_as::<_, EntryOfDrop>(concat!(
                "SELECT ",
                entry_columns!(),
                " FROM dropkit_drops d LEFT JOIN dropkit_entries en \
                   ON en.drop_id = d.id AND en.buyer_id = $2 \
                 WHERE d.id = $1"
            ))
            .bind(drop_id.as_uuid())
            .bind(buyer.as_str())
            .fetch_optional(&shared.pool)
        })
        .await?;
    match row {
        Some(row) => row.entry.entry(drop_id, buyer),
        None => Err(DropError::DropNotFound { drop_id }),
    }
}

/// Draw drops due now, earliest `drawAt` first.
pub(crate) async fn due(shared: &Shared, limit: usize) -> Result<Vec<DropInfo>, DropError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    const SQL: &str = concat!(
        "SELECT ",
        visible_drop_columns!(),
        " FROM dropkit_drops d \
          WHERE d.mode = 'draw' AND d.drawn_at IS NULL AND d.draw_at <= clock_timestamp() \
            AND (d.ends_at IS NULL OR d.ends_at > d.draw_at) \
          ORDER BY d.draw_at, d.id LIMIT $1"
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = shared
        .read(|| {
            sqlx::query_as::<_, rows::DropRow>(SQL)
                .bind(limit)
                .fetch_all(&shared.pool)
        })
        .await?;
    rows.into_iter()
        .map(|row| DropState::try_from(row).map(|s| s.drop))
        .collect()
}

/// The earliest `drawAt` of the draws still to be made.
pub(crate) async fn next_at(shared: &Shared) -> Result<Option<DateTime<Utc>>, DropError> {
    shared
        .read(|| {
            sqlx::query_scalar(
                "SELECT min(d.draw_at) FROM dropkit_drops d \
                  WHERE d.mode = 'draw' AND d.drawn_at IS NULL \
                    AND (d.ends_at IS NULL OR d.ends_at > d.draw_at)",
            )
            .fetch_one(&shared.pool)
        })
        .await
}

/// A draw drop's columns of the draw.
#[derive(Debug, FromRow)]
struct DrawRow {
    mode: String,
    draw_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    drawn_at: Option<DateTime<Utc>>,
    seed: Option<Vec<u8>>,
    beacon_name: Option<String>,
    beacon: Option<Vec<u8>>,
    entry_list_hash: Option<Vec<u8>>,
    waitlist: bool,
    hold_micros: i64,
    now: DateTime<Utc>,
}

impl DrawRow {
    fn seed(&self) -> Result<Seed, DropError> {
        let raw = present(self.seed.as_deref(), "a draw drop's seed")?;
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|_| internal("a stored seed is not 32 bytes"))?;
        Ok(Seed::from_bytes(bytes))
    }

    /// Whether the draw is due at the row's `now` (as `DropInfo::draw_due`).
    fn due(&self) -> bool {
        match (self.mode.as_str(), self.draw_at, self.drawn_at) {
            ("draw", Some(at), None) => at <= self.now && self.ends_at.is_none_or(|e| e > at),
            _ => false,
        }
    }
}

const DRAW_COLUMNS: &str = "d.mode, d.draw_at, d.ends_at, d.drawn_at, d.seed, d.beacon_name, \
     d.beacon, d.entry_list_hash, d.waitlist, d.hold_micros, clock_timestamp() AS now \
     FROM dropkit_drops d WHERE d.id = $1";

/// The checks of `run_draw` before the draw, in order: `DROP_NOT_FOUND`,
/// `NOT_A_DRAW`, the beacon.
fn check_draw(
    row: Option<&DrawRow>,
    drop_id: DropId,
    beacon: Option<&Beacon>,
) -> Result<(), DropError> {
    let Some(row) = row else {
        return Err(DropError::DropNotFound { drop_id });
    };
    if row.mode != "draw" {
        return Err(DropError::NotADraw { drop_id });
    }
    match (&row.beacon_name, beacon) {
        (Some(name), None) => Err(DropError::invalid(
            "beacon",
            format!("is required: the drop draws with the beacon {name:?}"),
        )),
        (None, Some(_)) => Err(DropError::invalid(
            "beacon",
            "must be absent: the drop names no beacon",
        )),
        _ => Ok(()),
    }
}

/// One winner's offered hold, as the draw inserted it.
#[derive(Debug, FromRow)]
struct WonHold {
    id: Uuid,
    variant_id: Uuid,
    buyer_id: String,
    display_name: String,
    expires_at: DateTime<Utc>,
}

/// What a committed draw did.
struct Drawn {
    summary: DrawSummary,
    holds: Vec<WonHold>,
    counters: Counters,
}

/// Makes the drop's draw if it is due and not made yet (see
/// [`drop_core::InventoryStore::run_draw`]).
pub(crate) async fn run(
    shared: &Shared,
    drop_id: DropId,
    beacon: Option<Beacon>,
) -> Result<Option<DrawSummary>, DropError> {
    // The checks and "not due yet" without a lock: a runner polling early
    // never queues on the drop.
    let sql = format!("SELECT {DRAW_COLUMNS}");
    let row = shared
        .read(|| {
            sqlx::query_as::<_, DrawRow>(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(drop_id.as_uuid())
                .fetch_optional(&shared.pool)
        })
        .await?;
    check_draw(row.as_ref(), drop_id, beacon.as_ref())?;
    if !row.as_ref().is_some_and(DrawRow::due) {
        return Ok(None);
    }
    let beacon_ref = &beacon;
    let drawn = shared
        .retry(
            move |mut conn| async move { draw_once(shared, &mut conn, drop_id, beacon_ref).await },
        )
        .await?;
    let Some(drawn) = drawn else {
        return Ok(None);
    };
    let mut events: Vec<DropEvent> = Vec::with_capacity(drawn.holds.len() + 2);
    for hold in &drawn.holds {
        events.push(DropEvent::HoldCreated {
            drop_id,
            reservation_id: ReservationId::from_uuid(hold.id),
            buyer_id: buyer_id(&hold.buyer_id)?,
            variant_id: VariantId::from_uuid(hold.variant_id),
            quantity: 1,
            expires_at: hold.expires_at,
            offered: true,
        });
    }
    let s = drawn.summary;
    events.push(DropEvent::DrawCompleted {
        drop_id,
        drawn_at: s.drawn_at,
        entries: s.entries,
        winners: s.winners,
        waiting: s.waiting,
    });
    events.push(drawn.counters.event(drop_id)?);
    shared.fanout.publish(events);
    Ok(Some(s))
}

fn count(n: usize) -> Result<u32, DropError> {
    u32::try_from(n).map_err(|_| internal("a draw of more than 4294967295 entries"))
}

fn to_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// One attempt of the draw, in one transaction on `conn`: `None` when,
/// under the drop's lock, it is not due any more (another instance drew).
async fn draw_once(
    shared: &Shared,
    conn: &mut sqlx::PgConnection,
    drop_id: DropId,
    beacon: &Option<Beacon>,
) -> Result<Option<Drawn>, sqlx::Error> {
    let fault = |e: DropError| sqlx::Error::Protocol(e.to_string());
    let mut tx = conn.begin().await?;
    // The freeze: FOR UPDATE waits for every entry holding its key-share
    // lock, and every entry after it sees `drawn_at`. Waiting is fine: an
    // instance killed mid-draw has its transaction rolled back, which
    // releases the row.
    let sql = format!("SELECT {DRAW_COLUMNS} FOR UPDATE");
    let locked = sqlx::query_as::<_, DrawRow>(sqlx::AssertSqlSafe(sql))
        .bind(drop_id.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
    let Some(locked) = locked.filter(DrawRow::due) else {
        return Ok(None);
    };
    let now = locked.now;
    let seed = locked.seed().map_err(fault)?;
    let variants: Vec<(Uuid, i32)> = sqlx::query_as(
        "SELECT id, greatest(total_stock - reserved - sold, 0) FROM dropkit_variants \
          WHERE drop_id = $1 ORDER BY position",
    )
    .bind(drop_id.as_uuid())
    .fetch_all(&mut *tx)
    .await?;
    let stock: Vec<DrawStock> = variants
        .iter()
        .map(|(id, n)| DrawStock::new(VariantId::from_uuid(*id), u32::try_from(*n).unwrap_or(0)))
        .collect();
    let listed: Vec<(Vec<u8>, Uuid)> =
        sqlx::query_as("SELECT receipt, variant_id FROM dropkit_entries WHERE drop_id = $1")
            .bind(drop_id.as_uuid())
            .fetch_all(&mut *tx)
            .await?;
    let entries = listed
        .iter()
        .map(|(r, v)| Ok(DrawEntry::new(receipt(r)?, VariantId::from_uuid(*v))))
        .collect::<Result<Vec<_>, DropError>>()
        .map_err(fault)?;
    drop(listed);
    let n_entries = entries.len();
    // Ranking a million entries is CPU work of a second: off the runtime's
    // threads, on the store's tracker like every task it starts.
    let beacon_owned = beacon.clone();
    let ranked = shared
        .tasks
        .spawn_blocking(move || drop_core::draw_and_publish(seed, beacon_owned, entries, stock))
        .await
        .map_err(|e| fault(internal(format!("the draw's task failed: {e}"))))?;
    // The published form is read back from the rows (see `status`).
    let (result, _) =
        ranked.map_err(|e| fault(internal(format!("the draw refused its inputs: {e}"))))?;

    // Every entry's place, outcome and hold, in draw order.
    let waitlist = locked.waitlist;
    let mut receipts: Vec<&[u8]> = Vec::with_capacity(n_entries);
    let mut positions: Vec<i32> = Vec::with_capacity(n_entries);
    let mut holds: Vec<Option<Uuid>> = Vec::with_capacity(n_entries);
    let mut won_receipts: Vec<&[u8]> = Vec::new();
    let mut won_ids: Vec<Uuid> = Vec::new();
    let (mut v_ids, mut v_stock, mut v_won, mut v_waiting) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut order: HashMap<Uuid, usize> = HashMap::new();
    for v in &result.variants {
        for (i, r) in v.winners.iter().enumerate() {
            let id = Uuid::new_v4();
            order.insert(id, won_ids.len());
            receipts.push(r.as_bytes());
            positions.push(to_i32(i + 1));
            holds.push(Some(id));
            won_receipts.push(r.as_bytes());
            won_ids.push(id);
        }
        for (i, r) in v.waitlist.iter().enumerate() {
            receipts.push(r.as_bytes());
            positions.push(to_i32(v.winners.len() + i + 1));
            holds.push(None);
        }
        v_ids.push(v.variant_id.as_uuid());
        v_stock.push(i32::try_from(v.stock).unwrap_or(i32::MAX));
        v_won.push(to_i32(v.winners.len()));
        v_waiting.push(if waitlist {
            to_i32(v.waitlist.len())
        } else {
            0
        });
    }
    let winners = won_ids.len();
    let waiting = if waitlist { n_entries - winners } else { 0 };
    let updated = sqlx::query(
        "UPDATE dropkit_entries e \
            SET draw_position = t.pos, reservation_id = t.res, \
                outcome = CASE WHEN t.res IS NOT NULL THEN 'won' \
                               WHEN $5 THEN 'waiting' ELSE 'lost' END \
           FROM unnest($2::bytea[], $3::integer[], $4::uuid[]) AS t(receipt, pos, res) \
          WHERE e.drop_id = $1 AND e.receipt = t.receipt",
    )
    .bind(drop_id.as_uuid())
    .bind(&receipts)
    .bind(&positions)
    .bind(&holds)
    .bind(waitlist)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != n_entries as u64 {
        return Err(fault(internal(format!(
            "the draw ranked {n_entries} entries but recorded {}",
            updated.rows_affected()
        ))));
    }
    drop((receipts, positions, holds));
    // The winners' offered holds, as the line offers them: one unit each,
    // from the draw for the drop's hold window.
    let mut won: Vec<WonHold> = sqlx::query_as(
        "INSERT INTO dropkit_reservations \
                (id, drop_id, variant_id, quantity, buyer_id, display_name, status, \
                 created_at, expires_at, offered) \
         SELECT t.id, e.drop_id, e.variant_id, 1, e.buyer_id, e.display_name, 'active', \
                $4, $4 + $5 * interval '1 microsecond', true \
           FROM unnest($2::bytea[], $3::uuid[]) AS t(receipt, id) \
           JOIN dropkit_entries e ON e.drop_id = $1 AND e.receipt = t.receipt \
         RETURNING id, variant_id, buyer_id, display_name, expires_at",
    )
    .bind(drop_id.as_uuid())
    .bind(&won_receipts)
    .bind(&won_ids)
    .bind(now)
    .bind(locked.hold_micros)
    .fetch_all(&mut *tx)
    .await?;
    if won.len() != winners {
        return Err(fault(internal("the draw's holds do not match its winners")));
    }
    won.sort_by_key(|h| order.get(&h.id).copied().unwrap_or(usize::MAX));
    if waiting > 0 {
        // The others join their variant's line in draw order: tickets are
        // numbered after the sort.
        sqlx::query(
            "INSERT INTO dropkit_waitlist \
                    (ticket, drop_id, variant_id, buyer_id, display_name, quantity, joined_at) \
             SELECT nextval('dropkit_waitlist_ticket_seq'), e.drop_id, e.variant_id, \
                    e.buyer_id, e.display_name, 1, $2 \
               FROM dropkit_entries e JOIN dropkit_variants v ON v.id = e.variant_id \
              WHERE e.drop_id = $1 AND e.outcome = 'waiting' \
              ORDER BY v.position, e.draw_position",
        )
        .bind(drop_id.as_uuid())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "UPDATE dropkit_variants v \
            SET reserved = v.reserved + t.won, waitlist_length = v.waitlist_length + t.waiting, \
                draw_stock = t.stock \
           FROM unnest($1::uuid[], $2::integer[], $3::integer[], $4::integer[]) \
                AS t(id, stock, won, waiting) \
          WHERE v.id = t.id",
    )
    .bind(&v_ids)
    .bind(&v_stock)
    .bind(&v_won)
    .bind(&v_waiting)
    .execute(&mut *tx)
    .await?;
    let counters = sqlx::query_as::<_, Counters>(
        "UPDATE dropkit_drops d \
            SET reserved = d.reserved + $2, version = d.version + 1, drawn_at = $3, \
                beacon = $4, entry_list_hash = $5 \
          WHERE d.id = $1 \
         RETURNING d.total_stock AS o_total, d.reserved AS o_reserved, d.sold AS o_sold, \
                   d.version AS o_version, dropkit_variants_of(d.id) AS o_variants",
    )
    .bind(drop_id.as_uuid())
    .bind(to_i32(winners))
    .bind(now)
    .bind(beacon.as_ref().map(Beacon::as_bytes))
    .bind(result.entry_list_hash.as_bytes().as_slice())
    .fetch_one(&mut *tx)
    .await?;
    let summary = DrawSummary::new(
        drop_id,
        now,
        count(n_entries).map_err(fault)?,
        count(winners).map_err(fault)?,
        count(waiting).map_err(fault)?,
    );
    if shared.log {
        let mut entries = Vec::with_capacity(winners + 1);
        for hold in &won {
            entries.push((
                drop_id,
                Change::HoldCreated {
                    reservation_id: ReservationId::from_uuid(hold.id),
                    buyer_id: buyer_id(&hold.buyer_id).map_err(fault)?,
                    display_name: display_name(&hold.display_name).map_err(fault)?,
                    variant_id: VariantId::from_uuid(hold.variant_id),
                    quantity: 1,
                    expires_at: hold.expires_at,
                    offered: true,
                },
            ));
        }
        entries.push((
            drop_id,
            Change::DrawCompleted {
                drawn_at: now,
                entries: summary.entries,
                winners: summary.winners,
                waiting: summary.waiting,
            },
        ));
        crate::log::append(&mut tx, &entries).await?;
    }
    tx.commit().await?;
    Ok(Some(Drawn {
        summary,
        holds: won,
        counters,
    }))
}

/// The draw's public record (see
/// [`drop_core::InventoryStore::draw_status`]): read back from the drop,
/// its variants' drawn stock and its entries, which are final once drawn.
pub(crate) async fn status(shared: &Shared, drop_id: DropId) -> Result<DrawStatus, DropError> {
    let sql = format!("SELECT {DRAW_COLUMNS}");
    let row = shared
        .read(|| {
            sqlx::query_as::<_, DrawRow>(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(drop_id.as_uuid())
                .fetch_optional(&shared.pool)
        })
        .await?;
    let Some(row) = row else {
        return Err(DropError::DropNotFound { drop_id });
    };
    if row.mode != "draw" {
        return Err(DropError::NotADraw { drop_id });
    }
    let seed = row.seed()?;
    let draw_at = present(row.draw_at, "a draw drop's drawAt")?;
    let mut status = DrawStatus::pending(drop_id, draw_at, seed.hash(), row.beacon_name.clone());
    let Some(drawn_at) = row.drawn_at else {
        return Ok(status);
    };
    let stock: Vec<(Uuid, Option<i32>)> = shared
        .read(|| {
            sqlx::query_as(
                "SELECT id, draw_stock FROM dropkit_variants WHERE drop_id = $1 ORDER BY position",
            )
            .bind(drop_id.as_uuid())
            .fetch_all(&shared.pool)
        })
        .await?;
    let listed: Vec<(Vec<u8>, Uuid)> = shared
        .read(|| {
            sqlx::query_as("SELECT receipt, variant_id FROM dropkit_entries WHERE drop_id = $1")
                .bind(drop_id.as_uuid())
                .fetch_all(&shared.pool)
        })
        .await?;
    let won: Vec<(Uuid, Vec<Vec<u8>>)> = shared
        .read(|| {
            sqlx::query_as(
                "SELECT variant_id, array_agg(receipt ORDER BY draw_position) \
                   FROM dropkit_entries WHERE drop_id = $1 AND outcome = 'won' \
                  GROUP BY variant_id",
            )
            .bind(drop_id.as_uuid())
            .fetch_all(&shared.pool)
        })
        .await?;
    let mut entries = listed
        .iter()
        .map(|(r, v)| Ok(DrawEntry::new(receipt(r)?, VariantId::from_uuid(*v))))
        .collect::<Result<Vec<_>, DropError>>()?;
    entries.sort_unstable_by_key(|e| e.receipt);
    let mut won: HashMap<Uuid, Vec<Vec<u8>>> = won.into_iter().collect();
    let mut lines = Vec::with_capacity(stock.len());
    let mut winners = Vec::with_capacity(stock.len());
    for (id, n) in &stock {
        let n = u32::try_from(present(*n, "a drawn variant's stock")?)
            .map_err(|_| internal("a negative drawn stock"))?;
        lines.push(DrawStock::new(VariantId::from_uuid(*id), n));
        let receipts = won
            .remove(id)
            .unwrap_or_default()
            .iter()
            .map(|r| receipt(r))
            .collect::<Result<Vec<_>, _>>()?;
        winners.push(DrawWinners::new(VariantId::from_uuid(*id), receipts));
    }
    let hash: [u8; 32] = present(row.entry_list_hash.as_deref(), "a drawn drop's list hash")?
        .try_into()
        .map_err(|_| internal("a stored entry list hash is not 32 bytes"))?;
    let beacon = row
        .beacon
        .as_deref()
        .map(|b| Beacon::new(b.to_vec()).map_err(|_| internal("a stored beacon is invalid")))
        .transpose()?;
    // PublishedDraw is made by drop-core from a DrawResult; read back, it
    // is assembled in its own serialized form from its typed parts.
    let published = serde_json::json!({
        "seed": seed,
        "seedHash": seed.hash(),
        "beacon": beacon,
        "entryListHash": EntryListHash::from_bytes(hash),
        "entries": entries,
        "stock": lines,
        "winners": winners,
    });
    let published = serde_json::from_value(published)
        .map_err(|e| internal(format!("a stored draw does not read back: {e}")))?;
    status.drawn_at = Some(drawn_at);
    status.published = Some(published);
    Ok(status)
}

/// The mode a drop is stored with.
pub(crate) fn mode(raw: &str) -> Result<SaleMode, DropError> {
    match raw {
        "firstCome" => Ok(SaleMode::FirstCome),
        "draw" => Ok(SaleMode::Draw),
        other => Err(internal(format!("stored sale mode {other:?} is unknown"))),
    }
}

/// The column a drop's mode is stored in.
pub(crate) fn mode_column(mode: SaleMode) -> &'static str {
    match mode {
        SaleMode::FirstCome => "firstCome",
        SaleMode::Draw => "draw",
    }
}
