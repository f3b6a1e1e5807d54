//! An in-process queue with SQS semantics: delays, visibility timeout, redelivery and a dead-letter queue.

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

#[derive(Default)]
struct State {
    messages: Vec<Message>,
    next_id: u64,
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
            .map(|s| s.messages.iter().map(|m| m.body.clone()).collect())
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
        let mut out = Vec::new();
        let mut dead = Vec::new();
        let mut next_visible: Option<Instant> = None;
        let mut index = 0;
        while index < state.messages.len() {
            let visible_at = state.messages[index].visible_at;
            if visible_at > now {
                next_visible = Some(next_visible.map_or(visible_at, |t| t.min(visible_at)));
                index += 1;
                continue;
            }
            if state.messages[index].receive_count >= self.max_receive_count
                && self.dead_letter.is_some()
            {
                dead.push(state.messages.remove(index));
                continue;
            }
            if out.len() >= max {
                break;
            }
            state.next_id += 1;
            let receipt = format!("{}-r{}", state.messages[index].id, state.next_id);
            let message = &mut state.messages[index];
            message.receive_count += 1;
            message.visible_at = now + self.visibility_timeout;
            message.receipt = Some(receipt.clone());
            out.push(ReceivedMessage {
                message_id: message.id.clone(),
                receipt_handle: receipt,
                body: message.body.clone(),
                receive_count: message.receive_count,
            });
            index += 1;
        }
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
            let id = format!("{}-{}", self.name, state.next_id);
            state.messages.push(Message {
                id,
                body,
                visible_at: Instant::now() + delay.min(MAX_DELAY),
                receive_count: 0,
                receipt: None,
            });
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
        state
            .messages
            .retain(|m| m.receipt.as_deref() != Some(receipt_handle));
        Ok(())
    }
}
