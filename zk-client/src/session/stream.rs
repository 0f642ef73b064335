//! The event queue of one persistent watcher: the session's watch registry holds the sending
//! half, the user's [`PersistentWatcher`](crate::PersistentWatcher) the receiving half.
//!
//! One allocation per watcher holds the queue, the receiver's waker and everything the
//! watcher needs to know about itself (its path, shared with the registry's key, and how to
//! tell the session it was dropped), so that an idle persistent watch costs about 250 bytes
//! (`examples/bench_memory.rs`); a general-purpose channel plus a path and a drop notice in
//! the watcher cost twice that. Unbounded, like the channel it replaces: events are only
//! queued while the user does not read them.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::sync::mpsc;
use zk_proto::AddWatchMode;

use super::event::WatchedEvent;
use super::machine::Command;

/// Who the watcher is: set when it is created.
#[derive(Debug)]
pub(crate) struct Meta {
    /// The watched path as the server knows it (chroot included); also the registry's key.
    pub(crate) server_path: Arc<str>,
    /// How many leading bytes of `server_path` are the chroot.
    pub(crate) chroot_len: u32,
    pub(crate) mode: AddWatchMode,
    /// Told when the watcher is dropped (weak: a watcher does not keep the session alive).
    pub(crate) commands: mpsc::WeakUnboundedSender<Command>,
}

#[derive(Debug, Default)]
struct State {
    /// Events from `head` on are unread (a `Vec` and an index: 8 bytes less than a
    /// `VecDeque`, which keeps the whole allocation in a smaller size class).
    queue: Vec<Option<WatchedEvent>>,
    head: u32,
    waker: Option<Waker>,
    sender_gone: bool,
    receiver_gone: bool,
    /// Whether dropping the receiver must tell the session (the watch is on the server).
    armed: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    meta: Option<Meta>,
}

impl State {
    fn push(&mut self, event: WatchedEvent) {
        // Compact once more than half of the buffer was read: amortised O(1).
        let head = self.head as usize;
        if head > 0 && head * 2 >= self.queue.len() {
            self.queue.drain(..head);
            self.head = 0;
        }
        self.queue.push(Some(event));
    }

    fn pop(&mut self) -> Option<WatchedEvent> {
        let event = self.queue.get_mut(self.head as usize)?.take();
        self.head += 1;
        if self.head as usize == self.queue.len() {
            self.queue.clear();
            self.head = 0;
        }
        event
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned lock still holds consistent data.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A new queue; `meta` says which watch it belongs to (`None` in tests).
pub(crate) fn channel(meta: Option<Meta>) -> (StreamTx, StreamRx) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            armed: meta.is_some(),
            ..State::default()
        }),
        meta,
    });
    (StreamTx(shared.clone()), StreamRx(shared))
}

/// The session's end: pushes events. Dropping it ends the stream.
#[derive(Debug)]
pub(crate) struct StreamTx(Arc<Shared>);

impl StreamTx {
    /// Queues `event`; `Err` if the watcher was dropped.
    pub(crate) fn send(&self, event: WatchedEvent) -> Result<(), WatchedEvent> {
        let waker = {
            let mut state = self.0.lock();
            if state.receiver_gone {
                return Err(event);
            }
            state.push(event);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Whether the watcher was dropped.
    pub(crate) fn is_closed(&self) -> bool {
        self.0.lock().receiver_gone
    }

    /// The watched server path, if the queue belongs to a watch.
    pub(crate) fn server_path(&self) -> Option<&Arc<str>> {
        self.0.meta.as_ref().map(|meta| &meta.server_path)
    }
}

impl Drop for StreamTx {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.0.lock();
            state.sender_gone = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The watcher's end.
#[derive(Debug)]
pub(crate) struct StreamRx(Arc<Shared>);

impl StreamRx {
    /// The next event; `None` once the session dropped its end and the queue is empty.
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<WatchedEvent>> {
        let mut state = self.0.lock();
        if let Some(event) = state.pop() {
            return Poll::Ready(Some(event));
        }
        if state.sender_gone {
            return Poll::Ready(None);
        }
        match &mut state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The watched path as the client sees it (chroot stripped).
    pub(crate) fn path(&self) -> &str {
        match &self.0.meta {
            Some(meta) => match meta.server_path.get(meta.chroot_len as usize..) {
                Some("") | None => "/",
                Some(path) => path,
            },
            None => "/",
        }
    }

    /// The next queued event, without waiting.
    #[cfg(test)]
    pub(crate) fn try_recv(&mut self) -> Result<WatchedEvent, ()> {
        self.0.lock().pop().ok_or(())
    }

    /// Dropping this end no longer tells the session (the watch was never registered).
    pub(crate) fn disarm(&self) {
        self.0.lock().armed = false;
    }
}

impl Drop for StreamRx {
    fn drop(&mut self) {
        let armed = {
            let mut state = self.0.lock();
            // Closed first, so that the session sees this watcher gone when it gets the
            // notice.
            state.receiver_gone = true;
            state.queue = Vec::new();
            state.head = 0;
            std::mem::take(&mut state.armed)
        };
        if let (true, Some(meta)) = (armed, &self.0.meta)
            && let Some(commands) = meta.commands.upgrade()
        {
            let _ = commands.send(Command::WatcherDropped {
                server_path: meta.server_path.to_string(),
                mode: meta.mode,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use zk_proto::EventType;

    use super::*;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn events_in_order_then_the_end_and_a_dropped_receiver_closes() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let (tx, rx) = channel(None);
        assert_eq!(rx.poll_next(&mut cx), Poll::Pending);
        tx.send(WatchedEvent::node(EventType::NodeCreated, "/a"))
            .unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "woken");
        tx.send(WatchedEvent::node(EventType::NodeDeleted, "/a"))
            .unwrap();
        assert_eq!(
            rx.poll_next(&mut cx),
            Poll::Ready(Some(WatchedEvent::node(EventType::NodeCreated, "/a")))
        );
        assert_eq!(
            rx.poll_next(&mut cx),
            Poll::Ready(Some(WatchedEvent::node(EventType::NodeDeleted, "/a")))
        );
        assert_eq!(rx.poll_next(&mut cx), Poll::Pending);
        drop(tx);
        assert_eq!(count.0.load(Ordering::SeqCst), 2, "woken by the end");
        assert_eq!(rx.poll_next(&mut cx), Poll::Ready(None));

        let (tx, rx) = channel(None);
        assert!(!tx.is_closed());
        drop(rx);
        assert!(tx.is_closed());
        assert!(
            tx.send(WatchedEvent::node(EventType::NodeCreated, "/a"))
                .is_err()
        );
    }

    #[test]
    fn one_watcher_fits_the_112_byte_allocation_class() {
        // Arc's two counters plus `Shared` must stay within 104 bytes: glibc then serves it
        // from 112-byte chunks (bench_memory's persistent-watch figure depends on it).
        assert!(size_of::<Shared>() + 16 <= 104, "{}", size_of::<Shared>());
    }

    #[test]
    fn a_long_backlog_read_while_written_keeps_its_order() {
        let (tx, mut rx) = channel(None);
        let mut next_read = 0;
        for i in 0..1000 {
            tx.send(WatchedEvent::node(EventType::NodeCreated, format!("/{i}")))
                .unwrap();
            if i % 3 == 0 {
                let event = rx.try_recv().unwrap();
                assert_eq!(event.path, format!("/{next_read}"));
                next_read += 1;
            }
        }
        while let Ok(event) = rx.try_recv() {
            assert_eq!(event.path, format!("/{next_read}"));
            next_read += 1;
        }
        assert_eq!(next_read, 1000);
    }

    #[test]
    fn a_dropped_armed_watcher_tells_the_session() {
        let (commands, mut received) = mpsc::unbounded_channel();
        let meta = |commands: &mpsc::UnboundedSender<Command>| Meta {
            server_path: Arc::from("/app/w"),
            chroot_len: 4,
            mode: AddWatchMode::PersistentRecursive,
            commands: commands.downgrade(),
        };
        let (_tx, rx) = channel(Some(meta(&commands)));
        assert_eq!(rx.path(), "/w");
        drop(rx);
        match received.try_recv() {
            Ok(Command::WatcherDropped { server_path, mode }) => {
                assert_eq!(server_path, "/app/w");
                assert_eq!(mode, AddWatchMode::PersistentRecursive);
            }
            other => panic!("expected WatcherDropped, got {other:?}"),
        }
        let (_tx, rx) = channel(Some(meta(&commands)));
        rx.disarm();
        drop(rx);
        assert!(
            received.try_recv().is_err(),
            "a disarmed watcher says nothing"
        );
    }
}
