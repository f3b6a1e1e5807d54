//! `leadhub-admin pump`: the Lambda event source mappings of `template.yaml`, for local runs.
//!
//! On AWS the Lambda service polls the validate and dispatch queues and invokes the functions with batches
//! of messages. Under `cargo lambda watch` nothing does, so this command plays that part against whatever
//! SQS endpoint the SDK is pointed at (moto locally):
//!
//! 1. long-poll the queue (20 s) for up to the mapping's `BatchSize` messages, with every system and
//!    message attribute;
//! 2. once the first message is in, keep receiving until the batch is full or the mapping's
//!    `MaximumBatchingWindowInSeconds` has passed;
//! 3. build the SQS event Lambda sends (`Records[]` with `messageId`, `receiptHandle`, `body`,
//!    `attributes` with `ApproximateReceiveCount`, `messageAttributes`, `md5OfBody`, `eventSource`,
//!    `eventSourceARN`, `awsRegion`) and invoke the function through the Lambda invoke API that
//!    `cargo lambda watch` serves (`POST /2015-03-31/functions/{name}/invocations`);
//! 4. delete the messages not listed in the answer's `batchItemFailures`. As on AWS, a failed invocation
//!    (an error, a non-JSON answer, or a failure naming no message of the batch) deletes nothing: the
//!    messages become visible again after the queue's visibility timeout, and SQS's redrive policy moves
//!    one to the dead-letter queue after `maxReceiveCount` receives.
//!
//! One poller per queue, one batch at a time (Lambda runs several at once; the hub's handlers are
//! idempotent either way). Ctrl-C stops receiving at once and lets the batch in flight finish.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName,
};
use serde_json::{json, Value};
use tokio::sync::watch;

/// One event source mapping: a queue feeding a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The function's name under `cargo lambda watch` (its binary name).
    pub function: String,
    pub queue_url: String,
    /// `BatchSize` in `template.yaml`.
    pub batch_size: usize,
    /// `MaximumBatchingWindowInSeconds` in `template.yaml`.
    pub batching_window: Duration,
}

/// The template's mappings: validate takes batches of 10, dispatch of 5, both with a 1 s window
/// (checked against `template.yaml` by `the_mappings_are_the_templates`).
pub const VALIDATE: (&str, usize, u64) = ("validate", 10, 1);
pub const DISPATCH: (&str, usize, u64) = ("dispatch", 5, 1);

impl Mapping {
    pub fn new((function, batch_size, window_secs): (&str, usize, u64), queue_url: String) -> Self {
        Mapping {
            function: function.to_owned(),
            queue_url,
            batch_size,
            batching_window: Duration::from_secs(window_secs),
        }
    }
}

/// SQS's longest long poll, and the most messages one receive returns.
const LONG_POLL_SECONDS: i32 = 20;
const MAX_PER_RECEIVE: usize = 10;

/// Where and how to invoke.
#[derive(Debug, Clone)]
pub struct Invoker {
    pub http: reqwest::Client,
    /// `cargo lambda watch`'s address, e.g. `http://127.0.0.1:9000`.
    pub base_url: String,
}

impl Invoker {
    pub fn new(base_url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .context("building the HTTP client")?;
        Ok(Invoker {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }

    fn url(&self, function: &str) -> String {
        format!(
            "{}/2015-03-31/functions/{function}/invocations",
            self.base_url
        )
    }

    /// Invoke `function` with `event`; the message ids it reports as failed, or why the whole
    /// invocation counts as failed.
    async fn invoke(&self, function: &str, event: &Value) -> Result<Vec<String>, String> {
        let response = self
            .http
            .post(self.url(function))
            .json(event)
            .send()
            .await
            .map_err(|error| format!("cannot invoke {function}: {error}"))?;
        let status = response.status();
        let function_error = response
            .headers()
            .get("x-amz-function-error")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .bytes()
            .await
            .map_err(|error| format!("cannot read {function}'s answer: {error}"))?;
        batch_failures(status.as_u16(), function_error.as_deref(), &body)
    }
}

/// Read an invocation's answer as Lambda's event source mapping does: the ids in `batchItemFailures`, or
/// an error when the invocation failed as a whole.
pub fn batch_failures(
    status: u16,
    function_error: Option<&str>,
    body: &[u8],
) -> Result<Vec<String>, String> {
    let text = String::from_utf8_lossy(body);
    if !(200..300).contains(&status) {
        return Err(format!(
            "the invoke API answered {status}: {}",
            short(&text)
        ));
    }
    let answer: Value = serde_json::from_slice(body)
        .map_err(|_| format!("the function's answer is not JSON: {}", short(&text)))?;
    if function_error.is_some() || answer.get("errorType").is_some() {
        let kind = answer["errorType"].as_str().unwrap_or("Unhandled");
        let message = answer["errorMessage"].as_str().unwrap_or("");
        return Err(format!("the function failed ({kind}): {}", short(message)));
    }
    // A function that returns nothing (or null) reported no failures.
    let failures = match answer.get("batchItemFailures") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(failures)) => failures,
        Some(_) => return Err("batchItemFailures is not a list".to_owned()),
    };
    failures
        .iter()
        .map(|failure| match failure.get("itemIdentifier") {
            Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
            _ => Err("a batchItemFailures entry has no itemIdentifier".to_owned()),
        })
        .collect()
}

fn short(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}

/// The SQS event Lambda would send for `messages` (see the module documentation).
pub fn sqs_event(messages: &[Message], queue_arn: &str, region: &str) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|message| {
            let attributes: serde_json::Map<String, Value> = message
                .attributes()
                .map(|attributes| {
                    attributes
                        .iter()
                        .map(|(name, value)| (name.as_str().to_owned(), json!(value)))
                        .collect()
                })
                .unwrap_or_default();
            let message_attributes: serde_json::Map<String, Value> = message
                .message_attributes()
                .map(|attributes| {
                    attributes
                        .iter()
                        .map(|(name, value)| (name.clone(), message_attribute(value)))
                        .collect()
                })
                .unwrap_or_default();
            let mut record = json!({
                "messageId": message.message_id(),
                "receiptHandle": message.receipt_handle(),
                "body": message.body().unwrap_or_default(),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": message.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            });
            if let Some(md5) = message.md5_of_message_attributes() {
                record["md5OfMessageAttributes"] = json!(md5);
            }
            record
        })
        .collect();
    json!({ "Records": records })
}

fn message_attribute(value: &MessageAttributeValue) -> Value {
    use base64::Engine as _;
    let b64 = |blob: &aws_smithy_types::Blob| {
        base64::engine::general_purpose::STANDARD.encode(blob.as_ref())
    };
    let mut attribute = json!({
        "stringListValues": value.string_list_values(),
        "binaryListValues": value.binary_list_values().iter().map(b64).collect::<Vec<_>>(),
        "dataType": value.data_type(),
    });
    if let Some(string) = value.string_value() {
        attribute["stringValue"] = json!(string);
    }
    if let Some(binary) = value.binary_value() {
        attribute["binaryValue"] = json!(b64(binary));
    }
    attribute
}

/// What one batch came to, for the one line printed per batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchReport {
    pub function: String,
    pub size: usize,
    pub failed: usize,
    /// Set when the invocation failed as a whole (nothing was deleted).
    pub error: Option<String>,
    pub took: Duration,
}

impl std::fmt::Display for BatchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<9} batch of {:>2}  failures {:>2}  ({} ms)",
            self.function,
            self.size,
            self.failed,
            self.took.as_millis()
        )?;
        if let Some(error) = &self.error {
            write!(f, "  invocation failed: {error}")?;
        }
        Ok(())
    }
}

/// One queue's poller: runs until `stop` turns true, calling `report` once per batch.
pub async fn poll(
    sqs: aws_sdk_sqs::Client,
    region: String,
    invoker: Invoker,
    mapping: Mapping,
    mut stop: watch::Receiver<bool>,
    report: impl Fn(&BatchReport),
) -> anyhow::Result<()> {
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&mapping.queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .with_context(|| format!("cannot read the attributes of {}", mapping.queue_url))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .with_context(|| format!("SQS gave no QueueArn for {}", mapping.queue_url))?;
    while !*stop.borrow() {
        let first = tokio::select! {
            received = receive(&sqs, &mapping.queue_url, mapping.batch_size, LONG_POLL_SECONDS) => received,
            _ = stop.changed() => break,
        };
        let mut messages = match first {
            Ok(messages) => messages,
            Err(error) => {
                eprintln!("{:<9} cannot receive: {error:#}", mapping.function);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {},
                    _ = stop.changed() => break,
                }
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        // The batching window: gather until the batch is full or the window has passed.
        let window_start = Instant::now();
        while messages.len() < mapping.batch_size {
            let left = mapping
                .batching_window
                .saturating_sub(window_start.elapsed());
            if left.is_zero() {
                break;
            }
            let wait = i32::try_from(left.as_secs().max(1)).unwrap_or(LONG_POLL_SECONDS);
            match receive(
                &sqs,
                &mapping.queue_url,
                mapping.batch_size - messages.len(),
                wait.min(LONG_POLL_SECONDS),
            )
            .await
            {
                Ok(more) if more.is_empty() => break,
                Ok(more) => messages.extend(more),
                Err(error) => {
                    eprintln!("{:<9} cannot receive: {error:#}", mapping.function);
                    break;
                }
            }
        }
        let started = Instant::now();
        let event = sqs_event(&messages, &queue_arn, &region);
        let outcome = invoker.invoke(&mapping.function, &event).await;
        let ids: Vec<&str> = messages.iter().filter_map(|m| m.message_id()).collect();
        let outcome = outcome.and_then(|failed| {
            // Lambda fails the whole batch when a reported id is not one of the batch's.
            match failed.iter().find(|id| !ids.contains(&id.as_str())) {
                Some(stranger) => Err(format!(
                    "batchItemFailures names `{stranger}`, which is not in the batch"
                )),
                None => Ok(failed),
            }
        });
        let (failed, error) = match outcome {
            Ok(failed) => {
                let done: Vec<&Message> = messages
                    .iter()
                    .filter(|m| !failed.iter().any(|id| Some(id.as_str()) == m.message_id()))
                    .collect();
                if let Err(error) = delete(&sqs, &mapping.queue_url, &done).await {
                    eprintln!(
                        "{:<9} cannot delete handled messages: {error:#}",
                        mapping.function
                    );
                }
                (failed.len(), None)
            }
            Err(error) => (messages.len(), Some(error)),
        };
        report(&BatchReport {
            function: mapping.function.clone(),
            size: messages.len(),
            failed,
            error,
            took: started.elapsed(),
        });
    }
    Ok(())
}

async fn receive(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    max: usize,
    wait_seconds: i32,
) -> anyhow::Result<Vec<Message>> {
    let max = i32::try_from(max.clamp(1, MAX_PER_RECEIVE)).unwrap_or(1);
    let output = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(max)
        .wait_time_seconds(wait_seconds)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .map_err(aws_sdk_sqs::Error::from)
        .context("ReceiveMessage")?;
    Ok(output.messages.unwrap_or_default())
}

async fn delete(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    messages: &[&Message],
) -> anyhow::Result<()> {
    for chunk in messages.chunks(MAX_PER_RECEIVE) {
        let mut request = sqs.delete_message_batch().queue_url(queue_url);
        for (i, message) in chunk.iter().enumerate() {
            let Some(handle) = message.receipt_handle() else {
                continue;
            };
            request = request.entries(
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .receipt_handle(handle)
                    .build()
                    .context("a delete entry")?,
            );
        }
        let output = request
            .send()
            .await
            .map_err(aws_sdk_sqs::Error::from)
            .context("DeleteMessageBatch")?;
        if let Some(failure) = output.failed().first() {
            bail!(
                "DeleteMessageBatch refused {} of {} ({}: {})",
                output.failed().len(),
                chunk.len(),
                failure.code(),
                failure.message().unwrap_or("")
            );
        }
    }
    Ok(())
}

/// Both pollers until Ctrl-C.
pub async fn run(
    sqs: aws_sdk_sqs::Client,
    region: String,
    invoker: Invoker,
    mappings: Vec<Mapping>,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut pollers = tokio::task::JoinSet::new();
    for mapping in mappings {
        println!(
            "pump: {} <- {} (batch {}, window {} s)",
            mapping.function,
            mapping.queue_url,
            mapping.batch_size,
            mapping.batching_window.as_secs()
        );
        pollers.spawn(poll(
            sqs.clone(),
            region.clone(),
            invoker.clone(),
            mapping,
            stop_rx.clone(),
            |report| println!("{report}"),
        ));
    }
    println!("pump: invoking through {}; Ctrl-C stops", invoker.base_url);
    let mut result = Ok(());
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                println!("pump: stopping (batches in flight finish first; Ctrl-C again to abort)");
                let _ = stop_tx.send(true);
                break;
            }
            joined = pollers.join_next() => match joined {
                None => return result,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(error))) => { result = Err(error); let _ = stop_tx.send(true); break; }
                Some(Err(error)) => { result = Err(error.into()); let _ = stop_tx.send(true); break; }
            }
        }
    }
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => { pollers.abort_all(); println!("pump: aborted"); return result; }
            joined = pollers.join_next() => match joined {
                None => break,
                Some(Ok(Err(error))) if result.is_ok() => result = Err(error),
                Some(_) => {}
            }
        }
    }
    println!("pump: stopped");
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::SqsEvent;
    use std::collections::HashMap;

    /// `template.yaml`'s `BatchSize` and `MaximumBatchingWindowInSeconds` for the mapping of `queue` (its
    /// logical id), read from the text (the template has one SQS event per queue).
    fn template_mapping(template: &str, queue: &str) -> Option<(usize, u64)> {
        let marker = format!("Queue: !GetAtt {queue}.Arn");
        let rest = &template[template.find(&marker)? + marker.len()..];
        let value = |key: &str| -> Option<u64> {
            let line = rest.lines().take(8).find(|l| l.trim().starts_with(key))?;
            line.trim().strip_prefix(key)?.trim().parse().ok()
        };
        Some((
            usize::try_from(value("BatchSize:")?).ok()?,
            value("MaximumBatchingWindowInSeconds:")?,
        ))
    }

    /// For tests: the fields of an SQS message as the SDK would give them.
    fn message(id: &str, body: &str, attributes: HashMap<&str, &str>) -> Message {
        let mut builder = Message::builder()
            .message_id(id)
            .receipt_handle(format!("rh-{id}"))
            .body(body)
            .md5_of_body("d41d8cd98f00b204e9800998ecf8427e");
        for (name, value) in attributes {
            builder = builder.attributes(MessageSystemAttributeName::from(name), value);
        }
        builder.build()
    }

    #[test]
    fn the_mappings_are_the_templates() {
        let template = include_str!("../../../template.yaml");
        assert_eq!(
            template_mapping(template, "ValidateQueue"),
            Some((VALIDATE.1, VALIDATE.2))
        );
        assert_eq!(
            template_mapping(template, "DispatchQueue"),
            Some((DISPATCH.1, DISPATCH.2))
        );
    }

    #[test]
    fn the_event_is_what_the_functions_read_as_an_sqs_event() {
        let messages = vec![
            message(
                "m-1",
                r#"{"leadId":"lead_1"}"#,
                HashMap::from([
                    ("ApproximateReceiveCount", "3"),
                    ("SentTimestamp", "1764660000000"),
                ]),
            ),
            message("m-2", "not json", HashMap::new()),
        ];
        let event = sqs_event(
            &messages,
            "arn:aws:sqs:us-east-1:123456789012:lh-validate",
            "us-east-1",
        );
        let parsed: SqsEvent = serde_json::from_value(event.clone()).expect("an SqsEvent");
        assert_eq!(parsed.records.len(), 2);
        let first = &parsed.records[0];
        assert_eq!(first.message_id.as_deref(), Some("m-1"));
        assert_eq!(first.receipt_handle.as_deref(), Some("rh-m-1"));
        assert_eq!(first.body.as_deref(), Some(r#"{"leadId":"lead_1"}"#));
        assert_eq!(first.attributes["ApproximateReceiveCount"], "3");
        assert_eq!(first.event_source.as_deref(), Some("aws:sqs"));
        assert_eq!(
            first.event_source_arn.as_deref(),
            Some("arn:aws:sqs:us-east-1:123456789012:lh-validate")
        );
        assert_eq!(first.aws_region.as_deref(), Some("us-east-1"));
        assert_eq!(event["Records"][1]["body"], "not json");
    }

    #[test]
    fn message_attributes_keep_their_types_and_values() {
        let value = MessageAttributeValue::builder()
            .data_type("String")
            .string_value("heloc")
            .build()
            .expect("an attribute");
        let attribute = message_attribute(&value);
        assert_eq!(attribute["dataType"], "String");
        assert_eq!(attribute["stringValue"], "heloc");
        assert_eq!(attribute["stringListValues"], json!([]));
        let binary = MessageAttributeValue::builder()
            .data_type("Binary")
            .binary_value(aws_smithy_types::Blob::new(b"hi".to_vec()))
            .build()
            .expect("an attribute");
        assert_eq!(message_attribute(&binary)["binaryValue"], "aGk=");
    }

    #[test]
    fn answers_are_read_as_the_event_source_mapping_reads_them() {
        let ok = |body: &str| batch_failures(200, None, body.as_bytes());
        assert_eq!(ok(r#"{"batchItemFailures":[]}"#), Ok(vec![]));
        assert_eq!(
            ok(r#"{"batchItemFailures":[{"itemIdentifier":"m-2"}]}"#),
            Ok(vec!["m-2".to_owned()])
        );
        assert_eq!(ok("null"), Ok(vec![]));
        assert_eq!(ok("{}"), Ok(vec![]));
        assert!(ok(r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#).is_err());
        assert!(ok(r#"{"batchItemFailures":"m-2"}"#).is_err());
        assert!(ok("not json").is_err());
        assert!(ok(r#"{"errorType":"Panic","errorMessage":"boom"}"#).is_err());
        assert!(batch_failures(200, Some("Unhandled"), b"{}").is_err());
        assert!(batch_failures(502, None, b"bad gateway").is_err());
    }

    #[test]
    fn the_report_line_names_queue_size_and_failures() {
        let report = BatchReport {
            function: "validate".into(),
            size: 3,
            failed: 1,
            error: None,
            took: Duration::from_millis(42),
        };
        assert_eq!(
            report.to_string(),
            "validate  batch of  3  failures  1  (42 ms)"
        );
    }
}
