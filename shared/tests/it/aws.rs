//! Clients and freshly made tables and queues on the AWS-compatible endpoint the AWS tests use.
//!
//! Every test makes its own uniquely named table or queues, so the tests run in parallel and in any order.

use aws_config::{Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use leadhub::queue::sqs::{create_queue_with_dead_letter, SqsQueue};
use leadhub::store::dynamodb::{create_table, DynamoStore};

/// The environment variable naming the endpoint (moto's server on loopback).
pub const ENDPOINT_VARIABLE: &str = "LEADHUB_TEST_AWS_ENDPOINT";

pub fn endpoint() -> String {
    match std::env::var(ENDPOINT_VARIABLE) {
        Ok(endpoint) if !endpoint.is_empty() => endpoint,
        _ => panic!(
            "{ENDPOINT_VARIABLE} is not set: the AWS adapter tests need an AWS-compatible endpoint such as \
             moto's server (run infra/test.sh, or start `moto_server -H 127.0.0.1 -p 5055` and set \
             {ENDPOINT_VARIABLE}=http://127.0.0.1:5055)"
        ),
    }
}

async fn sdk_config() -> SdkConfig {
    sdk_config_loader().load().await
}

/// The tests' SDK settings (endpoint, region, static credentials), to load as they are or amended.
pub fn sdk_config_loader() -> aws_config::ConfigLoader {
    leadhub::runtime::sdk_defaults()
        .endpoint_url(endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "leadhub-tests",
        ))
}

/// A name no other test uses: `prefix` and 64 random bits.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config().await)
}

/// A store on a new table of its own.
pub async fn dynamo_store() -> DynamoStore {
    let client = dynamodb_client().await;
    let table = unique_name("leadhub-test");
    create_table(&client, &table)
        .await
        .unwrap_or_else(|error| panic!("creating table `{table}` failed: {error}"));
    DynamoStore::new(client, table)
}

pub async fn sqs_client() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&sdk_config().await)
}

/// A new queue with the given visibility timeout and its dead-letter queue after `max_receive_count`
/// receives: `(queue, dead_letter_queue)`.
pub async fn sqs_queues(
    visibility_timeout_secs: u32,
    max_receive_count: u32,
) -> (SqsQueue, SqsQueue) {
    let client = sqs_client().await;
    let name = unique_name("leadhub-test");
    let (queue_url, dead_letter_url) =
        create_queue_with_dead_letter(&client, &name, visibility_timeout_secs, max_receive_count)
            .await
            .unwrap_or_else(|error| panic!("creating queue `{name}` failed: {error}"));
    (
        SqsQueue::new(client.clone(), queue_url),
        SqsQueue::new(client, dead_letter_url),
    )
}
