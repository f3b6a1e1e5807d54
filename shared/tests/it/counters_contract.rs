//! The `Counters` contract: cap counters (reserve, release, counts, expiry) and sequences behave the same on
//! every adapter, and stay exact under racing callers.
//!
//! Each check is written once, as an async function of `&dyn Counters`; `counters_contract!` runs it against
//! the memory store and (ignored unless moto is up) against DynamoDB, each test on a fresh store. Keys are
//! random per test as well, so a check may use several without clashing.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use futures::future::join_all;
use leadhub::store::{cap_key, sequence_key, Counters, Reservation};
use leadhub::verticals::Vertical;

store_contract!(
    reserve_admits_up_to_the_limit_then_is_full,
    reserve_is_idempotent_per_holder,
    release_frees_a_place_and_is_a_no_op_for_a_non_holder,
    counts_of_several_keys_missing_is_zero,
    counts_of_more_keys_than_one_batch,
    expired_counter_counts_zero_and_is_reserved_afresh,
    limit_zero_admits_no_one,
    holders_and_keys_with_odd_characters,
    next_sequence_counts_from_zero_per_key,
    racing_reserves_admit_exactly_the_limit,
    racing_sequence_calls_get_distinct_values,
);

// ---------------------------------------------------------------------------------------------------------
// Helpers.

/// A cap key of its own for this test.
fn key(window: &str) -> String {
    cap_key(&format!("dest-{:08x}", rand::random::<u32>()), window)
}

fn holder(n: usize) -> String {
    format!("lead_01JD{n:022}#sonar-east")
}

fn in_an_hour() -> DateTime<Utc> {
    Utc::now() + Duration::hours(1)
}

async fn reserve(counters: &dyn Counters, key: &str, holder: &str, limit: u64) -> Reservation {
    counters
        .reserve(key, holder, limit, in_an_hour())
        .await
        .expect("reserve")
}

async fn count(counters: &dyn Counters, key: &str) -> u64 {
    let counts = counters.counts(&[key.to_owned()]).await.expect("counts");
    assert_eq!(counts.len(), 1, "one answer per key asked for");
    counts[key]
}

// ---------------------------------------------------------------------------------------------------------
// Cap counters.

pub async fn reserve_admits_up_to_the_limit_then_is_full(counters: &dyn Counters) {
    let key = key("day:2026-12-02");
    for n in 0..3 {
        assert_eq!(
            reserve(counters, &key, &holder(n), 3).await,
            Reservation::Reserved,
            "holder {n}"
        );
        assert_eq!(count(counters, &key).await, n as u64 + 1);
    }
    assert_eq!(
        reserve(counters, &key, &holder(3), 3).await,
        Reservation::Full { used: 3 }
    );
    // A higher limit (the operator raised the cap) admits more; a lower one reports what is used.
    assert_eq!(
        reserve(counters, &key, &holder(3), 4).await,
        Reservation::Reserved
    );
    assert_eq!(
        reserve(counters, &key, &holder(4), 2).await,
        Reservation::Full { used: 4 }
    );
    assert_eq!(count(counters, &key).await, 4);
}

pub async fn reserve_is_idempotent_per_holder(counters: &dyn Counters) {
    let key = key("hour:2026-12-02T08");
    for _ in 0..3 {
        assert_eq!(
            reserve(counters, &key, &holder(1), 2).await,
            Reservation::Reserved
        );
    }
    assert_eq!(count(counters, &key).await, 1, "counted once");
    assert_eq!(
        reserve(counters, &key, &holder(2), 2).await,
        Reservation::Reserved
    );
    // Full now, but a holder reserving again (a redelivered job) is still Reserved, and counts nothing.
    assert_eq!(
        reserve(counters, &key, &holder(3), 2).await,
        Reservation::Full { used: 2 }
    );
    for n in [1, 2] {
        assert_eq!(
            reserve(counters, &key, &holder(n), 2).await,
            Reservation::Reserved
        );
    }
    assert_eq!(count(counters, &key).await, 2);
}

pub async fn release_frees_a_place_and_is_a_no_op_for_a_non_holder(counters: &dyn Counters) {
    let key = key("month:2026-12");
    counters
        .release(&key, &holder(9))
        .await
        .expect("release on a key that does not exist");
    assert_eq!(count(counters, &key).await, 0);
    for n in 0..2 {
        assert_eq!(
            reserve(counters, &key, &holder(n), 2).await,
            Reservation::Reserved
        );
    }
    counters
        .release(&key, &holder(9))
        .await
        .expect("release of a non-holder");
    assert_eq!(count(counters, &key).await, 2, "a non-holder frees nothing");
    assert_eq!(
        reserve(counters, &key, &holder(2), 2).await,
        Reservation::Full { used: 2 }
    );

    counters.release(&key, &holder(0)).await.expect("release");
    counters
        .release(&key, &holder(0))
        .await
        .expect("release again");
    assert_eq!(count(counters, &key).await, 1, "released once");
    assert_eq!(
        reserve(counters, &key, &holder(2), 2).await,
        Reservation::Reserved,
        "the freed place is taken"
    );
    assert_eq!(
        reserve(counters, &key, &holder(0), 2).await,
        Reservation::Full { used: 2 },
        "the released holder is no longer counted"
    );

    // Releasing every holder leaves an empty counter that admits again.
    for n in [1, 2] {
        counters.release(&key, &holder(n)).await.expect("release");
    }
    assert_eq!(count(counters, &key).await, 0);
    assert_eq!(
        reserve(counters, &key, &holder(0), 2).await,
        Reservation::Reserved
    );
    assert_eq!(count(counters, &key).await, 1);
}

pub async fn counts_of_several_keys_missing_is_zero(counters: &dyn Counters) {
    let (a, b, missing) = (key("day:a"), key("day:b"), key("day:missing"));
    for n in 0..3 {
        reserve(counters, &a, &holder(n), 10).await;
    }
    reserve(counters, &b, &holder(0), 10).await;
    let asked = vec![a.clone(), missing.clone(), b.clone(), a.clone()];
    let counts = counters.counts(&asked).await.expect("counts");
    assert_eq!(
        counts,
        BTreeMap::from([(a, 3), (b, 1), (missing, 0)]),
        "every key once, a repeated key too"
    );
    assert!(counters.counts(&[]).await.expect("counts").is_empty());
}

pub async fn counts_of_more_keys_than_one_batch(counters: &dyn Counters) {
    // DynamoDB's BatchGetItem takes 100 keys: the adapter splits.
    let keys: Vec<String> = (0..250).map(|n| key(&format!("day:{n}"))).collect();
    let counted: Vec<&String> = keys.iter().step_by(7).collect();
    let holder = holder(0);
    join_all(
        counted
            .iter()
            .map(|key| reserve(counters, key.as_str(), &holder, 5)),
    )
    .await;
    let counts = counters.counts(&keys).await.expect("counts");
    assert_eq!(counts.len(), keys.len());
    for key in &keys {
        let expected = u64::from(counted.contains(&key));
        assert_eq!(counts[key], expected, "{key}");
    }
}

pub async fn expired_counter_counts_zero_and_is_reserved_afresh(counters: &dyn Counters) {
    let key = key("hour:2026-12-02T09");
    let past = Utc::now() - Duration::minutes(5);
    // A counter that expired (DynamoDB's TTL may not have removed it yet).
    for n in 0..2 {
        assert_eq!(
            counters
                .reserve(&key, &holder(n), 2, past)
                .await
                .expect("reserve"),
            Reservation::Reserved
        );
    }
    assert_eq!(
        count(counters, &key).await,
        0,
        "an expired counter counts 0"
    );

    // Started afresh: the old holders count for nothing, so with a limit of 1 a new holder gets the only
    // place, and an old holder is neither Reserved (already counted) nor admitted.
    assert_eq!(
        reserve(counters, &key, &holder(5), 1).await,
        Reservation::Reserved
    );
    assert_eq!(count(counters, &key).await, 1);
    assert_eq!(
        reserve(counters, &key, &holder(1), 1).await,
        Reservation::Full { used: 1 }
    );
    // The new counter is live until its own expiry: an expiry given by a later reservation does not move it.
    assert_eq!(
        counters
            .reserve(&key, &holder(6), 2, past)
            .await
            .expect("reserve"),
        Reservation::Reserved,
        "a live counter keeps its expiry"
    );
    assert_eq!(count(counters, &key).await, 2);
}

pub async fn limit_zero_admits_no_one(counters: &dyn Counters) {
    let key = key("day:zero");
    assert_eq!(
        reserve(counters, &key, &holder(0), 0).await,
        Reservation::Full { used: 0 }
    );
    assert_eq!(count(counters, &key).await, 0);
    assert_eq!(
        reserve(counters, &key, &holder(0), 1).await,
        Reservation::Reserved
    );
    assert_eq!(
        reserve(counters, &key, &holder(0), 0).await,
        Reservation::Reserved,
        "a holder counted before is still Reserved"
    );
    assert_eq!(
        reserve(counters, &key, &holder(1), 0).await,
        Reservation::Full { used: 1 }
    );
}

pub async fn holders_and_keys_with_odd_characters(counters: &dyn Counters) {
    let key = cap_key(
        &format!("dest.with-dots #1 ü {:08x}", rand::random::<u32>()),
        "day:2026-12-02",
    );
    let long = format!("lead_01JD{}#{}", "0".repeat(22), "d".repeat(64));
    let holders = [long.as_str(), "a", "a#b", "日本語", "\"quoted\" ,; :x"];
    for holder in holders {
        assert_eq!(
            reserve(counters, &key, holder, 10).await,
            Reservation::Reserved
        );
    }
    for holder in holders {
        assert_eq!(
            reserve(counters, &key, holder, 10).await,
            Reservation::Reserved
        );
    }
    assert_eq!(count(counters, &key).await, holders.len() as u64);
    counters.release(&key, "a").await.expect("release");
    assert_eq!(count(counters, &key).await, holders.len() as u64 - 1);
    assert_eq!(
        reserve(counters, &key, "a#b", holders.len() as u64 - 1).await,
        Reservation::Reserved,
        "a prefix's release leaves the longer holder counted"
    );
}

// ---------------------------------------------------------------------------------------------------------
// Sequences.

pub async fn next_sequence_counts_from_zero_per_key(counters: &dyn Counters) {
    let suffix = format!("{:08x}", rand::random::<u32>());
    let (a, b) = (
        format!("{}-{suffix}", sequence_key(Vertical::Heloc)),
        format!("{}-{suffix}", sequence_key(Vertical::Solar)),
    );
    for expected in 0..3 {
        assert_eq!(
            counters.next_sequence(&a).await.expect("next_sequence"),
            expected
        );
    }
    assert_eq!(
        counters.next_sequence(&b).await.expect("next_sequence"),
        0,
        "independent per key"
    );
    assert_eq!(counters.next_sequence(&a).await.expect("next_sequence"), 3);
}

// ---------------------------------------------------------------------------------------------------------
// Races.

pub async fn racing_reserves_admit_exactly_the_limit(counters: &dyn Counters) {
    const LIMIT: u64 = 37;
    const CALLERS: usize = 200;
    let key = key("hour:2026-12-02T10");
    let outcomes = join_all((0..CALLERS).map(|n| {
        let key = key.clone();
        async move { (n, reserve(counters, &key, &holder(n), LIMIT).await) }
    }))
    .await;
    let admitted: BTreeSet<usize> = outcomes
        .iter()
        .filter(|(_, outcome)| *outcome == Reservation::Reserved)
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(
        admitted.len() as u64,
        LIMIT,
        "exactly the limit is admitted"
    );
    for (n, outcome) in &outcomes {
        if !admitted.contains(n) {
            assert_eq!(*outcome, Reservation::Full { used: LIMIT }, "holder {n}");
        }
    }
    assert_eq!(count(counters, &key).await, LIMIT);

    // Afterwards the admitted are still Reserved and the others still Full.
    let again = join_all((0..CALLERS).map(|n| {
        let key = key.clone();
        async move { (n, reserve(counters, &key, &holder(n), LIMIT).await) }
    }))
    .await;
    for (n, outcome) in again {
        let expected = if admitted.contains(&n) {
            Reservation::Reserved
        } else {
            Reservation::Full { used: LIMIT }
        };
        assert_eq!(outcome, expected, "holder {n} again");
    }
    assert_eq!(count(counters, &key).await, LIMIT);
}

pub async fn racing_sequence_calls_get_distinct_values(counters: &dyn Counters) {
    let key = format!(
        "{}-{:08x}",
        sequence_key(Vertical::Mortgage),
        rand::random::<u32>()
    );
    let values: Vec<u64> = join_all((0..200).map(|_| counters.next_sequence(&key)))
        .await
        .into_iter()
        .map(|value| value.expect("next_sequence"))
        .collect();
    let distinct: BTreeSet<u64> = values.iter().copied().collect();
    assert_eq!(distinct, (0..200).collect::<BTreeSet<u64>>());
}
