//! A verdict's `consumerStatus`: reported to LeadSafe (`add`), suppressed locally, on the timeline without
//! the SSN; malformed or foreign ones refused before anything is applied.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use callback::Callback;
use chrono::NaiveDate;
use leadhub::callbacks;
use leadhub::lead::{
    now, DeliveryState, DeliveryStatus, EventKind, LeadId, LeadRecord, LeadStatus,
};
use leadhub::live_config::LiveConfig;
use leadhub::queue::memory::MemoryQueue;
use leadhub::settings::Config;
use leadhub::store::memory::MemoryStore;
use leadhub::store::{LeadSafeReports, LeadStore, StoreError, SuppressionCounts, Suppressions};
use leadhub::suppression::{SuppressionKind, SuppressionRecord};
use leadhub::transport::{Scripted, Transport};
use leadhub::vertical::Vertical;
use serde_json::{json, Value};

const HASH_KEY: &str = "callback-test-hash-key-0123456789ab";
const SSN: &str = "123-45-6789";
const DIGITS: &str = "123456789";

fn secrets() -> BTreeMap<String, String> {
    [
        ("HASH_KEY", HASH_KEY),
        ("CALLBACK_KEY", "callback-test-callback-key-0123456789"),
        ("SSN_KEY", "callback-test-ssn-key-0123456789abcdef"),
        ("HOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("LS_KEY", "ls-callback-key"),
        ("LS_SECRET", "ls-callback-secret"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

const HUB: &str = r#"
[hub]
public_base_url = "http://127.0.0.1:3000"
hash_key = "env:HASH_KEY"
callback_key = "env:CALLBACK_KEY"
ssn_key = "env:SSN_KEY"

[[destinations]]
id = "buyer"
kind = "webhook"
url = "https://buyer.example/leads"
signing_secret = "env:HOOK_SECRET"
verticals = ["mortgage"]
"#;

const LEADSAFE: &str = r#"
[screening.leadsafe]
environment = "dev"
base_url = "http://127.0.0.1:9"
api_key = "env:LS_KEY"
client_secret = "env:LS_SECRET"
client_code = "acme"
"#;

fn config(leadsafe: bool) -> Arc<Config> {
    let document = format!("{HUB}{}", if leadsafe { LEADSAFE } else { "" });
    Arc::new(Config::from_toml(&document, &secrets()).expect("a valid configuration"))
}

/// A lead the buyer took, whose SSN hash is `DIGITS`'s.
fn delivered(config: &Config) -> LeadRecord {
    let at = now();
    let mut lead = LeadRecord::received(
        LeadId::generate(at),
        "partner",
        Vertical::Mortgage,
        json!({}),
        at,
        None,
    );
    lead.status = LeadStatus::Delivered;
    lead.ssn_hash = Some(config.hasher.hex(&["ssn", DIGITS]));
    lead.deliveries.insert(
        "buyer".to_owned(),
        DeliveryState {
            status: DeliveryStatus::Accepted,
            attempts: 1,
            lease_until: None,
            next_attempt_at: None,
            reason: None,
            buyer_ref: None,
            updated_at: at,
            step: 0,
            price_cents: None,
            cap_keys: Vec::new(),
            rate_limit_wait_ms: 0,
        },
    );
    lead
}

/// The suppression list, failing when told to.
#[derive(Default)]
struct Flaky {
    inner: MemoryStore,
    down: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Suppressions for Flaky {
    async fn put_suppressions(&self, records: &[SuppressionRecord]) -> Result<(), StoreError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Unavailable("throttled".to_owned()));
        }
        self.inner.put_suppressions(records).await
    }
    async fn find_suppressions(
        &self,
        kind: SuppressionKind,
        hash: &str,
    ) -> Result<Vec<SuppressionRecord>, StoreError> {
        self.inner.find_suppressions(kind, hash).await
    }
    async fn remove_suppressions(
        &self,
        kind: SuppressionKind,
        hash: &str,
    ) -> Result<usize, StoreError> {
        self.inner.remove_suppressions(kind, hash).await
    }
    async fn suppression_counts(&self, today: NaiveDate) -> Result<SuppressionCounts, StoreError> {
        self.inner.suppression_counts(today).await
    }
}

struct Setup {
    callback: Callback,
    store: Arc<MemoryStore>,
    suppressions: Arc<Flaky>,
    transport: Scripted,
    config: Arc<Config>,
    lead: LeadRecord,
}

async fn setup(leadsafe: bool, transport: Scripted) -> Setup {
    let config = config(leadsafe);
    let store = Arc::new(MemoryStore::new());
    let lead = delivered(&config);
    store.create_lead(&lead, None).await.expect("create");
    let suppressions = Arc::new(Flaky::default());
    let callback = Callback {
        config: LiveConfig::fixed(config.clone()),
        store: store.clone(),
        dispatch_queue: Arc::new(MemoryQueue::new(
            "dispatch",
            std::time::Duration::from_secs(5),
        )),
        suppressions: suppressions.clone(),
        leadsafe_reports: store.clone(),
        transport: Arc::new(transport.clone()) as Arc<dyn Transport>,
        buyer_refs: store.clone(),
        tallies: store.clone(),
        unparsed_callbacks: store.clone(),
    };
    Setup {
        callback,
        store,
        suppressions,
        transport,
        config,
        lead,
    }
}

impl Setup {
    async fn post(&self, body: &Value) -> (u16, String) {
        let token = callbacks::token(&self.config.callback_signer, "buyer", &self.lead.id);
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("/v1/callbacks/buyer/{token}"))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).expect("encodes"))
            .expect("a request");
        let response = self.callback.handle(request).await;
        (response.status().as_u16(), response.into_body())
    }

    async fn lead(&self) -> LeadRecord {
        self.store
            .get_lead(&self.lead.id)
            .await
            .expect("get")
            .expect("the lead")
    }

    async fn suppressed(&self) -> Vec<SuppressionRecord> {
        self.suppressions
            .find_suppressions(
                SuppressionKind::Ssn,
                &self.config.hasher.hex(&["ssn", DIGITS]),
            )
            .await
            .expect("find")
    }
}

fn added() -> Result<leadhub::transport::Response, leadhub::transport::TransportError> {
    Scripted::json(200, r#"{"code":100,"message":"Records added"}"#)
}

fn returned_with(status: Value) -> Value {
    json!({"verdict": "returned", "reason": "consumer defaulted", "consumerStatus": status})
}

fn default_status() -> Value {
    json!({"reason": "Default", "startDate": "2026-11-01", "endDate": null, "ssn": SSN})
}

fn assert_no_ssn(text: &str) {
    for spelling in [DIGITS, SSN, "123 45 6789"] {
        assert!(!text.contains(spelling), "an SSN in {text}");
    }
}

#[tokio::test]
async fn a_reported_status_is_sent_to_leadsafe_suppressed_and_on_the_timeline() {
    let setup = setup(true, Scripted::new([added()])).await;
    let (status, body) = setup.post(&returned_with(default_status())).await;
    assert_eq!(status, 200, "{body}");
    assert_no_ssn(&body);
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(answer["status"], "returned");
    assert_eq!(answer["recorded"], true);
    assert_eq!(
        answer["consumerStatus"],
        json!({"reason": "Default", "recorded": true, "leadsafe": "sent"})
    );

    // LeadSafe got the add, with the SSN as 9 digits.
    let sent = setup.transport.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].url.as_str(), "http://127.0.0.1:9/leadsafe/add");
    let add: Value = serde_json::from_slice(&sent[0].body).expect("JSON");
    assert_eq!(
        add,
        json!({"Records": [{"EndDate": null, "Reason": "Default", "SocialSecurityNumber": DIGITS, "StartDate": "2026-11-01"}]})
    );

    // Kept, sealed, marked sent; suppressed locally.
    let reports = setup
        .store
        .reports_since(setup.lead.created_at, now())
        .await
        .expect("read");
    assert_eq!(reports.len(), 1);
    assert!(reports[0].sent_at.is_some());
    assert_eq!(
        reports[0].source,
        leadhub::leadsafe_reports::ReportSource::Buyer {
            destination: "buyer".to_owned(),
            lead_id: setup.lead.id.clone(),
        }
    );
    let suppressed = setup.suppressed().await;
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0].source, "leadsafe-report");

    // The timeline: the verdict, then the status, with reason and date only.
    let lead = setup.lead().await;
    assert_eq!(lead.status, LeadStatus::Returned);
    let last = lead.events.last().expect("an event");
    assert_eq!(last.kind, EventKind::BuyerVerdict);
    assert_eq!(last.code.as_deref(), Some("consumer_status_reported"));
    assert_eq!(last.reason.as_deref(), Some("Default since 2026-11-01"));
    assert_eq!(last.destination.as_deref(), Some("buyer"));
    assert_no_ssn(&serde_json::to_string(&lead.events).expect("encodes"));

    // The same verdict again: nothing is reported twice.
    let (status, body) = setup.post(&returned_with(default_status())).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(answer["recorded"], false);
    assert_eq!(
        answer["consumerStatus"],
        json!({"reason": "Default", "recorded": false})
    );
    assert_eq!(setup.transport.sent().len(), 1);
    assert_eq!(setup.lead().await.events.len(), lead.events.len());

    // The status ends later: reported as such, with a `contacted` verdict that changes nothing else.
    let ended = json!({"reason": "Default", "startDate": "2026-11-01", "endDate": "2026-12-15", "ssn": DIGITS});
    let (status, body) = setup
        .post(&json!({"verdict": "contacted", "consumerStatus": ended}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(setup.transport.sent().len(), 2);
    let suppressed = setup.suppressed().await;
    assert_eq!(suppressed.len(), 1, "the same record, now ended");
    assert_eq!(
        suppressed[0].end_date,
        NaiveDate::from_ymd_opt(2026, 12, 15)
    );
}

#[tokio::test]
async fn a_malformed_or_foreign_status_is_refused_before_the_verdict_applies() {
    let setup = setup(true, Scripted::new([added()])).await;
    let (status, body) = setup
        .post(&returned_with(
            json!({"reason": "Fraud", "startDate": "2026-11-01", "ssn": "123-45-678"}),
        ))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_no_ssn(&body);
    assert!(!body.contains("123-45-678"), "{body}");
    let problem: Value = serde_json::from_str(&body).expect("JSON");
    let fields: BTreeSet<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        BTreeSet::from(["consumerStatus.reason", "consumerStatus.ssn"])
    );

    let (status, body) = setup
        .post(&returned_with(
            json!({"reason": "Default", "startDate": "2026-11-01", "ssn": "987-65-4321"}),
        ))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(!body.contains("987"), "{body}");
    let problem: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(problem["errors"][0]["field"], "consumerStatus.ssn");

    // Nothing was applied or sent.
    assert_eq!(setup.lead().await.status, LeadStatus::Delivered);
    assert!(setup.transport.sent().is_empty());
    assert!(setup.suppressed().await.is_empty());
}

#[tokio::test]
async fn without_leadsafe_a_status_is_only_suppressed_locally() {
    let setup = setup(false, Scripted::new([added()])).await;
    let (status, body) = setup.post(&returned_with(default_status())).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        answer["consumerStatus"],
        json!({"reason": "Default", "recorded": true, "leadsafe": "not_configured"})
    );
    assert!(setup.transport.sent().is_empty());
    assert_eq!(setup.suppressed().await.len(), 1);
    assert!(setup
        .store
        .reports_since(setup.lead.created_at, now())
        .await
        .expect("read")
        .is_empty());
    let lead = setup.lead().await;
    assert_eq!(
        lead.events.last().and_then(|e| e.code.as_deref()),
        Some("consumer_status_reported")
    );
}

#[tokio::test]
async fn leadsafe_failing_leaves_the_report_unsent_and_the_verdict_applied() {
    let setup = setup(
        true,
        Scripted::new([Scripted::json(401, r#"{"message":"Unauthorized"}"#)]),
    )
    .await;
    let (status, body) = setup.post(&returned_with(default_status())).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(answer["consumerStatus"]["leadsafe"], "unsent");
    assert_eq!(setup.lead().await.status, LeadStatus::Returned);
    let unsent = setup.store.unsent_reports(10, now()).await.expect("read");
    assert_eq!(unsent.len(), 1);
    assert_eq!(setup.suppressed().await.len(), 1);
}

#[tokio::test]
async fn a_store_failure_asks_for_the_request_again_which_then_reports_the_status() {
    let setup = setup(true, Scripted::new([added()])).await;
    setup
        .suppressions
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (status, body) = setup.post(&returned_with(default_status())).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("consumer_status_not_recorded"), "{body}");
    assert_eq!(
        setup.lead().await.status,
        LeadStatus::Returned,
        "the verdict stands"
    );
    assert!(setup.transport.sent().is_empty());

    setup
        .suppressions
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let (status, body) = setup.post(&returned_with(default_status())).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        answer["recorded"], false,
        "the verdict was already recorded"
    );
    assert_eq!(answer["consumerStatus"]["leadsafe"], "sent");
    assert_eq!(setup.transport.sent().len(), 1);
}
