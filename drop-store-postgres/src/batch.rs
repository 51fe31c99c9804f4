//! Group commit: concurrent calls on the same drop share one transaction.
//!
//! While a batch for a drop is in flight, new calls for that drop queue;
//! when it finishes, the queue (up to the cap) goes as the next batch. A
//! lone call goes at once, on its caller's task: there is no timer. The
//! batches queued behind it run on a task of their own, so a caller that
//! gives up never stalls the others, and every queued caller gets an answer
//! (the batch's, or an error if the batch task died).

use std::collections::HashMap;
use std::collections::VecDeque;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use drop_core::DropError;
use tokio::sync::oneshot;

use crate::error::{STORE, internal};

/// Runs one batch: the answers, one per request, in request order.
pub(crate) type BatchFuture<Resp> = Pin<Box<dyn Future<Output = Vec<Resp>> + Send>>;
type Runner<K, Req, Resp> = Arc<dyn Fn(K, Vec<Req>) -> BatchFuture<Resp> + Send + Sync>;

type Waiter<Req, Resp> = (Req, oneshot::Sender<Resp>);

struct Lanes<K, Req, Resp> {
    /// A key is present while a batch for it is in flight; its queue holds
    /// the callers that arrived since.
    lanes: HashMap<K, VecDeque<Waiter<Req, Resp>>>,
    closed: bool,
}

/// Gathers calls per key (a drop) into batches.
pub(crate) struct Gatherer<K, Req, Resp> {
    lanes: Arc<Mutex<Lanes<K, Req, Resp>>>,
    runner: Runner<K, Req, Resp>,
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
    /// A gatherer running batches of at most `cap` requests with `runner`.
    pub(crate) fn new(
        cap: usize,
        runner: impl Fn(K, Vec<Req>) -> BatchFuture<Resp> + Send + Sync + 'static,
    ) -> Self {
        Self {
            lanes: Arc::new(Mutex::new(Lanes {
                lanes: HashMap::new(),
                closed: false,
            })),
            runner: Arc::new(runner),
            cap: cap.max(1),
        }
    }

    /// Queues `req` on `key` and waits for its answer.
    pub(crate) async fn submit(&self, key: K, req: Req) -> Result<Resp, DropError> {
        let (tx, rx) = oneshot::channel();
        let lone = {
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
                    None
                }
                None => {
                    lanes.lanes.insert(key, VecDeque::new());
                    Some(req)
                }
            }
        };
        if let Some(req) = lone {
            // Nothing in flight for this key: go at once, on the caller's
            // own task (no hand-over to another task, no added latency).
            // Whatever happens to this call, the guard hands the callers
            // that queued meanwhile to a batch task.
            let _hand_off = HandOff {
                lanes: Arc::clone(&self.lanes),
                runner: Arc::clone(&self.runner),
                key,
                cap: self.cap,
            };
            return (self.runner)(key, vec![req])
                .await
                .pop()
                .ok_or_else(|| internal("a batch gave no answer"));
        }
        rx.await
            .map_err(|_| internal("a batch task ended without answering"))
    }

    /// Refuses new calls; calls already queued still get their answers.
    pub(crate) fn close(&self) {
        lock(&self.lanes).closed = true;
    }
}

/// Ends a lone call's turn: the callers that queued behind it go as the
/// next batch, on a task of their own; with none, the lane is free again.
struct HandOff<K: Hash + Eq + Copy + Send + 'static, Req: Send + 'static, Resp: Send + 'static> {
    lanes: Arc<Mutex<Lanes<K, Req, Resp>>>,
    runner: Runner<K, Req, Resp>,
    key: K,
    cap: usize,
}

impl<K: Hash + Eq + Copy + Send + 'static, Req: Send + 'static, Resp: Send + 'static> Drop
    for HandOff<K, Req, Resp>
{
    fn drop(&mut self) {
        let mut lanes = lock(&self.lanes);
        let waiting = lanes.lanes.get(&self.key).is_some_and(|q| !q.is_empty());
        match tokio::runtime::Handle::try_current() {
            Ok(rt) if waiting => {
                drop(lanes);
                rt.spawn(drive(
                    Arc::clone(&self.lanes),
                    Arc::clone(&self.runner),
                    self.key,
                    self.cap,
                ));
            }
            // Nobody waits, or no runtime is left to run them (their
            // senders drop with the lane, so they are answered).
            _ => {
                lanes.lanes.remove(&self.key);
            }
        }
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

    #[tokio::test]
    async fn batches_queue_behind_the_one_in_flight() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&sizes);
        let g: Arc<Gatherer<u8, u32, u32>> =
            Arc::new(Gatherer::new(3, move |_k, reqs: Vec<u32>| {
                let seen = Arc::clone(&seen);
                Box::pin(async move {
                    lock(&seen).push(reqs.clone());
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    reqs.into_iter().map(|r| r * 10).collect()
                }) as BatchFuture<u32>
            }));
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

    #[tokio::test]
    async fn a_panicking_batch_answers_everyone_and_the_lane_recovers() {
        let g: Arc<Gatherer<u8, u32, u32>> =
            Arc::new(Gatherer::new(8, move |_k, reqs: Vec<u32>| {
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    assert!(!reqs.contains(&99), "this batch fails");
                    reqs
                }) as BatchFuture<u32>
            }));
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

    #[tokio::test]
    async fn a_caller_that_gives_up_does_not_stall_the_queue() {
        let g: Arc<Gatherer<u8, u32, u32>> =
            Arc::new(Gatherer::new(8, move |_k, reqs: Vec<u32>| {
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    reqs
                }) as BatchFuture<u32>
            }));
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
}
