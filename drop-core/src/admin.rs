//! Editing a drop after it was created.
//!
//! A [`DropPatch`] names only what changes. Its rules are checked in one
//! place, [`DropPatch::apply`], which every store calls inside its critical
//! section (the stock rule depends on the counters at that instant).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::{
    DropError, DropInfo, EARLIEST_INSTANT, LATEST_INSTANT, MAX_HOLD, MAX_NAME, MAX_PER_BUYER,
    MAX_STOCK, MIN_HOLD, Money, VariantId, VariantStock,
};

/// A new stock figure for one variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct VariantPatch {
    /// The variant.
    pub id: VariantId,
    /// Its new total (never below its reserved + sold units).
    pub total_stock: u32,
}

impl VariantPatch {
    /// Sets `id`'s total stock.
    pub fn new(id: VariantId, total_stock: u32) -> Self {
        Self { id, total_stock }
    }
}

/// What an admin changes in a drop; absent fields stay as they are.
///
/// The instants take `Some(None)` to clear them. A new hold length applies
/// to holds taken from then on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DropPatch {
    /// New display name.
    pub name: Option<String>,
    /// New price: only before the sale starts (`PRICE_LOCKED` after).
    pub price: Option<Money>,
    /// New opening instant (`Some(None)` clears it).
    pub starts_at: Option<Option<DateTime<Utc>>>,
    /// New closing instant (`Some(None)` clears it).
    pub ends_at: Option<Option<DateTime<Utc>>>,
    /// New per-buyer limit (1–100). Lowering it never takes back what
    /// buyers hold or bought; it limits what they may take next.
    pub max_per_buyer: Option<u32>,
    /// New hold length for holds taken from now on.
    pub hold: Option<Duration>,
    /// New total stock of a one-variant drop.
    pub total_stock: Option<u32>,
    /// New total stock per variant.
    pub variants: Vec<VariantPatch>,
}

impl DropPatch {
    /// A patch that changes nothing; add changes with the setters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Renames the drop.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Changes the price (before the start only).
    pub fn price(mut self, price: Money) -> Self {
        self.price = Some(price);
        self
    }

    /// Sets or clears the opening instant.
    pub fn starts_at(mut self, at: Option<DateTime<Utc>>) -> Self {
        self.starts_at = Some(at);
        self
    }

    /// Sets or clears the closing instant.
    pub fn ends_at(mut self, at: Option<DateTime<Utc>>) -> Self {
        self.ends_at = Some(at);
        self
    }

    /// Changes the per-buyer limit.
    pub fn max_per_buyer(mut self, max: u32) -> Self {
        self.max_per_buyer = Some(max);
        self
    }

    /// Changes the hold length of new holds.
    pub fn hold(mut self, hold: Duration) -> Self {
        self.hold = Some(hold);
        self
    }

    /// Changes the stock of a one-variant drop.
    pub fn total_stock(mut self, total: u32) -> Self {
        self.total_stock = Some(total);
        self
    }

    /// Changes one variant's stock.
    pub fn variant_stock(mut self, id: VariantId, total: u32) -> Self {
        self.variants.push(VariantPatch::new(id, total));
        self
    }

    /// Whether the patch names no change at all.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Applies the patch to `drop`, whose variants' counters are
    /// `variants` (in the drop's order), at `now`. Answers the drop and
    /// counters after it, or the first rule it breaks:
    ///
    /// - `INVALID_INPUT` naming the field (name, instants, a new `startsAt`
    ///   once the sale has started, limit, hold,
    ///   stock out of range; `totalStock` on a drop of several variants;
    ///   a variant named twice);
    /// - `VARIANT_NOT_FOUND` for a variant of another drop;
    /// - `PRICE_LOCKED` for a new price once the sale has started;
    /// - `STOCK_BELOW_COMMITTED` for a total below a variant's reserved +
    ///   sold units.
    ///
    /// `variants` must count held units exactly as the store does (an
    /// overdue hold not yet reclaimed still counts: it may be bought no
    /// more, but its units are not free until it ends).
    pub fn apply(
        &self,
        drop: &DropInfo,
        variants: &[VariantStock],
        now: DateTime<Utc>,
    ) -> Result<(DropInfo, Vec<VariantStock>), DropError> {
        let mut next = drop.clone();
        let mut stock = variants.to_vec();
        if let Some(name) = &self.name {
            let name = name.trim();
            let len = name.chars().count();
            if len == 0 || len > MAX_NAME {
                return Err(DropError::invalid(
                    "name",
                    format!("must be 1 to {MAX_NAME} characters"),
                ));
            }
            if name.chars().any(char::is_control) {
                return Err(DropError::invalid(
                    "name",
                    "must not contain control characters",
                ));
            }
            next.name = name.to_owned();
        }
        if let Some(price) = self.price
            && price != drop.price
        {
            if drop.price_locked(now) {
                return Err(DropError::PriceLocked { drop_id: drop.id });
            }
            next.price = price;
        }
        if let Some(at) = self.starts_at {
            // Once the sale has started its start is history: moving it
            // later would reopen the price to holds already taken.
            if at != drop.starts_at && drop.price_locked(now) {
                return Err(DropError::invalid(
                    "startsAt",
                    "the sale has started: its start can no longer change",
                ));
            }
            next.starts_at = at;
        }
        if let Some(at) = self.ends_at {
            next.ends_at = at;
        }
        for (field, at, was) in [
            ("startsAt", self.starts_at, drop.starts_at),
            ("endsAt", self.ends_at, drop.ends_at),
        ] {
            if let Some(Some(at)) = at
                && Some(at) != was
                && !(EARLIEST_INSTANT..=LATEST_INSTANT).contains(&at)
            {
                return Err(DropError::invalid(
                    field,
                    "must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z",
                ));
            }
        }
        if let (Some(s), Some(e)) = (next.starts_at, next.ends_at)
            && e <= s
        {
            return Err(DropError::invalid("endsAt", "must be after startsAt"));
        }
        if let Some(Some(e)) = self.ends_at
            && Some(e) != drop.ends_at
            && e <= now
        {
            return Err(DropError::invalid(
                "endsAt",
                "must be in the future (to end the sale now, end the drop)",
            ));
        }
        if let Some(max) = self.max_per_buyer {
            if max == 0 || max > MAX_PER_BUYER {
                return Err(DropError::invalid(
                    "maxPerBuyer",
                    format!("must be between 1 and {MAX_PER_BUYER}"),
                ));
            }
            next.max_per_buyer = max;
        }
        if let Some(hold) = self.hold {
            if !(MIN_HOLD..=MAX_HOLD).contains(&hold) {
                return Err(DropError::invalid(
                    "holdSeconds",
                    format!(
                        "must be between {} and {} seconds",
                        MIN_HOLD.as_secs_f64(),
                        MAX_HOLD.as_secs()
                    ),
                ));
            }
            next.hold = hold;
        }
        let mut changes: Vec<(VariantId, u32, String)> = Vec::new();
        if let Some(total) = self.total_stock {
            match stock.as_slice() {
                [only] => changes.push((only.id, total, "totalStock".to_owned())),
                _ => {
                    return Err(DropError::invalid(
                        "totalStock",
                        "the drop has several variants: set each one's stock in variants",
                    ));
                }
            }
        }
        for (i, v) in self.variants.iter().enumerate() {
            if self.variants[..i].iter().any(|w| w.id == v.id)
                || (self.total_stock.is_some() && changes[0].0 == v.id)
            {
                return Err(DropError::invalid(
                    format!("variants[{i}].id"),
                    "names a variant twice",
                ));
            }
            changes.push((v.id, v.total_stock, format!("variants[{i}].totalStock")));
        }
        for (id, total, field) in changes {
            if total > MAX_STOCK {
                return Err(DropError::invalid(
                    field,
                    format!("must be between 0 and {MAX_STOCK}"),
                ));
            }
            let Some(v) = stock.iter_mut().find(|v| v.id == id) else {
                return Err(DropError::VariantNotFound {
                    drop_id: drop.id,
                    variant_id: id,
                });
            };
            let committed = v.reserved + v.sold;
            if total < committed {
                return Err(DropError::StockBelowCommitted {
                    drop_id: drop.id,
                    variant_id: id,
                    committed,
                });
            }
            v.total = total;
        }
        let total: u64 = stock.iter().map(|v| u64::from(v.total)).sum();
        if total == 0 || total > u64::from(MAX_STOCK) {
            return Err(DropError::invalid(
                if stock.len() == 1 {
                    "totalStock"
                } else {
                    "variants"
                },
                format!("total stock must be between 1 and {MAX_STOCK}"),
            ));
        }
        next.total_stock = u32::try_from(total).expect("checked against MAX_STOCK");
        Ok((next, stock))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DropId, NewDrop, NewVariant};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn two_sizes(now: DateTime<Utc>) -> (DropInfo, Vec<VariantStock>) {
        NewDrop::with_variants(
            "Air",
            Money::from_minor(100).unwrap(),
            [NewVariant::new("M", 5), NewVariant::new("L", 5)],
        )
        .starts_at(t("2030-01-01T00:00:00Z"))
        .into_drop(DropId::new(), now)
        .unwrap()
    }

    #[test]
    fn price_changes_only_before_the_start() {
        let now = t("2029-06-01T00:00:00Z");
        let (drop, stock) = two_sizes(now);
        let cheaper = DropPatch::new().price(Money::from_minor(90).unwrap());
        let (after, _) = cheaper.apply(&drop, &stock, now).unwrap();
        assert_eq!(after.price, Money::from_minor(90).unwrap());
        let err = cheaper
            .apply(&drop, &stock, t("2030-01-01T00:00:00Z"))
            .unwrap_err();
        assert_eq!(err.code(), "PRICE_LOCKED");
        // The same price is no change, so no refusal.
        let same = DropPatch::new().price(drop.price);
        assert!(same.apply(&drop, &stock, t("2031-01-01T00:00:00Z")).is_ok());
    }

    #[test]
    fn a_started_sale_keeps_its_start() {
        let now = t("2029-06-01T00:00:00Z");
        let (drop, stock) = two_sizes(now);
        let later = DropPatch::new().starts_at(Some(t("2030-02-01T00:00:00Z")));
        assert!(later.apply(&drop, &stock, now).is_ok(), "before the start");
        let started = t("2030-01-01T00:00:01Z");
        let err = later.apply(&drop, &stock, started).unwrap_err();
        assert_eq!(err.field(), Some("startsAt"));
        let same = DropPatch::new().starts_at(drop.starts_at);
        assert!(same.apply(&drop, &stock, started).is_ok(), "no change");
    }

    #[test]
    fn stock_never_goes_below_what_is_committed() {
        let now = t("2029-06-01T00:00:00Z");
        let (drop, mut stock) = two_sizes(now);
        stock[0].reserved = 2;
        stock[0].sold = 1;
        let m = stock[0].id;
        let err = DropPatch::new()
            .variant_stock(m, 2)
            .apply(&drop, &stock, now)
            .unwrap_err();
        assert_eq!(err.code(), "STOCK_BELOW_COMMITTED");
        let (after, counters) = DropPatch::new()
            .variant_stock(m, 3)
            .apply(&drop, &stock, now)
            .unwrap();
        assert_eq!(counters[0].total, 3);
        assert_eq!(after.total_stock, 8);
        let err = DropPatch::new()
            .total_stock(9)
            .apply(&drop, &stock, now)
            .unwrap_err();
        assert_eq!(err.field(), Some("totalStock"));
        let err = DropPatch::new()
            .variant_stock(crate::VariantId::new(), 3)
            .apply(&drop, &stock, now)
            .unwrap_err();
        assert_eq!(err.code(), "VARIANT_NOT_FOUND");
    }

    #[test]
    fn bad_values_name_their_field() {
        let now = t("2029-06-01T00:00:00Z");
        let (drop, stock) = two_sizes(now);
        let cases = [
            (DropPatch::new().name(" "), "name"),
            (DropPatch::new().max_per_buyer(0), "maxPerBuyer"),
            (DropPatch::new().hold(Duration::ZERO), "holdSeconds"),
            (
                DropPatch::new().ends_at(Some(t("2029-12-31T00:00:00Z"))),
                "endsAt",
            ),
            (DropPatch::new().ends_at(Some(now)), "endsAt"),
        ];
        for (patch, field) in cases {
            assert_eq!(
                patch.apply(&drop, &stock, now).unwrap_err().field(),
                Some(field)
            );
        }
    }
}
