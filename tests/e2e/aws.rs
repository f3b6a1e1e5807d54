//! The same pipeline on DynamoDB and SQS through the AWS SDK (moto on loopback, started by infra/test.sh).

use std::time::Duration;

use leadhub::delivery::DispatchJob;
use leadhub_local::Options;
use leadhub_sandbox::webhook::Failure;

use crate::support::*;

const MOTO: &str = "needs moto: run infra/test.sh (or set LEADHUB_TEST_AWS_ENDPOINT)";

#[tokio::test]
#[ignore = "needs moto: run infra/test.sh (or set LEADHUB_TEST_AWS_ENDPOINT)"]
async fn aws_leads_flow_through_dynamodb_and_sqs_to_the_buyer() {
    let _ = MOTO;
    let stack = stack_with(Options {
        backend: aws_backend("flow"),
        ..options()
    })
    .await;
    let buyer = stack.buyer("sandbox-webhook").expect("buyer").clone();
    buyer.fail_next(Failure {
        status: 503,
        times: 1,
        delay_ms: 0,
        retry_after: None,
        body: None,
    });
    let answer = post_lead(&stack, "heloc", &heloc_lead("aws")).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let lead_id = answer.body["leadId"].as_str().expect("leadId").to_owned();
    let view = wait_for_status(&stack, &lead_id, &["delivered"], Duration::from_secs(30)).await;
    assert_eq!(
        timeline_kinds(&view),
        [
            "received",
            // duplicates, the suppression list, passed
            "screened",
            "screened",
            "screened",
            "routing",
            "delivery_attempt",
            "delivery_retry_scheduled",
            "delivery_attempt",
            "delivery_accepted",
            "delivered"
        ]
    );

    // Redelivered jobs after the recorded success: no second POST.
    let job = serde_json::to_string(&DispatchJob::Deliver {
        lead_id: lead_id.parse().expect("id"),
        destination: "sandbox-webhook".parse().expect("id"),
        attempt: 2,
    })
    .expect("json");
    stack
        .dispatch_queue
        .send(&job, Duration::ZERO)
        .await
        .expect("send");
    stack
        .dispatch_queue
        .send(&job, Duration::ZERO)
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        buyer.received_for(&lead_id).len(),
        2,
        "one failed attempt and one success"
    );

    // The email is now taken, race-free, on DynamoDB too.
    let duplicate = post_lead(
        &stack,
        "heloc",
        &buyer.received_for(&lead_id)[1].payload["data"]["lead"],
    )
    .await;
    assert_eq!(duplicate.status, 202, "{}", duplicate.body);
    let dup_id = duplicate.body["leadId"].as_str().expect("leadId");
    wait_for_status(&stack, dup_id, &["rejected"], Duration::from_secs(30)).await;
}

#[tokio::test]
#[ignore = "needs moto: run infra/test.sh (or set LEADHUB_TEST_AWS_ENDPOINT)"]
async fn aws_idempotency_keys_use_one_transaction() {
    let stack = stack_with(Options {
        backend: aws_backend("idem"),
        ..options()
    })
    .await;
    let lead = heloc_lead("aws-idem");
    let post = || {
        client()
            .post(stack.url("/v1/leads/heloc"))
            .basic_auth(KEY, Some(SECRET))
            .header("idempotency-key", "aws-key-1")
            .json(&lead)
    };
    let first = send(post()).await;
    assert_eq!(first.status, 202, "{}", first.body);
    // Straight after: in flight (409) while the lead is still `received`, else the first answer.
    let racing = send(post()).await;
    assert!(
        (racing.status == 409 && racing.headers.contains_key("retry-after"))
            || (racing.status == 202 && racing.body == first.body),
        "{} {}",
        racing.status,
        racing.body
    );
    let lead_id = first.body["leadId"].as_str().expect("leadId");
    wait_for_status(&stack, lead_id, &["delivered"], Duration::from_secs(30)).await;
    let replay = send(post()).await;
    assert_eq!(replay.status, 202, "{}", replay.body);
    assert_eq!(replay.body, first.body);
    assert_eq!(
        stack
            .buyer("sandbox-webhook")
            .expect("buyer")
            .received()
            .len(),
        1
    );
}

#[tokio::test]
#[ignore = "needs moto: run infra/test.sh (or set LEADHUB_TEST_AWS_ENDPOINT)"]
async fn aws_a_stored_configuration_takes_effect_within_the_refresh_interval_and_a_bad_one_never() {
    let stack = stack_with(Options {
        backend: aws_backend("refresh"),
        stored_config: true,
        config_refresh_secs: 1,
        ..options()
    })
    .await;
    let first = post_lead(&stack, "heloc", &heloc_lead("refresh-before")).await;
    let first = first.body["leadId"].as_str().expect("leadId").to_owned();
    wait_for_status(&stack, &first, &["delivered"], Duration::from_secs(15)).await;

    // The operator pauses the only heloc buyer.
    let document = stack
        .store
        .get_config_document()
        .await
        .expect("store")
        .expect("the stack stored its configuration");
    let paused = document.replace(
        "id = \"sandbox-webhook\"\n",
        "id = \"sandbox-webhook\"\nenabled = false\n",
    );
    assert_ne!(paused, document);
    stack
        .store
        .put_config_document(&paused)
        .await
        .expect("store");
    let stored_at = std::time::Instant::now();
    // Within the interval (1 s, plus the time a lead takes), leads stop going to the paused buyer.
    let mut unsold = None;
    let mut delivered = 1;
    while stored_at.elapsed() < Duration::from_secs(5) {
        let answer = post_lead(&stack, "heloc", &heloc_lead("refresh-after")).await;
        let id = answer.body["leadId"].as_str().expect("leadId").to_owned();
        let view = wait_for_status(
            &stack,
            &id,
            &["delivered", "unsold"],
            Duration::from_secs(15),
        )
        .await;
        if view["status"] == "unsold" {
            unsold = Some(stored_at.elapsed());
            break;
        }
        delivered += 1;
    }
    let took = unsold.expect("the new configuration took effect");
    assert!(took < Duration::from_secs(5), "took {took:?}");

    // A bad document (it would also resume the buyer) is never applied: leads stay unsold.
    let bad = paused.replace("enabled = false\n", "enabled = true\nweight = 0\n");
    assert_ne!(bad, paused);
    assert!(
        leadhub::settings::Config::from_toml(&bad, &std::collections::BTreeMap::new()).is_err()
    );
    stack.store.put_config_document(&bad).await.expect("store");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for tag in ["bad-1", "bad-2"] {
        let answer = post_lead(&stack, "heloc", &heloc_lead(tag)).await;
        let id = answer.body["leadId"].as_str().expect("leadId").to_owned();
        let view = wait_for_status(
            &stack,
            &id,
            &["delivered", "unsold"],
            Duration::from_secs(15),
        )
        .await;
        assert_eq!(
            view["status"], "unsold",
            "the bad document was applied: {view}"
        );
    }
    let logged = String::from_utf8_lossy(&logs().lock().expect("logs")).into_owned();
    assert!(
        logged.contains("weight") && logged.contains("was not applied"),
        "the refusal is logged with its key"
    );
    let buyer = stack.buyer("sandbox-webhook").expect("buyer");
    assert_eq!(
        buyer.received().len(),
        delivered,
        "no lead reached the paused buyer"
    );
}
