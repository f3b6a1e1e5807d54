//! The `NotificationLog` contract: failed partner notifications are kept by webhook id, listed newest first
//! (all or one partner's), read back and removed; disabled endpoints are kept per partner and URL until the
//! partner's endpoints are enabled again. The same on every adapter.

use chrono::{DateTime, Duration, Utc};
use leadhub::lead::{LeadId, LeadStatus};
use leadhub::notifications::{NotifyJob, Payload, PayloadData, Reason};
use leadhub::store::{DisabledEndpoint, FailedNotification, NotificationLog};
use leadhub::verticals::Vertical;

store_contract!(
    failed_notifications_are_listed_newest_first_and_by_partner,
    keeping_again_replaces_and_removing_is_idempotent,
    expired_failed_notifications_are_not_listed_or_read,
    listing_stops_at_the_limit,
    endpoints_are_disabled_per_partner_and_url_until_enabled,
);

fn now() -> DateTime<Utc> {
    leadhub::lead::now()
}

fn failed(partner: &str, failed_at: DateTime<Utc>, code: &str) -> FailedNotification {
    let lead_id = LeadId::generate(failed_at);
    FailedNotification {
        job: NotifyJob {
            webhook_id: format!("msg_{lead_id}_2_0"),
            partner_id: partner.to_owned(),
            url: None,
            payload: Payload {
                event: "lead.unsold".to_owned(),
                timestamp: failed_at,
                data: PayloadData {
                    lead_id: lead_id.clone(),
                    vertical: Vertical::Heloc,
                    status: LeadStatus::Unsold,
                    reason: Some(Reason {
                        code: "no_buyer_took_it".to_owned(),
                        text: "no buyer took the lead".to_owned(),
                    }),
                    affiliate_id: None,
                    status_url: format!("/v1/leads/{lead_id}"),
                },
            },
            attempt: 8,
            not_before: None,
        },
        code: code.to_owned(),
        reason: "gave up after 8 attempts: the endpoint answered HTTP 500".to_owned(),
        failed_at,
        expires_at: failed_at + Duration::days(30),
    }
}

fn ids(listed: &[FailedNotification]) -> Vec<String> {
    listed.iter().map(|f| f.job.webhook_id.clone()).collect()
}

async fn failed_notifications_are_listed_newest_first_and_by_partner(store: &dyn NotificationLog) {
    let base = now();
    let old = failed("acme", base - Duration::minutes(5), "exhausted");
    let new = failed("acme", base, "gone");
    let other = failed("zeta", base - Duration::minutes(1), "no_secret");
    for f in [&old, &new, &other] {
        store.record_failed(f).await.expect("record");
    }
    let all = store.failed(None, 100).await.expect("list");
    assert_eq!(ids(&all), ids(&[new.clone(), other.clone(), old.clone()]));
    assert_eq!(all[0], new, "read back whole");
    let acme = store.failed(Some("acme"), 100).await.expect("list");
    assert_eq!(ids(&acme), ids(&[new.clone(), old.clone()]));
    assert!(store
        .failed(Some("nobody"), 100)
        .await
        .expect("list")
        .is_empty());
    assert_eq!(
        store
            .failed_notification(&other.job.webhook_id)
            .await
            .expect("get"),
        Some(other)
    );
    assert_eq!(
        store.failed_notification("msg_none").await.expect("get"),
        None
    );
}

async fn keeping_again_replaces_and_removing_is_idempotent(store: &dyn NotificationLog) {
    let first = failed("acme", now(), "endpoint_disabled");
    store.record_failed(&first).await.expect("record");
    let mut again = first.clone();
    again.code = "exhausted".to_owned();
    again.job.attempt = 2;
    store.record_failed(&again).await.expect("record");
    let listed = store.failed(None, 100).await.expect("list");
    assert_eq!(listed, vec![again.clone()]);
    store
        .remove_failed(&first.job.webhook_id)
        .await
        .expect("remove");
    store
        .remove_failed(&first.job.webhook_id)
        .await
        .expect("remove again");
    assert!(store.failed(None, 100).await.expect("list").is_empty());
    assert_eq!(
        store
            .failed_notification(&first.job.webhook_id)
            .await
            .expect("get"),
        None
    );
}

async fn expired_failed_notifications_are_not_listed_or_read(store: &dyn NotificationLog) {
    let mut expired = failed("acme", now() - Duration::days(31), "exhausted");
    expired.expires_at = now() - Duration::seconds(1);
    store.record_failed(&expired).await.expect("record");
    assert!(store.failed(None, 100).await.expect("list").is_empty());
    assert_eq!(
        store
            .failed_notification(&expired.job.webhook_id)
            .await
            .expect("get"),
        None
    );
}

async fn listing_stops_at_the_limit(store: &dyn NotificationLog) {
    let base = now();
    for i in 0..5 {
        store
            .record_failed(&failed("acme", base - Duration::seconds(i), "exhausted"))
            .await
            .expect("record");
    }
    assert_eq!(store.failed(None, 3).await.expect("list").len(), 3);
    assert_eq!(store.failed(Some("acme"), 2).await.expect("list").len(), 2);
}

async fn endpoints_are_disabled_per_partner_and_url_until_enabled(store: &dyn NotificationLog) {
    let at = now();
    let hook = "https://partner.example/hook?token=abc";
    let endpoint = |partner: &str, url: &str, at| DisabledEndpoint {
        partner_id: partner.to_owned(),
        url: url.to_owned(),
        disabled_at: at,
        webhook_id: "msg_1".to_owned(),
    };
    assert_eq!(
        store.disabled_endpoint("acme", hook).await.expect("get"),
        None
    );
    store
        .disable_endpoint(&endpoint("acme", hook, at))
        .await
        .expect("disable");
    // Disabling again earlier keeps the later time; a later one replaces it.
    store
        .disable_endpoint(&endpoint("acme", hook, at - Duration::minutes(1)))
        .await
        .expect("disable");
    assert_eq!(
        store.disabled_endpoint("acme", hook).await.expect("get"),
        Some(endpoint("acme", hook, at))
    );
    store
        .disable_endpoint(&endpoint("acme", "https://installer.example/r", at))
        .await
        .expect("disable");
    store
        .disable_endpoint(&endpoint("zeta", hook, at))
        .await
        .expect("disable");
    // Another URL of the partner, or the same URL of another partner, are separate.
    assert_eq!(
        store
            .disabled_endpoint("acme", "https://partner.example/other")
            .await
            .expect("get"),
        None
    );
    assert_eq!(store.disabled_endpoints(None).await.expect("list").len(), 3);
    let acme = store.disabled_endpoints(Some("acme")).await.expect("list");
    assert_eq!(
        acme.iter().map(|e| e.url.as_str()).collect::<Vec<_>>(),
        ["https://installer.example/r", hook]
    );
    assert_eq!(store.enable_endpoints("acme").await.expect("enable"), 2);
    assert_eq!(store.enable_endpoints("acme").await.expect("enable"), 0);
    assert_eq!(
        store.disabled_endpoint("acme", hook).await.expect("get"),
        None
    );
    assert_eq!(
        store.disabled_endpoint("zeta", hook).await.expect("get"),
        Some(endpoint("zeta", hook, at))
    );
}
