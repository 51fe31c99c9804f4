//! The draw runner: makes each draw drop's draw when its `drawAt` comes.
//!
//! It sleeps until the store's next `drawAt`, wakes early when a drop is
//! created or changed (its draw may be sooner), and calls
//! [`InventoryStore::run_draw`] on every due drop. Any number of runners
//! (one per instance) may run against one store: the store makes each
//! draw exactly once, and a runner whose call finds it made already moves
//! on. A drop that names a beacon is drawn once its [`BeaconSource`] has
//! the value.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::time::sleep_until;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::scheduler::{Timing, back_off, stall_floor};
use crate::{
    Beacon, Clock, DropError, DropEvent, DropInfo, InventoryStore, SchedulerHandle, SystemClock,
};

/// Where a runner gets the value of the public randomness a draw drop
/// names ([`DropInfo::beacon_name`]), such as a drand round.
#[async_trait]
pub trait BeaconSource: Send + Sync + Debug {
    /// The value of the beacon `name` for `drop`: `None` while it is not
    /// out yet (the runner asks again later).
    async fn beacon(&self, drop: &DropInfo, name: &str) -> Result<Option<Beacon>, DropError>;
}

/// Beacon values known in advance or pasted in by an operator, by name:
/// what tests use (a recorded value), and a way to draw a drop whose beacon
/// was fetched by hand. A name it does not know is "not out yet".
#[derive(Debug, Clone, Default)]
pub struct RecordedBeacons {
    values: HashMap<String, Beacon>,
}

impl RecordedBeacons {
    /// No values.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `value` for the beacon named `name`.
    pub fn with(mut self, name: impl Into<String>, value: Beacon) -> Self {
        self.values.insert(name.into(), value);
        self
    }
}

#[async_trait]
impl BeaconSource for RecordedBeacons {
    async fn beacon(&self, _drop: &DropInfo, name: &str) -> Result<Option<Beacon>, DropError> {
        Ok(self.values.get(name).cloned())
    }
}

/// Drives [`InventoryStore::run_draw`] at each drop's `drawAt`.
#[derive(Debug)]
pub struct DrawRunner {
    store: Arc<dyn InventoryStore>,
    clock: Arc<dyn Clock>,
    beacons: Arc<dyn BeaconSource>,
    max_sleep: Duration,
    min_sleep: Duration,
    retry_backoff: Duration,
}

/// How many due drops one look at the store handles.
const BATCH: usize = 16;
/// The longest wait between rounds that find a draw due and cannot make
/// it (another instance is drawing it, or its beacon is not out).
const MAX_STALL_WAIT: Duration = Duration::from_secs(2);

impl DrawRunner {
    /// A runner for `store`, reading time from the system clock, knowing
    /// no beacon values.
    pub fn new(store: Arc<dyn InventoryStore>) -> Self {
        Self {
            store,
            clock: Arc::new(SystemClock),
            beacons: Arc::new(RecordedBeacons::new()),
            max_sleep: Duration::from_secs(30),
            min_sleep: Duration::from_millis(5),
            retry_backoff: Duration::from_millis(200),
        }
    }

    /// The clock the store keeps time by. Defaults to the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Where beacon values come from. Defaults to none known: a drop
    /// that names a beacon is never drawn.
    pub fn beacons(mut self, beacons: Arc<dyn BeaconSource>) -> Self {
        self.beacons = beacons;
        self
    }

    /// The longest sleep between looks, a safety net for drops created by
    /// a process whose events this one did not hear. Defaults to 30 s.
    pub fn max_sleep(mut self, d: Duration) -> Self {
        self.max_sleep = d;
        self
    }

    /// Starts the runner on the current tokio runtime; it stops when
    /// `cancel` is cancelled.
    pub fn spawn(self, cancel: CancellationToken) -> SchedulerHandle {
        SchedulerHandle::new(tokio::spawn(self.run(cancel.clone())), cancel)
    }

    /// Runs until `cancel` is cancelled.
    pub async fn run(self, cancel: CancellationToken) {
        // Subscribe first, so that a drop created during a round is heard of.
        let mut events = self.store.subscribe();
        let mut failures = 0u32;
        let mut stalls = 0u32;
        loop {
            let round = match self.round().await {
                Ok(round) => {
                    failures = 0;
                    round
                }
                Err(err) => {
                    if back_off(
                        &err,
                        "draw round",
                        &mut failures,
                        self.retry_backoff,
                        &cancel,
                    )
                    .await
                    {
                        continue;
                    }
                    return;
                }
            };
            // A draw still due after the round is being made by another
            // instance, or waits for its beacon: look again, less often
            // each time, rather than at once.
            stalls = if round.next.is_some_and(|t| t <= round.now) {
                stalls.saturating_add(1)
            } else {
                0
            };
            let deadline = Timing {
                clock: self.clock.as_ref(),
                offset: round.now - round.taken_at,
                floor: stall_floor(self.min_sleep, stalls, MAX_STALL_WAIT),
                max_sleep: self.max_sleep,
            }
            .deadline_for(round.next);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = sleep_until(deadline) => break,
                    event = events.next() => match event {
                        // A new or changed drop may draw sooner.
                        Some(Ok(DropEvent::DropCreated { drop } | DropEvent::DropUpdated { drop }))
                            if drop.drop.draw_at.is_some() => break,
                        Some(Ok(_)) => {}
                        Some(Err(_)) => break,
                        None => {
                            tokio::select! {
                                () = cancel.cancelled() => return,
                                () = sleep_until(deadline) => break,
                            }
                        }
                    },
                }
            }
        }
    }

    /// Draws every due drop it can, then asks when the next draw is.
    async fn round(&self) -> Result<Round, DropError> {
        loop {
            let due = self.store.due_draws(BATCH).await?;
            let mut drawn = 0;
            for drop in &due {
                let beacon = match &drop.beacon_name {
                    None => None,
                    Some(name) => match self.beacons.beacon(drop, name).await? {
                        Some(value) => Some(value),
                        None => {
                            tracing::debug!(drop = %drop.id, beacon = %name, "beacon not out yet");
                            continue;
                        }
                    },
                };
                match self.store.run_draw(drop.id, beacon).await {
                    Ok(Some(summary)) => {
                        drawn += 1;
                        tracing::info!(
                            drop = %drop.id,
                            entries = summary.entries,
                            winners = summary.winners,
                            waiting = summary.waiting,
                            "drew"
                        );
                    }
                    // Another instance drew it first.
                    Ok(None) => {}
                    Err(err) if err.is_retryable() => return Err(err),
                    // A drop this runner cannot draw (a beacon value the
                    // store refuses) must not stop the others.
                    Err(err) => tracing::warn!(drop = %drop.id, error = %err, "draw failed"),
                }
            }
            // A full batch may hide more due drops; a batch that drew
            // nothing would only find the same ones again.
            if due.len() < BATCH || drawn == 0 {
                break;
            }
        }
        let next = self.store.next_draw_at().await?;
        let taken_at = self.clock.now();
        let now = self.store.store_time().await?.unwrap_or(taken_at);
        Ok(Round {
            next,
            now,
            taken_at,
        })
    }
}

/// What one round learnt.
struct Round {
    /// The store's next `drawAt` after it (in the past when a draw is
    /// still due).
    next: Option<DateTime<Utc>>,
    /// The store's time at the end of it.
    now: DateTime<Utc>,
    /// The runner's clock at the same moment.
    taken_at: DateTime<Utc>,
}
