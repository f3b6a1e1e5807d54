//! Screening in validate: seed 001's "email must not already exist in the system", race-free.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a_second_lead_with_the_same_email_is_rejected_as_a_duplicate() {
    let stack = stack().await;
    let first = heloc_lead("dup");
    let mut second = heloc_lead("dup2");
    // Same address, other spelling: emails are matched trimmed and lower-cased.
    second["contactInfo"]["email"] = json!(format!(
        "  {}  ",
        first["contactInfo"]["email"]
            .as_str()
            .expect("email")
            .to_uppercase()
    ));
    let a = post_lead(&stack, "heloc", &first).await;
    let a_id = a.body["leadId"].as_str().expect("leadId");
    wait_for_status(&stack, a_id, &["delivered"], Duration::from_secs(5)).await;
    let b = post_lead(&stack, "heloc", &second).await;
    assert_eq!(
        b.status, 202,
        "uniqueness is checked after the answer, in validate"
    );
    let b_id = b.body["leadId"].as_str().expect("leadId");
    let view = wait_for_status(&stack, b_id, &["rejected"], Duration::from_secs(5)).await;
    let last = last_event(&view);
    assert_eq!(last["code"], "duplicate_email");
    assert_eq!(
        stack
            .buyer("sandbox-webhook")
            .expect("buyer")
            .received_for(b_id)
            .len(),
        0
    );
}

#[tokio::test]
async fn fifty_identical_leads_posted_at_once_deliver_exactly_one() {
    fifty_identical_leads_deliver_exactly_one(&stack().await, Duration::from_secs(30)).await;
}

#[tokio::test]
#[ignore = "needs moto: run infra/test.sh (or set LEADHUB_TEST_AWS_ENDPOINT)"]
async fn aws_fifty_identical_leads_posted_at_once_deliver_exactly_one() {
    let stack = stack_with(leadhub_local::Options {
        backend: aws_backend("fifty"),
        ..options()
    })
    .await;
    // moto serves DynamoDB one call at a time, shared with every other test running at once: on a loaded
    // 2-core machine the 50 leads' screening takes its time (13 s alone, over 30 s beside the rest).
    fifty_identical_leads_deliver_exactly_one(&stack, Duration::from_secs(120)).await;
}

/// 50 copies of one HELOC lead posted at once (seed 001: the email must not already exist): one is
/// delivered, 49 are rejected as duplicates, and the buyer is called once.
async fn fifty_identical_leads_deliver_exactly_one(stack: &leadhub_local::Stack, within: Duration) {
    let lead = heloc_lead("race");
    let mut ids = Vec::new();
    for answer in futures_join(stack, &lead, 50).await {
        assert_eq!(answer.status, 202, "{}", answer.body);
        ids.push(answer.body["leadId"].as_str().expect("leadId").to_owned());
    }
    let mut statuses = Vec::new();
    for id in &ids {
        let view = wait_for_status(stack, id, &["delivered", "rejected"], within).await;
        if view["status"] == "rejected" {
            let last = last_event(&view);
            assert_eq!(last["code"], "duplicate_email", "{view}");
        }
        statuses.push(view["status"].as_str().expect("status").to_owned());
    }
    assert_eq!(
        statuses.iter().filter(|s| *s == "delivered").count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| *s == "rejected").count(), 49);
    let buyer = stack.buyer("sandbox-webhook").expect("buyer");
    let received: usize = ids.iter().map(|id| buyer.received_for(id).len()).sum();
    assert_eq!(received, 1, "the buyer is offered the lead once");
}

#[tokio::test]
async fn under_partner_scope_two_partners_may_each_sell_the_consumer_once() {
    let stack = stack_with(leadhub_local::Options {
        extra_config: "[screening.mortgage.duplicates]\nfields = [\"email\", \"phone\"]\nwindow_days = 30\nscope = \"partner\"\n".into(),
        ..options()
    })
    .await;
    let lead = mortgage_lead(&unique_email("scope"), None);
    let mine = post_lead(&stack, "mortgage", &lead).await;
    assert_eq!(mine.status, 202, "{}", mine.body);
    let theirs = send(
        client()
            .post(stack.url("/v1/leads/mortgage"))
            .basic_auth(OTHER_KEY, Some(OTHER_SECRET))
            .json(&lead),
    )
    .await;
    assert_eq!(theirs.status, 202, "{}", theirs.body);
    for answer in [&mine, &theirs] {
        let id: leadhub::lead::LeadId = answer.body["leadId"]
            .as_str()
            .expect("leadId")
            .parse()
            .expect("a lead id");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let lead = stack
                .store
                .get_lead(&id)
                .await
                .expect("read")
                .expect("stored");
            if lead.status == leadhub::lead::LeadStatus::Delivered {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline
                    && lead.status != leadhub::lead::LeadStatus::Rejected,
                "each partner's copy is delivered, not {}",
                lead.status
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let again = post_lead(&stack, "mortgage", &lead).await;
    let id = again.body["leadId"].as_str().expect("leadId");
    let view = wait_for_status(&stack, id, &["rejected"], Duration::from_secs(10)).await;
    let last = last_event(&view);
    assert_eq!(last["code"], "duplicate_email");
    assert_eq!(
        last["reason"],
        "a lead with this email was already posted by you within the last 30 days (duplicate rule: same email or phone within 30 days from the same partner)"
    );
    // The reason never names the other lead or its data.
    assert!(!last.to_string().contains("scope."));
}

async fn futures_join(
    stack: &leadhub_local::Stack,
    lead: &serde_json::Value,
    n: usize,
) -> Vec<Answer> {
    let mut handles = Vec::new();
    for _ in 0..n {
        let url = stack.url("/v1/leads/heloc");
        let lead = lead.clone();
        handles.push(tokio::spawn(async move {
            send(client().post(url).basic_auth(KEY, Some(SECRET)).json(&lead)).await
        }));
    }
    let mut answers = Vec::new();
    for handle in handles {
        answers.push(handle.await.expect("task"));
    }
    answers
}

#[tokio::test]
async fn a_buyer_that_bought_the_consumer_within_its_window_is_skipped() {
    let mut options = options();
    options.buyer_settings.insert(
        "sandbox-webhook".into(),
        "[destinations.filters]\nskip_if_sold_within_days = 90\n".into(),
    );
    let stack = stack_with(options).await;
    let email = format!("sold.{}@example.com", std::process::id());
    let first = post_lead(&stack, "mortgage", &mortgage_lead(&email, None)).await;
    let first_id = first.body["leadId"].as_str().expect("leadId").to_owned();
    wait_for_status(&stack, &first_id, &["delivered"], Duration::from_secs(10)).await;
    // The same consumer again (mortgage has no duplicate rule here): the buyer already has them.
    let mut again = mortgage_lead(&email.to_uppercase(), None);
    again["borrower"]["firstName"] = json!("Janet");
    let second = post_lead(&stack, "mortgage", &again).await;
    let second_id = second.body["leadId"].as_str().expect("leadId").to_owned();
    let view = wait_for_status(&stack, &second_id, &["unsold"], Duration::from_secs(10)).await;
    let last = last_event(&view);
    assert_eq!(last["code"], "no_eligible_buyer");
    assert!(
        last["reason"]
            .as_str()
            .expect("reason")
            .contains("1 buyer had already bought this consumer recently"),
        "{last}"
    );
    assert!(stack
        .buyer("sandbox-webhook")
        .expect("buyer")
        .received_for(&second_id)
        .is_empty());
}

#[tokio::test]
async fn a_consumer_on_the_suppression_list_is_rejected_while_the_record_is_active() {
    use leadhub::suppression::{self, SuppressionKind, SuppressionReason, SuppressionRecord};
    let stack = stack().await;
    let email = format!("optout.{}@example.com", std::process::id());
    let today = chrono::Utc::now().date_naive();
    let hasher = &stack.config.hasher;
    let record = |kind, value: &str, start, end| SuppressionRecord {
        kind,
        hash: suppression::hash(hasher, kind, value),
        reason: SuppressionReason::OptOut,
        start_date: start,
        end_date: end,
        source: "import".into(),
    };
    stack
        .suppressions
        .put_suppressions(&[
            record(
                SuppressionKind::Email,
                &email,
                today - chrono::Duration::days(3),
                None,
            ),
            // Ended yesterday: no longer active.
            record(
                SuppressionKind::Phone,
                "8135550100",
                today - chrono::Duration::days(30),
                Some(today),
            ),
        ])
        .await
        .expect("put");
    let id = post_lead(
        &stack,
        "mortgage",
        &mortgage_lead(&email.to_uppercase(), None),
    )
    .await
    .body["leadId"]
        .as_str()
        .expect("leadId")
        .to_owned();
    let view = wait_for_status(&stack, &id, &["rejected"], Duration::from_secs(10)).await;
    let last = last_event(&view);
    assert_eq!(last["code"], "suppressed");
    assert_eq!(
        last["reason"],
        format!(
            "the consumer's email is on the suppression list (OptOut, since {})",
            today - chrono::Duration::days(3)
        )
    );
    let mut other = mortgage_lead(&unique_email("fine"), None);
    other["borrower"]["phone"] = json!("(813) 555-0100");
    let id = post_lead(&stack, "mortgage", &other).await.body["leadId"]
        .as_str()
        .expect("leadId")
        .to_owned();
    let view = wait_for_status(&stack, &id, &["delivered"], Duration::from_secs(10)).await;
    assert!(view["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .any(|e| e["code"] == "not_suppressed"));
}

#[tokio::test]
async fn within_one_batch_the_earlier_of_two_duplicates_is_the_one_that_passes() {
    use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
    use leadhub::delivery::ValidateJob;
    use leadhub::lead::{LeadId, LeadRecord, LeadStatus};
    let stack = stack().await;
    let body = leadhub::verticals::Vertical::Heloc
        .parse(&serde_json::to_vec(&heloc_lead("batch")).expect("json"))
        .expect("a valid lead")
        .lead;
    let t0 = chrono::Utc::now();
    let earlier = LeadRecord::received(
        LeadId::generate(t0),
        "demo",
        leadhub::verticals::Vertical::Heloc,
        body.clone(),
        t0,
        None,
    );
    let t1 = t0 + chrono::Duration::milliseconds(5);
    let later = LeadRecord::received(
        LeadId::generate(t1),
        "demo",
        leadhub::verticals::Vertical::Heloc,
        body,
        t1,
        None,
    );
    for lead in [&earlier, &later] {
        stack.store.create_lead(lead, None).await.expect("create");
    }
    // The later lead's message comes first in the batch, as SQS may hand them out.
    let mut event = SqsEvent::default();
    event.records = [&later, &earlier]
        .iter()
        .enumerate()
        .map(|(i, lead)| {
            let mut message = SqsMessage::default();
            message.message_id = Some(format!("m{i}"));
            message.body =
                Some(serde_json::to_string(&ValidateJob::new(lead.id.clone())).expect("json"));
            message
        })
        .collect();
    let response = stack.validate.handle_batch(event).await;
    assert!(response.batch_item_failures.is_empty());
    let status = |id: &LeadId| {
        let store = stack.store.clone();
        let id = id.clone();
        async move {
            store
                .get_lead(&id)
                .await
                .expect("read")
                .expect("stored")
                .status
        }
    };
    assert_ne!(
        status(&earlier.id).await,
        LeadStatus::Rejected,
        "the earlier lead passes"
    );
    assert_eq!(
        status(&later.id).await,
        LeadStatus::Rejected,
        "the later one is the duplicate"
    );
}
