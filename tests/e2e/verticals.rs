//! Every vertical end to end, the OpenAPI document, and SSNs that are never in a lead, a delivery or the
//! status API (ingest's own tests look at the sealed copy kept for screening).

use std::time::Duration;

use leadhub::verticals::Vertical;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a_valid_lead_of_every_vertical_is_accepted_and_delivered() {
    let stack = stack().await;
    let buyer = stack.buyer("sandbox-webhook").expect("buyer").clone();
    for vertical in Vertical::ALL {
        let answer = post_lead(&stack, vertical.as_str(), &vertical.example()).await;
        assert_eq!(answer.status, 202, "{vertical}: {}", answer.body);
        let lead_id = answer.body["leadId"].as_str().expect("leadId").to_owned();
        wait_for_status(&stack, &lead_id, &["delivered"], Duration::from_secs(5)).await;
        let received = buyer.received_for(&lead_id);
        assert_eq!(received.len(), 1, "{vertical}");
        assert_eq!(received[0].payload["data"]["vertical"], vertical.as_str());
        assert!(received[0].payload["data"]["lead"].is_object());
    }
}

#[tokio::test]
async fn the_openapi_document_is_served_without_credentials() {
    let stack = stack().await;
    let answer = send(client().get(stack.url("/v1/openapi.json"))).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["content-type"], "application/json");
    assert_eq!(answer.body["openapi"], "3.1.0");
    for vertical in Vertical::ALL {
        assert!(
            answer.body["paths"][format!("/v1/leads/{}", vertical.as_str())]["post"].is_object()
        );
    }
    let wrong = send(client().delete(stack.url("/v1/openapi.json"))).await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.headers["allow"], "GET");
}

#[tokio::test]
async fn an_ssn_is_never_in_the_lead_its_delivery_or_the_status_api_only_its_keyed_hash() {
    let stack = stack().await;
    let mut lead = Vertical::Mortgage.example();
    lead["borrower"]["ssn"] = json!("219-09-9999");
    let answer = post_lead(&stack, "mortgage", &lead).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let lead_id = answer.body["leadId"].as_str().expect("leadId").to_owned();
    wait_for_status(&stack, &lead_id, &["delivered"], Duration::from_secs(5)).await;
    let stored = stack
        .store
        .get_lead(&lead_id.parse().expect("id"))
        .await
        .expect("store")
        .expect("stored");
    let text = serde_json::to_string(&stored).expect("json");
    assert!(
        !text.contains("219-09-9999") && !text.contains("219099999"),
        "the SSN is stored: {text}"
    );
    let hash = stored
        .ssn_hash
        .expect("the keyed hash is kept for screening");
    assert_eq!(hash.len(), 64);
    let delivered = stack
        .buyer("sandbox-webhook")
        .expect("buyer")
        .received_for(&lead_id);
    let text = delivered[0].payload.to_string();
    assert!(!text.contains("219-09-9999") && !text.contains("219099999") && !text.contains(&hash));
    // The status API, timeline included, shows neither the SSN nor its hash.
    let status = get_lead(&stack, &lead_id).await;
    assert_eq!(status.status, 200);
    assert!(status.body["timeline"].is_array());
    let text = status.body.to_string();
    assert!(
        !text.contains("219-09-9999") && !text.contains("219099999") && !text.contains(&hash),
        "the status API shows the SSN: {text}"
    );
}
