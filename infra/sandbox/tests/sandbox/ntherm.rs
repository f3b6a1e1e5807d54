use std::time::{Duration, Instant};

use leadhub_sandbox::ntherm::{Ntherm, NthermConfig, PATH};
use leadhub_sandbox::Failure;
use serde_json::{json, Value};

use crate::{answer, client, eventually, loopback, Receiver};

/// The seed's sample request, with its call_back_url pointed at `callback`.
fn sample(callback: &str) -> Value {
    json!({
        "phone_number": "999999999",
        "customer_name": "John Doe",
        "state": "CA",
        "city": "Los Angeles",
        "zip": "90001",
        "certificate_url": "https://example.com/certificate.pdf",
        "customer_address": "123 Main St",
        "dm_name": "Jane Doe",
        "utility": "Utility Provider",
        "call_back_url": callback,
        "mailing_street": "456 Secondary St",
        "mailing_city": "San Francisco",
        "mailing_zip": "94101",
        "mailing_state": "CA",
        "vendor_campaign_name": "OHIO_GENERAL_RESIDENTIAL",
        "email": "john.doe@example.com",
        "extra_data": [{"questions": ["Do you consent to be contacted?", "Do you agree to the terms and conditions?"]}, {"answers": ["Yes", "Yes"]}]
    })
}

async fn post(url: &str, body: &Value) -> (u16, Value) {
    answer(
        client()
            .post(url)
            .basic_auth("vendor", Some("pa55"))
            .json(body)
            .send()
            .await
            .expect("send"),
    )
    .await
}

#[tokio::test]
async fn ntherm_accepts_the_seed_sample_and_posts_the_verdict_to_the_callback_url() {
    let (receiver, callback_server) = Receiver::start(200).await;
    let ntherm = Ntherm::new(NthermConfig::new("vendor", "pa55"));
    let server = ntherm.start(loopback()).await.expect("start");
    let started = Instant::now();
    let answered = post(
        &server.url(PATH),
        &sample(&callback_server.url("/cb/token-1")),
    )
    .await;
    assert_eq!(
        answered,
        (
            200,
            json!({"success_bit": true, "message": "Lead submitted successfully."})
        )
    );
    let bodies = eventually(|| {
        let bodies = receiver.bodies();
        (!bodies.is_empty()).then_some(bodies)
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "the default delay is 200 ms"
    );
    assert_eq!(
        bodies,
        [(
            "/cb/token-1".to_owned(),
            json!({"success_bit": true, "message": "Lead accepted."})
        )]
    );
    let callbacks = eventually(|| {
        let callbacks = ntherm.callbacks();
        (!callbacks.is_empty()).then_some(callbacks)
    })
    .await;
    assert_eq!(callbacks[0].status, Some(200));
    assert_eq!(callbacks[0].phone_number, "999999999");
    assert_eq!(ntherm.leads()[0].body["customer_address"], "123 Main St");
}

#[tokio::test]
async fn ntherm_rejects_after_posting_when_told_and_records_the_callback_status() {
    let (receiver, callback_server) = Receiver::start(500).await;
    let mut config = NthermConfig::new("vendor", "pa55");
    config.callback_delay = Duration::from_millis(10);
    config.reject_after_post.insert("(727) 555-0100".into());
    let ntherm = Ntherm::new(config);
    let server = ntherm.start(loopback()).await.expect("start");
    let mut lead = sample(&callback_server.url("/cb/a"));
    lead["phone_number"] = json!("+1 727 555 0100");
    assert_eq!(post(&server.url(PATH), &lead).await.0, 200);
    let callbacks = eventually(|| {
        let callbacks = ntherm.callbacks();
        (!callbacks.is_empty()).then_some(callbacks)
    })
    .await;
    assert_eq!(callbacks[0].status, Some(500));
    assert_eq!(
        receiver.bodies()[0].1,
        json!({"success_bit": false, "message": [{"error": "Lead rejected after review."}]})
    );
    assert!(ntherm.leads()[0].rejected_after_post);

    // The switch: every lead is rejected after posting.
    ntherm.reject_all_after_post(true);
    assert_eq!(
        post(&server.url(PATH), &sample(&callback_server.url("/cb/b")))
            .await
            .0,
        200
    );
    eventually(|| (ntherm.callbacks().len() == 2).then_some(())).await;
    assert_eq!(ntherm.callbacks()[1].body["success_bit"], false);
}

#[tokio::test]
async fn ntherm_refuses_without_basic_auth() {
    let ntherm = Ntherm::new(NthermConfig::new("vendor", "pa55"));
    let server = ntherm.start(loopback()).await.expect("start");
    let unauthorized = json!({"success_bit": false, "message": [{"error": "Unauthorized"}]});
    let no_auth = answer(
        client()
            .post(server.url(PATH))
            .json(&sample("https://example.com/cb"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(no_auth, (401, unauthorized.clone()));
    let wrong = answer(
        client()
            .post(server.url(PATH))
            .basic_auth("vendor", Some("wrong"))
            .json(&sample("https://example.com/cb"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(wrong, (401, unauthorized));
    assert!(ntherm.leads().is_empty());
}

#[tokio::test]
async fn ntherm_answers_the_seeds_400_bodies() {
    let ntherm = Ntherm::new(NthermConfig::new("vendor", "pa55"));
    let server = ntherm.start(loopback()).await.expect("start");
    let mut lead = sample("https://example.com/callback");
    lead["phone_number"] = json!("7271234567x");
    assert_eq!(
        post(&server.url(PATH), &lead).await,
        (
            400,
            json!({"success_bit": false, "message": [{"error": "Invalid Characters: 7271234567x"}]})
        )
    );
    let mut lead = sample("https://example.com/callback");
    lead["state"] = json!("C");
    lead["certificate_url"] = json!("://example.com/certificate.pdf");
    lead["mailing_state"] = json!("CA3");
    assert_eq!(
        post(&server.url(PATH), &lead).await,
        (
            400,
            json!({"success_bit": false, "message": [
                {"error": "Invalid State Code (2 characters): C"},
                {"error": "Certificate URL exceeds 500 characters, or not a valid URL ://example.com/certificate.pdf"},
                {"error": "Invalid Mailing State Code: CA3"}
            ]})
        )
    );
    let mut lead = sample("https://example.com/callback");
    lead["certificate_url"] = json!(format!("https://example.com/{}", "a".repeat(490)));
    let (status, body) = post(&server.url(PATH), &lead).await;
    assert_eq!(status, 400);
    assert!(body["message"][0]["error"]
        .as_str()
        .expect("error")
        .starts_with("Certificate URL exceeds 500 characters"));
    assert!(ntherm.leads().is_empty());
}

#[tokio::test]
async fn ntherm_names_each_missing_field() {
    let ntherm = Ntherm::new(NthermConfig::new("vendor", "pa55"));
    let server = ntherm.start(loopback()).await.expect("start");
    let (status, body) = post(&server.url(PATH), &json!({"phone_number": "999999999"})).await;
    assert_eq!(status, 400);
    let errors: Vec<&str> = body["message"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["error"].as_str().expect("error"))
        .collect();
    assert_eq!(
        errors,
        [
            "customer_name is required",
            "state is required",
            "city is required",
            "zip is required",
            "certificate_url is required",
            "street is required",
            "dm_name is required",
            "utility is required",
            "call_back_url is required",
            "mailing_street is required",
            "mailing_city is required",
            "mailing_zip is required",
            "mailing_state is required",
            "vendor_campaign_name is required",
            "email is required",
        ]
    );
    // extra_data stands in for certificate_url, `street` for customer_address.
    let mut lead = sample("https://example.com/callback");
    let object = lead.as_object_mut().expect("object");
    object.remove("certificate_url");
    let address = object.remove("customer_address").expect("address");
    object.insert("street".into(), address);
    assert_eq!(post(&server.url(PATH), &lead).await.0, 200);
}

#[tokio::test]
async fn ntherm_answers_422_for_a_phone_that_cannot_be_sent() {
    let mut config = NthermConfig::new("vendor", "pa55");
    config.cannot_send.insert("999999999".into());
    let ntherm = Ntherm::new(config);
    let server = ntherm.start(loopback()).await.expect("start");
    assert_eq!(
        post(&server.url(PATH), &sample("https://example.com/callback")).await,
        (
            422,
            json!({"success_bit": false, "message": [{"error": "Phone number can not be sent to postLead at this time."}]})
        )
    );
    // Also through the control endpoint.
    let response = client()
        .post(server.url("/_sandbox/cannot-send"))
        .json(&json!({"phone": "727-555-0101"}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 204);
    let mut lead = sample("https://example.com/callback");
    lead["phone_number"] = json!("7275550101");
    assert_eq!(post(&server.url(PATH), &lead).await.0, 422);
    assert!(ntherm.leads().is_empty());
}

#[tokio::test]
async fn ntherm_scripted_failures_are_slow_or_fail() {
    let ntherm = Ntherm::new(NthermConfig::new("vendor", "pa55"));
    let server = ntherm.start(loopback()).await.expect("start");
    ntherm.fail_next(Failure {
        delay_ms: 300,
        body: Some(json!({"success_bit": false, "message": [{"error": "busy"}]})),
        ..Failure::status(502, 1)
    });
    let started = Instant::now();
    let answered = post(&server.url(PATH), &sample("https://example.com/callback")).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        answered,
        (
            502,
            json!({"success_bit": false, "message": [{"error": "busy"}]})
        )
    );
    assert!(ntherm.leads().is_empty());
    assert_eq!(ntherm.received()[0].status, 502);
}

/// One request a [`RawReceiver`] took: its content type and body.
type RawRequest = (Option<String>, Vec<u8>);

/// A receiver that takes any body: (content type, body) of each request, answered 202 `{"kept": true}`.
#[derive(Clone, Default)]
struct RawReceiver {
    requests: std::sync::Arc<std::sync::Mutex<Vec<RawRequest>>>,
}

impl RawReceiver {
    async fn start() -> (RawReceiver, leadhub_sandbox::Running) {
        use axum::extract::State;
        use axum::http::{HeaderMap, StatusCode};
        let receiver = RawReceiver::default();
        let router = axum::Router::new()
            .fallback(axum::routing::post(
                |State(r): State<RawReceiver>, headers: HeaderMap, body: bytes::Bytes| async move {
                    let content_type = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    r.requests
                        .lock()
                        .expect("lock")
                        .push((content_type, body.to_vec()));
                    (StatusCode::ACCEPTED, axum::Json(json!({"kept": true})))
                },
            ))
            .with_state(receiver.clone());
        let running = leadhub_sandbox::Running::serve(loopback(), router)
            .await
            .expect("start receiver");
        (receiver, running)
    }

    fn requests(&self) -> Vec<RawRequest> {
        self.requests.lock().expect("lock").clone()
    }
}

#[tokio::test]
async fn ntherm_sends_its_final_result_in_each_style_it_really_arrives_in() {
    use leadhub_sandbox::ntherm::VerdictStyle;
    let (receiver, callback_server) = RawReceiver::start().await;
    let mut config = NthermConfig::new("vendor", "pa55");
    config.callback_delay = Duration::from_millis(10);
    let ntherm = Ntherm::new(config);
    let server = ntherm.start(loopback()).await.expect("start");
    let url = callback_server.url("/cb");
    let body = |n: usize| -> Value {
        serde_json::from_slice(&receiver.requests()[n].1).expect("a JSON body")
    };

    // success_bit as text, and no content type.
    ntherm.set_verdict_style(VerdictStyle {
        success_bit_as_text: true,
        content_type: None,
        ..VerdictStyle::default()
    });
    assert_eq!(post(&server.url(PATH), &sample(&url)).await.0, 200);
    eventually(|| (receiver.requests().len() == 1).then_some(())).await;
    assert_eq!(receiver.requests()[0].0, None, "no Content-Type");
    assert_eq!(
        body(0),
        json!({"success_bit": "true", "message": "Lead accepted."})
    );
    ntherm.reject_all_after_post(true);
    assert_eq!(post(&server.url(PATH), &sample(&url)).await.0, 200);
    eventually(|| (receiver.requests().len() == 2).then_some(())).await;
    assert_eq!(body(1)["success_bit"], "false");
    ntherm.reject_all_after_post(false);

    // Before the answer: the callback is in (and answered) before postLead answers; twice; as text/plain.
    ntherm.set_verdict_style(VerdictStyle {
        content_type: Some("text/plain".into()),
        before_answer: true,
        times: 2,
        ..VerdictStyle::default()
    });
    assert_eq!(post(&server.url(PATH), &sample(&url)).await.0, 200);
    assert_eq!(receiver.requests().len(), 4, "both sent before the 200");
    assert_eq!(receiver.requests()[2].0.as_deref(), Some("text/plain"));
    assert_eq!(
        body(3),
        json!({"success_bit": true, "message": "Lead accepted."})
    );
    let callbacks = ntherm.callbacks();
    assert_eq!(callbacks.len(), 4);
    assert_eq!(callbacks[3].status, Some(202));
    assert_eq!(callbacks[3].answer, Some(json!({"kept": true})));

    // A body of another shape, through the control endpoint.
    let response = client()
        .post(server.url("/_sandbox/verdict-style"))
        .json(&json!({"raw_body": "result=ok"}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 204);
    assert_eq!(post(&server.url(PATH), &sample(&url)).await.0, 200);
    eventually(|| (receiver.requests().len() == 5).then_some(())).await;
    assert_eq!(
        receiver.requests()[4],
        (Some("application/json".into()), b"result=ok".to_vec())
    );
    assert_eq!(ntherm.callbacks()[4].body, json!("result=ok"));
}

#[tokio::test]
async fn ntherm_keeps_its_newest_leads_callbacks_and_requests_up_to_its_log_capacity() {
    let (receiver, callback_server) = Receiver::start(200).await;
    let ntherm = Ntherm::new(NthermConfig::new("vendor", "pa55")).with_log_capacity(2);
    ntherm.set_callback_delay(Duration::ZERO);
    let server = ntherm.start(loopback()).await.expect("start");
    for n in 1..=3 {
        let mut body = sample(&callback_server.url(&format!("/cb/{n}")));
        body["phone_number"] = json!(format!("72755501{n:02}"));
        assert_eq!(post(&server.url(PATH), &body).await.0, 200);
        // One callback at a time, so that the ring's order is the posts' order.
        eventually(|| (receiver.bodies().len() == n).then_some(())).await;
        eventually(|| (ntherm.callbacks().len() == n.min(2)).then_some(())).await;
    }
    let phones: Vec<String> = ntherm.leads().into_iter().map(|l| l.phone_number).collect();
    assert_eq!(phones, ["7275550102", "7275550103"]);
    let callbacks: Vec<String> = ntherm.callbacks().into_iter().map(|c| c.url).collect();
    assert_eq!(
        callbacks,
        [callback_server.url("/cb/2"), callback_server.url("/cb/3")]
    );
    assert_eq!(ntherm.received().len(), 2);
}
