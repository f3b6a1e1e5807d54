use leadhub_sandbox::sonar::{Sonar, SonarConfig, DEFAULT_PATH};
use leadhub_sandbox::{Failure, Outcome};
use serde_json::{json, Value};

use crate::{answer, client, loopback};

fn lead() -> Value {
    json!({
        "purpose": "Purchase",
        "borrower": {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com"},
        "property": {"city": "Austin", "state": "TX"},
        "loanAmount": 250000
    })
}

#[tokio::test]
async fn sonar_creates_a_lead_with_the_client_secret_as_the_authorization_header() {
    let sonar = Sonar::new(SonarConfig::new("s3cret"));
    let server = sonar.start(loopback()).await.expect("start");
    let (status, body) = answer(
        client()
            .post(server.url(DEFAULT_PATH))
            .header("authorization", "s3cret")
            .json(&lead())
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(
        (status, body),
        (200, json!({"success": true, "id": "sonar-1"}))
    );
    let leads = sonar.leads();
    assert_eq!(leads.len(), 1);
    assert_eq!(leads[0].id, "sonar-1");
    assert_eq!(leads[0].body["borrower"]["email"], "ada@example.com");
    assert_eq!(sonar.received()[0].header("Authorization"), Some("s3cret"));
}

#[tokio::test]
async fn sonar_refuses_other_secrets_paths_and_methods() {
    let sonar = Sonar::new(SonarConfig::new("s3cret"));
    let server = sonar.start(loopback()).await.expect("start");
    for authorization in [
        Some("Bearer s3cret"),
        Some("S3CRET"),
        Some("Basic s3cret"),
        Some("other"),
        None,
    ] {
        let mut request = client().post(server.url(DEFAULT_PATH)).json(&lead());
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let (status, body) = answer(request.send().await.expect("send")).await;
        assert_eq!(
            (status, body),
            (401, json!({"message": "Unauthorized"})),
            "{authorization:?}"
        );
    }
    let (status, _) = answer(
        client()
            .post(server.url("/api/lead"))
            .header("authorization", "s3cret")
            .json(&lead())
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = answer(
        client()
            .get(server.url(DEFAULT_PATH))
            .header("authorization", "s3cret")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 404);
    assert!(sonar.leads().is_empty());
    assert!(sonar
        .received()
        .iter()
        .all(|e| e.outcome == Outcome::Refused));
}

#[tokio::test]
async fn sonar_answers_200_with_success_false_naming_every_missing_field() {
    let sonar = Sonar::new(SonarConfig::new("s3cret"));
    let server = sonar.start(loopback()).await.expect("start");
    let post = |body: Value| {
        client()
            .post(server.url(DEFAULT_PATH))
            .header("authorization", "s3cret")
            .json(&body)
            .send()
    };
    let mut bad = lead();
    bad["purpose"] = json!("Refinance");
    bad["borrower"]["email"] = json!("  ");
    bad["property"]
        .as_object_mut()
        .expect("object")
        .remove("state");
    let (status, body) = answer(post(bad).await.expect("send")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"success": false, "message": "purpose must be one of Purchase, RefinanceCashOut, RefinanceRateAndTerm, PreApproval; borrower.email is required; property.state is required"})
    );
    let (status, body) = answer(post(json!({})).await.expect("send")).await;
    assert_eq!(status, 200);
    assert_eq!(body["success"], false);
    for field in [
        "purpose",
        "borrower.firstName",
        "borrower.lastName",
        "borrower.email",
        "property.city",
        "property.state",
    ] {
        assert!(
            body["message"].as_str().expect("message").contains(field),
            "{field}"
        );
    }
    for purpose in [
        "Purchase",
        "RefinanceCashOut",
        "RefinanceRateAndTerm",
        "PreApproval",
    ] {
        let mut good = lead();
        good["purpose"] = json!(purpose);
        let (status, body) = answer(post(good).await.expect("send")).await;
        assert_eq!(
            (status, body["success"].clone()),
            (200, json!(true)),
            "{purpose}"
        );
    }
    assert_eq!(sonar.leads().len(), 4);
}

#[tokio::test]
async fn sonar_scripted_failures_come_after_the_credentials() {
    let sonar = Sonar::new(SonarConfig::new("s3cret"));
    let server = sonar.start(loopback()).await.expect("start");
    sonar.fail_next(Failure {
        retry_after: Some("3".into()),
        ..Failure::status(503, 1)
    });
    let (status, _) = answer(
        client()
            .post(server.url(DEFAULT_PATH))
            .json(&lead())
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 401, "a refused request does not use the script");
    let response = client()
        .post(server.url(DEFAULT_PATH))
        .header("authorization", "s3cret")
        .json(&lead())
        .send()
        .await
        .expect("send");
    assert_eq!(response.headers()["retry-after"], "3");
    assert_eq!(
        answer(response).await,
        (503, json!({"message": "sandbox: scripted failure"}))
    );
    assert!(sonar.leads().is_empty());
    let (status, _) = answer(
        client()
            .post(server.url(DEFAULT_PATH))
            .header("authorization", "s3cret")
            .json(&lead())
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200);
    let outcomes: Vec<Outcome> = sonar.received().iter().map(|e| e.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::Refused, Outcome::Scripted, Outcome::Handled]
    );
}

#[tokio::test]
async fn sonar_takes_the_hubs_normalised_mortgage_lead() {
    // The Sonar connector posts the normalised mortgage lead's fields plus `source`.
    let parsed = leadhub::verticals::Vertical::Mortgage
        .parse(
            &serde_json::to_vec(&leadhub::verticals::Vertical::Mortgage.example()).expect("json"),
        )
        .expect("the example is valid");
    let mut lead = parsed.lead.value();
    lead["source"] = json!({"leadId": "lead_01HZX", "vertical": "mortgage"});
    let sonar = Sonar::new(SonarConfig::new("s3cret"));
    let server = sonar.start(loopback()).await.expect("start");
    let (status, body) = answer(
        client()
            .post(server.url(DEFAULT_PATH))
            .header("authorization", "s3cret")
            .json(&lead)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(
        (status, body["success"].clone()),
        (200, json!(true)),
        "{body}"
    );
}

#[tokio::test]
async fn sonar_can_answer_a_200_that_is_neither_success_nor_failure() {
    let sonar = Sonar::new(SonarConfig::new("s3cret"));
    let server = sonar.start(loopback()).await.expect("start");
    let post = |body: Value| {
        client()
            .post(server.url(DEFAULT_PATH))
            .header("authorization", "s3cret")
            .json(&body)
            .send()
    };
    let control = |body: Value| {
        client()
            .post(server.url("/_sandbox/unrecognised"))
            .json(&body)
            .send()
    };
    let neither = json!({"status": "received", "message": "Lead received; queued for review"});

    // One borrower, by email (any case): answered with the unrecognised 200, and not created.
    assert_eq!(
        control(json!({"email": "ADA@example.com"}))
            .await
            .expect("send")
            .status(),
        204
    );
    let (status, body) = answer(post(lead()).await.expect("send")).await;
    assert_eq!((status, body), (200, neither.clone()));
    assert!(sonar.leads().is_empty());
    // Another borrower is created as usual; an invalid lead still fails.
    let mut other = lead();
    other["borrower"]["email"] = json!("grace@example.com");
    let (status, body) = answer(post(other.clone()).await.expect("send")).await;
    assert_eq!((status, body["success"].clone()), (200, json!(true)));
    let mut invalid = lead();
    invalid["purpose"] = json!("Refinance");
    let (_, body) = answer(post(invalid).await.expect("send")).await;
    assert_eq!(body["success"], false);

    // Every lead, then no longer.
    sonar.answer_unrecognised_for_all(true);
    let (_, body) = answer(post(other.clone()).await.expect("send")).await;
    assert_eq!(body, neither);
    assert_eq!(
        control(json!({"all": false})).await.expect("send").status(),
        204
    );
    let (_, body) = answer(post(other).await.expect("send")).await;
    assert_eq!(body["success"], true);
    assert_eq!(sonar.leads().len(), 2);

    // Reset forgets the borrowers; a control body of another shape is refused.
    let reset = client()
        .post(server.url("/_sandbox/reset"))
        .send()
        .await
        .expect("send");
    assert_eq!(reset.status(), 204);
    let (_, body) = answer(post(lead()).await.expect("send")).await;
    assert_eq!(body["success"], true);
    for bad in [json!({}), json!({"emails": ["x"]}), json!("x")] {
        assert_eq!(control(bad).await.expect("send").status(), 400);
    }
}

#[tokio::test]
async fn sonar_keeps_its_newest_leads_and_requests_up_to_its_log_capacity() {
    let sonar = Sonar::new(SonarConfig::new("s3cret")).with_log_capacity(2);
    let server = sonar.start(loopback()).await.expect("start");
    for n in 1..=3 {
        let mut body = lead();
        body["borrower"]["email"] = json!(format!("borrower{n}@example.com"));
        let (status, answered) = answer(
            client()
                .post(server.url(DEFAULT_PATH))
                .header("authorization", "s3cret")
                .json(&body)
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(
            (status, answered),
            (200, json!({"success": true, "id": format!("sonar-{n}")}))
        );
    }
    let ids: Vec<String> = sonar.leads().into_iter().map(|l| l.id).collect();
    assert_eq!(ids, ["sonar-2", "sonar-3"]);
    let answers: Vec<Value> = sonar
        .received()
        .into_iter()
        .map(|e| e.response["id"].clone())
        .collect();
    assert_eq!(answers, [json!("sonar-2"), json!("sonar-3")]);
}
