//! One variant's waiting list as the ledger keeps it: places by ticket,
//! and the units set aside for the head.
//!
//! The rules (who is served, when, in what order) live in the ledger's
//! `serve_line`; this is only the data and its arithmetic.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use drop_core::{Buyer, DropId, VariantId, WaitlistPlace};

/// A buyer waiting in a line.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    /// Who waits, with the display name they joined under (the offered
    /// hold carries it).
    pub(crate) buyer: Buyer,
    /// How many units they want, offered as one hold.
    pub(crate) quantity: u32,
    pub(crate) joined_at: DateTime<Utc>,
}

/// A variant's line.
#[derive(Debug, Default)]
pub(crate) struct Line {
    /// The places, in ticket order: the first is the head.
    places: BTreeMap<u64, Place>,
    /// Units set aside for the head, counted in the variant's `reserved`.
    /// Always 0 while the line is empty.
    pub(crate) set_aside: u32,
}

impl Line {
    pub(crate) fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.places.len()
    }

    /// The head's ticket and place.
    pub(crate) fn head(&self) -> Option<(u64, &Place)> {
        self.places.first_key_value().map(|(t, p)| (*t, p))
    }

    pub(crate) fn get(&self, ticket: u64) -> Option<&Place> {
        self.places.get(&ticket)
    }

    pub(crate) fn insert(&mut self, ticket: u64, place: Place) {
        self.places.insert(ticket, place);
    }

    /// Fills an empty line at once from places in ticket order (a draw's
    /// losers): one bulk build instead of a search per place.
    pub(crate) fn fill(&mut self, places: impl Iterator<Item = (u64, Place)>) {
        debug_assert!(self.places.is_empty(), "only an empty line is filled");
        self.places = places.collect();
    }

    pub(crate) fn remove(&mut self, ticket: u64) -> Option<Place> {
        self.places.remove(&ticket)
    }

    /// The places in line order.
    pub(crate) fn places(&self) -> impl Iterator<Item = (u64, &Place)> {
        self.places.iter().map(|(t, p)| (*t, p))
    }

    /// The place with `ticket` as a client sees it: its position counts
    /// the places ahead of it (a walk over them: lines are read far less
    /// often than reserves run, and a balanced counting tree is not worth
    /// its weight here), and only the head shows units set aside.
    pub(crate) fn view(
        &self,
        drop_id: DropId,
        variant_id: VariantId,
        ticket: u64,
    ) -> Option<WaitlistPlace> {
        let place = self.places.get(&ticket)?;
        let ahead = self.places.range(..ticket).count();
        let mut view = WaitlistPlace::new(
            drop_id,
            variant_id,
            place.buyer.clone(),
            place.quantity,
            ticket,
            place.joined_at,
        );
        view.position = u32::try_from(ahead + 1).unwrap_or(u32::MAX);
        view.set_aside = if ahead == 0 { self.set_aside } else { 0 };
        Some(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drop_core::{BuyerId, Username};

    fn place(name: &str, quantity: u32) -> Place {
        Place {
            buyer: Buyer::new(
                BuyerId::parse(name).unwrap(),
                Username::parse(name).unwrap(),
            ),
            quantity,
            joined_at: DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn positions_follow_tickets_and_only_the_head_shows_units_set_aside() {
        let (d, v) = (DropId::new(), VariantId::new());
        let mut line = Line::default();
        line.insert(7, place("bob", 2));
        line.insert(3, place("ann", 1));
        line.insert(12, place("cat", 1));
        line.set_aside = 1;
        assert_eq!(line.head().map(|(t, _)| t), Some(3));
        let bob = line.view(d, v, 7).unwrap();
        assert_eq!((bob.position, bob.set_aside, bob.quantity), (2, 0, 2));
        assert_eq!(bob.display_name.as_str(), "bob");
        let ann = line.view(d, v, 3).unwrap();
        assert_eq!((ann.position, ann.set_aside), (1, 1));
        line.remove(3);
        assert_eq!(line.view(d, v, 12).unwrap().position, 2);
        assert_eq!(line.view(d, v, 7).unwrap().position, 1);
        assert!(line.view(d, v, 3).is_none());
        assert_eq!(line.len(), 2);
    }
}
