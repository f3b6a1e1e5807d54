//! Delivery: retries through the queue, honouring the buyer; redelivered messages; poisoned records;
//! configuration failures; buyer verdicts through callback.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use leadhub::delivery::DispatchJob;
use leadhub_sandbox::webhook::Failure;
use serde_json::{json, Value};

use crate::support::*;

fn failure(status: u16, times: u32) -> Failure {
    Failure {
        status,
        times,
        delay_ms: 0,
        retry_after: None,
        body: None,
    }
}

#[tokio::test]
async fn failed_attempts_are_retried_through_the_queue_with_the_same_webhook_id() {
    let stack = stack().await;
    let buyer = stack.buyer("sandbox-webhook").expect("buyer").clone();
    buyer.fail_next(failure(503, 2));
    let answer = post_lead(&stack, "heloc", &heloc_lead("retry")).await;
    let lead_id = answer.body["leadId"].as_str().expect("leadId");
    let view = wait_for_status(&stack, lead_id, &["delivered"], Duration::from_secs(10)).await;
    assert_eq!(view["deliveries"][0]["attempts"], 3);
    let kinds = timeline_kinds(&view);
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "delivery_retry_scheduled")
            .count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(kinds.iter().filter(|k| *k == "delivery_attempt").count(), 3);
    let received = buyer.received_for(lead_id);
    assert_eq!(
        received.iter().map(|r| r.status).collect::<Vec<_>>(),
        [503, 503, 200]
    );
    assert!(
        received
            .iter()
            .all(|r| r.webhook_id == received[0].webhook_id),
        "one idempotency key per delivery"
    );
    assert_eq!(buyer.rejected_signatures(), 0);
}

#[tokio::test]
async fn a_buyers_retry_after_is_honoured() {
    let stack = stack().await;
    let buyer = stack.buyer("sandbox-webhook").expect("buyer").clone();
    buyer.fail_next(Failure {
        retry_after: Some("1".into()),
        ..failure(429, 1)
    });
    let answer = post_lead(&stack, "heloc", &heloc_lead("retry-after")).await;
    let lead_id = answer.body["leadId"].as_str().expect("leadId");
    let view = wait_for_status(&stack, lead_id, &["delivered"], Duration::from_secs(10)).await;
    let attempts: Vec<chrono::DateTime<chrono::Utc>> = view["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|e| e["kind"] == "delivery_attempt")
        .map(|e| e["at"].as_str().expect("at").parse().expect("time"))
        .collect();
    assert_eq!(attempts.len(), 2);
    assert!(
        attempts[1] - attempts[0] >= chrono::Duration::milliseconds(1000),
        "{attempts:?}"
    );
}

#[tokio::test]
async fn an_absurd_retry_after_is_waited_for_an_hour_at_most_and_dispatch_keeps_working() {
    let stack = stack().await;
    let buyer = stack.buyer("sandbox-webhook").expect("buyer").clone();
    buyer.fail_next(Failure {
        retry_after: Some("99999999999999".into()),
        ..failure(429, 1)
    });
    let answer = post_lead(&stack, "heloc", &heloc_lead("absurd-retry-after")).await;
    let first = answer.body["leadId"].as_str().expect("leadId").to_owned();
    let mut view = get_lead(&stack, &first).await.body;
    for _ in 0..200 {
        if view.to_string().contains("delivery_retry_scheduled") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        view = get_lead(&stack, &first).await.body;
    }
    let scheduled = view["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .find(|e| e["kind"] == "delivery_retry_scheduled")
        .expect("a retry is scheduled")
        .to_string();
    // A 429's wait uses up no attempt (see lifecycle::attempt_outcome).
    assert!(scheduled.contains("waiting 3600 s"), "{scheduled}");
    // Dispatch is still alive: the next lead is delivered.
    let answer = post_lead(&stack, "heloc", &heloc_lead("after-absurd")).await;
    let second = answer.body["leadId"].as_str().expect("leadId");
    wait_for_status(&stack, second, &["delivered"], Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_slow_buyer_times_out_and_is_retried() {
    let stack = stack_with(leadhub_local::Options {
        buyer_timeout_ms: 300,
        ..options()
    })
    .await;
    let buyer = stack.buyer("sandbox-webhook").expect("buyer").clone();
    buyer.fail_next(Failure {
        delay_ms: 1000,
        ..failure(200, 1)
    });
    let answer = post_lead(&stack, "heloc", &heloc_lead("slow")).await;
    let lead_id = answer.body["leadId"].as_str().expect("leadId");
    let view = wait_for_status(&stack, lead_id, &["delivered"], Duration::from_secs(10)).await;
    let codes: Vec<&str> = view["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["code"].as_str())
        .collect();
    assert!(codes.contains(&"timeout"), "{codes:?}");
}

#[tokio::test]
async fn exhausted_retries_and_bad_credentials_leave_the_lead_unsold_without_hammering() {
    let stack = stack_with(leadhub_local::Options {
        max_attempts: 3,
        buyers: vec!["flaky".into(), "locked".into()],
        ..options()
    })
    .await;
    stack
        .buyer("flaky")
        .expect("buyer")
        .fail_next(failure(500, 100));
    stack
        .buyer("locked")
        .expect("buyer")
        .fail_next(failure(401, 100));
    let answer = post_lead(&stack, "heloc", &heloc_lead("dead")).await;
    let lead_id = answer.body["leadId"].as_str().expect("leadId");
    let view = wait_for_status(&stack, lead_id, &["unsold"], Duration::from_secs(15)).await;
    assert_eq!(
        stack
            .buyer("flaky")
            .expect("buyer")
            .received_for(lead_id)
            .len(),
        3,
        "max_attempts"
    );
    assert_eq!(
        stack
            .buyer("locked")
            .expect("buyer")
            .received_for(lead_id)
            .len(),
        1,
        "credentials: no retry"
    );
    for delivery in view["deliveries"].as_array().expect("deliveries") {
        assert_eq!(delivery["status"], "dead", "{delivery}");
    }
    let codes: Vec<&str> = view["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["code"].as_str())
        .collect();
    assert!(
        codes.contains(&"http_401")
            && codes.contains(&"http_500")
            && codes.contains(&"no_buyer_took_it"),
        "{codes:?}"
    );
}

#[tokio::test]
async fn one_buyer_declining_does_not_stop_another_taking_the_lead() {
    let stack = stack_with(leadhub_local::Options {
        buyers: vec!["picky".into(), "eager".into()],
        ..options()
    })
    .await;
    stack.buyer("picky").expect("buyer").fail_next(Failure {
        body: Some(json!({"message": "state not served"})),
        ..failure(422, 1)
    });
    let answer = post_lead(&stack, "heloc", &heloc_lead("two")).await;
    let lead_id = answer.body["leadId"].as_str().expect("leadId");
    let view = wait_for_status(&stack, lead_id, &["delivered"], Duration::from_secs(5)).await;
    // Wait for the decline to be recorded too.
    let mut view = view;
    for _ in 0..100 {
        if view["deliveries"]
            .as_array()
            .expect("deliveries")
            .iter()
            .all(|d| d["status"] != "in_flight" && d["status"] != "pending")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        view = get_lead(&stack, lead_id).await.body;
    }
    let statuses: Vec<(String, String)> = view["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .map(|d| {
            (
                d["destination"].as_str().unwrap_or("").into(),
                d["status"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("eager".into(), "accepted".into()),
            ("picky".into(), "rejected".into())
        ]
    );
    assert!(
        view.to_string().contains("state not served"),
        "the buyer's reason is on the timeline"
    );
}

#[tokio::test]
async fn a_redelivered_message_never_posts_twice_after_a_recorded_success() {
    let stack = stack().await;
    let buyer = stack.buyer("sandbox-webhook").expect("buyer").clone();
    let answer = post_lead(&stack, "heloc", &heloc_lead("redelivered")).await;
    let lead_id = answer.body["leadId"].as_str().expect("leadId").to_owned();
    wait_for_status(&stack, &lead_id, &["delivered"], Duration::from_secs(5)).await;
    let job = DispatchJob::Deliver {
        lead_id: lead_id.parse().expect("id"),
        destination: "sandbox-webhook".parse().expect("id"),
        attempt: 1,
    };
    // SQS delivers the same message again, twice through the queue and once straight to the handler.
    let body = serde_json::to_string(&job).expect("json");
    stack
        .dispatch_queue
        .send(&body, Duration::ZERO)
        .await
        .expect("send");
    stack
        .dispatch_queue
        .send(&body, Duration::ZERO)
        .await
        .expect("send");
    stack
        .dispatch
        .handle_job(&job)
        .await
        .expect("a duplicate is not an error");
    // And a validate job for the same lead arrives again.
    stack
        .validate_queue
        .send(&format!("{{\"leadId\":\"{lead_id}\"}}"), Duration::ZERO)
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(500)).await;
    eventually("the queues drain", Duration::from_secs(5), || {
        stack.dead_letters.iter().all(|q| q.is_empty())
    })
    .await;
    assert_eq!(buyer.received_for(&lead_id).len(), 1);
}

#[tokio::test]
async fn a_lead_left_routing_after_its_outcome_was_recorded_is_settled_by_the_redelivered_job() {
    let stack = stack().await;
    let buyer = stack.buyer("sandbox-webhook").expect("buyer").clone();
    let answer = post_lead(&stack, "heloc", &heloc_lead("unsettled")).await;
    let lead_id = answer.body["leadId"].as_str().expect("leadId").to_owned();
    wait_for_status(&stack, &lead_id, &["delivered"], Duration::from_secs(5)).await;
    unsettle(&stack, &lead_id).await;
    // SQS redelivers that worker's message: nothing is posted, and the lead is settled.
    let job = DispatchJob::Deliver {
        lead_id: lead_id.parse().expect("id"),
        destination: "sandbox-webhook".parse().expect("id"),
        attempt: 1,
    };
    stack.dispatch.handle_job(&job).await.expect("handled");
    assert_eq!(get_lead(&stack, &lead_id).await.body["status"], "delivered");
    assert_eq!(buyer.received_for(&lead_id).len(), 1);
}

#[tokio::test]
async fn concurrent_duplicates_of_an_attempt_post_once() {
    let stack = stack().await;
    let buyer = stack.buyer("sandbox-webhook").expect("buyer").clone();
    // A slow answer keeps the first attempt in flight while its duplicates arrive.
    buyer.fail_next(Failure {
        delay_ms: 600,
        ..failure(200, 1)
    });
    let answer = post_lead(&stack, "heloc", &heloc_lead("concurrent")).await;
    let lead_id = answer.body["leadId"].as_str().expect("leadId").to_owned();
    // Let validate plan the delivery so the duplicates meet the first attempt in flight.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let job = DispatchJob::Deliver {
        lead_id: lead_id.parse().expect("id"),
        destination: "sandbox-webhook".parse().expect("id"),
        attempt: 1,
    };
    let body = serde_json::to_string(&job).expect("json");
    for _ in 0..3 {
        stack
            .dispatch_queue
            .send(&body, Duration::ZERO)
            .await
            .expect("send");
    }
    wait_for_status(&stack, &lead_id, &["delivered"], Duration::from_secs(5)).await;
    // Duplicates that met the attempt in flight were failed back to the queue; let them come round again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(buyer.received_for(&lead_id).len(), 1);
}

fn record(id: &str, body: &str) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(id.into());
    message.body = Some(body.into());
    message
}

#[tokio::test]
async fn a_malformed_record_in_a_batch_fails_only_itself() {
    let stack = stack().await;
    // A lead stored and queued by ingest; its job travels with two bad ones.
    let answer = post_lead(&stack, "heloc", &heloc_lead("poison")).await;
    let lead_id = answer.body["leadId"].as_str().expect("leadId").to_owned();
    let mut event = SqsEvent::default();
    event.records = vec![
        record("good", &format!("{{\"leadId\":\"{lead_id}\"}}")),
        record("not-json", "{\"leadId\":"),
        record("bad-id", "{\"leadId\":\"lead_nope\"}"),
    ];
    let response = stack.validate.handle_batch(event).await;
    let mut failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    failed.sort();
    assert_eq!(failed, ["bad-id", "not-json"]);
    wait_for_status(&stack, &lead_id, &["delivered"], Duration::from_secs(5)).await;

    let mut event = SqsEvent::default();
    event.records = vec![
        record("unknown-kind", "{\"kind\":\"explode\"}"),
        record(
            "ok-but-missing",
            &serde_json::to_string(&DispatchJob::Deliver {
                lead_id: "lead_01JD0000000000000000000000".parse().expect("id"),
                destination: "x".parse().expect("id"),
                attempt: 1,
            })
            .expect("json"),
        ),
    ];
    let response = stack.dispatch.handle_batch(event).await;
    let failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(
        failed,
        ["unknown-kind"],
        "a job for a lead that does not exist is dropped, not retried"
    );
}

#[tokio::test]
async fn a_poisoned_message_ends_in_the_dead_letter_queue_not_in_a_loop() {
    let stack = stack().await;
    stack
        .validate_queue
        .send("garbage", Duration::ZERO)
        .await
        .expect("send");
    eventually(
        "the poisoned message reaches the dead-letter queue",
        Duration::from_secs(10),
        || stack.dead_letters[0].bodies() == ["garbage"],
    )
    .await;
    // The pipeline still works.
    let answer = post_lead(&stack, "heloc", &heloc_lead("after-poison")).await;
    let lead_id = answer.body["leadId"].as_str().expect("leadId");
    wait_for_status(&stack, lead_id, &["delivered"], Duration::from_secs(5)).await;
}

#[tokio::test]
async fn buyer_verdicts_arrive_through_callback_and_bad_tokens_change_nothing() {
    let stack = stack_with(leadhub_local::Options {
        buyers: vec!["taker".into(), "decliner".into()],
        // Both buyers are offered the lead at once.
        extra_config: "[routing.heloc]\nstrategy = \"broadcast\"\nmax_buyers = 2\n".into(),
        ..options()
    })
    .await;
    stack
        .buyer("decliner")
        .expect("buyer")
        .fail_next(failure(400, 1));
    let answer = post_lead(&stack, "heloc", &heloc_lead("verdict")).await;
    let lead_id = answer.body["leadId"].as_str().expect("leadId").to_owned();
    wait_for_status(&stack, &lead_id, &["delivered"], Duration::from_secs(5)).await;
    let callback_url = |buyer: &str| {
        stack.buyer(buyer).expect("buyer").received_for(&lead_id)[0].payload["data"]["callbackUrl"]
            .as_str()
            .expect("callbackUrl")
            .to_owned()
    };
    let taker_url = callback_url("taker");
    assert!(taker_url.starts_with(&stack.url("/v1/callbacks/taker/")));

    // A forged or altered token: 401, nothing changes.
    let before = get_lead(&stack, &lead_id).await.body;
    for url in [
        format!("{}x", taker_url),
        taker_url.replace("/taker/", "/decliner/"),
        stack.url(&format!("/v1/callbacks/taker/{lead_id}.AAAA")),
    ] {
        let forged = send(client().post(&url).json(&json!({"verdict": "returned"}))).await;
        assert_eq!(forged.status, 401, "{url}");
        assert_eq!(forged.headers["content-type"], "application/problem+json");
    }
    assert_eq!(get_lead(&stack, &lead_id).await.body, before);

    // A buyer that declined the lead cannot return it.
    let declined = send(
        client()
            .post(callback_url("decliner"))
            .json(&json!({"verdict": "returned"})),
    )
    .await;
    assert_eq!(declined.status, 409);

    // A body that is not a verdict changes nothing: it is kept for the operator.
    let bad = send(client().post(&taker_url).json(&json!({"verdict": "maybe"}))).await;
    assert_eq!(bad.status, 202, "{}", bad.body);
    assert_eq!(bad.body["kept"], "for_operator");
    assert_eq!(bad.body["code"], "unknown_shape");
    assert_eq!(get_lead(&stack, &lead_id).await.body, before);

    let confirmed = send(
        client()
            .post(&taker_url)
            .json(&json!({"verdict": "confirmed", "reason": "funded"})),
    )
    .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    assert_eq!(confirmed.body["status"], "confirmed");
    let again = send(
        client()
            .post(&taker_url)
            .json(&json!({"verdict": "confirmed"})),
    )
    .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["recorded"], false);
    let returned = send(
        client()
            .post(&taker_url)
            .json(&json!({"verdict": "returned", "reason": "bad phone"})),
    )
    .await;
    assert_eq!(returned.status, 200);
    let view = get_lead(&stack, &lead_id).await.body;
    assert_eq!(view["status"], "returned");
    let verdicts: Vec<&str> = view["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|e| e["kind"] == "buyer_verdict")
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert_eq!(verdicts, ["funded", "bad phone"]);
}

#[tokio::test]
async fn a_verdict_before_the_answer_is_recorded_is_kept_and_applied_with_the_acceptance() {
    let stack = stack().await;
    let buyer = stack.buyer("sandbox-webhook").expect("buyer").clone();
    // The buyer answers its POST slowly; meanwhile it calls back.
    buyer.fail_next(Failure {
        delay_ms: 3000,
        ..failure(200, 1)
    });
    let answer = post_lead(&stack, "heloc", &heloc_lead("early-verdict")).await;
    let lead_id = answer.body["leadId"].as_str().expect("leadId").to_owned();
    let url = callback_url(&stack, "sandbox-webhook", &lead_id);
    let mut in_flight = false;
    for _ in 0..500 {
        let view = get_lead(&stack, &lead_id).await.body;
        if view["deliveries"][0]["status"] == "in_flight" {
            in_flight = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(in_flight, "the delivery is in flight");
    let early = send(
        client()
            .post(&url)
            .json(&json!({"verdict": "confirmed", "reason": "funded"})),
    )
    .await;
    assert_eq!(early.status, 202, "{}", early.body);
    assert_eq!(early.body["kept"], true);
    assert_eq!(early.body["status"], "routing");
    // Once the buyer's answer is recorded (the slow attempt may time out and be retried: the verdict stays
    // kept meanwhile), the kept verdict applies: settled and confirmed in one write.
    let view = wait_for_status(&stack, &lead_id, &["confirmed"], Duration::from_secs(15)).await;
    let kinds = timeline_kinds(&view);
    let kept = kinds
        .iter()
        .position(|k| k == "verdict_kept")
        .expect("kept");
    let accepted = kinds
        .iter()
        .position(|k| k == "delivery_accepted")
        .expect("accepted");
    assert!(kept < accepted, "{kinds:?}");
    assert_eq!(
        kinds[kinds.len() - 3..],
        ["delivery_accepted", "delivered", "buyer_verdict"],
        "{kinds:?}"
    );
    assert_eq!(last_event(&view)["reason"], "funded");
    // The same verdict again: recorded already.
    let again = send(client().post(&url).json(&json!({"verdict": "confirmed"}))).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["recorded"], false);
}

#[tokio::test]
async fn a_verdict_on_an_accepted_but_unsettled_lead_settles_it_and_applies() {
    let stack = stack().await;
    let answer = post_lead(&stack, "heloc", &heloc_lead("unsettled-verdict")).await;
    let lead_id = answer.body["leadId"].as_str().expect("leadId").to_owned();
    wait_for_status(&stack, &lead_id, &["delivered"], Duration::from_secs(5)).await;
    let url = callback_url(&stack, "sandbox-webhook", &lead_id);
    // The acceptance is recorded but the lead not settled (its worker died in between): the verdict settles
    // it and applies.
    unsettle(&stack, &lead_id).await;
    let late = send(client().post(&url).json(&json!({"verdict": "confirmed"}))).await;
    assert_eq!(late.status, 200, "{}", late.body);
    assert_eq!(late.body["status"], "confirmed");
    let view = get_lead(&stack, &lead_id).await.body;
    let kinds = timeline_kinds(&view);
    assert_eq!(kinds[kinds.len() - 2..], ["delivered", "buyer_verdict"]);
}

#[tokio::test]
async fn a_kept_verdict_whose_delivery_is_declined_is_recorded_as_not_applied() {
    let stack = stack().await;
    let buyer = stack.buyer("sandbox-webhook").expect("buyer").clone();
    // The buyer calls back while its POST is in flight, then declines the lead.
    buyer.fail_next(Failure {
        delay_ms: 1500,
        ..failure(400, 1)
    });
    let answer = post_lead(&stack, "heloc", &heloc_lead("early-then-declined")).await;
    let lead_id = answer.body["leadId"].as_str().expect("leadId").to_owned();
    let url = callback_url(&stack, "sandbox-webhook", &lead_id);
    let mut in_flight = false;
    for _ in 0..500 {
        let view = get_lead(&stack, &lead_id).await.body;
        if view["deliveries"][0]["status"] == "in_flight" {
            in_flight = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(in_flight, "the delivery is in flight");
    let early = send(client().post(&url).json(&json!({"verdict": "confirmed"}))).await;
    assert_eq!(early.status, 202, "{}", early.body);
    let view = wait_for_status(&stack, &lead_id, &["unsold"], Duration::from_secs(15)).await;
    let not_applied: Vec<&Value> = view["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|e| e["kind"] == "verdict_not_applied")
        .collect();
    assert_eq!(not_applied.len(), 1, "{view:#}");
    assert_eq!(not_applied[0]["code"], "delivery_not_taken");
    assert!(
        not_applied[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("the delivery ended rejected")),
        "{view:#}"
    );
    assert!(!timeline_kinds(&view).contains(&"buyer_verdict".to_owned()));
}

#[tokio::test]
async fn contacted_verdicts_are_bounded_per_lead_and_status_verdicts_still_apply() {
    let stack = stack().await;
    let answer = post_lead(&stack, "heloc", &heloc_lead("contacted-cap")).await;
    let lead_id = answer.body["leadId"].as_str().expect("leadId").to_owned();
    wait_for_status(&stack, &lead_id, &["delivered"], Duration::from_secs(5)).await;
    let url = callback_url(&stack, "sandbox-webhook", &lead_id);
    let contacted = || client().post(&url).json(&json!({"verdict": "contacted"}));
    for _ in 0..callback::MAX_CONTACTED {
        let answer = send(contacted()).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["recorded"], true);
    }
    let over = send(contacted()).await;
    assert_eq!(over.status, 200);
    assert_eq!(over.body["recorded"], false);
    let view = get_lead(&stack, &lead_id).await.body;
    let verdicts = timeline_kinds(&view)
        .iter()
        .filter(|kind| *kind == "buyer_verdict")
        .count();
    assert_eq!(verdicts, callback::MAX_CONTACTED);
    let returned = send(
        client()
            .post(&url)
            .json(&json!({"verdict": "returned", "reason": "no answer"})),
    )
    .await;
    assert_eq!(returned.status, 200, "{}", returned.body);
    assert_eq!(returned.body["status"], "returned");
}
