//! The partner API's answers: auth, scoping, limits, idempotency, problem+json.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a_valid_lead_is_accepted_and_delivered_with_its_timeline() {
    let stack = stack().await;
    let answer = post_lead(&stack, "heloc", &heloc_lead("happy")).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let lead_id = answer.body["leadId"].as_str().expect("leadId").to_owned();
    assert!(lead_id.starts_with("lead_"));
    assert_eq!(answer.body["status"], "received");
    assert_eq!(answer.body["statusUrl"], format!("/v1/leads/{lead_id}"));

    let view = wait_for_status(&stack, &lead_id, &["delivered"], Duration::from_secs(5)).await;
    assert_eq!(
        timeline_kinds(&view),
        [
            "received",
            "screened",
            "screened",
            "screened",
            "routing",
            "delivery_attempt",
            "delivery_accepted",
            "delivered"
        ]
    );
    // Each screening decision is on the timeline with its code: seed 001's duplicate rule, the suppression
    // list, then the pass.
    assert_eq!(view["timeline"][1]["code"], "not_duplicate");
    assert_eq!(view["timeline"][2]["code"], "not_suppressed");
    assert_eq!(view["timeline"][3]["code"], "passed");
    assert_eq!(view["deliveries"][0]["destination"], "sandbox-webhook");
    assert_eq!(view["deliveries"][0]["status"], "accepted");
    // The status API never returns the lead's PII.
    let text = view.to_string();
    assert!(
        !text.contains("jane.") && !text.contains("Bayshore") && !text.contains("555"),
        "{text}"
    );
}

#[tokio::test]
async fn an_invalid_lead_gets_400_problem_json_listing_every_broken_rule() {
    let stack = stack().await;
    let mut lead = heloc_lead("invalid");
    lead["buildingType"] = json!("condo");
    lead["propertyUsage"] = json!("investment");
    lead["contactInfo"]["email"] = json!("not-an-email");
    lead["address"]["state"] = json!("XX");
    lead["surprise"] = json!(true);
    let answer = post_lead(&stack, "heloc", &lead).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.headers["content-type"], "application/problem+json");
    let mut fields: Vec<String> = answer.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["field"].as_str().unwrap_or(""),
                e["code"].as_str().unwrap_or("")
            )
        })
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "address.state:invalid_format",
            "address.unitNumber:required",
            "contactInfo.email:invalid_format",
            "statedInformation.rentalOccupancy:required",
            "surprise:unknown_field",
        ]
    );
    assert!(
        !answer.body.to_string().contains("not-an-email"),
        "no submitted value is echoed"
    );
    assert_eq!(
        stack
            .store
            .get_lead(&"lead_00000000000000000000000000".parse().expect("id"))
            .await
            .ok()
            .flatten(),
        None
    );
}

#[tokio::test]
async fn a_control_character_in_a_text_field_of_each_vertical_is_a_400_naming_the_field() {
    use leadhub::verticals::Vertical;
    let stack = stack().await;
    // NUL, ESC (another C0) and NEL (C1), each in a text field of each vertical.
    let cases = [
        (
            "heloc",
            Vertical::Heloc,
            "/contactInfo/firstName",
            "contactInfo.firstName",
            "Ja\u{0}ne",
        ),
        (
            "mortgage",
            Vertical::Mortgage,
            "/borrower/lastName",
            "borrower.lastName",
            "Doe\u{1b}[2J",
        ),
        (
            "solar",
            Vertical::Solar,
            "/customer_name",
            "customer_name",
            "John\u{85}Doe",
        ),
        (
            "real-estate",
            Vertical::RealEstate,
            "/firstName",
            "firstName",
            "\u{0}Jane",
        ),
    ];
    for (path, vertical, pointer, field, bad) in cases {
        let mut lead = vertical.example();
        *lead
            .pointer_mut(pointer)
            .expect("the example has the field") = json!(bad);
        let answer = post_lead(&stack, path, &lead).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.body);
        assert_eq!(answer.headers["content-type"], "application/problem+json");
        let errors = answer.body["errors"].as_array().expect("errors");
        assert_eq!(errors.len(), 1, "{path}: {errors:?}");
        assert_eq!(errors[0]["field"], field, "{path}");
        assert_eq!(errors[0]["code"], "invalid_value", "{path}");
        let text = answer.body.to_string();
        assert!(
            !text.contains("Jane") && !text.contains("Doe") && !text.contains("John"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn authentication_scoping_and_limits() {
    let stack = stack().await;
    let lead = heloc_lead("auth");
    let url = stack.url("/v1/leads/heloc");

    let none = send(client().post(&url).json(&lead)).await;
    assert_eq!(none.status, 401);
    assert!(none.headers.contains_key("www-authenticate"));
    let wrong = send(
        client()
            .post(&url)
            .basic_auth(KEY, Some("nope"))
            .json(&lead),
    )
    .await;
    assert_eq!(wrong.status, 401);
    let unknown = send(
        client()
            .post(&url)
            .basic_auth("pk_nobody", Some(SECRET))
            .json(&lead),
    )
    .await;
    assert_eq!(unknown.status, 401);
    assert_eq!(
        wrong.body, unknown.body,
        "the same answer whether or not the key exists"
    );
    assert!(!wrong.body.to_string().contains("nope"));

    let vertical = send(
        client()
            .post(stack.url("/v1/leads/boats"))
            .basic_auth(KEY, Some(SECRET))
            .json(&lead),
    )
    .await;
    assert_eq!(vertical.status, 404);

    let text = send(
        client()
            .post(&url)
            .basic_auth(KEY, Some(SECRET))
            .header("content-type", "text/plain")
            .body(lead.to_string()),
    )
    .await;
    assert_eq!(text.status, 415);

    let big = json!({"padding": "x".repeat(70 * 1024)});
    let too_big = send(client().post(&url).basic_auth(KEY, Some(SECRET)).json(&big)).await;
    assert_eq!(too_big.status, 413);

    let not_json = send(
        client()
            .post(&url)
            .basic_auth(KEY, Some(SECRET))
            .header("content-type", "application/json")
            .body("{\"buildingType\": "),
    )
    .await;
    assert_eq!(not_json.status, 400);
    assert_eq!(not_json.body["errors"][0]["code"], "invalid_json");

    let method = send(
        client()
            .delete(stack.url("/v1/leads/heloc"))
            .basic_auth(KEY, Some(SECRET)),
    )
    .await;
    assert_eq!(method.status, 405);
    let nowhere = send(
        client()
            .get(stack.url("/v2/anything"))
            .basic_auth(KEY, Some(SECRET)),
    )
    .await;
    assert_eq!(nowhere.status, 404);
    assert_eq!(nowhere.headers["content-type"], "application/problem+json");
}

#[tokio::test]
async fn a_lead_is_visible_only_to_the_partner_that_posted_it() {
    let stack = stack().await;
    let answer = post_lead(&stack, "heloc", &heloc_lead("scope")).await;
    let lead_id = answer.body["leadId"].as_str().expect("leadId");
    let mine = get_lead(&stack, lead_id).await;
    assert_eq!(mine.status, 200);
    let theirs = send(
        client()
            .get(stack.url(&format!("/v1/leads/{lead_id}")))
            .basic_auth(OTHER_KEY, Some(OTHER_SECRET)),
    )
    .await;
    assert_eq!(theirs.status, 404);
    let missing = get_lead(&stack, "lead_01JD0000000000000000000000").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        theirs.body["detail"], missing.body["detail"],
        "indistinguishable from a missing lead"
    );
    let malformed = get_lead(&stack, "not-a-lead-id").await;
    assert_eq!(malformed.status, 404);
}

#[tokio::test]
async fn idempotency_keys_replay_conflict_and_refuse_other_bodies() {
    let stack = stack().await;
    let lead = heloc_lead("idem");
    let url = stack.url("/v1/leads/heloc");
    let post = |body: serde_json::Value, key: &'static str| {
        client()
            .post(&url)
            .basic_auth(KEY, Some(SECRET))
            .header("idempotency-key", key)
            .json(&body)
    };
    let first = send(post(lead.clone(), "order-42")).await;
    assert_eq!(first.status, 202);

    // Same key, other body: 422.
    let mut other = lead.clone();
    other["affiliateId"] = json!("changed");
    let reused = send(post(other, "order-42")).await;
    assert_eq!(reused.status, 422);

    // Once the first is done (its lead queued and on its way), even within its in-flight window: the first
    // answer again, and no second lead.
    let lead_id = first.body["leadId"].as_str().expect("leadId");
    wait_for_status(&stack, lead_id, &["delivered"], Duration::from_secs(5)).await;
    let replay = send(post(lead.clone(), "order-42")).await;
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

    // The key is scoped to the partner: another partner's same key is its own.
    let too_long = "k".repeat(256);
    let bad = send(
        client()
            .post(&url)
            .basic_auth(KEY, Some(SECRET))
            .header("idempotency-key", too_long)
            .json(&lead),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["errors"][0]["field"], "Idempotency-Key");
}

/// A store whose first answer to a lead's create is lost after the write landed, as when the SDK retries a
/// conditional put whose response timed out: the retry finds the item and fails its condition.
struct LostFirstAnswer(std::sync::Arc<dyn leadhub::store::LeadStore>);

#[async_trait::async_trait]
impl leadhub::store::LeadStore for LostFirstAnswer {
    async fn create_lead(
        &self,
        lead: &leadhub::lead::LeadRecord,
        idempotency: Option<&leadhub::store::IdempotencyRecord>,
    ) -> Result<leadhub::store::CreateOutcome, leadhub::store::StoreError> {
        self.0.create_lead(lead, idempotency).await?;
        self.0.create_lead(lead, idempotency).await
    }
    async fn get_lead(
        &self,
        id: &leadhub::lead::LeadId,
    ) -> Result<Option<leadhub::lead::LeadRecord>, leadhub::store::StoreError> {
        self.0.get_lead(id).await
    }
    async fn update_lead(
        &self,
        id: &leadhub::lead::LeadId,
        update: &leadhub::store::LeadUpdate,
    ) -> Result<leadhub::store::UpdateOutcome, leadhub::store::StoreError> {
        self.0.update_lead(id, update).await
    }
    async fn discard_lead(
        &self,
        id: &leadhub::lead::LeadId,
        idempotency: Option<(&str, &str)>,
    ) -> Result<(), leadhub::store::StoreError> {
        self.0.discard_lead(id, idempotency).await
    }
    async fn claim_unique(
        &self,
        key: &str,
        owner: &leadhub::lead::LeadId,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<leadhub::store::ClaimOutcome, leadhub::store::StoreError> {
        self.0.claim_unique(key, owner, expires_at, now).await
    }
    async fn unique_holder(
        &self,
        key: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<leadhub::lead::LeadId>, leadhub::store::StoreError> {
        self.0.unique_holder(key, now).await
    }
    async fn release_unique(
        &self,
        key: &str,
        owner: &leadhub::lead::LeadId,
    ) -> Result<(), leadhub::store::StoreError> {
        self.0.release_unique(key, owner).await
    }
    async fn get_config_document(&self) -> Result<Option<String>, leadhub::store::StoreError> {
        self.0.get_config_document().await
    }
    async fn put_config_document(&self, document: &str) -> Result<(), leadhub::store::StoreError> {
        self.0.put_config_document(document).await
    }
    async fn list_partner_leads(
        &self,
        query: &leadhub::store::LeadListQuery,
    ) -> Result<leadhub::store::LeadPage, leadhub::store::StoreError> {
        self.0.list_partner_leads(query).await
    }
}

#[tokio::test]
async fn a_lead_whose_stored_answer_was_lost_is_still_accepted_and_delivered() {
    let stack = stack().await;
    let ingest = ingest::Ingest {
        config: stack.live_config.clone(),
        store: std::sync::Arc::new(LostFirstAnswer(stack.store.clone())),
        sealed_ssns: stack.sealed_ssns.clone(),
        validate_queue: stack.validate_queue.clone(),
    };
    let body = serde_json::to_vec(&heloc_lead("lost-answer")).expect("json");
    let response = ingest.handle(heloc_request(&body, None)).await;
    assert_eq!(response.status(), 202, "{}", response.body());
    let body: serde_json::Value = serde_json::from_str(response.body()).expect("json");
    let lead_id = body["leadId"].as_str().expect("leadId");
    wait_for_status(&stack, lead_id, &["delivered"], Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_replay_while_the_first_lead_is_not_yet_queued_is_409_with_retry_after() {
    let stack = stack().await;
    // An ingest whose queue nobody drains: its leads stay `received`, as while the first request is between
    // its write and its send.
    let ingest = ingest::Ingest {
        config: stack.live_config.clone(),
        store: stack.store.clone(),
        sealed_ssns: stack.sealed_ssns.clone(),
        validate_queue: std::sync::Arc::new(leadhub::queue::memory::MemoryQueue::new(
            "held",
            Duration::from_secs(30),
        )),
    };
    let body = serde_json::to_vec(&heloc_lead("held")).expect("json");
    let post = || heloc_request(&body, Some("held-1"));
    assert_eq!(ingest.handle(post()).await.status(), 202);
    let racing = ingest.handle(post()).await;
    assert_eq!(racing.status(), 409, "{}", racing.body());
    assert!(racing.headers().contains_key("retry-after"));
    let problem: serde_json::Value = serde_json::from_str(racing.body()).expect("json");
    assert_eq!(problem["code"], "request_in_flight");
}

#[tokio::test]
async fn an_idempotency_key_that_outlived_its_discarded_lead_is_freed_for_the_retry() {
    use leadhub::lead::{LeadId, LeadRecord};
    use leadhub::store::IdempotencyRecord;
    use leadhub::verticals::Vertical;
    let stack = stack().await;
    let lead = heloc_lead("orphan-key");
    let body = serde_json::to_vec(&lead).expect("json");
    let partner = stack
        .config
        .partners
        .iter()
        .find(|p| p.key_id == KEY)
        .expect("the demo partner");
    // A first request five minutes ago whose lead was discarded, but not its idempotency record.
    let then = leadhub::lead::now() - chrono::Duration::minutes(5);
    let parsed = Vertical::Heloc.parse(&body).expect("valid");
    let first = LeadRecord::received(
        LeadId::generate(then),
        &partner.id,
        Vertical::Heloc,
        parsed.lead,
        then,
        None,
    );
    let record = IdempotencyRecord {
        partner_id: partner.id.to_string(),
        key: "orphan-1".into(),
        request_hash: leadhub::crypto::sha256_hex(&[b"heloc".as_slice(), b"\n", &body].concat()),
        lead_id: first.id.clone(),
        created_at: then,
        in_flight_until: then + chrono::Duration::seconds(10),
        expires_at: then + chrono::Duration::hours(24),
    };
    stack
        .store
        .create_lead(&first, Some(&record))
        .await
        .expect("stored");
    stack
        .store
        .discard_lead(&first.id, None)
        .await
        .expect("lead discarded");

    let post = || {
        client()
            .post(stack.url("/v1/leads/heloc"))
            .basic_auth(KEY, Some(SECRET))
            .header("idempotency-key", "orphan-1")
            .header("content-type", "application/json")
            .body(body.clone())
    };
    let stale = send(post()).await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert_eq!(stale.headers["retry-after"], "1");
    // The retry it asks for starts afresh: a new lead, delivered.
    let retry = send(post()).await;
    assert_eq!(retry.status, 202, "{}", retry.body);
    let lead_id = retry.body["leadId"].as_str().expect("leadId");
    assert_ne!(lead_id, first.id.as_str());
    wait_for_status(&stack, lead_id, &["delivered"], Duration::from_secs(5)).await;
}
