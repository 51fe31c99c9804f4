//! Time sources. The memory store asks a [`Clock`]; tests drive a
//! [`ManualClock`]. (The PostgreSQL store uses the database's clock.)

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Tells the time.
pub trait Clock: Debug + Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    // Microseconds since the epoch: the precision PostgreSQL keeps too.
    micros: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock reading `start` (truncated to microseconds).
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            micros: Arc::new(AtomicI64::new(start.timestamp_micros())),
        }
    }

    /// A clock at a fixed, arbitrary instant (2030-01-01T00:00:00Z).
    pub fn fixed() -> Self {
        Self::new(DateTime::from_timestamp(1_893_456_000, 0).expect("valid instant"))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let micros = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.micros.fetch_add(micros, Ordering::SeqCst);
    }

    /// Sets the clock to `at` (which may be earlier).
    pub fn set(&self, at: DateTime<Utc>) {
        self.micros.store(at.timestamp_micros(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.micros.load(Ordering::SeqCst)).expect("clock in range")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::fixed();
        let t0 = c.now();
        assert_eq!(c.now(), t0);
        c.clone().advance(Duration::from_millis(1500));
        assert_eq!(c.now() - t0, chrono::Duration::milliseconds(1500));
    }
}
