//! The expiry scheduler: returns overdue units to sale on time, without
//! polling.
//!
//! It sleeps until the store's next due expiry, wakes early when a hold
//! that is due sooner is created (it listens to the store's events), and
//! expires due holds in batches. Stores reclaim overdue holds lazily as
//! well, so availability never depends on it; it exists so that stock comes
//! back, and clients hear of it, the moment a hold runs out.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::{Clock, DropEvent, InventoryStore, SystemClock};

/// A scheduler started by [`ExpiryScheduler::spawn`]. Awaiting it waits
/// until the scheduler has stopped (its token was cancelled);
/// [`stop`](Self::stop) cancels and waits. Dropping it leaves the
/// scheduler running until its token is cancelled.
#[derive(Debug)]
pub struct SchedulerHandle {
    task: JoinHandle<()>,
    cancel: CancellationToken,
}

impl SchedulerHandle {
    /// The handle of `task`, which stops when `cancel` is cancelled.
    pub(crate) fn new(task: JoinHandle<()>, cancel: CancellationToken) -> Self {
        Self { task, cancel }
    }

    /// Cancels the scheduler's token and waits for it to stop.
    pub async fn stop(self) {
        self.cancel.cancel();
        self.await;
    }

    /// Whether the scheduler has stopped.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl IntoFuture for SchedulerHandle {
    type Output = ();
    type IntoFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            if let Err(err) = self.task.await
                && err.is_panic()
            {
                // The scheduler's own panic is the caller's to see.
                std::panic::resume_unwind(err.into_panic());
            }
        })
    }
}

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
    /// `cancel` is cancelled. Await the handle to wait for it to end.
    pub fn spawn(self, cancel: CancellationToken) -> SchedulerHandle {
        SchedulerHandle {
            task: tokio::spawn(self.run(cancel.clone())),
            cancel,
        }
    }

    /// Runs until `cancel` is cancelled.
    pub async fn run(self, cancel: CancellationToken) {
        // Subscribe before the first look at the store, so that a hold
        // created in between is heard of.
        let mut events = self.store.subscribe();
        let mut failures = 0u32;
        let mut stalls = 0u32;
        loop {
            let round = match self.sweep_then_next().await {
                Ok(round) => {
                    failures = 0;
                    round
                }
                Err(err) => {
                    if back_off(
                        &err,
                        "expiry sweep",
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
            // A round that expired nothing although a hold was due by the
            // store's own reckoning (another instance is sweeping it): wait
            // longer each time rather than asking again at once.
            stalls = if round.expired == 0 && round.next.is_some_and(|t| t <= round.now) {
                stalls.saturating_add(1)
            } else {
                0
            };
            let timing = Timing {
                clock: self.clock.as_ref(),
                offset: round.now - round.taken_at,
                floor: stall_floor(self.min_sleep, stalls, MAX_STALL_WAIT),
                max_sleep: self.max_sleep,
            };
            let mut target = round.next;
            let mut deadline = timing.deadline_for(target);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = sleep_until(deadline) => break,
                    event = events.next() => match event {
                        Some(Ok(DropEvent::HoldCreated { expires_at, .. })) => {
                            if target.is_none_or(|t| expires_at < t) {
                                target = Some(expires_at);
                                deadline = timing.deadline_for(target);
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

    /// Expires everything due, in batches, then asks when the next one is
    /// and what time the store thinks it is.
    async fn sweep_then_next(&self) -> Result<Round, crate::DropError> {
        let mut expired = 0;
        loop {
            let n = self.store.expire_due(self.batch_size).await?;
            expired += n;
            if n > 0 {
                tracing::debug!(expired = n, "expired holds");
            }
            if n < self.batch_size {
                break;
            }
        }
        let next = self.store.next_expiry().await?;
        let taken_at = self.clock.now();
        let now = self.store.store_time().await?.unwrap_or(taken_at);
        Ok(Round {
            expired,
            next,
            now,
            taken_at,
        })
    }
}

/// The longest wait between rounds that keep finding due holds they
/// cannot expire themselves.
const MAX_STALL_WAIT: Duration = Duration::from_secs(1);

/// What one sweep learnt.
struct Round {
    /// Holds it expired.
    expired: usize,
    /// The store's next expiry after it.
    next: Option<DateTime<Utc>>,
    /// The store's time at the end of it.
    now: DateTime<Utc>,
    /// The scheduler's clock at the same moment.
    taken_at: DateTime<Utc>,
}

/// After a failed round: logs it and sleeps a backoff growing with the
/// failures in a row (counted in `failures`). `false` when `cancel` came
/// first (stop).
pub(crate) async fn back_off(
    err: &crate::DropError,
    what: &str,
    failures: &mut u32,
    base: Duration,
    cancel: &CancellationToken,
) -> bool {
    *failures = failures.saturating_add(1);
    let backoff = base * (*failures).min(25);
    tracing::warn!(error = %err, ?backoff, "{what} failed; retrying");
    tokio::select! {
        () = cancel.cancelled() => false,
        () = tokio::time::sleep(backoff) => true,
    }
}

/// The shortest sleep after `stalls` rounds in a row that found work due
/// and could not do it (another instance is doing it): doubling from
/// `min_sleep`, at most `cap`.
pub(crate) fn stall_floor(min_sleep: Duration, stalls: u32, cap: Duration) -> Duration {
    (min_sleep * 2u32.saturating_pow(stalls.min(10))).min(cap)
}

/// Turns instants on the store's clock into sleeps.
pub(crate) struct Timing<'a> {
    pub(crate) clock: &'a dyn Clock,
    /// How far the store's clock is ahead of the scheduler's (negative
    /// when behind). Sleeps are measured on the store's clock, so that a
    /// store whose clock runs behind is not woken before its holds are due.
    pub(crate) offset: chrono::Duration,
    /// The shortest sleep.
    pub(crate) floor: Duration,
    pub(crate) max_sleep: Duration,
}

impl Timing<'_> {
    pub(crate) fn deadline_for(&self, target: Option<DateTime<Utc>>) -> Instant {
        let wait = match target {
            None => self.max_sleep,
            Some(at) => (at - (self.clock.now() + self.offset))
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(self.max_sleep),
        };
        Instant::now() + wait.max(self.floor)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::{
        Applied, DropError, DropId, DropPatch, DropState, EventBus, EventStream, IdempotencyKey,
        IdempotencyRecord, NewDrop, Purchase, PurchaseId, Purchased, Reservation, ReservationId,
        ReserveRequest, Reserved, RevokedSessions, TopPurchaser,
    };
    use crate::{Buyer, BuyerId};

    /// Wall time that follows tokio's (paused) clock, shifted by `skew`.
    #[derive(Debug)]
    struct TokioClock {
        base: DateTime<Utc>,
        start: Instant,
    }

    impl Clock for TokioClock {
        fn now(&self) -> DateTime<Utc> {
            self.base + chrono::Duration::from_std(self.start.elapsed()).unwrap()
        }
    }

    /// Implements the store trait for a test store with the methods given
    /// (what a scheduler asks) and every other one unreachable.
    macro_rules! scheduler_store {
        ($store:ty { $($given:tt)* }) => {
            #[async_trait]
            impl InventoryStore for $store {
                $($given)*
            async fn create_drop_with(
                &self,
                _: NewDrop,
                _: Option<&IdempotencyKey>,
            ) -> Result<Applied<DropState>, DropError> {
                unreachable!("the scheduler does not create drops")
            }
            async fn list_drops(&self) -> Result<Vec<DropState>, DropError> {
                unreachable!("the scheduler does not list drops")
            }
            async fn list_all_drops(&self) -> Result<Vec<DropState>, DropError> {
                unreachable!("the scheduler does not list drops")
            }
            async fn get_drop(&self, _: DropId) -> Result<DropState, DropError> {
                unreachable!("the scheduler does not read drops")
            }
            async fn reserve_with(
                &self,
                _: DropId,
                _: &Buyer,
                _: ReserveRequest,
                _: Option<&IdempotencyKey>,
            ) -> Result<Reserved, DropError> {
                unreachable!("the scheduler does not reserve")
            }
            async fn purchase_with(
                &self,
                _: ReservationId,
                _: &BuyerId,
                _: Option<&IdempotencyKey>,
            ) -> Result<Purchased, DropError> {
                unreachable!("the scheduler does not purchase")
            }
            async fn get_purchase(&self, _: PurchaseId) -> Result<Purchase, DropError> {
                unreachable!("the scheduler does not read purchases")
            }
            async fn buyer_purchases(
                &self,
                _: &BuyerId,
                _: Option<PurchaseId>,
                _: usize,
            ) -> Result<Vec<Purchase>, DropError> {
                unreachable!("the scheduler does not read purchases")
            }
            async fn update_drop(
                &self,
                _: DropId,
                _: &DropPatch,
                _: Option<&IdempotencyKey>,
            ) -> Result<Applied<DropState>, DropError> {
                unreachable!("the scheduler does not edit drops")
            }
            async fn set_paused(
                &self,
                _: DropId,
                _: bool,
                _: Option<&IdempotencyKey>,
            ) -> Result<Applied<DropState>, DropError> {
                unreachable!("the scheduler does not pause drops")
            }
            async fn end_drop(
                &self,
                _: DropId,
                _: Option<&IdempotencyKey>,
            ) -> Result<Applied<DropState>, DropError> {
                unreachable!("the scheduler does not end drops")
            }
            async fn cancel_purchase(
                &self,
                _: PurchaseId,
                _: Option<&IdempotencyKey>,
            ) -> Result<Applied<Purchase>, DropError> {
                unreachable!("the scheduler does not cancel purchases")
            }
            async fn idempotency_record(
                &self,
                _: &str,
                _: &str,
            ) -> Result<Option<IdempotencyRecord>, DropError> {
                unreachable!("the scheduler writes nothing")
            }
            async fn release(
                &self,
                _: ReservationId,
                _: &BuyerId,
            ) -> Result<Reservation, DropError> {
                unreachable!("the scheduler does not release")
            }
            async fn get_reservation(&self, _: ReservationId) -> Result<Reservation, DropError> {
                unreachable!("the scheduler does not read holds")
            }
            async fn active_hold(
                &self,
                _: DropId,
                _: &BuyerId,
            ) -> Result<Option<Reservation>, DropError> {
                unreachable!("the scheduler does not read holds")
            }
            async fn top_purchasers(
                &self,
                _: DropId,
                _: usize,
            ) -> Result<Vec<TopPurchaser>, DropError> {
                unreachable!("the scheduler does not read buyers")
            }
            async fn revoke_session(
                &self,
                _: uuid::Uuid,
                _: DateTime<Utc>,
            ) -> Result<(), DropError> {
                unreachable!("the scheduler does not touch sessions")
            }
            async fn revoked_sessions(
                &self,
                _: Option<DateTime<Utc>>,
            ) -> Result<RevokedSessions, DropError> {
                unreachable!("the scheduler does not touch sessions")
            }
            async fn events_after(
                &self,
                _: u64,
                _: usize,
            ) -> Result<Vec<crate::LogEntry>, DropError> {
                unreachable!("the scheduler does not read the log")
            }
            async fn drop_history(
                &self,
                _: DropId,
                _: u64,
                _: usize,
            ) -> Result<Vec<crate::LogEntry>, DropError> {
                unreachable!("the scheduler does not read the log")
            }
            async fn log_head(&self) -> Result<u64, DropError> {
                unreachable!("the scheduler does not read the log")
            }
            async fn claim_cursor(
                &self,
                _: &str,
                _: uuid::Uuid,
                _: std::time::Duration,
            ) -> Result<Option<crate::CursorClaim>, DropError> {
                unreachable!("the scheduler keeps no cursor")
            }
            async fn advance_cursor(
                &self,
                _: &str,
                _: uuid::Uuid,
                _: u64,
            ) -> Result<bool, DropError> {
                unreachable!("the scheduler keeps no cursor")
            }
            async fn release_cursor(&self, _: &str, _: uuid::Uuid) -> Result<(), DropError> {
                unreachable!("the scheduler keeps no cursor")
            }
            async fn remove_cursor(&self, _: &str) -> Result<(), DropError> {
                unreachable!("the scheduler keeps no cursor")
            }
            async fn cursors(&self) -> Result<Vec<crate::CursorInfo>, DropError> {
                unreachable!("the scheduler keeps no cursor")
            }
            async fn join_waitlist(
                &self,
                _: DropId,
                _: &Buyer,
                _: ReserveRequest,
            ) -> Result<Applied<crate::WaitlistPlace>, DropError> {
                unreachable!("the scheduler does not touch the line")
            }
            async fn leave_waitlist(
                &self,
                _: DropId,
                _: &BuyerId,
            ) -> Result<Option<crate::WaitlistPlace>, DropError> {
                unreachable!("the scheduler does not touch the line")
            }
            async fn waitlist_place(
                &self,
                _: DropId,
                _: &BuyerId,
            ) -> Result<Option<crate::WaitlistPlace>, DropError> {
                unreachable!("the scheduler does not touch the line")
            }
            async fn enter_draw(
                &self,
                _: DropId,
                _: &Buyer,
                _: Option<crate::VariantId>,
            ) -> Result<Applied<crate::Entry>, DropError> {
                unreachable!("the scheduler does not enter draws")
            }
            async fn withdraw_entry(
                &self,
                _: DropId,
                _: &BuyerId,
            ) -> Result<Option<crate::Entry>, DropError> {
                unreachable!("the scheduler does not enter draws")
            }
            async fn draw_entry(
                &self,
                _: DropId,
                _: &BuyerId,
            ) -> Result<Option<crate::Entry>, DropError> {
                unreachable!("the scheduler does not enter draws")
            }
            async fn due_draws(&self, _: usize) -> Result<Vec<crate::DropInfo>, DropError> {
                unreachable!("the expiry scheduler does not draw")
            }
            async fn next_draw_at(&self) -> Result<Option<DateTime<Utc>>, DropError> {
                unreachable!("the expiry scheduler does not draw")
            }
            async fn run_draw(
                &self,
                _: DropId,
                _: Option<crate::Beacon>,
            ) -> Result<Option<crate::DrawSummary>, DropError> {
                unreachable!("the expiry scheduler does not draw")
            }
            async fn draw_status(&self, _: DropId) -> Result<crate::DrawStatus, DropError> {
                unreachable!("the expiry scheduler does not draw")
            }
            }
        };
    }

    /// A store keeping its own time (like a database) with one hold due at
    /// `due`, counting the sweeps it is asked for.
    #[derive(Debug)]
    struct OwnTimeStore {
        clock: TokioClock,
        due: Mutex<Option<DateTime<Utc>>>,
        expired_at: Mutex<Option<DateTime<Utc>>>,
        sweeps: AtomicUsize,
        bus: EventBus,
    }

    scheduler_store!(OwnTimeStore {
        async fn expire_due(&self, _: usize) -> Result<usize, DropError> {
            self.sweeps.fetch_add(1, Ordering::SeqCst);
            let now = self.clock.now();
            let mut due = self.due.lock().unwrap();
            if due.is_some_and(|t| t <= now) {
                *due = None;
                *self.expired_at.lock().unwrap() = Some(now);
                return Ok(1);
            }
            Ok(0)
        }
        async fn next_expiry(&self) -> Result<Option<DateTime<Utc>>, DropError> {
            Ok(*self.due.lock().unwrap())
        }
        fn subscribe(&self) -> EventStream {
            self.bus.subscribe()
        }
        async fn store_time(&self) -> Result<Option<DateTime<Utc>>, DropError> {
            Ok(Some(self.clock.now()))
        }
    });

    /// The application's clock runs a second ahead of the store's: the
    /// scheduler still sleeps until the hold is due by the store's clock and
    /// sweeps a handful of times, instead of asking every 5 ms for a second.
    #[tokio::test(start_paused = true)]
    async fn a_store_clock_behind_the_app_clock_causes_no_polling() {
        let base = crate::ManualClock::fixed().now();
        let start = Instant::now();
        let due = base + chrono::Duration::seconds(10);
        let store = Arc::new(OwnTimeStore {
            clock: TokioClock { base, start },
            due: Mutex::new(Some(due)),
            expired_at: Mutex::new(None),
            sweeps: AtomicUsize::new(0),
            bus: EventBus::new(16),
        });
        let app_clock = TokioClock {
            base: base + chrono::Duration::seconds(1),
            start,
        };
        let cancel = CancellationToken::new();
        let task = ExpiryScheduler::new(store.clone())
            .clock(Arc::new(app_clock))
            .max_sleep(Duration::from_secs(3600))
            .spawn(cancel.clone());
        tokio::time::sleep(Duration::from_secs(20)).await;
        let expired_at = store.expired_at.lock().unwrap().expect("the hold expired");
        let late = (expired_at - due).to_std().expect("not before it was due");
        assert!(late <= Duration::from_millis(10), "late by {late:?}");
        let sweeps = store.sweeps.load(Ordering::SeqCst);
        assert!(sweeps <= 3, "{sweeps} sweeps for one hold: polling");
        cancel.cancel();
        task.await;
    }

    /// A store whose time is the app's clock, but whose next expiry stays
    /// due without being expired (another instance is on it): the
    /// scheduler backs off instead of asking every 5 ms.
    #[tokio::test(start_paused = true)]
    async fn a_hold_left_due_is_retried_with_backoff() {
        #[derive(Debug)]
        struct Stuck(EventBus, AtomicUsize, DateTime<Utc>);
        scheduler_store!(Stuck {
            async fn expire_due(&self, _: usize) -> Result<usize, DropError> {
                self.1.fetch_add(1, Ordering::SeqCst);
                Ok(0)
            }
            async fn next_expiry(&self) -> Result<Option<DateTime<Utc>>, DropError> {
                Ok(Some(self.2))
            }
            fn subscribe(&self) -> EventStream {
                self.0.subscribe()
            }
        });
        let clock = crate::ManualClock::fixed();
        let store = Arc::new(Stuck(EventBus::new(16), AtomicUsize::new(0), clock.now()));
        let cancel = CancellationToken::new();
        let task = ExpiryScheduler::new(store.clone())
            .clock(Arc::new(clock))
            .spawn(cancel.clone());
        tokio::time::sleep(Duration::from_secs(10)).await;
        let sweeps = store.1.load(Ordering::SeqCst);
        // Backing off to one round a second: about 8 rounds to get there,
        // then one a second. Polling every 5 ms would be 2,000.
        assert!(sweeps <= 25, "{sweeps} sweeps in 10 s: polling");
        cancel.cancel();
        task.await;
    }
}
