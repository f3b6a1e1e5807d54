//! Routing end to end: caps exact under concurrency, waterfalls passing a lead on (a dead delivery, a
//! buyer's later rejection), and the explanations partners read.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use leadhub_local::{Options, Stack};
use leadhub_sandbox::webhook::Failure;
use serde_json::Value;

use crate::support::*;

const CAP: usize = 7;
const LEADS: usize = 200;

/// A waterfall over a capped buyer (first) and an uncapped one.
fn capped_options() -> Options {
    Options {
        buyers: vec!["capped".into(), "backup".into()],
        buyer_settings: BTreeMap::from([
            (
                "capped".to_owned(),
                format!("priority = 1\n[destinations.caps]\nday = {CAP}\n"),
            ),
            ("backup".to_owned(), "priority = 2\n".to_owned()),
        ]),
        ..options()
    }
}

async fn post_many(stack: &Stack, tag: &str, n: usize) -> Vec<String> {
    let answers = futures::future::join_all((0..n).map(|i| async move {
        post_lead(stack, "heloc", &heloc_lead(&format!("{tag}{i}"))).await
    }))
    .await;
    answers
        .into_iter()
        .map(|answer| {
            assert_eq!(answer.status, 202, "{}", answer.body);
            answer.body["leadId"].as_str().expect("leadId").to_owned()
        })
        .collect()
}

async fn caps_hold_under_concurrency(stack: Stack, wait: Duration) {
    let ids = post_many(&stack, "cap", LEADS).await;
    for id in &ids {
        wait_for_status(&stack, id, &["delivered"], wait).await;
    }
    let lead_ids = |buyer: &str| -> BTreeSet<String> {
        stack
            .buyer(buyer)
            .expect("buyer")
            .received()
            .iter()
            .filter(|r| r.status == 200)
            .filter_map(|r| r.payload["data"]["leadId"].as_str().map(str::to_owned))
            .collect()
    };
    let capped = lead_ids("capped");
    let backup = lead_ids("backup");
    assert_eq!(capped.len(), CAP, "the capped buyer took exactly its cap");
    assert_eq!(
        backup.len(),
        LEADS - CAP,
        "the rest went on to the next buyer"
    );
    assert!(capped.is_disjoint(&backup), "no lead went to both");
    // The leads over the cap say why they skipped the first buyer, without naming it.
    let over: Vec<&String> = ids.iter().filter(|id| backup.contains(*id)).collect();
    let view = get_lead(&stack, over[0]).await.body;
    let text = view["timeline"].to_string();
    assert!(
        text.contains("daily cap") || text.contains("cap_reached"),
        "{text}"
    );
}

#[tokio::test]
async fn a_cap_of_n_under_200_concurrent_leads_admits_exactly_n() {
    caps_hold_under_concurrency(stack_with(capped_options()).await, Duration::from_secs(30)).await;
}

#[tokio::test]
#[ignore = "needs moto: run infra/test.sh (or set LEADHUB_TEST_AWS_ENDPOINT)"]
async fn aws_a_cap_of_n_under_200_concurrent_leads_admits_exactly_n() {
    let stack = stack_with(Options {
        backend: aws_backend("caps"),
        ..capped_options()
    })
    .await;
    caps_hold_under_concurrency(stack, Duration::from_secs(120)).await;
}

#[tokio::test]
async fn an_always_failing_buyer_ends_dead_and_the_next_buyer_gets_the_lead() {
    let stack = stack_with(Options {
        max_attempts: 3,
        buyers: vec!["broken".into(), "backup".into()],
        ..options()
    })
    .await;
    stack.buyer("broken").expect("buyer").fail_next(Failure {
        status: 500,
        times: 100,
        delay_ms: 0,
        retry_after: None,
        body: None,
    });
    let answer = post_lead(&stack, "heloc", &heloc_lead("broken")).await;
    let lead_id = answer.body["leadId"].as_str().expect("leadId").to_owned();
    let view = wait_for_status(&stack, &lead_id, &["delivered"], Duration::from_secs(15)).await;
    assert_eq!(
        stack
            .buyer("broken")
            .expect("buyer")
            .received_for(&lead_id)
            .len(),
        3,
        "max_attempts, then dead"
    );
    assert_eq!(
        stack
            .buyer("backup")
            .expect("buyer")
            .received_for(&lead_id)
            .len(),
        1
    );
    let statuses = delivery_statuses(&view);
    assert_eq!(statuses["broken"], "dead");
    assert_eq!(statuses["backup"], "accepted");
    let kinds: Vec<&str> = view["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["code"].as_str())
        .collect();
    assert!(kinds.contains(&"next_buyer"), "{kinds:?}");
}

#[tokio::test]
async fn a_waterfall_offers_one_buyer_at_a_time() {
    let stack = stack_with(Options {
        buyers: vec!["first".into(), "second".into()],
        ..options()
    })
    .await;
    let answer = post_lead(&stack, "heloc", &heloc_lead("one-at-a-time")).await;
    let lead_id = answer.body["leadId"].as_str().expect("leadId").to_owned();
    let view = wait_for_status(&stack, &lead_id, &["delivered"], Duration::from_secs(5)).await;
    assert_eq!(
        stack
            .buyer("first")
            .expect("buyer")
            .received_for(&lead_id)
            .len(),
        1
    );
    assert!(stack
        .buyer("second")
        .expect("buyer")
        .received_for(&lead_id)
        .is_empty());
    let second: Vec<&Value> = view["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .filter(|d| d["destination"] == "second")
        .collect();
    assert_eq!(
        second[0]["status"], "queued",
        "in line if the first buyer gives it back"
    );
}

#[tokio::test]
async fn ntherms_later_rejection_sends_the_lead_to_the_next_buyer() {
    let stack = stack_with(Options {
        buyers: vec!["solar-backup".into()],
        // After nTherm in the solar waterfall.
        buyer_settings: BTreeMap::from([(
            "solar-backup".to_owned(),
            "priority = 200\n".to_owned(),
        )]),
        seed_sandboxes: true,
        ntherm_rejects_after_post: true,
        ..options()
    })
    .await;
    let lead = leadhub::verticals::Vertical::Solar.example();
    let answer = post_lead(&stack, "solar", &lead).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let lead_id = answer.body["leadId"].as_str().expect("leadId").to_owned();
    let backup = stack.buyer("solar-backup").expect("buyer").clone();
    for _ in 0..200 {
        if !backup.received_for(&lead_id).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        backup.received_for(&lead_id).len(),
        1,
        "the next buyer got the lead"
    );
    let view = wait_for_status(&stack, &lead_id, &["delivered"], Duration::from_secs(10)).await;
    let kinds = timeline_kinds(&view);
    let verdict = kinds
        .iter()
        .position(|k| *k == "buyer_verdict")
        .expect("nTherm's verdict");
    assert_eq!(kinds[verdict + 1], "routing", "{kinds:?}");
    let statuses = delivery_statuses(&view);
    assert_eq!(statuses["ntherm"], "rejected");
    assert_eq!(statuses["solar-backup"], "accepted");
}

#[tokio::test]
async fn a_test_lead_is_routed_and_explained_calls_no_buyer_takes_no_claim_and_ends_test() {
    let stack = stack_with(Options {
        buyers: vec!["first".into(), "second".into()],
        buyer_settings: BTreeMap::from([
            (
                "first".to_owned(),
                "[destinations.caps]\nday = 1\n[destinations.filters]\nstates = [\"TX\"]\n"
                    .to_owned(),
            ),
            (
                "second".to_owned(),
                "[destinations.caps]\nday = 1\n".to_owned(),
            ),
        ]),
        ..options()
    })
    .await;
    let lead = heloc_lead("test-lead");
    let answer = send(
        client()
            .post(stack.url("/v1/leads/heloc"))
            .basic_auth(KEY, Some(SECRET))
            .header("Leadhub-Test", "true")
            .json(&lead),
    )
    .await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let test_id = answer.body["leadId"].as_str().expect("leadId").to_owned();
    let view = wait_for_status(&stack, &test_id, &["test"], Duration::from_secs(5)).await;
    let reasons: Vec<String> = view["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["reason"].as_str().map(str::to_owned))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("would be offered to: second")
                && r.contains("1 buyer does not take leads from FL")),
        "{reasons:?}"
    );
    assert!(view["deliveries"]
        .as_array()
        .expect("deliveries")
        .is_empty());
    for buyer in ["first", "second"] {
        assert!(
            stack.buyer(buyer).expect("buyer").received().is_empty(),
            "{buyer} was called"
        );
    }
    // No cap place and no duplicate claim was taken: the same lead, posted for real, is delivered to the
    // buyer whose daily cap is 1.
    let answer = post_lead(&stack, "heloc", &lead).await;
    let real_id = answer.body["leadId"].as_str().expect("leadId").to_owned();
    wait_for_status(&stack, &real_id, &["delivered"], Duration::from_secs(5)).await;
    assert_eq!(
        stack
            .buyer("second")
            .expect("buyer")
            .received_for(&real_id)
            .len(),
        1
    );

    // A malformed header is refused, naming it.
    let bad = send(
        client()
            .post(stack.url("/v1/leads/heloc"))
            .basic_auth(KEY, Some(SECRET))
            .header("Leadhub-Test", "yes")
            .json(&heloc_lead("test-bad")),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["errors"][0]["field"], "Leadhub-Test");
}

#[tokio::test]
async fn a_crash_between_a_buyers_acceptance_and_its_record_does_not_deliver_twice_to_an_idempotent_buyer(
) {
    let stack = stack().await;
    let buyer = stack.buyer("sandbox-webhook").expect("buyer").clone();
    let answer = post_lead(&stack, "heloc", &heloc_lead("crash-after-accept")).await;
    let lead_id = answer.body["leadId"].as_str().expect("leadId").to_owned();
    wait_for_status(&stack, &lead_id, &["delivered"], Duration::from_secs(5)).await;
    let id: leadhub::lead::LeadId = lead_id.parse().expect("id");

    // Rewind the record to the moment between the buyer's 200 and its recording: the attempt in flight
    // with its worker's lease run out, the lead still routing (the worker died there).
    let lead = stack
        .store
        .get_lead(&id)
        .await
        .expect("store")
        .expect("lead");
    let mut state = lead.deliveries["sandbox-webhook"].clone();
    state.status = leadhub::lead::DeliveryStatus::InFlight;
    state.lease_until = Some(chrono::Utc::now() - chrono::Duration::seconds(1));
    state.buyer_ref = None;
    let rewind = leadhub::store::LeadUpdate::new(chrono::Utc::now())
        .status(leadhub::lead::LeadStatus::Routing)
        .delivery(
            "sandbox-webhook",
            leadhub::store::DeliveryExpect::StatusIn(vec![leadhub::lead::DeliveryStatus::Accepted]),
            state,
        );
    stack
        .store
        .update_lead(&id, &rewind)
        .await
        .expect("rewound");

    // SQS hands the job out again, as it does when a worker dies.
    let job = serde_json::to_string(&leadhub::delivery::DispatchJob::Deliver {
        lead_id: id.clone(),
        destination: "sandbox-webhook".parse().expect("id"),
        attempt: 1,
    })
    .expect("json");
    stack
        .dispatch_queue
        .send(&job, Duration::ZERO)
        .await
        .expect("send");
    for _ in 0..200 {
        if buyer.received_for(&lead_id).len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let view = wait_for_status(&stack, &lead_id, &["delivered"], Duration::from_secs(5)).await;
    let posts = buyer.received_for(&lead_id);
    assert_eq!(posts.len(), 2, "the lost answer is asked for again");
    assert_eq!(
        posts[0].webhook_id, posts[1].webhook_id,
        "with the same idempotency key"
    );
    assert_eq!(buyer.taken(), 1, "the idempotent buyer took the lead once");
    let accepted: Vec<&Value> = view["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|e| e["kind"] == "delivery_accepted")
        .collect();
    assert!(
        accepted
            .iter()
            .all(|e| e["reason"].as_str().is_some_and(|r| r.contains("wh-1"))),
        "the buyer's reference is the first one: {accepted:?}"
    );
}
