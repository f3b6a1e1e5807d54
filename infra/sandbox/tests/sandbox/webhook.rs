use leadhub::webhooks::{WebhookSecret, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use leadhub_sandbox::webhook::{Failure, WebhookBuyer};
use serde_json::json;

use crate::{answer, client, loopback};

async fn deliver(
    url: &str,
    secret: &WebhookSecret,
    id: &str,
    lead_id: &str,
) -> (u16, serde_json::Value) {
    let body = serde_json::to_vec(&json!({"type": "lead.delivered", "data": {"leadId": lead_id}}))
        .expect("json");
    let now = chrono::Utc::now().timestamp();
    let signature = secret.sign(id, now, &body);
    answer(
        client()
            .post(url)
            .header(HEADER_ID, id)
            .header(HEADER_TIMESTAMP, now.to_string())
            .header(HEADER_SIGNATURE, signature)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("send"),
    )
    .await
}

#[tokio::test]
async fn webhook_buyer_takes_signed_deliveries_and_scripted_failures() {
    let secret = WebhookSecret::from_bytes(b"0123456789abcdef0123456789abcdef");
    let buyer = WebhookBuyer::new(
        leadhub_sandbox::webhook::SigningKey::from_whsec(&secret.to_whsec()).expect("whsec"),
    );
    let server = buyer.start(loopback()).await.expect("start");
    let url = server.url("/hook");
    buyer.fail_next(Failure {
        status: 503,
        times: 1,
        delay_ms: 0,
        retry_after: Some("1".into()),
        body: None,
    });
    assert_eq!(deliver(&url, &secret, "msg_1", "L1").await.0, 503);
    assert_eq!(
        deliver(&url, &secret, "msg_1", "L1").await,
        (200, json!({"id": "wh-1"}))
    );
    let wrong = WebhookSecret::from_bytes(b"another key, another signature!!");
    assert_eq!(
        deliver(&url, &wrong, "msg_2", "L2").await,
        (401, json!({"message": "invalid signature"}))
    );
    assert_eq!(buyer.rejected_signatures(), 1);
    let received = buyer.received_for("L1");
    assert_eq!(received.len(), 2);
    assert_eq!((received[0].status, received[1].status), (503, 200));
    assert!(received.iter().all(|r| r.webhook_id == "msg_1"));
    assert!(buyer.received_for("L2").is_empty());
    let (_, summary) = answer(
        client()
            .get(server.url("/_sandbox/received"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(
        summary,
        json!({"received": [{"webhookId": "msg_1", "leadId": "L1", "status": 503}, {"webhookId": "msg_1", "leadId": "L1", "status": 200}]})
    );
}

#[tokio::test]
async fn webhook_buyer_keeps_its_newest_deliveries_up_to_its_log_capacity() {
    let secret = WebhookSecret::from_bytes(b"0123456789abcdef0123456789abcdef");
    let buyer = WebhookBuyer::new(
        leadhub_sandbox::webhook::SigningKey::from_whsec(&secret.to_whsec()).expect("whsec"),
    )
    .with_log_capacity(2);
    let server = buyer.start(loopback()).await.expect("start");
    let url = server.url("/hook");
    for n in 1..=3 {
        assert_eq!(
            deliver(&url, &secret, &format!("msg_{n}"), &format!("L{n}")).await,
            (200, json!({"id": format!("wh-{n}")}))
        );
    }
    let ids: Vec<String> = buyer.received().into_iter().map(|r| r.webhook_id).collect();
    assert_eq!(ids, ["msg_2", "msg_3"]);
    assert_eq!(buyer.exchanges().len(), 2);
    assert_eq!(buyer.taken(), 3);
    // msg_1 is no longer remembered: taken again, with a new answer; msg_3 still gets its first one.
    assert_eq!(
        deliver(&url, &secret, "msg_3", "L3").await,
        (200, json!({"id": "wh-3"}))
    );
    assert_eq!(
        deliver(&url, &secret, "msg_1", "L1").await,
        (200, json!({"id": "wh-4"}))
    );
    assert_eq!(buyer.taken(), 4);
}
