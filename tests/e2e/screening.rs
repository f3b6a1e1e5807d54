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
    let last = view["timeline"]
        .as_array()
        .expect("timeline")
        .last()
        .expect("event")
        .clone();
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
async fn racing_leads_with_one_email_deliver_exactly_one() {
    let stack = stack().await;
    let lead = heloc_lead("race");
    let mut ids = Vec::new();
    let answers = futures_join(&stack, &lead, 8).await;
    for answer in answers {
        assert_eq!(answer.status, 202);
        ids.push(answer.body["leadId"].as_str().expect("leadId").to_owned());
    }
    let mut statuses = Vec::new();
    for id in &ids {
        let view = wait_for_status(
            &stack,
            id,
            &["delivered", "rejected"],
            Duration::from_secs(10),
        )
        .await;
        statuses.push(view["status"].as_str().expect("status").to_owned());
    }
    assert_eq!(
        statuses.iter().filter(|s| *s == "delivered").count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| *s == "rejected").count(), 7);
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
