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
    report(outcomes)
}

/// The batch response for each record's outcome (by message id): every failure is reported for retry,
/// and logged with its message id.
pub fn report(
    outcomes: impl IntoIterator<Item = (Option<String>, Result<(), RecordError>)>,
) -> SqsBatchResponse {
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

/// Which items must run one after another: items that share a key (transitively) form one group, in
/// their given order; different groups may run concurrently. `keys[i]` are item `i`'s keys.
pub fn groups(keys: &[Vec<String>]) -> Vec<Vec<usize>> {
    let mut group_of_key: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    // Union-find over items: parent[i] leads to the group's first item.
    let mut parent: Vec<usize> = (0..keys.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (item, item_keys) in keys.iter().enumerate() {
        for key in item_keys {
            match group_of_key.get(key.as_str()) {
                Some(&other) => {
                    let (a, b) = (root(&mut parent, other), root(&mut parent, item));
                    if a != b {
                        parent[a.max(b)] = a.min(b);
                    }
                }
                None => {
                    group_of_key.insert(key, item);
                }
            }
        }
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut index_of_root: std::collections::HashMap<usize, usize> =
        std::collections::HashMap::new();
    for item in 0..keys.len() {
        let r = root(&mut parent, item);
        let at = *index_of_root.entry(r).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[at].push(item);
    }
    groups
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

    #[test]
    fn items_sharing_a_key_are_grouped_in_order() {
        let keys = |list: &[&[&str]]| -> Vec<Vec<String>> {
            list.iter()
                .map(|k| k.iter().map(|s| (*s).to_owned()).collect())
                .collect()
        };
        assert_eq!(
            groups(&keys(&[&["a"], &["b"], &["a", "c"], &[], &["c"], &["b"]])),
            vec![vec![0, 2, 4], vec![1, 5], vec![3]]
        );
        // Two groups joined by a later item become one, still in order.
        assert_eq!(
            groups(&keys(&[&["x"], &["y"], &["y", "x"]])),
            vec![vec![0, 1, 2]]
        );
        assert!(groups(&[]).is_empty());
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
