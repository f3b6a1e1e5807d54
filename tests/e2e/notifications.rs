//! Partner notifications end to end: leads through the whole stack, buyers' verdicts from the sandboxes, and
//! a partner receiver that verifies every notification with the independent Standard Webhooks
//! implementation from PyPI (`standardwebhooks`, run by `infra/webhook_receiver.py`), never leadhub's own.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use leadhub::verticals::Vertical;
use leadhub::webhooks::WebhookSecret;
use serde_json::Value;

use crate::support::*;

/// The partner's receiver: `infra/webhook_receiver.py` on a loopback port.
struct Receiver {
    child: Child,
    log: PathBuf,
    url: String,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The Python that has `standardwebhooks`: `LEADHUB_PYTHON` (set by infra/test.sh), else the repository's
/// `.venv` (which infra/test.sh creates).
fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("LEADHUB_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python"));
    assert!(
        venv.exists(),
        "no Python with `standardwebhooks`: run infra/test.sh (it installs it into .venv) or set \
         LEADHUB_PYTHON"
    );
    venv
}

impl Receiver {
    fn start(secrets: &[&WebhookSecret], args: &[&str]) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/webhook_receiver.py");
        let log = std::env::temp_dir().join(format!(
            "leadhub-receiver-{}-{}.jsonl",
            std::process::id(),
            rand::random::<u64>()
        ));
        let mut command = Command::new(python());
        command.arg(script).arg("--log").arg(&log).args(args);
        for secret in secrets {
            command.arg("--secret").arg(secret.to_whsec());
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the receiver starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("the receiver prints its port");
        let port = first
            .trim()
            .strip_prefix("PORT ")
            .unwrap_or_else(|| panic!("the receiver did not start: {first:?}"))
            .to_owned();
        Receiver {
            child,
            log,
            url: format!("http://127.0.0.1:{port}/hook"),
        }
    }

    /// Every request it got, in order.
    fn entries(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON line"))
            .collect()
    }

    /// The requests about `lead_id` of event `event`.
    fn about(&self, lead_id: &str, event: &str) -> Vec<Value> {
        self.entries()
            .into_iter()
            .filter(|entry| {
                entry["payload"]["data"]["leadId"] == lead_id && entry["payload"]["type"] == event
            })
            .collect()
    }
}

/// Wait (up to 20 s) until the async `check` holds, or panic with `what`.
async fn until<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn secret() -> WebhookSecret {
    WebhookSecret::from_bytes(&rand::random::<[u8; 32]>())
}

/// Options whose demo partner signs with `secrets` (`env:PARTNER_HOOK_<i>`) and has `callback_url`.
fn notified(secrets: &[&WebhookSecret], callback_url: Option<&str>) -> leadhub_local::Options {
    let mut options = options();
    let names: Vec<String> = (0..secrets.len())
        .map(|i| format!("PARTNER_HOOK_{i}"))
        .collect();
    for (name, secret) in names.iter().zip(secrets) {
        options
            .extra_secrets
            .insert(name.clone(), secret.to_whsec());
    }
    let list: Vec<String> = names.iter().map(|n| format!("\"env:{n}\"")).collect();
    options.demo_partner_settings = format!("webhook_secret = [{}]\n", list.join(", "));
    if let Some(url) = callback_url {
        options
            .demo_partner_settings
            .push_str(&format!("callback_url = \"{url}\"\n"));
    }
    options
}

/// Every entry verified by every secret (and a tampered copy refused by each).
fn assert_all_verified(entries: &[Value], signatures: u64) {
    assert!(!entries.is_empty());
    for entry in entries {
        assert_eq!(entry["verified"], true, "{entry}");
        assert_eq!(entry["tamperRefused"], true, "{entry}");
        assert_eq!(entry["signatures"], signatures, "{entry}");
        assert_eq!(entry["contentType"], "application/json", "{entry}");
    }
}

fn solar_lead(call_back_url: &str) -> Value {
    let mut lead = Vertical::Solar.example();
    lead["call_back_url"] = Value::from(call_back_url);
    lead["phone_number"] = Value::from(format!("727555{:04}", rand::random::<u16>() % 10_000));
    lead["email"] = Value::from(unique_email("solar"));
    lead
}

async fn solar_outcome_is_notified_once(rejects_after_post: bool, event: &str, status: &str) {
    let key = secret();
    let receiver = Receiver::start(&[&key], &[]);
    let mut options = notified(&[&key], None);
    options.seed_sandboxes = true;
    options.buyers = Vec::new();
    options.ntherm_rejects_after_post = rejects_after_post;
    let stack = stack_with(options).await;
    // The lead's own call_back_url takes the notifications (the partner has no callback_url).
    let lead = solar_lead(&receiver.url);
    let lead_id = post_accepted(&stack, "solar", &lead).await;
    wait_for_status(&stack, &lead_id, &[status], Duration::from_secs(10)).await;
    eventually(
        &format!("the receiver gets {event}"),
        Duration::from_secs(10),
        || !receiver.about(&lead_id, event).is_empty(),
    )
    .await;
    // Nothing more arrives for it (a repeat would show within this time).
    tokio::time::sleep(Duration::from_millis(700)).await;
    let outcome = receiver.about(&lead_id, event);
    assert_eq!(outcome.len(), 1, "exactly one {event}: {outcome:#?}");
    let delivered = receiver.about(&lead_id, "lead.delivered");
    assert_eq!(delivered.len(), 1, "{delivered:#?}");
    let all = receiver.entries();
    assert_all_verified(&all, 1);
    let data = &outcome[0]["payload"]["data"];
    assert_eq!(data["vertical"], "solar");
    assert_eq!(data["status"], status);
    assert_eq!(data["statusUrl"], format!("/v1/leads/{lead_id}"));
    assert_ne!(outcome[0]["id"], delivered[0]["id"], "one id per event");
    if rejects_after_post {
        assert_eq!(data["reason"]["code"], "rejected_after_post");
        assert!(data["reason"]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty()));
    }
    // No personal data and no buyer's name in any notification.
    let text = serde_json::to_string(&all).expect("json");
    for field in [
        "customer_name",
        "phone_number",
        "email",
        "dm_name",
        "mailing_street",
    ] {
        let value = lead[field].as_str().expect("a text field");
        assert!(!text.contains(value), "{field} leaked into a notification");
    }
    assert!(!text.contains("ntherm"), "the buyer's name leaked: {text}");
}

#[tokio::test]
async fn a_solar_leads_confirmation_reaches_its_call_back_url_once_verified_by_standardwebhooks() {
    solar_outcome_is_notified_once(false, "lead.confirmed", "confirmed").await;
}

#[tokio::test]
async fn a_solar_leads_rejection_after_post_reaches_its_call_back_url_once() {
    solar_outcome_is_notified_once(true, "lead.rejected_after_post", "rejected_after_post").await;
}

#[tokio::test]
async fn a_receiver_that_fails_twice_gets_it_on_the_third_try_with_the_same_webhook_id() {
    fails_twice_then_succeeds(leadhub_local::Backend::Memory).await;
}

#[tokio::test]
#[ignore = "needs moto: run infra/test.sh (or set LEADHUB_TEST_AWS_ENDPOINT)"]
async fn aws_notifications_are_retried_with_the_same_webhook_id_on_dynamodb_and_sqs() {
    fails_twice_then_succeeds(aws_backend("notify")).await;
}

#[tokio::test]
#[ignore = "needs moto: run infra/test.sh (or set LEADHUB_TEST_AWS_ENDPOINT)"]
async fn aws_a_410_disables_the_endpoint_on_dynamodb_and_sqs() {
    gone_disables_until_enabled(aws_backend("gone")).await;
}

async fn fails_twice_then_succeeds(backend: leadhub_local::Backend) {
    // During a rotation both secrets sign, and the receiver checks each.
    let (old, new) = (secret(), secret());
    let receiver = Receiver::start(&[&old, &new], &["--fail-first", "2"]);
    let mut options = notified(&[&old, &new], Some(&receiver.url));
    options.backend = backend;
    options.extra_config =
        "[notifications]\nretry_schedule = [\"100ms\", \"200ms\", \"1h\"]\n".to_owned();
    let stack = stack_with(options).await;
    let lead_id = post_accepted(&stack, "heloc", &heloc_lead("notify-retry")).await;
    wait_for_status(&stack, &lead_id, &["delivered"], Duration::from_secs(10)).await;
    eventually(
        "the third attempt succeeds",
        Duration::from_secs(20),
        || receiver.about(&lead_id, "lead.delivered").len() >= 3,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let attempts = receiver.about(&lead_id, "lead.delivered");
    let statuses: Vec<u64> = attempts
        .iter()
        .map(|a| a["status"].as_u64().expect("a status"))
        .collect();
    assert_eq!(statuses, [500, 500, 204]);
    let ids: std::collections::BTreeSet<&str> = attempts
        .iter()
        .map(|a| a["id"].as_str().expect("an id"))
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "the same webhook-id on every attempt: {ids:?}"
    );
    // The body is the same on every attempt; the timestamp is the time of each.
    assert!(attempts
        .windows(2)
        .all(|w| w[0]["payload"] == w[1]["payload"]));
    assert_all_verified(&attempts, 2);
    assert!(stack
        .notifications
        .failed(None, 10)
        .await
        .expect("list")
        .is_empty());
}

#[tokio::test]
async fn a_receiver_answering_410_is_disabled_until_enabled_and_its_notifications_kept() {
    gone_disables_until_enabled(leadhub_local::Backend::Memory).await;
}

async fn gone_disables_until_enabled(backend: leadhub_local::Backend) {
    let key = secret();
    let receiver = Receiver::start(&[&key], &["--status", "410"]);
    let mut options = notified(&[&key], Some(&receiver.url));
    options.backend = backend;
    options.extra_config = "[notifications]\nretry_schedule = [\"100ms\"]\n".to_owned();
    let stack = stack_with(options).await;
    let first = post_accepted(&stack, "heloc", &heloc_lead("notify-gone-1")).await;
    wait_for_status(&stack, &first, &["delivered"], Duration::from_secs(10)).await;
    until("the endpoint is disabled", || async {
        stack
            .notifications
            .disabled_endpoints(Some("demo"))
            .await
            .is_ok_and(|endpoints| endpoints.len() == 1)
    })
    .await;
    let disabled = stack
        .notifications
        .disabled_endpoints(Some("demo"))
        .await
        .expect("list");
    assert_eq!(disabled[0].url, receiver.url);
    // 410 is not retried.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.about(&first, "lead.delivered").len(), 1);
    let failed = stack.notifications.failed(None, 10).await.expect("list");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].code, "gone");
    assert_eq!(failed[0].job.payload.data.lead_id.as_str(), first);

    // While disabled, nothing is sent: the next lead's notification is kept at once.
    let second = post_accepted(&stack, "heloc", &heloc_lead("notify-gone-2")).await;
    wait_for_status(&stack, &second, &["delivered"], Duration::from_secs(10)).await;
    until("the second is kept", || async {
        stack
            .notifications
            .failed(None, 10)
            .await
            .is_ok_and(|failed| failed.len() == 2)
    })
    .await;
    let failed = stack.notifications.failed(None, 10).await.expect("list");
    assert_eq!(failed[0].code, "endpoint_disabled");
    assert!(receiver.about(&second, "lead.delivered").is_empty());

    // The operator enables the partner's endpoints and replays: it is sent again, with the same id.
    assert_eq!(
        stack
            .notifications
            .enable_endpoints("demo")
            .await
            .expect("enable"),
        1
    );
    let webhook_id = failed[0].job.webhook_id.clone();
    assert!(leadhub::operator::replay_notification(
        stack.notifications.as_ref(),
        stack.dispatch_queue.as_ref(),
        &webhook_id
    )
    .await
    .expect("replay"));
    eventually("the replay arrives", Duration::from_secs(10), || {
        receiver.about(&second, "lead.delivered").len() == 1
    })
    .await;
    assert_eq!(
        receiver.about(&second, "lead.delivered")[0]["id"],
        webhook_id
    );
    assert_all_verified(&receiver.entries(), 1);
}

#[tokio::test]
async fn exhausted_notifications_are_kept_for_replay() {
    let key = secret();
    let receiver = Receiver::start(&[&key], &["--fail-first", "100"]);
    let mut options = notified(&[&key], Some(&receiver.url));
    options.extra_config = "[notifications]\nretry_schedule = [\"50ms\", \"50ms\"]\n".to_owned();
    let stack = stack_with(options).await;
    let lead_id = post_accepted(&stack, "heloc", &heloc_lead("notify-exhausted")).await;
    until("the notification is given up", || async {
        stack
            .notifications
            .failed(None, 10)
            .await
            .is_ok_and(|failed| failed.len() == 1)
    })
    .await;
    let failed = stack.notifications.failed(None, 10).await.expect("list");
    assert_eq!(failed[0].code, "exhausted");
    assert_eq!(failed[0].job.attempt, 3);
    assert!(
        failed[0].reason.contains("HTTP 500"),
        "{}",
        failed[0].reason
    );
    assert_eq!(receiver.about(&lead_id, "lead.delivered").len(), 3);
    assert!(!failed[0].reason.contains("127.0.0.1"), "no URL in reasons");
}

#[tokio::test]
async fn a_return_within_the_window_is_notified_to_the_partner_once_with_its_reason() {
    let key = secret();
    let receiver = Receiver::start(&[&key], &[]);
    let mut options = notified(&[&key], Some(&receiver.url));
    options.buyers = vec!["first".into()];
    options.buyer_settings = std::collections::BTreeMap::from([(
        "first".to_owned(),
        "return_reasons = [\"Bad phone\", \"Duplicate\"]\nreturn_window_days = 2\n".to_owned(),
    )]);
    let stack = stack_with(options).await;
    let lead_id = post_accepted(&stack, "heloc", &heloc_lead("notify-return")).await;
    wait_for_status(&stack, &lead_id, &["delivered"], Duration::from_secs(10)).await;

    let returned = send(
        client()
            .post(callback_url(&stack, "first", &lead_id))
            .json(&serde_json::json!({"verdict": "returned", "reason": "bad phone"})),
    )
    .await;
    assert_eq!(returned.status, 200, "{}", returned.body);
    eventually(
        "the receiver gets lead.returned",
        Duration::from_secs(10),
        || !receiver.about(&lead_id, "lead.returned").is_empty(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let notified = receiver.about(&lead_id, "lead.returned");
    assert_eq!(
        notified.len(),
        1,
        "exactly one lead.returned: {notified:#?}"
    );
    let data = &notified[0]["payload"]["data"];
    assert_eq!(data["status"], "returned");
    assert_eq!(data["vertical"], "heloc");
    assert_eq!(data["reason"]["text"], "Bad phone", "{data}");
    // The partner's own reference, and no personal data.
    assert_eq!(data["affiliateId"], "aff-notify-return", "{data}");
    assert_all_verified(&receiver.entries(), 1);
    let text = serde_json::to_string(&receiver.entries()).expect("json");
    assert!(
        !text.contains("jane.") && !text.contains("Bayshore") && !text.contains("555"),
        "{text}"
    );
}
