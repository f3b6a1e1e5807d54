//! The `JobQueue` contract: at-least-once delivery with SQS's delays, visibility timeout, receive counts and
//! dead-letter queue.
//!
//! Each check is written once, as an async function of a queue and its dead-letter queue; `queue_contract!`
//! runs it against the memory queue and (ignored unless moto is up) against SQS, each test on new queues
//! with a visibility timeout of [`VISIBILITY_SECS`] and a dead-letter queue after [`MAX_RECEIVES`] receives.

use std::collections::HashSet;
use std::time::Duration;

use leadhub::queue::{JobQueue, QueueError, ReceivedMessage, MAX_MESSAGE_BYTES};
use tokio::time::Instant;

/// The queues' visibility timeout: short, so that redelivery is quick to observe.
const VISIBILITY_SECS: u32 = 1;
/// Receives after which an undeleted message moves to the dead-letter queue.
const MAX_RECEIVES: u32 = 2;

macro_rules! queue_contract {
    ($($check:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $check() {
                    use std::sync::Arc;
                    use std::time::Duration;
                    use leadhub::queue::memory::MemoryQueue;
                    let visibility = Duration::from_secs(u64::from(super::VISIBILITY_SECS));
                    let dead_letter = Arc::new(MemoryQueue::new("jobs-dlq", visibility));
                    let queue = MemoryQueue::new("jobs", visibility)
                        .with_dead_letter(Arc::clone(&dead_letter), super::MAX_RECEIVES);
                    super::$check(&queue, dead_letter.as_ref()).await;
                }
            )*
        }

        mod sqs {
            $(
                #[tokio::test]
                #[ignore = "needs moto: run infra/test.sh (or set LEADHUB_TEST_AWS_ENDPOINT)"]
                async fn $check() {
                    let (queue, dead_letter) =
                        crate::aws::sqs_queues(super::VISIBILITY_SECS, super::MAX_RECEIVES).await;
                    super::$check(&queue, &dead_letter).await;
                }
            )*
        }
    };
}

queue_contract!(
    send_receive_delete,
    undeleted_message_comes_back_after_the_visibility_timeout,
    delay_hides_a_message_until_due,
    receive_returns_at_most_max,
    message_moves_to_the_dead_letter_queue_after_max_receives,
    delete_of_an_unknown_or_stale_receipt_is_not_an_error,
    bodies_round_trip_unicode,
    too_large_body_is_refused,
);

/// Long enough for a message to become visible again.
fn after_visibility() -> Duration {
    Duration::from_millis(u64::from(VISIBILITY_SECS) * 1000 + 300)
}

async fn receive_one(queue: &dyn JobQueue, wait: Duration) -> ReceivedMessage {
    let mut messages = queue.receive(10, wait).await.expect("receive");
    assert_eq!(messages.len(), 1, "expected exactly one message");
    messages.remove(0)
}

async fn assert_empty(queue: &dyn JobQueue) {
    let messages = queue.receive(10, Duration::ZERO).await.expect("receive");
    assert!(
        messages.is_empty(),
        "expected no visible message, got {}",
        messages.len()
    );
}

pub async fn send_receive_delete(queue: &dyn JobQueue, _dead_letter: &dyn JobQueue) {
    queue
        .send(r#"{"kind":"validate","leadId":"lead_01"}"#, Duration::ZERO)
        .await
        .expect("send");
    let message = receive_one(queue, Duration::from_secs(2)).await;
    assert_eq!(message.body, r#"{"kind":"validate","leadId":"lead_01"}"#);
    assert_eq!(message.receive_count, 1);
    assert!(!message.message_id.is_empty());
    queue.delete(&message.receipt_handle).await.expect("delete");
    // Deleted: it does not come back after the visibility timeout.
    tokio::time::sleep(after_visibility()).await;
    assert_empty(queue).await;
}

pub async fn undeleted_message_comes_back_after_the_visibility_timeout(
    queue: &dyn JobQueue,
    _dead_letter: &dyn JobQueue,
) {
    queue.send("job-1", Duration::ZERO).await.expect("send");
    let first = receive_one(queue, Duration::from_secs(2)).await;
    assert_eq!(first.receive_count, 1);
    // Invisible while its receiver holds it.
    assert_empty(queue).await;

    tokio::time::sleep(after_visibility()).await;
    let second = receive_one(queue, Duration::from_secs(2)).await;
    assert_eq!(second.message_id, first.message_id);
    assert_eq!(second.body, "job-1");
    assert_eq!(second.receive_count, 2);
    assert_ne!(second.receipt_handle, first.receipt_handle);

    // The first receiver's delete comes too late to matter; the second's removes the message.
    queue
        .delete(&first.receipt_handle)
        .await
        .expect("stale delete");
    queue.delete(&second.receipt_handle).await.expect("delete");
    tokio::time::sleep(after_visibility()).await;
    assert_empty(queue).await;
}

pub async fn delay_hides_a_message_until_due(queue: &dyn JobQueue, _dead_letter: &dyn JobQueue) {
    let sent = Instant::now();
    queue
        .send("later", Duration::from_secs(2))
        .await
        .expect("send");
    queue.send("now", Duration::ZERO).await.expect("send");
    let now = receive_one(queue, Duration::from_secs(1)).await;
    assert_eq!(now.body, "now");
    queue.delete(&now.receipt_handle).await.expect("delete");
    assert_empty(queue).await;

    let later = receive_one(queue, Duration::from_secs(5)).await;
    assert_eq!(later.body, "later");
    assert!(
        sent.elapsed() >= Duration::from_millis(1500),
        "a delayed message must stay hidden until due"
    );
}

pub async fn receive_returns_at_most_max(queue: &dyn JobQueue, _dead_letter: &dyn JobQueue) {
    for n in 0..12 {
        queue
            .send(&format!("job-{n}"), Duration::ZERO)
            .await
            .expect("send");
    }
    let two = queue
        .receive(2, Duration::from_secs(1))
        .await
        .expect("receive");
    assert!((1..=2).contains(&two.len()), "got {}", two.len());
    let mut seen: HashSet<String> = two.into_iter().map(|m| m.body).collect();

    // More than 10 is capped at SQS's 10.
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < 12 && Instant::now() < deadline {
        let batch = queue
            .receive(50, Duration::from_secs(1))
            .await
            .expect("receive");
        assert!(batch.len() <= 10, "got {}", batch.len());
        for message in batch {
            assert!(
                seen.insert(message.body),
                "a message came twice within its visibility timeout"
            );
        }
    }
    let expected: HashSet<String> = (0..12).map(|n| format!("job-{n}")).collect();
    assert_eq!(seen, expected);
}

pub async fn message_moves_to_the_dead_letter_queue_after_max_receives(
    queue: &dyn JobQueue,
    dead_letter: &dyn JobQueue,
) {
    queue.send("poison", Duration::ZERO).await.expect("send");
    for receive in 1..=MAX_RECEIVES {
        let message = receive_one(queue, Duration::from_secs(2)).await;
        assert_eq!(message.receive_count, receive);
        tokio::time::sleep(after_visibility()).await;
    }
    // Received MAX_RECEIVES times without a delete: the next receive moves it instead of handing it out.
    let messages = queue
        .receive(10, Duration::from_secs(1))
        .await
        .expect("receive");
    assert!(
        messages.is_empty(),
        "the message must not be handed out again"
    );
    let parked = receive_one(dead_letter, Duration::from_secs(2)).await;
    assert_eq!(parked.body, "poison");
    dead_letter
        .delete(&parked.receipt_handle)
        .await
        .expect("delete");
    assert_empty(queue).await;
}

pub async fn delete_of_an_unknown_or_stale_receipt_is_not_an_error(
    queue: &dyn JobQueue,
    _dead_letter: &dyn JobQueue,
) {
    queue
        .delete("not-a-receipt-handle")
        .await
        .expect("unknown receipt");
    queue.send("job", Duration::ZERO).await.expect("send");
    let message = receive_one(queue, Duration::from_secs(2)).await;
    queue.delete(&message.receipt_handle).await.expect("delete");
    queue
        .delete(&message.receipt_handle)
        .await
        .expect("delete twice");
}

pub async fn bodies_round_trip_unicode(queue: &dyn JobQueue, _dead_letter: &dyn JobQueue) {
    let body = serde_json::json!({
        "leadId": "lead_01HZY0000000000000000000",
        "note": "Zoë — São Paulo 日本語 🏠 \"quoted\" \\ back\\slash\nnew line\ttab <xml> & 'apostrophe'",
    })
    .to_string();
    queue.send(&body, Duration::ZERO).await.expect("send");
    let message = receive_one(queue, Duration::from_secs(2)).await;
    assert_eq!(message.body, body);
    queue.delete(&message.receipt_handle).await.expect("delete");
}

pub async fn too_large_body_is_refused(queue: &dyn JobQueue, _dead_letter: &dyn JobQueue) {
    let body = "x".repeat(MAX_MESSAGE_BYTES + 1);
    assert!(matches!(
        queue.send(&body, Duration::ZERO).await,
        Err(QueueError::TooLarge(size)) if size == MAX_MESSAGE_BYTES + 1
    ));
    // The largest message fits.
    let body = "y".repeat(MAX_MESSAGE_BYTES);
    queue.send(&body, Duration::ZERO).await.expect("send");
    let message = receive_one(queue, Duration::from_secs(2)).await;
    assert_eq!(message.body.len(), MAX_MESSAGE_BYTES);
}

#[tokio::test]
#[ignore = "needs moto: run infra/test.sh (or set LEADHUB_TEST_AWS_ENDPOINT)"]
async fn sqs_create_queue_with_dead_letter_is_idempotent() {
    let client = crate::aws::sqs_client().await;
    let name = crate::aws::unique_name("leadhub-test");
    let first = leadhub::queue::sqs::create_queue_with_dead_letter(&client, &name, 30, 5)
        .await
        .expect("creates the queues");
    // Again, with other settings: the same queues, now with these settings.
    let second = leadhub::queue::sqs::create_queue_with_dead_letter(&client, &name, 1, 2)
        .await
        .expect("accepts existing queues");
    assert_eq!(first, second);
    assert!(second.1.ends_with(&format!("{name}-dlq")));
    let queue = leadhub::queue::sqs::SqsQueue::new(client.clone(), second.0);
    let dead_letter = leadhub::queue::sqs::SqsQueue::new(client, second.1);
    undeleted_message_comes_back_after_the_visibility_timeout(&queue, &dead_letter).await;
}
