//! The JSON Schema of every validated input and enumerated output, built
//! from drop-core's limits (`MAX_NAME`, `MAX_STOCK`, `MIN_HOLD`/`MAX_HOLD`,
//! the username rules, `ERROR_CODES`), so the OpenAPI document states
//! exactly what the server accepts and cannot drift from it.
//!
//! Patterns are written for both ECMA-262 and Python/Rust regex engines
//! (explicit code point classes, no `\s` or `\d`, whose meaning differs
//! between them), since fuzzers generate from them.

use drop_core::BUYER_ID_MAX;
use drop_core::money::MONEY_MAX_MINOR;
use drop_core::username::{USERNAME_MAX, USERNAME_MIN};
use drop_core::{
    DropAction, ERROR_CODES, EntryOutcome, IDEMPOTENCY_KEY_MAX, LeaveReason, MAX_BEACON_NAME,
    MAX_HOLD, MAX_LOG_PAGE, MAX_NAME, MAX_PAGE, MAX_PER_BUYER, MAX_STOCK, MAX_VARIANT_NAME,
    MIN_HOLD, PurchaseStatus, ReservationStatus, SaleMode,
};
use utoipa::openapi::Schema;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};

/// Codes only the web layer answers with (everything `ApiError::new`
/// is called with in this crate, besides the store's `ERROR_CODES`).
pub(crate) const WEB_ERROR_CODES: &[&str] = &[
    "BAD_REQUEST",
    "INVALID_JSON",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "PAYLOAD_TOO_LARGE",
    "TIMEOUT",
    "UNSUPPORTED_MEDIA_TYPE",
    "UPGRADE_REQUIRED",
    "RATE_LIMITED",
    "UNAUTHORIZED",
    "UNAUTHENTICATED",
    "FORBIDDEN",
];

/// Every reservation status, in the order of the state machine.
pub(crate) const STATUSES: [ReservationStatus; 4] = [
    ReservationStatus::Active,
    ReservationStatus::Purchased,
    ReservationStatus::Expired,
    ReservationStatus::Released,
];

/// What `str::trim` removes (Unicode `White_Space`), as a class body.
const WHITE: &str = r"\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// What `char::is_control` refuses (Unicode `Cc`), as a class body.
const CONTROL: &str = r"\u0000-\u001f\u007f-\u009f";
/// Neither white space nor a control character, as a class body.
const VISIBLE: &str =
    r"\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// A drop name: trimmed, 1–`MAX_NAME` characters, no control characters.
pub(crate) fn name_pattern() -> String {
    trimmed_pattern(MAX_NAME)
}

/// Text that, trimmed, has 1–`max` characters (`max` ≥ 2), none of them
/// control characters.
fn trimmed_pattern(max: usize) -> String {
    format!(
        "^[{WHITE}]*[^{VISIBLE}](?:[^{CONTROL}]{{0,{inner}}}[^{VISIBLE}])?[{WHITE}]*$",
        inner = max - 2
    )
}

/// A beacon's name: trimmed, 1–`MAX_BEACON_NAME` characters, no control
/// characters.
pub(crate) fn beacon_name_pattern() -> String {
    trimmed_pattern(MAX_BEACON_NAME)
}

/// A username: trimmed, `USERNAME_MIN`–`USERNAME_MAX` of `A–Z a–z 0–9 _`.
pub(crate) fn username_pattern() -> String {
    format!("^[{WHITE}]*[A-Za-z0-9_]{{{USERNAME_MIN},{USERNAME_MAX}}}[{WHITE}]*$")
}

/// `?username=`: a username, or blank for none.
pub(crate) fn username_query_pattern() -> String {
    format!("^[{WHITE}]*(?:[A-Za-z0-9_]{{{USERNAME_MIN},{USERNAME_MAX}}}[{WHITE}]*)?$")
}

/// The most whole digits `Money::parse_decimal` reads.
const PRICE_DIGITS: usize = 12;

/// The largest price in whole units.
fn max_price_units() -> i64 {
    MONEY_MAX_MINOR / 100
}

/// A price as a decimal string: at most two decimals, 0 to the maximum.
pub(crate) fn price_pattern() -> String {
    // The server reads at most `PRICE_DIGITS` whole digits (leading zeros
    // included), so below the maximum a price has at most
    // `PRICE_DIGITS - digits(max - 1)` leading zeros.
    let max = max_price_units().to_string();
    let below = max.len() - 1;
    let zeros = PRICE_DIGITS - below;
    let max_zeros = PRICE_DIGITS - max.len();
    format!(
        "^[{WHITE}]*(?:0{{0,{zeros}}}[0-9]{{1,{below}}}(?:\\.[0-9]{{1,2}})?|0{{0,{max_zeros}}}{max}(?:\\.0{{1,2}})?)[{WHITE}]*$"
    )
}

fn string(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
}

/// `name` of a new drop.
pub(crate) fn drop_name() -> Schema {
    string(&format!(
        "Display name, 1–{MAX_NAME} characters once trimmed, no control characters."
    ))
    .pattern(Some(name_pattern()))
    .examples(["Sneaker X"])
    .into()
}

/// `username` in a body.
pub(crate) fn username() -> Schema {
    string(&format!(
        "The buyer: {USERNAME_MIN}–{USERNAME_MAX} of `A–Z a–z 0–9 _` (surrounding white space is trimmed)."
    ))
    .pattern(Some(username_pattern()))
    .examples(["alice"])
    .into()
}

/// A buyer's id, as answered to its buyer.
pub(crate) fn buyer_id() -> Schema {
    string(&format!(
        "The buyer's id: 1–{BUYER_ID_MAX} bytes, no control characters."
    ))
    .min_length(Some(1))
    .max_length(Some(BUYER_ID_MAX))
    .into()
}

/// `username` in a body where it may be left out (`null` or absent).
pub(crate) fn optional_username() -> Schema {
    string(&format!(
        "The hold's owner: {USERNAME_MIN}–{USERNAME_MAX} of `A–Z a–z 0–9 _`; \
         when absent, `?username=` names the owner."
    ))
    .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
        Type::String,
        Type::Null,
    ]))
    .pattern(Some(username_pattern()))
    .into()
}

/// `?username=`.
pub(crate) fn username_query() -> Schema {
    string("A username, or blank for none.")
        .pattern(Some(username_query_pattern()))
        .into()
}

/// A UUID id in a request body.
pub(crate) fn uuid(description: &str) -> Schema {
    string(description)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .into()
}

/// `dropId` of a reserve.
pub(crate) fn drop_id() -> Schema {
    uuid("The drop.")
}

/// `reservationId` of a purchase.
pub(crate) fn reservation_id() -> Schema {
    uuid("The hold to complete.")
}

/// `price` of a new drop: a JSON number or a decimal string.
pub(crate) fn price_in() -> Schema {
    let max = max_price_units();
    OneOfBuilder::new()
        .description(Some(format!(
            "Price of one unit, 0 to {max}, at most 2 decimals: a decimal string such as \
             `\"199.99\"` (exact), or a JSON number."
        )))
        .item(
            string("A decimal string.")
                .pattern(Some(price_pattern()))
                .examples(["199.99"]),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .minimum(Some(0))
                .maximum(Some(max))
                .multiple_of(Some(0.01)),
        )
        .into()
}

/// A price as the server writes it: two decimals.
pub(crate) fn price_out() -> Schema {
    string("A decimal string with two decimals, such as `\"199.99\"`.")
        .pattern(Some(r"^[0-9]+\.[0-9]{2}$"))
        .examples(["199.99"])
        .into()
}

/// `totalStock` of a new drop.
pub(crate) fn total_stock_in() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .description(Some(format!("Units for sale, 1–{MAX_STOCK}.")))
        .minimum(Some(1))
        .maximum(Some(MAX_STOCK))
        .into()
}

/// `holdSeconds` of a new drop.
pub(crate) fn hold_seconds_in() -> Schema {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::Number,
            Type::Null,
        ]))
        .description(Some(format!(
            "Hold length in seconds, {}–{}; the server's default when absent or null.",
            MIN_HOLD.as_secs_f64(),
            MAX_HOLD.as_secs()
        )))
        .minimum(Some(MIN_HOLD.as_secs_f64()))
        .maximum(Some(MAX_HOLD.as_secs()))
        .into()
}

/// RFC 3339's `date-time`, which the server reads (chrono); stated as a
/// pattern too, since `format` alone is only an annotation in OpenAPI 3.1.
pub(crate) const DATE_TIME_PATTERN: &str = "^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt]\
    (?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\\.[0-9]+)?\
    (?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$";

/// An optional instant in a request.
pub(crate) fn instant_in() -> Schema {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .pattern(Some(DATE_TIME_PATTERN))
        .description(Some(
            "An instant (RFC 3339) from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z. \
             The server answers 422 when it is outside that range, when `endsAt` is not \
             after `startsAt`, or when `endsAt` has passed: rules between fields and the \
             clock, which a schema cannot state.",
        ))
        .into()
}

/// An instant the server writes (RFC 3339, UTC, milliseconds).
pub(crate) fn instant_out() -> Schema {
    string("An instant (RFC 3339, UTC).")
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .into()
}

/// An optional instant the server writes.
pub(crate) fn optional_instant_out() -> Schema {
    instant_out_nullable("An instant (RFC 3339, UTC), or `null` for none.")
}

fn instant_out_nullable(description: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .description(Some(description))
        .into()
}

/// A hold's `status`.
pub(crate) fn status() -> Schema {
    string("Where the hold is in its life: `active` until it ends as one of the others.")
        .enum_values(Some(STATUSES.map(ReservationStatus::as_str)))
        .into()
}

/// A purchase's `status`.
pub(crate) fn purchase_status() -> Schema {
    string("`completed`, or `cancelled` by an admin since.")
        .enum_values(Some(
            [PurchaseStatus::Completed, PurchaseStatus::Cancelled].map(PurchaseStatus::as_str),
        ))
        .into()
}

/// A variant name: trimmed, 1–`MAX_VARIANT_NAME` characters, no control
/// characters.
pub(crate) fn variant_name_pattern() -> String {
    format!(
        "^[{WHITE}]*[^{VISIBLE}](?:[^{CONTROL}]{{0,{inner}}}[^{VISIBLE}])?[{WHITE}]*$",
        inner = MAX_VARIANT_NAME - 2
    )
}

/// `name` of a new variant.
pub(crate) fn variant_name() -> Schema {
    string(&format!(
        "Display name, 1–{MAX_VARIANT_NAME} characters once trimmed, no control characters,          unique within the drop."
    ))
    .pattern(Some(variant_name_pattern()))
    .examples(["42"])
    .into()
}

/// A variant's stock (a drop's variants together hold 1 or more).
pub(crate) fn variant_stock_in() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .description(Some(format!(
            "Units of the variant, 0–{MAX_STOCK} (the drop's variants together: 1–{MAX_STOCK})."
        )))
        .minimum(Some(0))
        .maximum(Some(MAX_STOCK))
        .into()
}

/// `totalStock` of an edit: 0 is refused by the drop's total rule.
pub(crate) fn patch_stock_in() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .description(Some(format!(
            "New units for sale of a one-variant drop, 1–{MAX_STOCK}, never below its held + sold              units (`STOCK_BELOW_COMMITTED`)."
        )))
        .minimum(Some(1))
        .maximum(Some(MAX_STOCK))
        .into()
}

/// `maxPerBuyer`.
pub(crate) fn max_per_buyer_in() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .description(Some(format!(
            "Units one buyer may hold plus have bought in the drop, 1–{MAX_PER_BUYER}."
        )))
        .minimum(Some(1))
        .maximum(Some(MAX_PER_BUYER))
        .into()
}

/// `quantity` of a reserve.
pub(crate) fn quantity_in() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .description(Some(format!(
            "Units to hold, 1–{MAX_PER_BUYER}, and at most the drop's `maxPerBuyer` (400              `INVALID_INPUT` on `quantity` above it); default 1."
        )))
        .minimum(Some(1))
        .maximum(Some(MAX_PER_BUYER))
        .into()
}

/// `quantity` of a waiting-list join.
pub(crate) fn waitlist_quantity_in() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .description(Some(format!(
            "Units to wait for, 1–{MAX_PER_BUYER}, and at most the drop's `maxPerBuyer` (400 \
             `INVALID_INPUT` on `quantity` above it); default 1. They are offered as one hold."
        )))
        .minimum(Some(1))
        .maximum(Some(MAX_PER_BUYER))
        .into()
}

/// Every reason a buyer leaves a line, as `waitlistLeft` names it.
pub(crate) const LEAVE_REASONS: [LeaveReason; 3] = [
    LeaveReason::Left,
    LeaveReason::Offered,
    LeaveReason::Skipped,
];

/// `reason` of a `waitlistLeft` frame or log entry.
pub(crate) fn leave_reason() -> Schema {
    string(
        "Why the buyer is out of the line: they `left` it, were `offered` a hold, or were \
         `skipped` when their turn came (they held units of the drop, or had reached `maxPerBuyer`).",
    )
    .enum_values(Some(LEAVE_REASONS.map(LeaveReason::as_str)))
    .into()
}

/// `holdSeconds` of an edit (no `null`: leave it out to keep the length).
pub(crate) fn hold_seconds_patch() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Number)
        .description(Some(format!(
            "Hold length in seconds for holds taken from now on, {}–{}.",
            MIN_HOLD.as_secs_f64(),
            MAX_HOLD.as_secs()
        )))
        .minimum(Some(MIN_HOLD.as_secs_f64()))
        .maximum(Some(MAX_HOLD.as_secs()))
        .into()
}

/// A variant id in a body.
pub(crate) fn variant_id() -> Schema {
    uuid("The variant.")
}

/// `variantId` of a reserve: may be left out (or `null`) on a drop of one
/// variant.
pub(crate) fn optional_variant_id() -> Schema {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .description(Some(
            "The variant; required when the drop has more than one (400 `INVALID_INPUT` on              `variantId` otherwise).",
        ))
        .into()
}

/// The `Idempotency-Key` header.
pub(crate) fn idempotency_key() -> Schema {
    string(&format!(
        "1–{IDEMPOTENCY_KEY_MAX} visible ASCII characters (`!` to `~`), e.g. a UUID."
    ))
    .min_length(Some(1))
    .max_length(Some(IDEMPOTENCY_KEY_MAX))
    .pattern(Some(format!("^[!-~]{{1,{IDEMPOTENCY_KEY_MAX}}}$")))
    .into()
}

/// The `Idempotency-Key` header where it is ignored: any value.
pub(crate) fn ignored_key() -> Schema {
    string("Any value; never read.").into()
}

/// `?before=`.
pub(crate) fn before_query() -> Schema {
    uuid("The last purchase of the previous page (its `nextBefore`).")
}

/// `?limit=`.
pub(crate) fn limit_query() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .description(Some(format!(
            "How many purchases at most, 1–{MAX_PAGE} (default {DEFAULT_PAGE})."
        )))
        .minimum(Some(1))
        .maximum(Some(MAX_PAGE))
        .into()
}

/// Purchases on one page when `?limit=` is left out.
pub(crate) const DEFAULT_PAGE: usize = 20;

/// Log entries on one page when `?limit=` is left out.
pub(crate) const DEFAULT_EVENTS_PAGE: usize = 100;

/// `?after=` of the event log.
pub(crate) fn after_query() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .description(Some(
            "Entries numbered above this `seq` (default 0: from the start); the previous page's `next`.",
        ))
        .minimum(Some(0))
        .maximum(Some(u64::MAX))
        .into()
}

/// `?limit=` of the event log.
pub(crate) fn events_limit_query() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .description(Some(format!(
            "How many entries at most, 1–{MAX_LOG_PAGE} (default {DEFAULT_EVENTS_PAGE})."
        )))
        .minimum(Some(1))
        .maximum(Some(MAX_LOG_PAGE))
        .into()
}

/// `?dropId=` of the event log.
pub(crate) fn drop_id_query() -> Schema {
    uuid("Only this drop's entries (404 `DROP_NOT_FOUND` when there is no such drop).")
}

/// Every `action` of a `dropUpdated` log entry.
pub(crate) const DROP_ACTIONS: [DropAction; 4] = [
    DropAction::Edited,
    DropAction::Paused,
    DropAction::Resumed,
    DropAction::Ended,
];

/// `action` of a `dropUpdated` log entry.
pub(crate) fn drop_action() -> Schema {
    let names: Vec<String> = DROP_ACTIONS
        .iter()
        .filter_map(|a| match serde_json::to_value(a) {
            Ok(serde_json::Value::String(name)) => Some(name),
            _ => None,
        })
        .collect();
    string("What the admin did: edited its fields, paused, resumed or ended it.")
        .enum_values(Some(names))
        .into()
}

/// Every sale mode, as the wire names them.
pub(crate) const SALE_MODES: [SaleMode; 2] = [SaleMode::FirstCome, SaleMode::Draw];

/// The wire name of a sale mode (`firstCome`, `draw`).
pub(crate) fn mode_name(mode: SaleMode) -> &'static str {
    match mode {
        SaleMode::Draw => "draw",
        // A mode this layer was built without is shown as the default.
        _ => "firstCome",
    }
}

/// `mode` of a drop.
pub(crate) fn mode_out() -> Schema {
    string(
        "How the drop first gives its units out: `firstCome` (reserve from the start) or `draw` \
         (enter until `drawAt`; a verifiable draw then gives the units out, and what is left \
         sells first come).",
    )
    .enum_values(Some(SALE_MODES.map(mode_name)))
    .into()
}

/// `mode` of a new drop.
pub(crate) fn mode_in() -> Schema {
    string(
        "`firstCome` (default) or `draw`. A draw drop needs `drawAt`; `drawAt` given without \
         `mode` makes a draw drop.",
    )
    .enum_values(Some(SALE_MODES.map(mode_name)))
    .into()
}

/// `drawAt` of a new drop.
pub(crate) fn draw_at_in() -> Schema {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .pattern(Some(DATE_TIME_PATTERN))
        .description(Some(
            "When a draw drop draws (RFC 3339): entries are taken from the start until then. \
             The server answers 422 when it is given for a `firstCome` drop, missing for a \
             `draw` drop, not after `startsAt`, not before `endsAt`, not in the future, or \
             outside 1970-01-01T00:00:00Z – 9999-12-31T23:59:59Z: rules between fields and \
             the clock, which a schema cannot state.",
        ))
        .into()
}

/// `beaconName` of a new drop.
pub(crate) fn beacon_name_in() -> Schema {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .description(Some(format!(
            "The public randomness a draw drop mixes into its draw, by name (say, a drand round \
             due after `drawAt`): 1–{MAX_BEACON_NAME} characters once trimmed, no control \
             characters. A draw drop only (422 otherwise)."
        )))
        .pattern(Some(beacon_name_pattern()))
        .into()
}

/// Every outcome of an entry.
pub(crate) const OUTCOMES: [EntryOutcome; 3] =
    [EntryOutcome::Won, EntryOutcome::Waiting, EntryOutcome::Lost];

/// The wire name of an entry's outcome.
pub(crate) fn outcome_name(outcome: EntryOutcome) -> &'static str {
    match outcome {
        EntryOutcome::Won => "won",
        EntryOutcome::Waiting => "waiting",
        // `Lost`, and any outcome this layer was built without: the entry
        // has no hold and no place.
        _ => "lost",
    }
}

/// `outcome` of an entry.
pub(crate) fn outcome() -> Schema {
    let mut names: Vec<Option<&'static str>> = OUTCOMES.map(outcome_name).map(Some).to_vec();
    names.push(None);
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .description(Some(
            "What the draw gave the entry: `won` (an offered hold, `reservationId`), `waiting` \
             (a place in the variant's line) or `lost`; `null` before the draw.",
        ))
        .enum_values(Some(names))
        .into()
}

/// A hex string of `digits` digits (a seed, a hash, a receipt).
pub(crate) fn hex(description: &str, digits: usize) -> Schema {
    string(description)
        .pattern(Some(format!("^[0-9a-f]{{{digits}}}$")))
        .into()
}

/// `seedHash`.
pub(crate) fn seed_hash() -> Schema {
    hex(
        "`sha256(seed)` (64 hex digits): the commitment published when the drop was made.",
        64,
    )
}

/// `seed`.
pub(crate) fn seed() -> Schema {
    hex(
        "The draw's secret seed (64 hex digits), revealed by the draw.",
        64,
    )
}

/// `entryListHash`.
pub(crate) fn entry_list_hash() -> Schema {
    hex("`sha256` of the canonical entry list (64 hex digits).", 64)
}

/// `receipt`.
pub(crate) fn receipt() -> Schema {
    hex(
        "The entry's receipt (hex): how its owner finds it in the published entry list.",
        RECEIPT_DIGITS,
    )
}

/// Hex digits of a receipt.
pub(crate) const RECEIPT_DIGITS: usize = 2 * std::mem::size_of::<drop_core::Receipt>();

/// `beacon` of a published draw.
pub(crate) fn beacon() -> Schema {
    string("The public randomness mixed into the draw's key (hex); left out when none.")
        .pattern(Some("^(?:[0-9a-f]{2}){1,256}$"))
        .into()
}

/// Every error code, the store's and the web layer's.
pub(crate) fn error_codes() -> Vec<&'static str> {
    ERROR_CODES.iter().chain(WEB_ERROR_CODES).copied().collect()
}

/// `error` of an error body.
pub(crate) fn error_code() -> Schema {
    string("Stable machine code.")
        .enum_values(Some(error_codes()))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use drop_core::{Money, NewDrop, Username};
    use regex::Regex;

    fn re(pattern: &str) -> Regex {
        Regex::new(pattern).expect("a valid pattern")
    }

    /// Each pattern accepts exactly what the server's parser accepts, on
    /// the edges of every rule.
    #[test]
    fn patterns_agree_with_the_parsers() {
        let name = re(&name_pattern());
        let long = "n".repeat(MAX_NAME);
        let too_long = "n".repeat(MAX_NAME + 1);
        let padded = format!("  {long}\t\u{3000}");
        for raw in [
            "a",
            " a ",
            "a b",
            &long,
            &too_long,
            &padded,
            "",
            "  ",
            "\t",
            "a\u{0}b",
            "a\nb",
            "\u{85}a",
            "a\u{9f}",
            "é",
            "\u{2028}x\u{2028}",
        ] {
            let server = NewDrop::new(raw, Money::ZERO, 1).validate().is_ok();
            assert_eq!(name.is_match(raw), server, "name {raw:?}");
        }

        let user = re(&username_pattern());
        let query = re(&username_query_pattern());
        let max = "u".repeat(USERNAME_MAX);
        let over = "u".repeat(USERNAME_MAX + 1);
        for raw in [
            "abc",
            " abc ",
            "ab",
            &max,
            &over,
            "a_b9",
            "a b c",
            "émile",
            "abc!",
            "",
            " ",
            "\u{a0}abc\u{2029}",
        ] {
            let server = Username::parse(raw).is_ok();
            assert_eq!(user.is_match(raw), server, "username {raw:?}");
            let blank = raw.trim().is_empty();
            assert_eq!(query.is_match(raw), server || blank, "?username={raw:?}");
        }

        let price = re(&price_pattern());
        for raw in [
            "0",
            "1",
            "1.5",
            "1.50",
            "199.99",
            "1.234",
            ".5",
            "5.",
            "abc",
            "-1",
            "1e3",
            "1000000000",
            "1000000000.00",
            "1000000000.01",
            "1000000001",
            "999999999.99",
            "000999999999",
            "0000999999999",
            "001000000000",
            "0001000000000",
            " 5 ",
            "٣",
        ] {
            let server = Money::parse_decimal(raw).is_ok();
            assert_eq!(price.is_match(raw), server, "price {raw:?}");
        }

        // Whatever the date-time pattern lets through, the server reads.
        let at = re(DATE_TIME_PATTERN);
        for raw in [
            "2030-01-01T00:00:00Z",
            "2030-01-01t00:00:00.123456789z",
            "1970-01-01T00:00:00+23:59",
            "0001-12-31T23:59:60-00:00",
        ] {
            assert!(at.is_match(raw), "{raw}");
            let json = format!("\"{raw}\"");
            serde_json::from_str::<chrono::DateTime<chrono::Utc>>(&json)
                .unwrap_or_else(|e| panic!("{raw}: {e}"));
        }
        for raw in [
            "",
            "yesterday",
            "2030-13-01T00:00:00Z",
            "2030-01-01 00:00:00Z",
        ] {
            assert!(!at.is_match(raw), "{raw}");
        }
    }

    /// Every code this crate answers with is in the document's enum: the
    /// sources are scanned for the codes they pass to `ApiError`.
    #[test]
    fn every_code_used_is_documented() {
        let sources = [
            include_str!("error.rs"),
            include_str!("extract.rs"),
            include_str!("routes.rs"),
            include_str!("admin_routes.rs"),
            include_str!("purchase_routes.rs"),
            include_str!("waitlist_routes.rs"),
            include_str!("idempotency.rs"),
            include_str!("state.rs"),
            include_str!("health.rs"),
            include_str!("ws.rs"),
            include_str!("limit.rs"),
        ];
        let literal = re(r#""([A-Z][A-Z_]{3,})""#);
        let known = error_codes();
        for source in sources {
            let code = source.split("#[cfg(test)]").next().unwrap();
            for cap in literal.captures_iter(code) {
                let found = &cap[1];
                if matches!(found, "GET" | "POST" | "DELETE") {
                    continue;
                }
                assert!(
                    known.contains(&found),
                    "{found} is not in the document's error enum"
                );
            }
        }
    }
}
