//! The `BuyerTokens` contract: a destination's token is stored by the holder of the refresh lease on the
//! version it leased, one refresher at a time, the same on every adapter.

use chrono::{DateTime, Duration, Utc};
use leadhub::config::Secret;
use leadhub::store::{BuyerToken, BuyerTokens};

store_contract!(
    no_entry_until_a_lease_is_taken,
    a_lease_holder_stores_the_refreshed_token,
    one_refresher_at_a_time,
    an_expired_lease_can_be_taken_over,
    a_stale_version_is_refused,
    a_released_lease_frees_the_next_refresh,
    optional_fields_round_trip_and_clear,
);

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(leadhub::lead::now().timestamp_millis()).expect("a time")
}

fn destination(tag: &str) -> String {
    format!("lofty-{tag}-{}", rand::random::<u32>())
}

fn token(value: &str) -> BuyerToken {
    let at = now();
    BuyerToken {
        access_token: Secret::new(value),
        expires_at: Some(at + Duration::hours(1)),
        refresh_after: Some(at + Duration::minutes(50)),
        refresh_token: Some(Secret::new(format!("refresh-of-{value}"))),
        refresh_expires_at: Some(at + Duration::days(30)),
        seed: "seed-1".to_owned(),
    }
}

fn later(seconds: i64) -> DateTime<Utc> {
    now() + Duration::seconds(seconds)
}

pub async fn no_entry_until_a_lease_is_taken(store: &dyn BuyerTokens) {
    let d = destination("none");
    assert_eq!(store.buyer_token(&d).await.expect("read"), None);
    assert!(store
        .take_refresh_lease(&d, 0, "a", later(30), now())
        .await
        .expect("lease"));
    let entry = store
        .buyer_token(&d)
        .await
        .expect("read")
        .expect("an entry");
    assert_eq!((entry.token, entry.version), (None, 0));
    assert_eq!(entry.lease.map(|(holder, _)| holder).as_deref(), Some("a"));
}

pub async fn a_lease_holder_stores_the_refreshed_token(store: &dyn BuyerTokens) {
    let d = destination("store");
    assert!(store
        .take_refresh_lease(&d, 0, "a", later(30), now())
        .await
        .expect("lease"));
    assert!(store
        .put_refreshed(&d, &token("t1"), 0, "a")
        .await
        .expect("put"));
    let entry = store
        .buyer_token(&d)
        .await
        .expect("read")
        .expect("an entry");
    assert_eq!(entry.version, 1);
    assert_eq!(entry.token, Some(token_like(&entry.token, "t1")));
    assert_eq!(entry.lease, None, "storing ends the lease");
    // The next refresh leases version 1.
    assert!(!store
        .take_refresh_lease(&d, 0, "b", later(30), now())
        .await
        .expect("lease"));
    assert!(store
        .take_refresh_lease(&d, 1, "b", later(30), now())
        .await
        .expect("lease"));
    assert!(store
        .put_refreshed(&d, &token("t2"), 1, "b")
        .await
        .expect("put"));
    let entry = store
        .buyer_token(&d)
        .await
        .expect("read")
        .expect("an entry");
    assert_eq!(entry.version, 2);
    assert_eq!(
        entry.token.map(|t| t.access_token.expose().to_owned()),
        Some("t2".to_owned())
    );
}

/// The stored token, checked field by field against `token(value)` (times to the millisecond).
fn token_like(stored: &Option<BuyerToken>, value: &str) -> BuyerToken {
    let stored = stored.clone().expect("a token");
    let expected = token(value);
    assert_eq!(stored.access_token, expected.access_token);
    assert_eq!(stored.refresh_token, expected.refresh_token);
    assert_eq!(stored.seed, expected.seed);
    for (got, want) in [
        (stored.expires_at, expected.expires_at),
        (stored.refresh_after, expected.refresh_after),
        (stored.refresh_expires_at, expected.refresh_expires_at),
    ] {
        let (got, want) = (got.expect("a time"), want.expect("a time"));
        assert!((got - want).num_seconds().abs() <= 5, "{got} vs {want}");
    }
    stored
}

pub async fn one_refresher_at_a_time(store: &dyn BuyerTokens) {
    let d = destination("race");
    let (first, second) = tokio::join!(
        store.take_refresh_lease(&d, 0, "a", later(30), now()),
        store.take_refresh_lease(&d, 0, "b", later(30), now()),
    );
    let (first, second) = (first.expect("lease"), second.expect("lease"));
    assert!(
        first ^ second,
        "exactly one takes the lease: {first} {second}"
    );
    let (winner, loser) = if first { ("a", "b") } else { ("b", "a") };
    // The loser may not store, nor take the lease while it is live.
    assert!(!store
        .put_refreshed(&d, &token("lost"), 0, loser)
        .await
        .expect("put"));
    assert!(!store
        .take_refresh_lease(&d, 0, loser, later(30), now())
        .await
        .expect("lease"));
    // Nor may the winner take it twice.
    assert!(!store
        .take_refresh_lease(&d, 0, winner, later(30), now())
        .await
        .expect("lease"));
    assert!(store
        .put_refreshed(&d, &token("won"), 0, winner)
        .await
        .expect("put"));
    let entry = store
        .buyer_token(&d)
        .await
        .expect("read")
        .expect("an entry");
    assert_eq!(
        entry.token.map(|t| t.access_token.expose().to_owned()),
        Some("won".to_owned())
    );
}

pub async fn an_expired_lease_can_be_taken_over(store: &dyn BuyerTokens) {
    let d = destination("expired");
    assert!(store
        .take_refresh_lease(&d, 0, "a", later(-1), later(-5))
        .await
        .expect("lease"));
    assert!(store
        .take_refresh_lease(&d, 0, "b", later(30), now())
        .await
        .expect("a lease past its time is free"));
    assert!(!store
        .put_refreshed(&d, &token("late"), 0, "a")
        .await
        .expect("put"));
    assert!(store
        .put_refreshed(&d, &token("b"), 0, "b")
        .await
        .expect("put"));
}

pub async fn a_stale_version_is_refused(store: &dyn BuyerTokens) {
    let d = destination("stale");
    assert!(store
        .take_refresh_lease(&d, 0, "a", later(30), now())
        .await
        .expect("lease"));
    assert!(!store
        .put_refreshed(&d, &token("t"), 3, "a")
        .await
        .expect("put"));
    assert!(!store
        .take_refresh_lease(&d, 5, "b", later(30), later(60))
        .await
        .expect("lease"));
    assert_eq!(
        store
            .buyer_token(&d)
            .await
            .expect("read")
            .map(|e| (e.version, e.token)),
        Some((0, None))
    );
}

pub async fn a_released_lease_frees_the_next_refresh(store: &dyn BuyerTokens) {
    let d = destination("release");
    assert!(store
        .take_refresh_lease(&d, 0, "a", later(30), now())
        .await
        .expect("lease"));
    // Another's release leaves the lease alone.
    store.release_refresh_lease(&d, "b").await.expect("release");
    assert!(!store
        .take_refresh_lease(&d, 0, "b", later(30), now())
        .await
        .expect("lease"));
    store.release_refresh_lease(&d, "a").await.expect("release");
    assert!(store
        .take_refresh_lease(&d, 0, "b", later(30), now())
        .await
        .expect("lease"));
    // Releasing what no one holds is fine.
    store
        .release_refresh_lease(&destination("nothing"), "a")
        .await
        .expect("release");
}

pub async fn optional_fields_round_trip_and_clear(store: &dyn BuyerTokens) {
    let d = destination("optional");
    assert!(store
        .take_refresh_lease(&d, 0, "a", later(30), now())
        .await
        .expect("lease"));
    assert!(store
        .put_refreshed(&d, &token("full"), 0, "a")
        .await
        .expect("put"));
    let bare = BuyerToken {
        access_token: Secret::new("bare"),
        expires_at: None,
        refresh_after: None,
        refresh_token: None,
        refresh_expires_at: None,
        seed: "seed-2".to_owned(),
    };
    assert!(store
        .take_refresh_lease(&d, 1, "a", later(30), now())
        .await
        .expect("lease"));
    assert!(store.put_refreshed(&d, &bare, 1, "a").await.expect("put"));
    let entry = store
        .buyer_token(&d)
        .await
        .expect("read")
        .expect("an entry");
    assert_eq!(entry.token, Some(bare));
    assert!(
        !format!("{entry:?}").contains("bare"),
        "Debug hides the token"
    );
}
