//! AWS SDK errors in words: the service, the operation, and the service's code and message (which never
//! quote item values or message bodies), or the transport failure.

use std::fmt;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

pub(crate) fn describe<E, R>(service: &str, operation: &str, error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    match error {
        SdkError::ServiceError(failure) => {
            let error = failure.err();
            format!(
                "{service} {operation}: {}: {}",
                error.code().unwrap_or("unknown error"),
                error.message().unwrap_or("no message")
            )
        }
        other => format!("{service} {operation}: {}", DisplayErrorContext(other)),
    }
}

/// The DynamoDB and SQS requests a process makes, counted as they are sent: what the cost model of
/// `infra/bench` multiplies by list prices. Attached to a client with
/// `aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(RequestCounter::new(usage))` (leadhub-local
/// does, on `--backend aws`); every attempt counts, retries included, as AWS bills them.
///
/// Capacity units are estimated from the bytes on the wire, rounding up as DynamoDB does: a single-item
/// write is one write request unit per KiB of its request or its answer, whichever is larger (an update is
/// billed by the item's size, which its `ALL_NEW` answer carries), each item of a transaction twice; a read
/// one read unit per 4 KiB of its answer (half for an eventually consistent read, twice in a
/// transaction). The JSON encoding of an item is larger than DynamoDB's own measure of it, so these are
/// upper bounds. Each request's time from sending to its answer is summed too (`latency_ms`).
pub mod usage {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use aws_smithy_runtime_api::box_error::BoxError;
    use aws_smithy_runtime_api::client::interceptors::context::{
        BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    };
    use aws_smithy_runtime_api::client::interceptors::Intercept;
    use aws_smithy_runtime_api::client::orchestrator::Metadata;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
    use serde::Serialize;

    /// Requests and estimated capacity units of one operation.
    #[derive(Debug, Clone, Default, PartialEq, Serialize)]
    pub struct OperationUsage {
        pub requests: u64,
        pub request_bytes: u64,
        pub response_bytes: u64,
        /// DynamoDB write request units (on-demand), estimated from the request.
        pub write_units: f64,
        /// DynamoDB read request units (on-demand), estimated from the answer.
        pub read_units: f64,
        /// Time from sending each request to its answer, summed.
        pub latency_ms: f64,
    }

    /// Usage by `service` and operation name (`"DynamoDB"`/`"PutItem"`, `"SQS"`/`"SendMessage"`, ...).
    pub type Usage = BTreeMap<String, BTreeMap<String, OperationUsage>>;

    /// Counts every request of the clients it is attached to into one shared [`Usage`].
    #[derive(Debug, Clone, Default)]
    pub struct RequestCounter {
        usage: Arc<Mutex<Usage>>,
    }

    /// What `read_before_transmit` learnt of a request, for the answer's hook.
    #[derive(Debug, Clone)]
    struct Pending {
        service: String,
        operation: String,
        /// Read units per 4 KiB of answer: 1 strongly consistent, 0.5 eventually, 2 in a transaction.
        read_factor: f64,
        /// A single-item write, billed by the larger of its request and its answer.
        single_write: bool,
        request_bytes: u64,
        sent: std::time::Instant,
    }

    impl Storable for Pending {
        type Storer = StoreReplace<Self>;
    }

    impl RequestCounter {
        pub fn new() -> Self {
            Self::default()
        }

        /// What has been counted so far.
        pub fn snapshot(&self) -> Usage {
            self.usage.lock().map(|u| u.clone()).unwrap_or_default()
        }

        fn record(&self, service: &str, operation: &str, update: impl FnOnce(&mut OperationUsage)) {
            if let Ok(mut usage) = self.usage.lock() {
                let entry = usage
                    .entry(service.to_owned())
                    .or_default()
                    .entry(operation.to_owned())
                    .or_default();
                update(entry);
            }
        }
    }

    /// Write units of a DynamoDB write request, from its JSON body: a KiB-rounded unit per item, twice in a
    /// transaction; `None` for a request that writes nothing.
    pub fn write_units(operation: &str, body: &[u8]) -> Option<f64> {
        let per_kib = |bytes: usize| (bytes.max(1) as f64 / 1024.0).ceil();
        match operation {
            "PutItem" | "UpdateItem" | "DeleteItem" => Some(per_kib(body.len())),
            "TransactWriteItems" | "BatchWriteItem" => {
                let value: serde_json::Value = serde_json::from_slice(body).ok()?;
                let items: Vec<usize> = match operation {
                    "TransactWriteItems" => value
                        .get("TransactItems")?
                        .as_array()?
                        .iter()
                        .map(|item| item.to_string().len())
                        .collect(),
                    _ => value
                        .get("RequestItems")?
                        .as_object()?
                        .values()
                        .filter_map(|writes| writes.as_array())
                        .flatten()
                        .map(|item| item.to_string().len())
                        .collect(),
                };
                let factor = if operation == "TransactWriteItems" {
                    2.0
                } else {
                    1.0
                };
                Some(items.into_iter().map(|bytes| factor * per_kib(bytes)).sum())
            }
            _ => None,
        }
    }

    /// Write units of a single-item write: a unit per KiB of the request or the answer, whichever is larger.
    pub fn single_write_units(request_bytes: u64, response_bytes: u64) -> f64 {
        (request_bytes.max(response_bytes).max(1) as f64 / 1024.0).ceil()
    }

    /// Read units per 4 KiB of answer of a DynamoDB read request; `None` for a request that reads nothing.
    pub fn read_factor(operation: &str, body: &[u8]) -> Option<f64> {
        let consistent = || {
            serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("ConsistentRead").and_then(|c| c.as_bool()))
                .unwrap_or(false)
        };
        match operation {
            "GetItem" | "Query" | "Scan" | "BatchGetItem" => {
                Some(if consistent() { 1.0 } else { 0.5 })
            }
            "TransactGetItems" => Some(2.0),
            _ => None,
        }
    }

    impl Intercept for RequestCounter {
        fn name(&self) -> &'static str {
            "leadhub::sdk::usage::RequestCounter"
        }

        fn read_before_transmit(
            &self,
            context: &BeforeTransmitInterceptorContextRef<'_>,
            _runtime_components: &RuntimeComponents,
            cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let Some(metadata) = cfg.load::<Metadata>() else {
                return Ok(());
            };
            let (service, operation) = (metadata.service().to_owned(), metadata.name().to_owned());
            let body = context.request().body().bytes().unwrap_or_default();
            let single_write = service == "DynamoDB"
                && matches!(operation.as_str(), "PutItem" | "UpdateItem" | "DeleteItem");
            // Single-item writes are counted with their answer.
            let writes = if service == "DynamoDB" && !single_write {
                write_units(&operation, body)
            } else {
                None
            };
            let read_factor = if service == "DynamoDB" {
                read_factor(&operation, body).unwrap_or(0.0)
            } else {
                0.0
            };
            let bytes = body.len() as u64;
            self.record(&service, &operation, |usage| {
                usage.requests += 1;
                usage.request_bytes += bytes;
                usage.write_units += writes.unwrap_or(0.0);
            });
            cfg.interceptor_state().store_put(Pending {
                service,
                operation,
                read_factor,
                single_write,
                request_bytes: bytes,
                sent: std::time::Instant::now(),
            });
            Ok(())
        }

        fn read_before_deserialization(
            &self,
            context: &BeforeDeserializationInterceptorContextRef<'_>,
            _runtime_components: &RuntimeComponents,
            cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let Some(pending) = cfg.load::<Pending>().cloned() else {
                return Ok(());
            };
            let response = context.response();
            let bytes = response
                .body()
                .bytes()
                .map(|b| b.len() as u64)
                .or_else(|| {
                    response
                        .headers()
                        .get("content-length")
                        .and_then(|v| v.parse().ok())
                })
                .unwrap_or(0);
            let success = response.status().is_success();
            let latency = pending.sent.elapsed().as_secs_f64() * 1000.0;
            self.record(&pending.service, &pending.operation, |usage| {
                usage.response_bytes += bytes;
                usage.latency_ms += latency;
                if success && pending.read_factor > 0.0 {
                    usage.read_units += pending.read_factor * (bytes.max(1) as f64 / 4096.0).ceil();
                }
                // A refused conditional write costs a unit too.
                if pending.single_write {
                    usage.write_units += single_write_units(pending.request_bytes, bytes);
                }
            });
            Ok(())
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn single_writes_are_billed_by_the_larger_of_request_and_answer() {
            assert_eq!(single_write_units(200, 0), 1.0);
            assert_eq!(single_write_units(300, 2500), 3.0);
            assert_eq!(single_write_units(2048, 100), 2.0);
        }

        #[test]
        fn writes_round_up_per_kib_and_count_twice_in_a_transaction() {
            assert_eq!(write_units("PutItem", &[b'x'; 10]), Some(1.0));
            assert_eq!(write_units("UpdateItem", &[b'x'; 1025]), Some(2.0));
            let small = serde_json::json!({"Put": {"Item": {"pk": {"S": "a"}}}});
            let big = serde_json::json!({"Put": {"Item": {"pk": {"S": "b".repeat(1500)}}}});
            let body = serde_json::json!({"TransactItems": [small, big]}).to_string();
            assert_eq!(
                write_units("TransactWriteItems", body.as_bytes()),
                Some(2.0 + 4.0)
            );
            assert_eq!(write_units("GetItem", b"{}"), None);
            assert_eq!(write_units("TransactWriteItems", b"not json"), None);
        }

        #[test]
        fn reads_are_half_a_unit_unless_consistent() {
            assert_eq!(
                read_factor("GetItem", br#"{"ConsistentRead": true}"#),
                Some(1.0)
            );
            assert_eq!(read_factor("Query", b"{}"), Some(0.5));
            assert_eq!(read_factor("TransactGetItems", b"{}"), Some(2.0));
            assert_eq!(read_factor("PutItem", b"{}"), None);
        }
    }
}
