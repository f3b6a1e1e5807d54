//! Consumer statuses back to LeadSafe (seed 003's add): a buyer's verdict carrying a `consumerStatus` is
//! sent to the LeadSafe sandbox with the SSN and reason, shows on the lead's timeline without the SSN, and
//! suppresses the consumer: a later lead with the same SSN is rejected by the suppression list.

use std::time::Duration;

use leadhub_local::{Options, Stack};
use serde_json::{json, Value};

use crate::support::*;

/// Not in the sandbox's sample: Green until reported.
const SSN: &str = "219-09-8877";
const DIGITS: &str = "219098877";

async fn post(stack: &Stack, tag: &str) -> String {
    post_accepted(
        stack,
        "mortgage",
        &mortgage_lead(&unique_email(&format!("lsr.{tag}")), Some(SSN)),
    )
    .await
}

/// Wait (a few seconds at most) until the lead's sealed SSN is deleted; panics if it outlives that.
async fn sealed_copy_deleted(stack: &Stack, lead_id: &str) {
    let id: leadhub::lead::LeadId = lead_id.parse().expect("a lead id");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let sealed = stack
            .sealed_ssns
            .get_sealed_ssn(&id, chrono::Utc::now())
            .await
            .expect("read");
        if sealed.is_none() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sealed SSN of {lead_id} outlived the screening decision"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_no_ssn(what: &str, text: &str) {
    for spelling in [DIGITS, SSN, "219 09 8877"] {
        if let Some(line) = find_token(text, spelling) {
            panic!("{what} carries the SSN: {line}");
        }
    }
}

#[tokio::test]
async fn a_buyers_consumer_status_reaches_leadsafe_and_suppresses_the_consumer() {
    a_buyers_consumer_status_reaches_leadsafe(Options {
        leadsafe: Some(String::new()),
        ..options()
    })
    .await;
}

#[tokio::test]
#[ignore = "needs moto: run infra/test.sh (or set LEADHUB_TEST_AWS_ENDPOINT)"]
async fn aws_a_buyers_consumer_status_reaches_leadsafe_and_suppresses_the_consumer() {
    a_buyers_consumer_status_reaches_leadsafe(Options {
        leadsafe: Some(String::new()),
        backend: aws_backend("lsreport"),
        ..options()
    })
    .await;
}

async fn a_buyers_consumer_status_reaches_leadsafe(options: Options) {
    let stack = stack_with(options).await;
    let logs = logs();
    let (leadsafe, _) = stack.leadsafe.as_ref().expect("the LeadSafe sandbox");
    let today = chrono::Utc::now().date_naive();

    // A mortgage lead with an SSN LeadSafe does not know: Green, delivered.
    let lead_id = post(&stack, "first").await;
    wait_for_status(&stack, &lead_id, &["delivered"], Duration::from_secs(10)).await;

    // The buyer returns it: the consumer defaulted.
    let url = callback_url(&stack, "sandbox-webhook", &lead_id);
    let answer = send(client().post(&url).json(&json!({
        "verdict": "returned",
        "reason": "the consumer defaulted",
        "consumerStatus": {"reason": "Default", "startDate": today.to_string(), "endDate": null, "ssn": SSN}
    })))
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["status"], "returned");
    assert_eq!(
        answer.body["consumerStatus"],
        json!({"reason": "Default", "recorded": true, "leadsafe": "sent"})
    );
    assert_no_ssn("the callback's answer", &answer.body.to_string());

    // LeadSafe received the add with that SSN and reason, and now holds the record.
    let adds: Vec<Value> = leadsafe
        .received()
        .into_iter()
        .filter(|exchange| exchange.path == "/leadsafe/add")
        .map(|exchange| exchange.body)
        .collect();
    assert_eq!(
        adds,
        [json!({"Records": [{
            "EndDate": null,
            "Reason": "Default",
            "SocialSecurityNumber": DIGITS,
            "StartDate": today.to_string()
        }]})]
    );
    assert!(leadsafe
        .records()
        .iter()
        .any(|record| record.ssn == DIGITS && record.is_active(today)));

    // The report is kept, sealed, and marked sent.
    let reports = stack
        .leadsafe_reports
        .reports_since(
            chrono::Utc::now() - chrono::Duration::hours(1),
            chrono::Utc::now(),
        )
        .await
        .expect("read");
    assert_eq!(reports.len(), 1);
    assert!(reports[0].sent_at.is_some());

    // The timeline says what was reported, never the SSN.
    let view = get_lead(&stack, &lead_id).await.body;
    let reported: Vec<&Value> = view["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|event| event["code"] == "consumer_status_reported")
        .collect();
    assert_eq!(reported.len(), 1, "{view}");
    assert_eq!(reported[0]["kind"], "buyer_verdict");
    assert_eq!(reported[0]["destination"], "sandbox-webhook");
    assert_eq!(reported[0]["reason"], format!("Default since {today}"));
    assert_no_ssn("the status API", &view.to_string());

    // A later lead with the same SSN is rejected by the suppression list (before LeadSafe is asked).
    let searches_before = leadsafe.searched().len();
    let later = post(&stack, "later").await;
    let view = wait_for_status(&stack, &later, &["rejected"], Duration::from_secs(10)).await;
    let last = last_event(&view);
    assert_eq!(last["code"], "suppressed", "{view}");
    assert!(
        last["reason"].as_str().expect("reason").contains("Default"),
        "{last}"
    );
    assert_eq!(leadsafe.searched().len(), searches_before);
    assert!(stack
        .buyer("sandbox-webhook")
        .expect("buyer")
        .received_for(&later)
        .is_empty());
    assert_no_ssn("the status API", &view.to_string());

    // Screening has decided on both leads: their sealed SSNs go (just after the decision is written, so
    // wait for it rather than end the run, and the functions with it, before the delete).
    for id in [&lead_id, &later] {
        sealed_copy_deleted(&stack, id).await;
    }

    let text = String::from_utf8(logs.lock().expect("logs").clone()).expect("utf-8");
    assert!(text.contains(&lead_id), "the capture works");
    assert_no_ssn("a log line", &text);
}
