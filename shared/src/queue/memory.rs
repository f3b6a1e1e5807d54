//! An in-process queue with SQS semantics: delays, visibility timeout, redelivery and a dead-letter queue.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{JobQueue, QueueError, ReceivedMessage, MAX_DELAY, MAX_MESSAGE_BYTES};

struct Message {
    id: String,
    body: String,
    visible_at: Instant,
    receive_count: u32,
    receipt: Option<String>,
}

/// Messages by send order, with two indexes so that every call costs what it hands out, not what the queue
/// holds (a backlog of 100,000 messages must not slow each receive and delete down): the keys visible now in
/// send order, and the keys that become visible later by when. Index entries are checked against the message
/// when taken, so a deleted or re-received message leaves a stale entry that is skipped, never acted on.
#[derive(Default)]
struct State {
    messages: BTreeMap<u64, Message>,
    /// Keys whose messages were visible when they were filed here (send order).
    ready: VecDeque<u64>,
    /// (visible from, key) of delayed and in-flight messages.
    later: BinaryHeap<Reverse<(Instant, u64)>>,
    /// The current receipt handle of each message handed out.
    receipts: HashMap<String, u64>,
    next_id: u64,
}

impl State {
    /// File the messages whose time has come into `ready`.
    fn promote(&mut self, now: Instant) {
        while let Some(Reverse((visible_at, key))) = self.later.peek().copied() {
            if visible_at > now {
                break;
            }
            self.later.pop();
            if self
                .messages
                .get(&key)
                .is_some_and(|m| m.visible_at == visible_at)
            {
                self.ready.push_back(key);
            }
        }
    }

    /// When the next message becomes visible.
    fn next_visible(&self) -> Option<Instant> {
        self.later.peek().map(|Reverse((at, _))| *at)
    }
}

/// A [`JobQueue`] in memory.
pub struct MemoryQueue {
    name: String,
    state: Mutex<State>,
    notify: Notify,
    visibility_timeout: Duration,
    /// After this many receives without a delete, a message moves to the dead-letter queue.
    max_receive_count: u32,
    dead_letter: Option<Arc<MemoryQueue>>,
}

impl MemoryQueue {
    pub fn new(name: &str, visibility_timeout: Duration) -> Self {
        MemoryQueue {
            name: name.to_owned(),
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            visibility_timeout,
            max_receive_count: u32::MAX,
            dead_letter: None,
        }
    }

    /// Move messages received `max_receive_count` times without a delete to `dead_letter`.
    pub fn with_dead_letter(
        mut self,
        dead_letter: Arc<MemoryQueue>,
        max_receive_count: u32,
    ) -> Self {
        self.dead_letter = Some(dead_letter);
        self.max_receive_count = max_receive_count;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Messages held, visible or not (for tests and the local stack's status line).
    pub fn len(&self) -> usize {
        self.state.lock().map(|s| s.messages.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bodies held, in order (for tests).
    pub fn bodies(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.messages.values().map(|m| m.body.clone()).collect())
            .unwrap_or_default()
    }

    fn take_visible(
        &self,
        max: usize,
    ) -> Result<(Vec<ReceivedMessage>, Option<Instant>), QueueError> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| QueueError::Unavailable("memory queue lock poisoned".into()))?;
        let now = Instant::now();
        state.promote(now);
        let mut out = Vec::new();
        let mut dead = Vec::new();
        while out.len() < max {
            let Some(key) = state.ready.pop_front() else {
                break;
            };
            let (visible, exhausted) = match state.messages.get(&key) {
                Some(message) => (
                    message.visible_at <= now,
                    message.receive_count >= self.max_receive_count,
                ),
                None => continue,
            };
            if !visible {
                continue;
            }
            if exhausted && self.dead_letter.is_some() {
                if let Some(message) = state.messages.remove(&key) {
                    if let Some(receipt) = &message.receipt {
                        state.receipts.remove(receipt);
                    }
                    dead.push(message);
                }
                continue;
            }
            state.next_id += 1;
            let serial = state.next_id;
            let visible_at = now + self.visibility_timeout;
            let Some(message) = state.messages.get_mut(&key) else {
                continue;
            };
            let receipt = format!("{}-r{serial}", message.id);
            message.receive_count += 1;
            message.visible_at = visible_at;
            let old = message.receipt.replace(receipt.clone());
            let received = ReceivedMessage {
                message_id: message.id.clone(),
                receipt_handle: receipt.clone(),
                body: message.body.clone(),
                receive_count: message.receive_count,
            };
            if let Some(old) = old {
                state.receipts.remove(&old);
            }
            state.receipts.insert(receipt, key);
            state.later.push(Reverse((visible_at, key)));
            out.push(received);
        }
        let next_visible = state.next_visible();
        drop(state);
        if let Some(dead_letter) = &self.dead_letter {
            for message in dead {
                tracing::warn!(queue = %self.name, message_id = %message.id, "message moved to the dead-letter queue");
                dead_letter.push(message.body, Duration::ZERO);
            }
        }
        Ok((out, next_visible))
    }

    fn push(&self, body: String, delay: Duration) {
        if let Ok(mut state) = self.state.lock() {
            state.next_id += 1;
            let key = state.next_id;
            let id = format!("{}-{key}", self.name);
            let visible_at = Instant::now() + delay.min(MAX_DELAY);
            state.messages.insert(
                key,
                Message {
                    id,
                    body,
                    visible_at,
                    receive_count: 0,
                    receipt: None,
                },
            );
            if delay.is_zero() {
                state.ready.push_back(key);
            } else {
                state.later.push(Reverse((visible_at, key)));
            }
        }
        self.notify.notify_waiters();
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn send(&self, body: &str, delay: Duration) -> Result<(), QueueError> {
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(QueueError::TooLarge(body.len()));
        }
        self.push(body.to_owned(), delay);
        Ok(())
    }

    async fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let deadline = Instant::now() + wait;
        loop {
            let notified = self.notify.notified();
            let (messages, next_visible) = self.take_visible(max.clamp(1, 10))?;
            if !messages.is_empty() {
                return Ok(messages);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let until = next_visible.map_or(deadline, |t| t.min(deadline));
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| QueueError::Unavailable("memory queue lock poisoned".into()))?;
        if let Some(key) = state.receipts.remove(receipt_handle) {
            state.messages.remove(&key);
        }
        Ok(())
    }
}
