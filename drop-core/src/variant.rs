//! Variants (sizes, colours), their stock, and what a reserve asks for.
//!
//! A drop sells one or more variants, each with its own stock. Drop-level
//! figures ([`Stock`](crate::Stock)) are the sums over its variants. A
//! buyer may hold plus have bought at most the drop's `maxPerBuyer` units,
//! across its variants.

use serde::{Deserialize, Serialize};

use crate::{DropError, MAX_STOCK, VariantId};

/// Most variants a drop may have.
pub const MAX_VARIANTS: usize = 100;
/// Longest variant name, in characters.
pub const MAX_VARIANT_NAME: usize = 50;
/// The largest `maxPerBuyer` a drop may set (and so the largest quantity
/// one hold may take).
pub const MAX_PER_BUYER: u32 = 100;
/// `maxPerBuyer` when a drop does not choose one.
pub const DEFAULT_MAX_PER_BUYER: u32 = 1;
/// The name of the one variant of a drop created without variants.
pub const DEFAULT_VARIANT_NAME: &str = "Standard";

/// A variant as a drop is created with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct NewVariant {
    /// Display name (trimmed; 1–50 characters, unique within the drop).
    pub name: String,
    /// Units of it for sale (0–1,000,000; a drop's variants sum to 1 or
    /// more).
    pub total_stock: u32,
}

impl NewVariant {
    /// A variant with `total_stock` units.
    pub fn new(name: impl Into<String>, total_stock: u32) -> Self {
        Self {
            name: name.into(),
            total_stock,
        }
    }

    /// Checks the variant's own rules; `index` places it in the error's
    /// field (`variants[2].name`).
    pub(crate) fn validate(&self, index: usize) -> Result<(), DropError> {
        let name = self.name.trim();
        let len = name.chars().count();
        if len == 0 || len > MAX_VARIANT_NAME {
            return Err(DropError::invalid(
                format!("variants[{index}].name"),
                format!("must be 1 to {MAX_VARIANT_NAME} characters"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(DropError::invalid(
                format!("variants[{index}].name"),
                "must not contain control characters",
            ));
        }
        if self.total_stock > MAX_STOCK {
            return Err(DropError::invalid(
                format!("variants[{index}].totalStock"),
                format!("must be between 0 and {MAX_STOCK}"),
            ));
        }
        Ok(())
    }
}

/// A variant of a drop: its id and name. Its counters are a
/// [`VariantStock`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct VariantInfo {
    /// Its id.
    pub id: VariantId,
    /// Display name, unique within the drop.
    pub name: String,
}

impl VariantInfo {
    /// A variant as a store reads it back.
    pub fn new(id: VariantId, name: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
        }
    }
}

/// The counters of one variant. `available = total − reserved − sold`.
///
/// `reserved` counts units under an active hold and units set aside for
/// the head of the variant's waiting list (see [`crate::waitlist`]), so
/// `available` is 0 while anyone waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct VariantStock {
    /// The variant.
    pub id: VariantId,
    /// Units in all.
    pub total: u32,
    /// Units under an active hold.
    pub reserved: u32,
    /// Units sold (cancelled purchases not counted).
    pub sold: u32,
    /// Buyers in the variant's waiting list.
    #[serde(default)]
    pub waitlist_length: u32,
}

impl VariantStock {
    /// Counters as a store keeps them, with nobody waiting; set
    /// [`waitlist_length`](Self::waitlist_length) afterwards.
    pub fn new(id: VariantId, total: u32, reserved: u32, sold: u32) -> Self {
        Self {
            id,
            total,
            reserved,
            sold,
            waitlist_length: 0,
        }
    }

    /// Units free to reserve.
    pub fn available(&self) -> u32 {
        self.total.saturating_sub(self.reserved + self.sold)
    }
}

/// What a reserve asks for: units of one variant.
///
/// The default is one unit of a drop's only variant: what a reserve meant
/// before drops had variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ReserveRequest {
    /// The variant; required when the drop has more than one.
    pub variant_id: Option<VariantId>,
    /// How many units (1 to the drop's `maxPerBuyer`).
    pub quantity: u32,
}

impl Default for ReserveRequest {
    fn default() -> Self {
        Self {
            variant_id: None,
            quantity: 1,
        }
    }
}

impl ReserveRequest {
    /// One unit of the drop's only variant.
    pub fn new() -> Self {
        Self::default()
    }

    /// Names the variant.
    pub fn variant(mut self, id: VariantId) -> Self {
        self.variant_id = Some(id);
        self
    }

    /// Sets how many units.
    pub fn quantity(mut self, quantity: u32) -> Self {
        self.quantity = quantity;
        self
    }
}
