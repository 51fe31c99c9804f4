//! One endpoint's deliverer: claim the cursor, read the log after it,
//! send each matching entry until it is answered 2xx, advance, repeat.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drop_core::{DropError, DropEvent, EventStream, InventoryStore, LogEntry};
use futures::{FutureExt as _, StreamExt as _};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    ATTEMPT_HEADER, EVENT_ID_HEADER, EVENT_TYPE_HEADER, Endpoint, EndpointStatus, PAGE,
    SIGNATURE_HEADER, WebhookMetrics, sign,
};

/// What every deliverer of one [`super::WebhooksBuilder::spawn`] shares.
pub(super) struct Settings {
    pub(super) secret: Arc<[u8]>,
    pub(super) backoff_min: Duration,
    pub(super) backoff_max: Duration,
    pub(super) lease: Duration,
    pub(super) poll: Duration,
    pub(super) kinds: Vec<&'static str>,
    pub(super) instance: Uuid,
    pub(super) headers: HeaderMap,
    pub(super) backfill: bool,
}

/// How long giving a cursor up may take at shutdown: a store that does
/// not answer must not hold the process up (the lease runs out anyway).
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);
/// The wait before asking a store that failed again.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// Why delivering stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Shutdown.
    Cancelled,
    /// Another holder has the cursor now (this one's lease ran out).
    LostLease,
    /// The cursor is further on than this deliverer knows: read again
    /// from where it is.
    Moved,
}

/// This instance's lease on the cursor, by the local monotonic clock:
/// measured from before each claim was asked, so it errs short.
struct Lease {
    renew_at: Instant,
    expires_at: Instant,
}

/// Why one attempt failed.
enum Failure {
    Status(u16),
    Request(reqwest::Error),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(status) => write!(f, "answered {status}"),
            Self::Request(err) if err.is_timeout() => f.write_str("timed out"),
            Self::Request(err) => {
                // reqwest's own message is generic ("error sending
                // request"); the cause, e.g. "Connection refused", is
                // further down the chain.
                write!(f, "{err}")?;
                let mut cause = std::error::Error::source(err);
                while let Some(err) = cause {
                    write!(f, ": {err}")?;
                    cause = err.source();
                }
                Ok(())
            }
        }
    }
}

pub(super) struct Deliverer {
    pub(super) store: Arc<dyn InventoryStore>,
    pub(super) settings: Arc<Settings>,
    pub(super) endpoint: Endpoint,
    pub(super) client: reqwest::Client,
    pub(super) status: Arc<Mutex<EndpointStatus>>,
    pub(super) metrics: Option<Arc<WebhookMetrics>>,
    pub(super) cancel: CancellationToken,
}

impl Deliverer {
    /// Claims, delivers while it holds the claim, and claims again, until
    /// shutdown; then gives the cursor up.
    pub(super) async fn run(self) {
        let mut events = Some(self.store.subscribe());
        // Someone else holds the cursor: ask again a few times per lease,
        // so a takeover after a release comes soon.
        let retry_claim = (self.settings.lease / 4).max(self.settings.poll);
        loop {
            let asked = Instant::now();
            let claimed = tokio::select! {
                () = self.cancel.cancelled() => break,
                claimed = self.store.claim_cursor(
                    &self.endpoint.cursor,
                    self.settings.instance,
                    self.settings.lease,
                ) => claimed,
            };
            let wait = match claimed {
                Ok(Some(mut claim)) => {
                    if claim.created && !self.settings.backfill {
                        claim.position = self.start_at_head(claim.position).await;
                    }
                    tracing::info!(
                        endpoint = %self.endpoint.shown,
                        position = claim.position,
                        "webhook delivery claimed"
                    );
                    let mut lease = Lease {
                        renew_at: asked + self.settings.lease / 3,
                        expires_at: asked + self.settings.lease,
                    };
                    self.update(|s| {
                        s.delivering = true;
                        s.position = Some(claim.position);
                    });
                    let Err(stop) = self.deliver(claim.position, &mut lease, &mut events).await;
                    self.update(|s| s.delivering = false);
                    match stop {
                        Stop::Cancelled => {
                            self.release().await;
                            return;
                        }
                        Stop::LostLease => {
                            tracing::warn!(
                                endpoint = %self.endpoint.shown,
                                "webhook cursor taken over by another instance; stopped delivering"
                            );
                            retry_claim
                        }
                        Stop::Moved => {
                            tracing::info!(
                                endpoint = %self.endpoint.shown,
                                "webhook cursor is further on than this deliverer knew; reading from there"
                            );
                            Duration::ZERO
                        }
                    }
                }
                Ok(None) => {
                    tracing::debug!(
                        endpoint = %self.endpoint.shown,
                        "another instance delivers this webhook"
                    );
                    retry_claim
                }
                Err(err) => {
                    tracing::warn!(
                        endpoint = %self.endpoint.shown,
                        error = %err,
                        "cannot claim the webhook cursor"
                    );
                    STORE_RETRY
                }
            };
            tokio::select! {
                () = self.cancel.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Moves a cursor this instance has just made (at `made_at`) to the
    /// log's head, so that the endpoint receives only what happens from
    /// now on; where it stays is where delivery starts. A store that fails
    /// here leaves it where it was made: the endpoint then receives the
    /// older entries too, which at-least-once delivery allows.
    async fn start_at_head(&self, made_at: u64) -> u64 {
        let moved = async {
            let head = self.store.log_head().await?;
            let held = self
                .store
                .advance_cursor(&self.endpoint.cursor, self.settings.instance, head)
                .await?;
            Ok::<_, DropError>(if held { head.max(made_at) } else { made_at })
        };
        match moved.await {
            Ok(position) => position,
            Err(err) => {
                tracing::warn!(
                    endpoint = %self.endpoint.shown,
                    error = %err,
                    "could not start the new webhook cursor at the log's head; delivering from the oldest entry kept"
                );
                made_at
            }
        }
    }

    /// Delivers from `position` on for as long as the lease holds.
    async fn deliver(
        &self,
        mut position: u64,
        lease: &mut Lease,
        events: &mut Option<EventStream>,
    ) -> Result<Infallible, Stop> {
        loop {
            // Announcements that came while busy are covered by this read.
            drain(events);
            let read = self
                .holding(lease, self.store.events_after(position, PAGE))
                .await?;
            let page = match read {
                Ok(page) => page,
                Err(DropError::EventsPruned { oldest, .. }) => {
                    // Only a cursor removed and made again can fall behind
                    // retention; what was pruned cannot be sent.
                    tracing::error!(
                        endpoint = %self.endpoint.shown,
                        after = position,
                        oldest,
                        "webhook entries were pruned before delivery; going on from the oldest kept"
                    );
                    position = position.max(oldest.saturating_sub(1));
                    self.advance(lease, position).await?;
                    continue;
                }
                Err(err) => {
                    tracing::warn!(
                        endpoint = %self.endpoint.shown,
                        error = %err,
                        "cannot read the event log"
                    );
                    self.pause(lease, STORE_RETRY).await?;
                    continue;
                }
            };
            let Some(last) = page.last().map(|e| e.seq) else {
                self.seen_head(position);
                self.idle(lease, events).await?;
                continue;
            };
            // A short page reached the head as the read saw it. Only when
            // behind is the head asked for (the lag figure): on PostgreSQL
            // that read waits for the writers in flight, briefly holding
            // new ones back.
            if page.len() < PAGE {
                self.seen_head(last);
            } else if let Ok(Ok(head)) = self.holding(lease, self.store.log_head()).await {
                self.seen_head(head.max(last));
            }
            let mut passed_over = false;
            for entry in &page {
                if !self.settings.kinds.contains(&entry.change.kind()) {
                    position = entry.seq;
                    passed_over = true;
                    continue;
                }
                self.send_until_delivered(lease, entry).await?;
                position = entry.seq;
                passed_over = false;
                self.advance(lease, position).await?;
            }
            if passed_over {
                self.advance(lease, position).await?;
            }
        }
    }

    /// Sends `entry` until the endpoint answers 2xx, waiting between
    /// attempts as the backoff says.
    async fn send_until_delivered(&self, lease: &mut Lease, entry: &LogEntry) -> Result<(), Stop> {
        let body = serde_json::to_vec(entry).expect("a log entry serializes");
        for attempt in 1u32.. {
            let sent = self
                .holding(lease, self.send(entry, &body, attempt))
                .await?;
            let ok = sent.is_ok();
            if let Some(metrics) = &self.metrics {
                metrics.attempt(&self.endpoint.shown, ok);
            }
            match sent {
                Ok(()) => {
                    self.update(|s| s.delivered += 1);
                    tracing::debug!(
                        endpoint = %self.endpoint.shown,
                        seq = entry.seq,
                        attempt,
                        "webhook delivered"
                    );
                    return Ok(());
                }
                Err(failure) => {
                    self.update(|s| s.failed_attempts += 1);
                    let wait = backoff(
                        self.settings.backoff_min,
                        self.settings.backoff_max,
                        attempt,
                    );
                    tracing::warn!(
                        endpoint = %self.endpoint.shown,
                        seq = entry.seq,
                        attempt,
                        retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "webhook delivery failed: {failure}"
                    );
                    self.pause(lease, wait).await?;
                }
            }
        }
        unreachable!("attempts are counted in u32")
    }

    /// One attempt, signed at the time it is made (so a long run of
    /// retries never sends a stale signature).
    async fn send(&self, entry: &LogEntry, body: &[u8], attempt: u32) -> Result<(), Failure> {
        let t = chrono::Utc::now().timestamp();
        let signature = sign(&self.settings.secret, t, body);
        let res = self
            .client
            .post(self.endpoint.url.clone())
            .headers(self.settings.headers.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(EVENT_ID_HEADER, entry.seq)
            .header(EVENT_TYPE_HEADER, entry.change.kind())
            .header(SIGNATURE_HEADER, signature)
            .header(ATTEMPT_HEADER, attempt)
            .body(body.to_vec())
            .send()
            .await
            // The URL may carry credentials; errors go to the log.
            .map_err(|err| Failure::Request(err.without_url()))?;
        let status = res.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(Failure::Status(status.as_u16()))
        }
    }

    /// Moves the cursor to `position`, retrying while the store fails;
    /// `LostLease` when another holder has it.
    async fn advance(&self, lease: &mut Lease, position: u64) -> Result<(), Stop> {
        loop {
            let advanced = self
                .holding(
                    lease,
                    self.store.advance_cursor(
                        &self.endpoint.cursor,
                        self.settings.instance,
                        position,
                    ),
                )
                .await?;
            match advanced {
                Ok(true) => {
                    self.update(|s| s.position = Some(position));
                    self.report_lag();
                    return Ok(());
                }
                Ok(false) => return Err(Stop::LostLease),
                Err(err) => {
                    tracing::warn!(
                        endpoint = %self.endpoint.shown,
                        error = %err,
                        "cannot advance the webhook cursor"
                    );
                    self.pause(lease, STORE_RETRY).await?;
                }
            }
        }
    }

    /// Waits for something new: an announced change of a delivered kind,
    /// or the poll period.
    async fn idle(&self, lease: &mut Lease, events: &mut Option<EventStream>) -> Result<(), Stop> {
        let kinds = &self.settings.kinds;
        let wake = async {
            match events {
                Some(stream) => loop {
                    match stream.next().await {
                        Some(Ok(event)) if wakes(kinds, &event) => return,
                        Some(Ok(_)) => {}
                        // Missed announcements: one of them may matter.
                        Some(Err(_)) => return,
                        // The store stopped announcing: poll from now on.
                        None => {
                            *events = None;
                            return;
                        }
                    }
                },
                None => std::future::pending().await,
            }
        };
        let poll = tokio::time::sleep(self.settings.poll);
        self.holding(lease, async {
            tokio::select! {
                () = wake => {}
                () = poll => {}
            }
        })
        .await
    }

    /// Waits `wait`, keeping the lease.
    async fn pause(&self, lease: &mut Lease, wait: Duration) -> Result<(), Stop> {
        self.holding(lease, tokio::time::sleep(wait)).await
    }

    /// Runs `work` while renewing the lease when it is due; stops on
    /// shutdown or when the lease is lost.
    async fn holding<T>(
        &self,
        lease: &mut Lease,
        work: impl Future<Output = T>,
    ) -> Result<T, Stop> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => return Err(Stop::Cancelled),
                out = &mut work => return Ok(out),
                () = tokio::time::sleep_until(lease.renew_at) => self.renew(lease).await?,
            }
        }
    }

    /// Renews the lease. A store that fails is asked again shortly, until
    /// the lease would have run out: then someone else may hold it.
    async fn renew(&self, lease: &mut Lease) -> Result<(), Stop> {
        let asked = Instant::now();
        let renewed = tokio::select! {
            () = self.cancel.cancelled() => return Err(Stop::Cancelled),
            renewed = self.store.claim_cursor(
                &self.endpoint.cursor,
                self.settings.instance,
                self.settings.lease,
            ) => renewed,
        };
        let known = self.status.lock().expect("status lock").position;
        match renewed {
            // Another instance held the cursor meanwhile (this one stalled
            // past its lease) and moved it: go on from where it is.
            Ok(Some(claim)) if known.is_some_and(|known| claim.position > known) => {
                Err(Stop::Moved)
            }
            Ok(Some(_)) => {
                lease.renew_at = asked + self.settings.lease / 3;
                lease.expires_at = asked + self.settings.lease;
                Ok(())
            }
            Ok(None) => Err(Stop::LostLease),
            Err(_) if Instant::now() >= lease.expires_at => Err(Stop::LostLease),
            Err(err) => {
                tracing::warn!(
                    endpoint = %self.endpoint.shown,
                    error = %err,
                    "cannot renew the webhook cursor lease"
                );
                lease.renew_at = (Instant::now() + STORE_RETRY).min(lease.expires_at);
                Ok(())
            }
        }
    }

    /// Gives the cursor up so another instance can take over at once.
    async fn release(&self) {
        let released = tokio::time::timeout(
            RELEASE_TIMEOUT,
            self.store
                .release_cursor(&self.endpoint.cursor, self.settings.instance),
        )
        .await;
        match released {
            Ok(Ok(())) => {
                tracing::debug!(endpoint = %self.endpoint.shown, "webhook cursor released")
            }
            Ok(Err(err)) => tracing::warn!(
                endpoint = %self.endpoint.shown,
                error = %err,
                "cannot release the webhook cursor; another instance takes over when the lease runs out"
            ),
            Err(_) => tracing::warn!(
                endpoint = %self.endpoint.shown,
                "releasing the webhook cursor timed out; another instance takes over when the lease runs out"
            ),
        }
    }

    fn update(&self, change: impl FnOnce(&mut EndpointStatus)) {
        change(&mut self.status.lock().expect("status lock"));
    }

    fn seen_head(&self, head: u64) {
        self.update(|s| s.head = Some(s.head.unwrap_or(0).max(head)));
        self.report_lag();
    }

    fn report_lag(&self) {
        let lag = self.status.lock().expect("status lock").lag();
        if let (Some(metrics), Some(lag)) = (&self.metrics, lag) {
            metrics.lag(&self.endpoint.shown, lag);
        }
    }
}

/// Discards announcements already waiting, without waiting for more.
fn drain(events: &mut Option<EventStream>) {
    if let Some(stream) = events {
        while let Some(item) = stream.next().now_or_never() {
            if item.is_none() {
                *events = None;
                return;
            }
        }
    }
}

/// Whether an announced change may have logged an entry of `kinds`.
fn wakes(kinds: &[&str], event: &DropEvent) -> bool {
    let kind = match event {
        DropEvent::DropCreated { .. } => "dropCreated",
        DropEvent::DropUpdated { .. } => "dropUpdated",
        DropEvent::HoldCreated { .. } => "holdCreated",
        DropEvent::PurchaseCompleted { .. } => "purchaseCompleted",
        DropEvent::HoldReleased { .. } => "holdReleased",
        DropEvent::HoldExpired { .. } => "holdExpired",
        DropEvent::PurchaseCancelled { .. } => "purchaseCancelled",
        DropEvent::WaitlistJoined { .. } => "waitlistJoined",
        DropEvent::WaitlistLeft { .. } => "waitlistLeft",
        DropEvent::DrawCompleted { .. } => "drawCompleted",
        // Counters are not logged; anything newer is read at the next poll.
        _ => return false,
    };
    kinds.contains(&kind)
}

/// The wait after the `attempt`th failure: uniformly random between 0
/// and `min(max, min × 2^(attempt-1))` (exponential backoff with full
/// jitter).
fn backoff(min: Duration, max: Duration, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(32);
    let cap = min.saturating_mul(1u32 << doublings.min(31)).min(max);
    let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    let random = getrandom::u64().expect("the operating system's random source works");
    Duration::from_nanos(random % (nanos + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let min = Duration::from_millis(100);
        let max = Duration::from_secs(10);
        for attempt in 1..=40 {
            let cap = min
                .saturating_mul(2u32.saturating_pow(attempt - 1))
                .min(max);
            let waits: Vec<Duration> = (0..50).map(|_| backoff(min, max, attempt)).collect();
            assert!(waits.iter().all(|w| *w <= cap), "attempt {attempt}");
            // Jittered: fifty draws are not all the same.
            assert!(
                waits.iter().any(|w| *w != waits[0]),
                "attempt {attempt}: {waits:?}"
            );
        }
        // Late attempts reach the cap's range: some waits above the min.
        let late: Vec<Duration> = (0..50).map(|_| backoff(min, max, 30)).collect();
        assert!(late.iter().any(|w| *w > Duration::from_secs(1)));
    }

    #[test]
    fn only_delivered_kinds_wake() {
        let kinds = ["purchaseCompleted", "purchaseCancelled"];
        let expired = DropEvent::HoldExpired {
            drop_id: drop_core::DropId::new(),
            reservation_id: drop_core::ReservationId::new(),
        };
        assert!(!wakes(&kinds, &expired));
        assert!(wakes(&["holdExpired"], &expired));
        let left = DropEvent::WaitlistLeft {
            drop_id: drop_core::DropId::new(),
            variant_id: drop_core::VariantId::new(),
            buyer_id: "b1".parse().unwrap(),
            ticket: 3,
            reason: drop_core::LeaveReason::Offered,
        };
        assert!(!wakes(&kinds, &left));
        assert!(wakes(&["waitlistLeft"], &left));
    }
}
