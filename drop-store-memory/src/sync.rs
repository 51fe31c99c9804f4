//! The lock types the store's critical sections use: `std`'s normally,
//! loom's under `--cfg dropkit_loom` so the model checker sees every
//! interleaving. (A crate-specific cfg, because a global `--cfg loom`
//! would also switch tokio into its own loom mode and remove its net and
//! fs modules.)

#[cfg(dropkit_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard, RwLock, atomic::AtomicU64};
#[cfg(not(dropkit_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard, RwLock, atomic::AtomicU64};

/// Locks, ignoring poisoning: every critical section here leaves its state
/// consistent before anything in it can panic (checks come before writes),
/// so a poisoned lock still guards valid data.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
