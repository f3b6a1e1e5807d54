//! The `Suppressions` contract: records are stored idempotently by (kind, hash, reason, start date), found
//! by value in sort-key order, removed by value, and counted per kind, the same on every adapter.
//!
//! Each check is written once, as an async function of `&dyn Suppressions`; `store_contract!` runs it
//! against the memory store and (ignored unless moto is up) against DynamoDB, each test on a fresh store.

use chrono::NaiveDate;
use leadhub::crypto::KeyedHasher;
use leadhub::store::{KindCounts, SuppressionCounts, Suppressions};
use leadhub::suppression::{
    active_match, hash, normalize, SuppressionKind, SuppressionReason, SuppressionRecord,
};

store_contract!(
    put_records_are_found_by_value_in_sort_key_order,
    putting_again_is_idempotent_and_overwrites_the_end_date,
    duplicates_within_one_put_are_one_record,
    remove_takes_every_record_of_a_value_and_only_it,
    counts_are_per_kind_with_the_active_ones,
    large_puts_are_written_in_batches,
    active_match_reads_the_store,
);

// ---------------------------------------------------------------------------------------------------------
// Helpers.

fn hasher() -> KeyedHasher {
    KeyedHasher::new(b"contract-test-key-contract-test!")
}

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
}

fn hash_of(kind: SuppressionKind, raw: &str) -> String {
    hash(
        &hasher(),
        kind,
        &normalize(kind, raw).expect("a valid value"),
    )
}

fn record(
    kind: SuppressionKind,
    raw: &str,
    reason: SuppressionReason,
    start: &str,
    end: Option<&str>,
) -> SuppressionRecord {
    SuppressionRecord {
        kind,
        hash: hash_of(kind, raw),
        reason,
        start_date: day(start),
        end_date: end.map(day),
        source: "exampleco".to_owned(),
    }
}

async fn put(store: &dyn Suppressions, records: &[SuppressionRecord]) {
    store.put_suppressions(records).await.expect("put");
}

async fn find(
    store: &dyn Suppressions,
    kind: SuppressionKind,
    raw: &str,
) -> Vec<SuppressionRecord> {
    store
        .find_suppressions(kind, &hash_of(kind, raw))
        .await
        .expect("find")
}

/// The counts, asked until the index has caught up with `expected` (DynamoDB's index is eventually
/// consistent; moto and the memory store answer at once).
async fn counts_become(store: &dyn Suppressions, today: NaiveDate, expected: SuppressionCounts) {
    let mut counts = SuppressionCounts::default();
    for _ in 0..50 {
        counts = store.suppression_counts(today).await.expect("counts");
        if counts == expected {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(counts, expected);
}

use SuppressionKind::{Email, Phone, Ssn};
use SuppressionReason::{Bankruptcy, Default, DoNotContact, Lawsuit, OptOut, RevokePaymentAuth};

// ---------------------------------------------------------------------------------------------------------
// Checks.

pub async fn put_records_are_found_by_value_in_sort_key_order(store: &dyn Suppressions) {
    assert_eq!(find(store, Ssn, "123456789").await, []);
    let lawsuit = record(Ssn, "123456789", Lawsuit, "2024-01-07", None);
    let default_late = record(Ssn, "123456789", Default, "2024-03-01", Some("2024-04-01"));
    let default_early = record(Ssn, "123456789", Default, "2024-01-05", None);
    let revoke = record(
        Ssn,
        "123456789",
        RevokePaymentAuth,
        "2024-01-06",
        Some("2024-02-12"),
    );
    let other = record(Ssn, "111222333", Bankruptcy, "2024-01-12", None);
    let email = record(Email, "x@y.co", OptOut, "2024-01-05", None);
    put(
        store,
        &[
            lawsuit.clone(),
            default_late.clone(),
            other.clone(),
            revoke.clone(),
            default_early.clone(),
            email.clone(),
        ],
    )
    .await;
    // Reason name, then start date; every attribute read back.
    assert_eq!(
        find(store, Ssn, "123-45-6789").await,
        [default_early, default_late, lawsuit, revoke]
    );
    assert_eq!(find(store, Ssn, "111222333").await, [other]);
    assert_eq!(find(store, Email, "X@Y.CO").await, [email]);
    // The kind is part of the key.
    let email_hash = hash_of(Email, "x@y.co");
    assert_eq!(
        store
            .find_suppressions(Phone, &email_hash)
            .await
            .expect("find"),
        []
    );
    put(store, &[]).await;
}

pub async fn putting_again_is_idempotent_and_overwrites_the_end_date(store: &dyn Suppressions) {
    let first = record(Phone, "5552010000", DoNotContact, "2024-01-05", None);
    put(store, std::slice::from_ref(&first)).await;
    put(store, std::slice::from_ref(&first)).await;
    assert_eq!(
        find(store, Phone, "5552010000").await,
        std::slice::from_ref(&first)
    );

    // The same record with an end date (and another source): replaced, not added.
    let ended = SuppressionRecord {
        end_date: Some(day("2024-06-01")),
        source: "import".to_owned(),
        ..first.clone()
    };
    put(store, std::slice::from_ref(&ended)).await;
    assert_eq!(find(store, Phone, "5552010000").await, [ended]);
    // And without one again: the end date goes.
    put(store, std::slice::from_ref(&first)).await;
    assert_eq!(
        find(store, Phone, "5552010000").await,
        std::slice::from_ref(&first)
    );

    // Another start date or reason is another record.
    let restarted = record(Phone, "5552010000", DoNotContact, "2025-01-05", None);
    let opted_out = record(Phone, "5552010000", OptOut, "2024-01-05", None);
    put(store, &[restarted.clone(), opted_out.clone()]).await;
    assert_eq!(
        find(store, Phone, "5552010000").await,
        [first, restarted, opted_out]
    );
}

pub async fn duplicates_within_one_put_are_one_record(store: &dyn Suppressions) {
    let open = record(Email, "dup@y.co", OptOut, "2024-01-05", None);
    let ended = SuppressionRecord {
        end_date: Some(day("2024-02-01")),
        ..open.clone()
    };
    // The later one wins.
    put(
        store,
        &[open.clone(), ended.clone(), open.clone(), ended.clone()],
    )
    .await;
    assert_eq!(
        find(store, Email, "dup@y.co").await,
        std::slice::from_ref(&ended)
    );
    put(store, &[ended, open.clone()]).await;
    assert_eq!(find(store, Email, "dup@y.co").await, [open]);
}

pub async fn remove_takes_every_record_of_a_value_and_only_it(store: &dyn Suppressions) {
    let gone = [
        record(Ssn, "123456789", Default, "2024-01-05", None),
        record(Ssn, "123456789", Lawsuit, "2024-01-07", Some("2024-03-01")),
        record(Ssn, "123456789", Bankruptcy, "2024-01-12", None),
    ];
    let kept = record(Ssn, "111222333", Default, "2024-01-05", None);
    let same_digits_other_kind = record(Phone, "1234567890", OptOut, "2024-01-05", None);
    put(store, &gone).await;
    put(store, &[kept.clone(), same_digits_other_kind.clone()]).await;
    let ssn = hash_of(Ssn, "123456789");
    assert_eq!(
        store.remove_suppressions(Ssn, &ssn).await.expect("remove"),
        3
    );
    assert_eq!(find(store, Ssn, "123456789").await, []);
    assert_eq!(find(store, Ssn, "111222333").await, [kept]);
    assert_eq!(
        find(store, Phone, "1234567890").await,
        [same_digits_other_kind]
    );
    // Again, and a value never listed: nothing to remove.
    assert_eq!(
        store.remove_suppressions(Ssn, &ssn).await.expect("remove"),
        0
    );
    assert_eq!(
        store
            .remove_suppressions(Email, &hash_of(Email, "never@y.co"))
            .await
            .expect("remove"),
        0
    );
    // A removed value can be listed again.
    put(store, &gone[..1]).await;
    assert_eq!(find(store, Ssn, "123456789").await, gone[..1]);
}

pub async fn counts_are_per_kind_with_the_active_ones(store: &dyn Suppressions) {
    let today = day("2024-03-01");
    counts_become(store, today, SuppressionCounts::default()).await;
    put(
        store,
        &[
            // Active: started, no end.
            record(Ssn, "123456789", Default, "2024-01-05", None),
            // Active: ends after today.
            record(Ssn, "123456789", Lawsuit, "2024-01-07", Some("2024-03-02")),
            // Ended today: no longer active.
            record(Ssn, "111222333", Default, "2024-01-05", Some("2024-03-01")),
            // Starts today: active.
            record(Email, "x@y.co", OptOut, "2024-03-01", None),
            // Starts tomorrow.
            record(Email, "z@y.co", OptOut, "2024-03-02", None),
        ],
    )
    .await;
    let expected = SuppressionCounts {
        ssn: KindCounts {
            records: 3,
            active: 2,
        },
        email: KindCounts {
            records: 2,
            active: 1,
        },
        phone: KindCounts::default(),
    };
    counts_become(store, today, expected).await;
    assert_eq!(
        expected.total(),
        KindCounts {
            records: 5,
            active: 3
        }
    );
    // Another day, other active ones.
    counts_become(
        store,
        day("2024-01-01"),
        SuppressionCounts {
            ssn: KindCounts {
                records: 3,
                active: 0,
            },
            email: KindCounts {
                records: 2,
                active: 0,
            },
            phone: KindCounts::default(),
        },
    )
    .await;
    store
        .remove_suppressions(Ssn, &hash_of(Ssn, "123456789"))
        .await
        .expect("remove");
    counts_become(
        store,
        today,
        SuppressionCounts {
            ssn: KindCounts {
                records: 1,
                active: 0,
            },
            ..expected
        },
    )
    .await;
}

pub async fn large_puts_are_written_in_batches(store: &dyn Suppressions) {
    // More than DynamoDB's 25 items per BatchWriteItem, and more than several batches at once.
    let records: Vec<SuppressionRecord> = (0..260)
        .map(|n| {
            record(
                Phone,
                &format!("555{n:07}"),
                DoNotContact,
                "2024-01-05",
                None,
            )
        })
        .collect();
    put(store, &records).await;
    for n in [0, 24, 25, 26, 199, 259] {
        assert_eq!(
            find(store, Phone, &format!("555{n:07}")).await,
            [records[n].clone()],
            "record {n}"
        );
    }
    counts_become(
        store,
        day("2024-03-01"),
        SuppressionCounts {
            phone: KindCounts {
                records: 260,
                active: 260,
            },
            ..SuppressionCounts::default()
        },
    )
    .await;
}

pub async fn active_match_reads_the_store(store: &dyn Suppressions) {
    let ended = record(Ssn, "123456789", Default, "2024-01-05", Some("2024-02-01"));
    let later = record(Ssn, "123456789", Lawsuit, "2024-02-15", None);
    let email = record(Email, "x@y.co", OptOut, "2024-01-01", None);
    put(store, &[ended.clone(), later.clone(), email.clone()]).await;
    let probes = [
        (Ssn, hash_of(Ssn, "123456789")),
        (Email, hash_of(Email, "x@y.co")),
    ];
    assert_eq!(
        active_match(store, &probes, day("2024-01-10"))
            .await
            .expect("asks"),
        Some(ended)
    );
    assert_eq!(
        active_match(store, &probes, day("2024-02-05"))
            .await
            .expect("asks"),
        Some(email)
    );
    assert_eq!(
        active_match(store, &probes, day("2024-03-01"))
            .await
            .expect("asks"),
        Some(later)
    );
    assert_eq!(
        active_match(store, &probes, day("2023-12-31"))
            .await
            .expect("asks"),
        None
    );
}
