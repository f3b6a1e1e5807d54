//! The `DeliveryTallies` contract: acceptances and returns counted per destination and day, atomically,
//! listed by day since a date and by destination — the same on every adapter.

use chrono::{NaiveDate, Utc};
use futures::future::join_all;
use leadhub::store::{DayTally, DeliveryTallies, Tally};

store_contract!(
    tallies_add_up_per_destination_and_day,
    concurrent_counts_all_count,
);

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn days_ago(n: i64) -> NaiveDate {
    today() - chrono::Duration::days(n)
}

fn tally(destination: &str, day: NaiveDate, accepted: u64, returned: u64) -> DayTally {
    DayTally {
        destination: destination.to_owned(),
        day,
        accepted,
        returned,
    }
}

pub async fn tallies_add_up_per_destination_and_day(store: &dyn DeliveryTallies) {
    assert!(store
        .tallies_since(days_ago(30), None)
        .await
        .expect("tallies")
        .is_empty());
    let counts: [(&str, NaiveDate, Tally, usize); 5] = [
        ("sonar #1", days_ago(2), Tally::Accepted, 3),
        ("sonar #1", days_ago(2), Tally::Returned, 1),
        ("ntherm", days_ago(2), Tally::Accepted, 2),
        ("ntherm", days_ago(0), Tally::Returned, 2),
        ("sonar #1", days_ago(40), Tally::Accepted, 1),
    ];
    for (destination, day, what, times) in counts {
        for _ in 0..times {
            store.add_tally(destination, day, what).await.expect("add");
        }
    }
    assert_eq!(
        store
            .tallies_since(days_ago(7), None)
            .await
            .expect("tallies"),
        [
            tally("ntherm", days_ago(2), 2, 0),
            tally("sonar #1", days_ago(2), 3, 1),
            tally("ntherm", days_ago(0), 0, 2),
        ]
    );
    assert_eq!(
        store
            .tallies_since(days_ago(60), Some("sonar #1"))
            .await
            .expect("tallies"),
        [
            tally("sonar #1", days_ago(40), 1, 0),
            tally("sonar #1", days_ago(2), 3, 1),
        ]
    );
    // `since` is inclusive.
    assert_eq!(
        store
            .tallies_since(days_ago(0), None)
            .await
            .expect("tallies"),
        [tally("ntherm", days_ago(0), 0, 2)]
    );
    assert!(store
        .tallies_since(days_ago(7), Some("nobody"))
        .await
        .expect("tallies")
        .is_empty());
}

pub async fn concurrent_counts_all_count(store: &dyn DeliveryTallies) {
    let day = today();
    let adds = (0..20).map(|n| {
        store.add_tally(
            "lofty",
            day,
            if n % 4 == 0 {
                Tally::Returned
            } else {
                Tally::Accepted
            },
        )
    });
    for result in join_all(adds).await {
        result.expect("add");
    }
    assert_eq!(
        store
            .tallies_since(day, Some("lofty"))
            .await
            .expect("tallies"),
        [tally("lofty", day, 15, 5)]
    );
}
