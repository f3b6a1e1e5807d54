//! What the local stack's functions did, as Lambda and AWS would bill it, served at `GET /_local/usage`
//! (the local stack's own route; the partner API on AWS has none): each function's invocations (a request
//! for ingest and callback, a batch of up to 10 messages for validate and dispatch), the records they
//! handled and their time, exact and rounded up to the millisecond per invocation as Lambda bills it; and on
//! `--backend aws` every DynamoDB and SQS request the adapters made ([`leadhub::sdk::usage`]). The benchmark's
//! cost model (`infra/bench`) divides these by the leads delivered.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use leadhub::sdk::usage::RequestCounter;
use serde::Serialize;

/// One function's invocations and time.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FunctionUsage {
    pub invocations: u64,
    pub records: u64,
    /// Wall time inside the handler, in milliseconds.
    pub busy_ms: f64,
    /// The same, each invocation rounded up to a whole millisecond (Lambda's billed duration).
    pub billed_ms: u64,
}

/// The stack's meter.
#[derive(Debug, Default)]
pub struct Metering {
    functions: Mutex<BTreeMap<&'static str, FunctionUsage>>,
    /// Attached to the DynamoDB and SQS clients on `--backend aws`.
    pub requests: RequestCounter,
}

impl Metering {
    /// One invocation of `function` that handled `records` records in `took`.
    pub fn record(&self, function: &'static str, records: usize, took: Duration) {
        if let Ok(mut functions) = self.functions.lock() {
            let usage = functions.entry(function).or_default();
            usage.invocations += 1;
            usage.records += records as u64;
            usage.busy_ms += took.as_secs_f64() * 1000.0;
            usage.billed_ms += took.as_micros().div_ceil(1000).max(1) as u64;
        }
    }

    /// Each function's usage so far.
    pub fn functions(&self) -> BTreeMap<&'static str, FunctionUsage> {
        self.functions.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// The document `GET /_local/usage` answers.
    pub fn report(&self) -> serde_json::Value {
        serde_json::json!({
            "functions": self.functions(),
            "aws_requests": self.requests.snapshot(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocations_are_billed_by_the_millisecond_rounded_up() {
        let metering = Metering::default();
        metering.record("validate", 10, Duration::from_micros(2_300));
        metering.record("validate", 3, Duration::from_micros(200));
        metering.record("ingest", 1, Duration::from_millis(4));
        let functions = metering.functions();
        let validate = &functions["validate"];
        assert_eq!(
            (validate.invocations, validate.records, validate.billed_ms),
            (2, 13, 4)
        );
        assert!((validate.busy_ms - 2.5).abs() < 1e-9);
        assert_eq!(functions["ingest"].billed_ms, 4);
        let report = metering.report();
        assert_eq!(report["functions"]["ingest"]["invocations"], 1);
        assert!(report["aws_requests"]
            .as_object()
            .is_some_and(|r| r.is_empty()));
    }
}
