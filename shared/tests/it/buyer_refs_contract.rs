//! The `BuyerRefs` contract: a buyer's reference maps back to the leads it was given for, newest first,
//! per destination, idempotently, and not past the leads' expiry, the same on every adapter.

use chrono::{DateTime, Duration, Utc};
use leadhub::lead::LeadId;
use leadhub::store::{BuyerRef, BuyerRefs};

store_contract!(
    a_reference_maps_back_to_its_lead,
    references_are_per_destination_and_exact,
    one_reference_of_several_leads_answers_them_newest_first,
    recording_again_is_idempotent,
    expired_entries_are_not_returned,
    references_with_odd_characters,
);

fn now() -> DateTime<Utc> {
    leadhub::lead::now()
}

fn entry(destination: &str, buyer_ref: &str, lead_id: &LeadId) -> BuyerRef {
    BuyerRef {
        destination: destination.to_owned(),
        buyer_ref: buyer_ref.to_owned(),
        lead_id: lead_id.clone(),
        expires_at: Some(now() + Duration::days(90)),
    }
}

async fn record(store: &dyn BuyerRefs, entry: &BuyerRef) {
    store.record_buyer_ref(entry).await.expect("record");
}

async fn leads(store: &dyn BuyerRefs, destination: &str, buyer_ref: &str) -> Vec<LeadId> {
    store
        .leads_for_buyer_ref(destination, buyer_ref, 10)
        .await
        .expect("look up")
}

pub async fn a_reference_maps_back_to_its_lead(store: &dyn BuyerRefs) {
    let lead = LeadId::generate(now());
    assert!(leads(store, "lofty", "4711").await.is_empty());
    record(store, &entry("lofty", "4711", &lead)).await;
    assert_eq!(leads(store, "lofty", "4711").await, vec![lead]);
}

pub async fn references_are_per_destination_and_exact(store: &dyn BuyerRefs) {
    let lead = LeadId::generate(now());
    record(store, &entry("lofty", "4711", &lead)).await;
    assert!(leads(store, "lofty-west", "4711").await.is_empty());
    assert!(leads(store, "lofty", "471").await.is_empty());
    assert!(leads(store, "lofty", "47111").await.is_empty());
    assert!(leads(store, "loft", "y#4711").await.is_empty());
}

pub async fn one_reference_of_several_leads_answers_them_newest_first(store: &dyn BuyerRefs) {
    let start = now() - Duration::hours(1);
    let ids: Vec<LeadId> = (0..4)
        .map(|i| LeadId::generate(start + Duration::seconds(i)))
        .collect();
    for id in [&ids[2], &ids[0], &ids[3], &ids[1]] {
        record(store, &entry("lofty", "9001", id)).await;
    }
    let newest_first: Vec<LeadId> = ids.iter().rev().cloned().collect();
    assert_eq!(leads(store, "lofty", "9001").await, newest_first);
    assert_eq!(
        store
            .leads_for_buyer_ref("lofty", "9001", 2)
            .await
            .expect("look up"),
        newest_first[..2].to_vec(),
        "at most the limit, the newest"
    );
}

pub async fn recording_again_is_idempotent(store: &dyn BuyerRefs) {
    let lead = LeadId::generate(now());
    let first = entry("lofty", "77", &lead);
    record(store, &first).await;
    record(store, &first).await;
    let mut longer = first.clone();
    longer.expires_at = Some(now() + Duration::days(120));
    record(store, &longer).await;
    assert_eq!(leads(store, "lofty", "77").await, vec![lead]);
}

pub async fn expired_entries_are_not_returned(store: &dyn BuyerRefs) {
    let old = LeadId::generate(now() - Duration::days(100));
    let mut expired = entry("lofty", "5", &old);
    expired.expires_at = Some(now() - Duration::minutes(1));
    record(store, &expired).await;
    let forever_lead = LeadId::generate(now() - Duration::days(99));
    let mut forever = entry("lofty", "5", &forever_lead);
    forever.expires_at = None;
    record(store, &forever).await;
    assert_eq!(leads(store, "lofty", "5").await, vec![forever_lead]);
}

pub async fn references_with_odd_characters(store: &dyn BuyerRefs) {
    let lead = LeadId::generate(now());
    for odd in ["a#b", "ü 日本 #", "x".repeat(256).as_str(), "  spaced  "] {
        record(store, &entry("dest_1-x", odd, &lead)).await;
        assert_eq!(
            leads(store, "dest_1-x", odd).await,
            vec![lead.clone()],
            "{odd}"
        );
    }
    assert!(leads(store, "dest_1-x", "a").await.is_empty());
}
