//! Group commit: concurrent calls on the same drop share one transaction.
//!
//! # The life of a batch
//!
//! Every step is in this module, and each is named in [`run_lane`]:
//!
//! 1. **Enqueue** ([`Gatherer::submit`]): a call joins its drop's lane, the
//!    queue of calls not yet taken. A call that finds no lane opens one and
//!    starts the lane's task on the store's [`TaskTracker`], so the batch
//!    never runs on a caller's task and shutdown can wait for it. After
//!    [`Gatherer::close`] calls are refused.
//! 2. **Cut** ([`cut`]): the lane's task takes up to `cap` queued calls in
//!    arrival order, leaving out callers that have already given up. An
//!    empty queue ends the lane, under the same lock a call enqueues under:
//!    a later call opens a new lane instead of waiting on a finished one.
//!    A lone call is cut at once (there is no timer); calls arriving while
//!    a batch is in flight wait for the next cut.
//! 3. **Run** ([`run`]): the runner (the store's write path) commits the
//!    batch in one transaction, retrying it as a whole after transient
//!    faults, and publishes its events. It yields one answer per call. A
//!    panic inside it is caught here and answers every call of the batch
//!    with `INTERNAL`; the lane goes on.
//! 4. **Answer** ([`answer`]): each caller gets its own answer. One
//!    that gave up meanwhile (a client gone, a timeout) loses the answer
//!    only: the commit and its events happened in step 3 either way.
//! 5. **Yield**, then back to 2: the callers just answered run first, so
//!    one that comes straight back joins the next batch.
//!
//! Who answers whom is therefore decided in one place: the lane's task
//! answers every call it cut, and a call still queued is cut by the lane's
//! task or refused at enqueue. The one way a queued call can go unanswered
//! is the runtime itself shutting down, which drops the lane's task and
//! its callers together.

use std::collections::HashMap;
use std::collections::VecDeque;
use std::future::Future;
use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use drop_core::DropError;
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

use crate::error::internal;
use crate::writes::shut_down;

/// Runs one batch: the answers, one per request, in request order.
pub(crate) type BatchFuture<T> = Pin<Box<dyn Future<Output = Vec<Result<T, DropError>>> + Send>>;
type Runner<K, Req, T> = Arc<dyn Fn(K, Vec<Req>) -> BatchFuture<T> + Send + Sync>;

/// One queued call: what it asks, and where its answer goes.
struct Call<Req, T> {
    request: Req,
    reply: oneshot::Sender<Result<T, DropError>>,
}

/// The lanes of every key, under one lock.
struct Lanes<K, Req, T> {
    /// A key is present while its lane's task runs; its queue holds the
    /// calls not cut into a batch yet.
    queues: HashMap<K, VecDeque<Call<Req, T>>>,
    /// Set by [`Gatherer::close`]: no call is enqueued any more.
    closed: bool,
}

type Shared<K, Req, T> = Arc<Mutex<Lanes<K, Req, T>>>;

/// Gathers calls per key (a drop) into batches.
pub(crate) struct Gatherer<K, Req, T> {
    lanes: Shared<K, Req, T>,
    runner: Runner<K, Req, T>,
    tasks: TaskTracker,
    cap: usize,
}

impl<K, Req, T> std::fmt::Debug for Gatherer<K, Req, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gatherer")
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }
}

fn lock<L>(m: &Mutex<L>) -> MutexGuard<'_, L> {
    // The critical sections below cannot panic half-way, so a poisoned lock
    // still holds consistent data.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<K, Req, T> Gatherer<K, Req, T>
where
    K: Hash + Eq + Copy + Send + 'static,
    Req: Send + 'static,
    T: Send + 'static,
{
    /// A gatherer running batches of at most `cap` requests with `runner`,
    /// each lane on a task spawned on `tasks`.
    pub(crate) fn new(
        cap: usize,
        tasks: TaskTracker,
        runner: impl Fn(K, Vec<Req>) -> BatchFuture<T> + Send + Sync + 'static,
    ) -> Self {
        Self {
            lanes: Arc::new(Mutex::new(Lanes {
                queues: HashMap::new(),
                closed: false,
            })),
            runner: Arc::new(runner),
            tasks,
            cap: cap.max(1),
        }
    }

    /// Step 1, enqueue: queues `request` on `key` and waits for its answer.
    /// Dropping the returned future gives up on the answer, not on the
    /// write.
    pub(crate) async fn submit(&self, key: K, request: Req) -> Result<T, DropError> {
        let (reply, answer) = oneshot::channel();
        let call = Call { request, reply };
        let opens_lane = {
            let mut lanes = lock(&self.lanes);
            if lanes.closed {
                return Err(shut_down());
            }
            match lanes.queues.get_mut(&key) {
                Some(queue) => {
                    queue.push_back(call);
                    false
                }
                None => {
                    lanes.queues.insert(key, VecDeque::from([call]));
                    true
                }
            }
        };
        if opens_lane {
            self.tasks.spawn(run_lane(
                Arc::clone(&self.lanes),
                Arc::clone(&self.runner),
                key,
                self.cap,
            ));
        }
        // Only the runtime shutting down drops a lane's task before it
        // answers (see the module docs).
        answer
            .await
            .unwrap_or_else(|_| Err(internal("the store stopped before answering")))
    }

    /// Refuses new calls; calls already queued still get their answers.
    pub(crate) fn close(&self) {
        lock(&self.lanes).closed = true;
    }
}

/// The calls one cut took, split into what they ask and where the
/// answers go (same order).
struct Batch<Req, T> {
    requests: Vec<Req>,
    replies: Vec<oneshot::Sender<Result<T, DropError>>>,
}

/// A lane's task: cut, run, answer, until the queue is empty.
async fn run_lane<K, Req, T>(
    lanes: Shared<K, Req, T>,
    runner: Runner<K, Req, T>,
    key: K,
    cap: usize,
) where
    K: Hash + Eq + Copy,
{
    // 2. Cut (None: the queue was empty and the lane is closed).
    while let Some(Batch { requests, replies }) = cut(&lanes, key, cap) {
        // 3. Run: commit (retried as a whole) and publish.
        let answers = run(&runner, key, requests).await;
        // 4. Answer.
        answer(replies, answers);
        // 5. Yield: a caller that comes straight back joins the next cut
        // instead of waiting a whole batch more. Not a timer: nothing waits
        // when nobody else is ready.
        tokio::task::yield_now().await;
    }
}

/// Step 2: takes the next batch off `key`'s queue, or ends the lane.
fn cut<K, Req, T>(lanes: &Mutex<Lanes<K, Req, T>>, key: K, cap: usize) -> Option<Batch<Req, T>>
where
    K: Hash + Eq + Copy,
{
    let mut lanes = lock(lanes);
    loop {
        let queue = lanes.queues.get_mut(&key)?;
        if queue.is_empty() {
            lanes.queues.remove(&key);
            return None;
        }
        let n = queue.len().min(cap);
        // A caller that went away before its batch ran asks for nothing.
        let (requests, replies): (Vec<Req>, Vec<_>) = queue
            .drain(..n)
            .filter(|c| !c.reply.is_closed())
            .map(|c| (c.request, c.reply))
            .unzip();
        if !requests.is_empty() {
            return Some(Batch { requests, replies });
        }
    }
}

/// Step 3: runs the batch; a panic becomes every caller's `INTERNAL`.
async fn run<K, Req, T>(
    runner: &Runner<K, Req, T>,
    key: K,
    requests: Vec<Req>,
) -> Vec<Result<T, DropError>> {
    let n = requests.len();
    let mut batch = runner(key, requests);
    let caught = std::future::poll_fn(|cx| {
        std::panic::catch_unwind(AssertUnwindSafe(|| batch.as_mut().poll(cx)))
            .map_or_else(|_| std::task::Poll::Ready(None), |p| p.map(Some))
    })
    .await;
    caught.unwrap_or_else(|| {
        (0..n)
            .map(|_| Err(internal("the batch failed (a panic in the store)")))
            .collect()
    })
}

/// Step 4: one answer per caller, in order; a caller the runner gave no
/// answer for (a bug) is told so rather than left waiting.
fn answer<T>(
    replies: Vec<oneshot::Sender<Result<T, DropError>>>,
    answers: Vec<Result<T, DropError>>,
) {
    let mut answers = answers.into_iter();
    for reply in replies {
        let answer = answers
            .next()
            .unwrap_or_else(|| Err(internal("the batch gave no answer for this call")));
        // The caller may have gone away meanwhile; its answer is moot.
        let _ = reply.send(answer);
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
                    reqs.into_iter().map(|r| Ok(r * 10)).collect()
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
                    reqs.into_iter().map(Ok).collect()
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
                    reqs.into_iter().map(Ok).collect()
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
                    reqs.into_iter().map(Ok).collect()
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
