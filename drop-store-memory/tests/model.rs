//! Proptest state-machine test: random operation sequences against the
//! memory store and a small reference model, comparing every result and
//! checking every invariant after every step.
//!
//! 256 cases by default; `PROPTEST_CASES=5000 cargo test -p drop-store-memory --test model`
//! runs more.

use std::sync::Arc;
use std::time::Duration;

use drop_core::{Buyer, BuyerId};
use drop_core::{
    DropError, DropId, InventoryStore, ManualClock, Money, NewDrop, ReservationId,
    ReservationStatus, Username,
};
use drop_store_memory::MemoryStore;
use proptest::prelude::*;
use proptest::test_runner::Config;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};

const USERS: usize = 4;
const MAX_DROPS: usize = 3;
/// The store's retention of ended holds, short so that sequences reach it.
const RETENTION_SECS: u64 = 45;

#[derive(Debug, Clone)]
enum Op {
    CreateDrop { stock: u32, hold_secs: u64 },
    Reserve { drop: usize, user: usize },
    Purchase { hold: usize, user: usize },
    Release { hold: usize, user: usize },
    Advance { secs: u64 },
    ExpireDue,
}

/// What the model says an operation returns.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Created,
    /// A new hold (its index in creation order) or the caller's existing one.
    Reserved {
        hold: usize,
        created: bool,
    },
    Purchased,
    Released,
    Expired(usize),
    Err(&'static str),
    Nothing,
}

#[derive(Debug, Clone)]
struct MDrop {
    total: u32,
    hold_secs: u64,
}

#[derive(Debug, Clone)]
struct MHold {
    drop: usize,
    user: usize,
    status: ReservationStatus,
    expires: u64,
}

#[derive(Debug, Clone, Default)]
struct Model {
    now: u64,
    drops: Vec<MDrop>,
    holds: Vec<MHold>,
    last: Option<Outcome>,
}

impl Model {
    fn count(&self, drop: usize, status: ReservationStatus) -> u32 {
        self.holds
            .iter()
            .filter(|h| h.drop == drop && h.status == status)
            .count() as u32
    }

    /// Holds of `drop` whose status, as time sees it, is `status`.
    fn count_effective(&self, drop: usize, status: ReservationStatus) -> u32 {
        self.holds
            .iter()
            .filter(|h| h.drop == drop && self.effective(h) == status)
            .count() as u32
    }

    fn effective(&self, h: &MHold) -> ReservationStatus {
        if h.status == ReservationStatus::Active && self.now >= h.expires {
            ReservationStatus::Expired
        } else {
            h.status
        }
    }

    /// Released or expired, and past its retention: the store answers as
    /// if it never existed.
    fn gone(&self, h: &MHold) -> bool {
        matches!(
            self.effective(h),
            ReservationStatus::Released | ReservationStatus::Expired
        ) && self.now >= h.expires + RETENTION_SECS
    }

    fn expire_due_of(&mut self, drop: Option<usize>) -> usize {
        let now = self.now;
        let mut n = 0;
        for h in &mut self.holds {
            if drop.is_none_or(|d| d == h.drop)
                && h.status == ReservationStatus::Active
                && now >= h.expires
            {
                h.status = ReservationStatus::Expired;
                n += 1;
            }
        }
        n
    }

    fn end(&mut self, hold: usize, user: usize, to: ReservationStatus) -> Outcome {
        let h = &self.holds[hold];
        if self.gone(h) {
            return Outcome::Err("RESERVATION_NOT_FOUND");
        }
        if h.user != user {
            return Outcome::Err("NOT_OWNER");
        }
        match self.effective(h) {
            ReservationStatus::Active => {
                self.holds[hold].status = to;
                if to == ReservationStatus::Purchased {
                    Outcome::Purchased
                } else {
                    Outcome::Released
                }
            }
            ReservationStatus::Purchased => Outcome::Err("ALREADY_PURCHASED"),
            ReservationStatus::Released => Outcome::Err("ALREADY_RELEASED"),
            ReservationStatus::Expired => Outcome::Err("RESERVATION_EXPIRED"),
        }
    }
}

struct Reference;

impl ReferenceStateMachine for Reference {
    type State = Model;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Op> {
        let create = (1u32..4, 1u64..6).prop_map(|(stock, h)| Op::CreateDrop {
            stock,
            hold_secs: h * 10,
        });
        let advance = (1u64..40).prop_map(|secs| Op::Advance { secs });
        if state.drops.is_empty() {
            return prop_oneof![create, advance].boxed();
        }
        let drops = state.drops.len();
        let reserve = (0..drops, 0..USERS).prop_map(|(drop, user)| Op::Reserve { drop, user });
        if state.holds.is_empty() {
            return prop_oneof![1 => create, 4 => reserve, 1 => advance].boxed();
        }
        let holds = state.holds.len();
        // Mostly the owner, sometimes a stranger.
        let actor = |state: &Model| {
            let owners: Vec<usize> = state.holds.iter().map(|h| h.user).collect();
            (0..owners.len(), prop::bool::weighted(0.85), 0..USERS)
                .prop_map(move |(hold, own, other)| (hold, if own { owners[hold] } else { other }))
        };
        prop_oneof![
            1 => create,
            5 => reserve,
            3 => actor(state).prop_map(|(hold, user)| Op::Purchase { hold, user }),
            2 => actor(state).prop_map(|(hold, user)| Op::Release { hold, user }),
            2 => advance,
            1 => Just(Op::ExpireDue),
            1 => (0..holds).prop_map(|hold| Op::Purchase { hold, user: 0 }),
        ]
        .boxed()
    }

    fn preconditions(state: &Model, op: &Op) -> bool {
        match op {
            Op::CreateDrop { .. } => state.drops.len() < MAX_DROPS,
            Op::Reserve { drop, .. } => *drop < state.drops.len(),
            Op::Purchase { hold, .. } | Op::Release { hold, .. } => *hold < state.holds.len(),
            Op::Advance { .. } | Op::ExpireDue => true,
        }
    }

    fn apply(mut s: Model, op: &Op) -> Model {
        let outcome = match *op {
            Op::CreateDrop { stock, hold_secs } => {
                s.drops.push(MDrop {
                    total: stock,
                    hold_secs,
                });
                Outcome::Created
            }
            Op::Reserve { drop, user } => {
                let now = s.now;
                let existing = s.holds.iter().position(|h| {
                    h.drop == drop
                        && h.user == user
                        && h.status == ReservationStatus::Active
                        && now < h.expires
                });
                if let Some(hold) = existing {
                    Outcome::Reserved {
                        hold,
                        created: false,
                    }
                } else {
                    s.expire_due_of(Some(drop));
                    let used = s.count(drop, ReservationStatus::Active)
                        + s.count(drop, ReservationStatus::Purchased);
                    if used >= s.drops[drop].total {
                        Outcome::Err("OUT_OF_STOCK")
                    } else {
                        s.holds.push(MHold {
                            drop,
                            user,
                            status: ReservationStatus::Active,
                            expires: now + s.drops[drop].hold_secs,
                        });
                        Outcome::Reserved {
                            hold: s.holds.len() - 1,
                            created: true,
                        }
                    }
                }
            }
            Op::Purchase { hold, user } => s.end(hold, user, ReservationStatus::Purchased),
            Op::Release { hold, user } => s.end(hold, user, ReservationStatus::Released),
            Op::Advance { secs } => {
                s.now += secs;
                Outcome::Nothing
            }
            Op::ExpireDue => Outcome::Expired(s.expire_due_of(None)),
        };
        s.last = Some(outcome);
        s
    }
}

struct Real {
    rt: tokio::runtime::Runtime,
    clock: ManualClock,
    store: MemoryStore,
    drops: Vec<DropId>,
    holds: Vec<ReservationId>,
}

/// Buyer `i`: an id that is no username, and a display name shared with
/// other buyers, so that a store keying anything by the name parts from
/// the model.
fn user(i: usize) -> Buyer {
    Buyer::new(
        BuyerId::parse(&format!("auth0|{i}")).unwrap(),
        Username::parse(&format!("name{}", i % 2)).unwrap(),
    )
}

fn outcome_of<T>(r: Result<T, DropError>, ok: impl FnOnce(T) -> Outcome) -> Outcome {
    match r {
        Ok(v) => ok(v),
        Err(e) => Outcome::Err(e.code()),
    }
}

impl StateMachineTest for Real {
    type SystemUnderTest = Self;
    type Reference = Reference;

    fn init_test(_: &Model) -> Self {
        let clock = ManualClock::fixed();
        Real {
            rt: tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
            store: MemoryStore::builder()
                .clock(Arc::new(clock.clone()))
                .retention(Duration::from_secs(RETENTION_SECS))
                .build(),
            clock,
            drops: Vec::new(),
            holds: Vec::new(),
        }
    }

    fn apply(mut sut: Self, model: &Model, op: Op) -> Self {
        let store = sut.store.clone();
        let got = match op {
            Op::CreateDrop { stock, hold_secs } => {
                let new = NewDrop::new("Model drop", Money::ZERO, stock)
                    .hold(Duration::from_secs(hold_secs));
                let state = sut.rt.block_on(store.create_drop(new)).unwrap();
                sut.drops.push(state.drop.id);
                Outcome::Created
            }
            Op::Reserve { drop, user: u } => {
                let r = sut.rt.block_on(store.reserve(sut.drops[drop], &user(u)));
                outcome_of(r, |r| {
                    if r.created {
                        sut.holds.push(r.reservation.id);
                    }
                    let hold = sut
                        .holds
                        .iter()
                        .position(|id| *id == r.reservation.id)
                        .expect("known hold");
                    Outcome::Reserved {
                        hold,
                        created: r.created,
                    }
                })
            }
            Op::Purchase { hold, user: u } => outcome_of(
                sut.rt
                    .block_on(store.purchase(sut.holds[hold], &user(u).id)),
                |_| Outcome::Purchased,
            ),
            Op::Release { hold, user: u } => outcome_of(
                sut.rt.block_on(store.release(sut.holds[hold], &user(u).id)),
                |_| Outcome::Released,
            ),
            Op::Advance { secs } => {
                sut.clock.advance(Duration::from_secs(secs));
                Outcome::Nothing
            }
            Op::ExpireDue => Outcome::Expired(sut.rt.block_on(store.expire_due(1000)).unwrap()),
        };
        assert_eq!(Some(&got), model.last.as_ref(), "result of {op:?}");
        sut
    }

    fn check_invariants(sut: &Self, model: &Model) {
        sut.store.verify_invariants().unwrap();
        for (i, id) in sut.drops.iter().enumerate() {
            let stock = sut.rt.block_on(sut.store.get_drop(*id)).unwrap().stock;
            assert!(stock.reserved + stock.sold <= stock.total, "oversold");
            // Overdue holds read as free before they are swept.
            assert_eq!(
                stock.reserved,
                model.count_effective(i, ReservationStatus::Active),
                "reserved of drop {i}"
            );
            assert_eq!(
                stock.sold,
                model.count(i, ReservationStatus::Purchased),
                "sold of drop {i}"
            );
            // At most one active, unexpired hold per (drop, user).
            for u in 0..USERS {
                let active = sut
                    .rt
                    .block_on(sut.store.active_hold(*id, &user(u).id))
                    .unwrap();
                let expected = model.holds.iter().position(|h| {
                    h.drop == i && h.user == u && model.effective(h) == ReservationStatus::Active
                });
                assert_eq!(active.map(|r| r.id), expected.map(|h| sut.holds[h]));
            }
        }
        for (i, id) in sut.holds.iter().enumerate() {
            let got = sut.rt.block_on(sut.store.get_reservation(*id));
            let h = &model.holds[i];
            if model.gone(h) {
                assert!(
                    matches!(got, Err(DropError::ReservationNotFound { .. })),
                    "hold {i} is past its retention: {got:?}"
                );
            } else {
                assert_eq!(
                    got.unwrap().status,
                    model.effective(h),
                    "status of hold {i}"
                );
            }
        }
        // What the store keeps is never more than the model says is visible.
        let visible = model.holds.iter().filter(|h| !model.gone(h)).count();
        assert!(
            sut.store.kept_holds() >= visible,
            "a visible hold was pruned"
        );
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

prop_state_machine! {
    #![proptest_config(Config { cases: cases(), failure_persistence: None, ..Config::default() })]

    #[test]
    fn memory_store_matches_the_model(sequential 1..60 => Real);
}
