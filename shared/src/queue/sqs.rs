//! The SQS adapter of [`JobQueue`], and the operator's helper that creates a queue with its dead-letter
//! queue.
//!
//! Delays are rounded up to whole seconds (SQS's unit) and capped at [`MAX_DELAY`]; long-poll waits are
//! rounded up to whole seconds and capped at SQS's 20; at most 10 messages come back per receive. Deleting
//! with a receipt handle SQS no longer knows is not an error (the message is gone either way).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use aws_sdk_sqs::Client;

use super::{JobQueue, QueueError, ReceivedMessage, MAX_DELAY, MAX_MESSAGE_BYTES};

/// SQS's longest long-poll wait.
const MAX_WAIT_SECONDS: u64 = 20;
/// How long a dead-letter queue keeps messages for an operator to replay: SQS's maximum, 14 days.
const DEAD_LETTER_RETENTION_SECONDS: u32 = 14 * 24 * 3600;

/// A [`JobQueue`] on one SQS standard queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        SqsQueue {
            client,
            queue_url: queue_url.into(),
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

/// Whole seconds, rounded up, at most `cap`.
fn whole_seconds(duration: Duration, cap: u64) -> i32 {
    let seconds = duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0));
    // `cap` is at most 900, so this always fits.
    i32::try_from(seconds.min(cap)).unwrap_or(i32::MAX)
}

#[async_trait]
impl JobQueue for SqsQueue {
    async fn send(&self, body: &str, delay: Duration) -> Result<(), QueueError> {
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(QueueError::TooLarge(body.len()));
        }
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(whole_seconds(delay, MAX_DELAY.as_secs()))
            .send()
            .await
            .map_err(|error| sdk_error("SendMessage", &error))?;
        Ok(())
    }

    async fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(whole_seconds(wait, MAX_WAIT_SECONDS))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|error| sdk_error("ReceiveMessage", &error))?;
        output
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|message| {
                let receive_count = message
                    .attributes()
                    .and_then(|attributes| {
                        attributes.get(&MessageSystemAttributeName::ApproximateReceiveCount)
                    })
                    .and_then(|count| count.parse().ok())
                    .unwrap_or(1);
                match (message.message_id, message.receipt_handle) {
                    (Some(message_id), Some(receipt_handle)) => Ok(ReceivedMessage {
                        message_id,
                        receipt_handle,
                        body: message.body.unwrap_or_default(),
                        receive_count,
                    }),
                    _ => Err(QueueError::Unavailable(
                        "SQS ReceiveMessage returned a message without an id or receipt handle"
                            .to_owned(),
                    )),
                }
            })
            .collect()
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        match self
            .client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error)
                if error.as_service_error().is_some_and(|e| {
                    e.is_receipt_handle_is_invalid() || e.is_invalid_id_format()
                }) =>
            {
                tracing::debug!(queue = %self.queue_url, "delete of an unknown receipt handle ignored");
                Ok(())
            }
            Err(error) => Err(sdk_error("DeleteMessage", &error)),
        }
    }
}

/// Create (or update) the standard queue `name` and its dead-letter queue `<name>-dlq`: a message received
/// `max_receive_count` times without being deleted moves to the dead-letter queue, which keeps it 14 days.
/// Returns `(queue_url, dead_letter_queue_url)`. Safe to run again; an existing queue's attributes are set to
/// these.
pub async fn create_queue_with_dead_letter(
    client: &Client,
    name: &str,
    visibility_timeout_secs: u32,
    max_receive_count: u32,
) -> Result<(String, String), QueueError> {
    let dead_letter_url = ensure_queue(
        client,
        &format!("{name}-dlq"),
        vec![(
            QueueAttributeName::MessageRetentionPeriod,
            DEAD_LETTER_RETENTION_SECONDS.to_string(),
        )],
    )
    .await?;
    let attributes = client
        .get_queue_attributes()
        .queue_url(&dead_letter_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|error| sdk_error("GetQueueAttributes", &error))?;
    let dead_letter_arn = attributes
        .attributes()
        .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn))
        .ok_or_else(|| {
            QueueError::Unavailable(format!(
                "SQS GetQueueAttributes: no QueueArn for `{name}-dlq`"
            ))
        })?;
    let redrive_policy = serde_json::json!({
        "deadLetterTargetArn": dead_letter_arn,
        "maxReceiveCount": max_receive_count.to_string(),
    });
    let queue_url = ensure_queue(
        client,
        name,
        vec![
            (
                QueueAttributeName::VisibilityTimeout,
                visibility_timeout_secs.to_string(),
            ),
            (
                QueueAttributeName::RedrivePolicy,
                redrive_policy.to_string(),
            ),
        ],
    )
    .await?;
    Ok((queue_url, dead_letter_url))
}

/// The queue's URL, creating it with `attributes`, or setting them on the queue that already exists.
async fn ensure_queue(
    client: &Client,
    name: &str,
    attributes: Vec<(QueueAttributeName, String)>,
) -> Result<String, QueueError> {
    let mut create = client.create_queue().queue_name(name);
    for (attribute, value) in &attributes {
        create = create.attributes(attribute.clone(), value);
    }
    match create.send().await {
        Ok(output) => output.queue_url.ok_or_else(|| {
            QueueError::Unavailable(format!("SQS CreateQueue: no URL for `{name}`"))
        }),
        // Exists with other attributes: take the URL and set them.
        Err(error)
            if error.as_service_error().is_some_and(|e| {
                e.is_queue_name_exists() || e.code() == Some("QueueAlreadyExists")
            }) =>
        {
            let queue_url = client
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .map_err(|error| sdk_error("GetQueueUrl", &error))?
                .queue_url
                .ok_or_else(|| {
                    QueueError::Unavailable(format!("SQS GetQueueUrl: no URL for `{name}`"))
                })?;
            let mut update = client.set_queue_attributes().queue_url(&queue_url);
            for (attribute, value) in attributes {
                update = update.attributes(attribute, value);
            }
            update
                .send()
                .await
                .map_err(|error| sdk_error("SetQueueAttributes", &error))?;
            Ok(queue_url)
        }
        Err(error) => Err(sdk_error("CreateQueue", &error)),
    }
}

/// A failed SDK call as [`QueueError::Unavailable`] (see [`crate::sdk::describe`]).
fn sdk_error<E, R>(operation: &str, error: &SdkError<E, R>) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    QueueError::Unavailable(crate::sdk::describe("SQS", operation, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_up_to_whole_seconds_and_are_capped() {
        assert_eq!(whole_seconds(Duration::ZERO, 900), 0);
        assert_eq!(whole_seconds(Duration::from_millis(1), 900), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1500), 900), 2);
        assert_eq!(whole_seconds(Duration::from_secs(3), 900), 3);
        assert_eq!(whole_seconds(Duration::from_secs(3600), 900), 900);
        assert_eq!(whole_seconds(Duration::from_secs(30), MAX_WAIT_SECONDS), 20);
        assert_eq!(whole_seconds(Duration::MAX, 900), 900);
    }
}
