//! Shared test plumbing: start a stack, talk to it as a partner, wait for states, capture logs.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use leadhub_local::{start, Backend, Options, Stack};
use serde_json::{json, Value};

pub const KEY: &str = "pk_test";
pub const SECRET: &str = "sk_test_0123456789abcdef";
pub const OTHER_KEY: &str = "pk_other";
pub const OTHER_SECRET: &str = "sk_other_0123456789abcdef";

/// Everything logged by any test in this binary (to check that no PII is ever logged).
pub fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    })
    .clone()
}

/// Where `needle` occurs in `text` as a token of its own: not glued to letters or digits on a side where the
/// needle itself starts or ends with one. "Doe" in `"lastName":"Doe"` counts; "Doe" inside a random request
/// id such as `"yKDoe3f…"` (the AWS SDK logs moto's at debug level) does not.
pub fn find_token(text: &str, needle: &str) -> Option<String> {
    let glued = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let starts_alnum = glued(needle.chars().next());
    let ends_alnum = glued(needle.chars().next_back());
    text.match_indices(needle).find_map(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + needle.len()..].chars().next();
        if (starts_alnum && glued(before)) || (ends_alnum && glued(after)) {
            return None;
        }
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
        Some(text[line_start..line_end].to_owned())
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

/// `LEADHUB_TEST_LOG_FILE`: where every captured line is also appended, for infra/pii_scan.py to read once
/// the whole suite has run.
fn log_file() -> Option<&'static Mutex<std::fs::File>> {
    static FILE: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = std::env::var_os("LEADHUB_TEST_LOG_FILE")?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()
            .map(Mutex::new)
    })
    .as_ref()
}

impl Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut buffer) = self.0.lock() {
            buffer.extend_from_slice(data);
        }
        if let Some(Ok(mut file)) = log_file().map(Mutex::lock) {
            let _ = file.write_all(data);
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn options() -> Options {
    Options {
        addr: "127.0.0.1:0".parse().expect("addr"),
        demo_key: KEY.into(),
        demo_secret: SECRET.into(),
        other_partners: vec![("other".into(), OTHER_KEY.into(), OTHER_SECRET.into())],
        buyers: vec!["sandbox-webhook".into()],
        seed_sandboxes: false,
        retry_base_delay_ms: 100,
        visibility_timeout: Duration::from_secs(1),
        max_receive_count: 3,
        idempotency_in_flight_secs: 1,
        // LeadSafe only where a test asks for it (tests/e2e/screening.rs).
        leadsafe: None,
        ..Options::default()
    }
}

pub async fn stack_with(options: Options) -> Stack {
    logs();
    start(options).await.expect("the stack starts")
}

pub async fn stack() -> Stack {
    stack_with(options()).await
}

/// The moto endpoint, for `aws_*` tests.
pub fn aws_backend(name: &str) -> Backend {
    let endpoint = std::env::var("LEADHUB_TEST_AWS_ENDPOINT")
        .expect("LEADHUB_TEST_AWS_ENDPOINT must point at moto: run infra/test.sh");
    let suffix: u32 = rand_suffix();
    Backend::Aws {
        endpoint,
        prefix: format!("e2e-{name}-{suffix}"),
    }
}

fn rand_suffix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos ^ std::process::id()
}

/// A valid HELOC lead (seed 001) with a unique email.
#[allow(dead_code)]
pub fn heloc_lead(tag: &str) -> Value {
    json!({
        "affiliateId": format!("aff-{tag}"),
        "buildingType": "singleFamily",
        "loanPurpose": "homeImprovement",
        "propertyUsage": "primaryResidence",
        "contactInfo": {
            "firstName": "Jane",
            "lastName": "Doe",
            "email": format!("jane.{tag}.{}@example.com", rand_suffix()),
            "phone": "(727) 555-0134"
        },
        "address": {"street": "100 Bayshore Blvd", "city": "Tampa", "state": "fl", "zip": "33606"},
        "residentialAddress": {"street": "100 Bayshore Blvd", "city": "Tampa", "state": "FL", "zip": "33606"},
        "listedForSaleIn6Months": false,
        "purchasedOrSubjectToMortgageIn6Months": false,
        "liabilitiesIn4Years": false
    })
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

pub async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("the stack answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        headers,
        body,
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

pub async fn post_lead(stack: &Stack, vertical: &str, lead: &Value) -> Answer {
    send(
        client()
            .post(stack.url(&format!("/v1/leads/{vertical}")))
            .basic_auth(KEY, Some(SECRET))
            .json(lead),
    )
    .await
}

pub async fn get_lead(stack: &Stack, lead_id: &str) -> Answer {
    send(
        client()
            .get(stack.url(&format!("/v1/leads/{lead_id}")))
            .basic_auth(KEY, Some(SECRET)),
    )
    .await
}

/// Poll the status API until the lead's status is one of `statuses`; panics with the last view after `within`.
pub async fn wait_for_status(
    stack: &Stack,
    lead_id: &str,
    statuses: &[&str],
    within: Duration,
) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let answer = get_lead(stack, lead_id).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let status = answer.body["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if statuses.contains(&status.as_str()) {
            return answer.body;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "lead {lead_id} is {status}, not one of {statuses:?}, after {within:?}: {:#}",
                answer.body
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The kinds of the lead's timeline events, in order.
/// Each delivery's status in a status view, by destination.
#[allow(dead_code)]
pub fn delivery_statuses(view: &Value) -> std::collections::BTreeMap<String, String> {
    view["deliveries"]
        .as_array()
        .map(|deliveries| {
            deliveries
                .iter()
                .map(|d| {
                    (
                        d["destination"].as_str().unwrap_or_default().to_owned(),
                        d["status"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The last event of a lead view's timeline.
pub fn last_event(view: &Value) -> Value {
    view["timeline"]
        .as_array()
        .and_then(|events| events.last())
        .cloned()
        .unwrap_or_else(|| panic!("no timeline: {view}"))
}

/// The codes of a lead view's timeline, in order.
pub fn timeline_codes(view: &Value) -> Vec<String> {
    view["timeline"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| e["code"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A fresh email address for a test lead.
pub fn unique_email(tag: &str) -> String {
    format!("{tag}.{}.{}@example.com", std::process::id(), rand_suffix())
}

/// Seed 000's mortgage example with `email` and, when given, `ssn` (`borrower.ssn` otherwise removed).
pub fn mortgage_lead(email: &str, ssn: Option<&str>) -> Value {
    let mut lead = leadhub::verticals::Vertical::Mortgage.example();
    lead["borrower"]["email"] = json!(email);
    match ssn {
        Some(ssn) => lead["borrower"]["ssn"] = json!(ssn),
        None => {
            if let Some(borrower) = lead["borrower"].as_object_mut() {
                borrower.remove("ssn");
            }
        }
    }
    lead
}

/// Post `lead` as the demo partner and answer its id (the post must be accepted).
pub async fn post_accepted(stack: &Stack, vertical: &str, lead: &Value) -> String {
    let answer = post_lead(stack, vertical, lead).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    answer.body["leadId"].as_str().expect("leadId").to_owned()
}

pub fn timeline_kinds(view: &Value) -> Vec<String> {
    view["timeline"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Wait until `check` holds, or panic with `what`.
pub async fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !check() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The callback URL the hub gives `destination` for `lead_id`.
pub fn callback_url(stack: &Stack, destination: &str, lead_id: &str) -> String {
    leadhub::callbacks::url(
        &stack.config.public_base_url,
        &stack.config.callback_signer,
        destination,
        &lead_id.parse().expect("a lead id"),
    )
}

/// Put a delivered lead back to `routing`, as if the worker that recorded its acceptance died before it
/// settled the lead.
pub async fn unsettle(stack: &Stack, lead_id: &str) {
    use leadhub::lead::LeadStatus;
    use leadhub::store::{LeadUpdate, UpdateOutcome};
    let back = LeadUpdate::new(leadhub::lead::now())
        .expect(&[LeadStatus::Delivered])
        .status(LeadStatus::Routing);
    let outcome = stack
        .store
        .update_lead(&lead_id.parse().expect("a lead id"), &back)
        .await
        .expect("store");
    assert!(matches!(outcome, UpdateOutcome::Applied(_)), "{outcome:?}");
}

/// A demo partner's `POST /v1/leads/heloc` as the Lambda adapter hands it to ingest's handler.
pub fn heloc_request(body: &[u8], idempotency_key: Option<&str>) -> http::Request<Vec<u8>> {
    use base64::Engine;
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{KEY}:{SECRET}"));
    let mut request = http::Request::builder()
        .method("POST")
        .uri("/v1/leads/heloc")
        .header("authorization", format!("Basic {credentials}"))
        .header("content-type", "application/json");
    if let Some(key) = idempotency_key {
        request = request.header("idempotency-key", key);
    }
    request.body(body.to_vec()).expect("a request")
}

#[test]
fn find_token_ignores_needles_glued_inside_random_ids() {
    let text = "{\"request_id\":\"yKDoe3fZ\"}\n{\"message\":\"lead for Doe\"}\n";
    assert_eq!(
        find_token(text, "Doe").as_deref(),
        Some("{\"message\":\"lead for Doe\"}")
    );
    assert_eq!(find_token("{\"request_id\":\"xDoey\"}", "Doe"), None);
    assert!(find_token("mail jane.doe@example.com", "jane.doe@").is_some());
    assert!(find_token("\"lastName\":\"Doe\"", "Doe").is_some());
}
