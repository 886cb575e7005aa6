//! What a served HTTP connection is doing, and the deadline that follows from
//! it: a client may take at most the header-read timeout to send a request
//! head (HTTP/1) or its preface and first SETTINGS (HTTP/2), and a
//! connection with no request open is closed after the idle timeout.
//!
//! ```text
//! HTTP/1:  idle ──first byte──► reading head ──request──► open ──response ends──► idle
//!           └ idle timeout        └ header-read timeout     └ no deadline
//! HTTP/2:  handshake ──preface + SETTINGS──► idle ◄──► open (streams)
//!           └ header-read timeout              └ idle timeout
//! ```
//!
//! [`WatchedIo`] marks bytes arriving, [`OpenRequest`] (held by a response
//! body, see [`TrackedBody`]) marks a request open until its response ends;
//! [`ConnectionActivity::expired`] waits for the deadline of the current
//! state. [`next_deadline`] is the pure decision.

use bytes::Buf;
use hyper::body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The HTTP/2 connection preface's length.
const H2_PREFACE_LENGTH: usize = 24;
/// An HTTP/2 frame header's length.
const H2_FRAME_HEADER_LENGTH: usize = 9;
/// Bytes that say how long the handshake is: the preface and the first
/// frame's 3-byte length.
const H2_HANDSHAKE_PROBE: usize = H2_PREFACE_LENGTH + 3;

/// The deadlines of a served HTTP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timeouts {
    /// From a request head's first byte (HTTP/2: from the start) to its end.
    pub header_read: Duration,
    /// With no request open.
    pub idle: Duration,
}

/// What a connection is doing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Activity {
    /// Requests received whose response has not finished.
    pub open_requests: usize,
    /// HTTP/1: a request head has begun arriving while no request is open.
    /// HTTP/2: the preface and first SETTINGS have not all arrived.
    pub reading_head: bool,
}

/// What the passing of a deadline means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// The client is too slow sending a request head or its preface: the
    /// connection is closed at once.
    HeaderRead,
    /// Nothing happened for the idle timeout: the connection is closed
    /// gracefully (HTTP/2: GOAWAY).
    Idle,
}

/// The deadline of a connection in `activity`: none while a request is open.
pub(crate) fn next_deadline(activity: Activity, timeouts: Timeouts) -> Option<(Duration, Expiry)> {
    if activity.open_requests > 0 {
        None
    } else if activity.reading_head {
        Some((timeouts.header_read, Expiry::HeaderRead))
    } else {
        Some((timeouts.idle, Expiry::Idle))
    }
}

/// The length of an HTTP/2 client's handshake (preface and first frame,
/// which must be SETTINGS) once its first [`H2_HANDSHAKE_PROBE`] bytes are
/// known; `None` before.
pub(crate) fn h2_handshake_length(first_bytes: &[u8]) -> Option<usize> {
    let length = first_bytes.get(H2_PREFACE_LENGTH..H2_HANDSHAKE_PROBE)?;
    let frame_length =
        usize::from(length[0]) << 16 | usize::from(length[1]) << 8 | usize::from(length[2]);
    Some(H2_PREFACE_LENGTH + H2_FRAME_HEADER_LENGTH + frame_length)
}

/// The protocol a connection is served with, as far as its deadlines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Request heads arrive one after another.
    Http1,
    /// A handshake, then multiplexed streams.
    Http2,
}

/// One connection's activity, shared by its IO, its requests and the task
/// waiting for its deadline.
///
/// A change of state wakes that task only when it brings the deadline
/// earlier than the one the task sleeps until, and that earlier deadline is
/// armed at once. On a keep-alive connection that happens for the first head
/// after an idle deadline was armed; every later head's deadline is later
/// than that one, so requests neither wake the task nor move its timer: the
/// timer fires at the old deadline, and the task then sleeps on until the
/// one the current state gives (about two wake-ups per header-read timeout
/// on a busy connection).
#[derive(Debug)]
pub(crate) struct ConnectionActivity {
    state: Mutex<State>,
    /// Wakes the waiting task when the deadline comes earlier.
    earlier: Notify,
}

/// The activity, since when, and the deadline the waiting task sleeps until.
#[derive(Debug)]
struct State {
    activity: Activity,
    /// When the current state began: its deadline runs from here.
    since: Instant,
    /// The deadline the waiting task sleeps until (`None`: it waits for a
    /// deadline to appear).
    armed: Option<Instant>,
    /// The waiting task's timeouts, once it waits.
    timeouts: Option<Timeouts>,
}

impl ConnectionActivity {
    /// A connection just handed to the HTTP server.
    pub(crate) fn new(framing: Framing) -> Arc<ConnectionActivity> {
        let reading_head = framing == Framing::Http2;
        Arc::new(ConnectionActivity {
            state: Mutex::new(State {
                activity: Activity {
                    open_requests: 0,
                    reading_head,
                },
                since: Instant::now(),
                armed: None,
                timeouts: None,
            }),
            earlier: Notify::new(),
        })
    }

    /// The current activity.
    #[cfg(test)]
    pub(crate) fn current(&self) -> Activity {
        self.lock().activity
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `change` (true when it changed the activity) and wakes the
    /// waiting task if the new state's deadline is earlier than the one it
    /// sleeps until.
    fn update(&self, change: impl FnOnce(&mut Activity) -> bool) {
        let mut state = self.lock();
        if !change(&mut state.activity) {
            return;
        }
        let now = Instant::now();
        state.since = now;
        // No task waiting yet: it reads the state when it starts.
        let Some(timeouts) = state.timeouts else {
            return;
        };
        let Some(earlier) = next_deadline(state.activity, timeouts)
            .map(|(wait, _)| after(now, wait))
            .filter(|deadline| state.armed.is_none_or(|armed| *deadline < armed))
        else {
            return;
        };
        // The task sleeps until the earlier deadline from now on, even if the
        // state moves on (a request opens) before it runs: later heads then
        // find it armed early enough and wake nothing.
        state.armed = Some(earlier);
        drop(state);
        self.earlier.notify_one();
    }

    /// HTTP/1 bytes arrived: with no request open, a head has begun.
    fn head_bytes_arrived(&self) {
        self.update(|activity| {
            let starts = activity.open_requests == 0 && !activity.reading_head;
            activity.reading_head |= starts;
            starts
        });
    }

    /// The HTTP/2 handshake has fully arrived.
    fn handshake_arrived(&self) {
        self.update(|activity| {
            let was_reading = activity.reading_head;
            activity.reading_head = false;
            was_reading
        });
    }

    /// A request arrived; it stays open until the guard is dropped.
    pub(crate) fn request_started(self: &Arc<Self>) -> OpenRequest {
        self.update(|activity| {
            activity.open_requests += 1;
            activity.reading_head = false;
            true
        });
        OpenRequest {
            activity: self.clone(),
        }
    }

    /// Waits until the deadline of the connection's state passes.
    pub(crate) async fn expired(&self, timeouts: Timeouts) -> Expiry {
        let timer = tokio::time::sleep(timeouts.idle);
        tokio::pin!(timer);
        loop {
            let wake_at = {
                let mut state = self.lock();
                state.timeouts = Some(timeouts);
                let now = Instant::now();
                match next_deadline(state.activity, timeouts) {
                    Some((wait, expiry)) if after(state.since, wait) <= now => return expiry,
                    Some((wait, _)) => state.armed = Some(after(state.since, wait)),
                    // No deadline while a request is open. The timer stays
                    // where it is while that is ahead: the request's end
                    // (a later deadline) then needs no wake-up.
                    None => state.armed = state.armed.filter(|armed| *armed > now),
                }
                state.armed
            };
            match wake_at {
                Some(deadline) => {
                    timer.as_mut().reset(deadline);
                    tokio::select! {
                        () = timer.as_mut() => {}
                        () = self.earlier.notified() => {}
                    }
                }
                None => self.earlier.notified().await,
            }
        }
    }
}

/// `wait` after `start`; a timeout too long to add is 30 years (as tokio's
/// own timers treat one).
fn after(start: Instant, wait: Duration) -> Instant {
    start
        .checked_add(wait)
        .unwrap_or_else(|| start + Duration::from_secs(30 * 365 * 86_400))
}

/// A request counted open until dropped.
#[derive(Debug)]
pub(crate) struct OpenRequest {
    activity: Arc<ConnectionActivity>,
}

impl Drop for OpenRequest {
    fn drop(&mut self) {
        self.activity.update(|activity| {
            activity.open_requests = activity.open_requests.saturating_sub(1);
            true
        });
    }
}

pin_project! {
    /// A response body that keeps its request open until the body is
    /// dropped (hyper drops it once it is sent, or the stream is reset).
    pub struct TrackedBody<B> {
        #[pin]
        inner: B,
        open: OpenRequest,
    }
}

impl<B> TrackedBody<B> {
    /// `inner`, keeping `open` until it is dropped.
    pub(crate) fn new(inner: B, open: OpenRequest) -> Self {
        TrackedBody { inner, open }
    }
}

impl<B: Body> Body for TrackedBody<B>
where
    B::Data: Buf,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(context)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// How far an HTTP/2 handshake has arrived.
#[derive(Debug)]
struct Handshake {
    probe: [u8; H2_HANDSHAKE_PROBE],
    seen: usize,
}

impl Handshake {
    /// Records `bytes`; true once the whole handshake has arrived.
    fn arrived(&mut self, bytes: &[u8]) -> bool {
        let copied = bytes
            .len()
            .min(H2_HANDSHAKE_PROBE.saturating_sub(self.seen));
        if copied > 0 {
            self.probe[self.seen..self.seen + copied].copy_from_slice(&bytes[..copied]);
        }
        self.seen = self.seen.saturating_add(bytes.len());
        let known = &self.probe[..self.seen.min(H2_HANDSHAKE_PROBE)];
        h2_handshake_length(known).is_some_and(|length| self.seen >= length)
    }
}

/// A client stream whose reads mark a connection's activity.
pub(crate) struct WatchedIo<I> {
    inner: I,
    activity: Arc<ConnectionActivity>,
    /// HTTP/2 until the handshake has arrived; `None` after it (and for
    /// HTTP/1, whose every read may begin a head). Boxed: it is needed for
    /// a connection's first bytes only, and the stream is held inline in
    /// hyper's connection for the connection's whole life.
    handshake: Option<Box<Handshake>>,
    framing: Framing,
}

impl<I> WatchedIo<I> {
    /// `inner`, read as `framing`, marking `activity`.
    pub(crate) fn new(inner: I, activity: Arc<ConnectionActivity>, framing: Framing) -> Self {
        let handshake = (framing == Framing::Http2).then(|| {
            Box::new(Handshake {
                probe: [0; H2_HANDSHAKE_PROBE],
                seen: 0,
            })
        });
        WatchedIo {
            inner,
            activity,
            handshake,
            framing,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for WatchedIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buffer.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(context, buffer);
        let read = &buffer.filled()[before..];
        if matches!(result, Poll::Ready(Ok(()))) && !read.is_empty() {
            match this.framing {
                Framing::Http1 => this.activity.head_bytes_arrived(),
                Framing::Http2 => {
                    if let Some(handshake) = &mut this.handshake
                        && handshake.arrived(read)
                    {
                        this.handshake = None;
                        this.activity.handshake_arrived();
                    }
                }
            }
        }
        result
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for WatchedIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(context, bytes)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const TIMEOUTS: Timeouts = Timeouts {
        header_read: Duration::from_secs(10),
        idle: Duration::from_secs(120),
    };

    #[test]
    fn deadline_table() {
        let table = [
            (0, false, Some((TIMEOUTS.idle, Expiry::Idle))),
            (0, true, Some((TIMEOUTS.header_read, Expiry::HeaderRead))),
            (1, false, None),
            (3, true, None),
        ];
        for (open_requests, reading_head, expected) in table {
            let activity = Activity {
                open_requests,
                reading_head,
            };
            assert_eq!(next_deadline(activity, TIMEOUTS), expected, "{activity:?}");
        }
    }

    #[test]
    fn a_timeout_too_long_to_add_is_far_away() {
        let now = Instant::now();
        assert_eq!(
            after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
        assert!(after(now, Duration::MAX) > now + Duration::from_secs(365 * 86_400));
    }

    #[test]
    fn handshake_length_table() {
        let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        let with = |length: [u8; 3]| {
            let mut bytes = preface.to_vec();
            bytes.extend_from_slice(&length);
            bytes
        };
        let table: &[(Vec<u8>, Option<usize>)] = &[
            (Vec::new(), None),
            (preface.to_vec(), None),
            (with([0, 0, 0]), Some(33)),
            (with([0, 0, 18]), Some(51)),
            (with([0, 1, 0]), Some(289)),
        ];
        for (bytes, expected) in table {
            assert_eq!(h2_handshake_length(bytes), *expected, "{bytes:?}");
        }
    }

    #[test]
    fn a_watched_stream_keeps_its_handshake_probe_boxed() {
        // The stream lives inline in hyper's connection for the
        // connection's whole life; the HTTP/2 handshake probe (40 bytes) is
        // needed for its first bytes only.
        let size = std::mem::size_of::<WatchedIo<()>>();
        assert!(size <= 24, "{size} bytes");
    }

    #[test]
    fn handshake_arrives_in_pieces() {
        let mut handshake = Handshake {
            probe: [0; H2_HANDSHAKE_PROBE],
            seen: 0,
        };
        let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        bytes.extend_from_slice(&[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100]);
        let (first, rest) = bytes.split_at(20);
        assert!(!handshake.arrived(first));
        assert!(!handshake.arrived(&rest[..10]));
        assert!(handshake.arrived(&rest[10..]));
    }

    #[tokio::test]
    async fn http1_reads_start_a_head_only_between_requests() {
        let activity = ConnectionActivity::new(Framing::Http1);
        let (mut client, server) = tokio::io::duplex(64);
        let mut server = WatchedIo::new(server, activity.clone(), Framing::Http1);
        let mut buffer = [0u8; 16];
        assert_eq!(activity.current(), Activity::default());
        client.write_all(b"G").await.unwrap();
        assert_eq!(server.read(&mut buffer).await.unwrap(), 1);
        assert!(activity.current().reading_head);
        let open = activity.request_started();
        assert_eq!(
            activity.current(),
            Activity {
                open_requests: 1,
                reading_head: false
            }
        );
        client.write_all(b"body").await.unwrap();
        assert_eq!(server.read(&mut buffer).await.unwrap(), 4);
        assert!(!activity.current().reading_head);
        drop(open);
        assert_eq!(activity.current(), Activity::default());
    }

    #[tokio::test]
    async fn the_deadline_follows_the_state() {
        let short = Timeouts {
            header_read: Duration::from_millis(20),
            idle: Duration::from_millis(40),
        };
        let activity = ConnectionActivity::new(Framing::Http2);
        assert_eq!(activity.expired(short).await, Expiry::HeaderRead);
        activity.handshake_arrived();
        let open = activity.request_started();
        let waiting = activity.expired(short);
        tokio::pin!(waiting);
        // No deadline while a request is open.
        assert!(
            tokio::time::timeout(Duration::from_millis(200), waiting.as_mut())
                .await
                .is_err()
        );
        drop(open);
        assert_eq!(waiting.await, Expiry::Idle);
    }

    /// Counts the wake-ups it receives.
    struct WakeCount(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for WakeCount {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[tokio::test]
    async fn keep_alive_requests_wake_the_waiting_task_once_per_header_read_timeout_at_most() {
        let activity = ConnectionActivity::new(Framing::Http1);
        let waiting = activity.expired(TIMEOUTS);
        tokio::pin!(waiting);
        let count = Arc::new(WakeCount(std::sync::atomic::AtomicUsize::new(0)));
        let waker = std::task::Waker::from(count.clone());
        let mut context = Context::from_waker(&waker);
        let wakes = || count.0.load(std::sync::atomic::Ordering::Relaxed);
        assert!(waiting.as_mut().poll(&mut context).is_pending());
        let mut polled_at = 0;
        for _ in 0..50 {
            // As in a served connection: the head arrives and the request
            // opens before the woken task runs.
            activity.head_bytes_arrived();
            let open = activity.request_started();
            if wakes() > polled_at {
                polled_at = wakes();
                assert!(waiting.as_mut().poll(&mut context).is_pending());
            }
            drop(open);
            if wakes() > polled_at {
                polled_at = wakes();
                assert!(waiting.as_mut().poll(&mut context).is_pending());
            }
        }
        // The first head's deadline is earlier than the idle one the task
        // slept until; every later head's is later than that.
        assert_eq!(wakes(), 1);
    }

    #[tokio::test]
    async fn deadlines_after_keep_alive_requests_run_from_their_own_start() {
        let timeouts = Timeouts {
            header_read: Duration::from_millis(50),
            idle: Duration::from_millis(300),
        };
        let activity = ConnectionActivity::new(Framing::Http1);
        let waiting = activity.expired(timeouts);
        tokio::pin!(waiting);
        // Requests one after another: none of them expires anything, and
        // the waiting task is not woken for them (their deadlines are later
        // than the one it sleeps until).
        for _ in 0..5 {
            activity.head_bytes_arrived();
            let open = activity.request_started();
            assert!(
                tokio::time::timeout(Duration::from_millis(20), waiting.as_mut())
                    .await
                    .is_err()
            );
            drop(open);
        }
        // Idle: the idle deadline runs from the last response's end, past
        // the header-read deadline the task was sleeping until.
        let idle_since = tokio::time::Instant::now();
        assert!(
            tokio::time::timeout(Duration::from_millis(150), waiting.as_mut())
                .await
                .is_err()
        );
        // A head begins: its own header-read deadline, earlier than idle's.
        activity.head_bytes_arrived();
        assert_eq!(waiting.await, Expiry::HeaderRead);
        assert!(idle_since.elapsed() < timeouts.idle);
    }
}
