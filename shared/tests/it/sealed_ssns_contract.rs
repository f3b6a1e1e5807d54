//! The `SealedSsns` contract: a lead's sealed SSN is kept until it expires, read back as it was put, and
//! deleted idempotently, each lead's on its own, the same on every adapter.
//!
//! Each check is written once, as an async function of `&dyn SealedSsns`; `store_contract!` runs it against
//! the memory store and (ignored unless moto is up) against DynamoDB, each test on a fresh store.

use chrono::{DateTime, Duration, Utc};
use leadhub::crypto::{SealedSsn, SsnSealer};
use leadhub::lead::LeadId;
use leadhub::store::SealedSsns;

store_contract!(
    a_put_sealed_ssn_reads_back_and_opens,
    an_expired_sealed_ssn_reads_as_none,
    delete_is_idempotent,
    leads_are_independent,
    putting_again_replaces,
);

// ---------------------------------------------------------------------------------------------------------
// Helpers.

/// Now, to the millisecond (what the stores keep).
fn now() -> DateTime<Utc> {
    leadhub::lead::now()
}

fn sealer() -> SsnSealer {
    SsnSealer::new("contract-ssn-key-0123456789abcdef0123").expect("long enough")
}

fn seal(lead: &LeadId, ssn: &str) -> SealedSsn {
    sealer().seal(lead.as_str(), ssn)
}

async fn get(store: &dyn SealedSsns, lead: &LeadId, now: DateTime<Utc>) -> Option<SealedSsn> {
    store.get_sealed_ssn(lead, now).await.expect("get")
}

// ---------------------------------------------------------------------------------------------------------
// Checks.

pub async fn a_put_sealed_ssn_reads_back_and_opens(store: &dyn SealedSsns) {
    let now = now();
    let lead = LeadId::generate(now);
    assert_eq!(get(store, &lead, now).await, None, "nothing before a put");
    let sealed = seal(&lead, "219099999");
    store
        .put_sealed_ssn(&lead, &sealed, now + Duration::hours(24))
        .await
        .expect("put");
    let read = get(store, &lead, now).await.expect("kept");
    assert_eq!(read, sealed, "read back as put");
    let ssn = sealer().open(lead.as_str(), &read).expect("opens");
    assert_eq!(ssn.expose(), "219099999");
}

pub async fn an_expired_sealed_ssn_reads_as_none(store: &dyn SealedSsns) {
    let now = now();
    let lead = LeadId::generate(now);
    let expires_at = now + Duration::hours(1);
    store
        .put_sealed_ssn(&lead, &seal(&lead, "219099999"), expires_at)
        .await
        .expect("put");
    assert!(get(store, &lead, expires_at - Duration::milliseconds(1))
        .await
        .is_some());
    assert_eq!(
        get(store, &lead, expires_at).await,
        None,
        "expired at its expiry"
    );
    assert_eq!(
        get(store, &lead, expires_at + Duration::days(1)).await,
        None
    );

    let gone = LeadId::generate(now);
    store
        .put_sealed_ssn(&gone, &seal(&gone, "219099999"), now - Duration::minutes(1))
        .await
        .expect("put an already expired one");
    assert_eq!(get(store, &gone, now).await, None);
}

pub async fn delete_is_idempotent(store: &dyn SealedSsns) {
    let now = now();
    let lead = LeadId::generate(now);
    store
        .delete_sealed_ssn(&lead)
        .await
        .expect("deleting what was never there");
    store
        .put_sealed_ssn(&lead, &seal(&lead, "219099999"), now + Duration::hours(24))
        .await
        .expect("put");
    store.delete_sealed_ssn(&lead).await.expect("delete");
    assert_eq!(get(store, &lead, now).await, None);
    store.delete_sealed_ssn(&lead).await.expect("delete again");
    assert_eq!(get(store, &lead, now).await, None);
}

pub async fn leads_are_independent(store: &dyn SealedSsns) {
    let now = now();
    let first = LeadId::generate(now);
    let second = LeadId::generate(now);
    let first_sealed = seal(&first, "219099999");
    let second_sealed = seal(&second, "123456789");
    for (lead, sealed) in [(&first, &first_sealed), (&second, &second_sealed)] {
        store
            .put_sealed_ssn(lead, sealed, now + Duration::hours(24))
            .await
            .expect("put");
    }
    assert_eq!(get(store, &first, now).await.as_ref(), Some(&first_sealed));
    assert_eq!(
        get(store, &second, now).await.as_ref(),
        Some(&second_sealed)
    );
    store.delete_sealed_ssn(&first).await.expect("delete");
    assert_eq!(get(store, &first, now).await, None);
    let kept = get(store, &second, now)
        .await
        .expect("the other lead's stays");
    assert_eq!(
        sealer()
            .open(second.as_str(), &kept)
            .expect("opens")
            .expose(),
        "123456789"
    );
}

pub async fn putting_again_replaces(store: &dyn SealedSsns) {
    let now = now();
    let lead = LeadId::generate(now);
    store
        .put_sealed_ssn(&lead, &seal(&lead, "219099999"), now + Duration::minutes(5))
        .await
        .expect("put");
    let again = seal(&lead, "123456789");
    store
        .put_sealed_ssn(&lead, &again, now + Duration::hours(24))
        .await
        .expect("put again");
    let read = get(store, &lead, now + Duration::hours(1))
        .await
        .expect("the later expiry holds");
    assert_eq!(read, again);
}
