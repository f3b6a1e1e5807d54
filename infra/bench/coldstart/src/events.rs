//! The events each bootstrap is invoked with, and the environment it runs in.
//!
//! Each event drives its handler along its real path up to its first AWS call, which fails at once
//! (`AWS_ENDPOINT_URL` is a closed loopback port, `AWS_MAX_ATTEMPTS=1`), so no AWS is needed and nothing
//! waits on a network:
//!
//! - ingest: an API Gateway HTTP API (payload 2.0) `POST /v1/leads/heloc` with partner `acme`'s key and the
//!   example HELOC lead: authentication, the vertical's full parse and checks, the lead record; then the
//!   DynamoDB put fails and the partner is answered 503.
//! - validate: an SQS batch of one `ValidateJob`: the body's parse, then the lead's DynamoDB read fails and
//!   the record is reported in `batchItemFailures`.
//! - dispatch: an SQS batch of one `deliver` job: the same, at dispatch's first read of the lead.
//! - callback: an HTTP API `POST /v1/callbacks/lender-webhook/{token}` with a token signed with the config's
//!   callback key and a `confirmed` verdict: token check, verdict parse, then the lead's read fails (503).
//! - hello: `{"name": "coldstart"}`, answered `{"message": "Hello, coldstart!"}`.

use anyhow::Context;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use leadhub::delivery::{DispatchJob, ValidateJob};
use leadhub::ids::DestinationId;
use leadhub::lead::LeadId;
use leadhub::settings::Config;
use serde_json::{json, Value};

/// The secrets `infra/config.example.toml` references, with bench values (never real ones).
pub const CONFIG_SECRETS: &[(&str, &str)] = &[
    ("LEADHUB_HASH_KEY", "bench-hash-key-0123456789abcdef01234"),
    (
        "LEADHUB_CALLBACK_KEY",
        "bench-callback-key-0123456789abcdef0",
    ),
    ("LEADHUB_SSN_KEY", "bench-ssn-key-0123456789abcdef0123456"),
    (
        "LENDER_WEBHOOK_SECRET",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ),
    ("SONAR_CLIENT_SECRET", "bench"),
    ("NTHERM_USERNAME", "bench"),
    ("NTHERM_PASSWORD", "bench"),
    ("HELOC_LENDER_API_KEY", "bench"),
    ("LOFTY_ACCESS_TOKEN", "bench"),
    ("LOFTY_VENDOR_KEY", "bench"),
    ("LEADSAFE_API_KEY", "bench"),
    ("LEADSAFE_CLIENT_SECRET", "bench"),
];

/// The example partner's key (`infra/config.example.toml`: `pk_acme`, secret `sk_acme_example`).
pub const PARTNER_KEY: &str = "pk_acme:sk_acme_example";

/// The destination the callback event reports on (one of the example config's).
pub const CALLBACK_DESTINATION: &str = "lender-webhook";

/// A fixed lead id for the jobs and the callback token.
pub const LEAD_ID: &str = "lead_01JCQ5B7N8ZK3W6V0R2T4M9HXE";

/// What a bootstrap needs in its environment besides the Runtime API's own variables: the table and
/// queues (any name: no call reaches them), the config file and its secrets, dummy AWS credentials, and an
/// endpoint that refuses connections at once (`closed_endpoint`, e.g. `http://127.0.0.1:9`).
pub fn function_env(config_file: &str, closed_endpoint: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("LEADHUB_TABLE", "leadhub-bench"),
        (
            "LEADHUB_VALIDATE_QUEUE_URL",
            "http://127.0.0.1:9/123456789012/leadhub-bench-validate",
        ),
        (
            "LEADHUB_DISPATCH_QUEUE_URL",
            "http://127.0.0.1:9/123456789012/leadhub-bench-dispatch",
        ),
        ("LEADHUB_CONFIG_FILE", config_file),
        ("LEADHUB_PUBLIC_BASE_URL", "https://api.leadhub.example"),
        ("AWS_ENDPOINT_URL", closed_endpoint),
        ("AWS_MAX_ATTEMPTS", "1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_SESSION_TOKEN", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ("RUST_LOG", "info"),
    ]
    .iter()
    .chain(CONFIG_SECRETS)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    env.sort();
    env
}

/// Secrets as [`Config::from_toml`] reads them.
pub fn secrets() -> std::collections::BTreeMap<String, String> {
    CONFIG_SECRETS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The hello-world function's event.
pub fn hello() -> Value {
    json!({ "name": "coldstart" })
}

fn http_api(method: &str, route_key: &str, path: &str, headers: Value, body: &str) -> Value {
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "leadhubapi",
            "domainName": "leadhubapi.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "leadhubapi",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": "leadhub-coldstart/1.0"
            },
            "requestId": "coldstart-request",
            "routeKey": route_key,
            "stage": "$default",
            "time": "01/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1_793_534_400_000_u64
        },
        "body": body,
        "isBase64Encoded": false
    })
}

/// ingest's event: the example HELOC lead posted by the example partner.
pub fn ingest(heloc_lead: &str) -> Value {
    let mut event = http_api(
        "POST",
        "POST /v1/leads/{vertical}",
        "/v1/leads/heloc",
        json!({
            "authorization": format!("Basic {}", STANDARD.encode(PARTNER_KEY)),
            "content-type": "application/json",
            "host": "leadhubapi.execute-api.us-east-1.amazonaws.com",
            "user-agent": "leadhub-coldstart/1.0",
            "x-forwarded-for": "203.0.113.10",
            "x-forwarded-proto": "https"
        }),
        heloc_lead,
    );
    event["pathParameters"] = json!({ "vertical": "heloc" });
    event
}

/// callback's event: a `confirmed` verdict with a token the config's callback key signed.
pub fn callback(config: &Config) -> anyhow::Result<Value> {
    let lead_id: LeadId = LEAD_ID.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let token = leadhub::callbacks::token(&config.callback_signer, CALLBACK_DESTINATION, &lead_id);
    let path = format!("/v1/callbacks/{CALLBACK_DESTINATION}/{token}");
    let mut event = http_api(
        "POST",
        "POST /v1/callbacks/{destination}/{token}",
        &path,
        json!({
            "content-type": "application/json",
            "host": "leadhubapi.execute-api.us-east-1.amazonaws.com",
            "user-agent": "leadhub-coldstart/1.0"
        }),
        r#"{"verdict":"confirmed","buyerRef":"bench-1"}"#,
    );
    event["pathParameters"] = json!({ "destination": CALLBACK_DESTINATION, "token": token });
    Ok(event)
}

fn sqs(queue: &str, body: &str) -> Value {
    json!({
        "Records": [{
            "messageId": "c01d57a2-0000-4000-8000-000000000001",
            "receiptHandle": "coldstart-receipt-handle",
            "body": body,
            "attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": "1793534400000",
                "SenderId": "AROAEXAMPLE:bench",
                "ApproximateFirstReceiveTimestamp": "1793534400100"
            },
            "messageAttributes": {},
            "md5OfBody": "00000000000000000000000000000000",
            "eventSource": "aws:sqs",
            "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{queue}"),
            "awsRegion": "us-east-1"
        }]
    })
}

/// validate's event: one job for a lead (its DynamoDB read fails).
pub fn validate() -> anyhow::Result<Value> {
    let job = ValidateJob {
        lead_id: LEAD_ID.parse().map_err(|e| anyhow::anyhow!("{e}"))?,
        attempt: 1,
    };
    Ok(sqs(
        "leadhub-bench-validate",
        &serde_json::to_string(&job).context("a validate job")?,
    ))
}

/// dispatch's event: one delivery attempt (its read of the lead fails).
pub fn dispatch() -> anyhow::Result<Value> {
    let job = DispatchJob::Deliver {
        lead_id: LEAD_ID.parse().map_err(|e| anyhow::anyhow!("{e}"))?,
        destination: DestinationId::parse(CALLBACK_DESTINATION).map_err(anyhow::Error::msg)?,
        attempt: 1,
    };
    Ok(sqs(
        "leadhub-bench-dispatch",
        &serde_json::to_string(&job).context("a dispatch job")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_config() -> Config {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config.example.toml");
        let document = std::fs::read_to_string(path).expect("infra/config.example.toml");
        Config::from_toml(&document, &secrets())
            .expect("the example config loads with the bench secrets")
    }

    #[test]
    fn the_example_config_loads_with_the_bench_secrets_and_signs_a_token_it_accepts() {
        let config = example_config();
        let event = callback(&config).expect("event");
        let token = event["pathParameters"]["token"].as_str().expect("token");
        let lead =
            leadhub::callbacks::verify_token(&config.callback_signer, CALLBACK_DESTINATION, token)
                .expect("a token the hub accepts");
        assert_eq!(lead.as_str(), LEAD_ID);
        assert!(event["rawPath"].as_str().expect("path").ends_with(token));
        assert!(config.partner_by_key_id("pk_acme").is_some());
    }

    #[test]
    fn the_jobs_are_what_validate_and_dispatch_parse() {
        let validate = validate().expect("event");
        let body = validate["Records"][0]["body"].as_str().expect("body");
        let job: ValidateJob = serde_json::from_str(body).expect("a validate job");
        assert_eq!(job.lead_id.as_str(), LEAD_ID);
        let dispatch = dispatch().expect("event");
        let body = dispatch["Records"][0]["body"].as_str().expect("body");
        let job: DispatchJob = serde_json::from_str(body).expect("a dispatch job");
        assert_eq!(job.lead_id().as_str(), LEAD_ID);
        // The SQS events read as Lambda's SQS event type.
        let parsed: aws_lambda_events::event::sqs::SqsEvent =
            serde_json::from_value(dispatch).expect("an SQS event");
        assert_eq!(parsed.records.len(), 1);
    }

    #[test]
    fn the_ingest_event_carries_the_partner_key_and_the_lead() {
        let event = ingest(r#"{"a":1}"#);
        assert_eq!(event["body"], r#"{"a":1}"#);
        let auth = event["headers"]["authorization"].as_str().expect("auth");
        let decoded = STANDARD
            .decode(auth.trim_start_matches("Basic "))
            .expect("base64");
        assert_eq!(decoded, PARTNER_KEY.as_bytes());
        let env = function_env("/tmp/c.toml", "http://127.0.0.1:9");
        assert!(env
            .iter()
            .any(|(k, v)| k == "LEADHUB_CONFIG_FILE" && v == "/tmp/c.toml"));
    }
}
