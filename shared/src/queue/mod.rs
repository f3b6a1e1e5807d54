//! The `JobQueue` port: at-least-once queues of small JSON messages naming work.
//!
//! Adapters: [`memory::MemoryQueue`] (local stack, unit tests) and [`sqs::SqsQueue`]. Both pass the same
//! contract suite (`shared/tests/it/queue_contract.rs`). On AWS the Lambda service receives and deletes
//! messages; `receive`/`delete` serve the local stack's pollers and the tests.

pub mod memory;
pub mod sqs;

use std::time::Duration;

use async_trait::async_trait;

/// SQS's longest delivery delay.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the queue could not be reached or refused the call: {0}")]
    Unavailable(String),
    #[error("the message is too large ({0} bytes)")]
    TooLarge(usize),
}

/// A message handed out by [`JobQueue::receive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    /// How many times this message has been handed out, this time included.
    pub receive_count: u32,
}

#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Enqueue `body`, invisible for `delay` (at most [`MAX_DELAY`]; longer delays are capped).
    async fn send(&self, body: &str, delay: Duration) -> Result<(), QueueError>;

    /// Up to `max` visible messages, waiting up to `wait` for the first. Each stays invisible for the
    /// queue's visibility timeout unless deleted.
    async fn receive(&self, max: usize, wait: Duration)
        -> Result<Vec<ReceivedMessage>, QueueError>;

    /// Acknowledge a message handed out by `receive`.
    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError>;
}

/// SQS's largest message.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
