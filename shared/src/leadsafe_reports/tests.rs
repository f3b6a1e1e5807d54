use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

use super::*;
use crate::config::Secret;
use crate::connectors::leadsafe::LeadSafeClient;
use crate::lead::{LeadStatus, TimelineEvent};
use crate::store::memory::MemoryStore;
use crate::transport::{Request, Scripted};
use crate::vertical::Vertical;

const SSN_KEY: &str = "report-test-ssn-key-0123456789abcdef";
const API_KEY: &str = "ls-test-key";
const CLIENT_SECRET: &str = "ls-test-secret-1f2e";

fn sealer() -> SsnSealer {
    SsnSealer::new(SSN_KEY).expect("long enough")
}

fn hasher() -> KeyedHasher {
    KeyedHasher::new(b"report-test-hash-key-of-32-bytes")
}

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
}

fn at(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).expect("valid time")
}

fn t0() -> DateTime<Utc> {
    at(1_790_000_000_000)
}

fn record(ssn: &str, reason: Reason, start: &str, end: Option<&str>) -> LeadSafeRecord {
    LeadSafeRecord::new(ssn, reason, day(start), end.map(day)).expect("a record")
}

fn settings() -> LeadSafeSettings {
    LeadSafeSettings {
        client: LeadSafeClient::with_base_url(
            reqwest::Url::parse("http://127.0.0.1:9/").expect("url"),
            Secret::new(API_KEY),
            Secret::new(CLIENT_SECRET),
        )
        .expect("a client"),
        environment: crate::connectors::leadsafe::LeadSafeEnvironment::Development,
        client_code: Some("acme".to_owned()),
        timeout: Duration::from_secs(5),
        report_retention: Duration::from_secs(30 * 86_400),
    }
}

fn report_of(record: &LeadSafeRecord, now: DateTime<Utc>) -> LeadSafeReport {
    LeadSafeReport::new(
        &sealer(),
        record,
        ReportSource::Operator,
        now,
        Duration::from_secs(30 * 86_400),
    )
    .expect("a report")
}

/// The `Records` of an `add` request's body.
fn records_sent(request: &Request) -> Vec<Value> {
    let body: Value = serde_json::from_slice(&request.body).expect("JSON");
    body["Records"].as_array().expect("Records").clone()
}

fn added() -> Result<crate::transport::Response, crate::transport::TransportError> {
    Scripted::json(200, r#"{"code":100,"message":"Records added"}"#)
}

#[test]
fn report_ids_are_prefixed_time_ordered_and_parsed_back() {
    let early = ReportId::generate(at(1_700_000_000_000));
    let late = ReportId::generate(at(1_700_000_000_001));
    assert!(early.as_str().starts_with("lsr_"));
    assert_eq!(early.as_str().len(), 4 + 26);
    assert!(early < late, "sorted by time");
    assert_eq!(early.as_str().parse::<ReportId>(), Ok(early.clone()));
    assert_eq!(
        early.as_str().to_ascii_lowercase().parse::<ReportId>(),
        Ok(early.clone()),
        "the body's case does not matter"
    );
    let json = serde_json::to_value(&early).expect("encodes");
    assert_eq!(json, json!(early.as_str()));
    for bad in [
        "",
        "lsr_",
        "lead_01JDV4W3XK0000000000000000",
        "lsr_01JDV4W3XK000000000000000",
        "lsr_81JDV4W3XK0000000000000000",
        "lsr_01JDV4W3XK000000000000000U",
    ] {
        assert_eq!(bad.parse::<ReportId>(), Err(InvalidReportId), "{bad}");
    }
}

#[test]
fn a_report_seals_the_ssn_for_itself_and_refuses_an_end_before_its_start() {
    let lawsuit = record("123-45-6789", Reason::Lawsuit, "2026-11-01", None);
    let report = report_of(&lawsuit, t0());
    assert_eq!(report.reason, Reason::Lawsuit);
    assert_eq!(report.sent_at, None);
    assert_eq!(report.expires_at, at(1_790_000_000_000 + 30 * 86_400_000));
    assert!(!report.is_expired(report.expires_at - chrono::Duration::milliseconds(1)));
    assert!(report.is_expired(report.expires_at));
    assert_eq!(report.to_record(&sealer()), Ok(lawsuit.clone()));
    // The report's id is the associated data: it opens for no other id, and under no other key.
    assert_eq!(
        sealer().open(ReportId::generate(t0()).as_str(), &report.sealed),
        Err(SealError::DoesNotOpen)
    );
    let other = SsnSealer::new("another-ssn-key-another-ssn-key-0000").expect("key");
    assert_eq!(report.to_record(&other), Err(SealError::DoesNotOpen));
    let text = format!("{report:?} {:?}", report.to_record(&sealer()));
    for digits in ["123456789", "123-45-6789", "6789"] {
        assert!(!text.contains(digits), "{text}");
    }
    assert!(!report.sealed.to_stored().contains("123456789"));

    let backwards = record(
        "123456789",
        Reason::Default,
        "2026-11-02",
        Some("2026-11-01"),
    );
    assert_eq!(
        LeadSafeReport::new(
            &sealer(),
            &backwards,
            ReportSource::Operator,
            t0(),
            Duration::from_secs(86_400)
        ),
        Err(ReportError::EndBeforeStart)
    );
    // Ending the day it starts is allowed (LeadSafe's rule is "not before").
    let same_day = record(
        "123456789",
        Reason::Default,
        "2026-11-02",
        Some("2026-11-02"),
    );
    assert!(LeadSafeReport::new(
        &sealer(),
        &same_day,
        ReportSource::Operator,
        t0(),
        Duration::from_secs(86_400)
    )
    .is_ok());
}

#[test]
fn the_suppression_record_is_keyed_like_a_leads_ssn_hash() {
    let status = record(
        "123-45-6789",
        Reason::RevokePaymentAuth,
        "2026-11-01",
        Some("2027-01-01"),
    );
    let suppressed = suppression_record(&hasher(), &status);
    assert_eq!(suppressed.kind, SuppressionKind::Ssn);
    // Ingest's `ssn_hash`: `hasher.hex(&["ssn", digits])`.
    assert_eq!(suppressed.hash, hasher().hex(&["ssn", "123456789"]));
    assert_eq!(
        suppressed.reason,
        crate::suppression::SuppressionReason::RevokePaymentAuth
    );
    assert_eq!(suppressed.start_date, day("2026-11-01"));
    assert_eq!(suppressed.end_date, Some(day("2027-01-01")));
    assert_eq!(suppressed.source, "leadsafe-report");
    assert!(suppressed.is_active(day("2026-12-31")));
    assert!(!suppressed.is_active(day("2027-01-01")));
    assert!(!format!("{suppressed:?}").contains("123456789"));
}

#[test]
fn the_timeline_event_says_reason_and_dates_once_per_buyer() {
    let mut lead = LeadRecord::received(
        crate::lead::LeadId::generate(t0()),
        "partner-1",
        Vertical::Mortgage,
        json!({}),
        t0(),
        None,
    );
    lead.status = LeadStatus::Confirmed;
    let open = record("123456789", Reason::Default, "2026-11-01", None);
    let ended = record(
        "123456789",
        Reason::Lawsuit,
        "2026-01-05",
        Some("2026-03-01"),
    );
    assert_eq!(status_words(&open), "Default since 2026-11-01");
    assert_eq!(
        status_words(&ended),
        "Lawsuit from 2026-01-05 to 2026-03-01"
    );
    let event = consumer_status_event(&lead, "sonar", &open, t0()).expect("a first report");
    assert_eq!(
        event,
        TimelineEvent::new(t0(), EventKind::BuyerVerdict, LeadStatus::Confirmed)
            .destination("sonar")
            .reason("consumer_status_reported", "Default since 2026-11-01")
    );
    lead.events.push(event);
    assert_eq!(
        consumer_status_event(&lead, "sonar", &open, t0()),
        None,
        "sent again"
    );
    assert!(consumer_status_event(&lead, "other-buyer", &open, t0()).is_some());
    assert!(consumer_status_event(&lead, "sonar", &ended, t0()).is_some());
}

#[tokio::test]
async fn reports_are_sent_in_batches_and_marked_sent() {
    let store = MemoryStore::new();
    let reports: Vec<LeadSafeReport> = (0..(ADD_BATCH + 20))
        .map(|i| {
            let ssn = format!("{:09}", 100_000_000 + i);
            report_of(&record(&ssn, Reason::Default, "2026-11-01", None), t0())
        })
        .collect();
    for report in &reports {
        store.put_report(report).await.expect("put");
    }
    let transport = Scripted::new([added()]);
    let sent_at = t0() + chrono::Duration::minutes(1);
    let outcome = send_reports(
        &transport,
        &settings(),
        &sealer(),
        &store,
        &reports,
        Duration::from_secs(5),
        sent_at,
    )
    .await;
    assert!(outcome.all_sent(), "{outcome:?}");
    assert_eq!(outcome.sent.len(), reports.len());
    let requests = transport.sent();
    assert_eq!(requests.len(), 2);
    assert_eq!(records_sent(&requests[0]).len(), ADD_BATCH);
    assert_eq!(records_sent(&requests[1]).len(), 20);
    assert_eq!(requests[0].url.path(), "/leadsafe/add");
    assert_eq!(
        records_sent(&requests[0])[0],
        json!({"EndDate": null, "Reason": "Default", "SocialSecurityNumber": "100000000", "StartDate": "2026-11-01"})
    );
    assert!(requests[0].headers["authorization"]
        .to_str()
        .expect("ascii")
        .starts_with("Basic "));
    assert!(store
        .unsent_reports(1000, sent_at)
        .await
        .expect("read")
        .is_empty());
    let since = store.reports_since(t0(), sent_at).await.expect("read");
    assert!(since.iter().all(|r| r.sent_at == Some(sent_at)));
}

#[tokio::test]
async fn refused_credentials_and_outages_leave_reports_unsent() {
    let reports = [
        report_of(
            &record("111111111", Reason::Abusive, "2026-11-01", None),
            t0(),
        ),
        report_of(
            &record("222222222", Reason::Deceased, "2026-11-01", None),
            t0(),
        ),
    ];
    let rows: Vec<(_, SendStop)> = vec![
        (
            Scripted::json(401, r#"{"message":"Unauthorized"}"#),
            SendStop::CredentialsRefused,
        ),
        (Scripted::json(403, ""), SendStop::CredentialsRefused),
        (
            Scripted::json(503, "down"),
            SendStop::Unavailable {
                what: "LeadSafe asked to try again later".to_owned(),
                after: None,
            },
        ),
        (
            Err(TransportError::Timeout(Duration::from_secs(5))),
            SendStop::Unavailable {
                what: "LeadSafe gave no answer within 1500 ms".to_owned(),
                after: None,
            },
        ),
        (
            Err(TransportError::Unreachable),
            SendStop::Unavailable {
                what: "LeadSafe could not be reached".to_owned(),
                after: None,
            },
        ),
        (
            Scripted::json(200, "<html>"),
            SendStop::Unavailable {
                what: "LeadSafe's answer could not be read (the body is not JSON)".to_owned(),
                after: None,
            },
        ),
    ];
    for (answer, expected) in rows {
        let store = MemoryStore::new();
        for report in &reports {
            store.put_report(report).await.expect("put");
        }
        let transport = Scripted::new([answer]);
        let outcome = send_reports(
            &transport,
            &settings(),
            &sealer(),
            &store,
            &reports,
            Duration::from_millis(1500),
            t0(),
        )
        .await;
        assert_eq!(outcome.stopped, Some(expected.clone()), "{expected:?}");
        assert!(outcome.sent.is_empty());
        assert_eq!(
            transport.sent().len(),
            1,
            "nothing more is tried: {expected:?}"
        );
        assert_eq!(store.unsent_reports(10, t0()).await.expect("read").len(), 2);
        assert!(!expected.to_string().contains("111111111"));
    }
}

#[tokio::test]
async fn a_refused_batch_is_sent_again_record_by_record() {
    let store = MemoryStore::new();
    let reports = [
        report_of(
            &record("111111111", Reason::Abusive, "2026-11-01", None),
            t0(),
        ),
        report_of(
            &record("222222222", Reason::Deceased, "2026-11-01", None),
            t0(),
        ),
        report_of(
            &record("333333333", Reason::Lawsuit, "2026-11-01", None),
            t0(),
        ),
    ];
    for report in &reports {
        store.put_report(report).await.expect("put");
    }
    let transport = Scripted::new([
        Scripted::json(
            400,
            r#"{"code":400,"message":"Records[1]: SSN 222222222 is blocked"}"#,
        ),
        added(),
        Scripted::json(200, r#"{"code":101,"message":"SSN 222-22-2222 refused"}"#),
        added(),
    ]);
    let outcome = send_reports(
        &transport,
        &settings(),
        &sealer(),
        &store,
        &reports,
        Duration::from_secs(5),
        t0(),
    )
    .await;
    assert_eq!(outcome.sent, [reports[0].id.clone(), reports[2].id.clone()]);
    assert_eq!(outcome.refused.len(), 1);
    assert_eq!(outcome.refused[0].0, reports[1].id);
    assert_eq!(
        outcome.refused[0].1,
        "LeadSafe refused it (200): code 101: SSN *** refused"
    );
    assert_eq!(outcome.stopped, None);
    let requests = transport.sent();
    assert_eq!(
        requests
            .iter()
            .map(|r| records_sent(r).len())
            .collect::<Vec<_>>(),
        [3, 1, 1, 1]
    );
    let unsent = store.unsent_reports(10, t0()).await.expect("read");
    assert_eq!(unsent.len(), 1);
    assert_eq!(unsent[0].id, reports[1].id);
}

#[tokio::test]
async fn a_report_sealed_under_another_key_is_not_sent() {
    let store = MemoryStore::new();
    let other = SsnSealer::new("another-ssn-key-another-ssn-key-0000").expect("key");
    let foreign = LeadSafeReport::new(
        &other,
        &record("111111111", Reason::Abusive, "2026-11-01", None),
        ReportSource::Operator,
        t0(),
        Duration::from_secs(86_400),
    )
    .expect("a report");
    let ours = report_of(
        &record("222222222", Reason::Deceased, "2026-11-01", None),
        t0(),
    );
    let transport = Scripted::new([added()]);
    let outcome = send_reports(
        &transport,
        &settings(),
        &sealer(),
        &store,
        &[foreign.clone(), ours.clone()],
        Duration::from_secs(5),
        t0(),
    )
    .await;
    assert_eq!(outcome.unopened, [foreign.id]);
    assert_eq!(records_sent(&transport.sent()[0]).len(), 1);
    // LeadSafe added `ours` (the store not holding it only means there was nothing to mark).
    assert_eq!(outcome.sent, [ours.id]);
}

#[tokio::test]
async fn a_buyers_status_is_suppressed_locally_kept_and_sent() {
    let store = MemoryStore::new();
    let status = record("123-45-6789", Reason::Default, "2026-11-01", None);
    let lead_id = crate::lead::LeadId::generate(t0());
    let buyer = ReportSource::Buyer {
        destination: "sonar".to_owned(),
        lead_id: lead_id.clone(),
    };
    let settings = settings();
    let nothing = Scripted::new([]);
    let ok = Scripted::new([added()]);
    let down = Scripted::new([Scripted::json(500, "")]);
    fn ports<'a>(store: &'a MemoryStore, transport: &'a Scripted) -> ReportPorts<'a> {
        ReportPorts {
            suppressions: store,
            reports: store,
            transport,
        }
    }
    let reporting = LeadSafeReporting {
        settings: &settings,
        sealer: &sealer(),
        timeout: Duration::from_secs(3),
    };
    let probe = hasher().hex(&["ssn", "123456789"]);

    // Not configured: only suppressed.
    let reported = report_status(
        ports(&store, &nothing),
        &hasher(),
        None,
        &status,
        buyer.clone(),
        t0(),
    )
    .await
    .expect("reported");
    assert_eq!(reported, Reported::SuppressedOnly);
    assert_eq!(reported.leadsafe(), "not_configured");
    assert!(nothing.sent().is_empty());
    assert!(store
        .reports_since(t0(), t0())
        .await
        .expect("read")
        .is_empty());
    let found = store
        .find_suppressions(SuppressionKind::Ssn, &probe)
        .await
        .expect("find");
    assert_eq!(found.len(), 1);
    assert!(found[0].is_active(day("2026-11-01")));

    // Configured: kept and sent.
    let reported = report_status(
        ports(&store, &ok),
        &hasher(),
        Some(reporting),
        &status,
        buyer.clone(),
        t0(),
    )
    .await
    .expect("reported");
    let Reported::Sent(id) = &reported else {
        panic!("{reported:?}");
    };
    assert_eq!(reported.leadsafe(), "sent");
    assert_eq!(ok.sent().len(), 1);
    let kept = store.reports_since(t0(), t0()).await.expect("read");
    assert_eq!(kept.len(), 1);
    assert_eq!(&kept[0].id, id);
    assert_eq!(kept[0].source, buyer);
    assert_eq!(kept[0].sent_at, Some(t0()));

    // LeadSafe down: kept unsent, and the same status again is still one suppression record.
    let reported = report_status(
        ports(&store, &down),
        &hasher(),
        Some(reporting),
        &status,
        buyer.clone(),
        t0(),
    )
    .await
    .expect("reported");
    assert!(
        matches!(&reported, Reported::Unsent { why, .. } if why == "LeadSafe asked to try again later"),
        "{reported:?}"
    );
    assert_eq!(store.unsent_reports(10, t0()).await.expect("read").len(), 1);
    assert_eq!(
        store
            .find_suppressions(SuppressionKind::Ssn, &probe)
            .await
            .expect("find")
            .len(),
        1
    );

    // An end before the start is refused before anything is written.
    let backwards = record(
        "987654321",
        Reason::Default,
        "2026-11-02",
        Some("2026-11-01"),
    );
    let error = report_status(
        ports(&store, &ok),
        &hasher(),
        Some(reporting),
        &backwards,
        buyer,
        t0(),
    )
    .await
    .expect_err("refused");
    assert!(matches!(
        error,
        ReportStatusError::Report(ReportError::EndBeforeStart)
    ));
    assert!(store
        .find_suppressions(SuppressionKind::Ssn, &hasher().hex(&["ssn", "987654321"]))
        .await
        .expect("find")
        .is_empty());
}

struct Secrets;

impl crate::config::SecretSource for Secrets {
    fn get(&self, name: &str) -> Option<String> {
        name.starts_with("LS_").then(|| format!("value-of-{name}"))
    }
}

fn leadsafe_doc(
    extra: &str,
) -> Result<crate::screening::policy::ScreeningConfig, crate::config::ConfigError> {
    let text = format!(
        "[leadsafe]\nenvironment = \"dev\"\nprovider = \"acme\"\napi_key = \"env:LS_KEY\"\nclient_secret = \"env:LS_SECRET\"\n{extra}"
    );
    let doc: BTreeMap<String, toml::Value> = toml::from_str(&text).expect("toml");
    crate::screening::policy::load(doc, &Secrets)
}

#[test]
fn report_retention_days_defaults_to_30_and_is_1_to_365() {
    let retention = |extra: &str| {
        leadsafe_doc(extra).map(|config| config.leadsafe.expect("leadsafe").report_retention)
    };
    assert_eq!(retention(""), Ok(Duration::from_secs(30 * 86_400)));
    assert_eq!(
        retention("report_retention_days = 1"),
        Ok(Duration::from_secs(86_400))
    );
    assert_eq!(
        retention("report_retention_days = 365"),
        Ok(Duration::from_secs(365 * 86_400))
    );
    for bad in ["0", "366", "-1", "\"30\""] {
        let error = retention(&format!("report_retention_days = {bad}")).expect_err(bad);
        assert!(
            error.key.starts_with("screening.leadsafe"),
            "{bad}: {}",
            error.key
        );
    }
    let error = retention("report_retention_days = 0").expect_err("0");
    assert_eq!(error.key, "screening.leadsafe.report_retention_days");
    assert!(
        error.problem.contains("between 1 and 365"),
        "{}",
        error.problem
    );
}
