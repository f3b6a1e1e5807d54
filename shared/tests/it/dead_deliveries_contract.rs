//! The `DeadDeliveries` contract: markers of dead deliveries are recorded idempotently, listed newest first
//! since a time, and removed by a replay, the same on every adapter.
//!
//! Each check is written once, as an async function of `&dyn DeadDeliveries`; `dead_deliveries_contract!`
//! runs it against the memory store and (ignored unless moto is up) against DynamoDB, each test on a fresh
//! store.

use chrono::{DateTime, Duration, Utc};
use leadhub::lead::LeadId;
use leadhub::store::{DeadDeliveries, DeadDelivery};

store_contract!(
    recorded_markers_are_listed_newest_first_since_a_time,
    recording_again_is_idempotent_and_a_later_death_wins,
    remove_takes_the_replayed_death_and_keeps_a_later_one,
    list_stops_at_the_limit,
    expired_markers_are_not_listed,
    ties_in_time_order_by_lead_then_destination,
    destinations_with_odd_characters,
);

// ---------------------------------------------------------------------------------------------------------
// Helpers.

/// Now, to the millisecond (what the stores keep).
fn now() -> DateTime<Utc> {
    leadhub::lead::now()
}

fn dead(lead_id: &LeadId, destination: &str, died_at: DateTime<Utc>) -> DeadDelivery {
    DeadDelivery {
        lead_id: lead_id.clone(),
        destination: destination.to_owned(),
        died_at,
        attempts: 2,
        code: "http_500".to_owned(),
        reason: "gave up after 2 attempts: the buyer answered HTTP 500".to_owned(),
        expires_at: Some(now() + Duration::days(90)),
    }
}

fn lead(created: DateTime<Utc>) -> LeadId {
    LeadId::generate(created)
}

async fn record(store: &dyn DeadDeliveries, marker: &DeadDelivery) {
    store.record(marker).await.expect("record");
}

async fn list(store: &dyn DeadDeliveries, since: DateTime<Utc>) -> Vec<DeadDelivery> {
    store.list(since, 100).await.expect("list")
}

fn ids(listed: &[DeadDelivery]) -> Vec<(String, String)> {
    listed
        .iter()
        .map(|dead| (dead.lead_id.to_string(), dead.destination.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------------------------------
// Checks.

pub async fn recorded_markers_are_listed_newest_first_since_a_time(store: &dyn DeadDeliveries) {
    let now = now();
    assert!(list(store, now - Duration::days(30)).await.is_empty());
    let old = dead(&lead(now), "sonar", now - Duration::days(3));
    let recent = dead(&lead(now), "sonar", now - Duration::days(1));
    let newest = dead(&lead(now), "ntherm", now);
    for marker in [&recent, &old, &newest] {
        record(store, marker).await;
    }
    assert_eq!(
        list(store, now - Duration::days(7)).await,
        [newest.clone(), recent.clone(), old.clone()],
        "every fact read back, newest first"
    );
    assert_eq!(
        list(store, now - Duration::days(2)).await,
        [newest.clone(), recent.clone()]
    );
    // `since` is inclusive, to the millisecond.
    assert_eq!(list(store, recent.died_at).await, [newest.clone(), recent]);
    assert_eq!(list(store, now).await, [newest]);
    assert!(list(store, now + Duration::milliseconds(1))
        .await
        .is_empty());
}

pub async fn recording_again_is_idempotent_and_a_later_death_wins(store: &dyn DeadDeliveries) {
    let now = now();
    let id = lead(now);
    let first = dead(&id, "sonar", now - Duration::hours(2));
    record(store, &first).await;
    record(store, &first).await;
    assert_eq!(
        list(store, now - Duration::days(1)).await,
        std::slice::from_ref(&first)
    );

    // Replayed and dead again: one marker, of the later death.
    let again = DeadDelivery {
        attempts: 1,
        code: "http_401".to_owned(),
        reason: "the buyer refused the credentials".to_owned(),
        ..dead(&id, "sonar", now - Duration::hours(1))
    };
    record(store, &again).await;
    assert_eq!(
        list(store, now - Duration::days(1)).await,
        std::slice::from_ref(&again)
    );

    // A stale job re-recording the earlier death does not hide the later one.
    record(store, &first).await;
    assert_eq!(list(store, now - Duration::days(1)).await, [again]);
}

pub async fn remove_takes_the_replayed_death_and_keeps_a_later_one(store: &dyn DeadDeliveries) {
    let now = now();
    let since = now - Duration::days(1);
    let id = lead(now);
    let other = dead(&lead(now), "sonar", now - Duration::minutes(5));
    record(store, &other).await;

    // Nothing to remove: a no-op.
    store
        .remove(&id, "sonar", now)
        .await
        .expect("remove what is not there");

    let died = dead(&id, "sonar", now - Duration::minutes(10));
    record(store, &died).await;
    store
        .remove(&id, "sonar", died.died_at)
        .await
        .expect("remove");
    assert_eq!(
        list(store, since).await,
        std::slice::from_ref(&other),
        "only that marker"
    );

    // The replayed delivery died again before the replay's removal ran: the later death stays.
    let later = dead(&id, "sonar", now);
    record(store, &later).await;
    store
        .remove(&id, "sonar", died.died_at)
        .await
        .expect("remove");
    assert_eq!(list(store, since).await, [later.clone(), other.clone()]);
    store
        .remove(&id, "sonar", later.died_at)
        .await
        .expect("remove");
    // Another destination of the same lead is another marker.
    let sibling = dead(&id, "sonar-west", now);
    record(store, &sibling).await;
    store
        .remove(&id, "sonar", now)
        .await
        .expect("remove again: a no-op");
    assert_eq!(list(store, since).await, [sibling, other]);
}

pub async fn list_stops_at_the_limit(store: &dyn DeadDeliveries) {
    let now = now();
    let mut markers = Vec::new();
    for n in 0..12 {
        let marker = dead(&lead(now), "sonar", now - Duration::seconds(n));
        record(store, &marker).await;
        markers.push(marker);
    }
    let since = now - Duration::hours(1);
    assert_eq!(store.list(since, 5).await.expect("list"), markers[..5]);
    assert_eq!(store.list(since, 12).await.expect("list"), markers);
    assert_eq!(store.list(since, 100).await.expect("list"), markers);
    assert!(store.list(since, 0).await.expect("list").is_empty());
}

pub async fn expired_markers_are_not_listed(store: &dyn DeadDeliveries) {
    let now = now();
    // The newest three have expired (TTL had not removed them yet); a limit of 2 must look past them.
    for n in 0..3 {
        let expired = DeadDelivery {
            expires_at: Some(now - Duration::seconds(1)),
            ..dead(&lead(now), "sonar", now - Duration::seconds(n))
        };
        record(store, &expired).await;
    }
    let live = dead(&lead(now), "sonar", now - Duration::minutes(1));
    let forever = DeadDelivery {
        expires_at: None,
        ..dead(&lead(now), "sonar", now - Duration::minutes(2))
    };
    let older = dead(&lead(now), "sonar", now - Duration::minutes(3));
    for marker in [&live, &forever, &older] {
        record(store, marker).await;
    }
    let since = now - Duration::days(1);
    assert_eq!(
        store.list(since, 2).await.expect("list"),
        [live.clone(), forever.clone()]
    );
    assert_eq!(list(store, since).await, [live, forever, older]);
}

pub async fn ties_in_time_order_by_lead_then_destination(store: &dyn DeadDeliveries) {
    let now = now();
    // Lead ids sort by creation time.
    let (earlier, later) = (lead(now - Duration::days(1)), lead(now));
    for (id, destination) in [
        (&earlier, "b"),
        (&later, "a"),
        (&earlier, "a"),
        (&later, "b"),
    ] {
        record(store, &dead(id, destination, now)).await;
    }
    assert_eq!(
        ids(&list(store, now).await),
        [
            (later.to_string(), "b".to_owned()),
            (later.to_string(), "a".to_owned()),
            (earlier.to_string(), "b".to_owned()),
            (earlier.to_string(), "a".to_owned()),
        ]
    );
}

pub async fn destinations_with_odd_characters(store: &dyn DeadDeliveries) {
    let now = now();
    let id = lead(now);
    let odd = ["dest #1", "a.b#c", "ünï cödé", "x"];
    for destination in odd {
        record(store, &dead(&id, destination, now)).await;
    }
    let mut listed: Vec<String> = list(store, now)
        .await
        .into_iter()
        .map(|dead| dead.destination)
        .collect();
    listed.sort();
    let mut expected: Vec<String> = odd.iter().map(|d| (*d).to_owned()).collect();
    expected.sort();
    assert_eq!(listed, expected);
    store
        .remove(&id, "a.b#c", now)
        .await
        .expect("remove one of them");
    assert_eq!(list(store, now).await.len(), odd.len() - 1);
}
