//! The local stack's bounded memory: `Options::lead_ttl` caps how long the embedded store keeps a lead,
//! `Options::sandbox_log_capacity` how much each sandbox logs (the store's sweeps themselves are tested
//! with a test clock in `shared/src/store/memory/tests.rs`).

use std::time::Duration;

use chrono::DateTime;
use leadhub::lead::LeadId;
use leadhub_local::{start, Backend, Options};

use crate::support::{heloc_lead, options, post_lead, stack_with, wait_for_status};

#[tokio::test]
async fn with_a_lead_ttl_leads_expire_that_long_after_they_were_received_and_sandboxes_keep_their_newest(
) {
    let stack = stack_with(Options {
        lead_ttl: Some(Duration::from_secs(600)),
        sandbox_log_capacity: 2,
        ..options()
    })
    .await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let answer = post_lead(&stack, "heloc", &heloc_lead(&format!("ttl{n}"))).await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        let id = answer.body["leadId"].as_str().expect("an id").to_owned();
        wait_for_status(&stack, &id, &["delivered"], Duration::from_secs(30)).await;
        ids.push(id);
    }
    for id in &ids {
        let lead = stack
            .store
            .get_lead(&id.parse::<LeadId>().expect("a lead id"))
            .await
            .expect("read")
            .expect("kept");
        // Not the configuration's 180 days: ten minutes after it was received.
        assert_eq!(
            lead.expires_at,
            Some(lead.created_at + chrono::Duration::minutes(10)),
            "{id}"
        );
        assert!(lead.created_at > DateTime::UNIX_EPOCH);
    }
    let counts = stack
        .memory_store
        .as_ref()
        .expect("the memory backend")
        .item_counts();
    assert_eq!(counts.leads, 3);
    assert_eq!(counts.claims, 3, "one duplicate claim per HELOC email");
    // The buyer logs its newest two deliveries.
    let buyer = stack.buyer("sandbox-webhook").expect("the buyer");
    let delivered: Vec<String> = buyer
        .received()
        .into_iter()
        .map(|r| {
            r.payload["data"]["leadId"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(delivered, ids[1..]);
    assert_eq!(buyer.taken(), 3);
}

#[tokio::test]
async fn a_lead_ttl_is_refused_on_the_aws_backend() {
    let refused = start(Options {
        lead_ttl: Some(Duration::from_secs(600)),
        backend: Backend::Aws {
            endpoint: "http://127.0.0.1:9".into(),
            prefix: "unused".into(),
        },
        ..options()
    })
    .await;
    let error = refused.err().expect("refused").to_string();
    assert!(error.contains("memory backend only"), "{error}");
}
