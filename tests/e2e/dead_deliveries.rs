//! Dead deliveries: a delivery that used up its attempts is listed for operators, a lost marker is written
//! again by a redelivered job, and a replay (the library call behind `leadhub-admin deliveries replay`)
//! delivers it with the same `webhook-id`, on the memory backend and on moto.

use std::time::Duration;

use leadhub::delivery::DispatchJob;
use leadhub::lead::{DeliveryStatus, LeadId, LeadStatus};
use leadhub::lifecycle::ReplayRefusal;
use leadhub::operator::{self, ReplayError, ReplayPorts};
use leadhub::store::DeadDelivery;
use leadhub_local::{Options, Stack};
use leadhub_sandbox::webhook::Failure;

use crate::support::*;

const BUYER: &str = "sandbox-webhook";

fn ports(stack: &Stack) -> ReplayPorts<'_> {
    ReplayPorts {
        store: stack.store.as_ref(),
        dispatch_queue: stack.dispatch_queue.as_ref(),
        dead_deliveries: stack.dead_deliveries.as_ref(),
    }
}

/// The lead's marker as `deliveries dead` lists it (the last day).
async fn marker(stack: &Stack, lead_id: &LeadId) -> Option<DeadDelivery> {
    let since = chrono::Utc::now() - chrono::Duration::days(1);
    operator::dead_deliveries(stack.dead_deliveries.as_ref(), since, 1000)
        .await
        .expect("list")
        .into_iter()
        .find(|dead| &dead.lead_id == lead_id)
}

/// Wait until the lead's marker is listed (or, with `false`, gone).
async fn wait_for_marker(stack: &Stack, lead_id: &LeadId, listed: bool) -> Option<DeadDelivery> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let found = marker(stack, lead_id).await;
        if found.is_some() == listed {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the marker of {lead_id} is still {}",
            if listed { "missing" } else { "listed" }
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn a_dead_delivery_is_listed_and_replayed_with_the_same_webhook_id(options: Options) {
    let stack = stack_with(Options {
        max_attempts: 2,
        ..options
    })
    .await;
    let buyer = stack.buyer(BUYER).expect("buyer").clone();
    // Every attempt fails.
    buyer.fail_next(Failure {
        status: 500,
        times: 2,
        delay_ms: 0,
        retry_after: None,
        body: None,
    });
    let answer = post_lead(&stack, "heloc", &heloc_lead("replay")).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let lead_text = answer.body["leadId"].as_str().expect("leadId").to_owned();
    let lead_id: LeadId = lead_text.parse().expect("a lead id");
    let view = wait_for_status(&stack, &lead_text, &["unsold"], Duration::from_secs(30)).await;
    assert_eq!(view["deliveries"][0]["status"], "dead", "{view:#}");

    // Listed, with what the timeline says about its death.
    let dead = wait_for_marker(&stack, &lead_id, true)
        .await
        .expect("listed");
    assert_eq!(dead.destination, BUYER);
    assert_eq!(dead.attempts, 2);
    assert_eq!(dead.code, "http_500");
    assert!(
        dead.reason.starts_with("gave up after 2 attempts"),
        "{}",
        dead.reason
    );
    let record = stack
        .store
        .get_lead(&lead_id)
        .await
        .expect("store")
        .expect("the lead");
    assert_eq!(
        dead.expires_at, record.expires_at,
        "it expires with its lead"
    );

    // A marker whose write was lost is written again by a redelivered job of the dead delivery.
    stack
        .dead_deliveries
        .remove(&lead_id, BUYER, dead.died_at)
        .await
        .expect("remove");
    assert_eq!(marker(&stack, &lead_id).await, None);
    let job = serde_json::to_string(&DispatchJob::Deliver {
        lead_id: lead_id.clone(),
        destination: BUYER.parse().expect("id"),
        attempt: 2,
    })
    .expect("json");
    stack
        .dispatch_queue
        .send(&job, Duration::ZERO)
        .await
        .expect("send");
    assert_eq!(
        wait_for_marker(&stack, &lead_id, true).await,
        Some(dead.clone()),
        "the very same marker"
    );
    assert_eq!(buyer.received_for(&lead_text).len(), 2, "and no third post");

    // The buyer has recovered (its two failures are spent): the operator replays the delivery.
    let replayed = operator::replay_delivery(ports(&stack), &lead_id, BUYER)
        .await
        .expect("replayed");
    assert_eq!(
        replayed.lead_status,
        LeadStatus::Routing,
        "unsold -> routing"
    );
    let view = wait_for_status(&stack, &lead_text, &["delivered"], Duration::from_secs(30)).await;
    assert_eq!(view["deliveries"][0]["status"], "accepted");
    assert_eq!(
        view["deliveries"][0]["attempts"], 1,
        "a fresh attempt count"
    );
    let kinds = timeline_kinds(&view);
    let replay_at = kinds
        .iter()
        .position(|kind| kind == "delivery_replayed")
        .expect("the replay is on the timeline");
    assert_eq!(
        kinds[replay_at..],
        [
            "delivery_replayed",
            "delivery_attempt",
            "delivery_accepted",
            "delivered"
        ],
        "{kinds:?}"
    );
    let received = buyer.received_for(&lead_text);
    assert_eq!(
        received.iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 500, 200]
    );
    let key = format!("msg_{lead_text}_{BUYER}");
    assert!(
        received.iter().all(|r| r.webhook_id == key),
        "the same webhook-id on every attempt and on the replay: {:?}",
        received.iter().map(|r| &r.webhook_id).collect::<Vec<_>>()
    );
    assert_eq!(buyer.rejected_signatures(), 0);
    wait_for_marker(&stack, &lead_id, false).await;

    // Refusals name what is wrong and change nothing.
    let again = operator::replay_delivery(ports(&stack), &lead_id, BUYER)
        .await
        .expect_err("not dead any more");
    assert!(
        matches!(
            &again,
            ReplayError::Refused(ReplayRefusal::NotDead {
                status: DeliveryStatus::Accepted,
                ..
            })
        ),
        "{again}"
    );
    assert!(
        again.to_string().contains("is accepted, not dead"),
        "{again}"
    );
    let nowhere = operator::replay_delivery(ports(&stack), &lead_id, "nobody")
        .await
        .expect_err("no such delivery");
    assert!(
        nowhere.to_string().contains("has no delivery to `nobody`"),
        "{nowhere}"
    );
    let unknown = LeadId::generate(chrono::Utc::now());
    let missing = operator::replay_delivery(ports(&stack), &unknown, BUYER)
        .await
        .expect_err("no such lead");
    assert_eq!(
        missing.to_string(),
        format!("lead {unknown} does not exist")
    );
    assert_eq!(buyer.received_for(&lead_text).len(), 3);
}

#[tokio::test]
async fn a_dead_delivery_is_listed_and_a_replay_delivers_it_with_the_same_webhook_id() {
    a_dead_delivery_is_listed_and_replayed_with_the_same_webhook_id(options()).await;
}

#[tokio::test]
#[ignore = "needs moto: run infra/test.sh (or set LEADHUB_TEST_AWS_ENDPOINT)"]
async fn aws_a_dead_delivery_is_listed_and_a_replay_delivers_it_with_the_same_webhook_id() {
    a_dead_delivery_is_listed_and_replayed_with_the_same_webhook_id(Options {
        backend: aws_backend("replay"),
        ..options()
    })
    .await;
}
