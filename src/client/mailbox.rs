//! A small queue from the senders of an in-process stream (a lease keeper, a watch's
//! request side) to its one reader: never blocks a sender, holds at most a fixed number
//! of messages (dropping the oldest, as a reader that never reads has no use for them),
//! and knows when either side has gone.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll};

use atomic_waker::AtomicWaker;
use parking_lot::Mutex;

struct State<T> {
    messages: VecDeque<T>,
    senders: usize,
    reader_gone: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    waker: AtomicWaker,
    capacity: usize,
}

/// A sending end; clones share the queue. The reader sees the end once every sender is
/// dropped.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The reading end; dropping it tells the senders.
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// A queue holding at most `capacity` messages.
pub(crate) fn mailbox<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State { messages: VecDeque::new(), senders: 1, reader_gone: false }),
        waker: AtomicWaker::new(),
        capacity: capacity.max(1),
    });
    (Sender { shared: shared.clone() }, Receiver { shared })
}

impl<T> Sender<T> {
    /// Queues `message`, dropping the oldest one when the queue is full; false when the
    /// reader has gone (the message is dropped).
    pub(crate) fn send(&self, message: T) -> bool {
        let mut state = self.shared.state.lock();
        if state.reader_gone {
            return false;
        }
        if state.messages.len() == self.shared.capacity {
            state.messages.pop_front();
        }
        state.messages.push_back(message);
        drop(state);
        self.shared.waker.wake();
        true
    }

    /// True once the reader has gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.state.lock().reader_gone
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.state.lock().senders += 1;
        Sender { shared: self.shared.clone() }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.shared.state.lock().senders -= 1;
        self.shared.waker.wake();
    }
}

impl<T> Receiver<T> {
    /// The next message; `Ready(None)` once it is empty and every sender has gone.
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if let Some(ready) = self.try_recv() {
            return Poll::Ready(ready);
        }
        // Register, then look again: a message sent in between wakes the new waker.
        self.shared.waker.register(cx.waker());
        self.try_recv().map_or(Poll::Pending, Poll::Ready)
    }

    /// `Some(Some(message))`, `Some(None)` at the end, `None` while empty.
    pub(crate) fn try_recv(&self) -> Option<Option<T>> {
        let mut state = self.shared.state.lock();
        match state.messages.pop_front() {
            Some(message) => Some(Some(message)),
            None if state.senders == 0 => Some(None),
            None => None,
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock();
        state.reader_gone = true;
        state.messages.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_mailbox_drops_its_oldest_message_and_ends_when_its_senders_go() {
        let (sender, receiver) = mailbox(2);
        let second = sender.clone();
        for i in 0..3 {
            assert!(sender.send(i));
        }
        assert_eq!(receiver.try_recv(), Some(Some(1)));
        assert_eq!(receiver.try_recv(), Some(Some(2)));
        assert_eq!(receiver.try_recv(), None);
        drop(sender);
        assert_eq!(receiver.try_recv(), None);
        drop(second);
        assert_eq!(receiver.try_recv(), Some(None));
    }

    #[test]
    fn senders_learn_that_the_reader_went() {
        let (sender, receiver) = mailbox::<u8>(4);
        assert!(!sender.is_closed());
        drop(receiver);
        assert!(sender.is_closed());
        assert!(!sender.send(1));
    }
}
