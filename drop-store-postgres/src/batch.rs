//! Group commit: concurrent calls on the same drop share one transaction.
//!
//! While a batch for a drop is in flight, new calls for that drop queue;
//! when it finishes, the queue (up to the cap) goes as the next batch. A
//! lone call goes at once: there is no timer. Every batch, a lone call's
//! too, runs on a task of its own (tracked, so that shutdown can wait for
//! it), never on a caller's: a caller that gives up or is cancelled after
//! its statement was sent cannot stop the batch half-way, between the
//! commit and the publishing of its events. Every queued caller gets an
//! answer (the batch's, or an error if the batch task died).

use std::collections::HashMap;
use std::collections::VecDeque;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use drop_core::DropError;
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

use crate::error::{STORE, internal};

/// Runs one batch: the answers, one per request, in request order.
pub(crate) type BatchFuture<Resp> = Pin<Box<dyn Future<Output = Vec<Resp>> + Send>>;
type Runner<K, Req, Resp> = Arc<dyn Fn(K, Vec<Req>) -> BatchFuture<Resp> + Send + Sync>;

type Waiter<Req, Resp> = (Req, oneshot::Sender<Resp>);

struct Lanes<K, Req, Resp> {
    /// A key is present while a batch task for it runs; its queue holds
    /// the callers that have not been taken into a batch yet.
    lanes: HashMap<K, VecDeque<Waiter<Req, Resp>>>,
    closed: bool,
}

/// Gathers calls per key (a drop) into batches.
pub(crate) struct Gatherer<K, Req, Resp> {
    lanes: Arc<Mutex<Lanes<K, Req, Resp>>>,
    runner: Runner<K, Req, Resp>,
    tasks: TaskTracker,
    cap: usize,
}

impl<K, Req, Resp> std::fmt::Debug for Gatherer<K, Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gatherer")
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The critical sections below cannot panic half-way, so a poisoned lock
    // still holds consistent data.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<K, Req, Resp> Gatherer<K, Req, Resp>
where
    K: Hash + Eq + Copy + Send + 'static,
    Req: Send + 'static,
    Resp: Send + 'static,
{
    /// A gatherer running batches of at most `cap` requests with `runner`,
    /// each on a task spawned on `tasks`.
    pub(crate) fn new(
        cap: usize,
        tasks: TaskTracker,
        runner: impl Fn(K, Vec<Req>) -> BatchFuture<Resp> + Send + Sync + 'static,
    ) -> Self {
        Self {
            lanes: Arc::new(Mutex::new(Lanes {
                lanes: HashMap::new(),
                closed: false,
            })),
            runner: Arc::new(runner),
            tasks,
            cap: cap.max(1),
        }
    }

    /// Queues `req` on `key` and waits for its answer. Dropping the
    /// returned future gives up on the answer, not on the write.
    pub(crate) async fn submit(&self, key: K, req: Req) -> Result<Resp, DropError> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut lanes = lock(&self.lanes);
            if lanes.closed {
                return Err(DropError::Unavailable {
                    store: STORE,
                    source: "the store is shut down".into(),
                });
            }
            match lanes.lanes.get_mut(&key) {
                Some(queue) => {
                    queue.push_back((req, tx));
                    false
                }
                None => {
                    lanes.lanes.insert(key, VecDeque::from([(req, tx)]));
                    true
                }
            }
        };
        if start {
            // Nothing in flight for this key: this call's batch goes at
            // once, on a task of its own.
            self.tasks.spawn(drive(
                Arc::clone(&self.lanes),
                Arc::clone(&self.runner),
                key,
                self.cap,
            ));
        }
        rx.await
            .map_err(|_| internal("a batch task ended without answering"))
    }

    /// Refuses new calls; calls already queued still get their answers.
    pub(crate) fn close(&self) {
        lock(&self.lanes).closed = true;
    }
}

/// Removes the lane if the driver dies (a panic in a batch), so the queued
/// callers are answered (their senders dropped) and later calls start anew.
struct LaneGuard<K: Hash + Eq, Req, Resp> {
    lanes: Arc<Mutex<Lanes<K, Req, Resp>>>,
    key: K,
    done: bool,
}

impl<K: Hash + Eq, Req, Resp> Drop for LaneGuard<K, Req, Resp> {
    fn drop(&mut self) {
        if !self.done {
            let queue = lock(&self.lanes).lanes.remove(&self.key);
            drop(queue);
        }
    }
}

async fn drive<K, Req, Resp>(
    lanes: Arc<Mutex<Lanes<K, Req, Resp>>>,
    runner: Runner<K, Req, Resp>,
    key: K,
    cap: usize,
) where
    K: Hash + Eq + Copy,
{
    let mut guard = LaneGuard {
        lanes: Arc::clone(&lanes),
        key,
        done: false,
    };
    loop {
        let batch: Vec<Waiter<Req, Resp>> = {
            let mut all = lock(&lanes);
            let Some(queue) = all.lanes.get_mut(&key) else {
                guard.done = true;
                return;
            };
            if queue.is_empty() {
                all.lanes.remove(&key);
                guard.done = true;
                return;
            }
            let n = queue.len().min(cap);
            queue.drain(..n).collect()
        };
        // A caller that went away before its batch ran asks for nothing.
        let (reqs, txs): (Vec<Req>, Vec<oneshot::Sender<Resp>>) =
            batch.into_iter().filter(|(_, tx)| !tx.is_closed()).unzip();
        if reqs.is_empty() {
            continue;
        }
        let answers = runner(key, reqs).await;
        for (tx, answer) in txs.into_iter().zip(answers) {
            // The caller may have gone away meanwhile; its answer is moot.
            let _ = tx.send(answer);
        }
        // Let the callers just answered run before the next batch is cut:
        // a caller that comes straight back joins it instead of waiting a
        // whole batch more. A yield, not a timer: nothing waits when
        // nobody else is ready.
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    // Paused time: the sleeps below order the calls deterministically,
    // whatever the machine's load.
    #[tokio::test(start_paused = true)]
    async fn batches_queue_behind_the_one_in_flight() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&sizes);
        let g: Arc<Gatherer<u8, u32, u32>> = Arc::new(Gatherer::new(
            3,
            TaskTracker::new(),
            move |_k, reqs: Vec<u32>| {
                let seen = Arc::clone(&seen);
                Box::pin(async move {
                    lock(&seen).push(reqs.clone());
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    reqs.into_iter().map(|r| r * 10).collect()
                }) as BatchFuture<u32>
            },
        ));
        // A lone call goes at once...
        let first = {
            let g = Arc::clone(&g);
            tokio::spawn(async move { g.submit(1, 0).await.unwrap() })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        // ...and the calls arriving while it is in flight queue behind it.
        let rest = futures::future::join_all((1..7).map(|i| {
            let g = Arc::clone(&g);
            async move { g.submit(1, i).await.unwrap() }
        }))
        .await;
        assert_eq!(first.await.unwrap(), 0);
        assert_eq!(rest, vec![10, 20, 30, 40, 50, 60]);
        // Then the queue goes in arrival order, capped.
        assert_eq!(*lock(&sizes), vec![vec![0], vec![1, 2, 3], vec![4, 5, 6]]);
    }

    // Paused time: the sleeps below order the calls deterministically,
    // whatever the machine's load.
    #[tokio::test(start_paused = true)]
    async fn a_panicking_batch_answers_everyone_and_the_lane_recovers() {
        let g: Arc<Gatherer<u8, u32, u32>> = Arc::new(Gatherer::new(
            8,
            TaskTracker::new(),
            move |_k, reqs: Vec<u32>| {
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    assert!(!reqs.contains(&99), "this batch fails");
                    reqs
                }) as BatchFuture<u32>
            },
        ));
        let first = {
            let g = Arc::clone(&g);
            tokio::spawn(async move { g.submit(1, 1).await })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        // These two queue behind the first and go together; the batch dies.
        let (bad, other) = tokio::join!(g.submit(1, 99), g.submit(1, 2));
        assert_eq!(first.await.unwrap().unwrap(), 1);
        assert_eq!(bad.unwrap_err().code(), "INTERNAL");
        assert_eq!(other.unwrap_err().code(), "INTERNAL");
        // The lane is free again.
        assert_eq!(g.submit(1, 3).await.unwrap(), 3);
    }

    // Paused time: the sleeps below order the calls deterministically,
    // whatever the machine's load.
    #[tokio::test(start_paused = true)]
    async fn a_caller_that_gives_up_does_not_stall_the_queue() {
        let g: Arc<Gatherer<u8, u32, u32>> = Arc::new(Gatherer::new(
            8,
            TaskTracker::new(),
            move |_k, reqs: Vec<u32>| {
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    reqs
                }) as BatchFuture<u32>
            },
        ));
        // The lone first call is abandoned mid-flight...
        let lone = tokio::time::timeout(Duration::from_millis(5), g.submit(1, 1));
        let queued = async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            g.submit(1, 2).await
        };
        let (lone, queued) = tokio::join!(lone, queued);
        assert!(lone.is_err(), "the first call timed out");
        // ...and the call queued behind it is still answered.
        assert_eq!(queued.unwrap(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_call_whose_caller_is_cancelled_still_finishes_its_batch() {
        let finished = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&finished);
        let tasks = TaskTracker::new();
        let g: Gatherer<u8, u32, u32> =
            Gatherer::new(8, tasks.clone(), move |_k, reqs: Vec<u32>| {
                let seen = Arc::clone(&seen);
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    // Stands for "commit, then publish": must not be cut off.
                    lock(&seen).extend(reqs.iter().copied());
                    reqs
                }) as BatchFuture<u32>
            });
        // The caller gives up while its (lone) batch is in flight.
        let gave_up = tokio::time::timeout(Duration::from_millis(5), g.submit(1, 7)).await;
        assert!(gave_up.is_err());
        assert!(lock(&finished).is_empty(), "still in flight");
        // The batch goes on to the end, and shutdown can wait for it.
        tasks.close();
        tasks.wait().await;
        assert_eq!(*lock(&finished), vec![7]);
    }
}
