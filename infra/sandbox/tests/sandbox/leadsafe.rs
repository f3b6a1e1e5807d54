use leadhub_sandbox::leadsafe::{LeadSafe, LeadSafeConfig, Rag, Reason};
use serde_json::{json, Value};

use crate::{answer, client, loopback};

/// The seed's CSV upload sample.
const CSV: &str = "ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason
exampleco,123456789,2024-01-05,,Default
exampleco,111222333,2024-01-06,2024-02-12,RevokePaymentAuth
exampleco,240120120,2024-01-07,,Lawsuit
exampleco,411411411,2024-01-08,,RegulatoryComplaint
exampleco,910910910,2024-01-09,,DebtConsolidation
exampleco,761789231,2024-01-10,2024-02-19,Default
exampleco,123123123,2024-01-11,,SuspectedIdTheft
exampleco,412421341,2024-01-12,,Bankruptcy
";

async fn post(url: String, body: &Value) -> (u16, Value) {
    answer(
        client()
            .post(url)
            .basic_auth("api-key", Some("client-secret"))
            .json(body)
            .send()
            .await
            .expect("send"),
    )
    .await
}

#[tokio::test]
async fn leadsafe_reproduces_the_seed_samples() {
    let leadsafe = LeadSafe::new(LeadSafeConfig::new("api-key", "client-secret"));
    let server = leadsafe.start(loopback()).await.expect("start");
    let ssn = json!({"SocialSecurityNumber": "111111222"});
    assert_eq!(
        post(server.url("/leadsafe/search"), &ssn).await,
        (200, json!({"result": "Green"}))
    );
    let add = json!({"Records": [{"EndDate": null, "Reason": "RevokePaymentAuth", "SocialSecurityNumber": "111111222", "StartDate": "2024-04-02"}]});
    assert_eq!(
        post(server.url("/leadsafe/add"), &add).await,
        (200, json!({"code": 100, "message": "Records added"}))
    );
    let response = client()
        .post(server.url("/leadsafe/search-detailed"))
        .basic_auth("api-key", Some("client-secret"))
        .json(&ssn)
        .send()
        .await
        .expect("send");
    let text = response.text().await.expect("text");
    assert_eq!(
        text,
        r#"{"details":[{"reason":"RevokePaymentAuth","startDate":"2024-04-02T00:00:00","endDate":null}],"result":"Red"}"#,
        "the seed's sample, field order included"
    );
    assert_eq!(
        post(server.url("/leadsafe/search"), &ssn).await,
        (200, json!({"result": "Red"}))
    );
    assert_eq!(leadsafe.searched(), ["111111222", "111111222", "111111222"]);
}

#[tokio::test]
async fn leadsafe_refuses_without_basic_auth() {
    let leadsafe = LeadSafe::new(LeadSafeConfig::new("api-key", "client-secret"));
    let server = leadsafe.start(loopback()).await.expect("start");
    let body = json!({"SocialSecurityNumber": "111111222"});
    for request in [
        client().post(server.url("/leadsafe/search")).json(&body),
        client()
            .post(server.url("/leadsafe/search"))
            .basic_auth("api-key", Some("wrong"))
            .json(&body),
        client()
            .post(server.url("/leadsafe/search"))
            .bearer_auth("client-secret")
            .json(&body),
    ] {
        assert_eq!(
            answer(request.send().await.expect("send")).await,
            (401, json!({"message": "Unauthorized"}))
        );
    }
}

#[tokio::test]
async fn leadsafe_maps_records_to_red_amber_green_from_the_seed_csv() {
    let leadsafe = LeadSafe::new(LeadSafeConfig::new("api-key", "client-secret"));
    assert_eq!(leadsafe.load_csv(CSV), Ok(8));
    let server = leadsafe.start(loopback()).await.expect("start");
    for (ssn, result) in [
        ("123456789", "Red"),   // active Default
        ("111222333", "Amber"), // ended RevokePaymentAuth
        ("240120120", "Red"),   // Lawsuit
        ("411411411", "Red"),   // RegulatoryComplaint
        ("910910910", "Amber"), // active DebtConsolidation
        ("761789231", "Amber"), // ended Default
        ("123123123", "Red"),   // SuspectedIdTheft
        ("412421341", "Red"),   // Bankruptcy
        ("999999999", "Green"), // no record
    ] {
        let answered = post(
            server.url("/leadsafe/search"),
            &json!({"SocialSecurityNumber": ssn}),
        )
        .await;
        assert_eq!(answered, (200, json!({"result": result})), "{ssn}");
    }
    let (_, detailed) = post(
        server.url("/leadsafe/search-detailed"),
        &json!({"SocialSecurityNumber": "111222333"}),
    )
    .await;
    assert_eq!(
        detailed,
        json!({"details": [{"reason": "RevokePaymentAuth", "startDate": "2024-01-06T00:00:00", "endDate": "2024-02-12T00:00:00"}], "result": "Amber"})
    );
    let (_, green) = post(
        server.url("/leadsafe/search-detailed"),
        &json!({"SocialSecurityNumber": "999999999"}),
    )
    .await;
    assert_eq!(green, json!({"details": [], "result": "Green"}));
    // An update: the same SSN, reason and start date with an end date in the past ends the record.
    let end = json!({"Records": [{"EndDate": "2024-03-01", "Reason": "Default", "SocialSecurityNumber": "123456789", "StartDate": "2024-01-05"}]});
    assert_eq!(post(server.url("/leadsafe/add"), &end).await.0, 200);
    assert_eq!(leadsafe.screen("123456789").result, Rag::Amber);
    assert_eq!(leadsafe.records().len(), 8);
    // A future end date keeps it active.
    let future = json!({"Records": [{"EndDate": "2999-01-01", "Reason": "Default", "SocialSecurityNumber": "123456789", "StartDate": "2024-01-05"}]});
    assert_eq!(post(server.url("/leadsafe/add"), &future).await.0, 200);
    assert_eq!(leadsafe.screen("123456789").result, Rag::Red);
}

#[tokio::test]
async fn leadsafe_red_reasons_are_configurable() {
    let mut config = LeadSafeConfig::new("api-key", "client-secret");
    config.red_reasons.insert(Reason::DebtConsolidation);
    config.red_reasons.remove(&Reason::Abusive);
    let leadsafe = LeadSafe::new(config);
    leadsafe
        .load_csv("c,910910910,2024-01-09,,DebtConsolidation\nc,555443333,2024-01-09,,Abusive")
        .expect("csv");
    assert_eq!(leadsafe.screen("910910910").result, Rag::Red);
    assert_eq!(leadsafe.screen("555443333").result, Rag::Amber);
}

#[tokio::test]
async fn leadsafe_refuses_bad_records_and_bad_csv() {
    let leadsafe = LeadSafe::new(LeadSafeConfig::new("api-key", "client-secret"));
    let server = leadsafe.start(loopback()).await.expect("start");
    for bad in [
        json!({"Records": [{"EndDate": null, "Reason": "Fraud", "SocialSecurityNumber": "111111222", "StartDate": "2024-04-02"}]}),
        json!({"Records": [{"EndDate": null, "Reason": "Default", "SocialSecurityNumber": "1111", "StartDate": "2024-04-02"}]}),
        json!({"Records": [{"EndDate": null, "Reason": "Default", "SocialSecurityNumber": "111111222", "StartDate": "04/02/2024"}]}),
        json!({"Records": [{"EndDate": "2024-01-01", "Reason": "Default", "SocialSecurityNumber": "111111222", "StartDate": "2024-04-02"}]}),
        json!({"records": []}),
    ] {
        let (status, body) = post(server.url("/leadsafe/add"), &bad).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["code"], 400);
    }
    let (_, body) = post(
        server.url("/leadsafe/add"),
        &json!({"Records": [{"EndDate": null, "Reason": "Fraud", "SocialSecurityNumber": "111111222", "StartDate": "2024-04-02"}]}),
    )
    .await;
    assert_eq!(body["message"], "Records[0]: Invalid Reason: Fraud");
    assert!(leadsafe.records().is_empty());
    assert_eq!(
        post(
            server.url("/leadsafe/search"),
            &json!({"SocialSecurityNumber": "12"})
        )
        .await
        .0,
        400
    );
    assert_eq!(
        leadsafe.load_csv("ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason\nc,123456789,2024-01-05,,Default\nc,123456789,2024-01-05,Default"),
        Err("line 3: expected 5 columns (ClientCode,SocialSecurityNumber,StartDate,EndDate,Reason)".into())
    );
    assert!(leadsafe.records().is_empty(), "all or nothing");
    // The control endpoint takes the CSV as text.
    let response = client()
        .post(server.url("/_sandbox/records"))
        .body(CSV)
        .send()
        .await
        .expect("send");
    assert_eq!(answer(response).await, (200, json!({"loaded": 8})));
    assert_eq!(leadsafe.records().len(), 8);
}

#[tokio::test]
async fn leadsafe_keeps_its_newest_requests_up_to_its_log_capacity() {
    let leadsafe =
        LeadSafe::new(LeadSafeConfig::new("api-key", "client-secret")).with_log_capacity(2);
    let server = leadsafe.start(loopback()).await.expect("start");
    for ssn in ["111111201", "111111202", "111111203"] {
        assert_eq!(
            post(
                server.url("/leadsafe/search"),
                &json!({"SocialSecurityNumber": ssn})
            )
            .await
            .0,
            200
        );
    }
    assert_eq!(leadsafe.searched(), ["111111202", "111111203"]);
}
