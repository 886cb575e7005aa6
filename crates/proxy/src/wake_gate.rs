//! A future that shares its task with a busier one and is polled only when
//! one of its own wakers fired.
//!
//! A served connection waits for its client, for a drain and for its
//! deadline in one task (`tokio::select!`). Every read and write of the
//! connection wakes that task, and `select!` would poll the drain and
//! deadline futures each time too: locks, a clock read, timer and `Notify`
//! registration, ~2,000 instructions per request for futures that fire once
//! in the connection's life. [`WakeGate`] gives the quiet future a waker of
//! its own that marks it woken and wakes the task; until that happens, a
//! poll of the gate is one waker registration and one atomic swap.
//!
//! ```text
//! task woken by the connection ─► select! polls WakeGate ─► not marked: Pending
//! timer / Notify / drain fires  ─► gate waker: mark + wake task ─► WakeGate polls its future
//! ```

use futures::task::AtomicWaker;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

pin_project! {
    /// `future`, polled only on its first poll and after its own wakers
    /// fired.
    pub(crate) struct WakeGate<F> {
        #[pin]
        future: F,
        mark: Arc<Mark>,
        waker: Waker,
    }
}

/// Whether the inner future was woken, and the task to wake when it is.
struct Mark {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Mark {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<F> WakeGate<F> {
    /// Gates `future`; its first poll goes through.
    pub(crate) fn new(future: F) -> WakeGate<F> {
        let mark = Arc::new(Mark {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        let waker = Waker::from(mark.clone());
        WakeGate {
            future,
            mark,
            waker,
        }
    }
}

impl<F: Future> Future for WakeGate<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // Registered before the mark is read: a wake-up in between is not
        // lost.
        this.mark.task.register(context.waker());
        if !this.mark.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        this.future.poll(&mut Context::from_waker(this.waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[tokio::test]
    async fn the_inner_future_is_polled_only_when_its_own_waker_fires() {
        let inner_polls = Arc::new(AtomicUsize::new(0));
        let ready = Arc::new(tokio::sync::Notify::new());
        let counting = {
            let inner_polls = inner_polls.clone();
            let ready = ready.clone();
            let mut waiting = Box::pin(async move { ready.notified().await });
            futures::future::poll_fn(move |context| {
                inner_polls.fetch_add(1, Ordering::Relaxed);
                waiting.as_mut().poll(context)
            })
        };
        let gated = WakeGate::new(counting);
        tokio::pin!(gated);
        // A busy neighbour in the same task: the task is polled 100 times.
        for _ in 0..100 {
            assert!(futures::poll!(gated.as_mut()).is_pending());
            tokio::task::yield_now().await;
        }
        assert_eq!(
            inner_polls.load(Ordering::Relaxed),
            1,
            "only the first poll"
        );
        ready.notify_one();
        tokio::time::timeout(Duration::from_secs(5), gated)
            .await
            .expect("the inner future's wake-up reaches the task");
        assert_eq!(inner_polls.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn a_timer_inside_fires_through_the_gate() {
        let started = tokio::time::Instant::now();
        let gated = WakeGate::new(tokio::time::sleep(Duration::from_millis(30)));
        tokio::time::timeout(Duration::from_secs(5), gated)
            .await
            .expect("the timer's wake-up reaches the task");
        assert!(started.elapsed() >= Duration::from_millis(30));
    }

    #[tokio::test]
    async fn a_wake_up_from_another_thread_reaches_the_task() {
        let ready = Arc::new(tokio::sync::Notify::new());
        let gated = WakeGate::new({
            let ready = ready.clone();
            async move { ready.notified().await }
        });
        let waiter = tokio::spawn(gated);
        tokio::time::sleep(Duration::from_millis(20)).await;
        std::thread::spawn(move || ready.notify_one())
            .join()
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
    }
}
