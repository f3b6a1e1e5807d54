//! The `UnparsedCallbacks` contract: callbacks that were not verdicts are kept as they came (bounded),
//! listed newest first since a time, by destination, without expired ones — the same on every adapter.

use chrono::{DateTime, Duration, Utc};
use leadhub::lead::LeadId;
use leadhub::store::unparsed_callbacks::MAX_KEPT_BODY_BYTES;
use leadhub::store::{UnparsedCallback, UnparsedCallbacks};

store_contract!(
    kept_callbacks_read_back_newest_first_by_destination,
    listing_stops_at_the_limit_and_skips_expired_ones,
);

fn now() -> DateTime<Utc> {
    leadhub::lead::now()
}

fn callback(destination: &str, body: &[u8], at: DateTime<Utc>) -> UnparsedCallback {
    UnparsedCallback::new(
        destination,
        Some(LeadId::generate(at)),
        Some("text/plain; charset=utf-8"),
        body,
        "not_json",
        at,
    )
}

pub async fn kept_callbacks_read_back_newest_first_by_destination(store: &dyn UnparsedCallbacks) {
    let now = now();
    assert!(store
        .list_unparsed(now - Duration::days(1), None, 100, now)
        .await
        .expect("list")
        .is_empty());
    let old = callback("ntherm", b"success_bit=1", now - Duration::hours(3));
    // Bytes that are not UTF-8, and a body over the kept size.
    let binary = UnparsedCallback {
        content_type: None,
        lead_id: None,
        ..callback(
            "ntherm",
            &[0xff, 0x00, 0xfe, b'{'],
            now - Duration::hours(2),
        )
    };
    let big = callback(
        "sonar #1",
        &vec![b'a'; MAX_KEPT_BODY_BYTES + 100],
        now - Duration::hours(1),
    );
    for kept in [&old, &binary, &big] {
        store.put_unparsed(kept).await.expect("put");
    }
    let all = store
        .list_unparsed(now - Duration::days(1), None, 100, now)
        .await
        .expect("list");
    assert_eq!(all, [big.clone(), binary.clone(), old.clone()]);
    assert_eq!(all[0].body.len(), MAX_KEPT_BODY_BYTES);
    assert_eq!(all[0].size, (MAX_KEPT_BODY_BYTES + 100) as u64);
    assert!(all[0].truncated());
    let ntherm = store
        .list_unparsed(now - Duration::days(1), Some("ntherm"), 100, now)
        .await
        .expect("list");
    assert_eq!(ntherm, [binary.clone(), old]);
    // `since` is inclusive.
    let recent = store
        .list_unparsed(binary.received_at, None, 100, now)
        .await
        .expect("list");
    assert_eq!(recent, [big, binary]);
}

pub async fn listing_stops_at_the_limit_and_skips_expired_ones(store: &dyn UnparsedCallbacks) {
    let now = now();
    // The newest ones have expired (TTL had not removed them yet): a limit must look past them.
    for n in 0..3 {
        let expired = UnparsedCallback {
            expires_at: now - Duration::seconds(1),
            ..callback("ntherm", b"x", now - Duration::seconds(n))
        };
        store.put_unparsed(&expired).await.expect("put");
    }
    let mut live = Vec::new();
    for n in 0..5 {
        let kept = callback("ntherm", b"{}", now - Duration::minutes(n + 1));
        store.put_unparsed(&kept).await.expect("put");
        live.push(kept);
    }
    let since = now - Duration::days(1);
    assert_eq!(
        store
            .list_unparsed(since, None, 2, now)
            .await
            .expect("list"),
        live[..2]
    );
    assert_eq!(
        store
            .list_unparsed(since, Some("ntherm"), 100, now)
            .await
            .expect("list"),
        live
    );
    assert!(store
        .list_unparsed(since, Some("other"), 100, now)
        .await
        .expect("list")
        .is_empty());
    assert!(store
        .list_unparsed(since, None, 0, now)
        .await
        .expect("list")
        .is_empty());
}
