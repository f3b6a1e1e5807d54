//! Answer rules end to end: Sonar's sandbox answers a 200 that is neither success nor failure and the
//! delivery ends `failed` (dead), with its reason, listed for the operator and alarmed; a webhook destination
//! with its own `[destinations.response]` rules is accepted with the reference and price its answers give,
//! rejected with the reason they give, and failed on an answer its rules do not recognise.

use std::time::Duration;

use leadhub::lead::{DeliveryStatus, LeadId};
use leadhub::operator;
use leadhub::store::DeadDelivery;
use leadhub_local::{Options, Stack};
use leadhub_sandbox::webhook::Failure;
use serde_json::{json, Value};

use crate::support::*;

/// The lead's dead-delivery marker as `leadhub-admin deliveries dead` lists it (the last day).
async fn listed_dead(stack: &Stack, lead_id: &LeadId) -> Option<DeadDelivery> {
    let since = chrono::Utc::now() - chrono::Duration::days(1);
    operator::dead_deliveries(stack.dead_deliveries.as_ref(), since, 1000)
        .await
        .expect("list")
        .into_iter()
        .find(|dead| &dead.lead_id == lead_id)
}

/// The timeline event of `kind` for `destination`.
fn event(view: &Value, kind: &str, destination: &str) -> Value {
    view["timeline"]
        .as_array()
        .and_then(|events| {
            events
                .iter()
                .find(|e| e["kind"] == kind && e["destination"] == destination)
        })
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} event for {destination}: {view:#}"))
}

const UNRECOGNISED_BY_SONAR: &str =
    "unrecognised answer: Sonar answered 200 with JSON {message: text, \
     status: text}, which says neither that it took the lead nor that it declined it";

async fn sonars_unrecognised_200_fails_the_delivery(options: Options) {
    let stack = stack_with(Options {
        buyers: Vec::new(),
        seed_sandboxes: true,
        ..options
    })
    .await;
    let sonar = &stack.sandboxes.as_ref().expect("seed sandboxes").sonar.0;
    let email = unique_email("unrecognised");
    sonar.answer_unrecognised(&email);

    let lead_text = post_accepted(&stack, "mortgage", &mortgage_lead(&email, None)).await;
    let lead_id: LeadId = lead_text.parse().expect("a lead id");
    // Sonar was its only buyer: the delivery is dead, so the lead is unsold; never delivered.
    let view = wait_for_status(&stack, &lead_text, &["unsold"], Duration::from_secs(15)).await;
    assert_eq!(
        delivery_statuses(&view).get("sonar").map(String::as_str),
        Some("dead"),
        "{view:#}"
    );
    assert!(
        !timeline_kinds(&view).contains(&"delivery_accepted".to_owned()),
        "{view:#}"
    );
    let dead = event(&view, "delivery_dead", "sonar");
    assert_eq!(dead["code"], "unrecognised_answer", "{dead}");
    let reason = dead["reason"].as_str().expect("a reason");
    assert!(reason.starts_with(UNRECOGNISED_BY_SONAR), "{reason}");
    assert!(
        !reason.contains("queued for review") && !reason.contains(&email),
        "the body's shape, not its values: {reason}"
    );

    // Asked once (a failure is not retried), and Sonar created nothing.
    let posts: Vec<_> = sonar
        .received()
        .into_iter()
        .filter(|e| e.body["source"]["leadId"] == lead_text.as_str())
        .collect();
    assert_eq!(posts.len(), 1, "not retried");
    assert_eq!(posts[0].response["status"], "received");
    assert!(sonar.leads().is_empty());

    // The stored delivery carries the reason; the operator's listing shows it.
    let record = stack
        .store
        .get_lead(&lead_id)
        .await
        .expect("store")
        .expect("the lead");
    let state = &record.deliveries["sonar"];
    assert_eq!(state.status, DeliveryStatus::Dead);
    assert!(state.buyer_ref.is_none());
    assert!(state
        .reason
        .as_deref()
        .is_some_and(|r| r.starts_with(UNRECOGNISED_BY_SONAR)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let marker = loop {
        if let Some(marker) = listed_dead(&stack, &lead_id).await {
            break marker;
        }
        assert!(tokio::time::Instant::now() < deadline, "not listed as dead");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(marker.destination, "sonar");
    assert_eq!(marker.code, "unrecognised_answer");
    assert!(
        marker.reason.starts_with(UNRECOGNISED_BY_SONAR),
        "{}",
        marker.reason
    );

    // Alarmed: one structured line with the alarm field, ids and codes only.
    let text = String::from_utf8_lossy(&logs().lock().expect("logs")).into_owned();
    let alarms: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("buyer_answer_unrecognised") && line.contains(&lead_text))
        .collect();
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    let line: Value = serde_json::from_str(alarms[0]).expect("a JSON log line");
    assert_eq!(line["fields"]["alarm"], "buyer_answer_unrecognised");
    assert_eq!(line["fields"]["code"], "unrecognised_answer");
    assert_eq!(line["fields"]["destination"], "sonar");
    assert!(
        !alarms[0].contains(&email) && !alarms[0].contains("queued for review"),
        "{}",
        alarms[0]
    );

    // Sonar's usual answer is still a sale.
    let sold = post_accepted(
        &stack,
        "mortgage",
        &mortgage_lead(&unique_email("recognised"), None),
    )
    .await;
    let view = wait_for_status(&stack, &sold, &["delivered"], Duration::from_secs(15)).await;
    assert!(event(&view, "delivery_accepted", "sonar")["reason"]
        .as_str()
        .is_some_and(|r| r.contains("its reference: sonar-")));
}

const BUYER: &str = "sandbox-webhook";

/// The webhook buyer's own answer rules: its sandbox answers `{"id": "wh-<n>"}`; the scripted answers below
/// are the other shapes a buyer of this kind sends.
const RULES: &str = r#"
[destinations.response]
accepted_when = { path = "$.id", matches = '^wh-\d+$' }
rejected_when = [{ path = "$.result.status", one_of = ["declined", "duplicate"] }, { header = "X-Lead-Result", equals = "declined" }]
reason_path = "$.result.errors[*].message"
reference_path = "$.id"
price_path = "$.bid.price"
"#;

fn scripted(body: Value) -> Failure {
    Failure {
        status: 200,
        times: 1,
        delay_ms: 0,
        retry_after: None,
        body: Some(body),
    }
}

async fn a_webhook_destinations_own_answer_rules(options: Options) {
    let stack = stack_with(Options {
        max_attempts: 2,
        buyer_settings: [(BUYER.to_owned(), RULES.to_owned())].into(),
        ..options
    })
    .await;
    let buyer = stack.buyer(BUYER).expect("buyer").clone();
    let record = |lead: String| {
        let stack = &stack;
        async move {
            stack
                .store
                .get_lead(&lead.parse().expect("id"))
                .await
                .expect("store")
                .expect("the lead")
        }
    };

    // Accepted: the reference at reference_path, the price at price_path (on the delivery, not the timeline).
    buyer.fail_next(scripted(json!({"id": "wh-900", "bid": {"price": "21.75"}})));
    let priced = post_accepted(&stack, "heloc", &heloc_lead("rules-priced")).await;
    let view = wait_for_status(&stack, &priced, &["delivered"], Duration::from_secs(15)).await;
    let accepted = event(&view, "delivery_accepted", BUYER);
    assert_eq!(
        accepted["reason"], "the buyer took the lead (its reference: wh-900)",
        "{accepted}"
    );
    assert!(!view.to_string().contains("21.75"), "{view}");
    let state = record(priced.clone()).await.deliveries[BUYER].clone();
    assert_eq!(state.buyer_ref.as_deref(), Some("wh-900"));
    assert_eq!(state.price_cents, Some(2175));

    // The sandbox's own answer: accepted with its id.
    let plain = post_accepted(&stack, "heloc", &heloc_lead("rules-plain")).await;
    let view = wait_for_status(&stack, &plain, &["delivered"], Duration::from_secs(15)).await;
    let reason = event(&view, "delivery_accepted", BUYER)["reason"].clone();
    assert!(
        reason
            .as_str()
            .is_some_and(|r| r.starts_with("the buyer took the lead (its reference: wh-")),
        "{reason}"
    );

    // Rejected, with the reasons at reason_path; the buyer's own 200 is not a sale.
    buyer.fail_next(scripted(json!({
        "id": "wh-901",
        "result": {"status": "Declined", "errors": [{"message": "State not served"}, {"message": "Over the daily cap"}]}
    })));
    let declined = post_accepted(&stack, "heloc", &heloc_lead("rules-declined")).await;
    let view = wait_for_status(&stack, &declined, &["unsold"], Duration::from_secs(15)).await;
    let rejected = event(&view, "delivery_rejected", BUYER);
    assert_eq!(rejected["code"], "answer_rejected", "{rejected}");
    assert_eq!(
        rejected["reason"],
        "the buyer declined the lead: State not served; Over the daily cap"
    );
    let state = record(declined.clone()).await.deliveries[BUYER].clone();
    assert_eq!(state.status, DeliveryStatus::Rejected);
    assert!(state.buyer_ref.is_none());

    // An answer the rules do not recognise: failed, dead, listed; posted once, not retried.
    buyer.fail_next(scripted(json!({"queued": true, "ticket": 31337})));
    let unread = post_accepted(&stack, "heloc", &heloc_lead("rules-unread")).await;
    let view = wait_for_status(&stack, &unread, &["unsold"], Duration::from_secs(15)).await;
    let dead = event(&view, "delivery_dead", BUYER);
    assert_eq!(dead["code"], "unrecognised_answer", "{dead}");
    assert!(
        dead["reason"].as_str().is_some_and(|r| r.starts_with(
            "unrecognised answer: the buyer answered 200 with JSON {queued: true, ticket: number}"
        )),
        "{dead}"
    );
    assert!(!dead.to_string().contains("31337"), "{dead}");
    assert_eq!(buyer.received_for(&unread).len(), 1, "not retried");
    let unread_id: LeadId = unread.parse().expect("id");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while listed_dead(&stack, &unread_id).await.is_none() {
        assert!(tokio::time::Instant::now() < deadline, "not listed as dead");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn sonars_unrecognised_200_fails_the_delivery_with_its_reason_and_is_listed_dead() {
    sonars_unrecognised_200_fails_the_delivery(options()).await;
}

#[tokio::test]
#[ignore = "needs moto: run infra/test.sh (or set LEADHUB_TEST_AWS_ENDPOINT)"]
async fn aws_sonars_unrecognised_200_fails_the_delivery_with_its_reason_and_is_listed_dead() {
    sonars_unrecognised_200_fails_the_delivery(Options {
        backend: aws_backend("unrecognised"),
        ..options()
    })
    .await;
}

#[tokio::test]
async fn a_webhook_destinations_own_answer_rules_accept_reject_and_refuse_to_guess() {
    a_webhook_destinations_own_answer_rules(options()).await;
}

#[tokio::test]
#[ignore = "needs moto: run infra/test.sh (or set LEADHUB_TEST_AWS_ENDPOINT)"]
async fn aws_a_webhook_destinations_own_answer_rules_accept_reject_and_refuse_to_guess() {
    a_webhook_destinations_own_answer_rules(Options {
        backend: aws_backend("answer-rules"),
        ..options()
    })
    .await;
}
