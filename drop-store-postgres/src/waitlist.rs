//! The waiting list ([`drop_core::waitlist`]): joining, leaving and reading
//! a place, and what the SQL side answers when it serves a line.
//!
//! The rule itself is one SQL function, `dropkit_serve_line`, which every
//! path that frees units calls in its own transaction under the drop's
//! lock (see the waitlist migration). It answers [`LineStep`]s, in the
//! order they are logged; this module turns them into events (and, for the
//! admin writes that append their entries from Rust, into log changes).

use chrono::{DateTime, Utc};
use drop_core::{
    Applied, Buyer, BuyerId, Change, DropError, DropEvent, DropId, LeaveReason, NotActiveReason,
    Reservation, ReservationId, ReservationStatus, ReserveRequest, VariantId, WaitlistPlace,
};
use sqlx::FromRow;
use uuid::Uuid;

use crate::error::internal;
use crate::rows::{Counters, buyer_id, counter, decode, display_name, present};
use crate::writes::Shared;

/// One thing serving a line did (PostgreSQL type `dropkit_line_step`).
#[derive(Debug, Clone, sqlx::Type)]
#[sqlx(type_name = "dropkit_line_step")]
pub(crate) struct LineStep {
    /// `expired`, `offered`, `skipped` or `left`.
    kind: String,
    hold_id: Option<Uuid>,
    variant_id: Option<Uuid>,
    buyer_id: Option<String>,
    display_name: Option<String>,
    quantity: Option<i32>,
    created_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    ticket: Option<i64>,
}

impl LineStep {
    fn hold(&self) -> Result<ReservationId, DropError> {
        Ok(ReservationId::from_uuid(present(
            self.hold_id,
            "a step's hold",
        )?))
    }

    fn variant(&self) -> Result<VariantId, DropError> {
        Ok(VariantId::from_uuid(present(
            self.variant_id,
            "a step's variant",
        )?))
    }

    fn buyer(&self) -> Result<BuyerId, DropError> {
        buyer_id(present(self.buyer_id.as_deref(), "a step's buyer")?)
    }

    fn quantity(&self) -> Result<u32, DropError> {
        counter(present(self.quantity, "a step's quantity")?)
    }

    fn ticket(&self) -> Result<u64, DropError> {
        u64::try_from(present(self.ticket, "a step's ticket")?)
            .map_err(|_| internal("a negative ticket"))
    }

    fn reason(&self) -> Result<LeaveReason, DropError> {
        self.kind
            .parse()
            .map_err(|_| internal(format!("a line step of unknown kind {:?}", self.kind)))
    }

    /// The events this step stands for, in order.
    fn events(&self, drop_id: DropId, out: &mut Vec<DropEvent>) -> Result<(), DropError> {
        if self.kind == "expired" {
            out.push(DropEvent::HoldExpired {
                drop_id,
                reservation_id: self.hold()?,
            });
            return Ok(());
        }
        if self.kind == "offered" {
            out.push(DropEvent::HoldCreated {
                drop_id,
                reservation_id: self.hold()?,
                buyer_id: self.buyer()?,
                variant_id: self.variant()?,
                quantity: self.quantity()?,
                expires_at: present(self.expires_at, "an offered hold's expiresAt")?,
                offered: true,
            });
        }
        out.push(DropEvent::WaitlistLeft {
            drop_id,
            variant_id: self.variant()?,
            buyer_id: self.buyer()?,
            ticket: self.ticket()?,
            reason: self.reason()?,
        });
        Ok(())
    }

    /// The log changes this step stands for, in order (as
    /// `dropkit_log_steps` writes them).
    fn changes(&self, out: &mut Vec<Change>) -> Result<(), DropError> {
        if self.kind == "expired" {
            out.push(Change::HoldExpired {
                reservation_id: self.hold()?,
                buyer_id: self.buyer()?,
                variant_id: self.variant()?,
                quantity: self.quantity()?,
            });
            return Ok(());
        }
        if self.kind == "offered" {
            out.push(Change::HoldCreated {
                reservation_id: self.hold()?,
                buyer_id: self.buyer()?,
                display_name: display_name(present(
                    self.display_name.as_deref(),
                    "an offered hold's display name",
                )?)?,
                variant_id: self.variant()?,
                quantity: self.quantity()?,
                expires_at: present(self.expires_at, "an offered hold's expiresAt")?,
                offered: true,
            });
        }
        out.push(Change::WaitlistLeft {
            buyer_id: self.buyer()?,
            variant_id: self.variant()?,
            quantity: self.quantity()?,
            ticket: self.ticket()?,
            reason: self.reason()?,
        });
        Ok(())
    }
}

/// The events of `steps` of `drop_id`, in order.
pub(crate) fn step_events(
    drop_id: DropId,
    steps: &[LineStep],
) -> Result<Vec<DropEvent>, DropError> {
    let mut out = Vec::new();
    for step in steps {
        step.events(drop_id, &mut out)?;
    }
    Ok(out)
}

/// The log changes of `steps` of `drop_id`, in order.
pub(crate) fn step_changes(
    drop_id: DropId,
    steps: &[LineStep],
) -> Result<Vec<(DropId, Change)>, DropError> {
    let mut out = Vec::new();
    for step in steps {
        step.changes(&mut out)?;
    }
    Ok(out.into_iter().map(|c| (drop_id, c)).collect())
}

/// A buyer's place as `dropkit_waitlist_place` answers it (all absent when
/// they stand in no line).
#[derive(Debug, FromRow)]
pub(crate) struct PlaceRow {
    o_ticket: Option<i64>,
    o_variant: Option<Uuid>,
    o_display_name: Option<String>,
    o_quantity: Option<i32>,
    o_joined_at: Option<DateTime<Utc>>,
    o_position: Option<i32>,
    o_set_aside: Option<i32>,
}

impl PlaceRow {
    /// `buyer`'s place in a line of `drop_id`, if the row holds one.
    pub(crate) fn place(
        &self,
        drop_id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<WaitlistPlace>, DropError> {
        let Some(ticket) = self.o_ticket else {
            return Ok(None);
        };
        let mut place = WaitlistPlace::new(
            drop_id,
            VariantId::from_uuid(present(self.o_variant, "a place's variant")?),
            Buyer::new(
                buyer.clone(),
                display_name(present(
                    self.o_display_name.as_deref(),
                    "a place's display name",
                )?)?,
            ),
            counter(present(self.o_quantity, "a place's quantity")?)?,
            u64::try_from(ticket).map_err(|_| internal("a negative ticket"))?,
            present(self.o_joined_at, "a place's joinedAt")?,
        );
        place.position = counter(present(self.o_position, "a place's position")?)?;
        place.set_aside = counter(present(self.o_set_aside, "a place's set-aside units")?)?;
        Ok(Some(place))
    }
}

/// What `dropkit_waitlist_join` answers.
#[derive(Debug, FromRow)]
struct JoinRow {
    o_outcome: String,
    o_max_per_buyer: Option<i32>,
    o_taken: Option<i32>,
    #[sqlx(flatten)]
    place: PlaceRow,
    o_hold_id: Option<Uuid>,
    o_hold_variant: Option<Uuid>,
    o_hold_quantity: Option<i32>,
    o_hold_name: Option<String>,
    o_hold_created: Option<DateTime<Utc>>,
    o_hold_expires: Option<DateTime<Utc>>,
    o_hold_offered: Option<bool>,
    o_steps: Option<Vec<LineStep>>,
    #[sqlx(flatten)]
    after: Counters,
}

impl JoinRow {
    /// The active hold that stands in the way (for `hold_exists`).
    fn hold(&self, drop_id: DropId, buyer: &BuyerId) -> Result<Reservation, DropError> {
        let mut hold = Reservation::new(
            ReservationId::from_uuid(present(self.o_hold_id, "a hold id")?),
            drop_id,
            VariantId::from_uuid(present(self.o_hold_variant, "a hold's variant")?),
            Buyer::new(
                buyer.clone(),
                display_name(present(self.o_hold_name.as_deref(), "a hold's name")?)?,
            ),
            ReservationStatus::Active,
            present(self.o_hold_created, "a hold's createdAt")?,
            present(self.o_hold_expires, "a hold's expiresAt")?,
        );
        hold.quantity = counter(present(self.o_hold_quantity, "a hold's quantity")?)?;
        hold.offered = self.o_hold_offered.unwrap_or(false);
        Ok(hold)
    }
}

/// What `dropkit_waitlist_leave` answers.
#[derive(Debug, FromRow)]
struct LeaveRow {
    o_outcome: String,
    #[sqlx(flatten)]
    place: PlaceRow,
    o_steps: Option<Vec<LineStep>>,
    #[sqlx(flatten)]
    after: Counters,
}

/// One call to join a line, as the group-commit batch of joins carries it.
#[derive(Debug, Clone)]
pub(crate) struct JoinCall {
    /// Who joins.
    pub(crate) buyer: Buyer,
    /// What they wait for.
    pub(crate) request: ReserveRequest,
}

/// Puts each caller in the line for their request (see
/// [`InventoryStore::join_waitlist`](drop_core::InventoryStore::join_waitlist)),
/// all in one statement and so one transaction: joins of one drop contend
/// for its lock like reserves do, so a storm of them is grouped the same
/// way. `dropkit_waitlist_join` runs once per call, in the calls' order,
/// each seeing the calls before it; a refusal is an answer row, not an
/// error, so one caller's refusal never fails the others. Answers one
/// result per call, in order, and publishes the batch's events after it
/// committed.
pub(crate) async fn join_batch(
    shared: &Shared,
    drop_id: DropId,
    calls: Vec<JoinCall>,
) -> Vec<Result<Applied<WaitlistPlace>, DropError>> {
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
    let log = shared.log;
    let (buyers, names, variants, quantities) = (&buyers, &names, &variants, &quantities);
    let rows = shared
        .retry(|mut conn| async move {
            sqlx::query(
                "SELECT j.* FROM unnest($2::text[], $3::text[], $4::uuid[], $5::int[]) \
                 WITH ORDINALITY AS c(buyer, name, variant, quantity, n) \
                 CROSS JOIN LATERAL dropkit_waitlist_join($1, c.buyer, c.name, c.variant, c.quantity, $6) j \
                 ORDER BY c.n",
            )
            .bind(drop_id.as_uuid())
            .bind(buyers)
            .bind(names)
            .bind(variants)
            .bind(quantities)
            .bind(log)
            .fetch_all(&mut *conn)
            .await
        })
        .await;
    let rows = match rows {
        Ok(rows) if rows.len() == calls.len() => rows,
        Ok(rows) => {
            let e = internal(format!(
                "a batch of {} joins answered {} rows",
                calls.len(),
                rows.len()
            ));
            shared.fanout.publish_lost();
            return calls.iter().map(|_| Err(e.clone())).collect();
        }
        Err(e) => return calls.iter().map(|_| Err(e.clone())).collect(),
    };
    let mut events = Vec::new();
    let answers = rows
        .iter()
        .zip(&calls)
        .map(|(row, call)| {
            let mut own = Vec::new();
            let answer =
                decode::<JoinRow>(row).and_then(|row| join_answer(&row, drop_id, call, &mut own));
            match &answer {
                // A row that could not be read may stand for a change that
                // committed: subscribers are told they missed something.
                Err(e) if e.code() == "INTERNAL" => shared.fanout.publish_lost(),
                _ => events.append(&mut own),
            }
            answer
        })
        .collect();
    shared.fanout.publish(events);
    answers
}

/// One caller's answer from its row of a batch of joins, with the events of
/// a join that changed something added to `events`.
fn join_answer(
    row: &JoinRow,
    drop_id: DropId,
    call: &JoinCall,
    events: &mut Vec<DropEvent>,
) -> Result<Applied<WaitlistPlace>, DropError> {
    let (buyer, request) = (&call.buyer, call.request);
    let place = || {
        row.place
            .place(drop_id, &buyer.id)?
            .ok_or_else(|| internal("a join answered no place"))
    };
    match row.o_outcome.as_str() {
        "joined" => {
            let place = place()?;
            events.push(DropEvent::WaitlistJoined {
                drop_id,
                variant_id: place.variant_id,
                buyer_id: buyer.id.clone(),
                quantity: place.quantity,
                ticket: place.ticket,
            });
            events.extend(step_events(drop_id, row.o_steps.as_deref().unwrap_or(&[]))?);
            events.push(row.after.event(drop_id)?);
            Ok(Applied::new(place, true))
        }
        "in_line" => Ok(Applied::new(place()?, false)),
        "already_in_line" => Err(DropError::AlreadyInLine {
            place: Box::new(place()?),
        }),
        "drop_not_found" => Err(DropError::DropNotFound { drop_id }),
        "variant_not_found" => Err(DropError::VariantNotFound {
            drop_id,
            variant_id: request
                .variant_id
                .ok_or_else(|| internal("an unnamed variant was not found"))?,
        }),
        "variant_required" => Err(DropError::invalid(
            "variantId",
            "is required: the drop has more than one variant",
        )),
        "bad_quantity" => {
            let max = counter(present(row.o_max_per_buyer, "the drop's maxPerBuyer")?)?;
            Err(DropError::invalid(
                "quantity",
                if (1..=max).contains(&request.quantity) {
                    "the total would be above the largest amount (1000000000)".to_owned()
                } else {
                    format!("must be between 1 and the drop's maxPerBuyer ({max})")
                },
            ))
        }
        "waitlist_closed" => Err(DropError::WaitlistClosed { drop_id }),
        "not_started" => Err(DropError::DropNotActive {
            drop_id,
            reason: NotActiveReason::NotStarted,
        }),
        "ended" => Err(DropError::DropNotActive {
            drop_id,
            reason: NotActiveReason::Ended,
        }),
        "paused" => Err(DropError::DropPaused { drop_id }),
        "hold_exists" => Err(DropError::HoldExists {
            reservation: Box::new(row.hold(drop_id, &buyer.id)?),
        }),
        "buyer_limit" => Err(DropError::BuyerLimitReached {
            drop_id,
            max_per_buyer: counter(present(row.o_max_per_buyer, "the drop's maxPerBuyer")?)?,
            taken: counter(present(row.o_taken, "the units a buyer took")?)?,
        }),
        "waitlist_not_needed" => Err(DropError::WaitlistNotNeeded {
            drop_id,
            variant_id: match request.variant_id {
                Some(v) => v,
                None => VariantId::from_uuid(present(row.place.o_variant, "the variant")?),
            },
        }),
        other => Err(internal(format!("a join answered {other:?}"))),
    }
}

/// Takes `buyer` out of the drop's line (see
/// [`InventoryStore::leave_waitlist`](drop_core::InventoryStore::leave_waitlist)).
pub(crate) async fn leave(
    shared: &Shared,
    drop_id: DropId,
    buyer: &BuyerId,
) -> Result<Option<WaitlistPlace>, DropError> {
    let log = shared.log;
    let row = shared
        .retry(|mut conn| async move {
            sqlx::query("SELECT * FROM dropkit_waitlist_leave($1, $2, $3)")
                .bind(drop_id.as_uuid())
                .bind(buyer.as_str())
                .bind(log)
                .fetch_one(&mut *conn)
                .await
        })
        .await?;
    let row: LeaveRow = decode(&row).inspect_err(|_| shared.fanout.publish_lost())?;
    match row.o_outcome.as_str() {
        "left" => {
            let place = row.place.place(drop_id, buyer)?;
            let mut events = step_events(drop_id, row.o_steps.as_deref().unwrap_or(&[]))?;
            events.push(row.after.event(drop_id)?);
            shared.fanout.publish(events);
            Ok(place)
        }
        "none" => Ok(None),
        "drop_not_found" => Err(DropError::DropNotFound { drop_id }),
        other => Err(internal(format!("a leave answered {other:?}"))),
    }
}

/// A buyer's place in a drop, from a row that exists only when the drop
/// does (so a missing drop is told apart from a buyer in no line).
#[derive(Debug, FromRow)]
struct PlaceOfDrop {
    #[sqlx(flatten)]
    place: PlaceRow,
}

/// `buyer`'s place in the drop's line as it is now.
pub(crate) async fn place(
    shared: &Shared,
    drop_id: DropId,
    buyer: &BuyerId,
) -> Result<Option<WaitlistPlace>, DropError> {
    let row = shared
        .read(|| {
            sqlx::query_as::<_, PlaceOfDrop>(
                "SELECT w.* FROM dropkit_drops d \
                 LEFT JOIN LATERAL dropkit_waitlist_place(d.id, $2) w ON true \
                 WHERE d.id = $1",
            )
            .bind(drop_id.as_uuid())
            .bind(buyer.as_str())
            .fetch_optional(&shared.pool)
        })
        .await?;
    match row {
        Some(row) => row.place.place(drop_id, buyer),
        None => Err(DropError::DropNotFound { drop_id }),
    }
}
