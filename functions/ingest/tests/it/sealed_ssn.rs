//! A posted SSN (mortgage's `borrower.ssn`): the lead keeps only its keyed hash; a real lead's SSN is also
//! kept sealed for screening, apart from the lead and for `hub.ssn_ttl_hours`; it shows nowhere else, and
//! what ingest does not go on with (a replay, a lead it could not create or queue) leaves no sealed SSN.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use ingest::Ingest;
use leadhub::crypto::{SealedSsn, SecretHash};
use leadhub::lead::{LeadId, LeadRecord};
use leadhub::live_config::LiveConfig;
use leadhub::queue::memory::MemoryQueue;
use leadhub::queue::{JobQueue, QueueError, ReceivedMessage};
use leadhub::settings::Config;
use leadhub::store::memory::MemoryStore;
use leadhub::store::{
    ClaimOutcome, CreateOutcome, IdempotencyRecord, LeadStore, LeadUpdate, SealedSsns, StoreError,
    UpdateOutcome,
};
use leadhub::verticals::Vertical;
use serde_json::{json, Value};

const KEY: &str = "pk_sealing";
const SECRET: &str = "sk_sealing_0123456789abcdef";
const SSN: &str = "219-09-9999";
const DIGITS: &str = "219099999";

fn document(with_ssn_key: bool) -> String {
    format!(
        r#"
[hub]
public_base_url = "http://127.0.0.1:3000"
hash_key = "env:HASH_KEY"
callback_key = "env:CALLBACK_KEY"
{ssn_key}
ssn_ttl_hours = 6

[[partners]]
id = "sealing"
key_id = "{KEY}"
secret_hash = "{hash}"
verticals = ["mortgage"]
{leadsafe}
"#,
        ssn_key = if with_ssn_key {
            "ssn_key = \"env:SSN_KEY\""
        } else {
            ""
        },
        // Mortgage leads are screened with LeadSafe (which needs hub.ssn_key).
        leadsafe = if with_ssn_key {
            "[screening.leadsafe]\nenvironment = \"dev\"\nbase_url = \"http://127.0.0.1:9\"\napi_key = \"env:LS_KEY\"\nclient_secret = \"env:LS_SECRET\"\n[screening.mortgage]\nleadsafe = true\n"
        } else {
            ""
        },
        hash = SecretHash::of(SECRET).to_stored(),
    )
}

fn config(with_ssn_key: bool) -> Arc<Config> {
    let secrets: BTreeMap<String, String> = [
        ("HASH_KEY", "h".repeat(40)),
        ("CALLBACK_KEY", "c".repeat(40)),
        ("SSN_KEY", "s".repeat(40)),
        ("LS_KEY", "ls-key".to_owned()),
        ("LS_SECRET", "ls-secret".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    Arc::new(Config::from_toml(&document(with_ssn_key), &secrets).expect("a valid configuration"))
}

/// An ingest on `store` (also its sealed SSNs) and `queue`.
fn ingest(
    config: &Arc<Config>,
    store: Arc<dyn LeadStore>,
    sealed_ssns: Arc<dyn SealedSsns>,
    queue: Arc<dyn JobQueue>,
) -> Ingest {
    Ingest {
        config: LiveConfig::fixed(config.clone()),
        store,
        sealed_ssns,
        validate_queue: queue,
    }
}

/// The memory store and an undrained queue, and an ingest on them.
fn setup(with_ssn_key: bool) -> (Arc<Config>, Arc<MemoryStore>, Arc<MemoryQueue>, Ingest) {
    let config = config(with_ssn_key);
    let store = Arc::new(MemoryStore::new());
    let queue = Arc::new(MemoryQueue::new("validate", Duration::from_secs(30)));
    let ingest = ingest(&config, store.clone(), store.clone(), queue.clone());
    (config, store, queue, ingest)
}

fn mortgage_lead() -> Value {
    let mut lead = Vertical::Mortgage.example();
    lead["borrower"]["ssn"] = json!(SSN);
    lead
}

fn authorization() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{KEY}:{SECRET}"))
    )
}

fn post(lead: &Value, headers: &[(&str, &str)]) -> http::Request<Vec<u8>> {
    let mut request = http::Request::builder()
        .method("POST")
        .uri("/v1/leads/mortgage")
        .header("authorization", authorization())
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .body(serde_json::to_vec(lead).expect("json"))
        .expect("request")
}

fn get(lead_id: &LeadId) -> http::Request<Vec<u8>> {
    http::Request::builder()
        .method("GET")
        .uri(format!("/v1/leads/{lead_id}"))
        .header("authorization", authorization())
        .body(Vec::new())
        .expect("request")
}

/// The lead id of a 202 answer.
fn accepted(response: &http::Response<String>) -> LeadId {
    assert_eq!(response.status(), 202, "{}", response.body());
    let body: Value = serde_json::from_str(response.body()).expect("json");
    body["leadId"]
        .as_str()
        .expect("leadId")
        .parse()
        .expect("a lead id")
}

/// The SSN shows in `text` neither as posted, nor as its digits, nor sealed.
fn assert_no_ssn(what: &str, text: &str, sealed: Option<&SealedSsn>) {
    assert!(
        !text.contains(SSN) && !text.contains(DIGITS),
        "{what} holds the SSN: {text}"
    );
    if let Some(sealed) = sealed {
        let stored = sealed.to_stored();
        assert!(!text.contains(&stored[3..]), "{what} holds the sealed SSN");
    }
}

async fn stored_lead(store: &MemoryStore, lead_id: &LeadId) -> LeadRecord {
    store
        .get_lead(lead_id)
        .await
        .expect("store")
        .expect("the lead is stored")
}

async fn sealed(store: &MemoryStore, lead_id: &LeadId, at: DateTime<Utc>) -> Option<SealedSsn> {
    store.get_sealed_ssn(lead_id, at).await.expect("store")
}

#[tokio::test]
async fn a_real_leads_ssn_is_kept_sealed_apart_from_the_lead_and_nowhere_else() {
    let (config, store, queue, ingest) = setup(true);
    let before = leadhub::lead::now();
    let lead_id = accepted(&ingest.handle(post(&mortgage_lead(), &[])).await);
    let after = leadhub::lead::now();

    // Sealed for this lead, opening to the digits, for hub.ssn_ttl_hours (6).
    let kept = sealed(&store, &lead_id, after)
        .await
        .expect("a sealed SSN is kept for screening");
    let sealer = config.ssn_sealer.as_ref().expect("a sealer");
    assert_eq!(
        sealer
            .open(lead_id.as_str(), &kept)
            .expect("opens")
            .expose(),
        DIGITS
    );
    let ttl = chrono::Duration::hours(6);
    assert!(sealed(
        &store,
        &lead_id,
        before + ttl - chrono::Duration::seconds(1)
    )
    .await
    .is_some());
    assert!(sealed(&store, &lead_id, after + ttl).await.is_none());
    assert_eq!(store.sealed_ssn_count(), 1);

    // The lead (its timeline included) keeps only the keyed hash.
    let lead = stored_lead(&store, &lead_id).await;
    assert_eq!(
        lead.ssn_hash.as_deref(),
        Some(config.hasher.hex(&["ssn", DIGITS]).as_str())
    );
    assert_no_ssn(
        "the lead item",
        &serde_json::to_string(&lead).expect("json"),
        Some(&kept),
    );
    assert_no_ssn(
        "the timeline",
        &serde_json::to_string(&lead.events).expect("json"),
        Some(&kept),
    );
    // The status API and the queue message neither.
    let status = ingest.handle(get(&lead_id)).await;
    assert_eq!(status.status(), 200, "{}", status.body());
    assert_no_ssn("the status API", status.body(), Some(&kept));
    let messages = queue
        .receive(10, Duration::from_millis(10))
        .await
        .expect("queue");
    assert_eq!(messages.len(), 1);
    assert!(messages[0].body.contains(lead_id.as_str()));
    assert_no_ssn("the queue message", &messages[0].body, Some(&kept));
}

#[tokio::test]
async fn a_replay_with_the_same_idempotency_key_keeps_no_second_sealed_ssn() {
    let (_, store, _, ingest) = setup(true);
    let lead = mortgage_lead();
    let first = accepted(
        &ingest
            .handle(post(&lead, &[("idempotency-key", "replay-1")]))
            .await,
    );
    for _ in 0..2 {
        // The first request may count as in flight still (409) or be answered again (202): either way
        // no second lead, and no second sealed SSN.
        let again = ingest
            .handle(post(&lead, &[("idempotency-key", "replay-1")]))
            .await;
        assert!(
            matches!(again.status().as_u16(), 202 | 409),
            "{}",
            again.body()
        );
        if again.status() == 202 {
            assert_eq!(accepted(&again), first);
        }
    }
    assert_eq!(store.lead_count(), 1);
    assert_eq!(store.sealed_ssn_count(), 1, "only the first lead's");
    assert!(sealed(&store, &first, leadhub::lead::now()).await.is_some());
    // A different body with the key (422) keeps none either.
    let mut other = lead.clone();
    other["loanAmount"] = json!(160000);
    let refused = ingest
        .handle(post(&other, &[("idempotency-key", "replay-1")]))
        .await;
    assert_eq!(refused.status(), 422, "{}", refused.body());
    assert_eq!(store.sealed_ssn_count(), 1);
}

#[tokio::test]
async fn a_test_lead_and_a_hub_without_an_ssn_key_keep_no_sealed_ssn() {
    let (_, store, _, ingest) = setup(true);
    let test_lead = accepted(
        &ingest
            .handle(post(&mortgage_lead(), &[("leadhub-test", "true")]))
            .await,
    );
    assert_eq!(
        store.sealed_ssn_count(),
        0,
        "test leads are not screened by LeadSafe"
    );
    assert!(stored_lead(&store, &test_lead).await.ssn_hash.is_some());

    let mut without = mortgage_lead();
    without["borrower"]
        .as_object_mut()
        .expect("borrower")
        .remove("ssn");
    accepted(&ingest.handle(post(&without, &[])).await);
    assert_eq!(store.sealed_ssn_count(), 0, "no SSN, nothing sealed");

    let (_, store, _, ingest) = setup(false);
    let lead_id = accepted(&ingest.handle(post(&mortgage_lead(), &[])).await);
    assert_eq!(
        store.sealed_ssn_count(),
        0,
        "no hub.ssn_key, nothing sealed"
    );
    assert!(stored_lead(&store, &lead_id).await.ssn_hash.is_some());
}

/// A queue whose sends fail.
struct Unreachable;

#[async_trait::async_trait]
impl JobQueue for Unreachable {
    async fn send(&self, _: &str, _: Duration) -> Result<(), QueueError> {
        Err(QueueError::Unavailable("unreachable".into()))
    }
    async fn receive(&self, _: usize, _: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        Err(QueueError::Unavailable("unreachable".into()))
    }
    async fn delete(&self, _: &str) -> Result<(), QueueError> {
        Err(QueueError::Unavailable("unreachable".into()))
    }
}

#[tokio::test]
async fn a_lead_that_could_not_be_queued_is_discarded_with_its_sealed_ssn() {
    let config = config(true);
    let store = Arc::new(MemoryStore::new());
    let ingest = ingest(&config, store.clone(), store.clone(), Arc::new(Unreachable));
    let response = ingest.handle(post(&mortgage_lead(), &[])).await;
    assert_eq!(response.status(), 503, "{}", response.body());
    assert_no_ssn("the error", response.body(), None);
    assert_eq!(store.lead_count(), 0);
    assert_eq!(store.sealed_ssn_count(), 0);
}

/// A store whose creates fail (everything else goes to the memory store).
struct CreateFails(Arc<MemoryStore>);

#[async_trait::async_trait]
impl LeadStore for CreateFails {
    async fn create_lead(
        &self,
        _: &LeadRecord,
        _: Option<&IdempotencyRecord>,
    ) -> Result<CreateOutcome, StoreError> {
        Err(StoreError::Unavailable("throttled".into()))
    }
    async fn get_lead(&self, id: &LeadId) -> Result<Option<LeadRecord>, StoreError> {
        self.0.get_lead(id).await
    }
    async fn update_lead(
        &self,
        id: &LeadId,
        update: &LeadUpdate,
    ) -> Result<UpdateOutcome, StoreError> {
        self.0.update_lead(id, update).await
    }
    async fn discard_lead(&self, id: &LeadId, key: Option<(&str, &str)>) -> Result<(), StoreError> {
        self.0.discard_lead(id, key).await
    }
    async fn claim_unique(
        &self,
        key: &str,
        owner: &LeadId,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<ClaimOutcome, StoreError> {
        self.0.claim_unique(key, owner, expires_at, now).await
    }

    async fn unique_holder(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<LeadId>, StoreError> {
        self.0.unique_holder(key, now).await
    }

    async fn release_unique(&self, key: &str, owner: &LeadId) -> Result<(), StoreError> {
        self.0.release_unique(key, owner).await
    }
    async fn get_config_document(&self) -> Result<Option<String>, StoreError> {
        self.0.get_config_document().await
    }
    async fn put_config_document(&self, document: &str) -> Result<(), StoreError> {
        self.0.put_config_document(document).await
    }
    async fn list_partner_leads(
        &self,
        query: &leadhub::store::LeadListQuery,
    ) -> Result<leadhub::store::LeadPage, StoreError> {
        self.0.list_partner_leads(query).await
    }
}

/// Sealed SSNs that cannot be kept.
struct SealedSsnsUnavailable;

#[async_trait::async_trait]
impl SealedSsns for SealedSsnsUnavailable {
    async fn put_sealed_ssn(
        &self,
        _: &LeadId,
        _: &SealedSsn,
        _: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("throttled".into()))
    }
    async fn get_sealed_ssn(
        &self,
        _: &LeadId,
        _: DateTime<Utc>,
    ) -> Result<Option<SealedSsn>, StoreError> {
        Ok(None)
    }
    async fn delete_sealed_ssn(&self, _: &LeadId) -> Result<(), StoreError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_lead_that_could_not_be_created_leaves_no_sealed_ssn_and_one_without_its_sealed_ssn_is_not_created(
) {
    let config = config(true);
    let store = Arc::new(MemoryStore::new());
    let queue = Arc::new(MemoryQueue::new("validate", Duration::from_secs(30)));
    let failing = ingest(
        &config,
        Arc::new(CreateFails(store.clone())),
        store.clone(),
        queue.clone(),
    );
    let response = failing.handle(post(&mortgage_lead(), &[])).await;
    assert_eq!(response.status(), 503, "{}", response.body());
    assert_eq!(store.sealed_ssn_count(), 0);

    // Screening would need the sealed SSN: without it, no lead.
    let unsealed = ingest(
        &config,
        store.clone(),
        Arc::new(SealedSsnsUnavailable),
        queue.clone(),
    );
    let response = unsealed.handle(post(&mortgage_lead(), &[])).await;
    assert_eq!(response.status(), 503, "{}", response.body());
    assert_no_ssn("the error", response.body(), None);
    assert_eq!(store.lead_count(), 0);
    let messages = queue
        .receive(10, Duration::from_millis(10))
        .await
        .expect("queue");
    assert!(messages.is_empty());
}
