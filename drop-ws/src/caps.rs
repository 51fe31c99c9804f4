//! Caps on how many connections (or WebSockets) are open at once, per
//! client address and in total: a slot is taken when one opens and given
//! back when it closes, so one machine cannot hold every descriptor.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Counts open connections against a per-address and a total cap (each
/// 0 = no cap).
#[derive(Clone)]
pub(crate) struct Caps {
    per_ip: usize,
    total: usize,
    counts: Arc<Mutex<Counts>>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

impl fmt::Debug for Caps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caps")
            .field("per_ip", &self.per_ip)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

/// Which cap refused a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Over {
    /// This address has its share open already.
    PerIp,
    /// The server has as many open as it takes.
    Total,
}

impl Caps {
    /// Caps of `per_ip` per address and `total` in all; 0 lifts either.
    pub(crate) fn new(per_ip: usize, total: usize) -> Self {
        Self {
            per_ip,
            total,
            counts: Arc::default(),
        }
    }

    /// Takes a slot for a connection from `ip`, unless a cap is reached.
    /// An `exempt` address (a trusted proxy, which speaks for many
    /// clients) counts towards the total only.
    pub(crate) fn acquire(&self, ip: IpAddr, exempt: bool) -> Result<Slot, Over> {
        let ip = crate::proxy::client_key(ip);
        let per_ip = (self.per_ip > 0 && !exempt).then_some(ip);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if self.total > 0 && counts.total >= self.total {
            return Err(Over::Total);
        }
        if let Some(ip) = per_ip {
            let open = counts.by_ip.entry(ip).or_insert(0);
            if *open >= self.per_ip {
                return Err(Over::PerIp);
            }
            *open += 1;
        }
        counts.total += 1;
        Ok(Slot {
            counts: self.counts.clone(),
            ip: per_ip,
        })
    }
}

/// An open connection's place under the caps, given back when dropped.
pub(crate) struct Slot {
    counts: Arc<Mutex<Counts>>,
    ip: Option<IpAddr>,
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot").field("ip", &self.ip).finish()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total -= 1;
        if let Some(ip) = self.ip
            && let Some(open) = counts.by_ip.get_mut(&ip)
        {
            *open -= 1;
            // Forget addresses with nothing open, so the map stays as
            // small as the set of connected clients.
            if *open == 0 {
                counts.by_ip.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_ip_and_total_caps_hold_and_slots_come_back() {
        let caps = Caps::new(2, 3);
        let a1 = caps.acquire(ip("192.0.2.1"), false).unwrap();
        let _a2 = caps.acquire(ip("192.0.2.1"), false).unwrap();
        assert_eq!(
            caps.acquire(ip("192.0.2.1"), false).unwrap_err(),
            Over::PerIp
        );
        // The same address written as IPv4-mapped IPv6 is the same client.
        assert_eq!(
            caps.acquire(ip("::ffff:192.0.2.1"), false).unwrap_err(),
            Over::PerIp
        );
        let _b = caps.acquire(ip("192.0.2.2"), false).unwrap();
        assert_eq!(
            caps.acquire(ip("192.0.2.3"), false).unwrap_err(),
            Over::Total
        );
        drop(a1);
        let _a3 = caps.acquire(ip("192.0.2.1"), false).unwrap();
    }

    #[test]
    fn exempt_addresses_count_towards_the_total_only() {
        let caps = Caps::new(1, 3);
        let _p1 = caps.acquire(ip("10.0.0.1"), true).unwrap();
        let _p2 = caps.acquire(ip("10.0.0.1"), true).unwrap();
        let _p3 = caps.acquire(ip("10.0.0.1"), true).unwrap();
        assert_eq!(caps.acquire(ip("10.0.0.1"), true).unwrap_err(), Over::Total);
    }

    #[test]
    fn zero_means_no_cap() {
        let caps = Caps::new(0, 0);
        let slots: Vec<_> = (0..100)
            .map(|_| caps.acquire(ip("192.0.2.1"), false).unwrap())
            .collect();
        drop(slots);
        assert!(caps.counts.lock().unwrap().by_ip.is_empty());
    }
}
