//! The `LeadSafeReports` contract: a reported status is kept, its SSN sealed, until it expires; read back
//! oldest first, from a time or while unsent; marked sent once LeadSafe added it. The same on every adapter.
//!
//! Each check is written once, as an async function of `&dyn LeadSafeReports`; `store_contract!` runs it
//! against the memory store and (ignored unless moto is up) against DynamoDB, each test on a fresh store.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use leadhub::connectors::leadsafe::{LeadSafeRecord, Reason};
use leadhub::crypto::SsnSealer;
use leadhub::lead::LeadId;
use leadhub::leadsafe_reports::{LeadSafeReport, ReportId, ReportSource};
use leadhub::store::LeadSafeReports;

store_contract!(
    a_put_report_reads_back_and_opens,
    reports_since_lists_oldest_first_from_the_time_given,
    unsent_reports_are_oldest_first_up_to_the_limit,
    a_report_marked_sent_is_no_longer_unsent,
    expired_reports_are_neither_read_nor_marked,
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

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
}

const DAYS_30: StdDuration = StdDuration::from_secs(30 * 86_400);

fn report(
    ssn: &str,
    source: ReportSource,
    at: DateTime<Utc>,
    retention: StdDuration,
) -> LeadSafeReport {
    let record =
        LeadSafeRecord::new(ssn, Reason::Default, day("2026-11-01"), None).expect("a record");
    LeadSafeReport::new(&sealer(), &record, source, at, retention).expect("a report")
}

fn operator(ssn: &str, at: DateTime<Utc>) -> LeadSafeReport {
    report(ssn, ReportSource::Operator, at, DAYS_30)
}

async fn put(store: &dyn LeadSafeReports, report: &LeadSafeReport) {
    store.put_report(report).await.expect("put");
}

fn ids(reports: &[LeadSafeReport]) -> Vec<ReportId> {
    reports.iter().map(|r| r.id.clone()).collect()
}

// ---------------------------------------------------------------------------------------------------------
// Checks.

pub async fn a_put_report_reads_back_and_opens(store: &dyn LeadSafeReports) {
    let now = now();
    assert!(store
        .reports_since(now - Duration::days(1), now)
        .await
        .expect("read")
        .is_empty());
    let lead_id = LeadId::generate(now);
    let mut reported = report(
        "219-09-9999",
        ReportSource::Buyer {
            destination: "sonar".to_owned(),
            lead_id,
        },
        now,
        DAYS_30,
    );
    reported.end_date = Some(day("2026-12-01"));
    put(store, &reported).await;
    let read = store.reports_since(now, now).await.expect("read");
    assert_eq!(read, [reported.clone()], "read back as put");
    let record = read[0].to_record(&sealer()).expect("opens");
    assert_eq!(record.ssn.expose(), "219099999");
    assert_eq!(record.end_date, Some(day("2026-12-01")));
    let operator = operator("123456789", now + Duration::milliseconds(1));
    put(store, &operator).await;
    assert_eq!(
        store.reports_since(now, now).await.expect("read"),
        [reported, operator]
    );
}

pub async fn reports_since_lists_oldest_first_from_the_time_given(store: &dyn LeadSafeReports) {
    let now = now();
    let first = operator("111111111", now - Duration::hours(3));
    let second = operator("222222222", now - Duration::hours(2));
    let third = operator("333333333", now - Duration::hours(1));
    // Put out of order: read in order of reporting.
    for report in [&third, &first, &second] {
        put(store, report).await;
    }
    assert_eq!(
        ids(&store
            .reports_since(now - Duration::days(1), now)
            .await
            .expect("read")),
        ids(&[first.clone(), second.clone(), third.clone()])
    );
    assert_eq!(
        ids(&store
            .reports_since(second.reported_at, now)
            .await
            .expect("read")),
        ids(&[second.clone(), third.clone()]),
        "from `since` on, inclusive"
    );
    assert!(store
        .reports_since(now, now)
        .await
        .expect("read")
        .is_empty());
    // Sent ones are listed too.
    assert!(store.mark_report_sent(&first.id, now).await.expect("mark"));
    let all = store
        .reports_since(now - Duration::days(1), now)
        .await
        .expect("read");
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].sent_at, Some(now));
}

pub async fn unsent_reports_are_oldest_first_up_to_the_limit(store: &dyn LeadSafeReports) {
    let now = now();
    let reports: Vec<LeadSafeReport> = (0..5)
        .map(|i| operator(&format!("10000000{i}"), now - Duration::minutes(10 - i)))
        .collect();
    for report in reports.iter().rev() {
        put(store, report).await;
    }
    assert_eq!(
        ids(&store.unsent_reports(3, now).await.expect("read")),
        ids(&reports[..3])
    );
    assert_eq!(
        ids(&store.unsent_reports(100, now).await.expect("read")),
        ids(&reports)
    );
    assert!(store.unsent_reports(0, now).await.expect("read").is_empty());
    for report in &reports[..2] {
        assert!(store.mark_report_sent(&report.id, now).await.expect("mark"));
    }
    assert_eq!(
        ids(&store.unsent_reports(2, now).await.expect("read")),
        ids(&reports[2..4])
    );
}

pub async fn a_report_marked_sent_is_no_longer_unsent(store: &dyn LeadSafeReports) {
    let now = now();
    let report = operator("219099999", now);
    put(store, &report).await;
    assert_eq!(
        ids(&store.unsent_reports(10, now).await.expect("read")),
        std::slice::from_ref(&report.id)
    );
    let sent_at = now + Duration::seconds(2);
    assert!(store
        .mark_report_sent(&report.id, sent_at)
        .await
        .expect("mark"));
    assert!(store
        .unsent_reports(10, sent_at)
        .await
        .expect("read")
        .is_empty());
    let read = store.reports_since(now, sent_at).await.expect("read");
    assert_eq!(read[0].sent_at, Some(sent_at));
    assert_eq!(read[0].sealed, report.sealed, "the rest unchanged");
    // Marking what is not there writes nothing.
    let unknown = ReportId::generate(now);
    assert!(!store.mark_report_sent(&unknown, now).await.expect("mark"));
    assert_eq!(
        store.reports_since(now, sent_at).await.expect("read").len(),
        1
    );
}

pub async fn expired_reports_are_neither_read_nor_marked(store: &dyn LeadSafeReports) {
    let now = now();
    let reported_at = now - Duration::days(2);
    let expired = report(
        "111111111",
        ReportSource::Operator,
        reported_at,
        StdDuration::from_secs(86_400),
    );
    let live = report(
        "222222222",
        ReportSource::Operator,
        reported_at,
        StdDuration::from_secs(3 * 86_400),
    );
    put(store, &expired).await;
    put(store, &live).await;
    let since = now - Duration::days(7);
    assert_eq!(
        ids(&store.reports_since(since, now).await.expect("read")),
        std::slice::from_ref(&live.id)
    );
    assert_eq!(
        ids(&store.unsent_reports(10, now).await.expect("read")),
        std::slice::from_ref(&live.id)
    );
    // Read a moment before it expired, it is there.
    let before = expired.expires_at - Duration::milliseconds(1);
    assert_eq!(
        store
            .reports_since(since, before)
            .await
            .expect("read")
            .len(),
        2
    );
    assert_eq!(
        store
            .reports_since(since, expired.expires_at)
            .await
            .expect("read")
            .len(),
        1,
        "expired at its expiry"
    );
    assert!(!store
        .mark_report_sent(&expired.id, now)
        .await
        .expect("mark"));
    assert!(store
        .mark_report_sent(&expired.id, before)
        .await
        .expect("mark"));
}

pub async fn putting_again_replaces(store: &dyn LeadSafeReports) {
    let now = now();
    let mut report = operator("219099999", now);
    put(store, &report).await;
    report.end_date = Some(day("2026-11-20"));
    report.sent_at = Some(now);
    put(store, &report).await;
    assert_eq!(store.reports_since(now, now).await.expect("read"), [report]);
    assert!(store
        .unsent_reports(10, now)
        .await
        .expect("read")
        .is_empty());
}
