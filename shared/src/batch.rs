//! One SQS batch runner for validate and dispatch: each record is parsed and handled on its own, all
//! concurrently, and each failure is reported as a `BatchItemFailure` so only that record is retried.

use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};

use crate::queue::QueueError;
use crate::store::StoreError;

/// Why one record failed. Logged with its message id, never with its body.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("{0}")]
    NotYet(String),
}

/// Run `handle` over every record of `event` concurrently; failed records are reported for retry.
pub async fn run<F, Fut>(event: SqsEvent, handle: F) -> SqsBatchResponse
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), RecordError>>,
{
    let outcomes = futures::future::join_all(event.records.into_iter().map(|record| {
        let id = record.message_id.clone();
        let fut = handle(record);
        async move { (id, fut.await) }
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    for (id, outcome) in outcomes {
        if let Err(error) = outcome {
            let id = id.unwrap_or_default();
            match &error {
                RecordError::NotYet(_) => {
                    tracing::info!(message_id = %id, %error, "record deferred")
                }
                _ => tracing::error!(message_id = %id, %error, "record failed"),
            }
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// Parse a record's JSON body.
pub fn parse_body<T: serde::de::DeserializeOwned>(record: &SqsMessage) -> Result<T, RecordError> {
    let body = record
        .body
        .as_deref()
        .ok_or_else(|| RecordError::Malformed("the record has no body".into()))?;
    serde_json::from_str(body).map_err(|e| RecordError::Malformed(format!("{e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, body: &str) -> SqsMessage {
        let mut message = SqsMessage::default();
        message.message_id = Some(id.to_owned());
        message.body = Some(body.to_owned());
        message
    }

    #[tokio::test]
    async fn only_failed_records_are_reported() {
        let mut event = SqsEvent::default();
        event.records = vec![record("a", "1"), record("b", "oops"), record("c", "3")];
        let response = run(event, |r| async move {
            parse_body::<u32>(&r)?;
            Ok(())
        })
        .await;
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, vec!["b"]);
    }
}
