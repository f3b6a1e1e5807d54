//! The shared control endpoints, through one emulator (they are the same code for all).

use std::time::{Duration, Instant};

use leadhub_sandbox::sonar::{Sonar, SonarConfig, DEFAULT_PATH};
use leadhub_sandbox::Outcome;
use serde_json::json;

use crate::{answer, client, loopback};

#[tokio::test]
async fn control_endpoints_script_failures_list_and_reset() {
    let sonar = Sonar::new(SonarConfig::new("s"));
    let server = sonar.start(loopback()).await.expect("start");
    let response = client()
        .post(server.url("/_sandbox/fail"))
        .json(&json!({"status": 500, "times": 2, "delayMs": 150, "body": {"error": "down"}}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 204);
    let (_, pending) = answer(
        client()
            .get(server.url("/_sandbox/fail"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(pending["pending"][0]["times"], 2);
    let lead = json!({"purpose": "Purchase", "borrower": {"firstName": "A", "lastName": "B", "email": "a@b.co"}, "property": {"city": "C", "state": "TX"}});
    for _ in 0..2 {
        let started = Instant::now();
        let answered = answer(
            client()
                .post(server.url(DEFAULT_PATH))
                .header("authorization", "s")
                .json(&lead)
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert_eq!(answered, (500, json!({"error": "down"})));
    }
    let answered = answer(
        client()
            .post(server.url(DEFAULT_PATH))
            .header("authorization", "s")
            .json(&lead)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(answered.0, 200);
    let (_, received) = answer(
        client()
            .get(server.url("/_sandbox/received"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    let received = received["received"].as_array().expect("received").clone();
    assert_eq!(received.len(), 3, "control requests are not logged");
    assert_eq!(received[0]["outcome"], "scripted");
    assert_eq!(received[2]["status"], 200);
    assert_eq!(received[2]["body"]["borrower"]["email"], "a@b.co");
    assert_eq!(sonar.received()[2].outcome, Outcome::Handled);
    let response = client()
        .post(server.url("/_sandbox/reset"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 204);
    assert!(sonar.received().is_empty());
    assert!(sonar.leads().is_empty());
}
