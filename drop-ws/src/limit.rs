//! Rate limits on reserve and purchase, per client address and per
//! buyer, with `governor`'s keyed GCRA limiters.
//!
//! The buyer is the one the identity hook vouched for, so nobody can
//! spend another buyer's budget; an IPv6 client counts by its /64. The
//! limiters live in this process: behind N instances a buyer gets up to
//! N budgets (one per instance their requests reach). What must hold
//! across instances (one hold per buyer) is enforced by the store.

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

/// Checks between two sweeps of idle keys, so the maps do not grow forever.
const SWEEP_EVERY: u32 = 4096;

/// Per-address and per-buyer limiters sharing one quota.
pub(crate) struct Limits {
    by_ip: DefaultKeyedRateLimiter<IpAddr>,
    by_user: DefaultKeyedRateLimiter<String>,
    checks: AtomicU32,
}

impl fmt::Debug for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limits").finish_non_exhaustive()
    }
}

impl Limits {
    /// `per_minute` requests per minute per key, allowed in a burst.
    pub(crate) fn per_minute(per_minute: NonZeroU32) -> Self {
        let quota = Quota::per_minute(per_minute);
        Self {
            by_ip: RateLimiter::keyed(quota),
            by_user: RateLimiter::keyed(quota),
            checks: AtomicU32::new(0),
        }
    }

    /// `Err(429)` when either the address or the buyer is over its quota.
    pub(crate) fn check(&self, ip: Option<IpAddr>, buyer: &str) -> Result<(), ApiError> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.by_ip.retain_recent();
            self.by_user.retain_recent();
        }
        let now = DefaultClock::default().now();
        if let Some(ip) = ip
            && let Err(not_until) = self.by_ip.check_key(&crate::proxy::client_key(ip))
        {
            return Err(ApiError::rate_limited(
                "address",
                not_until.wait_time_from(now).as_secs_f64().ceil() as u64,
            ));
        }
        if let Err(not_until) = self.by_user.check_key(&buyer.to_owned()) {
            return Err(ApiError::rate_limited(
                "buyer",
                not_until.wait_time_from(now).as_secs_f64().ceil() as u64,
            ));
        }
        Ok(())
    }
}
