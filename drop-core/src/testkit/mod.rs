//! The store conformance suite (feature `testkit`).
//!
//! Every store runs the same cases. A store crate implements [`Harness`]
//! for a fresh store and stamps the cases into its tests with
//! [`conformance_suite!`](crate::conformance_suite):
//!
//! ```ignore
//! drop_core::conformance_suite! {
//!     #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//!     () => MyHarness::new().await
//! }
//! ```
//!
//! The attribute and the argument list are the caller's, so a database
//! store can use `#[sqlx::test]` and receive a fresh pool per case:
//! `(pool: PgPool) => PgHarness::new(pool).await`.
//!
//! Each case is also a public function taking the harness, to run one on
//! its own. The cases, by what they test:
//!
//! - drops, holds, purchases, sale windows and expiry (one variant);
//! - buyers known by id, display names only shown;
//! - revoked sign-in sessions;
//! - variants and quantities: per-variant stock, all-or-nothing holds,
//!   the price paid for several units;
//! - what one buyer may take: one hold per drop, `maxPerBuyer`, and the
//!   order in which a reserve checks its rules;
//! - purchase records: repeats, reads, a buyer's pages;
//! - admin operations: listing, editing, pausing, ending, cancelling;
//! - idempotency keys: replays, reuse, refusals, callers;
//! - the same rules raced by many tasks;
//! - the event log: what each change appends, reading it in pages, named
//!   cursors and their leases, and a follower that never misses an entry;
//! - the waiting list: who may join, the line's order, offered holds,
//!   set-aside units, skipping, leaving, what serves the line, and the
//!   line raced by many tasks;
//! - draw drops: entries and their checks, `DRAW_ONLY` before the draw,
//!   when the draw runs (once), what it gives, publishes and announces.
//!
//! Every case checks the events the contract promises (subscribing before
//! it acts), that refusals announce nothing, and the counters after, per
//! variant and summed; most end with [`Harness::verify`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;

use crate::{
    Buyer, DropError, DropEvent, DropId, DropState, EventStream, IdempotencyKey, InventoryStore,
    Money, NewDrop, NewVariant, ReserveRequest, Username, VariantId,
};

mod admin;
mod buyers;
mod draws;
mod idempotency;
mod lifecycle;
mod limits;
mod log;
mod races;
mod records;
mod sessions;
mod variants;
mod waitlist;
mod wrapped;

pub use admin::*;
pub use buyers::*;
pub use draws::*;
pub use idempotency::*;
pub use lifecycle::*;
pub use limits::*;
pub use log::*;
pub use races::*;
pub use records::*;
pub use sessions::*;
pub use variants::*;
pub use waitlist::*;
pub use wrapped::{StoreHooks, Wrapped};

/// What the suite needs from a store under test.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The store (a fresh, empty one per case).
    fn store(&self) -> Arc<dyn InventoryStore>;

    /// The store's current time (the manual clock's, or the database's
    /// approximately).
    async fn now(&self) -> DateTime<Utc>;

    /// Moves the store's time forward by at least `by`: exactly, for a
    /// manual clock; by sleeping, for a real one.
    async fn advance(&self, by: Duration);

    /// Whether [`advance`](Harness::advance) is exact (a manual clock), so
    /// boundary cases can land exactly on an instant.
    fn exact_time(&self) -> bool;

    /// The hold duration the expiry cases give their drops: long under a
    /// manual clock, short (a second or two) under a real one, long enough
    /// that a slow round trip does not cross it by accident.
    fn hold(&self) -> Duration;

    /// The hold duration of every other case: so long that no case ever
    /// sees a hold run out, however slow the machine. Defaults to an hour.
    fn long_hold(&self) -> Duration {
        Duration::from_secs(3600)
    }

    /// Checks the store's own bookkeeping (counters against records).
    async fn verify(&self) -> Result<(), String>;
}

/// A buyer known by a claimed username: id and display name alike.
fn user(name: &str) -> Buyer {
    Buyer::claimed(Username::parse(name).expect("valid test username"))
}

fn price() -> Money {
    Money::from_minor(19_999).expect("valid price")
}

/// A drop whose holds never run out during a case.
async fn new_drop(h: &dyn Harness, stock: u32) -> DropState {
    h.store()
        .create_drop(NewDrop::new("Test drop", price(), stock).hold(h.long_hold()))
        .await
        .expect("create drop")
}

/// A drop whose holds run out within the case ([`Harness::hold`]).
async fn expiring_drop(h: &dyn Harness, stock: u32) -> DropState {
    h.store()
        .create_drop(NewDrop::new("Expiring drop", price(), stock).hold(h.hold()))
        .await
        .expect("create drop")
}

/// Waits until the store's time has reached `at`.
async fn advance_to(h: &dyn Harness, at: DateTime<Utc>) {
    let now = h.now().await;
    if let Ok(left) = (at - now).to_std() {
        h.advance(left).await;
    }
    if !h.exact_time() {
        // A real clock read over a network may lag a sleep: wait it out.
        while h.now().await < at {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn verify(h: &dyn Harness) {
    if let Err(e) = h.verify().await {
        panic!("store bookkeeping is inconsistent: {e}");
    }
}

/// How long to wait for an event that should come.
const EVENT_WAIT: Duration = Duration::from_secs(5);

async fn next_event(events: &mut EventStream) -> DropEvent {
    match tokio::time::timeout(EVENT_WAIT, events.next()).await {
        Ok(Some(Ok(e))) => e,
        Ok(Some(Err(lost))) => panic!("events lost in a quiet test: {lost}"),
        Ok(None) => panic!("event stream ended"),
        Err(_) => panic!("no event within {EVENT_WAIT:?}"),
    }
}

/// The next `n` events.
async fn next_events(events: &mut EventStream, n: usize) -> Vec<DropEvent> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next_event(events).await);
    }
    out
}

/// Asserts that the failed operations before this call emitted nothing:
/// performs a marker change and checks it is the very next event.
async fn assert_quiet_since(h: &dyn Harness, events: &mut EventStream) {
    let marker = h
        .store()
        .create_drop(NewDrop::new("marker", Money::ZERO, 1))
        .await
        .expect("create marker drop");
    match next_event(events).await {
        DropEvent::DropCreated { drop } if drop.drop.id == marker.drop.id => {}
        other => panic!("a failed operation emitted an event: {other:?}"),
    }
}

/// How many holds, purchases and expiries subscribers heard of.
#[derive(Debug, Default)]
struct EventCounts {
    created: usize,
    bought: usize,
    expired: usize,
}

/// Every event since `events` was subscribed, up to a marker change made
/// now: every committed change before the marker has been published by
/// the time the marker is (invariant 5).
async fn events_until_marker(h: &dyn Harness, events: &mut EventStream) -> Vec<DropEvent> {
    let marker = h
        .store()
        .create_drop(NewDrop::new("marker", Money::ZERO, 1))
        .await
        .expect("create marker drop");
    let mut out = Vec::new();
    loop {
        match next_event(events).await {
            DropEvent::DropCreated { drop } if drop.drop.id == marker.drop.id => return out,
            other => out.push(other),
        }
    }
}

/// Counts the holds, purchases and expiries announced since `events` was
/// subscribed (see [`events_until_marker`]).
async fn event_counts(h: &dyn Harness, events: &mut EventStream) -> EventCounts {
    let mut counts = EventCounts::default();
    for event in events_until_marker(h, events).await {
        match event {
            DropEvent::HoldCreated { .. } => counts.created += 1,
            DropEvent::PurchaseCompleted { .. } => counts.bought += 1,
            DropEvent::HoldExpired { .. } => counts.expired += 1,
            _ => {}
        }
    }
    counts
}

fn code<T: std::fmt::Debug>(r: Result<T, DropError>) -> &'static str {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code(),
    }
}

/// The error of a call expected to fail.
fn error<T: std::fmt::Debug>(r: Result<T, DropError>) -> DropError {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e,
    }
}

/// Asserts an `INVALID_INPUT` naming `field`.
fn assert_invalid<T: std::fmt::Debug>(r: Result<T, DropError>, field: &str) {
    let e = error(r);
    assert_eq!((e.code(), e.field()), ("INVALID_INPUT", Some(field)), "{e}");
}

/// A drop of the named variants (in that order), at [`price`], whose
/// holds never run out during a case and whose buyers may take `max`
/// units each.
async fn sized_drop(h: &dyn Harness, sizes: &[(&str, u32)], max: u32) -> DropState {
    h.store()
        .create_drop(
            NewDrop::with_variants(
                "Sized drop",
                price(),
                sizes.iter().map(|(name, n)| NewVariant::new(*name, *n)),
            )
            .max_per_buyer(max)
            .hold(h.long_hold()),
        )
        .await
        .expect("create drop")
}

/// The id of the drop's variant at `index`, in creation order.
fn variant(d: &DropState, index: usize) -> VariantId {
    d.drop.variants[index].id
}

/// `quantity` units of `variant`.
fn ask(variant: VariantId, quantity: u32) -> ReserveRequest {
    ReserveRequest::new().variant(variant).quantity(quantity)
}

/// An idempotency key of `caller`; requests with the same `fingerprint`
/// byte are the same request.
fn idem(caller: &str, key: &str, fingerprint: u8) -> IdempotencyKey {
    IdempotencyKey::new(caller, key, [fingerprint; 32]).expect("valid idempotency key")
}

/// Asserts a drop's counters as every read shows them: `want` holds each
/// variant's (total, reserved, sold) in the drop's order, and the drop's
/// figures are their sums. Answers the drop as read.
async fn assert_stock(h: &dyn Harness, drop_id: DropId, want: &[(u32, u32, u32)]) -> DropState {
    let d = h.store().get_drop(drop_id).await.expect("get drop");
    assert_counters(&d, want);
    d
}

/// [`assert_stock`] on a state already read.
fn assert_counters(d: &DropState, want: &[(u32, u32, u32)]) {
    let got: Vec<(u32, u32, u32)> = d
        .variants
        .iter()
        .map(|v| (v.total, v.reserved, v.sold))
        .collect();
    assert_eq!(got, want, "per-variant (total, reserved, sold)");
    let ids: Vec<VariantId> = d.variants.iter().map(|v| v.id).collect();
    let order: Vec<VariantId> = d.drop.variants.iter().map(|v| v.id).collect();
    assert_eq!(ids, order, "counters in the drop's variant order");
    let sum = want.iter().fold((0, 0, 0), |(t, r, s), (vt, vr, vs)| {
        (t + vt, r + vr, s + vs)
    });
    assert_eq!(
        (d.stock.total, d.stock.reserved, d.stock.sold),
        sum,
        "drop figures are the sums"
    );
    assert_eq!(d.drop.total_stock, sum.0, "the drop's totalStock");
    assert_eq!(d.stock.available(), sum.0 - sum.1 - sum.2);
}

/// Stamps every conformance case into the calling module as a test.
///
/// `#[attr] (args) => setup`: each case becomes `#[attr] async fn case(args)`
/// whose body evaluates `setup` (a [`Harness`]) and runs the case on it.
#[macro_export]
macro_rules! conformance_suite {
    (#[$attr:meta] ($($args:tt)*) => $setup:expr) => {
        $crate::__conformance_cases! {
            #[$attr] ($($args)*) => $setup;
            create_get_and_list,
            create_rejects_invalid_drops,
            unknown_ids_are_not_found,
            reserve_holds_one_unit,
            reserve_again_returns_same_hold_unchanged,
            one_active_hold_per_user_under_concurrency,
            out_of_stock,
            purchase_completes_hold,
            purchase_refusals,
            release_frees_the_unit,
            purchase_after_expiry_fails_without_sweeper,
            expiry_boundary_is_exact,
            lazy_reclaim_of_overdue_holds,
            expire_due_sweeps_once,
            purchase_racing_expiry,
            sale_windows,
            top_purchasers_newest_first,
            stock_versions_grow,
            stress_concurrent_reserves,
            object_safe_and_shared,
            purchase_after_end_of_sale_within_the_hold,
            reserve_before_start_is_refused,
            release_of_an_expired_hold,
            overdue_holds_read_as_free_before_the_sweep,
            buyers_sharing_a_display_name_are_different_buyers,
            buyer_ids_that_are_not_usernames,
            hold_events_carry_the_buyer_id,
            revoked_sessions_are_listed,
            revoked_sessions_since,
            expired_revocations_are_not_listed,
            revoking_twice_is_fine,
            variants_have_their_own_stock,
            reserve_names_a_variant_of_the_drop,
            a_drop_without_variants_has_one,
            variant_creation_rules,
            quantity_is_all_or_nothing,
            quantity_out_of_range_is_invalid,
            purchase_pays_price_times_quantity,
            one_hold_per_buyer_and_drop,
            max_per_buyer_counts_across_variants,
            cancelled_purchases_give_the_budget_back,
            released_and_expired_holds_do_not_count,
            reserve_checks_in_documented_order,
            purchase_repeat_answers_the_same_purchase,
            purchases_read_back,
            buyer_purchases_newest_first,
            buyer_purchases_pages,
            list_all_drops_includes_ended_ones,
            admin_writes_on_unknown_ids,
            update_drop_name_and_price,
            update_drop_stock,
            update_drop_limit_and_hold_length,
            pause_and_resume,
            end_drop_stops_the_sale,
            end_drop_before_its_start,
            cancel_purchase_returns_the_units,
            idempotent_reserve_replays,
            idempotent_purchase_replays,
            idempotent_admin_writes_replay,
            refused_writes_record_nothing,
            idempotency_keys_are_per_caller,
            concurrent_reserves_with_one_key_make_one_hold,
            concurrent_reserves_of_different_variants_give_one_hold,
            stock_edits_racing_sales_never_oversell,
            purchase_cancel_and_reserve_race_keeps_the_limit,
            log_records_holds_purchases_and_cancellations,
            log_records_releases_and_expiries,
            log_records_admin_changes,
            log_skips_refusals_replays_and_repeats,
            log_pages_and_drop_history,
            log_cursors_are_leased,
            log_cursors_are_listed,
            log_cursor_leases_run_out,
            log_follower_never_misses_an_entry,
            waitlist_join_needs_a_sold_out_variant,
            waitlist_join_checks_in_documented_order,
            waitlist_serves_in_line_order,
            waitlist_no_line_cutting_on_expiry,
            waitlist_skips_buyers_at_their_limit_or_holding,
            waitlist_offer_that_expires_goes_to_the_next,
            waitlist_sets_units_aside_until_covered,
            waitlist_leaving,
            waitlist_served_by_cancellation_and_added_stock,
            waitlist_no_offers_after_the_end,
            waitlist_log_records_joins_and_offers,
            waitlist_in_the_overview,
            waitlist_race_keeps_the_order,
            draw_enter_read_and_withdraw,
            draw_entry_checks_in_documented_order,
            draw_only_until_drawn,
            draw_drop_creation_rules,
            draw_runs_once_when_due,
            draw_ended_before_its_time_never_draws,
            draw_fewer_entries_than_stock_all_win,
            draw_more_entries_than_stock_line_up,
            draw_without_a_line_losers_lose,
            draw_published_draw_verifies,
            draw_beacon_is_required_iff_named,
            draw_events_and_log_in_order,
            draw_offer_that_expires_goes_to_the_next,
            draw_race_draws_once,
            draw_entry_in_the_overview,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    (#[$attr:meta] $args:tt => $setup:expr; $($case:ident),* $(,)?) => {
        $(
            #[$attr]
            async fn $case $args {
                let harness = $setup;
                $crate::testkit::$case(&harness).await;
            }
        )*
    };
}
