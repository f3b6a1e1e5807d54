//! The memory store drops what expired (as DynamoDB's TTL does), not only hides it; `with_lead_ttl` bounds
//! every item kept for a lead. The store's clock is a test clock: nothing here waits.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::json;

use super::{MemoryCounts, MemoryStore, SWEEP_EVERY};
use crate::connectors::leadsafe::{LeadSafeRecord, Reason};
use crate::crypto::SsnSealer;
use crate::lead::{LeadId, LeadRecord, LeadStatus};
use crate::leadsafe_reports::{LeadSafeReport, ReportSource};
use crate::notifications::{NotifyJob, Payload, PayloadData};
use crate::store::{
    BuyerRef, BuyerRefs, ClaimOutcome, Counters, CreateOutcome, DeadDeliveries, DeadDelivery,
    DeliveryTallies, FailedNotification, IdempotencyRecord, LeadSafeReports, LeadStore,
    NotificationLog, Reservation, SealedSsns, Tally, UnparsedCallback, UnparsedCallbacks,
};
use crate::verticals::Vertical;

/// A clock the test moves, in epoch milliseconds.
#[derive(Clone)]
struct TestClock(Arc<AtomicI64>);

impl TestClock {
    fn at(start: DateTime<Utc>) -> Self {
        TestClock(Arc::new(AtomicI64::new(start.timestamp_millis())))
    }

    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0.load(Ordering::SeqCst)).expect("a time")
    }

    fn set(&self, at: DateTime<Utc>) {
        self.0.store(at.timestamp_millis(), Ordering::SeqCst);
    }

    fn store(&self) -> MemoryStore {
        let clock = self.clone();
        MemoryStore::new().with_clock(Arc::new(move || clock.now()))
    }
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_790_000_000_000).expect("a time")
}

fn sealer() -> SsnSealer {
    SsnSealer::new("memory-test-ssn-key-0123456789abcdef0123").expect("long enough")
}

/// Everything one lead brings along, each item expiring at `expires_at`: the lead, an idempotency record,
/// a duplicate claim, its sealed SSN, a dead-delivery marker, a buyer reference, a failed notification, an
/// unparsed callback and a LeadSafe report. The lead's id.
async fn lead_with_everything(
    store: &MemoryStore,
    name: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> LeadId {
    let id = LeadId::generate(now);
    let lead = LeadRecord::received(
        id.clone(),
        "partner-1",
        Vertical::Heloc,
        json!({"email": format!("{name}@example.com")}),
        now,
        Some(expires_at),
    );
    let idempotency = IdempotencyRecord {
        partner_id: "partner-1".into(),
        key: format!("key-{name}"),
        request_hash: "hash".into(),
        lead_id: id.clone(),
        created_at: now,
        in_flight_until: now + Duration::seconds(10),
        expires_at,
    };
    assert_eq!(
        store
            .create_lead(&lead, Some(&idempotency))
            .await
            .expect("create"),
        CreateOutcome::Created
    );
    assert_eq!(
        store
            .claim_unique(&format!("DEDUPE#{name}"), &id, Some(expires_at), now)
            .await
            .expect("claim"),
        ClaimOutcome::Claimed
    );
    store
        .put_sealed_ssn(&id, &sealer().seal(id.as_str(), "123456789"), expires_at)
        .await
        .expect("seal");
    store
        .record(&DeadDelivery {
            lead_id: id.clone(),
            destination: "buyer-a".into(),
            died_at: now,
            attempts: 5,
            code: "http_500".into(),
            reason: "the buyer answered HTTP 500".into(),
            expires_at: Some(expires_at),
        })
        .await
        .expect("dead");
    store
        .record_buyer_ref(&BuyerRef {
            destination: "buyer-a".into(),
            buyer_ref: format!("ref-{name}"),
            lead_id: id.clone(),
            expires_at: Some(expires_at),
        })
        .await
        .expect("buyer ref");
    store
        .record_failed(&failed_notification(&id, now, expires_at))
        .await
        .expect("failed notification");
    let mut unparsed = UnparsedCallback::new(
        "buyer-a",
        Some(id.clone()),
        None,
        b"<xml/>",
        "not_json",
        now,
    );
    unparsed.expires_at = expires_at;
    store.put_unparsed(&unparsed).await.expect("unparsed");
    let record = LeadSafeRecord::new(
        "123456789",
        Reason::Default,
        NaiveDate::from_ymd_opt(2026, 11, 1).expect("a date"),
        None,
    )
    .expect("a record");
    let retention = (expires_at - now).to_std().expect("a later expiry");
    let report = LeadSafeReport::new(&sealer(), &record, ReportSource::Operator, now, retention)
        .expect("a report");
    store.put_report(&report).await.expect("report");
    id
}

fn failed_notification(
    lead_id: &LeadId,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> FailedNotification {
    FailedNotification {
        job: NotifyJob {
            webhook_id: format!("msg_{lead_id}_2_0"),
            partner_id: "partner-1".into(),
            url: None,
            payload: Payload {
                event: "lead.unsold".into(),
                timestamp: now,
                data: PayloadData {
                    lead_id: lead_id.clone(),
                    vertical: Vertical::Heloc,
                    status: LeadStatus::Unsold,
                    reason: None,
                    affiliate_id: None,
                    status_url: format!("/v1/leads/{lead_id}"),
                },
            },
            attempt: 8,
            not_before: None,
        },
        code: "exhausted".into(),
        reason: "gave up after 8 attempts".into(),
        failed_at: now,
        expires_at,
    }
}

/// The counts of `n` leads with everything, besides what else the test keeps.
fn per_lead(n: usize) -> MemoryCounts {
    MemoryCounts {
        leads: n,
        idempotency_records: n,
        claims: n,
        dead_deliveries: n,
        sealed_ssns: n,
        leadsafe_reports: n,
        failed_notifications: n,
        buyer_refs: n,
        unparsed_callbacks: n,
        expiring: 9 * n,
        ..MemoryCounts::default()
    }
}

#[tokio::test]
async fn an_expired_lead_and_what_it_brought_are_dropped_while_unexpired_ones_stay() {
    let clock = TestClock::at(t0());
    let store = clock.store();
    let soon = lead_with_everything(&store, "soon", t0(), t0() + Duration::hours(1)).await;
    let later = lead_with_everything(&store, "later", t0(), t0() + Duration::hours(3)).await;
    // Kept for ever, on DynamoDB as here: a claim without expiry, the configuration.
    let forever = LeadId::generate(t0());
    store
        .claim_unique("DEDUPE#forever", &forever, None, t0())
        .await
        .expect("claim");
    store.put_config_document("[hub]").await.expect("config");
    let mut both = per_lead(2);
    both.claims += 1;
    assert_eq!(store.item_counts(), both);

    // Not yet expired: a sweep drops nothing.
    clock.set(t0() + Duration::minutes(59));
    assert_eq!(store.sweep_expired(), 0);
    assert_eq!(store.item_counts(), both);

    clock.set(t0() + Duration::hours(2));
    assert_eq!(store.sweep_expired(), 9, "the first lead's nine items");
    let mut one = per_lead(1);
    one.claims += 1;
    assert_eq!(store.item_counts(), one);
    assert_eq!(store.get_lead(&soon).await.expect("get"), None);
    assert!(store.get_lead(&later).await.expect("get").is_some());
    let now = clock.now();
    assert_eq!(
        store.get_sealed_ssn(&soon, t0()).await.expect("read"),
        None,
        "gone, not hidden: even read as of before its expiry"
    );
    assert!(store
        .get_sealed_ssn(&later, now)
        .await
        .expect("read")
        .is_some());
    assert_eq!(
        store
            .leads_for_buyer_ref("buyer-a", "ref-soon", 10)
            .await
            .expect("refs"),
        Vec::<LeadId>::new()
    );
    assert_eq!(
        store
            .leads_for_buyer_ref("buyer-a", "ref-later", 10)
            .await
            .expect("refs"),
        vec![later.clone()]
    );
    assert_eq!(
        store
            .unique_holder("DEDUPE#forever", now)
            .await
            .expect("holder"),
        Some(forever)
    );
    assert_eq!(
        store
            .get_config_document()
            .await
            .expect("config")
            .as_deref(),
        Some("[hub]")
    );

    clock.set(t0() + Duration::hours(3));
    assert_eq!(
        store.sweep_expired(),
        9,
        "expired at its expiry, as reads say"
    );
    let none = MemoryCounts {
        claims: 1,
        ..MemoryCounts::default()
    };
    assert_eq!(store.item_counts(), none);
}

#[tokio::test]
async fn writes_sweep_without_being_asked() {
    let clock = TestClock::at(t0());
    let store = clock.store();
    let old = lead_with_everything(&store, "old", t0(), t0() + Duration::hours(1)).await;
    clock.set(t0() + Duration::hours(2));
    // Writes of something that does not expire (the sequence) count towards the next sweep.
    for _ in 0..SWEEP_EVERY {
        store.next_sequence("SEQ#heloc").await.expect("sequence");
    }
    let fresh = lead_with_everything(&store, "fresh", clock.now(), t0() + Duration::hours(5)).await;
    let mut counts = per_lead(1);
    counts.sequences = 1;
    assert_eq!(store.item_counts(), counts);
    assert_eq!(store.get_lead(&old).await.expect("get"), None);
    assert!(store.get_lead(&fresh).await.expect("get").is_some());
}

#[tokio::test]
async fn the_lead_ttl_bounds_every_item_kept_for_a_lead_but_not_caps_or_tallies() {
    let clock = TestClock::at(t0());
    let store = clock
        .store()
        .with_lead_ttl(std::time::Duration::from_secs(600));
    // Kept for 180 days as configured, and a duplicate claim for ever: each is kept ten minutes.
    let id = lead_with_everything(&store, "a", t0(), t0() + Duration::days(180)).await;
    store
        .claim_unique("DEDUPE#forever", &id, None, t0())
        .await
        .expect("claim");
    let lead = store.get_lead(&id).await.expect("get").expect("kept");
    assert_eq!(lead.expires_at, Some(t0() + Duration::minutes(10)));
    // A cap counter keeps its window, a tally its day.
    assert_eq!(
        store
            .reserve("CAP#buyer-a#day", id.as_str(), 5, t0() + Duration::days(1))
            .await
            .expect("reserve"),
        Reservation::Reserved
    );
    store
        .add_tally("buyer-a", t0().date_naive(), Tally::Accepted)
        .await
        .expect("tally");
    let mut counts = per_lead(1);
    counts.claims += 1;
    counts.expiring += 3;
    counts.counters = 1;
    counts.tallies = 1;
    assert_eq!(store.item_counts(), counts);

    clock.set(t0() + Duration::minutes(9));
    assert_eq!(store.sweep_expired(), 0);
    clock.set(t0() + Duration::minutes(10));
    assert_eq!(store.sweep_expired(), 10);
    assert_eq!(
        store.item_counts(),
        MemoryCounts {
            counters: 1,
            tallies: 1,
            expiring: 2,
            ..MemoryCounts::default()
        }
    );
    assert_eq!(
        store
            .counts(&["CAP#buyer-a#day".to_owned()])
            .await
            .expect("counts")
            .get("CAP#buyer-a#day"),
        Some(&1),
        "the cap still counts the lead"
    );
}

#[tokio::test]
async fn a_restarted_counter_and_a_replaced_item_expire_at_their_new_time() {
    let clock = TestClock::at(t0());
    let store = clock.store();
    store
        .reserve("CAP#b#hour", "lead-1", 1, t0() + Duration::hours(1))
        .await
        .expect("reserve");
    clock.set(t0() + Duration::hours(2));
    // The expired counter starts afresh with the new window.
    assert_eq!(
        store
            .reserve("CAP#b#hour", "lead-2", 1, t0() + Duration::hours(3))
            .await
            .expect("reserve"),
        Reservation::Reserved
    );
    let id = LeadId::generate(t0());
    let sealed = sealer().seal(id.as_str(), "123456789");
    store
        .put_sealed_ssn(&id, &sealed, t0() + Duration::hours(1))
        .await
        .expect("seal");
    store
        .put_sealed_ssn(&id, &sealed, t0() + Duration::hours(4))
        .await
        .expect("seal again");
    assert_eq!(store.sweep_expired(), 0);
    assert_eq!(store.item_counts().counters, 1);
    assert_eq!(store.item_counts().sealed_ssns, 1);
    assert_eq!(store.item_counts().expiring, 2);
    clock.set(t0() + Duration::hours(3));
    assert_eq!(store.sweep_expired(), 1);
    clock.set(t0() + Duration::hours(4));
    assert_eq!(store.sweep_expired(), 1);
    assert_eq!(store.item_counts(), MemoryCounts::default());
}

#[tokio::test]
async fn removals_leave_nothing_in_the_expiry_indexes() {
    let clock = TestClock::at(t0());
    let store = clock.store();
    let expires_at = t0() + Duration::hours(1);
    let id = lead_with_everything(&store, "gone", t0(), expires_at).await;
    // What the handlers remove before it expires: the lead discarded with its idempotency record, the
    // claim released, the sealed SSN deleted, the marker removed, the failed notification replayed.
    store
        .discard_lead(&id, Some(("partner-1", "key-gone")))
        .await
        .expect("discard");
    store
        .release_unique("DEDUPE#gone", &id)
        .await
        .expect("release");
    store.delete_sealed_ssn(&id).await.expect("delete");
    store
        .remove(&id, "buyer-a", t0())
        .await
        .expect("remove marker");
    store
        .remove_failed(&format!("msg_{id}_2_0"))
        .await
        .expect("remove failed");
    let counts = store.item_counts();
    assert_eq!(
        (counts.leads, counts.idempotency_records, counts.claims),
        (0, 0, 0)
    );
    assert_eq!(
        (
            counts.sealed_ssns,
            counts.dead_deliveries,
            counts.failed_notifications
        ),
        (0, 0, 0)
    );
    // What is left (buyer reference, unparsed callback, report) is indexed once each.
    assert_eq!(counts.expiring, 3);
    assert_eq!(counts.total(), 6);
}

#[tokio::test]
async fn tallies_go_after_their_retention() {
    let clock = TestClock::at(t0());
    let store = clock.store();
    let today = t0().date_naive();
    let long_ago = today - Duration::days(500);
    for day in [today, long_ago] {
        store
            .add_tally("buyer-a", day, Tally::Accepted)
            .await
            .expect("tally");
    }
    assert_eq!(store.sweep_expired(), 1);
    let left = store.tallies_since(long_ago, None).await.expect("tallies");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].day, today);
}
