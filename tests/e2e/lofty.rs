//! Lofty as it really behaves: a phone-only lead matching an existing contact gets a note with the
//! inquiry; a burst against the keyless rate limit is paced, not failed; an access token that expires
//! during a run is refreshed without costing a delivery.

use std::time::Duration;

use leadhub::verticals::Vertical;
use leadhub_local::{Options, Stack};
use serde_json::{json, Value};

use crate::support::*;

fn lofty_options() -> Options {
    Options {
        buyers: Vec::new(),
        seed_sandboxes: true,
        ..options()
    }
}

fn sandbox(stack: &Stack) -> leadhub_sandbox::lofty::Lofty {
    stack.sandboxes.as_ref().expect("sandboxes").lofty.0.clone()
}

/// A contact someone else (an agent, another integration) created in Lofty, through its API.
async fn existing_contact(stack: &Stack, contact: &Value) -> i64 {
    let lofty = sandbox(stack);
    let server = &stack.sandboxes.as_ref().expect("sandboxes").lofty.1;
    let answer = client()
        .post(server.url("/v1.0/leads"))
        .bearer_auth(lofty.config().access_token.clone())
        .json(contact)
        .send()
        .await
        .expect("the sandbox answers");
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.expect("json");
    body["leadId"].as_i64().expect("a lead id")
}

#[tokio::test]
async fn a_phone_only_real_estate_lead_matching_a_contact_gets_a_note_with_the_inquiry() {
    let stack = stack_with(lofty_options()).await;
    let lofty = sandbox(&stack);
    // The contact is known to Lofty by phone, written its own way.
    let contact = existing_contact(
        &stack,
        &json!({"firstName": "Jane", "lastName": "Doe", "phones": ["727-555-0134"]}),
    )
    .await;
    lofty.reset_rate_limit();

    let mut lead = Vertical::RealEstate.example();
    lead.as_object_mut().expect("object").remove("emails");
    let lead_id = post_accepted(&stack, "real-estate", &lead).await;
    let view = wait_for_status(&stack, &lead_id, &["delivered"], Duration::from_secs(10)).await;

    let searches: Vec<String> = lofty
        .received()
        .iter()
        .filter(|e| e.method == "GET" && e.path == "/v1.0/leads")
        .map(|e| e.query.clone().unwrap_or_default())
        .collect();
    assert_eq!(searches.len(), 1, "{searches:?}");
    assert!(
        searches[0].contains("phone=%2B17275550134") && !searches[0].contains("email="),
        "looked up by phone: {searches:?}"
    );
    assert_eq!(lofty.leads().len(), 1, "no second lead for the contact");
    let notes = lofty.notes();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].lead_id, contact);
    let content = &notes[0].content;
    for expected in [
        "New real-estate inquiry from leadhub",
        lead_id.as_str(),
        "Looking as: buyer, investor.",
        "Wants: $250,000-$400,000; 3-4 bedrooms",
        "Where: Downtown Tampa, near the river (100 N Ashley Dr, Tampa, FL 33602).",
        "Message: Looking for a 3-bedroom house",
        "Contact: Jane Doe; phone +17275550134, +18135550199; address 1 Main St, Tampa, FL 33601",
    ] {
        assert!(content.contains(expected), "{expected:?} in {content}");
    }
    assert_eq!(view["status"], "delivered");
    // The contact's id is the delivery's reference, mapped back to the lead for Lofty's webhooks.
    let mapped = stack
        .buyer_refs
        .leads_for_buyer_ref("lofty", &contact.to_string(), 5)
        .await
        .expect("store");
    assert_eq!(
        mapped.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec![lead_id]
    );
}

/// A real-estate lead of its own consumer (email and phone unique to it).
fn consumer(n: usize) -> Value {
    let mut lead = Vertical::RealEstate.example();
    lead["emails"] = json!([unique_email(&format!("burst{n}"))]);
    lead["phones"] = json!([format!("(727) 555-01{:02}", n % 100)]);
    lead
}

#[tokio::test]
async fn a_burst_of_fifty_leads_against_ten_calls_a_window_is_paced_and_all_delivered() {
    burst_is_paced(Options {
        // Ten calls per window, as the seed's keyless limit; the window shortened to a second.
        lofty_rate_limit: (10, Duration::from_secs(1)),
        // A wait that used attempts would kill deliveries: two attempts leave no room for that.
        max_attempts: 2,
        ..lofty_options()
    })
    .await;
}

async fn burst_is_paced(options: Options) {
    let stack = stack_with(options).await;
    let lofty = sandbox(&stack);
    let posted = futures::future::join_all((0..50).map(|n| {
        let stack = &stack;
        async move { post_accepted(stack, "real-estate", &consumer(n)).await }
    }))
    .await;
    for lead_id in &posted {
        let view = wait_for_status(&stack, lead_id, &["delivered"], Duration::from_secs(120)).await;
        let delivery = &view["deliveries"][0];
        assert_eq!(delivery["status"], "accepted", "{view}");
        assert_eq!(delivery["attempts"], 1, "waits used no attempt: {view}");
    }
    assert_eq!(lofty.leads().len(), 50, "every lead created once");
    let since = chrono::Utc::now() - chrono::Duration::days(1);
    let dead = leadhub::operator::dead_deliveries(stack.dead_deliveries.as_ref(), since, 100)
        .await
        .expect("list");
    assert!(dead.is_empty(), "no dead delivery: {dead:?}");
    let creates = lofty
        .received()
        .iter()
        .filter(|e| e.method == "POST" && e.path == "/v1.0/leads" && e.status == 200)
        .count();
    assert_eq!(creates, 50, "one create per lead");
}

#[tokio::test]
async fn an_access_token_that_expires_during_a_run_is_renewed_and_costs_no_delivery() {
    token_expiry_costs_nothing(Options {
        lofty_token_lifetime: Some(Duration::from_secs(2)),
        lofty_rate_limit: (100, Duration::from_secs(60)),
        // A delivery failing for its token would die at once.
        max_attempts: 1,
        ..lofty_options()
    })
    .await;
}

#[tokio::test]
#[ignore = "needs moto: run infra/test.sh (or set LEADHUB_TEST_AWS_ENDPOINT)"]
async fn aws_an_access_token_that_expires_during_a_run_is_renewed_on_dynamodb() {
    token_expiry_costs_nothing(Options {
        backend: aws_backend("lofty-token"),
        lofty_token_lifetime: Some(Duration::from_secs(2)),
        lofty_rate_limit: (100, Duration::from_secs(60)),
        max_attempts: 1,
        ..lofty_options()
    })
    .await;
}

async fn token_expiry_costs_nothing(options: Options) {
    let stack = stack_with(options).await;
    let lofty = sandbox(&stack);
    let mut posted = Vec::new();
    // Leads over four token lifetimes: the configured token expires (a 401, then a refresh), and the
    // renewed ones are renewed in turn, ahead of their expiry or upon a 401.
    for round in 0..4 {
        let batch = futures::future::join_all((0..3).map(|n| {
            let stack = &stack;
            async move { post_accepted(stack, "real-estate", &consumer(round * 10 + n)).await }
        }))
        .await;
        for lead_id in &batch {
            let view =
                wait_for_status(&stack, lead_id, &["delivered"], Duration::from_secs(30)).await;
            assert_eq!(view["deliveries"][0]["attempts"], 1, "{view}");
        }
        posted.extend(batch);
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
    assert_eq!(lofty.leads().len(), posted.len());
    assert!(lofty.refreshes() >= 3, "renewed: {}", lofty.refreshes());
    let refused = lofty.received().iter().filter(|e| e.status == 401).count();
    assert!(refused >= 1, "the configured token expired during the run");
    let since = chrono::Utc::now() - chrono::Duration::days(1);
    let dead = leadhub::operator::dead_deliveries(stack.dead_deliveries.as_ref(), since, 100)
        .await
        .expect("list");
    assert!(dead.is_empty(), "no dead delivery: {dead:?}");
    // The tokens stay out of timelines.
    for lead_id in &posted {
        let view = get_lead(&stack, lead_id).await.body.to_string();
        assert!(!view.contains(&lofty.config().access_token), "{view}");
    }
}
