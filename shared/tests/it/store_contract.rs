//! The `LeadStore` contract: every adapter behaves like the reference semantics in `store/mod.rs`
//! (`preconditions_hold`, `apply_update`) and the memory adapter.
//!
//! Each check is written once, as an async function of `&dyn LeadStore`; `store_contract!` runs it against
//! the memory store and (ignored unless moto is up) against DynamoDB, each test on a fresh store.
//!
//! Times are whole milliseconds: the DynamoDB adapter stores epoch milliseconds.

use chrono::{DateTime, Duration, Utc};
use futures::future::join_all;
use leadhub::lead::{
    DeliveryState, DeliveryStatus, EventKind, LeadId, LeadRecord, LeadStatus, TimelineEvent,
};
use leadhub::store::{
    apply_update, preconditions_hold, ClaimOutcome, CreateOutcome, DeliveryExpect,
    IdempotencyRecord, LeadStore, LeadUpdate, StoreError, UpdateOutcome,
};
use leadhub::verticals::Vertical;
use serde_json::json;

store_contract!(
    create_then_get_round_trips_every_field,
    create_of_an_existing_id_is_already_exists,
    idempotent_create_returns_the_first_record_and_writes_nothing,
    expired_idempotency_record_is_treated_as_absent,
    racing_idempotent_creates_create_once,
    status_precondition_met_applies_and_unmet_conflicts,
    events_append_in_order_across_updates,
    delivery_expected_absent_twice_conflicts_the_second_time,
    delivery_expected_status_in,
    delivery_claimable,
    delivery_in_flight_for_an_attempt,
    update_of_a_missing_lead_is_not_found,
    several_changes_in_one_update_are_all_or_nothing,
    destination_ids_with_odd_characters,
    racing_claims_of_one_delivery_apply_once,
    claim_unique_holds_for_the_first_owner,
    a_claim_expires_by_the_callers_clock,
    a_released_claim_is_free_and_only_its_owner_releases_it,
    unique_holder_reads_a_claim_without_taking_it,
    expired_claim_can_be_taken_over,
    racing_owners_claim_once,
    discard_lead_removes_a_received_lead_and_its_idempotency_record,
    discard_lead_leaves_a_lead_past_received_alone,
    config_document_round_trips,
);

#[tokio::test]
#[ignore = "needs moto: run infra/test.sh (or set LEADHUB_TEST_AWS_ENDPOINT)"]
async fn dynamodb_works_under_the_functions_sdk_timeouts() {
    let sdk = crate::aws::sdk_config_loader()
        .timeout_config(leadhub::runtime::sdk_timeouts())
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table = crate::aws::unique_name("leadhub-test");
    leadhub::store::dynamodb::create_table(&client, &table)
        .await
        .expect("create table");
    let store = leadhub::store::dynamodb::DynamoStore::new(client, table);
    let lead = received_lead("partner-1", now());
    create(&store, &lead).await;
    assert!(store.get_lead(&lead.id).await.expect("get").is_some());
}

#[tokio::test]
#[ignore = "needs moto: run infra/test.sh (or set LEADHUB_TEST_AWS_ENDPOINT)"]
async fn dynamodb_create_table_is_idempotent() {
    let client = crate::aws::dynamodb_client().await;
    let table = crate::aws::unique_name("leadhub-test");
    for _ in 0..2 {
        leadhub::store::dynamodb::create_table(&client, &table)
            .await
            .expect("create_table succeeds on a new and on an existing table");
    }
    let store = leadhub::store::dynamodb::DynamoStore::new(client, table);
    config_document_round_trips(&store).await;
}

// ---------------------------------------------------------------------------------------------------------
// Helpers.

/// Now, truncated to whole milliseconds.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now is a valid time")
}

/// A received lead of `partner` with unicode values and an expiry.
fn received_lead(partner: &str, at: DateTime<Utc>) -> LeadRecord {
    let mut lead = LeadRecord::received(
        LeadId::generate(at),
        partner,
        Vertical::Heloc,
        json!({
            "firstName": "Zoë",
            "lastName": "Ó Briain-Łukasiewicz",
            "city": "São Paulo",
            "notes": "日本語 🏠 \"quoted\" \\ back\\slash\nnew line\ttab",
            "loanAmount": 125_000,
            "rate": 6.25,
            "consent": true,
            "coBorrower": null,
            "extra_data": {"nested": [1, null, "x", {"deep": "ü"}]}
        }),
        at,
        Some(at + Duration::days(30)),
    );
    lead.original = Some(
        json!({"firstName": " Zoë ", "phone": "(727) 555-0134", "list": [1, 2.5, "ü"]}).into(),
    );
    lead.ssn_hash = Some("9f2c".repeat(16));
    lead
}

fn idempotency(
    lead: &LeadRecord,
    key: &str,
    request_hash: &str,
    at: DateTime<Utc>,
) -> IdempotencyRecord {
    IdempotencyRecord {
        partner_id: lead.partner_id.clone(),
        key: key.to_owned(),
        request_hash: request_hash.to_owned(),
        lead_id: lead.id.clone(),
        created_at: at,
        in_flight_until: at + Duration::seconds(30),
        expires_at: at + Duration::hours(24),
    }
}

async fn create(store: &dyn LeadStore, lead: &LeadRecord) {
    assert_eq!(
        store.create_lead(lead, None).await.expect("create_lead"),
        CreateOutcome::Created
    );
}

/// Run `update` on the store and on `model` (with the reference semantics), check that both agree and that
/// the stored record is the model; true when the update applied.
async fn update(store: &dyn LeadStore, model: &mut LeadRecord, update: LeadUpdate) -> bool {
    let outcome = store
        .update_lead(&model.id, &update)
        .await
        .expect("update_lead");
    let applies = preconditions_hold(model, &update);
    if applies {
        apply_update(model, &update);
        assert_eq!(outcome, UpdateOutcome::Applied(model.clone()));
    } else {
        assert_eq!(outcome, UpdateOutcome::Conflict(model.clone()));
    }
    assert_eq!(
        store.get_lead(&model.id).await.expect("get_lead").as_ref(),
        Some(&*model),
        "the stored record is the one the outcome returned"
    );
    applies
}

fn delivery(status: DeliveryStatus, attempts: u32, at: DateTime<Utc>) -> DeliveryState {
    DeliveryState {
        status,
        attempts,
        ..DeliveryState::pending(at)
    }
}

fn in_flight(attempts: u32, at: DateTime<Utc>, lease: Duration) -> DeliveryState {
    DeliveryState {
        lease_until: Some(at + lease),
        ..delivery(DeliveryStatus::InFlight, attempts, at)
    }
}

// ---------------------------------------------------------------------------------------------------------
// Creating and reading.

pub async fn create_then_get_round_trips_every_field(store: &dyn LeadStore) {
    let t0 = now();
    let mut lead = received_lead("partner-1", t0);
    lead.status = LeadStatus::Delivered;
    lead.updated_at = t0 + Duration::milliseconds(1234);
    lead.events.push(
        TimelineEvent::new(
            t0 + Duration::seconds(1),
            EventKind::DeliveryAttempt,
            LeadStatus::Routing,
        )
        .destination("sonar-1")
        .attempt(2)
        .reason("http_503", "the buyer answered 503 — «retry»"),
    );
    lead.events.push(TimelineEvent::new(
        t0 + Duration::seconds(2),
        EventKind::Delivered,
        LeadStatus::Delivered,
    ));
    lead.deliveries.insert(
        "sonar-1".to_owned(),
        DeliveryState {
            status: DeliveryStatus::Retrying,
            attempts: 2,
            lease_until: Some(t0 + Duration::seconds(60)),
            next_attempt_at: Some(t0 + Duration::seconds(90)),
            reason: Some("HTTP 503 ünavailable".to_owned()),
            buyer_ref: Some("B-42/ü".to_owned()),
            updated_at: t0 + Duration::milliseconds(1500),
            step: 3,
            price_cents: Some(1850),
            cap_keys: vec![
                "CAP#sonar-1#day:2026-12-02".to_owned(),
                "CAP#sonar-1#month:2026-12".to_owned(),
            ],
            rate_limit_wait_ms: 45_000,
        },
    );
    lead.deliveries.insert(
        "lofty".to_owned(),
        DeliveryState::pending(t0 + Duration::milliseconds(7)),
    );
    create(store, &lead).await;
    assert_eq!(
        store.get_lead(&lead.id).await.expect("get_lead"),
        Some(lead)
    );

    // The smallest lead: no expiry, no deliveries.
    let mut bare = received_lead("partner-2", t0);
    bare.expires_at = None;
    bare.lead = json!({}).into();
    create(store, &bare).await;
    assert_eq!(
        store.get_lead(&bare.id).await.expect("get_lead"),
        Some(bare)
    );

    let unknown = LeadId::generate(t0);
    assert_eq!(store.get_lead(&unknown).await.expect("get_lead"), None);
}

pub async fn create_of_an_existing_id_is_already_exists(store: &dyn LeadStore) {
    let t0 = now();
    let lead = received_lead("partner-1", t0);
    create(store, &lead).await;

    let mut again = received_lead("partner-1", t0);
    again.id = lead.id.clone();
    again.lead = json!({"firstName": "Someone else"}).into();
    assert!(matches!(
        store.create_lead(&again, None).await,
        Err(StoreError::AlreadyExists(_))
    ));
    // With a fresh idempotency key: still refused, and the key was not recorded (both or neither).
    let record = idempotency(&again, "fresh-key", "hash-1", t0);
    assert!(matches!(
        store.create_lead(&again, Some(&record)).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        store.get_lead(&lead.id).await.expect("get_lead"),
        Some(lead)
    );
    let other = received_lead("partner-1", t0);
    let record = idempotency(&other, "fresh-key", "hash-2", t0);
    assert_eq!(
        store
            .create_lead(&other, Some(&record))
            .await
            .expect("create_lead"),
        CreateOutcome::Created
    );
}

pub async fn idempotent_create_returns_the_first_record_and_writes_nothing(store: &dyn LeadStore) {
    let t0 = now();
    let first = received_lead("partner-1", t0);
    let first_record = idempotency(&first, "key/ü #1", "hash-first", t0);
    assert_eq!(
        store
            .create_lead(&first, Some(&first_record))
            .await
            .expect("create_lead"),
        CreateOutcome::Created
    );

    let t1 = t0 + Duration::seconds(1);
    let second = received_lead("partner-1", t1);
    let second_record = idempotency(&second, "key/ü #1", "hash-second", t1);
    assert_eq!(
        store
            .create_lead(&second, Some(&second_record))
            .await
            .expect("create_lead"),
        CreateOutcome::IdempotencyKeyUsed(first_record.clone())
    );
    assert_eq!(
        store.get_lead(&second.id).await.expect("get_lead"),
        None,
        "the replay wrote no lead"
    );
    assert_eq!(
        store.get_lead(&first.id).await.expect("get_lead"),
        Some(first)
    );

    // The same key from another partner is another key.
    let other = received_lead("partner-2", t1);
    let other_record = idempotency(&other, "key/ü #1", "hash-first", t1);
    assert_eq!(
        store
            .create_lead(&other, Some(&other_record))
            .await
            .expect("create_lead"),
        CreateOutcome::Created
    );
    // And the first partner's record is unchanged.
    let third = received_lead("partner-1", t1);
    let third_record = idempotency(&third, "key/ü #1", "hash-third", t1);
    assert_eq!(
        store
            .create_lead(&third, Some(&third_record))
            .await
            .expect("create_lead"),
        CreateOutcome::IdempotencyKeyUsed(first_record)
    );
}

pub async fn expired_idempotency_record_is_treated_as_absent(store: &dyn LeadStore) {
    let t0 = now();
    let long_ago = t0 - Duration::days(2);
    let old = received_lead("partner-1", long_ago);
    let old_record = idempotency(&old, "reused-key", "hash-old", long_ago);
    assert!(old_record.expires_at < t0);
    assert_eq!(
        store
            .create_lead(&old, Some(&old_record))
            .await
            .expect("create_lead"),
        CreateOutcome::Created
    );

    // The record expired (DynamoDB's TTL may not have removed it yet): the key is free again.
    let new = received_lead("partner-1", t0);
    let new_record = idempotency(&new, "reused-key", "hash-new", t0);
    assert_eq!(
        store
            .create_lead(&new, Some(&new_record))
            .await
            .expect("create_lead"),
        CreateOutcome::Created
    );
    assert_eq!(store.get_lead(&new.id).await.expect("get_lead"), Some(new));

    // The live record is now the new one.
    let replay = received_lead("partner-1", t0);
    let replay_record = idempotency(&replay, "reused-key", "hash-replay", t0);
    assert_eq!(
        store
            .create_lead(&replay, Some(&replay_record))
            .await
            .expect("create_lead"),
        CreateOutcome::IdempotencyKeyUsed(new_record)
    );
    assert_eq!(store.get_lead(&replay.id).await.expect("get_lead"), None);
}

pub async fn racing_idempotent_creates_create_once(store: &dyn LeadStore) {
    let t0 = now();
    let attempts: Vec<(LeadRecord, IdempotencyRecord)> = (0..10)
        .map(|n| {
            let lead = received_lead("partner-1", t0);
            let record = idempotency(&lead, "double-click", &format!("hash-{n}"), t0);
            (lead, record)
        })
        .collect();
    let outcomes = join_all(attempts.iter().map(|(lead, record)| async move {
        store
            .create_lead(lead, Some(record))
            .await
            .expect("create_lead")
    }))
    .await;
    let winners: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, outcome)| **outcome == CreateOutcome::Created)
        .map(|(index, _)| index)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one request creates its lead");
    let (winner, winner_record) = &attempts[winners[0]];
    for ((lead, _), outcome) in attempts.iter().zip(&outcomes) {
        if lead.id == winner.id {
            assert_eq!(
                store.get_lead(&lead.id).await.expect("get_lead").as_ref(),
                Some(lead)
            );
        } else {
            assert_eq!(
                *outcome,
                CreateOutcome::IdempotencyKeyUsed(winner_record.clone())
            );
            assert_eq!(store.get_lead(&lead.id).await.expect("get_lead"), None);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Updating.

pub async fn status_precondition_met_applies_and_unmet_conflicts(store: &dyn LeadStore) {
    let t0 = now();
    let mut model = received_lead("partner-1", t0);
    create(store, &model).await;

    let t1 = t0 + Duration::seconds(1);
    let routing = LeadUpdate::new(t1)
        .expect(&[LeadStatus::Received])
        .status(LeadStatus::Routing)
        .event(TimelineEvent::new(
            t1,
            EventKind::Screened,
            LeadStatus::Routing,
        ));
    assert!(update(store, &mut model, routing.clone()).await);
    assert_eq!(model.status, LeadStatus::Routing);
    assert_eq!(model.updated_at, t1);

    // Same update again: the lead is no longer received. Conflict with the current record, nothing written.
    let mut replay = routing;
    replay.now = t0 + Duration::seconds(2);
    replay.set_status = Some(LeadStatus::Rejected);
    assert!(!update(store, &mut model, replay).await);

    // Any of several statuses.
    let t3 = t0 + Duration::seconds(3);
    let delivered = LeadUpdate::new(t3)
        .expect(&[LeadStatus::Received, LeadStatus::Routing])
        .status(LeadStatus::Delivered);
    assert!(update(store, &mut model, delivered).await);

    // No expectation: applies to any status; an update without a status change keeps the status.
    let t4 = t0 + Duration::seconds(4);
    assert!(update(store, &mut model, LeadUpdate::new(t4)).await);
    assert_eq!(model.status, LeadStatus::Delivered);
    assert_eq!(model.updated_at, t4);
}

pub async fn events_append_in_order_across_updates(store: &dyn LeadStore) {
    let t0 = now();
    let mut model = received_lead("partner-1", t0);
    create(store, &model).await;
    for round in 1..=3_i64 {
        let at = t0 + Duration::seconds(round);
        let change = LeadUpdate::new(at)
            .event(
                TimelineEvent::new(at, EventKind::DeliveryAttempt, LeadStatus::Routing)
                    .destination("sonar-1")
                    .attempt(round as u32),
            )
            .event(
                TimelineEvent::new(at, EventKind::DeliveryRetryScheduled, LeadStatus::Routing)
                    .reason("http_503", format!("round {round}")),
            );
        assert!(update(store, &mut model, change).await);
    }
    let kinds: Vec<_> = model.events.iter().map(|event| event.kind).collect();
    assert_eq!(kinds.len(), 7);
    assert_eq!(kinds[0], EventKind::Received);
    let reasons: Vec<_> = model
        .events
        .iter()
        .filter_map(|event| event.reason.as_deref())
        .collect();
    assert_eq!(reasons, ["round 1", "round 2", "round 3"]);
}

pub async fn delivery_expected_absent_twice_conflicts_the_second_time(store: &dyn LeadStore) {
    let t0 = now();
    let mut model = received_lead("partner-1", t0);
    create(store, &model).await;
    let add = |at| {
        LeadUpdate::new(at).delivery(
            "sonar-1",
            DeliveryExpect::Absent,
            DeliveryState::pending(at),
        )
    };
    assert!(update(store, &mut model, add(t0 + Duration::seconds(1))).await);
    assert!(!update(store, &mut model, add(t0 + Duration::seconds(2))).await);
    assert_eq!(
        model.deliveries["sonar-1"],
        DeliveryState::pending(t0 + Duration::seconds(1))
    );
}

pub async fn delivery_expected_status_in(store: &dyn LeadStore) {
    let t0 = now();
    let mut model = received_lead("partner-1", t0);
    create(store, &model).await;
    let t1 = t0 + Duration::seconds(1);
    let accepted = DeliveryState {
        buyer_ref: Some("B-1".to_owned()),
        ..delivery(DeliveryStatus::Accepted, 1, t1)
    };
    let expect = |statuses: &[DeliveryStatus]| DeliveryExpect::StatusIn(statuses.to_vec());

    // No delivery yet: no status matches.
    let change = LeadUpdate::new(t1).delivery(
        "sonar-1",
        expect(&[DeliveryStatus::Pending]),
        accepted.clone(),
    );
    assert!(!update(store, &mut model, change).await);

    let change = LeadUpdate::new(t1).delivery(
        "sonar-1",
        DeliveryExpect::Absent,
        in_flight(1, t1, Duration::seconds(60)),
    );
    assert!(update(store, &mut model, change).await);

    let change = LeadUpdate::new(t1).delivery(
        "sonar-1",
        expect(&[DeliveryStatus::Pending, DeliveryStatus::Retrying]),
        accepted.clone(),
    );
    assert!(!update(store, &mut model, change).await);

    let change = LeadUpdate::new(t1).delivery("sonar-1", expect(&[]), accepted.clone());
    assert!(
        !update(store, &mut model, change).await,
        "an empty list matches nothing"
    );

    let change = LeadUpdate::new(t1).delivery(
        "sonar-1",
        expect(&[DeliveryStatus::Pending, DeliveryStatus::InFlight]),
        accepted.clone(),
    );
    assert!(update(store, &mut model, change).await);
    assert_eq!(model.deliveries["sonar-1"], accepted);
}

pub async fn delivery_claimable(store: &dyn LeadStore) {
    let t0 = now();
    let mut model = received_lead("partner-1", t0);
    create(store, &model).await;
    let lease = Duration::seconds(60);
    let claim = |attempt: u32, at: DateTime<Utc>| {
        LeadUpdate::new(at).delivery(
            "d",
            DeliveryExpect::Claimable { attempt, now: at },
            in_flight(attempt, at, lease),
        )
    };

    // No delivery: nothing to claim.
    assert!(!update(store, &mut model, claim(1, t0)).await);

    let change =
        LeadUpdate::new(t0).delivery("d", DeliveryExpect::Absent, DeliveryState::pending(t0));
    assert!(update(store, &mut model, change).await);

    // Pending with 0 attempts: attempt 1 may start, attempt 2 and attempt 0 may not.
    assert!(!update(store, &mut model, claim(2, t0)).await);
    assert!(!update(store, &mut model, claim(0, t0)).await);
    assert!(update(store, &mut model, claim(1, t0)).await);

    // In flight with a live lease: nobody takes it over, not even for the same attempt.
    let t1 = t0 + Duration::seconds(30);
    assert!(!update(store, &mut model, claim(1, t1)).await);
    assert!(!update(store, &mut model, claim(2, t1)).await);

    // The lease ran out (its owner died): the same attempt may be taken over, no other.
    let t2 = t0 + Duration::seconds(61);
    assert!(!update(store, &mut model, claim(2, t2)).await);
    assert!(!update(store, &mut model, claim(0, t2)).await);
    assert!(update(store, &mut model, claim(1, t2)).await);
    assert_eq!(model.deliveries["d"].lease_until, Some(t2 + lease));

    // Exactly at the lease's end it is still held.
    let t3 = t2 + lease;
    assert!(!update(store, &mut model, claim(1, t3)).await);

    // Retrying after 1 attempt: attempt 2 may start, attempt 1 may not.
    let retrying = DeliveryState {
        next_attempt_at: Some(t3),
        reason: Some("HTTP 503".to_owned()),
        ..delivery(DeliveryStatus::Retrying, 1, t2)
    };
    let change = LeadUpdate::new(t2).delivery(
        "d",
        DeliveryExpect::StatusIn(vec![DeliveryStatus::InFlight]),
        retrying,
    );
    assert!(update(store, &mut model, change).await);
    let t4 = t3 + Duration::seconds(1);
    assert!(!update(store, &mut model, claim(1, t4)).await);
    assert!(!update(store, &mut model, claim(3, t4)).await);
    assert!(update(store, &mut model, claim(2, t4)).await);

    // In flight without a lease never counts as abandoned.
    let no_lease = delivery(DeliveryStatus::InFlight, 2, t4);
    let change = LeadUpdate::new(t4).delivery(
        "d",
        DeliveryExpect::StatusIn(vec![DeliveryStatus::InFlight]),
        no_lease,
    );
    assert!(update(store, &mut model, change).await);
    assert!(!update(store, &mut model, claim(2, t4 + Duration::days(1))).await);

    // A final delivery is never claimable.
    for status in [
        DeliveryStatus::Accepted,
        DeliveryStatus::Rejected,
        DeliveryStatus::Dead,
    ] {
        let done = delivery(status, 2, t4);
        let change = LeadUpdate::new(t4).delivery(
            "d",
            DeliveryExpect::StatusIn(DeliveryStatus::ALL.to_vec()),
            done,
        );
        assert!(update(store, &mut model, change).await);
        assert!(!update(store, &mut model, claim(2, t4 + Duration::days(1))).await);
        assert!(!update(store, &mut model, claim(3, t4 + Duration::days(1))).await);
    }
}

pub async fn delivery_in_flight_for_an_attempt(store: &dyn LeadStore) {
    let t0 = now();
    let mut model = received_lead("partner-1", t0);
    create(store, &model).await;
    let lease = Duration::seconds(60);
    let record = |attempt: u32, at: DateTime<Utc>| {
        LeadUpdate::new(at).delivery(
            "d",
            DeliveryExpect::InFlight { attempt },
            delivery(DeliveryStatus::Accepted, attempt, at),
        )
    };
    // No delivery, then a pending one: nothing is in flight.
    assert!(!update(store, &mut model, record(1, t0)).await);
    let change =
        LeadUpdate::new(t0).delivery("d", DeliveryExpect::Absent, DeliveryState::pending(t0));
    assert!(update(store, &mut model, change).await);
    assert!(!update(store, &mut model, record(0, t0)).await);
    assert!(!update(store, &mut model, record(1, t0)).await);

    // Attempt 1 is claimed and records a retry, then attempt 2 is claimed: a worker still holding attempt 1
    // (one that outlived its lease) may no longer record over attempt 2.
    let claim = |attempt: u32, at: DateTime<Utc>| {
        LeadUpdate::new(at).delivery(
            "d",
            DeliveryExpect::Claimable { attempt, now: at },
            in_flight(attempt, at, lease),
        )
    };
    assert!(update(store, &mut model, claim(1, t0)).await);
    let retrying = DeliveryState {
        next_attempt_at: Some(t0),
        ..delivery(DeliveryStatus::Retrying, 1, t0)
    };
    let change =
        LeadUpdate::new(t0).delivery("d", DeliveryExpect::InFlight { attempt: 1 }, retrying);
    assert!(update(store, &mut model, change).await);
    let t1 = t0 + Duration::seconds(1);
    assert!(update(store, &mut model, claim(2, t1)).await);
    assert!(
        !update(store, &mut model, record(1, t1)).await,
        "a stale attempt"
    );
    assert!(
        !update(store, &mut model, record(3, t1)).await,
        "a future attempt"
    );
    assert!(update(store, &mut model, record(2, t1)).await);
    // Recorded once: the delivery is no longer in flight.
    assert!(!update(store, &mut model, record(2, t1)).await);
}

pub async fn update_of_a_missing_lead_is_not_found(store: &dyn LeadStore) {
    let t0 = now();
    let id = LeadId::generate(t0);
    let plain = LeadUpdate::new(t0).status(LeadStatus::Routing);
    assert_eq!(
        store.update_lead(&id, &plain).await.expect("update_lead"),
        UpdateOutcome::NotFound
    );
    let conditional = LeadUpdate::new(t0)
        .expect(&[LeadStatus::Received])
        .delivery("d", DeliveryExpect::Absent, DeliveryState::pending(t0))
        .event(TimelineEvent::new(
            t0,
            EventKind::Routing,
            LeadStatus::Routing,
        ));
    assert_eq!(
        store
            .update_lead(&id, &conditional)
            .await
            .expect("update_lead"),
        UpdateOutcome::NotFound
    );
    assert_eq!(
        store.get_lead(&id).await.expect("get_lead"),
        None,
        "an update creates nothing"
    );
}

pub async fn several_changes_in_one_update_are_all_or_nothing(store: &dyn LeadStore) {
    let t0 = now();
    let mut model = received_lead("partner-1", t0);
    create(store, &model).await;
    let t1 = t0 + Duration::seconds(1);
    let setup = LeadUpdate::new(t1).delivery(
        "b",
        DeliveryExpect::Absent,
        delivery(DeliveryStatus::Accepted, 1, t1),
    );
    assert!(update(store, &mut model, setup).await);

    // Every precondition but the last holds: nothing at all is written.
    let t2 = t0 + Duration::seconds(2);
    let mixed = LeadUpdate::new(t2)
        .expect(&[LeadStatus::Received])
        .status(LeadStatus::Routing)
        .delivery("a", DeliveryExpect::Absent, DeliveryState::pending(t2))
        .delivery("c", DeliveryExpect::Absent, DeliveryState::pending(t2))
        .delivery(
            "b",
            DeliveryExpect::StatusIn(vec![DeliveryStatus::Pending]),
            DeliveryState::pending(t2),
        )
        .event(TimelineEvent::new(
            t2,
            EventKind::Routing,
            LeadStatus::Routing,
        ));
    assert!(!update(store, &mut model, mixed.clone()).await);
    assert_eq!(model.status, LeadStatus::Received);
    assert_eq!(model.deliveries.len(), 1);
    assert_eq!(model.events.len(), 1);

    // With the last precondition fixed, everything is written at once.
    let mut fixed = mixed;
    fixed.deliveries[2].expect = DeliveryExpect::StatusIn(vec![DeliveryStatus::Accepted]);
    assert!(update(store, &mut model, fixed).await);
    assert_eq!(model.status, LeadStatus::Routing);
    assert_eq!(model.deliveries.len(), 3);
    assert_eq!(model.events.len(), 2);

    // Two changes to one destination: both preconditions are checked, the last state wins.
    let t3 = t0 + Duration::seconds(3);
    let twice = LeadUpdate::new(t3)
        .delivery(
            "a",
            DeliveryExpect::StatusIn(vec![DeliveryStatus::Pending]),
            in_flight(1, t3, Duration::seconds(5)),
        )
        .delivery(
            "a",
            DeliveryExpect::Claimable {
                attempt: 1,
                now: t3,
            },
            in_flight(1, t3, Duration::seconds(9)),
        );
    assert!(update(store, &mut model, twice).await);
    assert_eq!(
        model.deliveries["a"].lease_until,
        Some(t3 + Duration::seconds(9))
    );
}

pub async fn destination_ids_with_odd_characters(store: &dyn LeadStore) {
    let t0 = now();
    let mut model = received_lead("partner-1", t0);
    create(store, &model).await;
    let odd = [
        "dest.with-dots #1",
        "#d0",
        ":v0",
        "status",
        "a[0]",
        "with space",
        "ünïcødé/🏠",
        "quote\"and'apostrophe",
    ];
    let mut add = LeadUpdate::new(t0 + Duration::seconds(1));
    for destination in odd {
        add = add.delivery(
            destination,
            DeliveryExpect::Absent,
            DeliveryState::pending(t0),
        );
    }
    assert!(update(store, &mut model, add).await);
    assert_eq!(model.deliveries.len(), odd.len());

    for (index, destination) in odd.into_iter().enumerate() {
        let at = t0 + Duration::seconds(2 + index as i64);
        let claim = LeadUpdate::new(at).delivery(
            destination,
            DeliveryExpect::Claimable {
                attempt: 1,
                now: at,
            },
            in_flight(1, at, Duration::seconds(60)),
        );
        assert!(
            update(store, &mut model, claim.clone()).await,
            "{destination}"
        );
        assert!(!update(store, &mut model, claim).await, "{destination}");
        let finish = LeadUpdate::new(at).delivery(
            destination,
            DeliveryExpect::StatusIn(vec![DeliveryStatus::InFlight]),
            delivery(DeliveryStatus::Accepted, 1, at),
        );
        assert!(update(store, &mut model, finish).await, "{destination}");
    }
    assert!(model
        .deliveries
        .values()
        .all(|state| state.status == DeliveryStatus::Accepted));
}

pub async fn racing_claims_of_one_delivery_apply_once(store: &dyn LeadStore) {
    let t0 = now();
    let lead = received_lead("partner-1", t0);
    create(store, &lead).await;
    let racers = (0..20_i64).map(|n| {
        let at = t0 + Duration::milliseconds(n);
        let change = LeadUpdate::new(at)
            .delivery(
                "sonar-1",
                DeliveryExpect::Absent,
                DeliveryState::pending(at),
            )
            .event(
                TimelineEvent::new(at, EventKind::Routing, LeadStatus::Routing)
                    .destination("sonar-1"),
            );
        let id = lead.id.clone();
        async move { store.update_lead(&id, &change).await.expect("update_lead") }
    });
    let outcomes = join_all(racers).await;
    let applied = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, UpdateOutcome::Applied(_)))
        .count();
    assert_eq!(applied, 1, "exactly one racer wins");
    assert!(outcomes.iter().all(|outcome| matches!(
        outcome,
        UpdateOutcome::Applied(_) | UpdateOutcome::Conflict(_)
    )));
    let stored = store
        .get_lead(&lead.id)
        .await
        .expect("get_lead")
        .expect("the lead exists");
    assert_eq!(
        stored.events.len(),
        2,
        "only the winner's event was appended"
    );
}

// ---------------------------------------------------------------------------------------------------------
// Uniqueness claims.

fn claim_key(name: &str) -> String {
    format!("DEDUPE#heloc#email#{name}-{:016x}", rand::random::<u64>())
}

pub async fn unique_holder_reads_a_claim_without_taking_it(store: &dyn LeadStore) {
    let t0 = now();
    let free = claim_key("peek-free");
    let reader = LeadId::generate(t0);
    assert_eq!(store.unique_holder(&free, t0).await.expect("read"), None);
    // Reading took nothing: another lead can still claim the key.
    assert_eq!(
        store
            .claim_unique(&free, &reader, None, t0)
            .await
            .expect("claim"),
        ClaimOutcome::Claimed
    );
    assert_eq!(
        store.unique_holder(&free, t0).await.expect("read"),
        Some(reader.clone())
    );
    let expired = claim_key("peek-expired");
    store
        .claim_unique(&expired, &reader, Some(t0 - Duration::seconds(1)), t0)
        .await
        .expect("claim");
    assert_eq!(store.unique_holder(&expired, t0).await.expect("read"), None);
}

pub async fn claim_unique_holds_for_the_first_owner(store: &dyn LeadStore) {
    let t0 = now();
    let key = claim_key("first");
    let first = LeadId::generate(t0);
    let second = LeadId::generate(t0);
    let expiry = Some(t0 + Duration::days(30));
    assert_eq!(
        store
            .claim_unique(&key, &first, expiry, t0)
            .await
            .expect("claim"),
        ClaimOutcome::Claimed
    );
    assert_eq!(
        store
            .claim_unique(&key, &first, expiry, t0)
            .await
            .expect("claim"),
        ClaimOutcome::Claimed
    );
    assert_eq!(
        store
            .claim_unique(&key, &second, expiry, t0)
            .await
            .expect("claim"),
        ClaimOutcome::HeldBy(first.clone())
    );
    // Without an expiry the claim holds for ever.
    let forever = claim_key("forever");
    assert_eq!(
        store
            .claim_unique(&forever, &second, None, t0)
            .await
            .expect("claim"),
        ClaimOutcome::Claimed
    );
    assert_eq!(
        store
            .claim_unique(&forever, &first, None, t0)
            .await
            .expect("claim"),
        ClaimOutcome::HeldBy(second.clone())
    );
    assert_eq!(
        store
            .claim_unique(&forever, &second, None, t0)
            .await
            .expect("claim"),
        ClaimOutcome::Claimed
    );
    // Keys are independent.
    assert_eq!(
        store
            .claim_unique(&claim_key("other"), &second, expiry, t0)
            .await
            .expect("claim"),
        ClaimOutcome::Claimed
    );
}

pub async fn expired_claim_can_be_taken_over(store: &dyn LeadStore) {
    let t0 = now();
    let key = claim_key("expired");
    let first = LeadId::generate(t0);
    let second = LeadId::generate(t0);
    let third = LeadId::generate(t0);
    assert_eq!(
        store
            .claim_unique(&key, &first, Some(t0 - Duration::seconds(10)), t0)
            .await
            .expect("claim"),
        ClaimOutcome::Claimed
    );
    assert_eq!(
        store
            .claim_unique(&key, &second, Some(t0 + Duration::days(1)), t0)
            .await
            .expect("claim"),
        ClaimOutcome::Claimed,
        "an expired claim is free"
    );
    assert_eq!(
        store
            .claim_unique(&key, &third, None, t0)
            .await
            .expect("claim"),
        ClaimOutcome::HeldBy(second.clone())
    );
    assert_eq!(
        store
            .claim_unique(&key, &first, None, t0)
            .await
            .expect("claim"),
        ClaimOutcome::HeldBy(second)
    );
}

pub async fn a_claim_expires_by_the_callers_clock(store: &dyn LeadStore) {
    let t0 = now();
    let key = claim_key("window");
    let first = LeadId::generate(t0);
    let second = LeadId::generate(t0);
    let ends = t0 + Duration::days(30);
    assert_eq!(
        store
            .claim_unique(&key, &first, Some(ends), t0)
            .await
            .expect("claim"),
        ClaimOutcome::Claimed
    );
    let inside = ends - Duration::seconds(1);
    assert_eq!(
        store
            .claim_unique(&key, &second, Some(inside + Duration::days(30)), inside)
            .await
            .expect("claim"),
        ClaimOutcome::HeldBy(first.clone()),
        "inside the window the first lead holds the key"
    );
    assert_eq!(
        store.unique_holder(&key, inside).await.expect("read"),
        Some(first.clone())
    );
    assert_eq!(store.unique_holder(&key, ends).await.expect("read"), None);
    assert_eq!(
        store
            .claim_unique(&key, &second, Some(ends + Duration::days(30)), ends)
            .await
            .expect("claim"),
        ClaimOutcome::Claimed,
        "when the window has passed the key is free"
    );
}

pub async fn a_released_claim_is_free_and_only_its_owner_releases_it(store: &dyn LeadStore) {
    let t0 = now();
    let key = claim_key("release");
    let first = LeadId::generate(t0);
    let second = LeadId::generate(t0);
    store
        .claim_unique(&key, &first, None, t0)
        .await
        .expect("claim");
    store.release_unique(&key, &second).await.expect("release");
    assert_eq!(
        store.unique_holder(&key, t0).await.expect("read"),
        Some(first.clone()),
        "another lead cannot release it"
    );
    store.release_unique(&key, &first).await.expect("release");
    assert_eq!(store.unique_holder(&key, t0).await.expect("read"), None);
    store
        .release_unique(&key, &first)
        .await
        .expect("releasing a free key is a no-op");
    assert_eq!(
        store
            .claim_unique(&key, &second, None, t0)
            .await
            .expect("claim"),
        ClaimOutcome::Claimed
    );
}

pub async fn racing_owners_claim_once(store: &dyn LeadStore) {
    let t0 = now();
    let key = claim_key("race");
    let owners: Vec<LeadId> = (0..20).map(|_| LeadId::generate(t0)).collect();
    let outcomes = join_all(owners.iter().map(|owner| {
        let key = key.clone();
        async move {
            store
                .claim_unique(&key, owner, Some(t0 + Duration::days(1)), t0)
                .await
                .expect("claim")
        }
    }))
    .await;
    let winners: Vec<&LeadId> = outcomes
        .iter()
        .zip(&owners)
        .filter(|(outcome, _)| **outcome == ClaimOutcome::Claimed)
        .map(|(_, owner)| owner)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one owner claims the key");
    for outcome in &outcomes {
        assert!(
            *outcome == ClaimOutcome::Claimed
                || *outcome == ClaimOutcome::HeldBy(winners[0].clone()),
            "every loser is told who holds it"
        );
    }
}

// ---------------------------------------------------------------------------------------------------------
// Discarding and configuration.

pub async fn discard_lead_removes_a_received_lead_and_its_idempotency_record(
    store: &dyn LeadStore,
) {
    let t0 = now();
    let lead = received_lead("partner-1", t0);
    let record = idempotency(&lead, "discard-me", "hash-1", t0);
    assert_eq!(
        store
            .create_lead(&lead, Some(&record))
            .await
            .expect("create_lead"),
        CreateOutcome::Created
    );
    store
        .discard_lead(&lead.id, Some(("partner-1", "discard-me")))
        .await
        .expect("discard_lead");
    assert_eq!(store.get_lead(&lead.id).await.expect("get_lead"), None);

    // Discarding again, or an unknown lead, is not an error.
    store
        .discard_lead(&lead.id, Some(("partner-1", "discard-me")))
        .await
        .expect("discard_lead again");
    store
        .discard_lead(&LeadId::generate(t0), None)
        .await
        .expect("discard_lead of an unknown lead");

    // The partner's retry starts afresh: the key is free, the id too.
    let retry = received_lead("partner-1", t0);
    let retry_record = idempotency(&retry, "discard-me", "hash-1", t0);
    assert_eq!(
        store
            .create_lead(&retry, Some(&retry_record))
            .await
            .expect("create_lead"),
        CreateOutcome::Created
    );
    create(store, &lead).await;
}

pub async fn discard_lead_leaves_a_lead_past_received_alone(store: &dyn LeadStore) {
    let t0 = now();
    let mut model = received_lead("partner-1", t0);
    let record = idempotency(&model, "keep-me", "hash-1", t0);
    assert_eq!(
        store
            .create_lead(&model, Some(&record))
            .await
            .expect("create_lead"),
        CreateOutcome::Created
    );
    let routing = LeadUpdate::new(t0 + Duration::seconds(1)).status(LeadStatus::Routing);
    assert!(update(store, &mut model, routing).await);
    store
        .discard_lead(&model.id, Some(("partner-1", "keep-me")))
        .await
        .expect("discard_lead");
    assert_eq!(
        store.get_lead(&model.id).await.expect("get_lead"),
        Some(model.clone())
    );
    // Its idempotency record stays too: a retry gets the first answer, not a second lead.
    let retry = received_lead("partner-1", t0);
    assert_eq!(
        store
            .create_lead(&retry, Some(&idempotency(&retry, "keep-me", "hash-1", t0)))
            .await
            .expect("create_lead"),
        CreateOutcome::IdempotencyKeyUsed(record)
    );
    assert_eq!(store.get_lead(&retry.id).await.expect("get_lead"), None);
}

pub async fn config_document_round_trips(store: &dyn LeadStore) {
    assert_eq!(
        store
            .get_config_document()
            .await
            .expect("get_config_document"),
        None
    );
    let first = "# leadhub\n[partners.acme]\nname = \"Acme — ü\"\n";
    store
        .put_config_document(first)
        .await
        .expect("put_config_document");
    assert_eq!(
        store
            .get_config_document()
            .await
            .expect("get_config_document")
            .as_deref(),
        Some(first)
    );
    let second = "[partners]\n";
    store
        .put_config_document(second)
        .await
        .expect("put_config_document");
    assert_eq!(
        store
            .get_config_document()
            .await
            .expect("get_config_document")
            .as_deref(),
        Some(second)
    );
}
