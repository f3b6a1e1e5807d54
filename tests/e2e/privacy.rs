//! No log line carries PII or credentials, whatever path a lead takes.

use std::time::Duration;

use leadhub_sandbox::webhook::Failure;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn no_log_line_carries_pii_or_secrets() {
    let stack = stack().await;
    let logs = logs();
    let mut lead = heloc_lead("privacy");
    lead["contactInfo"] = json!({
        "firstName": "Zebulon",
        "lastName": "Quixotewright",
        "email": "zebulon.quixotewright@example.com",
        "phone": "(727) 555-0199"
    });
    lead["address"]["street"] = json!("77 Xanadu Lane");
    lead["residentialAddress"]["street"] = json!("77 Xanadu Lane");
    stack
        .buyer("sandbox-webhook")
        .expect("buyer")
        .fail_next(Failure {
            status: 503,
            times: 1,
            delay_ms: 0,
            retry_after: None,
            body: Some(
                json!({"message": "temporarily down for zebulon.quixotewright@example.com"}),
            ),
        });
    let answer = post_lead(&stack, "heloc", &lead).await;
    let lead_id = answer.body["leadId"].as_str().expect("leadId").to_owned();
    wait_for_status(&stack, &lead_id, &["delivered"], Duration::from_secs(10)).await;
    // The duplicate path, the invalid path and a failed login, too.
    let again = post_lead(&stack, "heloc", &lead).await;
    wait_for_status(
        &stack,
        again.body["leadId"].as_str().expect("leadId"),
        &["rejected"],
        Duration::from_secs(5),
    )
    .await;
    let mut invalid = lead.clone();
    invalid["contactInfo"]["email"] = json!("zebulon.quixotewright@@example");
    assert_eq!(post_lead(&stack, "heloc", &invalid).await.status, 400);
    let _ = send(
        client()
            .post(stack.url("/v1/leads/heloc"))
            .basic_auth(KEY, Some("wrong-secret-zz9"))
            .json(&lead),
    )
    .await;

    let text = String::from_utf8(logs.lock().expect("logs").clone()).expect("utf-8");
    assert!(
        text.contains(&lead_id),
        "the capture works and lines carry lead ids"
    );
    for secret in [
        "Zebulon",
        "Quixotewright",
        "quixotewright",
        "555-0199",
        "5550199",
        "Xanadu",
        SECRET,
        "wrong-secret-zz9",
        "whsec_",
    ] {
        if let Some(line) = find_token(&text, secret) {
            panic!("a log line carries {secret}: {line}");
        }
    }
}

#[tokio::test]
async fn no_vertical_logs_pii_on_any_path() {
    use leadhub::verticals::Vertical;
    let stack = stack().await;
    let logs = logs();
    let mut ids = Vec::new();
    for vertical in Vertical::ALL {
        let example = vertical.example();
        let answer = post_lead(&stack, vertical.as_str(), &example).await;
        assert_eq!(answer.status, 202, "{vertical}: {}", answer.body);
        let lead_id = answer.body["leadId"].as_str().expect("leadId").to_owned();
        wait_for_status(
            &stack,
            &lead_id,
            &["delivered", "rejected"],
            Duration::from_secs(5),
        )
        .await;
        ids.push(lead_id);
        // An invalid variant of the same lead: every string value replaced by a bad one.
        let broken = serde_json::to_string(&example)
            .expect("json")
            .replace("@example.", "@@example.")
            .replace("555", "55x");
        let answer = send(
            client()
                .post(stack.url(&format!("/v1/leads/{}", vertical.as_str())))
                .basic_auth(KEY, Some(SECRET))
                .header("content-type", "application/json")
                .body(broken),
        )
        .await;
        assert_eq!(answer.status, 400, "{vertical}");
        let body = answer.body.to_string();
        assert!(
            !body.contains("example.com") && !body.contains("55x"),
            "{vertical}: an error body echoes PII: {body}"
        );
    }
    let text = String::from_utf8(logs.lock().expect("logs").clone()).expect("utf-8");
    for id in &ids {
        assert!(text.contains(id.as_str()), "the capture works");
    }
    for pii in [
        "jane.doe@",
        "john.doe@",
        "Jane",
        "John",
        "Doe",
        "555-0134",
        "5550134",
        "123-45-6789",
        "123456789",
        "Main St",
        "Oak Ave",
        "Bayshore",
    ] {
        if let Some(line) = find_token(&text, pii) {
            panic!("a log line carries {pii}: {line}");
        }
    }
}
