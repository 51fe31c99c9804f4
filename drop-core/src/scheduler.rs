//! The expiry scheduler: returns overdue units to sale on time, without
//! polling.
//!
//! It sleeps until the store's next due expiry, wakes early when a hold
//! that is due sooner is created (it listens to the store's events), and
//! expires due holds in batches. Stores reclaim overdue holds lazily as
//! well, so availability never depends on it; it exists so that stock comes
//! back, and clients hear of it, the moment a hold runs out.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::{Clock, DropEvent, InventoryStore, SystemClock};

/// Drives [`InventoryStore::expire_due`] at the right moments.
#[derive(Debug)]
pub struct ExpiryScheduler {
    store: Arc<dyn InventoryStore>,
    clock: Arc<dyn Clock>,
    batch_size: usize,
    max_sleep: Duration,
    min_sleep: Duration,
    retry_backoff: Duration,
}

impl ExpiryScheduler {
    /// A scheduler for `store`, reading time from the system clock.
    pub fn new(store: Arc<dyn InventoryStore>) -> Self {
        Self {
            store,
            clock: Arc::new(SystemClock),
            batch_size: 500,
            max_sleep: Duration::from_secs(30),
            min_sleep: Duration::from_millis(5),
            retry_backoff: Duration::from_millis(200),
        }
    }

    /// The clock the store keeps time by, used to turn the store's next
    /// expiry into a sleep. Defaults to the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How many holds one `expire_due` call may expire. Defaults to 500.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// The longest sleep between checks, a safety net for holds created by
    /// a process whose events this one did not hear. Defaults to 30 s.
    pub fn max_sleep(mut self, d: Duration) -> Self {
        self.max_sleep = d;
        self
    }

    /// Starts the scheduler on the current tokio runtime; it stops when
    /// `cancel` is cancelled.
    pub fn spawn(self, cancel: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(self.run(cancel))
    }

    /// Runs until `cancel` is cancelled.
    pub async fn run(self, cancel: CancellationToken) {
        // Subscribe before the first look at the store, so that a hold
        // created in between is heard of.
        let mut events = self.store.subscribe();
        let mut failures = 0u32;
        loop {
            let next = match self.sweep_then_next().await {
                Ok(next) => {
                    failures = 0;
                    next
                }
                Err(err) => {
                    failures = failures.saturating_add(1);
                    let backoff = self.retry_backoff * failures.min(25);
                    tracing::warn!(error = %err, ?backoff, "expiry sweep failed; retrying");
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(backoff) => continue,
                    }
                }
            };
            let mut target = next;
            let mut deadline = self.deadline_for(target);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = sleep_until(deadline) => break,
                    event = events.next() => match event {
                        Some(Ok(DropEvent::HoldCreated { expires_at, .. })) => {
                            if target.is_none_or(|t| expires_at < t) {
                                target = Some(expires_at);
                                deadline = self.deadline_for(target);
                            }
                        }
                        Some(Ok(_)) => {}
                        // Events were missed: the next expiry may have moved.
                        Some(Err(_)) => break,
                        // The store is gone; keep the safety-net sleep only.
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

    /// Expires everything due, in batches, then asks when the next one is.
    async fn sweep_then_next(&self) -> Result<Option<DateTime<Utc>>, crate::DropError> {
        loop {
            let n = self.store.expire_due(self.batch_size).await?;
            if n > 0 {
                tracing::debug!(expired = n, "expired holds");
            }
            if n < self.batch_size {
                break;
            }
        }
        self.store.next_expiry().await
    }

    fn deadline_for(&self, target: Option<DateTime<Utc>>) -> Instant {
        let wait = match target {
            None => self.max_sleep,
            Some(at) => (at - self.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::ZERO, self.max_sleep),
        };
        // A floor keeps a clock skew between this process and the store
        // (the database's clock) from turning into a busy loop.
        Instant::now() + wait.max(self.min_sleep)
    }
}
