//! LeadSafe in the pipeline (seed 003): mortgage leads that carry an SSN are screened by the LeadSafe
//! sandbox (seeded with the seed's CSV sample) under each policy, through its failures.

use std::time::Duration;

use leadhub::lead::LeadId;
use leadhub_local::{Options, Stack};
use leadhub_sandbox::leadsafe::Failure;
use serde_json::Value;

use crate::support::*;

/// Red in the sample: `Default`, active since 2024-01-05.
const RED: &str = "123-45-6789";
/// Amber in the sample: `RevokePaymentAuth` from 2024-01-06, ended 2024-02-12.
const AMBER: &str = "111 22 2333";
/// Not in the sample: Green.
const GREEN: &str = "219099999";

fn leadsafe_options(policy: &str) -> Options {
    Options {
        leadsafe: Some(policy.to_owned()),
        buyer_timeout_ms: 400,
        ..options()
    }
}

async fn post(stack: &Stack, ssn: &str) -> String {
    post_accepted(
        stack,
        "mortgage",
        &mortgage_lead(&unique_email("ls"), Some(ssn)),
    )
    .await
}

fn event<'a>(view: &'a Value, code: &str) -> &'a Value {
    view["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .find(|e| e["code"] == code)
        .unwrap_or_else(|| panic!("no {code} event: {view}"))
}

/// Screening has decided: only the keyed hash of the SSN remains, no sealed copy.
async fn sealed_copy_gone(stack: &Stack, lead_id: &str) {
    let id: LeadId = lead_id.parse().expect("a lead id");
    let sealed = stack
        .sealed_ssns
        .get_sealed_ssn(&id, chrono::Utc::now())
        .await
        .expect("read");
    assert!(
        sealed.is_none(),
        "the sealed SSN outlived the screening decision"
    );
}

fn leadsafe(stack: &Stack) -> &leadhub_sandbox::leadsafe::LeadSafe {
    &stack.leadsafe.as_ref().expect("the LeadSafe sandbox").0
}

#[tokio::test]
async fn red_is_rejected_with_leadsafes_reasons_and_no_buyer_is_called() {
    let stack = stack_with(leadsafe_options("detailed = true")).await;
    let id = post(&stack, RED).await;
    let view = wait_for_status(&stack, &id, &["rejected"], Duration::from_secs(10)).await;
    let last = last_event(&view);
    assert_eq!(last["code"], "leadsafe_red");
    assert_eq!(
        last["reason"],
        "LeadSafe rated the consumer Red (Default since 2024-01-05)"
    );
    assert_eq!(leadsafe(&stack).searched(), vec!["123456789".to_owned()]);
    assert!(stack
        .buyer("sandbox-webhook")
        .expect("buyer")
        .received_for(&id)
        .is_empty());
    sealed_copy_gone(&stack, &id).await;
    assert!(!view.to_string().contains("6789"), "{view}");
}

#[tokio::test]
async fn green_goes_on_to_routing() {
    let stack = stack_with(leadsafe_options("")).await;
    let id = post(&stack, GREEN).await;
    let view = wait_for_status(&stack, &id, &["delivered"], Duration::from_secs(10)).await;
    assert!(
        timeline_codes(&view).contains(&"leadsafe_green".to_owned()),
        "{view}"
    );
    sealed_copy_gone(&stack, &id).await;
    // search, not search-detailed, without `detailed`.
    let paths: Vec<String> = leadsafe(&stack)
        .received()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(paths, vec!["/leadsafe/search".to_owned()]);
}

#[tokio::test]
async fn amber_under_each_policy() {
    // reject
    let stack = stack_with(leadsafe_options("detailed = true\namber = \"reject\"")).await;
    let id = post(&stack, AMBER).await;
    let view = wait_for_status(&stack, &id, &["rejected"], Duration::from_secs(10)).await;
    assert_eq!(
        event(&view, "leadsafe_amber")["reason"],
        "LeadSafe rated the consumer Amber (RevokePaymentAuth from 2024-01-06 to 2024-02-12); Amber leads are not sold"
    );
    sealed_copy_gone(&stack, &id).await;

    // amber_buyers: the only buyer does not take Amber leads, so no one may buy it...
    let stack = stack_with(leadsafe_options("amber = \"amber_buyers\"")).await;
    let id = post(&stack, AMBER).await;
    let view = wait_for_status(&stack, &id, &["unsold"], Duration::from_secs(10)).await;
    let last = last_event(&view);
    assert!(
        last["reason"]
            .as_str()
            .expect("reason")
            .contains("1 buyer does not take leads LeadSafe rates Amber"),
        "{last}"
    );
    // ...and one with accepts_amber = true does.
    let mut options = leadsafe_options("amber = \"amber_buyers\"");
    options
        .buyer_settings
        .insert("sandbox-webhook".into(), "accepts_amber = true\n".into());
    let stack = stack_with(options).await;
    let id = post(&stack, AMBER).await;
    wait_for_status(&stack, &id, &["delivered"], Duration::from_secs(10)).await;

    // pass
    let stack = stack_with(leadsafe_options("amber = \"pass\"")).await;
    let id = post(&stack, AMBER).await;
    let view = wait_for_status(&stack, &id, &["delivered"], Duration::from_secs(10)).await;
    assert!(
        event(&view, "leadsafe_amber")["reason"]
            .as_str()
            .expect("reason")
            .ends_with("Amber leads are sold as usual"),
        "{view}"
    );
}

#[tokio::test]
async fn a_timeout_and_a_5xx_are_retried_then_the_lead_passes() {
    let stack = stack_with(leadsafe_options("on_error = \"retry\"")).await;
    let sandbox = leadsafe(&stack);
    // First no answer within the 400 ms timeout, then a 503: the lead waits in `received`.
    sandbox.fail_next(Failure {
        status: 503,
        times: 1,
        delay_ms: 1500,
        retry_after: None,
        body: None,
    });
    sandbox.fail_next(Failure {
        status: 503,
        times: 1,
        delay_ms: 0,
        retry_after: None,
        body: None,
    });
    let id = post(&stack, GREEN).await;
    let view = wait_for_status(&stack, &id, &["delivered"], Duration::from_secs(20)).await;
    let codes = timeline_codes(&view);
    let unavailable = event(&view, "leadsafe_unavailable");
    assert_eq!(
        unavailable["status"], "received",
        "the lead waited in received"
    );
    assert!(
        unavailable["reason"]
            .as_str()
            .expect("reason")
            .contains("no answer within 400 ms"),
        "{unavailable}"
    );
    assert!(codes.contains(&"leadsafe_green".to_owned()), "{codes:?}");
    // Asked three times; the sandbox logs the timed-out exchange only if it finished answering it (the
    // hub had hung up by then).
    assert!(
        sandbox.searched().len() >= 2,
        "asked again after each failure"
    );
    sealed_copy_gone(&stack, &id).await;
}

#[tokio::test]
async fn fail_open_passes_the_lead_and_says_so() {
    let stack = stack_with(leadsafe_options("on_error = \"fail_open\"")).await;
    leadsafe(&stack).fail_next(Failure {
        status: 500,
        times: 1,
        delay_ms: 0,
        retry_after: None,
        body: None,
    });
    let id = post(&stack, RED).await;
    let view = wait_for_status(&stack, &id, &["delivered"], Duration::from_secs(10)).await;
    assert_eq!(
        event(&view, "leadsafe_fail_open")["reason"],
        "LeadSafe could not be asked (LeadSafe asked to try again later); passed without its check (on_error = fail_open)"
    );
    sealed_copy_gone(&stack, &id).await;
}

#[tokio::test]
async fn refused_credentials_are_a_configuration_failure_and_the_lead_waits() {
    // Even under fail_open: a 401 is never failed open.
    let stack = stack_with(leadsafe_options("on_error = \"fail_open\"")).await;
    leadsafe(&stack).fail_next(Failure {
        status: 401,
        times: 2,
        delay_ms: 0,
        retry_after: None,
        body: None,
    });
    let id = post(&stack, GREEN).await;
    // It waits in received while LeadSafe refuses, and passes once the credentials work again.
    let view = wait_for_status(&stack, &id, &["delivered"], Duration::from_secs(20)).await;
    let unavailable = event(&view, "leadsafe_unavailable");
    assert!(
        unavailable["reason"]
            .as_str()
            .expect("reason")
            .contains("credentials were refused"),
        "{unavailable}"
    );
    assert!(!timeline_codes(&view).contains(&"leadsafe_fail_open".to_owned()));
    let logs = String::from_utf8_lossy(&logs().lock().expect("logs")).to_string();
    assert!(
        logs.lines()
            .any(|line| line.contains("leadsafe_credentials_refused") && line.contains(&id)),
        "the refusal is logged for the alarm"
    );
}

#[tokio::test]
async fn a_test_lead_is_not_sent_to_leadsafe() {
    let stack = stack_with(leadsafe_options("")).await;
    let answer = send(
        client()
            .post(stack.url("/v1/leads/mortgage"))
            .basic_auth(KEY, Some(SECRET))
            .header("Leadhub-Test", "true")
            .json(&mortgage_lead(&unique_email("ls"), Some(RED))),
    )
    .await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let id = answer.body["leadId"].as_str().expect("leadId").to_owned();
    wait_for_status(&stack, &id, &["test"], Duration::from_secs(10)).await;
    assert!(leadsafe(&stack).searched().is_empty());
}

#[tokio::test]
#[ignore = "needs moto: run infra/test.sh (or set LEADHUB_TEST_AWS_ENDPOINT)"]
async fn aws_leadsafe_screening_on_dynamodb_leaves_only_the_keyed_hash() {
    let stack = stack_with(Options {
        backend: aws_backend("leadsafe"),
        ..leadsafe_options("detailed = true")
    })
    .await;
    let green = post(&stack, GREEN).await;
    let red = post(&stack, RED).await;
    wait_for_status(&stack, &green, &["delivered"], Duration::from_secs(30)).await;
    let view = wait_for_status(&stack, &red, &["rejected"], Duration::from_secs(30)).await;
    assert_eq!(
        view["timeline"]
            .as_array()
            .expect("timeline")
            .last()
            .expect("event")["code"],
        "leadsafe_red"
    );
    for id in [&green, &red] {
        sealed_copy_gone(&stack, id).await;
        let lead = stack
            .store
            .get_lead(&id.parse().expect("a lead id"))
            .await
            .expect("read")
            .expect("stored");
        assert!(lead.ssn_hash.is_some(), "the keyed hash stays");
    }
}
