use leadhub::verticals::Vertical;
use leadhub_sandbox::heloc_lender::{HelocLender, HelocLenderConfig, DEFAULT_PATH};
use serde_json::{json, Value};

use crate::{answer, client, loopback};

async fn post(url: String, key: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = client().post(url).json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    answer(request.send().await.expect("send")).await
}

#[tokio::test]
async fn heloc_lender_quotes_a_valid_lead_once_per_email() {
    let lender = HelocLender::new(HelocLenderConfig::with_api_key("key-1"));
    let server = lender.start(loopback()).await.expect("start");
    let mut lead = Vertical::Heloc.example();
    assert_eq!(
        post(server.url(DEFAULT_PATH), Some("key-1"), &lead).await,
        (201, json!({"id": "quote-1"}))
    );
    let email = lead["contactInfo"]["email"]
        .as_str()
        .expect("email")
        .to_uppercase();
    lead["contactInfo"]["email"] = json!(format!(" {email} "));
    assert_eq!(
        post(server.url(DEFAULT_PATH), Some("key-1"), &lead).await,
        (409, json!({"message": "Email already exists"}))
    );
    let quotes = lender.quotes();
    assert_eq!(quotes.len(), 1);
    assert_eq!(quotes[0].id, "quote-1");
    assert_eq!(quotes[0].email, email.to_lowercase());
}

#[tokio::test]
async fn heloc_lender_refuses_a_missing_or_wrong_key_and_unknown_paths() {
    let lender = HelocLender::new(HelocLenderConfig::with_api_key("key-1"));
    let server = lender.start(loopback()).await.expect("start");
    let lead = Vertical::Heloc.example();
    for key in [None, Some("key-2")] {
        assert_eq!(
            post(server.url(DEFAULT_PATH), key, &lead).await,
            (401, json!({"message": "Unauthorized"}))
        );
    }
    assert_eq!(
        post(server.url("/quotes"), Some("key-1"), &lead).await.0,
        404
    );
    assert!(lender.quotes().is_empty());
    // Without a configured key, none is needed.
    let open = HelocLender::new(HelocLenderConfig::new());
    let server = open.start(loopback()).await.expect("start");
    assert_eq!(post(server.url(DEFAULT_PATH), None, &lead).await.0, 201);
}

#[tokio::test]
async fn heloc_lender_applies_the_seed_rules_through_the_hubs_parser() {
    let lender = HelocLender::new(HelocLenderConfig::new());
    lender.add_existing_email("User@Example.com");
    let server = lender.start(loopback()).await.expect("start");
    let mut condo = Vertical::Heloc.example();
    condo["buildingType"] = json!("condo");
    condo["address"]
        .as_object_mut()
        .expect("address")
        .remove("unitNumber");
    let (status, body) = post(server.url(DEFAULT_PATH), None, &condo).await;
    assert_eq!(status, 400);
    assert_eq!(body["message"], "Invalid lead");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    assert!(fields.contains(&"address.unitNumber"), "{body}");
    let mut user = Vertical::Heloc.example();
    user["contactInfo"]["email"] = json!("user@example.com");
    assert_eq!(
        post(server.url(DEFAULT_PATH), None, &user).await.0,
        409,
        "an existing user"
    );
    assert!(lender.quotes().is_empty());
}

#[tokio::test]
async fn heloc_lender_takes_the_hubs_normalised_heloc_lead() {
    // What the hub's heloc-lender connector posts: the normalised lead, `affiliateId` set to the hub's id.
    let parsed = Vertical::Heloc
        .parse(&serde_json::to_vec(&Vertical::Heloc.example()).expect("json"))
        .expect("the example is valid");
    let mut lead = parsed.lead.value();
    lead["affiliateId"] = json!("lead_01HZX");
    let lender = HelocLender::new(HelocLenderConfig::new());
    let server = lender.start(loopback()).await.expect("start");
    assert_eq!(post(server.url(DEFAULT_PATH), None, &lead).await.0, 201);
}

#[tokio::test]
async fn heloc_lender_keeps_its_newest_quotes_and_requests_up_to_its_log_capacity() {
    let lender = HelocLender::new(HelocLenderConfig::new()).with_log_capacity(2);
    let server = lender.start(loopback()).await.expect("start");
    let mut lead = Vertical::Heloc.example();
    for n in 1..=3 {
        lead["contactInfo"]["email"] = json!(format!("borrower{n}@example.com"));
        assert_eq!(
            post(server.url(DEFAULT_PATH), None, &lead).await,
            (201, json!({"id": format!("quote-{n}")}))
        );
    }
    let quotes: Vec<String> = lender.quotes().into_iter().map(|q| q.id).collect();
    assert_eq!(
        quotes,
        ["quote-2", "quote-3"],
        "the oldest quote is dropped"
    );
    let emails: Vec<String> = lender
        .received()
        .into_iter()
        .map(|e| {
            e.body["contactInfo"]["email"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(emails, ["borrower2@example.com", "borrower3@example.com"]);
    // The dropped quote's email may be quoted again; a kept one still exists.
    lead["contactInfo"]["email"] = json!("borrower3@example.com");
    assert_eq!(post(server.url(DEFAULT_PATH), None, &lead).await.0, 409);
    lead["contactInfo"]["email"] = json!("borrower1@example.com");
    assert_eq!(
        post(server.url(DEFAULT_PATH), None, &lead).await,
        (201, json!({"id": "quote-4"}))
    );
}
